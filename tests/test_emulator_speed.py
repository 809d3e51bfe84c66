"""The emulator's fast path: each record is encoded once per (block type, archive flag) and
its bytes and ledger row reused by every later session, and the bytes stay exactly what an
encoding from scratch gives (the same records, bundles and ledger rows as before the cache)."""

from __future__ import annotations

import pytest

from estreamer.emulator import history as history_module
from estreamer.emulator.faults import Fault
from estreamer.emulator.history import History
from estreamer.emulator.ledger import Ledger, SentRecord
from estreamer.emulator.session import ServerSession, select
from estreamer.protocol.flags import ENCORE_DEFAULT_FLAGS, LATEST_EVENTS, RequestFlags
from estreamer.protocol.messages import (
    encode_bundle,
    encode_event_stream_request,
    encode_null,
    encode_streaming_request,
)
from estreamer.protocol.records import encode_record, record_digest

END = 1_700_000_000
F = RequestFlags
REQUESTS = {
    "eNcore default, latest versions": (ENCORE_DEFAULT_FLAGS | F.EXTENDED, LATEST_EVENTS),
    "flags only": (ENCORE_DEFAULT_FLAGS, ()),
    "no archive timestamps": (
        (ENCORE_DEFAULT_FLAGS & ~F.ARCHIVE_TIMESTAMPS) | F.EXTENDED, LATEST_EVENTS),
    "connections v14 and metadata": (
        F.EXTENDED | F.METADATA | F.ARCHIVE_TIMESTAMPS, ((14, 71), (4, 21))),
}


@pytest.fixture(scope="module")
def history() -> History:
    return History(seed=11, size=400, end_time=END, archive_offset=2)


def run(history: History, flags: int, events=(), *, bundle_records: int = 37,
        faults=(), session_number: int = 1):
    session = ServerSession(history, connection_id=END, bundle_records=bundle_records,
                            faults=faults, session_number=session_number)
    session.receive(encode_event_stream_request(0, flags))
    if flags & F.EXTENDED:
        session.receive(encode_streaming_request(flags, 0, events) + encode_null())
    bundles = []
    while (bundle := session.next_bundle()) is not None:
        bundles.append(bundle)
        if bundle.close_after:
            break
    return bundles


def from_scratch(history: History, flags: int, events, bundle_records: int) -> list[bytes]:
    """The bundles as the session built them before the cache: metadata first, then every
    wanted event in the block its family was asked in, each encoded anew."""
    selection = select(flags, events)
    raws = [encode_record(r.record_type, dict(r.fields)) for r in history.metadata
            if selection.metadata]
    for record in history.events:
        wanted, block = selection.block_of(record)
        if wanted:
            values = dict(record.fields)
            if block is not None:
                values["block_type"] = block
            timestamp = record.archive_timestamp + history.archive_offset \
                if selection.archive_timestamps else None
            raws.append(encode_record(record.record_type, values, timestamp))
    return [encode_bundle(END, n // bundle_records + 1, raws[n:n + bundle_records])
            for n in range(0, len(raws), bundle_records)]


@pytest.mark.parametrize("request_name", REQUESTS)
def test_cached_bytes_are_what_encoding_from_scratch_gives(history, request_name):
    flags, events = REQUESTS[request_name]
    expected = from_scratch(history, flags, events, 37)
    for _pass in ("cold", "warm"):
        bundles = run(history, flags, events)
        assert [b.data for b in bundles] == expected
        assert [b.sequence for b in bundles] == list(range(1, len(expected) + 1))


def test_ledger_rows_describe_the_bytes_sent(history):
    flags, events = REQUESTS["eNcore default, latest versions"]
    for bundle in run(history, flags, events, bundle_records=100):
        body = bundle.data[16:]
        raws = []
        while body:
            length = int.from_bytes(body[4:8], "big")
            raws.append(body[8:8 + length])
            body = body[8 + length:]
        assert bundle.records == tuple(SentRecord.of(raw) for raw in raws)
        assert [r.digest for r in bundle.records] == [record_digest(raw) for raw in raws]


def test_a_warm_session_encodes_nothing(monkeypatch):
    history = History(seed=3, size=200, end_time=END)
    flags, events = REQUESTS["eNcore default, latest versions"]
    cold = run(history, flags, events)

    def refuse(*_args, **_kwargs):
        raise AssertionError("encoded again")

    monkeypatch.setattr(history_module, "encode_record", refuse)
    warm = run(history, flags, events, session_number=2)
    assert [b.data for b in warm] == [b.data for b in cold]
    assert [b.records for b in warm] == [b.records for b in cold]


def test_past_the_cache_cap_records_are_encoded_each_time_with_the_same_bytes(monkeypatch):
    monkeypatch.setattr(history_module, "RENDER_CACHE_ENTRIES", 50)
    history = History(seed=3, size=200, end_time=END)
    flags, events = REQUESTS["eNcore default, latest versions"]
    first, second = run(history, flags, events), run(history, flags, events)
    assert [b.data for b in first] == [b.data for b in second]
    assert len(history._rendered) == 50
    assert [b.data for b in first] == from_scratch(history, flags, events, 37)


def test_injected_records_still_come_marked_in_the_middle_of_a_warm_bundle(history):
    flags, events = REQUESTS["eNcore default, latest versions"]
    run(history, flags, events)  # warm the cache
    plain = run(history, flags, events)
    faulty = run(history, flags, events, faults=(Fault("unknown-record", bundle=2),))
    assert [b.data for b in faulty[:1]] == [b.data for b in plain[:1]]
    injected = [r for r in faulty[1].records if r.injected]
    assert len(injected) == 1 and faulty[1].records.index(injected[0]) == 37 // 2
    assert [r for r in faulty[1].records if not r.injected] == list(plain[1].records)


def test_ledger_expands_bundles_into_entries_in_send_order():
    ledger = Ledger()
    a, b = SentRecord(71, 5, "aa"), SentRecord(98, None, "bb", injected=True)
    ledger.append(2, 1, (a, b))
    ledger.append(1, 1, [a])
    ledger.append(2, 2, iter([a]))  # any iterable, read once
    assert len(ledger) == 4
    assert ledger.sessions() == [1, 2]
    assert ledger.digests() == ["aa", "bb", "aa", "aa"]
    assert ledger.digests(2, injected=False) == ["aa", "aa"]
    assert [(e.session_id, e.sequence, e.record_type, e.archive_timestamp, e.injected)
            for e in ledger.entries(2)] == [(2, 1, 71, 5, False), (2, 1, 98, None, True),
                                            (2, 2, 71, 5, False)]
