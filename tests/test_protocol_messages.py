"""Message encoders/decoders, pinned to real bytes from the seeds (eNcore ↔ FMC captures)."""

from pathlib import Path

import pytest

from estreamer.errors import DecodeError
from estreamer.protocol.flags import (
    ENCORE_6X_EVENTS,
    ENCORE_DEFAULT_FLAGS,
    TIMESTAMP_NOW,
    EventCode,
    RequestFlags,
)
from estreamer.protocol.framing import Frame, Framer
from estreamer.protocol.messages import (
    ErrorMessage,
    EventStreamRequest,
    MessageBundle,
    Null,
    StreamingInformation,
    StreamingRequest,
    encode_bundle,
    encode_error,
    encode_event_stream_request,
    encode_null,
    encode_streaming_information,
    encode_streaming_request,
    parse_frame,
)

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"

# SEED 001 line 103 (eNcore 3.x, bookmark 0) and line 554 (bookmark 1591210934).
SEED_REQUEST = "00010002000000080000000048900061"
SEED_REQUEST_BOOKMARKED = "00010002000000085ed7f3b648900061"
SEED_REQUEST_NOW = "0001000200000008ffffffff48900061"
# SEED 001 lines 115-117: the 2049 with its nine (version, type) pairs.
SEED_STREAMING_REQUEST = (
    "000108010000003800001a0b0000003848900061000000000009000c000400150009001f000b003d"
    "000e00470004005b000700650006006f0002008300000000"
)
SEED_STREAMING_REQUEST_BOOKMARKED = (
    "000108010000003800001a0b00000038489000615ed7f3b60009000c000400150009001f000b003d"
    "000e00470004005b000700650006006f0002008300000000"
)


def one_message(data: bytes):
    framer = Framer()
    framer.feed(data)
    frame = framer.next_frame()
    assert frame is not None and framer.buffered == 0
    return parse_frame(frame)


def test_encore_default_flags_are_the_seed_value():
    assert int(ENCORE_DEFAULT_FLAGS) == 0x48900061
    assert ENCORE_DEFAULT_FLAGS == (
        RequestFlags.PACKETS
        | RequestFlags.IMPACT_ALERTS
        | RequestFlags.INTRUSION
        | RequestFlags.METADATA
        | RequestFlags.ARCHIVE_TIMESTAMPS
        | RequestFlags.EXTRA_DATA
        | RequestFlags.EXTENDED
    )
    assert int(ENCORE_DEFAULT_FLAGS & ~RequestFlags.EXTENDED) == 0x08900061


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [(0, SEED_REQUEST), (1591210934, SEED_REQUEST_BOOKMARKED), (TIMESTAMP_NOW, SEED_REQUEST_NOW)],
)
def test_event_stream_request_matches_seed_bytes(timestamp, expected):
    wire = encode_event_stream_request(timestamp, ENCORE_DEFAULT_FLAGS)
    assert wire.hex() == expected
    message = one_message(wire)
    assert message == EventStreamRequest(timestamp, ENCORE_DEFAULT_FLAGS)


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [(0, SEED_STREAMING_REQUEST), (1591210934, SEED_STREAMING_REQUEST_BOOKMARKED)],
)
def test_streaming_request_matches_seed_bytes(timestamp, expected):
    wire = encode_streaming_request(ENCORE_DEFAULT_FLAGS, timestamp, ENCORE_6X_EVENTS)
    assert wire.hex() == expected
    message = one_message(wire)
    assert isinstance(message, StreamingRequest)
    service = message.service()
    assert service is not None
    assert service.flags == 0x48900061 and service.initial_timestamp == timestamp
    assert service.events[0] == (9, EventCode.INTRUSION)
    assert service.events[4] == (14, EventCode.CONNECTION)
    assert len(service.events) == 9


def test_seed_text_still_holds_the_pinned_bytes():
    if not SEEDS.is_dir():
        pytest.skip("shared/seeds is not beside this checkout")
    text = "".join((SEEDS / "001_e7421dd50030ff63.txt").read_text().split())
    assert SEED_REQUEST in text
    assert SEED_STREAMING_REQUEST in text
    assert SEED_STREAMING_REQUEST_BOOKMARKED in text


def test_streaming_request_in_the_guides_length_convention_is_accepted():
    # G53 p61: the service length counts only what follows type and length (20 for 3 entries).
    body = bytes.fromhex(
        "00001a0b0000001400000000000000000004 0015 000e 0047 0000 0000".replace(" ", "")
    )
    message = parse_frame(Frame(2049, body, 0))
    assert message.service().events == ((4, 21), (14, 71))


def test_streaming_information_in_the_fmc_form():
    wire = encode_streaming_information()
    # CAP: three services 5001, 5000, 6667, each length 8 with zero flags/timestamp: 48 bytes.
    assert wire[:8].hex() == "0001080300000030"
    message = one_message(wire)
    assert isinstance(message, StreamingInformation)
    assert [s.service_id for s in message.services] == [5001, 5000, 6667]
    assert message.service(6667) is not None


def test_null_and_error():
    assert encode_null().hex() == "0001000000000000"
    assert one_message(encode_null()) == Null()
    # G54 p26 / ENCT: error 19 with the 9-byte text "No space\0".
    wire = bytes.fromhex("000100010000000f000000130009") + b"No space\x00"
    assert one_message(wire) == ErrorMessage(19, "No space")
    assert one_message(encode_error(-1, "bad request")) == ErrorMessage(-1, "bad request")


@pytest.mark.parametrize("text_length", [8, 10, 0])
def test_error_whose_text_length_does_not_fill_the_body_is_refused(text_length):
    body = (19).to_bytes(4, "big") + text_length.to_bytes(2, "big") + b"No space\x00"
    with pytest.raises(DecodeError, match="does not fill"):
        parse_frame(Frame(1, body, 100))


def test_bundle_round_trip_and_item_checks():
    records = [
        bytes.fromhex("0000007b000000080000000100000000"),
        b"\x00\x00\x00\x04\x00\x00\x00\x00",
    ]
    wire = encode_bundle(1607000000, 3, records)
    message = one_message(wire)
    assert isinstance(message, MessageBundle)
    assert (message.connection_id, message.sequence) == (1607000000, 3)
    assert message.records == tuple(records)
    assert message.item_offsets == (24, 24 + 16 + 8)

    bad_type = bytearray(wire)
    bad_type[16:20] = (0x00010005).to_bytes(4, "big")  # a header of another message type
    with pytest.raises(DecodeError, match="expected 4"):
        parse_frame(Frame(4002, bytes(bad_type[8:]), 0))
    too_long = bytearray(wire)
    too_long[20:24] = (999).to_bytes(4, "big")
    with pytest.raises(DecodeError, match="runs past"):
        parse_frame(Frame(4002, bytes(too_long[8:]), 0))


def test_bundle_items_in_the_guides_full_header_form_are_read_too():
    record = bytes.fromhex("0000007b00000008" "0000000100000000")
    confirmed = encode_bundle(9, 1, [record])
    guide_form = bytearray(confirmed)
    guide_form[16:20] = bytes.fromhex("00010004")  # version 1, type 4 instead of u32 4
    message = one_message(bytes(guide_form))
    assert message.records == (record,)
