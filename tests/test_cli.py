"""The commands as a user runs them: real processes, real signals."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from estreamer.certs import init_certs
from estreamer.client.bookmark import Bookmark, bookmark_path
from estreamer.config import PASSWORD_ENV, default_config
from estreamer.emulator.server import Emulator
from estreamer.protocol.messages import encode_bundle, encode_error, encode_null
from estreamer.protocol.records import encode_record

CLI = [sys.executable, "-m", "estreamer"]


def run_cli(*args, env=None, timeout=60, **kwargs):
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        **kwargs,
    )


def test_demo_streams_prints_events_and_a_rate():
    done = run_cli("demo", "--history", "200")
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"record_name": "Intrusion Event"' in done.stdout
    assert '"record_name": "Connection Statistics"' in done.stdout
    summary = done.stderr.strip().splitlines()[-2]
    assert "records received" in summary and "ev/sec" in summary and "0 duplicates" in summary


def test_decode_a_capture_with_a_fault_in_the_middle(tmp_path):
    capture = tmp_path / "capture.bin"
    device = encode_record(123, {"id": 3, "name": "sensor-3"})
    broken = b"\x00\x01\x00\x01\x00\x00\x00\x07" + b"\x00\x00\x00\x13\x00\x09X"
    capture.write_bytes(
        encode_bundle(1, 1, [device])
        + broken
        + encode_null()
        + encode_bundle(1, 2, [device])
        + encode_error(19, "No space")
    )
    done = run_cli("decode", str(capture))
    assert done.returncode == 1
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["name"] for line in lines] == ["sensor-3", "sensor-3"]
    assert "offset 48: Error message text length 9 does not fill its 7-byte body" in done.stderr
    assert "server Error message 19: No space" in done.stderr

    hex_dump = tmp_path / "capture.hex"
    hex_dump.write_text(capture.read_bytes().hex(" ", 4))
    splunk = run_cli("decode", "--hex", "--format", "splunk", str(hex_dump))
    assert splunk.stdout.splitlines()[0] == (
        'rec_type=123 rec_type_simple=SENSOR rec_type_desc="Managed Device Metadata" '
        "id=3 name=sensor-3"
    )


def write_config(workdir: Path, port: int, certs) -> Path:
    config = default_config(
        "127.0.0.1",
        port,
        certs.client_pkcs12,
        uri="relfile:///out/encore.{0}.json",
        start=0,
        log_filepath="estreamer.log",
    )
    config["responseTimeout"] = 0.2
    config["monitor"]["period"] = 1
    path = workdir / "estreamer.conf"
    path.write_text(json.dumps(config))
    return path


def test_run_stops_cleanly_on_sigterm_and_resumes(tmp_path):
    certs = init_certs(tmp_path / "certs")
    env = {PASSWORD_ENV: certs.password}
    with Emulator(certs.directory, rate=50, history_size=100) as emulator:
        config = write_config(tmp_path, emulator.port, certs)
        process = subprocess.Popen(
            [*CLI, "run", "-c", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **env},
        )
        deadline = time.monotonic() + 30
        log = tmp_path / "estreamer.log"
        while time.monotonic() < deadline:
            if log.exists() and "Running." in log.read_text():
                break
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr[-2000:]
    text = log.read_text()
    assert "Received SIGTERM" in text and "Stopped (stopped)" in text
    assert "Running." in text and "ev/sec" in text
    assert certs.password not in text and certs.password not in stderr
    bookmark = Bookmark.load(bookmark_path(tmp_path, "127.0.0.1", emulator.port))
    written = [
        json.loads(line)
        for f in (tmp_path / "out").glob("*.json")
        for line in f.read_text().splitlines()
    ]
    stamps = [w["archive_timestamp"] for w in written if "archive_timestamp" in w]
    assert bookmark.timestamp == max(stamps)
    assert (
        oct(bookmark_path(tmp_path, "127.0.0.1", emulator.port).stat().st_mode & 0o777) == "0o600"
    )


def test_run_failure_is_one_plain_line(tmp_path):
    certs = init_certs(tmp_path / "certs")
    emulator = Emulator(certs.directory, rate=0, history_size=1)
    port = emulator.start()
    emulator.stop()
    config = write_config(tmp_path, port, certs)
    done = run_cli("run", "-c", str(config), env={PASSWORD_ENV: "wrong"})
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1
    assert errors[0].endswith("the PKCS#12 password is wrong for client.pkcs12")
    assert "Traceback" not in done.stderr
