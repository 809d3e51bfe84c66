"""Elastic Common Schema (ECS 8.x) JSON, so Elastic Security reads events without an ingest
pipeline: `@timestamp`, `event.*`, `source.*`, `destination.*`, `network.*`, `rule.*`,
`observer.*`, `file.*`, `user.*`, `url.*`, `tls.*`, `dns.*`.

ECS has no place for most FMC-specific fields, so the whole event as decoded (and decorated)
also goes under `cisco.firepower`, the way Elastic's own Cisco integrations keep vendor
fields: nothing is lost, and the ECS part is what rules and dashboards use.
Empty strings, the all-zero UUID and unset addresses (`::`) are left out of the ECS part."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from estreamer.formats.common import (
    ZERO_UUID,
    event_time,
    impact_level,
    name_of,
    named,
    protocol_name,
    record_category,
)
from estreamer.formats.splunk import DISCOVERY_EVENT_NAMES
from estreamer.protocol.tables import RECORDS

# Discovery, user and IOC events: the records that start with the discovery event header.
RECORDS_WITH_HEADER = frozenset(
    t for t, r in RECORDS.items() if r.layout and r.layout[0][0] == "discovery_header")

ECS_VERSION = "8.11.0"

# event.category / event.type / event.kind by record family (our `record_category`).
_CATEGORIES: Mapping[str, tuple[list[str], list[str], str]] = {
    "connection": (["network"], ["connection"], "event"),
    "intrusion": (["intrusion_detection", "network"], ["info"], "alert"),
    "impact": (["intrusion_detection"], ["info"], "alert"),
    "extra_data": (["intrusion_detection"], ["info"], "event"),
    "packet": (["network"], ["info"], "event"),
    "file": (["file", "network"], ["info"], "event"),
    "malware": (["malware", "file"], ["info"], "alert"),
    "discovery": (["host"], ["info"], "event"),
    "user": (["iam"], ["info"], "event"),
    "correlation": (["intrusion_detection"], ["info"], "alert"),
    "metadata": (["configuration"], ["info"], "event"),
}

_FAMILY_BY_TYPE = {2: "packet", 9: "impact", 71: "connection", 110: "extra_data",
                   112: "correlation", 125: "malware", 400: "intrusion", 500: "file",
                   502: "malware"}
DEDICATED = frozenset({*_FAMILY_BY_TYPE, 104, 105, *RECORDS_WITH_HEADER})
"""Record types mapped to ECS fields of their own (source/destination, rule, file, host,
user, ...); every other record (metadata) gets the common fields, its category, and itself
under cisco.firepower."""


def _clean(value: Any) -> Any:
    """Drop empty leaves and branches, so absent data is absent rather than empty."""
    if type(value) is dict:
        out = {}
        for key, inner in value.items():
            if isinstance(inner, dict):
                inner = _clean(inner)
                if inner is not None:
                    out[key] = inner
            elif inner is not None and inner not in _EMPTY:
                out[key] = inner
        return out or None
    if isinstance(value, dict):
        return _clean(dict(value))
    return None if value is None or value in _EMPTY else value


_EMPTY = ("", "::", ZERO_UUID)


@functools.lru_cache(maxsize=4096)
def _iso(second: int, micro: int = 0) -> str | None:
    # Cached: a record has three times, and records of the same second are many.
    if not second:
        return None
    moment = datetime.fromtimestamp(second, UTC).replace(microsecond=micro % 1_000_000)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _end(ip: Any, port: Any, *, nbytes: Any = None, packets: Any = None,
         country: Any = None) -> dict[str, Any]:
    return {"ip": ip, "port": port, "bytes": nbytes, "packets": packets,
            "geo": {"country_name": country if isinstance(country, str) else None}}


def ecs_document(event: Mapping[str, Any]) -> dict[str, Any]:
    """The ECS document for one event (before dropping empty parts)."""
    doc = _ecs_fields(event)
    doc["cisco"] = {"firepower": dict(event)}
    return doc


def _ecs_fields(event: Mapping[str, Any]) -> dict[str, Any]:
    """The document without the vendor copy."""
    record_type = event.get("record_type")
    family = _FAMILY_BY_TYPE.get(record_type) or record_category(event)
    categories, types, kind = _CATEGORIES.get(family, (["host"], ["info"], "event"))
    second, micro = event_time(event)
    e = event
    doc: dict[str, Any] = {
        "@timestamp": _iso(second, micro) or _iso(e.get("archive_timestamp") or 0),
        "ecs": {"version": ECS_VERSION},
        "event": {
            "kind": kind, "category": categories, "type": list(types),
            "module": "cisco_firepower", "dataset": f"cisco_firepower.{family or 'record'}",
            "provider": "estreamer", "code": str(record_type),
            "action": e.get("record_name"), "id": e.get("event_id"),
        },
        "observer": {
            "vendor": "Cisco", "product": "Firepower",
            "type": "ids" if kind == "alert" else "firewall",
            "name": _text(named(e, "device_id") if "device_id" in e
                          else named(e, "discovery_header.device_id")),
            "ingress": {"interface": {"name": named(e, "ingress_interface_uuid")},
                        "zone": named(e, "ingress_zone_uuid")},
            "egress": {"interface": {"name": named(e, "egress_interface_uuid")},
                       "zone": named(e, "egress_zone_uuid")},
        },
    }
    if record_type == 71:
        doc["source"] = _end(e.get("initiator_ip"), e.get("initiator_port"),
                             nbytes=e.get("initiator_bytes"), packets=e.get("initiator_packets"),
                             country=name_of(e, "initiator_country"))
        doc["destination"] = _end(e.get("responder_ip"), e.get("responder_port"),
                                  nbytes=e.get("responder_bytes"),
                                  packets=e.get("responder_packets"),
                                  country=name_of(e, "responder_country"))
        total_bytes = (e.get("initiator_bytes") or 0) + (e.get("responder_bytes") or 0)
        total_packets = (e.get("initiator_packets") or 0) + (e.get("responder_packets") or 0)
        doc["event"]["start"] = _iso(e.get("first_packet_time") or 0)
        doc["event"]["end"] = _iso(e.get("last_packet_time") or 0)
        action = named(e, "rule_action")
        doc["event"]["action"] = action if isinstance(action, str) else doc["event"]["action"]
        doc["event"]["type"] = ["connection", *(
            ["denied"] if isinstance(action, str) and action.lower() in ("block", "reset")
            else ["allowed"] if isinstance(action, str) else [])]
        doc["network"] = {"bytes": total_bytes or None, "packets": total_packets or None}
        doc["url"] = {"original": e.get("client_url")}
        doc["user_agent"] = {"original": e.get("user_agent")}
        doc["http"] = {"request": {"referrer": e.get("http_referrer")},
                       "response": {"status_code": e.get("http_response") or None}}
        doc["dns"] = {"question": {"name": e.get("dns_query")}}
        doc["tls"] = {"client": {"server_name": e.get("ssl_server_name")}}
        doc["rule"] = {"id": _nonzero(e.get("access_control_rule_id")),
                       "name": name_of(e, "access_control_rule_id"),
                       "ruleset": named(e, "access_control_policy_uuid")}
    else:
        doc["source"] = _end(e.get("source_ip"), e.get("source_port"),
                             country=name_of(e, "source_country"))
        doc["destination"] = _end(e.get("destination_ip"), e.get("destination_port"),
                                  country=name_of(e, "destination_country"))
        doc["network"] = {}
    if "protocol" in e:
        name = protocol_name(e)
        doc["network"]["transport"] = name.lower() if isinstance(name, str) else None
        doc["network"]["iana_number"] = str(e["protocol"])
    app = name_of(e, "application_id")
    doc["network"]["protocol"] = app.lower() if isinstance(app, str) else None
    doc["network"]["vlan"] = {"id": str(e["vlan_id"]) if e.get("vlan_id") else None}
    if family == "intrusion":
        sid = e.get("signature_id") or e.get("rule_id")
        doc["rule"] = {"id": f"{e.get('generator_id')}:{sid}", "name": name_of(e, "rule_id"),
                       "version": str(e.get("rule_revision")),
                       "category": e.get("classification_description")
                       or name_of(e, "classification_id"),
                       "ruleset": named(e, "intrusion_policy_uuid")}
        flags = e.get("impact_flags")
        level = impact_level(flags) if isinstance(flags, int) else 0
        priority = e.get("priority_id")
        # ECS severity: lower is less severe; FMC priority 1 is the highest.
        doc["event"]["severity"] = {1: 3, 2: 2, 3: 1}.get(priority, 0) if priority else None
        doc["event"]["risk_score"] = {1: 100, 2: 75, 3: 50, 4: 25}.get(level)
        blocked = e.get("blocked")
        doc["event"]["outcome"] = "success" if blocked == 1 else None
        doc["event"]["type"] = ["info", "denied"] if blocked in (1, 4, 7) else ["info", "allowed"]
    if family in ("file", "malware"):
        doc["file"] = {"name": e.get("file_name"), "size": e.get("file_size") or None,
                       "path": e.get("file_path"),
                       "hash": {"sha256": e.get("file_sha256") or e.get("file_sha")},
                       "type": "file"}
        doc["url"] = {"original": e.get("uri")}
        score = e.get("threat_score")
        doc["event"]["risk_score"] = score or None
        if record_type == 125:
            doc["threat"] = {"indicator": {"name": e.get("detection_name")}}
    user = name_of(e, "user_id") or (e.get("user") if isinstance(e.get("user"), str) else None)
    doc["user"] = {"name": user, "id": str(e["user_id"]) if e.get("user_id") else None}
    if record_type == 112:
        _correlation(e, doc)
    elif record_type == 73:
        _connection_chunk(e, doc)
    elif family == "user":
        _user(e, doc)
    elif family == "discovery":
        _discovery(e, doc)
    return doc


def _correlation(e: Mapping[str, Any], doc: dict[str, Any]) -> None:
    """A correlation rule fired: the rule and policy, both ends' users and applications."""
    flags = e.get("impact_flags")
    level = impact_level(flags) if isinstance(flags, int) else 0
    priority = e.get("priority_id")
    doc["rule"] = {"id": _nonzero(e.get("correlation_rule_id")),
                   "name": name_of(e, "correlation_rule_id"),
                   "ruleset": named(e, "correlation_policy_id"),
                   "description": e.get("event_description")}
    doc["event"]["severity"] = {1: 3, 2: 2, 3: 1}.get(priority) if priority else None
    doc["event"]["risk_score"] = {1: 100, 2: 75, 3: 50, 4: 25}.get(level)
    doc["event"]["reason"] = e.get("event_description")
    doc["source"]["user"] = {"name": name_of(e, "source_user_id")}
    doc["destination"]["user"] = {"name": name_of(e, "destination_user_id")}
    doc["source"]["vlan"] = {"id": _nonzero(e.get("source_vlan_id"))}
    app = name_of(e, "destination_server_id")
    doc["network"]["protocol"] = app.lower() if isinstance(app, str) else None
    doc["url"] = {"original": e.get("url")}
    doc["user"] = {"name": name_of(e, "source_user_id"),
                   "id": _nonzero(e.get("source_user_id"))}


def _connection_chunk(e: Mapping[str, Any], doc: dict[str, Any]) -> None:
    """A summary of NetFlow/connection traffic between two hosts."""
    doc["event"]["category"] = ["network"]
    doc["event"]["type"] = ["connection"]
    doc["event"]["start"] = _iso(e.get("start_time") or 0)
    doc["source"] = _end(e.get("initiator_ip"), None, nbytes=e.get("bytes_sent"),
                         packets=e.get("packets_sent"))
    doc["destination"] = _end(e.get("responder_ip"), e.get("responder_port"),
                              nbytes=e.get("bytes_received"), packets=e.get("packets_received"))
    total = (e.get("bytes_sent") or 0) + (e.get("bytes_received") or 0)
    doc["network"]["bytes"] = total or None


def _host(e: Mapping[str, Any]) -> dict[str, Any]:
    header = e.get("discovery_header") or {}
    ip = next((a for a in (header.get("ipv6_address"), header.get("legacy_ip"))
               if a not in (None, "", "::", "0.0.0.0")), None)
    mac = header.get("mac_address")
    # ECS writes MAC addresses upper case, hyphen separated.
    mac = mac.upper().replace(":", "-") if mac and mac != "00:00:00:00:00:00" else None
    return {"ip": ip, "mac": mac}


def _discovery(e: Mapping[str, Any], doc: dict[str, Any]) -> None:
    """A host discovery or user-input event: which host, what was learned about it."""
    header = e.get("discovery_header") or {}
    kind, sub = header.get("event_type"), header.get("event_subtype")
    action = DISCOVERY_EVENT_NAMES.get((kind, sub))
    doc["event"]["action"] = action or doc["event"]["action"]
    doc["event"]["type"] = (["creation"] if kind == 1000
                            else ["deletion"] if action and "Delete" in action
                            else ["change"] if kind in (1001, 1002) else ["info"])
    host = _host(e)
    os_name, os_vendor = e.get("os_fingerprint_name"), e.get("os_fingerprint_vendor")
    os_version = e.get("os_fingerprint_version")
    host.update(
        name=e.get("netbios_name") or (e.get("value") if e.get("record_type") == 42 else None),
        type=str(e["host_type"]) if "host_type" in e else None,
        os={"name": os_name, "version": os_version,
            "full": " ".join(str(p) for p in (os_vendor, os_name, os_version) if p) or None},
    )
    doc["host"] = host
    if "port" in e:  # a server the host runs, or the port a user changed
        doc["server"] = {"ip": host["ip"], "port": e.get("port")}
    client = name_of(e, "client_application_id")
    if client is not None:
        doc["network"]["application"] = str(client).lower()
    app = name_of(e, "application_protocol_id") or name_of(e, "application_id")
    if app is not None:
        doc["network"]["protocol"] = str(app).lower()
    if e.get("vulnerability_id"):
        doc["vulnerability"] = {"id": str(e["vulnerability_id"]),
                                "description": name_of(e, "vulnerability_id")}


_USER_EVENTS = {
    # record type → (category, type, action)
    92: (["iam"], ["user", "deletion"], "user-dropped"),
    93: (["iam"], ["user", "deletion"], "user-removed"),
    94: (["iam"], ["user", "creation"], "user-identified"),
    95: (["authentication"], ["start"], "logged-in"),
    170: (["authentication", "session"], ["start"], "vpn-logged-in"),
    171: (["authentication", "session"], ["end"], "vpn-logged-out"),
}


def _user(e: Mapping[str, Any], doc: dict[str, Any]) -> None:
    """A user identified, logged in or out (also over VPN), or dropped."""
    categories, types, action = _USER_EVENTS.get(e.get("record_type"), (["iam"], ["info"], None))
    doc["event"].update(category=categories, type=types, action=action or doc["event"]["action"])
    if e.get("record_type") in (95, 170, 171):
        doc["event"]["outcome"] = "success"
    full = " ".join(p for p in (e.get("first_name"), e.get("last_name")) if p) or None
    doc["user"] = {"name": e.get("username") or name_of(e, "user_id"),
                   "id": _nonzero(e.get("user_id")), "email": e.get("email"),
                   "domain": e.get("domain") or name_of(e, "realm_id"), "full_name": full}
    doc["host"] = _host(e)
    doc["source"] = _end(e.get("user_ip"), None)
    sessions = e.get("vpn_sessions")
    if isinstance(sessions, list) and sessions:
        first = sessions[0]
        doc["source"] = _end(first.get("client_ip"), None,
                             nbytes=first.get("bytes_transmitted"),
                             country=first.get("client_country_name"))
        doc["destination"] = _end(None, None, nbytes=first.get("bytes_received"))
        duration = first.get("connection_duration")
        doc["event"]["duration"] = duration * 1_000_000_000 if duration else None
        doc["user_agent"] = {"os": {"full": first.get("client_os")},
                             "name": first.get("vpn_client_application")}
    app = name_of(e, "application_protocol_id")
    doc["network"]["protocol"] = app.lower() if isinstance(app, str) else None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _nonzero(value: Any) -> Any:
    return str(value) if value else None


def format_ecs(event: dict[str, Any]) -> bytes:
    # Keep the vendor copy whole, empty strings included: it is the record as decoded (and
    # so not cleaned, which was most of the time spent here).
    doc = _clean(_ecs_fields(event)) or {}
    doc["cisco"] = {"firepower": event}
    return orjson.dumps(doc)


__all__ = ["ECS_VERSION", "ecs_document", "format_ecs"]
