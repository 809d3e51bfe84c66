"""Message framing over a growing buffer (fact sheet §2).

Every eStreamer message is an 8-byte header (`>HHL`: version, type, body length) and a
body. `Framer.feed()` takes bytes in any chunking; `Framer.next_frame()` hands out complete
frames. It never allocates more than `max_body` bytes for one message, whatever the
peer claims."""

import struct
from dataclasses import dataclass

from estreamer.errors import FramingError

HEADER = struct.Struct(">HHL")
HEADER_SIZE = HEADER.size
PROTOCOL_VERSION = 1
DEFAULT_MAX_BODY = 16 * 1024 * 1024
"""Largest body accepted. Real bundles are a few hundred KiB; 16 MiB leaves room."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One complete message as it came off the wire."""

    message_type: int
    body: bytes
    offset: int  # byte offset of the header in the stream, for error reports
    version: int = PROTOCOL_VERSION


def encode_frame(message_type: int, body: bytes = b"") -> bytes:
    return HEADER.pack(PROTOCOL_VERSION, message_type, len(body)) + body


class Framer:
    """Bytes in, frames out. Sans-IO: the caller owns the socket or file."""

    def __init__(self, max_body: int = DEFAULT_MAX_BODY):
        self.max_body = max_body
        self._buffer = bytearray()
        self._start = 0  # consumed prefix of _buffer, compacted lazily
        self._stream_offset = 0  # stream offset of _buffer[0]
        self._broken: FramingError | None = None

    def feed(self, data: bytes) -> None:
        if self._broken is not None:
            raise self._broken
        self._buffer += data

    @property
    def buffered(self) -> int:
        """Bytes received but not yet handed out as a frame."""
        return len(self._buffer) - self._start

    @property
    def offset(self) -> int:
        """Stream offset of the next byte to be framed."""
        return self._stream_offset + self._start

    def next_frame(self) -> Frame | None:
        """The next complete frame, or None until more bytes arrive.

        Raises FramingError for a header that is not version 1 (recoverable: the message is
        skipped by its length) or whose length is over `max_body` (not recoverable: the
        boundary of the next message is unknown, so the framer refuses further input)."""
        if self._broken is not None:
            raise self._broken
        buf = self._buffer
        start = self._start
        if len(buf) - start < HEADER_SIZE:
            self._compact()
            return None
        version, message_type, length = HEADER.unpack_from(buf, start)
        offset = self.offset
        if length > self.max_body:
            self._broken = FramingError(
                f"message type {message_type} claims a {length}-byte body, over the "
                f"{self.max_body}-byte limit; the stream cannot be trusted past this point",
                offset,
            )
            raise self._broken
        end = start + HEADER_SIZE + length
        if len(buf) < end:
            self._compact()
            return None
        body = bytes(buf[start + HEADER_SIZE : end])
        self._start = end
        if version != PROTOCOL_VERSION:
            raise FramingError(
                f"message header version is {version}, expected 1 (FMC builds hit by "
                f"CSCve44987 send this; upgrade the FMC); skipped {HEADER_SIZE + length} bytes",
                offset,
                recoverable=True,
            )
        return Frame(message_type, body, offset, version)

    def frames(self):
        """Every complete frame currently buffered (stops at the first FramingError)."""
        while (frame := self.next_frame()) is not None:
            yield frame

    def _compact(self) -> None:
        if self._start:
            del self._buffer[: self._start]
            self._stream_offset += self._start
            self._start = 0
