"""Correlation events (record 112), rule documentation (140) and IOC names (161) (fact sheet
§9, §10.10).

The fact sheet gives the record-to-block mapping (112 → series 1 block 156, 140 → series 2
block 27, 161 → series 2 block 39) and says block 156 is "a long fixed layout ... not repeated
here". The layouts were learned from the public eNcore 5.2.11 definitions
(CiscoSecurity/fp-05-firepower-cli @ 88b8ae19, `blocks_series1.py`, `blocks_series2.py`;
read, not copied) and are **eNcore only**: no real bytes checked."""

from estreamer.protocol.layout import IP, IPV4, STR, U8, U16, U32, UUID, Block, Raw

_END = (
    ("host_type", U8),
    ("vlan_id", U16),
    ("os_fingerprint_uuid", UUID),  # → record 54
    ("criticality_id", U16),  # → record 58
    ("user_id", U32),
    ("port", U16),
    ("server_id", U32),  # the application protocol of the server (→ 63)
)


def _side(prefix: str) -> tuple:
    return tuple((f"{prefix}_{name}", kind) for name, kind in _END)


# Block 156 (5.4+). eNcore's `priority` is the correlation rule's priority (→ record 4).
CORRELATION_EVENT_156 = (
    ("device_id", U32),
    ("correlation_event_second", U32),
    ("event_id", U32),
    ("correlation_policy_id", U32),  # → record 69
    ("correlation_rule_id", U32),  # → record 70
    ("priority_id", U32),
    ("event_description", STR),
    ("correlation_event_type", U8),
    ("trigger_device_id", U32),
    ("signature_id", U32),
    ("generator_id", U32),
    ("trigger_event_second", U32),
    ("trigger_event_microsecond", U32),
    ("trigger_event_id", U32),
    ("event_defined_mask", U32),
    ("impact_flags", U8),
    ("protocol", U8),
    ("network_protocol", U16),
    ("legacy_source_ip", IPV4),  # "no longer used": the address is in `source_ip`
    *_side("source"),
    ("legacy_destination_ip", IPV4),
    *_side("destination"),
    ("impact", U8),
    ("blocked", U8),
    ("intrusion_policy_uuid", UUID),
    ("rule_action", U32),
    ("netbios_name", STR),
    ("url_category", U32),
    ("url_reputation", U32),
    ("url", STR),
    ("client_application_id", U32),
    ("client_application_version", STR),
    ("access_control_policy_uuid", UUID),
    ("access_control_rule_id", U32),
    ("ingress_interface_uuid", UUID),
    ("egress_interface_uuid", UUID),
    ("ingress_zone_uuid", UUID),
    ("egress_zone_uuid", UUID),
    ("source_ip", IP),
    ("destination_ip", IP),
    ("source_country", U16),
    ("destination_country", U16),
    ("security_intelligence_uuid", UUID),  # → record 282
    ("security_context", Raw(16)),  # hex, as in every block (connection.py)
    ("ssl_policy_uuid", UUID),
    ("ssl_rule_id", U32),
    ("ssl_actual_action", U32),
    ("ssl_flow_status", U32),
    ("ssl_certificate_fingerprint", Raw(20)),
)

# Block 27 (5.2+): the documentation of one intrusion rule. `documented_impact` is text,
# unlike the impact level events carry.
RULE_DOCUMENTATION_27 = (
    ("signature_id", U32),
    ("generator_id", U32),
    ("rule_revision", U32),
    ("summary", STR),
    ("documented_impact", STR),
    ("detail", STR),
    ("affected_systems", STR),
    ("attack_scenarios", STR),
    ("ease_of_attack", STR),
    ("false_positives", STR),
    ("false_negatives", STR),
    ("corrective_action", STR),
    ("contributors", STR),
    ("additional_references", STR),
)

IOC_NAME_39 = (("id", U32), ("category", STR), ("ioc_event_type", STR))

BLOCKS = {
    (1, 156): CORRELATION_EVENT_156,
    (2, 27): RULE_DOCUMENTATION_27,
    (2, 39): IOC_NAME_39,
}

RECORDS = {
    112: ("Correlation Event", "correlation", ((None, Block(1, (156,), inline=True)),)),
    140: ("Rule Documentation", "metadata", ((None, Block(2, (27,), inline=True)),)),
    161: ("IOC Name", "metadata", ((None, Block(2, (39,), inline=True)),)),
}
