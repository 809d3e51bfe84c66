"""An append-only account of exactly what the emulator sent, record by record.

A test compares it with what its client received (by `record_digest`, which covers the
record header and so the archive timestamp) to prove that nothing was lost or duplicated.
Entries are added only after the bytes went out in full: a bundle cut short by a fault or
by the client leaving is not in it."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from estreamer.protocol.records import record_digest


@dataclass(frozen=True, slots=True)
class SentRecord:
    """One record of a bundle as the session built it."""

    record_type: int
    archive_timestamp: int | None
    digest: str
    injected: bool = False  # added by a fault, not part of the history

    @classmethod
    def of(cls, raw: bytes, injected: bool = False) -> SentRecord:
        """What the ledger keeps of one record's wire bytes (header + data)."""
        record_type = int.from_bytes(raw[:4], "big") & 0xFFFF
        length = int.from_bytes(raw[4:8], "big")
        archive = int.from_bytes(raw[8:12], "big") if len(raw) == length + 16 else None
        return cls(record_type, archive, record_digest(raw), injected)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    session_id: int
    sequence: int  # bundle sequence number
    record_type: int
    archive_timestamp: int | None
    digest: str
    injected: bool = False


class Ledger:
    """Thread-safe; each session thread appends its own bundles.

    Kept as one row per bundle holding the session's `SentRecord`s, which the history's
    render cache shares between sessions, and expanded to `LedgerEntry` rows only when
    read: a fast stream pays one list append per bundle, and a long-running emulator holds
    a pointer per record sent, not an entry object."""

    def __init__(self) -> None:
        self._bundles: list[tuple[int, int, tuple[SentRecord, ...]]] = []
        self._count = 0
        self._lock = threading.Lock()

    def append(self, session_id: int, sequence: int, records: Iterable[SentRecord]) -> None:
        records = tuple(records)
        with self._lock:
            self._bundles.append((session_id, sequence, records))
            self._count += len(records)

    def entries(self, session_id: int | None = None) -> list[LedgerEntry]:
        with self._lock:
            bundles = list(self._bundles)
        return [LedgerEntry(session, sequence, r.record_type, r.archive_timestamp, r.digest,
                            r.injected)
                for session, sequence, records in bundles
                if session_id is None or session == session_id
                for r in records]

    def digests(self, session_id: int | None = None, *, injected: bool = True) -> list[str]:
        """Digests in send order; `injected=False` leaves out records added by faults."""
        return [e.digest for e in self.entries(session_id) if injected or not e.injected]

    def sessions(self) -> list[int]:
        with self._lock:
            return sorted({session for session, _, records in self._bundles if records})

    def __len__(self) -> int:
        with self._lock:
            return self._count
