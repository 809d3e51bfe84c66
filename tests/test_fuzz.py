"""Property-based fuzzing of the decoder: whatever the bytes, only the project's own
errors come out, and valid streams survive any chunking. `./run fuzz SECONDS` runs a
longer campaign (ESTREAMER_FUZZ_SECONDS); the test suite runs a short one."""

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from estreamer.errors import ProtocolError
from estreamer.protocol.framing import Frame
from estreamer.protocol.messages import encode_bundle, parse_frame
from estreamer.protocol.records import decode_record
from estreamer.protocol.stream import StreamDecoder
from estreamer.protocol.tables import RECORDS

LONG = int(os.environ.get("ESTREAMER_FUZZ_SECONDS", "0"))
EXAMPLES = 20000 if LONG else 300
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))

record_types = st.sampled_from([*sorted(RECORDS), 9999])


@st.composite
def record_bytes(draw):
    """A record header that is plausible (known type, consistent length) over random data,
    so the fuzzer reaches the layouts instead of stopping at the header check."""
    record_type = draw(record_types)
    data = draw(st.binary(max_size=400))
    extended = draw(st.booleans())
    header = record_type.to_bytes(4, "big") + len(data).to_bytes(4, "big")
    if extended:
        header += draw(st.integers(0, 2**32 - 1)).to_bytes(4, "big") + b"\0\0\0\0"
    return header + data


@FUZZ
@given(record_bytes())
def test_decode_record_never_raises(raw):
    record = decode_record(raw)
    assert record.error is not None or record.fields is not None
    record.to_dict()


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes_only_raise_protocol_errors(data):
    try:
        for event in StreamDecoder(max_body=1 << 16).feed(data):
            assert event is not None
    except ProtocolError:
        pass


@FUZZ
@given(st.sampled_from([0, 1, 2, 4, 2049, 2051, 4002, 77]), st.binary(max_size=300))
def test_any_body_for_any_message_type(message_type, body):
    try:
        parse_frame(Frame(message_type, body, 0))
    except ProtocolError:
        pass


@FUZZ
@given(st.lists(record_bytes(), max_size=6), st.lists(st.integers(1, 64), min_size=1))
def test_bundles_survive_any_chunking(records, steps):
    data = encode_bundle(1, 1, records)
    decoder = StreamDecoder()
    events = []
    pos = i = 0
    while pos < len(data):
        step = steps[i % len(steps)]
        events.extend(decoder.feed(data[pos : pos + step]))
        pos += step
        i += 1
    decoded = [e for e in events if hasattr(e, "record_type")]
    assert len(decoded) == len(records)


# -- hostile lengths inside real records --------------------------------------------------
# Real records from the emulator's history (nested blocks, list blocks, strings), with one
# 32-bit word replaced: block and list lengths that claim more than their parent, lengths
# near 2^32, zero and sub-header lengths; bytes replaced to break UTF-8. Only decode errors
# on the record may come out, and memory stays bounded (no allocation sized by a claim).

_HISTORY = None


def _real_records() -> list[bytes]:
    global _HISTORY
    if _HISTORY is None:
        from estreamer.emulator.history import History

        history = History(seed=4, size=40, rate=0)
        _HISTORY = [history.render(r) for r in history.metadata[:40]]
        _HISTORY += [history.render(r, None, True) for r in history.events
                     if r.family in ("packet", "extra_data")]
        from estreamer.emulator.session import select
        from estreamer.protocol.flags import LATEST_EVENTS

        selection = select(0, LATEST_EVENTS)
        for r in history.events:
            wanted, block = selection.block_of(r)
            if wanted and block is not None:
                _HISTORY.append(history.render(r, block, True))
    return _HISTORY


HOSTILE_WORDS = st.sampled_from([0, 1, 7, 8, 9, 0x7FFFFFFF, 0x80000000, 0xFFFFFFF8,
                                 0xFFFFFFFF, 0xFFFFFFF7]) | st.integers(0, 2**32 - 1)


@FUZZ
@given(st.data())
def test_hostile_length_words_cost_the_record_only(data):
    import tracemalloc

    records = _real_records()
    raw = bytearray(data.draw(st.sampled_from(records)))
    position = data.draw(st.integers(8, max(8, len(raw) - 4)))
    word = data.draw(HOSTILE_WORDS)
    if data.draw(st.booleans()):
        # A claim just past the parent: the bytes left from here, plus a little.
        word = len(raw) - position + data.draw(st.integers(1, 16))
    raw[position:position + 4] = word.to_bytes(4, "big")[: len(raw) - position]
    tracemalloc.start()
    try:
        record = decode_record(bytes(raw))
        record.to_dict()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert record.error is not None or record.fields is not None
    assert peak < 64 * len(raw) + (1 << 20), f"{peak} bytes for a {len(raw)}-byte record"


@FUZZ
@given(st.data())
def test_invalid_utf8_anywhere_is_kept_not_fatal(data):
    raw = bytearray(data.draw(st.sampled_from(_real_records())))
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(16, max(16, len(raw) - 1)))
        if at < len(raw):
            raw[at] = data.draw(st.sampled_from([0xFF, 0xFE, 0xC0, 0xED, 0x80]))
    record = decode_record(bytes(raw))
    record.to_dict()


@pytest.mark.parametrize("length", [2**32 - 1, 2**32 - 8, 2**31, (16 << 20) + 1])
def test_message_length_near_2_32_is_refused_before_any_allocation(length):
    import tracemalloc

    header = (1).to_bytes(2, "big") + (4002).to_bytes(2, "big") + length.to_bytes(4, "big")
    tracemalloc.start()
    try:
        events = list(StreamDecoder().feed(header + b"\0" * 64))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    [fault] = events
    assert fault.fatal and f"claims a {length}-byte body" in fault.message
    assert peak < 1 << 20


@FUZZ
@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4), st.binary(max_size=64))
def test_bundle_items_claiming_near_2_32_are_contained(claims, tail):
    body = (1).to_bytes(4, "big") + (1).to_bytes(4, "big")
    for claim in claims:
        body += (71).to_bytes(4, "big") + claim.to_bytes(4, "big") + tail
    frame = (1).to_bytes(2, "big") + (4002).to_bytes(2, "big") + len(body).to_bytes(4, "big")
    try:
        for event in StreamDecoder().feed(frame + body):
            assert event is not None
    except ProtocolError:
        pass
