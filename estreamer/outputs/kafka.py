"""`kafka://broker1:9092,broker2:9092/topic`: each line one Kafka message (confluent-kafka,
i.e. librdkafka).

The producer is idempotent with `acks=all`: a message counts as delivered only once every
in-sync replica has it, and librdkafka's own retries can neither duplicate nor reorder it
within a partition. Acknowledgement: `flush(durable=True)` returns only when every message
produced so far has its delivery report, and raises (naming the broker's error) if any
report is a failure. Failed messages are kept and produced again at the next commit, so the
bookmark, which is saved only after the flush returns, never passes a message that Kafka
does not have. Delivery is at least once: a message that timed out may still have been
written, and a restart resends from the bookmark.

Keys: by default each message's key is the event's `device_id`, so one sensor's events
stay in one partition, in order; `"key": "connection"` keys by device, connection instance
and connection counter (a connection's events and the intrusion events that name it stay
together); `"none"` lets librdkafka spread messages over the partitions. Events without
the fields (metadata records) have no key.

Every other option is handed to librdkafka as is (`security.protocol`, `ssl.ca.location`,
`sasl.mechanism`, `sasl.username`, `compression.type`, `linger.ms`, ...), so TLS and SASL
work as librdkafka documents them; a misspelt property is a config error at start.
The SASL password is never read from the config file: it comes from the environment
variable named by `passwordEnv` (default ESTREAMER_KAFKA_PASSWORD) or the file
`passwordFile`."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

log = logging.getLogger("KafkaStream")

KEYS = ("device", "connection", "none")
# What the acknowledgement promised above rests on; a config that changes them is refused.
FIXED = {"enable.idempotence": True, "acks": "all"}
DEFAULTS: dict[str, Any] = {
    # As long as the other network outputs keep retrying (retryFor 60 s) before a commit
    # fails and the client reconnects.
    "message.timeout.ms": 60000,
    "client.id": "estreamer",
}


class KafkaDeliveryError(OSError):
    """Kafka did not take some messages; the bookmark must not move past them."""


@dataclass
class KafkaStats:
    produced: int = 0
    delivered: int = 0
    failed: int = 0
    retried: int = 0


class KafkaOutput:
    def __init__(
        self,
        brokers: str,
        topic: str,
        *,
        key: str = "device",
        config: Mapping[str, Any] | None = None,
    ):
        if key not in KEYS:
            raise ValueError(f"key must be one of {', '.join(KEYS)}, got {key!r}")
        self.brokers, self.topic, self.key = brokers, topic, key
        self.uri = f"kafka://{brokers}/{topic}"
        for name, value in (config or {}).items():
            if name in FIXED and str(value).lower() not in (str(FIXED[name]).lower(), "-1"):
                raise ValueError(f"{name} must stay {FIXED[name]}: the bookmark relies on it")
        self.config: dict[str, Any] = {**DEFAULTS, **(config or {}), **FIXED,
                                       "bootstrap.servers": brokers}
        self.message_timeout = float(self.config["message.timeout.ms"]) / 1000
        self.stats = KafkaStats()
        self._producer = self._new_producer()  # raises KafkaException for a bad property
        self._outstanding = 0  # produced, delivery report not yet in
        self._failed: list[tuple[bytes | None, bytes]] = []  # (key, value) to produce again
        self._errors: list[KafkaError] = []  # why, for the message (oldest first)
        self._fatal: KafkaError | None = None
        self._closed = False

    # ------------------------------------------------------------------ Output

    def key_of(self, event: Mapping[str, Any]) -> bytes | None:
        if self.key == "none":
            return None
        device = event.get("device_id")
        if device is None:
            return None
        if self.key == "connection":
            instance = event.get("connection_instance_id")
            counter = event.get("connection_counter")
            if instance is not None and counter is not None:
                return f"{device}:{instance}:{counter}".encode()
        return str(device).encode()

    def write(self, lines: Sequence[bytes]) -> None:
        self.write_keyed(lines, [None] * len(lines))

    def write_keyed(self, lines: Sequence[bytes], keys: Sequence[bytes | None]) -> None:
        if self._closed:
            raise ValueError("write to a closed Kafka output")
        for key, line in zip(keys, lines, strict=True):
            self._produce(key, line)
        self._producer.poll(0)  # serve delivery reports so their memory is freed

    def flush(self, durable: bool) -> None:
        if not durable:
            self._producer.poll(0)
            return
        if self._failed:
            retry, self._failed = self._failed, []
            log.warning("%s: producing %d undelivered messages again", self.uri, len(retry))
            self.stats.retried += len(retry)
            for key, value in retry:
                self._produce(key, value)
        self._wait_for_reports()
        if self._fatal is not None:
            self._restart_producer()
        if self._failed:
            first, self._errors = self._errors[0], []
            raise KafkaDeliveryError(
                f"{self.uri}: {len(self._failed)} messages not delivered "
                f"({first.name()}: {first.str()}); kept to be sent again at the next commit")
        self._errors = []

    def queued(self) -> int:
        """Messages produced without a delivery report yet, and failed ones kept to be
        produced again (the monitor's queue depth)."""
        return self._outstanding + len(self._failed)

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.flush(durable=True)
        finally:
            self._closed = True
            # After a failed flush, stop librdkafka retrying in the background: the
            # bookmark was not saved, so the next start sends these again.
            self._producer.purge()
            self._producer.poll(0)

    # ------------------------------------------------------------------ producing

    def _new_producer(self) -> Producer:
        return Producer({**self.config, "error_cb": self._on_error, "logger": log})

    def _produce(self, key: bytes | None, value: bytes) -> None:
        while True:
            try:
                self._producer.produce(self.topic, value, key, on_delivery=self._delivered)
                break
            except BufferError:
                # librdkafka's queue is full: wait for deliveries, so the pipeline (and the
                # FMC behind it) slows down instead of dropping anything.
                self._producer.poll(0.1)
            except KafkaException as exc:
                # Refused before it was queued (too large, ...): like a failed report.
                self._failed.append((key, value))
                self._errors.append(exc.args[0])
                self.stats.failed += 1
                return
        self._outstanding += 1
        self.stats.produced += 1

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        self._outstanding -= 1
        if error is None:
            self.stats.delivered += 1
            return
        self.stats.failed += 1
        self._errors.append(error)
        self._failed.append((message.key(), message.value() or b""))

    def _wait_for_reports(self) -> None:
        # librdkafka reports every message within message.timeout.ms (delivered or timed
        # out); the margin only guards against a report that never comes.
        deadline = time.monotonic() + self.message_timeout + 30
        while self._outstanding > 0:
            if time.monotonic() >= deadline:
                raise KafkaDeliveryError(f"{self.uri}: {self._outstanding} messages have no "
                                         f"delivery report after {self.message_timeout + 30:.0f}s")
            self._producer.flush(1.0)

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            # The idempotent producer can no longer guarantee order and no duplicates
            # (e.g. the broker lost its sequence): this instance must be replaced.
            self._fatal = error
            log.error("%s: fatal producer error: %s", self.uri, error.str())
        else:
            # Brokers down, a TLS or SASL failure: librdkafka keeps retrying; a message it
            # cannot deliver in message.timeout.ms fails the commit.
            log.warning("%s: %s", self.uri, error.str())

    def _restart_producer(self) -> None:
        old, self._fatal = self._producer, None
        # Whatever the dead producer still holds comes back as failed reports (purged), to
        # be produced again by the new one.
        old.purge()
        old.flush(0)
        self._outstanding = 0
        self._producer = self._new_producer()
