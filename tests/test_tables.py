"""The record and block tables: every layout round-trips, and hand-built bytes at the fact
sheet's offsets decode to the values the fact sheet says sit there.

The vectors here are built with struct.pack from the offsets in
shared/protocol/estreamer-facts.md, never copied from a capture."""

from __future__ import annotations

import itertools
import struct
import uuid
from pathlib import Path

import pytest

from estreamer.protocol import layout as L
from estreamer.protocol.records import decode_record, encode_record
from estreamer.protocol.tables import RECORDS, doc
from estreamer.protocol.tables.connection import DISCOVERY_HEADER
from estreamer.protocol.tables.host import HOST_DATA

ROOT = Path(__file__).resolve().parent.parent

# -- value generation -------------------------------------------------------------------------

_FIXED_MAX = {"B": 0xFF, "H": 0xFFFF, "L": 0xFFFFFFFF, "Q": 0xFFFFFFFFFFFFFFFF, "l": 0x7FFFFFFF}


class Values:
    """Distinct, non-default values per wire type: a counter feeds every field, so two
    fields swapped in a table would not round-trip to the same dict."""

    def __init__(self) -> None:
        self.counter = itertools.count(1)

    def fixed(self, kind: L.Fixed):
        n = next(self.counter)
        if kind is L.IP:
            # Alternate IPv4-mapped and real IPv6 so both spellings are exercised.
            return f"10.{n % 250}.{n // 250 % 250}.{n % 200 + 1}" if n % 2 else f"2001:db8::{n:x}"
        if kind is L.IPV4:
            return f"192.0.2.{n % 250 + 1}"
        if kind is L.UUID:
            return str(uuid.UUID(int=(n << 64) | (0xABCD << 16) | n))
        if kind is L.MAC:
            return f"02:00:00:00:{n // 256 % 256:02x}:{n % 256:02x}"
        if kind.to_value is bytes.hex:
            size = int(kind.code[:-1])
            return bytes((n + i) % 256 for i in range(size)).hex()
        top = _FIXED_MAX[kind.code]
        return (n * 2654435761) % top or 1

    def text(self) -> str:
        # Non-ASCII on purpose: lengths are bytes, not characters.
        return f"text-{next(self.counter)}-é✓"

    def layout(self, layout: tuple, block_choice: dict[int, int] | None = None) -> dict:
        values: dict = {}
        lengths: list[tuple[str, L.LengthOf]] = []
        for name, kind in layout:
            if isinstance(kind, L.LengthOf):
                lengths.append((name, kind))
                values[name] = None
            elif isinstance(kind, L.Fixed):
                values[name] = self.fixed(kind)
            elif kind in (L.STR, L.TEXT16, L.TEXT32):
                values[name] = self.text()
            elif kind is L.BLOB:
                values[name] = bytes(range(next(self.counter) % 50, 80)).hex()
            elif isinstance(kind, L.TextFrom):
                values[name] = self.text() if kind.as_text else "00ff" * next(self.counter)
            elif isinstance(kind, L.When):
                # Decided after the flag (which is earlier in the layout) has its value.
                values[name] = self.fixed(kind.kind) if values.get(kind.flag_field) else None
            elif isinstance(kind, L.Nested):
                values[name] = self.layout(kind.compiled.layout)
            elif isinstance(kind, L.Block):
                block_type = (block_choice or {}).get(kind.series) or kind.types[0]
                inner = {"block_type": block_type,
                         **self.layout(kind.layout_for(block_type).layout)}
                if kind.inline:
                    values.update(inner)
                else:
                    values[name] = inner
            elif isinstance(kind, L.ListOf):
                # Two items, so the list walks past its first inner block.
                # The inner block's own layout: a generic block names its fields by context.
                inner = kind.inner
                values[name] = [
                    {"block_type": inner.types[0],
                     **self.layout(inner.layout_for(inner.types[0]).layout)}
                    for _ in range(2)
                ]
            else:
                raise AssertionError(f"no value generator for {kind!r}; add one")
        for name, kind in lengths:
            target = dict(layout)[kind.target]
            values[name] = len(target.raw(values[kind.target]))
        return values


def _record_cases():
    for record_type, record in sorted(RECORDS.items()):
        blocks = [kind for _, kind in record.layout if isinstance(kind, L.Block)]
        if not blocks:
            yield pytest.param(record_type, None, id=f"record-{record_type}")
            continue
        for block in blocks:
            for block_type in block.types:
                yield pytest.param(record_type, {block.series: block_type},
                                   id=f"record-{record_type}-block-{block_type}")


def _block_cases():
    for series, block_type in sorted(L.BLOCKS):
        yield pytest.param(series, block_type, id=f"block-{series}-{block_type}")


def _flag_on(values: dict) -> dict:
    # The discovery header's IPv6 address is only there when the flag is set.
    header = values.get("discovery_header")
    if header is not None and header.get("ipv6_address") is None:
        header["has_ipv6"] = 1
        header["ipv6_address"] = "2001:db8::1"
    return values


# -- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize(("record_type", "block_choice"), list(_record_cases()))
@pytest.mark.parametrize("archive", [None, 1_700_000_000], ids=["8-byte", "16-byte"])
def test_every_record_round_trips(record_type, block_choice, archive):
    values = _flag_on(Values().layout(RECORDS[record_type].layout, block_choice))
    raw = encode_record(record_type, values, archive_timestamp=archive)
    record = decode_record(raw)
    assert record.error is None
    assert record.notes == []
    assert record.fields == values
    assert record.archive_timestamp == archive


@pytest.mark.parametrize(("series", "block_type"), list(_block_cases()))
def test_every_block_round_trips(series, block_type):
    compiled = L.block_layout(series, block_type)
    values = Values().layout(compiled.layout)
    body = compiled.encode(values)
    decoded, end = compiled.decode(body, 0, len(body), [])
    assert end == len(body)
    assert decoded == values


def test_discovery_header_without_ipv6_round_trips():
    values = Values().layout(DISCOVERY_HEADER)
    values["has_ipv6"] = 0
    values["ipv6_address"] = None
    compiled = L.compile_layout(DISCOVERY_HEADER)
    raw = compiled.encode(values)
    assert len(raw) == 40
    assert compiled.decode(raw, 0, len(raw), [])[0] == values


def test_every_record_is_reachable_from_a_block_type_it_expects():
    # A registered block that no record accepts is dead weight or a missing dispatch entry.
    # Host Data messages (6/7) are one profile block each: their layout is a root too.
    layouts = [r.layout for r in RECORDS.values()] + [c.layout for c in L.BLOCKS.values()]
    layouts.append(HOST_DATA)
    kinds = [kind for layout in layouts for _, kind in layout]
    blocks = [k for k in kinds if isinstance(k, L.Block)]
    blocks += [k.inner for k in kinds if isinstance(k, L.ListOf)]  # list items are blocks too
    used = {(kind.series, t) for kind in blocks for t in kind.types}
    assert used == set(L.BLOCKS)


# -- hand-built vectors at the fact sheet's offsets ---------------------------------------------

V4_MAPPED = b"\x00" * 10 + b"\xff\xff"
UUID_A = uuid.UUID("11111111-2222-3333-4444-555555555555")
UUID_B = uuid.UUID("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")


def ipv4(text: str) -> bytes:
    return V4_MAPPED + bytes(int(part) for part in text.split("."))


def sblock(text: str) -> bytes:
    """A series-1 string block as the FMC sends it: NUL-terminated when not empty (§7)."""
    raw = text.encode() + b"\x00" if text else b""
    return struct.pack(">LL", 0, 8 + len(raw)) + raw


def record(record_type: int, data: bytes, archive: int | None = 1_600_000_000) -> bytes:
    header = struct.pack(">LL", record_type, len(data))
    if archive is not None:
        header += struct.pack(">LL", archive, 0)
    return header + data


def block(block_type: int, body: bytes) -> bytes:
    return struct.pack(">LL", block_type, 8 + len(body)) + body


def decode_ok(raw: bytes):
    rec = decode_record(raw)
    assert rec.error is None, rec.error
    assert rec.notes == [], rec.notes
    return rec.fields


def _intrusion_60_prefix() -> bytearray:
    """Block 60 (§10.6), 282 bytes, every field at its documented offset."""
    b = bytearray(282)
    struct.pack_into(">LL", b, 0, 60, 282)
    struct.pack_into(">LLLL", b, 8, 7, 1001, 1_600_000_100, 250_000)
    struct.pack_into(">LLLLL", b, 24, 2_000_123, 1, 3, 29, 2)
    b[44:60] = ipv4("192.0.2.10")
    b[60:76] = bytes.fromhex("20010db8000000000000000000000042")
    struct.pack_into(">HHBBBB", b, 76, 51000, 443, 6, 0x21, 1, 2)
    struct.pack_into(">LH", b, 84, 0xABCDE, 100)
    b[92:108] = UUID_A.bytes
    struct.pack_into(">LLLLL", b, 108, 9999997, 1423, 1296, 1122, 268434433)
    b[128:144] = UUID_B.bytes
    struct.pack_into(">LHHHHH", b, 208, 1_600_000_050, 3, 98, 840, 276, 5)
    b[222:238] = bytes(range(16))
    b[238:258] = bytes(range(100, 120))
    struct.pack_into(">HH", b, 258, 4, 1)
    b[262:278] = UUID_A.bytes
    struct.pack_into(">L", b, 278, 200)
    return b


def test_intrusion_block_60_offsets():
    fields = decode_ok(record(400, bytes(_intrusion_60_prefix())))
    assert fields["block_type"] == 60
    assert (fields["device_id"], fields["event_id"], fields["event_second"]) == (7, 1001,
                                                                                 1_600_000_100)
    assert (fields["rule_id"], fields["generator_id"], fields["priority_id"]) == (2_000_123, 1, 2)
    assert fields["source_ip"] == "192.0.2.10"
    assert fields["destination_ip"] == "2001:db8::42"
    assert (fields["source_port"], fields["destination_port"], fields["protocol"]) == (51000,
                                                                                       443, 6)
    assert (fields["impact_flags"], fields["impact"], fields["blocked"]) == (0x21, 1, 2)
    assert (fields["mpls_label"], fields["vlan_id"]) == (0xABCDE, 100)
    assert fields["intrusion_policy_uuid"] == str(UUID_A)
    assert fields["user_id"] == 9999997
    assert fields["access_control_rule_id"] == 268434433
    assert fields["access_control_policy_uuid"] == str(UUID_B)
    assert (fields["connection_timestamp"], fields["connection_instance_id"],
            fields["connection_counter"]) == (1_600_000_050, 3, 98)
    assert (fields["source_country"], fields["destination_country"], fields["ioc_number"]) == (
        840, 276, 5)
    assert fields["security_context"] == bytes(range(16)).hex()
    assert fields["ssl_certificate_fingerprint"] == bytes(range(100, 120)).hex()
    assert fields["network_analysis_policy_uuid"] == str(UUID_A)
    assert fields["http_response"] == 200


def test_intrusion_block_41_ends_after_the_ioc_number():
    b = _intrusion_60_prefix()[:222]
    struct.pack_into(">LL", b, 0, 41, 222)
    fields = decode_ok(record(400, bytes(b)))
    assert fields["block_type"] == 41
    assert fields["ioc_number"] == 5
    assert "security_context" not in fields


def _intrusion_81() -> bytes:
    """Block 81: a blocked-reason byte at 84 shifts everything after by one (§10.6)."""
    b60 = _intrusion_60_prefix()
    fixed = bytes(b60[:84]) + b"\x03" + bytes(b60[84:282])
    assert fixed[85:89] == struct.pack(">L", 0xABCDE)  # MPLS now at 85
    assert fixed[279:283] == struct.pack(">L", 200)  # HTTP response now at 279
    return fixed[8:] + sblock("vrf-in") + sblock("") + b"\x03"


def test_intrusion_block_81_offsets_and_tail():
    fields = decode_ok(record(400, block(81, _intrusion_81())))
    assert fields["blocked_reason"] == 3
    assert fields["mpls_label"] == 0xABCDE
    assert fields["intrusion_policy_uuid"] == str(UUID_A)
    assert fields["http_response"] == 200
    assert (fields["ingress_vrf"], fields["egress_vrf"], fields["snort_version"]) == ("vrf-in",
                                                                                      "", 3)


def test_intrusion_block_85_tail():
    body = _intrusion_81() + ipv4("198.51.100.7") + b"".join(
        sblock(t) for t in ("www.example.com", "/a?b=c", "x.pdf", "a@example.com", "", "b@c"))
    fields = decode_ok(record(400, block(85, body)))
    assert fields["block_type"] == 85
    assert fields["original_source_ip"] == "198.51.100.7"
    assert (fields["http_hostname"], fields["http_uri"], fields["smtp_attachments"],
            fields["smtp_from"], fields["smtp_headers"], fields["smtp_to"]) == (
        "www.example.com", "/a?b=c", "x.pdf", "a@example.com", "", "b@c")


# Record 71: discovery header (§8) then the connection block (§10.7).


def discovery_header(has_ipv6: bool = True) -> bytes:
    head = struct.pack(">L4s6sBBLLLLLL", 1, b"\x00" * 4, b"\x00" * 6, int(has_ipv6), 0, 0, 0,
                       1003, 1, 0x5FC8D1A2, 0x1234)
    return head + (b"\x00" * 16 if has_ipv6 else b"")


def _tail_163(*, original_country: bool = True, sgt: bytes = b"") -> bytes:
    """Everything after the client URL, as listed in §10.7, with recognisable values."""
    out = sblock("https://example.com/x") + sblock("HOSTNAME") + sblock("1.2.3")
    out += struct.pack(">8L", *range(11, 19))  # monitor rules 1-8
    out += struct.pack(">BBHH", 1, 2, 3, 4)  # SI src/dst, SI layer, file + intrusion counts
    out += struct.pack(">HH", 840, 276)  # initiator, responder country
    if original_country:
        out += struct.pack(">H", 250)
    out += struct.pack(">HLLHHBBBB", 6, 64500, 64501, 7, 8, 9, 10, 24, 16)
    out += bytes(range(16))  # security context
    out += struct.pack(">H", 300)  # VLAN
    out += sblock("ref.example.com") + sblock("curl/8") + sblock("")
    out += bytes(range(20, 40))  # SSL certificate fingerprint
    out += UUID_B.bytes  # SSL policy
    out += struct.pack(">LHBLHHHLLQ", 77, 0xC02F, 4, 1, 2, 3, 4, 5, 6, 7)
    out += sblock("sni.example.com")
    out += struct.pack(">L", 88)
    out += bytes(range(32)) + b"\x20" + bytes(range(40, 60)) + b"\x14"
    out += UUID_A.bytes  # network analysis policy
    out += struct.pack(">LL", 12, 13)  # endpoint profile, security group
    out += sgt
    out += bytes.fromhex("20010db8000000000000000000000099")  # location IPv6
    out += struct.pack(">L", 404)
    out += sblock("example.org")
    out += struct.pack(">HHL", 1, 3, 3600)
    out += UUID_B.bytes  # sinkhole
    out += struct.pack(">LL", 1001, 1002)  # SI lists 1, 2
    return out


def _prefix_163() -> bytearray:
    b = bytearray(297)
    struct.pack_into(">L", b, 8, 1)
    b[12:28] = UUID_A.bytes
    b[76:92] = ipv4("192.168.50.50")
    b[92:108] = ipv4("203.0.113.9")
    b[108:124] = ipv4("198.51.100.1")
    b[124:140] = UUID_B.bytes
    struct.pack_into(">LLHL", b, 140, 268434433, 42, 2, 0x10)
    struct.pack_into(">HHHB", b, 154, 59265, 443, 0x1B, 6)
    struct.pack_into(">HHLL", b, 177, 3, 98, 1_606_923_236, 1_606_923_301)
    struct.pack_into(">QQQQ", b, 189, 10, 8, 1687, 4492)
    struct.pack_into(">QQQQ", b, 221, 1, 2, 3, 4)
    struct.pack_into(">L", b, 269, 55)
    struct.pack_into(">LLLLLL", b, 273, 9999997, 1122, 17, 5, 1296, 1423)
    return b


def _connection(block_type: int, tail: bytes, prefix: bytearray | None = None) -> bytes:
    body = bytes(prefix if prefix is not None else _prefix_163())[8:] + tail
    return record(71, discovery_header() + block(block_type, body))


def _assert_tail_163(fields: dict) -> None:
    assert fields["client_url"] == "https://example.com/x"
    assert fields["netbios_name"] == "HOSTNAME"
    assert fields["monitor_rule_8"] == 18
    assert (fields["file_event_count"], fields["intrusion_event_count"]) == (3, 4)
    assert (fields["initiator_country"], fields["responder_country"]) == (840, 276)
    assert fields["destination_autonomous_system"] == 64501
    assert fields["destination_mask"] == 16
    assert fields["security_context"] == bytes(range(16)).hex()
    assert fields["vlan_id"] == 300
    assert fields["user_agent"] == "curl/8"
    assert fields["ssl_policy_uuid"] == str(UUID_B)
    assert (fields["ssl_rule_id"], fields["ssl_cipher_suite"], fields["ssl_version"]) == (
        77, 0xC02F, 4)
    assert fields["ssl_flow_flags"] == 7
    assert fields["ssl_server_name"] == "sni.example.com"
    assert fields["ssl_session_id"] == bytes(range(32)).hex()
    assert (fields["ssl_session_id_length"], fields["ssl_ticket_id_length"]) == (32, 20)
    assert fields["network_analysis_policy_uuid"] == str(UUID_A)
    assert fields["location_ipv6"] == "2001:db8::99"
    assert fields["dns_query"] == "example.org"
    assert (fields["dns_record_type"], fields["dns_response_type"], fields["dns_ttl"]) == (
        1, 3, 3600)
    assert fields["sinkhole_uuid"] == str(UUID_B)
    assert (fields["security_intelligence_list_1"],
            fields["security_intelligence_list_2"]) == (1001, 1002)


def test_connection_block_163_offsets():
    rec = decode_record(_connection(163, _tail_163()))
    assert rec.error is None and rec.notes == []
    fields = rec.fields
    assert fields["discovery_header"]["event_type"] == 1003
    assert fields["discovery_header"]["ipv6_address"] == "::"
    assert fields["block_type"] == 163
    assert fields["ingress_zone_uuid"] == str(UUID_A)
    assert (fields["initiator_ip"], fields["responder_ip"], fields["original_client_ip"]) == (
        "192.168.50.50", "203.0.113.9", "198.51.100.1")
    assert fields["access_control_policy_uuid"] == str(UUID_B)
    assert (fields["access_control_rule_id"], fields["tunnel_rule_id"]) == (268434433, 42)
    assert (fields["rule_action"], fields["rule_reason"]) == (2, 0x10)
    assert (fields["initiator_port"], fields["responder_port"], fields["tcp_flags"],
            fields["protocol"]) == (59265, 443, 0x1B, 6)
    assert (fields["connection_instance_id"], fields["connection_counter"]) == (3, 98)
    assert (fields["first_packet_time"], fields["last_packet_time"]) == (1_606_923_236,
                                                                         1_606_923_301)
    assert (fields["initiator_packets"], fields["responder_bytes"]) == (10, 4492)
    assert (fields["initiator_packets_dropped"], fields["responder_bytes_dropped"]) == (1, 4)
    assert fields["qos_rule_id"] == 55
    assert (fields["user_id"], fields["application_id"], fields["url_category"],
            fields["url_reputation"], fields["client_application_id"],
            fields["web_application_id"]) == (9999997, 1122, 17, 5, 1296, 1423)
    assert fields["original_client_country"] == 250
    _assert_tail_163(fields)


def test_connection_block_160_offsets():
    """160 lacks original client IP, tunnel rule, dropped counters, QoS and original client
    country; the offsets are those §10.7 lists for it."""
    b = bytearray(225)
    struct.pack_into(">L", b, 8, 1)
    b[44:60] = UUID_A.bytes
    b[76:92] = ipv4("192.168.50.50")
    b[92:108] = ipv4("52.114.128.70")
    b[108:124] = UUID_B.bytes
    struct.pack_into(">LHL", b, 124, 268434433, 2, 0)
    struct.pack_into(">HHHB", b, 134, 59265, 443, 0x12, 6)
    struct.pack_into(">HHLL", b, 157, 3, 98, 1_606_923_236, 1_606_923_301)
    struct.pack_into(">QQQQ", b, 169, 10, 8, 1687, 4492)
    struct.pack_into(">LLLLLL", b, 201, 9999997, 1122, 17, 5, 1296, 1423)
    rec = decode_record(_connection(160, _tail_163(original_country=False), b))
    assert rec.error is None and rec.notes == []
    fields = rec.fields
    assert fields["block_type"] == 160
    assert fields["ingress_interface_uuid"] == str(UUID_A)
    assert fields["responder_ip"] == "52.114.128.70"
    assert fields["access_control_policy_uuid"] == str(UUID_B)
    assert (fields["access_control_rule_id"], fields["rule_action"]) == (268434433, 2)
    assert (fields["initiator_port"], fields["responder_port"], fields["tcp_flags"],
            fields["protocol"]) == (59265, 443, 0x12, 6)
    assert (fields["connection_instance_id"], fields["connection_counter"]) == (3, 98)
    assert (fields["first_packet_time"], fields["last_packet_time"]) == (1_606_923_236,
                                                                         1_606_923_301)
    assert (fields["initiator_packets"], fields["responder_packets"], fields["initiator_bytes"],
            fields["responder_bytes"]) == (10, 8, 1687, 4492)
    assert (fields["user_id"], fields["web_application_id"]) == (9999997, 1423)
    for absent in ("original_client_ip", "tunnel_rule_id", "initiator_packets_dropped",
                   "qos_rule_id", "qos_applied_interface_uuid", "original_client_country"):
        assert absent not in fields
    _assert_tail_163(fields)


SGT_TYPED = struct.pack(">HBHB", 21, 1, 22, 2)


@pytest.mark.parametrize(
    ("block_type", "sgt", "extra", "expected"),
    [
        (168, b"", struct.pack(">L", 5), {"security_intelligence_list_3": 5}),
        (169, b"", struct.pack(">L", 5), {"threat_intelligence_category": 5}),
        (170, struct.pack(">HH", 21, 22), struct.pack(">L", 5),
         {"source_sgt": 21, "destination_sgt": 22, "threat_intelligence_category": 5}),
        (171, SGT_TYPED, struct.pack(">L", 5) + sblock("in") + sblock("out"),
         {"source_sgt_type": 1, "destination_sgt_type": 2, "ingress_vrf": "in",
          "egress_vrf": "out"}),
        (173, SGT_TYPED,
         struct.pack(">L", 5) + sblock("in") + sblock("out") + sblock("tag=a") + sblock(""),
         {"egress_vrf": "out", "source_dynamic_attributes": "tag=a",
          "destination_dynamic_attributes": ""}),
        (174, SGT_TYPED,
         struct.pack(">L", 5) + sblock("chrome.exe") + struct.pack(">BBBBHH", 90, 10, 2, 7,
                                                                    40000, 8443)
         + ipv4("198.51.100.20") + ipv4("203.0.113.30") + sblock("in") + sblock("out")
         + sblock("") + sblock("tag=b"),
         {"threat_intelligence_category": 5, "eve_process": "chrome.exe",
          "eve_process_confidence": 90, "eve_threat_confidence": 10,
          "eve_threat_confidence_index": 2, "client_application_detector_id": 7,
          "nat_initiator_port": 40000, "nat_responder_port": 8443,
          "nat_initiator_ip": "198.51.100.20", "nat_responder_ip": "203.0.113.30",
          "ingress_vrf": "in", "egress_vrf": "out", "destination_dynamic_attributes": "tag=b"}),
    ],
    ids=["168", "169", "170", "171", "173", "174"],
)
def test_connection_7x_blocks_differ_from_163_only_in_the_tail(block_type, sgt, extra,
                                                               expected):
    fields = decode_ok(_connection(block_type, _tail_163(sgt=sgt) + extra))
    assert fields["block_type"] == block_type
    assert fields["access_control_rule_id"] == 268434433
    assert fields["first_packet_time"] == 1_606_923_236
    _assert_tail_163(fields)
    for name, value in expected.items():
        assert fields[name] == value, name


def test_connection_without_ipv6_in_the_discovery_header():
    raw = record(71, discovery_header(has_ipv6=False)
                 + block(163, bytes(_prefix_163())[8:] + _tail_163()))
    fields = decode_ok(raw)
    assert fields["discovery_header"]["ipv6_address"] is None
    assert fields["initiator_port"] == 59265


def _file_event_56() -> bytes:
    b = bytearray(100)
    struct.pack_into(">LHHLL", b, 8, 2, 28, 19395, 1_487_797_063, 1_487_797_094)
    b[24:40] = ipv4("5.255.250.22")
    b[40:56] = ipv4("10.32.1.18")
    struct.pack_into(">8B", b, 56, 3, 4, 11, 19, 1, 2, 77, 6)
    b[64:96] = bytes(range(32))
    struct.pack_into(">L", b, 96, 9)
    tail = sblock("report-é.pdf")
    tail += struct.pack(">QBLL", 41926, 1, 676, 9999999)
    tail += sblock("http://example.com/report.pdf") + sblock("")
    tail += struct.pack(">HHB", 42905, 80, 6) + UUID_A.bytes + struct.pack(">HHLL", 840, 0, 5,
                                                                            2211)
    tail += bytes(range(16)) + bytes(range(20)) + struct.pack(">HH", 1, 2)
    tail += sblock("ab" * 32) + sblock("a.zip") + struct.pack(">BL", 2, 200)
    return bytes(b[8:]) + tail


@pytest.mark.parametrize("record_type", [500, 502])
def test_file_event_block_56_offsets(record_type):
    fields = decode_ok(record(record_type, block(56, _file_event_56())))
    assert fields["block_type"] == 56
    assert (fields["device_id"], fields["connection_instance_id"],
            fields["connection_counter"]) == (2, 28, 19395)
    assert (fields["connection_timestamp"], fields["file_event_timestamp"]) == (1_487_797_063,
                                                                                1_487_797_094)
    assert (fields["source_ip"], fields["destination_ip"]) == ("5.255.250.22", "10.32.1.18")
    assert (fields["disposition"], fields["spero_disposition"], fields["threat_score"],
            fields["action"]) == (3, 4, 77, 6)
    assert fields["file_sha256"] == bytes(range(32)).hex()
    assert fields["file_type_id"] == 9
    assert fields["file_name"] == "report-é.pdf"
    assert (fields["file_size"], fields["direction"], fields["application_id"],
            fields["user_id"]) == (41926, 1, 676, 9999999)
    assert fields["uri"] == "http://example.com/report.pdf"
    assert (fields["source_port"], fields["destination_port"], fields["protocol"]) == (42905,
                                                                                       80, 6)
    assert fields["access_control_policy_uuid"] == str(UUID_A)
    assert fields["client_application_id"] == 2211
    assert fields["ssl_flow_status"] == 2
    assert (fields["archive_name"], fields["archive_depth"], fields["http_response"]) == (
        "a.zip", 2, 200)


def test_file_event_block_79_adds_vrf_names():
    fields = decode_ok(record(500, block(79, _file_event_56() + sblock("in") + sblock("out"))))
    assert (fields["block_type"], fields["ingress_vrf"], fields["egress_vrf"]) == (79, "in",
                                                                                   "out")


def _malware_62() -> bytes:
    out = UUID_A.bytes + UUID_B.bytes + struct.pack(">LLLB", 1_600_000_000, 1, 2, 3)
    out += b"".join(sblock(t) for t in ("W32.Test", "alice", "x.exe", "C:\\tmp", "cd" * 32))
    out += struct.pack(">LLL", 1234, 9, 1_599_999_999)
    out += sblock("parent.exe") + sblock("ef" * 32) + sblock("quarantined")
    out += struct.pack(">LHHLB", 4, 5, 6, 1_600_000_001, 1)
    out += ipv4("192.0.2.1") + ipv4("192.0.2.2")
    out += struct.pack(">LL", 676, 42) + UUID_A.bytes + struct.pack(">BB", 3, 1)
    out += sblock("http://example.com/x.exe")
    out += struct.pack(">HHHHLLBBBH", 1025, 80, 840, 250, 7, 8, 2, 6, 90, 3)
    out += bytes(range(16)) + bytes(range(20)) + struct.pack(">HH", 1, 2)
    out += sblock("") + sblock("") + struct.pack(">BL", 0, 200)
    return out


def test_malware_block_62_order():
    fields = decode_ok(record(125, block(62, _malware_62())))
    assert (fields["agent_uuid"], fields["cloud_uuid"]) == (str(UUID_A), str(UUID_B))
    assert (fields["event_type_id"], fields["event_subtype_id"], fields["detector_id"]) == (1,
                                                                                            2, 3)
    assert (fields["detection_name"], fields["user"], fields["file_path"]) == ("W32.Test",
                                                                               "alice",
                                                                               "C:\\tmp")
    assert fields["file_sha"] == "cd" * 32
    assert (fields["file_size"], fields["file_type_id"]) == (1234, 9)
    assert fields["event_description"] == "quarantined"
    assert (fields["device_id"], fields["connection_instance_id"],
            fields["connection_counter"], fields["direction"]) == (4, 5, 6, 1)
    assert fields["destination_ip"] == "192.0.2.2"
    assert (fields["disposition"], fields["retro_disposition"]) == (3, 1)
    assert (fields["source_port"], fields["destination_country"], fields["action"],
            fields["protocol"], fields["threat_score"], fields["ioc_number"]) == (
        1025, 250, 2, 6, 90, 3)
    assert fields["http_response"] == 200


def test_malware_block_80_adds_vrf_names():
    fields = decode_ok(record(125, block(80, _malware_62() + sblock("in") + sblock(""))))
    assert (fields["block_type"], fields["ingress_vrf"], fields["egress_vrf"]) == (80, "in", "")


def test_impact_alert_block_153_has_event_id_before_device_id():
    body = struct.pack(">LLLL", 1001, 7, 1_600_000_000, 1) + ipv4("192.0.2.1") + ipv4(
        "192.0.2.2") + sblock("[Impact: 1] something")
    fields = decode_ok(record(9, block(153, body)))
    assert (fields["event_id"], fields["device_id"], fields["impact"]) == (1001, 7, 1)
    assert fields["description"] == "[Impact: 1] something"


def test_extra_data_carries_a_blob_block():
    blob = struct.pack(">LL", 10, 8 + 5) + b"\x00\x01\xfe\xff\x41"
    fields = decode_ok(record(110, block(4, struct.pack(">LLLL", 7, 1001, 1_600_000_000, 9)
                                         + blob)))
    assert (fields["device_id"], fields["event_id"], fields["extra_data_type"]) == (7, 1001, 9)
    assert fields["data"] == "0001feff41"


def test_extra_data_type_metadata():
    raw = record(111, block(5, struct.pack(">L", 9) + sblock("HTTP URI") + sblock("string")),
                 archive=None)
    assert decode_ok(raw) == {"block_type": 5, "extra_data_type": 9, "name": "HTTP URI",
                              "encoding": "string"}


# Metadata records added from §9.


def test_fingerprint_texts_are_length_prefixed_without_nul():
    data = UUID_A.bytes + b"".join(struct.pack(">L", len(t)) + t for t in (b"Access Point",
                                                                            b"Cisco", b""))
    assert decode_ok(record(54, data, archive=None)) == {
        "uuid": str(UUID_A), "name": "Access Point", "vendor": "Cisco", "version": ""}


def test_correlation_policy_and_rule():
    def t16(text: bytes) -> bytes:
        return struct.pack(">H", len(text)) + text

    policy = struct.pack(">L", 3) + t16(b"pol") + t16(b"desc") + UUID_A.bytes + UUID_B.bytes
    assert decode_ok(record(69, policy, archive=None)) == {
        "id": 3, "name": "pol", "description": "desc", "uuid": str(UUID_A),
        "revision_uuid": str(UUID_B)}
    rule = (struct.pack(">L", 4) + t16(b"r") + t16(b"") + t16(b"intrusion") + UUID_A.bytes
            + UUID_B.bytes + UUID_A.bytes)
    fields = decode_ok(record(70, rule, archive=None))
    assert (fields["rule_event_type"], fields["allow_list_uuid"]) == ("intrusion", str(UUID_A))


def test_uuid_and_string_metadata_without_a_block_header():
    data = UUID_A.bytes + sblock("name")
    assert decode_ok(record(282, data, archive=None)) == {"uuid": str(UUID_A), "name": "name"}
    assert decode_ok(record(600, data, archive=None)) == {"uuid": str(UUID_A), "name": "name"}
    # Security context names join on the same hex the events carry.
    assert decode_ok(record(132, data, archive=None)) == {
        "security_context": UUID_A.bytes.hex(), "name": "name"}
    rule = UUID_B.bytes + struct.pack(">L", 77) + sblock("decrypt")
    assert decode_ok(record(601, rule, archive=None)) == {
        "revision": str(UUID_B), "rule_id": 77, "name": "decrypt"}


def test_metadata_blocks_22_58_and_file_policy():
    si = block(22, struct.pack(">L", 5) + UUID_A.bytes + sblock("Malware"))
    assert decode_ok(record(280, si, archive=None)) == {
        "block_type": 22, "id": 5, "access_control_policy_uuid": str(UUID_A),
        "name": "Malware"}
    profile = block(58, struct.pack(">L", 6) + sblock("phone") + sblock("Smart phone"))
    assert decode_ok(record(301, profile, archive=None))["full_name"] == "Smart phone"
    # UNCERTAIN (§9): the type word of record 530 is not given; read as block 14 like 700.
    policy = block(14, UUID_B.bytes + sblock("files"))
    assert decode_ok(record(530, policy, archive=None)) == {
        "block_type": 14, "uuid": str(UUID_B), "name": "files"}


# -- faults -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("record_type", "block_choice"), list(_record_cases()))
def test_a_truncated_record_gives_an_error_not_an_exception(record_type, block_choice):
    values = _flag_on(Values().layout(RECORDS[record_type].layout, block_choice))
    raw = encode_record(record_type, values)
    data = raw[8:-1]  # one byte short, with the record length made to match
    rec = decode_record(struct.pack(">LL", record_type, len(data)) + data)
    assert rec.error is not None
    assert "raw" in rec.fields


@pytest.mark.parametrize("record_type", [71, 400])
def test_an_unknown_block_type_is_kept_as_raw_hex(record_type):
    head = discovery_header() if record_type == 71 else b""
    # 163 is a connection block type, but never an intrusion block: expected type matters.
    stray = 999 if record_type == 71 else 163
    rec = decode_record(record(record_type, head + block(stray, b"\x01\x02\x03")))
    assert rec.error is None
    assert rec.fields["block_type"] == stray
    assert rec.fields["raw"] == "010203"
    assert any(f"block type {stray}" in text for _, text in rec.notes)


def test_a_connection_block_of_another_record_is_not_decoded_in_71():
    rec = decode_record(record(71, discovery_header() + block(153, b"\x00" * 8)))
    assert rec.fields["raw"] == "00" * 8


def test_a_longer_block_keeps_its_tail():
    body = bytes(_intrusion_60_prefix())[8:] + b"\xaa\xbb"
    rec = decode_record(record(400, block(60, body)))
    assert rec.error is None
    assert rec.fields["unparsed_tail"] == "aabb"
    assert rec.fields["http_response"] == 200


# -- docs -----------------------------------------------------------------------------------------


def test_every_field_has_a_meaning():
    assert sorted(doc.all_field_names() - set(doc.MEANINGS)) == []
    assert sorted(set(doc.MEANINGS) - doc.all_field_names()) == []


def test_field_reference_is_current():
    committed = (ROOT / "docs" / "fields.md").read_text(encoding="utf-8")
    assert committed == doc.render(), (
        "docs/fields.md is stale: run `python -m estreamer.protocol.tables.doc > docs/fields.md`")
