"""The live path end to end: the real client, real TLS with generated certificates, the
emulator over loopback. Each failure a user can meet ends with one plain sentence."""

import json
from pathlib import Path

import pytest

from estreamer import tls
from estreamer.certs import init_certs, issue_client
from estreamer.client.bookmark import Bookmark, bookmark_path
from estreamer.client.runner import FatalRunError
from estreamer.config import Secret, default_config, settings_from_dict
from estreamer.emulator.faults import Fault
from estreamer.emulator.server import Emulator
from estreamer.errors import TlsSetupError
from estreamer.job import build_runner


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return init_certs(tmp_path_factory.mktemp("certs"), client_cn="127.0.0.1")


@pytest.fixture(scope="module")
def other_certs(tmp_path_factory):
    """A second CA: its client certificate and its CA are strangers to the emulator."""
    return init_certs(tmp_path_factory.mktemp("other"), client_cn="127.0.0.1")


def make_settings(workdir: Path, port: int, certs, *, pkcs12=None, ca_file=None, start=2):
    config = default_config(
        "127.0.0.1",
        port,
        pkcs12 or certs.client_pkcs12,
        ca_file=ca_file,
        uri="relfile:///out/encore.{0}.json",
        start=start,
        log_filepath="",
    )
    config["responseTimeout"] = 0.2
    config["connectTimeout"] = 3
    path = workdir / "estreamer.conf"
    path.write_text(json.dumps(config))
    return settings_from_dict(config, path)


def stream(settings, password, **run):
    written = []
    runner = build_runner(
        settings, Secret(password), on_record=written.append, max_retries=0, commit_interval=0.0
    )
    result = runner.run(**run)
    return result, written


def output_lines(workdir: Path) -> list[dict]:
    return [
        json.loads(line)
        for f in sorted((workdir / "out").glob("*.json"))
        for line in f.read_text().splitlines()
    ]


def test_full_stream_equals_the_emulator_ledger(tmp_path, certs):
    with Emulator(certs.directory, rate=0, seed=3, history_size=300) as emulator:
        settings = make_settings(tmp_path, emulator.port, certs, start=0)
        result, written = stream(settings, certs.password, stop_when_idle=0.5)
    sent = emulator.ledger.digests()
    assert [r.digest for r in written] == sent
    assert result.handled == len(sent) and result.duplicates == 0
    lines = output_lines(tmp_path)
    assert len(lines) == len(sent)
    assert [line["record_type"] for line in lines] == [r.record_type for r in written]
    families = {r.category for r in written}
    assert {"metadata", "intrusion", "connection", "file", "malware"} <= families
    assert all(r.error is None and not r.notes for r in written)
    saved = Bookmark.load(bookmark_path(tmp_path, "127.0.0.1", emulator.port))
    assert saved.timestamp == max(r.archive_timestamp for r in written if r.archive_timestamp)


def test_restart_from_bookmark_loses_nothing_and_duplicates_nothing(tmp_path, certs):
    with Emulator(certs.directory, rate=0, seed=5, history_size=400, bundle_records=25) as emulator:
        settings = make_settings(tmp_path, emulator.port, certs, start=2)
        # Stop part-way through a bundle, as a crash or Ctrl-C would.
        first, written_first = stream(settings, certs.password, max_records=437)
        assert first.reason == "record limit reached"
        second, written_second = stream(settings, certs.password, stop_when_idle=0.5)
    history = [
        e
        for e in emulator.ledger.entries(session_id=emulator.ledger.sessions()[0])
        if e.archive_timestamp is not None
    ]
    events = [r for r in written_first + written_second if r.archive_timestamp is not None]
    assert second.duplicates > 0, "the restart must have resent the bookmarked second"
    assert sorted(r.digest for r in events) == sorted(e.digest for e in history)
    assert len({r.digest for r in events}) == len(events)


def test_wrong_client_certificate_is_named(tmp_path, certs, other_certs):
    with Emulator(certs.directory, rate=0, history_size=10) as emulator:
        settings = make_settings(
            tmp_path, emulator.port, certs, pkcs12=other_certs.client_pkcs12, ca_file=certs.ca_cert
        )
        with pytest.raises(FatalRunError) as caught:
            stream(settings, other_certs.password)
    assert str(caught.value) == tls.CLIENT_CERT_REJECTED.format(
        host="127.0.0.1", port=emulator.port
    )


def test_wrong_ca_is_named(tmp_path, certs, other_certs):
    with Emulator(certs.directory, rate=0, history_size=10) as emulator:
        settings = make_settings(tmp_path, emulator.port, certs, ca_file=other_certs.ca_cert)
        with pytest.raises(FatalRunError) as caught:
            stream(settings, certs.password)
    assert str(caught.value) == tls.WRONG_CA.format(host="127.0.0.1", port=emulator.port)


def test_wrong_pkcs12_password_is_named_without_the_password(tmp_path, certs):
    settings = make_settings(tmp_path, 1, certs)
    with pytest.raises(TlsSetupError) as caught:
        stream(settings, "not-the-password")
    assert str(caught.value) == "the PKCS#12 password is wrong for client.pkcs12"
    assert "not-the-password" not in str(caught.value)


def test_common_name_mismatch_is_named(tmp_path, certs):
    stranger = issue_client(certs.directory, "10.9.9.9", None, name="nat-client")
    with Emulator(certs.directory, rate=0, history_size=10) as emulator:
        settings = make_settings(tmp_path, emulator.port, certs, pkcs12=stranger.pkcs12)
        with pytest.raises(FatalRunError) as caught:
            stream(settings, stranger.password)
    assert str(caught.value) == tls.CLOSED_AFTER_HANDSHAKE.format(
        host="127.0.0.1", port=emulator.port
    )


def test_server_not_listening_is_named(tmp_path, certs):
    emulator = Emulator(certs.directory, rate=0, history_size=10)
    port = emulator.start()
    emulator.stop()  # a port that was just free and is closed now
    settings = make_settings(tmp_path, port, certs)
    with pytest.raises(FatalRunError) as caught:
        stream(settings, certs.password)
    assert str(caught.value) == tls.REFUSED.format(host="127.0.0.1", port=port)


def test_server_error_message_is_named(tmp_path, certs):
    fault = Fault("error", bundle=0, session=None, code=19, text="No space")
    with Emulator(certs.directory, rate=0, history_size=10, faults=[fault]) as emulator:
        settings = make_settings(tmp_path, emulator.port, certs)
        with pytest.raises(FatalRunError) as caught:
            stream(settings, certs.password)
    assert str(caught.value) == "the server sent error 19: No space"


def test_reconnects_after_a_cut_and_loses_nothing(tmp_path, certs):
    """The emulator cuts the first session inside bundle 3; the client reconnects from its
    bookmark and the union of what it wrote is exactly the history."""
    with Emulator(
        certs.directory,
        rate=0,
        seed=9,
        history_size=300,
        bundle_records=40,
        faults=[Fault("close", bundle=3)],
    ) as emulator:
        settings = make_settings(tmp_path, emulator.port, certs, start=2)
        written = []
        runner = build_runner(
            settings,
            Secret(certs.password),
            max_retries=3,
            commit_interval=0.0,
            on_record=written.append,
            first_retry_delay=0.05,
        )
        result = runner.run(stop_when_idle=0.5)
    assert result.connections == 2
    sent = {e.digest for e in emulator.ledger.entries() if e.archive_timestamp is not None}
    events = [r.digest for r in written if r.archive_timestamp is not None]
    assert len(events) == len(set(events))
    assert set(events) == sent
    assert len(sent) == len(emulator.history.events)


def test_failing_output_is_named_and_keeps_the_bookmark_back(tmp_path, certs):
    from estreamer.formats import get_formatter
    from estreamer.pipeline import Sink

    class FullDisk:
        def write(self, lines):
            pass

        def flush(self, durable):
            raise OSError(28, "No space left on device")

        def close(self):
            pass

    with Emulator(certs.directory, rate=0, history_size=20) as emulator:
        settings = make_settings(tmp_path, emulator.port, certs, start=2)
        runner = build_runner(
            settings,
            Secret(certs.password),
            max_retries=0,
            commit_interval=0.0,
            extra_sinks=[Sink(FullDisk(), "json", get_formatter("json"))],
        )
        with pytest.raises(FatalRunError) as caught:
            runner.run(stop_when_idle=0.5)
    assert str(caught.value) == (
        "could not flush output FullDisk: [Errno 28] No space left on device"
    )
    saved = Bookmark.load(bookmark_path(tmp_path, "127.0.0.1", emulator.port))
    assert saved is None or saved.timestamp is None
