"""The FMC emulator: a real mutual-TLS server that speaks eStreamer through `ServerSession`.

One thread accepts; one thread per client does the TLS handshake, the FMC's certificate
CN / source address check, and the session loop (read the client's messages whenever they
come, send bundles as the history has them, a Null keepalive when idle). It logs like the
FMC's `sfestreamer` / `ConnectionHandler`, so its log reads like the one in the TAC notes."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from estreamer.certs import CA_CERT, SERVER_CERT, SERVER_KEY, init_certs
from estreamer.emulator.faults import Fault
from estreamer.emulator.history import History
from estreamer.emulator.ledger import Ledger
from estreamer.emulator.session import ServerSession
from estreamer.tls import peer_common_name, server_context

log = logging.getLogger("Emulator")

HANDSHAKE_TIMEOUT = 10.0
POLL_INTERVAL = 0.05
"""How often an idle session looks for live events (and for stop())."""
DRAIN_TIMEOUT = 0.5
"""How long a closing session reads what the client still sends (see _close)."""
SLOW_TICK = 0.05
"""A `slow` session sends one piece per tick."""


class Emulator:
    """An FMC that streams a seeded history over eStreamer, then live events.

    `Emulator(cert_dir, host, port, *, rate, seed, history_size, bundle_records,
    keepalive_interval, faults, tls_min_version)`:

    - `cert_dir`: a directory made by `estreamer.certs.init_certs` (ca.pem, server.pem,
      server.key; clients use its client.pkcs12 / client.password). When it holds no
      server.pem yet, `init_certs(cert_dir)` is run first, so `estreamer emulate --dir DIR`
      works on an empty directory.
    - `host`, `port`: where to listen (port 0: any free port; `start()` returns it).
      `estreamer emulate --listen HOST:PORT` maps straight onto these two.
    - `rate`: live events per second after the history (0: none; `--rate N`).
    - `seed`: makes the history and the live events reproducible (`--seed S`).
    - `history_size`: how many events the history holds before live events start.
    - `bundle_records`: the most records in one Message Bundle (4002).
    - `keepalive_interval`: seconds without data before a Null keepalive is sent.
    - `faults`: `Fault`s to inject (see `estreamer.emulator.faults`; `Fault.parse("close@3")`
      reads the command-line form).
    - `check_common_name`: compare the client certificate's CN with the source address, as
      the FMC does (on by default).
    - `archive_offset`: seconds added to every archive timestamp sent: with the same `seed`
      as another emulator, this one is its HA standby (same events, its own timestamps).
    - `history_end`: when the history ends (default: now); give a pair the same one, since
      event fields derive from their times.

    `start()` runs it in background threads and returns the bound port; `stop()` ends it;
    `restart(downtime)` stops it and starts it again on the same port, keeping the history,
    the ledger and the session count (so faults for session 1 do not fire again); `ledger`
    records every record sent. Also a context manager (start on enter)."""

    def __init__(
        self,
        cert_dir: str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        rate: float = 1.0,
        seed: int = 0,
        history_size: int = 500,
        bundle_records: int = 100,
        keepalive_interval: float = 5.0,
        faults: Sequence[Fault] = (),
        tls_min_version: str = "1.2",
        check_common_name: bool = True,
        archive_offset: int = 0,
        history_end: int | None = None,
    ):
        self.cert_dir = Path(cert_dir)
        self.host = host
        self.port = port
        self.bundle_records = bundle_records
        self.keepalive_interval = keepalive_interval
        self.faults = tuple(faults)
        self.tls_min_version = tls_min_version
        self.check_common_name = check_common_name
        self.history = History(seed, history_size, rate=rate, end_time=history_end,
                               archive_offset=archive_offset)
        self.ledger = Ledger()
        self.sessions: list[ServerSession] = []  # every session so far, in connect order
        self._context: ssl.SSLContext | None = None
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._restart_lock = threading.Lock()
        self._connections = 0

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> int:
        self._stopping.clear()  # a restart reuses this object
        if not (self.cert_dir / SERVER_CERT).exists():
            init_certs(self.cert_dir)
        self._context = server_context(self.cert_dir / SERVER_CERT, self.cert_dir / SERVER_KEY,
                                       self.cert_dir / CA_CERT,
                                       min_version=self.tls_min_version)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(16)
        listener.settimeout(POLL_INTERVAL * 4)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self.history.advance(time.time())  # live events count from now
        thread = threading.Thread(target=self._accept_loop, name="emulator-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        log.info("Event Streamer:ConnectionHandler [INFO] Listening on %s:%d (%d history "
                 "events, %s live events/s)", self.host, self.port, len(self.history.events),
                 self.history.rate)
        return self.port

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:  # unblocks a thread stuck in sendall to a client that stalled
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        current = threading.current_thread()
        for thread in self._threads:
            if thread is not current:
                thread.join(timeout=5)
        self._threads = []

    def restart(self, downtime: float = 0.0) -> int:
        """Stop, stay down `downtime` seconds (connections are refused meanwhile), start on
        the same port. Returns the port."""
        with self._restart_lock:  # a test's restart and a `restart` fault may overlap
            log.info("Event Streamer:ConnectionHandler [INFO] Restarting (%.1f s down)",
                     downtime)
            self.stop()
            time.sleep(downtime)
            return self.start()

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    # -- connections --------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                sock, address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break  # the listener was closed by stop()
            self._connections += 1
            thread = threading.Thread(target=self._serve, args=(sock, address,
                                                                  self._connections),
                                      name=f"emulator-session-{self._connections}", daemon=True)
            thread.start()
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def _serve(self, sock: socket.socket, address: tuple, number: int) -> None:
        peer = _plain_ip(address[0])
        log.info("Event Streamer:ConnectionHandler [INFO] Accepted IPv%d connection from "
                 "%s:%d/tcp", ipaddress.ip_address(peer).version, peer, address[1])
        self._track(sock)
        tls = None
        try:
            tls = self._handshake(sock, peer)
            if tls is None:
                return
            # wrap_socket detached `sock`: from here on only `tls` can be shut down by stop().
            self._track(tls)
            if self.check_common_name and not self._common_name_matches(tls, peer):
                _close(tls)  # the FMC closes without an eStreamer message (§1)
                return
            self._stream(tls, peer, number)
        finally:
            with self._lock:
                self._sockets.discard(sock)
                self._sockets.discard(tls)  # type: ignore[arg-type]
            for each in (tls, sock):
                if each is not None:
                    with contextlib.suppress(OSError):
                        each.close()
            log.info("Event Streamer:ConnectionHandler [INFO] Child for %s:%d exited",
                     peer, address[1])

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)
        if self._stopping.is_set():  # stop() ran between accept and here
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _handshake(self, sock: socket.socket, peer: str) -> ssl.SSLSocket | None:
        assert self._context is not None
        sock.settimeout(HANDSHAKE_TIMEOUT)
        try:
            tls = self._context.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.error("EventStreamer child(%s):ConnectionHandler [ERROR] SSL_accept failed: %s",
                      peer, exc)
            _close_gently(sock)
            return None
        tls.settimeout(None)
        return tls

    def _common_name_matches(self, tls: ssl.SSLSocket, peer: str) -> bool:
        """The FMC resolves the certificate's CN and compares it with the source address
        (SEED 001: "Resolved CN … to …", "Matched Certificate CN:… to … (IPv4)")."""
        cn = peer_common_name(tls) or ""
        resolved = _resolve(cn)
        prefix = f"EventStreamer child({cn or peer}):ConnectionHandler"
        log.info("%s [INFO] Resolved CN %s to %s", prefix, cn, ", ".join(resolved) or "nothing")
        if peer in resolved:
            log.info("%s [INFO] Matched Certificate CN:%s to %s (IPv%d)", prefix, cn, peer,
                     ipaddress.ip_address(peer).version)
            return True
        log.error("%s [ERROR] Certificate Common Name %s does not match remote host: %s. "
                  "It was issued to a different client.", prefix, cn, peer)
        return False

    def _stream(self, tls: ssl.SSLSocket, peer: str, number: int) -> None:
        session = ServerSession(self.history, connection_id=int(time.time()),
                                session_number=number, bundle_records=self.bundle_records,
                                faults=self.faults, peer=peer)
        with self._lock:
            self.sessions.append(session)
        last_sent = time.monotonic()
        wait = POLL_INTERVAL
        try:
            while not self._stopping.is_set():
                if tls.pending() or select.select([tls], [], [], wait)[0]:
                    data = tls.recv(1 << 16)
                    if not data:
                        log.info("EventStreamer child(%s):sfestreamer [INFO] Client closed the "
                                 "connection (%d acks)", peer, session.acks)
                        return
                    reply = session.receive(data)
                    if reply:
                        self._send(tls, session, reply)
                        last_sent = time.monotonic()
                    if session.closed:
                        _close(tls)
                        return
                wait = POLL_INTERVAL
                if not session.streaming:
                    continue
                self.history.advance(time.time())
                bundle = session.next_bundle()
                if bundle is not None:
                    self._send(tls, session, bundle.data)
                    last_sent = time.monotonic()
                    if bundle.complete and bundle.sequence is not None:
                        self.ledger.append(number, bundle.sequence, bundle.records)
                    if bundle.restart is not None:
                        # Another thread: stop() joins the session threads, this one too.
                        threading.Thread(target=self.restart, args=(bundle.restart,),
                                         name="emulator-restart", daemon=True).start()
                        return
                    if bundle.cut_tls:
                        _cut_tls_record(tls)
                        return
                    if bundle.close_after:
                        _close(tls)
                        return
                    wait = 0.0  # more may be ready: only glance at the socket
                elif time.monotonic() - last_sent >= self.keepalive_interval:
                    keepalive = session.keepalive()  # nothing from a silent session
                    if keepalive:
                        tls.sendall(keepalive)
                    last_sent = time.monotonic()
        except (OSError, ssl.SSLError) as exc:
            # The client may leave at any moment; that ends this session, nothing else.
            log.info("EventStreamer child(%s):sfestreamer [INFO] Connection ended: %s", peer,
                     exc)


    def _send(self, tls: ssl.SSLSocket, session: ServerSession, data: bytes) -> None:
        """sendall, or at most `session.send_rate` bytes per second once a `slow` fault
        fired: small pieces with pauses, checking for stop() between them."""
        rate = session.send_rate
        if rate is None:
            tls.sendall(data)
            return
        piece = max(1, int(rate * SLOW_TICK))
        for start in range(0, len(data), piece):
            if self._stopping.is_set():
                raise ConnectionAbortedError("the emulator is stopping")
            tls.sendall(data[start:start + piece])
            time.sleep(SLOW_TICK)


def _cut_tls_record(tls: ssl.SSLSocket) -> None:
    """End the connection inside a TLS record: the 5-byte header of an application-data
    record promising 16 KiB, a little of its body, then a TCP shutdown with no close_notify.
    Written below TLS, on the socket's file descriptor, since TLS itself only writes whole
    records."""
    partial = b"\x17\x03\x03\x40\x00" + bytes(range(64))
    with contextlib.suppress(OSError):
        os.write(tls.fileno(), partial)
    # FIN, then drop what the client still sends before closing: a close with unread input
    # sends a reset, and a reset can make the client's kernel discard the bytes it had not
    # read yet, so the client would see the connection die before the cut record.
    with contextlib.suppress(OSError, ValueError):
        socket.socket.shutdown(tls, socket.SHUT_WR)
        tls.settimeout(DRAIN_TIMEOUT)
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while time.monotonic() < deadline and socket.socket.recv(tls, 1 << 16):
            pass
    with contextlib.suppress(OSError):
        tls.close()


def _close(tls: ssl.SSLSocket) -> None:
    """Close after the last bytes arrive, the orderly way: TLS's close_notify first, so the
    client can tell a session ended on purpose from a truncation (a crash, a cut link:
    `_cut_tls_record`). Closing a socket with unread input makes the kernel send a reset,
    which can destroy the Error or bundle just sent before the client reads it; so send FIN
    next and read (and drop) what the client still sends, briefly."""
    with contextlib.suppress(OSError, ValueError):
        tls.settimeout(DRAIN_TIMEOUT)
        # Sends close_notify, then waits (at most the timeout) for the client's; a client
        # that just closes, or still sends acks, ends that wait with an error: ignored.
        with contextlib.suppress(OSError):
            tls.unwrap()
        # Below TLS from here: what is left to read is dropped unread by TLS.
        socket.socket.shutdown(tls, socket.SHUT_WR)
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while time.monotonic() < deadline and socket.socket.recv(tls, 1 << 16):
            pass
    with contextlib.suppress(OSError):
        tls.close()


def _plain_ip(address: str) -> str:
    """An IPv4-mapped IPv6 peer (dual-stack listener) as the IPv4 address the FMC logs."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _resolve(name: str) -> list[str]:
    if not name:
        return []
    try:
        return [str(ipaddress.ip_address(name))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return sorted({_plain_ip(str(info[4][0])) for info in infos})


def _close_gently(sock: socket.socket) -> None:
    """Close after a refused handshake without a reset. With TLS 1.3 the client already
    sent its request when our alert goes out; closing with that request unread makes the
    kernel send RST, which can overtake the alert, and the client then sees "connection
    reset" instead of "certificate rejected". Read what it sent until it closes (briefly)."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(0.5)
        while sock.recv(4096):
            pass
