"""Render docs/fields.md from the tables, so the field reference cannot drift from the code.

    python -m estreamer.protocol.tables.doc > docs/fields.md

Meanings live here, keyed by field name: a name means the same thing in every record, so one
glossary covers all of them, and a test fails when a table gains a field this file does not
explain."""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterable

from estreamer.protocol import layout as L
from estreamer.protocol.tables import RECORDS
from estreamer.protocol.tables.connection import DISCOVERY_HEADER

# -- fact-sheet sections ----------------------------------------------------------------------

RECORD_SECTIONS: dict[int, str] = {
    2: "§10.1",
    4: "§10.2",
    9: "§10.10",
    54: "§9",
    66: "§10.4",
    67: "§10.5",
    69: "§9",
    70: "§9",
    71: "§8, §10.7",
    98: "§7, §9",
    110: "§10.10",
    111: "§9, §10.10",
    125: "§10.9",
    104: "§9 (G53 pp. 459-462)",
    105: "§9 (G53 pp. 459-462)",
    132: "§9",
    280: "§9",
    282: "§9",
    301: "§9",
    400: "§10.6",
    500: "§10.8",
    502: "§10.8",
    530: "§9",
    600: "§9",
    601: "§9",
    **{t: "§8, §9" for t in (13, 14, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 31, 34, 42,
                             44, 45, 73, 92, 93, 94, 95, 160, 170, 171)},
}
"""Records not listed here are documented in §9 plus §7 (blocks) or §10.3 (id/length/name)."""

BLOCK_SECTIONS: dict[tuple[int, int], str] = {
    (1, 153): "§10.10",
    (2, 4): "§10.10",
    (2, 5): "§10.10",
    (2, 22): "§9",
    (2, 41): "§10.6",
    (2, 56): "§10.8",
    (2, 58): "§9",
    (2, 60): "§10.6",
    (2, 62): "§10.9",
    (2, 79): "§10.8",
    (2, 80): "§10.9",
    (2, 81): "§10.6",
    (2, 85): "§10.6",
    **{(1, t): "§10.7" for t in (160, 163, 168, 169, 170, 171, 173, 174)},
}
"""Blocks not listed here are the small metadata blocks of §7."""

# -- what each field means ----------------------------------------------------------------

MEANINGS: dict[str, str] = {
    # identity and time
    "device_id": "managed device (sensor) ID → record 123",
    "detection_engine_id": "4.x detection engine ID (legacy records 104/105; no metadata names"
                           " it on a 6.x/7.x FMC)",
    "event_id": "event ID, unique per device",
    "event_second": "event time, UNIX seconds",
    "event_microsecond": "microseconds part of the event time",
    "packet_second": "packet capture time, UNIX seconds",
    "packet_microsecond": "microseconds part of the packet time",
    "link_type": "link-layer type of the packet (1 = Ethernet)",
    "packet_length": "length of `packet_data`",
    "packet_data": "the captured packet, hex",
    "connection_timestamp": "first-packet second of the related connection event",
    "connection_instance_id": "instance ID of the connection",
    "connection_counter": "connection counter; with device, instance and timestamp it "
    "identifies the connection event",
    "first_packet_time": "connection start, UNIX seconds",
    "last_packet_time": "last packet seen, UNIX seconds",
    "file_event_timestamp": "file event time, UNIX seconds",
    "malware_event_timestamp": "malware event time, UNIX seconds",
    "file_timestamp": "file creation time reported by the endpoint",
    # addresses and ports
    "source_ip": "source address (IPv4 shown dotted, else IPv6)",
    "destination_ip": "destination address",
    "initiator_ip": "address of the side that opened the connection",
    "responder_ip": "address of the side that answered",
    "original_client_ip": "original client address (e.g. behind a proxy)",
    "original_source_ip": "original source address (e.g. behind a proxy)",
    "source_port": "source port, or ICMP type",
    "destination_port": "destination port, or ICMP code",
    "initiator_port": "initiator port, or ICMP type",
    "responder_port": "responder port, or ICMP code",
    "protocol": "IP protocol number (6 TCP, 17 UDP, ...)",
    "tcp_flags": "TCP flags seen",
    "location_ipv6": "location IPv6 address",
    "nat_initiator_ip": "initiator address after NAT",
    "nat_responder_ip": "responder address after NAT",
    "nat_initiator_port": "initiator port after NAT",
    "nat_responder_port": "responder port after NAT",
    "source_country": "source country code → record 520",
    "destination_country": "destination country code → record 520",
    "initiator_country": "initiator country code → record 520",
    "responder_country": "responder country code → record 520",
    "original_client_country": "original client country code → record 520",
    "source_autonomous_system": "source AS number (NetFlow)",
    "destination_autonomous_system": "destination AS number (NetFlow)",
    "snmp_in": "SNMP ingress interface index (NetFlow)",
    "snmp_out": "SNMP egress interface index (NetFlow)",
    "source_tos": "source type of service (NetFlow)",
    "destination_tos": "destination type of service (NetFlow)",
    "source_mask": "source prefix length (NetFlow)",
    "destination_mask": "destination prefix length (NetFlow)",
    "vlan_id": "VLAN ID",
    "mpls_label": "MPLS label",
    # discovery header
    "discovery_header": "the discovery event header (below)",
    "legacy_ip": "legacy IPv4 host address; 0.0.0.0 when `has_ipv6` is set",
    "mac_address": "host MAC address",
    "has_ipv6": "1 when `ipv6_address` follows",
    "reserved": "reserved",
    "event_type": "discovery event type (1003 = flow statistics, ...)",
    "rule_event_type": "the kind of event a correlation rule triggers on, as text",
    "event_subtype": "discovery event subtype",
    "file_number": "FMC-internal archive file number (little-endian on the wire; ignore)",
    "file_position": "FMC-internal archive offset (ignore)",
    "ipv6_address": "host IPv6 address; absent (None) unless `has_ipv6`",
    # policies, rules, zones
    "rule_id": "rule ID (SID for intrusion rules; access-control rule for record 119, SSL "
    "rule for 601)",
    "generator_id": "Snort generator ID (GID); (GID, rule_id) → record 66",
    "rule_revision": "rule revision",
    "signature_id": "rendered signature ID, the SID the UI shows",
    "classification_id": "classification → record 67",
    "priority_id": "priority → record 4",
    "impact_flags": "impact flag bits (names UNCERTAIN, §10.6)",
    "impact": "impact level",
    "blocked": "0 no, 1 blocked, 2 would have been blocked",
    "blocked_reason": "1 passive/tap interface, 2 IPS policy in detection mode, 3 NAP in "
    "detection mode, 4 connection timed out, 5-7 connection closed",
    "snort_version": "Snort major version that raised the event",
    "pad": "padding",
    "intrusion_policy_uuid": "intrusion policy → record 118",
    "access_control_policy_uuid": "access-control policy (revision) → records 117, 145",
    "access_control_rule_id": "access-control rule → record 119",
    "tunnel_rule_id": "tunnel/prefilter rule → record 147",
    "rule_action": "access-control rule action → record 120",
    "rule_reason": "rule reason bitmask (§10.7; encoding UNCERTAIN, read as u32)",
    "ingress_interface_uuid": "ingress interface → record 116",
    "egress_interface_uuid": "egress interface → record 116",
    "ingress_zone_uuid": "ingress security zone → record 115",
    "egress_zone_uuid": "egress security zone → record 115",
    "network_analysis_policy_uuid": "network analysis policy → record 700",
    "netflow_source_uuid": "NetFlow source (zero when the sensor saw the traffic itself)",
    "qos_applied_interface_uuid": "interface the QoS rule applied on → record 116",
    "qos_rule_id": "QoS rule ID",
    "monitor_rule_1": "access-control monitor rule that matched (1 of 8)",
    "monitor_rule_2": "monitor rule 2",
    "monitor_rule_3": "monitor rule 3",
    "monitor_rule_4": "monitor rule 4",
    "monitor_rule_5": "monitor rule 5",
    "monitor_rule_6": "monitor rule 6",
    "monitor_rule_7": "monitor rule 7",
    "monitor_rule_8": "monitor rule 8",
    "security_context": "security context (virtual firewall) ID, 16 bytes hex → record 132",
    "ingress_vrf": "ingress VRF name",
    "egress_vrf": "egress VRF name",
    # users and applications
    "user_id": "user → record 98",
    "application_id": "application protocol → record 63",
    "client_application_id": "client application → record 55",
    "web_application_id": "web application → record 109",
    "client_application_version": "client application version",
    "client_application_detector_id": "client application detector",
    "url_category": "URL category → record 121",
    "url_reputation": "URL reputation → record 122",
    "client_url": "URL the client requested",
    "netbios_name": "NetBIOS name",
    "referenced_host": "HTTP Host",
    "user_agent": "HTTP User-Agent",
    "http_referrer": "HTTP Referer",
    "http_response": "HTTP response code",
    "http_hostname": "HTTP host name",
    "http_uri": "HTTP URI",
    "smtp_attachments": "SMTP attachment names",
    "smtp_from": "SMTP sender",
    "smtp_headers": "SMTP headers",
    "smtp_to": "SMTP recipients",
    "endpoint_profile_id": "endpoint profile → record 301",
    "security_group_id": "security group → record 302",
    "source_sgt": "source security group tag",
    "source_sgt_type": "how the source SGT was learned",
    "destination_sgt": "destination security group tag",
    "destination_sgt_type": "how the destination SGT was learned",
    "source_dynamic_attributes": "dynamic attributes of the source address",
    "destination_dynamic_attributes": "dynamic attributes of the destination address",
    "eve_process": "process name from encrypted visibility (EVE)",
    "eve_process_confidence": "EVE process confidence, percent",
    "eve_threat_confidence": "EVE threat confidence, percent",
    "eve_threat_confidence_index": "EVE threat confidence index",
    # counters
    "initiator_packets": "packets sent by the initiator",
    "responder_packets": "packets sent by the responder",
    "initiator_bytes": "bytes sent by the initiator",
    "responder_bytes": "bytes sent by the responder",
    "initiator_packets_dropped": "initiator packets dropped",
    "responder_packets_dropped": "responder packets dropped",
    "initiator_bytes_dropped": "initiator bytes dropped",
    "responder_bytes_dropped": "responder bytes dropped",
    "file_event_count": "file events in this connection",
    "intrusion_event_count": "intrusion events in this connection",
    "ioc_number": "indications of compromise raised",
    # security intelligence, DNS
    "security_intelligence_source_destination": "which end matched a Security Intelligence "
    "list → record 281",
    "security_intelligence_layer": "Security Intelligence layer",
    "security_intelligence_list_1": "Security Intelligence list (category) → record 280",
    "security_intelligence_list_2": "second Security Intelligence list → record 280",
    "security_intelligence_list_3": "third Security Intelligence list (block 168, UNCERTAIN)",
    "threat_intelligence_category": "threat intelligence category",
    "dns_query": "DNS query",
    "dns_record_type": "DNS record type → record 320",
    "dns_response_type": "DNS response type → record 321",
    "dns_ttl": "DNS TTL, seconds",
    "sinkhole_uuid": "sinkhole → record 322",
    # SSL
    "ssl_certificate_fingerprint": "server certificate SHA-1, hex",
    "ssl_policy_uuid": "SSL policy → record 600 (eNcore prints block 160's as plain hex)",
    "ssl_rule_id": "SSL rule → record 601",
    "ssl_cipher_suite": "cipher suite → record 602",
    "ssl_version": "SSL/TLS version → record 604",
    "ssl_server_certificate_status": "server certificate status → record 605",
    "ssl_actual_action": "SSL action taken → record 606",
    "ssl_expected_action": "SSL action the rule asked for → record 607",
    "ssl_flow_status": "SSL flow status → record 608",
    "ssl_flow_error": "SSL flow error",
    "ssl_flow_messages": "SSL handshake messages seen (bits)",
    "ssl_flow_flags": "SSL flow flags (bits)",
    "ssl_server_name": "SNI server name",
    "ssl_url_category": "SSL URL category → record 613",
    "ssl_session_id": "SSL session ID, 32 bytes hex (first `ssl_session_id_length` count)",
    "ssl_session_id_length": "bytes of `ssl_session_id` in use",
    "ssl_ticket_id": "SSL ticket ID hash, 20 bytes hex",
    "ssl_ticket_id_length": "bytes of `ssl_ticket_id` in use",
    # files and malware
    "disposition": "0 N/A, 1 clean, 2 unknown, 3 malware, 4 unavailable, 5 custom",
    "retro_disposition": "disposition after a later (retrospective) lookup",
    "spero_disposition": "SPERO disposition → record 517",
    "file_storage_status": "file storage status → record 515",
    "file_analysis_status": "sandbox analysis status → record 516",
    "local_malware_analysis_status": "local malware analysis status",
    "archive_file_status": "archive inspection status → record 518",
    "threat_score": "threat score",
    "action": "file/malware action (1 detect, 2 block, 3 cloud lookup, 4 malware block, ...)",
    "file_sha256": "file SHA-256, 32 bytes hex",
    "file_sha": "file SHA-256 as sent (text)",
    "parent_file_sha": "parent file SHA-256 as sent (text)",
    "file_type_id": "file type → record 510 (131 for malware events)",
    "file_name": "file name",
    "file_path": "file path on the endpoint",
    "parent_file_name": "name of the file that created this one",
    "file_size": "file size, bytes",
    "direction": "1 download, 2 upload",
    "uri": "URI the file came from",
    "signature": "signature",
    "archive_sha": "SHA-256 of the enclosing archive",
    "archive_name": "name of the enclosing archive",
    "archive_depth": "nesting depth inside the archive",
    "agent_uuid": "AMP for Endpoints agent",
    "cloud_uuid": "AMP cloud → record 127",
    "event_type_id": "malware event type → record 128",
    "event_subtype_id": "malware event subtype → record 129",
    "detector_id": "detector → record 130",
    "detection_name": "detection name",
    "user": "user name reported by the endpoint",
    "event_description": "event description",
    # extra data
    "extra_data_type": "extra-data type → record 111",
    "data": "extra data bytes, hex",
    "encoding": "how the extra data is encoded",
    "description": "description text (impact alerts carry \"[Impact: N]\" in it)",
    # metadata
    "id": "the ID events carry for this item",
    "name": "display name",
    "uuid": "the UUID events carry for this item",
    "revision": "policy revision UUID the rule belongs to",
    "revision_uuid": "revision UUID",
    "rule_uuid": "rule UUID",
    "rule_revision_uuid": "rule revision UUID",
    "message_length": "length of `message`",
    "message": "rule message text",
    "country_code": "country code events carry",
    "vendor": "vendor (of a fingerprint, server or sub-server)",
    "version": "version text (of a fingerprint, server or application)",
    "allow_list_uuid": "third UUID of a correlation rule (eNcore: white list; UNCERTAIN)",
    "profile_name": "endpoint profile name",
    "full_name": "endpoint profile full name",
    # discovery (RNA) host events and the connection chunk (eNcore only)
    "network_protocol": "network protocol number (EtherType-style) → record 59",
    "transport_protocol": "transport protocol number",
    "hops": "network hops from the sensor to the host",
    "port": "port number",
    "new_ip": "the host's new address",
    "host_type": "0 host, 1 router, 2 bridge, 3 NAT device, 4 load balancer",
    "ttl": "TTL seen from the host",
    "mac": "MAC address",
    "primary": "1 when this is the host's primary MAC address",
    "last_seen": "last time seen, UNIX seconds",
    "vlan_type": "VLAN encapsulation type",
    "vlan_priority": "VLAN priority",
    "value": "the text value (NetBIOS name for record 42, a scan result's value)",
    "banner": "server banner bytes, hex",
    "ioc_id": "indication of compromise → record 161",
    "category": "IOC category",
    "ioc_event_type": "IOC event type",
    "start_time": "chunk start, UNIX seconds",
    "connection_type": "connection type of the chunk",
    "netflow_detector_ip": "NetFlow exporter address (0.0.0.0 when the sensor saw it)",
    "packets_sent": "packets sent in the chunk",
    "packets_received": "packets received in the chunk",
    "bytes_sent": "bytes sent in the chunk",
    "bytes_received": "bytes received (chunk, or VPN session)",
    "connections": "connections summarised in the chunk",
    # users and VPN (eNcore only)
    "username": "user name as sent",
    "realm_id": "identity realm → record 300",
    "application_protocol_id": "protocol the user was seen on (application protocol) → record 63",
    "first_name": "user's first name",
    "last_name": "user's last name",
    "email": "user's e-mail address",
    "department": "user's department",
    "phone": "user's phone number",
    "timestamp": "login/logoff time, UNIX seconds",
    "user_ipv4": "legacy IPv4 address of the user (see `user_ip`)",
    "user_ip": "address the user logged in from",
    "domain": "user's domain",
    "range_start": "first port of the user's port range (terminal servers)",
    "start_port": "start of the user's port range",
    "end_port": "end of the user's port range",
    "login_type": "login type",
    "auth_type": "authentication type",
    "reported_by": "who reported the login (identity source)",
    "vpn_sessions": "VPN sessions (list of series 1 block 166)",
    "index": "session index",
    "vpn_type": "VPN type",
    "group_policy": "VPN group policy",
    "vpn_connection_profile": "VPN connection profile",
    "client_ip": "address assigned to / used by the VPN client",
    "client_country": "VPN client country code → record 520",
    "client_os": "VPN client operating system",
    "vpn_client_application": "VPN client application",
    "connection_duration": "VPN session length, seconds",
    "bytes_transmitted": "bytes sent by the VPN session",
    # correlation (eNcore only)
    "correlation_event_second": "correlation event time, UNIX seconds",
    "correlation_policy_id": "correlation policy → record 69",
    "correlation_rule_id": "correlation rule → record 70",
    "correlation_event_type": "kind of event that triggered the rule",
    "trigger_device_id": "device of the triggering event → record 123",
    "trigger_event_second": "triggering event time, UNIX seconds",
    "trigger_event_microsecond": "microseconds part of the triggering event time",
    "trigger_event_id": "event ID of the triggering event on its device",
    "event_defined_mask": "which optional fields are set (bits)",
    "legacy_source_ip": "legacy IPv4 source (no longer used; see `source_ip`)",
    "legacy_destination_ip": "legacy IPv4 destination (no longer used)",
    "source_host_type": "source host type",
    "source_vlan_id": "source VLAN ID",
    "source_os_fingerprint_uuid": "source OS fingerprint → record 54",
    "source_criticality_id": "source host criticality → record 58",
    "source_user_id": "user on the source host → record 98",
    "source_server_id": "source server application protocol → record 63",
    "destination_host_type": "destination host type",
    "destination_vlan_id": "destination VLAN ID",
    "destination_os_fingerprint_uuid": "destination OS fingerprint → record 54",
    "destination_criticality_id": "destination host criticality → record 58",
    "destination_user_id": "user on the destination host → record 98",
    "destination_server_id": "destination server application protocol → record 63",
    "url": "URL",
    "security_intelligence_uuid": "Security Intelligence category → record 282",
    # rule documentation (eNcore only)
    "summary": "rule summary",
    "documented_impact": "impact as documented (text)",
    "detail": "detailed description",
    "affected_systems": "affected systems",
    "attack_scenarios": "attack scenarios",
    "ease_of_attack": "ease of attack",
    "false_positives": "known false positives",
    "false_negatives": "known false negatives",
    "corrective_action": "corrective action",
    "contributors": "contributors",
    "additional_references": "additional references",
    # host profiles and discovery blocks (eNcore only, some SFS; tables/discovery.py)
    "ip_address": "an address of the host (or of an attribute's auto-assign range)",
    "primary_secondary": "0 primary, 1 secondary host (seen through a router)",
    "server_fingerprints": "OS fingerprints from the host's servers",
    "client_fingerprints": "OS fingerprints from the host's clients",
    "smb_fingerprints": "OS fingerprints from SMB",
    "dhcp_fingerprints": "OS fingerprints from DHCP",
    "mobile_device_fingerprints": "OS fingerprints of mobile devices",
    "ipv6_server_fingerprints": "OS fingerprints from servers over IPv6",
    "ipv6_client_fingerprints": "OS fingerprints from clients over IPv6",
    "ipv6_dhcp_fingerprints": "OS fingerprints from DHCPv6",
    "user_agent_fingerprints": "OS fingerprints from HTTP user agents",
    "tcp_servers": "TCP servers on the host",
    "udp_servers": "UDP servers on the host",
    "network_protocols": "network protocols the host speaks",
    "transport_protocols": "transport protocols the host speaks",
    "protocol_number": "a protocol the host speaks: network protocol (EtherType, → record "
    "59) in `network_protocols`, IP protocol number in `transport_protocols`; for a user's "
    "protocol, the kind is in `protocol_type`",
    "mac_addresses": "MAC addresses (of the host, or given by a user)",
    "vlan_presence": "1 when the VLAN fields are set",
    "client_applications": "client applications (on the host, or given by a user)",
    "hits": "times the server or client application was seen",
    "last_used": "last time the server or client application was seen, UNIX seconds",
    "server_information": "what the server is, one entry per source",
    "confidence": "identification confidence, percent",
    "web_applications": "web applications seen on it → record 109",
    "vulnerabilities": "vulnerabilities (of a client application, set by a user, or scanned)",
    "source_type": "who identified or changed it → record 90 (RNA, user, scanner, "
    "application)",
    "source_id": "ID of the user or source application (→ record 91) behind `source_type`",
    "sub_server": "sub-server name (e.g. a web server module)",
    "sub_servers": "sub-servers of this server",
    "os_fingerprint_uuid": "OS fingerprint → record 54 (name, vendor, version)",
    "fingerprint_type": "kind of fingerprint (server, client, SMB, DHCP, ...)",
    "ttl_difference": "TTL in the fingerprint minus the TTL seen",
    "mobile_devices": "mobile device details of the fingerprint",
    "mobile_device": "mobile device description",
    "mobile": "1 when the OS runs on a mobile device",
    "jailbroken": "1 when the mobile device OS is jailbroken",
    "vulnerability_id": "vulnerability ID → record 57",
    "invalid_flags": "non-zero when the vulnerability was marked invalid (not impacting)",
    "vulnerability_type": "where the vulnerability ID comes from (VDB or third party)",
    "identity_uuid": "the identity (fingerprint or server) in conflict or timed out",
    "server_map_id": "internal ID of the server identity",
    "attribute_id": "host attribute → record 60",
    "attribute_uuid": "UUID of the host attribute",
    "attribute_name": "host attribute name",
    "attribute_type": "attribute kind: text, integer or list",
    "attribute_category": "attribute category",
    "auto_assign_start": "start of the auto-assigned integer range",
    "auto_assign_end": "end of the auto-assigned integer range",
    "auto_assign_ip": "legacy IPv4 of the auto-assignment (see `addresses`)",
    "list_items": "the values a list-type attribute may take",
    "addresses": "networks the attribute is auto-assigned to",
    "prefix_bits": "prefix length of `ip_address`",
    "attribute_value": "the value a user set, hex",
    "ip_ranges": "address ranges the change applies to",
    "start_ip": "first address of the range",
    "end_ip": "last address of the range",
    "protocol_type": "kind of `protocol_number`: network or transport",
    "protocols": "protocols a user added or deleted",
    "payload_type": "kind of payload of the client application",
    "servers": "servers a user deleted",
    "criticality_id": "host criticality → record 58",
    "third_party_vulnerability_uuid": "UUID of a third-party vulnerability",
    "drop_user_product": "1 when the user-set product is removed",
    "custom_vendor": "vendor a user typed",
    "custom_product": "product a user typed",
    "custom_version": "version a user typed",
    "software_id": "software ID of the mapped product",
    "vendor_id": "vendor ID of the mapped product",
    "product_id": "product ID of the mapped product",
    "version_major": "major version",
    "version_minor": "minor version",
    "to_version_major": "major version, end of the range",
    "to_version_minor": "minor version, end of the range",
    "version_revision": "version revision",
    "to_version_revision": "version revision, end of the range",
    "build": "build",
    "patch": "patch level",
    "extension": "extension",
    "device": "device (mobile products)",
    "fixes": "fixes (patches) applied to the product",
    "fix_id": "fix (patch) ID",
    "system_user_id": "FMC user who added it → record 62",
    "scan_type": "scanner that produced the result → record 61",
    "flag": "scan result flags",
    "generic_scan_results": "other results the scanner reported",
    "user_products": "products the scanner identified",
    "sub_server_unformatted": "`sub_server` as the scanner wrote it",
    "value_unformatted": "`value` as the scanner wrote it",
    "scanner_vulnerability_id": "the scanner's own vulnerability ID (text)",
    "name_clean": "`name` without markup",
    "description_clean": "`description` without markup",
    "bugtraq_ids": "Bugtraq IDs of the vulnerability",
    "bugtraq_id": "a Bugtraq ID",
    "cve_ids": "CVE IDs of the vulnerability",
    "cve_id": "a CVE ID",
    # metadata: vulnerabilities, ICMP, file SHAs, certificates (eNcore only)
    "exploits": "1 when exploits are known",
    "remote": "1 when remotely exploitable",
    "entry_date": "date the vulnerability was entered",
    "published_date": "date the vulnerability was published",
    "modified_date": "date the vulnerability was last changed",
    "title": "vulnerability title",
    "short_description": "short description",
    "technical_description": "technical description",
    "solution": "how to fix it",
    "scanner_type": "the scanner that reported the vulnerability",
    "icmp_type": "ICMP type",
    "icmp_code": "ICMP code",
    "user_defined": "1 when a user set the disposition",
    "public_key_sha1": "SHA-1 of the certificate's public key, hex",
    "serial_number": "certificate serial number, hex (20 bytes)",
    "serial_number_length": "bytes of `serial_number` in use",
    "subject_common_name": "certificate subject CN",
    "subject_organization": "certificate subject O",
    "subject_organizational_unit": "certificate subject OU",
    "subject_country": "certificate subject C",
    "issuer_common_name": "certificate issuer CN",
    "issuer_organization": "certificate issuer O",
    "issuer_organizational_unit": "certificate issuer OU",
    "issuer_country": "certificate issuer C",
    "valid_start_time": "certificate valid from, UNIX seconds",
    "valid_end_time": "certificate valid until, UNIX seconds",
    # the full host profile (block 149, tables/host.py) and its attribute values (block 48)
    "host_id": "the FMC's unique ID of the host",
    "ip_addresses": "every address the host was seen with",
    "os_derived_fingerprints": "the OS the FMC derived from all fingerprints",
    "business_criticality": "host criticality set by the user: 0 none, 1 low, 2 medium, "
    "3 high (→ record 58)",
    "notes": "user notes on the host (only when the request asks for notes)",
    "third_party_vdb_vulnerabilities": "vulnerabilities a third-party scanner reported, "
    "by VDB ID",
    "third_party_scan_vulnerabilities": "vulnerabilities a third-party scanner reported, "
    "by the scanner's ID",
    "attributes": "host attribute values",
    "integer_value": "attribute value when it is a number or list item",
    "text_value": "attribute value when it is text",
    # engine output
    "block_type": "the block type that arrived (picks the layout)",
}

# -- wire-type names --------------------------------------------------------------------------

_FIXED_NAMES = {
    id(L.U8): "u8",
    id(L.U16): "u16",
    id(L.U32): "u32",
    id(L.U64): "u64",
    id(L.I32): "i32",
    id(L.IP): "ip[16]",
    id(L.IPV4): "ipv4[4]",
    id(L.UUID): "uuid[16]",
    id(L.MAC): "mac[6]",
}


def wire_type(kind: object) -> str:
    if isinstance(kind, L.LengthOf):
        return f"{'u16' if kind.code == 'H' else 'u32'} length of `{kind.target}`"
    if isinstance(kind, L.Fixed):
        if id(kind) in _FIXED_NAMES:
            return _FIXED_NAMES[id(kind)]
        if kind.to_value is bytes.hex:
            return f"raw[{kind.code[:-1]}] hex"
        return f"struct `{kind.code}`"
    if kind is L.STR:
        return "string block"
    if kind is L.BLOB:
        return "BLOB block, hex"
    if kind is L.TEXT16:
        return "u16 length + text"
    if kind is L.TEXT32:
        return "u32 length + text"
    if isinstance(kind, L.TextFrom):
        return f"{'text' if kind.as_text else 'bytes, hex'} (length in `{kind.length_field}`)"
    if isinstance(kind, L.When):
        return f"{wire_type(kind.kind)} if `{kind.flag_field}`"
    if isinstance(kind, L.Nested):
        return "discovery header"
    if isinstance(kind, L.Block):
        if kind.layout is not None:
            fields = ", ".join(f"`{name}` {wire_type(k)}" for name, k in kind.layout.layout)
            return f"series {kind.series} block {_types(kind)} read as {fields}"
        return f"series {kind.series} block {_types(kind)}"
    if isinstance(kind, L.ListOf):
        return f"list of {wire_type(kind.inner)}"
    return type(kind).__name__


def _types(block: L.Block) -> str:
    types = block.types or sorted(t for s, t in L.BLOCKS if s == block.series)
    return ", ".join(str(t) for t in types)


def layout_fields(layout: tuple, start: int | None = 0) -> Iterable[tuple[str, str, str]]:
    """(field, offset, wire type) for each field; offsets are known until the first
    variable-size field, then shown as `+`."""
    off = start
    for name, kind in layout:
        shown = "+" if off is None else str(off)
        yield (name or "(block fields)", shown, wire_type(kind))
        if off is not None and isinstance(kind, L.Fixed):
            off += struct.calcsize(">" + kind.code)
        else:
            off = None


def _table(layout: tuple, start: int | None) -> list[str]:
    rows = ["| off | field | wire type | meaning |", "|---|---|---|---|"]
    for name, off, kind in layout_fields(layout, start):
        meaning = MEANINGS.get(name, "") if name != "(block fields)" else "see the block below"
        rows.append(f"| {off} | `{name}` | {kind} | {meaning} |")
    return rows


def all_field_names() -> set[str]:
    names = {name for name, _ in DISCOVERY_HEADER}
    layouts = [r.layout for r in RECORDS.values()] + [c.layout for c in L.BLOCKS.values()]
    for layout in layouts:
        names.update(name for name, _ in layout if name)
        for _, kind in layout:  # a generic block named by its field (Block layout=...)
            block = kind.inner if isinstance(kind, L.ListOf) else kind
            if isinstance(block, L.Block) and block.layout is not None:
                names.update(name for name, _ in block.layout.layout if name)
    return names | {"block_type"}


def _record_body(layout: tuple) -> list[str]:
    if len(layout) == 1 and layout[0][0] is None and isinstance(layout[0][1], L.Block):
        block = layout[0][1]
        links = ", ".join(f"[{block.series}/{t}](#block-{block.series}-{t})"
                          for t in _types(block).split(", "))
        return [f"The record data is one series {block.series} block: {links}."]
    lines = []
    for _, kind in layout:
        if isinstance(kind, L.Block):
            links = ", ".join(f"[{kind.series}/{t}](#block-{kind.series}-{t})"
                              for t in _types(kind).split(", "))
            lines.append(f"After the fields below comes one series {kind.series} block: "
                         f"{links}.")
    return [*lines, *([""] if lines else []), *_table(layout, 0)]


def render() -> str:
    out = [
        "# Record and field reference",
        "",
        "Generated from `estreamer/protocol/tables/` by "
        "`python -m estreamer.protocol.tables.doc > docs/fields.md`; do not edit by hand "
        "(a test checks it is current). § numbers point into the protocol fact sheet "
        "(`shared/protocol/estreamer-facts.md`).",
        "",
        "## Conventions",
        "",
        "- Offsets count from the start of the record data (after the 8- or 16-byte record "
        "header) for records, and from the block's first byte (its `u32 type, u32 length` "
        "header) for blocks, as the fact sheet does. `+` means the offset depends on an "
        "earlier variable-size field.",
        "- A record whose data is one block has that block's fields merged into it, plus "
        "`block_type`. A block type the record does not expect, or one with no layout, "
        "decodes as `block_type` and `raw` (hex), with a notice. A block longer than its "
        "layout keeps the rest as `unparsed_tail` (hex).",
        "- `ip[16]`: IPv4-mapped addresses decode as dotted IPv4, others as IPv6 text "
        "(`::` when unset). `uuid[16]`: RFC 4122 text in wire byte order. `raw[n] hex`: "
        "lowercase hex. `string block`: series 1 block type 0, NULs stripped, UTF-8 "
        "(hex when it is not). Length-prefixed text has no block header and no NUL.",
        "- Names: connection records say `initiator_*`/`responder_*` (the two ends of a "
        "flow); intrusion, file and malware events say `source_*`/`destination_*`. A field "
        "name means the same thing in every record; `→ record N` names the metadata record "
        "that gives the ID a name.",
        "- Representation choices where eNcore is inconsistent: `security_context` is always "
        "16 bytes of hex (eNcore prints hex in block 160 and dashed UUID text in 163+; the "
        "wire is the same), and record 132 keys its names by the same hex, so the join needs "
        "no conversion. `ssl_policy_uuid` is always UUID text (eNcore prints hex in block "
        "160). The record 601 revision is UUID text (eNcore prints hex).",
        "",
        "## Records",
        "",
    ]
    groups: dict[str, list[int]] = {}
    bodies: dict[str, list[str]] = {}
    for record_type in sorted(RECORDS):
        body = _record_body(RECORDS[record_type].layout)
        key = "\n".join(body)
        groups.setdefault(key, []).append(record_type)
        bodies[key] = body
    for key, types in groups.items():
        first = RECORDS[types[0]]
        if len(types) == 1:
            section = RECORD_SECTIONS.get(types[0], "§9")
            out.append(f"### Record {types[0]}: {first.name} ({first.category}, {section})")
        else:
            section = ", §9, §10.3" if _is_id_name(first.layout) else ""
            out.append(f"### Records {', '.join(map(str, types))} ({first.category}{section})")
            out.append("")
            out.extend(f"- {t}: {RECORDS[t].name} ({RECORD_SECTIONS.get(t, '§9')})"
                       for t in types if not _is_id_name(first.layout))
            if _is_id_name(first.layout):
                out.extend(f"- {t}: {RECORDS[t].name}" for t in types)
        out.append("")
        out.extend(bodies[key])
        out.append("")
    out += ["## Discovery event header (§8)", "",
            "Starts record 71 and every discovery and user record (`discovery_header`). "
            "40 bytes, or 56 with `has_ipv6`.", ""]
    out += _table(DISCOVERY_HEADER, 0)
    out += ["", "## Blocks", ""]
    for series, block_type in sorted(L.BLOCKS):
        compiled = L.BLOCKS[(series, block_type)]
        section = BLOCK_SECTIONS.get((series, block_type), "§7")
        users = [str(t) for t, r in sorted(RECORDS.items()) if _uses(r.layout, series, block_type)]
        out.append(f'<a id="block-{series}-{block_type}"></a>')
        out.append("")
        out.append(f"### Series {series} block {block_type} ({section}; records "
                   f"{', '.join(users) or 'none'})")
        out.append("")
        out += [
            "| off | field | wire type | meaning |",
            "|---|---|---|---|",
            f"| 0 | `block_type` | u32 | {block_type} |",
            "| 4 | (block length) | u32 | length including these 8 header bytes |",
        ]
        out += _table(compiled.layout, 8)[2:]
        if compiled.fixed_size and all(isinstance(k, L.Fixed) for _, k in compiled.layout):
            out.append("")
            out.append(f"Fixed size: {8 + compiled.fixed_size} bytes.")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _is_id_name(layout: tuple) -> bool:
    return [kind for _, kind in layout] == [L.U32, L.TEXT32]


def _uses(layout: tuple, series: int, block_type: int, seen: frozenset = frozenset()) -> bool:
    """Whether a record reaches the block, directly or through nested blocks and lists."""
    for _, kind in layout:
        block = kind.inner if isinstance(kind, L.ListOf) else kind
        if not isinstance(block, L.Block) or block.series != series:
            continue
        types = block.types or ()
        if block.types is None or block_type in types:
            return True
        for inner in types:
            compiled = block.layout_for(inner)
            if (series, inner) not in seen and compiled is not None and _uses(
                    compiled.layout, series, block_type, seen | {(series, inner)}):
                return True
    return False


if __name__ == "__main__":
    sys.stdout.write(render())
