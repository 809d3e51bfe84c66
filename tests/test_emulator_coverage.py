"""The emulator covers every record type the tables decode: each one comes out of an emulator
stream of a large enough history, decodes with no error and no notes, carries the values the
history encoded from the table, and names every id it refers to once decorated.

One history of 2000 logical events is built per module and streamed twice (the 6.x request
eNcore 3.x sends and the newest 7.x one), so every block version is on the wire once."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from estreamer.coverage import NEVER_SENT_BY_6X_7X
from estreamer.decorate import EVENT_NAMES, RECORD_NAMES, Decorator, Name
from estreamer.emulator.history import BLOCK_VERSIONS, NO_REFERENCE, History, HistoryRecord
from estreamer.emulator.session import ServerSession
from estreamer.protocol.flags import (
    ENCORE_6X_EVENTS,
    ENCORE_DEFAULT_FLAGS,
    LATEST_EVENTS,
    RequestFlags,
)
from estreamer.protocol.layout import LengthOf
from estreamer.protocol.messages import encode_event_stream_request, encode_streaming_request
from estreamer.protocol.records import Record
from estreamer.protocol.stream import Notice, StreamDecoder, StreamFault
from estreamer.protocol.tables import RECORDS

END = 1_700_000_000
SIZE = 2000
SENT = sorted(set(RECORDS) - set(NEVER_SENT_BY_6X_7X))
"""Every record type with a table, except the legacy ones a 6.x/7.x FMC never streams."""

# eNcore's default flags plus user (RUA) events; discovery, correlation and connections come
# from the 2049's event list. The two lists differ in the versions they ask for.
FLAGS = ENCORE_DEFAULT_FLAGS | RequestFlags.USER
REQUESTS = {"6.x": ENCORE_6X_EVENTS, "7.x": LATEST_EVENTS}
ICMP = (1, 58)


@pytest.fixture(scope="module")
def history() -> History:
    return History(seed=5, size=SIZE, end_time=END)


@pytest.fixture(scope="module")
def streams(history) -> dict[str, tuple[ServerSession, list[Any]]]:
    """Per request: the session and everything a client decodes from its bytes."""
    out = {}
    for name, events in REQUESTS.items():
        session = ServerSession(history, connection_id=END, bundle_records=500)
        wire = bytearray(session.receive(encode_event_stream_request(0, FLAGS)))
        wire += session.receive(encode_streaming_request(FLAGS, 0, events))
        while (bundle := session.next_bundle()) is not None:
            wire += bundle.data
        decoder = StreamDecoder()
        out[name] = (session, decoder.feed(bytes(wire)) + decoder.close())
    return out


def records(decoded: list[Any]) -> list[Record]:
    return [item for item in decoded if isinstance(item, Record)]


def test_every_covered_record_type_comes_out_of_the_emulator_cleanly(streams):
    for name, (_, decoded) in streams.items():
        assert [i for i in decoded if isinstance(i, (StreamFault, Notice))] == [], name
        sent = records(decoded)
        assert [(r.record_type, r.error, r.notes) for r in sent if r.error or r.notes] == []
        types = {r.record_type for r in sent}
        assert sorted(set(SENT) - types) == [], f"{name}: the emulator never sent these"
        assert types <= set(SENT), "a legacy record (or one without a table) was sent"


def test_legacy_records_are_the_only_ones_left_out_and_say_why():
    # 104/105 decode (an old archive replays) but a 6.x/7.x FMC sends record 400 instead.
    assert set(NEVER_SENT_BY_6X_7X) == {104, 105} <= set(RECORDS)
    assert all("record 400" in why for why in NEVER_SENT_BY_6X_7X.values())


@pytest.mark.parametrize("record_type", SENT)
def test_record_type_encodes_streams_and_decodes_to_its_values(history, streams, record_type):
    """Encoded from the table (`History.render`), streamed through the emulator's session in
    bundles, decoded by the client's StreamDecoder: every field has the history's value."""
    expected = [r for r in (*history.metadata, *history.events) if r.record_type == record_type]
    assert expected, f"the history holds no record {record_type}"
    for name, (session, decoded) in streams.items():
        got = [r for r in records(decoded) if r.record_type == record_type]
        assert len(got) == len(expected), (name, record_type)
        for want, record in zip(expected, got, strict=True):
            assert record.error is None and record.notes == [], (name, record_type)
            assert record.archive_timestamp == want.archive_timestamp
            _assert_same(want, record, _block(session, want), name)


def _block(session: ServerSession, record: HistoryRecord) -> int | None:
    wanted, block = session.selection.block_of(record)
    assert wanted
    return block


def _assert_same(want: HistoryRecord, record: Record, block: int | None, request: str) -> None:
    fields = dict(record.fields)
    if block is not None:  # a versioned family: the block the request asked for
        assert fields.pop("block_type") == block
        assert want.family in BLOCK_VERSIONS
    where = (request, record.record_type, block)
    # Length words are the encoder's: each must measure the field it announces.
    layout = dict(RECORDS[record.record_type].layout)
    for key, kind in layout.items():
        if isinstance(kind, LengthOf):
            target = fields.pop(key)
            assert target == len(layout[kind.target].raw(want.fields[kind.target])), (
                *where, key)
    assert set(fields) <= set(want.fields), where  # nothing decoded that was not encoded
    for key, value in fields.items():
        assert value == want.fields[key], (*where, key)


# -- names ------------------------------------------------------------------------------------


def _specs(record_type: int) -> list[Name]:
    overrides = {spec.outputs[0]: spec for spec in RECORD_NAMES.get(record_type, ())}
    return [overrides.get(spec.outputs[0], spec) for spec in EVENT_NAMES]


def _refers(spec: Name, node: dict[str, Any]) -> bool:
    """Does `node` carry an id this spec names? Its last key field holds something other
    than "none", and an ICMP type/code key only counts on ICMP (a TCP port is no ICMP type)."""
    if not all(name in node for name in spec.fields):
        return False
    if spec.kind in ("icmp_type", "icmp_code") and node["protocol"] not in ICMP:
        return False
    return node[spec.fields[-1]] not in NO_REFERENCE


def _unnamed(record_type: int, node: Any, path: str = "") -> list[str]:
    """Every id in a decorated record (nested blocks and list items too) without its name."""
    if isinstance(node, list):
        return [miss for i, item in enumerate(node)
                for miss in _unnamed(record_type, item, f"{path}[{i}]")]
    if not isinstance(node, dict):
        return []
    missing = [f"{path}{'.'.join(spec.fields)}={[node[f] for f in spec.fields]}"
               for spec in _specs(record_type)
               if _refers(spec, node) and spec.outputs[0] not in node]
    for key, value in node.items():
        missing += _unnamed(record_type, value, f"{path}{key}.")
    return missing


def test_every_id_an_emulated_record_carries_is_named(streams):
    for name, (_, decoded) in streams.items():
        decorate = Decorator()
        checked: Counter[str] = Counter()
        for record in records(decoded):
            event = decorate(record, record.to_dict())
            assert _unnamed(record.record_type, event) == [], (name, record.record_type)
            checked.update(spec.kind for spec in _specs(record.record_type)
                           if _refers(spec, event))
        # Not vacuous: the ids of the newer metadata were really carried and named.
        for kind in ("ssl_version", "ssl_certificate", "dns_record_type", "file_sha",
                     "security_intelligence_category", "icmp_type", "icmp_code", "ioc",
                     "realm", "endpoint_profile", "security_group", "spero_disposition"):
            assert checked[kind] > 0, (name, kind)


# -- proportions ------------------------------------------------------------------------------


def test_the_mix_looks_like_an_fmc(history):
    """Mostly connections, some intrusions, few files and malware, discovery in bursts, user
    input and legacy-free rare types rare: counted over the events of the history."""
    count = Counter(r.record_type for r in history.events)
    total = sum(count.values())
    share = {t: n / total for t, n in count.items()}
    assert share[71] > 0.3 and count[71] == max(count.values())
    assert count[400] > count[500] + count[502] > count[125]
    assert count[2] == count[110] == count[400]  # packets and extra data ride along
    assert 0 < count[9] < count[400]  # impact alerts: only for (maybe) vulnerable targets
    assert 0 < count[73] < count[71] / 20
    user_input = sum(count[t] for t in range(74, 90))
    assert 0 < user_input < total / 50
    assert count[95] > count[94] > 0 and count[92] <= count[94]
    assert count[170] == count[171] > 0
    # A new host comes with its server, client application and OS.
    assert count[10] == count[15] == count[101] == count[11] + count[12]
