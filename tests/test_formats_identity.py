"""The fast formatters write exactly what the plain ones did (issue 8). Splunk's format is
compiled per record type from its table, and the helpers every format uses (name lookup,
dotted paths, the event's time) are cached or unrolled; here every record of a large
emulator history, decorated as the pipeline decorates, is formatted by them and by a
reference copy of the code before, byte for byte.

The reference keeps the old machinery only (lookups, interpreter, rendering); the tables
(SPLUNK_KEYS, the CEF and ECS builders) are the live ones, so a deliberate change of a
mapping shows in the golden files (test_formats.py), not here."""

import re
import time
from collections.abc import Mapping
from typing import Any

import orjson
import pytest

from benchmarks.streams import connection_stream, server_stream
from estreamer.decorate import Decorator
from estreamer.formats import cef, ecs, splunk
from estreamer.formats.common import IP_PROTOCOLS, NAME_KEYS, ZERO_UUID
from estreamer.formats.common import record_category as _record_category
from estreamer.formats.encore_types import ENCORE_RECORD_TYPES
from estreamer.protocol.records import Record
from estreamer.protocol.stream import StreamDecoder

# --------------------------------------------------------------------------- the reference
# estreamer/formats/common.py and splunk.py as they were before compilation, verbatim but
# for names.


def old_get(event: Mapping[str, Any], path: str) -> Any:
    if "." not in path:
        return event.get(path)
    value: Any = event
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit():
            value = value[int(part)] if int(part) < len(value) else None
        else:
            return None
    return value


def old_name_keys(field: str) -> tuple[str, ...]:
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


def old_name_of(event: Mapping[str, Any], field: str) -> Any:
    for key in old_name_keys(field):
        value = old_get(event, key)
        if value not in (None, ""):
            return value
    return None


def old_named(event: Mapping[str, Any], field: str) -> Any:
    name = old_name_of(event, field)
    return name if name is not None else old_get(event, field)


_SECOND_KEYS = ("event_second", "discovery_header.event_second", "file_event_timestamp",
                "malware_event_timestamp", "correlation_event_second", "timestamp")
_MICRO_KEYS = ("event_microsecond", "discovery_header.event_microsecond")


def old_event_time(event: Mapping[str, Any]) -> tuple[int, int]:
    for key in _SECOND_KEYS:
        second = old_get(event, key)
        if isinstance(second, int) and second > 0:
            micro = 0
            for mkey in _MICRO_KEYS:
                value = old_get(event, mkey)
                if isinstance(value, int) and value > 0:
                    micro = value
                    break
            return second, micro
    archive = event.get("archive_timestamp")
    return (archive, 0) if isinstance(archive, int) and archive > 0 else (0, 0)


def old_protocol_name(event: Mapping[str, Any], field: str = "protocol") -> Any:
    number = old_get(event, field)
    if isinstance(number, int) and number in IP_PROTOCOLS:
        return IP_PROTOCOLS[number]
    name = old_name_of(event, field)
    return name if name is not None else number


def _monitor_rule(n: int):
    field = f"monitor_rule_{n}"

    def compute(event):
        value = event.get(field)
        if value == 0:
            return "N/A"
        return old_named(event, field)

    return compute


def _event_desc(event):
    kind = old_get(event, "discovery_header.event_type")
    sub = old_get(event, "discovery_header.event_subtype")
    return splunk.DISCOVERY_EVENT_NAMES.get((kind, sub)) if kind is not None else None


def _host_ip(event):
    for path in ("discovery_header.ipv6_address", "discovery_header.legacy_ip"):
        value = old_get(event, path)
        if value not in (None, "", "::", "0.0.0.0"):
            return value
    return None


def _rec_type_simple(event):
    known = ENCORE_RECORD_TYPES.get(event.get("record_type", -1))
    return known[1] if known else _record_category(event).upper()


def _rec_type_desc(event):
    known = ENCORE_RECORD_TYPES.get(event.get("record_type", -1))
    return known[0] if known else event.get("record_name")


OLD_COMPUTED = {
    **splunk._COMPUTED,  # the ones that use no lookup helper
    "rec_type_simple": _rec_type_simple,
    "rec_type_desc": _rec_type_desc,
    "event_desc": _event_desc,
    "ip_proto": lambda e: old_protocol_name(e, "protocol"),
    "transport_proto": lambda e: old_protocol_name(e, "transport_protocol"),
    "host_ip": _host_ip,
    **{f"monitor_rule_{n}": _monitor_rule(n) for n in range(1, 9)},
}


def old_joined(event, source):
    path, _, field = source.rpartition(".")
    items = old_get(event, path)
    if not isinstance(items, list):
        return None
    values = [old_named(item, field) for item in items if isinstance(item, Mapping)]
    text = ",".join(str(v) for v in values if v not in (None, ""))
    return text or None


def old_resolve(event, source):
    kind = source[0]
    if kind == "~":
        return old_named(event, source[1:])
    if kind == "^":
        return old_name_of(event, source[1:])
    if kind == "@":
        return OLD_COMPUTED[source[1:]](event)
    if kind == "*":
        return old_joined(event, source[1:])
    return old_get(event, source)


_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def old_splunk_value(value):
    if isinstance(value, str):
        # fullmatch, as splunk.py now: `match` with `$` took "<uuid>\n" for a UUID and wrote
        # the newline raw (the one deliberate change since; test_splunk_speedups.py)
        if _UUID.fullmatch(value):
            return f'"{value}"'
        text = value.replace("\n", "\\n").replace("\r", "")
        if text == "":
            return '""'
        if " " in text or "=" in text:
            return '"' + text.replace('"', "'") + '"'
        return text
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict | list | tuple):
        return old_splunk_value(repr(value))
    return old_splunk_value(str(value))


def old_splunk_time(event):
    trigger = event.get("trigger_event_second")
    if isinstance(trigger, int) and trigger > 0:
        micro = event.get("trigger_event_microsecond")
        return trigger, micro if isinstance(micro, int) else 0
    return old_event_time(event)


def old_flatten(prefix, value, out):
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if not prefix and key in ("record_type", "record_name", "record_category"):
                continue
            old_flatten(f"{prefix}.{key}" if prefix else key, inner, out)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            old_flatten(f"{prefix}.{index}", inner, out)
    elif value is not None:
        out.setdefault(prefix, value)


def old_splunk_pairs(event):
    record_type = event.get("record_type")
    second, micro = old_splunk_time(event)
    pairs = {"rec_type": record_type}
    if second:
        pairs["event_sec"] = second
    spec = splunk.SPLUNK_KEYS.get(record_type) if isinstance(record_type, int) else None
    for key, source in splunk._COMMON_HEAD:
        pairs[key] = old_resolve(event, source)
    if spec is None:
        old_flatten("", event, pairs)
    else:
        for key, source in spec:
            value = old_resolve(event, source)
            if value is not None:
                pairs[key] = value
    if micro and "event_usec" not in pairs:
        pairs["event_usec"] = micro
    return [(k, v) for k, v in pairs.items() if v is not None]


def old_splunk(event):
    return " ".join(f"{k}={old_splunk_value(v)}" for k, v in old_splunk_pairs(event)).encode()


# CEF and ECS: their builders are the table; the reference runs them on the old helpers and
# renders as before.

def old_escape_header(value):
    text = str(value).replace("\\", "\\\\").replace("|", "\\|")
    return text.replace("\r", " ").replace("\n", " ")


def old_escape_value(value):
    text = str(value).replace("\\", "\\\\").replace("=", "\\=")
    return text.replace("\r", "\\r").replace("\n", "\\n")


_CEF_EMPTY = (None, "", 0, "::", "0.0.0.0", ZERO_UUID)


def old_cef(event, host="host"):
    ext = {}
    record_type = event.get("record_type")
    build = (cef._BUILDERS.get(record_type, cef._generic) if isinstance(record_type, int)
             else cef._generic)
    sig, name, severity = build(event, ext)
    kept = {k: v for k, v in ext.items() if v not in _CEF_EMPTY or isinstance(v, bool)}
    severity, ext = max(0, min(10, int(severity))), dict(sorted(kept.items()))
    second, _ = old_event_time(event)
    stamp = time.strftime("%b %d %H:%M:%S", time.gmtime(second))
    header = "|".join(old_escape_header(x) for x in (
        "CEF:0", cef.VENDOR, cef.PRODUCT, cef.PRODUCT_VERSION, sig, name, severity))
    body = " ".join(f"{k}={old_escape_value(v)}" for k, v in ext.items())
    return f"<{cef.SYSLOG_PRI}>{stamp} {host} {header}|{body}".encode()


def old_clean(value):
    if isinstance(value, dict):
        out = {k: c for k, v in value.items() if (c := old_clean(v)) is not None}
        return out or None
    if value in ("", "::", ZERO_UUID) or value is None:
        return None
    return value


def old_ecs(event):
    doc = old_clean(ecs.ecs_document(event)) or {}
    doc["cisco"] = {"firepower": event}
    return orjson.dumps(doc)


OLD_HELPERS = {"get": old_get, "name_of": old_name_of, "named": old_named,
               "event_time": old_event_time, "protocol_name": old_protocol_name}


# --------------------------------------------------------------------------- the history


@pytest.fixture(scope="module")
def events():
    """Every record of an emulator history (all record types, metadata first) and a run of
    connection records, decorated as the pipeline does."""
    decorator = Decorator()
    out = []
    for data in (server_stream(3000)[0], connection_stream(2000)[0]):
        for item in StreamDecoder().feed(data):
            if type(item) is Record:
                decorator.learn(item)
                out.append(decorator(item, item.to_dict()))
    assert len({e["record_type"] for e in out}) > 40
    return out


def _mismatches(events, new, old):
    bad = [(e.get("record_type"), a, b) for e in events if (a := new(e)) != (b := old(e))]
    return bad[:3], len(bad)


def test_splunk_compiled_writes_what_the_interpreter_did(events):
    assert _mismatches(events, splunk.format_splunk, old_splunk) == ([], 0)
    assert _mismatches(events, splunk.interpret_splunk, old_splunk) == ([], 0)


# Absent and None values dropped, names preferred unless empty, `event_usec` from the row or
# appended, lists and odd types rendered as before, unknown record types flattened.
ODD = [
    {"record_type": 71, "discovery_header": {"event_second": 5, "event_microsecond": 7},
     "device_id": 3, "device_name": "", "protocol": 99, "protocol_name": "weird",
     "monitor_rule_3": 4, "monitor_rule_3_name": "mr", "initiator_ip": "a b=c\"d\r\n",
     "client_url": "1f2e3d4c-0000-4000-8000-00000000a001\n", "vlan_id": True,
     "tcp_flags": 1.5, "user_id": [1, 2], "security_intelligence_source_destination": 2,
     "rule_action": 1, "rule_action_name": "", "application_id": 5, "application_name": None},
    {"record_type": 71, "event_microsecond": 9, "discovery_header": "not a header",
     "timestamp": 11, "protocol": True},
    {"record_type": 400, "event_second": 3, "rule_id": 9, "rule_message": "",
     "rule_name": "r", "classification_id": 2, "classification_name": "", "protocol": 6},
    {"record_type": 170, "vpn_sessions": [{"client_country": 840,
                                           "client_country_name": ""}], "timestamp": 1},
    {"record_type": 170, "vpn_sessions": [], "client_country_name": "x"},
    {"record_type": 112, "trigger_event_second": 4, "trigger_event_microsecond": "x"},
    {"record_type": 77, "client_applications": [{"client_application_id": 1},
                                                {"client_application_id": 2,
                                                 "client_application_name": "Two"}]},
    {"record_type": 15, "discovery_header": {"device_id": 3, "device_name": "",
                                             "event_type": 1000, "event_subtype": 7},
     "device_name": "top", "client_application_id": 4, "client_application_name": ""},
    {"record_type": 9999, "raw": "00ff", "nested": {"a": [1, {"b": None}]}},
    {"record_type": "71", "device_id": 1},
    {"record_type": True},
    {},
]


def _outcome(formatter, event):
    try:
        return formatter(event)
    except Exception as error:  # the same failure counts as the same output
        return type(error)


def test_splunk_compiled_keeps_the_odd_cases():
    for event in ODD:
        assert _outcome(splunk.format_splunk, event) == _outcome(old_splunk, event), event


def test_cef_writes_what_it_did(events, monkeypatch):
    fast = cef.make_cef("host")
    new = [_outcome(fast, e) for e in [*events, *ODD]]
    for name, helper in OLD_HELPERS.items():
        monkeypatch.setattr(cef, name, helper)
    old = [_outcome(old_cef, e) for e in [*events, *ODD]]
    bad = [(e.get("record_type"), a, b) for e, a, b in zip([*events, *ODD], new, old,
                                                           strict=True) if a != b]
    assert (bad[:3], len(bad)) == ([], 0)


def test_ecs_writes_what_it_did(events, monkeypatch):
    new = [_outcome(ecs.format_ecs, e) for e in [*events, *ODD]]
    for name, helper in OLD_HELPERS.items():
        if hasattr(ecs, name):
            monkeypatch.setattr(ecs, name, helper)
    old = [_outcome(old_ecs, e) for e in [*events, *ODD]]
    bad = [(e.get("record_type"), a, b) for e, a, b in zip([*events, *ODD], new, old,
                                                           strict=True) if a != b]
    assert (bad[:3], len(bad)) == ([], 0)


def test_a_uuid_followed_by_a_newline_is_text_like_any_other():
    """`re.match` with `$` took "<uuid>\\n" for a UUID and wrote it quoted, the newline raw:
    a line the file output refuses. Only a whole UUID is quoted as one."""
    uuid = "1f2e3d4c-0000-4000-8000-00000000a001"
    assert splunk.splunk_value(uuid) == f'"{uuid}"'
    assert splunk.splunk_value(uuid + "\n") == uuid + "\\n"
    assert splunk.splunk_value(uuid.upper()) == uuid.upper()
    line = splunk.format_splunk({"record_type": 71, "client_url": uuid + "\n"})
    assert b"\n" not in line
    assert f"url={uuid}\\n".encode() in line
