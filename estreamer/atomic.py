"""Private files replaced atomically: the one way this project writes state (bookmarks,
metadata caches, status files, keys and certificates).

A reader sees the old file or the whole new one, never a torn one; the file is never
readable by others, not even for a moment (created with its final mode, not chmod-ed
later); with `durable`, the data and the rename itself survive a power cut."""

import contextlib
import os
import secrets
from pathlib import Path

TEMP_SUFFIX = ".tmp"


def temp_name(path: Path) -> Path:
    """Where `write_atomically` stages `path` (`.NAME.RANDOM.tmp` beside it), so a crash
    leftover can be recognised and removed: see `stale_temps`."""
    return path.parent / f".{path.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}"


def stale_temps(path: Path) -> list[Path]:
    """Temp files a crash between write and rename left beside `path`: never the current
    state (the rename did not happen), safe to remove."""
    prefix = f".{path.name}."
    try:
        return [p for p in path.parent.iterdir()
                if p.name.startswith(prefix) and p.name.endswith(TEMP_SUFFIX)]
    except OSError:
        return []


def write_atomically(path: Path, data: bytes, mode: int = 0o600, *, durable: bool = True) -> None:
    """Replace `path` with `data`. Raises OSError; leaves no temp file behind on failure."""
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    temp = temp_name(path)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        try:
            os.fchmod(fd, mode)  # the umask may have cleared bits of `mode` at creation
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    if durable:
        fsync_directory(directory)


def fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable (best effort where the OS cannot)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # Windows cannot open a directory; its rename is durable enough there
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a directory; nothing more to do
    finally:
        os.close(fd)
