"""The one interface every output shares.

The pipeline hands each output whole batches of formatted lines, then at each commit asks
every output to `flush(durable=True)`; only when all of them return does the bookmark move
past those lines (end-to-end acknowledgement, at-least-once by design)."""

from collections.abc import Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class Output(Protocol):
    def write(self, lines: Sequence[bytes]) -> None:
        """Accept formatted lines, each without its trailing newline. May buffer."""

    def flush(self, durable: bool) -> None:
        """Push buffered lines out. With durable=True, return only once they would survive
        a crash (on disk, or acknowledged by the receiver): the bookmark may then pass them."""

    def close(self) -> None:
        """Flush durably and release the resource. Safe to call twice."""
