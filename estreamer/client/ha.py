"""FMC high-availability pairs: one logical FMC read from one member at a time, with
fail-over to the other and no duplicates across the switch.

Cisco's FAQ (CSCvi95944) tells eNcore users to configure only the active FMC of a pair:
both members answer eStreamer requests and hold the same events, so reading both doubles
every event in the SIEM, and reading one means losing the stream when it fails. Here a pair
(`"haPair": "<name>"` on two `subscription.servers` entries) is read from one member at a
time; the other takes over when the one being read fails.

Switch policy:

* Start on the member that wrote last (saved with the pair's dedup keys), or on the first
  listed when there is none: a restart does not move back to a member that had failed.
* Switch when the member being read fails `haFailoverAttempts` connections in a row (the
  usual backoff between them; a connection that delivered data before failing starts the
  count again), at once when it goes silent (the idle timeout: an FMC that accepts and then
  sends nothing is not going to get better by waiting for it twice), and at once on a
  failure retrying cannot fix (certificates, a refused request): the other member may have
  a good certificate.
* Never switch back on our own: the member being read stays as long as it works. An FMC
  HA role change is an operator's act, and every switch re-reads a safety window; flapping
  between two healthy members would only cost that, for nothing.
* Both members failing without data: wait with backoff before each next attempt, forever
  (like one FMC's reconnects), except when both failed in ways retrying cannot fix: then
  the run ends with the last reason.

De-duplication across a switch. The members hold the same events but each stamps its own
archive timestamps (they archive independently), so the bookmark's timestamp is in the old
member's clock and the record digests (which cover the header, archive timestamp included)
never match the new member's copies. So:

1. After a switch the new member is asked for everything since the bookmark minus
   `haSafetyWindow` seconds (default 60): its clock may be behind the old one's, and events
   the old member had not yet archived when it failed may carry an older stamp on the new.
2. Every record written is remembered by a *content key*, and a record whose key was
   already written is dropped. The key is a hash of the record type and the decoded record
   data (all fields, in wire order); the header (length, archive timestamp) is left out.
   We chose all the data over per-family identity fields (intrusion: device, event id,
   event second; connection: device, instance, counter, first packet ...) because it
   works the same for every one of the hundred-odd record types, with no table to keep in
   step with the protocol's, and because it can only err towards a duplicate, never drop a
   distinct event: two events whose every field agrees are the same event (their own
   times, ids and counters are fields). Should an FMC ever stamp some data field
   differently per member, the price is a duplicate within the window, not a loss.
3. The keys cover the records of the last two windows of archive time (the new member's
   copies can be stamped up to one window either side of the old member's), at most
   `MAX_KEYS` of them; a busier pair drops the oldest seconds first and says so once.
   They are saved beside the bookmark (`<pair>_ha.json`, temp file 0600 + fsync + rename)
   right *after* each bookmark save: a crash in between leaves keys behind the bookmark,
   which can only cause a duplicate after a switch, while keys ahead of it could drop
   records that the file outputs' cut-back (estreamer.client.recovery) then removes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import random
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from estreamer.atomic import write_atomically
from estreamer.client.bookmark import Bookmark, BookmarkError
from estreamer.client.runner import (
    ClosedBeforeAnswer,
    FatalRunError,
    MonitorSnapshot,
    Runner,
    RunResult,
    ServerSilent,
    close_pipeline,
)
from estreamer.errors import OutputError
from estreamer.pipeline import Pipeline
from estreamer.protocol.flags import TIMESTAMP_NOW
from estreamer.protocol.records import Record

log = logging.getLogger("HA")

MAX_KEYS = 300_000
"""Most content keys kept (about 25 MB): two 60 s windows at 2,500 events/sec. Above it
the oldest seconds go first and the window that can be de-duplicated shrinks."""
FORMAT = 1


def pair_file(directory: str | os.PathLike[str], name: str, what: str) -> Path:
    """A pair's file beside the bookmarks: `<pair>_bookmark.dat`, `<pair>_metadata.json`,
    `<pair>_ha.json` (lone FMCs use `<host>-<port>_…`)."""
    return Path(directory) / f"{name}_{what}"


def content_key(record: Record) -> int:
    """The record's identity without its header: type and decoded data. Decoded rather
    than wire bytes so that the keys in a pair's ha.json keep their meaning; the decoded
    fields are in wire order, so equal data gives equal keys on both members."""
    head = record.record_type.to_bytes(4, "big") + record.netmap_id.to_bytes(2, "big")
    data = _fields_json(record)
    return int.from_bytes(hashlib.blake2b(head + data, digest_size=8).digest(), "big")


_HEADER = ("record_type", "record_name", "archive_timestamp")


def _fields_json(record: Record) -> bytes:
    """orjson's text of `record.fields`. Where the decoder made the event dict (header keys
    first, then the fields), it is the event's text with the header's cut off the front:
    working out `fields` apart would cost more than the rest of the key (tests/test_ha.py
    holds the two equal)."""
    event = record.decoded_event
    if event is None:
        return orjson.dumps(record.fields, option=orjson.OPT_NON_STR_KEYS, default=repr)
    header = {key: event[key] for key in _HEADER if key in event}
    whole = orjson.dumps(event, option=orjson.OPT_NON_STR_KEYS, default=repr)
    cut = len(orjson.dumps(header))  # the header's text, its "}" standing for the next ","
    return b"{" + whole[cut:] if len(whole) > cut else b"{}"


class RecentKeys:
    """The content keys of the records written in the last two safety windows of archive
    time, by second, and which member wrote last; persisted as `<pair>_ha.json`."""

    def __init__(self, path: str | os.PathLike[str], window: float, max_keys: int = MAX_KEYS):
        self.path = Path(path)
        self.window = window
        self.max_keys = max_keys
        self.writer: str | None = None  # "host:port" of the member that wrote last
        self._seconds: dict[int, list[int]] = {}
        self._keys: set[int] = set()
        self._newest: int | None = None
        self._dirty = False
        self._warned = False

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: int) -> bool:
        return key in self._keys

    def add(self, second: int, key: int) -> None:
        if key in self._keys:
            return
        self._keys.add(key)
        self._seconds.setdefault(second, []).append(key)
        self._dirty = True
        if self._newest is None or second > self._newest:
            self._newest = second
            self._prune()
        elif len(self._keys) > self.max_keys:
            self._prune()

    def _prune(self) -> None:
        assert self._newest is not None
        # Two windows: the new member's copy of a record may be stamped up to one window
        # after or before the old member's (see the module doc).
        oldest = self._newest - int(2 * self.window)
        for second in sorted(self._seconds):
            if second >= oldest and len(self._keys) <= self.max_keys:
                break
            if second >= oldest and not self._warned:
                self._warned = True
                log.warning("More than %d events in two HA safety windows (%g s): only the "
                            "last %d s are de-duplicated after a switch.", self.max_keys,
                            self.window, self._newest - second)
            self._keys.difference_update(self._seconds.pop(second))

    # -- the file -----------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str], window: float,
             max_keys: int = MAX_KEYS) -> RecentKeys:
        """The saved keys, or none when there is no file. An unreadable file is refused
        like a corrupt bookmark: ignoring it could duplicate a window's worth of events."""
        recent = cls(path, window, max_keys)
        try:
            data = json.loads(recent.path.read_text())
            writer = data["writer"]
            seconds = {int(s): _unpack(v) for s, v in data["seconds"].items()}
            if data.get("format") != FORMAT or not (writer is None or isinstance(writer, str)):
                raise ValueError("unknown layout")
        except FileNotFoundError:
            return recent
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BookmarkError(
                f"HA dedup file {recent.path} cannot be used ({exc}). Not starting: after a "
                f"switch between the pair's FMCs it says which events were written already. "
                f"Move it away to go on without it (events of the last "
                f"{recent.window:g} s may then be written twice after a switch).") from None
        recent.writer = writer
        for second, keys in sorted(seconds.items()):
            for key in keys:
                recent.add(second, key)
        recent._dirty = False
        return recent

    def save(self) -> None:
        """Atomically and privately, like the bookmark (estreamer.atomic)."""
        if not self._dirty:
            return
        payload = orjson.dumps({
            "format": FORMAT, "writer": self.writer, "window": self.window,
            "seconds": {str(s): _pack(k) for s, k in sorted(self._seconds.items())},
        })
        try:
            write_atomically(self.path, payload)
        except OSError as exc:
            raise BookmarkError(f"cannot save HA dedup file {self.path}: {exc}") from None
        self._dirty = False


def _pack(keys: list[int]) -> str:
    return base64.b64encode(b"".join(k.to_bytes(8, "big") for k in keys)).decode()


def _unpack(text: str) -> list[int]:
    raw = base64.b64decode(text, validate=True)
    if len(raw) % 8:
        raise ValueError("a key list is not a whole number of keys")
    return [int.from_bytes(raw[i:i + 8], "big") for i in range(0, len(raw), 8)]


class PairBookmark(Bookmark):
    """The pair's bookmark; saving it saves the dedup keys right after (see module doc)."""

    recent: RecentKeys

    def save(self) -> None:
        super().save()
        self.recent.save()


class Active:
    """Which member is being read, for the events' `fmc_member` tag."""

    def __init__(self, label: str):
        self.label = label


class MemberPipeline:
    """What one member's Runner streams into: the pair's pipeline behind a content-key
    check. `close()` only commits: the outputs outlive any one member."""

    def __init__(self, pipeline: Pipeline, recent: RecentKeys, member: str):
        self._pipeline = pipeline
        self._recent = recent
        self._member = member

    def handle(self, record: Record) -> bool:
        second = record.archive_timestamp
        if second is None:  # metadata: resent on every connection, written every time
            return self._pipeline.handle(record)
        key = content_key(record)
        recent = self._recent
        if key in recent:
            stats = self._pipeline.stats
            stats.received += 1
            stats.duplicates += 1
            return False
        handled = self._pipeline.handle(record)
        recent.add(second, key)
        recent.writer = self._member
        return handled

    def close(self) -> None:
        self._pipeline.commit()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipeline, name)


RunnerFactory = Callable[[int, MemberPipeline, int], Runner]
"""(member index, its pipeline, initial timestamp) → a Runner for one connection."""


class HaRunner:
    """Streams one HA pair: one Runner (one connection) at a time, on one member."""

    def __init__(
        self,
        *,
        name: str,
        members: Sequence[str],
        pipeline: Pipeline,
        recent: RecentKeys,
        make_runner: RunnerFactory,
        start_timestamp: int,
        active: Active,
        window: float,
        failover_attempts: int,
        first_retry_delay: float,
        max_retry_delay: float,
        stop: threading.Event | None = None,
        rng: random.Random | None = None,
    ):
        self.name = name
        self.members = tuple(members)
        self.pipeline = pipeline
        self.recent = recent
        self.make_runner = make_runner
        self.start_timestamp = start_timestamp
        self.active = active
        self.window = window
        self.failover_attempts = failover_attempts
        self.first_retry_delay = first_retry_delay
        self.max_retry_delay = max(max_retry_delay, first_retry_delay)
        self.stop = stop or threading.Event()
        self.rng = rng or random.Random()
        self.monitor_details = False
        self.on_report: Callable[[MonitorSnapshot], None] | None = None
        self.switches = 0
        self.index = self.members.index(recent.writer) if recent.writer in self.members else 0
        self.active.label = self.members[self.index]
        self._now_epoch: int | None = None
        self._floor: int | None = None  # resume point while a switch's window is read
        self._switched_at: int | None = None  # the bookmark when the switch happened
        self._runner = self._stint(self._first_timestamp())  # a runner to snapshot early

    # -- where to resume ----------------------------------------------------------------------

    def _first_timestamp(self) -> int:
        bookmarked = self.pipeline.bookmark.timestamp
        if bookmarked is not None and self.recent.writer not in (None, self.active.label):
            # The other member wrote last (it is listed in the file but the run starts
            # here): the bookmark is in its clock, so read the window as after a switch.
            return self._open_window(bookmarked)
        if self.start_timestamp == TIMESTAMP_NOW:
            self._now_epoch = int(time.time())
        return self.start_timestamp

    def _open_window(self, bookmarked: int) -> int:
        self._floor = max(0, bookmarked - int(self.window))
        self._switched_at = bookmarked
        log.info("HA pair %s: reading %s from %d, the bookmark %d minus the safety window "
                 "of %g s; records already written are dropped by content.", self.name,
                 self.active.label, self._floor, bookmarked, self.window)
        return self._floor

    def _resume(self) -> int:
        """A reconnect to the same member: the bookmark, or the switch's window while it
        has not been read past (a failure inside it must not skip the rest of it)."""
        bookmarked = self.pipeline.bookmark.timestamp
        if self._floor is not None and self._switched_at is not None and (
                bookmarked is None or bookmarked <= self._switched_at):
            return self._floor
        self._floor = None
        if bookmarked is not None:
            return bookmarked
        return self._now_epoch if self._now_epoch is not None else self.start_timestamp

    # -- the loop -----------------------------------------------------------------------------

    def _stint(self, initial: int) -> Runner:
        member = MemberPipeline(self.pipeline, self.recent, self.members[self.index])
        runner = self.make_runner(self.index, member, initial)
        runner.monitor_details = self.monitor_details
        runner.on_report = self.on_report
        runner.max_retries = 0  # every failure comes back here: this loop retries
        return runner

    def _backoff(self, failures: int) -> float:
        nominal = min(self.max_retry_delay,
                      self.first_retry_delay * 2.0 ** min(failures - 1, 16))
        return nominal * self.rng.uniform(0.5, 1.0)

    def run(self, max_records: int | None = None, duration: float | None = None,
            stop_when_idle: float | None = None) -> RunResult:
        """Like Runner.run, for the pair (same arguments, one result for the whole run)."""
        started = time.monotonic()
        deadline = None if duration is None else started + duration
        connections = 0
        reason = "stopped"
        failures = 0  # failed connections in a row to the member being read
        quiet = 0  # failed connections in a row without data, whichever member
        failed: set[int] = set()  # members that failed since data last came
        unfixable: set[int] = set()  # members whose last failure retrying cannot fix
        runner = self._runner
        try:
            while not self.stop.is_set():
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                self._runner = runner
                try:
                    reason = runner.run(max_records, left, stop_when_idle).reason
                    connections += runner.connections
                    break
                except FatalRunError as exc:
                    connections += runner.connections
                    cause = exc.__cause__
                    if isinstance(cause, OutputError | BookmarkError):
                        raise  # the outputs' or the disk's trouble: no member can fix it
                    here = self.members[self.index]
                    if runner.streamed:
                        failures, quiet = 1, 0
                        failed.clear()
                        unfixable.clear()
                    else:
                        failures += 1
                        quiet += 1
                    failed.add(self.index)
                    if _unfixable(exc):
                        unfixable.add(self.index)
                        if len(unfixable) == len(self.members):
                            raise
                    switch = (self.index in unfixable or failures >= self.failover_attempts
                              or isinstance(cause, ServerSilent | ClosedBeforeAnswer))
                    if not switch:
                        delay = self._backoff(failures)
                        log.error("%s: %s. Reconnect attempt %d in %.1f s.", here,
                                  str(exc).rstrip("."), failures, delay)
                        if self.stop.wait(delay):
                            break
                        runner = self._stint(self._resume())
                        continue
                    other = (self.index + 1) % len(self.members)
                    log.warning("HA pair %s: %s failed (%s); switching to %s.", self.name,
                                here, str(exc).rstrip("."), self.members[other])
                    if other in failed:  # both down: do not hammer them in turn
                        delay = self._backoff(quiet)
                        log.error("HA pair %s: both FMCs failed; next attempt in %.1f s.",
                                  self.name, delay)
                        if self.stop.wait(delay):
                            break
                    self.index, failures = other, 0
                    self.active.label = self.members[other]
                    self.switches += 1
                    bookmarked = self.pipeline.bookmark.timestamp
                    runner = self._stint(self._open_window(bookmarked) if bookmarked is not None
                                         else self._resume())
        except BaseException:
            close_pipeline(self.pipeline, failing=True)
            raise
        close_pipeline(self.pipeline, failing=False)
        stats = self.pipeline.stats
        return RunResult(stats.received, stats.written, stats.duplicates,
                         time.monotonic() - started, connections, reason)

    def snapshot(self, now: float | None = None) -> MonitorSnapshot:
        return self._runner.snapshot(now)


def _unfixable(exc: FatalRunError) -> bool:
    """A failure a retry of the same member cannot fix: no cause (a refused request), or a
    TLS failure other than a close (certificates, CAs, versions). A close before any answer
    (how an FMC refuses a certificate CN, but also how a restart can look) switches at once
    but never ends the run."""
    cause = exc.__cause__
    if cause is None:
        return True
    return isinstance(cause, ssl.SSLError) and not isinstance(
        cause, ssl.SSLEOFError | ssl.SSLZeroReturnError)
