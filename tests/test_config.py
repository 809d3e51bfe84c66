"""eNcore's estreamer.conf, read as eNcore reads it: flags, start, defaults, paths, and the
keys we do not act on reported instead of ignored. The PKCS#12 password's three sources, and
the password kept out of every repr, message and log line."""

import copy
import json
import logging
import os
import pickle
from pathlib import Path

import pytest

from estreamer.config import (
    PASSWORD_ENV,
    TRACE,
    VERBOSE,
    Secret,
    default_config,
    load_config,
    resolve_password,
)
from estreamer.errors import ConfigError
from estreamer.protocol.flags import TIMESTAMP_NOW, RequestFlags

SEED = Path(__file__).parent / "data" / "encore_seed.conf"
PASSWORD = "s3cr3t-Pa55!"


def seed_dict() -> dict:
    return json.loads(SEED.read_text())


def write(tmp_path: Path, data: dict, name: str = "estreamer.conf") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data, indent=4))
    return path


def load_changed(tmp_path: Path, change) -> object:
    data = seed_dict()
    change(data)
    return load_config(write(tmp_path, data))


# ----------------------------------------------------------------------------- the seed


def test_seed_config_loads_like_encore():
    s = load_config(SEED)
    assert s.request_flags() == 0x48900061
    assert s.request_flags() == RequestFlags(0x48900061)
    server = s.server
    assert (server.host, server.port, server.tls_version) == ("10.62.148.75", 8302, "1.2")
    assert server.pkcs12_filepath == SEED.parent / "client.pkcs12"
    assert server.verify_server and server.ca_filepath is None
    assert s.start == 2 and s.connect_timeout == 10 and s.response_timeout == 2
    assert s.worker_processes == 4 and s.enabled
    (out,) = s.outputters
    assert (out.adapter, out.uri, out.enabled) == ("json", "relfile:///data/json/encore.{0}.json",
                                                   True)
    assert (out.options.max_logs, out.options.rotate) == (10000, True)
    assert s.filter.include == () and s.filter.exclude == () and s.filter.rua
    assert s.logging.filepath == SEED.parent / "estreamer.log"
    assert s.logging.level == "INFO" and s.logging.std_out
    assert (s.monitor.period, s.monitor.handled, s.monitor.subscribed) == (120, True, True)
    assert not s.monitor.bookmark and not s.monitor.velocity
    # The seed's @comment keys (including a list-valued one) are not findings.
    assert s.unsupported == () and s.unknown == () and s.report_lines() == []
    assert s.bookmark_dir() == SEED.parent


def test_extended_false_gives_the_flags_the_fmc_logged(tmp_path):
    def off(d):
        d["subscription"]["records"]["extended"] = False

    assert load_changed(tmp_path, off).request_flags() == 0x08900061


def test_each_subscription_switch_maps_to_its_bit(tmp_path):
    bits = {
        "packetData": 0x1, "impactEventAlerts": 0x20, "intrusion": 0x40,
        "metadata": 0x100000, "archiveTimestamps": 0x800000, "eventExtraData": 0x8000000,
        "extended": 0x40000000,
    }
    for key, bit in bits.items():
        def off(d, key=key):
            d["subscription"]["records"][key] = False
        assert load_changed(tmp_path, off).request_flags() == 0x48900061 & ~bit, key

    def all_off(d):
        for key in bits:
            d["subscription"]["records"][key] = False
    assert load_changed(tmp_path, all_off).request_flags() == 0


def test_minimal_config_takes_encore_defaults(tmp_path):
    s = load_config(write(tmp_path, {"subscription": {"servers": [{"host": "fmc"}]}}))
    assert s.request_flags() == 0x48900061
    assert s.server.port == 8302 and s.start == 2 and s.outputters == ()
    assert s.server.pkcs12_filepath == tmp_path / "client.pkcs12"
    assert s.unsupported == () and s.unknown == ()


def test_initial_timestamp_for_each_start(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="Settings")
    s = load_config(SEED)
    assert s.initial_timestamp(None) == 0
    assert "Timestamp: Start = 2 (Bookmark = 0)" in caplog.text
    assert s.initial_timestamp(1591210934) == 1591210934
    assert "Timestamp: Start = 2 (Bookmark = 1591210934)" in caplog.text

    def start(n):
        return load_changed(tmp_path, lambda d: d.update(start=n))
    assert start(0).initial_timestamp(1591210934) == 0
    assert start(1).initial_timestamp(1591210934) == TIMESTAMP_NOW == 0xFFFFFFFF


# ----------------------------------------------------------------------------- paths


def test_relative_paths_resolve_against_the_config_directory(tmp_path, monkeypatch):
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    data = seed_dict()
    server = data["subscription"]["servers"][0]
    server["caFilepath"] = "certs/fmc-ca.pem"
    server["pkcs12PasswordFile"] = "/run/secrets/p12"
    data["bookmarkDirectory"] = "state"
    path = write(conf_dir, data)
    monkeypatch.chdir(tmp_path)  # somewhere else: must not matter
    s = load_config("etc/estreamer.conf")
    assert s.base_dir == conf_dir
    assert s.server.pkcs12_filepath == conf_dir / "client.pkcs12"
    assert s.server.ca_filepath == conf_dir / "certs" / "fmc-ca.pem"
    assert s.server.pkcs12_password_file == Path("/run/secrets/p12")
    assert s.logging.filepath == conf_dir / "estreamer.log"
    assert s.bookmark_dir() == conf_dir / "state"
    assert s.path == path


def test_empty_log_filepath_means_no_log_file(tmp_path):
    s = load_changed(tmp_path, lambda d: d["logging"].update(filepath=""))
    assert s.logging.filepath is None


def test_encore_log_levels(tmp_path):
    for name, number in (("VERBOSE", VERBOSE), ("TRACE", TRACE), ("FATAL", 50), ("debug", 10)):
        s = load_changed(tmp_path, lambda d, n=name: d["logging"].update(level=n))
        assert s.logging.level_number == number


# ----------------------------------------------------------------------------- findings


def test_unsupported_and_unknown_keys_are_listed(tmp_path):
    def change(d):
        d["queueSize"] = 200
        d["alwaysAttemptToContinue"] = True
        d["subscription"]["records"]["connection"] = True  # in Cisco's own examples
        d["subscription"]["records"]["packetEncoding"] = "ascii"
        d["subscription"]["servers"].append({"host": "fmc2", "port": 8302})
        d["subscription"]["servers"][0]["tlsVersion"] = 1.0
        out = d["handler"]["outputters"][0]
        out["passthru"] = True
        out["stream"]["options"]["s3"] = "bucket"
        d["handler"]["outputters"].append(
            {"adapter": "csv", "enabled": True, "stream": {"uri": "relfile:///x.{0}.csv"}})
        d["handler"]["outputters"].append(  # disabled: eNcore never looks at its adapter
            {"adapter": "nonsense", "enabled": False, "stream": {"uri": "stdout://"}})
        d["logging"]["levle"] = "DEBUG"  # typo
        d["handler"]["records"]["rnaa"] = True  # typo
        d["workerProcess"] = 2  # typo
        d["some@comment"] = "fine"
        d["monitor"]["x@comment"] = ["fine", "too"]

    s = load_changed(tmp_path, change)
    assert set(s.unsupported) == {
        "queueSize",
        "alwaysAttemptToContinue",
        "subscription.records.connection",
        "subscription.records.packetEncoding",
        "subscription.servers[0].tlsVersion",
        "handler.outputters[0].passthru",
        "handler.outputters[0].stream.options.s3",
        "handler.outputters[1].adapter",
    }
    assert set(s.unknown) == {"logging.levle", "handler.records.rnaa", "workerProcess"}
    lines = s.report_lines()
    assert len(lines) == len(s.unsupported) + len(s.unknown)
    assert s.servers[1].host == "fmc2"  # a second FMC is streamed too (not "unsupported")
    assert any("unknown key logging.levle" in line for line in lines)
    assert all(str(s.path) in line for line in lines)
    # Unsupported keys do not change what we do: still eNcore's request.
    assert s.request_flags() == 0x48900061


@pytest.mark.parametrize(("change", "key", "words"), [
    (lambda d: d["subscription"]["servers"][0].update(port="8302"),
     "subscription.servers[0].port", "whole number"),
    (lambda d: d["subscription"]["servers"][0].update(port=70000),
     "subscription.servers[0].port", "from 1 to 65535"),
    (lambda d: d["subscription"]["servers"][0].pop("host"), "subscription.servers[0].host",
     "required"),
    (lambda d: d["subscription"]["servers"][0].update(tlsVersion=2.0),
     "subscription.servers[0].tlsVersion", "1.2"),
    (lambda d: d.update(start=3), "start", "0 (genesis)"),
    (lambda d: d.update(start=True), "start", "0 (genesis)"),
    (lambda d: d["subscription"]["records"].update(extended="false"),
     "subscription.records.extended", "true or false"),
    (lambda d: d["logging"].update(level="LOUD"), "logging.level", "VERBOSE"),
    (lambda d: d.update(connectTimeout=0), "connectTimeout", "above 0"),
    (lambda d: d["handler"]["records"].update(exclude=[71, "400"]),
     "handler.records.exclude", "record type"),
    (lambda d: d["handler"]["outputters"][0].update(adapter="jsn"),
     "handler.outputters[0].adapter", "unknown adapter"),
    (lambda d: d["handler"]["outputters"][0]["stream"]["options"].update(maxLogs=0),
     "handler.outputters[0].stream.options.maxLogs", "at least 1"),
    (lambda d: d["handler"]["outputters"][0]["stream"].update(uri="data/x.json"),
     "handler.outputters[0].stream.uri", "URI"),
    (lambda d: d["subscription"].update(servers=[]), "subscription.servers", "at least one"),
    (lambda d: d.update(monitor=[]), "monitor", "object"),
])
def test_bad_values_name_the_key_and_the_file(tmp_path, change, key, words):
    data = seed_dict()
    change(data)
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}: "), message
    assert words in message and "\n" not in message


def test_unreadable_files_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.conf")
    broken = tmp_path / "broken.conf"
    broken.write_text('{"start": 2,,}')
    with pytest.raises(ConfigError, match=r"broken.conf: not valid JSON: .* line 1 column"):
        load_config(broken)
    top = write(tmp_path, [1, 2])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="expected an object"):
        load_config(top)


def test_default_config_is_encore_shaped_and_loads_clean(tmp_path):
    data = default_config("127.0.0.1", 18302, "client.p12", ca_file="ca.pem",
                          password_file="p12.pass", uri="relfile:///out/e.{0}.json")
    reference = seed_dict()
    for section in ("handler", "logging", "monitor", "subscription"):
        assert set(data[section]) - {k for k in data[section] if k.endswith("@comment")} \
            <= set(reference[section]), section
    s = load_config(write(tmp_path, data))
    assert s.unsupported == () and s.unknown == ()
    assert s.request_flags() == 0x48900061
    assert (s.server.host, s.server.port) == ("127.0.0.1", 18302)
    assert s.server.ca_filepath == tmp_path / "ca.pem"
    assert s.server.pkcs12_password_file == tmp_path / "p12.pass"
    assert s.outputters[0].uri == "relfile:///out/e.{0}.json"
    plain = default_config("fmc", 8302, "client.pkcs12")
    assert "caFilepath" not in plain["subscription"]["servers"][0]
    assert "bookmarkDirectory" not in plain


def test_bookmark_directory_and_verify_server(tmp_path):
    data = default_config("fmc", 8302, "c.p12", verify_server=False, bookmark_directory="/var/x")
    s = load_config(write(tmp_path, copy.deepcopy(data)))
    assert s.server.verify_server is False
    assert s.bookmark_dir() == Path("/var/x")


# ----------------------------------------------------------------------------- password


def no_prompt(_text: str) -> str:
    raise AssertionError("must not prompt")


def test_password_from_environment():
    s = load_config(SEED)
    secret = resolve_password(s, s.server, env={PASSWORD_ENV: PASSWORD}, prompt=no_prompt)
    assert secret.reveal() == PASSWORD


def test_password_from_file_strips_the_final_newline(tmp_path, caplog):
    pw = tmp_path / "p12.pass"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)
    data = seed_dict()
    data["subscription"]["servers"][0]["pkcs12PasswordFile"] = "p12.pass"
    s = load_config(write(tmp_path, data))
    with caplog.at_level(logging.WARNING, logger="Settings"):
        secret = resolve_password(s, s.server, env={}, prompt=no_prompt)
    assert secret.reveal() == PASSWORD
    assert caplog.records == []


def test_password_file_readable_by_others_is_warned_about(tmp_path, caplog):
    pw = tmp_path / "p12.pass"
    pw.write_text(PASSWORD)
    pw.chmod(0o644)
    data = seed_dict()
    data["subscription"]["servers"][0]["pkcs12PasswordFile"] = str(pw)
    s = load_config(write(tmp_path, data))
    with caplog.at_level(logging.WARNING, logger="Settings"):
        assert resolve_password(s, s.server, env={}, prompt=no_prompt).reveal() == PASSWORD
    assert "chmod 600" in caplog.text and "0644" in caplog.text
    assert PASSWORD not in caplog.text


def test_missing_password_file_is_a_config_error(tmp_path):
    data = seed_dict()
    data["subscription"]["servers"][0]["pkcs12PasswordFile"] = "nope.pass"
    s = load_config(write(tmp_path, data))
    with pytest.raises(ConfigError, match=r"subscription.servers\[0\].pkcs12PasswordFile"):
        resolve_password(s, s.server, env={}, prompt=no_prompt)


def test_environment_wins_over_the_file(tmp_path):
    data = seed_dict()
    data["subscription"]["servers"][0]["pkcs12PasswordFile"] = "missing.pass"
    s = load_config(write(tmp_path, data))
    assert resolve_password(s, s.server, env={PASSWORD_ENV: "x"}, prompt=no_prompt).reveal() \
        == "x"


def test_password_prompt_only_when_interactive():
    s = load_config(SEED)
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return PASSWORD

    secret = resolve_password(s, s.server, env={}, prompt=prompt, interactive=True)
    assert secret.reveal() == PASSWORD
    assert asked == [f"Password for {s.server.pkcs12_filepath}: "]

    with pytest.raises(ConfigError) as info:
        resolve_password(s, s.server, env={}, prompt=prompt, interactive=False)
    message = str(info.value)
    assert PASSWORD_ENV in message and "pkcs12PasswordFile" in message
    assert "\n" not in message and len(asked) == 1


def test_secret_never_shows_the_password(tmp_path, caplog):
    secret = Secret(PASSWORD)
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("password %s %r", secret, secret)
    for shown in (repr(secret), str(secret), f"{secret}", f"{secret!r}", f"{secret:>20}",
                  repr([secret]), repr({"password": secret}), caplog.text):
        assert PASSWORD not in shown
        assert "***" in shown
    assert secret == Secret(PASSWORD) and secret != Secret("other")
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    # An error about an unreadable password file says nothing of its content.
    pw = tmp_path / "p12.pass"
    pw.write_bytes(b"\xff\xfe" + PASSWORD.encode())
    os.chmod(pw, 0o600)
    data = seed_dict()
    data["subscription"]["servers"][0]["pkcs12PasswordFile"] = str(pw)
    s = load_config(write(tmp_path, data))
    with pytest.raises(ConfigError) as info:
        resolve_password(s, s.server, env={}, prompt=no_prompt)
    assert PASSWORD not in str(info.value) and PASSWORD not in repr(info.value)


def test_the_same_fmc_twice_is_refused(tmp_path):
    def change(d):
        d["subscription"]["servers"].append(dict(d["subscription"]["servers"][0]))

    with pytest.raises(ConfigError, match=r"servers\[1\]: .* is already listed as "
                                          r"subscription.servers\[0\]"):
        load_changed(tmp_path, change)
