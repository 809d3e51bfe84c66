"""`estreamer test`: every failure path produced for real (the emulator, a second CA, a
closed port, a full backlog, a silent TLS server) and the one sentence it ends with."""

import contextlib
import datetime as dt
import io
import json
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from estreamer import diagnose, tls
from estreamer.certs import (
    CA_CERT,
    SERVER_CERT,
    SERVER_KEY,
    init_certs,
    issue_client,
    load_ca,
    pack_pkcs12,
)
from estreamer.cli import main
from estreamer.config import default_config
from estreamer.diagnose import Checker
from estreamer.emulator.faults import Fault
from estreamer.emulator.history import History
from estreamer.emulator.server import Emulator


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return init_certs(tmp_path_factory.mktemp("certs"), client_cn="127.0.0.1")


@pytest.fixture(scope="module")
def other_certs(tmp_path_factory):
    return init_certs(tmp_path_factory.mktemp("other"), client_cn="127.0.0.1")


@pytest.fixture(scope="module")
def fmc(certs):
    with Emulator(certs.directory, rate=0, seed=5, history_size=150) as emulator:
        yield emulator


def write_config(directory: Path, port: int, pkcs12, password_file, *, host="127.0.0.1",
                 edit=None, **options) -> Path:
    config = default_config(host, port, pkcs12, password_file=password_file, start=0,
                            log_filepath="", **options)
    config["connectTimeout"] = 2
    if edit:
        edit(config)
    path = directory / "estreamer.conf"
    path.write_text(json.dumps(config))
    return path


def check(path: Path, *, seconds: float = 0.6, verbose: bool = False) -> tuple[int, str]:
    out = io.StringIO()
    code = Checker(path, out=out, verbose=verbose, seconds=seconds, env={},
                   interactive=False).run()
    return code, out.getvalue()


def check_failing(path: Path, **options) -> str:
    code, out = check(path, **options)
    assert code == 1, out
    return out


def failure(output: str) -> tuple[str, str]:
    """(step name, sentence) of the FAIL line; exactly one such line, and it is the last."""
    lines = [line for line in output.splitlines() if " FAIL " in line]
    assert len(lines) == 1, output
    assert output.rstrip().endswith(lines[0]), output
    head, _, sentence = lines[0].partition(" FAIL ")
    return head.split()[-1], sentence.strip()


# --- all passes ----------------------------------------------------------------------------


def test_everything_passes_against_the_emulator(tmp_path, certs):
    with Emulator(certs.directory, rate=0, seed=5, history_size=150) as fmc:
        path = write_config(tmp_path, fmc.port, certs.client_pkcs12, certs.client_password_file)
        code, out = check(path)
    sent = len(fmc.ledger)
    types = len({entry.record_type for entry in fmc.ledger.entries()})
    assert code == 0, out
    assert "FAIL" not in out
    ca = x509.load_pem_x509_certificate(certs.ca_cert.read_bytes()).subject.rfc4514_string()
    assert f"subject CN 127.0.0.1, issuer {ca}, valid " in out
    assert "the certificate CN 127.0.0.1 is the address this host connects to 127.0.0.1" in out
    assert f"127.0.0.1:{fmc.port} (127.0.0.1) connected in" in out
    assert "[5/6] tls       ok   TLSv1." in out
    assert "request 0x48900061 from the oldest data; 2051 Streaming Information (services " \
           f"5001, 5000, 6667), 2049 sent; {sent} records in 0.6 s" in out
    assert "received: " in out and "connection " in out and "intrusion " in out
    assert out.splitlines()[-1].startswith(
        f"Connection successful: 127.0.0.1:{fmc.port} over TLSv1.")
    assert out.splitlines()[-1].endswith(f", {sent} records of {types} types in 0.6 s")
    assert certs.password not in out


def test_verbose_prints_every_message_as_annotated_hex(tmp_path, certs, fmc):
    path = write_config(tmp_path, fmc.port, certs.client_pkcs12, certs.client_password_file)
    code, out = check(path, verbose=True, seconds=0.3)
    assert code == 0, out
    assert "-> Event Stream Request (2) at byte 0, 16 bytes" in out
    assert "     header  0001 0002 00000008   version=1 type=2 length=8" in out
    assert "     0000    00000000 48900061" in out
    assert "= initial timestamp the oldest data, flags 0x48900061 (PACKETS|IMPACT_ALERTS|" \
           "INTRUSION|METADATA|ARCHIVE_TIMESTAMPS|EXTRA_DATA|EXTENDED)" in out
    assert "<- Streaming Information (2051) at byte 0, 56 bytes" in out
    assert "= service 5001; service 5000; service 6667" in out
    assert "-> Streaming Request (2049) at byte 16, 64 bytes" in out
    assert "<- Message Bundle (4002) at byte 56" in out
    assert "sequence 1, 100 records (" in out


def test_missing_requested_families_are_named_without_failing(tmp_path, certs):
    with Emulator(certs.directory, rate=0, seed=5, history_size=150) as fmc:
        # An FMC with impact alerts unticked: none come (record 9) although the request asks.
        fmc.history = History(seed=5, size=150, unticked=("impact",))
        path = write_config(tmp_path, fmc.port, certs.client_pkcs12, certs.client_password_file)
        code, out = check(path)
    assert code == 0
    assert "note: requested but not received within 0.6 s: impact; the FMC sends only the " \
           "event types ticked in its eStreamer Event Configuration" in out


# --- 1. config -----------------------------------------------------------------------------


def test_unknown_key_is_named_with_the_closest_known_key(tmp_path, certs):
    def typo(config):
        config["monitor"]["periodd"] = 30
        config["subscription"]["servers"][0]["pkcs12FilePath"] = "x"

    path = write_config(tmp_path, 1, certs.client_pkcs12, certs.client_password_file,
                        edit=typo)
    code, out = check(path)
    assert code == 1
    assert failure(out) == ("config", (
        "estreamer.conf: subscription.servers[0].pkcs12FilePath (did you mean "
        "subscription.servers[0].pkcs12Filepath?), monitor.periodd (did you mean "
        "monitor.period?) are not a setting estreamer or eNcore knows and would be ignored: "
        "rename or remove them."))


def test_value_out_of_range_is_named(tmp_path, certs):
    path = write_config(tmp_path, 70000, certs.client_pkcs12, certs.client_password_file)
    code, out = check(path)
    assert code == 1
    assert failure(out) == ("config", (
        f"The config cannot be used: {path}: subscription.servers[0].port: expected a whole "
        "number from 1 to 65535, got 70000."))


def test_missing_password_is_named(tmp_path, certs):
    path = write_config(tmp_path, 1, certs.client_pkcs12, None)
    out = check_failing(path)
    assert failure(out)[0] == "config"
    assert "no password for" in failure(out)[1] and "ESTREAMER_PKCS12_PASSWORD" in out


# --- 2. PKCS#12 ----------------------------------------------------------------------------


def test_missing_pkcs12_is_named(tmp_path, certs):
    path = write_config(tmp_path, 1, tmp_path / "client.pkcs12", certs.client_password_file)
    code, out = check(path)
    assert code == 1
    assert failure(out) == ("pkcs12", (
        f"The PKCS#12 file {tmp_path / 'client.pkcs12'} does not exist: create a client on "
        "the FMC (System > Integration > eStreamer > Create Client) and save its PKCS#12 "
        "there."))


def test_wrong_password_is_named_and_never_printed(tmp_path, certs):
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password\n")
    wrong.chmod(0o600)
    path = write_config(tmp_path, 1, certs.client_pkcs12, wrong)
    out = check_failing(path)
    assert failure(out) == ("pkcs12", diagnose.PKCS12_PASSWORD_WRONG.format(name="client.pkcs12"))
    assert "not-the-password" not in out and certs.password not in out


def _pkcs12_with(tmp_path, certs, *, days_ago: int):
    ca_key, ca_cert = load_ca(certs.directory)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=days_ago + 30))
        .not_valid_after(now - dt.timedelta(days=days_ago))
        .sign(ca_key, hashes.SHA256())
    )
    p12 = tmp_path / "made.pkcs12"
    p12.write_bytes(pack_pkcs12(key, cert, [ca_cert], "pw"))
    secret = tmp_path / "made.password"
    secret.write_text("pw")
    secret.chmod(0o600)
    return p12, secret


def test_expired_client_certificate_is_named(tmp_path, certs):
    p12, secret = _pkcs12_with(tmp_path, certs, days_ago=3)
    path = write_config(tmp_path, 1, p12, secret)
    out = check_failing(path)
    expired = (dt.datetime.now(dt.UTC) - dt.timedelta(days=3)).strftime("%Y-%m-%d")
    assert failure(out) == ("pkcs12", (
        f"The client certificate in made.pkcs12 expired on {expired}: create a new client on "
        "the FMC (System > Integration > eStreamer > Create Client) and use its PKCS#12."))


def test_a_key_that_does_not_belong_to_the_certificate_is_told_apart(certs):
    # cryptography refuses to pack such a PKCS#12, so the check is shown on the parts.
    key, cert, _ = tls.load_pkcs12(certs.client_pkcs12, certs.password)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert diagnose.key_matches(key, cert) is True
    assert diagnose.key_matches(stranger, cert) is False
    assert diagnose.KEY_MISMATCH.format(name="client.pkcs12") == (
        "The private key in client.pkcs12 does not belong to its certificate: download the "
        "PKCS#12 again from the FMC (eStreamer > Create Client) instead of assembling one by "
        "hand.")


# --- 3 + 5/6. the certificate CN is not this host's address ---------------------------------


def test_cn_mismatch_warns_then_names_the_rejection(tmp_path, certs, fmc):
    stranger = issue_client(certs.directory, "10.9.9.9", None, name="nat-client")
    path = write_config(tmp_path, fmc.port, stranger.pkcs12, stranger.password_file)
    code, out = check(path)
    assert code == 1
    assert ("[3/6] address   warn the certificate CN 10.9.9.9 is not an address of this host, "
            "which reaches 127.0.0.1 from 127.0.0.1: the FMC compares the CN with the address "
            "it sees, so this works only if NAT between here and the FMC translates 127.0.0.1 "
            "to 10.9.9.9; otherwise create a client for 127.0.0.1 on the FMC") in out
    step, sentence = failure(out)
    assert step in ("tls", "estreamer")  # where the close lands depends on the TLS version
    assert sentence == (
        f"The FMC at 127.0.0.1:{fmc.port} closed the connection right after the TLS "
        "handshake, so it rejected this client certificate (unknown CA, or CN/IP mismatch: "
        "the certificate CN is 10.9.9.9, this host connects from 127.0.0.1): check the FMC's "
        "eStreamer client list and create a client for the address the FMC sees this host "
        "connect from (behind NAT, the translated one).")


# --- 4. TCP --------------------------------------------------------------------------------


def test_refused_port_is_named(tmp_path, certs):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        path = write_config(tmp_path, port, certs.client_pkcs12, certs.client_password_file)
        out = check_failing(path)
    assert failure(out) == ("tcp", tls.REFUSED.format(host="127.0.0.1", port=port))


def test_dns_failure_is_named(tmp_path, certs):
    path = write_config(tmp_path, 8302, certs.client_pkcs12, certs.client_password_file,
                        host="no-such-fmc.invalid")
    out = check_failing(path)
    assert "[3/6] address   skip no-such-fmc.invalid does not resolve here" in out
    assert failure(out) == ("tcp", tls.DNS_FAILURE.format(host="no-such-fmc.invalid",
                                                          port=8302))


def test_filtered_port_times_out_and_is_named(tmp_path, certs):
    # A listener that never accepts, with its backlog full: the kernel drops further SYNs,
    # exactly what a filtering firewall looks like from the client.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    held = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            s.connect(("127.0.0.1", port))
        held.append(s)

    def fast(config):
        config["connectTimeout"] = 0.5

    try:
        path = write_config(tmp_path, port, certs.client_pkcs12, certs.client_password_file,
                            edit=fast)
        out = check_failing(path)
    finally:
        for s in [*held, listener]:
            s.close()
    assert failure(out) == ("tcp", tls.TIMEOUT.format(host="127.0.0.1", port=port))


# --- 5. TLS --------------------------------------------------------------------------------


def test_server_certificate_from_another_ca_is_named(tmp_path, certs, other_certs, fmc):
    path = write_config(tmp_path, fmc.port, certs.client_pkcs12, certs.client_password_file,
                        ca_file=other_certs.ca_cert)
    out = check_failing(path)
    assert failure(out) == ("tls", tls.WRONG_CA.format(host="127.0.0.1", port=fmc.port))


def test_client_certificate_from_another_ca_is_named(tmp_path, certs, other_certs, fmc):
    path = write_config(tmp_path, fmc.port, other_certs.client_pkcs12,
                        other_certs.client_password_file, ca_file=certs.ca_cert)
    out = check_failing(path)
    step, sentence = failure(out)
    # TLS 1.2 hears the alert in the handshake, TLS 1.3 at the first read; and when the
    # server's close resets the connection before the alert is read, only the close is left,
    # which the rejection sentence covers too (unknown CA is its first guess).
    assert step in ("tls", "estreamer")
    assert sentence in (
        tls.CLIENT_CERT_REJECTED.format(host="127.0.0.1", port=fmc.port),
        diagnose.REJECTED_AFTER_HANDSHAKE.format(host="127.0.0.1", port=fmc.port, hint=""),
    )


def _serve(handler):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    done = threading.Event()

    def loop():
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn:
                handler(conn, done)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return listener, done, thread


@contextlib.contextmanager
def tiny_server(handler):
    listener, done, thread = _serve(handler)
    try:
        yield listener.getsockname()[1]
    finally:
        done.set()
        listener.close()
        thread.join(timeout=5)


def test_a_service_that_is_not_tls_is_named(tmp_path, certs):
    def ssh(conn, done):
        conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
        done.wait(5)

    with tiny_server(ssh) as port:
        path = write_config(tmp_path, port, certs.client_pkcs12, certs.client_password_file)
        out = check_failing(path)
    assert failure(out) == ("tls", tls.NOT_TLS.format(host="127.0.0.1", port=port))


# --- 6. eStreamer --------------------------------------------------------------------------


def test_server_that_goes_silent_after_the_handshake_is_named(tmp_path, certs):
    context = tls.server_context(certs.directory / SERVER_CERT, certs.directory / SERVER_KEY,
                                 certs.directory / CA_CERT)

    def silent(conn, done):
        with contextlib.suppress(ssl.SSLError, OSError), \
                context.wrap_socket(conn, server_side=True):
            done.wait(5)  # handshake done; then not a byte

    with tiny_server(silent) as port:
        path = write_config(tmp_path, port, certs.client_pkcs12, certs.client_password_file)
        out = check_failing(path, seconds=0.5)
    assert "[5/6] tls       ok" in out
    assert failure(out) == ("estreamer", (
        f"The FMC at 127.0.0.1:{port} accepted the TLS connection but sent nothing within "
        "0.5 s of the Event Stream Request: check that the eStreamer service runs on the FMC "
        "(`pstree -a | grep -i sfestreamer`; a full backup pauses it) and restart it if it "
        "hangs."))


def test_error_message_from_the_fmc_is_named(tmp_path, certs):
    fault = Fault("error", bundle=0, session=None, code=19, text="No space")
    with Emulator(certs.directory, rate=0, history_size=50, faults=[fault]) as emulator:
        path = write_config(tmp_path, emulator.port, certs.client_pkcs12,
                            certs.client_password_file)
        out = check_failing(path)
    assert failure(out) == ("estreamer", (
        f"The FMC at 127.0.0.1:{emulator.port} answered with error 19 \"No space\": the cause "
        "is on the FMC; look for it with `grep -i estreamer /var/log/messages` there."))


def test_close_in_the_middle_of_the_stream_is_named(tmp_path, certs):
    with Emulator(certs.directory, rate=0, history_size=400,
                  faults=[Fault("close", bundle=2)]) as emulator:
        path = write_config(tmp_path, emulator.port, certs.client_pkcs12,
                            certs.client_password_file)
        out = check_failing(path, seconds=2)
    assert failure(out) == ("estreamer", (
        f"The FMC at 127.0.0.1:{emulator.port} closed the connection after 100 records "
        "without an error message: look for the reason with `grep -i estreamer "
        "/var/log/messages` on the FMC (a run would reconnect and resume from the bookmark)."))


# --- the command line ----------------------------------------------------------------------


def test_cli_test_command_exit_codes(tmp_path, certs, fmc, capsys):
    path = write_config(tmp_path, fmc.port, certs.client_pkcs12, certs.client_password_file)
    assert main(["test", "-c", str(path), "--seconds", "0.3"]) == 0
    assert "Connection successful" in capsys.readouterr().out
    bad = write_config(tmp_path, 0, certs.client_pkcs12, certs.client_password_file)
    assert main(["test", "-c", str(bad)]) == 1
    assert "FAIL The config cannot be used" in capsys.readouterr().out
