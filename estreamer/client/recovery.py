"""Exactly once in the files, even after `kill -9`: cut the outputs back to the last commit.

The pipeline writes records to the outputs as they arrive and commits (outputs durable,
then the bookmark) about once a second. A client killed between two commits has already
written records the saved bookmark does not cover; the FMC resends them on the next start
(it streams from the bookmark), so without care they would be in the files twice.

Two ways out were possible: remember the digest of every record written since the last
commit (a second file to write per batch, racing the output itself), or make the commit
say where the outputs stood and, on start, cut them back to exactly there. We do the second:
each commit stores, next to the bookmark's timestamp and in the same atomic write, the last
file of each file output and its size. On start, `restore()` truncates that file to that
size and deletes the files the output started after it. What is cut off is exactly what
the FMC is about to send again, and it was never covered by a bookmark, so nothing that
was acknowledged is lost; the resent records are then written once.

Limits: this covers file outputs only (a line sent to stdout or over the network cannot be
taken back: those stay at-least-once); a reader that tailed a file before the cut has seen
the cut lines once already; and a file output without a recorded position (first start,
or a bookmark written by eNcore or an older version) is left as it is."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from estreamer.client.bookmark import Bookmark

log = logging.getLogger("Recovery")


def _files_of(output: Any) -> tuple[Path, str] | None:
    """(directory, template) of a file output; None for any other output."""
    directory, template = getattr(output, "directory", None), getattr(output, "template", None)
    if isinstance(directory, Path) and isinstance(template, str):
        return directory, template
    return None


def _key(directory: Path, template: str) -> str:
    return str(directory / template)


def _pattern(template: str) -> re.Pattern[str]:
    """File names the output makes from `template`: `{0}` is epoch seconds, optionally
    followed by `_NNN` for a second file in the same second (see outputs/file.py)."""
    head, _, tail = template.partition("{0}")
    return re.compile(re.escape(head) + r"(\d+)(?:_(\d+))?" + re.escape(tail) + r"\Z")


def _ordered(directory: Path, template: str) -> list[tuple[tuple[int, int], str]]:
    """The output's files, oldest first, with their sort key (start second, sequence)."""
    if "{0}" not in template:
        return [((0, 0), template)] if (directory / template).exists() else []
    pattern = _pattern(template)
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    found = []
    for name in names:
        match = pattern.match(name)
        if match:
            found.append(((int(match[1]), int(match[2] or 0)), name))
    return sorted(found)


def positions(outputs: Iterable[Any]) -> dict[str, tuple[str, int]]:
    """Where each file output stands: its newest file and that file's size. Called after
    the outputs were flushed durably, so the sizes count only durable bytes."""
    result = {}
    for output in outputs:
        files = _files_of(output)
        if files is None:
            continue
        directory, template = files
        ordered = _ordered(directory, template)
        if not ordered:
            result[_key(directory, template)] = ("", 0)
            continue
        name = ordered[-1][1]
        try:
            result[_key(directory, template)] = (name, (directory / name).stat().st_size)
        except OSError:
            continue
    return result


def restore(outputs: Iterable[Any], bookmark: Bookmark) -> int:
    """Cut every file output back to the position saved with `bookmark`; return the bytes
    removed. An output with no saved position is left alone."""
    removed = 0
    for output in outputs:
        files = _files_of(output)
        if files is None:
            continue
        directory, template = files
        saved = bookmark.outputs.get(_key(directory, template))
        if saved is None:
            continue
        name, size = saved
        ordered = _ordered(directory, template)
        keys = {n: k for k, n in ordered}
        committed_key = keys.get(name, (-1, -1)) if name else (-1, -1)
        for key, other in ordered:
            path = directory / other
            if other == name:
                removed += _truncate(path, size)
            elif key > committed_key and (name == "" or name in keys):
                # Started after the commit: it holds only records the FMC will resend.
                try:
                    removed += path.stat().st_size
                    path.unlink()
                except OSError as exc:
                    log.error("cannot remove %s, written after the last commit: %s", path, exc)
                    continue
                log.warning("Removed %s: it was started after the last bookmark commit "
                            "and its records are being resent.", path)
    return removed


def _truncate(path: Path, size: int) -> int:
    try:
        actual = path.stat().st_size
        if actual <= size:
            return 0
        with open(path, "r+b") as f:
            f.truncate(size)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        log.error("cannot cut %s back to the last commit (%d bytes): %s", path, size, exc)
        return 0
    log.warning("Cut %s back to %d bytes (from %d): the records after the last bookmark "
                "commit are being resent.", path, size, actual)
    return actual - size
