"""Splunk key=value, a drop-in for eNcore's `splunk` adapter (sourcetype
`cisco:estreamer:data`), so the Cisco eStreamer add-on's extractions, aliases and lookups and
customers' dashboards keep working.

What eNcore writes, and so what we write:
* `rec_type=N` first, then `event_sec=S` (the add-on's `TIME_PREFIX = event_sec=`), then the
  record's keys in the order of the table below, space separated.
* eNcore's key names (`src_ip`, `dest_port`, `fw_rule`, `sec_zone_ingress`, `msg`, `class`,
  `sensor`, ..., and its misspellings `smtp_attachements`, `stmp_headers` kept on purpose).
* Where eNcore puts a name from its metadata cache in a key (`fw_rule=Allow outbound web`),
  we put the decorator's name, and the id when no name is known, as eNcore does.
* Values: a string with a space, or with `=`, is wrapped in double quotes; an empty string is
  `""`; UUIDs are quoted (eNcore's UUID objects were); newlines become the two characters
  `\\n` and carriage returns are dropped, so a record is always one line. Unlike eNcore, a `"`
  inside a quoted value is written as `'`, because Splunk would end the value there.
* Absent fields (and None) are left out.

`SPLUNK_KEYS` is the mapping table, one entry per record type, each a sequence of
(eNcore key, source). A source is one of:
  `field`   the value of our field (dotted for nested: `discovery_header.event_type`);
  `~field`  the decorator's name for the field if it has one, else the field's value;
  `^field`  the decorator's name only (the key is left out when no name is known);
  `@name`   a value computed by `_COMPUTED[name]`.
Record types without an entry are written as `rec_type`, eNcore's computed keys, and our
own field names flattened with dots. docs/formats.md lists the table (generated from it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from estreamer.formats.common import (
    event_time,
    get,
    impact_level,
    name_of,
    named,
    protocol_name,
    record_category,
)
from estreamer.formats.encore_types import ENCORE_RECORD_TYPES

SOURCETYPE = "cisco:estreamer:data"

Spec = Sequence[tuple[str, str]]

# ---------------------------------------------------------------------------- the table

# Keys eNcore computes for every record that has the underlying data.
_COMMON_HEAD: Spec = (
    ("rec_type_simple", "@rec_type_simple"),
    ("rec_type_desc", "@rec_type_desc"),
)

_PACKET: Spec = (
    ("sensor", "~device_id"),
    ("device_id", "device_id"),
    ("event_id", "event_id"),
    ("link_type", "link_type"),
    ("packet", "packet_data"),
    ("packet_len", "packet_length"),
    ("packet_usec", "packet_microsecond"),
    ("packet_sec", "packet_second"),
)

_IMPACT_ALERT: Spec = (
    ("sensor", "~device_id"),
    ("blockType", "block_type"),
    ("description", "@impact_alert_description"),
    ("dest_ip", "destination_ip"),
    ("device_id", "device_id"),
    ("event_id", "event_id"),
    ("impact", "@impact_from_impact"),
    ("src_ip", "source_ip"),
)

_DISCOVERY_HEADER: Spec = (
    ("event_usec", "discovery_header.event_microsecond"),
    ("event_subtype", "discovery_header.event_subtype"),
    ("event_type", "discovery_header.event_type"),
    ("event_desc", "@event_desc"),
    ("has_ipv6", "discovery_header.has_ipv6"),
    ("mac_address", "discovery_header.mac_address"),
    ("src_host", "discovery_header.legacy_ip"),
    ("src_ipv6", "discovery_header.ipv6_address"),
)

_CONNECTION: Spec = (
    ("sensor", "~device_id"),
    ("app_proto", "~application_id"),
    ("blockType", "block_type"),
    ("client_app", "~client_application_id"),
    ("client_version", "client_application_version"),
    ("url", "client_url"),
    ("connection_id", "connection_counter"),
    ("dest_autonomous_system", "destination_autonomous_system"),
    ("dest_ip_dynamic_attributes", "destination_dynamic_attributes"),
    ("dest_mask", "destination_mask"),
    ("destination_security_group_tag", "destination_sgt"),
    ("destination_security_group_tag_type", "destination_sgt_type"),
    ("dest_tos", "destination_tos"),
    ("dns_query", "dns_query"),
    ("dns_rec_id", "dns_record_type"),
    ("dns_record_name", "^dns_record_type"),
    ("dns_resp_id", "dns_response_type"),
    ("dns_response_name", "^dns_response_type"),
    ("dns_ttl", "dns_ttl"),
    ("iface_egress", "~egress_interface_uuid"),
    ("egress_vrf_name", "egress_vrf"),
    ("sec_zone_egress", "~egress_zone_uuid"),
    ("file_count", "file_event_count"),
    ("first_pkt_sec", "first_packet_time"),
    ("http_referrer", "http_referrer"),
    ("http_response", "http_response"),
    ("iface_ingress", "~ingress_interface_uuid"),
    ("sec_zone_ingress", "~ingress_zone_uuid"),
    ("src_bytes_dropped", "initiator_bytes_dropped"),
    ("src_ip_country", "~initiator_country"),
    ("src_ip", "initiator_ip"),
    ("src_packets_dropped", "initiator_packets_dropped"),
    ("src_port", "initiator_port"),
    ("src_bytes", "initiator_bytes"),
    ("src_pkts", "initiator_packets"),
    ("ingress_vrf_name", "ingress_vrf"),
    ("instance_id", "connection_instance_id"),
    ("ips_count", "intrusion_event_count"),
    ("num_ioc", "ioc_number"),
    ("ioc_category", "^ioc_number"),
    ("last_pkt_sec", "last_packet_time"),
    *((f"monitor_rule_{n}", f"@monitor_rule_{n}") for n in range(1, 9)),
    ("netbios_domain", "netbios_name"),
    ("netflow_src", "netflow_source_uuid"),
    ("network_analysis_policy_revision", "network_analysis_policy_uuid"),
    ("original_src_country", "~original_client_country"),
    ("original_client_src_ip", "original_client_ip"),
    ("fw_policy", "~access_control_policy_uuid"),
    ("ip_proto", "@ip_proto"),
    ("qoa_applied_interface", "qos_applied_interface_uuid"),
    ("qoa_rule_id", "qos_rule_id"),
    ("referenced_host", "referenced_host"),
    ("dest_bytes_dropped", "responder_bytes_dropped"),
    ("dest_ip_country", "~responder_country"),
    ("dest_ip", "responder_ip"),
    ("dest_packets_dropped", "responder_packets_dropped"),
    ("dest_port", "responder_port"),
    ("dest_bytes", "responder_bytes"),
    ("dest_pkts", "responder_packets"),
    ("fw_rule_action", "~rule_action"),
    ("fw_rule", "~access_control_rule_id"),
    ("fw_rule_reason", "~rule_reason"),
    ("security_context", "security_context"),
    ("ip_layer", "security_intelligence_layer"),
    ("sec_intel_list1", "~security_intelligence_list_1"),
    ("sec_intel_list2", "~security_intelligence_list_2"),
    ("sec_intel_ip", "~security_intelligence_source_destination"),
    ("sec_intel_event", "@sec_intel_event"),
    ("sinkhole_uuid", "sinkhole_uuid"),
    ("sinkhole", "^sinkhole_uuid"),
    ("snmp_in", "snmp_in"),
    ("snmp_out", "snmp_out"),
    ("src_autonomous_system", "source_autonomous_system"),
    ("src_mask", "source_mask"),
    ("source_ip_dynamic_attributes", "source_dynamic_attributes"),
    ("source_security_group_tag", "source_sgt"),
    ("source_security_group_tag_type", "source_sgt_type"),
    ("src_tos", "source_tos"),
    ("ssl_actual_action", "~ssl_actual_action"),
    ("ssl_cert_fingerprint", "ssl_certificate_fingerprint"),
    ("ssl_cipher_suite", "~ssl_cipher_suite"),
    ("ssl_expected_action", "~ssl_expected_action"),
    ("ssl_flow_error", "ssl_flow_error"),
    ("ssl_flow_flags", "~ssl_flow_flags"),
    ("ssl_flow_messages", "~ssl_flow_messages"),
    ("ssl_flow_status", "~ssl_flow_status"),
    ("ssl_policy_id", "ssl_policy_uuid"),
    ("ssl_rule_id", "ssl_rule_id"),
    ("ssl_server_cert_status", "~ssl_server_certificate_status"),
    ("ssl_server_name", "ssl_server_name"),
    ("ssl_session_id", "ssl_session_id"),
    ("ssl_ticket_id", "ssl_ticket_id"),
    ("ssl_url_category", "~ssl_url_category"),
    ("ssl_version", "~ssl_version"),
    ("tcp_flags", "tcp_flags"),
    ("threat_intelligence_category", "threat_intelligence_category"),
    ("url_category", "~url_category"),
    ("url_reputation", "~url_reputation"),
    ("user_agent", "user_agent"),
    ("user_id", "user_id"),
    ("user", "^user_id"),  # beyond eNcore, which never named the user of a connection
    ("vlan_id", "vlan_id"),
    ("web_app", "~web_application_id"),
    *_DISCOVERY_HEADER,
)

_INTRUSION: Spec = (
    ("sensor", "~device_id"),
    ("fw_policy", "~access_control_policy_uuid"),
    ("fw_rule", "~access_control_rule_id"),
    ("app_proto", "~application_id"),
    ("blockType", "block_type"),
    ("blocked", "~blocked"),
    ("blocked_reason_id", "~blocked_reason"),
    ("class", "^classification_id"),
    ("class_desc", "classification_description"),
    ("client_app", "~client_application_id"),
    ("connection_id", "connection_counter"),
    ("instance_id", "connection_instance_id"),
    ("connection_sec", "connection_timestamp"),
    ("dest_ip_country", "~destination_country"),
    ("dest_ip", "destination_ip"),
    ("dest_port", "destination_port"),
    ("device_id", "device_id"),
    ("event_id", "event_id"),
    ("event_usec", "event_microsecond"),
    ("gid", "generator_id"),
    ("sid", "@sid"),
    ("msg", "^rule_id"),
    ("http_hostname", "http_hostname"),
    ("http_response", "http_response"),
    ("http_uri", "http_uri"),
    ("impact_bits", "impact_flags"),
    ("impact", "@impact_from_flags"),
    ("impact_desc", "^impact"),
    ("iface_egress", "~egress_interface_uuid"),
    ("iface_ingress", "~ingress_interface_uuid"),
    ("num_ioc", "ioc_number"),
    ("ioc_category", "^ioc_number"),
    ("ip_proto", "@ip_proto"),
    ("mpls_label", "mpls_label"),
    ("net_analysis_policy", "^network_analysis_policy_uuid"),
    ("original_src_ip", "original_source_ip"),
    ("ids_policy", "~intrusion_policy_uuid"),
    ("priority", "~priority_id"),
    ("rev", "rule_revision"),
    ("security_context", "security_context"),
    ("sec_zone_egress", "~egress_zone_uuid"),
    ("sec_zone_ingress", "~ingress_zone_uuid"),
    ("smtp_attachements", "smtp_attachments"),  # eNcore's spelling
    ("smtp_from", "smtp_from"),
    ("stmp_headers", "smtp_headers"),  # eNcore's spelling
    ("smtp_to", "smtp_to"),
    ("snort_version", "snort_version"),
    ("src_ip_country", "~source_country"),
    ("src_ip", "source_ip"),
    ("src_port", "source_port"),
    ("ssl_actual_action", "~ssl_actual_action"),
    ("ssl_flow_status", "~ssl_flow_status"),
    ("user", "~user_id"),
    ("vlan_id", "vlan_id"),
    ("web_app", "~web_application_id"),
)

_FILE: Spec = (
    ("sensor", "~device_id"),
    ("file_action", "~action"),
    ("app_proto", "~application_id"),
    ("archive_depth", "archive_depth"),
    ("archive_file_status", "~archive_file_status"),
    ("archive_name", "archive_name"),
    ("archive_sha", "archive_sha"),
    ("client_app", "~client_application_id"),
    ("connection_id", "connection_counter"),
    ("instance_id", "connection_instance_id"),
    ("connection_sec", "connection_timestamp"),
    ("dest_ip_country", "~destination_country"),
    ("dest_ip", "destination_ip"),
    ("dest_port", "destination_port"),
    ("device_id", "device_id"),
    ("direction", "~direction"),
    ("disposition", "~disposition"),
    ("iface_egress", "egress_vrf"),  # eNcore puts the VRF names under the interface keys
    ("iface_ingress", "ingress_vrf"),
    ("file_sandbox_status", "file_analysis_status"),
    ("file_analysis_status", "^file_analysis_status"),
    ("file_name", "file_name"),
    ("file_size", "file_size"),
    ("file_storage_status", "~file_storage_status"),
    ("file_type", "~file_type_id"),
    ("file_policy", "^access_control_policy_uuid"),
    ("http_response", "http_response"),
    ("malware_analysis_status", "~local_malware_analysis_status"),
    ("ip_proto", "@ip_proto"),
    ("security_context", "security_context"),
    ("sha256", "file_sha256"),
    ("signature", "signature"),
    ("src_ip_country", "~source_country"),
    ("src_ip", "source_ip"),
    ("src_port", "source_port"),
    ("spero_disposition", "~spero_disposition"),
    ("ssl_actual_action", "~ssl_actual_action"),
    ("ssl_cert_fingerprint", "ssl_certificate_fingerprint"),
    ("ssl_flow_status", "~ssl_flow_status"),
    ("threat_score", "threat_score"),
    ("uri", "uri"),
    ("user", "~user_id"),
    ("web_app", "~web_application_id"),
)

_MALWARE: Spec = (
    ("sensor", "~device_id"),
    ("policy_uuid", "access_control_policy_uuid"),
    ("file_policy", "^access_control_policy_uuid"),
    ("file_action", "~action"),
    ("agent_uuid", "agent_uuid"),
    ("app_proto", "~application_id"),
    ("archive_depth", "archive_depth"),
    ("archive_name", "archive_name"),
    ("archive_sha", "archive_sha"),
    ("client_app", "~client_application_id"),
    ("cloud", "^cloud_uuid"),
    ("connection_id", "connection_counter"),
    ("connection_sec", "connection_timestamp"),
    ("instance_id", "connection_instance_id"),
    ("dest_ip_country", "~destination_country"),
    ("dest_ip", "destination_ip"),
    ("dest_port", "destination_port"),
    ("detection", "detection_name"),
    ("detector", "~detector_id"),
    ("device_id", "device_id"),
    ("direction", "~direction"),
    ("disposition", "~disposition"),
    ("event_description", "event_description"),
    ("subtype", "~event_subtype_id"),
    ("type", "~event_type_id"),
    ("malware_event_type", "^event_type_id"),
    ("malware_event_subtype", "^event_subtype_id"),
    ("file_name", "file_name"),
    ("file_path", "file_path"),
    ("sha256", "file_sha"),
    ("file_size", "file_size"),
    ("file_ts", "file_timestamp"),
    ("file_type", "~file_type_id"),
    ("http_response", "http_response"),
    ("num_ioc", "ioc_number"),
    ("ioc_category", "^ioc_number"),
    ("parent_fname", "parent_file_name"),
    ("parent_sha256", "parent_file_sha"),
    ("ip_proto", "@ip_proto"),
    ("retro_disposition", "~retro_disposition"),
    ("security_context", "security_context"),
    ("src_ip_country", "~source_country"),
    ("src_ip", "source_ip"),
    ("src_port", "source_port"),
    ("ssl_actual_action", "~ssl_actual_action"),
    ("ssl_cert_fingerprint", "ssl_certificate_fingerprint"),
    ("ssl_flow_status", "~ssl_flow_status"),
    ("threat_score", "threat_score"),
    ("uri", "uri"),
    ("user", "user"),
    ("agent_user", "~user_id"),
    ("web_app", "~web_application_id"),
)

_EXTRA_DATA: Spec = (
    ("sensor", "~device_id"),
    ("data", "data"),
    ("device_id", "device_id"),
    ("event_id", "event_id"),
    ("type", "extra_data_type"),
    ("xff_type", "^extra_data_type"),
)

_ID_NAME: Spec = (("id", "id"), ("name", "name"))
_ID_DESCRIPTION: Spec = (("id", "id"), ("description", "name"))
_STATUS_DESCRIPTION: Spec = (("status", "id"), ("description", "name"))
_UUID_NAME: Spec = (("name", "name"), ("uuid", "uuid"))

SPLUNK_KEYS: Mapping[int, Spec] = {
    2: _PACKET,
    4: (("priority_id", "id"), ("name", "name")),
    9: _IMPACT_ALERT,
    54: (("fpuuid", "uuid"), ("os_name_data", "name"), ("os_vendor_data", "vendor"),
         ("os_version_data", "version")),
    **dict.fromkeys((55, 59, 60, 63, 90, 91, 96, 109, 120, 121, 122, 123, 128, 129, 130, 131,
                     281, 510, 515, 516, 517, 602, 604), _ID_NAME),
    66: (("gid", "generator_id"), ("id", "rule_id"), ("rev", "rule_revision"),
         ("sid", "signature_id"), ("rule_uuid", "rule_uuid"),
         ("rev_uuid", "rule_revision_uuid"), ("msg", "message")),
    67: (("id", "id"), ("name", "name"), ("description", "description"), ("uuid", "uuid"),
         ("rev_uuid", "revision_uuid")),
    69: (("id", "id"), ("rev_uuid", "revision_uuid"), ("uuid", "uuid"),
         ("description", "description"), ("name", "name")),
    70: (("rev_uuid", "revision_uuid"), ("uuid", "uuid"), ("description", "description"),
         ("event_type", "rule_event_type"), ("id", "id"), ("name", "name"),
         ("whitelist_uuid", "allow_list_uuid")),
    71: _CONNECTION,
    98: (("ip_proto", "protocol"), ("id", "id"), ("username", "name")),
    110: _EXTRA_DATA,
    111: (("encoding", "encoding"), ("name", "name"), ("type", "extra_data_type")),
    **dict.fromkeys((115, 116, 117, 118, 127, 145, 146, 147, 322, 530, 700), _UUID_NAME),
    119: (("id", "rule_id"), ("name", "name"), ("uuid", "revision")),
    124: (("description", "description"), ("reason", "id")),
    125: _MALWARE,
    280: (("policy_uuid", "access_control_policy_uuid"), ("fw_rule", "id"), ("name", "name")),
    320: (("description", "description"), ("id", "id"), ("name", "name")),
    321: (("description", "description"), ("id", "id"), ("name", "name")),
    400: _INTRUSION,
    500: _FILE,
    502: _FILE,
    **dict.fromkeys((518, 519), _STATUS_DESCRIPTION),
    520: (("name", "name"), ("id", "country_code")),
    **dict.fromkeys((605, 606, 608), _ID_DESCRIPTION),
}

# ---------------------------------------------------------------------------- computed keys


def _rec_type_simple(event: Mapping[str, Any]) -> Any:
    known = ENCORE_RECORD_TYPES.get(event.get("record_type", -1))
    return known[1] if known else record_category(event).upper()


def _rec_type_desc(event: Mapping[str, Any]) -> Any:
    known = ENCORE_RECORD_TYPES.get(event.get("record_type", -1))
    return known[0] if known else event.get("record_name")


def _event_desc(event: Mapping[str, Any]) -> Any:
    # eNcore's one-line text for a discovery event type/subtype; only flows are streamed today.
    kind = get(event, "discovery_header.event_type")
    sub = get(event, "discovery_header.event_subtype")
    return DISCOVERY_EVENT_NAMES.get((kind, sub)) if kind is not None else None


DISCOVERY_EVENT_NAMES: Mapping[tuple[int, int], str] = {
    (1003, 1): "Flow Statistics",
    (1003, 2): "Flow Chunk",
}


def _impact_alert_description(event: Mapping[str, Any]) -> Any:
    # Impact alerts carry "[Impact: N] ..." text; eNcore writes just N, or the whole text
    # with double quotes made single when there is no such prefix.
    text = event.get("description")
    if not isinstance(text, str):
        return text
    found = re.search(r"\[Impact:\s(.+?)\]", text)
    return found.group(1) if found else text.replace('"', "'")


def _monitor_rule(n: int) -> Callable[[Mapping[str, Any]], Any]:
    field = f"monitor_rule_{n}"

    def compute(event: Mapping[str, Any]) -> Any:
        value = event.get(field)
        if value == 0:
            return "N/A"  # eNcore's word for "no monitor rule in this slot"
        return named(event, field)

    return compute


def _sid(event: Mapping[str, Any]) -> Any:
    # The rendered SID the UI shows comes from the rule-message metadata; for Snort rules it
    # equals the rule ID, which is the best fallback there is.
    for key in ("signature_id", "rendered_id"):
        if event.get(key) is not None:
            return event[key]
    return event.get("rule_id")


_COMPUTED: Mapping[str, Callable[[Mapping[str, Any]], Any]] = {
    "rec_type_simple": _rec_type_simple,
    "rec_type_desc": _rec_type_desc,
    "event_desc": _event_desc,
    "impact_alert_description": _impact_alert_description,
    "impact_from_impact": lambda e: (
        impact_level(e["impact"]) if isinstance(e.get("impact"), int) else None
    ),
    "impact_from_flags": lambda e: (
        impact_level(e["impact_flags"]) if isinstance(e.get("impact_flags"), int) else None
    ),
    "ip_proto": lambda e: protocol_name(e, "protocol"),
    "sec_intel_event": lambda e: (
        None if e.get("security_intelligence_source_destination") is None
        else "No" if e["security_intelligence_source_destination"] == 0 else "Yes"
    ),
    "sid": _sid,
    **{f"monitor_rule_{n}": _monitor_rule(n) for n in range(1, 9)},
}


def resolve(event: Mapping[str, Any], source: str) -> Any:
    """The value one table source names (see the module docstring)."""
    kind = source[0]
    if kind == "~":
        return named(event, source[1:])
    if kind == "^":
        return name_of(event, source[1:])
    if kind == "@":
        return _COMPUTED[source[1:]](event)
    return get(event, source)


# ---------------------------------------------------------------------------- writing

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def splunk_value(value: Any) -> str:
    """One value as eNcore's key=value writer renders it."""
    if isinstance(value, str):
        if _UUID.match(value):
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
        return splunk_value(repr(value))
    return splunk_value(str(value))


def splunk_pairs(event: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The (key, value) pairs of one event in eNcore's order, before rendering."""
    record_type = event.get("record_type")
    second, micro = event_time(event)
    pairs: dict[str, Any] = {"rec_type": record_type}
    if second:
        pairs["event_sec"] = second
    spec = SPLUNK_KEYS.get(record_type) if isinstance(record_type, int) else None
    for key, source in _COMMON_HEAD:
        pairs[key] = resolve(event, source)
    if spec is None:
        _flatten("", event, pairs)
    else:
        for key, source in spec:
            value = resolve(event, source)
            if value is not None:
                pairs[key] = value
    if micro and "event_usec" not in pairs:
        pairs["event_usec"] = micro
    return [(k, v) for k, v in pairs.items() if v is not None]


_SKIP_IN_FALLBACK = frozenset({"record_type", "record_name", "record_category"})


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if not prefix and key in _SKIP_IN_FALLBACK:
                continue
            _flatten(f"{prefix}.{key}" if prefix else key, inner, out)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            _flatten(f"{prefix}.{index}", inner, out)
    elif value is not None:
        out.setdefault(prefix, value)


def format_splunk(event: dict[str, Any]) -> bytes:
    return " ".join(f"{k}={splunk_value(v)}" for k, v in splunk_pairs(event)).encode()



def mapping_markdown() -> str:
    """The mapping table as Markdown, for docs/formats.md (a test keeps the doc current)."""
    lines = ["| record types | eNcore key | from |", "|---|---|---|"]
    by_spec: dict[int, list[int]] = {}
    specs: dict[int, Spec] = {}
    for record_type, spec in SPLUNK_KEYS.items():
        by_spec.setdefault(id(spec), []).append(record_type)
        specs[id(spec)] = spec
    for key, types in by_spec.items():
        label = ", ".join(str(t) for t in sorted(types))
        for splunk_key, source in specs[key]:
            lines.append(f"| {label} | `{splunk_key}` | `{source}` |")
    return "\n".join(lines) + "\n"
