"""One eStreamer message as annotated hex: header fields labelled, the body in 4-byte words
and what the protocol core reads in it. `estreamer test --verbose` prints these lines; the
VERBOSE and TRACE log levels log them (client/wirelog.py). Pure: frames in, text out."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from estreamer.protocol.flags import TIMESTAMP_NOW, TIMESTAMP_OLDEST, RequestFlags
from estreamer.protocol.framing import HEADER, HEADER_SIZE
from estreamer.protocol.messages import (
    MESSAGE_NAMES,
    ErrorMessage,
    EventData,
    EventStreamRequest,
    MessageBundle,
    StreamingInformation,
    StreamingRequest,
    parse_frame,
)
from estreamer.protocol.records import decode_record

HEX_LIMIT = 256
"""Bytes of a message body shown by default; bundles run to hundreds of KiB."""


def annotate(arrow: str, frame: Any, limit: int | None = HEX_LIMIT) -> list[str]:
    """Lines showing one message: its header fields labelled, its body in hex (the first
    `limit` bytes, all of them for None) and what the body says, decoded by the protocol
    core."""
    name = MESSAGE_NAMES.get(frame.message_type, f"type {frame.message_type}")
    length = len(frame.body)
    header = HEADER.pack(frame.version, frame.message_type, length)
    lines = [
        f"{arrow} {name} ({frame.message_type}) at byte {frame.offset}, {HEADER_SIZE + length} "
        "bytes",
        f"     header  {header[:2].hex()} {header[2:4].hex()} {header[4:].hex()}"
        f"   version={frame.version} type={frame.message_type} length={length}",
    ]
    shown = frame.body if limit is None else frame.body[:limit]
    for start in range(0, len(shown), 16):
        chunk = shown[start : start + 16]
        words = " ".join(chunk[i : i + 4].hex() for i in range(0, len(chunk), 4))
        lines.append(f"     {start:04x}    {words}")
    if length > len(shown):
        lines.append(f"     ...     {length - len(shown)} more bytes")
    try:
        message = parse_frame(frame)
    except Exception as exc:  # a dump must show what it can, whatever the bytes
        lines.append(f"     = undecodable: {exc}")
        return lines
    meaning = _meaning(message)
    if meaning:
        lines.append(f"     = {meaning}")
    return lines


def describe_timestamp(value: int) -> str:
    if value == TIMESTAMP_OLDEST:
        return "the oldest data"
    if value == TIMESTAMP_NOW:
        return "now"
    return f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(value))} UTC ({value})"


def _meaning(message: Any) -> str:
    if isinstance(message, EventStreamRequest):
        names = "|".join(f.name for f in RequestFlags if message.flags & f and f.name)
        return (f"initial timestamp {describe_timestamp(message.initial_timestamp)}, "
                f"flags 0x{int(message.flags):08x} ({names})")
    if isinstance(message, StreamingInformation | StreamingRequest):
        parts = []
        for s in message.services:
            events = " ".join(f"{t}v{v}" for v, t in s.events)
            parts.append(f"service {s.service_id}" + (f" flags 0x{s.flags:08x} timestamp "
                                                      f"{s.initial_timestamp} events {events}"
                                                      if events else ""))
        return "; ".join(parts)
    if isinstance(message, ErrorMessage):
        return f"error code {message.code}: {message.text!r}"
    if isinstance(message, MessageBundle):
        kinds = Counter(decode_record(raw).record_type for raw in message.records)
        return (f"bundle connection {message.connection_id} sequence {message.sequence}, "
                f"{len(message.records)} records (" +
                ", ".join(f"type {t} ×{n}" for t, n in sorted(kinds.items())) + ")")
    if isinstance(message, EventData):
        record = decode_record(message.record)
        return f"record type {record.record_type} {record.name}"
    return ""
