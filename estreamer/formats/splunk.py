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
  `@name`   a value computed by `_COMPUTED[name]`;
  `*list.field` the field (its name if known) of every item of a list, comma separated.
Record types without an entry are written as `rec_type`, eNcore's computed keys, and our
own field names flattened with dots. docs/formats.md lists the table (generated from it).
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from estreamer.compiled import description, optional
from estreamer.formats.common import (
    IP_PROTOCOLS,
    event_time,
    get,
    impact_level,
    name_keys,
    name_of,
    named,
    protocol_name,
    record_category,
    walk,
)
from estreamer.formats.encore_types import ENCORE_RECORD_TYPES
from estreamer.memo import BoundedMemo

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
    ("src_host", "@host_ip"),
    ("src_ipv6", "discovery_header.ipv6_address"),
)

# What eNcore writes for every discovery (RNA), user (RUA) and IOC event: the header's keys
# and the device's name as `sensor`.
_RNA: Spec = (
    ("sensor", "~discovery_header.device_id"),
    ("device_id", "discovery_header.device_id"),
    *_DISCOVERY_HEADER,
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

# ---- discovery (RNA) events. eNcore's keys where its table had a row; for the records it
# left empty (it wrote only the header's computed keys), the same key names it uses for the
# same data elsewhere (`port`, `confidence`, `os_uuid`, `source_type`, ...), so a search
# written for one record type finds the others. `ip_range` and the `*` lists are ours.

_SOURCE: Spec = (("source_type", "~source_type"), ("source_id", "source_id"))

_HOST_SERVER: Spec = (
    *_RNA,
    ("confidence", "confidence"),
    ("hits", "hits"),
    ("last_used", "last_used"),
    ("port", "port"),
    ("app_proto", "*server_information.application_id"),  # beyond eNcore
)

_HOST_CLIENT: Spec = (
    *_RNA,
    ("app_proto", "~application_protocol_id"),
    ("hits", "hits"),
    ("client_id", "client_application_id"),
    ("client_app", "^client_application_id"),
    ("last_used", "last_used"),
    ("version", "version"),
)

_OS: Spec = (
    *_RNA,
    ("confidence", "confidence"),
    ("os_uuid", "os_fingerprint_uuid"),
    ("os_name", "os_fingerprint_name"),
    ("os_vendor", "os_fingerprint_vendor"),
    ("os_version", "os_fingerprint_version"),
)

_PORT_EVENT: Spec = (*_RNA, ("port", "port"))

_MAC_EVENT: Spec = (
    *_RNA,
    ("additional_mac_address", "mac"),
    ("last_seen", "last_seen"),
    ("primary", "primary"),
    ("ttl", "ttl"),
)

_ATTRIBUTE: Spec = (
    *_RNA,
    ("source_id", "source_id"),
    ("attribute_id", "attribute_id"),
    ("attribute", "attribute_name"),
    ("attribute_uuid", "attribute_uuid"),
    ("attribute_type", "attribute_type"),
    ("attribute_category", "attribute_category"),
)

_USER_PRODUCT: Spec = (
    *_RNA,
    *_SOURCE,
    ("ip_range", "@ip_ranges"),
    ("port", "port"),
    ("ip_proto", "@ip_proto"),
    ("app_proto", "~application_id"),
    ("os_uuid", "os_fingerprint_uuid"),
    ("os_name", "os_fingerprint_name"),
    ("vendor", "custom_vendor"),
    ("product", "custom_product"),
    ("version", "custom_version"),
)

_USER_PROTOCOLS: Spec = (*_RNA, *_SOURCE, ("protocols", "*protocols.protocol_number"))

_USER_CLIENTS: Spec = (
    *_RNA,
    *_SOURCE,
    ("client_app", "*client_applications.client_application_id"),
    ("app_proto", "*client_applications.application_protocol_id"),
)

_USER_HOSTS: Spec = (
    *_RNA,
    *_SOURCE,
    ("ip_range", "@ip_ranges"),
    ("macs", "*mac_addresses.mac"),
)

_USER_VULNERABILITIES: Spec = (
    *_RNA,
    *_SOURCE,
    ("vulnerability_type", "vulnerability_type"),
    ("vulnerabilities", "*vulnerabilities.vulnerability_id"),
)

_USER_ATTRIBUTE_VALUE: Spec = (
    *_RNA,
    *_SOURCE,
    ("ip_range", "@ip_ranges"),
    ("attribute", "~attribute_id"),
    ("attribute_value", "attribute_value"),
)

_IDENTITY: Spec = (
    *_RNA,
    ("source_id", "source_id"),
    ("source_type", "~source_type"),
    ("port", "port"),
    ("ip_proto", "@ip_proto"),
    ("server_map", "server_map_id"),
    ("identity_uuid", "identity_uuid"),
)

# ---- user (RUA) events. eNcore wrote the user's numeric id as `user`; kept.

_USER_INFORMATION: Spec = (
    *_RNA,
    ("user", "user_id"),
    ("username", "username"),  # beyond eNcore (it left 92–94's directory fields out)
    ("realm", "~realm_id"),
    ("app_proto", "~application_protocol_id"),
    ("email", "email"),
    ("department", "department"),
)

_USER_LOGIN: Spec = (
    *_RNA,
    ("client_app", "~application_id"),
    ("email", "email"),
    ("ipv4", "user_ipv4"),
    ("ipv6", "user_ip"),
    ("login_type", "login_type"),
    ("reported_by", "reported_by"),
    ("timestamp", "timestamp"),
    ("user", "user_id"),
    ("username", "username"),
    ("domain", "domain"),  # beyond eNcore from here on
    ("realm", "~realm_id"),
    ("app_proto", "~application_protocol_id"),
    ("user_auth_type", "auth_type"),
    ("description", "description"),
)

# VPN login/logoff: eNcore wrote the first VPN session's details under plain keys.
_VPN: Spec = (
    *_RNA,
    ("user", "user_id"),
    ("username", "username"),
    ("domain", "domain"),
    ("email", "email"),
    ("description", "description"),
    ("reported_by", "reported_by"),
    ("realm_id", "realm_id"),
    ("endpoint_profile_id", "endpoint_profile_id"),
    ("security_group_id", "security_group_id"),
    ("range_start", "range_start"),
    ("protocol", "~application_protocol_id"),
    ("user_auth_type", "auth_type"),
    ("ipv6Address", "user_ip"),  # eNcore's spelling
    ("index", "vpn_sessions.0.index"),
    ("vpn_type", "vpn_sessions.0.vpn_type"),
    ("vpn_policy", "vpn_sessions.0.group_policy"),
    ("vpn_profile", "vpn_sessions.0.vpn_connection_profile"),
    ("client_ip", "vpn_sessions.0.client_ip"),
    ("country_code", "~vpn_sessions.0.client_country"),
    ("client_os", "vpn_sessions.0.client_os"),
    ("client_app", "vpn_sessions.0.vpn_client_application"),
    ("duration", "vpn_sessions.0.connection_duration"),
    ("bytes_transmitted", "vpn_sessions.0.bytes_transmitted"),
    ("bytes_received", "vpn_sessions.0.bytes_received"),
)

# ---- correlation events: eNcore's keys, and its names where it looked them up.
_CORRELATION: Spec = (
    ("sensor", "~device_id"),
    ("policy_sensor", "device_id"),
    ("event_id", "event_id"),
    ("policy_event_id", "trigger_event_id"),
    ("corr_policy", "~correlation_policy_id"),
    ("corr_rule", "~correlation_rule_id"),
    ("priority", "~priority_id"),
    # eNcore always wrote `description=""` here; we write the event's description.
    ("description", "event_description"),
    ("event_type", "correlation_event_type"),
    ("gid", "generator_id"),
    ("sid", "signature_id"),
    ("orig_event_sec", "trigger_event_second"),
    ("orig_event_usec", "trigger_event_microsecond"),
    ("defined_mask", "event_defined_mask"),
    ("impact_bits", "impact_flags"),
    ("impact", "@impact_from_flags"),
    ("ip_proto", "@ip_proto"),
    ("net_proto", "~network_protocol"),
    ("src_ip", "source_ip"),
    ("src_host_type", "source_host_type"),
    ("src_vlan_id", "source_vlan_id"),
    ("src_os_fingerprint_uuid", "source_os_fingerprint_uuid"),
    ("src_os_name", "source_os_fingerprint_name"),
    ("src_os_vendor", "source_os_fingerprint_vendor"),
    ("src_os_ver", "source_os_fingerprint_version"),
    ("src_criticality", "~source_criticality_id"),
    ("src_user", "~source_user_id"),
    ("src_port", "source_port"),
    ("src_app_proto", "~source_server_id"),
    ("src_ip_country", "~source_country"),
    ("dest_ip", "destination_ip"),
    ("dest_host_type", "destination_host_type"),
    ("dest_vlan_id", "destination_vlan_id"),
    ("dest_os_fingerprint_uuid", "destination_os_fingerprint_uuid"),
    ("dest_os_name", "destination_os_fingerprint_name"),
    ("dest_os_vendor", "destination_os_fingerprint_vendor"),
    ("dest_os_ver", "destination_os_fingerprint_version"),
    ("dest_criticality", "~destination_criticality_id"),
    ("dest_user", "~destination_user_id"),
    ("dest_port", "destination_port"),
    ("dest_app_proto", "~destination_server_id"),
    ("dest_ip_country", "~destination_country"),
    ("blocked", "~blocked"),
    ("intrusion_policy", "intrusion_policy_uuid"),
    ("action", "rule_action"),
    ("netbios_domain", "netbios_name"),
    ("url_category", "~url_category"),
    ("url_reputation", "~url_reputation"),
    ("url", "url"),
    ("client_id", "client_application_id"),
    ("client_version", "client_application_version"),
    ("policy_uuid", "access_control_policy_uuid"),
    ("policy_rule", "access_control_rule_id"),
    ("iface_ingress", "~ingress_interface_uuid"),
    ("iface_egress", "~egress_interface_uuid"),
    ("sec_zone_ingress", "~ingress_zone_uuid"),
    ("sec_zone_egress", "~egress_zone_uuid"),
    ("sec_intel_policy", "^security_intelligence_uuid"),
    ("security_context", "security_context"),
    ("ssl_policy_id", "ssl_policy_uuid"),
    ("ssl_rule_id", "ssl_rule_id"),
    ("ssl_actual_action", "~ssl_actual_action"),
    ("ssl_flow_status", "~ssl_flow_status"),
    ("ssl_cert_fingerprint", "ssl_certificate_fingerprint"),
)

_CONNECTION_CHUNK: Spec = (
    *_RNA,
    ("src_ip", "initiator_ip"),
    ("dest_ip", "responder_ip"),
    ("dest_port", "responder_port"),
    ("ip_proto", "@ip_proto"),
    ("app_proto", "~application_id"),
    ("first_pkt_sec", "start_time"),
    ("connection_type", "connection_type"),
    ("netflow_src", "netflow_detector_ip"),
    ("src_pkts", "packets_sent"),
    ("dest_pkts", "packets_received"),
    ("src_bytes", "bytes_sent"),
    ("dest_bytes", "bytes_received"),
    ("connections", "connections"),
)

_RULE_DOCUMENTATION: Spec = (
    ("sid", "signature_id"),
    ("gid", "generator_id"),
    ("rev", "rule_revision"),
    ("msg", "rule_message"),
    ("summary", "summary"),
    ("impact", "documented_impact"),
    ("detail", "detail"),
    ("affected_systems", "affected_systems"),
    ("attack_scenarios", "attack_scenarios"),
    ("ease_of_attack", "ease_of_attack"),
    ("false_positives", "false_positives"),
    ("false_negatives", "false_negatives"),
    ("corrective_action", "corrective_action"),
    ("contributors", "contributors"),
    ("additional_references", "additional_references"),
)

_POLICY_ON_DEVICE: Spec = (("sensor", "~device_id"), *_UUID_NAME)

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
    **dict.fromkeys((115, 116, 117, 118, 127, 322, 530, 700), _UUID_NAME),
    **dict.fromkeys((145, 146, 147), _POLICY_ON_DEVICE),
    119: (("id", "rule_id"), ("name", "name"), ("uuid", "revision")),
    124: (("description", "description"), ("reason", "id")),
    125: _MALWARE,
    280: (("policy_uuid", "access_control_policy_uuid"), ("fw_rule", "id"), ("name", "name")),
    320: (("description", "description"), ("id", "id"), ("name", "name")),
    321: (("description", "description"), ("id", "id"), ("name", "name")),
    # 104/105: the 4.x intrusion event, the same keys as its successor
    **dict.fromkeys((104, 105, 400), _INTRUSION),
    500: _FILE,
    502: _FILE,
    **dict.fromkeys((518, 519), _STATUS_DESCRIPTION),
    520: (("name", "name"), ("id", "country_code")),
    **dict.fromkeys((605, 606, 607, 608), _ID_DESCRIPTION),
    # discovery (RNA) events
    10: (*_RNA, ("hops", "hops"), ("last_seen", "last_seen"), ("host_type", "host_type"),
         ("host_ip_address", "ip_address"), ("jailbroken", "jailbroken"), ("mobile", "mobile"),
         ("netbios_domain", "netbios_name"), ("vlan_id", "vlan_id"),
         ("vlan_presence", "vlan_presence"), ("vlan_priority", "vlan_priority"),
         ("vlan_type", "vlan_type"), ("ip_address", "discovery_header.legacy_ip")),
    **dict.fromkeys((11, 12, 16, 17, 51, 52), _HOST_SERVER),
    13: (*_RNA, ("description", "@rec_type_desc"), ("net_proto", "~network_protocol")),
    14: (*_RNA, ("description", "@rec_type_desc"), ("ip_address", "discovery_header.legacy_ip"),
         ("ip_proto", "@transport_proto")),
    **dict.fromkeys((15, 35, 107), _HOST_CLIENT),
    **dict.fromkeys((18, 53), _OS),
    **dict.fromkeys((19, 20, 21, 44), _RNA),
    22: (*_RNA, ("ip_address", "discovery_header.legacy_ip"), ("description", "@rec_type_desc"),
         ("hops", "hops")),
    **dict.fromkeys((23, 24, 25, 26), _PORT_EVENT),
    **dict.fromkeys((27, 28), _MAC_EVENT),
    29: (*_RNA, ("new_ip", "new_ip")),
    31: (*_RNA, ("host_type", "host_type")),
    34: (*_RNA, ("vlan_id", "vlan_id"), ("vlan_type", "vlan_type"),
         ("vlan_priority", "vlan_priority")),
    42: (*_RNA, ("netbios_domain", "value")),
    45: (*_RNA, ("port", "port"), ("ip_proto", "@ip_proto"), ("banner", "banner")),
    **dict.fromkeys((46, 47, 48), _ATTRIBUTE),
    73: _CONNECTION_CHUNK,
    **dict.fromkeys((74, 75, 86), _USER_PRODUCT),
    **dict.fromkeys((76, 88), _USER_PROTOCOLS),
    **dict.fromkeys((77, 87), _USER_CLIENTS),
    **dict.fromkeys((78, 85), _USER_HOSTS),
    79: (*_RNA, *_SOURCE, ("ports", "*servers.port")),
    **dict.fromkeys((80, 81), _USER_VULNERABILITIES),
    82: (*_RNA, *_SOURCE, ("ip_range", "@ip_ranges"), ("criticality", "~criticality_id")),
    **dict.fromkeys((83, 84), _USER_ATTRIBUTE_VALUE),
    89: (*_RNA, ("system_user", "~system_user_id"), ("scan_type", "~scan_type"),
         ("ip_address", "ip_address"), ("port", "port"), ("ip_proto", "@ip_proto"),
         ("vulnerabilities", "*vulnerabilities.scanner_vulnerability_id")),
    101: (*_RNA, ("ip_address", "discovery_header.legacy_ip"), ("last_seen", "last_seen"),
          ("source_id", "source_id"), ("source_type", "~source_type"),
          ("ttl_difference", "ttl_difference"), ("os_type", "fingerprint_type"),
          ("os_uuid", "os_fingerprint_uuid"), ("os_name", "os_fingerprint_name"),
          ("os_vendor", "os_fingerprint_vendor"), ("os_version", "os_fingerprint_version")),
    **dict.fromkeys((102, 103), _IDENTITY),
    160: (*_RNA, ("id", "ioc_id"), ("ioc_category", "ioc_category")),
    # user (RUA) events
    **dict.fromkeys((92, 93, 94), _USER_INFORMATION),
    95: _USER_LOGIN,
    **dict.fromkeys((170, 171), _VPN),
    112: _CORRELATION,
    # metadata eNcore knew
    62: (("id", "id"), ("name", "name"), ("protocol", "protocol")),
    161: (("ioc_id", "id"), ("category", "category"), ("event_type", "ioc_event_type")),
    260: (("description", "description"), ("ip_proto", "@ip_proto"), ("type", "icmp_type")),
    270: (("code", "icmp_code"), ("description", "description"), ("ip_proto", "@ip_proto"),
          ("type", "icmp_type")),
    511: (("disposition", "~disposition"), ("name", "file_name"), ("sha256", "file_sha256"),
          ("user_defined", "user_defined")),
    # metadata eNcore wrote without fields: the record's own, under eNcore-style keys
    **dict.fromkeys((58, 61, 300, 302, 350, 613), _ID_NAME),
    **dict.fromkeys((282, 600), _UUID_NAME),
    57: (("id", "id"), ("title", "title"), ("impact", "impact"), ("exploits", "exploits"),
         ("remote", "remote"), ("published_date", "published_date"),
         ("description", "short_description")),
    106: (("id", "id"), ("scanner_type", "scanner_type"), ("title", "title"),
          ("description", "description"), ("cve_id", "cve_id"), ("bugtraq_id", "bugtraq_id")),
    132: (("security_context", "security_context"), ("name", "name")),
    140: _RULE_DOCUMENTATION,
    301: (("id", "id"), ("name", "profile_name"), ("full_name", "full_name")),
    601: (("id", "rule_id"), ("name", "name"), ("uuid", "revision")),
    614: (("ssl_cert_fingerprint", "ssl_certificate_fingerprint"),
          ("subject_cn", "subject_common_name"), ("subject_org", "subject_organization"),
          ("issuer_cn", "issuer_common_name"), ("issuer_org", "issuer_organization"),
          ("serial_number", "serial_number"), ("valid_start", "valid_start_time"),
          ("valid_end", "valid_end_time")),
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


def _names(event_type: int, *names: str | None) -> dict[tuple[int, int], str]:
    return {(event_type, sub): name for sub, name in enumerate(names, 1) if name}


# eNcore's `event_desc` text by discovery (event type, subtype): the FMC's event names, with
# eNcore's spelling kept ("Applicastion") because saved searches match these strings.
DISCOVERY_EVENT_NAMES: Mapping[tuple[int, int], str] = {
    **_names(1000, "New Host", "New TCP Service", "New Network Protocol",
             "New Transport Protocol", "New IP to IP traffic", "New UDP Service",
             "New Client Applicastion", "New OS Fingerprint"),
    **_names(1001, "Host IP Address Changed", "OS Information Update", "Host IP Address Reused",
             "Vulnerability Changed", "Hops Change", "TCP Service Information Update",
             "Host Timeout", "TCP Port Closed", "UDP Port Closed",
             "UDP Service Information Update", "TCP Port Timeout", "UDP Port Timeout",
             "MAC Information Change", "Additional MAC Detected", "Host Last Seen",
             "Host Identified as Router or Bridge", "Flow Statistics",
             "VLAN Tag Information Update", "Host Deleted: Limit Reached",
             "Client Application Timeout", "NetBIOS Name Change", "NetBIOS Domain Change",
             "Host Dropped: Host Limit Reached", "Banner Update",
             "TCP Service Confidence Update", "UDP Service Confidence Update",
             "OS Confidence Update", "DHCP Information", "Identity Conflict",
             "Identity Timeout", "Secondary Host Update", "Client Application Update"),
    **_names(1002, "Valid Vulnerabilities", "Invalid Vulnerabilities", "Delete Address",
             "Delete Service", "Set Host Criticality", "Host Attribute Add",
             "Host Attribute Update", "Host Attribute Delete", "Host Attribute Set Value",
             "Host Attribute Delete Value", "Add Scan Result",
             "Set Vulnerability Impact Qualification", "User Policy Control",
             "Delete Protocol", "Delete Client Application", "Set Operating System Definition",
             "Account Seen", "Account Update", "Set Service Definition", "Delete Host/Network",
             "Delete Service", "Vulnerability Set Valid", "Vulnerability Set Invalid",
             "Set Host Criticality", "Host Attribute Set Value", "Host Attribute Delete Value",
             "Add Host", "Add Service", "Add Client Application", "Add Protocol",
             "Reload App", "Account Delete"),
    (1002, 45): "IOC Delete",
    (1002, 46): "IOC Invalid",
    **_names(1003, "Flow Statistics", "Flow Chunk"),
    **_names(1004, "User Information", "User Login Information", "Delete User Identity",
             "User Identity Dropped: User Limit Reached"),
    **_names(1008, "IOC Set"),
}


def _host_ip(event: Mapping[str, Any]) -> Any:
    # eNcore's `src_host` is the header's 16-byte address; the 4-byte legacy field is 0 on
    # current FMCs, so it is only the fallback.
    for path in ("discovery_header.ipv6_address", "discovery_header.legacy_ip"):
        value = get(event, path)
        if value not in (None, "", "::", "0.0.0.0"):
            return value
    return None


def _ip_ranges(event: Mapping[str, Any]) -> Any:
    # User-input events address hosts as ranges; one key, `a-b` or `a`, comma separated.
    ranges = event.get("ip_ranges")
    if not isinstance(ranges, list) or not ranges:
        return None
    parts = []
    for item in ranges:
        start, end = item.get("start_ip"), item.get("end_ip")
        parts.append(str(start) if end in (None, start) else f"{start}-{end}")
    return ",".join(parts)


def _splunk_time(event: Mapping[str, Any]) -> tuple[int, int]:
    # eNcore timed a correlation event by the event that triggered it.
    trigger = event.get("trigger_event_second")
    if isinstance(trigger, int) and trigger > 0:
        micro = event.get("trigger_event_microsecond")
        return trigger, micro if isinstance(micro, int) else 0
    return event_time(event)


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
    "transport_proto": lambda e: protocol_name(e, "transport_protocol"),
    "host_ip": _host_ip,
    "ip_ranges": _ip_ranges,
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
    if kind == "*":
        return _joined(event, source[1:])
    return get(event, source)


def _joined(event: Mapping[str, Any], source: str) -> Any:
    """`*list.field`: the field of every item of a list (its name when the decorator gave one),
    comma separated; None for an empty or absent list."""
    path, _, field = source.rpartition(".")
    items = get(event, path)
    if not isinstance(items, list):
        return None
    values = [named(item, field) for item in items if isinstance(item, Mapping)]
    text = ",".join(str(v) for v in values if v not in (None, ""))
    return text or None


# ---------------------------------------------------------------------------- writing

# Whole-string match: `re.match` with `$` also took a UUID followed by a newline, which was then
# written quoted with the newline raw (a line the file output refuses).
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def splunk_value(value: Any) -> str:
    """One value as eNcore's key=value writer renders it."""
    if isinstance(value, str):
        if len(value) == 36 and _UUID.fullmatch(value):
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
    second, micro = _splunk_time(event)
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


def interpret_splunk(event: Mapping[str, Any]) -> bytes:
    """One line from `splunk_pairs`: the definition `format_splunk` is compiled to match."""
    return " ".join(f"{k}={splunk_value(v)}" for k, v in splunk_pairs(event)).encode()


def format_splunk(event: Mapping[str, Any]) -> bytes:
    if _fast is not None:
        line = _fast(event)  # None: not a dict, or anything unusual: Python writes it
        if line is not None:
            return line
    return _format_python(event)


def _format_python(event: Mapping[str, Any]) -> bytes:
    record_type = event.get("record_type")
    if type(record_type) is int:
        compiled = _COMPILED.get(record_type)
        if compiled is None:
            compiled = _COMPILED[record_type] = _compile(record_type)
        return compiled(event)
    return interpret_splunk(event)


# ---------------------------------------------------------------------------- compiled
# `splunk_pairs` interprets the table: per field, a dispatch on the source's prefix, name
# keys, dotted paths split, the head/row merge; 150 µs for a connection record. What runs
# is each record type's row compiled once, on first use, to one straight-line function (as
# the decoder and the decorator do): all of that worked out at compile time, values rendered
# with a fast path for ints and a cache for the strings that repeat (names, addresses).

_COMPILED: dict[int, Callable[[Mapping[str, Any]], bytes]] = {}

# Rendered text of recurring strings; starts over when full (URLs are unique).
_RENDERED = BoundedMemo(splunk_value, 1 << 16)


# A value in code: exact ints are most values, then strings (cached), then the rest.
_RENDER = ("(str({v}) if type({v}) is int else _S[{v}] if type({v}) is str "
           "else _sv({v}))")


class _Code:
    """The body of one compiled formatter: statements, and the headers (a dotted path's
    first part, read once per record) they use."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.bases: dict[str, str] = {}

    def emit(self, pad: int, line: str) -> None:
        self.lines.append("    " * pad + line)

    def path(self, path: str) -> str:
        """An expression for `get(ev, path)`."""
        if "." not in path:
            return f"g({path!r})"
        first, *rest = path.split(".")
        base = self.bases.setdefault(first, f"b{len(self.bases)}")
        if len(rest) == 1 and not rest[0].isdigit():
            key, parts = rest[0], tuple(rest)
            return f"({base}.get({key!r}) if type({base}) is dict else _walk({base}, {parts!r}))"
        return f"_walk({base}, {tuple(rest)!r})"

    def first_name(self, pad: int, target: str, field: str, otherwise: str) -> None:
        """`target` = the first name of `field` that is neither None nor "" (`name_of`),
        else the expression `otherwise`."""
        for key in name_keys(field):
            self.emit(pad, f"{target} = {self.path(key)}")
            self.emit(pad, f"if {target} is None or {target} == '':")
            pad += 1
        self.emit(pad, f"{target} = {otherwise}")

    def source(self, pad: int, source: str, record_type: int) -> None:
        """Statements leaving the value of one table source in `v` (as `resolve` would)."""
        kind, rest = source[0], source[1:]
        if kind == "~":
            self.first_name(pad, "v", rest, self.path(rest))
        elif kind == "^":
            self.first_name(pad, "v", rest, "None")
        elif kind == "*":
            self.emit(pad, f"v = _joined(ev, {rest!r})")
        elif kind == "@":
            self.computed(pad, rest, record_type)
        else:
            self.emit(pad, f"v = {self.path(source)}")

    def computed(self, pad: int, name: str, record_type: int) -> None:
        """`_COMPUTED[name]`, written out where it is cheap to (the identity tests hold the
        two to the same values); otherwise a call."""
        constant = _constant("@" + name, record_type)
        if constant is not None:
            self.emit(pad, f"v = {constant!r}")
        elif name.startswith("monitor_rule_"):
            self.emit(pad, f"v = g({name!r})")
            self.emit(pad, "if v == 0:")
            self.emit(pad + 1, "v = 'N/A'")
            self.emit(pad, "else:")
            self.first_name(pad + 1, "w", name, "v")
            self.emit(pad + 1, "v = w")
        elif name in ("ip_proto", "transport_proto"):
            field = "protocol" if name == "ip_proto" else "transport_protocol"
            self.emit(pad, f"v = g({field!r})")
            self.emit(pad, "if isinstance(v, int) and v in _PROTOCOLS:")
            self.emit(pad + 1, "v = _PROTOCOLS[v]")
            self.emit(pad, "else:")
            self.first_name(pad + 1, "w", field, "v")
            self.emit(pad + 1, "v = w")
        elif name == "sec_intel_event":
            self.emit(pad, "v = g('security_intelligence_source_destination')")
            self.emit(pad, "if v is not None:")
            self.emit(pad + 1, "v = 'No' if v == 0 else 'Yes'")
        elif name == "event_desc":
            kind = self.path("discovery_header.event_type")
            sub = self.path("discovery_header.event_subtype")
            self.emit(pad, f"v = {kind}")
            self.emit(pad, f"v = None if v is None else _EVENT_NAMES.get((v, {sub}))")
        else:
            self.emit(pad, f"v = _COMPUTED[{name!r}](ev)")


def _constant(source: str, record_type: int) -> Any:
    """The value of a source that is the same for every record of the type, or None."""
    known = ENCORE_RECORD_TYPES.get(record_type)
    if known and source in ("@rec_type_simple", "@rec_type_desc"):
        return known[1] if source == "@rec_type_simple" else known[0]
    return None


def _chains(record_type: int) -> dict[str, list[str]] | None:
    """splunk_pairs' dict, worked out once: each key at its first place; its value the last
    of the row's sources that is not None, else the head's (which may be None). None where
    the interpreter stays."""
    spec = SPLUNK_KEYS.get(record_type)
    if spec is None or any(key == "event_sec" for key, _ in spec):
        # No row (our field names, flattened), or a row writing `event_sec`, whose place
        # would depend on the event: rarities the interpreter serves.
        return None
    chains: dict[str, list[str]] = {"rec_type": [], **{k: [s] for k, s in _COMMON_HEAD}}
    for key, source in spec:
        chains.setdefault(key, []).append(source)
    return chains


def _generate(record_type: int) -> str | None:
    """The source of one record type's formatter (`interpret_splunk`'s output, as straight
    lines from the table row); None where the interpreter stays."""
    chains = _chains(record_type)
    if chains is None:
        return None
    code = _Code()
    for key, chain in chains.items():
        if key == "rec_type" and not chain:
            # the head's: the record type, then the time the add-on reads
            code.emit(1, f"a({'rec_type=' + splunk_value(record_type)!r})")
            code.emit(1, "if second:")
            code.emit(2, f"a('event_sec=' + {_RENDER.format(v='second')})")
            continue
        constant = _constant(chain[-1], record_type) if len(chain) == 1 else None
        if constant is not None:
            code.emit(1, f"a({key + '=' + splunk_value(constant)!r})")
            continue
        pad = 1
        for n, source in enumerate(reversed(chain)):
            if n:
                code.emit(pad, "if v is None:")
                pad += 1
            code.source(pad, source, record_type)
        if key == "rec_type":
            code.emit(pad, "if v is None:")
            code.emit(pad + 1, f"v = {record_type!r}")
        code.emit(1, "if v is not None:")
        code.emit(2, f"a({key + '='!r} + {_RENDER.format(v='v')})")
        if key == "event_usec":
            code.emit(1, "else:")
            code.emit(2, "usec = True")
        if key == "rec_type":
            code.emit(1, "if second:")
            code.emit(2, f"a('event_sec=' + {_RENDER.format(v='second')})")
    code.emit(1, "if micro and usec:" if "event_usec" in chains else "if micro:")
    code.emit(2, f"a('event_usec=' + {_RENDER.format(v='micro')})")
    code.emit(1, "return ' '.join(out).encode()")
    head = [f"def format_{record_type}(ev):", "    g = ev.get",
            *(f"    {var} = g({first!r})" for first, var in code.bases.items()),
            "    second, micro = _time(ev)", "    out = []", "    a = out.append",
            "    usec = False"]
    return "\n".join(head + code.lines) + "\n"


def _compile(record_type: int) -> Callable[[Mapping[str, Any]], bytes]:
    source = _generate(record_type)
    if source is None:
        return interpret_splunk
    namespace = {
        "_time": _splunk_time, "_walk": walk, "_joined": _joined, "_COMPUTED": _COMPUTED,
        "_PROTOCOLS": IP_PROTOCOLS, "_EVENT_NAMES": DISCOVERY_EVENT_NAMES,
        "_S": _RENDERED, "_sv": splunk_value,
    }
    # The code comes from our own table, never from input.
    exec(compile(source, f"<splunk record {record_type}>", "exec"), namespace)
    return namespace[f"format_{record_type}"]


def compiled_source(record_type: int) -> str | None:
    """The code `format_splunk` runs for a record type (None: the interpreter), to read."""
    return _generate(record_type)


# ---------------------------------------------------------------------------- C programs
# The optional C extension (estreamer/formats/_splunk.c) writes the lines of the record types
# `_generate` compiles, 5x faster: per key, Python's ~100 ns of bytecode becomes a read of the
# values one pass over the event gathered, and a copy. It interprets a Program per record
# type, made here from the same chains as the generated code: for each key, its alternatives
# in the order the code tries them, the first with a value written. Without the extension, or
# with ESTREAMER_PURE_PYTHON=1, the generated Python writes every line; for anything unusual
# (text that is not UTF-8, a key that is not a str, a nested value that may be another kind
# of mapping, an exception from a computed key) the C side answers None and Python writes
# that record, so odd cases and errors have one source.

_splunk = optional("estreamer.formats._splunk")

AVAILABLE = _splunk is not None
"""Whether the C extension writes the lines `_generate` compiles."""
DESCRIPTION = description("estreamer.formats._splunk", AVAILABLE, "Splunk lines cost ~5x more")
"""What writes Splunk lines, for a log line at start."""

# Alternative kinds: the enum at the top of _splunk.c, in the same order.
#   GET     ev[a1], or ev[a1][a2] when ev[a1] is a dict; None or a value in `exclude` (UTF-8
#           bytes: "" for names) is no value
#   CONST   `text`, rendered already (a value the same for every record of the type)
#   ZERO    ev[a1] == 0: `text`; otherwise `text2`, or no value when there is none
#   MAP     ev[a1] an int in `table` (keys → rendered values)
#   PAIR    table[(path a1.a2, path b1.b2)] when the first is not None
#   IMPACT  impact_level(ev[a1]) when it is an int
#   CALL    a1(ev), or a1(ev, a2): a computed key, rare enough to stay in Python
GET, CONST, ZERO, MAP, PAIR, IMPACT, CALL = range(7)

Alternative = tuple[Any, ...]
_NO_NAME = (b"",)
_NO_HOST = (b"", b"::", b"0.0.0.0")  # _host_ip's values that are no address
_PROTOCOL_TEXT = {n: splunk_value(name).encode() for n, name in IP_PROTOCOLS.items()}
_EVENT_TEXT = {k: splunk_value(name).encode() for k, name in DISCOVERY_EVENT_NAMES.items()}


def _alt(kind: int, a1: Any = None, a2: Any = None, b1: str | None = None,
         b2: str | None = None, table: dict[Any, bytes] | None = None,
         exclude: tuple[bytes, ...] = (), text: bytes | None = None,
         text2: bytes | None = None) -> Alternative:
    return (kind, a1, a2, b1, b2, table, exclude, text, text2)


def _keys(path: str) -> tuple[str, str | None] | None:
    """(a1, a2) of a path C reads (one level, or two when the second is a key, not a list
    position), interned as the decoder's keys are; None for any other path."""
    parts = path.split(".")
    if len(parts) == 1:
        return sys.intern(path), None
    if len(parts) == 2 and not parts[1].isdigit():
        return sys.intern(parts[0]), sys.intern(parts[1])
    return None


def _get(path: str, exclude: tuple[bytes, ...] = ()) -> Alternative:
    keys = _keys(path)
    if keys is None:  # a list position or deeper: `walk`, as the generated code does
        return _alt(CALL, walk, tuple(path.split(".")), exclude=exclude)
    return _alt(GET, *keys, exclude=exclude)


def _names(field: str) -> list[Alternative]:
    """`name_of`: the decorator's name keys, each taken when neither None nor ""."""
    return [_get(key, _NO_NAME) for key in name_keys(field)]


def _alternatives(source: str, record_type: int) -> list[Alternative]:
    """One table source as alternatives: the first with a value is the source's value (as
    `_Code.source`'s statements leave it in `v`)."""
    kind, rest = source[0], source[1:]
    if kind == "~":
        return [*_names(rest), _get(rest)]
    if kind == "^":
        return _names(rest)
    if kind == "*":
        return [_alt(CALL, _joined, rest)]
    if kind == "@":
        return _computed_alternatives(rest, record_type)
    return [_get(source)]


def _computed_alternatives(name: str, record_type: int) -> list[Alternative]:
    """`_COMPUTED[name]`, spelled out where `_Code.computed` writes it out or it is as plain
    (the identity tests hold both to `interpret_splunk`); otherwise a call."""
    constant = _constant("@" + name, record_type)
    if constant is not None:
        return [_alt(CONST, text=splunk_value(constant).encode())]
    if name.startswith("monitor_rule_"):
        return [_alt(ZERO, name, text=b"N/A"), *_names(name), _get(name)]
    if name in ("ip_proto", "transport_proto"):
        field = "protocol" if name == "ip_proto" else "transport_protocol"
        return [_alt(MAP, field, table=_PROTOCOL_TEXT), *_names(field), _get(field)]
    if name == "sec_intel_event":
        return [_alt(ZERO, "security_intelligence_source_destination", text=b"No",
                     text2=b"Yes")]
    if name == "event_desc":
        return [_alt(PAIR, "discovery_header", "event_type", "discovery_header",
                     "event_subtype", table=_EVENT_TEXT)]
    if name == "host_ip":
        return [_get("discovery_header.ipv6_address", _NO_HOST),
                _get("discovery_header.legacy_ip", _NO_HOST)]
    if name == "sid":
        return [_get("signature_id"), _get("rendered_id"), _get("rule_id")]
    if name in ("impact_from_impact", "impact_from_flags"):
        return [_alt(IMPACT, "impact" if name == "impact_from_impact" else "impact_flags")]
    return [_alt(CALL, _COMPUTED[name])]


def program_source(record_type: int) -> tuple[Any, ...] | None:
    """What `_splunk.Program` interprets for a record type: (b"rec_type=N", whether the row
    has an `event_usec` key, ((b" key=", is it `event_usec`, alternatives), ...)); None
    where Python writes every record of the type."""
    chains = _chains(record_type)
    if chains is None or chains["rec_type"]:
        return None  # a row with its own `rec_type`: the generated code's, never seen
    entries = tuple(
        (f" {key}=".encode(), key == "event_usec",
         tuple(alt for source in reversed(chain) for alt in _alternatives(source, record_type)))
        for key, chain in chains.items() if key != "rec_type")
    head = ("rec_type=" + splunk_value(record_type)).encode()
    return head, "event_usec" in chains, entries


def _program(record_type: int) -> Any:
    source = program_source(record_type)
    return None if source is None or _splunk is None else _splunk.Program(source)


_fast: Callable[[Any], bytes | None] | None = (
    None if _splunk is None else _splunk.Formatter(_program, splunk_value).format)


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Write with the Python formatters alone inside the block (tests compare both paths;
    benchmarks measure both)."""
    global _fast
    saved, _fast = _fast, None
    try:
        yield
    finally:
        _fast = saved


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
