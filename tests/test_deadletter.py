"""The dead-letter file (`handler.deadLetter`): one JSON line per malformed record, with
the bytes in hex, made durable with the commit; and how the key is read."""

import json
import logging

import pytest

from estreamer.certs import init_certs
from estreamer.client.runner import FatalRunError
from estreamer.config import Secret, default_config, settings_from_dict
from estreamer.emulator.faults import Fault, injected_record
from estreamer.emulator.server import Emulator
from estreamer.errors import ConfigError, OutputError
from estreamer.job import build_runner


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return init_certs(tmp_path_factory.mktemp("certs"), client_cn="127.0.0.1")


def settings_for(tmp_path, port, certs, dead_letter):
    config = default_config("127.0.0.1", port, certs.client_pkcs12,
                            uri="relfile:///out/encore.{0}.json", start=2, log_filepath="")
    config["responseTimeout"] = 0.05
    if dead_letter is not None:
        config["handler"]["deadLetter"] = dead_letter
    path = tmp_path / "estreamer.conf"
    path.write_text(json.dumps(config))
    return settings_from_dict(config, path)


def test_a_corrupt_record_goes_to_the_dead_letter_file_in_hex(tmp_path, certs, caplog):
    caplog.set_level(logging.INFO)
    with Emulator(certs.directory, rate=0, seed=5, history_size=80, bundle_records=20,
                  keepalive_interval=0.2, faults=[Fault("corrupt-record", 2)]) as fmc:
        settings = settings_for(tmp_path, fmc.port, certs, "relfile:///dl/{host}.log")
        runner = build_runner(settings, Secret(certs.password), max_retries=0,
                              commit_interval=0.0)
        result = runner.run(stop_when_idle=0.5)
    path = tmp_path / "dl" / "127.0.0.1.log"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 1 and runner.pipeline.stats.malformed == 1
    line = lines[0]
    wire = injected_record("corrupt-record")
    assert line["fmc"] == f"127.0.0.1:{fmc.port}"
    assert line["record_type"] == 98 and line["record_name"] == "User"
    assert line["archive_timestamp"] is None
    assert line["error"].startswith("User does not fit its layout")
    assert line["hex"] == wire[8:].hex()  # the data after the 8-byte record header
    assert line["time"].endswith("Z") and len(line["time"]) == 20
    # The same offset the log line names, so the two can be matched up.
    faults = [r.getMessage() for r in caplog.records if r.getMessage().startswith("offset ")]
    assert faults == [f"offset {line['offset']}: record type 98: {line['error']}"]
    assert path.stat().st_mode & 0o777 == 0o600
    # The record cost itself only: every event arrived.
    events = [json.loads(x) for f in (tmp_path / "out").glob("*.json")
              for x in f.read_text().splitlines()]
    assert sum("archive_timestamp" in e for e in events) == len(fmc.history.events)
    assert result.connections == 1


def test_no_dead_letter_file_unless_asked(tmp_path, certs):
    with Emulator(certs.directory, rate=0, seed=5, history_size=20,
                  faults=[Fault("corrupt-record", 1)]) as fmc:
        settings = settings_for(tmp_path, fmc.port, certs, None)
        runner = build_runner(settings, Secret(certs.password), max_retries=0,
                              commit_interval=0.0)
        runner.run(stop_when_idle=0.5)
    assert runner.pipeline.stats.malformed == 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["out"]


def test_a_dead_letter_file_that_cannot_be_written_is_an_output_failure(tmp_path, certs):
    (tmp_path / "blocked").write_text("a file where the directory should be")
    with Emulator(certs.directory, rate=0, seed=5, history_size=20,
                  faults=[Fault("corrupt-record", 1)]) as fmc:
        settings = settings_for(tmp_path, fmc.port, certs, "relfile:///blocked/dl.log")
        runner = build_runner(settings, Secret(certs.password), max_retries=0,
                              commit_interval=0.0)
        with pytest.raises(FatalRunError) as caught:
            runner.run(stop_when_idle=0.5)
    assert "could not write the dead-letter file" in str(caught.value)
    assert isinstance(caught.value.__cause__, OutputError)


@pytest.mark.parametrize(("value", "where"), [
    ("relfile:///data/dead.log", "{base}/data/dead.log"),
    ("dead.log", "{base}/dead.log"),
    ("/var/log/dead.log", "/var/log/dead.log"),
    ("file:///var/log/dead.log", "/var/log/dead.log"),
])
def test_dead_letter_key_forms(tmp_path, value, where):
    config = {"subscription": {"servers": [{"host": "fmc"}]}, "handler": {"deadLetter": value}}
    settings = settings_from_dict(config, tmp_path / "estreamer.conf")
    assert str(settings.dead_letter) == where.format(base=tmp_path)
    assert settings.unknown == ()


def test_dead_letter_key_refuses_other_schemes(tmp_path):
    config = {"subscription": {"servers": [{"host": "fmc"}]},
              "handler": {"deadLetter": "udp://host:514"}}
    with pytest.raises(ConfigError, match=r"handler\.deadLetter: expected a path"):
        settings_from_dict(config, tmp_path / "estreamer.conf")
