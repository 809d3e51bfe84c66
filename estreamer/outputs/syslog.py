"""Syslog and plain network streams: UDP, TCP and TLS.

Forms (see docs/outputs.md for the URIs):
* eNcore's `udp://host:port` and `tcp://host:port`: each line as is (one datagram per line;
  newline-terminated on TCP), exactly what eNcore sent.
* `syslog+udp://`, `syslog+tcp://`, `syslog+tls://` (and `tls://`): each line wrapped in an
  RFC 5424 header (or RFC 3164 with `"syslogFormat": "rfc3164"`), framed on TCP/TLS by octet
  counting (RFC 6587, `"framing": "newline"` for receivers that want LF). A line that already
  starts with an RFC 3164 header (the `cef` format's `<13>MMM dd HH:MM:SS host`) is not
  wrapped twice: its header is replaced.

Acknowledgement: TCP and TLS `flush(durable=True)` returns once every frame was written to
the socket and the socket flushed (for TLS, encrypted and handed to the kernel); a connection
that breaks is reopened with backoff and the frames not yet written are sent again (at least
once). UDP has no acknowledgement at all: `flush` returns once the datagrams were handed to
the kernel, so a UDP output can lose events silently and cannot be durable.

Queue: frames wait in a bounded queue (`queueSize` lines) until the next flush. When it is
full, policy `block` (default) sends at once, so the pipeline, and behind it the FMC, wait:
nothing is lost. A receiver that stops reading is waited for on the same connection (what
it has not taken is not resent, so it gets nothing twice); after `retryFor` seconds without
progress the flush fails (the run reports the output, backs off and tries again, the
bookmark staying behind) while the connection and the unsent bytes are kept.
Policy `drop` drops the new lines and counts them (`stats.dropped`).
UDP datagrams longer than `maxDatagram` bytes (default 1472, one Ethernet frame: no IP
fragmentation) are truncated (`oversize: truncate`, RFC 5426 allows it) or dropped
(`oversize: drop`); either is counted (`stats.truncated`, `stats.dropped`)."""

from __future__ import annotations

import logging
import re
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

log = logging.getLogger("SyslogStream")

SEND_TICK = 1.0
"""Longest a blocked send waits before it looks at the clock (seconds)."""


class _Stalled(Exception):
    """The receiver took nothing for `retryFor` seconds; the connection is still up."""


_RFC3164_HEAD = re.compile(rb"^<(\d{1,3})>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d \S+ ")


@dataclass
class StreamStats:
    sent: int = 0
    dropped: int = 0
    truncated: int = 0
    reconnects: int = 0


class NetworkOutput:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        transport: str = "udp",  # udp | tcp | tls
        syslog: str | None = None,  # None (lines as is) | rfc5424 | rfc3164
        framing: str = "octet-counting",  # tcp/tls with syslog: octet-counting | newline
        context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        queue_size: int = 10000,
        overflow: str = "block",
        max_datagram: int = 1472,
        oversize: str = "truncate",
        facility: int = 1,
        severity: int = 5,
        app_name: str = "estreamer",
        hostname: str | None = None,
        connect_timeout: float = 10.0,
        retry_for: float = 60.0,
        first_backoff: float = 0.2,
        max_backoff: float = 10.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if transport not in ("udp", "tcp", "tls"):
            raise ValueError(f"transport must be udp, tcp or tls, got {transport!r}")
        if syslog not in (None, "rfc5424", "rfc3164"):
            raise ValueError(f"syslogFormat must be rfc5424 or rfc3164, got {syslog!r}")
        if overflow not in ("block", "drop") or oversize not in ("truncate", "drop"):
            raise ValueError("overflow must be block or drop; oversize truncate or drop")
        self.host, self.port, self.transport = host, port, transport
        self.syslog, self.framing = syslog, framing
        self.context = context
        if transport == "tls" and context is None:
            self.context = ssl.create_default_context()
        self.server_hostname = server_hostname or host
        self.queue_size, self.overflow = queue_size, overflow
        self.max_datagram, self.oversize = max_datagram, oversize
        self.pri = facility * 8 + severity
        self.app_name = app_name
        self.hostname = hostname or socket.gethostname() or "-"
        self.connect_timeout, self.retry_for = connect_timeout, retry_for
        self.first_backoff, self.max_backoff = first_backoff, max_backoff
        self.clock, self.sleep = clock, sleep
        self.stats = StreamStats()
        self._queue: deque[bytes] = deque()
        # Frames being sent and how many of their bytes the connection took: kept across a
        # stall, so the next try goes on where the last stopped instead of starting over.
        self._inflight: list[bytes] = []
        self._inflight_sent = 0
        self._sock: socket.socket | None = None
        self._closed = False

    # ------------------------------------------------------------------ Output

    def write(self, lines: Sequence[bytes]) -> None:
        if self._closed:
            raise ValueError("write to a closed network output")
        if self.overflow == "block" and len(self._queue) + len(lines) > self.queue_size:
            # Send first, before taking any of these lines: if it fails, none of them was
            # taken and the pipeline offers them again (taking some, then failing, would
            # make the pipeline offer those twice). The queue holds at most one batch more.
            self._send_queue()
        for line in lines:
            if len(self._queue) >= self.queue_size and self.overflow == "drop":
                self.stats.dropped += 1
                continue
            self._queue.append(self._frame(line))

    def flush(self, durable: bool) -> None:
        self._send_queue()

    def queued(self) -> int:
        """Lines waiting to be sent (the monitor's queue depth)."""
        return len(self._queue)

    def close(self) -> None:
        if self._closed:
            return
        try:
            self._send_queue()
        finally:
            self._closed = True
            self._disconnect()

    # ------------------------------------------------------------------ framing

    def _frame(self, line: bytes) -> bytes:
        message = self._wrap(line) if self.syslog else line
        if self.transport == "udp":
            return message
        if self.syslog and self.framing == "octet-counting":
            return b"%d %s" % (len(message), message)
        return message + b"\n"

    def _wrap(self, line: bytes) -> bytes:
        head = _RFC3164_HEAD.match(line)
        if head and self.syslog == "rfc3164":
            return line  # already a complete RFC 3164 message
        body = line[head.end():] if head else line
        now = self.clock()
        if self.syslog == "rfc3164":
            stamp = time.strftime("%b %d %H:%M:%S", time.gmtime(now)).encode()
            if stamp[4:5] == b"0":
                stamp = stamp[:4] + b" " + stamp[5:]  # RFC 3164 pads the day with a space
            return b"<%d>%s %s %s: %s" % (self.pri, stamp, self.hostname.encode(),
                                          self.app_name.encode(), body)
        stamp = datetime.fromtimestamp(now, UTC).isoformat(timespec="microseconds")
        return b"<%d>1 %s %s %s - - - %s" % (
            self.pri, stamp.replace("+00:00", "Z").encode(), self.hostname.encode(),
            self.app_name.encode(), body)

    # ------------------------------------------------------------------ sending

    def _send_queue(self) -> None:
        if self.transport == "udp":
            self._send_datagrams()
            return
        deadline = self.clock() + self.retry_for
        backoff = self.first_backoff
        while self._queue or self._inflight:
            try:
                sock = self._sock or self._connect()
                # Send in chunks, dropping each from the queue only once it was written, so
                # a broken connection resends exactly what may not have arrived.
                while self._queue or self._inflight:
                    if not self._inflight:
                        size = 0
                        while self._queue and size < 65536:
                            self._inflight.append(self._queue.popleft())
                            size += len(self._inflight[-1])
                    self._send_inflight(sock, deadline)
                    deadline = self.clock() + self.retry_for  # progress: patience anew
            except _Stalled as exc:
                # Not a broken connection: keep it and the unsent bytes for the next try.
                raise ConnectionError(
                    f"{self.transport}://{self.host}:{self.port}: the receiver took nothing "
                    f"for {self.retry_for:g} s ({len(self._queue) + len(self._inflight)} "
                    f"lines waiting)") from exc
            except OSError as exc:
                # Broken: the frames in flight go again, whole, on a new connection.
                self._queue.extendleft(reversed(self._inflight))
                self._inflight, self._inflight_sent = [], 0
                self._disconnect()
                if self.clock() >= deadline:
                    raise ConnectionError(
                        f"{self.transport}://{self.host}:{self.port}: cannot deliver "
                        f"{len(self._queue)} lines: {exc}") from exc
                log.warning("%s://%s:%d: %s; retrying in %.1fs", self.transport, self.host,
                            self.port, exc, backoff)
                self.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                self.stats.reconnects += 1

    def _send_inflight(self, sock: socket.socket, deadline: float) -> None:
        """Send the frames in flight from where the last try stopped; raise _Stalled when
        the receiver takes nothing until `deadline`."""
        data = memoryview(b"".join(self._inflight))[self._inflight_sent:]
        while data:
            try:
                sent = sock.send(data)
            except TimeoutError:
                if self.clock() >= deadline:
                    raise _Stalled() from None
                continue
            data = data[sent:]
            self._inflight_sent += sent
        self.stats.sent += len(self._inflight)
        self._inflight, self._inflight_sent = [], 0

    def _send_datagrams(self) -> None:
        sock = self._sock or self._connect()
        while self._queue:
            datagram = self._queue.popleft()
            if len(datagram) > self.max_datagram:
                if self.oversize == "drop":
                    self.stats.dropped += 1
                    continue
                datagram = datagram[: self.max_datagram]
                self.stats.truncated += 1
            try:
                sock.send(datagram)
            except OSError as exc:
                # No receiver (ICMP port unreachable) or no route: UDP promises nothing,
                # so count the loss and go on rather than stall the stream.
                self.stats.dropped += 1
                log.debug("udp://%s:%d: %s", self.host, self.port, exc)
                continue
            self.stats.sent += 1

    def _connect(self) -> socket.socket:
        if self.transport == "udp":
            family = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
            sock = socket.socket(family[0], socket.SOCK_DGRAM)
            sock.connect(family[4])
        else:
            sock = socket.create_connection((self.host, self.port), self.connect_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.transport == "tls":
                assert self.context is not None
                sock = self.context.wrap_socket(sock, server_hostname=self.server_hostname)
            # Sends wake up at least this often to see whether retryFor ran out.
            sock.settimeout(max(0.05, min(self.connect_timeout, SEND_TICK, self.retry_for)))
        self._sock = sock
        return sock

    def _disconnect(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None
