"""Catch-up progress: the arithmetic, the log line off a terminal, the bar on one."""

import io
import logging
import re

import pytest

from estreamer.client.runner import MonitorSnapshot
from estreamer.progress import (
    CatchUp,
    CatchUpReporter,
    CatchUpState,
    ProgressBars,
    caught_up_line,
    describe,
    progress_bars,
)

HOUR = 3600
NOW = 1_800_000_000  # wall clock of the tests


def test_nothing_to_catch_up_before_a_record_or_when_live():
    catch_up = CatchUp()
    assert catch_up.observe(None, 0, NOW, 0.0) is None
    assert catch_up.observe(NOW - 5, 10, NOW, 1.0) is None  # 5 s behind: live
    assert not catch_up.active


def test_progress_rate_speed_and_eta_from_an_old_start():
    catch_up = CatchUp(threshold=60, window=30)
    origin = NOW - 10 * HOUR
    first = catch_up.observe(origin, 100, NOW, 0.0)
    assert first == CatchUpState(origin, origin, NOW, None, None, None, records=0, seconds=0.0)
    assert first.fraction == 0.0 and first.lag == 10 * HOUR
    # 10 s later: 2 h of archive streamed (720 archive seconds a second), 5000 records.
    state = catch_up.observe(origin + 2 * HOUR, 5100, NOW + 10, 10.0)
    assert state.rate == 500.0
    assert state.speed == 720.0
    assert state.lag == 8 * HOUR + 10
    assert state.eta == pytest.approx((8 * HOUR + 10) / 719)  # the clock moves on meanwhile
    assert state.fraction == pytest.approx(2 * HOUR / (10 * HOUR + 10))
    assert (state.records, state.seconds, state.caught_up) == (5000, 10.0, False)
    assert describe(state) == (
        "ETA 40 s · 500 ev/s · ×720 · at 2027-01-15 00:00:00 UTC, 8 h 0 min behind")


def test_rates_are_measured_over_the_window_only():
    catch_up = CatchUp(threshold=60, window=30)
    origin = NOW - 10 * HOUR
    for second in (0, 40, 50):  # slow at first: one record and one archive second a second
        catch_up.observe(origin + second, second, NOW + second, float(second))
    catch_up.observe(origin + 1000, 1000, NOW + 60, 60.0)
    state = catch_up.observe(origin + 3000, 3000, NOW + 80, 80.0)  # then fast
    # The samples of 0 s and 40 s fell out of the 30 s window: measured from 50 s on.
    assert state.rate == (3000 - 50) / 30
    assert state.speed == (3000 - 50) / 30


def test_no_eta_while_the_gap_grows():
    catch_up = CatchUp(threshold=60)
    catch_up.observe(NOW - HOUR, 0, NOW, 0.0)
    state = catch_up.observe(NOW - HOUR, 0, NOW + 10, 10.0)  # nothing new for 10 s
    assert state.speed == 0.0 and state.eta is None
    assert describe(state).startswith("ETA ? · 0 ev/s · ×0 · at ")


def test_caught_up_once_under_half_the_threshold_and_can_start_again():
    catch_up = CatchUp(threshold=60)
    origin = NOW - HOUR
    catch_up.observe(origin, 0, NOW, 0.0)
    assert not catch_up.observe(NOW - 40, 900, NOW, 20.0).caught_up  # 40 s: not yet
    done = catch_up.observe(NOW - 2, 1000, NOW, 30.0)
    assert done.caught_up and not catch_up.active
    assert caught_up_line(done) == ("Caught up: 1000 records from 2027-01-15 07:00:00 UTC "
                                    "in 30 s; the newest event is 2 s old.")
    assert catch_up.observe(NOW + 20, 1100, NOW + 40, 40.0) is None  # live again
    again = catch_up.observe(NOW - 2 * HOUR, 1200, NOW + 50, 50.0)  # an outage's backlog
    assert again is not None and again.origin == NOW - 2 * HOUR and again.records == 0


def snapshot(newest: int | None, handled: int) -> MonitorSnapshot:
    return MonitorSnapshot(handled=handled, written=handled, duplicates=0, malformed=0,
                           rate=0.0, seconds=1.0, bookmark=None, newest=newest, lag=None,
                           bytes_received=0, connections=1, recv_queue=None)


def test_off_a_terminal_no_bar_and_one_log_line_when_caught_up(caplog):
    assert progress_bars(io.StringIO()) is None  # a pipe, a file, systemd's journal
    clock = iter([NOW, NOW + 1, NOW + 2])
    reporter = CatchUpReporter(None, clock=lambda: next(clock))
    with caplog.at_level(logging.INFO, logger="Monitor"):
        reporter(snapshot(NOW - HOUR, 10))
        reporter(snapshot(NOW - 1800, 20))
        assert caplog.messages == []  # the monitor line tells the progress meanwhile
        reporter(snapshot(NOW, 30))
    assert len(caplog.messages) == 1
    assert caplog.messages[0].startswith("Caught up: 20 records from 2027-01-15 07:00:00 UTC "
                                         "in ")
    assert caplog.messages[0].endswith("; the newest event is 2 s old.")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_a_bar_and_log_lines_above_it(monkeypatch):
    pytest.importorskip("rich")
    monkeypatch.setenv("COLUMNS", "200")
    terminal = Terminal()
    bars = progress_bars(terminal)
    assert isinstance(bars, ProgressBars)
    handler = logging.StreamHandler(terminal)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        catch_up = CatchUp()
        bars.show("10.0.0.5:8302", catch_up.observe(NOW - HOUR, 0, NOW, 0.0))
        state = catch_up.observe(NOW - 1800, 5000, NOW + 10, 10.0)
        bars.show("10.0.0.5:8302", state)
        assert handler.stream is not terminal  # log lines go through rich while drawn
        logging.getLogger("Monitor").warning("a log line while the bar is drawn")
        bars.progress.refresh()
        drawn = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", terminal.getvalue())  # no colours
        assert "[10.0.0.5:8302] catching up" in drawn
        assert " 50% " in drawn and bars.progress.tasks[0].completed == 499
        assert describe(state) in drawn
        assert "a log line while the bar is drawn" in drawn
        bars.show("10.0.0.5:8302", catch_up.observe(NOW + 15, 6000, NOW + 20, 20.0))
        assert handler.stream is terminal  # caught up: the bar is gone, plain logging again
        assert not bars.progress.live.is_started
    finally:
        root.removeHandler(handler)
        bars.stop()
