"""decode → filter → format → outputs, with end-to-end acknowledgement.

The bookmark only moves past records that every output has durably accepted: records go
to the outputs as they arrive, and at each commit the outputs are flushed durably first and
the bookmark saved second. A crash between commits loses nothing (the FMC resends from the
saved bookmark); the last second's digests make the resent duplicates drop out."""

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from estreamer.client.bookmark import Bookmark
from estreamer.config import RecordFilter
from estreamer.outputs.base import Output
from estreamer.protocol.records import Record

log = logging.getLogger("Pipeline")

# eNcore's handler.records switches, by our record categories. Everything else is "core".
CATEGORY_SWITCHES = {
    "connection": "connections",
    "intrusion": "intrusion",
    "packet": "packets",
    "metadata": "metadata",
    "discovery": "rna",
    "user": "rua",
}


class RecordSelector:
    """Which records are written (eNcore's `handler.records`: `exclude` beats `include`,
    which beats the family switches). Unselected records still move the bookmark: they were
    received and deliberately not written."""

    def __init__(self, spec: RecordFilter | None = None):
        spec = spec or RecordFilter()
        self.include = frozenset(spec.include)
        self.exclude = frozenset(spec.exclude)
        self.switches = {
            name: getattr(spec, name)
            for name in ("connections", "core", "intrusion", "metadata", "packets", "rna", "rua")
        }

    def wants(self, record: Record) -> bool:
        if record.record_type in self.exclude:
            return False
        if record.record_type in self.include:
            return True
        return self.switches[CATEGORY_SWITCHES.get(record.category, "core")]


@dataclass
class PipelineStats:
    received: int = 0
    written: int = 0
    duplicates: int = 0
    filtered: int = 0
    malformed: int = 0


class Pipeline:
    def __init__(
        self,
        outputs: Iterable[Output],
        formatter: Callable[[dict[str, Any]], bytes],
        bookmark: Bookmark,
        selector: RecordSelector | None = None,
        commit_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.outputs = list(outputs)
        self.formatter = formatter
        self.bookmark = bookmark
        self.selector = selector or RecordSelector()
        self.commit_interval = commit_interval
        self.clock = clock
        self.stats = PipelineStats()
        self._pending: list[bytes] = []
        self._last_commit = clock()

    def handle(self, record: Record) -> bool:
        """Take one record; True if it goes to the outputs (not a duplicate, not filtered)."""
        stats = self.stats
        stats.received += 1
        digest = record.digest
        if digest is not None and self.bookmark.is_duplicate(record.archive_timestamp, digest):
            stats.duplicates += 1
            return False
        if record.error is not None:
            stats.malformed += 1
        wanted = self.selector.wants(record)
        if wanted:
            self._pending.append(self.formatter(record.to_dict()))
            stats.written += 1
        else:
            stats.filtered += 1
        if record.archive_timestamp is not None:
            self.bookmark.advance(record.archive_timestamp, digest)
        return wanted

    def flush_batch(self) -> None:
        """Hand the formatted lines to every output (not yet durable)."""
        if self._pending:
            lines = self._pending
            self._pending = []
            for output in self.outputs:
                output.write(lines)

    def maybe_commit(self) -> None:
        self.flush_batch()
        if self.clock() - self._last_commit >= self.commit_interval:
            self.commit()

    def commit(self) -> None:
        """Outputs durable first, then the bookmark: never the other way round."""
        self.flush_batch()
        for output in self.outputs:
            output.flush(durable=True)
        self.bookmark.save()
        self._last_commit = self.clock()

    def close(self) -> None:
        try:
            self.commit()
        finally:
            for output in self.outputs:
                output.close()
