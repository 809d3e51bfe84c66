"""FMC high-availability pairs: read from one member, fail over to the other, and write
every event once across the switch although the members stamp different archive times."""

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from estreamer.certs import init_certs
from estreamer.client.bookmark import Bookmark, BookmarkError
from estreamer.client.ha import RecentKeys, content_key, pair_file
from estreamer.config import HaPair, default_config, resolve_password, settings_from_dict
from estreamer.emulator.faults import Fault
from estreamer.emulator.server import Emulator
from estreamer.errors import ConfigError
from estreamer.job import build_ha_runner
from estreamer.protocol.records import Record

OFFSET = 3  # the standby stamps its archive timestamps 3 s later than the active
URI = "relfile:///out/{host}/encore.{0}.json"


def pair_config(workdir: Path, certs, ports: list[int], **top) -> dict:
    config = default_config("127.0.0.1", ports[0], certs.client_pkcs12, uri=URI, start=0,
                            password_file=certs.client_password_file,
                            log_filepath="estreamer.log")
    first = config["subscription"]["servers"][0]
    first["haPair"] = "hq"
    config["subscription"]["servers"].append(dict(first, port=ports[1]))
    config.update({"responseTimeout": 0.2, "reconnectDelay": 0.05, "maxReconnectDelay": 0.2,
                   "haFailoverAttempts": 2, **top})
    return config


def pair_of_emulators(certs, **active_options):
    """Active and standby: one seeded history (same events, same data), the standby's
    archive timestamps OFFSET seconds later."""
    end = int(time.time())
    common = dict(rate=0, seed=7, history_size=300, bundle_records=10, history_end=end)
    return (Emulator(certs.directory, **common, **active_options),
            Emulator(certs.directory, **common, archive_offset=OFFSET))


def history_events(fmc: Emulator) -> Counter:
    return Counter((r.record_type, r.archive_timestamp) for r in fmc.history.events)


def test_active_stopped_mid_stream_standby_takes_over_every_event_once(tmp_path):
    certs = init_certs(tmp_path / "certs")
    # The active sends slowly, so the test can stop it mid-stream.
    active, standby = pair_of_emulators(certs, faults=[Fault.parse("slow@1=30000")])
    with active, standby:
        config = pair_config(tmp_path, certs, [active.port, standby.port])
        path = tmp_path / "estreamer.conf"
        settings = settings_from_dict(config, path)
        (pair,) = settings.fmcs
        assert isinstance(pair, HaPair) and pair.name == "hq"
        written: list[tuple[Record, str]] = []
        stop = threading.Event()
        runner = None

        def on_record(record: Record) -> None:
            if record.archive_timestamp is not None:
                written.append((record, runner.active.label))

        passwords = [resolve_password(settings, m) for m in pair.members]
        runner = build_ha_runner(settings, pair, passwords, stop=stop, on_record=on_record)
        results = []
        thread = threading.Thread(target=lambda: results.append(
            runner.run(stop_when_idle=1.5)))
        thread.start()
        deadline = time.monotonic() + 15
        while len(written) < 60 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(written) >= 60, "the active never streamed"
        active.stop()  # the active FMC dies mid-stream
        thread.join(20)
        assert not thread.is_alive()
        stop.set()

    (result,) = results
    assert result.reason == "caught up"
    assert runner.switches == 1
    members = {label for _, label in written}
    assert members == {f"127.0.0.1:{active.port}", f"127.0.0.1:{standby.port}"}
    # Every history event written once: no content twice, and the written events, each
    # taken back to the shared clock by the offset of the member it came from, are exactly
    # the history's.
    keys = [content_key(r) for r, _ in written]
    assert len(keys) == len(set(keys))
    offset = {f"127.0.0.1:{active.port}": 0, f"127.0.0.1:{standby.port}": OFFSET}
    assert Counter((r.record_type, r.archive_timestamp - offset[m]) for r, m in written) == \
        history_events(standby)
    assert result.duplicates > 0  # the standby's safety window was read and dropped
    # The files hold the same, tagged with the pair and the member.
    lines = [json.loads(line) for f in sorted((tmp_path / "out" / "hq").glob("*.json"))
             for line in f.read_text().splitlines() if '"archive_timestamp"' in line]
    assert Counter((e["record_type"], e["archive_timestamp"]
                    - offset[e["fmc_member"]]) for e in lines) == history_events(standby)
    assert {e["fmc"] for e in lines} == {"hq"}
    # One bookmark, cache and dedup file for the pair, named by it.
    bookmark = Bookmark.load(pair_file(tmp_path, "hq", "bookmark.dat"))
    assert bookmark.timestamp == max(r.archive_timestamp for r, _ in written)
    assert pair_file(tmp_path, "hq", "metadata.json").exists()
    ha_file = pair_file(tmp_path, "hq", "ha.json")
    assert stat.S_IMODE(ha_file.stat().st_mode) == 0o600
    recent = RecentKeys.open(ha_file, settings.ha_safety_window)
    assert recent.writer == f"127.0.0.1:{standby.port}"
    assert content_key(written[-1][0]) in recent
    assert not list(tmp_path.glob("127.0.0.1-*_bookmark.dat"))  # no per-member bookmark


def test_silent_active_switches_at_once_in_estreamer_run(tmp_path):
    certs = init_certs(tmp_path / "certs")
    # The active hangs after a few bundles: open connection, not a byte more.
    active, standby = pair_of_emulators(certs, faults=[Fault.parse("silent@30")])
    with active, standby:
        config = pair_config(tmp_path, certs, [active.port, standby.port], idleTimeout=1.0,
                             haFailoverAttempts=5)
        path = tmp_path / "estreamer.conf"
        path.write_text(json.dumps(config))
        out = tmp_path / "out" / "hq"
        want = history_events(standby)

        def events() -> list[dict]:
            return [json.loads(line) for f in sorted(out.glob("*.json"))
                    for line in f.read_text().splitlines() if '"archive_timestamp"' in line]

        process = subprocess.Popen([sys.executable, "-m", "estreamer", "run", "-c", str(path)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=os.environ)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(events()) < sum(want.values()):
            time.sleep(0.2)
        time.sleep(0.5)  # anything extra (a duplicate) would land now
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr[-2000:]
    offset = {f"127.0.0.1:{active.port}": 0, f"127.0.0.1:{standby.port}": OFFSET}
    lines = events()
    assert Counter((e["record_type"], e["archive_timestamp"] - offset[e["fmc_member"]])
                   for e in lines) == want
    assert {e["fmc_member"] for e in lines} == set(offset)
    log = (tmp_path / "estreamer.log").read_text()
    assert f"switching to 127.0.0.1:{standby.port}" in log
    assert len(active.sessions) == 1  # switched at once: the hung active was not retried


def test_pair_config_is_validated(tmp_path):
    certs = init_certs(tmp_path / "certs")
    path = tmp_path / "estreamer.conf"
    config = pair_config(tmp_path, certs, [8302, 8303])
    settings = settings_from_dict(config, path)
    (pair,) = settings.fmcs
    assert [m.port for m in pair.members] == [8302, 8303]
    assert settings.ha_safety_window == 60 and settings.ha_failover_attempts == 2

    lone = dict(config["subscription"]["servers"][0], port=9000)
    del lone["haPair"]
    mixed = json.loads(json.dumps(config))
    mixed["subscription"]["servers"].insert(0, lone)
    fmcs = settings_from_dict(mixed, path).fmcs
    assert [type(f).__name__ for f in fmcs] == ["Server", "HaPair"]

    three = json.loads(json.dumps(config))
    three["subscription"]["servers"].append(dict(lone, haPair="hq"))
    with pytest.raises(ConfigError, match=r"servers\[2\]\.haPair: HA pair 'hq' needs exactly "
                                          r"two servers, got 3"):
        settings_from_dict(three, path)

    one = json.loads(json.dumps(config))
    one["subscription"]["servers"][1]["haPair"] = "dc2"
    with pytest.raises(ConfigError, match="HA pair 'hq' needs exactly two servers, got 1"):
        settings_from_dict(one, path)

    bad = json.loads(json.dumps(config))
    for server in bad["subscription"]["servers"]:
        server["haPair"] = "../x"
    with pytest.raises(ConfigError, match=r"haPair: expected a name of letters"):
        settings_from_dict(bad, path)

    window = dict(config, haSafetyWindow=0)
    with pytest.raises(ConfigError, match="haSafetyWindow"):
        settings_from_dict(window, path)


def test_dedup_keys_cover_two_windows_survive_a_restart_and_refuse_a_torn_file(tmp_path):
    path = tmp_path / "hq_ha.json"
    recent = RecentKeys(path, window=10, max_keys=5)
    recent.writer = "127.0.0.1:8302"
    for second, key in [(100, 1), (100, 2), (115, 3), (120, 4)]:
        recent.add(second, key)
    assert {1, 2, 3, 4} == {k for k in range(10) if k in recent}  # 120 - 2 × 10 = 100
    recent.add(121, 5)  # second 100 falls out of the two windows
    assert {3, 4, 5} == {k for k in range(10) if k in recent}
    for key in (6, 7, 8):  # over max_keys: the oldest seconds go first
        recent.add(121, key)
    assert {4, 5, 6, 7, 8} == {k for k in range(10) if k in recent}
    recent.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = RecentKeys.open(path, window=10, max_keys=5)
    assert again.writer == "127.0.0.1:8302"
    assert {k for k in range(10) if k in again} == {4, 5, 6, 7, 8}
    path.write_text('{"format": 1, "writer": null, "seconds": {"5": "AAA"')
    with pytest.raises(BookmarkError, match=r"HA dedup file .* cannot be used"):
        RecentKeys.open(path, window=10)


def test_content_keys_read_the_decoders_event_as_they_read_the_fields():
    """Where the decoder made the event dict, the key is taken from its text with the
    header's cut off: the same bytes as the fields' own text, so the keys saved in a pair's
    ha.json keep their meaning (and records the long way give the same keys)."""
    import orjson

    from estreamer.client.ha import _fields_json
    from estreamer.protocol import speedups
    from estreamer.protocol.records import decode_record
    from tests.test_namer import emulator_records

    raws = [r.raw for r in emulator_records()]
    made = [decode_record(raw) for raw in raws]
    if speedups.AVAILABLE:
        assert sum(r.decoded_event is not None for r in made) > len(made) // 2
    with speedups.disabled():
        long_way = [decode_record(raw) for raw in raws]
    for fast, slow in zip(made, long_way, strict=True):
        assert _fields_json(fast) == orjson.dumps(
            slow.fields, option=orjson.OPT_NON_STR_KEYS, default=repr)
        assert content_key(fast) == content_key(slow)
    empty = Record(71, "Connection", event={"record_type": 71, "record_name": "Connection"})
    assert _fields_json(empty) == b"{}"
