"""Memory under sustained load: the real client streams live events from the emulator (in
its own process) for a while; the client's RSS is sampled and its growth reported.

    ./run estreamer …  (not needed)     python benchmarks/sustained.py --seconds 600 --rate 5000

The issue's bar: flat memory over a 10-minute run, beyond the metadata cache."""

import argparse
import json
import logging
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.streams import emulator_process


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=3000, help="live events/sec sent")
    parser.add_argument("--sample", type=float, default=5, help="seconds between samples")
    args = parser.parse_args(argv)

    from estreamer.config import Secret
    from estreamer.job import build_runner

    # Small rotated files that are let go: the output must not be what grows.
    with tempfile.TemporaryDirectory() as tmp, emulator_process(
        Path(tmp), rate=args.rate, history=100, max_logs=50_000
    ) as (settings, password):
        logging.disable(logging.INFO)
        stop = threading.Event()
        runner = build_runner(settings, Secret(password), stop=stop, max_retries=0)
        samples: list[tuple[float, float, int]] = []
        started = time.monotonic()

        def sample() -> None:
            while not stop.wait(args.sample):
                samples.append((time.monotonic() - started, rss_mib(),
                                runner.pipeline.stats.received))
                if time.monotonic() - started >= args.seconds:
                    stop.set()

        threading.Thread(target=sample, daemon=True).start()
        runner.run()
    print(f"{'t (s)':>8}{'RSS MiB':>10}{'records':>12}")
    for t, rss, count in samples:
        print(f"{t:>8.0f}{rss:>10.1f}{count:>12,}")
    warm = [s for s in samples if s[0] >= min(30.0, args.seconds / 3)] or samples
    growth = warm[-1][1] - warm[0][1] if len(warm) > 1 else 0.0
    rate = samples[-1][2] / samples[-1][0] if samples else 0.0
    print(json.dumps({"seconds": args.seconds, "records": samples[-1][2] if samples else 0,
                      "records_per_sec": round(rate), "rss_growth_mib_after_warmup":
                      round(growth, 1), "rss_max_mib": round(max(s[1] for s in samples), 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
