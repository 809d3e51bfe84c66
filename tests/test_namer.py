"""The compiled decoration plans (estreamer/_namer.c) give exactly what the Python plans
give: the same names, in the same order, for every record the emulator sends and for
events of any shape; the same exception where Python raises one. Without the extension,
the Python plans do the work."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from estreamer import decorate
from estreamer.decorate import Decorator
from estreamer.protocol.records import Record, decode_record
from tests.test_decorate import connection, learn_all

needs_extension = pytest.mark.skipif(decorate.Namer is None,
                                     reason="the C extension is not built")

_RECORDS: list[Record] | None = None


def emulator_records() -> list[Record]:
    """Every record of a small emulator history: metadata first, then events of every
    family in the blocks a client asking for the latest versions gets."""
    global _RECORDS
    if _RECORDS is None:
        from estreamer.emulator.history import History
        from estreamer.emulator.session import select
        from estreamer.protocol.flags import LATEST_EVENTS

        history = History(seed=11, size=600, rate=0)
        selection = select(0, LATEST_EVENTS)
        raws = [history.render(r) for r in history.metadata]
        for r in history.events:
            wanted, block = selection.block_of(r)
            if wanted:
                raws.append(history.render(r, block, True))
        _RECORDS = [decode_record(raw) for raw in raws]
    return _RECORDS


def python_plans() -> pytest.MonkeyPatch:
    patch = pytest.MonkeyPatch()
    patch.setattr(decorate, "Namer", None)
    return patch


def decorated(records: list[Record], compiled: bool) -> list[list[tuple[str, Any]]]:
    """Each record's decorated event as ordered items, nested dicts too."""
    patch = None if compiled else python_plans()
    try:
        decorator = Decorator()
        return [ordered(decorator(record, record.to_dict())) for record in records]
    finally:
        if patch is not None:
            patch.undo()


def ordered(value: Any) -> Any:
    if isinstance(value, dict):
        return [(key, ordered(inner)) for key, inner in value.items()]
    if isinstance(value, list):
        return [ordered(item) for item in value]
    return value


def test_the_extension_is_built_in_ci():
    if os.environ.get("CI") != "true":
        pytest.skip("only CI insists on the extension")
    assert decorate.Namer is not None, "estreamer._namer did not build"


@needs_extension
def test_every_emulator_record_is_named_the_same_both_ways():
    records = emulator_records()
    compiled, python = decorated(records, True), decorated(records, False)
    assert compiled == python
    named = sum(1 for event in compiled if any(k.endswith("_name") for k, _ in event))
    assert named > len(records) // 2  # the comparison is about names, not empty plans


@needs_extension
def test_the_plans_really_are_compiled():
    decorator = Decorator()
    learn_all(decorator)
    record = connection()
    decorator(record, record.to_dict())
    assert any(type(plan) is decorate.Namer for plan in decorator._plans.values())


@needs_extension
def test_a_table_that_is_not_a_plain_dict_keeps_the_python_plan():
    class Table(dict):
        pass

    decorator = Decorator()
    learn_all(decorator)
    decorator.cache.tables["device"] = Table(decorator.cache.tables["device"])
    record = connection()
    event = decorator(record, record.to_dict())
    assert "device_name" in event
    plan = decorator._plans[(record.record_type, event.get("block_type"), True)]
    assert type(plan) is not decorate.Namer


# Values a planned field may hold in a caller's dict: what the wire gives, and worse.
ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.integers(0, 5),
    st.sampled_from([0, 1, 6, 17, 1_700_000_000, 2**32 - 1, -1, 999_999, 1_000_000]),
    st.text(max_size=8), st.floats(allow_nan=False), st.just(""),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(),
                                                         max_size=2),
)


def run(decorator: Decorator, record: Record, event: dict) -> tuple[str, Any]:
    try:
        return "ok", ordered(decorator(record, event))
    except Exception as exc:  # the same failure both ways is what is asserted
        return "raised", type(exc).__name__


@needs_extension
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_events_of_any_shape_are_named_the_same_both_ways(data):
    records = emulator_records()
    record = data.draw(st.sampled_from([r for r in records if r.category != "metadata"]))
    base = record.to_dict()
    event = dict(base)
    for key in data.draw(st.lists(st.sampled_from(sorted(base)), max_size=6)):
        if data.draw(st.booleans()):
            event.pop(key, None)
        else:
            event[key] = data.draw(ODD_VALUES)
    results = []
    for compiled in (True, False):
        patch = None if compiled else python_plans()
        try:
            decorator = Decorator()
            for metadata in records:
                if metadata.category == "metadata":
                    decorator.learn(metadata)
            # The plan is fixed by the record's first, whole dict, as in a stream.
            decorator(record, record.to_dict())
            results.append(run(decorator, record, dict(event)))
        finally:
            if patch is not None:
                patch.undo()
    assert results[0] == results[1]


@needs_extension
@pytest.mark.parametrize("micro", [0, 5, 999_999, -5, 10**7, True, None, 2**80, 1.5, "7"])
def test_microseconds_are_written_as_python_writes_them(micro):
    results = []
    for compiled in (True, False):
        patch = None if compiled else python_plans()
        try:
            decorator = Decorator()
            record = Record(400, "Intrusion", {"event_second": 1_700_000_000,
                                               "event_microsecond": 1})
            decorator(record, record.to_dict())
            event = record.to_dict()
            event["event_microsecond"] = micro
            results.append(run(decorator, record, event))
        finally:
            if patch is not None:
                patch.undo()
    assert results[0] == results[1]


@needs_extension
def test_a_name_of_the_wrong_arity_fails_as_python_fails():
    results = []
    for compiled in (True, False):
        patch = None if compiled else python_plans()
        try:
            decorator = Decorator()
            decorator.cache.tables["classification"][7] = ("only one",)
            record = Record(400, "Intrusion", {"classification_id": 7})
            results.append(run(decorator, record, record.to_dict()))
        finally:
            if patch is not None:
                patch.undo()
    assert results[0] == results[1] == ("raised", "ValueError")


@needs_extension
def test_wire_times_are_written_as_gmtime_writes_them():
    """The compiled plans write a wire time's text themselves (no call, no cache)."""
    import random
    import time

    decorator = Decorator()
    record = Record(71, "Connection", {"first_packet_time": 1})
    decorator(record, record.to_dict())
    rnd = random.Random(5)
    for seconds in [1, 59, 86399, 86400, 951_782_400, 951_868_800, 1_700_000_000,
                    4_107_542_400, 2**32 - 1, *(rnd.randrange(1, 2**32) for _ in range(5000))]:
        event = decorator(record, {"record_type": 71, "first_packet_time": seconds})
        assert event["first_packet_time_iso"] == time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds)), seconds
    for odd in [0, -1, 2**32, 2**64, True]:  # left to the decorator's Python text
        event = decorator(record, {"record_type": 71, "first_packet_time": odd})
        assert event.get("first_packet_time_iso") == (decorator.iso(odd) if odd else None)
