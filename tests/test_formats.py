"""Formats are pure functions of the event: golden files per record type and format, built
from records encoded and decoded by the real tables; plus the escaping and mapping rules each
format promises. Regenerate the golden files after an intended change with
`ESTREAMER_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_formats.py`."""

import json
import os
from pathlib import Path

import orjson
import pytest

from estreamer.formats import FORMATS, get_formatter
from estreamer.formats.cef import cef_parts, escape_header, escape_value, make_cef
from estreamer.formats.common import impact_level, name_keys
from estreamer.formats.ecs import ecs_document
from estreamer.formats.splunk import SPLUNK_KEYS, mapping_markdown, splunk_pairs, splunk_value
from estreamer.protocol.records import decode_record, encode_record

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("ESTREAMER_UPDATE_GOLDEN") == "1"
T = 1700000000

POLICY = "1f2e3d4c-0000-4000-8000-00000000a001"
ZONE_IN, ZONE_OUT = "1f2e3d4c-0000-4000-8000-00000000b001", "1f2e3d4c-0000-4000-8000-00000000b002"
IF_IN, IF_OUT = "1f2e3d4c-0000-4000-8000-00000000c001", "1f2e3d4c-0000-4000-8000-00000000c002"

FLOW = {
    "device_id": 3, "ingress_zone_uuid": ZONE_IN, "egress_zone_uuid": ZONE_OUT,
    "ingress_interface_uuid": IF_IN, "egress_interface_uuid": IF_OUT,
    "access_control_policy_uuid": POLICY, "connection_instance_id": 2,
    "connection_counter": 50850, "application_id": 676, "client_application_id": 573,
    "web_application_id": 929, "user_id": 7, "protocol": 6,
}

# (golden name, record type, fields, decoration the metadata decorator would add)
CASES = [
    ("packet", 2, {"device_id": 3, "event_id": 9, "event_second": T, "packet_second": T,
                   "packet_microsecond": 5, "link_type": 1, "packet_data": "45000028abcd"}, {}),
    ("impact_alert", 9, {"block_type": 153, "event_id": 9, "device_id": 3,
                         "event_second": T, "impact": 1, "source_ip": "10.0.0.5",
                         "destination_ip": "2001:db8::7",
                         "description": '[Impact: 1] "quoted" alert'}, {}),
    ("connection", 71, {
        "discovery_header": {"device_id": 3, "event_second": T, "event_microsecond": 250,
                             "event_type": 1003, "event_subtype": 1},
        "block_type": 173, **FLOW, "initiator_ip": "10.0.0.5", "responder_ip": "216.151.129.103",
        "initiator_port": 51000, "responder_port": 443, "rule_action": 2,
        "access_control_rule_id": 17, "first_packet_time": T - 5, "last_packet_time": T,
        "initiator_packets": 10, "responder_packets": 12, "initiator_bytes": 820,
        "responder_bytes": 15000, "client_url": "https://example.com/a b?x=1",
        "user_agent": "curl/8.0", "dns_query": "example.com", "ssl_server_name": "example.com",
        "monitor_rule_1": 18}, {}),
    ("connection_named", 71, {
        "discovery_header": {"device_id": 3, "event_second": T, "event_type": 1003,
                             "event_subtype": 1},
        "block_type": 173, **FLOW, "initiator_ip": "10.0.0.5", "responder_ip": "10.9.9.9",
        "initiator_port": 3478, "responder_port": 9000, "protocol": 17, "rule_action": 1,
        "access_control_rule_id": 17, "first_packet_time": T, "last_packet_time": T + 2,
        "initiator_bytes": 820}, {
        "device_name": "10.48.26.45", "access_control_policy_name": "test",
        "access_control_rule_name": "Default Action",
        "ingress_zone_name": "INSIDE", "egress_zone_name": "OUTSIDE",
        "ingress_interface_name": "inside", "egress_interface_name": "outside",
        "rule_action_name": "Allow", "rule_reason_name": "N/A", "application_name": "STUN",
        "client_application_name": "STUN client", "user_name": "alice",
        "web_application_name": "Unknown", "initiator_country_name": "united states"}),
    ("extra_data", 110, {"block_type": 4, "device_id": 3, "event_id": 9, "event_second": T,
                         "extra_data_type": 9, "data": "2f696e6465782e68746d6c"}, {}),
    ("malware", 125, {"block_type": 80, **{k: FLOW[k] for k in (
        "device_id", "connection_instance_id", "connection_counter", "application_id",
        "user_id", "protocol", "access_control_policy_uuid")},
        "malware_event_timestamp": T, "event_type_id": 1, "detector_id": 4,
        "detection_name": "W32.Agent", "user": "bob", "file_name": "setup.exe",
        "file_path": "C:\\Users\\bob\\setup.exe", "file_sha": "ab" * 32, "file_size": 4096,
        "file_type_id": 4, "source_ip": "10.0.0.5", "destination_ip": "10.0.0.9",
        "threat_score": 87, "disposition": 1, "event_description": "line1\nline2"}, {}),
    ("intrusion", 400, {"block_type": 85, **FLOW, "event_id": 5, "event_second": T,
                        "event_microsecond": 42, "rule_id": 2019401, "generator_id": 1,
                        "rule_revision": 3, "classification_id": 2, "priority_id": 1,
                        "source_ip": "10.0.0.5", "destination_ip": "10.0.0.9",
                        "source_port": 51000, "destination_port": 80, "impact_flags": 9,
                        "impact": 1, "blocked": 1, "access_control_rule_id": 17,
                        "intrusion_policy_uuid": POLICY, "connection_timestamp": T - 1,
                        "vlan_id": 12, "http_uri": "/cgi-bin/a=b|c", "smtp_headers": "x"}, {}),
    ("intrusion_named", 400, {"block_type": 85, **FLOW, "event_id": 6, "event_second": T,
                              "rule_id": 2019401, "generator_id": 1, "classification_id": 2,
                              "priority_id": 2, "source_ip": "2001:db8::1",
                              "destination_ip": "2001:db8::2", "impact_flags": 2,
                              "impact": 3, "blocked": 0}, {
        "rule_message": "ET POLICY a|b \\ c=d",
        "classification_name": "Potential Corporate Privacy Violation",
        "classification_description": "Potential Corporate Privacy Violation",
        "device_name": "ftd-hq-01", "priority_name": "medium",
        "access_control_policy_name": "Corp policy", "signature_id": 2019401}),
    ("file", 500, {"block_type": 79, **{k: FLOW[k] for k in (
        "device_id", "connection_instance_id", "connection_counter", "application_id",
        "user_id", "protocol", "access_control_policy_uuid")},
        "file_event_timestamp": T, "connection_timestamp": T - 2, "source_ip": "10.0.0.5",
        "destination_ip": "10.0.0.9", "source_port": 80, "destination_port": 51000,
        "disposition": 1, "threat_score": 0, "action": 1, "file_sha256": "cd" * 32,
        "file_type_id": 1, "file_name": "invoice.pdf", "file_size": 123456, "direction": 1,
        "uri": "http://example.com/invoice.pdf"}, {"file_type_name": "PDF"}),
    ("file_malware", 502, {"block_type": 79, "device_id": 3, "file_event_timestamp": T,
                           "source_ip": "10.0.0.5", "destination_ip": "10.0.0.9",
                           "threat_score": 95, "file_name": "evil.exe",
                           "file_sha256": "ef" * 32}, {}),
    ("priority", 4, {"id": 1, "name": "high"}, {}),
    ("rule_message", 66, {"generator_id": 1, "rule_id": 2019401, "rule_revision": 3,
                          "signature_id": 2019401, "message": "ET POLICY curl"}, {}),
    ("zone", 115, {"block_type": 14, "uuid": ZONE_IN, "name": "INSIDE"}, {}),
    ("device", 123, {"id": 3, "name": "ftd-hq-01"}, {}),
    ("geolocation", 520, {"block_type": 28, "country_code": 840, "name": "united states"}, {}),
    ("security_context", 132, {"security_context": "00" * 15 + "01", "name": "ctx one"}, {}),
]


def build(record_type, fields, decoration):
    archive = T + 1 if record_type not in (4, 66, 115, 123, 520, 132) else None
    event = decode_record(encode_record(record_type, fields, archive)).to_dict()
    event.update(decoration)
    return event


FIXED_HOST = make_cef("estreamer-host")
WRITERS = {**FORMATS, "cef": FIXED_HOST}
EXTENSIONS = {"json": "json", "splunk": "kv", "cef": "cef", "ecs": "json"}


@pytest.mark.parametrize("fmt", sorted(WRITERS))
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_golden(case, fmt):
    name, record_type, fields, decoration = case
    line = WRITERS[fmt](build(record_type, fields, decoration))
    assert b"\n" not in line and b"\r" not in line
    path = GOLDEN / fmt / f"{name}.{EXTENSIONS[fmt]}"
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"{path} is missing; run with ESTREAMER_UPDATE_GOLDEN=1 to create it")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(line + b"\n")
    assert line + b"\n" == path.read_bytes()


# --------------------------------------------------------------------------- splunk


def pairs(record_type, fields, decoration=None):
    return dict(splunk_pairs(build(record_type, fields, decoration or {})))


def test_splunk_starts_with_rec_type_then_event_sec_for_the_addon_time_prefix():
    line = FORMATS["splunk"](build(400, {"block_type": 85, "event_second": T}, {}))
    assert line.startswith(f"rec_type=400 event_sec={T} ".encode())


def test_splunk_names_replace_ids_when_known_and_ids_remain_otherwise():
    bare = pairs(400, {"block_type": 85, "access_control_rule_id": 17, "priority_id": 1})
    assert bare["fw_rule"] == 17 and bare["priority"] == 1 and "msg" not in bare
    named = pairs(400, {"block_type": 85, "access_control_rule_id": 17, "priority_id": 1,
                        "rule_id": 5}, {"access_control_rule_name": "Block bad",
                                        "priority_name": "high", "rule_message": "BAD"})
    assert (named["fw_rule"], named["priority"], named["msg"]) == ("Block bad", "high", "BAD")


def test_splunk_values_follow_encore_quoting():
    assert splunk_value("plain") == "plain"
    assert splunk_value("two words") == '"two words"'
    assert splunk_value("a=b") == '"a=b"'
    assert splunk_value("") == '""'
    assert splunk_value("x\r\ny") == "x\\ny"
    assert splunk_value('say "hi" now') == "\"say 'hi' now\""
    assert splunk_value(POLICY) == f'"{POLICY}"'
    assert splunk_value(0) == "0"


def test_splunk_connection_uses_encore_keys_and_computed_values():
    p = pairs(71, {"discovery_header": {"event_type": 1003, "event_subtype": 1,
                                        "event_second": T},
                   "block_type": 173, "initiator_ip": "10.0.0.5", "responder_port": 443,
                   "protocol": 17, "monitor_rule_2": 4, "initiator_bytes": 5})
    assert p["src_ip"] == "10.0.0.5" and p["dest_port"] == 443 and p["src_bytes"] == 5
    assert p["ip_proto"] == "UDP"  # the add-on's ip_protos lookup wants the name
    assert p["event_desc"] == "Flow Statistics" and p["rec_type_simple"] == "RNA"
    assert p["monitor_rule_1"] == "N/A" and p["monitor_rule_2"] == 4
    assert p["sec_intel_event"] == "No"


def test_splunk_writes_unmapped_records_with_our_field_names():
    p = pairs(132, {"security_context": "00" * 16, "name": "ctx"})
    assert 132 not in SPLUNK_KEYS
    assert p["rec_type"] == 132 and p["name"] == "ctx" and "security_context" in p


# --------------------------------------------------------------------------- cef


def test_cef_escaping_follows_the_specification():
    assert escape_header("a|b\\c") == "a\\|b\\\\c"
    assert escape_value("a=b\\c\nd\re") == "a\\=b\\\\c\\nd\\re"
    assert escape_value("pipes | stay") == "pipes | stay"


def test_cef_matches_the_seed_example_shape():
    event = build(*CASES[3][1:])
    line = FIXED_HOST(event).decode()
    assert line.startswith("<13>Nov 14 22:13:20 estreamer-host "
                           "CEF:0|Cisco|Firepower|6.0|RNA:1003:1|CONNECTION STATISTICS|3|")
    ext = line.split("|", 7)[7]
    for pair in ("act=Allow", "app=STUN", "bytesOut=820", "cs1=test", "cs1Label=fwPolicy",
                 "cs2=Default Action", "cs3=INSIDE", "cs5Label=secIntelCategory",
                 "deviceExternalId=3", "deviceInboundInterface=inside", "dpt=9000",
                 "dvchost=10.48.26.45", "dvcpid=2", f"end={(T + 2) * 1000}",
                 "externalId=50850", "proto=17", "reason=N/A"):
        assert f" {pair} " in f" {ext} ", pair
    assert "cs5=" not in ext and "bytesIn" not in ext  # zeros are left out, labels stay
    keys = [p.split("=", 1)[0] for p in ext.split(" ") if "=" in p]
    assert [k for k in keys if k[0].islower()] == sorted(k for k in keys if k[0].islower())


@pytest.mark.parametrize(("case", "sig", "severity"), [
    ("intrusion", "INTRUSION:400:1:2019401", 10), ("intrusion_named", "INTRUSION:400:1:2019401", 4),
    ("file", "File:500:1", 0), ("file_malware", "FileMalware:502:1", 9),
    ("malware", "FireAMP:125:1", 8), ("packet", "PKT:2:1", 7), ("connection", "RNA:1003:1", 3),
    ("priority", "METADATA:4:1", 0),
])
def test_cef_signature_ids_and_severity(case, sig, severity):
    found = next(c for c in CASES if c[0] == case)
    got_sig, _name, got_severity, _ = cef_parts(build(*found[1:]))
    assert (got_sig, got_severity) == (sig, severity)


def test_cef_intrusion_name_is_the_rule_message_escaped():
    line = FIXED_HOST(build(*CASES[7][1:])).decode()
    assert "|ET POLICY a\\|b \\\\ c=d|4|" in line


# --------------------------------------------------------------------------- ecs


def test_ecs_connection_has_the_fields_elastic_security_uses():
    doc = orjson.loads(FORMATS["ecs"](build(*CASES[3][1:])))
    assert doc["@timestamp"] == "2023-11-14T22:13:20.000000Z"
    assert doc["event"]["category"] == ["network"] and doc["event"]["kind"] == "event"
    assert doc["event"]["type"] == ["connection", "allowed"]
    assert doc["source"] == {"ip": "10.0.0.5", "port": 3478, "bytes": 820, "packets": 0,
                             "geo": {"country_name": "united states"}}
    assert doc["destination"]["ip"] == "10.9.9.9" and doc["network"]["transport"] == "udp"
    assert doc["rule"] == {"id": "17", "name": "Default Action", "ruleset": "test"}
    assert doc["observer"]["ingress"] == {"interface": {"name": "inside"}, "zone": "INSIDE"}
    assert doc["user"]["name"] == "alice"
    assert doc["cisco"]["firepower"]["record_type"] == 71


def test_ecs_intrusion_and_file():
    doc = ecs_document(build(*CASES[7][1:]))
    assert doc["rule"]["id"] == "1:2019401" and doc["rule"]["name"] == "ET POLICY a|b \\ c=d"
    assert doc["event"]["kind"] == "alert" and doc["event"]["severity"] == 2
    file_doc = orjson.loads(FORMATS["ecs"](build(*CASES[8][1:])))
    assert file_doc["file"]["hash"]["sha256"] == "cd" * 32
    assert file_doc["file"]["name"] == "invoice.pdf" and file_doc["file"]["size"] == 123456


# --------------------------------------------------------------------------- shared rules


def test_every_format_writes_every_case_as_one_line_and_json_round_trips():
    for _name, record_type, fields, decoration in CASES:
        event = build(record_type, fields, decoration)
        assert json.loads(FORMATS["json"](event)) == event
        for fmt in FORMATS:
            assert b"\n" not in get_formatter(fmt)(event)


def test_name_keys_follow_the_documented_rule():
    assert name_keys("application_id") == ("application_name",)
    assert name_keys("ingress_zone_uuid") == ("ingress_zone_name",)
    assert name_keys("access_control_rule_id") == ("access_control_rule_name",)
    assert name_keys("rule_id") == ("rule_message", "rule_name")
    assert name_keys("discovery_header.device_id") == (
        "discovery_header.device_name", "device_name")


def test_impact_levels():
    assert [impact_level(f) for f in (0, 1, 2, 6, 8, 0x40)] == [0, 4, 3, 2, 1, 1]


def test_docs_list_the_splunk_mapping_as_the_code_has_it():
    doc = (Path(__file__).parent.parent / "docs" / "formats.md").read_text()
    start = doc.index("<!-- splunk-table")
    table = doc[doc.index("\n", start) + 1: doc.index("<!-- /splunk-table -->")]
    assert table == mapping_markdown()
