"""One TLS connection to an eStreamer server, driving a `ClientSession`."""

import logging
import socket
import ssl
from collections.abc import Iterator

from estreamer.client.protocol import ClientSession, SessionEvent

log = logging.getLogger("Connection")

RECV_SIZE = 1 << 18


class ConnectionClosed(EOFError):
    """The server closed the connection (with no eStreamer Error message). An EOFError, so
    `tls.explain_tls_failure` can tell what a close right after the handshake means."""


class TlsTruncated(ConnectionClosed):
    """The connection ended without TLS's close_notify: the TCP stream stopped, possibly
    inside a TLS record. A server that closes on purpose says so in TLS first; without it
    the end was a crash, a cut link, or someone on the path ending the stream (the
    truncation TLS's close_notify exists to reveal). Retried like any close, but named."""


class Connection:
    def __init__(
        self,
        host: str,
        port: int,
        context: ssl.SSLContext,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 2.0,
    ):
        self.host = host
        self.port = port
        self.context = context
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.sock: ssl.SSLSocket | None = None

    def open(self) -> None:
        log.info("Connecting to %s:%d", self.host, self.port)
        raw = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        try:
            # No SNI and no hostname check: FMCs are addressed by IP and their certificates
            # rarely name it; the chain itself is still verified by the context.
            # suppress_ragged_eofs=False: an end without close_notify raises instead of
            # reading as an orderly close, so a truncated stream can be told apart.
            self.sock = self.context.wrap_socket(raw, server_hostname=None,
                                                 suppress_ragged_eofs=False)
        except BaseException:
            raw.close()
            raise
        self.sock.settimeout(self.read_timeout)
        log.info("Using %s with %s", self.sock.version(), self.sock.cipher()[0])

    def send(self, data: bytes) -> None:
        if data:
            assert self.sock is not None
            self.sock.sendall(data)

    def events(self, session: ClientSession) -> Iterator[SessionEvent | None]:
        """Yield session events as bytes arrive; None on each read timeout (an idle tick,
        so the caller can commit, report and check for a stop)."""
        assert self.sock is not None
        while True:
            try:
                data = self.sock.recv(RECV_SIZE)
            except TimeoutError:
                yield None
                continue
            except ssl.SSLEOFError as exc:
                framer = session.decoder.framer
                inside = (f", {framer.buffered} bytes into an unfinished eStreamer message"
                          if framer.buffered else "")
                raise TlsTruncated(
                    f"the connection from {self.host}:{self.port} ended without a TLS "
                    f"close_notify after {framer.offset + framer.buffered} bytes{inside}: "
                    f"TLS truncation (the server crashed, the link was cut, or something on "
                    f"the path ended the stream) ({exc.reason or exc})") from exc
            if not data:
                raise ConnectionClosed(f"the server {self.host}:{self.port} closed the connection")
            yield from session.receive(data)
            self.send(session.data_to_send())

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None
