"""The client side of an eStreamer session as a sans-IO state machine (fact sheet §1, §4).

    session = ClientSession(initial_timestamp, flags, events)
    send(session.start())                       # Event Stream Request
    for event in session.receive(socket_bytes): # records, server errors, faults, notices
        ...
    send(session.data_to_send())                # 2049 + Null after the 2051; Null acks

The socket, TLS, timeouts and retries belong to the caller (client/connection.py)."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum

from estreamer.protocol.flags import ESTREAMER_SERVICE_ID, RequestFlags
from estreamer.protocol.framing import DEFAULT_MAX_BODY
from estreamer.protocol.messages import (
    ErrorMessage,
    EventData,
    MessageBundle,
    Null,
    StreamingInformation,
    encode_event_stream_request,
    encode_null,
    encode_streaming_request,
)
from estreamer.protocol.records import Record
from estreamer.protocol.stream import Notice, StreamDecoder, StreamFault


class State(Enum):
    NEW = "new"
    AWAITING_INFORMATION = "awaiting Streaming Information"
    STREAMING = "streaming"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ServerError:
    """The server sent an Error message; it will close the connection."""

    code: int
    text: str


@dataclass(frozen=True, slots=True)
class SessionFailed:
    """The session cannot go on (protocol broken, service missing). `reason` is one sentence."""

    reason: str


@dataclass(frozen=True, slots=True)
class BundleReceived:
    connection_id: int
    sequence: int
    records: int


@dataclass(frozen=True, slots=True)
class RawRecords:
    """The records of one bundle (or Event Data message) still as bytes, with their stream
    offsets: what a session made with `decode_records=False` gives instead of Records."""

    records: tuple[bytes, ...]
    offsets: tuple[int, ...]


SessionEvent = (Record | ServerError | SessionFailed | StreamFault | Notice | BundleReceived
                | RawRecords)


class ClientSession:
    def __init__(
        self,
        initial_timestamp: int,
        flags: RequestFlags | int,
        events: Iterable[tuple[int, int]] = (),
        max_body: int = DEFAULT_MAX_BODY,
        tap: Callable[[str, bytes], None] | None = None,
        decode_records: bool = True,
    ):
        """`tap`, when given, sees every byte sent ("->") and received ("<-"): the
        VERBOSE/TRACE wire log (client/wirelog.py). `decode_records=False`: records come
        as `RawRecords`, one per bundle, for decoding elsewhere (estreamer.parallel)."""
        self.tap = tap
        self.initial_timestamp = initial_timestamp
        self.flags = RequestFlags(flags)
        self.events = tuple(events)
        self.state = State.NEW
        self.decoder = StreamDecoder(max_body, decode_records)
        self.keepalives = 0
        self._outgoing = bytearray()

    @property
    def extended(self) -> bool:
        return bool(self.flags & RequestFlags.EXTENDED)

    def start(self) -> bytes:
        """The Event Stream Request. In extended mode the 2049 follows once the server's
        2051 arrives."""
        assert self.state is State.NEW
        self.state = State.AWAITING_INFORMATION if self.extended else State.STREAMING
        request = encode_event_stream_request(self.initial_timestamp, self.flags)
        if self.tap is not None:
            self.tap("->", request)
        return request

    def data_to_send(self) -> bytes:
        out = bytes(self._outgoing)
        self._outgoing.clear()
        if out and self.tap is not None:
            self.tap("->", out)
        return out

    def receive(self, data: bytes) -> list[SessionEvent]:
        if self.state is State.CLOSED:
            return []
        if self.tap is not None:
            self.tap("<-", data)
        events: list[SessionEvent] = []
        for event in self.decoder.feed(data):
            kind = type(event)
            if kind is Record:
                events.append(event)
            elif kind is MessageBundle:
                # One Null acknowledges a whole bundle (G53 p61; one per bundle in CAP).
                self._outgoing += encode_null()
                events.append(
                    BundleReceived(event.connection_id, event.sequence, len(event.records))
                )
                if not self.decoder.decode_records and event.records:
                    events.append(RawRecords(event.records, event.item_offsets))
            elif kind is EventData:
                self._outgoing += encode_null()
                if not self.decoder.decode_records:
                    events.append(RawRecords((event.record,), (event.offset + 8,)))
            elif kind is Null:
                self.keepalives += 1
            elif kind is StreamingInformation:
                events.extend(self._on_streaming_information(event))
            elif kind is ErrorMessage:
                self.state = State.CLOSED
                events.append(ServerError(event.code, event.text))
            elif kind is StreamFault:
                events.append(event)
                if event.fatal:
                    self.state = State.CLOSED
                    events.append(
                        SessionFailed(f"the stream broke at byte {event.offset}: {event.message}")
                    )
            elif kind is Notice:
                events.append(event)
            else:
                events.append(
                    Notice(
                        f"message:{type(event).__name__}",
                        f"ignored an unexpected {type(event).__name__} message from the server",
                        getattr(event, "offset", 0),
                    )
                )
        return events

    def _on_streaming_information(self, info: StreamingInformation) -> list[SessionEvent]:
        if self.state is not State.AWAITING_INFORMATION:
            return [
                Notice(
                    "late-2051",
                    "ignored a Streaming Information message outside the request exchange",
                    info.offset,
                )
            ]
        if info.service(ESTREAMER_SERVICE_ID) is None:
            self.state = State.CLOSED
            offered = ", ".join(str(s.service_id) for s in info.services) or "none"
            return [
                SessionFailed(
                    f"the server does not offer the eStreamer service "
                    f"({ESTREAMER_SERVICE_ID}); it offered: {offered}"
                )
            ]
        self._outgoing += encode_streaming_request(self.flags, self.initial_timestamp, self.events)
        self._outgoing += encode_null()  # "ready for data", as eNcore and CAP show
        self.state = State.STREAMING
        return []
