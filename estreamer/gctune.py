"""The garbage collector's pace for a process that streams records.

CPython runs a young-generation collection every 700 new container objects. A stream makes
several per record (the Record, its field dicts), and the records of one socket read are all
alive while it is decoded, so at that pace every record is scanned, promoted, and scanned
again by the older generations: about a sixth of the decode time on connection records.
Decoded records hold no reference cycles, so collecting less often frees nothing later; what
is imported at start (modules, layout tables) is frozen out of every collection."""

import gc

YOUNG_THRESHOLD = 20_000  # new container objects between young collections (CPython: 700)


def tune_for_streaming() -> None:
    """For the commands that stream (`run`, `demo`, `decode`) and the benchmarks that
    measure them; the library itself leaves the process's collector alone."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
    gc.freeze()
