"""TLS for eStreamer: SSL contexts for the client (from the FMC-issued PKCS#12) and for the
emulator, and one plain sentence for every way a connection commonly fails.

The FMC speaks mutual TLS on 8302: it asks for a client certificate, verifies it against
its own CA, and after the handshake compares the certificate's CN with the client's source
address, closing the connection without a word when they differ (see the fact sheet, §1).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import logging
import os
import secrets
import socket
import ssl
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from estreamer.errors import EstreamerError, TlsSetupError

log = logging.getLogger(__name__)

PrivateKey = pkcs12.PKCS12PrivateKeyTypes

# --- the sentences -----------------------------------------------------------------------
# explain_tls_failure returns exactly one of these, formatted with host and port (and, for
# the catch-alls, `detail`). Tests elsewhere assert on them: change them deliberately.

REFUSED = (
    "Nothing is listening on {host}:{port} (connection refused): check the FMC address and "
    "port (eStreamer listens on 8302) and that the eStreamer service runs on the FMC."
)
TIMEOUT = (
    "No answer from {host}:{port} before the timeout: check the address and that no "
    "firewall between this host and the FMC drops TCP port {port}."
)
DNS_FAILURE = (
    "The FMC host name {host} could not be resolved (DNS lookup failed): check its spelling "
    "or use the FMC's IP address."
)
UNREACHABLE = (
    "There is no network route to {host}:{port}: check the address and this host's "
    "network settings."
)
WRONG_CA = (
    "The server certificate of {host}:{port} is not signed by the configured CA: use the "
    "PKCS#12 created on this FMC, or set ca_file to this FMC's CA certificate."
)
SERVER_CERT_EXPIRED = (
    "The server certificate of {host}:{port} has expired or is not valid yet: check the "
    "clock of this host and of the FMC, and renew the FMC's certificate if it has expired."
)
CLIENT_CERT_EXPIRED = (
    "The FMC at {host}:{port} rejected the client certificate because it has expired: "
    "create a new client on the FMC (eStreamer > Create Client) and use its PKCS#12."
)
CLIENT_CERT_REJECTED = (
    "The FMC at {host}:{port} rejected the client certificate: use a PKCS#12 created on "
    "this FMC (eStreamer > Create Client), not one issued by another FMC or CA."
)
CLOSED_AFTER_HANDSHAKE = (
    "The FMC at {host}:{port} closed the connection right after the TLS handshake without "
    "an error message, which it does when the client certificate's common name does not "
    "match the address it sees this client connect from: create a client certificate on "
    "the FMC for that address (behind NAT, the translated address)."
)
VERSION_MISMATCH = (
    "This client and {host}:{port} could not agree on a TLS version: set tls_version to "
    "one the FMC accepts (1.2 is the usual choice)."
)
NOT_TLS = (
    "{host}:{port} did not answer with TLS: check that this is the FMC's eStreamer port "
    "(8302) and not another service."
)
# Catch-alls: still one sentence, carrying OpenSSL's or the OS's own words.
SERVER_CERT_INVALID = "The server certificate of {host}:{port} failed verification ({detail})."
TLS_FAILED = "The TLS connection to {host}:{port} failed ({detail})."
CONNECT_FAILED = "Could not connect to {host}:{port} ({detail})."

PKCS12_MISSING = (
    "the PKCS#12 file {path} does not exist: create a client on the FMC (System > "
    "Integration > eStreamer > Create Client) and save its PKCS#12 there"
)
PKCS12_NOT_PKCS12 = "{path} is not a PKCS#12 file"
PKCS12_IS_PEM = "{path} is a PEM file, not a PKCS#12: give the client.pkcs12 file the FMC created"
PKCS12_WRONG_PASSWORD = "the PKCS#12 password is wrong for {name}"
VERIFY_OFF_WARNING = (
    "TLS verification is OFF (verify=False): the FMC's certificate is not checked, so "
    "anyone on the network path can pose as the FMC; set ca_file or keep verify on"
)
TLS10_WARNING = (
    "tls_version 1.0 is obsolete (RFC 8996); allowing it as the minimum because it was "
    "asked for, but many OpenSSL builds refuse it anyway (OpenSSL 3 needs security level "
    "0, which this client does not lower): use 1.2 unless the FMC is too old for it"
)

# OpenSSL X509_V_ERR_* codes that all mean "this chain does not lead to a CA we trust".
_UNTRUSTED_CODES = {
    2,  # unable to get issuer certificate
    7,  # certificate signature failure
    18,  # self-signed certificate (depth zero)
    19,  # self-signed certificate in chain
    20,  # unable to get local issuer certificate
    21,  # unable to verify the first certificate
}
_EXPIRY_CODES = {9, 10}  # not yet valid, has expired

_TLS_VERSIONS = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}


# --- PKCS#12 ------------------------------------------------------------------------------


def load_pkcs12(
    path: str | os.PathLike[str], password: str | bytes | None
) -> tuple[PrivateKey, x509.Certificate, list[x509.Certificate]]:
    """(key, certificate, extra certificates) from a PKCS#12 file, or a TlsSetupError that
    says which of the usual mistakes was made. The password never appears in a message."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise TlsSetupError(PKCS12_MISSING.format(path=p)) from None
    except IsADirectoryError:
        raise TlsSetupError(PKCS12_NOT_PKCS12.format(path=p) + " (it is a directory)") from None
    except PermissionError:
        raise TlsSetupError(f"the PKCS#12 file {p} cannot be read (permission denied)") from None

    if not _looks_like_pkcs12(data):
        if data.lstrip().startswith(b"-----BEGIN"):
            raise TlsSetupError(PKCS12_IS_PEM.format(path=p))
        raise TlsSetupError(PKCS12_NOT_PKCS12.format(path=p))

    pw = password.encode() if isinstance(password, str) else password
    # "No password" is spelled two ways by different tools (absent vs. empty string).
    attempts = [None, b""] if not pw else [pw]
    for attempt in attempts:
        try:
            key, cert, extras = pkcs12.load_key_and_certificates(data, attempt)
        except UnsupportedAlgorithm:
            raise TlsSetupError(
                f"{p} is protected with an algorithm this OpenSSL build cannot read; "
                "re-export it with a current `openssl pkcs12 -export`"
            ) from None
        except ValueError:
            continue
        break
    else:
        # cryptography says "Could not deserialize" for a bad MAC; the structure check
        # above already ruled out "not a PKCS#12", so the password is what is wrong.
        raise TlsSetupError(PKCS12_WRONG_PASSWORD.format(name=p.name)) from None

    if key is None:
        raise TlsSetupError(f"{p} holds no private key")
    if cert is None:
        raise TlsSetupError(f"{p} holds no client certificate")
    return key, cert, list(extras)


def _looks_like_pkcs12(data: bytes) -> bool:
    """True when `data` starts like a DER PFX: SEQUENCE { INTEGER 3, ... }. Telling this
    apart from a wrong password is what lets load_pkcs12 name the real mistake."""
    if len(data) < 8 or data[0] != 0x30:
        return False
    first = data[1]
    offset = 2
    if first & 0x80:
        count = first & 0x7F
        if count == 0 or count > 4:
            return False
        offset += count
    return data[offset : offset + 3] == b"\x02\x01\x03"


# --- contexts ---------------------------------------------------------------------------


def client_context(
    pkcs12_path: str | os.PathLike[str],
    password: str | bytes | None,
    *,
    ca_file: str | os.PathLike[str] | None = None,
    verify: bool = True,
    tls_version: str | float = "1.2",
) -> ssl.SSLContext:
    """The client side of eStreamer's mutual TLS, built from the FMC-issued PKCS#12.

    The server chain is verified against `ca_file`, or else against the CA certificates
    inside the PKCS#12 (FMC puts its CA there). The private key never touches the disk
    unencrypted: OpenSSL only takes file names, so it gets the key PEM encrypted under a
    one-time password through an anonymous memory file (memfd), or, where that is missing,
    through a 0600 temporary file holding only the encrypted key.
    """
    minimum = _parse_tls_version(tls_version)
    key, cert, extras = load_pkcs12(pkcs12_path, password)
    _warn_if_expired(cert, Path(pkcs12_path).name)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # Hostname checking is off on purpose: FMCs are addressed by IP and their eStreamer
    # certificates rarely carry that IP (or any SAN), so checking would reject nearly every
    # real FMC. Trust comes from the chain instead: only a certificate issued by this FMC's
    # CA is accepted (CERT_REQUIRED below), and each FMC has a CA of its own.
    ctx.check_hostname = False
    _set_minimum_version(ctx, minimum)

    if verify:
        ctx.verify_mode = ssl.CERT_REQUIRED
        _load_trust(ctx, ca_file, extras, Path(pkcs12_path).name)
    else:
        # Logged at every build, not once: a reconnect loop should keep saying it.
        log.warning(VERIFY_OFF_WARNING)
        ctx.verify_mode = ssl.CERT_NONE

    one_time = secrets.token_urlsafe(32).encode()
    encrypted_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(one_time),
    )
    # Send the leaf plus any intermediates; self-signed roots are the server's business.
    chain = [cert, *(c for c in extras if c.issuer != c.subject)]
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain) + encrypted_key
    with _pem_path(pem) as path:
        try:
            ctx.load_cert_chain(path, password=one_time)
        except ssl.SSLError as exc:
            raise TlsSetupError(
                f"the key and certificate in {Path(pkcs12_path).name} cannot be used "
                f"together ({exc.reason or exc})"
            ) from None
    log.debug(
        "client certificate CN=%s from %s, TLS minimum %s, verify %s",
        _cn_of(cert),
        pkcs12_path,
        ctx.minimum_version.name,
        "on" if verify else "OFF",
    )
    return ctx


def server_context(
    cert_file: str | os.PathLike[str],
    key_file: str | os.PathLike[str],
    ca_file: str | os.PathLike[str],
    *,
    min_version: str | float = "1.2",
) -> ssl.SSLContext:
    """The FMC side: present cert_file and require a client certificate signed by ca_file."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _set_minimum_version(ctx, _parse_tls_version(min_version))
    ctx.verify_mode = ssl.CERT_REQUIRED
    for label, path in (("certificate", cert_file), ("key", key_file), ("CA", ca_file)):
        if not Path(path).is_file():
            raise TlsSetupError(f"the server {label} file {path} does not exist")
    try:
        ctx.load_cert_chain(os.fspath(cert_file), os.fspath(key_file))
    except ssl.SSLError as exc:
        raise TlsSetupError(
            f"the server certificate {cert_file} and key {key_file} cannot be used "
            f"together ({exc.reason or exc})"
        ) from None
    _load_ca_file(ctx, ca_file)
    return ctx


def peer_common_name(ssl_socket: ssl.SSLSocket) -> str | None:
    """CN of the peer's certificate, if the handshake verified one; None otherwise (no
    certificate, verification off, or handshake not done)."""
    try:
        cert = ssl_socket.getpeercert()
    except (ValueError, AttributeError):
        # AttributeError: the socket was closed under us (ssl drops its _sslobj), e.g. the
        # emulator stopping while a handshake finishes; there is no peer to name.
        return None
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                return str(value)
    return None


def _parse_tls_version(value: str | float) -> ssl.TLSVersion:
    """eNcore writes tlsVersion as a JSON number (1.0 or 1.2); accept those, their string
    forms, "TLSv1.2"-style names, and 1.3."""
    text = str(value).strip().lower().removeprefix("tlsv").removeprefix("tls")
    if text == "1":
        text = "1.0"
    version = _TLS_VERSIONS.get(text)
    if version is None or isinstance(value, bool):
        raise TlsSetupError(
            f"tls_version {value!r} is not supported; use 1.2, 1.3 or (obsolete) 1.0"
        )
    return version


def _set_minimum_version(ctx: ssl.SSLContext, version: ssl.TLSVersion) -> None:
    if version is ssl.TLSVersion.TLSv1_3 and not ssl.HAS_TLSv1_3:
        raise TlsSetupError(f"this OpenSSL build ({ssl.OPENSSL_VERSION}) has no TLS 1.3")
    if version is ssl.TLSVersion.TLSv1:
        log.warning(TLS10_WARNING)
        if not ssl.HAS_TLSv1:
            log.warning("this OpenSSL build has no TLS 1.0 at all; using 1.2 as the minimum")
            version = ssl.TLSVersion.TLSv1_2
        else:
            # Python deprecates the TLSv1 constant; the warning above already told the
            # user, in words they can act on.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                try:
                    ctx.minimum_version = version
                except ValueError:
                    log.warning("this OpenSSL build refuses TLS 1.0; using 1.2 as the minimum")
                    version = ssl.TLSVersion.TLSv1_2
                else:
                    return
    ctx.minimum_version = version


def _load_trust(
    ctx: ssl.SSLContext,
    ca_file: str | os.PathLike[str] | None,
    extras: list[x509.Certificate],
    p12_name: str,
) -> None:
    if ca_file is not None:
        _load_ca_file(ctx, ca_file)
        return
    cas = [c for c in extras if _is_ca(c)]
    if not cas:
        raise TlsSetupError(
            f"{p12_name} holds no CA certificate to verify the FMC with: set ca_file to the "
            "FMC's CA certificate (or, knowingly, verify=False)"
        )
    ctx.load_verify_locations(
        cadata="".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in cas)
    )


def _load_ca_file(ctx: ssl.SSLContext, ca_file: str | os.PathLike[str]) -> None:
    if not Path(ca_file).is_file():
        raise TlsSetupError(f"the CA file {ca_file} does not exist")
    try:
        ctx.load_verify_locations(cafile=os.fspath(ca_file))
    except ssl.SSLError:
        raise TlsSetupError(f"the CA file {ca_file} holds no PEM certificate") from None


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        # Old-style roots have no extensions; self-signed is the best remaining sign.
        return cert.issuer == cert.subject


def _cn_of(cert: x509.Certificate) -> str | None:
    names = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def _warn_if_expired(cert: x509.Certificate, p12_name: str) -> None:
    # Said up front because the FMC's rejection, later, is only a TLS alert.
    now = dt.datetime.now(dt.UTC)
    if cert.not_valid_after_utc < now:
        log.warning(
            "the client certificate in %s expired on %s; the FMC will reject it",
            p12_name,
            cert.not_valid_after_utc.date().isoformat(),
        )


@contextlib.contextmanager
def _pem_path(data: bytes) -> Iterator[str]:
    """A file name OpenSSL can open that holds `data` for the duration of the block.

    Preferred: an anonymous memfd reached through /proc/self/fd, which never has a name in
    any filesystem. Otherwise a mkstemp file (created 0600) that is removed on exit; callers
    only pass PEM whose private key is encrypted, so even that file holds no usable secret.
    """
    memfd_create = getattr(os, "memfd_create", None)
    fd: int | None = None
    if memfd_create is not None:
        try:
            fd = memfd_create("estreamer-client-credentials", os.MFD_CLOEXEC)
        except OSError:
            fd = None
    if fd is not None:
        try:
            _write_all(fd, data)
            path = f"/proc/self/fd/{fd}"
            usable = os.path.exists(path)  # /proc may be missing in some containers
            if usable:
                yield path
        finally:
            os.close(fd)
        if usable:
            return
    tmp_fd, tmp_path = tempfile.mkstemp(prefix="estreamer-", suffix=".pem")
    try:
        try:
            _write_all(tmp_fd, data)
        finally:
            os.close(tmp_fd)
        yield tmp_path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


# --- explaining failures ------------------------------------------------------------------

_EOF_TYPES: tuple[type[BaseException], ...] = (
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
    EOFError,
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
)


def explain_tls_failure(exc: BaseException, *, host: str, port: int) -> str:
    """One plain sentence saying why connecting to an FMC failed, and what to do.

    For the FMC's silent close after the handshake (the CN check) there is no TLS error to
    see: the session should pass the EOFError / ConnectionResetError / SSLEOFError it gets
    when the first read after the handshake returns nothing.
    """
    # A project error that wraps a network error explains best through its cause.
    if isinstance(exc, EstreamerError):
        cause = exc.__cause__
        if isinstance(cause, OSError | EOFError):
            return explain_tls_failure(cause, host=host, port=port)
        return str(exc)

    def say(template: str, detail: str = "") -> str:
        return template.format(host=host, port=port, detail=detail)

    if isinstance(exc, socket.gaierror):
        return say(DNS_FAILURE)
    if isinstance(exc, TimeoutError):
        return say(TIMEOUT)
    if isinstance(exc, ConnectionRefusedError):
        return say(REFUSED)
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code
        if code in _UNTRUSTED_CODES:
            return say(WRONG_CA)
        if code in _EXPIRY_CODES:
            return say(SERVER_CERT_EXPIRED)
        return say(SERVER_CERT_INVALID, exc.verify_message or str(exc))
    if isinstance(exc, ssl.SSLError) and not isinstance(
        exc, ssl.SSLEOFError | ssl.SSLZeroReturnError
    ):
        return _explain_ssl_error(exc, say)
    if isinstance(exc, _EOF_TYPES):
        return say(CLOSED_AFTER_HANDSHAKE)
    if isinstance(exc, OSError):
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return say(UNREACHABLE)
        if exc.errno == errno.ETIMEDOUT:
            return say(TIMEOUT)
        return say(CONNECT_FAILED, exc.strerror or str(exc))
    return say(CONNECT_FAILED, str(exc) or type(exc).__name__)


def _explain_ssl_error(exc: ssl.SSLError, say: Callable[..., str]) -> str:
    # OpenSSL's reason code when Python has it, else its text ("sslv3 alert bad
    # certificate"), normalised to one spelling so one table serves both.
    text = f"{exc.reason or ''} {exc}".upper().replace(" ", "_")
    if "CERTIFICATE_EXPIRED" in text:
        return say(CLIENT_CERT_EXPIRED)
    if any(
        alert in text
        for alert in (
            "ALERT_UNKNOWN_CA",
            "ALERT_BAD_CERTIFICATE",
            "ALERT_CERTIFICATE_UNKNOWN",
            "ALERT_CERTIFICATE_REQUIRED",
            "ALERT_UNSUPPORTED_CERTIFICATE",
            "ALERT_CERTIFICATE_REVOKED",
            "ALERT_ACCESS_DENIED",
            # With a client certificate loaded, a bare handshake_failure from the FMC is
            # in practice its verdict on that certificate.
            "ALERT_HANDSHAKE_FAILURE",
        )
    ):
        return say(CLIENT_CERT_REJECTED)
    if any(
        marker in text
        for marker in (
            "PROTOCOL_VERSION",
            "UNSUPPORTED_PROTOCOL",
            "NO_PROTOCOLS_AVAILABLE",
            "VERSION_TOO_LOW",
            "VERSION_TOO_HIGH",
            "WRONG_SSL_VERSION",
        )
    ):
        return say(VERSION_MISMATCH)
    if any(
        marker in text
        for marker in ("WRONG_VERSION_NUMBER", "HTTP_REQUEST", "RECORD_LAYER_FAILURE")
    ):
        return say(NOT_TLS)
    return say(TLS_FAILED, exc.reason or str(exc))
