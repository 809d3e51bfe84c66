"""Property-based fuzzing of the decoder: whatever the bytes, only the project's own
errors come out, and valid streams survive any chunking. `./run fuzz SECONDS` runs a
longer campaign (ESTREAMER_FUZZ_SECONDS); the test suite runs a short one."""

import os

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
