"""Catch-up progress: when a run starts from the oldest data or an old bookmark, how far the
stream has come (archive time reached versus now), at what rate, and when the gap closes.

On a terminal (stderr is a tty and `rich` is installed) each FMC that is catching up gets a
progress bar; the log lines go on above it. Elsewhere (systemd, a pipe, a file) nothing is
drawn: the monitor line already says `catching up: about … to go`, and one line says when
the client has caught up. `CatchUp` does the arithmetic and nothing else, so tests can feed
it numbers.

The gap is `now - newest archive timestamp received`; it closes at `speed - 1` seconds per
second, where `speed` is archive seconds received per wall second (the clock moves on while
the client reads), so the ETA is `gap / (speed - 1)`, measured over the last `WINDOW`
seconds so one slow bundle does not swing it."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from estreamer.client.runner import CATCHING_UP, MonitorSnapshot, format_lag

log = logging.getLogger("Monitor")

WINDOW = 30.0
"""Seconds of snapshots the rate, speed and ETA are measured over."""


@dataclass(frozen=True)
class CatchUpState:
    origin: int  # archive timestamp the catch-up started from (the first behind this run)
    reached: int  # newest archive timestamp received
    now: float  # wall clock, epoch seconds
    rate: float | None  # records per second (None until two snapshots)
    speed: float | None  # archive seconds per second
    eta: float | None  # seconds until caught up, while the gap closes
    records: int  # records received since the catch-up started
    seconds: float  # since the catch-up started
    caught_up: bool = False

    @property
    def lag(self) -> float:
        return max(0.0, self.now - self.reached)

    @property
    def fraction(self) -> float:
        """Share of the gap between `origin` and now that has been streamed, 0 … 1."""
        span = self.now - self.origin
        if span <= 0:
            return 1.0
        return min(1.0, max(0.0, (self.reached - self.origin) / span))


class CatchUp:
    """Follows one FMC's snapshots. Starts when the newest event received is at least
    `threshold` seconds old, ends (`caught_up`) once it is younger than half that: the
    hysteresis keeps a client that hovers around the threshold from flapping."""

    def __init__(self, threshold: float = CATCHING_UP, window: float = WINDOW):
        self.threshold = threshold
        self.window = window
        self.active = False
        self._origin = 0
        self._start: tuple[float, int] = (0.0, 0)  # (monotonic, handled) at the start
        self._samples: deque[tuple[float, int, int]] = deque()  # (monotonic, newest, handled)

    def observe(self, newest: int | None, handled: int, wall: float,
                mono: float) -> CatchUpState | None:
        """The state after one snapshot; None while there is nothing to catch up."""
        if newest is None:
            return None
        lag = wall - newest
        if not self.active:
            if lag < self.threshold:
                return None
            self.active = True
            self._origin = newest
            self._start = (mono, handled)
            self._samples.clear()
        samples = self._samples
        samples.append((mono, newest, handled))
        while len(samples) > 2 and mono - samples[1][0] >= self.window:
            samples.popleft()
        rate = speed = eta = None
        first_mono, first_newest, first_handled = samples[0]
        if mono > first_mono:
            rate = (handled - first_handled) / (mono - first_mono)
            speed = (newest - first_newest) / (mono - first_mono)
            if speed > 1.0:
                eta = max(0.0, lag) / (speed - 1.0)
        caught_up = lag < self.threshold / 2
        if caught_up:
            self.active = False
        return CatchUpState(self._origin, newest, wall, rate, speed, eta,
                            records=handled - self._start[1], seconds=mono - self._start[0],
                            caught_up=caught_up)


def describe(state: CatchUpState) -> str:
    """The progress in words: ETA, rate, speed (archive seconds per second), archive time
    reached and how far behind. Most wanted first: a narrow terminal cuts the end off."""
    parts = ["ETA " + (format_lag(state.eta) if state.eta is not None else "?")]
    if state.rate is not None:
        parts.append(f"{state.rate:,.0f} ev/s")
    if state.speed is not None:
        parts.append(f"×{state.speed:,.0f}")
    reached = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(state.reached))
    parts.append(f"at {reached}, {format_lag(state.lag)} behind")
    return " · ".join(parts)


def caught_up_line(state: CatchUpState) -> str:
    return (f"Caught up: {state.records} records from "
            f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(state.origin))} in "
            f"{format_lag(state.seconds)}; the newest event is {format_lag(state.lag)} old.")


class CatchUpReporter:
    """A `Runner.on_report` callback: feeds `CatchUp`, draws the bar when there is one, and
    logs the line that says the catch-up is over (on a terminal and off it)."""

    def __init__(self, bars: ProgressBars | None = None, label: str = "",
                 clock: Callable[[], float] = time.time):
        self.catch_up = CatchUp()
        self.bars = bars
        self.label = label
        self.clock = clock
        self.state: CatchUpState | None = None

    def __call__(self, snap: MonitorSnapshot) -> None:
        state = self.catch_up.observe(snap.newest, snap.handled, self.clock(), time.monotonic())
        if state is None:
            return
        self.state = state
        if self.bars is not None:
            self.bars.show(self.label, state)
        if state.caught_up:
            log.info("%s", caught_up_line(state))


class ProgressBars:
    """rich progress bars on a terminal, one per FMC catching up. While a bar is drawn, the
    log handlers that write to that terminal print through rich, above the bars, so log
    lines and bars do not tear each other."""

    def __init__(self, stream: TextIO):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        self.stream = stream
        self.console = Console(file=stream)
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(bar_width=20), TaskProgressColumn(),
            TextColumn("{task.fields[detail]}"), console=self.console,
            redirect_stdout=False, redirect_stderr=False,
        )
        self._tasks: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._swapped: list[logging.StreamHandler] = []

    def show(self, label: str, state: CatchUpState) -> None:
        with self._lock:
            task = self._tasks.get(label)
            if state.caught_up:
                if task is not None:
                    self.progress.update(task, completed=1000, detail=describe(state))
                    self.progress.remove_task(task)
                    del self._tasks[label]
                    if not self._tasks:
                        self._stop()
                return
            if task is None:
                if not self._tasks:
                    self._start()
                name = f"[{label}] catching up" if label else "catching up"
                task = self._tasks[label] = self.progress.add_task(name, total=1000, detail="")
            self.progress.update(task, completed=round(state.fraction * 1000),
                                 detail=describe(state))

    def stop(self) -> None:
        with self._lock:
            if self._tasks:
                self._tasks.clear()
                self._stop()

    def _start(self) -> None:
        self.progress.start()
        writer = _ConsoleWriter(self.console)
        for handler in logging.getLogger().handlers:
            if (type(handler) is logging.StreamHandler
                    and getattr(handler, "stream", None) is self.stream):
                handler.setStream(writer)  # type: ignore[arg-type]
                self._swapped.append(handler)

    def _stop(self) -> None:
        for handler in self._swapped:
            handler.setStream(self.stream)
        self._swapped.clear()
        self.progress.stop()


class _ConsoleWriter:
    """A text stream that prints whole lines through a rich console (above live bars)."""

    def __init__(self, console: Any):
        self.console = console
        self._buffer = ""

    def write(self, text: str) -> int:
        self._buffer += text
        *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            self.console.print(line, markup=False, highlight=False, emoji=False,
                               soft_wrap=True)
        return len(text)

    def flush(self) -> None:
        pass


def progress_bars(stream: TextIO | None = None) -> ProgressBars | None:
    """Bars for `stream` (default stderr) when it is a terminal and rich is installed;
    None otherwise, and the log lines alone tell the progress."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    if isatty is None or not isatty():
        return None
    try:
        return ProgressBars(stream)
    except ImportError:
        return None
