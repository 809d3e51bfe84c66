"""The main job: connect, request, stream into the pipeline, report, reconnect, stop cleanly.

Failures that a retry cannot fix (certificates, passwords, a server that refuses us right
after the handshake) end the run with one plain sentence; network hiccups and server
errors are retried with backoff, resuming from the bookmark."""

import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from estreamer.client.connection import Connection, ConnectionClosed
from estreamer.client.protocol import (
    BundleReceived,
    ClientSession,
    ServerError,
    SessionFailed,
)
from estreamer.errors import EstreamerError
from estreamer.pipeline import Pipeline
from estreamer.protocol.flags import TIMESTAMP_NOW, RequestFlags
from estreamer.protocol.records import Record
from estreamer.protocol.stream import Notice, StreamFault

log = logging.getLogger("Receiver")
monitor_log = logging.getLogger("Monitor")


class FatalRunError(EstreamerError):
    """The run cannot go on without the user changing something; the message says what."""


@dataclass
class RunResult:
    handled: int
    written: int
    duplicates: int
    seconds: float
    connections: int
    reason: str

    @property
    def rate(self) -> float:
        return self.handled / self.seconds if self.seconds > 0 else 0.0


def format_bookmark(timestamp: int | None) -> str:
    if timestamp is None:
        return "none"
    return f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(timestamp))} UTC ({timestamp})"


class Runner:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        context: ssl.SSLContext,
        pipeline: Pipeline,
        flags: RequestFlags,
        events: Iterable[tuple[int, int]],
        start_timestamp: int,
        connect_timeout: float = 10.0,
        read_timeout: float = 2.0,
        idle_timeout: float = 300.0,
        monitor_period: float = 120.0,
        stop: threading.Event | None = None,
        explain: Callable[[BaseException], str] | None = None,
        max_retries: int | None = None,
        on_record: Callable[[Record], None] | None = None,
        first_retry_delay: float = 2.0,
    ):
        """`on_record` is called with each record handed to the outputs (not duplicates,
        not filtered ones)."""
        self.host = host
        self.port = port
        self.context = context
        self.pipeline = pipeline
        self.flags = flags
        self.events = tuple(events)
        self.start_timestamp = start_timestamp
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.idle_timeout = idle_timeout
        self.monitor_period = monitor_period
        self.stop = stop or threading.Event()
        self.explain = explain or (lambda exc: f"{type(exc).__name__}: {exc}")
        self.max_retries = max_retries
        self.on_record = on_record
        self.first_retry_delay = first_retry_delay
        self.connections = 0
        self._started = 0.0
        self._last_report = 0.0

    # -- the loop -------------------------------------------------------------------------

    def run(
        self,
        max_records: int | None = None,
        duration: float | None = None,
        stop_when_idle: float | None = None,
    ) -> RunResult:
        """Stream until stopped (signal / `stop` event), or until `max_records` records,
        `duration` seconds, or `stop_when_idle` seconds without records after the first
        (caught up with the server's history) — whichever comes first."""
        self._started = self._last_report = time.monotonic()
        deadline = None if duration is None else self._started + duration
        monitor_log.info("Starting. 0 handled; average rate 0 ev/sec;")
        failures = 0
        reason = "stopped"
        try:
            while not self.stop.is_set():
                try:
                    reason = self._one_connection(max_records, deadline, stop_when_idle)
                    failures = 0
                    if reason != "reconnect":
                        break
                except FatalRunError:
                    raise
                except (OSError, ConnectionClosed, EstreamerError) as exc:
                    failures += 1
                    # A close mid-stream is just that; only a close before any answer is
                    # the FMC's silent certificate refusal that explain() describes.
                    sentence = str(exc) if isinstance(exc, ConnectionClosed) else self.explain(exc)
                    if self.max_retries is not None and failures > self.max_retries:
                        raise FatalRunError(sentence) from exc
                    delay = self._backoff(failures)
                    log.error("%s Retrying in %.0f s.", sentence, delay)
                    if self.stop.wait(delay):
                        break
        finally:
            self.pipeline.close()
        stats = self.pipeline.stats
        seconds = time.monotonic() - self._started
        result = RunResult(
            stats.received, stats.written, stats.duplicates, seconds, self.connections, reason
        )
        monitor_log.info(
            "Stopped (%s). %d handled (%d written, %d resent duplicates dropped); "
            "average rate %.2f ev/sec; bookmark %s",
            reason,
            result.handled,
            result.written,
            result.duplicates,
            result.rate,
            format_bookmark(self.pipeline.bookmark.timestamp),
        )
        return result

    def _backoff(self, failures: int) -> float:
        """Seconds to wait before reconnect attempt `failures`: doubling from
        `first_retry_delay` (2, 4, 8 … by default), at most 60."""
        return min(60.0, self.first_retry_delay * 2.0 ** min(failures - 1, 6))

    def initial_timestamp(self) -> int:
        """The first connection honours `start`; every reconnect resumes from the bookmark
        (or, when nothing has been bookmarked yet, from when the run began, so a 'now'
        start does not skip what happened during the outage)."""
        if self.connections == 0:
            if self.start_timestamp == TIMESTAMP_NOW:
                self._now_epoch = int(time.time())
            return self.start_timestamp
        bookmarked = self.pipeline.bookmark.timestamp
        if bookmarked is not None:
            return bookmarked
        return getattr(self, "_now_epoch", self.start_timestamp)

    def _one_connection(
        self, max_records: int | None, deadline: float | None, stop_when_idle: float | None
    ) -> str:
        initial = self.initial_timestamp()
        session = ClientSession(initial, self.flags, self.events)
        connection = Connection(
            self.host,
            self.port,
            self.context,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
        )
        try:
            connection.open()
        except ssl.SSLError as exc:
            # Certificates, CAs and TLS versions do not fix themselves: no retry.
            raise FatalRunError(self.explain(exc)) from exc
        self.connections += 1
        got_response = False
        last_data = last_record = time.monotonic()
        pipeline = self.pipeline
        try:
            log.info(
                "EventStreamRequest: initial timestamp %d, flags 0x%08x", initial, int(self.flags)
            )
            connection.send(session.start())
            try:
                for event in connection.events(session):
                    now = time.monotonic()
                    kind = type(event)
                    if kind is Record:
                        got_response = True
                        last_data = last_record = now
                        if pipeline.handle(event) and self.on_record is not None:
                            self.on_record(event)
                        if max_records is not None and pipeline.stats.received >= max_records:
                            return "record limit reached"
                        continue
                    if kind is BundleReceived:
                        got_response = True
                        last_data = now
                        pipeline.maybe_commit()
                    elif event is None:
                        pipeline.maybe_commit()
                        idle = now - last_record
                        if stop_when_idle is not None and pipeline.stats.received and (
                            idle >= stop_when_idle
                        ):
                            return "caught up"
                        if now - last_data > self.idle_timeout:
                            log.warning(
                                "No data or keepalive for %.0f s; reconnecting.", now - last_data
                            )
                            return "reconnect"
                    elif kind is ServerError:
                        raise EstreamerError(f"the server sent error {event.code}: {event.text}")
                    elif kind is SessionFailed:
                        raise FatalRunError(event.reason)
                    elif kind is StreamFault:
                        log.error("offset %d: %s", event.offset, event.message)
                    elif kind is Notice:
                        log.warning("%s", event.message)
                    if session.keepalives:
                        got_response = True
                        last_data = now
                        session.keepalives = 0
                    self._report(now)
                    if self.stop.is_set():
                        return "stopped"
                    if deadline is not None and now >= deadline:
                        return "duration reached"
            except (ConnectionClosed, ssl.SSLError) as exc:
                if not got_response:
                    # FMC closes silently when the certificate CN is not the client's
                    # address; with TLS 1.3 a rejected client certificate also shows up
                    # only here, at the first read.
                    raise FatalRunError(self.explain(exc)) from exc
                raise
        finally:
            connection.close()
        return "stopped"

    def _report(self, now: float) -> None:
        if now - self._last_report < self.monitor_period:
            return
        self._last_report = now
        stats = self.pipeline.stats
        elapsed = now - self._started
        rate = stats.received / elapsed if elapsed > 0 else 0.0
        monitor_log.info(
            "Running. %d handled; average rate %.2f ev/sec; bookmark %s",
            stats.received,
            rate,
            format_bookmark(self.pipeline.bookmark.timestamp),
        )
