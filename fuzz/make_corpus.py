"""Seed inputs for fuzz/fuzz_decoder.py: real records and real message streams.

From random bytes alone libFuzzer rarely builds a record whose length words agree with
each other, so it stays in the header checks and never reaches the layouts (a few hundred
coverage edges). Seeding it with what the emulator sends — every record type and block
version it renders, and whole bundles — starts it inside every layout, and its mutations
then probe the nested blocks, lists and strings of each.

    python fuzz/make_corpus.py fuzz/corpus     # ./run fuzz-atheris does this when empty

The first byte of each seed picks the harness's entry point (odd: one record,
`decode_record`; even: a message stream, `StreamDecoder`)."""

import hashlib
import sys
from pathlib import Path

from estreamer.emulator.history import History
from estreamer.protocol.messages import encode_bundle

RECORD, STREAM = b"\x01", b"\x00"


def seeds(size: int = 400) -> list[bytes]:
    history = History(seed=1, size=size, rate=0)
    out: dict[bytes, None] = {}  # ordered and de-duplicated
    by_kind: dict[tuple[int, bool], int] = {}
    records = [(r, False) for r in history.metadata] + [(r, True) for r in history.events]
    for record, archive in records:
        raw = history.render(record, None, archive)
        # A few of each record type is enough for coverage; the corpus stays small.
        key = (record.record_type, archive)
        if by_kind.get(key, 0) >= 3:
            continue
        by_kind[key] = by_kind.get(key, 0) + 1
        out[RECORD + raw] = None
    # Bundles of consecutive records, as the FMC streams them.
    rendered = [history.render(r, None, a) for r, a in records]
    for start in range(0, min(len(rendered), 200), 10):
        out[STREAM + encode_bundle(1, start // 10 + 1, rendered[start:start + 10])] = None
    return list(out)


def main(directory: str) -> None:
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    made = 0
    for seed in seeds():
        name = hashlib.sha1(seed).hexdigest()  # libFuzzer's own naming
        path = target / name
        if not path.exists():
            path.write_bytes(seed)
            made += 1
    print(f"{made} seeds written to {target}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fuzz/corpus")
