"""The optional compiled decoder gives exactly what the Python decoders give: the same values
in the same key order for every layout, and for anything unusual it steps aside (the record
is decoded by Python, errors and notes included). Without the extension, or with
ESTREAMER_PURE_PYTHON=1, everything still works."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from estreamer.protocol import layout as L
from estreamer.protocol import speedups
from estreamer.protocol.records import Record, decode_record, encode_record
from estreamer.protocol.tables import RECORDS
from tests.test_fuzz import _real_records
from tests.test_tables import Values, _block_cases, _flag_on, _record_cases

ROOT = Path(__file__).resolve().parent.parent

needs_extension = pytest.mark.skipif(
    not speedups.AVAILABLE, reason="the C extension is not built (no compiler at install time)")


def both_ways(raw: bytes) -> tuple[Record, Record]:
    fast = decode_record(raw)
    with speedups.disabled():
        slow = decode_record(raw)
    return fast, slow


def assert_same(fast: Record, slow: Record) -> None:
    assert fast.error == slow.error
    assert fast.notes == slow.notes
    assert fast.archive_timestamp == slow.archive_timestamp
    assert fast.to_dict() == slow.to_dict()
    assert list(fast.to_dict()) == list(slow.to_dict())  # the order formats write them in
    assert fast.digest == slow.digest


def test_the_extension_is_built_in_ci():
    """CI installs from the project's files with a compiler: a missing extension there is a
    silent 2-3x slowdown, so it fails here instead."""
    if os.environ.get("CI") != "true":
        pytest.skip("only CI insists on the extension")
    assert speedups.AVAILABLE, "estreamer.protocol._speedups did not build"


@needs_extension
def test_every_layout_is_compiled():
    compiled = [record.compiled for record in RECORDS.values()] + list(L.BLOCKS.values())
    missing = [c.names[:3] for c in compiled if c.fast is None]
    assert missing == []


@needs_extension
@pytest.mark.parametrize(("record_type", "block_choice"), list(_record_cases()))
@pytest.mark.parametrize("archive", [None, 1_700_000_000], ids=["8-byte", "16-byte"])
def test_every_record_decodes_the_same_both_ways(record_type, block_choice, archive):
    values = _flag_on(Values().layout(RECORDS[record_type].layout, block_choice))
    raw = encode_record(record_type, values, archive_timestamp=archive)
    compiled = RECORDS[record_type].compiled
    start = 8 if archive is None else 16
    # The compiled path really took it (not a silent fallback to Python)...
    assert compiled.fast(raw, start, len(raw)) is not None
    fast, slow = both_ways(raw)
    assert fast._event is not None and slow._event is None  # ...and made the event itself
    # decode_record fills the Record's slots itself on that path: every one of them.
    assert all(hasattr(fast, slot) for slot in Record.__slots__)
    assert_same(fast, slow)
    assert fast.fields == values


@needs_extension
@pytest.mark.parametrize(("series", "block_type"), list(_block_cases()))
def test_every_block_decodes_the_same_both_ways(series, block_type):
    compiled = L.block_layout(series, block_type)
    values = Values().layout(compiled.layout)
    body = compiled.encode(values)
    fast = compiled.fast(body, 0, len(body))
    assert fast is not None
    slow = compiled._decode(body, 0, len(body), [])
    assert fast == slow
    assert list(fast[0]) == list(slow[0])


def test_no_layout_field_is_named_like_a_header_key():
    """Record.fields is worked out from the event by leaving out the header's keys: a field
    of the same name would be lost from it."""
    from estreamer.protocol.records import _HEADER_KEYS

    # A record's own fields, and those of the blocks that are inlined into it.
    every = {name for layout in [*(r.layout for r in RECORDS.values()),
                                 *(c.layout for c in L.BLOCKS.values())]
             for name, _ in layout}
    assert every & _HEADER_KEYS == set()


@needs_extension
def test_the_event_made_by_the_decoder_is_the_records_own():
    """to_dict gives a new dict each time (the decorator adds to it); setting `fields`
    replaces what the event is made from; a netmap id is in the header the long way."""
    raw = _real_records()[50]
    record = decode_record(raw)
    first = record.to_dict()
    first["added"] = 1
    assert "added" not in record.to_dict() and "added" not in record.fields
    record.fields = {"only": 2}
    assert list(record.to_dict())[-1] == "only" and "only" in record.to_dict()
    netmapped = ((5 << 16) | int.from_bytes(raw[:4], "big")).to_bytes(4, "big") + raw[4:]
    fast, slow = both_ways(netmapped)
    assert fast.to_dict()["netmap_id"] == 5
    assert_same(fast, slow)


def test_a_taken_event_is_the_decoders_own_and_the_record_stays_whole():
    """take_event hands over the decoder's dict (no copy); whatever the taker then adds or
    changes, the record's fields, to_dict and equality stay as decoded (it decodes its
    bytes again). Without the extension, or for a record the long way made, it is a copy."""
    for raw in _real_records():
        record, untouched = decode_record(raw, 7), decode_record(raw, 7)
        made = record.decoded_event
        event = record.take_event()
        assert event == untouched.to_dict()
        assert (event is made) if made is not None else (event is not untouched.to_dict())
        event["added"] = 1
        for key in list(event)[:3]:
            event[key] = "changed"
        assert record.to_dict() == untouched.to_dict()
        assert list(record.to_dict()) == list(untouched.to_dict())
        assert record.fields == untouched.fields and record == untouched
        assert record.take_event() == untouched.to_dict()  # taken twice: a copy the 2nd time


@needs_extension
def test_the_emulator_stream_decodes_the_same_both_ways():
    for raw in _real_records():
        assert_same(*both_ways(raw))


@needs_extension
@pytest.mark.parametrize("address", ["::", "::1", "::2:3", "::ffff:1.2.3.4", "2001:db8::1",
                                     "fe80::1:0:0:1", "1:0:0:2:0:0:0:3", "1:2:3:4:5:6:7:8",
                                     "::1.2.3.4", "0:0:0:0:0:1:0:0"])
def test_addresses_are_written_as_python_writes_them(address):
    """IPv4-mapped as dotted IPv4, the rest as inet_ntop/ipaddress do (the compiled path
    leaves the IPv4-compatible forms to Python)."""
    layout = (("address", L.IP),)
    compiled = L.compile_layout(layout)
    speedups.install([compiled])
    body = L.ip_from_text(address)
    fast = compiled.fast(body, 0, 16)
    slow = compiled._decode(body, 0, 16, [])
    ipv4_compatible = body[:12] == bytes(12) and body != bytes(16)
    assert fast == (None if ipv4_compatible else slow)


@needs_extension
def test_ipv4_addresses_are_written_as_python_writes_them():
    """Every octet value in every place, as IPv4 and IPv4-mapped IPv6 (written by hand in C,
    not by snprintf)."""
    v4 = L.compile_layout((("address", L.IPV4),))
    v6 = L.compile_layout((("address", L.IP),))
    speedups.install([v4, v6])
    for octet in range(256):
        for place in range(4):
            body = bytes(place) + bytes([octet]) + bytes([octet ^ 0x5A] * (3 - place))
            assert v4.fast(body, 0, 4) == v4._decode(body, 0, 4, [])
            mapped = bytes(10) + b"\xff\xff" + body
            assert v6.fast(mapped, 0, 16) == v6._decode(mapped, 0, 16, [])


@needs_extension
@pytest.mark.parametrize("text", [b"", b"\x00", b"plain\x00", b"a\x00b\x00", b"\xff\xfe\x00",
                                  "é✓".encode() + b"\x00", b"\xed\xa0\x80\x00", b"\x00\x00x"])
def test_wire_text_is_read_as_python_reads_it(text):
    layout = (("name", L.STR), ("after", L.U8))
    compiled = L.compile_layout(layout)
    speedups.install([compiled])
    body = L.STR.encode("", {})[:4] + (8 + len(text)).to_bytes(4, "big") + text + b"\x07"
    fast = compiled.fast(body, 0, len(body))
    slow = compiled._decode(body, 0, len(body), [])
    try:
        text.replace(b"\x00", b"").decode()
    except UnicodeDecodeError:  # shown as hex: Python's rule, so Python's to apply
        assert fast is None
    else:
        assert fast == slow


FUZZ = settings(max_examples=int(os.environ.get("ESTREAMER_FUZZ_EXAMPLES", "300")),
                deadline=None, suppress_health_check=[HealthCheck.too_slow])


@needs_extension
@FUZZ
@given(st.data())
def test_damaged_records_decode_the_same_both_ways(data):
    """Any damage (a byte, a length word, a cut) gives the same Record both ways: the
    compiled path either decodes it exactly as Python does, or leaves it to Python."""
    raw = bytearray(data.draw(st.sampled_from(_real_records())))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        if data.draw(st.booleans()):
            raw[at] = data.draw(st.integers(0, 255))
        else:
            word = data.draw(st.integers(0, 2**32 - 1) | st.sampled_from([0, 8, 0xFFFFFFFF]))
            raw[at:at + 4] = word.to_bytes(4, "big")[: len(raw) - at]
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    assert_same(*both_ways(bytes(raw)))


@pytest.mark.parametrize("output_format", ["json", "splunk", "cef", "ecs"])
def test_without_the_extensions_the_same_lines_are_written(tmp_path, output_format):
    """ESTREAMER_PURE_PYTHON=1 (as a machine without a compiler): no compiled decoder, names
    or Splunk writer, and `estreamer decode` of the emulator's stream prints the same
    lines in every format."""
    from benchmarks.streams import server_stream

    data, _ = server_stream(300)
    stream = tmp_path / "stream.bin"
    stream.write_bytes(data)
    outputs = []
    for pure in ("", "1"):
        env = {**os.environ, "ESTREAMER_PURE_PYTHON": pure}
        if not pure:
            env.pop("ESTREAMER_PURE_PYTHON")
        result = subprocess.run(
            [sys.executable, "-c",
             "import sys; from estreamer.protocol import speedups; "
             "from estreamer import decorate; from estreamer.formats import splunk; "
             "print(speedups.AVAILABLE, decorate.Namer is not None, splunk.AVAILABLE, "
             "file=sys.stderr); "
             "from estreamer.cli import main; "
             "sys.exit(main(['decode', '--format', sys.argv[2], sys.argv[1]]))",
             str(stream), output_format],
            capture_output=True, env=env, cwd=ROOT, check=True)
        outputs.append(result)
    assert outputs[1].stderr.split()[:3] == [b"False"] * 3
    assert outputs[0].stdout == outputs[1].stdout
    assert outputs[0].stdout.count(b"\n") > 300
