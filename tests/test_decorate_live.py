"""Decorated output end to end: the real client over TLS against the emulator, whose events
refer only to metadata it sent; the JSON lines must carry a name for every such id."""

import pytest

from estreamer.certs import init_certs
from estreamer.emulator.history import NO_REFERENCE
from estreamer.emulator.server import Emulator
from estreamer.metadata import MetadataCache, metadata_path
from tests.test_live import make_settings, output_lines, stream

# Event id field → the name field the decorator adds (the naming rule in decorate.py).
NAMED = {
    "device_id": "device_name",
    "ingress_zone_uuid": "ingress_zone_name",
    "access_control_policy_uuid": "access_control_policy_name",
    "access_control_rule_id": "access_control_rule_name",
    "rule_action": "rule_action_name",
    "application_id": "application_name",
    "user_id": "user_name",
    "classification_id": "classification_name",
    "priority_id": "priority_name",
    "intrusion_policy_uuid": "intrusion_policy_name",
    "file_type_id": "file_type_name",
    "responder_country": "responder_country_name",
    "source_country": "source_country_name",
}


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return init_certs(tmp_path_factory.mktemp("certs"), client_cn="127.0.0.1")


def test_decorated_json_names_every_id_the_emulator_sent(tmp_path, certs):
    with Emulator(certs.directory, rate=0, seed=11, history_size=300) as emulator:
        settings = make_settings(tmp_path, emulator.port, certs, start=0)
        stream(settings, certs.password, stop_when_idle=0.5)
    lines = output_lines(tmp_path)
    events = [line for line in lines if line["record_category"] != "metadata"]
    assert events
    checked = 0
    for event in events:
        for id_field, name_field in NAMED.items():
            if id_field in event and event[id_field] not in NO_REFERENCE:
                assert name_field in event, (event["record_name"], id_field, event[id_field])
                checked += 1
        if event["record_type"] == 400:
            assert event["rule_message"]
    assert checked > len(events)
    assert all("archive_timestamp_iso" in e for e in events)
    # The cache was saved beside the bookmark for the next start.
    cache = MetadataCache.open(metadata_path(tmp_path, "127.0.0.1", emulator.port))
    assert cache.get("device", 1) is not None
