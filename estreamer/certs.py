"""What the FMC's "eStreamer > Create Client" page does, done locally: a CA, a server
certificate for the emulator, and client credentials packed as a password-protected
PKCS#12 that holds the client key, the client certificate and the CA certificate.

Layout of a certificate directory (the names the emulator and the docs rely on):

    ca.pem, ca.key            the CA (ca.key 0600)
    server.pem, server.key    the emulator's server certificate (server.key 0600)
    client.pkcs12             client key + certificate + CA certificate (0600)
    client.password           the PKCS#12 password, one line (0600)

Key choice: RSA 2048. The FMC issues RSA keys, so the emulator then presents the same
kind of credentials as a real FMC, and RSA works with every TLS version a user may still
have to configure (eNcore's TLS 1.0 default included) and every tool that reads PKCS#12.
P-256 would be faster to generate, but that speed only matters for tests.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from estreamer.atomic import write_atomically
from estreamer.errors import ConfigError

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
SERVER_CERT = "server.pem"
SERVER_KEY = "server.key"

PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644

# Certificates start a little in the past: a client whose clock runs a few minutes behind
# the machine that issued the certificate would otherwise reject it as "not yet valid".
_BACKDATE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class ClientCredential:
    """One client's PKCS#12 and the file holding its password."""

    cn: str
    pkcs12: Path
    password_file: Path
    password: str

    def __repr__(self) -> str:
        # Dataclass reprs end up in logs and test output; the password must not.
        return (
            f"ClientCredential(cn={self.cn!r}, pkcs12={str(self.pkcs12)!r}, "
            f"password_file={str(self.password_file)!r})"
        )


@dataclass(frozen=True)
class CertBundle:
    """Everything init_certs wrote, by path, plus the client password."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_pkcs12: Path
    client_password_file: Path
    password: str
    client_cn: str
    server_cn: str

    def __repr__(self) -> str:
        return (
            f"CertBundle(directory={str(self.directory)!r}, client_cn={self.client_cn!r}, "
            f"server_cn={self.server_cn!r})"
        )


def init_certs(
    directory: str | os.PathLike[str],
    *,
    client_cn: str = "127.0.0.1",
    server_cn: str = "127.0.0.1",
    password: str | None = None,
    days: int = 825,
    force: bool = False,
) -> CertBundle:
    """Create a CA, a server certificate and a client PKCS#12 in `directory`.

    Refuses to replace an existing CA unless `force`: every client credential issued by the
    old CA would silently stop working, which is a decision, not a side effect.
    """
    _check_days(days)
    root = Path(directory)
    _make_dir(root)
    existing = [name for name in (CA_CERT, CA_KEY) if (root / name).exists()]
    if existing and not force:
        raise ConfigError(
            f"{root} already holds a CA ({', '.join(existing)}); pass force=True to replace "
            "it, which makes every client certificate issued by the old CA unusable"
        )

    now = _now()
    ca_key = _new_key()
    ca_cert = _make_ca(ca_key, now, days)

    server_key = _new_key()
    server_cert = _make_leaf(
        ca_key,
        ca_cert,
        server_key,
        server_cn,
        not_before=now - _BACKDATE,
        not_after=now + dt.timedelta(days=days),
        server=True,
    )
    # Leaves first, CA last: if we die half way, no CA exists yet, so a plain re-run works
    # instead of tripping over the "already holds a CA" guard.
    write_atomically(root / SERVER_KEY, _key_pem(server_key), PRIVATE_MODE)
    write_atomically(root / SERVER_CERT, _cert_pem(server_cert), PUBLIC_MODE)
    client = _write_client(root, "client", ca_key, ca_cert, client_cn, password, now, days)
    write_atomically(root / CA_KEY, _key_pem(ca_key), PRIVATE_MODE)
    write_atomically(root / CA_CERT, _cert_pem(ca_cert), PUBLIC_MODE)

    return CertBundle(
        directory=root,
        ca_cert=root / CA_CERT,
        ca_key=root / CA_KEY,
        server_cert=root / SERVER_CERT,
        server_key=root / SERVER_KEY,
        client_pkcs12=client.pkcs12,
        client_password_file=client.password_file,
        password=client.password,
        client_cn=client_cn,
        server_cn=server_cn,
    )


def issue_client(
    directory: str | os.PathLike[str],
    cn: str,
    password: str | None,
    name: str = "client",
    *,
    days: int = 825,
) -> ClientCredential:
    """Issue another client PKCS#12 (`<name>.pkcs12`, `<name>.password`) signed by the CA
    already in `directory`, e.g. for a client the FMC sees at another (post-NAT) address."""
    _check_days(days)
    if not name or name in (".", "..") or "/" in name or os.sep in name:
        raise ConfigError(f"the client name {name!r} must be a plain file name")
    root = Path(directory)
    ca_key, ca_cert = load_ca(root)
    return _write_client(root, name, ca_key, ca_cert, cn, password, _now(), days)


def load_ca(
    directory: str | os.PathLike[str],
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """The CA key and certificate of a directory made by init_certs."""
    root = Path(directory)
    cert_path, key_path = root / CA_CERT, root / CA_KEY
    for path in (cert_path, key_path):
        if not path.is_file():
            raise ConfigError(f"{path} does not exist; create the CA first with init_certs")
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except ValueError:
        raise ConfigError(f"{cert_path} is not a PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"{key_path} is not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"{key_path} is not an RSA key")
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(
        serialization.Encoding.DER, spki
    ) != cert.public_key().public_bytes(serialization.Encoding.DER, spki):
        raise ConfigError(f"{key_path} does not belong to the certificate in {cert_path}")
    return key, cert


def generate_password() -> str:
    """A password that survives being pasted into a config file or a shell: URL-safe
    characters only, 144 bits of randomness."""
    return secrets.token_urlsafe(18)


# --- building blocks -------------------------------------------------------------------


def _write_client(
    root: Path,
    name: str,
    ca_key: rsa.RSAPrivateKey,
    ca_cert: x509.Certificate,
    cn: str,
    password: str | None,
    now: dt.datetime,
    days: int,
) -> ClientCredential:
    if password is None:
        password = generate_password()
    if not password:
        # An empty PKCS#12 password is ambiguous between tools (no password vs. an empty
        # one) and protects nothing; FMC-style credentials always carry one.
        raise ConfigError("the PKCS#12 password must not be empty")
    key = _new_key()
    cert = _make_leaf(
        ca_key,
        ca_cert,
        key,
        cn,
        not_before=now - _BACKDATE,
        not_after=now + dt.timedelta(days=days),
        server=False,
    )
    p12 = pack_pkcs12(key, cert, [ca_cert], password, friendly_name=cn)
    p12_path, pw_path = root / f"{name}.pkcs12", root / f"{name}.password"
    write_atomically(p12_path, p12, PRIVATE_MODE)
    write_atomically(pw_path, (password + "\n").encode(), PRIVATE_MODE)
    return ClientCredential(cn=cn, pkcs12=p12_path, password_file=pw_path, password=password)


def pack_pkcs12(
    key: rsa.RSAPrivateKey,
    cert: x509.Certificate,
    cas: list[x509.Certificate],
    password: str,
    *,
    friendly_name: str | None = None,
) -> bytes:
    """PKCS#12 bytes in the shape FMC hands out: key + certificate + CA certificates.

    PBES2 / AES-256 / PBKDF2-SHA256 with a SHA-256 MAC: readable by OpenSSL 1.1.1 and 3.x
    (so by eNcore's `openssl pkcs12` step too) without OpenSSL 3's legacy provider, which the
    old 3DES/RC2 defaults would need.
    """
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(50_000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password.encode())
    )
    return pkcs12.serialize_key_and_certificates(
        name=friendly_name.encode() if friendly_name else None,
        key=key,
        cert=cert,
        cas=cas,
        encryption_algorithm=encryption,
    )


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _check_days(days: int) -> None:
    if not isinstance(days, int) or days < 1:
        raise ConfigError(f"days must be a whole number of days, at least 1 (got {days!r})")


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _make_ca(key: rsa.RSAPrivateKey, now: dt.datetime, days: int) -> x509.Certificate:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "estreamer"),
            # A random suffix: two CAs with one name make OpenSSL's issuer lookup (by
            # name) pick the wrong one, and users cannot tell their CAs apart either.
            x509.NameAttribute(NameOID.COMMON_NAME, f"estreamer CA {secrets.token_hex(4)}"),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )


def _san_for(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _make_leaf(
    ca_key: rsa.RSAPrivateKey,
    ca_cert: x509.Certificate,
    key: rsa.RSAPrivateKey,
    cn: str,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    server: bool,
) -> x509.Certificate:
    """A certificate for `key` with CN = `cn`, signed by the CA.

    Not valid beyond the CA: a leaf that outlives its issuer fails verification anyway, and
    an honest expiry date is easier to diagnose than a mysterious chain error.
    """
    if not cn:
        raise ConfigError("the certificate common name must not be empty")
    not_after = min(not_after, ca_cert.not_valid_after_utc)
    sans: list[x509.GeneralName] = [_san_for(cn)]
    if server:
        # The emulator is usually reached over loopback even when its "FMC address" is
        # something else; these extra names keep hostname-checking tools (curl, openssl
        # s_client -verify_hostname) happy in that case.
        for extra in (x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")):
            if extra not in sans:
                sans.append(extra)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    return (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _make_dir(root: Path) -> None:
    # 0700 only when we create it: an existing directory's mode is the user's choice.
    try:
        root.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        if not root.is_dir():
            raise ConfigError(f"{root} exists and is not a directory") from None


