"""`stdout://`: lines to standard output, for pipes and for trying things out."""

import sys
from collections.abc import Sequence
from typing import BinaryIO


class StdoutOutput:
    def __init__(self, stream: BinaryIO | None = None):
        # Bytes straight to the buffer: lines are already encoded, and a text wrapper would
        # re-encode them and translate newlines on Windows.
        self._stream = stream if stream is not None else sys.stdout.buffer
        self._closed = False

    def write(self, lines: Sequence[bytes]) -> None:
        if lines:
            self._stream.write(b"\n".join(lines) + b"\n")

    def flush(self, durable: bool) -> None:
        # Once a pipe has the bytes, the reader owns them; there is no stronger durability
        # to be had from here, so durable and not are the same.
        self._stream.flush()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._stream.flush()  # never close stdout itself: the process still logs to it
