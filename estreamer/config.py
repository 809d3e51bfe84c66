"""Reading an eNcore `estreamer.conf` into typed, frozen settings.

Existing eNcore users point `estreamer run -c estreamer.conf` at the file they already have, so
this module reads eNcore's JSON layout as it is: the same keys, the same defaults (eNcore's
`default.conf`), the `@comment` keys ignored. Where we differ from eNcore, on purpose:

* Relative paths (`pkcs12Filepath`, `logging.filepath`, `relfile://` outputs, the bookmark
  directory) resolve against the directory of the config file, not the current directory.
  eNcore resolves them against its working directory, which its `encore.sh` sets to the folder
  that holds `estreamer.conf`, so for a stock install the two agree; ours also works when the
  client is started from anywhere else (systemd, cron).
* eNcore silently ignores keys it does not read and falls back to INFO on a misspelt level.
  We never ignore silently: keys eNcore knows that we do not implement yet are listed in
  `Settings.unsupported`, keys nobody knows (typos) in `Settings.unknown`, and a value of the
  wrong type or out of range is a `ConfigError` naming the file and the key.
* Missing keys take eNcore's `default.conf` value where eNcore would have crashed with a
  KeyError, so a short hand-written config works too. Only the server's `host` is required.

Our additions, all optional and all ignored by eNcore (so a file stays usable by both):
`subscription.servers[].caFilepath`, `.verifyServer`, `.pkcs12PasswordFile`,
`.allowReadableKeyFiles`, the top-level `bookmarkDirectory`, the reconnect timings
`reconnectDelay`, `maxReconnectDelay` and `idleTimeout` (eNcore has fixed ones),
`handler.deadLetter`, and FMC high-availability pairs: `subscription.servers[].haPair`
with the top-level `haSafetyWindow` and `haFailoverAttempts`.

An HA pair is two `servers` entries with the same `"haPair": "<name>"`. We chose a flag on
each entry over a `"standby": {...}` object nested in the active's entry because both
members are whole servers (each may have its own certificate, CA, password file), because
which one is active changes over the pair's life (an FMC HA role switch), and because a
flat list keeps `servers[i]` meaning the same thing in every message. The entry listed
first is read first. The name must be unique, name exactly two entries, and be usable in a
file name: the pair's bookmark, metadata cache and dedup keys are named after it.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import stat
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from estreamer.errors import ConfigError
from estreamer.protocol.flags import TIMESTAMP_NOW, TIMESTAMP_OLDEST, RequestFlags

log = logging.getLogger("Settings")  # eNcore's logger name, kept for log searches

PASSWORD_ENV = "ESTREAMER_PKCS12_PASSWORD"

# eNcore's two extra log levels (its crossprocesslogging module), below DEBUG.
VERBOSE = 5
TRACE = 1
LOG_LEVELS: Mapping[str, int] = MappingProxyType({
    "FATAL": logging.CRITICAL,
    "CRITICAL": logging.CRITICAL,
    "ERROR": logging.ERROR,
    "WARNING": logging.WARNING,
    "WARN": logging.WARNING,
    "INFO": logging.INFO,
    "DEBUG": logging.DEBUG,
    "VERBOSE": VERBOSE,
    "TRACE": TRACE,
})

START_GENESIS, START_NOW, START_BOOKMARK = 0, 1, 2

ENCORE_ADAPTERS = frozenset({
    "base64", "binary", "binstr", "ccad", "cef", "cef2", "csv", "ecs", "json", "kvpair",
    "netwitness", "ocsf", "popo", "pretty", "splunk",
})
"""Every adapter name some eNcore release accepts (and our `ecs`); another name is a typo."""
SUPPORTED_ADAPTERS = frozenset({"json", "splunk", "cef", "ecs"})
"""The eNcore adapters this project formats. The rest are reported as unsupported."""

DEFAULT_OUTPUT_URI = "relfile:///data/json/encore.{0}.json"
# eNcore's log line layout, kept so existing log parsers go on working.
DEFAULT_LOG_FORMAT = "%(asctime)s %(name)-12s %(levelname)-8s %(message)s"


# --------------------------------------------------------------------------- the settings


@dataclass(frozen=True, slots=True)
class Server:
    """One `subscription.servers[]` entry. eNcore used only the first; `estreamer run`
    streams from all of them at once, each with its own session, bookmark and cache."""

    host: str
    port: int = 8302
    pkcs12_filepath: Path = Path("client.pkcs12")
    tls_version: str = "1.2"
    ca_filepath: Path | None = None  # None: trust the CA that signed the PKCS#12's cert
    verify_server: bool = True
    pkcs12_password_file: Path | None = None
    # Start even when the PKCS#12 or the password file is readable by other users.
    allow_readable_key_files: bool = False
    index: int = 0  # position in the list, to name the entry in messages
    ha_pair: str | None = None  # `haPair`: the HA pair this FMC is a member of

    @property
    def label(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def key_path(self) -> str:
        return f"subscription.servers[{self.index}]"


HA_SAFETY_WINDOW = 60.0
"""Default `haSafetyWindow`, seconds: how far before the bookmark a switch to the other
member of an HA pair resumes (see estreamer.client.ha)."""
HA_FAILOVER_ATTEMPTS = 3
"""Default `haFailoverAttempts`: failed connections in a row before switching members."""
_PAIR_NAME = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


@dataclass(frozen=True, slots=True)
class HaPair:
    """Two `servers` entries flagged with one `haPair` name: one logical FMC, read from one
    member at a time, with one bookmark, cache and set of files (estreamer.client.ha)."""

    name: str
    members: tuple[Server, Server]  # config order: the first is read first

    @property
    def label(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class SubscriptionRecords:
    """`subscription.records`: what to ask the FMC for (the request flags)."""

    archive_timestamps: bool = True
    event_extra_data: bool = True
    extended: bool = True
    impact_event_alerts: bool = True
    intrusion: bool = True
    metadata: bool = True
    packet_data: bool = True


@dataclass(frozen=True, slots=True)
class RecordFilter:
    """`handler.records`: which received records are written. `exclude` beats `include`,
    which beats the family switches (eNcore's order)."""

    connections: bool = True
    core: bool = True
    intrusion: bool = True
    metadata: bool = True
    packets: bool = True
    rna: bool = True
    rua: bool = True
    include: tuple[int, ...] = ()
    exclude: tuple[int, ...] = ()


FSYNC_POLICIES = ("commit", "never")  # a file stream's `fsync` option


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """`handler.outputters[].stream.options` for file streams."""

    # Lines per file before rotating; None (only when maxBytes is given without maxLogs):
    # rotate by size alone.
    max_logs: int | None = 10000
    rotate: bool = True
    max_bytes: int | None = None  # bytes per file before rotating
    compress: bool = False  # gzip finished files
    fsync: str = "commit"  # "commit": fsync before each bookmark save; "never"
    # Options of network streams (syslog, HEC), checked by estreamer.outputs.open_output.
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class Outputter:
    """One `handler.outputters[]` entry: a format (eNcore calls it adapter) and a stream."""

    adapter: str
    uri: str
    enabled: bool = True
    options: StreamOptions = StreamOptions()
    index: int = 0


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    filepath: Path | None = None  # None: no log file
    format: str = DEFAULT_LOG_FORMAT  # a %-format, or "json": one JSON object per line
    level: str = "INFO"  # canonical upper-case name, a key of LOG_LEVELS
    std_out: bool = True
    std_err: bool = False

    @property
    def level_number(self) -> int:
        return LOG_LEVELS[self.level]


@dataclass(frozen=True, slots=True)
class MonitorSettings:
    """What the periodic status line reports, every `period` seconds."""

    period: int = 120
    handled: bool = True
    bookmark: bool = False
    subscribed: bool = False
    velocity: bool = False
    details: bool = False


@dataclass(frozen=True, slots=True)
class Settings:
    path: Path  # the config file, absolute
    servers: tuple[Server, ...]
    records: SubscriptionRecords = SubscriptionRecords()
    start: int = START_BOOKMARK
    response_timeout: float = 2.0
    connect_timeout: float = 10.0
    outputters: tuple[Outputter, ...] = ()
    filter: RecordFilter = RecordFilter()
    logging: LoggingSettings = LoggingSettings()
    monitor: MonitorSettings = MonitorSettings()
    # Processes that decode, decorate and format (estreamer.parallel); 1: the runner's own.
    worker_processes: int = 1
    enabled: bool = True
    bookmark_directory: Path | None = None  # None: the config file's directory
    # Reconnecting (see estreamer.client.runner): the first wait after a failure, the
    # longest wait (both before jitter), and how long a connection may bring no byte at
    # all before it is dropped (None: IDLE_READS × responseTimeout).
    reconnect_delay: float = 2.0
    max_reconnect_delay: float = 60.0
    idle_timeout: float | None = None
    # A file (0600) receiving one JSON line per malformed record, hex included; None: off.
    dead_letter: Path | None = None
    # HA pairs: resume this far before the bookmark after switching members, and switch
    # after this many failed connections in a row (a silent FMC switches at once).
    ha_safety_window: float = HA_SAFETY_WINDOW
    ha_failover_attempts: int = HA_FAILOVER_ATTEMPTS
    unsupported: tuple[str, ...] = ()  # dotted paths of keys eNcore knows and we do not do
    unknown: tuple[str, ...] = ()  # dotted paths of keys nobody knows (typos)
    # why, for each unsupported path that has a reason worth telling
    notes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def base_dir(self) -> Path:
        """Where relative paths in the file point from."""
        return self.path.parent

    @property
    def server(self) -> Server:
        """The server eNcore (and we) connect to: the first."""
        return self.servers[0]

    @property
    def fmcs(self) -> tuple[Server | HaPair, ...]:
        """The logical FMCs to stream from, in config order: each lone server, and each HA
        pair once (where its first member is listed)."""
        out: list[Server | HaPair] = []
        placed: set[str] = set()
        for server in self.servers:
            if server.ha_pair is None:
                out.append(server)
            elif server.ha_pair not in placed:
                placed.add(server.ha_pair)
                first, second = (s for s in self.servers if s.ha_pair == server.ha_pair)
                out.append(HaPair(server.ha_pair, (first, second)))
        return tuple(out)

    @property
    def enabled_outputters(self) -> tuple[Outputter, ...]:
        return tuple(o for o in self.outputters if o.enabled)

    def bookmark_dir(self) -> Path:
        return self.bookmark_directory or self.base_dir

    def request_flags(self) -> RequestFlags:
        """The Event Stream Request's flag word, built from `subscription.records` the way
        eNcore builds it (fact sheet §3.2): the stock config gives 0x48900061."""
        r = self.records
        flags = RequestFlags(0)
        for on, flag in (
            (r.packet_data, RequestFlags.PACKETS),
            (r.impact_event_alerts, RequestFlags.IMPACT_ALERTS),
            (r.intrusion, RequestFlags.INTRUSION),
            (r.metadata, RequestFlags.METADATA),
            (r.archive_timestamps, RequestFlags.ARCHIVE_TIMESTAMPS),
            (r.event_extra_data, RequestFlags.EXTRA_DATA),
            (r.extended, RequestFlags.EXTENDED),
        ):
            if on:
                flags |= flag
        return flags

    def initial_timestamp(self, bookmark: int | None) -> int:
        """The request's initial timestamp for `start`: 0 → oldest, 1 → now, 2 → the
        bookmark (0, i.e. oldest, when there is none yet). Logs eNcore's line for it."""
        if self.start == START_GENESIS:
            log.info("Timestamp: Start = 0 (Oldest data available)")
            return TIMESTAMP_OLDEST
        if self.start == START_NOW:
            log.info("Timestamp: Start = 1 (Current data)")
            return TIMESTAMP_NOW
        value = bookmark or 0
        log.info("Timestamp: Start = 2 (Bookmark = %d)", value)
        return value

    def report_lines(self) -> list[str]:
        """One sentence per key we will not act on, for the caller to log once at start."""
        lines = [f"{self.path}: {p} is not supported yet and has no effect"
                 + (f" ({self.notes[p]})" if self.notes.get(p) else "")
                 for p in self.unsupported]
        lines += [f"{self.path}: unknown key {p} (a typo?) is ignored" for p in self.unknown]
        return lines


# --------------------------------------------------------------------------- reading

_MISSING: Any = object()

# Keys some eNcore release reads that we do not implement, with the reason users see.
_UNSUPPORTED_TOP = {
    "queueSize": "eNcore's inter-process queue size; estreamer sizes its own buffers",
    "batchSize": "eNcore's inter-process batch size; estreamer sizes its own batches",
    "alwaysAttemptToContinue": "",
    "conditions": "eNcore's run conditions",
    "pcapMaxSize": "",
    "pcapOutputFormat": "",
}
_UNSUPPORTED_RECORDS = {
    "packetEncoding": "packet payloads are written hex-encoded",
    "includeOriginalPacket": "",
    # Appears in Cisco's published examples; eNcore itself never reads it either.
    "connection": "eNcore ignores it too: connection events come with the extended request",
}
_UNSUPPORTED_OUTPUTTER = {"passthru": "every record is decoded"}
_UNSUPPORTED_OPTIONS = {
    "scpKeyFilepath": "", "s3": "", "region": "", "awssource": "", "accountId": "",
}


class _Reader:
    """Walks the JSON once, type-checking each key it is asked for and remembering which keys
    it saw, so the leftovers can be sorted into unsupported and unknown."""

    def __init__(self, file: Path):
        self.file = file
        self.unsupported: list[str] = []
        self.unknown: list[str] = []
        self.notes: dict[str, str] = {}

    def fail(self, path: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.file}: {path}: {problem}")

    def section(self, data: Any, path: str) -> _Section:
        if not isinstance(data, dict):
            raise self.fail(path or "(top level)", f"expected an object, got {_show(data)}")
        return _Section(self, data, path)

    def flag_unsupported(self, path: str, why: str = "") -> None:
        self.unsupported.append(path)
        if why:
            self.notes[path] = why


class _Section:
    def __init__(self, reader: _Reader, data: dict[str, Any], path: str):
        self.reader, self.data, self.path, self.seen = reader, data, path, set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def raw(self, name: str) -> Any:
        self.seen.add(name)
        return self.data.get(name, _MISSING)

    def get(self, name: str, check: Callable[[Any], Any], default: Any = _MISSING) -> Any:
        value = self.raw(name)
        if value is _MISSING:
            if default is _MISSING:
                raise self.reader.fail(self.key(name), "is required")
            return default
        try:
            return check(value)
        except _Bad as bad:
            raise self.reader.fail(self.key(name), str(bad)) from None

    def sub(self, name: str, required: bool = False) -> _Section:
        value = self.raw(name)
        if value is _MISSING:
            if required:
                raise self.reader.fail(self.key(name), "is required")
            value = {}
        return self.reader.section(value, self.key(name))

    def finish(self, unsupported: Mapping[str, str] = MappingProxyType({})) -> None:
        for name in self.data:
            if name in self.seen or name.endswith("@comment"):
                continue  # "@comment", "lev@comment", ...: eNcore's way to annotate JSON
            if name in unsupported:
                self.reader.flag_unsupported(self.key(name), unsupported[name])
            else:
                self.reader.unknown.append(self.key(name))


class _Bad(ValueError):
    """A value check failed; the reader adds the file and key."""


def _show(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _bool(value: Any) -> bool:
    # JSON true/false only: a quoted "false" would be truthy in eNcore, a classic trap.
    if not isinstance(value, bool):
        raise _Bad(f"expected true or false, got {_show(value)}")
    return value


def _int(lo: int, hi: int | None = None) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Bad(f"expected a whole number, got {_show(value)}")
        if value < lo or (hi is not None and value > hi):
            bounds = f"from {lo} to {hi}" if hi is not None else f"of at least {lo}"
            raise _Bad(f"expected a whole number {bounds}, got {value}")
        return value
    return check


def _choice(allowed: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in allowed:
            raise _Bad(f"expected one of {', '.join(map(json.dumps, allowed))}, "
                       f"got {_show(value)}")
        return value
    return check


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise _Bad(f"expected a number of seconds above 0, got {_show(value)}")
    return float(value)


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Bad(f"expected a non-empty string, got {_show(value)}")
    return value


def _record_types(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise _Bad(f"expected a list of record type numbers, got {_show(value)}")
    check = _int(0, 0xFFFF)
    try:
        return tuple(check(v) for v in value)
    except _Bad as bad:
        raise _Bad(f"expected a list of record type numbers: {bad}") from None


def _start(value: Any) -> int:
    if isinstance(value, bool) or value not in (0, 1, 2):
        raise _Bad(f"expected 0 (genesis), 1 (now) or 2 (bookmark), got {_show(value)}")
    return int(value)


def _tls_version(value: Any) -> str:
    # eNcore writes it as a JSON number (1.2); accept the string form too.
    # str(float()) rather than a rounding format, so that 1.25 is refused, not read as 1.2.
    text = str(float(value)) if isinstance(value, int | float) and not isinstance(value, bool) \
        else str(value).strip()
    if text not in ("1.0", "1.1", "1.2", "1.3"):
        raise _Bad(f"expected 1.0, 1.1, 1.2 or 1.3, got {_show(value)}")
    return text


def _level(value: Any) -> str:
    name = value.strip().upper() if isinstance(value, str) else None
    if name not in LOG_LEVELS:
        raise _Bad(f"expected one of FATAL, ERROR, WARNING, INFO, DEBUG, VERBOSE, TRACE, "
                   f"got {_show(value)}")
    return name


def _path(base: Path) -> Callable[[Any], Path]:
    def check(value: Any) -> Path:
        p = Path(_text(value)).expanduser()
        return p if p.is_absolute() else base / p
    return check


def _uri(value: Any) -> str:
    text = _text(value)
    if "://" not in text:
        raise _Bad(f"expected a URI such as {DEFAULT_OUTPUT_URI}, got {_show(value)}")
    return text


def _file_target(base: Path) -> Callable[[Any], Path]:
    """A file named like an output (`relfile:///data/x.log`, relative to the config's
    directory; `file:///var/log/x.log`) or as a plain path."""
    def check(value: Any) -> Path:
        text = _text(value)
        scheme, sep, rest = text.partition("://")
        if not sep:
            return _path(base)(text)
        if scheme.lower() == "relfile":
            return base / rest.lstrip("/")
        if scheme.lower() == "file":
            return Path(rest if rest.startswith("/") else "/" + rest)
        raise _Bad(f"expected a path, relfile:///… or file:///…, got {_show(value)}")
    return check


def load_config(path: str | os.PathLike[str]) -> Settings:
    """Read an eNcore-style `estreamer.conf`. Raises ConfigError (one line, naming the file
    and the key) when the file cannot be used as written."""
    file = Path(path).expanduser().absolute()
    try:
        text = file.read_text(encoding="utf-8-sig")  # -sig: Windows editors add a BOM
    except FileNotFoundError:
        raise ConfigError(f"{file}: config file does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read config file: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{file}: not valid JSON: {exc.msg} at line {exc.lineno} "
                          f"column {exc.colno}") from None
    return settings_from_dict(data, file)


def settings_from_dict(data: Any, file: Path) -> Settings:
    """Build Settings from already-parsed JSON; `file` names it in messages and is where
    relative paths resolve from."""
    reader = _Reader(file)
    base = file.parent
    top = reader.section(data, "")

    sub = top.sub("subscription", required=True)
    servers_raw = sub.raw("servers")
    if not isinstance(servers_raw, list) or not servers_raw:
        raise reader.fail("subscription.servers", "expected a list with at least one server")
    servers = tuple(_read_server(reader, s, i, base) for i, s in enumerate(servers_raw))
    seen: dict[tuple[str, int], str] = {}
    for server in servers:
        key = (server.host, server.port)
        if key in seen:
            # Two runners on one FMC would share a bookmark file and duplicate every event.
            raise reader.fail(server.key_path, f"{server.host}:{server.port} is already "
                              f"listed as {seen[key]}")
        seen[key] = server.key_path
    _check_pairs(reader, servers)

    rec = sub.sub("records")
    records = SubscriptionRecords(
        archive_timestamps=rec.get("archiveTimestamps", _bool, True),
        event_extra_data=rec.get("eventExtraData", _bool, True),
        extended=rec.get("extended", _bool, True),
        impact_event_alerts=rec.get("impactEventAlerts", _bool, True),
        intrusion=rec.get("intrusion", _bool, True),
        metadata=rec.get("metadata", _bool, True),
        packet_data=rec.get("packetData", _bool, True),
    )
    rec.finish(_UNSUPPORTED_RECORDS)
    sub.finish()

    handler = top.sub("handler")
    outputters_raw = handler.get("outputters", lambda v: v, [])
    if not isinstance(outputters_raw, list):
        raise reader.fail("handler.outputters", f"expected a list, got {_show(outputters_raw)}")
    outputters = tuple(_read_outputter(reader, o, i) for i, o in enumerate(outputters_raw))
    hr = handler.sub("records")
    record_filter = RecordFilter(
        connections=hr.get("connections", _bool, True),
        core=hr.get("core", _bool, True),
        intrusion=hr.get("intrusion", _bool, True),
        metadata=hr.get("metadata", _bool, True),
        packets=hr.get("packets", _bool, True),
        rna=hr.get("rna", _bool, True),
        rua=hr.get("rua", _bool, True),
        include=hr.get("include", _record_types, ()),
        exclude=hr.get("exclude", _record_types, ()),
    )
    hr.finish()
    dead_letter = handler.get("deadLetter", _file_target(base), None)
    handler.finish()

    lg = top.sub("logging")
    logging_settings = LoggingSettings(
        # eNcore treats an empty filepath as "no log file".
        filepath=(None if lg.raw("filepath") in ("", None, _MISSING)
                  else lg.get("filepath", _path(base))),
        format=lg.get("format", _text, DEFAULT_LOG_FORMAT),
        level=lg.get("level", _level, "INFO"),
        std_out=lg.get("stdOut", _bool, True),
        std_err=lg.get("stdErr", _bool, False),
    )
    lg.finish()

    mon = top.sub("monitor")
    monitor = MonitorSettings(
        period=mon.get("period", _int(1), 120),
        handled=mon.get("handled", _bool, True),
        bookmark=mon.get("bookmark", _bool, False),
        subscribed=mon.get("subscribed", _bool, False),
        velocity=mon.get("velocity", _bool, False),
        details=mon.get("details", _bool, False),
    )
    mon.finish()

    settings = Settings(
        path=file,
        servers=servers,
        records=records,
        start=top.get("start", _start, START_BOOKMARK),
        response_timeout=top.get("responseTimeout", _seconds, 2.0),
        connect_timeout=top.get("connectTimeout", _seconds, 10.0),
        outputters=outputters,
        filter=record_filter,
        logging=logging_settings,
        monitor=monitor,
        worker_processes=top.get("workerProcesses", _int(1, 64), 1),
        enabled=top.get("enabled", _bool, True),
        bookmark_directory=top.get("bookmarkDirectory", _path(base), None),
        reconnect_delay=top.get("reconnectDelay", _seconds, 2.0),
        max_reconnect_delay=top.get("maxReconnectDelay", _seconds, 60.0),
        idle_timeout=top.get("idleTimeout", _seconds, None),
        dead_letter=dead_letter,
        ha_safety_window=top.get("haSafetyWindow", _seconds, HA_SAFETY_WINDOW),
        ha_failover_attempts=top.get("haFailoverAttempts", _int(1, 100), HA_FAILOVER_ATTEMPTS),
        unsupported=(),
        unknown=(),
    )
    top.finish(_UNSUPPORTED_TOP)
    if settings.max_reconnect_delay < settings.reconnect_delay:
        raise reader.fail("maxReconnectDelay", f"{settings.max_reconnect_delay:g} s is shorter "
                          f"than reconnectDelay ({settings.reconnect_delay:g} s)")
    if settings.idle_timeout is not None and settings.idle_timeout < settings.response_timeout:
        # The idle check runs once per read wait: a shorter timeout could not be honoured.
        raise reader.fail("idleTimeout", f"{settings.idle_timeout:g} s is shorter than "
                          f"responseTimeout ({settings.response_timeout:g} s)")
    # Frozen: fill the findings in one go, now that every section has been walked.
    return _replace_findings(settings, reader)


def _replace_findings(settings: Settings, reader: _Reader) -> Settings:
    return replace(settings, unsupported=tuple(reader.unsupported),
                   unknown=tuple(reader.unknown), notes=MappingProxyType(dict(reader.notes)))


def _read_server(reader: _Reader, data: Any, index: int, base: Path) -> Server:
    s = reader.section(data, f"subscription.servers[{index}]")
    tls = s.get("tlsVersion", _tls_version, "1.2")
    server = Server(
        host=s.get("host", _text),
        port=s.get("port", _int(1, 65535), 8302),
        pkcs12_filepath=s.get("pkcs12Filepath", _path(base), base / "client.pkcs12"),
        tls_version=tls,
        ca_filepath=s.get("caFilepath", _path(base), None),
        verify_server=s.get("verifyServer", _bool, True),
        pkcs12_password_file=s.get("pkcs12PasswordFile", _path(base), None),
        allow_readable_key_files=s.get("allowReadableKeyFiles", _bool, False),
        index=index,
        ha_pair=s.get("haPair", _pair_name, None),
    )
    if tls in ("1.0", "1.1"):
        reader.flag_unsupported(f"{s.path}.tlsVersion",
                                f"TLS {tls} is not offered; estreamer uses TLS 1.2 or newer")
    s.finish()
    return server


def _pair_name(value: Any) -> str:
    name = _text(value).strip()
    if not set(name) <= _PAIR_NAME:
        raise _Bad(f"expected a name of letters, digits, '.', '_' or '-' (it names the "
                   f"pair's bookmark file), got {_show(value)}")
    return name


def _check_pairs(reader: _Reader, servers: tuple[Server, ...]) -> None:
    """Each `haPair` name flags exactly two entries: a pair has one active and one standby."""
    members: dict[str, list[Server]] = {}
    for server in servers:
        if server.ha_pair is not None:
            members.setdefault(server.ha_pair, []).append(server)
    for name, flagged in members.items():
        if len(flagged) != 2:
            where = ", ".join(s.key_path for s in flagged)
            raise reader.fail(f"{flagged[-1].key_path}.haPair",
                              f"HA pair {name!r} needs exactly two servers, got "
                              f"{len(flagged)} ({where})")
    lone = {f"{s.host}-{s.port}" for s in servers if s.ha_pair is None}
    for name in members:
        if name in lone:  # the pair's files would be the lone server's
            raise reader.fail("subscription.servers", f"HA pair name {name!r} is also "
                              f"a server's file name; choose another")


def _read_outputter(reader: _Reader, data: Any, index: int) -> Outputter:
    o = reader.section(data, f"handler.outputters[{index}]")
    adapter = o.get("adapter", _text).strip().lower()
    enabled = o.get("enabled", _bool, True)
    # Like eNcore, a disabled outputter's adapter is never looked at: no error, no finding.
    if enabled and adapter not in ENCORE_ADAPTERS:
        raise reader.fail(f"{o.path}.adapter",
                          f"unknown adapter {adapter!r}; expected one of "
                          f"{', '.join(sorted(SUPPORTED_ADAPTERS))}")
    if enabled and adapter not in SUPPORTED_ADAPTERS:
        reader.flag_unsupported(f"{o.path}.adapter", f"the {adapter!r} format")
    stream = o.sub("stream", required=True)
    uri = stream.get("uri", _uri)
    opts = stream.sub("options")
    file_stream = uri.split("://", 1)[0].lower() in ("relfile", "file", "stdout")
    if file_stream:
        max_bytes = opts.get("maxBytes", _int(1), None)
        options = StreamOptions(
            # Given maxBytes alone, the user asked for rotation by size: no line limit.
            max_logs=opts.get("maxLogs", _int(1), 10000 if max_bytes is None else None),
            rotate=opts.get("rotate", _bool, True),
            max_bytes=max_bytes,
            compress=opts.get("compress", _bool, False),
            fsync=opts.get("fsync", _choice(FSYNC_POLICIES), "commit"),
        )
    else:
        options = StreamOptions(
            max_logs=opts.get("maxLogs", _int(1), 10000),
            rotate=opts.get("rotate", _bool, True),
            # A network stream's own options are judged where the stream is opened,
            # against the stream's kind; here they are only carried.
            extra=MappingProxyType({
                k: opts.raw(k) for k in list(opts.data)
                if k not in ("maxLogs", "rotate") and not k.endswith("@comment")}),
        )
    opts.finish(_UNSUPPORTED_OPTIONS)
    stream.finish()
    o.finish(_UNSUPPORTED_OUTPUTTER)
    return Outputter(adapter=adapter, uri=uri, enabled=enabled, options=options, index=index)


# --------------------------------------------------------------------------- the password


class Secret:
    """A password that never shows itself: repr, str and format all give '***', so it cannot
    leak through a log line, a traceback's locals or an error message by accident."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        """The password itself, for the one call that needs it (loading the PKCS#12)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> Any:
        # Pickling would copy the password into whatever stores the pickle; refuse.
        raise TypeError("a Secret cannot be pickled")


def resolve_password(
    settings: Settings,
    server: Server,
    *,
    env: Mapping[str, str] = os.environ,
    prompt: Callable[[str], str] = getpass.getpass,
    interactive: bool | None = None,
) -> Secret:
    """The PKCS#12 password for `server`, from (in this order) the environment variable
    ESTREAMER_PKCS12_PASSWORD, the file named by the server's `pkcs12PasswordFile`, or a
    prompt when standard input is a terminal (`interactive` overrides that test)."""
    if PASSWORD_ENV in env:
        return Secret(env[PASSWORD_ENV])
    key = f"{server.key_path}.pkcs12PasswordFile"
    if server.pkcs12_password_file is not None:
        return _password_from_file(settings.path, key, server.pkcs12_password_file)
    if interactive is None:
        interactive = sys.stdin is not None and sys.stdin.isatty()
    if interactive:
        try:
            return Secret(prompt(f"Password for {server.pkcs12_filepath}: "))
        except EOFError:
            pass
    raise ConfigError(
        f"{settings.path}: no password for {server.pkcs12_filepath}: set the environment "
        f"variable {PASSWORD_ENV}, or name a file holding it with {key}, "
        f"or run estreamer from a terminal to be asked for it")


def _password_from_file(config: Path, key: str, file: Path) -> Secret:
    try:
        mode = file.stat().st_mode
        raw = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{config}: {key}: cannot read {file}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s (%s) can be read or changed by other users (mode %04o); "
                    "run: chmod 600 %s", file, key, stat.S_IMODE(mode), file)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        # Say nothing about the content: it is the password.
        raise ConfigError(f"{config}: {key}: {file} is not UTF-8 text") from None
    # Editors add a final newline; a password never ends with one.
    return Secret(text.removesuffix("\n").removesuffix("\r"))


# --------------------------------------------------------------------------- generating


def default_config(
    host: str,
    port: int,
    pkcs12: str | os.PathLike[str],
    *,
    adapter: str = "json",
    uri: str = DEFAULT_OUTPUT_URI,
    start: int = START_BOOKMARK,
    ca_file: str | os.PathLike[str] | None = None,
    password_file: str | os.PathLike[str] | None = None,
    verify_server: bool = True,
    log_filepath: str = "estreamer.log",
    bookmark_directory: str | os.PathLike[str] | None = None,
    max_logs: int = 10000,
    rotate: bool = True,
) -> dict[str, Any]:
    """An eNcore-shaped config (eNcore's default.conf with one enabled outputter), for
    `estreamer demo` and for new users. Our own keys appear only when given."""
    server: dict[str, Any] = {
        "host": host,
        "port": port,
        "pkcs12Filepath": os.fspath(pkcs12),
        "tls@comment": "Valid values are 1.2 and 1.3 (eNcore also took 1.0)",
        "tlsVersion": 1.2,
    }
    if ca_file is not None:
        server["caFilepath"] = os.fspath(ca_file)
    if not verify_server:
        server["verifyServer"] = False
    if password_file is not None:
        server["pkcs12PasswordFile"] = os.fspath(password_file)
    config: dict[str, Any] = {
        "connectTimeout": 10,
        "enabled": True,
        "handler": {
            "output@comment": "With no enabled outputter, records are received and dropped",
            "outputters": [{
                "adapter": adapter,
                "enabled": True,
                "stream": {"options": {"maxLogs": max_logs, "rotate": rotate}, "uri": uri},
            }],
            "records": {
                "connections": True,
                "core": True,
                "excl@comment": "Record types never written, whatever else says (e.g. [71, 400])",
                "exclude": [],
                "inc@comment": "Record types always written unless excluded",
                "include": [],
                "intrusion": True,
                "metadata": True,
                "packets": True,
                "rna": True,
                "rua": True,
            },
        },
        "logging": {
            "filepath": log_filepath,
            "format": DEFAULT_LOG_FORMAT,
            "lev@comment": "FATAL, ERROR, WARNING, INFO, DEBUG, VERBOSE or TRACE",
            "level": "INFO",
            "stdOut": True,
        },
        "monitor": {"bookmark": False, "handled": True, "period": 120, "subscribed": True,
                    "velocity": False},
        "responseTimeout": 2,
        "star@comment": "0: oldest data the FMC has; 1: from now on; 2: resume from the bookmark",
        "start": start,
        "subscription": {
            "records": {
                "@comment": "What to ask the FMC for; handler.records picks what is written",
                "archiveTimestamps": True,
                "eventExtraData": True,
                "extended": True,
                "impactEventAlerts": True,
                "intrusion": True,
                "metadata": True,
                "packetData": True,
            },
            "servers": [server],
        },
        "workerProcesses": 1,
    }
    if bookmark_directory is not None:
        config["bookmarkDirectory"] = os.fspath(bookmark_directory)
    return config
