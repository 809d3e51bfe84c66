"""Decoration and the metadata cache with real records: encode from the tables, decode, then
decorate, and assert the names and times a SIEM reader sees."""

from __future__ import annotations

import json
import os
import stat

import pytest

from estreamer.decorate import Decorator
from estreamer.metadata import MetadataCache, metadata_path
from estreamer.protocol.records import decode_record, encode_record

POLICY = "0a1b2c3d-0000-4000-8000-000000000001"
ZONE_IN = "11111111-2222-4333-8444-555555555555"
ZONE_OUT = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
IPS = "22222222-0000-4000-8000-000000000002"

METADATA = [
    (123, {"id": 1, "name": "ftd-hq-01"}),
    (123, {"id": 0, "name": "Unknown"}),
    (115, {"block_type": 14, "uuid": ZONE_IN, "name": "inside"}),
    (115, {"block_type": 14, "uuid": ZONE_OUT, "name": "outside"}),
    (145, {"block_type": 64, "uuid": POLICY, "device_id": 1, "name": "Corporate Access"}),
    (119, {"block_type": 15, "revision": POLICY, "rule_id": 268435457, "name": "Allow web"}),
    (120, {"id": 1, "name": "Allow"}),
    (63, {"id": 676, "name": "HTTP"}),
    (55, {"id": 1296, "name": "Chrome"}),
    (109, {"id": 929, "name": "Google"}),
    (98, {"block_type": 57, "id": 1001, "protocol": 710, "name": "alice"}),
    (520, {"block_type": 28, "country_code": 840, "name": "united states"}),
    (66, {"generator_id": 1, "rule_id": 30000, "rule_revision": 3, "signature_id": 30000,
          "rule_uuid": POLICY, "rule_revision_uuid": POLICY,
          "message": "SERVER-WEBAPP Apache Struts remote code execution attempt"}),
    (67, {"id": 2, "name": "trojan-activity", "description": "A Network Trojan was Detected",
          "uuid": POLICY, "revision_uuid": POLICY}),
    (4, {"id": 1, "name": "high"}),
    (118, {"block_type": 14, "uuid": IPS, "name": "Balanced Security and Connectivity"}),
    (510, {"id": 4, "name": "MSEXE"}),
]


def wire(record_type, fields, archive=None):
    """Through the wire and back: what the pipeline would hand the decorator."""
    record = decode_record(encode_record(record_type, fields, archive))
    assert record.error is None, record.error
    return record


def decorate(decorator, record):
    return decorator(record, record.to_dict())


def learn_all(decorator, metadata=METADATA):
    for record_type, fields in metadata:
        decorate(decorator, wire(record_type, fields))


def connection(**extra):
    values = {
        "discovery_header": {"device_id": 1, "has_ipv6": 1, "ipv6_address": "::",
                             "event_type": 1003, "event_subtype": 1,
                             "event_second": 1_700_000_000, "event_microsecond": 5},
        "block_type": 160, "device_id": 1, "ingress_zone_uuid": ZONE_IN,
        "egress_zone_uuid": ZONE_OUT, "access_control_policy_uuid": POLICY,
        "access_control_rule_id": 268435457, "rule_action": 1, "protocol": 6,
        "application_id": 676, "client_application_id": 1296, "web_application_id": 929,
        "user_id": 1001, "initiator_country": 0, "responder_country": 840,
        "first_packet_time": 1_700_000_000, "last_packet_time": 1_700_000_042,
        "initiator_ip": "10.0.0.5", "responder_ip": "93.184.216.34",
    }
    values.update(extra)
    return wire(71, values, archive=1_700_000_100)


def intrusion(**extra):
    values = {"block_type": 85, "device_id": 1, "event_id": 7, "event_second": 1_700_000_000,
              "event_microsecond": 250_000, "generator_id": 1, "rule_id": 30000,
              "classification_id": 2, "priority_id": 1, "impact": 1, "blocked": 1,
              "intrusion_policy_uuid": IPS, "source_country": 840, "protocol": 6}
    values.update(extra)
    return wire(400, values, archive=1_700_000_001)


def test_connection_gains_names_next_to_its_ids():
    decorator = Decorator()
    learn_all(decorator)
    event = decorate(decorator, connection())
    assert event["device_name"] == "ftd-hq-01"
    assert event["ingress_zone_name"] == "inside"
    assert event["egress_zone_name"] == "outside"
    assert event["access_control_policy_name"] == "Corporate Access"
    assert event["access_control_rule_name"] == "Allow web"
    assert event["rule_action_name"] == "Allow"
    assert event["application_name"] == "HTTP"
    assert event["client_application_name"] == "Chrome"
    assert event["web_application_name"] == "Google"
    assert event["user_name"] == "alice"
    assert event["responder_country_name"] == "united states"
    assert event["protocol_name"] == "tcp"
    assert event["record_category"] == "connection"
    assert event["first_packet_time_iso"] == "2023-11-14T22:13:20Z"
    assert event["last_packet_time_iso"] == "2023-11-14T22:14:02Z"
    assert event["archive_timestamp_iso"] == "2023-11-14T22:15:00Z"
    # The discovery header is decorated in place of its own ids, the record left as decoded.
    assert event["discovery_header"]["device_name"] == "ftd-hq-01"
    assert event["discovery_header"]["event_second_iso"] == "2023-11-14T22:13:20.000005Z"
    # The ids stay, and the record's own fields are not touched.
    assert event["device_id"] == 1 and event["access_control_rule_id"] == 268435457


def test_intrusion_gains_rule_message_classification_priority_and_labels():
    decorator = Decorator()
    learn_all(decorator)
    event = decorate(decorator, intrusion())
    assert event["rule_message"] == "SERVER-WEBAPP Apache Struts remote code execution attempt"
    assert event["signature_id"] == 30000
    assert event["classification_name"] == "trojan-activity"
    assert event["classification_description"] == "A Network Trojan was Detected"
    assert event["priority_name"] == "high"
    assert event["impact_name"] == "vulnerable"
    assert event["blocked_name"] == "blocked"
    assert event["intrusion_policy_name"] == "Balanced Security and Connectivity"
    assert event["source_country_name"] == "united states"
    assert event["event_second_iso"] == "2023-11-14T22:13:20.250000Z"
    assert event["record_category"] == "intrusion"


def test_id_zero_is_a_real_key_and_unknown_ids_stay_ids():
    decorator = Decorator()
    learn_all(decorator)
    event = decorate(decorator, connection(device_id=0, application_id=4242, user_id=0))
    assert event["device_name"] == "Unknown"  # CAP: 0 = "Unknown" is a real name
    assert "application_name" not in event  # never guessed
    assert "user_name" not in event
    assert event["application_id"] == 4242


def test_metadata_after_an_event_names_later_events():
    decorator = Decorator()
    before = decorate(decorator, connection())
    assert "device_name" not in before and "access_control_rule_name" not in before
    learn_all(decorator)
    after = decorate(decorator, connection())
    assert after["device_name"] == "ftd-hq-01"
    assert after["access_control_rule_name"] == "Allow web"


def test_a_renamed_item_takes_the_new_name():
    decorator = Decorator()
    learn_all(decorator)
    decorate(decorator, wire(123, {"id": 1, "name": "ftd-hq-renamed"}))
    assert decorate(decorator, connection())["device_name"] == "ftd-hq-renamed"


def test_ac_rule_is_keyed_by_policy_revision_and_rule():
    decorator = Decorator()
    learn_all(decorator)
    other = "99999999-0000-4000-8000-000000000009"
    event = decorate(decorator, connection(access_control_policy_uuid=other))
    assert "access_control_rule_name" not in event


def test_priority_falls_back_to_the_fixed_names_without_metadata():
    event = decorate(Decorator(), intrusion(priority_id=3))
    assert event["priority_name"] == "low"


def test_malware_file_type_comes_from_the_amp_file_types():
    decorator = Decorator()
    learn_all(decorator, [*METADATA, (131, {"id": 4, "name": "AMP executable"})])
    event = decorate(decorator, wire(125, {"block_type": 80, "file_type_id": 4,
                                           "direction": 1, "disposition": 3},
                                     archive=1_700_000_000))
    assert event["file_type_name"] == "AMP executable"
    assert event["direction_name"] == "download"
    assert event["disposition_name"] == "malware"
    file_event = decorate(decorator, wire(500, {"block_type": 79, "file_type_id": 4},
                                          archive=1_700_000_000))
    assert file_event["file_type_name"] == "MSEXE"


def test_a_metadata_record_is_decorated_with_its_category():
    decorator = Decorator()
    event = decorate(decorator, wire(123, {"id": 1, "name": "ftd"}))
    assert event["record_category"] == "metadata"


def test_a_malformed_record_is_decorated_without_breaking_later_ones():
    decorator = Decorator()
    learn_all(decorator)
    good = encode_record(400, {"block_type": 85, "device_id": 1}, 1_700_000_000)
    bad = decode_record(good[:8] + good[16:-1])  # record length no longer matches
    assert bad.error is not None
    event = decorate(decorator, bad)
    assert event["record_category"] == "intrusion" and "raw" in event
    assert decorate(decorator, intrusion())["device_name"] == "ftd-hq-01"


# -- persistence ------------------------------------------------------------------------------


def test_cache_survives_a_restart(tmp_path):
    path = metadata_path(tmp_path, "10.0.0.5", 8302)
    first = Decorator(MetadataCache.open(path))
    learn_all(first)
    first.cache.save()
    assert path.name == "10.0.0.5-8302_metadata.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # A new process: no metadata in the stream this time, names still there.
    second = Decorator(MetadataCache.open(path))
    assert len(second.cache) == len(first.cache)
    event = decorate(second, connection())
    assert event["access_control_rule_name"] == "Allow web"  # a composite key round-trips
    assert event["device_name"] == "ftd-hq-01"
    intr = decorate(second, intrusion())
    assert intr["rule_message"].startswith("SERVER-WEBAPP")
    assert intr["classification_description"] == "A Network Trojan was Detected"
    assert not second.cache.dirty


def test_save_writes_only_when_something_changed(tmp_path):
    path = metadata_path(tmp_path, "h", 1)
    cache = MetadataCache(path)
    cache.save()
    assert not path.exists()
    cache.learn(123, {"id": 1, "name": "a"})
    cache.save()
    mtime = path.stat().st_mtime_ns
    cache.learn(123, {"id": 1, "name": "a"})  # the same name again
    assert not cache.dirty
    cache.save()
    assert path.stat().st_mtime_ns == mtime
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp files left


@pytest.mark.parametrize("content", [
    b'{"format": 1, "kinds": {"device": [[1, "ftd-hq',  # torn write
    b"\x00\x00\x00",
    b"[]",
    b'{"format": 99, "kinds": {}}',
    b'{"format": 1, "kinds": {"device": [[{"x": 1}, "a"]]}}',
    b'{"format": 1, "kinds": {"rule_message": [[[1, 2], "only one value"]]}}',
    b'{"format": 1, "kinds": {"device": [[1, "ok"], [2]]}}',
], ids=["torn", "binary", "list", "format", "key", "arity", "pair"])
def test_a_damaged_cache_is_ignored_and_rebuilt(tmp_path, caplog, content):
    path = metadata_path(tmp_path, "h", 1)
    path.write_bytes(content)
    cache = MetadataCache.open(path)
    assert len(cache) == 0  # nothing from a damaged file is trusted, not even good rows
    assert "damaged" in caplog.text
    decorator = Decorator(cache)
    learn_all(decorator)
    cache.save()
    reloaded = MetadataCache.open(path)
    assert reloaded.get("device", 1) == "ftd-hq-01"
    assert json.loads(path.read_text())["format"] == 1


def test_a_kind_from_a_newer_release_is_skipped(tmp_path):
    path = metadata_path(tmp_path, "h", 1)
    path.write_text(json.dumps({"format": 1, "kinds": {"future": [[1, "x"]],
                                                        "device": [[1, "a"]]}}))
    assert MetadataCache.open(path).get("device", 1) == "a"


def test_vpn_login_names_the_user_and_the_client_country_in_its_sessions():
    decorator = Decorator()
    learn_all(decorator)
    header = {"device_id": 1, "has_ipv6": 0, "event_type": 1004, "event_subtype": 1,
              "event_second": 1_700_000_000}
    record = wire(170, {"discovery_header": header, "block_type": 167,
                        "timestamp": 1_700_000_000, "user_id": 1001, "username": "alice",
                        "application_protocol_id": 676, "user_ip": "10.0.0.9",
                        "vpn_sessions": [{"block_type": 166, "index": 1,
                                          "client_country": 840, "client_ip": "198.51.100.7"}]},
                  archive=1_700_000_000)
    assert record.fields["vpn_sessions"][0]["client_ip"] == "198.51.100.7"
    event = decorate(decorator, record)
    assert event["user_name"] == "alice"
    assert event["application_protocol_name"] == "HTTP"
    assert event["timestamp_iso"] == "2023-11-14T22:13:20Z"
    assert event["discovery_header"]["device_name"] == "ftd-hq-01"
    assert event["record_category"] == "user"


def test_correlation_event_names_both_ends():
    decorator = Decorator()
    learn_all(decorator, [*METADATA, (69, {"id": 3, "name": "Watch admins", "description": "",
                                           "uuid": POLICY, "revision_uuid": POLICY}),
                          (70, {"id": 9, "name": "Admin login from abroad", "description": "",
                                "rule_event_type": "user", "uuid": POLICY,
                                "revision_uuid": POLICY, "allow_list_uuid": POLICY})])
    event = decorate(decorator, wire(112, {
        "block_type": 156, "device_id": 1, "correlation_policy_id": 3,
        "correlation_rule_id": 9, "priority_id": 2, "source_user_id": 1001,
        "destination_server_id": 676, "trigger_event_second": 1_700_000_000,
        "trigger_event_microsecond": 7, "source_country": 840}, archive=1_700_000_000))
    assert event["correlation_policy_name"] == "Watch admins"
    assert event["correlation_rule_name"] == "Admin login from abroad"
    assert event["source_user_name"] == "alice"
    assert event["destination_server_name"] == "HTTP"
    assert event["priority_name"] == "medium"
    assert event["trigger_event_second_iso"] == "2023-11-14T22:13:20.000007Z"
