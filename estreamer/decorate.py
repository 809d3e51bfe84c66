"""Decoration: events that speak in names. The pipeline's decorate step (`Decorator` in
estreamer/pipeline.py): metadata records fill the `MetadataCache`, and every record going out
gains names next to its ids, readable times next to its epoch seconds, and its category.

Naming rule for the added fields (they come after the record's own fields, so the wire
fields keep their order):

* a name for an id field is `<field>_name`, where a trailing `_id` or `_uuid` is dropped
  first: `device_id` → `device_name`, `ingress_zone_uuid` → `ingress_zone_name`,
  `url_category` → `url_category_name`, `source_country` → `source_country_name`. Composite
  keys name their last id: (`access_control_policy_uuid`, `access_control_rule_id`) →
  `access_control_rule_name`.
  Two exceptions say what they hold: an intrusion rule's (GID, SID) gives `rule_message`
  and the rendered `signature_id` (§10.4), and a classification gives
  `classification_name` and `classification_description` (the text the FMC shows).
* coded values with fixed, documented meanings get `<field>_name` the same way (`impact`,
  `blocked`, `disposition`, `direction`, `protocol`); priority falls back to §10.2's fixed
  names when no record 4 has named it.
* every epoch-seconds field gets `<field>_iso`: ISO-8601 UTC, `2024-05-01T12:00:00Z`, with
  microseconds when the record carries them (`event_second` + `event_microsecond`). A time
  of 0 means "not set" on the wire (CAP: flow records have event_second 0) and gets none.
* `record_category` (intrusion, connection, file, discovery, metadata, ...).
* ids inside nested blocks and list items (a host profile's servers, a user's vulnerability
  list) are named in place, the same way, item by item.

More exceptions that say what they hold: an OS fingerprint UUID gives
`os_fingerprint_name`, `_vendor` and `_version` (record 54); a certificate fingerprint gives
`ssl_certificate_subject`, `_issuer` and `_valid_until` (record 614); an ICMP type or code,
carried in the port fields of ICMP events, gives `icmp_type_name` / `icmp_code_name` (records
260/270, keyed by the IP protocol too, so a TCP port never matches).

Nothing is guessed: an id the cache does not hold gets no name field. Lookups are one dict
get per id with a plan built once per (record type, block type)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from estreamer.compiled import description, optional
from estreamer.metadata import KINDS, MetadataCache
from estreamer.protocol.records import Record

_namer = optional("estreamer._namer")  # the compiled plans (estreamer/_namer.c)
Namer = _namer.Namer if _namer is not None else None

DESCRIPTION = description("estreamer._namer", Namer is not None,
                          "naming is ~1.5x slower")
"""What adds the names, for a log line at start."""

_MISSING = object()


@dataclass(frozen=True, slots=True)
class Name:
    """Event `fields` (the key, in order) → cache `kind` → `outputs` (one per value)."""

    fields: tuple[str, ...]
    kind: str
    outputs: tuple[str, ...]
    fallback: dict[Any, Any] | None = None


def _stem(field_name: str) -> str:
    for suffix in ("_id", "_uuid"):
        if field_name.endswith(suffix):
            return field_name[: -len(suffix)]
    return field_name


def _name(field_name: str, kind: str) -> Name:
    return Name((field_name,), kind, (f"{_stem(field_name)}_name",))


# Fact sheet §10.2: "Names are 1 = high, 2 = medium, 3 = low".
PRIORITY_NAMES = {1: "high", 2: "medium", 3: "low"}

EVENT_NAMES: tuple[Name, ...] = (
    _name("device_id", "device"),
    _name("ingress_zone_uuid", "zone"),
    _name("egress_zone_uuid", "zone"),
    _name("ingress_interface_uuid", "interface"),
    _name("egress_interface_uuid", "interface"),
    _name("qos_applied_interface_uuid", "interface"),
    _name("access_control_policy_uuid", "access_control_policy"),
    Name(("access_control_policy_uuid", "access_control_rule_id"), "access_control_rule",
         ("access_control_rule_name",)),
    _name("rule_action", "rule_action"),
    _name("rule_reason", "rule_reason"),
    _name("intrusion_policy_uuid", "intrusion_policy"),
    _name("network_analysis_policy_uuid", "network_analysis_policy"),
    Name(("generator_id", "rule_id"), "rule_message", ("rule_message", "signature_id", "")),
    Name(("classification_id",), "classification",
         ("classification_name", "classification_description")),
    Name(("priority_id",), "priority", ("priority_name",), PRIORITY_NAMES),
    _name("user_id", "user"),
    _name("application_id", "application"),
    _name("client_application_id", "client_application"),
    _name("web_application_id", "web_application"),
    _name("url_category", "url_category"),
    _name("url_reputation", "url_reputation"),
    _name("file_type_id", "file_type"),
    _name("event_type_id", "malware_event_type"),
    _name("event_subtype_id", "malware_event_subtype"),
    _name("detector_id", "detector"),
    _name("cloud_uuid", "cloud"),
    _name("source_country", "country"),
    _name("destination_country", "country"),
    _name("initiator_country", "country"),
    _name("responder_country", "country"),
    _name("original_client_country", "country"),
    _name("security_context", "security_context"),
    _name("ssl_policy_uuid", "ssl_policy"),
    Name(("ssl_policy_uuid", "ssl_rule_id"), "ssl_rule", ("ssl_rule_name",)),
    _name("ssl_cipher_suite", "ssl_cipher_suite"),
    _name("ssl_version", "ssl_version"),
    _name("ssl_server_certificate_status", "ssl_server_certificate_status"),
    _name("ssl_actual_action", "ssl_actual_action"),
    _name("ssl_expected_action", "ssl_expected_action"),
    _name("ssl_flow_status", "ssl_flow_status"),
    _name("ssl_url_category", "ssl_url_category"),
    _name("spero_disposition", "spero_disposition"),
    _name("file_storage_status", "file_storage_status"),
    _name("file_analysis_status", "file_sandbox_status"),
    _name("archive_file_status", "archive_file_status"),
    _name("dns_record_type", "dns_record_type"),
    _name("dns_response_type", "dns_response_type"),
    _name("sinkhole_uuid", "sinkhole"),
    _name("endpoint_profile_id", "endpoint_profile"),
    _name("security_group_id", "security_group"),
    _name("security_intelligence_source_destination", "security_intelligence_source_destination"),
    Name(("access_control_policy_uuid", "security_intelligence_list_1"),
         "security_intelligence_category", ("security_intelligence_list_1_name",)),
    Name(("access_control_policy_uuid", "security_intelligence_list_2"),
         "security_intelligence_category", ("security_intelligence_list_2_name",)),
    _name("extra_data_type", "extra_data_type"),
    _name("realm_id", "realm"),
    Name(("ioc_id",), "ioc", ("ioc_category", "ioc_event_type")),
    _name("application_protocol_id", "application"),
    _name("client_country", "country"),
    _name("security_intelligence_uuid", "security_intelligence_category_uuid"),
    # discovery (RNA) host events and user input (records 10–107)
    _name("source_type", "source_type"),
    _name("scan_type", "scan_type"),
    _name("criticality_id", "criticality"),
    _name("attribute_id", "attribute"),
    _name("vulnerability_id", "vulnerability"),
    _name("system_user_id", "system_user"),
    _name("network_protocol", "network_protocol"),
    Name(("os_fingerprint_uuid",), "fingerprint",
         ("os_fingerprint_name", "os_fingerprint_vendor", "os_fingerprint_version")),
    # ICMP events carry type and code in the port fields (fact sheet §10.6, §10.7).
    Name(("protocol", "source_port"), "icmp_type", ("icmp_type_name",)),
    Name(("protocol", "source_port", "destination_port"), "icmp_code", ("icmp_code_name",)),
    Name(("protocol", "initiator_port"), "icmp_type", ("icmp_type_name",)),
    Name(("protocol", "initiator_port", "responder_port"), "icmp_code", ("icmp_code_name",)),
    _name("file_sha256", "file_sha"),
    Name(("ssl_certificate_fingerprint",), "ssl_certificate",
         ("ssl_certificate_subject", "ssl_certificate_issuer", "ssl_certificate_valid_until")),
    # correlation events (record 112)
    _name("correlation_policy_id", "correlation_policy"),
    _name("correlation_rule_id", "correlation_rule"),
    _name("trigger_device_id", "device"),
    *(spec for side in ("source", "destination") for spec in (
        _name(f"{side}_user_id", "user"),
        _name(f"{side}_server_id", "application"),
        _name(f"{side}_criticality_id", "criticality"),
        Name((f"{side}_os_fingerprint_uuid",), "fingerprint",
             (f"{side}_os_fingerprint_name", f"{side}_os_fingerprint_vendor",
              f"{side}_os_fingerprint_version")),
    )),
)
"""Ids any record may carry, by field name (a field name means the same in every record)."""

RECORD_NAMES: dict[int, tuple[Name, ...]] = {
    # AMP for Endpoints reports its own file types (record 131), not the network's (510).
    125: (_name("file_type_id", "amp_file_type"),),
}
"""Per record type, specs that replace the generic one with the same output field."""

for _spec in (*EVENT_NAMES, *(s for specs in RECORD_NAMES.values() for s in specs)):
    if _spec.kind not in KINDS:
        raise ValueError(f"decoration names kind {_spec.kind!r}, which no metadata fills")

# Coded values with fixed meanings: field → (value → text). Sources next to each.
CODES: dict[str, dict[int, str]] = {
    # FMC intrusion impact levels (Firepower Management Center guide, "Intrusion Event
    # Impact Levels"): 0 unknown, 1 vulnerable … 4 unknown target.
    "impact": {0: "unknown", 1: "vulnerable", 2: "potentially vulnerable",
               3: "currently not vulnerable", 4: "unknown target"},
    "blocked": {0: "not blocked", 1: "blocked", 2: "would have been blocked"},
    "disposition": {0: "n/a", 1: "clean", 2: "unknown", 3: "malware", 4: "unavailable",
                    5: "custom detection"},
    "direction": {1: "download", 2: "upload"},
    # IANA protocol numbers the FMC reports.
    "protocol": {1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 51: "ah",
                 58: "ipv6-icmp", 89: "ospf", 132: "sctp"},
}

# Epoch-seconds fields → their microsecond partner (None: whole seconds only).
TIMES: dict[str, str | None] = {
    "archive_timestamp": None,
    "event_second": "event_microsecond",
    "packet_second": "packet_microsecond",
    "connection_timestamp": None,
    "first_packet_time": None,
    "last_packet_time": None,
    "file_event_timestamp": None,
    "malware_event_timestamp": None,
    "file_timestamp": None,
    "last_seen": None,
    "last_used": None,
    "start_time": None,
    "timestamp": None,
    "correlation_event_second": None,
    "trigger_event_second": "trigger_event_microsecond",
}


@dataclass(slots=True)
class _Plan:
    single: list[tuple[str, dict, str]] = field(default_factory=list)
    general: list[tuple[tuple[str, ...], dict, tuple[str, ...], dict | None]] = field(
        default_factory=list)
    codes: list[tuple[str, dict, str]] = field(default_factory=list)
    times: list[tuple[str, str | None, str]] = field(default_factory=list)
    nested: list[tuple[str, _Plan]] = field(default_factory=list)
    # list fields: their items' plans are made as each item block type is first seen
    lists: list[str] = field(default_factory=list)
    record_type: int = 0

    def empty(self) -> bool:
        """Nothing to add, here or in any nested block (list items are unknown yet, so a
        plan with lists is never empty)."""
        return not (self.single or self.general or self.codes or self.times or self.lists
                    or any(not sub.empty() for _, sub in self.nested))


def _reads(plan: _Plan) -> dict[str, None]:
    """The fields a plan reads from its own dict, in plan order (a dict as an ordered set)."""
    names = [name for name, _, _ in plan.single]
    names += [name for names, _, _, _ in plan.general for name in names]
    names += [name for name, _, _ in plan.codes]
    names += [name for time_name, micro, _ in plan.times
              for name in ((time_name, micro) if micro else (time_name,))]
    names += [name for name, sub in plan.nested if not sub.empty()]
    names += plan.lists
    return dict.fromkeys(names)


def _writes(plan: _Plan) -> set[str]:
    """The fields a plan's lookups may add to its own dict."""
    return ({out for _, _, out in plan.single}
            | {out for _, _, outs, _ in plan.general for out in outs}
            | {out for _, _, out in plan.codes} | {out for _, _, out in plan.times})


Apply = Callable[[dict[str, Any]], None]
"""A compiled plan: adds the names to one event dict in place."""


def _nothing(event: dict[str, Any]) -> None:
    """The compiled form of an empty plan."""


class Decorator:
    """`(record, event) -> event` for `Pipeline(decorate=...)`. Metadata records teach the
    cache; every record is decorated (metadata too: its category and times)."""

    def __init__(self, cache: MetadataCache | None = None):
        self.cache = cache if cache is not None else MetadataCache()
        self._plans: dict[tuple[int, Any, bool], Apply] = {}
        self._iso: dict[int, str] = {}
        self._days: dict[int, str] = {}  # day number → "YYYY-MM-DDT", for _iso_text

    def learn(self, record: Record) -> None:
        """Keep the names a metadata record carries (any other record is ignored)."""
        if record.error is None and record.category == "metadata":
            self.cache.learn(record.record_type, record.fields)

    def __call__(self, record: Record, event: dict[str, Any]) -> dict[str, Any]:
        # Learning twice (here and as the pipeline's observer) is harmless and keeps the
        # decorator whole when used alone (estreamer decode, tests). Inlined `learn`: this
        # runs once per record.
        ok = record.error is None
        category = record.category
        if ok and category == "metadata":
            self.cache.learn(record.record_type, record.fields)
        # A malformed record (only `raw`) must not fix the plan for its good siblings.
        key = (record.record_type, event.get("block_type"), ok)
        apply = self._plans.get(key)
        if apply is None:
            apply = self._plans[key] = (
                self._compile(self._plan(record.record_type, event)) or _nothing)
        apply(event)
        event["record_category"] = category
        return event

    def _compile(self, plan: _Plan, fast: bool = True) -> Apply | None:
        """Write a plan as straight-line Python and compile it once (as the layouts'
        decoders are, estreamer/protocol/layout.py): each lookup one `table.get`, ISO times
        and code labels inline, nested blocks inline. The writes happen in the order the
        plan lists them, so the keys added (and the output lines) keep the plan's order.
        None for an empty plan.

        `fast` reads every field the plan needs once, up front, by subscript (a field read by
        several lookups is read once; no `get` call per read). A dict missing one of them (a
        record without its archive timestamp, a caller's hand-made dict) raises KeyError
        before anything is written, and goes through the `get` variant instead."""
        if plan.empty():
            return None
        if fast and Namer is not None:
            namer = self._namer(plan)
            if namer is not None:
                return namer
        env: dict[str, Any] = {"_iso_get": self._iso.get, "_iso_text": self._iso_text}
        lines = ["def apply(ev):"]
        self._emit(plan, "ev", "    ", lines, env, itertools.count(), fast)
        exec("\n".join(lines), env)  # the source is built above from the plan alone
        return env["apply"]

    def _namer(self, plan: _Plan) -> Apply | None:
        """The plan as a compiled Namer: the steps `_emit` writes in the fast variant, in
        the same order, run in C. None where that variant would not be used (a lookup
        writing a field another reads) or a table is not a plain dict; the Python plan is
        then the one that runs. An event missing a field the plan reads goes to the Python
        variant that reads with `get`, as in Python."""
        reads = _reads(plan)
        if not reads.keys().isdisjoint(_writes(plan)):
            return None
        index = {name: i for i, name in enumerate(reads)}
        steps: list[tuple] = []
        for name, table, out in plan.single:
            steps.append((0, index[name], table, out))
        for names, table, outs, fallback in plan.general:
            steps.append((1, tuple(index[n] for n in names), table, tuple(outs), fallback))
        steps += [(0, index[name], codes, out) for name, codes, out in plan.codes]
        tables = [step[2] for step in steps] + [f for *_, f in plan.general if f is not None]
        if any(type(table) is not dict for table in tables):
            return None
        for name, micro, out in plan.times:
            steps.append((2, index[name], -1 if micro is None else index[micro], out))
        for name, sub in plan.nested:
            if sub.empty():
                continue
            inner = self._namer(sub)
            if inner is None:
                return None
            steps.append((3, index[name], inner, name))
        steps += [(4, index[name], self._items(plan.record_type), name) for name in plan.lists]
        return Namer(tuple(reads), tuple(steps), self._compile(plan, fast=False), self._iso,
                     self._iso_text)

    def _emit(self, plan: _Plan, ev: str, pad: str, lines: list[str],
              env: dict[str, Any], fresh: Iterator[int], fast: bool) -> None:
        """Append the statements that decorate the dict named `ev`. The tables and helpers
        they use go into `env`; names that must not clash (a nested block's dict and reads
        live beside its parent's) take a number from `fresh`."""

        def const(value: Any) -> str:
            name = f"_k{next(fresh)}"
            env[name] = value
            return name

        reads = _reads(plan)
        # Reading up front equals reading at each lookup only if no lookup writes a field
        # that a later one reads.
        if fast and reads.keys().isdisjoint(_writes(plan)):
            local = {name: f"r{next(fresh)}" for name in reads}
            lines.append(f"{pad}try:")
            lines += [f"{pad}    {local[name]} = {ev}[{name!r}]" for name in reads]
            lines += [f"{pad}except KeyError:",
                      f"{pad}    {const(self._compile(plan, fast=False))}({ev})",
                      f"{pad}else:"]
            pad += "    "

            def read(name: str) -> str:
                return local[name]
        else:
            fast = False
            g = f"g{next(fresh)}"
            lines.append(f"{pad}{g} = {ev}.get")

            def read(name: str) -> str:
                return f"{g}({name!r})"

        lines.append(f"{pad}pass")  # a plan of only empty nested blocks writes nothing here
        # A bare `table.get(value)`: a missing field reads as None, which is never a key (no
        # learned key field is optional, and the cache file rejects null keys).
        for name, table, out in plan.single:
            lines.append(f"{pad}f = {const(table.get)}({read(name)})")
            lines.append(f"{pad}if f is not None: {ev}[{out!r}] = f")
        for names, table, outs, fallback in plan.general:
            key = (read(names[0]) if len(names) == 1 else
                   "(" + ", ".join(read(n) for n in names) + ")")
            if fallback is None:
                lines.append(f"{pad}f = {const(table.get)}({key})")
            else:
                lines.append(f"{pad}k = {key}")
                lines.append(f"{pad}f = {const(table.get)}(k)")
                lines.append(f"{pad}if f is None: f = {const(fallback.get)}(k)")
            lines.append(f"{pad}if f is not None:")
            if len(outs) == 1:
                lines.append(f"{pad}    {ev}[{outs[0]!r}] = f")
            else:
                # Unpacking is as strict as the zip it replaces: a value of the wrong
                # arity raises instead of naming the wrong fields.
                parts = [f"v{i}" for i in range(len(outs))]
                lines.append(f"{pad}    {', '.join(parts)} = f")
                lines += [f"{pad}    {ev}[{out!r}] = {part}"
                          for out, part in zip(outs, parts, strict=True) if out]
        for name, codes, out in plan.codes:
            lines.append(f"{pad}f = {const(codes.get)}({read(name)})")
            lines.append(f"{pad}if f is not None: {ev}[{out!r}] = f")
        for name, micro, out in plan.times:
            lines += [f"{pad}s = {read(name)}",
                      f"{pad}if s:",
                      f"{pad}    x = _iso_get(s)",
                      f"{pad}    if x is None: x = _iso_text(s)"]
            if micro is None:
                lines.append(f"{pad}    {ev}[{out!r}] = x + 'Z'")
            else:
                # The partner can be absent in one record though present in the first.
                lines += [f"{pad}    m = {read(micro)}",
                          f"{pad}    {ev}[{out!r}] = x + 'Z' if m is None else "
                          f"f'{{x}}.{{m:06d}}Z'"]
        for name, sub in plan.nested:
            if sub.empty():
                continue  # nothing to add: the record's own dict goes out as decoded
            inner = f"n{next(fresh)}"
            # A copy: the record's own fields stay as decoded.
            lines += [f"{pad}{inner} = {read(name)}",
                      f"{pad}if isinstance({inner}, dict):",
                      f"{pad}    {inner} = dict({inner})"]
            self._emit(sub, inner, pad + "    ", lines, env, fresh, fast)
            lines.append(f"{pad}    {ev}[{name!r}] = {inner}")
        for name in plan.lists:
            lines += [f"{pad}x = {read(name)}",
                      f"{pad}if isinstance(x, list) and x:",
                      f"{pad}    x = {const(self._items(plan.record_type))}(x)",
                      f"{pad}    if x is not None: {ev}[{name!r}] = x"]

    def _items(self, record_type: int) -> Callable[[list[Any]], list[Any] | None]:
        """Decorates one list field's items, each in a copy (items are blocks: their type
        fixes the plan); None when no item gains anything, so the list goes out as is."""
        by_type: dict[Any, Apply | None] = {}

        def items(values: list[Any]) -> list[Any] | None:
            out = None
            for i, item in enumerate(values):
                if not isinstance(item, dict):
                    continue
                key = item.get("block_type")
                try:
                    apply = by_type[key]
                except KeyError:
                    apply = by_type[key] = self._compile(self._plan(record_type, item))
                if apply is None:
                    continue
                if out is None:
                    out = list(values)
                item = dict(item)
                apply(item)
                out[i] = item
            return out

        return items

    def _plan(self, record_type: int, event: dict[str, Any]) -> _Plan:
        present = set(event)
        plan = _Plan(record_type=record_type)
        overrides = {spec.outputs[0]: spec for spec in RECORD_NAMES.get(record_type, ())}
        tables = self.cache.tables
        for spec in EVENT_NAMES:
            spec = overrides.get(spec.outputs[0], spec)
            if not all(name in present for name in spec.fields):
                continue
            table = tables[spec.kind]
            if len(spec.fields) == 1 and len(spec.outputs) == 1 and spec.fallback is None:
                plan.single.append((spec.fields[0], table, spec.outputs[0]))
            else:
                plan.general.append((spec.fields, table, spec.outputs, spec.fallback))
        plan.codes = [(name, codes, f"{name}_name") for name, codes in CODES.items()
                      if name in present]
        plan.times = [(name, micro if micro in present else None, f"{name}_iso")
                      for name, micro in TIMES.items() if name in present]
        for name, value in event.items():
            if isinstance(value, dict):
                plan.nested.append((name, self._plan(record_type, value)))
            elif isinstance(value, list):
                plan.lists.append(name)
        return plan

    def iso(self, seconds: int, microseconds: int | None = None) -> str:
        """ISO-8601 UTC; whole seconds are cached, as events bunch in the same seconds."""
        text = self._iso.get(seconds)
        if text is None:
            text = self._iso_text(seconds)
        if microseconds is None:
            return text + "Z"
        return f"{text}.{microseconds:06d}Z"

    def _iso_text(self, seconds: int) -> str:
        """The whole-seconds text (no `Z`), made and cached; the compiled plans read the
        cache themselves and call this only on a miss. A backlog's times are spread over
        many seconds but few days: the date is cached per day and the time of day is
        arithmetic (UTC has no leap seconds in epoch time, so this is gmtime's answer)."""
        if len(self._iso) > 65536:
            self._iso.clear()  # cleared in place: the compiled plans hold its `get`
            self._days.clear()
        if type(seconds) is int and 0 < seconds < 1 << 32:  # every wire time is a u32
            day, rest = divmod(seconds, 86400)
            date = self._days.get(day)
            if date is None:
                date = self._days[day] = time.strftime("%Y-%m-%dT", time.gmtime(day * 86400))
            hours, rest = divmod(rest, 3600)
            minutes, second = divmod(rest, 60)
            text = f"{date}{hours:02d}:{minutes:02d}:{second:02d}"
        else:
            try:
                text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
            except (OverflowError, OSError, ValueError):
                text = str(seconds)
        self._iso[seconds] = text
        return text
