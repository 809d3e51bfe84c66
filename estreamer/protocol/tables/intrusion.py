"""Intrusion events and what comes with them (fact sheet §10.1, §10.6, §10.10)."""

from estreamer.protocol.layout import IP, U8, U16, U32, UUID, Block, BytesFrom, LengthU32, Raw

PACKET = (
    ("device_id", U32),
    ("event_id", U32),
    ("event_second", U32),
    ("packet_second", U32),
    ("packet_microsecond", U32),
    ("link_type", U32),
    ("packet_length", LengthU32("packet_data")),
    ("packet_data", BytesFrom("packet_length")),
)

# Block 60 (6.x), fields after the block header; offsets in §10.6 count from the header.
INTRUSION_60 = (
    ("device_id", U32),
    ("event_id", U32),
    ("event_second", U32),
    ("event_microsecond", U32),
    ("rule_id", U32),
    ("generator_id", U32),
    ("rule_revision", U32),
    ("classification_id", U32),
    ("priority_id", U32),
    ("source_ip", IP),
    ("destination_ip", IP),
    ("source_port", U16),
    ("destination_port", U16),
    ("protocol", U8),
    ("impact_flags", U8),
    ("impact", U8),
    ("blocked", U8),
    ("mpls_label", U32),
    ("vlan_id", U16),
    ("pad", U16),
    ("intrusion_policy_uuid", UUID),
    ("user_id", U32),
    ("web_application_id", U32),
    ("client_application_id", U32),
    ("application_id", U32),
    ("access_control_rule_id", U32),
    ("access_control_policy_uuid", UUID),
    ("ingress_interface_uuid", UUID),
    ("egress_interface_uuid", UUID),
    ("ingress_zone_uuid", UUID),
    ("egress_zone_uuid", UUID),
    ("connection_timestamp", U32),
    ("connection_instance_id", U16),
    ("connection_counter", U16),
    ("source_country", U16),
    ("destination_country", U16),
    ("ioc_number", U16),
    ("security_context", Raw(16)),
    ("ssl_certificate_fingerprint", Raw(20)),
    ("ssl_actual_action", U16),
    ("ssl_flow_status", U16),
    ("network_analysis_policy_uuid", UUID),
    ("http_response", U32),
)

BLOCKS = {
    (2, 60): INTRUSION_60,
}

RECORDS = {
    2: ("Packet", "packet", PACKET),
    400: ("Intrusion Event", "intrusion", ((None, Block(2, (60,), inline=True)),)),
}
