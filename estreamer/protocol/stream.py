"""A byte stream in, typed events out: framing + message parsing + record decoding.

`StreamDecoder.feed(bytes)` returns the events the new bytes complete, in stream order:
messages (`Null`, `ErrorMessage`, `StreamingInformation`, `MessageBundle`, ...), the `Record`s
each Event Data message or bundle carries (right after their message), `StreamFault`s for
bytes that break the protocol, and `Notice`s for things worth one log line (an unknown record
type, a block longer than its layout), each at most once per kind. Nothing here does I/O."""

from dataclasses import dataclass

from estreamer.errors import FramingError, ProtocolError
from estreamer.protocol.framing import DEFAULT_MAX_BODY, Framer
from estreamer.protocol.messages import EventData, Message, MessageBundle, parse_frame
from estreamer.protocol.records import Record, decode_record


@dataclass(frozen=True, slots=True)
class StreamFault:
    """Bytes that could not be used. `fatal` means the stream cannot go on (no message
    boundary can be trusted past `offset`)."""

    message: str
    offset: int
    fatal: bool = False


@dataclass(frozen=True, slots=True)
class Notice:
    key: str
    message: str
    offset: int


Event = Message | Record | StreamFault | Notice


class StreamDecoder:
    def __init__(self, max_body: int = DEFAULT_MAX_BODY, decode_records: bool = True):
        """`decode_records=False` leaves the records of Event Data and bundles as bytes in
        their messages (for a caller that decodes them elsewhere: estreamer.parallel)."""
        self.framer = Framer(max_body)
        self.decode_records = decode_records
        self.failed = False
        self._noticed: set[str] = set()

    def feed(self, data: bytes) -> list[Event]:
        if self.failed:
            return []
        self.framer.feed(data)
        events: list[Event] = []
        while True:
            try:
                frame = self.framer.next_frame()
            except FramingError as exc:
                events.append(StreamFault(exc.args[0], exc.offset or 0, fatal=not exc.recoverable))
                if exc.recoverable:
                    continue
                self.failed = True
                return events
            if frame is None:
                return events
            try:
                message = parse_frame(frame)
            except ProtocolError as exc:
                events.append(StreamFault(exc.args[0], frame.offset))
                continue
            events.append(message)
            if not self.decode_records:
                continue
            if type(message) is MessageBundle:
                append = events.append
                for raw, offset in zip(message.records, message.item_offsets, strict=True):
                    record = decode_record(raw, offset)
                    if record.notes or record.error is not None:
                        self._record(record, events)
                    else:  # the common case, without the call
                        append(record)
            elif type(message) is EventData:
                self._record(decode_record(message.record, message.offset + 8), events)

    def _record(self, record: Record, events: list[Event]) -> None:
        for key, text in record.notes:
            if key not in self._noticed:
                self._noticed.add(key)
                events.append(Notice(key, text, record.offset))
        if record.error is not None:
            events.append(
                StreamFault(f"record type {record.record_type}: {record.error}", record.offset)
            )
        events.append(record)

    def close(self) -> list[Event]:
        """End of input: report a message cut off mid-way (its bytes are not lost: the
        fault says how many arrived)."""
        pending = self.framer.buffered
        if pending and not self.failed:
            return [
                StreamFault(
                    f"stream ended inside a message: {pending} bytes of an incomplete message",
                    self.framer.offset,
                )
            ]
        return []
