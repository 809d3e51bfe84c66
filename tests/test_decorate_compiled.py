"""The compiled decoration plans (estreamer/decorate.py) against what they replace: the same
names in the same order whatever shape the dict comes in, and the record left as decoded."""

from __future__ import annotations

import random
import time

from estreamer.decorate import Decorator
from tests.test_decorate import connection, decorate, learn_all


def test_a_dict_missing_a_planned_field_takes_the_slow_path_with_the_same_result():
    decorator = Decorator()
    learn_all(decorator)
    full = decorate(decorator, connection())  # fixes the plan for (71, 160, ok)
    record = connection()
    event = record.to_dict()
    del event["device_id"], event["archive_timestamp"]  # a caller's hand-made dict
    partial = decorator(record, event)
    assert "device_name" not in partial and "archive_timestamp_iso" not in partial
    expected = [k for k in full if k not in ("device_id", "device_name", "archive_timestamp",
                                             "archive_timestamp_iso")]
    assert list(partial) == expected
    assert all(partial[k] == full[k] for k in expected)
    # The fast path is still taken for whole dicts afterwards.
    assert decorate(decorator, connection()) == full


def test_the_record_stays_as_decoded_and_unchanged_blocks_are_not_copied():
    decorator = Decorator()
    learn_all(decorator)
    record = connection()
    before = repr(record.fields)
    event = decorate(decorator, record)
    assert repr(record.fields) == before
    assert event["discovery_header"] is not record.fields["discovery_header"]  # named: a copy


def test_iso_text_matches_gmtime_for_any_wire_time():
    decorator = Decorator()
    rnd = random.Random(8)
    for seconds in [1, 59, 86399, 86400, 951_782_400, 1_700_000_000, 2**32 - 1,
                    *(rnd.randrange(1, 2**32) for _ in range(20000))]:
        assert decorator.iso(seconds) == time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                       time.gmtime(seconds))
    assert decorator.iso(1_700_000_000, 5) == "2023-11-14T22:13:20.000005Z"
