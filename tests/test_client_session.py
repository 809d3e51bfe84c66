"""The client's session state machine, driven with bytes (no sockets)."""

from estreamer.client.protocol import (
    BundleReceived,
    ClientSession,
    ServerError,
    SessionFailed,
    State,
)
from estreamer.protocol.flags import ENCORE_6X_EVENTS, ENCORE_DEFAULT_FLAGS, RequestFlags
from estreamer.protocol.framing import encode_frame
from estreamer.protocol.messages import (
    encode_bundle,
    encode_error,
    encode_event_data,
    encode_null,
    encode_streaming_information,
    encode_streaming_request,
)
from estreamer.protocol.records import Record, encode_record

DEVICE = encode_record(123, {"id": 1, "name": "sensor"})
EVENT = encode_record(123, {"id": 2, "name": "other"}, archive_timestamp=1700000000)


def test_extended_handshake_sends_2049_then_null_as_encore_does():
    session = ClientSession(0, ENCORE_DEFAULT_FLAGS, ENCORE_6X_EVENTS)
    assert session.start().hex() == "00010002000000080000000048900061"
    assert session.state is State.AWAITING_INFORMATION
    assert session.receive(encode_streaming_information()) == []
    sent = session.data_to_send()
    assert (
        sent == encode_streaming_request(ENCORE_DEFAULT_FLAGS, 0, ENCORE_6X_EVENTS) + encode_null()
    )
    assert session.state is State.STREAMING


def test_plain_request_streams_at_once():
    session = ClientSession(0xFFFFFFFF, ENCORE_DEFAULT_FLAGS & ~RequestFlags.EXTENDED)
    assert session.start().hex() == "0001000200000008ffffffff08900061"
    assert session.state is State.STREAMING


def test_one_null_per_bundle_and_per_event_data_none_for_keepalives():
    session = ClientSession(0, ENCORE_DEFAULT_FLAGS, ENCORE_6X_EVENTS)
    session.start()
    session.receive(encode_streaming_information())
    session.data_to_send()
    data = encode_bundle(7, 1, [DEVICE, EVENT]) + encode_null() + encode_event_data(DEVICE)
    # Byte-at-a-time delivery must not change what comes out.
    events = [e for b in data for e in session.receive(bytes([b]))]
    records = [e for e in events if isinstance(e, Record)]
    assert [r.fields["id"] for r in records] == [1, 2, 1]
    assert records[1].archive_timestamp == 1700000000 and records[1].digest
    assert BundleReceived(7, 1, 2) in events
    assert session.data_to_send() == encode_null() * 2
    assert session.keepalives == 1


def test_server_error_ends_the_session():
    session = ClientSession(0, ENCORE_DEFAULT_FLAGS)
    session.start()
    events = session.receive(encode_error(-1, "Invalid request"))
    assert events == [ServerError(-1, "Invalid request")]
    assert session.state is State.CLOSED


def test_missing_estreamer_service_is_a_clear_failure():
    session = ClientSession(0, ENCORE_DEFAULT_FLAGS)
    session.start()
    [event] = session.receive(encode_streaming_information([5000, 5001]))
    assert isinstance(event, SessionFailed)
    assert event.reason == (
        "the server does not offer the eStreamer service (6667); it offered: 5000, 5001"
    )


def test_absurd_length_fails_the_session():
    session = ClientSession(0, ENCORE_DEFAULT_FLAGS, max_body=1000)
    session.start()
    events = session.receive(b"\x00\x01\x0f\xa2\x7f\xff\xff\xff")
    assert isinstance(events[-1], SessionFailed)
    assert "over the 1000-byte limit" in events[-1].reason
    assert session.receive(encode_null()) == []


def test_unexpected_message_is_a_notice_not_a_crash():
    session = ClientSession(0, ENCORE_DEFAULT_FLAGS & ~RequestFlags.EXTENDED)
    session.start()
    [event] = session.receive(encode_frame(77, b"xyz"))
    assert "UnknownMessage" in event.message
