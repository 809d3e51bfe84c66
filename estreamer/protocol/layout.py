"""Wire layouts as data, compiled once to decoders and encoders.

A layout is a tuple of `(field_name, wire_type)` pairs, read in order (fact sheet §7, §10).
`compile_layout()` turns it into a `CompiledLayout`: consecutive fixed-size fields are merged
into one precomputed `struct.Struct`, variable fields (string blocks, nested blocks, lists,
length-prefixed text) get a small reader each. The same table drives the encoder, so every
layout can be round-tripped in tests and the emulator speaks exactly what the client reads.

Decoded values are plain Python: ints, `str` (text, IPs, UUIDs, MACs, hex for raw bytes),
dicts for nested blocks and lists of dicts. Every reader is bounded by the end of the
enclosing block or record and raises `DecodeError` (never IndexError or struct.error)."""

from __future__ import annotations

import ipaddress
import socket
import struct
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from estreamer.errors import DecodeError
from estreamer.memo import BoundedMemo

Notes = list[tuple[str, str]]
"""(dedup key, message) pairs a decode leaves for the caller to log once per key."""

_BLOCK_HEADER = struct.Struct(">LL")

STRING_BLOCK = 0
INTEGER_BLOCK = 7
BLOB_BLOCK = 10
LIST_BLOCK = 11
GENERIC_LIST_BLOCK = 31


# -- value conversions --------------------------------------------------------------------

_V4_MAPPED = b"\x00" * 10 + b"\xff\xff"
_ZERO12 = bytes(12)
_ZERO16 = bytes(16)


def ip_to_text(raw: bytes) -> str:
    """16-byte address: IPv4-mapped IPv6 as dotted IPv4, anything else as IPv6 text
    (inet_ntop: the C formatter, several times faster than ipaddress on this hot path)."""
    prefix = raw[:12]
    if prefix == _V4_MAPPED:
        return f"{raw[12]}.{raw[13]}.{raw[14]}.{raw[15]}"
    if prefix == _ZERO12:
        if raw == _ZERO16:
            return "::"  # an unset address: most optional address fields
        # glibc writes these IPv4-compatible forms as ::a.b.c.d; keep RFC 5952's ::x:y.
        return str(ipaddress.IPv6Address(raw))
    return socket.inet_ntop(socket.AF_INET6, raw)


def ip_from_text(text: str) -> bytes:
    address = ipaddress.ip_address(text)
    if address.version == 4:
        return _V4_MAPPED + address.packed
    return address.packed


def ipv4_to_text(raw: bytes) -> str:
    return f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}"


def ipv4_from_text(text: str) -> bytes:
    return ipaddress.IPv4Address(text).packed


def uuid_to_text(raw: bytes) -> str:
    # Same text as str(uuid.UUID(bytes=raw)), without building a UUID object per field.
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def uuid_from_text(text: str) -> bytes:
    return uuid.UUID(text).bytes


def mac_to_text(raw: bytes) -> str:
    return raw.hex(":")


def mac_from_text(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", "").replace("-", ""))


def text_from_bytes(raw: bytes) -> str:
    """Wire text: NULs dropped, UTF-8, or hex when the bytes are not text (as eNcore does)."""
    raw = raw.replace(b"\x00", b"")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.hex()


# -- wire types ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Fixed:
    """A fixed-width field: a struct code and optional value conversions. `repeats` marks
    values that recur across records (zone, policy and interface UUIDs, addresses): their
    text is memoised, so a stream pays for each distinct value once."""

    code: str
    to_value: Callable[[Any], Any] | None = None
    from_value: Callable[[Any], Any] | None = None
    default: Any = 0
    repeats: bool = False


MEMO_LIMIT = 1 << 12
"""Values kept per wire type's memo: ~3 MiB for the four when full (at 1 << 16, ~48 MiB, the
climb a long pure-Python run showed)."""


_MEMOS: dict[Callable[[Any], Any], BoundedMemo] = {}


def _memo_for(convert: Callable[[Any], Any]) -> BoundedMemo:
    memo = _MEMOS.get(convert)
    if memo is None:
        memo = _MEMOS[convert] = BoundedMemo(convert, MEMO_LIMIT)
    return memo


U8 = Fixed("B")
U16 = Fixed("H")
U32 = Fixed("L")
U64 = Fixed("Q")
I32 = Fixed("l")
IP = Fixed("16s", ip_to_text, ip_from_text, "::", repeats=True)
IPV4 = Fixed("4s", ipv4_to_text, ipv4_from_text, "0.0.0.0", repeats=True)
UUID = Fixed(
    "16s", uuid_to_text, uuid_from_text, "00000000-0000-0000-0000-000000000000", repeats=True
)
MAC = Fixed("6s", mac_to_text, mac_from_text, "00:00:00:00:00:00", repeats=True)


def Raw(size: int) -> Fixed:
    """`size` raw bytes (hashes, fingerprints, security contexts), shown as hex."""
    return Fixed(f"{size}s", bytes.hex, bytes.fromhex, "00" * size)


@dataclass(frozen=True)
class LengthOf(Fixed):
    """A length word for a later `TextFrom`/`BytesFrom` field; the encoder fills it in."""

    target: str = ""


def LengthU16(target: str) -> LengthOf:
    return LengthOf("H", target=target)


def LengthU32(target: str) -> LengthOf:
    return LengthOf("L", target=target)


class Variable:
    """A field whose size is known only while reading."""

    default: Any = None

    def decode(self, buf: bytes, off: int, end: int, values: dict, notes: Notes) -> tuple[Any, int]:
        raise NotImplementedError

    def encode(self, value: Any, values: Mapping) -> bytes:
        raise NotImplementedError


def _need(off: int, size: int, end: int, what: str) -> None:
    if off + size > end:
        raise DecodeError(f"{what} needs {size} bytes at {off}, only {max(end - off, 0)} left")


def _short(names: tuple[str, str], size: int, off: int, end: int) -> None:
    raise DecodeError(
        f"fields {names[0]}..{names[1]} need {size} bytes, only {max(end - off, 0)} left"
    )


def _bad_string(buf: bytes, off: int, end: int) -> None:
    """Raise the error STR.decode would raise for the string block at `off`."""
    STR.decode(buf, off, end, {}, [])
    raise AssertionError("unreachable: the inline string check and STR.decode disagree")


def _block_header(buf: bytes, off: int, end: int, what: str) -> tuple[int, int]:
    _need(off, 8, end, f"{what} header")
    block_type, length = _BLOCK_HEADER.unpack_from(buf, off)
    if length < 8 or off + length > end:
        raise DecodeError(
            f"{what} (block type {block_type}) length {length} does not fit the "
            f"{end - off} bytes left"
        )
    return block_type, length


class _WireBlob(Variable):
    """Series-1 string (type 0) or BLOB (type 10) block: u32 type, u32 length (header
    included), then the bytes. Non-empty strings carry a trailing NUL the length counts."""

    def __init__(self, block_type: int, as_text: bool):
        self.block_type = block_type
        self.as_text = as_text
        self.default = ""

    def decode(self, buf, off, end, values, notes):
        block_type, length = _block_header(
            buf, off, end, "string block" if self.as_text else "BLOB block"
        )
        if block_type != self.block_type:
            raise DecodeError(f"expected block type {self.block_type} at {off}, found {block_type}")
        raw = bytes(buf[off + 8 : off + length])
        return (text_from_bytes(raw) if self.as_text else raw.hex()), off + length

    def encode(self, value, values):
        if self.as_text:
            raw = value.encode() + b"\x00" if value else b""
        else:
            raw = bytes.fromhex(value)
        return _BLOCK_HEADER.pack(self.block_type, 8 + len(raw)) + raw


STR = _WireBlob(STRING_BLOCK, as_text=True)
BLOB = _WireBlob(BLOB_BLOCK, as_text=False)


class _PrefixedText(Variable):
    """A u16/u32 length, then that many bytes of text, no block header and no NUL
    (records 4, 54, 66, 67 and the id/length/name metadata of §10.3)."""

    def __init__(self, code: str):
        self.length = struct.Struct(">" + code)
        self.default = ""

    def decode(self, buf, off, end, values, notes):
        _need(off, self.length.size, end, "text length")
        (count,) = self.length.unpack_from(buf, off)
        off += self.length.size
        _need(off, count, end, "text")
        return text_from_bytes(bytes(buf[off : off + count])), off + count

    def encode(self, value, values):
        raw = value.encode()
        return self.length.pack(len(raw)) + raw


TEXT16 = _PrefixedText("H")
TEXT32 = _PrefixedText("L")


class TextFrom(Variable):
    """Text whose length came in an earlier `LengthOf` field (rule message, record 66)."""

    default = ""

    def __init__(self, length_field: str, as_text: bool = True):
        self.length_field = length_field
        self.as_text = as_text

    def decode(self, buf, off, end, values, notes):
        count = values[self.length_field]
        _need(off, count, end, self.length_field)
        raw = bytes(buf[off : off + count])
        return (text_from_bytes(raw) if self.as_text else raw.hex()), off + count

    def raw(self, value) -> bytes:
        return value.encode() if self.as_text else bytes.fromhex(value)

    def encode(self, value, values):
        return self.raw(value)


def BytesFrom(length_field: str) -> TextFrom:
    """Raw bytes (shown as hex) whose length came in an earlier `LengthOf` field."""
    return TextFrom(length_field, as_text=False)


class When(Variable):
    """A field present only when an earlier field is non-zero (the discovery header's IPv6
    address after its has-IPv6 flag). Absent decodes as None."""

    def __init__(self, flag_field: str, kind: Fixed):
        self.flag_field = flag_field
        self.struct = struct.Struct(">" + kind.code)
        self.kind = kind
        self.default = None

    def decode(self, buf, off, end, values, notes):
        if not values.get(self.flag_field):
            return None, off
        _need(off, self.struct.size, end, self.flag_field)
        (value,) = self.struct.unpack_from(buf, off)
        if self.kind.to_value:
            value = self.kind.to_value(value)
        return value, off + self.struct.size

    def encode(self, value, values):
        if not values.get(self.flag_field):
            return b""
        if value is None:
            value = self.kind.default
        if self.kind.from_value:
            value = self.kind.from_value(value)
        return self.struct.pack(value)


class Nested(Variable):
    """A headerless group of fields kept under one name (the discovery event header)."""

    def __init__(self, layout: tuple):
        self.compiled = compile_layout(layout)
        self.default = None

    def decode(self, buf, off, end, values, notes):
        return self.compiled.decode(buf, off, end, notes)

    def encode(self, value, values):
        return self.compiled.encode(value or {})


class Block(Variable):
    """One data block (u32 type, u32 length including the header, then fields) whose type
    selects its layout from `registry[(series, type)]`. Series 1 and 2 reuse numbers, so the
    enclosing record or field names the series (fact sheet §7).

    `inline=True` merges the block's fields into the parent (the record is the block).
    Unknown block types are skipped by their length and come out as `raw` hex, with a note.
    A block longer than its layout keeps going (newer minor versions append fields); the
    unread tail is noted, never silently dropped."""

    def __init__(self, series: int, types: tuple[int, ...] | None = None, inline: bool = False,
                 layout: tuple | None = None):
        if layout is not None and not types:
            raise ValueError("a block with its own layout must name its block types")
        self.series = series
        self.types = types
        self.inline = inline
        # Generic blocks (the integer block 7, the string block 35) mean what the field that
        # holds them says (§7): a bugtraq id is not an IOC id. `layout` names their fields
        # here, for `types` only, instead of the registry's generic names.
        self.layout = compile_layout(layout) if layout is not None else None
        self.default = None

    def layout_for(self, block_type: int) -> CompiledLayout | None:
        """The layout this field reads `block_type` with, or None (unknown or unexpected)."""
        if self.types is not None and block_type not in self.types:
            return None
        if self.layout is not None:
            return self.layout
        return BLOCKS.get((self.series, block_type))

    def decode(self, buf, off, end, values, notes):
        block_type, length = _block_header(buf, off, end, f"series {self.series} block")
        block_end = off + length
        compiled = self.layout_for(block_type)
        if compiled is None:
            notes.append(
                (
                    f"block:{self.series}:{block_type}",
                    f"unknown series {self.series} block type {block_type}: kept as raw hex",
                )
            )
            return {
                "block_type": block_type,
                "raw": bytes(buf[off + 8 : block_end]).hex(),
            }, block_end
        fields, used = compiled.decode_block(buf, off + 8, block_end, notes, block_type)
        if used != block_end:
            notes.append(
                (
                    f"tail:{self.series}:{block_type}",
                    f"series {self.series} block {block_type} has {block_end - used} bytes more "
                    f"than its layout; kept as 'unparsed_tail'",
                )
            )
            fields["unparsed_tail"] = bytes(buf[used:block_end]).hex()
        return fields, block_end

    def encode(self, value, values):
        block_type = value.get("block_type")
        if block_type is None and self.types and len(self.types) == 1:
            block_type = self.types[0]
        compiled = self.layout_for(block_type)
        if "raw" in value and compiled is None:
            body = bytes.fromhex(value["raw"])
        else:
            body = (compiled or block_layout(self.series, block_type)).encode(value)
        return _BLOCK_HEADER.pack(block_type, 8 + len(body)) + body


class ListOf(Variable):
    """A list block (type 11, or generic list 31): its length covers the inner blocks,
    read until the list is used up. Decodes as a list of dicts."""

    def __init__(self, inner: Block, list_type: int = LIST_BLOCK):
        self.inner = inner
        self.list_type = list_type
        self.default = []

    def decode(self, buf, off, end, values, notes):
        _, length = _block_header(buf, off, end, "list block")
        list_end = off + length
        items = []
        pos = off + 8
        while pos < list_end:
            item, pos = self.inner.decode(buf, pos, list_end, values, notes)
            items.append(item)
        return items, list_end

    def encode(self, value, values):
        body = b"".join(self.inner.encode(item, values) for item in value)
        return _BLOCK_HEADER.pack(self.list_type, 8 + len(body)) + body


# -- compilation ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _FixedRun:
    struct: struct.Struct
    names: tuple[str, ...]
    to_values: tuple[tuple[int, Callable], ...]
    kinds: tuple[Fixed, ...]


@dataclass(frozen=True, slots=True)
class _VariableStep:
    name: str | None
    kind: Variable


class CompiledLayout:
    """A layout compiled to a decoder and an encoder. Build with `compile_layout()`."""

    def __init__(self, layout: tuple):
        self.layout = layout
        self.names = tuple(name for name, _ in layout if name is not None)
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"duplicate field names in layout {self.names}")
        self.steps: list[_FixedRun | _VariableStep] = []
        run: list[tuple[str, Fixed]] = []
        for name, kind in layout:
            if isinstance(kind, Fixed):
                run.append((name, kind))
                continue
            self._close(run)
            run = []
            self.steps.append(_VariableStep(name, kind))
        self._close(run)
        self.fixed_size = sum(s.struct.size for s in self.steps if isinstance(s, _FixedRun))
        self.fast: Callable[[bytes, int, int], tuple[dict, int] | None] | None = None
        """The compiled decoder's path (estreamer.protocol.speedups), when it is there:
        (values, offset) for a well-formed layout, None for anything the Python decoder
        must see."""
        self.fast_event: Callable[..., tuple[dict, int] | None] | None = None
        """The same path making a record's whole event dict (`Record.to_dict`'s shape):
        fast_event(buf, off, end, record_type, record_name, archive_timestamp or None)."""
        self._decode = self._generate_decoder()
        self.decode_block = self._generate_decoder(with_block_type=True)
        """decode_block(buf, off, end, notes, block_type): the fields of a block whose
        header (type `block_type`) was read by the caller, `block_type` first."""

    def _close(self, run: list[tuple[str, Fixed]]) -> None:
        if not run:
            return
        self.steps.append(
            _FixedRun(
                struct.Struct(">" + "".join(kind.code for _, kind in run)),
                tuple(name for name, _ in run),
                tuple((i, kind.to_value) for i, (_, kind) in enumerate(run) if kind.to_value),
                tuple(kind for _, kind in run),
            )
        )

    def decode(self, buf: bytes, off: int, end: int, notes: Notes) -> tuple[dict, int]:
        """Read the fields from buf[off:end]; return (values, offset after the last field)."""
        fast = self.fast
        if fast is not None:
            result = fast(buf, off, end)
            if result is not None:
                return result
        return self._decode(buf, off, end, notes)

    def _generate_decoder(
        self, with_block_type: bool = False
    ) -> Callable[..., tuple[dict, int]]:
        """Write this layout's decoder as straight-line Python and compile it once.

        The table stays the single description of the wire format; this only removes the
        per-field interpretation work from the hot path: one unpack per fixed run into
        locals, string blocks inline, and a single dict display at the end (building the
        dict once is much cheaper than growing it field by field). `with_block_type` makes
        the variant a Block uses: `block_type` comes first, as the block's own field."""
        env: dict[str, Any] = {
            "_short": _short,
            "_bad_string": _bad_string,
            "_BLOCK_HEADER": _BLOCK_HEADER,
            "_text": text_from_bytes,
        }
        head = "def decode(buf, off, end, notes, block_type):" if with_block_type else \
            "def decode(buf, off, end, notes):"
        lines = [head]
        entries = ["'block_type': block_type"] if with_block_type else []
        for index, step in enumerate(self.steps):
            if type(step) is _FixedRun:
                size = step.struct.size
                env[f"_S{index}"] = step.struct
                env[f"_N{index}"] = (step.names[0], step.names[-1])
                locals_ = [f"_{index}_{i}" for i in range(len(step.names))]
                converters = dict(step.to_values)
                lines.append(f"    if off + {size} > end: _short(_N{index}, {size}, off, end)")
                target = ", ".join(locals_) + ("," if len(locals_) == 1 else "")
                lines.append(f"    {target} = _S{index}.unpack_from(buf, off)")
                lines.append(f"    off += {size}")
                for i, (name, local) in enumerate(zip(step.names, locals_, strict=True)):
                    if i in converters and step.kinds[i].repeats:
                        env[f"_C{index}_{i}"] = _memo_for(converters[i])
                        entries.append(f"{name!r}: _C{index}_{i}[{local}]")
                    elif i in converters:
                        env[f"_C{index}_{i}"] = converters[i]
                        entries.append(f"{name!r}: _C{index}_{i}({local})")
                    else:
                        entries.append(f"{name!r}: {local}")
            elif step.kind is STR and step.name is not None:
                lines += [
                    "    if off + 8 > end: _bad_string(buf, off, end)",
                    "    _t, _n = _BLOCK_HEADER.unpack_from(buf, off)",
                    "    if _t != 0 or _n < 8 or off + _n > end: _bad_string(buf, off, end)",
                    f"    _v{index} = _text(buf[off + 8 : off + _n]) if _n > 8 else ''",
                    "    off += _n",
                ]
                entries.append(f"{step.name!r}: _v{index}")
            else:
                env[f"_K{index}"] = step.kind
                # Most kinds never look at the fields read before them; the few that do
                # (When, TextFrom) get them as a dict built just for that call.
                earlier = "None" if isinstance(step.kind, _CONTEXT_FREE) else \
                    "{" + ", ".join(entries) + "}"
                lines.append(
                    f"    _v{index}, off = _K{index}.decode(buf, off, end, {earlier}, notes)"
                )
                entries.append(f"**_v{index}" if step.name is None else
                               f"{step.name!r}: _v{index}")
        lines.append(f"    return {{{', '.join(entries)}}}, off")
        exec("\n".join(lines), env)  # the source is built above from the table alone
        return env["decode"]

    def encode(self, values: Mapping[str, Any]) -> bytes:
        """Build the wire bytes from a dict shaped like `decode()`'s output. Missing fields
        take their type's default (0, empty text, zero address); length words are computed."""
        parts = []
        for step in self.steps:
            if type(step) is _FixedRun:
                row = []
                for name, kind in zip(step.names, step.kinds, strict=True):
                    if isinstance(kind, LengthOf):
                        target = self._variable(kind.target)
                        value = len(target.raw(values.get(kind.target, target.default)))
                    else:
                        value = values.get(name, kind.default)
                        if kind.from_value:
                            value = kind.from_value(value)
                    row.append(value)
                parts.append(step.struct.pack(*row))
            elif step.name is None:
                parts.append(step.kind.encode(values, values))
            else:
                value = values.get(step.name, step.kind.default)
                parts.append(step.kind.encode(value, values))
        return b"".join(parts)

    def _variable(self, name: str) -> TextFrom:
        for step in self.steps:
            if type(step) is _VariableStep and step.name == name:
                return step.kind  # type: ignore[return-value]
        raise KeyError(name)


_COMPILED: dict[int, CompiledLayout] = {}


def compile_layout(layout: tuple) -> CompiledLayout:
    """Compile once per layout object; later calls return the cached compilation."""
    compiled = _COMPILED.get(id(layout))
    if compiled is None or compiled.layout is not layout:
        compiled = _COMPILED[id(layout)] = CompiledLayout(layout)
    return compiled


BLOCKS: dict[tuple[int, int], CompiledLayout] = {}
"""(series, block type) → compiled block layout (fields after the 8-byte header).
Filled by `estreamer.protocol.tables` at import."""


def register_blocks(tables: Mapping[tuple[int, int], tuple]) -> None:
    for key, layout in tables.items():
        BLOCKS[key] = compile_layout(layout)


def block_layout(series: int, block_type: int) -> CompiledLayout:
    try:
        return BLOCKS[(series, block_type)]
    except KeyError:
        raise KeyError(f"no layout for series {series} block {block_type}") from None


_CONTEXT_FREE = (_WireBlob, _PrefixedText, Nested, Block, ListOf)
"""Variable kinds whose decode ignores the fields read before them."""
