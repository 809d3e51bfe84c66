"""Instructions per record of the per-record work, counted by valgrind's callgrind: the same
number for the same code and input whatever else the machine is doing, where timings on a
shared virtual machine vary by a third from one run to the next. For comparing commits.

    ./run instructions [--events N] [--stages S,..] [--against CHECKOUT] [--json]

Stages, each over the benchmark mix (`benchmarks/streams.server_stream`), cumulative:
- decode:  decode_record of each record's bytes
- names:   decode, then the event with names from metadata (the pipeline's decorate step)
- json, splunk, cef, ecs: decode, names, then the line in that format

Each stage is counted as the difference between a run that does the work twice over every
record and one that does it not at all, so imports, table compiling, the first-sight plans
and valgrind's own start are left out. `--against` counts another checkout (its own .venv,
made by its ./run) in the same way, side by side: the previous main, say."""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("decode", "names", "json", "splunk", "cef", "ecs")
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


def count(checkout: Path, stream: Path, stage: str, rounds: int) -> tuple[int, int]:
    """(instructions, records) of one child run under callgrind."""
    python = checkout / ".venv" / "bin" / "python"
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", str(python),
         str(Path(__file__).resolve()), "--child", str(stream), stage, str(rounds)],
        cwd=checkout, capture_output=True, text=True, timeout=1800,
        env={**os.environ, "PYTHONHASHSEED": "0"})  # same dict layouts run to run
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{stage} in {checkout}: {done.stderr.strip()[-1500:]}")
    return int(found.group(1).replace(",", "")), int(done.stdout.split()[-1])


def per_record(checkout: Path, stream: Path, stage: str) -> float:
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        idle, busy = pool.map(lambda n: count(checkout, stream, stage, n), (0, ROUNDS))
    return (busy[0] - idle[0]) / (ROUNDS * busy[1])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(Path(argv[1]), argv[2], int(argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000,
                        help="logical events in the stream (default 2000: ~3,000 records)")
    parser.add_argument("--stages", default=",".join(STAGES),
                        help=f"comma-separated, of {', '.join(STAGES)} (default: all)")
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
    with tempfile.TemporaryDirectory() as tmp:
        stream = Path(tmp) / "stream.bin"
        data, records = server_stream(args.events)
        stream.write_bytes(data)
        print(f"stream: {args.events} events -> {records} records; instructions per record")
        print(f"{'stage':<10}" + "".join(f"{name:>14}" for name, _ in checkouts)
              + ("      change" if len(checkouts) > 1 else ""))
        for stage in stages:
            row = {name: per_record(path, stream, stage) for name, path in checkouts}
            results[stage] = row
            line = f"{stage:<10}" + "".join(f"{row[name]:>14,.0f}" for name, _ in checkouts)
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
