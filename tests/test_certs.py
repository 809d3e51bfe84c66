"""estreamer.certs: what FMC's "Create Client" produces, checked file by file."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from estreamer.certs import init_certs, issue_client
from estreamer.errors import ConfigError

PRIVATE = ("ca.key", "server.key", "client.pkcs12", "client.password")
PUBLIC = ("ca.pem", "server.pem")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def sans(cert: x509.Certificate) -> list[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(name.value) for name in ext]


def test_init_certs_writes_every_file_with_its_mode(tmp_path: Path) -> None:
    bundle = init_certs(tmp_path / "certs")

    assert sorted(p.name for p in (tmp_path / "certs").iterdir()) == sorted(PRIVATE + PUBLIC)
    for name in PRIVATE:
        assert mode(tmp_path / "certs" / name) == 0o600, name
    for name in PUBLIC:
        assert mode(tmp_path / "certs" / name) == 0o644, name
    assert mode(tmp_path / "certs") == 0o700
    assert bundle.client_pkcs12 == tmp_path / "certs" / "client.pkcs12"
    assert bundle.ca_cert == tmp_path / "certs" / "ca.pem"
    assert bundle.server_key == tmp_path / "certs" / "server.key"
    assert bundle.client_password_file.read_text() == bundle.password + "\n"
    assert len(bundle.password) == 24
    assert bundle.password not in repr(bundle)


def test_private_files_are_0600_whatever_the_umask(tmp_path: Path) -> None:
    for umask in (0o000, 0o277):
        old = os.umask(umask)
        try:
            init_certs(tmp_path / f"u{umask:o}")
        finally:
            os.umask(old)
        for name in PRIVATE:
            assert mode(tmp_path / f"u{umask:o}" / name) == 0o600, (umask, name)


def test_pkcs12_holds_client_key_cert_with_cn_and_the_ca(tmp_path: Path) -> None:
    bundle = init_certs(tmp_path, client_cn="192.168.27.100", password="given-Pw-1")
    assert bundle.password == "given-Pw-1"

    p12 = pkcs12.load_pkcs12(bundle.client_pkcs12.read_bytes(), b"given-Pw-1")
    ca = x509.load_pem_x509_certificate(bundle.ca_cert.read_bytes())
    assert p12.cert is not None and p12.key is not None
    client = p12.cert.certificate
    assert cn(client) == "192.168.27.100"
    assert p12.cert.friendly_name == b"192.168.27.100"
    assert [c.certificate for c in p12.additional_certs] == [ca]
    client.verify_directly_issued_by(ca)
    assert p12.key.public_key() == client.public_key()
    eku = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert p12.key.key_size == 2048  # type: ignore[union-attr]


def test_pkcs12_refuses_the_wrong_password(tmp_path: Path) -> None:
    bundle = init_certs(tmp_path, password="right-one")
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(bundle.client_pkcs12.read_bytes(), b"wrong-one")


def test_server_cert_names_ip_or_dns_plus_loopback(tmp_path: Path) -> None:
    by_ip = init_certs(tmp_path / "ip", server_cn="10.48.26.49")
    server = x509.load_pem_x509_certificate(by_ip.server_cert.read_bytes())
    assert cn(server) == "10.48.26.49"
    assert sans(server) == ["10.48.26.49", "127.0.0.1", "localhost"]
    ext = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)] == [
        "10.48.26.49",
        "127.0.0.1",
    ]

    by_name = init_certs(tmp_path / "dns", server_cn="fmc.example.com")
    server = x509.load_pem_x509_certificate(by_name.server_cert.read_bytes())
    ext = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ext.get_values_for_type(x509.DNSName) == ["fmc.example.com", "localhost"]
    ca = x509.load_pem_x509_certificate(by_name.ca_cert.read_bytes())
    server.verify_directly_issued_by(ca)


def test_validity_follows_days_and_is_backdated(tmp_path: Path) -> None:
    bundle = init_certs(tmp_path, days=30)
    server = x509.load_pem_x509_certificate(bundle.server_cert.read_bytes())
    now = dt.datetime.now(dt.UTC)
    assert now - dt.timedelta(minutes=6) < server.not_valid_before_utc < now
    expected_end = now + dt.timedelta(days=30)
    assert abs((server.not_valid_after_utc - expected_end).total_seconds()) < 60


def test_refuses_to_replace_a_ca_without_force(tmp_path: Path) -> None:
    init_certs(tmp_path)
    ca_before = (tmp_path / "ca.pem").read_bytes()
    with pytest.raises(ConfigError) as info:
        init_certs(tmp_path)
    assert "already holds a CA (ca.pem, ca.key)" in str(info.value)
    assert "force=True" in str(info.value)
    assert (tmp_path / "ca.pem").read_bytes() == ca_before

    init_certs(tmp_path, force=True)
    assert (tmp_path / "ca.pem").read_bytes() != ca_before


def test_two_cas_have_different_names(tmp_path: Path) -> None:
    a = init_certs(tmp_path / "a")
    b = init_certs(tmp_path / "b")
    ca_a = x509.load_pem_x509_certificate(a.ca_cert.read_bytes())
    ca_b = x509.load_pem_x509_certificate(b.ca_cert.read_bytes())
    assert ca_a.subject != ca_b.subject


def test_issue_client_signs_with_the_existing_ca(tmp_path: Path) -> None:
    init_certs(tmp_path)
    cred = issue_client(tmp_path, "203.0.113.7", "nat-pass", name="natted")

    assert cred.pkcs12 == tmp_path / "natted.pkcs12"
    assert cred.password_file.read_text() == "nat-pass\n"
    assert mode(cred.pkcs12) == 0o600 and mode(cred.password_file) == 0o600
    assert "nat-pass" not in repr(cred)
    key, cert, extras = pkcs12.load_key_and_certificates(cred.pkcs12.read_bytes(), b"nat-pass")
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.pem").read_bytes())
    assert cert is not None and cn(cert) == "203.0.113.7"
    assert key is not None and key.public_key() == cert.public_key()
    cert.verify_directly_issued_by(ca)
    assert extras == [ca]
    # The first client is untouched.
    assert (tmp_path / "client.pkcs12").exists()


def test_issue_client_generates_a_password_when_none(tmp_path: Path) -> None:
    init_certs(tmp_path)
    cred = issue_client(tmp_path, "10.0.0.9", None, name="other")
    assert len(cred.password) == 24
    assert cred.password_file.read_text().strip() == cred.password


def test_issue_client_needs_a_ca_and_a_plain_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        issue_client(tmp_path, "10.0.0.9", "pw")
    assert (
        str(info.value)
        == f"{tmp_path / 'ca.pem'} does not exist; create the CA first with init_certs"
    )

    init_certs(tmp_path)
    with pytest.raises(ConfigError) as info:
        issue_client(tmp_path, "10.0.0.9", "pw", name="../escape")
    assert str(info.value) == "the client name '../escape' must be a plain file name"


def test_empty_password_and_bad_days_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        init_certs(tmp_path / "a", password="")
    assert str(info.value) == "the PKCS#12 password must not be empty"
    with pytest.raises(ConfigError) as info:
        init_certs(tmp_path / "b", days=0)
    assert "at least 1" in str(info.value)


def test_no_temp_files_remain_after_init(tmp_path: Path) -> None:
    init_certs(tmp_path)
    issue_client(tmp_path, "10.1.1.1", "pw", name="second")
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
