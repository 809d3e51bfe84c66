"""Log levels as eNcore names them (FATAL … VERBOSE, TRACE), JSON log lines, the wire log
of VERBOSE/TRACE, and no secret in any log, checked on a real session at TRACE."""

import argparse
import base64
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from estreamer.certs import init_certs
from estreamer.cli import build_parser, log_level, setup_logging
from estreamer.client.connection import Connection
from estreamer.client.protocol import ClientSession
from estreamer.client.wirelog import WireLog, wire_tap
from estreamer.config import PASSWORD_ENV, TRACE, VERBOSE, default_config
from estreamer.emulator.server import Emulator
from estreamer.logcontext import set_fmc
from estreamer.logformat import JsonFormatter
from estreamer.protocol.flags import LATEST_EVENTS, TIMESTAMP_OLDEST, RequestFlags
from estreamer.tls import client_context


@pytest.fixture(autouse=True)
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_cli_takes_encore_level_names_in_any_case():
    assert log_level("verbose") == "VERBOSE"
    assert log_level(" Trace ") == "TRACE"
    assert log_level("FATAL") == "FATAL"
    with pytest.raises(argparse.ArgumentTypeError) as bad:
        log_level("LOUD")
    assert str(bad.value) == ("'LOUD' is not a level: FATAL, ERROR, WARNING, INFO, DEBUG, "
                              "VERBOSE or TRACE")
    args = build_parser().parse_args(["--log-level", "trace", "--log-json", "records"])
    assert (args.log_level_given, args.log_json) == ("TRACE", True)


def test_levels_below_debug_have_their_names_in_text_logs(tmp_path):
    path = tmp_path / "estreamer.log"
    setup_logging("TRACE", os.fspath(path), stdout=False)
    assert logging.getLogger().level == TRACE == 1
    logging.getLogger("Wire").log(VERBOSE, "a message")
    logging.getLogger("Wire").log(TRACE, "a read")
    lines = path.read_text().splitlines()
    assert [line.split(None, 2)[2] for line in lines] == [
        "Wire         VERBOSE  a message",
        "Wire         TRACE    a read",
    ]


def test_fatal_logs_only_the_worst(tmp_path):
    path = tmp_path / "estreamer.log"
    setup_logging("FATAL", os.fspath(path), stdout=False)
    logging.getLogger("Receiver").error("not shown")
    logging.getLogger("Receiver").critical("shown")
    assert path.read_text().splitlines()[0].endswith("Receiver     CRITICAL shown")
    assert "not shown" not in path.read_text()


def test_json_lines_have_time_level_logger_fmc_and_message(tmp_path):
    path = tmp_path / "estreamer.log"
    setup_logging("INFO", os.fspath(path), stdout=False, json_lines=True)

    def tagged() -> None:
        set_fmc("10.0.0.5:8302")
        logging.getLogger("Monitor").info("Running. %d handled", 12)

    thread = threading.Thread(target=tagged)
    thread.start()
    thread.join()
    logging.getLogger("Receiver").warning('quote " and\nnewline')
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("Job").exception("failed")
    first, second, third = (json.loads(line) for line in path.read_text().splitlines())
    assert list(first) == ["time", "level", "logger", "fmc", "message"]
    assert first["level"] == "INFO" and first["logger"] == "Monitor"
    assert first["fmc"] == "10.0.0.5:8302"
    assert first["message"] == "Running. 12 handled"  # the [fmc] prefix is a field instead
    assert time.strptime(first["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert second == {"time": second["time"], "level": "WARNING", "logger": "Receiver",
                      "message": 'quote " and\nnewline'}
    assert third["message"] == "failed"
    assert third["exception"].startswith("Traceback") and "ValueError: boom" in third["exception"]


def test_config_format_json_means_json_lines(tmp_path):
    path = tmp_path / "estreamer.log"
    setup_logging("INFO", os.fspath(path), stdout=False, fmt="json")
    logging.getLogger("Monitor").info("hello")
    assert json.loads(path.read_text())["message"] == "hello"


class Recorder(logging.Handler):
    def __init__(self):
        super().__init__(1)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def wire_logger(level: int) -> tuple[logging.Logger, Recorder]:
    logger = logging.getLogger(f"test-wire-{level}")
    logger.propagate = False
    logger.handlers[:] = [recorder := Recorder()]
    logger.setLevel(level)
    return logger, recorder


def test_no_tap_unless_verbose():
    logger, _ = wire_logger(logging.DEBUG)
    assert wire_tap(logger) is None
    logger.setLevel(VERBOSE)
    assert isinstance(wire_tap(logger), WireLog)


def test_verbose_logs_each_message_as_the_annotated_hex_of_estreamer_test():
    logger, recorder = wire_logger(VERBOSE)
    flags = RequestFlags.EXTENDED | RequestFlags.INTRUSION
    session = ClientSession(TIMESTAMP_OLDEST, flags, tap=WireLog(logger))
    session.start()
    messages = [r.getMessage() for r in recorder.records]
    assert {r.levelno for r in recorder.records} == {VERBOSE}
    assert messages == [
        "-> Event Stream Request (2) at byte 0, 16 bytes\n"
        "     header  0001 0002 00000008   version=1 type=2 length=8\n"
        f"     0000    00000000 {int(flags):08x}\n"
        f"     = initial timestamp the oldest data, flags 0x{int(flags):08x} "
        "(INTRUSION|EXTENDED)"
    ]


def test_trace_logs_whole_bodies_reads_and_records(tmp_path):
    certs = init_certs(tmp_path / "certs")
    logger, recorder = wire_logger(TRACE)
    tap = WireLog(logger)
    with Emulator(certs.directory, rate=0, seed=3, history_size=5) as emulator:
        context = client_context(certs.client_pkcs12, certs.password)
        session = ClientSession(TIMESTAMP_OLDEST, RequestFlags.EXTENDED | RequestFlags.INTRUSION
                                | RequestFlags.ARCHIVE_TIMESTAMPS, LATEST_EVENTS, tap=tap)
        connection = Connection("127.0.0.1", emulator.port, context, read_timeout=0.3)
        connection.open()
        try:
            connection.send(session.start())
            records = 0
            deadline = time.monotonic() + 10
            for event in connection.events(session):
                if event is None:  # a read timeout: the history is all sent, or still coming
                    if records or time.monotonic() > deadline:
                        break
                    continue
                records += type(event).__name__ == "Record"
        finally:
            connection.close()
    text = "\n".join(r.getMessage() for r in recorder.records)
    assert records > 0
    assert "-> 16 bytes sent" in text
    assert " bytes read" in text
    assert "<- Streaming Information (2051) at byte 0, 56 bytes" in text
    assert "-> Streaming Request (2049) at byte 16" in text
    assert "... " not in text.replace("...     ", "")  # nothing cut short
    assert "more bytes" not in text  # TRACE shows whole bodies
    record_lines = [r.getMessage() for r in recorder.records if " record at byte " in
                    r.getMessage()]
    assert len(record_lines) == records
    first = json.loads(record_lines[0].split(": ", 1)[1])
    assert {"record_type", "record_name"} <= set(first)


def test_a_real_session_at_trace_logs_no_password_or_key(tmp_path):
    """`estreamer run` at TRACE, text and JSON logs: neither holds the PKCS#12 password
    (given by file and by environment), nor the private key in any encoding."""
    certs = init_certs(tmp_path / "certs")
    key, _cert, _extra = pkcs12.load_key_and_certificates(
        certs.client_pkcs12.read_bytes(), certs.password.encode())
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    secrets = [certs.password, der.hex(), base64.b64encode(der).decode()[:40], "PRIVATE KEY",
               certs.client_pkcs12.read_bytes().hex()[:64]]
    with Emulator(certs.directory, rate=20, seed=4, history_size=60) as emulator:
        for mode in ("text", "json"):
            workdir = tmp_path / mode
            workdir.mkdir()
            log = workdir / "estreamer.log"
            config = default_config("127.0.0.1", emulator.port, certs.client_pkcs12, start=0,
                                    password_file=certs.client_password_file,
                                    uri="relfile:///out/encore.{0}.json",
                                    log_filepath=os.fspath(log))
            config["responseTimeout"] = 0.2
            config["logging"]["level"] = "TRACE"
            if mode == "json":
                config["logging"]["format"] = "json"
            path = workdir / "estreamer.conf"
            path.write_text(json.dumps(config))
            process = subprocess.Popen(
                [sys.executable, "-m", "estreamer", "run", "-c", str(path)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env={**os.environ, PASSWORD_ENV: certs.password})
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if log.exists() and " record at byte " in log.read_text():
                    break
                time.sleep(0.1)
            process.send_signal(signal.SIGTERM)
            stdout, stderr = process.communicate(timeout=30)
            text = log.read_text()
            assert process.returncode == 0, stderr[-2000:]
            assert "<- Message Bundle (4002)" in text and " record at byte " in text
            if mode == "json":
                lines = [json.loads(line) for line in text.splitlines()]
                assert {line["level"] for line in lines} >= {"INFO", "VERBOSE", "TRACE"}
            for secret in secrets:
                assert secret not in text
                assert secret not in stderr and secret not in stdout


def test_json_formatter_alone():
    record = logging.LogRecord("Monitor", logging.INFO, __file__, 1, "n=%d", (3,), None)
    record.created = 0.25
    record.msecs = 250
    assert json.loads(JsonFormatter().format(record)) == {
        "time": "1970-01-01T00:00:00.250Z", "level": "INFO", "logger": "Monitor",
        "message": "n=3"}
