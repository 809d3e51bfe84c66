"""The main job: connect, request, stream into the pipeline, report, reconnect, stop cleanly.

Failures that a retry cannot fix (certificates, passwords, a server that refuses us right
after the handshake) end the run with one plain sentence; network hiccups and server
errors are retried with backoff, resuming from the bookmark.

Reconnecting, in detail:

* Backoff: attempt n after n failures in a row waits `first_retry_delay · 2^(n-1)` seconds,
  at most `max_retry_delay` (the config's `reconnectDelay`, default 2 s, and
  `maxReconnectDelay`, default `MAX_RETRY_DELAY`), times a random factor in [0.5, 1]
  ("equal jitter": many clients cut off by one FMC restart do not come back in lock step,
  and no wait is ever shorter than half the nominal one). Each wait is logged with its
  attempt number. A connection that delivered data before it failed starts the count again
  at 1: a link that drops once an hour is not a server that has been down for an hour.
* Silence: `responseTimeout` keeps eNcore's meaning, the longest one socket read waits
  before the loop looks up (to commit, report, notice a stop). It is not a verdict on the
  FMC: an idle FMC may legitimately send nothing for a while. The verdict is the idle
  timeout: no byte at all (no data, no Null keepalive) for `idle_timeout` seconds, by
  default `IDLE_READS` read timeouts (2 minutes with eNcore's responseTimeout of 2 s),
  means the FMC or the path to it hung (the config's `idleTimeout` sets it directly); the
  client drops the connection and reconnects with backoff, resuming from the bookmark.
* A close before the server sent a single byte is what an FMC does when the certificate's
  CN is not the client's address, but also what a server restart can look like. Two in a
  row before this run ever streamed are taken as the CN refusal and end the run with that
  sentence; otherwise it is retried like any other close."""

import contextlib
import fcntl
import logging
import random
import ssl
import termios
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from estreamer.client.connection import Connection, ConnectionClosed
from estreamer.client.protocol import (
    BundleReceived,
    ClientSession,
    RawRecords,
    ServerError,
    SessionFailed,
)
from estreamer.client.wirelog import wire_tap
from estreamer.errors import EstreamerError, OutputError
from estreamer.pipeline import OutputState, Pipeline
from estreamer.protocol.flags import TIMESTAMP_NOW, RequestFlags
from estreamer.protocol.records import Record
from estreamer.protocol.stream import Notice, StreamFault

log = logging.getLogger("Receiver")
monitor_log = logging.getLogger("Monitor")


MAX_RETRY_DELAY = 60.0
"""Longest wait between reconnect attempts, in seconds (before jitter)."""
IDLE_READS = 60
"""Default idle timeout, in read timeouts (`responseTimeout`)."""
SNAPSHOT_INTERVAL = 1.0
"""Seconds between snapshots handed to `on_report` (status file, metrics)."""
BEHIND_REPORTS = 2
"""Reports in a row in which the lag grew while records flowed before it is a warning."""
CATCHING_UP = 60.0
"""Lag in seconds from which the monitor line shows catch-up progress (an old bookmark or
start 0); below it the client is simply live."""
"""Reports in a row in which the lag grew while records flowed before it is a warning."""


class FatalRunError(EstreamerError):
    """The run cannot go on without the user changing something; the message says what."""


class ServerSilent(EstreamerError):
    """No byte from the server for longer than the idle timeout."""


class ClosedBeforeAnswer(EstreamerError):
    """The server closed the connection before sending a single byte."""


def idle_timeout_for(response_timeout: float) -> float:
    """The idle timeout that goes with eNcore's `responseTimeout` (see the module doc)."""
    return IDLE_READS * response_timeout


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


def _alert_behind(connection: Connection, exc: BaseException) -> BaseException:
    """With TLS 1.3 the server judges the client certificate after the client's handshake
    is done, so a rejection can first show up as EOF on the request's write while the
    server's alert (which names the reason) still waits to be read: read it if it is there."""
    if not isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError) or connection.sock is None:
        return exc
    try:
        connection.sock.recv(1)
    except ssl.SSLError as alert:
        if not isinstance(alert, ssl.SSLEOFError | ssl.SSLZeroReturnError):
            return alert
    except OSError:
        pass
    return exc


@dataclass(frozen=True)
class MonitorSnapshot:
    """What the monitor knows at one moment: for the monitor line, the status file and the
    metrics endpoint. `lag` is now minus the newest archive timestamp received (None until a
    record with one arrives); `recv_queue` is the socket's unread bytes in the kernel, what
    `netstat` shows as Recv-Q (None when there is no connection or the OS cannot say)."""

    handled: int
    written: int
    duplicates: int
    malformed: int
    rate: float
    seconds: float
    bookmark: int | None
    newest: int | None
    lag: float | None
    bytes_received: int
    connections: int
    recv_queue: int | None
    counts: dict[int, int] = field(default_factory=dict)
    # Decode errors by (record type, kind): kinds from pipeline.decode_error_kind, and
    # (None, "message") / (None, "stream") for messages that could not be used at all.
    decode_errors: dict[tuple[int | None, str], int] = field(default_factory=dict)
    outputs: tuple[OutputState, ...] = ()  # queue depth and failures, per output


class LagWatch:
    """Tells "falling behind" from "the FMC is quiet": the gap between now and the newest
    archive timestamp grows from report to report *while records keep arriving*. A quiet
    FMC sends nothing, so its gap grows too, but with no records in between."""

    def __init__(self, reports: int = BEHIND_REPORTS, slack: float = 1.0):
        self.reports = reports
        self.slack = slack  # seconds of growth that are just timing noise
        self.growing = 0
        self.eta: float | None = None  # seconds until caught up, while the gap shrinks
        self._last: float | None = None
        self._at: float | None = None
        self._handled = 0

    def observe(self, lag: float | None, handled: int, now: float | None = None) -> float | None:
        """The growth since the last report when it counts as falling behind, else None.
        `now` (monotonic) lets it estimate, while the gap shrinks, when it will be closed."""
        flowed = handled > self._handled
        self._handled = handled
        previous, self._last = self._last, lag
        at, self._at = self._at, now
        self.eta = None
        if (lag is not None and previous is not None and now is not None and at is not None
                and lag < previous - self.slack and now > at):
            closing = (previous - lag) / (now - at)  # archive seconds gained per second
            self.eta = lag / closing
        if lag is None or previous is None or not flowed or lag <= previous + self.slack:
            self.growing = 0
            return None
        self.growing += 1
        return lag - previous if self.growing >= self.reports else None


def receive_queue(sock: object) -> int | None:
    """Bytes the kernel holds for this socket that the client has not read yet (FIONREAD,
    the Recv-Q of `netstat -an`); None when it cannot be asked."""
    fileno = getattr(sock, "fileno", None)
    if fileno is None:
        return None
    with contextlib.suppress(OSError, ValueError):
        buf = bytearray(4)
        fcntl.ioctl(fileno(), termios.FIONREAD, buf)
        return int.from_bytes(buf, "little")
    return None


def format_lag(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def format_bookmark(timestamp: int | None) -> str:
    if timestamp is None:
        return "none"
    return f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(timestamp))} UTC ({timestamp})"



def close_pipeline(pipeline: Pipeline, *, failing: bool) -> None:
    """Flush the outputs and save the bookmark at the end of a run. When the run is already
    `failing`, a second (output) failure is only logged, so it never hides the reason the
    run is ending; otherwise it ends the run with its sentence."""
    try:
        pipeline.close()
    except OutputError as exc:
        if failing:
            log.error("%s", exc)
        else:
            raise FatalRunError(str(exc)) from exc

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
        rng: random.Random | None = None,
        max_retry_delay: float = MAX_RETRY_DELAY,
    ):
        """`on_record` is called with each record handed to the outputs (not duplicates,
        not filtered ones). `rng` draws the backoff jitter (a seeded one makes it
        repeatable)."""
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
        self.max_retry_delay = max(max_retry_delay, first_retry_delay)
        self.rng = rng or random.Random()
        self.connections = 0
        self.streamed = False  # some connection of this run got an answer from the server
        self._progress = False  # the current connection delivered data
        self._started = 0.0
        self._last_report = 0.0
        # The monitor. Set by the caller after construction (they are not part of the
        # stream's behaviour): per-type counts on the monitor line, and a callback that gets
        # a MonitorSnapshot every SNAPSHOT_INTERVAL seconds (status file, metrics).
        self.monitor_details = False
        self.on_report: Callable[[MonitorSnapshot], None] | None = None
        self.counts: Counter[int] = Counter()  # records received, by record type
        # time.monotonic() of the first and the latest record received (None: none yet)
        self.first_record_at: float | None = None
        self.last_record_at: float | None = None
        self.faults: Counter[str] = Counter()  # unusable messages: "message", "stream"
        self.newest: int | None = None  # newest archive timestamp received
        self.lag_watch = LagWatch()
        self._last_snapshot = 0.0
        self._connection: Connection | None = None
        self._session: ClientSession | None = None
        self._bytes_before = 0  # bytes received on the connections before the current one

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
        closed_before_answer = 0  # such closes in a row
        reason = "stopped"
        try:
            while not self.stop.is_set():
                self._progress = False
                try:
                    reason = self._one_connection(max_records, deadline, stop_when_idle)
                    break
                except FatalRunError:
                    raise
                except (OSError, ConnectionClosed, EstreamerError) as exc:
                    failures = 1 if self._progress else failures + 1
                    if isinstance(exc, ClosedBeforeAnswer):
                        closed_before_answer += 1
                        sentence = str(exc)
                        if closed_before_answer >= 2 and not self.streamed:
                            raise FatalRunError(sentence) from exc
                    else:
                        closed_before_answer = 0
                        # A close mid-stream is just that: explain() would read it as the
                        # FMC's silent certificate refusal.
                        sentence = (
                            str(exc)
                            if isinstance(exc, ConnectionClosed | ServerSilent | OutputError)
                            else self.explain(exc)
                        )
                    if self.max_retries is not None and failures > self.max_retries:
                        raise FatalRunError(sentence) from exc
                    delay = self._backoff(failures)
                    log.error("%s. Reconnect attempt %d in %.1f s.", sentence.rstrip("."),
                              failures, delay)
                    if self.stop.wait(delay):
                        break
        except BaseException:
            close_pipeline(self.pipeline, failing=True)
            raise
        close_pipeline(self.pipeline, failing=False)
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
        `first_retry_delay` (2, 4, 8 … by default) up to `max_retry_delay`, times a jitter
        factor in [0.5, 1]."""
        nominal = min(self.max_retry_delay, self.first_retry_delay * 2.0 ** min(failures - 1, 16))
        return nominal * self.rng.uniform(0.5, 1.0)

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
        session = ClientSession(initial, self.flags, self.events, tap=wire_tap(),
                                decode_records=not getattr(self.pipeline, "decodes_elsewhere",
                                                           False))
        connection = Connection(
            self.host,
            self.port,
            self.context,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
        )
        self._bytes_before = self.bytes_received()
        self._session, self._connection = session, connection
        try:
            connection.open()
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
            raise  # a close during the handshake: a restarting server or a broken path
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
            try:
                connection.send(session.start())
                for event in connection.events(session):
                    now = time.monotonic()
                    kind = type(event)
                    if kind is Record:
                        got_response = self.streamed = self._progress = True
                        last_data = last_record = self.last_record_at = now
                        if self.first_record_at is None:
                            self.first_record_at = now
                        self.counts[event.record_type] += 1
                        stamp = event.archive_timestamp
                        if stamp is not None and (self.newest is None or stamp > self.newest):
                            self.newest = stamp
                        if pipeline.handle(event) and self.on_record is not None:
                            self.on_record(event)
                        if max_records is not None and pipeline.stats.received >= max_records:
                            return "record limit reached"
                        continue
                    if kind is RawRecords:  # workerProcesses: see estreamer.parallel
                        types, stamp = pipeline.handle_raw(event.records, event.offsets)
                        got_response = self.streamed = self._progress = True
                        last_data = last_record = self.last_record_at = now
                        if self.first_record_at is None:
                            self.first_record_at = now
                        counts = self.counts
                        for record_type in types:  # Counter.update's Mapping check costs more
                            counts[record_type] += 1
                        if stamp is not None and (self.newest is None or stamp > self.newest):
                            self.newest = stamp
                        if max_records is not None and pipeline.stats.received >= max_records:
                            return "record limit reached"
                        continue
                    if kind is BundleReceived:
                        got_response = self.streamed = self._progress = True
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
                            raise ServerSilent(
                                f"No data or keepalive from {self.host}:{self.port} for "
                                f"{now - last_data:.1f} s (idle timeout {self.idle_timeout:g} s)."
                            )
                    elif kind is ServerError:
                        raise EstreamerError(f"the server sent error {event.code}: {event.text}")
                    elif kind is SessionFailed:
                        raise FatalRunError(event.reason)
                    elif kind is StreamFault:
                        log.error("offset %d: %s", event.offset, event.message)
                        # A record's own fault comes with the record, which the pipeline
                        # counts (once, not for resent duplicates); count the rest here.
                        if not event.message.startswith("record type "):
                            self.faults["stream" if event.fatal else "message"] += 1
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
                framer = session.decoder.framer
                if not got_response and framer.offset + framer.buffered == 0:
                    exc = _alert_behind(connection, exc)
                    if isinstance(exc, ssl.SSLError) and not isinstance(
                        exc, ssl.SSLEOFError | ssl.SSLZeroReturnError
                    ):
                        # With TLS 1.3 a rejected client certificate shows up only here, at
                        # the first read, as the server's alert.
                        raise FatalRunError(self.explain(exc)) from exc
                    # FMC closes silently when the certificate CN is not the client's
                    # address (run() decides whether this was that).
                    raise ClosedBeforeAnswer(self.explain(exc)) from exc
                raise
        finally:
            connection.close()
        return "stopped"

    def bytes_received(self) -> int:
        """Bytes read from the server over the whole run (the framer counts them)."""
        if self._session is None:
            return self._bytes_before
        framer = self._session.decoder.framer
        return self._bytes_before + framer.offset + framer.buffered

    def snapshot(self, now: float | None = None) -> MonitorSnapshot:
        now = time.monotonic() if now is None else now
        stats = self.pipeline.stats
        elapsed = now - self._started
        connection = self._connection
        return MonitorSnapshot(
            handled=stats.received,
            written=stats.written,
            duplicates=stats.duplicates,
            malformed=stats.malformed,
            rate=stats.received / elapsed if elapsed > 0 else 0.0,
            seconds=elapsed,
            bookmark=self.pipeline.bookmark.timestamp,
            newest=self.newest,
            lag=None if self.newest is None else max(0.0, time.time() - self.newest),
            bytes_received=self.bytes_received(),
            connections=self.connections,
            recv_queue=receive_queue(connection.sock) if connection and connection.sock
            else None,
            counts=dict(self.counts),
            decode_errors={**stats.decode_errors,
                           **{(None, kind): n for kind, n in self.faults.items()}},
            outputs=tuple(self.pipeline.output_states()),
        )

    def _report(self, now: float) -> None:
        if self.on_report is not None and now - self._last_snapshot >= SNAPSHOT_INTERVAL:
            self._last_snapshot = now
            self.on_report(self.snapshot(now))
        if now - self._last_report < self.monitor_period:
            return
        self._last_report = now
        snap = self.snapshot(now)
        # eNcore's wording up to "ev/sec;", so `grep ev/sec estreamer.log` still works.
        line = (f"Running. {snap.handled} handled; average rate {snap.rate:.2f} ev/sec; "
                f"bookmark {format_bookmark(snap.bookmark)}")
        growth = self.lag_watch.observe(snap.lag, snap.handled, now)
        if snap.lag is not None:
            line += f"; newest event {format_lag(snap.lag)} old"
            eta = self.lag_watch.eta
            if eta is not None and snap.lag >= CATCHING_UP:
                line += f" (catching up: about {format_lag(eta)} to go)"
        if snap.recv_queue is not None:
            line += f"; Recv-Q {snap.recv_queue} bytes"
        if self.monitor_details and snap.counts:
            line += "; by type " + " ".join(f"{t}:{n}" for t, n in sorted(snap.counts.items()))
        monitor_log.info("%s", line)
        if growth is not None and snap.lag is not None:
            monitor_log.warning(
                "Falling behind: the newest event received is %s old and that gap grew %s "
                "since the last report (Recv-Q %s bytes): the FMC sends more than this client "
                "handles; request fewer event types (subscription.records, or the FMC's "
                "eStreamer page) or give this host more CPU.",
                format_lag(snap.lag), format_lag(growth),
                "?" if snap.recv_queue is None else snap.recv_queue,
            )
