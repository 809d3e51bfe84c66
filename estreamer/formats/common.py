"""What every format needs from a (decorated) event dict: field lookup by dotted path,
"the name if the decorator knew it, else the id", the event's time, and small static tables
(IANA protocol names, eNcore's impact levels, eNcore's record categories).

Names come from the metadata decorator (issue 4), which adds keys next to the ids. We meet it
through field names only, by one rule: for an id field `F`, the name is the first of
`NAME_KEYS[F]` (the decorator's exceptions, such as `rule_message`) and then `F` without its
`_id` / `_uuid` suffix plus `_name` (`application_id` → `application_name`, `ingress_zone_uuid` →
`ingress_zone_name`). When no name is there, formats fall back to the id, as eNcore does when
its metadata cache has no entry."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from estreamer.protocol.tables import RECORDS

NAME_KEYS: Mapping[str, tuple[str, ...]] = {
    # The decorator's two exceptions to `<stem>_name` (estreamer/decorate.py).
    "rule_id": ("rule_message",),
    "classification_id": ("classification_name",),
}


def record_category(event: Mapping[str, Any]) -> str:
    """Our family of the record (metadata, intrusion, connection, ...), from the tables."""
    category = event.get("record_category")
    if isinstance(category, str):
        return category
    layout = RECORDS.get(event.get("record_type", -1))
    return layout.category if layout else "unknown"


def get(event: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (`discovery_header.event_second`, `vpn_sessions.0.index`),
    or None."""
    if "." not in path:
        return event.get(path)
    return walk(event, _parts(path))


@functools.cache
def _parts(path: str) -> tuple[str, ...]:
    # Paths come from the format tables and code, a small fixed set: split each once.
    return tuple(path.split("."))


def walk(value: Any, parts: tuple[str, ...]) -> Any:
    """`get` for a path already split: each part a key of a mapping or a list position."""
    for part in parts:
        if type(value) is dict or isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit():
            # `vpn_sessions.0.client_ip`: an item of a list by position.
            value = value[int(part)] if int(part) < len(value) else None
        else:
            return None
    return value


@functools.cache
def name_keys(field: str) -> tuple[str, ...]:
    """The keys the decorator may have put the name of `field` under, best first. For a
    nested field (`discovery_header.device_id`) the name may sit next to it or at the top.
    Cached: a pure function of the name, asked for every field of every record."""
    leaf = field.rsplit(".", 1)[-1]
    stem = leaf
    for suffix in ("_uuid", "_id"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    names = (*NAME_KEYS.get(leaf, ()), f"{stem}_name")
    prefix = field[: len(field) - len(leaf)]
    keys = [prefix + k for k in names] + ([*names] if prefix else [])
    return tuple(dict.fromkeys(keys))


@functools.cache
def _name_paths(field: str) -> tuple[tuple[str, tuple[str, ...] | None], ...]:
    # Each name key with its path split (None for a top-level key, read with one `get`).
    return tuple((key, _parts(key) if "." in key else None) for key in name_keys(field))


def name_of(event: Mapping[str, Any], field: str) -> Any:
    """The decorator's name for `field`, or None when it added none."""
    for key, parts in _name_paths(field):
        value = event.get(key) if parts is None else walk(event, parts)
        if value is not None and value != "":
            return value
    return None


def named(event: Mapping[str, Any], field: str) -> Any:
    """The name for `field` if known, else its id (None when the field is absent)."""
    name = name_of(event, field)
    if name is not None:
        return name
    return event.get(field) if "." not in field else walk(event, _parts(field))


# Where each record family keeps its event time; the first present and non-zero wins, and
# the archive timestamp is the last resort (eNcore's order).
_SECOND_KEYS = (
    "event_second",
    "discovery_header.event_second",
    "file_event_timestamp",
    "malware_event_timestamp",
    "correlation_event_second",
    "timestamp",
)
_MICRO_KEYS = ("event_microsecond", "discovery_header.event_microsecond")


def event_time(event: Mapping[str, Any]) -> tuple[int, int]:
    """(UNIX seconds, microseconds) of the event; (0, 0) when it carries no time at all."""
    # _SECOND_KEYS and _MICRO_KEYS in order, with the header looked up once.
    g = event.get
    header = g("discovery_header")
    if not isinstance(header, Mapping):
        header = _NO_HEADER
    for second in (g("event_second"), header.get("event_second"), g("file_event_timestamp"),
                   g("malware_event_timestamp"), g("correlation_event_second"), g("timestamp")):
        if isinstance(second, int) and second > 0:
            micro = g("event_microsecond")
            if isinstance(micro, int) and micro > 0:
                return second, micro
            micro = header.get("event_microsecond")
            return second, micro if isinstance(micro, int) and micro > 0 else 0
    archive = g("archive_timestamp")
    return (archive, 0) if isinstance(archive, int) and archive > 0 else (0, 0)


_NO_HEADER: Mapping[str, Any] = {}


# IANA protocol numbers → the names FMC shows and the Splunk add-on's ip_protos lookup expects.
IP_PROTOCOLS: Mapping[int, str] = {
    0: "HOPOPT", 1: "ICMP", 2: "IGMP", 4: "IPv4", 6: "TCP", 8: "EGP", 9: "IGP", 17: "UDP",
    41: "IPv6", 43: "IPv6-Route", 44: "IPv6-Frag", 46: "RSVP", 47: "GRE", 50: "ESP",
    51: "AH", 58: "IPv6-ICMP", 59: "IPv6-NoNxt", 60: "IPv6-Opts", 88: "EIGRP", 89: "OSPF",
    103: "PIM", 112: "VRRP", 115: "L2TP", 132: "SCTP", 136: "UDPLite",
}


def protocol_name(event: Mapping[str, Any], field: str = "protocol") -> Any:
    """The IP protocol's name as FMC and eNcore write it (`TCP`): IANA's upper-case name
    first, because the Splunk add-on's `ip_protos` lookup matches it case-sensitively; then
    the decorator's; else the number."""
    number = get(event, field)
    if isinstance(number, int) and number in IP_PROTOCOLS:
        return IP_PROTOCOLS[number]
    name = name_of(event, field)
    return name if name is not None else number


def impact_level(flags: int) -> int:
    """eNcore's impact level (0 unknown, 1 vulnerable ... 4 not vulnerable) from the impact
    flag bits of an intrusion or correlation event: the most severe bit set wins."""
    if flags & 0b11011000:
        return 1
    if flags & 0b00000110 == 0b00000110:
        return 2
    if flags & 0b00000010:
        return 3
    if flags & 0b00000001:
        return 4
    return 0


def is_ipv4(address: Any) -> bool:
    return isinstance(address, str) and "." in address and ":" not in address


def is_ipv6(address: Any) -> bool:
    return isinstance(address, str) and ":" in address and address != "::"


ZERO_UUID = "00000000-0000-0000-0000-000000000000"
