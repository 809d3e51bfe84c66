"""Faults the emulator injects and how the real client lives through them: cuts inside a
message header, a bundle and a TLS record, a silent server, a slow one, a restart; backoff
with jitter; a bookmark that a torn write can never make trusted."""

import json
import random
import ssl
import time
from dataclasses import replace

import pytest

from estreamer import tls
from estreamer.certs import init_certs, issue_client
from estreamer.client.bookmark import Bookmark, BookmarkError, bookmark_path
from estreamer.client.runner import MAX_RETRY_DELAY, FatalRunError, Runner
from estreamer.config import Secret, default_config, settings_from_dict
from estreamer.emulator.faults import HEADER_CUT, Fault
from estreamer.emulator.history import History
from estreamer.emulator.server import Emulator
from estreamer.emulator.session import ServerSession
from estreamer.errors import ConfigError
from estreamer.job import build_runner
from estreamer.pipeline import Pipeline
from estreamer.protocol.flags import ENCORE_DEFAULT_FLAGS
from estreamer.protocol.messages import encode_event_stream_request


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return init_certs(tmp_path_factory.mktemp("certs"), client_cn="127.0.0.1")


@pytest.fixture(scope="module")
def history():
    return History(seed=2, size=60, rate=0)


def streaming_session(history, faults, bundle_records=10):
    session = ServerSession(history, connection_id=1, bundle_records=bundle_records,
                            faults=faults)
    # Bit 30 clear: streaming starts at once, no 2051 / 2049 exchange needed here.
    session.receive(encode_event_stream_request(0, ENCORE_DEFAULT_FLAGS & ~(1 << 30)))
    assert session.streaming
    return session


# -- the faults, sans-IO ------------------------------------------------------------------


def test_fault_specs_with_values_parse():
    assert Fault.parse("slow@2=4096") == Fault("slow", 2, 1, value=4096.0)
    assert Fault.parse("restart@3/*=0.25").downtime == 0.25
    assert Fault.parse("close-tls@4/2") == Fault("close-tls", 4, 2)
    assert Fault("slow").rate == 16 * 1024 and Fault("restart").downtime == 0.5
    for bad in ("close@2=3", "slow@1=0", "restart@1=-1", "slow@1=fast"):
        with pytest.raises(ConfigError):
            Fault.parse(bad)


def test_close_header_sends_part_of_the_8_byte_header_only(history):
    session = streaming_session(history, [Fault("close-header", 2)])
    first = session.next_bundle()
    cut = session.next_bundle()
    assert first.complete and len(first.data) > 8
    assert cut.data == _whole(history, 2)[:HEADER_CUT] and len(cut.data) == 5
    assert cut.close_after and not cut.complete and session.closed


def test_close_tls_sends_half_a_bundle_then_asks_for_a_cut_tls_record(history):
    session = streaming_session(history, [Fault("close-tls", 1)])
    cut = session.next_bundle()
    assert cut.cut_tls and cut.close_after and not cut.complete
    assert 8 < len(cut.data) < len(_whole(history, 1))


def test_silent_sends_nothing_more_not_even_keepalives(history):
    session = streaming_session(history, [Fault("silent", 2)])
    assert session.next_bundle() is not None
    assert session.next_bundle() is None and session.next_bundle() is None
    assert session.keepalive() == b"" and session.silent and not session.closed


def test_slow_sets_a_send_rate_from_its_bundle_on(history):
    session = streaming_session(history, [Fault("slow", 2, value=1000)])
    assert session.next_bundle() is not None and session.send_rate is None
    assert session.next_bundle() is not None and session.send_rate == 1000


def test_restart_replaces_its_bundle(history):
    session = streaming_session(history, [Fault("restart", 2, value=0.1)])
    session.next_bundle()
    restart = session.next_bundle()
    assert restart.restart == 0.1 and restart.data == b"" and restart.close_after


def _whole(history, sequence, bundle_records=10):
    """Bundle `sequence` of a fault-free session over the same history."""
    session = streaming_session(history, [], bundle_records)
    for _ in range(sequence - 1):
        session.next_bundle()
    return session.next_bundle().data


# -- the client against each fault, over real TLS -------------------------------------------


def make_settings(workdir, port, certs, *, response_timeout=0.05, pkcs12=None):
    config = default_config("127.0.0.1", port, pkcs12 or certs.client_pkcs12,
                            uri="relfile:///out/encore.{0}.json", start=2, log_filepath="")
    config["responseTimeout"] = response_timeout  # idle timeout: 60 of these
    config["connectTimeout"] = 3
    path = workdir / "estreamer.conf"
    path.write_text(json.dumps(config))
    return settings_from_dict(config, path)


def run_through(tmp_path, certs, faults, *, history_size=200, response_timeout=0.05,
                max_retries=5, stop_when_idle=0.6, **emulator):
    options = {"rate": 0, "seed": 11, "history_size": history_size, "bundle_records": 25,
               "keepalive_interval": 0.2, **emulator}
    written = []
    with Emulator(certs.directory, faults=faults, **options) as fmc:
        settings = make_settings(tmp_path, fmc.port, certs, response_timeout=response_timeout)
        runner = build_runner(settings, Secret(certs.password), max_retries=max_retries,
                              commit_interval=0.0, on_record=written.append,
                              first_retry_delay=0.05)
        started = time.monotonic()
        result = runner.run(stop_when_idle=stop_when_idle)
        elapsed = time.monotonic() - started
    events = [r.digest for r in written if r.archive_timestamp is not None]
    history = {e.digest for e in fmc.ledger.entries() if e.archive_timestamp is not None}
    assert len(events) == len(set(events)), "duplicates reached the outputs"
    assert set(events) == history and len(history) == len(fmc.history.events), "lost events"
    lines = [json.loads(line) for f in sorted((tmp_path / "out").glob("*.json"))
             for line in f.read_text().splitlines()]
    assert len(lines) == len(written)
    return result, fmc, elapsed


@pytest.mark.parametrize("kind", ["close", "close-header", "close-tls"])
def test_a_cut_anywhere_costs_a_reconnect_and_nothing_else(tmp_path, certs, kind):
    result, fmc, _ = run_through(tmp_path, certs, [Fault(kind, 3)])
    assert result.connections == 2
    assert len(fmc.sessions) == 2


def test_a_silent_server_is_dropped_after_the_idle_timeout(tmp_path, certs):
    # responseTimeout 0.02 s → idle timeout 1.2 s; the emulator's keepalives (0.2 s) stop too.
    # "Caught up" must wait longer than that, or it would end the run first.
    result, fmc, elapsed = run_through(tmp_path, certs, [Fault("silent", 2)],
                                       response_timeout=0.02, stop_when_idle=2.0)
    assert result.connections == 2
    assert fmc.sessions[0].silent and not fmc.sessions[1].silent
    assert elapsed >= 1.2


def test_keepalives_alone_keep_an_idle_connection(tmp_path, certs):
    # History sent, then only keepalives (every 0.2 s) for longer than the idle timeout
    # (60 × 0.02 s = 1.2 s): no reconnect.
    options = {"rate": 0, "seed": 1, "history_size": 20, "keepalive_interval": 0.2}
    with Emulator(certs.directory, **options) as fmc:
        settings = make_settings(tmp_path, fmc.port, certs, response_timeout=0.02)
        runner = build_runner(settings, Secret(certs.password), max_retries=0,
                              commit_interval=0.0)
        result = runner.run(duration=2.0)
    assert result.reason == "duration reached" and result.connections == 1


def test_a_slow_server_is_followed_at_its_pace(tmp_path, certs):
    # The history at 40 KB/s from bundle 1: about a second of backpressure.
    result, fmc, elapsed = run_through(tmp_path, certs, [Fault("slow", 1, value=40_000)],
                                       history_size=60)
    sent = sum(len(fmc.history.render(r)) for r in fmc.history.metadata)
    assert result.connections == 1
    assert elapsed >= sent / 40_000 * 0.8


def test_a_server_restart_keeps_the_ledger_and_the_client_resumes(tmp_path, certs):
    result, fmc, _ = run_through(tmp_path, certs, [Fault("restart", 3, value=0.3)])
    assert result.connections == 2
    assert fmc.ledger.sessions() == [1, 2]


def test_restart_listens_on_the_same_port(certs):
    with Emulator(certs.directory, rate=0, history_size=5) as fmc:
        port = fmc.port
        assert fmc.restart(0.05) == port
        assert fmc.port == port


def test_two_silent_closes_before_any_answer_end_the_run(tmp_path, certs):
    """The FMC's CN refusal is a close right after the handshake; one could be a restart,
    two in a row before anything ever streamed are the refusal."""
    stranger = issue_client(certs.directory, "10.9.9.9", None, name="nat-client")
    with Emulator(certs.directory, rate=0, history_size=10) as fmc:
        settings = make_settings(tmp_path, fmc.port, certs, pkcs12=stranger.pkcs12)
        runner = build_runner(settings, Secret(stranger.password), max_retries=None,
                              first_retry_delay=0.01)
        with pytest.raises(FatalRunError) as caught:
            runner.run()
    assert runner.connections == 2
    assert str(caught.value) == tls.CLOSED_AFTER_HANDSHAKE.format(host="127.0.0.1",
                                                                   port=fmc.port)


# -- backoff ------------------------------------------------------------------------------


def bare_runner(tmp_path, seed=0, first=2.0):
    return Runner(host="127.0.0.1", port=1, context=ssl.create_default_context(),
                  pipeline=Pipeline([], Bookmark(tmp_path / "b.dat")), flags=0, events=(),
                  start_timestamp=0, first_retry_delay=first, rng=random.Random(seed))


def test_backoff_doubles_with_jitter_and_is_bounded(tmp_path):
    runner = bare_runner(tmp_path)
    for failures in range(1, 40):
        nominal = min(MAX_RETRY_DELAY, 2.0 * 2 ** (failures - 1))
        delay = runner._backoff(failures)
        assert nominal / 2 <= delay <= nominal
    # Jitter: ten clients cut off together do not come back together.
    first_waits = {round(bare_runner(tmp_path, seed)._backoff(1), 3) for seed in range(10)}
    assert len(first_waits) == 10


def test_backoff_is_logged_with_the_attempt(tmp_path, caplog):
    runner = bare_runner(tmp_path, first=0.01)
    runner.max_retries = 2
    with pytest.raises(FatalRunError):
        runner.run()
    retries = [r.getMessage() for r in caplog.records if "Reconnect attempt" in r.getMessage()]
    assert [m.split("Reconnect attempt ")[1].split(" ")[0] for m in retries] == ["1", "2"]


# -- the bookmark -------------------------------------------------------------------------


def test_every_torn_bookmark_is_refused_not_trusted(tmp_path):
    """A write cut at any byte (a copy, a full disk outside our atomic rename) must never
    read as some other, valid bookmark."""
    path = bookmark_path(tmp_path, "fmc", 8302)
    bookmark = Bookmark(path)
    bookmark.advance(1_700_000_123, "a" * 40)
    bookmark.advance(1_700_000_123, "b" * 40)
    bookmark.save()
    whole = path.read_bytes()
    for cut in range(len(whole) - 1):  # the last byte is the newline
        path.write_bytes(whole[:cut])
        with pytest.raises(BookmarkError):
            Bookmark.load(path)
    path.write_bytes(whole)
    assert Bookmark.load(path).keys == {"a" * 40, "b" * 40}


def test_bookmark_files_are_private(tmp_path):
    bookmark = Bookmark(tmp_path / "b.dat")
    bookmark.advance(1_700_000_000, "x")
    bookmark.save()
    assert (tmp_path / "b.dat").stat().st_mode & 0o777 == 0o600


# -- TLS truncation -----------------------------------------------------------------------


def test_a_cut_tls_record_is_logged_as_a_tls_truncation(tmp_path, certs, caplog):
    result, _, _ = run_through(tmp_path, certs, [Fault("close-tls", 3)])
    assert result.connections == 2
    retries = [r.getMessage() for r in caplog.records if "Reconnect attempt" in r.getMessage()]
    assert len(retries) == 1
    assert "ended without a TLS close_notify" in retries[0]
    assert "TLS truncation" in retries[0]
    assert "bytes into an unfinished eStreamer message" in retries[0]


@pytest.mark.parametrize("kind", ["close", "close-header", "error"])
def test_an_orderly_close_is_not_called_a_truncation(tmp_path, certs, caplog, kind):
    # The emulator ends these with close_notify, as a server closing on purpose does: the
    # client must not cry truncation, even when the close cuts an eStreamer message.
    result, _, _ = run_through(tmp_path, certs, [Fault(kind, 3)])
    assert result.connections == 2
    retries = [r.getMessage() for r in caplog.records if "Reconnect attempt" in r.getMessage()]
    assert len(retries) == 1 and "truncation" not in retries[0], retries


# -- timings from the config --------------------------------------------------------------


def test_reconnect_timings_and_idle_timeout_come_from_the_config(tmp_path, certs):
    config = default_config("127.0.0.1", 8302, certs.client_pkcs12, log_filepath="")
    config.update(reconnectDelay=0.5, maxReconnectDelay=3, idleTimeout=7.5)
    path = tmp_path / "estreamer.conf"
    settings = settings_from_dict(config, path)
    assert (settings.reconnect_delay, settings.max_reconnect_delay, settings.idle_timeout) == \
        (0.5, 3.0, 7.5)
    assert settings.unknown == () and settings.unsupported == ()
    runner = build_runner(settings, Secret(certs.password))
    assert runner.idle_timeout == 7.5
    assert runner.first_retry_delay == 0.5 and runner.max_retry_delay == 3.0
    for failures in range(1, 20):
        nominal = min(3.0, 0.5 * 2 ** (failures - 1))
        assert nominal / 2 <= runner._backoff(failures) <= nominal
    # Without the keys: eNcore's behaviour (2 s first, 60 s at most, 60 read timeouts).
    plain = build_runner(settings_from_dict(default_config("127.0.0.1", 8302,
                         certs.client_pkcs12, log_filepath=""), path), Secret(certs.password))
    assert (plain.first_retry_delay, plain.max_retry_delay, plain.idle_timeout) == \
        (2.0, MAX_RETRY_DELAY, 120.0)


@pytest.mark.parametrize(("keys", "message"), [
    ({"reconnectDelay": 0}, "reconnectDelay: expected a number of seconds above 0, got 0"),
    ({"reconnectDelay": 10, "maxReconnectDelay": 5},
     "maxReconnectDelay: 5 s is shorter than reconnectDelay (10 s)"),
    ({"idleTimeout": 1, "responseTimeout": 2},
     "idleTimeout: 1 s is shorter than responseTimeout (2 s)"),
])
def test_timing_keys_that_make_no_sense_are_refused(tmp_path, certs, keys, message):
    config = default_config("127.0.0.1", 8302, certs.client_pkcs12, log_filepath="")
    config.update(keys)
    with pytest.raises(ConfigError) as caught:
        settings_from_dict(config, tmp_path / "estreamer.conf")
    assert str(caught.value).endswith(message)


def test_idle_timeout_key_drops_a_silent_server(tmp_path, certs):
    # responseTimeout alone would give 60 × 0.05 = 3 s; idleTimeout says 0.5 s.
    with Emulator(certs.directory, rate=0, seed=4, history_size=100, bundle_records=10,
                  keepalive_interval=0.1, faults=[Fault("silent", 2)]) as fmc:
        settings = make_settings(tmp_path, fmc.port, certs)
        settings = replace(settings, idle_timeout=0.5)
        runner = build_runner(settings, Secret(certs.password), max_retries=2,
                              commit_interval=0.0, first_retry_delay=0.01)
        started = time.monotonic()
        result = runner.run(stop_when_idle=1.0)
        elapsed = time.monotonic() - started
    assert result.connections == 2 and fmc.sessions[0].silent
    assert 0.5 <= elapsed < 3.0
