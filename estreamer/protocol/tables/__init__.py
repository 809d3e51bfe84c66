"""The record and block layout tables (fact sheet §7–§10), one module per family.

`RECORDS` maps a wire record type to its `RecordLayout`; block layouts are registered in
`estreamer.protocol.layout.BLOCKS` under (series, block type). Field names are snake_case
English and documented in docs/fields.md."""

from dataclasses import dataclass, field

from estreamer.protocol import speedups
from estreamer.protocol.layout import CompiledLayout, compile_layout, register_blocks
from estreamer.protocol.tables import (
    connection,
    correlation,
    discovery,
    file_malware,
    host,
    intrusion,
    metadata,
    user,
)


@dataclass(frozen=True)
class RecordLayout:
    name: str
    category: str  # metadata | intrusion | packet | connection | file | malware | ...
    layout: tuple
    compiled: CompiledLayout = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "compiled", compile_layout(self.layout))


RECORDS: dict[int, RecordLayout] = {}

_MODULES = (metadata, intrusion, connection, file_malware, discovery, user, correlation, host)
for _module in _MODULES:
    for _key in _module.BLOCKS:
        if any(_key in other.BLOCKS for other in _MODULES if other is not _module):
            raise ValueError(f"block {_key} defined twice")
    register_blocks(_module.BLOCKS)
for _module in _MODULES:
    for _record_type, (_name, _category, _layout) in _module.RECORDS.items():
        if _record_type in RECORDS:
            raise ValueError(f"record type {_record_type} defined twice")
        RECORDS[_record_type] = RecordLayout(_name, _category, _layout)

# Last, once every block is registered: the optional compiled decoder for every layout.
speedups.install(record.compiled for record in RECORDS.values())
