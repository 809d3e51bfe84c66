"""Discovery (RNA) host events, user-input events and the metadata that names them: bytes
built by hand at the offsets of the tables' documented sources (eNcore 5.2.11, SFS), decoded,
and decorated from metadata records. Nested lists (servers in a host profile, bugtraq ids in
a scan result) are checked item by item."""

from __future__ import annotations

import struct
import uuid

from estreamer.decorate import Decorator
from estreamer.protocol.records import decode_record, decode_record_checked, encode_record

FINGERPRINT = uuid.UUID("0b1e5a7c-1111-4222-8333-944455556666")
V4 = b"\x00" * 10 + b"\xff\xff"


def ip(text: str) -> bytes:
    return V4 + bytes(int(part) for part in text.split("."))


def sblock(text: str) -> bytes:
    raw = text.encode() + b"\x00" if text else b""
    return struct.pack(">LL", 0, 8 + len(raw)) + raw


def block(block_type: int, body: bytes) -> bytes:
    return struct.pack(">LL", block_type, 8 + len(body)) + body


def lst(*items: bytes, list_type: int = 11) -> bytes:
    return block(list_type, b"".join(items))


def record(record_type: int, data: bytes, archive: int | None = 1_700_000_100) -> bytes:
    header = struct.pack(">LL", record_type, len(data))
    if archive is not None:
        header += struct.pack(">LL", archive, 0)
    return header + data


def discovery_header(event_type: int, subtype: int) -> bytes:
    """§8: device 1, no legacy IP, a MAC, has-IPv6 0, times, type/subtype, file pos."""
    return struct.pack(">L4s6sBBLLLLLL", 1, bytes(4), bytes.fromhex("0050568a1b2c"), 0, 0,
                       1_700_000_000, 250_000, event_type, subtype, 0, 0)


def metadata(record_type: int, data: bytes) -> bytes:
    return record(record_type, data, archive=None)


def id_name(record_type: int, ident: int, name: str) -> bytes:
    return metadata(record_type, struct.pack(">LL", ident, len(name)) + name.encode())


def test_new_tcp_server_reads_the_server_block_and_its_nested_lists():
    sub_server = block(1, sblock("mod_ssl") + sblock("Apache") + sblock("2.8"))
    info = block(117, struct.pack(">L", 676) + sblock("Apache") + sblock("2.4.57")
                 + struct.pack(">LLL", 1_700_000_050, 0, 0) + lst(sub_server))
    server = block(103, struct.pack(">HLL", 443, 12, 1_700_000_060) + lst(info)
                   + struct.pack(">L", 90) + lst(block(123, struct.pack(">L", 929))))
    decoded = decode_record_checked(record(11, discovery_header(1000, 2) + server))
    f = decoded.fields
    assert decoded.name == "New TCP Server" and decoded.category == "discovery"
    assert f["discovery_header"]["event_type"] == 1000
    assert f["discovery_header"]["mac_address"] == "00:50:56:8a:1b:2c"
    assert (f["block_type"], f["port"], f["hits"], f["confidence"]) == (103, 443, 12, 90)
    [server_info] = f["server_information"]
    assert server_info["application_id"] == 676
    assert (server_info["vendor"], server_info["version"]) == ("Apache", "2.4.57")
    assert server_info["sub_servers"] == [
        {"block_type": 1, "sub_server": "mod_ssl", "vendor": "Apache", "version": "2.8"}]
    assert f["web_applications"] == [{"block_type": 123, "web_application_id": 929}]

    decorator = Decorator()
    for meta in (id_name(63, 676, "HTTPS"), id_name(109, 929, "Google")):
        decorator.learn(decode_record(meta))
    event = decorator(decoded, decoded.to_dict())
    assert event["server_information"][0]["application_name"] == "HTTPS"
    assert event["web_applications"][0]["web_application_name"] == "Google"
    assert decoded.fields["web_applications"][0] == {"block_type": 123,
                                                      "web_application_id": 929}


def test_os_update_is_the_sfs_block_53_and_names_the_fingerprint():
    data = discovery_header(1001, 2) + block(53, struct.pack(">L", 87) + FINGERPRINT.bytes)
    decoded = decode_record_checked(record(18, data))
    assert decoded.fields["confidence"] == 87
    assert decoded.fields["os_fingerprint_uuid"] == str(FINGERPRINT)
    fingerprint = metadata(54, FINGERPRINT.bytes + b"".join(
        struct.pack(">L", len(t)) + t.encode() for t in ("Windows", "Microsoft", "11")))
    decorator = Decorator()
    decorator.learn(decode_record(fingerprint))
    event = decorator(decoded, decoded.to_dict())
    assert (event["os_fingerprint_name"], event["os_fingerprint_vendor"],
            event["os_fingerprint_version"]) == ("Windows", "Microsoft", "11")


def test_host_attribute_definition_with_list_items_and_ipv6_wide_addresses():
    attribute_uuid = uuid.UUID(int=7)
    body = (struct.pack(">L", 3) + attribute_uuid.bytes + struct.pack(">L", 12)
            + sblock("Owner") + struct.pack(">LLLL", 2, 1, 0, 0) + bytes(4)
            + lst(block(39, struct.pack(">L", 1) + sblock("IT")))
            + lst(block(146, struct.pack(">L", 12) + ip("10.1.0.0") + struct.pack(">L", 16)),
                  block(38, struct.pack(">L4sL", 12, bytes([10, 2, 0, 0]), 24))))
    decoded = decode_record_checked(record(46, discovery_header(1002, 6) + block(55, body)))
    f = decoded.fields
    assert (f["source_id"], f["attribute_uuid"], f["attribute_id"]) == (3, str(attribute_uuid),
                                                                         12)
    assert (f["attribute_name"], f["attribute_type"], f["attribute_category"]) == ("Owner", 2, 1)
    assert f["list_items"] == [{"block_type": 39, "id": 1, "name": "IT"}]
    assert f["addresses"] == [
        {"block_type": 146, "attribute_id": 12, "ip_address": "10.1.0.0", "prefix_bits": 16},
        {"block_type": 38, "attribute_id": 12, "ip_address": "10.2.0.0", "prefix_bits": 24},
    ]
    decorator = Decorator()
    decorator.learn(decode_record(id_name(60, 12, "Owner")))
    assert decorator(decoded, decoded.to_dict())["addresses"][1]["attribute_name"] == "Owner"


def test_scan_result_names_its_generic_blocks_by_context():
    # Block 109's bugtraq and CVE lists hold the generic integer (7) and string (35) blocks;
    # they must read as bugtraq/CVE ids, never as record 160's IOC id.
    vulnerability = block(109, struct.pack(">HH", 80, 6) + sblock("SCAN-1") + sblock("XSS")
                          + sblock("<b>XSS</b>") + sblock("XSS") + sblock("XSS")
                          + lst(block(7, struct.pack(">L", 12345)))
                          + lst(block(35, sblock("CVE-2024-0001"))))
    body = (struct.pack(">LL", 7, 2) + ip("10.0.0.5") + struct.pack(">HHH", 80, 6, 0)
            + lst(vulnerability) + lst() + lst())
    decoded = decode_record_checked(record(89, discovery_header(1002, 11) + block(142, body)))
    f = decoded.fields
    assert (f["system_user_id"], f["scan_type"], f["ip_address"]) == (7, 2, "10.0.0.5")
    [vuln] = f["vulnerabilities"]
    assert vuln["scanner_vulnerability_id"] == "SCAN-1"
    assert vuln["bugtraq_ids"] == [{"block_type": 7, "bugtraq_id": 12345}]
    assert vuln["cve_ids"] == [{"block_type": 35, "cve_id": "CVE-2024-0001"}]
    assert f["generic_scan_results"] == [] and f["user_products"] == []
    decorator = Decorator()
    for meta in (id_name(61, 2, "Nessus"), metadata(62, block(57, struct.pack(
            ">LL", 7, 0) + sblock("admin")))):
        decorator.learn(decode_record(meta))
    event = decorator(decoded, decoded.to_dict())
    assert (event["scan_type_name"], event["system_user_name"]) == ("Nessus", "admin")
    assert "ioc_category" not in event["vulnerabilities"][0]["bugtraq_ids"][0]
    # The encoder writes the same bytes back from the decoded dict.
    assert encode_record(89, decoded.fields, 1_700_000_100) == record(
        89, discovery_header(1002, 11) + block(142, body))


def test_vulnerability_metadata_names_vulnerabilities_in_host_client_applications():
    texts = ("2020-01-01", "2020-01-02", "2020-01-03", "Heap overflow", "short", "long",
             "technical", "upgrade")
    vuln = metadata(57, struct.pack(">LLBB", 4242, 3, 1, 1) + b"".join(
        struct.pack(">L", len(t)) + t.encode() for t in texts))
    decoded_vuln = decode_record_checked(vuln)
    assert decoded_vuln.fields["title"] == "Heap overflow"
    assert decoded_vuln.fields["solution"] == "upgrade"
    assert (decoded_vuln.fields["exploits"], decoded_vuln.fields["remote"]) == (1, 1)
    client = block(122, struct.pack(">LLLL", 5, 1_700_000_000, 573, 676) + sblock("118.0")
                   + lst())
    decoded = decode_record_checked(record(15, discovery_header(1000, 7) + client))
    assert (decoded.fields["client_application_id"], decoded.fields["version"]) == (573, "118.0")
    decorator = Decorator()
    for meta in (vuln, id_name(55, 573, "Firefox"), id_name(63, 676, "HTTP")):
        decorator.learn(decode_record(meta))
    event = decorator(decoded, decoded.to_dict())
    assert (event["client_application_name"], event["application_protocol_name"]) == (
        "Firefox", "HTTP")
    assert decorator.cache.get("vulnerability", 4242) == "Heap overflow"


def test_icmp_type_and_code_metadata_name_the_port_fields_of_icmp_events_only():
    decorator = Decorator()
    decorator.learn(decode_record(metadata(260, block(19, struct.pack(">HH", 8, 1)
                                                       + sblock("Echo Request")))))
    decorator.learn(decode_record(metadata(270, block(20, struct.pack(">HHH", 0, 8, 1)
                                                       + sblock("No Code")))))
    icmp = decode_record(metadata(4, struct.pack(">LH", 1, 4) + b"high"))
    event = decorator(icmp, {"protocol": 1, "source_port": 8, "destination_port": 0})
    assert (event["icmp_type_name"], event["icmp_code_name"]) == ("Echo Request", "No Code")
    tcp = decorator(icmp, {"protocol": 6, "source_port": 8, "destination_port": 0})
    assert "icmp_type_name" not in tcp and "icmp_code_name" not in tcp


def test_third_party_vulnerability_file_sha_and_certificate_metadata():
    scan = decode_record_checked(metadata(106, struct.pack(">LL", 9, 2) + b"".join(
        struct.pack(">L", len(t)) + t.encode() for t in ("Title", "Desc", "CVE-1", "BID-2"))))
    assert (scan.fields["title"], scan.fields["cve_id"], scan.fields["bugtraq_id"]) == (
        "Title", "CVE-1", "BID-2")
    sha = bytes(range(32))
    file_sha = decode_record_checked(metadata(511, block(40, sha + sblock("setup.exe")
                                                          + bytes([3, 0]))))
    assert (file_sha.fields["file_sha256"], file_sha.fields["file_name"]) == (sha.hex(),
                                                                               "setup.exe")
    fingerprint = bytes(range(20))
    cert = decode_record_checked(metadata(614, block(50, fingerprint + bytes(40)
                                                      + struct.pack(">L", 8)
                                                      + b"".join(sblock(t) for t in (
                                                          "www.example.com", "Example", "", "US",
                                                          "Example CA", "Example", "", "US"))
                                                      + struct.pack(">LL", 1, 2_000_000_000))))
    assert cert.fields["subject_common_name"] == "www.example.com"
    assert cert.fields["valid_end_time"] == 2_000_000_000
    decorator = Decorator()
    decorator.learn(file_sha)
    decorator.learn(cert)
    event = decorator(scan, {"file_sha256": sha.hex(),
                             "ssl_certificate_fingerprint": fingerprint.hex()})
    assert event["file_sha256_name"] == "setup.exe"
    assert (event["ssl_certificate_subject"], event["ssl_certificate_issuer"]) == (
        "www.example.com", "Example CA")
