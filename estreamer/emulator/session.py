"""The FMC side of one eStreamer session, as a sans-IO state machine (fact sheet §1, §3–§6).

The server feeds the client's bytes to `receive()` and sends what it returns (the 2051, or an
Error before it closes); it then pulls bundles with `next_bundle()` while `streaming`, and
sends a Null keepalive (`keepalive()`) when there is nothing to pull. No socket, no clock:
the tests drive it with bytes from `estreamer.protocol.messages`.

    AWAIT_REQUEST ──Event Stream Request──► STREAMING             (bit 30 clear)
          │ bit 30 set: send 2051
          ▼
    AWAIT_STREAMING_REQUEST ──2049──► STREAMING
    any state ──garbage / unexpected message──► send Error, CLOSED

What it honours: the initial timestamp (0 from the oldest, 0xFFFFFFFF only events appended
after the stream starts, t events with archive timestamp ≥ t; metadata, when requested,
always comes first, since clients need the names), the request flags (packets only with
bit 0, extra data only with bit 27, metadata only with a metadata flag, archive timestamps
with bit 23 — 16-byte headers on event records only, §6.2), and the highest version the 2049
asks for per family (`history.BLOCK_VERSIONS`)."""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from estreamer.emulator.faults import CUTS, HEADER_CUT, Fault, injected_record
from estreamer.emulator.history import (
    RIDES_WITH,
    History,
    HistoryRecord,
    block_for,
    family_available,
)
from estreamer.emulator.hosts import UnsupportedHostRequest, host_answer
from estreamer.emulator.ledger import SentRecord
from estreamer.errors import ProtocolError
from estreamer.protocol.flags import (
    ESTREAMER_SERVICE_ID,
    TIMESTAMP_NOW,
    EventCode,
    RequestFlags,
)
from estreamer.protocol.framing import Framer
from estreamer.protocol.messages import (
    MESSAGE_NAMES,
    ErrorMessage,
    EventStreamRequest,
    HostDataRequest,
    Null,
    StreamingRequest,
    encode_bundle,
    encode_error,
    encode_null,
    encode_streaming_information,
    parse_frame,
)

log = logging.getLogger("Emulator")

SERVICES = (5001, 5000, ESTREAMER_SERVICE_ID)
"""What the 2051 advertises, in CAP's order (6667 last, §4.1)."""

MAX_CLIENT_MESSAGE = 64 * 1024
"""Clients send only small messages; a longer length word means garbage, not a message."""

# UNCERTAIN (fact sheet §2.2, §12): the FMC's error codes for a bad request are unknown.
ERROR_BAD_MESSAGE = 1
ERROR_UNSUPPORTED = 2

METADATA_FLAGS = (RequestFlags.METADATA_V1 | RequestFlags.METADATA_V2
                  | RequestFlags.METADATA_V3 | RequestFlags.METADATA)
INTRUSION_FLAGS = RequestFlags.INTRUSION_V1 | RequestFlags.INTRUSION
CONNECTION_FLAGS = (RequestFlags.CONNECTION_V1 | RequestFlags.CONNECTION_V3
                    | RequestFlags.CONNECTION_V4 | RequestFlags.CONNECTION_V5)
DISCOVERY_FLAGS = (RequestFlags.DISCOVERY_V1 | RequestFlags.DISCOVERY_V2
                   | RequestFlags.DISCOVERY_V3 | RequestFlags.DISCOVERY_V4
                   | RequestFlags.DISCOVERY_V5 | RequestFlags.DISCOVERY_V6
                   | RequestFlags.DISCOVERY_V7)
CORRELATION_FLAGS = (RequestFlags.CORRELATION_V1 | RequestFlags.CORRELATION_V2
                     | RequestFlags.CORRELATION_V3 | RequestFlags.CORRELATION_V4
                     | RequestFlags.CORRELATION_V5 | RequestFlags.CORRELATION)

_FAMILY_FLAGS = (
    (INTRUSION_FLAGS, "intrusion"),
    (CONNECTION_FLAGS, "connection"),
    (DISCOVERY_FLAGS, "discovery"),
    (RequestFlags.USER, "user"),
    (CORRELATION_FLAGS, "correlation"),
    (RequestFlags.IMPACT_ALERTS, "impact"),  # bit 5: record 9 (§3.2)
)

_FAMILY_CODES = {
    EventCode.INTRUSION: "intrusion",
    EventCode.CONNECTION: "connection",
    EventCode.FILE: "file",
    EventCode.MALWARE: "malware",
    EventCode.DISCOVERY: "discovery",
    EventCode.USER: "user",
    EventCode.CORRELATION: "correlation",
    EventCode.IMPACT: "impact",
}


_UNWANTED = object()


class State(enum.Enum):
    AWAIT_REQUEST = "await request"
    AWAIT_STREAMING_REQUEST = "await streaming request"
    STREAMING = "streaming"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Selection:
    """What one request asked for, resolved against what the history can render."""

    metadata: bool = False
    # event family → block type (None: a family whose records have one block form)
    blocks: dict[str, int | None] = field(default_factory=dict)
    packets: bool = False
    extra_data: bool = False
    archive_timestamps: bool = False

    def block_of(self, record: HistoryRecord) -> tuple[bool, int | None]:
        """(wanted, block type to render it as)."""
        family = record.family
        if family == "metadata":
            return self.metadata, None
        if family == "packet":
            return self.packets, None
        if family == "extra_data":
            return self.extra_data, None
        return family in self.blocks, self.blocks.get(family)

    def plan(self) -> dict[str, int | None]:
        """Every wanted event family → the block type to render it as, `block_of` as one
        lookup (a family it leaves out is not wanted)."""
        plan = dict(self.blocks)
        if self.packets:
            plan["packet"] = None
        if self.extra_data:
            plan["extra_data"] = None
        return plan


def select(flags: int, events: Iterable[tuple[int, int]] = ()) -> Selection:
    """Resolve request flags plus a 2049's (version, event type) list. A family asked for
    both ways, or in several versions, is sent once, in the highest version (§1, SEED 003);
    a flag names no version and gets the family's oldest block."""
    flags = RequestFlags(flags)
    wanted: dict[str, int | None] = {}
    for mask, family in _FAMILY_FLAGS:
        if flags & mask:
            wanted[family] = None
    metadata = bool(flags & METADATA_FLAGS)
    for version, code in events:
        if code == EventCode.METADATA:
            metadata = True
        family = _FAMILY_CODES.get(code)  # type: ignore[call-overload]
        if family is not None:
            previous = wanted.get(family)
            wanted[family] = version if previous is None else max(previous, version)
    for rider, carrier in RIDES_WITH.items():
        if carrier in wanted:
            wanted[rider] = None
    blocks: dict[str, int | None] = {}
    for family, version in wanted.items():
        if family_available(family):
            blocks[family] = block_for(family, version)
    intrusion = "intrusion" in blocks
    return Selection(
        metadata=metadata,
        blocks=blocks,
        packets=intrusion and bool(flags & RequestFlags.PACKETS),
        extra_data=intrusion and bool(flags & RequestFlags.EXTRA_DATA),
        archive_timestamps=bool(flags & RequestFlags.ARCHIVE_TIMESTAMPS),
    )


@dataclass(frozen=True, slots=True)
class Outgoing:
    """Bytes for the server to send, and what they carried (for the ledger)."""

    data: bytes
    sequence: int | None = None  # bundle sequence; None for a lone message
    records: tuple[SentRecord, ...] = ()
    close_after: bool = False  # the server closes the connection once `data` is out
    complete: bool = True  # False: `data` is a deliberately cut bundle (a fault)
    cut_tls: bool = False  # after `data`, cut the connection inside a TLS record
    restart: float | None = None  # restart the whole emulator, down this many seconds


class ServerSession:
    """One client connection's protocol state. `session_number` counts connections to the
    emulator (1 = the first) and selects faults; `connection_id` is the bundles' first word,
    the session start second as CAP shows (§5)."""

    def __init__(
        self,
        history: History,
        *,
        connection_id: int,
        session_number: int = 1,
        bundle_records: int = 100,
        faults: Sequence[Fault] = (),
        peer: str = "127.0.0.1",
    ):
        if bundle_records < 1:
            raise ValueError("bundle_records must be at least 1")
        self.history = history
        self.connection_id = connection_id
        self.session_number = session_number
        self.bundle_records = bundle_records
        self.faults = tuple(f for f in faults if f.session in (None, session_number))
        self.peer = peer
        self.state = State.AWAIT_REQUEST
        self.selection = Selection()
        self.request: EventStreamRequest | None = None
        self.initial_timestamp = 0
        self.sequence = 0  # last bundle sequence handed out
        self.acks = 0  # Nulls received from the client
        self.close_reason: str | None = None
        self.silent = False  # a `silent` fault fired: send nothing more, not even keepalives
        self.send_rate: float | None = None  # bytes per second once a `slow` fault fired
        self._framer = Framer(MAX_CLIENT_MESSAGE)
        self._metadata_pos = 0
        self._event_pos = 0
        self._blocks: dict[str, int | None] = {}  # Selection.plan(): wanted family → block

    # -- input --------------------------------------------------------------------------------

    @property
    def streaming(self) -> bool:
        return self.state is State.STREAMING

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    def receive(self, data: bytes) -> bytes:
        """Take the client's bytes; return the bytes to send now. After it returns, check
        `closed`: the server then sends the returned bytes and closes."""
        out = bytearray()
        if self.closed:
            return b""
        try:
            self._framer.feed(data)
            while not self.closed and (frame := self._framer.next_frame()) is not None:
                out += self._handle(parse_frame(frame), len(frame.body))
        except ProtocolError as exc:
            out += self._refuse(ERROR_BAD_MESSAGE, f"Invalid message: {exc}")
        return bytes(out)

    def _handle(self, message: object, length: int) -> bytes:
        if isinstance(message, Null):
            # eNcore acknowledges every message with a Null, keepalives included (§11), and
            # its first Null follows the 2049 at once: accept them in any state.
            self.acks += 1
            return b""
        if isinstance(message, ErrorMessage):
            self._log(logging.ERROR, "sfestreamer",
                      f"Client sent error {message.code}: {message.text}")
            self._close(f"client error {message.code}: {message.text}")
            return b""
        if self.state is State.AWAIT_REQUEST and isinstance(message, EventStreamRequest):
            return self._on_request(message)
        if self.state is State.AWAIT_STREAMING_REQUEST and isinstance(message, StreamingRequest):
            return self._on_streaming_request(message, length)
        if isinstance(message, HostDataRequest):
            return self._on_host_request(message)
        kind = getattr(message, "message_type", None)
        name = type(message).__name__ if kind is None else MESSAGE_NAMES.get(kind, str(kind))
        return self._refuse(ERROR_BAD_MESSAGE,
                            f"Unexpected message {name} while in state {self.state.value}")

    def _on_request(self, request: EventStreamRequest) -> bytes:
        self.request = request
        self._log(logging.INFO, "sfestreamer", "Got EVENT_STREAM_REQUEST length 8")
        if self._fault(0, "error") is not None:
            return self._error_fault(0).data
        if request.flags & RequestFlags.EXTENDED:
            self.state = State.AWAIT_STREAMING_REQUEST
            reply = encode_streaming_information(SERVICES)
            self._log(logging.INFO, "sfestreamer",
                      f"Publishing service INFO total data size {len(reply) - 8}")
            for service in SERVICES:
                self._log(logging.INFO, "sfestreamer",
                          f"Publishing service id:{service} - length size 8")
            return reply
        self._start(request.initial_timestamp, request.flags, ())
        return b""

    def _on_host_request(self, request: HostDataRequest) -> bytes:
        # The guide makes an Event Stream Request mandatory first (G54 p2-24); the answer
        # itself is built in emulator/hosts.py.
        if self.request is None:
            return self._refuse(ERROR_BAD_MESSAGE,
                                "Host Data Request before an Event Stream Request")
        self._log(logging.INFO, "sfestreamer", f"Got HOST_REQUEST type {request.data_type} "
                  f"flags {request.flags} for {request.start} - {request.end}")
        try:
            return host_answer(list(self.history.events), request)
        except UnsupportedHostRequest as exc:
            return self._refuse(ERROR_UNSUPPORTED, str(exc))

    def _on_streaming_request(self, message: StreamingRequest, length: int) -> bytes:
        assert self.request is not None
        self._log(logging.INFO, "sfestreamer", f"Got UEC_STREAM_REQUEST length {length}")
        service = message.service(ESTREAMER_SERVICE_ID)
        if service is None:
            return self._refuse(ERROR_BAD_MESSAGE,
                                f"Streaming Request names no service {ESTREAMER_SERVICE_ID}")
        # The 2049's service copies the request's flags and timestamp (§4.1); a client that
        # leaves them 0 (the guide's short form) still means the original request.
        timestamp = service.initial_timestamp or self.request.initial_timestamp
        flags = RequestFlags(service.flags | self.request.flags)
        self._log(logging.INFO, "ConnectionHandler",
                  f"requested service [{service.service_id}] timestamp [{timestamp}]")
        for version, event_type in service.events:
            self._log(logging.INFO, "ConnectionHandler",
                      f"Got Event type {event_type}, version {version}")
        self._start(timestamp, flags, service.events)
        return b""

    def _start(self, timestamp: int, flags: RequestFlags,
               events: Sequence[tuple[int, int]]) -> None:
        self.selection = select(flags, events)
        self._blocks = self.selection.plan()
        self.initial_timestamp = timestamp
        self._log(logging.INFO, "sfestreamer",
                  f"EventStream Request (0x{int(flags):08x}): Since {timestamp} w/ "
                  f"{describe_request(flags, events)}")
        if timestamp == TIMESTAMP_NOW:
            self._event_pos = len(self.history.events)
        else:
            self._event_pos = self.history.first_event_at_or_after(timestamp)
        self.state = State.STREAMING

    # -- output -------------------------------------------------------------------------------

    def keepalive(self) -> bytes:
        """A Null keepalive, or nothing from a session gone silent by fault."""
        return b"" if self.silent else encode_null()

    def next_bundle(self) -> Outgoing | None:
        """The next bundle of up to `bundle_records` records, or None when nothing new is
        available (the server then waits, sending keepalives)."""
        if not self.streaming or self.silent:
            return None
        sequence = self.sequence + 1
        records = self._take(self.bundle_records)
        if not records:
            return None
        if self._fault(sequence, "error") is not None:
            # Fires only when there is data to replace; the records taken are never sent,
            # which is what a client sees from an FMC that fails mid-stream.
            return self._error_fault(sequence)
        if self._fault(sequence, "silent") is not None:
            # Like "error", the records taken are never sent; a reconnect asks for them again.
            self._log(logging.INFO, "sfestreamer", f"Fault: silent from bundle {sequence} on")
            self.silent = True
            return None
        restart = self._fault(sequence, "restart")
        if restart is not None:
            self._log(logging.INFO, "sfestreamer",
                      f"Fault: restarting instead of bundle {sequence} "
                      f"({restart.downtime:g} s down)")
            self._close(f"fault: restart at bundle {sequence}")
            return Outgoing(b"", None, close_after=True, restart=restart.downtime)
        slow = self._fault(sequence, "slow")
        if slow is not None:
            self._log(logging.INFO, "sfestreamer",
                      f"Fault: slow from bundle {sequence} on ({slow.rate:g} bytes/s)")
            self.send_rate = slow.rate
        self.sequence = sequence
        for fault in self.faults:
            if fault.applies(self.session_number, sequence) and fault.kind in (
                    "unknown-record", "garbage-string", "corrupt-record"):
                raw = injected_record(fault.kind)
                records.insert(len(records) // 2, (raw, SentRecord.of(raw, injected=True)))
                self._log(logging.INFO, "sfestreamer",
                          f"Fault: {fault.kind} in bundle {sequence}")
        data = encode_bundle(self.connection_id, sequence, [raw for raw, _ in records])
        sent = tuple(each for _, each in records)
        cut = next((f for f in self.faults
                    if f.kind in CUTS and f.applies(self.session_number, sequence)), None)
        if cut is not None:
            keep = HEADER_CUT if cut.kind == "close-header" else len(data) // 2
            where = "header of" if cut.kind == "close-header" else "TLS record in" \
                if cut.kind == "close-tls" else ""
            self._log(logging.INFO, "sfestreamer",
                      f"Fault: closing inside {where} bundle {sequence} after {keep} "
                      f"of {len(data)} bytes".replace("  ", " "))
            self._close(f"fault: {cut.kind} in bundle {sequence}")
            return Outgoing(data[:keep], sequence, sent, close_after=True, complete=False,
                            cut_tls=cut.kind == "close-tls")
        return Outgoing(data, sequence, sent)

    def _take(self, limit: int) -> list[tuple[bytes, SentRecord]]:
        """Up to `limit` records, metadata first: each as (wire bytes, ledger row), from the
        history's render cache. The loop is the whole per-record cost of a warm emulator,
        so the selection is resolved per family once, at `_start` (`self._blocks`)."""
        history = self.history
        rendered = history.rendered
        out: list[tuple[bytes, SentRecord]] = []
        if self.selection.metadata:
            metadata = history.metadata
            while self._metadata_pos < len(metadata) and len(out) < limit:
                out.append(rendered(metadata[self._metadata_pos]))
                self._metadata_pos += 1
        events = history.events
        end = len(events)  # a snapshot: live events appended meanwhile wait for the next call
        pos = self._event_pos
        blocks = self._blocks
        archive = self.selection.archive_timestamps
        while pos < end and len(out) < limit:
            record = events[pos]
            pos += 1
            block = blocks.get(record.family, _UNWANTED)
            if block is not _UNWANTED:
                out.append(rendered(record, block, archive))
        self._event_pos = pos
        return out

    # -- errors and faults --------------------------------------------------------------------

    def _fault(self, sequence: int, kind: str) -> Fault | None:
        return next((f for f in self.faults
                     if f.kind == kind and f.applies(self.session_number, sequence)), None)

    def _error_fault(self, sequence: int) -> Outgoing:
        fault = self._fault(sequence, "error")
        assert fault is not None
        self._log(logging.INFO, "sfestreamer",
                  f"Fault: error {fault.code} ({fault.text}) instead of bundle {sequence}")
        self._close(f"fault: error {fault.code}")
        return Outgoing(encode_error(fault.code, fault.text), None, close_after=True)

    def _refuse(self, code: int, text: str) -> bytes:
        self._log(logging.ERROR, "sfestreamer", text)
        self._close(text)
        return encode_error(code, text)

    def _close(self, reason: str) -> None:
        self.state = State.CLOSED
        self.close_reason = reason

    def _log(self, level: int, component: str, text: str) -> None:
        log.log(level, "EventStreamer child(%s):%s [%s] %s", self.peer, component,
                logging.getLevelName(level), text)


# -- the FMC's one-line description of a request ----------------------------------------------

# The words and their order as the FMC logs them (SEED 001: "EventStream Request
# (0x48900061): Since 0 w/ NS Events w/ NS 6.0 Events w/ Packets …"). A flag entry is
# (mask, word); an event entry is (event type, {version: word}) and prints for the 2049's
# (version, event type) pairs; pairs it does not name go just before the two mode words.
_DESCRIPTION: tuple[tuple[str, int, object], ...] = (
    ("flag", INTRUSION_FLAGS, "NS Events"),
    ("event", EventCode.INTRUSION, {9: "NS 6.0 Events"}),
    ("flag", RequestFlags.PACKETS, "Packets"),
    ("flag", RequestFlags.EXTRA_DATA, "Extra IDS Event data"),
    ("flag", RequestFlags.METADATA_V1, "Metadata"),
    ("flag", RequestFlags.METADATA_V2, "Metadata v2"),
    ("flag", RequestFlags.METADATA_V3, "Metadata v3"),
    ("flag", RequestFlags.METADATA, "Metadata v4"),
    ("flag", RequestFlags.USER, "RUA Events"),
    ("event", EventCode.USER, {4: "RUA 5.2 Events"}),
    ("flag", RequestFlags.IMPACT_ALERTS, "Impact Alerts"),
    ("event", EventCode.IMPACT, {2: "5.3 Impact Alerts"}),
    ("flag", RequestFlags.INTRUSION, "Impact Flags"),
    ("event", EventCode.DISCOVERY, {11: "RNA 5.3 Events"}),
    ("flag", CONNECTION_FLAGS, "RNA Flow"),
    ("event", EventCode.CONNECTION, {14: "RNA 6.0 Flow"}),
    ("event", EventCode.CORRELATION, {9: "Policy 5.4 Events"}),
    ("event", EventCode.MALWARE, {7: "FireAMP 6.0 Events"}),
    ("event", EventCode.FILE, {6: "Filelog 6.0 Events"}),
)


def describe_request(flags: int, events: Iterable[tuple[int, int]] = ()) -> str:
    """The "w/ …" list of the FMC's "EventStream Request (0x…): Since … w/ …" log line."""
    flags = RequestFlags(flags)
    pairs = [(code, version) for version, code in events if code != EventCode.METADATA]
    words: list[str] = []
    named: set[tuple[int, int]] = set()
    for kind, key, word in _DESCRIPTION:
        if kind == "flag":
            if flags & key:
                words.append(word)  # type: ignore[arg-type]
            continue
        for code, version in pairs:
            if code == key and version in word:  # type: ignore[operator]
                words.append(word[version])  # type: ignore[index]
                named.add((code, version))
    words += [f"Event type {code} v{version}" for code, version in pairs
              if (code, version) not in named]
    if flags & RequestFlags.ARCHIVE_TIMESTAMPS:
        words.append("Send archive timestamp")
    if flags & RequestFlags.EXTENDED:
        words.append("Send Detail Request")
    return " w/ ".join(words) if words else "nothing"
