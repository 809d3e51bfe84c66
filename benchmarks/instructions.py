"""Instructions per record of the per-record work, counted by valgrind's callgrind: the same
number for the same code and input whatever else the machine is doing, where timings on a
shared virtual machine vary by a third from one run to the next. For comparing commits.

    ./run instructions [--events N] [--stages S,..] [--against CHECKOUT] [--json]

Stages, each over the benchmark mix (`benchmarks/streams.server_stream`), cumulative:
- decode:  decode_record of each record's bytes
- names:   decode, then the event with names from metadata (the pipeline's decorate step)
- json, splunk, cef, ecs: decode, names, then the line in that format
  (garbage collection paced as `estreamer run` paces it, estreamer/gctune.py)
- end-to-end:FORMAT: the whole client (benchmarks/client_run.py: TLS, framing, the runner,
  de-duplication, the bookmark, the pipeline, the file output) streaming a warm emulator's
  history into a file, one process

Each in-memory stage is counted as the difference between a run that does the work twice
over every record and one that does it not at all; each end-to-end stage as the difference
between streaming a history of 2N events and one of N. So imports, table compiling, the
first-sight plans and valgrind's own start are left out. End to end, the client's threads
and the moments its reads return vary a little from run to run (about ±3%); the in-memory
counts are exact. `--against` counts another checkout (its own .venv, made by its ./run) in
the same way, side by side: the previous main, say."""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORMATS = ("json", "splunk", "cef", "ecs")
STAGES = ("decode", "names", *FORMATS, *(f"end-to-end:{name}" for name in FORMATS))
DEFAULT_STAGES = ("decode", "names", *FORMATS, "end-to-end:json", "end-to-end:splunk")
ROUNDS = 2
CHUNK = 1 << 14


def child(stream: Path, stage: str, rounds: int) -> None:
    """The measured work (run under callgrind, from the checkout being counted)."""
    sys.path.insert(0, os.getcwd())
    from estreamer.client.protocol import ClientSession
    from estreamer.decorate import Decorator
    from estreamer.formats import get_formatter
    from estreamer.metadata import MetadataCache
    from estreamer.protocol.flags import ENCORE_DEFAULT_FLAGS, LATEST_EVENTS
    from estreamer.protocol.records import Record, decode_record

    try:  # garbage collection paced as `estreamer run` paces it, where the checkout does
        from estreamer.gctune import tune_for_streaming
    except ImportError:
        pass
    else:
        tune_for_streaming()
    data = stream.read_bytes()
    session = ClientSession(0, ENCORE_DEFAULT_FLAGS, LATEST_EVENTS)
    session.start()
    records = [event for pos in range(0, len(data), CHUNK)
               for event in session.receive(data[pos : pos + CHUNK]) if type(event) is Record]
    decorate = Decorator(MetadataCache())
    for record in records:
        decorate.learn(record)
    format_line = get_formatter(stage) if stage not in ("decode", "names") else None
    raws = [(record.raw, record.offset) for record in records]
    take = getattr(Record, "take_event", Record.to_dict)  # older checkouts copy

    def once() -> None:
        for raw, offset in raws:
            record = decode_record(raw, offset)
            if stage == "decode":
                continue
            event = decorate(record, take(record))
            if format_line is not None:
                format_line(event)

    once()  # plans and programs are made at first sight: not what is counted
    for _ in range(rounds):
        once()
    print(len(raws))


def instructions(checkout: Path, what: str, args: list[str],
                 env: dict[str, str] | None = None) -> tuple[int, str]:
    """(instructions, standard output) of one Python run of `checkout`'s under callgrind."""
    python = checkout / ".venv" / "bin" / "python"
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", str(python),
         *args], cwd=checkout, capture_output=True, text=True, timeout=1800,
        env={**os.environ, **(env or {}), "PYTHONHASHSEED": "0"})  # same dicts run to run
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{what} in {checkout}: {done.stderr.strip()[-1500:]}")
    return int(found.group(1).replace(",", "")), done.stdout


def per_record(checkout: Path, stream: Path, stage: str) -> float:
    def run(rounds: int) -> tuple[int, int]:
        count, out = instructions(checkout, stage, [str(Path(__file__).resolve()), "--child",
                                                    str(stream), stage, str(rounds)])
        return count, int(out.split()[-1])

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        idle, busy = pool.map(run, (0, ROUNDS))
    return (busy[0] - idle[0]) / (ROUNDS * busy[1])


class Emulators:
    """Two warm emulators (histories of N and 2N events), for the end-to-end stages: the
    benchmark's own `Fmcs`, one each."""

    def __init__(self, stack: contextlib.ExitStack, events: int):
        from benchmarks.run_all import Fmcs

        self.fmcs = [Fmcs(stack, 1, n) for n in (events, 2 * events)]
        for fmcs in self.fmcs:
            fmcs.warm(1)  # its whole history sent once: clients read from its render cache

    def per_record(self, checkout: Path, adapter: str) -> float:
        from benchmarks.streams import client_config
        from estreamer.config import PASSWORD_ENV

        def run(fmcs) -> tuple[int, int]:
            records = fmcs.records[0]
            config = client_config(Path(tempfile.mkdtemp(dir=fmcs.workdir)),
                                   [fmcs.emulators[0].port], fmcs.certs.client_pkcs12,
                                   adapter=adapter, workers=1,
                                   uri=f"relfile:///out/encore.{{0}}.{adapter}")
            count, out = instructions(
                checkout, f"end-to-end:{adapter}",
                ["-m", "benchmarks.client_run", str(config), str(records)],
                env={PASSWORD_ENV: fmcs.certs.password})
            if json.loads(out.splitlines()[-1])["records"] != records:
                raise RuntimeError(f"end-to-end:{adapter} in {checkout}: records missing")
            return count, records

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            small, large = pool.map(run, self.fmcs)
        return (large[0] - small[0]) / (large[1] - small[1])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(Path(argv[1]), argv[2], int(argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000,
                        help="logical events in the stream (default 2000: ~3,000 records)")
    parser.add_argument("--stages", default=",".join(DEFAULT_STAGES),
                        help=f"comma-separated, of {', '.join(STAGES)} "
                             f"(default: {', '.join(DEFAULT_STAGES)})")
    parser.add_argument("--live-events", type=int, default=1500,
                        help="end-to-end: N, the smaller of the two histories (default 1500)")
    parser.add_argument("--against", type=Path, default=None,
                        help="another checkout with its own .venv, counted beside this one")
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    args = parser.parse_args(argv)
    stages = [s for s in args.stages.split(",") if s]
    if not stages or any(s not in STAGES for s in stages):
        parser.error(f"--stages takes a comma-separated list of {', '.join(STAGES)}")
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: it counts the instructions", file=sys.stderr)
        return 2
    checkouts = [("this", ROOT)]
    if args.against is not None:
        if not (args.against / ".venv" / "bin" / "python").exists():
            parser.error(f"{args.against} has no .venv: run its ./run setup first")
        checkouts.append(("against", args.against.resolve()))
    from benchmarks.streams import server_stream

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        emulators = None
        stream = Path(tmp) / "stream.bin"
        data, records = server_stream(args.events)
        stream.write_bytes(data)
        print(f"stream: {args.events} events -> {records} records; instructions per record")
        print(f"{'stage':<20}" + "".join(f"{name:>14}" for name, _ in checkouts)
              + ("      change" if len(checkouts) > 1 else ""))
        for stage in stages:
            if stage.startswith("end-to-end:"):
                emulators = emulators or Emulators(stack, args.live_events)
                row = {name: emulators.per_record(path, stage.partition(":")[2])
                       for name, path in checkouts}
            else:
                row = {name: per_record(path, stream, stage) for name, path in checkouts}
            results[stage] = row
            line = f"{stage:<20}" + "".join(f"{row[name]:>14,.0f}" for name, _ in checkouts)
            if len(checkouts) > 1 and row["against"]:
                line += f"{(row['this'] / row['against'] - 1) * 100:>+11.1f}%"
            print(line, flush=True)
    if args.json:
        print(json.dumps({"events": args.events, "records": records,
                          "instructions_per_record": results}))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
