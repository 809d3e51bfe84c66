"""The bookmark: where a restart resumes the stream, saved so a crash never loses it.

File: `{host}-{port}_bookmark.dat` (eNcore's name), in the config file's directory unless
`bookmarkDirectory` says otherwise. Content, one JSON object:

    {"timestamp": 1591210934, "keys": ["9f0c…", …], "1": 1591210934}

* `timestamp` is the highest *archive* timestamp (fact sheet §3.1) of the records already
  durably written. Records without one (metadata) never move it.
* `keys` are the `record_digest`s of the records written with exactly that timestamp. The
  FMC's timestamps have one-second resolution and a restart asks for "since timestamp", so
  the last second is sent again; these keys let the client drop exactly those duplicates
  instead of either losing or repeating part of that second.
* `outputs` (optional) says how far each file output had durably written at this commit,
  as `{"<directory>/<template>": ["<file name>", <size in bytes>]}`. A client killed
  between two commits has written records the bookmark does not cover; the FMC resends
  them, so on start those bytes are cut off first (`estreamer.client.recovery`), and every
  record ends up in the files exactly once.
* `"1"` repeats the timestamp in eNcore's own layout (`{"1": t}`), so a user who goes back
  to eNcore resumes where we stopped instead of from the beginning.

We read eNcore's file too (`{"1": t}`, or `{}` which eNcore reads as 0), so a migrating user
resumes where eNcore stopped.

A corrupt file stops the client (BookmarkError) instead of being replaced. eNcore quietly
starts again from 0 in that case, which resends everything the FMC still holds (possibly
days of events, duplicated downstream); starting from "now" instead would silently lose
events. Neither is a choice to make for the user, so the message says how to choose.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from estreamer.atomic import stale_temps, write_atomically
from estreamer.errors import EstreamerError
from estreamer.protocol.records import record_digest

log = logging.getLogger("Bookmark")

_MAX_TIMESTAMP = 0xFFFFFFFF  # the protocol's timestamps are 32-bit
UNHASHED_LIMIT = 4096  # records of one second held as bytes before their digests are taken


class BookmarkError(EstreamerError):
    """The bookmark file cannot be read or written; the message says what to do."""


def bookmark_path(directory: str | os.PathLike[str], host: str, port: int) -> Path:
    """eNcore's file name for the bookmark of one FMC."""
    return Path(directory) / f"{host}-{port}_bookmark.dat"


class Bookmark:
    """The resume point of one FMC connection, in memory; `save()` makes it durable.

    The pipeline calls `advance()` for each record once it is handed to the outputs and
    `save()` only after every output has flushed durably, so the saved timestamp never runs
    ahead of what was written."""

    def __init__(self, path: str | os.PathLike[str], timestamp: int | None = None,
                 keys: Iterable[str] = (), outputs: dict[str, tuple[str, int]] | None = None):
        self.path = Path(path)
        self.timestamp = timestamp
        self._keys: set[str] = set(keys)
        # Wire bytes of records written at `timestamp` whose digests are not taken yet: in a
        # catch-up most seconds are over before the next save, and their records need no
        # digest at all; a record sent twice is still caught, by its bytes. Bounded: past
        # UNHASHED_LIMIT they are hashed on the spot.
        self._unhashed: set[bytes] = set()
        self.outputs: dict[str, tuple[str, int]] = dict(outputs or {})
        self._dirty = False

    def __repr__(self) -> str:
        return (f"Bookmark({str(self.path)!r}, timestamp={self.timestamp}, "
                f"keys={len(self._keys)})")

    @property
    def keys(self) -> frozenset[str]:
        """Digests of the records already written at `timestamp`."""
        self._settle()
        return frozenset(self._keys)

    def _settle(self) -> None:
        if self._unhashed:
            self._keys.update(map(record_digest, self._unhashed))
            self._unhashed = set()

    @property
    def dirty(self) -> bool:
        """Whether there is anything `save()` would write."""
        return self._dirty

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Bookmark | None:
        """The saved bookmark, or None when the file does not exist yet. Raises
        BookmarkError for a file that exists but cannot be understood."""
        path = Path(path)
        _remove_stale_temps(path)
        try:
            text = path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            log.info("Bookmark file %s does not exist.", path)
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise _corrupt(path, f"cannot be read ({exc})") from None
        log.info("Opening bookmark file %s.", path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            what = "is empty" if not text.strip() else f"is not valid JSON ({exc.msg})"
            raise _corrupt(path, what) from None
        timestamp, keys = _parse(path, data)
        return cls(path, timestamp, keys, _parse_outputs(path, data))

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Bookmark:
        """The saved bookmark, or a new empty one (timestamp None) when there is none."""
        return cls.load(path) or cls(path)

    # ------------------------------------------------------------------ moving

    def seen_in_last_second(self, digest: str) -> bool:
        """Whether this record was already written (it is one the FMC resent after a
        restart). The digest covers the record header, archive timestamp included, so a
        digest can only match a record of the bookmarked second."""
        self._settle()
        return digest in self._keys

    def is_duplicate(self, archive_timestamp: int | None, digest: str | None,
                     raw: bytes | None = None) -> bool:
        """`seen_in_last_second`, for callers that hold the record's timestamp too, and
        perhaps its wire bytes instead of its digest (hashed only if the digests of this
        second must be looked at: those of a saved bookmark, or past UNHASHED_LIMIT)."""
        if archive_timestamp is None or archive_timestamp != self.timestamp:
            return False
        if raw is not None:
            if raw in self._unhashed:
                return True
            if not self._keys:
                return False
            digest = record_digest(raw)
        return digest is not None and digest in self._keys

    def advance(self, archive_timestamp: int | None, digest: str | None = None,
                raw: bytes | None = None) -> None:
        """Count one written record, by its digest or by its wire bytes (`raw`: hashed only
        if this second is still the newest when the digests are needed). Only moves
        forward: an older timestamp changes nothing, the same one adds the record, a newer
        one starts a new second. Records without an archive timestamp (metadata) never move
        it: their 0 would mean "from the start"."""
        if archive_timestamp is None:
            return
        if self.timestamp is None or archive_timestamp > self.timestamp:
            self.timestamp = archive_timestamp
            self._keys = set()
            self._unhashed = set()
            self._dirty = True
        elif archive_timestamp < self.timestamp:
            return
        if raw is not None:
            self._unhashed.add(raw)
            self._dirty = True
            if len(self._unhashed) >= UNHASHED_LIMIT:
                self._settle()
        elif digest is not None and digest not in self._keys:
            self._keys.add(digest)
            self._dirty = True

    def set_outputs(self, outputs: dict[str, tuple[str, int]]) -> None:
        """Record where the file outputs stand at this commit (saved with the next save)."""
        if outputs != self.outputs:
            self.outputs = dict(outputs)
            self._dirty = True

    # ------------------------------------------------------------------ saving

    def save(self) -> None:
        """Write the bookmark so that a crash at any moment leaves either the old file or
        the new one, whole: a temp file (0600) in the same directory, fsync, rename over the
        old one, fsync the directory so the rename itself survives a power cut."""
        if not self._dirty:
            return
        data: dict[str, Any] = {"timestamp": self.timestamp, "keys": sorted(self.keys)}
        if self.outputs:
            data["outputs"] = {key: list(at) for key, at in sorted(self.outputs.items())}
        if self.timestamp is not None:
            data["1"] = self.timestamp
        payload = json.dumps(data, separators=(",", ":")).encode() + b"\n"
        try:
            write_atomically(self.path, payload)
        except OSError as exc:
            raise BookmarkError(f"cannot save bookmark {self.path}: {exc}") from None
        self._dirty = False


def _parse(path: Path, data: Any) -> tuple[int | None, list[str]]:
    if not isinstance(data, dict):
        raise _corrupt(path, "does not hold a JSON object")
    if "timestamp" in data:
        timestamp = data["timestamp"]
        keys = data.get("keys", [])
        if timestamp is not None and not _valid_timestamp(timestamp):
            raise _corrupt(path, f"has an invalid timestamp {json.dumps(timestamp)[:40]}")
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise _corrupt(path, "has a \"keys\" entry that is not a list of strings")
        return timestamp, keys
    if "1" in data:
        # eNcore's layout: {"1": t}. It has no digests, so the first second repeats once.
        timestamp = data["1"]
        if not _valid_timestamp(timestamp):
            raise _corrupt(path, f"has an invalid timestamp {json.dumps(timestamp)[:40]}")
        log.info("Bookmark file %s is eNcore's; resuming from %d.", path, timestamp)
        return timestamp, []
    if not data:
        return None, []  # eNcore reads an empty object as "no bookmark yet"
    raise _corrupt(path, "has neither \"timestamp\" nor eNcore's \"1\"")


def _parse_outputs(path: Path, data: dict[str, Any]) -> dict[str, tuple[str, int]]:
    outputs = data.get("outputs", {})
    good = isinstance(outputs, dict) and all(
        isinstance(at, list) and len(at) == 2 and isinstance(at[0], str)
        and isinstance(at[1], int) and not isinstance(at[1], bool) and at[1] >= 0
        for at in outputs.values())
    if not good:
        raise _corrupt(path, "has an \"outputs\" entry that is not {path: [file, size]}")
    return {key: (at[0], at[1]) for key, at in outputs.items()}


def _valid_timestamp(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and \
        0 <= value <= _MAX_TIMESTAMP


def _corrupt(path: Path, what: str) -> BookmarkError:
    return BookmarkError(
        f"Bookmark file {path} {what}. Not starting: guessing could resend or lose events. "
        f"To start over, move the file away and run again: the config's \"start\" then "
        f"decides (2 with no bookmark means from the oldest data the FMC has; use 1 for "
        f"'from now'). To resume from a known time, write "
        f"{{\"timestamp\": <unix seconds>, \"keys\": []}} into it.")


def _remove_stale_temps(path: Path) -> None:
    """A crash between writing the temp file and the rename leaves the temp file behind;
    it never holds the current bookmark (the rename did not happen), so drop it."""
    for temp in stale_temps(path):
        try:
            temp.unlink()
        except OSError:
            pass


