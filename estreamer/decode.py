"""`estreamer decode`: a captured eStreamer byte stream in, one formatted line per record out.

The input is messages exactly as a server sends them (8-byte header + body, concatenated),
binary or as a hex dump. Faults are reported on stderr with their byte offset and decoding
goes on with the next message; the exit status is 1 if there was any fault."""

import logging
import re
import sys
from collections.abc import Iterable, Iterator
from typing import BinaryIO, TextIO

from estreamer.formats import get_formatter
from estreamer.protocol.messages import ErrorMessage, StreamingInformation
from estreamer.protocol.records import Record
from estreamer.protocol.stream import Notice, StreamDecoder, StreamFault

log = logging.getLogger("Decode")

CHUNK = 1 << 16
_NOT_HEX = re.compile(rb"0x|[\s|:,_-]+")


def binary_chunks(stream: BinaryIO) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK):
        yield chunk


def hex_chunks(stream: BinaryIO) -> Iterator[bytes]:
    """Hex text with any whitespace, `|`, `:`, `,`, `-` or `0x` between digits. An odd digit
    at a chunk boundary is carried to the next chunk."""
    carry = b""
    for chunk in binary_chunks(stream):
        digits = carry + _NOT_HEX.sub(b"", chunk)
        usable = len(digits) & ~1
        carry = digits[usable:]
        try:
            yield bytes.fromhex(digits[:usable].decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            raise ValueError(
                "the --hex input contains characters that are not hex digits"
            ) from None
    if carry:
        raise ValueError("the --hex input has an odd number of hex digits")


def decode_stream(
    chunks: Iterable[bytes], out: TextIO | BinaryIO, fmt: str = "json", max_body: int | None = None
) -> tuple[int, int]:
    """Decode and write every record; return (records written, faults)."""
    formatter = get_formatter(fmt)
    decoder = StreamDecoder(max_body) if max_body else StreamDecoder()
    sink = out.buffer if hasattr(out, "buffer") else out
    written = faults = 0
    for chunk in chunks:
        for event in decoder.feed(chunk):
            kind = type(event)
            if kind is Record:
                sink.write(formatter(event.to_dict()) + b"\n")
                written += 1
            elif kind is StreamFault:
                faults += 1
                log.error("offset %d: %s", event.offset, event.message)
            elif kind is Notice:
                log.warning("offset %d: %s", event.offset, event.message)
            elif kind is ErrorMessage:
                log.warning(
                    "offset %d: server Error message %d: %s", event.offset, event.code, event.text
                )
            elif kind is StreamingInformation:
                log.info(
                    "offset %d: Streaming Information, services %s",
                    event.offset,
                    [s.service_id for s in event.services],
                )
    for event in decoder.close():
        faults += 1
        log.error("offset %d: %s", event.offset, event.message)
    sink.flush()
    return written, faults


def run_decode(path: str, fmt: str, as_hex: bool, max_body: int | None = None) -> int:
    source = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    try:
        chunks = hex_chunks(source) if as_hex else binary_chunks(source)
        written, faults = decode_stream(chunks, sys.stdout, fmt, max_body)
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    log.info("%d records decoded, %d faults", written, faults)
    return 1 if faults else 0
