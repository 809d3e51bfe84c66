"""The optional compiled Splunk writer (estreamer/formats/_splunk.c) writes exactly what the
Python formatters write: the generated per-record-type code and `interpret_splunk`, its
definition. For anything unusual it steps aside and Python writes the record, errors
included. Without the extension, or with ESTREAMER_PURE_PYTHON=1, everything still works."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from estreamer.formats import splunk
from estreamer.formats.common import name_keys
from tests.test_formats_identity import ODD, events  # noqa: F401  (a fixture)

ROOT = Path(__file__).resolve().parent.parent

needs_extension = pytest.mark.skipif(
    not splunk.AVAILABLE, reason="the C extension is not built (no compiler at install time)")

PROGRAMMED = sorted(t for t in splunk.SPLUNK_KEYS if splunk.program_source(t) is not None)


def _outcome(formatter: Callable[[Any], bytes], event: Any) -> Any:
    try:
        return formatter(event)
    except Exception as error:  # the same failure counts as the same output
        return type(error)


def both_ways(event: Any) -> tuple[Any, Any]:
    fast = _outcome(splunk.format_splunk, event)
    with splunk.disabled():
        slow = _outcome(splunk.format_splunk, event)
    return fast, slow


def test_the_extension_is_built_in_ci():
    """CI installs from the project's files with a compiler: a missing extension there is a
    silent 4-5x slowdown of the Splunk output, so it fails here instead."""
    if os.environ.get("CI") != "true":
        pytest.skip("only CI insists on the extension")
    assert splunk.AVAILABLE, "estreamer.formats._splunk did not build"


def test_every_table_row_but_the_interpreted_ones_has_a_program():
    # the rows `_generate` leaves to the interpreter are the ones left to Python here
    for record_type in splunk.SPLUNK_KEYS:
        assert (splunk.program_source(record_type) is None) == (
            splunk.compiled_source(record_type) is None), record_type


@needs_extension
def test_every_record_of_the_history_is_written_the_same_three_ways(events):  # noqa: F811
    taken = 0
    for event in events:
        line = splunk._fast(event)
        with splunk.disabled():
            compiled = splunk.format_splunk(event)
        assert compiled == splunk.interpret_splunk(event), event["record_type"]
        if splunk.program_source(event["record_type"]) is not None:
            # the C path really wrote it (not a silent fallback to Python)...
            assert line is not None, event["record_type"]
            taken += 1
        if line is not None:
            assert line == compiled, event["record_type"]  # ...and wrote the same bytes
    assert taken > 0.9 * len(events)


@needs_extension
def test_the_odd_cases_are_written_the_same_both_ways():
    for event in ODD:
        fast, slow = both_ways(event)
        assert fast == slow, event


@needs_extension
@pytest.mark.parametrize("record_type", PROGRAMMED)
def test_every_program_builds_and_writes_an_empty_record(record_type):
    event = {"record_type": record_type}
    line = splunk._fast(event)
    assert line is not None
    with splunk.disabled():
        assert line == splunk.format_splunk(event) == splunk.interpret_splunk(event)


def test_a_uuid_followed_by_a_newline_stays_on_one_line():
    """`re.match` with `$` took "<uuid>\\n" for a UUID and wrote it quoted with the newline
    raw, a line the file output refuses; it is text like any other."""
    uuid = "1f2e3d4c-0000-4000-8000-00000000a001"
    assert splunk.splunk_value(uuid) == f'"{uuid}"'
    assert splunk.splunk_value(uuid + "\n") == uuid + "\\n"
    assert splunk.splunk_value(uuid.upper()) == uuid.upper()
    event = {"record_type": 71, "client_url": uuid + "\n", "netflow_source_uuid": uuid}
    for line in both_ways(event):
        assert b"\n" not in line
        assert f"url={uuid}\\n".encode() in line
        assert f'netflow_src="{uuid}"'.encode() in line
    assert splunk.interpret_splunk(event) == both_ways(event)[1]


# ------------------------------------------------------------------------ random events


class Weird:
    """A value of a type neither side knows: its equality and text are its own."""

    def __eq__(self, other: object) -> bool:
        return other == 0

    def __hash__(self) -> int:
        return 0

    def __str__(self) -> str:
        return "weird value"


class Raises:
    def __eq__(self, other: object) -> bool:
        raise ValueError("no comparing")

    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        raise ValueError("no text")


class Text(str):
    pass


class Number(int):
    pass


TEXT = st.one_of(
    st.text(max_size=12),
    st.text(alphabet=" =\"'\n\r\t\\é€\U0001f600\ud800ab0-", max_size=10),
    st.sampled_from(["", " ", "=", "\n", "\r", "\r\n", '"', "::", "0.0.0.0", "N/A",
                     "1f2e3d4c-0000-4000-8000-00000000a001",
                     "1f2e3d4c-0000-4000-8000-00000000a001\n",
                     "1F2E3D4C-0000-4000-8000-00000000A001",
                     "1f2e3d4c-0000-4000-8000-00000000a0011", "\ud800", "a\udcff b"]),
)
SCALAR = st.one_of(
    st.none(), st.booleans(), TEXT,
    st.integers(-3, 300), st.integers(), st.sampled_from([0, 1, 6, 17, 2**63, -(2**63), 2**64]),
    st.floats(allow_nan=True), st.sampled_from([0.0, -0.0, math.inf]),
    st.builds(Text, TEXT), st.builds(Number, st.integers(-2, 20)),
    st.sampled_from([b"", b"x", (), (1, "a")]), st.builds(Weird), st.builds(Raises),
)
VALUE = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["a", "b", "event_type", "device_id", "mac"]), inner,
                      max_size=3),
    max_leaves=6)


def _fields(record_type: int) -> list[str]:
    """Every key the record type's row reads (and the ones its head and time read), name keys
    included: the top-level ones and the discovery header's."""
    keys = {"record_type", "record_name", "record_category", "trigger_event_second",
            "trigger_event_microsecond", "event_second", "event_microsecond",
            "file_event_timestamp", "malware_event_timestamp", "correlation_event_second",
            "timestamp", "archive_timestamp", "discovery_header", "signature_id",
            "rendered_id", "rule_id", "impact", "impact_flags", "description", "ip_ranges",
            "protocol", "protocol_name", "transport_protocol", "transport_protocol_name",
            "security_intelligence_source_destination"}
    for _, source in splunk.SPLUNK_KEYS[record_type]:
        field = source.lstrip("~^@*")
        for path in (field, *name_keys(field)):
            keys.add(path.split(".")[0])
            keys.add(path.rsplit(".", 1)[-1])
    return sorted(keys)


HEADER_KEYS = ["device_id", "device_name", "event_second", "event_microsecond", "event_type",
               "event_subtype", "ipv6_address", "legacy_ip", "has_ipv6", "mac_address"]


@st.composite
def events_of_every_kind(draw: st.DrawFn) -> dict[str, Any]:
    record_type = draw(st.sampled_from(PROGRAMMED))
    fields = _fields(record_type)
    event: dict[str, Any] = {"record_type": record_type}
    for key in draw(st.lists(st.sampled_from(fields), max_size=25, unique=True)):
        event[key] = draw(VALUE)
    if draw(st.booleans()):  # a well-formed header, with its own odd values
        header = {key: draw(VALUE) for key in draw(st.lists(st.sampled_from(HEADER_KEYS),
                                                            unique=True))}
        if draw(st.booleans()):
            header["event_type"] = draw(st.sampled_from([1000, 1001, 1003, 1002]))
            header["event_subtype"] = draw(st.integers(0, 50))
        event["discovery_header"] = header
    if draw(st.booleans()):  # names present, absent or empty
        for key in fields:
            if key.endswith("_name") and draw(st.booleans()):
                event[key] = draw(st.sampled_from(["", "A name", None, "n=1", 0]))
    for key in ("event_second", "event_microsecond", "trigger_event_second"):
        if draw(st.booleans()):
            event[key] = draw(st.integers(-2, 2**64) | st.booleans())
    return event


FUZZ = settings(max_examples=int(os.environ.get("ESTREAMER_FUZZ_EXAMPLES", "400")),
                deadline=None, suppress_health_check=[HealthCheck.too_slow])


@needs_extension
@FUZZ
@given(events_of_every_kind())
def test_random_events_are_written_the_same_three_ways(event):
    fast, slow = both_ways(event)
    assert fast == slow
    defined = _outcome(splunk.interpret_splunk, event)
    if isinstance(slow, bytes):
        assert defined == slow
    else:  # a value that raises may raise another error first in the other order of work
        assert isinstance(defined, type)


@needs_extension
@FUZZ
@given(st.sampled_from(PROGRAMMED), st.dictionaries(TEXT, VALUE, max_size=6))
def test_events_with_any_keys_are_written_the_same_both_ways(record_type, extra):
    event: dict[Any, Any] = {**extra, "record_type": record_type}
    fast, slow = both_ways(event)
    assert fast == slow


@needs_extension
@FUZZ
@given(SCALAR)
def test_every_value_is_rendered_as_python_renders_it(value):
    """One value in a plain key, in a name key and in a key read from the header."""
    for event in ({"record_type": 71, "client_url": value},
                  {"record_type": 71, "application_id": 5, "application_name": value},
                  {"record_type": 71, "discovery_header": {"mac_address": value}},
                  {"record_type": 71, "monitor_rule_1": value, "protocol": value,
                   "security_intelligence_source_destination": value},
                  {"record_type": 400, "impact_flags": value, "signature_id": value}):
        fast, slow = both_ways(event)
        assert fast == slow


@needs_extension
def test_what_is_not_a_plain_dict_goes_to_python():
    class Event(dict):
        pass

    mapping: Mapping[str, Any] = Event(record_type=71, device_id=3)
    assert splunk._fast(mapping) is None
    assert splunk._fast({"record_type": "71"}) is None
    assert splunk._fast({"record_type": True}) is None
    assert splunk._fast({"record_type": 9999}) is None  # no row: the interpreter's
    assert splunk.format_splunk(mapping) == splunk.interpret_splunk(mapping)


@needs_extension
def test_a_key_of_another_type_goes_to_python():
    class Key(str):
        pass

    for event in ({"record_type": 71, 5: "x"}, {"record_type": 71, Key("device_id"): 3}):
        assert splunk._fast(event) is None
        assert splunk.format_splunk(event) == splunk.interpret_splunk(event)


@needs_extension
def test_a_value_that_empties_the_event_while_written_crashes_nothing():
    class Emptying:
        def __init__(self, event: dict[str, Any]) -> None:
            self.event = event

        def __repr__(self) -> str:
            self.event.clear()  # every value the line still has to write is gone
            return "emptied"

    event: dict[str, Any] = {"record_type": 71, "device_id": 1, "client_url": "u" * 50,
                             "initiator_ip": "10.0.0.1", "discovery_header": {"has_ipv6": 1}}
    event["application_id"] = [Emptying(event)]
    line = splunk.format_splunk(event)
    assert b"app_proto=\"[emptied]\"" in line or b"app_proto=[emptied]" in line
    assert b"src_ip=10.0.0.1" in line and b"has_ipv6=1" in line


@needs_extension
def test_a_program_of_many_keys_and_malformed_programs():
    """Programs are made by splunk.py only; still, a big one works and a wrong one is refused
    with an error, never a crash."""
    from estreamer.formats import _splunk

    keys = [f"k{n}" for n in range(600)]
    alts = tuple((f" {k}=".encode(), False, (splunk._get(k),)) for k in keys)
    program = _splunk.Program((b"rec_type=1", False, alts))
    event = {k: n for n, k in enumerate(keys) if n % 3}
    assert program.format(event, splunk.splunk_value) == b"rec_type=1" + b"".join(
        f" {k}={n}".encode() for n, k in enumerate(keys) if n % 3)
    bad_alternatives: list[Any] = [
        (), (99, None, None, None, None, None, (), None, None),
        (splunk.GET, 5, None, None, None, None, (), None, None),
        (splunk.GET, "a", None, None, None, None, ("",), None, None),
        (splunk.CONST, None, None, None, None, None, (), "text", None),
        (splunk.MAP, "a", None, None, None, [], (), None, None),
        (splunk.CALL, "not callable", None, None, None, None, (), None, None),
        (splunk.PAIR, "a", "b", None, None, {}, (), None, None)]
    for alt in bad_alternatives:
        with pytest.raises((ValueError, TypeError)):
            _splunk.Program((b"rec_type=1", False, ((b" a=", False, (alt,)),)))
    for source in [(), (b"x",), ("rec_type=1", False, ()), (b"x", False, ((b"a",),))]:
        with pytest.raises((ValueError, TypeError)):
            _splunk.Program(source)


@needs_extension
def test_a_computed_key_that_raises_is_raised_by_python():
    # ip_ranges items without .get: _ip_ranges raises, the C side steps aside
    event = {"record_type": 82, "ip_ranges": [1, 2]}
    assert splunk._fast(event) is None
    fast, slow = both_ways(event)
    assert fast is slow is AttributeError


@needs_extension
def test_no_memory_is_kept_per_line(events):  # noqa: F811
    """A million lines (odd ones included) leave the resident size where it was."""
    sample = [e for e in events if e["record_type"] in (71, 400, 112, 2, 82)][:500]
    sample += [dict(e) for e in ODD if isinstance(e.get("record_type"), int)]
    sample.append({"record_type": 82, "ip_ranges": [{"start_ip": "a", "end_ip": "b"}, 1]})
    sample.append({"record_type": 71, "client_url": "x" * 20000})  # a line on the heap

    def rss_kib() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024

    def run(times: int) -> None:
        for _ in range(times):
            for event in sample:
                _outcome(splunk.format_splunk, event)

    run(200)  # caches, memos and the allocator settle
    before = rss_kib()
    run(1_000_000 // len(sample))
    assert rss_kib() - before < 2048
