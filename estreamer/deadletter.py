"""The dead-letter file: every malformed record, kept in hex for a later look.

A record that does not fit its layout costs that record only: it is logged with its stream
offset and type, still handed to the outputs (with `decode_error` and its bytes as `raw`),
and, when `handler.deadLetter` names a file, also written there as one JSON line:

    {"time": "2026-11-25T10:02:11Z", "fmc": "10.0.0.5:8302", "offset": 48211,
     "record_type": 98, "record_name": "User", "archive_timestamp": null,
     "error": "User does not fit its layout: …", "hex": "0000003900000026…"}

`hex` is the record's data after its 8- or 16-byte record header, as received (the header's
fields are the line's other keys), so the bytes can be fed back to a decoder once a layout
is fixed.

Durability follows the outputs: lines wait in memory and are appended and fsynced at each
commit, before the bookmark moves past their records. A crash before that loses the lines
with the records' bookmark position, and the FMC resends those records, so they come back;
only a crash between this fsync and the bookmark save can write a line twice. The file is
created 0600: it holds raw event data."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from pathlib import Path

from estreamer.errors import OutputError
from estreamer.protocol.records import Record

log = logging.getLogger("DeadLetter")


class DeadLetter:
    def __init__(self, path: Path, fmc: str):
        self.path = path
        self.fmc = fmc
        self.written = 0  # lines made durable
        self._pending: list[bytes] = []

    def add(self, record: Record) -> None:
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "fmc": self.fmc,
            "offset": record.offset,
            "record_type": record.record_type,
            "record_name": record.name,
            "archive_timestamp": record.archive_timestamp,
            "error": record.error,
            "hex": record.fields.get("raw", ""),
        }
        self._pending.append(json.dumps(line).encode() + b"\n")

    def flush(self) -> None:
        """Append the waiting lines and fsync: called by the commit, before the bookmark."""
        if not self._pending:
            return
        try:
            self._append(b"".join(self._pending))
        except OSError as exc:
            # Named as an output's failure: the run retries and the bookmark stays back.
            raise OutputError(f"could not write the dead-letter file {self.path}: {exc}") \
                from exc
        self.written += len(self._pending)
        self._pending = []

    def _append(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            try:
                view = memoryview(data)
                while view:  # a write can be short (signals, a nearly full disk)
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            except OSError:
                # Cut a half-written batch off: the lines stay pending, and the next
                # commit appends them whole instead of after a torn line.
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)
