"""Benchmarks: records/sec, peak memory and CPU per 100k records of each stage, as a table.

    ./run bench [--events N] [--live-events N] [--only STAGE] [--formats F,..] [--fmcs N,..]
                [--workers N] [--repeat N] [--json]

In memory, one process (RSS and CPU: the benchmark process's own):
- decode:      StreamDecoder over an in-memory stream (framing, bundles, records)
- decode-71:   the same over connection events only (block 173), the bulk of real traffic
- decode+json: the same, plus each record formatted as a JSON line
- decorate:    names, ISO times and categories added to every record of the stream (decoded
               once beforehand), with the metadata cache filled from the same stream

Live, over TLS on loopback from emulators (`estreamer emulate`) in processes of their own:
- emulator:    the emulator's send rate to a bare TLS reader, encoding each record the first
               time (emulator:cold), then from its render cache (emulator:warm); RSS and CPU
               are the emulator's
- end-to-end:  the real client (its own process: RSS and CPU are the client's) from one warm
               emulator into a file, one row per output format (json, splunk, cef, ecs)
- scaling:     one client process streaming JSON from 1, 2 and 4 warm emulators at once
               (multi-FMC: one thread per FMC), total records/s

Each client row is the median of `--repeat` runs (3 by default), with the slowest and the
fastest beside it: on a shared virtual machine one run can be a third slower than the next
for no reason of its own. Peak memory is max RSS (ru_maxrss, /proc VmHWM for the
emulator), so the in-memory stages run smallest-footprint first. Not timed tests: numbers
for the issue notes."""

import argparse
import concurrent.futures
import contextlib
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.streams import (
    client_config,
    connection_stream,
    emulator_processes,
    read_raw,
    server_stream,
)
from estreamer.formats.json import format_json
from estreamer.gctune import tune_for_streaming
from estreamer.protocol.records import Record
from estreamer.protocol.stream import StreamDecoder

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 1 << 18  # what one socket read gives the client


@dataclass
class Row:
    """One line of the table. `cpu_seconds` / `peak_rss_mib` None: the benchmark process's
    own, measured around the stage (the in-memory stages)."""

    name: str
    records: int
    seconds: float
    cpu_seconds: float | None = None
    peak_rss_mib: float | None = None
    runs: tuple[float, ...] = ()  # every run's rate, when the row is the median of several

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_decode(name: str, data: bytes, expected: int, with_json: bool) -> Row:
    decoder = StreamDecoder()
    count = 0
    started = time.perf_counter()
    for pos in range(0, len(data), CHUNK):
        for event in decoder.feed(data[pos : pos + CHUNK]):
            if type(event) is Record:
                count += 1
                if with_json:
                    format_json(event.to_dict())
    elapsed = time.perf_counter() - started
    assert count == expected, (count, expected)
    return Row(name, count, elapsed)


def bench_decorate(data: bytes, expected: int) -> Row:
    """The decorate step alone: decode outside the timing, fill the cache from the stream's
    metadata first (as a running client's cache is), then decorate fresh dicts of every
    record. A first untimed pass builds the per-type plans, so this is the steady state."""
    from estreamer.decorate import Decorator

    decoder = StreamDecoder()
    records = [event for pos in range(0, len(data), CHUNK)
               for event in decoder.feed(data[pos : pos + CHUNK]) if type(event) is Record]
    assert len(records) == expected, (len(records), expected)
    decorator = Decorator()
    for record in records:
        decorator.learn(record)
    for record in records:
        decorator(record, record.to_dict())
    best = float("inf")
    pairs: list[tuple[Record, dict]] = []
    for _ in range(3):  # the best of three: this machine is shared, a pass can be robbed
        # to_dict is the pipeline's work, not the decorator's: made before the clock starts
        # (after the last pass's dicts are let go, so they are not held twice).
        pairs.clear()
        pairs = [(record, record.to_dict()) for record in records]
        started = time.perf_counter()
        for record, event in pairs:
            decorator(record, event)
        best = min(best, time.perf_counter() - started)
    return Row("decorate", len(records), best)


class Fmcs:
    """The emulators the live stages stream from: `count` FMCs (seeds 1…count), each a
    process with a history of `events` events, started once for every live stage. Each has
    sent its whole history once before a client is timed against it (`warm`), so it sends
    from its render cache as fast as TLS on loopback goes, far above the client's rate."""

    def __init__(self, stack: contextlib.ExitStack, count: int, events: int,
                 workers: int | None = None, repeat: int = 1):
        from estreamer.certs import init_certs
        from estreamer.config import load_config
        from estreamer.tls import client_context

        self.workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        self.certs = init_certs(self.workdir / "certs")
        self.emulators = stack.enter_context(emulator_processes(
            self.certs.directory, range(1, count + 1), rate=0, history=events))
        self.context = client_context(self.certs.client_pkcs12, self.certs.password)
        # The request the client makes, so that the warming fills the cache it will read.
        probe = client_config(self.workdir, [self.emulators[0].port], self.certs.client_pkcs12)
        self.flags = load_config(probe).request_flags()
        self.records: dict[int, int] = {}  # emulator index → records in a whole stream
        self.workers = workers
        self.repeat = repeat

    def read(self, index: int) -> tuple[int, float]:
        """One whole stream from emulator `index` by a bare TLS reader: (records, seconds)."""
        records, _bytes, seconds = read_raw(self.emulators[index].port, self.context,
                                            self.flags, expected=self.records.get(index))
        if self.records.setdefault(index, records) != records:
            raise RuntimeError(f"emulator {index + 1} sent {records} records, before "
                               f"{self.records[index]}")
        return records, seconds

    def warm(self, count: int) -> None:
        """The first `count` emulators, all that are still cold at once."""
        cold = [i for i in range(count) if i not in self.records]
        if cold:
            with concurrent.futures.ThreadPoolExecutor(len(cold)) as pool:
                list(pool.map(self.read, cold))  # re-raises a reader's failure here

    def client(self, name: str, count: int, adapter: str) -> Row:
        """The median of `repeat` runs of `client_once`, every run's rate kept beside it."""
        rows = sorted((self.client_once(name, count, adapter) for _ in range(self.repeat)),
                      key=lambda row: row.rate)
        median = rows[len(rows) // 2]
        median.runs = tuple(row.rate for row in rows)
        return median

    def client_once(self, name: str, count: int, adapter: str) -> Row:
        """The real client (its own process, `benchmarks/client_run.py`) against the first
        `count` emulators at once, writing `adapter` lines to files."""
        from estreamer.config import PASSWORD_ENV

        self.warm(count)
        with tempfile.TemporaryDirectory(dir=self.workdir) as tmp:
            config = client_config(
                Path(tmp), [e.port for e in self.emulators[:count]], self.certs.client_pkcs12,
                adapter=adapter, uri=f"relfile:///out/{{host}}-{{port}}/encore.{{0}}.{adapter}",
                workers=self.workers)
            done = subprocess.run(
                [sys.executable, "-m", "benchmarks.client_run", str(config),
                 *(str(self.records[i]) for i in range(count))],
                cwd=ROOT, env={**os.environ, PASSWORD_ENV: self.certs.password},
                capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"{name}: the client failed: {done.stderr.strip()[-2000:]}")
        result = json.loads(done.stdout.splitlines()[-1])
        expected = sum(self.records[i] for i in range(count))
        if result["records"] != expected:
            raise RuntimeError(f"{name}: {result['records']} records handled, "
                               f"{expected} sent")
        return Row(name, result["records"], result["seconds"], result["cpu_seconds"],
                   result["peak_rss_mib"])


def bench_emulator(fmcs: Fmcs) -> list[Row]:
    """The emulator's own send rate to a bare TLS reader, while it encodes each record for
    the first time (cold) and then from its render cache (warm). CPU and peak RSS are the
    emulator process's."""
    rows = []
    emulator = fmcs.emulators[0]
    for name in ("emulator:cold", "emulator:warm"):
        cpu = emulator.cpu_seconds()
        records, seconds = fmcs.read(0)
        used = emulator.cpu_seconds()
        rows.append(Row(name, records, seconds,
                        None if cpu is None or used is None else used - cpu,
                        emulator.peak_rss_mib()))
    return rows


def bench_end_to_end(fmcs: Fmcs, formats: Sequence[str]) -> list[Row]:
    """The real client, one FMC (the emulator in its own process, warm), each output format
    into a file. CPU and peak RSS are the client process's."""
    return [fmcs.client(f"end-to-end:{adapter}", 1, adapter) for adapter in formats]


def bench_scaling(fmcs: Fmcs, counts: Sequence[int]) -> list[Row]:
    """One client process streaming from several FMCs at once (one thread each, as
    `estreamer run` does), JSON files: total records/s over all of them."""
    return [fmcs.client(f"scaling:{count}", count, "json") for count in counts]


FORMATS = ("json", "splunk", "cef", "ecs")
FMC_COUNTS = (1, 2, 4)
STAGES = ("decode", "decode-71", "decode+json", "emulator", "end-to-end", "scaling",
          "decorate")
LIVE = ("emulator", "end-to-end", "scaling")


def listed(kind: Callable[[str], object], valid: Callable[[object], bool], what: str):
    """An argparse type: a comma-separated list of `kind`, each `valid` (`what` says how)."""
    def parse(text: str) -> tuple:
        try:
            items = tuple(kind(item) for item in text.split(",") if item)
        except ValueError:
            items = ()
        if not items or not all(valid(item) for item in items):
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {what}")
        return items
    return parse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000,
                        help="logical events in the in-memory stream")
    parser.add_argument("--live-events", type=int, default=50000,
                        help="logical events in each emulator's history (live stages)")
    parser.add_argument("--only", choices=STAGES)
    parser.add_argument("--formats", default=FORMATS,
                        type=listed(str, FORMATS.__contains__, ", ".join(FORMATS)),
                        help="end-to-end: output formats, comma-separated (default: all)")
    parser.add_argument("--fmcs", default=FMC_COUNTS,
                        type=listed(int, lambda n: n >= 1, "counts ≥ 1"),
                        help="scaling: emulator counts, comma-separated (default: 1,2,4)")
    parser.add_argument("--workers", type=int, default=None,
                        help="end-to-end and scaling: the client's workerProcesses "
                             "(default: the default config's)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="end-to-end and scaling: client runs per row, the median shown "
                             "(default 3)")
    parser.add_argument("--json", action="store_true",
                        help="also print one machine-readable JSON line with the results")
    args = parser.parse_args(argv)
    stages = [args.only] if args.only else list(STAGES)
    tune_for_streaming()  # the in-memory stages run as `estreamer run` does (gctune.py)

    unused = not {"decode", "decode+json", "decorate"} & set(stages)
    # Built in a child process: the history behind it is several times the stream's size,
    # and would set this process's peak RSS before any stage ran.
    if unused:
        data, records = b"", 0
    else:
        with concurrent.futures.ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn")) as child:
            data, records = child.submit(server_stream, args.events).result()
    stream = "not used" if unused else \
        f"{args.events} events -> {records} records, {len(data) / 1e6:.1f} MB"
    print(f"stream: {stream}; live stages: {args.live_events} events per emulator")
    print(f"{'stage':<20}{'records/sec':>12}{'peak RSS MiB':>14}{'CPU s/100k':>12}")
    connections = connection_stream(min(args.events, 20000)) if "decode-71" in stages \
        else (b"", 0)
    in_memory: dict[str, Callable[[], Row]] = {
        "decode": lambda: bench_decode("decode", data, records, with_json=False),
        "decode-71": lambda: bench_decode("decode-71", *connections, with_json=False),
        "decode+json": lambda: bench_decode("decode+json", data, records, with_json=True),
        # Last: it holds every decoded record at once.
        "decorate": lambda: bench_decorate(data, records),
    }
    live: dict[str, Callable[[Fmcs], list[Row]]] = {
        "emulator": bench_emulator,
        "end-to-end": lambda fmcs: bench_end_to_end(fmcs, args.formats),
        "scaling": lambda fmcs: bench_scaling(fmcs, args.fmcs),
    }
    emulators = {"emulator": 1, "end-to-end": 1, "scaling": max(args.fmcs)}  # how many each needs
    results = {}
    with contextlib.ExitStack() as stack:
        fmcs = None
        wanted = max((emulators[stage] for stage in stages if stage in LIVE), default=0)
        for stage in stages:
            if stage in LIVE:
                if fmcs is None:
                    fmcs = Fmcs(stack, wanted, args.live_events, args.workers,
                                max(1, args.repeat))
                rows = live[stage](fmcs)
            else:
                cpu_before = cpu_seconds()
                row = in_memory[stage]()
                row.cpu_seconds = cpu_seconds() - cpu_before
                row.peak_rss_mib = peak_mib()
                rows = [row]
            for row in rows:
                results[row.name] = report(row)
    if args.json:
        print(json.dumps({"events": args.events, "live_events": args.live_events,
                          "results": results}))
    return 0


def report(row: Row) -> dict:
    per_100k = None if row.cpu_seconds is None or not row.records \
        else row.cpu_seconds / row.records * 100_000
    rss = "-" if row.peak_rss_mib is None else f"{row.peak_rss_mib:.1f}"
    cpu = "-" if per_100k is None else f"{per_100k:.2f}"
    spread = f"   ({min(row.runs):,.0f}-{max(row.runs):,.0f})" if len(row.runs) > 1 else ""
    print(f"{row.name:<20}{row.rate:>12,.0f}{rss:>14}{cpu:>12}{spread}", flush=True)
    return {"records_per_sec": round(row.rate), "records": row.records,
            "runs_records_per_sec": [round(rate) for rate in row.runs] or None,
            "seconds": round(row.seconds, 3),
            "peak_rss_mib": None if row.peak_rss_mib is None else round(row.peak_rss_mib, 1),
            "cpu_seconds": None if row.cpu_seconds is None else round(row.cpu_seconds, 3),
            "cpu_seconds_per_100k": None if per_100k is None else round(per_100k, 3)}


if __name__ == "__main__":
    sys.exit(main())
