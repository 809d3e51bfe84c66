"""Intrusion events and what comes with them (fact sheet §10.1, §10.6, §10.10).

Record 400 is exactly one series-2 block; the block type picks the layout (41 = 5.3,
60 = 6.x, 81 and 85 = 7.x). Every version shares its first 84 bytes. Record 110 carries
extra data for an intrusion event (a BLOB), record 111 names the extra-data types, and
record 9 is the impact alert (series 1)."""

from estreamer.protocol.layout import (
    BLOB,
    IP,
    IPV4,
    STR,
    U8,
    U16,
    U32,
    UUID,
    Block,
    BytesFrom,
    Fixed,
    LengthU32,
    Raw,
)

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

# Offsets in the comments count from the block's first byte, as §10.6 does.
_EVENT_TO_BLOCKED = (
    ("device_id", U32),  # 8
    ("event_id", U32),
    ("event_second", U32),
    ("event_microsecond", U32),
    ("rule_id", U32),  # 24
    ("generator_id", U32),
    ("rule_revision", U32),
    ("classification_id", U32),
    ("priority_id", U32),
    ("source_ip", IP),  # 44
    ("destination_ip", IP),  # 60
    ("source_port", U16),  # 76, or ICMP type
    ("destination_port", U16),  # 78, or ICMP code
    ("protocol", U8),  # 80
    ("impact_flags", U8),
    ("impact", U8),
    ("blocked", U8),  # 83
)

_MPLS_TO_IOC = (
    ("mpls_label", U32),  # 84 in block 60, 85 in 81/85
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
    ("ioc_number", U16),  # 220 in block 60: block 41 ends here
)

# Security context as hex, not UUID text: see the note in connection.py.
_SECURITY_TO_HTTP = (
    ("security_context", Raw(16)),
    ("ssl_certificate_fingerprint", Raw(20)),
    ("ssl_actual_action", U16),
    ("ssl_flow_status", U16),
    ("network_analysis_policy_uuid", UUID),
    ("http_response", U32),  # 278 in block 60; the block is 282 bytes
)

# Block 41 (5.3): G53 p70 and ENC3 agree it stops after the IOC number. ENC5 has a 41 entry
# with a blocked-reason byte, but never uses it (§10.6), so it is not followed here.
INTRUSION_41 = (*_EVENT_TO_BLOCKED, *_MPLS_TO_IOC)

# Block 60 (6.x): 282 bytes, all fixed.
INTRUSION_60 = (*_EVENT_TO_BLOCKED, *_MPLS_TO_IOC, *_SECURITY_TO_HTTP)

# Block 81 (7.x): a blocked-reason byte at 84 shifts every later field by one.
INTRUSION_81 = (
    *_EVENT_TO_BLOCKED,
    ("blocked_reason", U8),
    *_MPLS_TO_IOC,
    *_SECURITY_TO_HTTP,
    ("ingress_vrf", STR),
    ("egress_vrf", STR),
    ("snort_version", U8),
)

# Block 85 (current 7.x).
INTRUSION_85 = (
    *INTRUSION_81,
    ("original_source_ip", IP),
    ("http_hostname", STR),
    ("http_uri", STR),
    ("smtp_attachments", STR),
    ("smtp_from", STR),
    ("smtp_headers", STR),
    ("smtp_to", STR),
)

# Block 4: the extra data for one intrusion event, found by (device, event ID, event second).
EXTRA_DATA = (
    ("device_id", U32),
    ("event_id", U32),
    ("event_second", U32),
    ("extra_data_type", U32),  # → record 111
    ("data", BLOB),
)

EXTRA_DATA_TYPE = (
    ("extra_data_type", U32),
    ("name", STR),
    ("encoding", STR),
)

# Block 153 (5.3+). Note event ID before device ID, unlike every other event block.
# UNCERTAIN (§10.10): the width of "impact"; eNcore reads a u32.
IMPACT_ALERT = (
    ("event_id", U32),
    ("device_id", U32),
    ("event_second", U32),
    ("impact", U32),
    ("source_ip", IP),
    ("destination_ip", IP),
    ("description", STR),  # contains "[Impact: N]"
)

# Records 104 (IPv4) and 105 (IPv6): the 4.10.2.3 intrusion events with a VLAN ID, a fixed
# record without a block header. Layout from G53 pp. 459-462 (the fact sheet's source for
# §9's row): the first 84 bytes of block 60 without the zones, with 4- or 16-byte addresses,
# then a reserved word the guide displays as "MPLS Label:0", the VLAN ID and a pad. The first
# word is a 4.x *detection engine* ID (deprecated records 64/68 named those), not a device ID
# of record 123, so it is not called `device_id` and nothing names it. Deprecated (ENC3
# `core.py`): a 6.x/7.x FMC sends record 400 instead; decoded so an old archive replays.
def _legacy_event(ip: Fixed) -> tuple:
    return (
        ("detection_engine_id", U32),
        *_EVENT_TO_BLOCKED[1:9],
        ("source_ip", ip),
        ("destination_ip", ip),
        *_EVENT_TO_BLOCKED[11:],
        ("mpls_label", U32),
        ("vlan_id", U16),
        ("pad", U16),
    )


BLOCKS = {
    (2, 41): INTRUSION_41,
    (2, 60): INTRUSION_60,
    (2, 81): INTRUSION_81,
    (2, 85): INTRUSION_85,
    (2, 4): EXTRA_DATA,
    (2, 5): EXTRA_DATA_TYPE,
    (1, 153): IMPACT_ALERT,
}

RECORDS = {
    2: ("Packet", "packet", PACKET),
    9: ("Intrusion Impact Alert", "impact", ((None, Block(1, (153,), inline=True)),)),
    104: ("Legacy Intrusion Event (IPv4, 4.10.2.3)", "intrusion", _legacy_event(IPV4)),
    105: ("Legacy Intrusion Event (IPv6, 4.10.2.3)", "intrusion", _legacy_event(IP)),
    110: ("Intrusion Event Extra Data", "extra_data", ((None, Block(2, (4,), inline=True)),)),
    111: ("Extra Data Type", "metadata", ((None, Block(2, (5,), inline=True)),)),
    400: (
        "Intrusion Event",
        "intrusion",
        ((None, Block(2, (41, 60, 81, 85), inline=True)),),
    ),
}
