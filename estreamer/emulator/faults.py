"""Faults the emulator can inject, so the client's error paths get tested against a server
and not only against hand-made bytes.

A `Fault` fires at one bundle of one session (by default the first session only, so a client
that reconnects afterwards gets a clean stream — the case a reconnect test wants):

- `error`: an Error message (code, text) instead of bundle N, then the connection closes,
  as the FMC does after an error (fact sheet §1). N = 0 answers the Event Stream Request
  itself with the error.
- `close`: the first half of bundle N's bytes, then the connection closes (a cut inside a
  message, the way a crash or a dropped link looks to the client).
- `unknown-record`: bundle N carries one extra record of a type no table knows (9999); the
  client must skip it by its length and go on.
- `garbage-string`: bundle N carries one extra User record (98) whose name is not UTF-8; it
  still fits its layout, so a client keeps it (eNcore shows such text as hex).
- `corrupt-record`: bundle N carries one extra User record (98) whose string block claims
  more bytes than the record has; the client must report and skip that record only.

Injected records are in the ledger with `injected=True`; a cut bundle is not in the ledger
at all (its records never arrived whole)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from estreamer.errors import ConfigError

KINDS = ("error", "close", "unknown-record", "garbage-string", "corrupt-record")

UNKNOWN_RECORD_TYPE = 9999
"""No source names a record 9999 (fact sheet §9), so every client must treat it as unknown."""

DEFAULT_ERROR_CODE = 1
DEFAULT_ERROR_TEXT = "Emulated FMC error (fault injection)"
# UNCERTAIN (fact sheet §2.2): the FMC's error codes are not documented; only the guide's
# example (19, "No space") is known. A test can pass that pair explicitly.


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str
    bundle: int = 1  # bundle sequence it replaces or rides on (0: the request, for "error")
    session: int | None = 1  # 1-based session number; None: every session
    code: int = DEFAULT_ERROR_CODE
    text: str = DEFAULT_ERROR_TEXT

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"unknown fault {self.kind!r}; expected one of {', '.join(KINDS)}")
        if self.bundle < 0 or (self.bundle == 0 and self.kind != "error"):
            raise ConfigError(f"fault {self.kind!r} needs a bundle number ≥ 1")

    def applies(self, session: int, bundle: int) -> bool:
        return self.bundle == bundle and (self.session is None or self.session == session)

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """`KIND[@BUNDLE][/SESSION]`, SESSION a number or `*` for every session:
        `close@3`, `error@0`, `unknown-record@2/*`. For a command-line `--fault` option."""
        text = spec.strip()
        session: int | None = 1
        bundle = 1
        try:
            if "/" in text:
                text, _, who = text.partition("/")
                session = None if who == "*" else int(who)
            if "@" in text:
                text, _, at = text.partition("@")
                bundle = int(at)
        except ValueError:
            raise ConfigError(
                f"cannot read fault {spec!r}; expected KIND[@BUNDLE][/SESSION]"
            ) from None
        return cls(text, bundle, session)


def injected_record(kind: str) -> bytes:
    """The wire bytes (8-byte record header + data) of the record a fault adds."""
    if kind == "unknown-record":
        data = b"emulator: a record type no client knows"
        return struct.pack(">LL", UNKNOWN_RECORD_TYPE, len(data)) + data
    if kind == "garbage-string":
        name = b"\xff\xfe\xc3(garbage\x00"  # invalid UTF-8, NUL-terminated like real strings
        return _user_record(name, len(name))
    if kind == "corrupt-record":
        name = b"truncated\x00"
        return _user_record(name, len(name) + 64)  # claims 64 bytes the record lacks
    raise ValueError(f"fault {kind!r} adds no record")


def _user_record(name: bytes, claimed: int) -> bytes:
    # Record 98 = one series-2 block 57 (u32 id, u32 protocol, string block), §7. The id is
    # one no event uses, so a client's metadata cache is not disturbed.
    string_block = struct.pack(">LL", 0, 8 + claimed) + name
    body = struct.pack(">LL", 999_999, 0) + string_block
    block = struct.pack(">LL", 57, 8 + len(body)) + body
    return struct.pack(">LL", 98, len(block)) + block
