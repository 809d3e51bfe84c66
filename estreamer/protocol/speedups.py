"""The optional compiled decoder: layout tables turned into ops for `_speedups.Program`.

The C extension (estreamer/protocol/_speedups.c) is built when the project is installed and a
C compiler is there; without it, or with ESTREAMER_PURE_PYTHON=1 in the environment, every
layout is decoded by the generated Python decoders alone, with the same results. A Program
takes only the well-formed path: for anything unusual it answers None and the Python decoder
decodes the record again, so errors, notes and fallback values have one source.

Layouts with a wire type the ops cannot express are simply not compiled (Python decodes
them); `install()` reports how many were."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from estreamer.compiled import description, optional
from estreamer.protocol import layout as wire
from estreamer.protocol.layout import (
    BLOB,
    BLOCKS,
    STR,
    TEXT16,
    TEXT32,
    Block,
    CompiledLayout,
    Fixed,
    ListOf,
    Nested,
    TextFrom,
    When,
)

_speedups = optional("estreamer.protocol._speedups")
Program = _speedups.Program if _speedups is not None else None

AVAILABLE = Program is not None
DESCRIPTION = description("estreamer.protocol._speedups", AVAILABLE, "decoding is 2-3x slower")
"""What decodes, for the log line at start."""

# Op codes: the enum at the top of _speedups.c, in the same order.
(U8, U16, U32, U64, I32, IP, IPV4, UUID, MAC, RAW, STRING, BLOB_HEX, TEXT_U16, TEXT_U32,
 TEXT_FROM, BYTES_FROM, WHEN, NESTED, BLOCK, LIST) = range(20)

_INTEGERS = {"B": U8, "H": U16, "L": U32, "Q": U64, "l": I32}
_CONVERTED: dict[tuple[str, Callable[[Any], Any]], int] = {
    ("16s", wire.ip_to_text): IP,
    ("4s", wire.ipv4_to_text): IPV4,
    ("16s", wire.uuid_to_text): UUID,
    ("6s", wire.mac_to_text): MAC,
}


class _Unsupported(Exception):
    """A wire type the ops cannot express: this layout stays with the Python decoder."""


def _fixed_op(kind: Fixed) -> tuple[int, int]:
    """(op code, size argument) of a fixed-width field."""
    if kind.to_value is None and kind.code in _INTEGERS:
        return _INTEGERS[kind.code], 0
    op = _CONVERTED.get((kind.code, kind.to_value))  # type: ignore[arg-type]
    if op is not None:
        return op, 0
    if kind.to_value is bytes.hex and kind.code.endswith("s") and kind.code[:-1].isdigit():
        return RAW, int(kind.code[:-1])
    raise _Unsupported(f"fixed field {kind.code} with {kind.to_value}")


class _Compiler:
    """Builds Programs for compiled layouts. Block tables are dicts filled after the
    Programs that hold them exist, so layouts that contain themselves (through lists of
    blocks of their own series) compile without recursion."""

    def __init__(self) -> None:
        self.programs: dict[int, Any] = {}
        self.unsupported: set[int] = set()
        self.tables: dict[int, dict[int, Any]] = {}
        self.pending: list[tuple[Block, dict[int, Any]]] = []

    def program(self, compiled: CompiledLayout) -> Any | None:
        key = id(compiled)
        if key in self.programs:
            return self.programs[key]
        if key in self.unsupported:
            return None
        try:
            ops = tuple(self._op(name, kind) for name, kind in compiled.layout)
        except _Unsupported:
            self.unsupported.add(key)
            return None
        program = self.programs[key] = Program(ops)
        return program

    def finish(self) -> None:
        while self.pending:
            block, table = self.pending.pop()
            for block_type in self._types(block):
                compiled = block.layout_for(block_type)
                program = self.program(compiled) if compiled is not None else None
                if program is not None:  # otherwise Python decodes blocks of this type
                    table[block_type] = program

    @staticmethod
    def _types(block: Block) -> Iterable[int]:
        if block.types is not None:
            return block.types
        return [block_type for series, block_type in BLOCKS if series == block.series]

    def _table(self, block: Block) -> dict[int, Any]:
        table = self.tables.get(id(block))
        if table is None:
            table = self.tables[id(block)] = {}
            self.pending.append((block, table))
        return table

    def _op(self, name: str | None, kind: Any) -> tuple[int, str | None, int, Any]:
        if isinstance(kind, Block):
            return BLOCK, name, 0, self._table(kind)
        if name is None:
            raise _Unsupported("only a block may be merged into its parent")
        if isinstance(kind, Fixed):
            code, size = _fixed_op(kind)
            return code, name, size, None
        if kind is STR:
            return STRING, name, 0, None
        if kind is BLOB:
            return BLOB_HEX, name, 0, None
        if kind is TEXT16 or kind is TEXT32:
            return (TEXT_U16 if kind is TEXT16 else TEXT_U32), name, 0, None
        if type(kind) is TextFrom:
            return (TEXT_FROM if kind.as_text else BYTES_FROM), name, 0, kind.length_field
        if type(kind) is When:
            code, size = _fixed_op(kind.kind)
            if code == RAW:
                raise _Unsupported("a raw field behind a flag")
            return WHEN, name, code, kind.flag_field
        if type(kind) is Nested:
            program = self.program(kind.compiled)
            if program is None:
                raise _Unsupported("nested layout")
            return NESTED, name, 0, program
        if type(kind) is ListOf and isinstance(kind.inner, Block) and not kind.inner.inline:
            return LIST, name, 0, self._table(kind.inner)
        raise _Unsupported(type(kind).__name__)


def install(layouts: Iterable[CompiledLayout]) -> tuple[int, int]:
    """Give each layout (and every block layout) its compiled fast path, when the extension
    is there. Returns (compiled, left to Python)."""
    if Program is None:
        return 0, 0
    compiler = _Compiler()
    everything = [*layouts, *BLOCKS.values()]
    for compiled in everything:
        compiler.program(compiled)
    compiler.finish()
    done = 0
    for compiled in everything:
        program = compiler.programs.get(id(compiled))
        if program is not None:
            compiled.fast = program.decode
            compiled.fast_event = program.event
            done += 1
    return done, len(everything) - done


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Decode with the Python decoders alone inside the block (tests compare both paths;
    benchmarks measure both)."""
    from estreamer.protocol.tables import RECORDS

    layouts = {id(c): c for c in [*(r.compiled for r in RECORDS.values()), *BLOCKS.values()]}
    saved = {key: (compiled.fast, compiled.fast_event) for key, compiled in layouts.items()}
    for compiled in layouts.values():
        compiled.fast = compiled.fast_event = None
    try:
        yield
    finally:
        for key, compiled in layouts.items():
            compiled.fast, compiled.fast_event = saved[key]
