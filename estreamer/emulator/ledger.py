"""An append-only account of exactly what the emulator sent, record by record.

A test compares it with what its client received (by `record_digest`, which covers the
record header and so the archive timestamp) to prove that nothing was lost or duplicated.
Entries are added only after the bytes went out in full: a bundle cut short by a fault or
by the client leaving is not in it."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SentRecord:
    """One record of a bundle as the session built it."""

    record_type: int
    archive_timestamp: int | None
    digest: str
    injected: bool = False  # added by a fault, not part of the history


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    session_id: int
    sequence: int  # bundle sequence number
    record_type: int
    archive_timestamp: int | None
    digest: str
    injected: bool = False


class Ledger:
    """Thread-safe; each session thread appends its own bundles."""

    def __init__(self) -> None:
        self._entries: list[LedgerEntry] = []
        self._lock = threading.Lock()

    def append(self, session_id: int, sequence: int, records: Iterable[SentRecord]) -> None:
        rows = [LedgerEntry(session_id, sequence, r.record_type, r.archive_timestamp, r.digest,
                            r.injected) for r in records]
        with self._lock:
            self._entries.extend(rows)

    def entries(self, session_id: int | None = None) -> list[LedgerEntry]:
        with self._lock:
            rows = list(self._entries)
        return rows if session_id is None else [e for e in rows if e.session_id == session_id]

    def digests(self, session_id: int | None = None, *, injected: bool = True) -> list[str]:
        """Digests in send order; `injected=False` leaves out records added by faults."""
        return [e.digest for e in self.entries(session_id) if injected or not e.injected]

    def sessions(self) -> list[int]:
        return sorted({e.session_id for e in self.entries()})

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
