"""The emulator's history and sans-IO server session, driven with bytes from the protocol
module's own encoders and read back with its StreamDecoder."""

from __future__ import annotations

import struct
from collections import Counter

import pytest

from estreamer.emulator.faults import UNKNOWN_RECORD_TYPE, Fault
from estreamer.emulator.history import (
    BLOCK_VERSIONS,
    EVENT_RECORDS,
    NO_REFERENCE,
    REFERENCES,
    History,
    available_blocks,
    block_for,
)
from estreamer.emulator.session import ServerSession, State, describe_request, select
from estreamer.errors import ConfigError
from estreamer.protocol.flags import (
    ENCORE_6X_EVENTS,
    ENCORE_DEFAULT_FLAGS,
    LATEST_EVENTS,
    TIMESTAMP_NOW,
    EventCode,
    RequestFlags,
)
from estreamer.protocol.framing import encode_frame
from estreamer.protocol.messages import (
    ErrorMessage,
    MessageBundle,
    StreamingInformation,
    encode_event_stream_request,
    encode_null,
    encode_streaming_request,
)
from estreamer.protocol.records import Record, decode_record, record_digest
from estreamer.protocol.stream import Notice, StreamDecoder, StreamFault

END = 1_700_000_000
EVENT_TYPES = {t for types in EVENT_RECORDS.values() for t in types}
# Families with one block form (no version): discovery 61, user 91, correlation 31, impact
# alerts 131 (bit 5), and connection chunks, which ride with connections.
UNVERSIONED = {"discovery": None, "user": None, "correlation": None, "impact": None,
               "connection_chunk": None}
F = RequestFlags


@pytest.fixture(scope="module")
def history() -> History:
    return History(seed=7, size=150, end_time=END)


def stream(history: History, flags: int, timestamp: int = 0, events=(), *,
           bundle_records: int = 40, faults=(), session_number: int = 1):
    """Run one session to the end of the history. Returns (session, first reply, outgoing
    bundles, decoded events of everything the server sent)."""
    session = ServerSession(history, connection_id=END + 5, bundle_records=bundle_records,
                            faults=faults, session_number=session_number)
    reply = session.receive(encode_event_stream_request(timestamp, flags))
    wire = bytearray(reply)
    if flags & F.EXTENDED and not session.closed:
        assert session.state is State.AWAIT_STREAMING_REQUEST
        wire += session.receive(encode_streaming_request(flags, timestamp, events)
                                + encode_null())
    bundles = []
    while (bundle := session.next_bundle()) is not None:
        bundles.append(bundle)
        wire += bundle.data
        if bundle.close_after:
            break
    decoder = StreamDecoder()
    decoded = decoder.feed(bytes(wire)) + decoder.close()
    return session, reply, bundles, decoded


def records_of(decoded) -> list[Record]:
    return [e for e in decoded if isinstance(e, Record)]


def clean(decoded) -> None:
    problems = [e for e in decoded if isinstance(e, (StreamFault, Notice))]
    problems += [r for r in records_of(decoded) if r.error or r.notes]
    assert problems == []


# -- handshake -----------------------------------------------------------------------------


def test_extended_request_gets_the_fmc_form_of_2051_then_streams_after_2049(history):
    session = ServerSession(history, connection_id=END)
    reply = session.receive(encode_event_stream_request(0, ENCORE_DEFAULT_FLAGS))
    # CAP: three services, each with length 8 counted after type and length, 6667 last.
    assert reply == bytes.fromhex(
        "0001 0803 00000030"
        " 00001389 00000008 00000000 00000000"
        " 00001388 00000008 00000000 00000000"
        " 00001a0b 00000008 00000000 00000000".replace(" ", "")
    )
    assert session.state is State.AWAIT_STREAMING_REQUEST
    assert session.next_bundle() is None  # nothing before the 2049
    assert session.receive(encode_streaming_request(ENCORE_DEFAULT_FLAGS, 0, ENCORE_6X_EVENTS)
                           + encode_null()) == b""
    assert session.state is State.STREAMING
    assert session.acks == 1


def test_encore_2049_bytes_from_the_seed_are_accepted(history):
    seed_2049 = bytes.fromhex(
        "000108010000003800001a0b0000003848900061000000000009000c000400150009001f000b003d"
        "000e00470004005b000700650006006f0002008300000000"
    )
    session = ServerSession(history, connection_id=END)
    session.receive(encode_event_stream_request(0, 0x48900061))
    session.receive(seed_2049)
    assert session.streaming
    # Discovery (61), user (91) and correlation (31) carry one block form each: no version.
    assert session.selection.blocks == {"intrusion": 60, "connection": 160, "malware": 62,
                                        "file": 56, **UNVERSIONED}


def test_guide_style_service_length_is_accepted_too(history):
    # G53 p61: the service length counts what follows type and length: flags, timestamp
    # and three event words (two entries and the terminator) = 20, message length 28.
    body = struct.pack(">LLLL", 6667, 20, int(ENCORE_DEFAULT_FLAGS), 0)
    body += struct.pack(">HHHHHH", 4, 21, 14, 71, 0, 0)
    assert len(body) == 28
    session = ServerSession(history, connection_id=END)
    session.receive(encode_event_stream_request(0, ENCORE_DEFAULT_FLAGS))
    session.receive(encode_frame(2049, body))
    assert session.streaming
    assert session.selection.blocks["connection"] == 160


def test_without_bit_30_the_server_streams_at_once(history):
    _, reply, _, decoded = stream(history, F.INTRUSION | F.METADATA)
    assert reply == b""
    assert not any(isinstance(e, StreamingInformation) for e in decoded)
    assert {r.record_type for r in records_of(decoded)} & EVENT_TYPES == {400}
    clean(decoded)


# -- bundles and headers ---------------------------------------------------------------------


def test_records_come_in_bundles_with_rising_sequence_and_one_connection_id(history):
    _, _, bundles, decoded = stream(history, ENCORE_DEFAULT_FLAGS, 0, ENCORE_6X_EVENTS,
                                    bundle_records=25)
    messages = [e for e in decoded if isinstance(e, MessageBundle)]
    assert [m.sequence for m in messages] == list(range(1, len(messages) + 1))
    assert {m.connection_id for m in messages} == {END + 5}
    assert all(len(m.records) <= 25 for m in messages)
    assert sum(len(m.records) for m in messages) == len(records_of(decoded)) > 150
    # The session's own account matches the bytes it produced.
    sent = [r.digest for b in bundles for r in b.records]
    assert sent == [record_digest(raw) for m in messages for raw in m.records]
    clean(decoded)


def test_bit_23_puts_16_byte_headers_on_events_and_8_byte_on_metadata(history):
    _, _, _, decoded = stream(history, ENCORE_DEFAULT_FLAGS, 0, ENCORE_6X_EVENTS)
    records = records_of(decoded)
    events = [r for r in records if r.record_type in EVENT_TYPES]
    metadata = [r for r in records if r.record_type not in EVENT_TYPES]
    assert events and metadata
    assert all(r.archive_timestamp is not None for r in events)
    assert all(r.archive_timestamp is None for r in metadata)
    # Archive timestamps never go back, and several events share a second.
    times = [r.archive_timestamp for r in events if r.record_type not in (2, 110)]
    assert times == sorted(times)
    assert max(Counter(times).values()) > 1
    assert max(times) < END


def test_without_bit_23_every_header_is_8_bytes(history):
    flags = ENCORE_DEFAULT_FLAGS & ~F.ARCHIVE_TIMESTAMPS
    _, _, bundles, decoded = stream(history, flags, 0, ENCORE_6X_EVENTS)
    assert all(r.archive_timestamp is None for r in records_of(decoded))
    assert all(r.archive_timestamp is None for b in bundles for r in b.records)
    clean(decoded)


def test_metadata_comes_first_and_only_when_asked_for(history):
    _, _, _, decoded = stream(history, ENCORE_DEFAULT_FLAGS, 0, ENCORE_6X_EVENTS)
    kinds = ["event" if r.record_type in EVENT_TYPES else "meta" for r in records_of(decoded)]
    first_event = kinds.index("event")
    assert set(kinds[:first_event]) == {"meta"} and "meta" not in kinds[first_event:]
    assert first_event == len(history.metadata)

    flags = ENCORE_DEFAULT_FLAGS & ~F.METADATA
    events = [e for e in ENCORE_6X_EVENTS if e[1] != EventCode.METADATA]
    _, _, _, decoded = stream(history, flags, 0, events)
    assert {r.record_type for r in records_of(decoded)} <= EVENT_TYPES


# -- initial timestamp -------------------------------------------------------------------------


def test_initial_timestamp_zero_sends_every_event(history):
    _, _, _, decoded = stream(history, ENCORE_DEFAULT_FLAGS, 0, ENCORE_6X_EVENTS)
    events = [r for r in records_of(decoded) if r.record_type in EVENT_TYPES]
    assert len(events) == len(history.events)


def test_initial_timestamp_t_sends_events_archived_at_or_after_t(history):
    # A second shared by several events: a restart from it resends all of them (§3.1).
    shared = Counter(r.archive_timestamp for r in history.events)
    t = next(second for second, n in sorted(shared.items()) if n > 1 and second > END - 60)
    _, _, _, decoded = stream(history, ENCORE_DEFAULT_FLAGS, t, ENCORE_6X_EVENTS)
    records = records_of(decoded)
    events = [r for r in records if r.record_type in EVENT_TYPES]
    expected = [r for r in history.events if r.archive_timestamp >= t]
    assert len(events) == len(expected) > 0
    assert min(r.archive_timestamp for r in events) == t
    assert sum(r.archive_timestamp == t for r in events) == shared[t]
    # Metadata still comes first, whatever the timestamp.
    assert len(records) - len(events) == len(history.metadata)


def test_initial_timestamp_now_sends_only_events_appended_later():
    # Families whose every logical event has exactly one of the counted records below.
    history = History(seed=3, size=40, end_time=END, rate=10,
                      families=("intrusion", "connection", "file", "malware"))
    session = ServerSession(history, connection_id=END)
    session.receive(encode_event_stream_request(TIMESTAMP_NOW, ENCORE_DEFAULT_FLAGS))
    session.receive(encode_streaming_request(ENCORE_DEFAULT_FLAGS, TIMESTAMP_NOW,
                                             LATEST_EVENTS))
    raws = []
    while (bundle := session.next_bundle()) is not None:
        raws += [r for r in bundle.records]
    assert {r.record_type for r in raws} & EVENT_TYPES == set()
    assert len(raws) == len(history.metadata)

    history.advance(END + 100.0)  # starts the live clock
    added = history.advance(END + 101.0)
    assert added == 10
    live = []
    while (bundle := session.next_bundle()) is not None:
        live += bundle.records
    assert len({r.archive_timestamp for r in live}) == 1
    assert live[0].archive_timestamp == END + 101
    assert sum(r.record_type in (400, 71, 500, 502, 125) for r in live) == 10


# -- flags and versions ------------------------------------------------------------------------


def test_packets_only_with_bit_0_and_extra_data_only_with_bit_27(history):
    def types(flags):
        _, _, _, decoded = stream(history, flags, 0, ENCORE_6X_EVENTS)
        clean(decoded)
        return Counter(r.record_type for r in records_of(decoded))

    everything = types(ENCORE_DEFAULT_FLAGS)
    assert everything[2] == everything[400] > 0
    assert everything[110] == everything[400]
    no_packets = types(ENCORE_DEFAULT_FLAGS & ~F.PACKETS)
    assert no_packets[2] == 0 and no_packets[400] == everything[400]
    no_extra = types(ENCORE_DEFAULT_FLAGS & ~F.EXTRA_DATA)
    assert no_extra[110] == 0 and no_extra[2] == everything[2]


def test_packet_follows_its_intrusion_event(history):
    _, _, _, decoded = stream(history, ENCORE_DEFAULT_FLAGS, 0, ENCORE_6X_EVENTS)
    records = records_of(decoded)
    for i, record in enumerate(records):
        if record.record_type == 2:
            event = records[i - 1]
            assert event.record_type == 400
            key = ("device_id", "event_id", "event_second")
            assert [record.fields[k] for k in key] == [event.fields[k] for k in key]
            assert record.archive_timestamp == event.archive_timestamp


def test_highest_requested_version_picks_the_block():
    assert select(ENCORE_DEFAULT_FLAGS, ENCORE_6X_EVENTS).blocks == {
        "intrusion": 60, "connection": 160, "file": 56, "malware": 62, **UNVERSIONED}
    assert select(ENCORE_DEFAULT_FLAGS, LATEST_EVENTS).blocks == {
        "intrusion": 85, "connection": 174, "file": 79, "malware": 80, **UNVERSIONED}
    # The same family asked for twice: the highest version wins (§1).
    both = select(0, [(14, EventCode.CONNECTION), (17, EventCode.CONNECTION)])
    assert both.blocks == {"connection": 174, "connection_chunk": None}
    # A flag names no version: the oldest block; a version between rows takes the lower.
    assert select(F.INTRUSION | F.CONNECTION_V4).blocks == {
        "intrusion": 60, "connection": 160, "connection_chunk": None}
    # Impact alerts come with bit 5 or event code 131, never with intrusion alone.
    assert "impact" in select(F.IMPACT_ALERTS).blocks
    assert "impact" in select(0, [(2, EventCode.IMPACT)]).blocks
    assert "impact" not in select(F.INTRUSION).blocks
    assert block_for("connection", 15) == 163
    assert block_for("connection", 99) == 174
    assert block_for("intrusion", 1) == 60


def test_latest_versions_render_the_7x_blocks(history):
    _, _, _, decoded = stream(history, ENCORE_DEFAULT_FLAGS, 0, LATEST_EVENTS)
    clean(decoded)
    blocks = {(r.record_type, r.fields["block_type"]) for r in records_of(decoded)
              if r.record_type in (400, 71, 500, 502, 125)}
    # File malware events (502) are rare in a short history; whichever file records it holds
    # are block 79.
    assert blocks - {(502, 79)} == {(400, 85), (71, 174), (500, 79), (125, 80)}


def test_families_not_requested_are_not_sent(history):
    events = [(14, EventCode.CONNECTION), (4, EventCode.METADATA)]
    flags = F.METADATA | F.ARCHIVE_TIMESTAMPS | F.EXTENDED | F.PACKETS
    _, _, _, decoded = stream(history, flags, 0, events)
    # Connection chunks (73) ride with connections: no flag or event code of their own.
    assert {r.record_type for r in records_of(decoded)} & EVENT_TYPES == {71, 73}


# -- the history ---------------------------------------------------------------------------------


def test_every_event_decodes_in_every_block_version_with_its_values(history):
    for record in history.events:
        versioned = record.family in BLOCK_VERSIONS
        blocks = [b for _, b in available_blocks(record.family)] if versioned else [None]
        for block in blocks:
            for archive in (False, True):
                raw = history.render(record, block, archive)
                decoded = decode_record(raw)
                assert decoded.error is None, (record.record_type, block, decoded.error)
                assert decoded.notes == [], (record.record_type, block)
                assert decoded.archive_timestamp == (record.archive_timestamp if archive
                                                     else None)
                for name, value in decoded.fields.items():
                    if name in record.fields and name != "block_type":
                        assert value == record.fields[name], (record.record_type, block, name)


def test_every_metadata_record_decodes(history):
    assert {123, 115, 116, 145, 119, 120, 4, 67, 66, 63, 55, 109, 98, 520, 118, 700,
            510, 128, 129} <= {r.record_type for r in history.metadata}
    for record in history.metadata:
        decoded = decode_record(history.render(record, archive=True))
        assert decoded.error is None and decoded.notes == []
        assert decoded.archive_timestamp is None


def test_every_reference_in_an_event_was_named_by_earlier_metadata(history):
    _, _, _, decoded = stream(history, ENCORE_DEFAULT_FLAGS, 0, LATEST_EVENTS)
    seen: set[tuple[int, str, object]] = set()
    checked = Counter()
    for record in records_of(decoded):
        if record.record_type not in EVENT_TYPES:
            seen.update((record.record_type, k, v) for k, v in record.fields.items())
            continue
        for name, value in record.fields.items():
            ref = REFERENCES.get(name)
            if ref is None or value in NO_REFERENCE:
                continue
            assert (ref[0], ref[1], value) in seen, (record.record_type, name, value)
            checked[name] += 1
        if record.record_type == 400:
            assert (66, "rule_id", record.fields["rule_id"]) in seen
    # The check is not vacuous: the common references were really exercised.
    for name in ("device_id", "access_control_rule_id", "ingress_zone_uuid", "user_id",
                 "classification_id", "priority_id", "intrusion_policy_uuid",
                 "file_type_id", "application_id", "destination_country"):
        assert checked[name] > 0, name


def test_history_is_reproducible_from_its_seed():
    def digests(seed):
        h = History(seed=seed, size=60, end_time=END)
        return [record_digest(h.render(r, None, True)) for r in h.metadata + h.events]

    assert digests(11) == digests(11)
    assert digests(11) != digests(12)


# -- bad input and faults ------------------------------------------------------------------------


@pytest.mark.parametrize("garbage", [
    b"\x00\x01\x00\x4d\x00\x00\x00\x00",  # unknown message type 77
    b"\x00\x07\x00\x02\x00\x00\x00\x08" + bytes(8),  # header version 7
    b"\x00\x01\x00\x02\x00\x00\x00\x03abc",  # Event Stream Request of 3 bytes
    b"\x00\x01\xff\xff\x7f\xff\xff\xff",  # a 2 GiB length word
    encode_frame(2049, b""),  # a 2049 with no Event Stream Request before it
    encode_frame(4, b"\x00" * 8),  # Event Data from a client
])
def test_garbage_gets_an_error_message_and_the_session_closes(history, garbage):
    session = ServerSession(history, connection_id=END)
    reply = session.receive(garbage)
    decoded = StreamDecoder().feed(reply)
    assert len(decoded) == 1 and isinstance(decoded[0], ErrorMessage)
    assert decoded[0].code == 1 and decoded[0].text
    assert session.closed and session.next_bundle() is None
    assert session.receive(encode_null()) == b""


def test_a_legacy_host_data_request_is_refused_as_unsupported(history):
    # Data type 0 asks for a 3.5-4.6 profile; the emulator answers 5.0+ types 6 and 7 only.
    session = ServerSession(history, connection_id=END)
    session.receive(encode_event_stream_request(0, F.METADATA))
    [error] = StreamDecoder().feed(session.receive(encode_frame(5, bytes(40))))
    assert isinstance(error, ErrorMessage) and error.code == 2
    assert "data type 0" in error.text and session.closed


def test_a_2049_without_service_6667_is_refused(history):
    session = ServerSession(history, connection_id=END)
    session.receive(encode_event_stream_request(0, ENCORE_DEFAULT_FLAGS))
    reply = session.receive(encode_streaming_request(0, 0, [(4, 21)], service_id=5000))
    [error] = StreamDecoder().feed(reply)
    assert isinstance(error, ErrorMessage) and "6667" in error.text and session.closed


def test_fault_error_replaces_a_bundle_and_closes(history):
    fault = Fault("error", 2, code=19, text="No space")
    _, _, bundles, decoded = stream(history, ENCORE_DEFAULT_FLAGS, 0, ENCORE_6X_EVENTS,
                                    faults=[fault])
    assert [b.sequence for b in bundles] == [1, None]
    assert bundles[-1].close_after
    errors = [e for e in decoded if isinstance(e, ErrorMessage)]
    assert [(e.code, e.text) for e in errors] == [(19, "No space")]


def test_fault_error_at_bundle_0_answers_the_request(history):
    _, reply, bundles, _ = stream(history, ENCORE_DEFAULT_FLAGS, faults=[Fault("error", 0)])
    [error] = StreamDecoder().feed(reply)
    assert isinstance(error, ErrorMessage) and bundles == []


def test_fault_close_cuts_a_bundle_in_half(history):
    session, _, bundles, decoded = stream(history, ENCORE_DEFAULT_FLAGS, 0, ENCORE_6X_EVENTS,
                                          faults=[Fault("close", 2)])
    assert [b.complete for b in bundles] == [True, False]
    assert bundles[-1].close_after and session.closed
    assert [e.sequence for e in decoded if isinstance(e, MessageBundle)] == [1]
    [fault] = [e for e in decoded if isinstance(e, StreamFault)]
    assert "ended inside a message" in fault.message


@pytest.mark.parametrize("kind", ["unknown-record", "garbage-string", "corrupt-record"])
def test_fault_records_ride_in_the_named_bundle(history, kind):
    _, _, bundles, decoded = stream(history, ENCORE_DEFAULT_FLAGS, 0, ENCORE_6X_EVENTS,
                                    faults=[Fault(kind, 2)])
    injected = [(b.sequence, r.record_type) for b in bundles for r in b.records if r.injected]
    expected_type = UNKNOWN_RECORD_TYPE if kind == "unknown-record" else 98
    assert injected == [(2, expected_type)]
    faults = [e for e in decoded if isinstance(e, StreamFault)]
    notices = [e for e in decoded if isinstance(e, Notice)]
    odd = [r for r in records_of(decoded) if r.record_type == expected_type
           and r.fields.get("id", 999_999) == 999_999]
    if kind == "unknown-record":
        assert [n.key for n in notices] == [f"record:{UNKNOWN_RECORD_TYPE}"] and faults == []
    elif kind == "garbage-string":
        assert faults == [] and notices == []
        # Not UTF-8: kept, shown as hex the way eNcore shows it (NUL dropped).
        assert odd[0].fields["name"] == b"\xff\xfe\xc3(garbage".hex()
    else:
        assert len(faults) == 1 and "record type 98" in faults[0].message and notices == []
    # Every other record is intact and the stream goes on after the bad one.
    assert sum(isinstance(e, MessageBundle) for e in decoded) == len(bundles) > 2


def test_faults_fire_only_in_their_session(history):
    _, _, bundles, _ = stream(history, ENCORE_DEFAULT_FLAGS, 0, ENCORE_6X_EVENTS,
                              faults=[Fault("close", 1)], session_number=2)
    assert all(b.complete for b in bundles) and len(bundles) > 2
    _, _, bundles, _ = stream(history, ENCORE_DEFAULT_FLAGS, 0, ENCORE_6X_EVENTS,
                              faults=[Fault("close", 1, session=None)], session_number=2)
    assert [b.complete for b in bundles] == [False]


def test_fault_specs_parse():
    assert Fault.parse("close@3") == Fault("close", 3, 1)
    assert Fault.parse("error@0/*") == Fault("error", 0, None)
    assert Fault.parse("unknown-record/2") == Fault("unknown-record", 1, 2)
    for bad in ("explode@1", "close@x", "close@0"):
        with pytest.raises(ConfigError):
            Fault.parse(bad)


def test_request_description_matches_the_fmc_log_lines():
    # SEED 001, the FMC's own log of eNcore's default request, extended and not.
    assert describe_request(0x48900061, ENCORE_6X_EVENTS) == (
        "NS Events w/ NS 6.0 Events w/ Packets w/ Extra IDS Event data w/ Metadata v4 w/ "
        "RUA 5.2 Events w/ Impact Alerts w/ 5.3 Impact Alerts w/ Impact Flags w/ RNA 5.3 "
        "Events w/ RNA 6.0 Flow w/ Policy 5.4 Events w/ FireAMP 6.0 Events w/ Filelog 6.0 "
        "Events w/ Send archive timestamp w/ Send Detail Request"
    )
    assert describe_request(0x08900061) == (
        "NS Events w/ Packets w/ Extra IDS Event data w/ Metadata v4 w/ Impact Alerts w/ "
        "Impact Flags w/ Send archive timestamp"
    )
