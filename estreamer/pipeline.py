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
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
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
    name: str = ""  # the URI as configured, for the metrics (default: the output's own)


Decorator = Callable[[Record, dict[str, Any]], dict[str, Any]]
"""Takes a record and its plain dict; returns the dict to format (names added next to ids)."""


@dataclass
class PipelineStats:
    received: int = 0
    written: int = 0
    duplicates: int = 0
    filtered: int = 0
    malformed: int = 0
    # malformed records by (record type, decode_error_kind), for the metrics endpoint
    decode_errors: Counter[tuple[int, str]] = field(default_factory=Counter)


def decode_error_kind(error: str) -> str:
    """A record's decode error as one of a few kinds a dashboard can group by: `short`
    (not even a record header), `length` (its length word disagrees with its container),
    `layout` (the bytes do not fit the record's layout)."""
    if "shorter than its 8-byte header" in error:
        return "short"
    if "does not match its" in error:
        return "length"
    return "layout"


@dataclass(frozen=True)
class OutputState:
    """One output as the monitor sees it: lines accepted and not yet durable (in the
    pipeline's batch plus what the output says it holds), and failed writes or flushes."""

    name: str
    queued: int
    failures: int


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
        self.output_failures = [0] * len(self.sinks)  # failed writes/flushes, by sink

    def handle(self, record: Record) -> bool:
        """Take one record; True if it goes to the outputs (not a duplicate, not filtered)."""
        stats = self.stats
        stats.received += 1
        second = record.archive_timestamp
        raw = record.raw
        # By the wire bytes where the record has them: its digest is only taken if needed.
        if second is not None and self.bookmark.is_duplicate(
                second, None if raw is not None else record.digest, raw):
            stats.duplicates += 1
            return False
        if record.error is not None:
            stats.malformed += 1
            stats.decode_errors[(record.record_type, decode_error_kind(record.error))] += 1
        if self.observe is not None:
            self.observe(record)
        wanted = self.selector.wants(record)
        if wanted:
            event = record.take_event()  # this is the event's last use: no copy
            if self.decorate is not None:
                event = self.decorate(record, event)
            for name, formatter in self._formats.items():
                self._pending[name].append(formatter(event))
            for i, output in self._keyed.items():
                self._keys[i].append(output.key_of(event))
            stats.written += 1
        else:
            stats.filtered += 1
        if second is not None:
            if raw is not None:
                self.bookmark.advance(second, raw=raw)
            else:
                self.bookmark.advance(second, record.digest)
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
            with _blame(sink.output, "write to", self.output_failures, i):
                if i in self._keyed:
                    keys, self._keys[i] = self._keys[i], []
                    self._keyed[i].write_keyed(lines, keys)
                else:
                    sink.output.write(lines)
        for name in pending:
            pending[name] = []

    def take_lines(self, format_name: str, lines: list[bytes]) -> None:
        """Lines formatted elsewhere (estreamer.parallel's workers), written with the next
        batch as if `handle` had made them."""
        self._pending[format_name] += lines

    def maybe_commit(self) -> None:
        self.flush_batch()
        if self.clock() - self._last_commit >= self.commit_interval:
            self.commit()

    def commit(self) -> None:
        """Outputs durable first, then the bookmark: never the other way round."""
        self.flush_batch()
        for i, output in enumerate(self.outputs):
            with _blame(output, "flush", self.output_failures, i):
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


    def output_states(self) -> list[OutputState]:
        """Each output's queue depth and failures, for the monitor and the metrics."""
        states = []
        seen: Counter[str] = Counter()
        for i, sink in enumerate(self.sinks):
            held = getattr(sink.output, "queued", None)  # optional: see outputs/base.py
            queued = len(self._pending[sink.format_name]) + (held() if held else 0)
            name = output_label(sink.name or sink.output)
            seen[name] += 1
            if seen[name] > 1:  # two outputs to one place (two formats): keep them apart
                name = f"{name} #{seen[name]}"
            states.append(OutputState(name, queued, self.output_failures[i]))
        return states


@contextlib.contextmanager
def _blame(output: Output, action: str, failures: list[int] | None = None,
           index: int = 0) -> Iterator[None]:
    """Turn an output's failure into an OutputError that names the output, so the runner
    reports a full disk or a dead collector as such, not as a connection problem; counted
    in `failures[index]` for the metrics."""
    try:
        yield
    except Exception as exc:
        if failures is not None:
            failures[index] += 1
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"could not {action} output {_describe(output)}: {exc}") from exc


def output_label(output: Output | str) -> str:
    """An output's name for the metrics: its URI or path without a user:password@ part or
    a query, which could hold a credential."""
    text = output if isinstance(output, str) else _describe(output)
    scheme, sep, rest = text.partition("://")
    if sep:
        authority, slash, path = rest.partition("/")
        text = f"{scheme}://{authority.rpartition('@')[2]}{slash}{path.partition('?')[0]}"
    return text


def _describe(output: Output) -> str:
    for attribute in ("uri", "path", "name"):
        value = getattr(output, attribute, None)
        if value:
            return str(value)
    return type(output).__name__
