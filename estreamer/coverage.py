"""Which record types the tables decode, generated from the code so it cannot drift:
`estreamer records` prints it, and docs/records.md is rendered from it
(`python -m estreamer.coverage > docs/records.md`; a test checks the file is current).

The fact sheet's §9 table is the yardstick: every record type it names is listed, with the
block types we decode for it, or as not covered yet."""

from __future__ import annotations

import sys

from estreamer.decorate import EVENT_NAMES
from estreamer.formats import cef, ecs
from estreamer.formats.splunk import SPLUNK_KEYS
from estreamer.metadata import LEARN
from estreamer.protocol import layout as L
from estreamer.protocol.tables import RECORDS

# Record types named in fact sheet §9 (10–53 as its list spells them out; 104/105 are the
# deprecated 4.10 intrusion records and 74–89 the user-input events).
FACT_SHEET_RECORDS: tuple[int, ...] = (
    2, 4, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29,
    31, 34, 35, 42, 44, 45, 46, 47, 48, 51, 52, 53, 54, 55, 57, 58, 59, 60, 61, 62, 63, 66, 67,
    69, 70, 71, 73, *range(74, 90), 90, 91, 92, 93, 94, 95, 96, 98, 101, 102, 103, 104, 105,
    106, 107, 109, 110, 111, 112, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 127,
    128, 129, 130, 131, 132, 140, 145, 146, 147, 160, 161, 170, 171, 260, 270, 280, 281, 282,
    300, 301, 302, 320, 321, 322, 350, 400, 500, 502, 510, 511, 515, 516, 517, 518, 519, 520,
    530, 600, 601, 602, 604, 605, 606, 607, 608, 613, 614, 700,
)

NEVER_SENT_BY_6X_7X: dict[int, str] = {
    104: "deprecated 4.10.2.3 intrusion event (IPv4); 5.2+ sends record 400",
    105: "deprecated 4.10.2.3 intrusion event (IPv6); 5.2+ sends record 400",
}
"""Record types with a table that a 6.x/7.x FMC never streams (ENC3 `core.py` lists them as
deprecated): decoded so an old archive still reads, but the emulator does not send them."""


def block_versions(record_type: int) -> str:
    """The blocks a record can carry, as `series/type` (empty for fixed layouts)."""
    found = []
    for _, kind in RECORDS[record_type].layout:
        if isinstance(kind, L.Block):
            found += [f"{kind.series}/{t}" for t in kind.types or ()]
    return ", ".join(found)


def formats(record_type: int) -> str:
    """Which output formats map the record, and how (read from the formats' own tables).

    JSON writes every field of every record. Splunk uses eNcore's keys for the types in
    `SPLUNK_KEYS` and our field names (nested ones dotted) for the rest. CEF and ECS have a
    dedicated mapping for a few families and a generic one for every other record (CEF: the
    shared fields under their usual keys, `RNA:<event type>:<subtype>` signatures for
    discovery records; ECS: the common fields, the record's category, and the whole record
    under `cisco.firepower`)."""
    splunk = "splunk (eNcore keys)" if record_type in SPLUNK_KEYS else "splunk (field names)"
    cef_map = "cef" if record_type in cef.DEDICATED else "cef (generic)"
    ecs_map = "ecs" if record_type in ecs.DEDICATED else "ecs (generic)"
    return f"json, {splunk}, {cef_map}, {ecs_map}"


def rows() -> list[tuple[int, str, str, str, str, str]]:
    """(record type, name, category, blocks, how it is used, formats) for every §9 type and
    table."""
    named = {name for spec in EVENT_NAMES for name in spec.fields}
    out = []
    for record_type in sorted(set(FACT_SHEET_RECORDS) | set(RECORDS)):
        layout = RECORDS.get(record_type)
        if layout is None:
            out.append((record_type, "", "", "", "not covered yet (kept as raw hex)",
                        "json (raw hex)"))
            continue
        if record_type in LEARN:
            use = f"names `{LEARN[record_type].kind}`"
        else:
            fields = _field_names(layout.layout)
            ids = sorted(fields & named)
            use = f"decorated ({len(ids)} id fields named)" if ids else "decoded"
        if record_type in NEVER_SENT_BY_6X_7X:
            use += "; legacy, never sent by a 6.x/7.x FMC"
        out.append((record_type, layout.name, layout.category, block_versions(record_type),
                    use, formats(record_type)))
    return out


def _field_names(layout: tuple, seen: frozenset = frozenset()) -> set[str]:
    """Every field name a record can carry, inside nested blocks and list items too (the
    decorator names ids wherever they sit)."""
    names = set()
    for name, kind in layout:
        if name:
            names.add(name)
        block = kind.inner if isinstance(kind, L.ListOf) else kind
        if isinstance(block, L.Block):
            for block_type in block.types or ():
                compiled = block.layout_for(block_type)
                key = (block.series, block_type)
                if compiled is not None and key not in seen:
                    names |= _field_names(compiled.layout, seen | {key})
    return names


def render_text() -> str:
    table = rows()
    covered = sum(1 for row in table if row[1])
    lines = [f"{'type':>5}  {'name':<44} {'category':<13} {'blocks':<30} use"]
    for record_type, name, category, blocks, use, _ in table:
        lines.append(f"{record_type:>5}  {name or '-':<44} {category or '-':<13} "
                     f"{blocks or '-':<30} {use}")
    missing = len(table) - covered
    lines.append(f"{covered} record types decoded, {missing} of the fact sheet's not yet.")
    return "\n".join(lines) + "\n"


def render_markdown() -> str:
    table = rows()
    covered = sum(1 for row in table if row[1])
    out = [
        "# Record coverage",
        "",
        "Generated from the code by `python -m estreamer.coverage > docs/records.md` (also "
        "`estreamer records`); do not edit by hand (a test checks it is current). Every "
        "record type the protocol fact sheet (§9) names is listed; field layouts are in "
        "[fields.md](fields.md).",
        "",
        f"{covered} record types decoded; {len(table) - covered} named by the fact sheet are "
        "not covered yet and pass through as raw hex." if covered < len(table) else
        f"{covered} record types decoded: every one the fact sheet names.",
        "",
        "Every type but the legacy ones ("
        + ", ".join(f"{t}: {why}" for t, why in NEVER_SENT_BY_6X_7X.items())
        + ") is also generated by the FMC emulator, in proportions like a real FMC's; a test "
        "streams each one through it and decodes it.",
        "",
        "Formats: JSON writes every field of every record. `splunk (eNcore keys)` uses "
        "eNcore's key names (docs/formats.md); `splunk (field names)` writes our field names, "
        "nested ones dotted. `cef`/`ecs` have a mapping of their own for the record; "
        "`(generic)` means the shared fields (device, addresses, ports, user, time) under the "
        "format's usual keys, with discovery records signed `RNA:<event type>:<subtype>` in "
        "CEF and the whole record under `cisco.firepower` in ECS.",
        "",
        "| type | name | category | blocks (series/type) | use | formats |",
        "|---:|---|---|---|---|---|",
    ]
    for record_type, name, category, blocks, use, fmts in table:
        out.append(f"| {record_type} | {name or '—'} | {category or '—'} | {blocks or '—'} "
                   f"| {use} | {fmts} |")
    return "\n".join(out) + "\n"


def records_command() -> int:
    sys.stdout.write(render_text())
    return 0


if __name__ == "__main__":
    sys.stdout.write(render_markdown())
