"""The monitor line, the falling-behind warning, the status file and `estreamer status`,
against the emulator over real TLS."""

import io
import json
import logging
import os
import re
import stat
import subprocess
import sys
import time

import pytest

from estreamer.certs import init_certs
from estreamer.client.bookmark import Bookmark, bookmark_path
from estreamer.client.runner import FatalRunError, LagWatch, format_bookmark, format_lag
from estreamer.config import Secret, default_config, settings_from_dict
from estreamer.emulator.server import Emulator
from estreamer.job import build_runner
from estreamer.status import (
    NOT_RUNNING,
    StatusFile,
    attach,
    describe,
    status_command,
    status_path,
)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return init_certs(tmp_path_factory.mktemp("certs"), client_cn="127.0.0.1")


def make_settings(workdir, port, certs, **monitor):
    config = default_config("127.0.0.1", port, certs.client_pkcs12, start=0, log_filepath="",
                            uri="relfile:///out/encore.{0}.json")
    config["responseTimeout"] = 0.1
    config["connectTimeout"] = 2
    config["monitor"].update(monitor)
    path = workdir / "estreamer.conf"
    path.write_text(json.dumps(config))
    return settings_from_dict(config, path)


def runner_for(settings, certs, **options):
    return build_runner(settings, Secret(certs.password), max_retries=0, commit_interval=0.0,
                        **options)


# --- the monitor line ----------------------------------------------------------------------


def test_monitor_line_has_rate_bookmark_lag_recv_q_and_types(tmp_path, certs, caplog):
    with Emulator(certs.directory, rate=0, seed=2, history_size=200) as emulator:
        settings = make_settings(tmp_path, emulator.port, certs, details=True)
        runner = runner_for(settings, certs)
        runner.monitor_details = settings.monitor.details
        runner.monitor_period = 0.05  # a report at nearly every bundle
        with caplog.at_level(logging.INFO, logger="Monitor"):
            result = runner.run(stop_when_idle=0.4)
    lines = [r.getMessage() for r in caplog.records if r.name == "Monitor"
             and r.getMessage().startswith("Running.")]
    assert lines, caplog.text
    last = lines[-1]
    assert last.startswith("Running. ") and " handled; average rate " in last
    assert " ev/sec; bookmark " in last and "; newest event " in last
    assert "; Recv-Q " in last and " bytes" in last
    # Per-type counts add up to what the monitor says was handled at that moment.
    handled = int(last.split()[1])
    by_type = dict(pair.split(":") for pair in last.split("; by type ")[1].split())
    assert sum(int(n) for n in by_type.values()) == handled
    assert {"71", "400", "2"} <= by_type.keys()
    assert runner.counts.total() == result.handled


def test_monitor_line_without_details_has_no_types(tmp_path, certs, caplog):
    with Emulator(certs.directory, rate=0, seed=2, history_size=60) as emulator:
        settings = make_settings(tmp_path, emulator.port, certs)
        runner = runner_for(settings, certs)
        runner.monitor_period = 0.05
        with caplog.at_level(logging.INFO, logger="Monitor"):
            runner.run(stop_when_idle=0.3)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Running.")]
    assert lines and all("by type" not in line for line in lines)


def test_lag_watch_warns_only_when_the_gap_grows_while_records_flow():
    watch = LagWatch(reports=2, slack=1.0)
    assert watch.observe(10.0, 100) is None  # first look: nothing to compare
    assert watch.observe(20.0, 200) is None  # grew once
    assert watch.observe(35.0, 300) == 15.0  # grew twice in a row, records flowing: behind
    assert watch.observe(50.0, 300) is None  # no records: a quiet FMC, not falling behind
    assert watch.observe(50.5, 400) is None  # within the slack
    assert watch.observe(40.0, 500) is None  # catching up


def test_lag_watch_estimates_when_a_catch_up_ends():
    watch = LagWatch()
    watch.observe(3600.0, 100, now=0.0)
    assert watch.eta is None
    watch.observe(3000.0, 900, now=60.0)  # 600 s of archive closed in 60 s: 10 s per second
    assert watch.eta == 300.0
    watch.observe(3000.5, 950, now=120.0)  # stalled: no estimate
    assert watch.eta is None


def test_catch_up_progress_on_the_monitor_line(tmp_path, certs, caplog):
    settings = make_settings(tmp_path, 1, certs)
    runner = runner_for(settings, certs)
    runner.monitor_period = 0.0
    runner._started = time.monotonic() - 10
    with caplog.at_level(logging.INFO, logger="Monitor"):
        start = time.monotonic()
        for behind, at in ((7200, start), (6000, start + 60)):  # 1200 s closed in 60 s
            runner.pipeline.stats.received += 1000
            runner.newest = int(time.time()) - behind
            runner._report(at)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Running.")]
    assert "(catching up" not in lines[0]
    # The wall clock moves on between the two samples: a second either way is timing.
    assert re.search(r"; newest event 100 min [01] s old \(catching up: about "
                     r"(4 min 59|5 min 0|5 min 1) s to go\)", lines[1]), lines[1]


def test_falling_behind_is_a_warning_with_the_gap(tmp_path, certs, caplog):
    settings = make_settings(tmp_path, 1, certs)
    runner = runner_for(settings, certs)
    runner.monitor_period = 0.0
    runner._started = time.monotonic() - 10
    stats = runner.pipeline.stats
    with caplog.at_level(logging.INFO, logger="Monitor"):
        # Three reports; between each, records arrive whose newest timestamp falls further
        # behind the clock (a client slower than the FMC).
        for behind in (100, 160, 230):
            stats.received += 500
            runner.newest = int(time.time()) - behind
            runner._report(time.monotonic())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, caplog.text
    assert warnings[0].startswith("Falling behind: the newest event received is 3 min 5")
    assert "that gap grew 70 s since the last report (Recv-Q ? bytes): the FMC sends more " \
           "than this client handles; request fewer event types (subscription.records, or " \
           "the FMC's eStreamer page) or give this host more CPU." in warnings[0]


def test_format_lag():
    assert [format_lag(s) for s in (0, 59.9, 119, 185, 7199, 7322)] == [
        "0 s", "59 s", "119 s", "3 min 5 s", "119 min 59 s", "2 h 2 min"]


# --- the status file and `estreamer status` -------------------------------------------------


def test_status_after_a_run_reports_counts_bookmark_and_a_clean_stop(tmp_path, certs):
    with Emulator(certs.directory, rate=0, seed=4, history_size=120) as emulator:
        settings = make_settings(tmp_path, emulator.port, certs)
        runner = runner_for(settings, certs)
        status = attach(runner, settings)
        path = status_path(tmp_path, "127.0.0.1", emulator.port)
        assert json.loads(path.read_text())["state"] == "running"
        result = runner.run(stop_when_idle=1.2)
        # The first snapshot (after a second) is written at once, not after WRITE_INTERVAL.
        assert json.loads(path.read_text())["handled"] > 0
        status.stopped(snap=runner.snapshot())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved["state"] == "stopped" and saved["handled"] == result.handled
    assert sum(saved["counts"].values()) == result.handled
    running, lines = describe(settings)
    assert running is False
    assert lines[0].startswith("client:     not running (stopped at ")
    assert lines[1] == f"server:     127.0.0.1:{emulator.port} ({settings.path})"
    assert lines[2].startswith(
        f"records:    {result.handled} handled ({result.written} written, 0 resent duplicates "
        "dropped, 0 decode errors), ")
    assert lines[2].endswith(", 0 reconnects")
    assert lines[3] == "last error: none"
    bookmark = Bookmark.load(bookmark_path(tmp_path, "127.0.0.1", emulator.port))
    assert lines[4] == (f"bookmark:   {format_bookmark(bookmark.timestamp)} "
                        f"({bookmark_path(tmp_path, '127.0.0.1', emulator.port)})")


def test_status_of_a_running_client(tmp_path, certs):
    settings = make_settings(tmp_path, 8302, certs)
    status = StatusFile(status_path(tmp_path, "127.0.0.1", 8302), host="127.0.0.1", port=8302,
                        config=str(settings.path))
    status.started()
    running, lines = describe(settings)
    assert running is True
    assert lines[0].startswith(f"client:     running (pid {os.getpid()}, since ")
    assert lines[-1] == (f"bookmark:   none ({bookmark_path(tmp_path, '127.0.0.1', 8302)})")


def test_status_of_a_client_that_was_killed(tmp_path, certs):
    settings = make_settings(tmp_path, 8302, certs)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    pid = int(gone.stdout)
    status = StatusFile(status_path(tmp_path, "127.0.0.1", 8302), host="127.0.0.1", port=8302,
                        config=str(settings.path))
    status.data["pid"] = pid  # a process that ran and is gone, as after kill -9
    status.data["process_start"] = "1"
    status.started()
    running, lines = describe(settings)
    assert running is False
    assert lines[0].startswith(
        f"client:     not running: process {pid} ended without stopping cleanly (killed or "
        "crashed) after ")


def test_last_error_is_recorded_from_the_retry_log_and_the_fatal_stop(tmp_path, certs):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens: refused
        settings = make_settings(tmp_path, port, certs)
        runner = build_runner(settings, Secret(certs.password), max_retries=1,
                              first_retry_delay=0.01)
        status = attach(runner, settings)
        with pytest.raises(FatalRunError) as failure:
            runner.run()
        # Before the stop is written, the file holds the error the retry loop logged.
        logged = json.loads(status.path.read_text())["last_error"]
        status.stopped(error=str(failure.value))
    refused = (f"Nothing is listening on 127.0.0.1:{port} (connection refused): check the FMC "
               "address and port (eStreamer listens on 8302) and that the eStreamer service "
               "runs on the FMC.")
    assert logged.startswith(refused.rstrip(".") + ". Reconnect attempt 1 in ")
    _running, lines = describe(settings)
    assert lines[0].startswith("client:     not running (failed at ")
    error_line = next(line for line in lines if line.startswith("last error: "))
    assert error_line.startswith(f"last error: {refused} (")


def test_status_command_without_a_status_file(tmp_path, certs):
    settings = make_settings(tmp_path, 8302, certs)
    out = io.StringIO()
    assert status_command(str(settings.path), out) == NOT_RUNNING
    first = out.getvalue().splitlines()[0]
    assert first == (f"client:     not running (no status file "
                     f"{status_path(tmp_path, '127.0.0.1', 8302)}: `estreamer run` has not run "
                     "with this config)")
