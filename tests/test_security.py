"""Nobody let in: credentials other users can read stop the client, state files are
private, TLS 1.2 is the floor, and each side refuses a peer its CA did not sign."""

import json
import logging
import socket
import ssl

import pytest

from estreamer.certs import CA_CERT, SERVER_CERT, SERVER_KEY, init_certs
from estreamer.client.bookmark import Bookmark
from estreamer.config import Secret, default_config, settings_from_dict
from estreamer.emulator.server import Emulator
from estreamer.errors import ConfigError
from estreamer.job import build_runner
from estreamer.tls import client_context, server_context


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return init_certs(tmp_path_factory.mktemp("certs"), client_cn="127.0.0.1")


@pytest.fixture(scope="module")
def stranger(tmp_path_factory):
    """Another CA with its own server and client: trusted by nobody here."""
    return init_certs(tmp_path_factory.mktemp("stranger"), client_cn="127.0.0.1")


def settings_for(tmp_path, pkcs12, *, password_file=None, override=False):
    config = default_config("127.0.0.1", 1, pkcs12, password_file=password_file,
                            log_filepath="", uri="relfile:///out/e.{0}.json")
    if override:
        config["subscription"]["servers"][0]["allowReadableKeyFiles"] = True
    path = tmp_path / "estreamer.conf"
    path.write_text(json.dumps(config))
    return settings_from_dict(config, path)


def copy_private(source, target, mode):
    target.write_bytes(source.read_bytes())
    target.chmod(mode)
    return target


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_pkcs12_others_can_read_stops_the_client(tmp_path, certs, mode):
    pkcs12 = copy_private(certs.client_pkcs12, tmp_path / "client.pkcs12", mode)
    settings = settings_for(tmp_path, pkcs12)
    with pytest.raises(ConfigError) as caught:
        build_runner(settings, Secret(certs.password))
    message = str(caught.value)
    assert f"chmod 600 {pkcs12}" in message
    assert "subscription.servers[0].allowReadableKeyFiles" in message
    assert f"mode {mode:04o}" in message
    assert certs.password not in message


def test_a_password_file_others_can_read_stops_the_client(tmp_path, certs):
    pkcs12 = copy_private(certs.client_pkcs12, tmp_path / "client.pkcs12", 0o600)
    secret = tmp_path / "password"
    secret.write_text(certs.password)
    secret.chmod(0o644)
    settings = settings_for(tmp_path, pkcs12, password_file=secret)
    with pytest.raises(ConfigError) as caught:
        build_runner(settings, Secret(certs.password))
    assert f"chmod 600 {secret}" in str(caught.value)
    secret.chmod(0o600)
    build_runner(settings, Secret(certs.password))  # private again: starts


def test_the_override_starts_and_says_so(tmp_path, certs, caplog):
    pkcs12 = copy_private(certs.client_pkcs12, tmp_path / "client.pkcs12", 0o640)
    settings = settings_for(tmp_path, pkcs12, override=True)
    with caplog.at_level(logging.WARNING):
        build_runner(settings, Secret(certs.password))
    assert any("allowReadableKeyFiles is true" in r.getMessage() for r in caplog.records)


def test_state_files_are_private(tmp_path, certs):
    """The bookmark (and what the certs command writes) is 0600 whatever the umask."""
    bookmark = Bookmark(tmp_path / "b.dat")
    bookmark.advance(1_700_000_000, "d")
    bookmark.save()
    assert (tmp_path / "b.dat").stat().st_mode & 0o777 == 0o600
    for secret in (certs.client_pkcs12, certs.directory / SERVER_KEY):
        assert secret.stat().st_mode & 0o077 == 0


def test_tls_1_2_is_the_default_floor_on_both_sides(certs):
    client = client_context(certs.client_pkcs12, certs.password)
    server = server_context(certs.directory / SERVER_CERT, certs.directory / SERVER_KEY,
                            certs.directory / CA_CERT)
    for ctx in (client, server):
        assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
        assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert client.check_hostname is False  # by design: the chain is what is checked


def test_emulator_refuses_a_client_certificate_from_another_ca(certs, stranger):
    ctx = client_context(stranger.client_pkcs12, stranger.password, ca_file=certs.ca_cert)
    with Emulator(certs.directory, rate=0, history_size=5) as fmc:
        raw = socket.create_connection(("127.0.0.1", fmc.port), timeout=5)
        with pytest.raises((ssl.SSLError, ConnectionError)), ctx.wrap_socket(raw) as tls:
            tls.sendall(b"\0" * 16)
            assert tls.recv(1) == b""  # TLS 1.3: the refusal comes at the first read
            raise ConnectionError("closed without a byte")
    assert fmc.sessions == []  # no eStreamer session ever started


def test_client_refuses_a_server_certificate_from_another_ca(certs, stranger):
    ctx = client_context(certs.client_pkcs12, certs.password)  # trusts only its own CA
    with Emulator(stranger.directory, rate=0, history_size=5) as impostor:
        raw = socket.create_connection(("127.0.0.1", impostor.port), timeout=5)
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(raw)
        raw.close()
