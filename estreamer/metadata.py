"""The metadata cache: the names the FMC sends for the ids that events carry (fact sheet §9,
§11 item 7), kept per server and persisted next to the bookmark.

Metadata records arrive in the same stream as events, usually before the events that need
them, but not always (a rule can be renamed, a device added). The cache keeps the latest name
per key; `estreamer.decorate` looks names up when each event goes out, so metadata that
arrives late still names every later event. Nothing is ever guessed: an id the cache does not
hold stays a bare id.

What each metadata record teaches is one row of `LEARN` (kind, key fields, value fields). ID 0
is a real key (§10.3: CAP has 0 = "Unknown"), so no value is treated as "absent" here.

File: `{host}-{port}_metadata.json` beside the bookmark, one JSON object:

    {"format": 1, "kinds": {"device": [[1, "ftd-hq-01"], ...],
                            "ac_rule": [[["<policy uuid>", 268435457], "Allow web"], ...]}}

Composite keys are JSON arrays; multi-value kinds (rule messages, classifications) store an
array of values. Saved atomically (temp file 0600, fsync, rename, fsync of the directory) by
the pipeline's commit, after the outputs are durable and before the bookmark, so the bookmark
never passes metadata the cache has not kept. A torn or corrupt file is logged and ignored:
the cache starts empty and is rebuilt from the stream, since a name from a file we cannot
read whole is not worth trusting."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from estreamer.atomic import write_atomically

log = logging.getLogger("Metadata")

FORMAT = 1


@dataclass(frozen=True, slots=True)
class Learn:
    """How one metadata record type fills the cache: `kind[key] = value`."""

    kind: str
    key: tuple[str, ...]  # fields of the metadata record that form the key
    value: tuple[str, ...]  # fields kept; one field is stored bare, several as a tuple


def _ids(kind: str, value: str = "name") -> Learn:
    return Learn(kind, ("id",), (value,))


def _uuids(kind: str) -> Learn:
    return Learn(kind, ("uuid",), ("name",))


LEARN: dict[int, Learn] = {
    4: _ids("priority"),
    54: Learn("fingerprint", ("uuid",), ("name", "vendor", "version")),
    55: _ids("client_application"),
    57: Learn("vulnerability", ("id",), ("title",)),
    58: _ids("criticality"),
    59: _ids("network_protocol"),
    60: _ids("attribute"),
    61: _ids("scan_type"),
    62: _ids("system_user"),
    63: _ids("application"),
    # UNCERTAIN (§10.4): whether the revision belongs in the key; the FMC shows one message
    # per (GID, SID), so the latest revision's message wins and the revision is kept.
    66: Learn("rule_message", ("generator_id", "rule_id"),
              ("message", "signature_id", "rule_revision")),
    67: Learn("classification", ("id",), ("name", "description")),
    69: _ids("correlation_policy"),
    70: _ids("correlation_rule"),
    90: _ids("source_type"),
    91: _ids("source_application"),
    96: _ids("source_detector"),
    98: _ids("user"),
    109: _ids("web_application"),
    111: Learn("extra_data_type", ("extra_data_type",), ("name",)),
    115: _uuids("zone"),
    116: _uuids("interface"),
    117: _uuids("access_control_policy"),
    118: _uuids("intrusion_policy"),
    # Events carry the policy *revision* UUID next to the rule id; record 119 is keyed the
    # same way (§7 block 15), so a rule renamed in a later revision keeps both names.
    119: Learn("access_control_rule", ("revision", "rule_id"), ("name",)),
    120: _ids("rule_action"),
    121: _ids("url_category"),
    122: _ids("url_reputation"),
    123: _ids("device"),
    124: _ids("rule_reason", "description"),
    127: _uuids("cloud"),
    128: _ids("malware_event_type"),
    129: _ids("malware_event_subtype"),
    130: _ids("detector"),
    131: _ids("amp_file_type"),
    132: Learn("security_context", ("security_context",), ("name",)),
    # Record 145 names the policy per device; the name is the same on every device.
    145: _uuids("access_control_policy"),
    146: _uuids("prefilter_policy"),
    147: _uuids("tunnel_rule"),
    161: Learn("ioc", ("id",), ("category", "ioc_event_type")),
    # ICMP and ICMPv6 reuse type and code numbers: the IP protocol is part of the key.
    260: Learn("icmp_type", ("protocol", "icmp_type"), ("description",)),
    270: Learn("icmp_code", ("protocol", "icmp_type", "icmp_code"), ("description",)),
    280: Learn("security_intelligence_category",
               ("access_control_policy_uuid", "id"), ("name",)),
    281: _ids("security_intelligence_source_destination"),
    282: _uuids("security_intelligence_category_uuid"),
    300: _ids("realm"),
    301: _ids("endpoint_profile", "full_name"),
    302: _ids("security_group"),
    320: _ids("dns_record_type"),
    321: _ids("dns_response_type"),
    322: _uuids("sinkhole"),
    350: _ids("netmap_domain"),
    510: _ids("file_type"),
    511: Learn("file_sha", ("file_sha256",), ("file_name",)),
    515: _ids("file_storage_status"),
    516: _ids("file_sandbox_status"),
    517: _ids("spero_disposition"),
    518: _ids("archive_file_status"),
    519: _ids("static_analysis_status"),
    520: Learn("country", ("country_code",), ("name",)),
    530: _uuids("file_policy"),
    600: _uuids("ssl_policy"),
    601: Learn("ssl_rule", ("revision", "rule_id"), ("name",)),
    602: _ids("ssl_cipher_suite"),
    604: _ids("ssl_version"),
    605: _ids("ssl_server_certificate_status"),
    606: _ids("ssl_actual_action"),
    607: _ids("ssl_expected_action"),
    608: _ids("ssl_flow_status"),
    613: _ids("ssl_url_category"),
    614: Learn("ssl_certificate", ("ssl_certificate_fingerprint",),
               ("subject_common_name", "issuer_common_name", "valid_end_time")),
    700: _uuids("network_analysis_policy"),
}
"""Metadata record type → what it teaches. A type without a layout table is never decoded,
so its row is inert until the table exists."""

KINDS: dict[str, int] = {}
"""Kind → number of value fields (1: stored bare)."""
for _learn in LEARN.values():
    _arity = len(_learn.value)
    if KINDS.setdefault(_learn.kind, _arity) != _arity:
        raise ValueError(f"kind {_learn.kind} learned with two shapes")


def metadata_path(directory: str | os.PathLike[str], host: str, port: int) -> Path:
    """The cache file of one FMC, beside its bookmark (`{host}-{port}_bookmark.dat`)."""
    return Path(directory) / f"{host}-{port}_metadata.json"


class MetadataCache:
    """kind → {key → value}. `learn()` takes decoded metadata records, `get()` is one dict
    lookup; `save()` writes the file only when something changed since the last save."""

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path) if path is not None else None
        self.tables: dict[str, dict[Any, Any]] = {kind: {} for kind in KINDS}
        self._dirty = False

    def __len__(self) -> int:
        return sum(len(table) for table in self.tables.values())

    @property
    def dirty(self) -> bool:
        return self._dirty

    def get(self, kind: str, key: Any) -> Any | None:
        return self.tables[kind].get(key)

    def learn(self, record_type: int, fields: Mapping[str, Any]) -> bool:
        """Keep what a decoded metadata record names; True if it is a metadata record we
        learn from. A record missing a key or value field (a raw or malformed one) is not
        learned from: half a name is worse than the id."""
        spec = LEARN.get(record_type)
        if spec is None:
            return False
        try:
            key = (fields[spec.key[0]] if len(spec.key) == 1
                   else tuple(fields[name] for name in spec.key))
            value = (fields[spec.value[0]] if len(spec.value) == 1
                     else tuple(fields[name] for name in spec.value))
        except KeyError:
            return False
        table = self.tables[spec.kind]
        if table.get(key) != value:
            table[key] = value
            self._dirty = True
        return True

    # -- persistence --------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> MetadataCache:
        """The cache saved at `path`, or an empty one when there is none or it cannot be
        trusted (logged)."""
        cache = cls(path)
        path = Path(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cache
        except OSError as exc:
            log.warning("Cannot read metadata cache %s (%s); starting empty, the stream "
                        "rebuilds it.", path, exc)
            return cache
        try:
            cache.tables = _parse(json.loads(raw))
        except (ValueError, TypeError) as exc:
            log.warning("Metadata cache %s is damaged (%s); ignoring it, the stream rebuilds "
                        "it.", path, exc)
            cache.tables = {kind: {} for kind in KINDS}
            cache._dirty = True  # replace the damaged file at the next save
            return cache
        log.info("Metadata cache %s: %d names loaded.", path, len(cache))
        return cache

    def to_json(self) -> dict[str, Any]:
        kinds = {
            kind: [[_to_json(key), _to_json(value)] for key, value in table.items()]
            for kind, table in sorted(self.tables.items()) if table
        }
        return {"format": FORMAT, "kinds": kinds}

    def save(self) -> None:
        """Write the cache if it changed: temp file (0600) in the same directory, fsync,
        rename over the old one, fsync the directory. A failure is logged, not raised: names
        are a convenience, and the stream sends them again."""
        if not self._dirty or self.path is None:
            return
        payload = json.dumps(self.to_json(), separators=(",", ":"),
                             ensure_ascii=False).encode() + b"\n"
        try:
            write_atomically(self.path, payload)
        except OSError as exc:
            log.warning("Cannot save metadata cache %s: %s", self.path, exc)
            return
        self._dirty = False


def _to_json(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _scalar(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _parse(data: Any) -> dict[str, dict[Any, Any]]:
    """Check every entry before trusting any: a file that fails anywhere is not used."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"not a format-{FORMAT} metadata cache")
    kinds = data.get("kinds")
    if not isinstance(kinds, dict):
        raise ValueError('"kinds" is not an object')
    tables: dict[str, dict[Any, Any]] = {kind: {} for kind in KINDS}
    for kind, rows in kinds.items():
        if kind not in KINDS:
            continue  # a kind this version does not know (a newer release wrote the file)
        if not isinstance(rows, list):
            raise ValueError(f"{kind} is not a list")
        arity = KINDS[kind]
        table = tables[kind]
        for row in rows:
            if not isinstance(row, list) or len(row) != 2:
                raise ValueError(f"{kind} has an entry that is not a [key, value] pair")
            key, value = row
            if isinstance(key, list) and key and all(_scalar(k) for k in key):
                key = tuple(key)
            elif not _scalar(key):
                raise ValueError(f"{kind} has a key that is not an id, a UUID or a list of them")
            if arity == 1:
                if not _scalar(value):
                    raise ValueError(f"{kind} has a value that is not text or a number")
            elif (isinstance(value, list) and len(value) == arity
                  and all(_scalar(v) for v in value)):
                value = tuple(value)
            else:
                raise ValueError(f"{kind} has a value that is not {arity} texts")
            table[key] = value
    return tables


