"""`relfile://` and `file://`: lines to files that rotate after a number of lines.

Like eNcore's file stream: `{0}` in the file name becomes the file's start time in epoch
seconds (`encore.1591210934.json`), a file is opened only when there is a line for it,
and with `rotate` a new file starts after `maxLogs` lines, so every file but the newest
holds exactly `maxLogs`. Two files started within the same second get `_001`, `_002`, ...
after the seconds (eNcore added a random UUID there), chosen so that sorting the names
still gives the order they were written in; an existing file is never overwritten.
A name without `{0}` is one file, appended to, never rotated.
"""

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger("FileStream")

_OPEN_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
_OPEN_APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)


class FileOutput:
    def __init__(
        self,
        directory: str | os.PathLike[str],
        template: str,
        *,
        max_lines: int = 10000,
        rotate: bool = True,
        clock: Callable[[], float] = time.time,
        mode: int = 0o640,  # event data: the owner writes, a log-shipper group may read
    ):
        if max_lines < 1:
            raise ValueError(f"max_lines must be at least 1, got {max_lines}")
        if "/" in template or "\\" in template or not template:
            raise ValueError(f"file name template must be a plain name, got {template!r}")
        self.directory = Path(directory)
        self.template = template
        self.max_lines = max_lines
        self.fixed_name = "{0}" not in template
        self.rotate = rotate and not self.fixed_name
        if rotate and self.fixed_name:
            log.warning("%s has no {0} in its name, so it cannot rotate; appending to it",
                        self.directory / template)
        self.clock = clock
        self.mode = mode
        self.path: Path | None = None  # the file being written, if any
        self.files: list[Path] = []  # every file this output opened, oldest first
        self._file: BinaryIO | None = None
        self._lines = 0  # lines in the current file
        self._dir_synced = True
        self._closed = False

    def write(self, lines: Sequence[bytes]) -> None:
        if self._closed:
            raise ValueError("write to a closed FileOutput")
        start = 0
        while start < len(lines):
            f = self._file or self._open()
            room = self.max_lines - self._lines if self.rotate else len(lines) - start
            chunk = lines[start:start + room]
            for line in chunk:
                # A line with a newline inside would become two lines downstream and break
                # the line count that rotation promises: a formatter bug, caught here.
                if b"\n" in line:
                    raise ValueError(f"output line contains a newline: {line[:60]!r}")
            f.write(b"\n".join(chunk) + b"\n")
            self._lines += len(chunk)
            start += len(chunk)
            if self.rotate and self._lines >= self.max_lines:
                self._finish_file()

    def flush(self, durable: bool) -> None:
        if self._file is None:
            return
        self._file.flush()
        if durable:
            os.fsync(self._file.fileno())
            self._sync_directory()

    def close(self) -> None:
        if self._closed:
            return
        self._finish_file()
        self._closed = True

    # ------------------------------------------------------------------ files

    def _open(self) -> BinaryIO:
        self.directory.mkdir(mode=0o750, parents=True, exist_ok=True)
        if self.fixed_name:
            path = self.directory / self.template
            fd = os.open(path, _OPEN_APPEND, self.mode)
        else:
            path, fd = self._open_new(str(int(self.clock())))
        self._file = os.fdopen(fd, "ab")
        self.path = path
        self.files.append(path)
        self._lines = 0
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
            self.flush(durable=True)
        finally:
            self._file.close()
            self._file = None
            self.path = None

    def _sync_directory(self) -> None:
        if self._dir_synced:
            return
        try:
            fd = os.open(self.directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            return  # not possible on Windows; nothing better to do there
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)
        self._dir_synced = True
