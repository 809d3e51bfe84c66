"""Memory under sustained load: the real client streams live events from the emulator (in
its own process) for a while; the client's RSS is sampled and the verdict says whether it
stayed flat.

    ./run memory [SECONDS] [--rate N] [--pure-python] [--json]     (600 s by default)

The issue's bar (issue 8): flat memory over a 10-minute run, beyond the metadata cache. The
first minutes fill what is meant to fill (imports, compiled layouts, the metadata cache, the
outputs' buffers), so only the second half is judged: its growth is the slope of a
least-squares line through its samples times its length (one noisy sample cannot decide
either way), and it must stay within --max-growth. The exit status is 1 when it does not.

Each sample also shows the entries in the decoder's bounded memo caches (raw address /
UUID / MAC bytes → text, estreamer/protocol/layout.py) and the names in the metadata cache:
the Python decoders (no C compiler at install, or --pure-python) fill the memos for as long
as new values keep arriving, so that is where to look first when memory climbs. The
allocator is not (issue 8): the client has one busy thread, so glibc keeps one arena, and
MALLOC_ARENA_MAX=2 with malloc_trim before every sample shrank the C heap by a few MiB but
left the climb (Python objects that the memos hold) as it was."""

import argparse
import json
import logging
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PAGE = os.sysconf("SC_PAGE_SIZE")
MAX_GROWTH_MIB = 2.0
"""Second-half growth still called flat: the sampling noise of a flat run on a busy
machine is about 1 MiB."""


@dataclass(frozen=True)
class Sample:
    seconds: float
    rss_mib: float  # the client's process
    workers_mib: float  # its worker processes, if any (the emulator is not the client's)
    records: int
    memo_entries: int | None  # None: the decoder has no memo caches to count
    metadata_names: int | None

    @property
    def total_mib(self) -> float:
        return self.rss_mib + self.workers_mib


def rss_mib(pid: int | str = "self") -> float:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE / 2**20
    except (OSError, IndexError, ValueError):
        return 0.0  # the process ended between listing and reading


def worker_pids() -> list[int]:
    """This process's descendants other than the emulator (and the emulator's own)."""
    found: list[int] = []
    todo = [os.getpid()]
    while todo:
        pid = todo.pop()
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            for child in children:
                try:
                    cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if b"emulate" not in cmdline:
                    found.append(child)
                    todo.append(child)
    return found


def second_half_growth(samples: list[Sample], seconds: float) -> float | None:
    """MiB the client grew over the second half of the run (least-squares slope × the
    span of its samples); None with fewer than 3 samples there."""
    half = [s for s in samples if s.seconds >= seconds / 2]
    if len(half) < 3:
        return None
    mean_t = sum(s.seconds for s in half) / len(half)
    mean_m = sum(s.total_mib for s in half) / len(half)
    spread = sum((s.seconds - mean_t) ** 2 for s in half)
    if spread == 0:
        return None
    slope = sum((s.seconds - mean_t) * (s.total_mib - mean_m) for s in half) / spread
    return slope * (half[-1].seconds - half[0].seconds)


def at(samples: list[Sample], seconds: float) -> Sample | None:
    """The first sample taken at or after `seconds` (the last one if none is)."""
    return next((s for s in samples if s.seconds >= seconds), samples[-1] if samples else None)


def memo_entries() -> int | None:
    from estreamer.protocol import layout

    memos = getattr(layout, "_MEMOS", None)  # private: a diagnostic, not an interface
    return None if memos is None else sum(len(memo) for memo in list(memos.values()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=3000, help="live events/sec sent")
    parser.add_argument("--sample", type=float, default=10, help="seconds between samples")
    parser.add_argument("--max-growth", type=float, default=MAX_GROWTH_MIB,
                        help="MiB the second half may grow and still be flat")
    parser.add_argument("--pure-python", action="store_true",
                        help="decode with the Python decoders only (as without a C compiler)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args(argv)
    if args.pure_python:
        # Read when the layouts are compiled, i.e. at the first estreamer.protocol import.
        os.environ["ESTREAMER_PURE_PYTHON"] = "1"

    from benchmarks.streams import emulator_process
    from estreamer.config import Secret
    from estreamer.job import build_runner
    from estreamer.protocol import speedups

    decoder = "C" if speedups.AVAILABLE else "Python"
    samples: list[Sample] = []
    print(f"decoder: {decoder}; live rate asked: {args.rate:g} events/s", flush=True)
    print(f"{'t (s)':>7}{'RSS MiB':>9}{'workers':>9}{'records':>12}{'memo':>8}{'names':>7}",
          flush=True)
    # Small rotated files that are let go: the output must not be what grows.
    with tempfile.TemporaryDirectory() as tmp, emulator_process(
        Path(tmp), rate=args.rate, history=100, max_logs=50_000
    ) as (settings, password):
        logging.disable(logging.INFO)
        stop = threading.Event()
        runner = build_runner(settings, Secret(password), stop=stop, max_retries=0)
        metadata = getattr(getattr(runner.pipeline, "decorate", None), "cache", None)
        started = time.monotonic()

        def sample() -> None:
            while not stop.wait(args.sample):
                s = Sample(time.monotonic() - started, rss_mib(),
                           sum(rss_mib(pid) for pid in worker_pids()),
                           runner.pipeline.stats.received, memo_entries(),
                           None if metadata is None else len(metadata))
                samples.append(s)
                print(f"{s.seconds:>7.0f}{s.rss_mib:>9.1f}{s.workers_mib:>9.1f}"
                      f"{s.records:>12,}{_count(s.memo_entries):>8}"
                      f"{_count(s.metadata_names):>7}", flush=True)
                if s.seconds >= args.seconds:
                    stop.set()

        threading.Thread(target=sample, daemon=True).start()
        runner.run()
    if not samples:
        print("no samples: the run ended before the first one", file=sys.stderr)
        return 1
    growth = second_half_growth(samples, args.seconds)
    flat = growth is not None and growth <= args.max_growth
    last = samples[-1]
    rate = last.records / last.seconds
    marks = {f"{mark:g}": round(s.total_mib, 1)
             for mark in sorted({30, args.seconds / 2, args.seconds})
             if (s := at(samples, mark)) is not None}
    if growth is None:
        print("verdict: too short to judge (fewer than 3 samples in the second half)")
    else:
        print(f"verdict: {'flat' if flat else 'GROWING'}: the second half grew "
              f"{growth:+.1f} MiB (limit {args.max_growth:g}); RSS by second {marks}; "
              f"{last.records:,} records, {rate:,.0f}/s, {decoder} decoder")
    if args.json:
        print(json.dumps({
            "seconds": round(last.seconds), "records": last.records,
            "records_per_sec": round(rate), "decoder": decoder,
            "rss_mib_at": marks, "rss_max_mib": round(max(s.total_mib for s in samples), 1),
            "second_half_growth_mib": None if growth is None else round(growth, 2),
            "max_growth_mib": args.max_growth, "flat": flat,
            "memo_entries": last.memo_entries, "metadata_names": last.metadata_names,
        }))
    return 0 if flat else 1


def _count(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


if __name__ == "__main__":
    sys.exit(main())
