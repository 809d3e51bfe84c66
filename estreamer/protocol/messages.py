"""Typed eStreamer messages and their encoders/decoders (fact sheet §2–§5).

`parse_frame()` turns a `Frame` into one of the message classes below. The `encode_*`
functions build the bytes either side sends, so the client, the emulator and the tests
share one implementation of the wire format."""

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from estreamer.errors import DecodeError
from estreamer.protocol.flags import ESTREAMER_SERVICE_ID, RequestFlags
from estreamer.protocol.framing import Frame, encode_frame
from estreamer.protocol.layout import ip_from_text, ip_to_text, ipv4_to_text

NULL = 0
ERROR = 1
EVENT_STREAM_REQUEST = 2
EVENT_DATA = 4
HOST_DATA_REQUEST = 5
SINGLE_HOST_DATA = 6
MULTIPLE_HOST_DATA = 7
STREAMING_REQUEST = 2049
STREAMING_INFORMATION = 2051
MESSAGE_BUNDLE = 4002

MESSAGE_NAMES = {
    NULL: "Null",
    ERROR: "Error",
    EVENT_STREAM_REQUEST: "Event Stream Request",
    EVENT_DATA: "Event Data",
    HOST_DATA_REQUEST: "Host Data Request",
    SINGLE_HOST_DATA: "Single Host Data",
    MULTIPLE_HOST_DATA: "Multiple Host Data",
    STREAMING_REQUEST: "Streaming Request",
    STREAMING_INFORMATION: "Streaming Information",
    MESSAGE_BUNDLE: "Message Bundle",
}

_U32 = struct.Struct(">L")
_ERROR_HEAD = struct.Struct(">lH")
_EVENT_STREAM_REQUEST = struct.Struct(">LL")
_SERVICE = struct.Struct(">LLLL")
_EVENT_ENTRY = struct.Struct(">HH")
_BUNDLE_HEAD = struct.Struct(">LL")
_BUNDLE_ITEM = struct.Struct(">LL")
_FULL_HEADER_ITEM = 1 << 16 | EVENT_DATA  # `>HHL` version 1, type 4, read as one u32

# Host Data Request (type 5), fact sheet §6.4. Data types per G54 Table 2-14: 0-5 are the
# 3.5-4.10 forms, 6 and 7 ask for 5.0+ profiles of one host or of an address range. Flags: 1
# fills in the host's notes, 2 the servers' banners. The guide draws the two addresses as
# uint8[4]; eNcore 3.x/5.x (Cisco's client for 6.x/7.x, `message/host.py`) sends 16 bytes
# each, and every other address of the 5.x+ protocol is 16 bytes, so we send 16
# (IPv4-mapped, §7) and read both forms, told apart by the body length.
HOST_SINGLE = 6
HOST_MULTIPLE = 7
HOST_FLAG_NOTES = 1
HOST_FLAG_BANNERS = 2
_HOST_REQUEST = struct.Struct(">LL16s16s")
_HOST_REQUEST_V4 = struct.Struct(">LL4s4s")


@dataclass(frozen=True, slots=True)
class Null:
    offset: int = 0


@dataclass(frozen=True, slots=True)
class ErrorMessage:
    code: int
    text: str
    offset: int = 0


@dataclass(frozen=True, slots=True)
class EventStreamRequest:
    initial_timestamp: int
    flags: RequestFlags
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Service:
    service_id: int
    flags: int = 0
    initial_timestamp: int = 0
    events: tuple[tuple[int, int], ...] = ()  # (version, event type)


@dataclass(frozen=True, slots=True)
class StreamingInformation:
    services: tuple[Service, ...]
    offset: int = 0

    def service(self, service_id: int = ESTREAMER_SERVICE_ID) -> Service | None:
        return next((s for s in self.services if s.service_id == service_id), None)


@dataclass(frozen=True, slots=True)
class StreamingRequest:
    services: tuple[Service, ...]
    offset: int = 0

    def service(self, service_id: int = ESTREAMER_SERVICE_ID) -> Service | None:
        return next((s for s in self.services if s.service_id == service_id), None)


@dataclass(frozen=True, slots=True)
class EventData:
    """A standalone type-4 message: one record (header + data) in `record`."""

    record: bytes
    offset: int = 0


@dataclass(frozen=True, slots=True)
class MessageBundle:
    """A 4002 bundle. `records` are the raw records (header + data) of its items."""

    connection_id: int
    sequence: int
    records: tuple[bytes, ...]
    offset: int = 0
    item_offsets: tuple[int, ...] = field(default=(), repr=False)


@dataclass(frozen=True, slots=True)
class HostDataRequest:
    """A client's Host Data Request (5): the hosts from `start` to `end` (address text)."""

    data_type: int
    flags: int
    start: str
    end: str
    offset: int = 0


@dataclass(frozen=True, slots=True)
class HostData:
    """Single (6) or multiple (7) host data: kept raw until host profiles are decoded."""

    message_type: int
    body: bytes
    offset: int = 0


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    message_type: int
    body: bytes
    offset: int = 0


Message = (
    Null
    | ErrorMessage
    | EventStreamRequest
    | StreamingInformation
    | StreamingRequest
    | EventData
    | MessageBundle
    | HostData
    | HostDataRequest
    | UnknownMessage
)


# -- decoding -------------------------------------------------------------------------------


def parse_frame(frame: Frame) -> Message:
    """Decode a frame's body by its message type. Raises DecodeError with the stream offset
    when the body does not fit the type's layout."""
    body, offset, kind = frame.body, frame.offset, frame.message_type
    try:
        if kind == MESSAGE_BUNDLE:
            return _parse_bundle(body, offset)
        if kind == EVENT_DATA:
            return EventData(body, offset)
        if kind == NULL:
            if body:
                raise DecodeError(f"Null message with a {len(body)}-byte body", offset)
            return Null(offset)
        if kind == ERROR:
            return _parse_error(body, offset)
        if kind == STREAMING_INFORMATION:
            return StreamingInformation(_parse_services(body, offset, server=True), offset)
        if kind == STREAMING_REQUEST:
            return StreamingRequest(_parse_services(body, offset, server=False), offset)
        if kind == EVENT_STREAM_REQUEST:
            if len(body) != _EVENT_STREAM_REQUEST.size:
                raise DecodeError(
                    f"Event Stream Request body is {len(body)} bytes, expected 8", offset
                )
            timestamp, flags = _EVENT_STREAM_REQUEST.unpack(body)
            return EventStreamRequest(timestamp, RequestFlags(flags), offset)
        if kind in (SINGLE_HOST_DATA, MULTIPLE_HOST_DATA):
            return HostData(kind, body, offset)
        if kind == HOST_DATA_REQUEST:
            return _parse_host_request(body, offset)
    except struct.error as exc:  # a fixed part ran past the body
        raise DecodeError(
            f"{MESSAGE_NAMES.get(kind, kind)} body too short: {exc}", offset
        ) from None
    return UnknownMessage(kind, body, offset)


def _parse_error(body: bytes, offset: int) -> ErrorMessage:
    if len(body) < _ERROR_HEAD.size:
        raise DecodeError(f"Error message body is {len(body)} bytes, under 6", offset)
    code, length = _ERROR_HEAD.unpack_from(body)
    if _ERROR_HEAD.size + length != len(body):
        # eNcore refuses these too: a text length that does not fill the body exactly means
        # the message is corrupt, and a truncated text would mislead.
        raise DecodeError(
            f"Error message text length {length} does not fill its {len(body)}-byte body",
            offset,
        )
    text = body[_ERROR_HEAD.size :].replace(b"\x00", b"").decode("utf-8", "replace")
    return ErrorMessage(code, text, offset)


def _parse_host_request(body: bytes, offset: int) -> HostDataRequest:
    if len(body) == _HOST_REQUEST.size:
        data_type, flags, start, end = _HOST_REQUEST.unpack(body)
        return HostDataRequest(data_type, flags, ip_to_text(start), ip_to_text(end), offset)
    if len(body) == _HOST_REQUEST_V4.size:
        data_type, flags, start, end = _HOST_REQUEST_V4.unpack(body)
        return HostDataRequest(data_type, flags, ipv4_to_text(start), ipv4_to_text(end), offset)
    raise DecodeError(
        f"Host Data Request body is {len(body)} bytes, expected 40 (or 16, IPv4 form)", offset
    )


def _parse_services(body: bytes, offset: int, *, server: bool) -> tuple[Service, ...]:
    """Walk the service structures of a 2051 or 2049.

    The FMC's own 2051 counts a service's length after the type and length words; eNcore's
    2049 counts the whole structure. Both are accepted: a length that includes the 8-byte
    service header is recognised because it is the only reading that ends inside the body
    on a 4-byte event-list boundary with the 0,0 terminator (see fact sheet §4.1)."""
    services = []
    pos = 0
    while pos < len(body):
        if len(body) - pos < 8:
            raise DecodeError(f"{len(body) - pos} stray bytes after the last service", offset)
        service_id, length = struct.unpack_from(">LL", body, pos)
        end = _service_end(body, pos, length)
        if end is None:
            raise DecodeError(
                f"service {service_id} length {length} runs past the {len(body)}-byte body",
                offset,
            )
        flags = timestamp = 0
        events: list[tuple[int, int]] = []
        if end - pos >= 16:
            _, _, flags, timestamp = _SERVICE.unpack_from(body, pos)
            for entry in range(pos + 16, end - 3, 4):
                version, event_type = _EVENT_ENTRY.unpack_from(body, entry)
                if (version, event_type) == (0, 0):
                    break
                events.append((version, event_type))
        services.append(Service(service_id, flags, timestamp, tuple(events)))
        pos = end
    return tuple(services)


def _service_end(body: bytes, pos: int, length: int) -> int | None:
    after_header = pos + 8 + length  # the FMC's convention
    whole = pos + length  # eNcore's convention
    if whole >= pos + 8 and whole <= len(body) and after_header > len(body):
        return whole
    if after_header <= len(body):
        return after_header
    return None


def _parse_bundle(body: bytes, offset: int) -> MessageBundle:
    if len(body) < _BUNDLE_HEAD.size:
        raise DecodeError(f"Message Bundle body is {len(body)} bytes, under 8", offset)
    connection_id, sequence = _BUNDLE_HEAD.unpack_from(body)
    records = []
    item_offsets = []
    pos = _BUNDLE_HEAD.size
    end = len(body)
    while pos < end:
        if end - pos < _BUNDLE_ITEM.size:
            raise DecodeError(
                f"{end - pos} stray bytes at the end of bundle {sequence}", offset + 8 + pos
            )
        item_type, length = _BUNDLE_ITEM.unpack_from(body, pos)
        # The guide (G53 p62) describes items with a full `>HHL` message header (version 1,
        # type 4); every real capture has the bare `u32 4` form (fact sheet §5). Both are
        # read: the header form's first word, 0x00010004, cannot be mistaken for the other.
        if item_type != EVENT_DATA and item_type != _FULL_HEADER_ITEM:
            raise DecodeError(
                f"bundle {sequence} item has type {item_type}, expected 4 (Event Data)",
                offset + 8 + pos,
            )
        start = pos + _BUNDLE_ITEM.size
        if start + length > end:
            raise DecodeError(
                f"bundle {sequence} item of {length} bytes runs past the bundle end",
                offset + 8 + pos,
            )
        records.append(body[start : start + length])
        item_offsets.append(offset + 8 + start)
        pos = start + length
    return MessageBundle(connection_id, sequence, tuple(records), offset, tuple(item_offsets))


# -- encoding -------------------------------------------------------------------------------


def encode_null() -> bytes:
    return encode_frame(NULL)


def encode_error(code: int, text: str) -> bytes:
    raw = text.encode()
    return encode_frame(ERROR, _ERROR_HEAD.pack(code, len(raw)) + raw)


def encode_event_stream_request(initial_timestamp: int, flags: int) -> bytes:
    return encode_frame(EVENT_STREAM_REQUEST, _EVENT_STREAM_REQUEST.pack(initial_timestamp, flags))


def encode_streaming_request(
    flags: int,
    initial_timestamp: int,
    events: Iterable[tuple[int, int]],
    service_id: int = ESTREAMER_SERVICE_ID,
) -> bytes:
    """The client's 2049. The service length counts the whole structure (16 + 4·entries,
    terminator included), as eNcore sends it and as real FMCs accept."""
    entries = b"".join(_EVENT_ENTRY.pack(v, t) for v, t in events) + _EVENT_ENTRY.pack(0, 0)
    length = _SERVICE.size + len(entries)
    return encode_frame(
        STREAMING_REQUEST, _SERVICE.pack(service_id, length, flags, initial_timestamp) + entries
    )


def encode_streaming_information(
    service_ids: Sequence[int] = (5001, 5000, ESTREAMER_SERVICE_ID),
) -> bytes:
    """The server's 2051 in the form a real FMC sends: each service with length 8 (counted
    after type and length) and zero flags and timestamp; 6667 last."""
    body = b"".join(_SERVICE.pack(sid, 8, 0, 0) for sid in service_ids)
    return encode_frame(STREAMING_INFORMATION, body)


def encode_event_data(record: bytes) -> bytes:
    return encode_frame(EVENT_DATA, record)


def encode_bundle(connection_id: int, sequence: int, records: Iterable[bytes]) -> bytes:
    parts = [_BUNDLE_HEAD.pack(connection_id, sequence)]
    for record in records:
        parts.append(_BUNDLE_ITEM.pack(EVENT_DATA, len(record)))
        parts.append(record)
    return encode_frame(MESSAGE_BUNDLE, b"".join(parts))


def encode_host_data_request(
    start: str,
    end: str | None = None,
    *,
    flags: int = HOST_FLAG_NOTES | HOST_FLAG_BANNERS,
    data_type: int | None = None,
) -> bytes:
    """The client's Host Data Request for one host (`end` None or equal: data type 6, the
    answer is one Single Host Data message) or a range (data type 7)."""
    end = start if end is None else end
    if data_type is None:
        data_type = HOST_SINGLE if end == start else HOST_MULTIPLE
    body = _HOST_REQUEST.pack(data_type, flags, ip_from_text(start), ip_from_text(end))
    return encode_frame(HOST_DATA_REQUEST, body)


def encode_host_data(message_type: int, profile_block: bytes) -> bytes:
    """A Single (6) or Multiple (7) Host Data message: the body is the profile block itself
    (no record header, G53 p51)."""
    return encode_frame(message_type, profile_block)
