"""Record headers (8 vs 16 bytes, per record), totality of decode_record, and the stream
decoder's handling of unknown and malformed records."""

import struct

from estreamer.protocol.messages import encode_bundle, encode_event_data, encode_null
from estreamer.protocol.records import Record, decode_record, encode_record, record_digest
from estreamer.protocol.stream import Notice, StreamDecoder, StreamFault

DEVICE = {"id": 1, "name": "fmc-sensor-1"}


def test_header_size_is_decided_per_record_by_length():
    short = encode_record(123, DEVICE)
    extended = encode_record(123, DEVICE, archive_timestamp=1607000000)
    assert len(extended) == len(short) + 8
    assert decode_record(short).archive_timestamp is None
    record = decode_record(extended)
    assert record.archive_timestamp == 1607000000
    assert record.fields == DEVICE and record.error is None


def test_id_length_name_wire_form():
    # §10.3: u32 id, u32 length, name without NUL; 8 + N = record length.
    raw = struct.pack(">LLLL", 123, 16, 7, 8) + b"sensor-7"
    record = decode_record(raw)
    assert (record.record_type, record.name, record.fields) == (
        123,
        "Managed Device",
        {"id": 7, "name": "sensor-7"},
    )


def test_netmap_bits_are_masked_off_the_record_type():
    raw = bytearray(encode_record(123, DEVICE))
    raw[0:4] = ((1 << 31) | (5 << 16) | 123).to_bytes(4, "big")
    record = decode_record(bytes(raw))
    assert record.record_type == 123 and record.netmap_id == 5
    assert record.to_dict()["netmap_id"] == 5


def test_length_mismatch_is_a_malformed_record_not_an_exception():
    raw = encode_record(123, DEVICE)[:-3]
    record = decode_record(raw, offset=40)
    assert record.error is not None and "does not match" in record.error
    assert record.record_type == 123 and record.offset == 40
    assert record.fields["raw"]  # the payload is kept


def test_record_that_does_not_fit_its_layout_keeps_its_bytes():
    # A Managed Device whose name length runs past the record.
    raw = struct.pack(">LLLL", 123, 12, 7, 200) + b"abcd"
    record = decode_record(raw)
    assert record.error is not None and "Managed Device does not fit" in record.error
    assert record.fields == {"raw": raw[8:].hex()}


def test_unknown_record_type_comes_out_raw_with_a_note():
    raw = struct.pack(">LLLL", 9999, 4, 1600000000, 0) + b"\xde\xad\xbe\xef"
    record = decode_record(raw)
    assert record.record_type == 9999 and record.error is None
    assert record.archive_timestamp == 1600000000
    assert record.fields == {"raw": "deadbeef"}
    assert record.notes and "unknown record type 9999" in record.notes[0][1]


def test_garbage_text_falls_back_to_hex():
    raw = struct.pack(">LLLL", 123, 11, 7, 3) + b"\xff\xfe\x00"
    assert decode_record(raw).fields["name"] == "fffe"


def test_text_with_nul_and_utf8():
    raw = encode_record(123, {"id": 2, "name": "capteur-é"})
    assert decode_record(raw).fields["name"] == "capteur-é"


def test_digest_covers_the_archive_timestamp():
    a = encode_record(123, DEVICE, archive_timestamp=1)
    b = encode_record(123, DEVICE, archive_timestamp=2)
    assert record_digest(a) != record_digest(b)
    assert record_digest(a) == record_digest(encode_record(123, DEVICE, archive_timestamp=1))


def test_stream_reports_each_unknown_type_once_and_goes_on():
    unknown = struct.pack(">LL", 9999, 2) + b"hi"
    known = encode_record(123, DEVICE)
    data = (
        encode_bundle(1, 1, [unknown, known, unknown]) + encode_null() + encode_event_data(unknown)
    )
    events = StreamDecoder().feed(data)
    notices = [e for e in events if isinstance(e, Notice)]
    records = [e for e in events if isinstance(e, Record)]
    assert len(notices) == 1 and "9999" in notices[0].message
    assert [r.record_type for r in records] == [9999, 123, 9999, 9999]


def test_stream_goes_on_after_a_bad_message():
    bad_error = b"\x00\x01\x00\x01\x00\x00\x00\x07" + b"\x00\x00\x00\x13\x00\x09X"
    data = bad_error + encode_event_data(encode_record(123, DEVICE))
    events = StreamDecoder().feed(data)
    faults = [e for e in events if isinstance(e, StreamFault)]
    assert len(faults) == 1 and faults[0].offset == 0 and not faults[0].fatal
    assert [e.fields for e in events if isinstance(e, Record)] == [DEVICE]


def test_truncated_stream_is_reported_on_close():
    decoder = StreamDecoder()
    data = encode_event_data(encode_record(123, DEVICE))
    assert decoder.feed(data[:-2]) == []
    faults = decoder.close()
    assert len(faults) == 1 and "incomplete message" in faults[0].message


def test_address_and_uuid_text_match_the_standard_library():
    import ipaddress
    import random
    import uuid

    from estreamer.protocol.layout import ip_to_text, uuid_to_text

    rng = random.Random(7)
    samples = [rng.randbytes(16) for _ in range(500)]
    samples += [
        ipaddress.IPv6Address(a).packed
        for a in ("::", "::1", "::2:3", "::102:304", "2001:db8::1", "fe80::1:0:0:1", "1::")
    ]
    for raw in samples:
        assert uuid_to_text(raw) == str(uuid.UUID(bytes=raw))
        if raw[:12] != bytes(10) + b"\xff\xff":
            assert ip_to_text(raw) == str(ipaddress.IPv6Address(raw))
    assert ip_to_text(bytes(10) + b"\xff\xff" + bytes([10, 0, 0, 1])) == "10.0.0.1"
