"""eNcore's VERBOSE and TRACE log levels: every message exchanged with the FMC, logged as
the annotated hex `estreamer test --verbose` prints (protocol/annotate.py).

VERBOSE: each message's header fields labelled, the first `HEX_LIMIT` bytes of its body and
what it says. TRACE adds the whole body, every socket read and every record decoded.
Neither can hold a secret: only eStreamer messages pass here, after TLS decryption; the
PKCS#12, its password and the TLS keys never do.

The session calls a tap with the bytes it sends and receives; the tap frames them again with
framers of its own (the session's decoder keeps its frames to itself), so nothing of this
costs anything unless the level is on (`wire_tap()` returns None then)."""

from __future__ import annotations

import json
import logging

from estreamer.config import TRACE, VERBOSE
from estreamer.errors import EstreamerError
from estreamer.protocol.annotate import HEX_LIMIT, annotate
from estreamer.protocol.framing import Framer
from estreamer.protocol.messages import EventData, MessageBundle, parse_frame
from estreamer.protocol.records import decode_record

log = logging.getLogger("Wire")

SENT, RECEIVED = "->", "<-"


class WireLog:
    """A `ClientSession` tap that logs what passes through it."""

    def __init__(self, logger: logging.Logger = log):
        self.log = logger
        self.trace = logger.isEnabledFor(TRACE)
        self._framers = {SENT: Framer(), RECEIVED: Framer()}

    def __call__(self, arrow: str, data: bytes) -> None:
        if not data:
            return
        if self.trace:
            self.log.log(TRACE, "%s %d bytes %s", arrow,
                         len(data), "sent" if arrow == SENT else "read")
        framer = self._framers[arrow]
        framer.feed(data)
        try:
            for frame in framer.frames():
                self._message(arrow, frame)
        except EstreamerError as exc:  # the session reports bad bytes; this is only a view
            self.log.log(VERBOSE, "%s cannot frame: %s", arrow, exc)
            self._framers[arrow] = Framer()

    def _message(self, arrow: str, frame) -> None:
        lines = annotate(arrow, frame, limit=None if self.trace else HEX_LIMIT)
        self.log.log(VERBOSE, "%s", "\n".join(lines))
        if not self.trace:
            return
        try:
            message = parse_frame(frame)
        except EstreamerError:
            return  # annotate() already said why
        if isinstance(message, MessageBundle):
            raws = [(raw, offset) for raw, offset in zip(message.records,
                                                         message.item_offsets, strict=True)]
        elif isinstance(message, EventData):
            raws = [(message.record, message.offset + 8)]
        else:
            return
        for raw, offset in raws:
            record = decode_record(raw, offset)
            self.log.log(TRACE, "%s record at byte %d: %s", arrow, offset,
                         json.dumps(record.to_dict(), default=str, ensure_ascii=False))


def wire_tap(logger: logging.Logger = log) -> WireLog | None:
    """A tap for a new session when VERBOSE (or TRACE) is on for `logger`, else None."""
    return WireLog(logger) if logger.isEnabledFor(VERBOSE) else None
