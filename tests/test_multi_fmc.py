"""Several FMCs in one process: each streams on its own session, with its own bookmark,
cache and files; events say which FMC they came from; one FMC down stalls nobody."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from estreamer.certs import init_certs
from estreamer.client.bookmark import Bookmark, bookmark_path
from estreamer.config import PASSWORD_ENV, default_config, settings_from_dict
from estreamer.emulator.server import Emulator
from estreamer.errors import ConfigError
from estreamer.job import output_uri

URI = "relfile:///out/{host}-{port}/encore.{0}.json"


def two_server_config(workdir: Path, ports: list[int], certs, uri: str = URI) -> Path:
    config = default_config("127.0.0.1", ports[0], certs.client_pkcs12, uri=uri, start=0,
                            log_filepath="estreamer.log")
    second = dict(config["subscription"]["servers"][0], port=ports[1])
    config["subscription"]["servers"].append(second)
    config["responseTimeout"] = 0.2
    path = workdir / "estreamer.conf"
    path.write_text(json.dumps(config))
    return path


def events_in(directory: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(directory.glob("*.json"))
            for line in f.read_text().splitlines()
            if '"archive_timestamp"' in line]


def run_until(config: Path, certs, done, timeout: float = 60) -> tuple[int, str]:
    process = subprocess.Popen([sys.executable, "-m", "estreamer", "run", "-c", str(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, PASSWORD_ENV: certs.password})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not done():
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    return process.returncode, stderr


def test_two_fmcs_stream_at_once_each_into_its_own_files(tmp_path):
    certs = init_certs(tmp_path / "certs")
    with Emulator(certs.directory, rate=0, seed=1, history_size=150) as first, \
            Emulator(certs.directory, rate=0, seed=2, history_size=220) as second:
        fmcs = {first.port: first, second.port: second}
        config = two_server_config(tmp_path, list(fmcs), certs)
        dirs = {port: tmp_path / "out" / f"127.0.0.1-{port}" for port in fmcs}

        def done() -> bool:
            return all(len(events_in(dirs[p])) >= len(f.history.events) for p, f in fmcs.items())

        code, stderr = run_until(config, certs, done)
    assert code == 0, stderr[-2000:]
    log = (tmp_path / "estreamer.log").read_text()
    for port, fmc in fmcs.items():
        events = events_in(dirs[port])
        wanted = sorted((r.record_type, r.archive_timestamp) for r in fmc.history.events)
        assert sorted((e["record_type"], e["archive_timestamp"]) for e in events) == wanted
        assert {e["fmc"] for e in events} == {f"127.0.0.1:{port}"}
        bookmark = Bookmark.load(bookmark_path(tmp_path, "127.0.0.1", port))
        assert bookmark.timestamp == max(e["archive_timestamp"] for e in events)
        assert f"[127.0.0.1:{port}] " in log  # each FMC's lines are tagged


def test_one_fmc_down_does_not_stall_the_other(tmp_path):
    certs = init_certs(tmp_path / "certs")
    gone = Emulator(certs.directory, rate=0, history_size=1)
    down_port = gone.start()
    gone.stop()
    with Emulator(certs.directory, rate=0, seed=3, history_size=120) as up:
        config = two_server_config(tmp_path, [down_port, up.port], certs)
        out = tmp_path / "out" / f"127.0.0.1-{up.port}"
        code, stderr = run_until(config, certs,
                                 lambda: len(events_in(out)) >= len(up.history.events))
    assert len(events_in(out)) == len(up.history.events)
    log = (tmp_path / "estreamer.log").read_text()
    assert f"[127.0.0.1:{down_port}] " in log and "Reconnect attempt" in log
    assert code == 0, stderr[-2000:]


def test_shared_files_for_several_fmcs_are_refused(tmp_path):
    certs = init_certs(tmp_path / "certs")
    path = two_server_config(tmp_path, [8302, 8303], certs, uri="relfile:///out/encore.{0}.json")
    settings = settings_from_dict(json.loads(path.read_text()), path)
    with pytest.raises(ConfigError, match=r"put \{host\}-\{port\} in the URI"):
        output_uri(settings.outputters[0].uri, settings.servers[0], settings.servers)
    # Network outputs may be shared: each FMC's runner has its own connection.
    assert output_uri("tcp://127.0.0.1:601", settings.servers[0], settings.servers) == \
        "tcp://127.0.0.1:601"
