"""decode → filter → decorate → format → outputs, with end-to-end acknowledgement.

Each output (a `Sink`) has its own format, as eNcore's `outputters` list allows; a record is
decorated once and formatted once per distinct format.

The bookmark only moves past records that every output has durably accepted: records go
to the outputs as they arrive, and at each commit the outputs are flushed durably first and
the bookmark saved second. A crash between commits loses nothing (the FMC resends from the
saved bookmark); the last second's digests make the resent duplicates drop out."""

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from estreamer.client.bookmark import Bookmark
from estreamer.config import RecordFilter
from estreamer.errors import OutputError
from estreamer.outputs.base import KeyedOutput, Output
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


@dataclass(frozen=True)
class Sink:
    """One enabled outputter: where lines go and how records become lines."""

    output: Output
    format_name: str
    formatter: Callable[[dict[str, Any]], bytes]


Decorator = Callable[[Record, dict[str, Any]], dict[str, Any]]
"""Takes a record and its plain dict; returns the dict to format (names added next to ids)."""


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
        sinks: Iterable[Sink],
        bookmark: Bookmark,
        selector: RecordSelector | None = None,
        decorate: Decorator | None = None,
        commit_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        before_bookmark: Iterable[Callable[[], None]] = (),
        observe: Callable[[Record], None] | None = None,
    ):
        self.sinks = list(sinks)
        self.outputs = [sink.output for sink in self.sinks]
        self.bookmark = bookmark
        self.selector = selector or RecordSelector()
        self.decorate = decorate
        self.commit_interval = commit_interval
        self.clock = clock
        # State derived from the records (the metadata cache) that must be durable before
        # the bookmark passes the records it came from.
        self.before_bookmark = list(before_bookmark)
        # Sees every new record, written or filtered out: the metadata cache must learn
        # names even when the user does not write metadata records.
        self.observe = observe
        self.stats = PipelineStats()
        # Sinks that share a format share one formatted line per record.
        self._formats: dict[str, Callable[[dict[str, Any]], bytes]] = {
            sink.format_name: sink.formatter for sink in self.sinks
        }
        self._pending: dict[str, list[bytes]] = {name: [] for name in self._formats}
        # Outputs that key their messages by event fields (Kafka), and their pending keys.
        self._keyed: dict[int, KeyedOutput] = {
            i: sink.output for i, sink in enumerate(self.sinks)
            if isinstance(sink.output, KeyedOutput)}
        self._keys: dict[int, list[bytes | None]] = {i: [] for i in self._keyed}
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
        if self.observe is not None:
            self.observe(record)
        wanted = self.selector.wants(record)
        if wanted:
            event = record.to_dict()
            if self.decorate is not None:
                event = self.decorate(record, event)
            for name, formatter in self._formats.items():
                self._pending[name].append(formatter(event))
            for i, output in self._keyed.items():
                self._keys[i].append(output.key_of(event))
            stats.written += 1
        else:
            stats.filtered += 1
        if record.archive_timestamp is not None:
            self.bookmark.advance(record.archive_timestamp, digest)
        return wanted

    def flush_batch(self) -> None:
        """Hand the formatted lines to every output (not yet durable)."""
        pending = self._pending
        if not any(pending.values()):
            return
        for i, sink in enumerate(self.sinks):
            lines = pending[sink.format_name]
            if not lines:
                continue
            with _blame(sink.output, "write to"):
                if i in self._keyed:
                    keys, self._keys[i] = self._keys[i], []
                    self._keyed[i].write_keyed(lines, keys)
                else:
                    sink.output.write(lines)
        for name in pending:
            pending[name] = []

    def maybe_commit(self) -> None:
        self.flush_batch()
        if self.clock() - self._last_commit >= self.commit_interval:
            self.commit()

    def commit(self) -> None:
        """Outputs durable first, then the bookmark: never the other way round."""
        self.flush_batch()
        for output in self.outputs:
            with _blame(output, "flush"):
                output.flush(durable=True)
        for save in self.before_bookmark:
            save()
        self.bookmark.save()
        self._last_commit = self.clock()

    def close(self) -> None:
        try:
            self.commit()
        finally:
            for output in self.outputs:
                output.close()


@contextlib.contextmanager
def _blame(output: Output, action: str) -> Iterator[None]:
    """Turn an output's failure into an OutputError that names the output, so the runner
    reports a full disk or a dead collector as such, not as a connection problem."""
    try:
        yield
    except OutputError:
        raise
    except Exception as exc:
        raise OutputError(f"could not {action} output {_describe(output)}: {exc}") from exc


def _describe(output: Output) -> str:
    for attribute in ("uri", "path", "name"):
        value = getattr(output, attribute, None)
        if value:
            return str(value)
    return type(output).__name__
