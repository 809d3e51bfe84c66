"""Records: the record header (fact sheet §6) and decoding a record by its type's layout.

`decode_record()` is total: whatever the bytes, it returns a `Record`. A record that does not
fit its layout comes back with `error` set and its payload as `raw` hex, so a caller can log
it and still keep it; unknown record types come back with their header and `raw` hex too."""

from __future__ import annotations

import hashlib
import struct
from typing import Any

from estreamer.errors import DecodeError
from estreamer.protocol.layout import Notes
from estreamer.protocol.tables import RECORDS, RecordLayout

_RECORD_HEADER = struct.Struct(">LL")
_ARCHIVE = struct.Struct(">LL")
_U32 = struct.Struct(">L")
_new = object.__new__
_HEADER_AND_ARCHIVE = struct.Struct(">LLL")  # with the 16-byte form's timestamp, if it has one


_HEADER_KEYS = frozenset({"record_type", "record_name", "archive_timestamp"})


class Record:
    """One decoded record. `fields` are its layout's values in wire order; `to_dict()` is
    the event every output starts from (header keys first, then the fields).

    The compiled decoder makes that event dict directly (`event=`), and `fields` is then
    worked out from it on first use: the pipeline only ever asks for the event, and a dict
    copied whole is several times cheaper than one built key by key."""

    __slots__ = (
        "_digest",
        "_event",
        "_fields",
        "archive_timestamp",
        "category",
        "error",
        "name",
        "netmap_id",
        "notes",
        "offset",
        "raw",
        "record_type",
    )

    def __init__(
        self,
        record_type: int,
        name: str,
        fields: dict[str, Any] | None = None,
        archive_timestamp: int | None = None,  # only event records carry one (bit 23)
        netmap_id: int = 0,
        offset: int = 0,  # stream offset of the record header, for error reports
        error: str | None = None,
        notes: Notes | None = None,
        category: str = "unknown",
        raw: bytes | None = None,  # the wire bytes, header included: what `digest` is of
        *,
        event: dict[str, Any] | None = None,
    ):
        self.record_type = record_type
        self.name = name
        self._fields = fields if fields is not None or event is not None else {}
        self.archive_timestamp = archive_timestamp
        self.netmap_id = netmap_id
        self.offset = offset
        self.error = error
        self.notes = notes if notes is not None else []
        self.category = category
        self.raw = raw
        self._digest: str | None = None
        self._event = event

    @property
    def fields(self) -> dict[str, Any]:
        fields = self._fields
        if fields is None:
            event = self._event
            if event is None:  # handed over by take_event (and maybe changed since)
                fields = self._fields = decode_record(self.raw or b"", self.offset).fields
                return fields
            # No layout field shares a name with a header key (tests/test_speedups.py).
            fields = self._fields = {key: value for key, value in event.items()
                                     if key not in _HEADER_KEYS}
        return fields

    @fields.setter
    def fields(self, value: dict[str, Any]) -> None:
        self._fields = value
        self._event = None  # made again from the new fields

    @property
    def decoded_event(self) -> dict[str, Any] | None:
        """The event dict the compiled decoder made (`to_dict`'s shape: the header's keys
        first), or None; to read only, as `to_dict` hands out copies of it."""
        return self._event

    @property
    def digest(self) -> str | None:
        """record_digest of the wire bytes, taken on first use: decoding does not need it,
        and a consumer that does not de-duplicate (`estreamer decode`) never pays for it."""
        if self._digest is None and self.raw is not None:
            self._digest = record_digest(self.raw)
        return self._digest

    @property
    def known(self) -> bool:
        return self.record_type in RECORDS

    def to_dict(self) -> dict[str, Any]:
        """The record as one flat-at-the-top mapping, the shape every output format starts
        from: header fields first, then the layout's fields in wire order. A new dict each
        call: the caller may add to it (the decorator does)."""
        if self._event is not None:
            return self._event.copy()
        out: dict[str, Any] = {"record_type": self.record_type, "record_name": self.name}
        if self.archive_timestamp is not None:
            out["archive_timestamp"] = self.archive_timestamp
        if self.netmap_id:
            out["netmap_id"] = self.netmap_id
        if self.error is not None:
            out["decode_error"] = self.error
        out.update(self.fields)
        return out

    def take_event(self) -> dict[str, Any]:
        """`to_dict()` for the pipeline, whose event is the record's last use: the dict the
        compiled decoder made, handed over instead of copied (a copy and its freeing were
        ~1 µs of a connection record's ~20). The record lets go of it; asked for `fields` or
        `to_dict()` later (a dead letter, a per-record callback), it decodes its wire bytes
        again, so what the caller does to the dict never shows through the record."""
        event = self._event
        if event is None or self.raw is None:
            return self.to_dict()
        self._event = None
        return event

    def _key(self) -> tuple:
        return (self.record_type, self.name, self.fields, self.archive_timestamp,
                self.netmap_id, self.offset, self.error, self.notes, self.category, self.raw)

    def __eq__(self, other: object) -> bool:
        if type(other) is not Record:
            return NotImplemented
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclass was

    def __repr__(self) -> str:
        return (f"Record(record_type={self.record_type!r}, name={self.name!r}, "
                f"fields={self.fields!r}, archive_timestamp={self.archive_timestamp!r}, "
                f"netmap_id={self.netmap_id!r}, offset={self.offset!r}, "
                f"error={self.error!r}, notes={self.notes!r}, category={self.category!r}, "
                f"raw={self.raw!r})")


def record_header(raw: bytes) -> tuple[int, int | None]:
    """(record type, archive timestamp or None) from a record's header alone, without
    decoding the rest; -1 for bytes too short for a header. Only the 16-byte header form
    carries the timestamp, told apart by length (§6.2)."""
    if len(raw) < 8:
        return -1, None
    type_word, length = _RECORD_HEADER.unpack_from(raw)
    return type_word & 0xFFFF, _U32.unpack_from(raw, 8)[0] if len(raw) == length + 16 else None


def decode_record(raw: bytes, offset: int = 0) -> Record:
    """Decode one record: the bytes from the record-type word to the end of the record, as
    carried by a type-4 message body or a bundle item. Every record keeps its bytes for its
    `digest`: the bookmark uses it to drop resent duplicates, tests to match the emulator's
    ledger."""
    size = len(raw)
    if size >= 16:
        # The compiled decoder's straight path for a well-formed record of a known type;
        # everything else (and every record without the extension) goes the long way. The
        # whole type word is the key: a record with a netmap id (rare) goes the long way.
        type_word, length, archive_timestamp = _HEADER_AND_ARCHIVE.unpack_from(raw)
        layout = RECORDS.get(type_word)
        fast = layout.compiled.fast_event if layout is not None else None
        if fast is not None:
            if size == length + 16:
                decoded = fast(raw, 16, size, type_word, layout.name, archive_timestamp)
            elif size == length + 8:
                archive_timestamp = None
                decoded = fast(raw, 8, size, type_word, layout.name, None)
            else:
                decoded = None
            if decoded is not None and decoded[1] == size:
                # Record(type_word, name, None, timestamp, 0, offset, None, [], category,
                # raw, event=...) made in place: half the cost of the call, per record.
                record = _new(Record)
                record.record_type = type_word
                record.name = layout.name
                record._fields = None
                record.archive_timestamp = archive_timestamp
                record.netmap_id = 0
                record.offset = offset
                record.error = None
                record.notes = []
                record.category = layout.category
                record.raw = raw
                record._digest = None
                record._event = decoded[0]
                return record
    record = _decode_record(raw, offset)
    record.raw = raw
    return record


def _decode_record(raw: bytes, offset: int) -> Record:
    if len(raw) < _RECORD_HEADER.size:
        return Record(
            -1,
            "Malformed",
            {"raw": raw.hex()},
            offset=offset,
            error=f"record of {len(raw)} bytes is shorter than its 8-byte header",
        )
    type_word, length = _RECORD_HEADER.unpack_from(raw)
    record_type = type_word & 0xFFFF
    layout = RECORDS.get(record_type)
    record = Record(
        record_type,
        layout.name if layout else f"Unknown record type {record_type}",
        {},
        netmap_id=(type_word >> 16) & 0x7FFF,
        offset=offset,
        category=layout.category if layout else "unknown",
    )
    # The header form is a property of each record, told apart only by length (§6.2).
    if len(raw) == length + 8:
        data_start = 8
    elif len(raw) == length + 16:
        record.archive_timestamp, _reserved = _ARCHIVE.unpack_from(raw, 8)
        data_start = 16
    else:
        record.fields["raw"] = raw[8:].hex()
        record.error = (
            f"record length {length} does not match its {len(raw)}-byte container "
            f"(expected container = length + 8 or + 16)"
        )
        return record
    if layout is None:
        record.fields["raw"] = raw[data_start:].hex()
        record.notes.append(
            (f"record:{record_type}", f"unknown record type {record_type}: kept as raw hex")
        )
        return record
    try:
        fields, end = layout.compiled.decode(raw, data_start, len(raw), record.notes)
    except DecodeError as exc:
        # Keep the bytes: a record that does not fit is reported, not lost.
        record.fields["raw"] = raw[data_start:].hex()
        record.error = f"{record.name} does not fit its layout: {exc}"
        return record
    record.fields = fields
    if end != len(raw):
        # A record longer than its layout: keep what is unread rather than lose it.
        record.notes.append(
            (
                f"rtail:{record_type}",
                f"{record.name} has {len(raw) - end} bytes beyond its layout; "
                f"kept as 'unparsed_tail'",
            )
        )
        fields["unparsed_tail"] = raw[end:].hex()
    return record


def encode_record(
    record_type: int,
    fields: dict[str, Any],
    archive_timestamp: int | None = None,
    netmap_id: int = 0,
) -> bytes:
    """The wire bytes of one record (header + data): what goes in a bundle item or a type-4
    message. With `archive_timestamp` the 16-byte extended header is used."""
    layout: RecordLayout | None = RECORDS.get(record_type)
    if layout is None:
        data = bytes.fromhex(fields["raw"])
    else:
        data = layout.compiled.encode(fields)
    type_word = (netmap_id & 0x7FFF) << 16 | record_type
    header = _RECORD_HEADER.pack(type_word, len(data))
    if archive_timestamp is not None:
        header += _ARCHIVE.pack(archive_timestamp, 0)
    return header + data


def record_digest(raw: bytes) -> str:
    """A short fingerprint of one record's wire bytes (header included, so the archive
    timestamp is part of it). A record the FMC resends after a restart is byte-identical, so
    the client de-duplicates by this, and the emulator's ledger uses it to prove nothing was
    lost or duplicated."""
    return hashlib.blake2b(raw, digest_size=8).hexdigest()


def decode_record_checked(raw: bytes, offset: int = 0) -> Record:
    """Like `decode_record`, but raise DecodeError instead of returning a malformed record
    (for tests and tools that want to stop at the first fault)."""
    record = decode_record(raw, offset)
    if record.error:
        raise DecodeError(record.error, offset)
    return record
