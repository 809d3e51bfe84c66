"""Connection statistics (record 71) and the discovery event header (fact sheet §8, §10.7).

Record 71 is the discovery header followed by one series-1 connection block; the block type
picks the layout (never the requested version, §4.2). The blocks share long runs of fields,
so each layout below is spelled as a sum of named runs in wire order; `docs/fields.md` shows
every block written out in full.

Connection fields say initiator/responder (the FMC's own terms for the two ends of a flow);
the event families that are not flows (intrusion, file, malware) say source/destination."""

from estreamer.protocol.layout import (
    IP,
    IPV4,
    MAC,
    STR,
    U8,
    U16,
    U32,
    U64,
    UUID,
    Block,
    Nested,
    Raw,
    When,
)

DISCOVERY_HEADER = (
    ("device_id", U32),
    ("legacy_ip", IPV4),
    ("mac_address", MAC),
    ("has_ipv6", U8),
    ("reserved", U8),
    ("event_second", U32),
    ("event_microsecond", U32),
    ("event_type", U32),
    ("event_subtype", U32),
    ("file_number", U32),
    ("file_position", U32),
    ("ipv6_address", When("has_ipv6", IP)),
)

# -- block 163 (6.1+), the base every later block copies (§10.7 table) ----------------------
# Offsets in the comments count from the block's first byte, as the fact sheet does.

_ZONES_AND_INTERFACES = (
    ("device_id", U32),  # 8
    ("ingress_zone_uuid", UUID),  # 12
    ("egress_zone_uuid", UUID),  # 28
    ("ingress_interface_uuid", UUID),  # 44
    ("egress_interface_uuid", UUID),  # 60
    ("initiator_ip", IP),  # 76
    ("responder_ip", IP),  # 92
)

# Rule reason: eNcore reads 4 bytes between the action and the initiator port, and CAP
# confirms the width. UNCERTAIN (§10.7): whether the FMC writes a u32 or a u16 + pad; every
# real value seen was 0. A u32 is right for a u32 and for pad-then-u16.
_RULE_AND_FLOW = (
    ("rule_action", U16),
    ("rule_reason", U32),
    ("initiator_port", U16),
    ("responder_port", U16),
    ("tcp_flags", U16),
    ("protocol", U8),
    ("netflow_source_uuid", UUID),
    ("connection_instance_id", U16),
    ("connection_counter", U16),
    ("first_packet_time", U32),
    ("last_packet_time", U32),
    ("initiator_packets", U64),
    ("responder_packets", U64),
    ("initiator_bytes", U64),
    ("responder_bytes", U64),
)

_DROPPED_AND_QOS = (
    ("initiator_packets_dropped", U64),  # 221
    ("responder_packets_dropped", U64),  # 229
    ("initiator_bytes_dropped", U64),  # 237
    ("responder_bytes_dropped", U64),  # 245
    ("qos_applied_interface_uuid", UUID),  # 253
    ("qos_rule_id", U32),  # 269
)

_APPLICATIONS = (
    ("user_id", U32),
    ("application_id", U32),
    ("url_category", U32),
    ("url_reputation", U32),
    ("client_application_id", U32),
    ("web_application_id", U32),
    ("client_url", STR),  # 297 in 163+, 225 in 160
    ("netbios_name", STR),
    ("client_application_version", STR),
    ("monitor_rule_1", U32),
    ("monitor_rule_2", U32),
    ("monitor_rule_3", U32),
    ("monitor_rule_4", U32),
    ("monitor_rule_5", U32),
    ("monitor_rule_6", U32),
    ("monitor_rule_7", U32),
    ("monitor_rule_8", U32),
    ("security_intelligence_source_destination", U8),
    ("security_intelligence_layer", U8),
    ("file_event_count", U16),  # eNcore renames it "fileCount" in 173; same field
    ("intrusion_event_count", U16),
    ("initiator_country", U16),
    ("responder_country", U16),
)

# Security context: eNcore declares it uint128 in 160 (prints 32 hex digits) and UUID in 163+
# (prints dashed text); the wire is the same 16 bytes (§7). We keep hex in every block so the
# value compares equal across versions. The SSL policy ID is a policy's UUID (→ record 600),
# so it is a UUID everywhere, though eNcore prints it as hex in 160.
_COUNTERS_TO_SECURITY_GROUP = (
    ("ioc_number", U16),
    ("source_autonomous_system", U32),
    ("destination_autonomous_system", U32),
    ("snmp_in", U16),
    ("snmp_out", U16),
    ("source_tos", U8),
    ("destination_tos", U8),
    ("source_mask", U8),
    ("destination_mask", U8),
    ("security_context", Raw(16)),
    ("vlan_id", U16),
    ("referenced_host", STR),
    ("user_agent", STR),
    ("http_referrer", STR),
    ("ssl_certificate_fingerprint", Raw(20)),
    ("ssl_policy_uuid", UUID),
    ("ssl_rule_id", U32),
    ("ssl_cipher_suite", U16),
    ("ssl_version", U8),
    ("ssl_server_certificate_status", U32),  # 4 bytes: eNcore says the guide is wrong
    ("ssl_actual_action", U16),
    ("ssl_expected_action", U16),
    ("ssl_flow_status", U16),
    ("ssl_flow_error", U32),
    ("ssl_flow_messages", U32),
    ("ssl_flow_flags", U64),
    ("ssl_server_name", STR),
    ("ssl_url_category", U32),
    ("ssl_session_id", Raw(32)),
    ("ssl_session_id_length", U8),
    ("ssl_ticket_id", Raw(20)),
    ("ssl_ticket_id_length", U8),
    ("network_analysis_policy_uuid", UUID),
    ("endpoint_profile_id", U32),
    ("security_group_id", U32),
)

_LOCATION_TO_SI_LISTS = (
    ("location_ipv6", IP),
    ("http_response", U32),
    ("dns_query", STR),
    ("dns_record_type", U16),
    ("dns_response_type", U16),
    ("dns_ttl", U32),
    ("sinkhole_uuid", UUID),
    ("security_intelligence_list_1", U32),
    ("security_intelligence_list_2", U32),
)

CONNECTION_163 = (
    *_ZONES_AND_INTERFACES,
    ("original_client_ip", IP),  # 108
    ("access_control_policy_uuid", UUID),  # 124, "policy revision"
    ("access_control_rule_id", U32),  # 140
    ("tunnel_rule_id", U32),  # 144
    *_RULE_AND_FLOW,  # action 148, initiator port 154, first packet 181
    *_DROPPED_AND_QOS,
    *_APPLICATIONS,
    ("original_client_country", U16),
    *_COUNTERS_TO_SECURITY_GROUP,
    *_LOCATION_TO_SI_LISTS,
)

# Block 160 (6.0), the one CAP shows a real FMC sending: 163 without the original client
# IP, the tunnel rule ID, the dropped counters, the QoS fields and the original client
# country. Offsets (§10.7): policy 108, rule 124, action 128, initiator port 134, first
# packet 161, user 201, client URL 225.
CONNECTION_160 = (
    *_ZONES_AND_INTERFACES,
    ("access_control_policy_uuid", UUID),
    ("access_control_rule_id", U32),
    *_RULE_AND_FLOW,
    *_APPLICATIONS,
    *_COUNTERS_TO_SECURITY_GROUP,
    *_LOCATION_TO_SI_LISTS,
)

# Block 168: UNCERTAIN (§10.7). eNcore defines it as 163 plus a third SI list, but its own
# dispatch never reaches that definition, so the layout has never decoded real bytes.
CONNECTION_168 = (*CONNECTION_163, ("security_intelligence_list_3", U32))

CONNECTION_169 = (*CONNECTION_163, ("threat_intelligence_category", U32))

_SGT = (("source_sgt", U16), ("destination_sgt", U16))
_SGT_WITH_TYPES = (
    ("source_sgt", U16),
    ("source_sgt_type", U8),
    ("destination_sgt", U16),
    ("destination_sgt_type", U8),
)

_PREFIX_163_TO_SECURITY_GROUP = CONNECTION_163[: -len(_LOCATION_TO_SI_LISTS)]

CONNECTION_170 = (
    *_PREFIX_163_TO_SECURITY_GROUP,
    *_SGT,
    *_LOCATION_TO_SI_LISTS,
    ("threat_intelligence_category", U32),
)

_THROUGH_THREAT_CATEGORY_171 = (
    *_PREFIX_163_TO_SECURITY_GROUP,
    *_SGT_WITH_TYPES,
    *_LOCATION_TO_SI_LISTS,
    ("threat_intelligence_category", U32),
)

_VRF = (("ingress_vrf", STR), ("egress_vrf", STR))
_DYNAMIC_ATTRIBUTES = (
    ("source_dynamic_attributes", STR),
    ("destination_dynamic_attributes", STR),
)

CONNECTION_171 = (*_THROUGH_THREAT_CATEGORY_171, *_VRF)

CONNECTION_173 = (*_THROUGH_THREAT_CATEGORY_171, *_VRF, *_DYNAMIC_ATTRIBUTES)

# Block 174: the encrypted-visibility (EVE) and NAT fields come before the VRF names.
CONNECTION_174 = (
    *_THROUGH_THREAT_CATEGORY_171,
    ("eve_process", STR),
    ("eve_process_confidence", U8),
    ("eve_threat_confidence", U8),
    ("eve_threat_confidence_index", U8),
    ("client_application_detector_id", U8),
    ("nat_initiator_port", U16),
    ("nat_responder_port", U16),
    ("nat_initiator_ip", IP),
    ("nat_responder_ip", IP),
    *_VRF,
    *_DYNAMIC_ATTRIBUTES,
)

BLOCKS = {
    (1, 160): CONNECTION_160,
    (1, 163): CONNECTION_163,
    (1, 168): CONNECTION_168,
    (1, 169): CONNECTION_169,
    (1, 170): CONNECTION_170,
    (1, 171): CONNECTION_171,
    (1, 173): CONNECTION_173,
    (1, 174): CONNECTION_174,
}

CONNECTION_BLOCK_TYPES = tuple(block_type for _, block_type in BLOCKS)

RECORDS = {
    71: (
        "Connection Statistics",
        "connection",
        (
            ("discovery_header", Nested(DISCOVERY_HEADER)),
            # Only connection blocks: another series-1 block here is kept as raw hex.
            (None, Block(1, CONNECTION_BLOCK_TYPES, inline=True)),
        ),
    ),
}
