"""`relfile://` and `file://`: lines to files that rotate after a number of lines or bytes.

Like eNcore's file stream: `{0}` in the file name becomes the file's start time in epoch
seconds (`encore.1591210934.json`), a file is opened only when there is a line for it,
and with `rotate` a new file starts after `maxLogs` lines, so every file but the newest
holds exactly `maxLogs`. Two files started within the same second get `_001`, `_002`, ...
after the seconds (eNcore added a random UUID there), chosen so that sorting the names
still gives the order they were written in; an existing file is never overwritten.
A name without `{0}` is one file, appended to, never rotated.

What we add:
* `maxBytes`: a new file also starts before a line that would take the file past this
  size (a single longer line gets a file of its own). Lines are never split.
* `compress`: finished files are gzipped to `NAME.gz` in a background thread: written to
  `NAME.gz.tmp`, fsync'ed, renamed, and only then is `NAME` removed, so a crash at any
  point leaves either the whole file or the whole `.gz` (a stale `.gz.tmp` is removed at
  the next start and the file compressed again). A file is compressed only once a commit
  has moved past it: estreamer.client.recovery records the newest file with every
  bookmark and cuts it back on start, so that file must stay as it is until a later
  bookmark names a newer one.
* `fsync`: `"commit"` (the default) fsyncs the file and its directory at every commit,
  before the bookmark moves; `"never"` only hands the bytes to the OS. That survives the
  process dying, but after a power cut or a kernel crash the bookmark may be ahead of
  what reached the disk, and those records are lost.
"""

import gzip
import logging
import os
import queue
import re
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from estreamer.atomic import fsync_directory
from estreamer.config import FSYNC_POLICIES

log = logging.getLogger("FileStream")


class _BackgroundWriter:
    """The file writes themselves, in a thread of their own. Copying the bytes into the
    kernel is a file output's biggest cost (on a slow virtual disk, several microseconds
    per event) and releases the GIL, so the stream goes on decoding on another core
    meanwhile. Batches are written in the order given; at most PENDING wait (a slow disk
    slows the stream, not memory). A failed write is kept and raised by the next call, and
    no later batch is written after it: what reached the file is then a prefix, and the
    commit that fails keeps the bookmark behind it."""

    PENDING = 8

    def __init__(self, name: str):
        self._name = name
        self._queue: queue.Queue[tuple[BinaryIO, bytes] | None] = queue.Queue(self.PENDING)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def write(self, file: BinaryIO, data: bytes) -> None:
        self._raise()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name=f"write {self._name}")
            self._thread.start()
        self._queue.put((file, data))

    def drain(self) -> None:
        """Return once every batch given is in the file (or raise why one is not)."""
        if self._thread is not None:
            self._queue.join()
        self._raise()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _raise(self) -> None:
        if self._error is not None:
            raise OSError(f"writing {self._name} failed: {self._error}") from self._error

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if self._error is None:
                    file, data = item
                    file.write(data)
            except Exception as exc:
                self._error = exc
            finally:
                self._queue.task_done()

_OPEN_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
_OPEN_APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
RECENT_FILES = 1000
_OPEN_TEMP = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)


class FileOutput:
    def __init__(
        self,
        directory: str | os.PathLike[str],
        template: str,
        *,
        max_lines: int | None = 10000,
        max_bytes: int | None = None,
        rotate: bool = True,
        compress: bool = False,
        fsync: str = "commit",
        clock: Callable[[], float] = time.time,
        mode: int = 0o640,  # event data: the owner writes, a log-shipper group may read
    ):
        if max_lines is not None and max_lines < 1:
            raise ValueError(f"max_lines must be at least 1, got {max_lines}")
        if max_bytes is not None and max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, got {max_bytes}")
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync must be one of {', '.join(FSYNC_POLICIES)}, got {fsync!r}")
        if "/" in template or "\\" in template or not template:
            raise ValueError(f"file name template must be a plain name, got {template!r}")
        self.directory = Path(directory)
        self.template = template
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self.fixed_name = "{0}" not in template
        self.rotate = rotate and not self.fixed_name
        if rotate and self.fixed_name:
            log.warning("%s has no {0} in its name, so it cannot rotate; appending to it",
                        self.directory / template)
        # Only finished files are compressed, and a file without {0} is never finished.
        self.compress = compress and not self.fixed_name
        if compress and self.fixed_name:
            log.warning("%s has no {0} in its name, so it is never finished and never "
                        "compressed", self.directory / template)
        self.fsync = fsync
        self.clock = clock
        self.mode = mode
        self.path: Path | None = None  # the file being written, if any
        # The newest files this output opened and .gz files it made, oldest first: kept for
        # a look (tests, diagnostics), bounded (at 50,000 events/s and 10,000 lines a file,
        # a day opens 400,000 files).
        self.files: deque[Path] = deque(maxlen=RECENT_FILES)
        self.compressed: deque[Path] = deque(maxlen=RECENT_FILES)
        self.opened = 0  # files this output opened
        self._file: BinaryIO | None = None
        self._lines = 0  # lines in the current file
        self._bytes = 0  # bytes in the current file
        self._dir_synced = True
        self._closed = False
        self._writer = _BackgroundWriter(template)
        # Compression: files finished and not yet compressed, oldest first, and how many
        # files this output had opened at the last commit (see _compress_committed).
        self._finished: list[tuple[Path, int]] = []  # and the file's number (`opened`)
        self._committed_files = 0
        self._compressor: ThreadPoolExecutor | None = None
        self._compress_lock = threading.Lock()

    def write(self, lines: Sequence[bytes]) -> None:
        if self._closed:
            raise ValueError("write to a closed FileOutput")
        for line in lines:
            # A line with a newline inside would become two lines downstream and break
            # the line count that rotation promises: a formatter bug, caught here.
            if b"\n" in line:
                raise ValueError(f"output line contains a newline: {line[:60]!r}")
        start = 0
        while start < len(lines):
            f = self._file or self._open()
            end, full = self._fit(lines, start)
            if end > start:
                # The empty last item ends the last line: one copy of the batch, not two.
                data = b"\n".join([*lines[start:end], b""])
                self._writer.write(f, data)
                self._lines += end - start
                self._bytes += len(data)
                start = end
            if full:
                self._finish_file()

    def flush(self, durable: bool) -> None:
        self._writer.drain()
        if self._file is not None:
            self._file.flush()
            if durable and self.fsync == "commit":
                os.fsync(self._file.fileno())
                self._sync_directory()
        if durable and self.compress:
            self._compress_committed()

    def close(self) -> None:
        if self._closed:
            return
        try:
            # The file closed here is the newest: a bookmark may name it, so it is left
            # for the next run to compress once its own first commit has moved past it.
            self._finish_file()
        finally:
            self._writer.stop()
            self._closed = True
            if self._compressor is not None:
                self._compressor.shutdown(wait=True)

    # ------------------------------------------------------------------ files

    def _fit(self, lines: Sequence[bytes], start: int) -> tuple[int, bool]:
        """How far into `lines` the current file goes, and whether it is then full."""
        if not self.rotate:
            return len(lines), False
        end = len(lines)
        if self.max_lines is not None:
            end = min(end, start + self.max_lines - self._lines)
        full = self.max_lines is not None and self._lines + (end - start) >= self.max_lines
        if self.max_bytes is not None:
            size = self._bytes
            for i in range(start, end):
                after = size + len(lines[i]) + 1
                # An empty file takes any line, or a line longer than max_bytes would
                # never find a home.
                if after > self.max_bytes and size > 0:
                    return i, True
                size = after
            full = full or size >= self.max_bytes
        return end, full

    def _open(self) -> BinaryIO:
        self.directory.mkdir(mode=0o750, parents=True, exist_ok=True)
        if self.fixed_name:
            path = self.directory / self.template
            fd = os.open(path, _OPEN_APPEND, self.mode)
        else:
            if self.compress and not self.opened:
                self._adopt_leftovers()
            path, fd = self._open_new(str(int(self.clock())))
        self._file = os.fdopen(fd, "ab")
        self.path = path
        self.files.append(path)
        self.opened += 1
        self._lines = 0
        self._bytes = 0
        self._dir_synced = False  # the new name is durable only once the directory is
        log.debug("Writing to %s", path)
        return self._file

    def _open_new(self, stamp: str) -> tuple[Path, int]:
        for n in range(10000):
            # "_" sorts after ".", so encore.T_001.json follows encore.T.json in a listing.
            name = self.template.replace("{0}", stamp if n == 0 else f"{stamp}_{n:03d}")
            path = self.directory / name
            try:
                return path, os.open(path, _OPEN_NEW, self.mode)
            except FileExistsError:
                continue
        raise FileExistsError(f"no free file name for {self.directory / self.template}")

    def _finish_file(self) -> None:
        """Make the current file durable and close it: a rotated-away file is never
        written again, so its data must be safe before the bookmark can pass it."""
        if self._file is None:
            return
        try:
            self._writer.drain()
            self._file.flush()
            if self.fsync == "commit":
                os.fsync(self._file.fileno())
                self._sync_directory()
        finally:
            self._file.close()
            self._file = None
            if self.compress and self.path is not None:
                self._finished.append((self.path, self.opened - 1))
            self.path = None

    def _sync_directory(self) -> None:
        if self._dir_synced:
            return
        fsync_directory(self.directory)
        self._dir_synced = True

    # ------------------------------------------------------------------ compression

    def _compress_committed(self) -> None:
        """Queue the finished files that a saved bookmark can no longer name.

        The bookmark saved after a commit names the newest file at that commit
        (estreamer.client.recovery), and a start cuts that file back. So at a commit, the
        files older than the newest file of the *previous* commit are safe to replace by
        their .gz; the newest of this commit waits for the next one."""
        # A previous run's leftovers come before this run's first file (number -1).
        ready = [path for path, n in self._finished if n < self._committed_files - 1]
        self._committed_files = self.opened
        if not ready:
            return
        self._finished = [(p, n) for p, n in self._finished if p not in ready]
        if self._compressor is None:
            self._compressor = ThreadPoolExecutor(1, thread_name_prefix="gzip")
        for path in ready:
            self._compressor.submit(self._gzip, path).add_done_callback(_log_failure)

    def _gzip(self, path: Path) -> None:
        """NAME → NAME.gz without a moment where neither is whole on disk."""
        target = path.with_name(path.name + ".gz")
        temp = path.with_name(path.name + ".gz.tmp")
        # Always fsync here, whatever the fsync policy: the original is removed below,
        # and a .gz that a power cut left empty would then be the only copy.
        with open(path, "rb") as src, os.fdopen(os.open(temp, _OPEN_TEMP, self.mode), "wb") as raw:
            with gzip.GzipFile(filename=path.name, mode="wb", fileobj=raw,
                               mtime=int(path.stat().st_mtime)) as gz:
                shutil.copyfileobj(src, gz, 1 << 20)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(temp, target)
        fsync_directory(self.directory)
        path.unlink()
        fsync_directory(self.directory)
        with self._compress_lock:
            self.compressed.append(target)
        log.debug("Compressed %s", target)

    def _adopt_leftovers(self) -> None:
        """A previous run's files: drop half-written .gz.tmp files, finish a compression
        that got as far as the rename, and queue its other finished files. Runs at the
        first open, after the recovery at start has cut the files back."""
        pattern = _name_pattern(self.template)
        try:
            names = set(os.listdir(self.directory))
        except OSError:
            return
        for name in sorted(names):
            if name.endswith(".gz.tmp") and pattern.match(name[: -len(".gz.tmp")]):
                (self.directory / name).unlink(missing_ok=True)
        for name in sorted(names, key=_file_order(pattern)):
            if not pattern.match(name):
                continue
            if name + ".gz" in names:
                # The .gz was fsync'ed before its rename: it is whole, the original is
                # the copy that the removal did not reach.
                (self.directory / name).unlink(missing_ok=True)
            else:
                self._finished.append((self.directory / name, -1))


def _name_pattern(template: str) -> re.Pattern[str]:
    """File names made from `template` (as estreamer.client.recovery reads them)."""
    head, _, tail = template.partition("{0}")
    return re.compile(re.escape(head) + r"(\d+)(?:_(\d+))?" + re.escape(tail) + r"\Z")


def _file_order(pattern: re.Pattern[str]) -> Callable[[str], tuple[int, int, str]]:
    def key(name: str) -> tuple[int, int, str]:
        match = pattern.match(name)
        return (int(match[1]), int(match[2] or 0), name) if match else (-1, -1, name)
    return key


def _log_failure(job: Future[None]) -> None:
    exc = job.exception()
    if exc is not None:
        # The original stays where it was: nothing is lost, it is only not compressed.
        log.error("could not compress a finished file: %s", exc)
