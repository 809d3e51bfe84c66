"""The emulator over real mutual TLS on loopback, with certificates from init_certs and a
test client of a few lines built from the protocol module."""

from __future__ import annotations

import logging
import socket
import ssl
import struct
import time
from pathlib import Path

import pytest

from estreamer.certs import init_certs, issue_client
from estreamer.emulator import Emulator, Fault
from estreamer.protocol.flags import (
    ENCORE_6X_EVENTS,
    ENCORE_DEFAULT_FLAGS,
    TIMESTAMP_NOW,
    RequestFlags,
)
from estreamer.protocol.messages import (
    ErrorMessage,
    MessageBundle,
    Null,
    StreamingInformation,
    encode_event_stream_request,
    encode_null,
    encode_streaming_request,
)
from estreamer.protocol.records import Record, record_digest
from estreamer.protocol.stream import StreamDecoder, StreamFault
from estreamer.tls import client_context

PASSWORD = "emulator-test"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return init_certs(tmp_path_factory.mktemp("fmc"), password=PASSWORD)


def emulator(certs, **options) -> Emulator:
    settings = {"history_size": 120, "rate": 0, "seed": 5, "bundle_records": 30,
                "keepalive_interval": 0.2, **options}
    return Emulator(certs.directory, **settings)


def connect(port: int, pkcs12: Path, *, ca: Path | None = None) -> ssl.SSLSocket:
    ctx = client_context(pkcs12, PASSWORD, ca_file=ca)
    sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5))
    sock.settimeout(5)
    return sock


def session(sock: ssl.SSLSocket, timestamp: int = 0, *, until_idle: bool = True,
            limit: float = 5.0):
    """eNcore's default exchange; ack every bundle; stop at the first keepalive (the server
    has sent its whole history) or when the server closes. Returns decoded events."""
    decoder = StreamDecoder()
    events = []
    sock.sendall(encode_event_stream_request(timestamp, ENCORE_DEFAULT_FLAGS))
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            data = sock.recv(1 << 16)
        except (ConnectionResetError, ssl.SSLError):
            data = b""
        if not data:
            return events + decoder.close()
        for event in decoder.feed(data):
            events.append(event)
            if isinstance(event, StreamingInformation):
                sock.sendall(encode_streaming_request(ENCORE_DEFAULT_FLAGS, timestamp,
                                                      ENCORE_6X_EVENTS) + encode_null())
            elif isinstance(event, MessageBundle):
                sock.sendall(encode_null())
            elif isinstance(event, Null) and until_idle:
                return events
    return events


def digests(events) -> list[str]:
    bundles = [e for e in events if isinstance(e, MessageBundle)]
    return [record_digest(raw) for b in bundles for raw in b.records]


def wait_for(condition, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_records_received_are_exactly_the_ledger(certs):
    with emulator(certs) as emu, connect(emu.port, certs.client_pkcs12) as sock:
        events = session(sock)
    records = [e for e in events if isinstance(e, Record)]
    assert [e for e in events if isinstance(e, StreamFault)] == []
    assert len(records) == len(emu.history.metadata) + sum(
        r.family in ("intrusion", "packet", "extra_data", "impact", "connection",
                     "connection_chunk", "file", "malware", "discovery", "user", "correlation")
        for r in emu.history.events)
    assert digests(events) == emu.ledger.digests(1)
    bundles = [e for e in events if isinstance(e, MessageBundle)]
    assert [b.sequence for b in bundles] == sorted({e.sequence for e in emu.ledger.entries()})
    # The connection ID is the session's start second (§5).
    assert abs(bundles[0].connection_id - time.time()) < 30
    wait_for(lambda: emu.sessions[0].acks == len(bundles) + 1)
    assert emu.sessions[0].acks == len(bundles) + 1  # one after the 2049, one per bundle


def test_live_events_follow_with_archive_time_now_and_keepalives_when_idle(certs):
    with emulator(certs, rate=40, keepalive_interval=0.3) as emu, \
            connect(emu.port, certs.client_pkcs12) as sock:
        start = int(time.time())
        events = session(sock, TIMESTAMP_NOW, until_idle=False, limit=1.0)
    records = [e for e in events if isinstance(e, Record)]
    live = [r for r in records if r.archive_timestamp is not None]
    assert len(live) >= 10
    assert min(r.archive_timestamp for r in live) >= start
    # The client stopped reading while the server went on: what arrived is a prefix of
    # what was sent, in order, with nothing missing or repeated.
    received = digests(events)
    assert emu.ledger.digests(1)[: len(received)] == received


def test_keepalive_nulls_when_there_is_nothing_to_send(certs):
    with emulator(certs, keepalive_interval=0.1) as emu, \
            connect(emu.port, certs.client_pkcs12) as sock:
        events = session(sock, TIMESTAMP_NOW, until_idle=False, limit=0.8)
    nulls = [e for e in events if isinstance(e, Null)]
    assert 3 <= len(nulls) <= 9
    assert emu.ledger.digests(1) == digests(events)  # metadata only: no events yet


def test_common_name_that_is_not_the_peer_address_is_closed_without_a_message(certs, caplog):
    nat = issue_client(certs.directory, "10.9.9.9", PASSWORD, name="nat-client")
    caplog.set_level(logging.INFO, logger="Emulator")
    with emulator(certs) as emu, connect(emu.port, nat.pkcs12) as sock:
        sock.sendall(encode_event_stream_request(0, ENCORE_DEFAULT_FLAGS))
        try:
            received = sock.recv(1 << 16)
        except (ConnectionResetError, ssl.SSLError):
            received = b""
    assert received == b""  # closed, and no eStreamer Error message
    assert len(emu.ledger) == 0 and emu.sessions == []
    assert ("Certificate Common Name 10.9.9.9 does not match remote host: 127.0.0.1"
            in caplog.text)


def test_matching_common_name_is_logged_like_the_fmc(certs, caplog):
    caplog.set_level(logging.INFO, logger="Emulator")
    with emulator(certs) as emu, connect(emu.port, certs.client_pkcs12) as sock:
        session(sock)
    assert "Resolved CN 127.0.0.1 to 127.0.0.1" in caplog.text
    assert "Matched Certificate CN:127.0.0.1 to 127.0.0.1 (IPv4)" in caplog.text
    assert "EventStream Request (0x48900061): Since 0 w/ NS Events w/ NS 6.0 Events" \
        in caplog.text


def test_client_certificate_from_another_ca_is_rejected(certs, tmp_path, caplog):
    other = init_certs(tmp_path / "other", password=PASSWORD)
    caplog.set_level(logging.INFO, logger="Emulator")
    with emulator(certs) as emu:
        received = b""
        # The client trusts the emulator (its CA); the emulator must not trust the client.
        with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)), \
                connect(emu.port, other.client_pkcs12, ca=certs.ca_cert) as sock:
            sock.sendall(encode_event_stream_request(0, ENCORE_DEFAULT_FLAGS))
            received = sock.recv(1 << 16)  # TLS 1.3 reports the rejection here
            if not received:
                raise ConnectionResetError("closed without a TLS alert")
        assert received == b""
        wait_for(lambda: "SSL_accept failed" in caplog.text)
    assert "SSL_accept failed" in caplog.text
    assert len(emu.ledger) == 0 and emu.sessions == []


def test_fault_close_mid_bundle_then_a_clean_reconnect(certs):
    with emulator(certs, faults=[Fault("close", 2)]) as emu:
        with connect(emu.port, certs.client_pkcs12) as sock:
            first = session(sock)
        with connect(emu.port, certs.client_pkcs12) as sock:
            second = session(sock)
    assert [e.sequence for e in first if isinstance(e, MessageBundle)] == [1]
    assert any(isinstance(e, StreamFault) and "inside a message" in e.message for e in first)
    assert digests(first) == emu.ledger.digests(1)  # the cut bundle is not in the ledger
    assert [e for e in second if isinstance(e, StreamFault)] == []
    assert digests(second) == emu.ledger.digests(2)
    assert digests(second)[:len(digests(first))] == digests(first)


def test_fault_error_message_is_delivered_before_the_close(certs):
    with emulator(certs, faults=[Fault("error", 1, code=19, text="No space")]) as emu, \
            connect(emu.port, certs.client_pkcs12) as sock:
        events = session(sock)
    errors = [(e.code, e.text) for e in events if isinstance(e, ErrorMessage)]
    assert errors == [(19, "No space")]
    assert not any(isinstance(e, MessageBundle) for e in events)
    assert len(emu.ledger) == 0


def test_garbage_from_the_client_gets_an_error_then_close(certs):
    with emulator(certs) as emu, connect(emu.port, certs.client_pkcs12) as sock:
        sock.sendall(b"\x00\x01\x00\x4d\x00\x00\x00\x00")  # message type 77
        data = b""
        while chunk := sock.recv(1 << 16):
            data += chunk
    [error] = StreamDecoder().feed(data)
    assert isinstance(error, ErrorMessage) and "77" in error.text
    assert len(emu.ledger) == 0 and emu.sessions[0].closed


def test_client_leaving_mid_stream_does_not_disturb_the_next_one(certs):
    with emulator(certs, bundle_records=5) as emu:
        sock = connect(emu.port, certs.client_pkcs12)
        sock.sendall(encode_event_stream_request(0, ENCORE_DEFAULT_FLAGS & ~(1 << 30)))
        sock.recv(100)
        # Linger 0: close sends a reset, not a FIN, mid-bundle for all the server knows.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        with connect(emu.port, certs.client_pkcs12) as second:
            events = session(second)
    assert len(emu.sessions) == 2
    assert digests(events) == emu.ledger.digests(2)
    assert len(digests(events)) > 100


def test_stop_returns_even_when_a_client_stopped_reading(certs):
    emu = emulator(certs, history_size=12000, bundle_records=500)
    emu.start()
    raw = socket.create_connection(("127.0.0.1", emu.port), timeout=5)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)  # fills up fast
    sock = client_context(certs.client_pkcs12, PASSWORD).wrap_socket(raw)
    flags = (ENCORE_DEFAULT_FLAGS & ~RequestFlags.EXTENDED) | RequestFlags.CONNECTION_V4
    sock.sendall(encode_event_stream_request(0, flags))
    sizes = [-1]
    while sizes[-1] != len(emu.ledger) or sizes[-1] <= 0:  # until the sends stall
        sizes.append(len(emu.ledger))
        time.sleep(0.2)
    # The client reads nothing, so the server is stuck in sendall with much still to send.
    wanted = len(emu.history.metadata) + sum(
        r.family in ("intrusion", "packet", "extra_data", "connection")
        for r in emu.history.events)
    assert len(emu.ledger) < wanted
    started = time.monotonic()
    emu.stop()
    assert time.monotonic() - started < 2.0
    assert not any(t.is_alive() for t in emu._threads)
    sock.close()
