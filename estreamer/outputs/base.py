"""The one interface every output shares.

The pipeline hands each output whole batches of formatted lines, then at each commit asks
every output to `flush(durable=True)`; only when all of them return does the bookmark move
past those lines (end-to-end acknowledgement, at-least-once by design).

An output that holds lines of its own before they are sent (a network queue, a batch, a
producer's unacknowledged messages) may also have `queued() -> int`, the number of those
lines: the monitor reports it as the output's queue depth (metrics, status file)."""

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Output(Protocol):
    def write(self, lines: Sequence[bytes]) -> None:
        """Accept formatted lines, each without its trailing newline. May buffer."""

    def flush(self, durable: bool) -> None:
        """Push buffered lines out. With durable=True, return only once they would survive
        a crash (on disk, or acknowledged by the receiver): the bookmark may then pass them."""

    def close(self) -> None:
        """Flush durably and release the resource. Safe to call twice."""


@runtime_checkable
class KeyedOutput(Output, Protocol):
    """An output whose messages carry a key taken from the event, not from the formatted
    line (Kafka: records with one key stay in one partition, in order). The pipeline asks
    for each event's key and hands lines and keys over together."""

    def key_of(self, event: Mapping[str, Any]) -> bytes | None:
        """The key of one decorated event; None for no key."""

    def write_keyed(self, lines: Sequence[bytes], keys: Sequence[bytes | None]) -> None:
        """`write`, with the key of each line (same length as `lines`)."""
