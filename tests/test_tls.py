"""estreamer.tls: real certificates, real TLS over loopback, and the sentences a user reads
when it fails."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import ssl
import stat
import tempfile
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from estreamer import certs, tls
from estreamer.certs import CertBundle, init_certs
from estreamer.errors import ConfigError, EstreamerError, TlsSetupError
from estreamer.tls import (
    CLIENT_CERT_EXPIRED,
    CLIENT_CERT_REJECTED,
    CLOSED_AFTER_HANDSHAKE,
    DNS_FAILURE,
    NOT_TLS,
    REFUSED,
    SERVER_CERT_EXPIRED,
    TIMEOUT,
    VERIFY_OFF_WARNING,
    VERSION_MISMATCH,
    WRONG_CA,
    client_context,
    explain_tls_failure,
    load_pkcs12,
    peer_common_name,
    server_context,
)

HOST = "127.0.0.1"
SECRET = "s3cr3t-Pa55word-zz"


# --- fixtures and a one-connection server ------------------------------------------------


@pytest.fixture(scope="module")
def fmc(tmp_path_factory: pytest.TempPathFactory) -> CertBundle:
    return init_certs(tmp_path_factory.mktemp("fmc"), password=SECRET)


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> CertBundle:
    """Credentials from an unrelated CA: another FMC."""
    return init_certs(tmp_path_factory.mktemp("other"))


@dataclass
class OneShotServer:
    """Accepts one connection and plays an FMC: handshake, then either greet the client or
    close at once (what FMC does when the certificate CN does not match the client IP)."""

    ctx: ssl.SSLContext | None
    behaviour: str = "greet"  # greet | close | plaintext | silent
    port: int = 0
    peer_cn: str | None = None
    error: BaseException | None = None
    _listener: socket.socket = field(init=False)
    _thread: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self._listener = socket.create_server((HOST, 0))
        self.port = self._listener.getsockname()[1]
        if self.behaviour != "silent":
            self._thread = threading.Thread(target=self._serve, daemon=True)
            self._thread.start()

    def _serve(self) -> None:
        raw, _ = self._listener.accept()
        raw.settimeout(5)
        try:
            if self.behaviour == "plaintext":
                raw.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")
                raw.recv(1024)
                return
            assert self.ctx is not None
            with self.ctx.wrap_socket(raw, server_side=True) as conn:
                self.peer_cn = peer_common_name(conn)
                if self.behaviour == "greet":
                    conn.sendall(b"hello")
                    conn.recv(16)
        except (OSError, ssl.SSLError) as exc:
            self.error = exc
        finally:
            raw.close()

    def close(self) -> None:
        if self.behaviour != "silent":
            self._thread.join(5)
        self._listener.close()


@pytest.fixture
def serve() -> Iterator[object]:
    servers: list[OneShotServer] = []

    def start(bundle: CertBundle | None, behaviour: str = "greet", **ctx_kw: object):
        ctx = None
        if bundle is not None:
            ctx = server_context(bundle.server_cert, bundle.server_key, bundle.ca_cert)
            for name, value in ctx_kw.items():
                setattr(ctx, name, value)
        server = OneShotServer(ctx, behaviour)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def first_read(ctx: ssl.SSLContext, port: int, timeout: float = 5) -> tuple[bytes, str | None]:
    """Connect, handshake and read once, like the session does. Under TLS 1.3 a rejected
    client certificate only shows up at this read, not in the handshake."""
    raw = socket.create_connection((HOST, port), timeout=timeout)
    with ctx.wrap_socket(raw, suppress_ragged_eofs=False) as conn:
        cn = peer_common_name(conn)
        data = conn.recv(5)
        conn.sendall(b"ack")
        return data, cn


def failure(ctx: ssl.SSLContext, port: int, timeout: float = 5) -> tuple[BaseException, str]:
    with pytest.raises((OSError, EOFError)) as info:
        first_read(ctx, port, timeout)
    return info.value, explain_tls_failure(info.value, host=HOST, port=port)


def expected(template: str, port: int) -> str:
    return template.format(host=HOST, port=port)


# --- the good path ------------------------------------------------------------------------


def test_mutual_tls_with_the_ca_inside_the_pkcs12(fmc: CertBundle, serve) -> None:
    server = serve(fmc)
    ctx = client_context(fmc.client_pkcs12, fmc.password)

    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname is False
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert first_read(ctx, server.port) == (b"hello", "127.0.0.1")
    server.close()
    assert server.error is None
    assert server.peer_cn == "127.0.0.1"


def test_mutual_tls_with_an_explicit_ca_file(fmc: CertBundle, serve) -> None:
    server = serve(fmc)
    ctx = client_context(fmc.client_pkcs12, fmc.password, ca_file=fmc.ca_cert, tls_version=1.2)
    assert first_read(ctx, server.port) == (b"hello", "127.0.0.1")


def test_server_sees_the_cn_of_another_issued_client(fmc: CertBundle, serve) -> None:
    cred = certs.issue_client(fmc.directory, "198.51.100.4", "pw-2", name="natted")
    server = serve(fmc)
    ctx = client_context(cred.pkcs12, "pw-2")
    assert first_read(ctx, server.port)[0] == b"hello"
    server.close()
    assert server.peer_cn == "198.51.100.4"


# --- failures and their sentences ---------------------------------------------------------


def test_wrong_ca_file_is_explained(fmc: CertBundle, other: CertBundle, serve) -> None:
    server = serve(fmc)
    ctx = client_context(fmc.client_pkcs12, fmc.password, ca_file=other.ca_cert)
    exc, sentence = failure(ctx, server.port)
    assert isinstance(exc, ssl.SSLCertVerificationError)
    assert sentence == expected(WRONG_CA, server.port)
    assert sentence == (
        f"The server certificate of 127.0.0.1:{server.port} is not signed by the configured "
        "CA: use the PKCS#12 created on this FMC, or set ca_file to this FMC's CA certificate."
    )


def test_server_from_another_ca_is_refused_by_the_pkcs12_ca(
    fmc: CertBundle, other: CertBundle, serve
) -> None:
    server = serve(other)
    ctx = client_context(fmc.client_pkcs12, fmc.password)
    _, sentence = failure(ctx, server.port)
    assert sentence == expected(WRONG_CA, server.port)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_client_cert_from_another_ca_is_rejected_by_the_server(
    fmc: CertBundle, other: CertBundle, serve, version: ssl.TLSVersion
) -> None:
    server = serve(fmc, maximum_version=version)
    # The client trusts this FMC, but its own certificate comes from another CA.
    ctx = client_context(other.client_pkcs12, other.password, ca_file=fmc.ca_cert)
    exc, sentence = failure(ctx, server.port)
    server.close()
    assert isinstance(exc, ssl.SSLError)
    assert sentence == expected(CLIENT_CERT_REJECTED, server.port)
    assert isinstance(server.error, ssl.SSLCertVerificationError)
    assert server.peer_cn is None


def test_silent_close_after_handshake_points_at_cn_and_nat(fmc: CertBundle, serve) -> None:
    server = serve(fmc, behaviour="close")
    ctx = client_context(fmc.client_pkcs12, fmc.password)
    exc, sentence = failure(ctx, server.port)
    assert isinstance(exc, ssl.SSLEOFError | ConnectionResetError)
    assert sentence == expected(CLOSED_AFTER_HANDSHAKE, server.port)
    assert "common name does not match the address" in sentence
    assert "NAT" in sentence


def test_tls_version_mismatch(fmc: CertBundle, serve) -> None:
    server = serve(fmc, maximum_version=ssl.TLSVersion.TLSv1_2)
    ctx = client_context(fmc.client_pkcs12, fmc.password, tls_version="1.3")
    _, sentence = failure(ctx, server.port)
    assert sentence == expected(VERSION_MISMATCH, server.port)


def _expired_leaf(bundle: CertBundle, cn: str, *, server: bool):
    ca_key, ca_cert = certs.load_ca(bundle.directory)
    key = certs._new_key()
    now = dt.datetime.now(dt.UTC)
    cert = certs._make_leaf(
        ca_key,
        ca_cert,
        key,
        cn,
        not_before=now - dt.timedelta(days=10),
        not_after=now - dt.timedelta(days=1),
        server=server,
    )
    return key, cert, ca_cert


def test_expired_server_certificate(fmc: CertBundle, serve, tmp_path: Path) -> None:
    key, cert, _ = _expired_leaf(fmc, "127.0.0.1", server=True)
    (tmp_path / "old.pem").write_bytes(certs._cert_pem(cert))
    (tmp_path / "old.key").write_bytes(certs._key_pem(key))
    sctx = server_context(tmp_path / "old.pem", tmp_path / "old.key", fmc.ca_cert)
    server = OneShotServer(sctx)
    try:
        ctx = client_context(fmc.client_pkcs12, fmc.password)
        _, sentence = failure(ctx, server.port)
    finally:
        server.close()
    assert sentence == expected(SERVER_CERT_EXPIRED, server.port)


def test_expired_client_certificate(
    fmc: CertBundle, serve, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key, cert, ca_cert = _expired_leaf(fmc, "127.0.0.1", server=False)
    p12 = tmp_path / "expired.pkcs12"
    p12.write_bytes(certs.pack_pkcs12(key, cert, [ca_cert], "pw"))
    server = serve(fmc)
    with caplog.at_level(logging.WARNING, logger="estreamer.tls"):
        ctx = client_context(p12, "pw")
    assert any(
        "the client certificate in expired.pkcs12 expired on" in r.getMessage()
        for r in caplog.records
    )
    _, sentence = failure(ctx, server.port)
    assert sentence == expected(CLIENT_CERT_EXPIRED, server.port)


def test_nothing_listening(fmc: CertBundle) -> None:
    probe = socket.create_server((HOST, 0))
    port = probe.getsockname()[1]
    probe.close()
    ctx = client_context(fmc.client_pkcs12, fmc.password)
    exc, sentence = failure(ctx, port)
    assert isinstance(exc, ConnectionRefusedError)
    assert sentence == expected(REFUSED, port)
    assert sentence.startswith(f"Nothing is listening on 127.0.0.1:{port} (connection refused)")


def test_no_answer_is_a_timeout(fmc: CertBundle, serve) -> None:
    server = serve(None, behaviour="silent")  # listens, never speaks TLS
    ctx = client_context(fmc.client_pkcs12, fmc.password)
    exc, sentence = failure(ctx, server.port, timeout=0.3)
    assert isinstance(exc, TimeoutError)
    assert sentence == expected(TIMEOUT, server.port)


def test_not_a_tls_service(fmc: CertBundle, serve) -> None:
    server = serve(None, behaviour="plaintext")
    ctx = client_context(fmc.client_pkcs12, fmc.password)
    _, sentence = failure(ctx, server.port)
    assert sentence == expected(NOT_TLS, server.port)


def test_dns_failure_sentence() -> None:
    exc = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert explain_tls_failure(exc, host="fmc.invalid", port=8302) == (
        "The FMC host name fmc.invalid could not be resolved (DNS lookup failed): check its "
        "spelling or use the FMC's IP address."
    )
    assert explain_tls_failure(exc, host="fmc.invalid", port=8302) == DNS_FAILURE.format(
        host="fmc.invalid", port=8302
    )


def test_plain_eof_and_wrapped_causes() -> None:
    assert explain_tls_failure(EOFError(), host="10.0.0.1", port=8302) == (
        CLOSED_AFTER_HANDSHAKE.format(host="10.0.0.1", port=8302)
    )
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as inner:
            raise EstreamerError("connect failed") from inner
    except EstreamerError as outer:
        wrapped = outer
    assert explain_tls_failure(wrapped, host="10.0.0.1", port=8302) == REFUSED.format(
        host="10.0.0.1", port=8302
    )
    setup = TlsSetupError("the CA file /x does not exist")
    assert explain_tls_failure(setup, host="h", port=1) == "the CA file /x does not exist"


def test_every_sentence_is_one_sentence() -> None:
    for name in dir(tls):
        value = getattr(tls, name)
        if name.isupper() and isinstance(value, str) and value.endswith("."):
            text = value.format(host="10.0.0.1", port=8302, detail="d")
            assert text.count(". ") == 0, name
            assert "\n" not in text, name


# --- PKCS#12 loading ----------------------------------------------------------------------


def test_load_pkcs12_returns_key_cert_and_ca(fmc: CertBundle) -> None:
    key, cert, extras = load_pkcs12(fmc.client_pkcs12, fmc.password)
    ca = certs.load_ca(fmc.directory)[1]
    assert cert.subject.rfc4514_string() == "CN=127.0.0.1"
    assert extras == [ca]
    assert key.public_key() == cert.public_key()


def test_wrong_password_sentence_never_shows_the_password(
    fmc: CertBundle, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-Pa55-qq"
    with caplog.at_level(logging.DEBUG), pytest.raises(TlsSetupError) as info:
        client_context(fmc.client_pkcs12, wrong)
    assert str(info.value) == "the PKCS#12 password is wrong for client.pkcs12"
    assert isinstance(info.value, ConfigError)
    dump = "".join(traceback.format_exception(info.value)) + repr(info.value) + caplog.text
    assert wrong not in dump
    assert SECRET not in dump

    with caplog.at_level(logging.DEBUG):
        client_context(fmc.client_pkcs12, SECRET)
    assert SECRET not in caplog.text


def test_missing_and_non_pkcs12_files(tmp_path: Path, fmc: CertBundle) -> None:
    with pytest.raises(TlsSetupError) as info:
        load_pkcs12(tmp_path / "nope.pkcs12", "x")
    assert str(info.value).startswith(f"the PKCS#12 file {tmp_path / 'nope.pkcs12'} does not exist")

    junk = tmp_path / "junk.pkcs12"
    junk.write_bytes(os.urandom(256).replace(b"\x30", b"\x31"))
    with pytest.raises(TlsSetupError) as info:
        load_pkcs12(junk, "x")
    assert str(info.value) == f"{junk} is not a PKCS#12 file"

    pem = tmp_path / "client.pem"
    pem.write_bytes(fmc.ca_cert.read_bytes())
    with pytest.raises(TlsSetupError) as info:
        load_pkcs12(pem, "x")
    assert str(info.value).startswith(f"{pem} is a PEM file, not a PKCS#12")


def test_pkcs12_without_ca_needs_ca_file(fmc: CertBundle, tmp_path: Path, serve) -> None:
    key, cert, _ = load_pkcs12(fmc.client_pkcs12, fmc.password)
    bare = tmp_path / "bare.pkcs12"
    bare.write_bytes(certs.pack_pkcs12(key, cert, [], "pw"))  # type: ignore[arg-type]
    with pytest.raises(TlsSetupError) as info:
        client_context(bare, "pw")
    assert str(info.value).startswith("bare.pkcs12 holds no CA certificate to verify the FMC")

    server = serve(fmc)
    ctx = client_context(bare, "pw", ca_file=fmc.ca_cert)
    assert first_read(ctx, server.port)[0] == b"hello"


# --- verification opt-out and TLS versions ------------------------------------------------


def test_verify_false_warns_every_time_and_accepts_any_server(
    fmc: CertBundle, other: CertBundle, serve, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="estreamer.tls"):
        client_context(fmc.client_pkcs12, fmc.password, verify=False)
        ctx = client_context(fmc.client_pkcs12, fmc.password, verify=False)
    warnings = [r for r in caplog.records if r.getMessage() == VERIFY_OFF_WARNING]
    assert len(warnings) == 2
    assert all(r.levelno == logging.WARNING for r in warnings)
    assert ctx.verify_mode == ssl.CERT_NONE

    # The server still checks our certificate, so serve with our CA but another server key.
    server = serve(other)
    server.ctx.load_verify_locations(cafile=fmc.ca_cert)
    data, cn = first_read(ctx, server.port)
    assert data == b"hello"
    assert cn is None  # nothing verified, so no CN to report


@pytest.mark.parametrize(
    ("value", "minimum"),
    [
        (1.2, ssl.TLSVersion.TLSv1_2),
        ("1.2", ssl.TLSVersion.TLSv1_2),
        ("TLSv1.2", ssl.TLSVersion.TLSv1_2),
        ("1.3", ssl.TLSVersion.TLSv1_3),
        (1.3, ssl.TLSVersion.TLSv1_3),
    ],
)
def test_tls_version_sets_the_minimum(fmc: CertBundle, value: object, minimum) -> None:
    ctx = client_context(fmc.client_pkcs12, fmc.password, tls_version=value)  # type: ignore[arg-type]
    assert ctx.minimum_version == minimum


def test_tls_1_0_warns_and_is_honoured_if_possible(
    fmc: CertBundle, caplog: pytest.LogCaptureFixture, serve
) -> None:
    with caplog.at_level(logging.WARNING, logger="estreamer.tls"):
        ctx = client_context(fmc.client_pkcs12, fmc.password, tls_version=1.0)
    assert "tls_version 1.0 is obsolete (RFC 8996)" in caplog.text
    honoured = ssl.TLSVersion.TLSv1 if ssl.HAS_TLSv1 else ssl.TLSVersion.TLSv1_2
    assert ctx.minimum_version == honoured
    # A minimum, not a pin: a modern server still gets a modern handshake.
    server = serve(fmc)
    assert first_read(ctx, server.port)[0] == b"hello"


@pytest.mark.parametrize("value", ["1.1", 2.0, "", True, "ssl3"])
def test_unknown_tls_versions_are_refused(fmc: CertBundle, value: object) -> None:
    with pytest.raises(TlsSetupError) as info:
        client_context(fmc.client_pkcs12, fmc.password, tls_version=value)  # type: ignore[arg-type]
    assert str(info.value) == (
        f"tls_version {value!r} is not supported; use 1.2, 1.3 or (obsolete) 1.0"
    )


def test_server_context_requires_client_certificates(fmc: CertBundle, tmp_path: Path) -> None:
    ctx = server_context(fmc.server_cert, fmc.server_key, fmc.ca_cert, min_version="1.3")
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_3
    with pytest.raises(TlsSetupError) as info:
        server_context(fmc.server_cert, fmc.server_key, tmp_path / "none.pem")
    assert str(info.value) == f"the server CA file {tmp_path / 'none.pem'} does not exist"


# --- the private key never reaches the disk in clear --------------------------------------


def _capture_load_cert_chain(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    seen: list[dict[str, object]] = []
    original = ssl.SSLContext.load_cert_chain

    def spy(self, certfile, keyfile=None, password=None):  # type: ignore[no-untyped-def]
        seen.append(
            {
                "path": str(certfile),
                "content": Path(certfile).read_bytes(),
                "mode": stat.S_IMODE(os.stat(certfile).st_mode),
                "password": password,
            }
        )
        return original(self, certfile, keyfile, password)

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", spy)
    return seen


def _clear_key_forms(bundle: CertBundle) -> list[bytes]:
    key, _, _ = load_pkcs12(bundle.client_pkcs12, bundle.password)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    body = b"".join(pem.splitlines()[1:3])  # a stretch of the base64 body
    return [pem, der, body]


def _files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_memfd_hands_openssl_only_an_encrypted_key(
    fmc: CertBundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serve
) -> None:
    if not hasattr(os, "memfd_create"):
        pytest.skip("no memfd on this platform")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    seen = _capture_load_cert_chain(monkeypatch)

    ctx = client_context(fmc.client_pkcs12, fmc.password)

    assert len(seen) == 1
    assert str(seen[0]["path"]).startswith("/proc/self/fd/")
    content = seen[0]["content"]
    assert isinstance(content, bytes)
    assert b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in content
    assert b"-----BEGIN PRIVATE KEY-----" not in content
    assert b"-----BEGIN CERTIFICATE-----" in content
    assert isinstance(seen[0]["password"], bytes)
    assert seen[0]["password"] != fmc.password.encode()
    for clear in _clear_key_forms(fmc):
        assert clear not in content
    # Nothing was written anywhere a temp file would go, nor next to the credentials.
    assert _files_under(scratch) == []
    secret_forms = _clear_key_forms(fmc)
    for path in _files_under(tmp_path) + _files_under(fmc.directory):
        data = path.read_bytes()
        assert not any(form in data for form in secret_forms), path
    # And the context built from it works.
    server = serve(fmc)
    assert first_read(ctx, server.port)[0] == b"hello"


def test_without_memfd_the_temp_file_is_0600_encrypted_and_removed(
    fmc: CertBundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serve
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.delattr(os, "memfd_create", raising=False)
    seen = _capture_load_cert_chain(monkeypatch)

    ctx = client_context(fmc.client_pkcs12, fmc.password)

    assert len(seen) == 1
    assert str(seen[0]["path"]).startswith(str(scratch))
    assert seen[0]["mode"] == 0o600
    content = seen[0]["content"]
    assert isinstance(content, bytes)
    assert b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in content
    for clear in _clear_key_forms(fmc):
        assert clear not in content
    assert _files_under(scratch) == []
    server = serve(fmc)
    assert first_read(ctx, server.port)[0] == b"hello"
