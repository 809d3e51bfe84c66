"""Host profile requests: the Host Data Request (5) on the wire, the full host profile block
149 at its decided offsets, and `estreamer host` against the emulator over real TLS for a
single host, a range, an unknown host and a server Error.

Vectors are built with struct.pack from the layouts documented in tables/host.py and
messages.py (sources there), never copied from a capture."""

from __future__ import annotations

import io
import ipaddress
import json
import logging
import struct
import uuid
from pathlib import Path

import pytest

from estreamer.certs import init_certs
from estreamer.cli import main
from estreamer.client.hosts import HostQuery, host_command, parse_hosts
from estreamer.config import default_config
from estreamer.emulator.faults import Fault
from estreamer.emulator.history import History
from estreamer.emulator.hosts import observed_hosts
from estreamer.emulator.server import Emulator
from estreamer.emulator.session import ServerSession
from estreamer.errors import ConfigError, DecodeError
from estreamer.protocol.framing import Framer, encode_frame
from estreamer.protocol.messages import (
    HOST_MULTIPLE,
    HOST_SINGLE,
    MULTIPLE_HOST_DATA,
    HostData,
    HostDataRequest,
    encode_host_data_request,
    parse_frame,
)
from estreamer.protocol.stream import StreamDecoder
from estreamer.protocol.tables.host import decode_host_profile, encode_host_profile

V4_MAPPED = b"\x00" * 10 + b"\xff\xff"


def parsed(raw: bytes):
    framer = Framer()
    framer.feed(raw)
    return parse_frame(framer.next_frame())


# -- the request ------------------------------------------------------------------------------


def test_a_single_host_request_is_data_type_6_with_16_byte_addresses():
    raw = encode_host_data_request("10.1.2.3")
    assert raw[:8] == struct.pack(">HHL", 1, 5, 40)
    data_type, flags = struct.unpack_from(">LL", raw, 8)
    assert (data_type, flags) == (HOST_SINGLE, 3)  # notes and banners
    assert raw[16:32] == raw[32:48] == V4_MAPPED + bytes([10, 1, 2, 3])


def test_a_range_request_is_data_type_7():
    request = parsed(encode_host_data_request("10.1.2.0", "10.1.2.255", flags=1))
    assert request == HostDataRequest(HOST_MULTIPLE, 1, "10.1.2.0", "10.1.2.255", 0)
    v6 = parsed(encode_host_data_request("2001:db8::1", "2001:db8::ff"))
    assert (v6.start, v6.end) == ("2001:db8::1", "2001:db8::ff")


def test_the_guides_4_byte_address_form_is_read_too():
    body = struct.pack(">LL4s4s", 7, 2, bytes([192, 0, 2, 1]), bytes([192, 0, 2, 9]))
    assert parsed(encode_frame(5, body)) == HostDataRequest(7, 2, "192.0.2.1", "192.0.2.9", 0)


def test_a_host_request_of_another_size_is_refused():
    with pytest.raises(DecodeError, match="expected 40"):
        parsed(encode_frame(5, bytes(12)))


@pytest.mark.parametrize(("text", "expected"), [
    ("10.1.2.3", ("10.1.2.3", "10.1.2.3")),
    ("10.1.2.0/24", ("10.1.2.0", "10.1.2.255")),
    ("10.1.2.7/24", ("10.1.2.0", "10.1.2.255")),
    ("10.1.2.3-10.1.2.9", ("10.1.2.3", "10.1.2.9")),
    ("2001:db8::/126", ("2001:db8::", "2001:db8::3")),
])
def test_hosts_on_the_command_line(text, expected):
    assert parse_hosts(text) == expected


@pytest.mark.parametrize("text", ["10.1.2", "10.1.2.9-10.1.2.3", "10.0.0.1-2001:db8::1"])
def test_bad_hosts_on_the_command_line_say_what_is_accepted(text):
    with pytest.raises(ConfigError, match="a network"):
        parse_hosts(text)


# -- the profile block at its offsets ------------------------------------------------------------


def block(block_type: int, body: bytes) -> bytes:
    return struct.pack(">LL", block_type, 8 + len(body)) + body


def lst(*items: bytes, list_type: int = 11) -> bytes:
    return block(list_type, b"".join(items))


def sblock(text: str) -> bytes:
    raw = text.encode() + b"\x00" if text else b""
    return block(0, raw)


HOST_ID = uuid.UUID("11111111-2222-3333-4444-555555555555")
OS_UUID = uuid.UUID("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")


def profile_149() -> bytes:
    fingerprint = block(130, OS_UUID.bytes + struct.pack(">LLLLB", 1, 0, 0, 1_700_000_000, 3)
                        + lst(list_type=31))
    server_info = block(117, struct.pack(">L", 1122) + sblock("Apache") + sblock("2.4")
                        + struct.pack(">LLL", 1_700_000_100, 0, 0) + lst())
    server = block(103, struct.pack(">HLL", 443, 12, 1_700_000_100) + lst(server_info)
                   + struct.pack(">L", 90) + lst(block(123, struct.pack(">L", 929))))
    empty_fingerprints = [lst(list_type=31) for _ in range(9)]
    body = (
        HOST_ID.bytes
        + lst(block(143, V4_MAPPED + bytes([10, 1, 2, 3]) + struct.pack(">L", 1_700_000_200)))
        + struct.pack(">B", 2)
        + lst(fingerprint, list_type=31) + b"".join(empty_fingerprints)
        + lst(server) + lst()  # TCP, UDP servers
        + lst(block(4, struct.pack(">H", 0x0800))) + lst(block(4, struct.pack(">H", 6)))
        + lst(block(95, struct.pack(">B6sBL", 64, bytes.fromhex("0200c0ffee01"), 1,
                                    1_700_000_200)))
        + struct.pack(">LLHHBB", 1_700_000_200, 0, 3, 10, 0, 5)
        + lst()  # client applications
        + sblock("WS-0042") + sblock("rack 4")
        + lst(block(85, struct.pack(">LBL", 30001, 0, 0)), list_type=31)
        + lst(list_type=31) + lst(list_type=31)
        + lst(block(48, struct.pack(">LLL", 7, 1, 0) + sblock("finance")))
        + struct.pack(">BB", 0, 0)
    )
    return block(149, body)


def test_profile_block_149_decodes_at_its_decided_offsets():
    profile, notes = decode_host_profile(profile_149())
    assert notes == []
    assert profile["block_type"] == 149
    assert profile["host_id"] == str(HOST_ID)
    assert profile["ip_addresses"][0]["ip_address"] == "10.1.2.3"
    assert profile["ip_addresses"][0]["last_seen"] == 1_700_000_200
    assert profile["hops"] == 2
    [os] = profile["os_derived_fingerprints"]
    assert os["os_fingerprint_uuid"] == str(OS_UUID) and os["ttl_difference"] == 3
    assert profile["server_fingerprints"] == [] and profile["user_agent_fingerprints"] == []
    [server] = profile["tcp_servers"]
    assert (server["port"], server["hits"], server["confidence"]) == (443, 12, 90)
    [info] = server["server_information"]
    assert (info["application_id"], info["vendor"], info["version"]) == (1122, "Apache", "2.4")
    assert server["web_applications"][0]["web_application_id"] == 929
    assert profile["udp_servers"] == []
    assert [p["protocol_number"] for p in profile["network_protocols"]] == [0x0800]
    assert [p["protocol_number"] for p in profile["transport_protocols"]] == [6]
    assert profile["mac_addresses"][0]["mac"] == "02:00:c0:ff:ee:01"
    assert (profile["last_seen"], profile["host_type"], profile["business_criticality"]) == (
        1_700_000_200, 0, 3)
    assert (profile["vlan_id"], profile["vlan_type"], profile["vlan_priority"]) == (10, 0, 5)
    assert (profile["netbios_name"], profile["notes"]) == ("WS-0042", "rack 4")
    assert profile["vulnerabilities"][0]["vulnerability_id"] == 30001
    assert profile["attributes"][0]["text_value"] == "finance"
    assert (profile["mobile"], profile["jailbroken"]) == (0, 0)
    assert encode_host_profile(profile) == profile_149()


def test_a_longer_profile_keeps_its_tail_and_a_shorter_one_is_refused():
    raw = profile_149()
    longer = block(149, raw[8:] + lst(list_type=31))
    profile, notes = decode_host_profile(longer)
    assert profile["unparsed_tail"] == "0000001f00000008" and notes
    with pytest.raises(DecodeError):
        decode_host_profile(block(149, raw[8:-2]))


# -- the emulator's answers, sans IO -----------------------------------------------------------


@pytest.fixture(scope="module")
def history() -> History:
    return History(seed=3, size=300)


def ask(history: History, start: str, end: str | None = None):
    session = ServerSession(history, connection_id=1)
    query = HostQuery(start, end)
    query.receive(session.receive(query.start()))
    return query.answer, session


def a_server_host(history: History) -> tuple[str, object]:
    hosts = observed_hosts(history.events)
    address = min((a for a, h in hosts.items() if h.servers), key=ipaddress.ip_address)
    return address, hosts[address]


def test_the_emulator_profiles_a_host_its_events_name(history):
    address, seen = a_server_host(history)
    answer, session = ask(history, address)
    assert answer.ended_by == "answer" and answer.error is None and not session.closed
    [profile] = answer.profiles
    assert profile["ip_addresses"][0]["ip_address"] == address
    servers = profile["tcp_servers"] + profile["udp_servers"]
    assert sorted(s["port"] for s in servers) == sorted(p for _, p in seen.servers)
    events = [e for e in history.events if address in (
        e.fields.get("source_ip"), e.fields.get("destination_ip"))]
    # Events without an event second (file and malware events name theirs otherwise) count
    # by their archive time.
    assert profile["last_seen"] == max(e.fields.get("event_second") or e.archive_timestamp
                                       for e in events)
    assert profile["os_derived_fingerprints"][0]["os_fingerprint_uuid"]
    assert profile["notes"]  # the request asked for notes


def test_the_emulator_answers_a_range_host_by_host_then_a_null(history):
    answer, _ = ask(history, "10.0.0.0", "10.255.255.255")
    inside = sorted((a for a in observed_hosts(history.events) if a.startswith("10.")),
                    key=ipaddress.ip_address)
    assert answer.ended_by == "null"
    assert [p["ip_addresses"][0]["ip_address"] for p in answer.profiles] == inside
    assert all(1 <= p["business_criticality"] <= 3 for p in answer.profiles)
    session = ServerSession(history, connection_id=1)
    query = HostQuery("10.0.0.0", "10.255.255.255")
    events = StreamDecoder().feed(session.receive(query.start()))
    assert {e.message_type for e in events if isinstance(e, HostData)} == {MULTIPLE_HOST_DATA}


def test_an_unknown_host_gets_an_empty_answer(history):
    answer, session = ask(history, "192.0.2.77")
    assert answer.profiles == [] and answer.ended_by == "null" and answer.error is None
    assert not session.closed


def test_a_host_request_before_the_event_stream_request_is_refused(history):
    session = ServerSession(history, connection_id=1)
    [error] = StreamDecoder().feed(session.receive(encode_host_data_request("10.0.0.1")))
    assert "before an Event Stream Request" in error.text and session.closed


# -- estreamer host over real TLS ---------------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return init_certs(tmp_path_factory.mktemp("certs"), client_cn="127.0.0.1")


def write_config(workdir: Path, port: int, certs) -> Path:
    config = default_config("127.0.0.1", port, certs.client_pkcs12,
                            password_file=certs.client_password_file, log_filepath="")
    config["connectTimeout"] = 3
    path = workdir / "estreamer.conf"
    path.write_text(json.dumps(config))
    return path


def run_host(config: Path, hosts: str, fmt: str = "json", quiet: float = 5.0):
    out = io.StringIO()
    code = host_command(str(config), hosts, fmt, quiet=quiet, out=out)
    return code, out.getvalue().splitlines()


def test_host_command_single_host_over_tls(tmp_path, certs):
    with Emulator(certs.directory, rate=0, seed=3, history_size=300) as emulator:
        address, seen = a_server_host(emulator.history)
        config = write_config(tmp_path, emulator.port, certs)
        code, lines = run_host(config, address)
    assert code == 0
    [line] = lines
    printed = json.loads(line)
    assert printed["record_name"] == "Host Profile" and printed["ip_address"] == address
    servers = printed["tcp_servers"] + printed["udp_servers"]
    assert sorted(s["port"] for s in servers) == sorted(p for _, p in seen.servers)


def test_host_command_range_over_tls_in_every_format(tmp_path, certs):
    with Emulator(certs.directory, rate=0, seed=3, history_size=300) as emulator:
        config = write_config(tmp_path, emulator.port, certs)
        inside = sorted((a for a in observed_hosts(emulator.history.events)
                         if a.startswith("10.0.")), key=ipaddress.ip_address)
        code, lines = run_host(config, "10.0.0.0/16")
        other = {fmt: run_host(config, "10.0.0.0/16", fmt) for fmt in ("splunk", "cef", "ecs")}
    assert code == 0 and inside
    assert [json.loads(line)["ip_address"] for line in lines] == inside
    for fmt, (fmt_code, fmt_lines) in other.items():
        assert fmt_code == 0 and len(fmt_lines) == len(inside), fmt
    assert f"ip_address={inside[0]}" in other["splunk"][1][0]


def test_host_command_unknown_host_says_so(tmp_path, certs, caplog):
    with Emulator(certs.directory, rate=0, seed=3, history_size=300) as emulator:
        config = write_config(tmp_path, emulator.port, certs)
        with caplog.at_level(logging.WARNING):
            code, lines = run_host(config, "192.0.2.77")
    assert code == 2 and lines == []
    assert "has no host profile for 192.0.2.77" in caplog.text


def test_host_command_reports_a_server_error(tmp_path, certs, caplog):
    fault = Fault("error", 0, code=19, text="No space")
    with Emulator(certs.directory, rate=0, seed=3, history_size=300,
                  faults=[fault]) as emulator:
        config = write_config(tmp_path, emulator.port, certs)
        with caplog.at_level(logging.ERROR):
            code, lines = run_host(config, "10.0.0.0/8")
    assert code == 1 and lines == []
    assert "refused the host request for 10.0.0.0 - 10.255.255.255: error 19: No space" \
        in caplog.text


def test_host_command_names_a_refused_connection(tmp_path, certs, capsys):
    with Emulator(certs.directory, rate=0, seed=3, history_size=10) as emulator:
        port = emulator.port
    config = write_config(tmp_path, port, certs)  # the emulator has stopped: nothing listens
    assert main(["host", "-c", str(config), "10.0.0.1"]) == 1
    assert f"127.0.0.1:{port}" in capsys.readouterr().err
