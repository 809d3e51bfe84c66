"""The status file a running client keeps, and `estreamer status`, which reads it with the
bookmark and says whether a client is running, how far it got and what last went wrong.

File: `{host}-{port}_status.json` beside the bookmark (the bookmark's naming, so one
directory can serve several FMCs). Written atomically (temp file 0600 + rename), so a
reader never sees half of it, at start, every few seconds while running, on every error
and at stop. It holds no secret: pid, start time, state, counts, the last error.

Whether the client still runs is judged from the pid *and* the process start time the file
records: after a crash the pid can be reused by an unrelated process, which must not read
as "running"."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from estreamer.atomic import write_atomically
from estreamer.client.bookmark import Bookmark, BookmarkError, bookmark_path
from estreamer.client.runner import MonitorSnapshot, Runner, format_bookmark, format_lag
from estreamer.config import Server, Settings, load_config

WRITE_INTERVAL = 5.0
"""Seconds between status writes while running (errors and stop are written at once)."""

NOT_RUNNING = 3  # `estreamer status` exit code, as LSB init scripts and systemctl use it


def status_path(directory: str | os.PathLike[str], host: str, port: int) -> Path:
    return Path(directory) / f"{host}-{port}_status.json"


def process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22), which
    with the pid identifies one process for the machine's uptime; None without /proc or
    when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def process_alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    if start is not None and Path("/proc").is_dir():
        return process_start(pid) == start
    return True


class StatusFile:
    def __init__(self, path: str | os.PathLike[str], *, host: str, port: int, config: str,
                 clock: Any = time.time, interval: float = WRITE_INTERVAL):
        self.path = Path(path)
        self.clock = clock
        self.interval = interval
        pid = os.getpid()
        self.data: dict[str, Any] = {
            "pid": pid,
            "process_start": process_start(pid),
            "host": host,
            "port": port,
            "config": config,
            "state": "starting",
            "started": clock(),
            "updated": clock(),
            "last_error": None,
            "last_error_time": None,
        }
        self._last_write = 0.0
        self._lock = threading.Lock()  # errors may be logged from other threads

    def started(self) -> None:
        self.data["state"] = "running"
        self.write()

    def update(self, snap: MonitorSnapshot) -> None:
        """Take a monitor snapshot; written at once until one has records (so `estreamer
        status` has counts early), then at most every `interval` seconds."""
        first = not self.data.get("handled")  # no snapshot yet, or none with records
        self.data.update(
            handled=snap.handled, written=snap.written, duplicates=snap.duplicates,
            decode_errors=snap.malformed, rate=round(snap.rate, 2), bookmark=snap.bookmark,
            newest=snap.newest, lag=None if snap.lag is None else round(snap.lag, 1),
            bytes_received=snap.bytes_received, connections=snap.connections,
            counts={str(k): v for k, v in sorted(snap.counts.items())},
        )
        if first or self.clock() - self._last_write >= self.interval:
            self.write()

    def error(self, text: str) -> None:
        self.data["last_error"] = text
        self.data["last_error_time"] = self.clock()
        self.write()

    def stopped(self, error: str | None = None, snap: MonitorSnapshot | None = None) -> None:
        if snap is not None:
            self.update(snap)
        if error:
            self.data["last_error"] = error
            self.data["last_error_time"] = self.clock()
        self.data["state"] = "failed" if error else "stopped"
        self.data["stopped"] = self.clock()
        self.write()

    def write(self) -> None:
        with self._lock:
            self.data["updated"] = now = self.clock()
            self._last_write = now
            payload = json.dumps(self.data, indent=1, sort_keys=True).encode() + b"\n"
            try:
                # Not durable: the status file is for people watching, refreshed often.
                write_atomically(self.path, payload, durable=False)
            except OSError as exc:
                # The status file is for people watching; never let it stop the stream.
                logging.getLogger("Monitor").warning("cannot write status file %s: %s",
                                                     self.path, exc)

    def capture_errors(self, *loggers: str) -> logging.Handler:
        """Record every ERROR logged on these loggers as the last error (the runner logs
        each failed connection there before it retries)."""
        status = self
        # Only this thread's lines: with several FMCs each runner thread has its own file.
        thread = threading.get_ident()

        class Catch(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if record.thread != thread:
                    return
                with contextlib.suppress(Exception):
                    status.error(record.getMessage())

        handler = Catch(logging.ERROR)
        for name in loggers:
            logging.getLogger(name).addHandler(handler)
        return handler


def attach(runner: Runner, settings: Settings, server: Server | None = None) -> StatusFile:
    """A status file for `runner` (streaming from `server`, default the config's first),
    fed by its monitor snapshots and its error log lines."""
    server = server or settings.server
    status = StatusFile(status_path(settings.bookmark_dir(), server.host, server.port),
                        host=server.host, port=server.port, config=str(settings.path))
    previous = runner.on_report

    def on_report(snap: MonitorSnapshot) -> None:
        if previous is not None:
            previous(snap)
        status.update(snap)

    runner.on_report = on_report
    status.capture_errors("Receiver", "Connection")
    status.started()
    return status


# --- estreamer status ------------------------------------------------------------------------


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def describe(settings: Settings, now: float | None = None) -> tuple[bool, list[str]]:
    """(running?, the lines `estreamer status` prints) for the client of `settings`."""
    now = time.time() if now is None else now
    server = settings.server
    directory = settings.bookmark_dir()
    path = status_path(directory, server.host, server.port)
    lines = [f"server:     {server.host}:{server.port} ({settings.path})"]
    running = False
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        lines.insert(0, f"client:     not running (no status file {path}: `estreamer run` has "
                        "not run with this config)")
        data = None
    except (OSError, ValueError) as exc:
        lines.insert(0, f"client:     unknown (status file {path} cannot be read: {exc})")
        data = None
    if data is not None:
        pid = int(data.get("pid", 0))
        alive = pid > 0 and process_alive(pid, data.get("process_start"))
        state = data.get("state")
        if state in ("running", "starting") and alive:
            running = True
            head = (f"running (pid {pid}, since {_when(data.get('started'))}, status written "
                    f"{format_lag(now - data.get('updated', now))} ago)")
        elif state in ("running", "starting"):
            head = (f"not running: process {pid} ended without stopping cleanly (killed or "
                    f"crashed) after {_when(data.get('updated'))}")
        else:
            head = f"not running ({state} at {_when(data.get('stopped'))})"
        lines.insert(0, f"client:     {head}")
        if "handled" in data:
            lag = data.get("lag")
            lines.append(
                f"records:    {data['handled']} handled ({data.get('written', 0)} written, "
                f"{data.get('duplicates', 0)} resent duplicates dropped, "
                f"{data.get('decode_errors', 0)} decode errors), {data.get('rate', 0)} ev/sec"
                + ("" if lag is None else f", newest event {format_lag(lag)} old")
                + f", {max(0, data.get('connections', 1) - 1)} reconnects")
        error = data.get("last_error")
        lines.append(f"last error: {error} ({_when(data.get('last_error_time'))})" if error
                     else "last error: none")
    bookmark_file = bookmark_path(directory, server.host, server.port)
    try:
        saved = Bookmark.load(bookmark_file)
    except BookmarkError as exc:
        lines.append(f"bookmark:   {exc}")
    else:
        timestamp = saved.timestamp if saved is not None else None
        lines.append(f"bookmark:   {format_bookmark(timestamp)} ({bookmark_file})")
    return running, lines


def status_command(config: str, out: TextIO = sys.stdout) -> int:
    settings = load_config(config)
    running, lines = describe(settings)
    for line in lines:
        print(line, file=out)
    return 0 if running else NOT_RUNNING
