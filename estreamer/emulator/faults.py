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
- `close-header`: the first `HEADER_CUT` bytes of bundle N's 8-byte message header, then
  the connection closes (the client holds a header it can never finish).
- `close-tls`: the first half of bundle N through TLS, then the first bytes of a TLS record
  written straight to the socket, then the socket is shut down without a TLS close_notify:
  the client's TLS layer sees a record cut short. The record's bytes are not a real
  encryption of anything, which the client cannot tell: it cannot decrypt a record before
  it is whole, so a cut real record and this one look the same to it.
- `silent`: from bundle N on, nothing more at all (no bundles, no keepalives) while the
  connection stays open: a hung FMC, which only a client-side idle timeout can detect.
- `slow`: from bundle N on, the session sends at most `value` bytes per second (default
  `SLOW_RATE`): backpressure from a slow server or link.
- `restart`: instead of bundle N, the whole emulator stops (every connection drops, the
  port closes) and starts again on the same port `value` seconds later (default
  `RESTART_DOWNTIME`), keeping its history and ledger, like an FMC service restart.

`value` is the one number a fault kind may take (`slow`, `restart`); `Fault.parse` reads it
after `=`.

Injected records are in the ledger with `injected=True`; a cut bundle is not in the ledger
at all (its records never arrived whole)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from estreamer.errors import ConfigError

KINDS = ("error", "close", "unknown-record", "garbage-string", "corrupt-record",
         "close-header", "close-tls", "silent", "slow", "restart")

CUTS = ("close", "close-header", "close-tls")
"""Faults that send part of bundle N and close: those records are not in the ledger."""

HEADER_CUT = 5
"""Bytes of the 8-byte message header sent by `close-header`: version, type and one byte of
the length word, so the cut falls inside the length itself."""
SLOW_RATE = 16 * 1024
"""Bytes per second of a `slow` session unless the fault says otherwise."""
RESTART_DOWNTIME = 0.5
"""Seconds the port stays closed during a `restart` unless the fault says otherwise."""

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
    value: float | None = None  # bytes per second for `slow`, seconds down for `restart`

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"unknown fault {self.kind!r}; expected one of {', '.join(KINDS)}")
        if self.bundle < 0 or (self.bundle == 0 and self.kind != "error"):
            raise ConfigError(f"fault {self.kind!r} needs a bundle number ≥ 1")
        if self.value is not None:
            if self.kind not in ("slow", "restart"):
                raise ConfigError(f"fault {self.kind!r} takes no value")
            if self.value < 0 or (self.kind == "slow" and self.value == 0):
                least = "above 0" if self.kind == "slow" else "of at least 0"
                raise ConfigError(f"fault {self.kind!r} needs a value {least}")

    @property
    def rate(self) -> float:
        """Bytes per second of a `slow` fault."""
        return self.value if self.value is not None else SLOW_RATE

    @property
    def downtime(self) -> float:
        """Seconds without a listener during a `restart` fault."""
        return self.value if self.value is not None else RESTART_DOWNTIME

    def applies(self, session: int, bundle: int) -> bool:
        return self.bundle == bundle and (self.session is None or self.session == session)

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """`KIND[@BUNDLE][/SESSION][=VALUE]`, SESSION a number or `*` for every session:
        `close@3`, `error@0`, `unknown-record@2/*`, `slow@1=4096`, `restart@5=2`. For a
        command-line `--fault` option."""
        text = spec.strip()
        session: int | None = 1
        bundle = 1
        value: float | None = None
        try:
            if "=" in text:
                text, _, amount = text.partition("=")
                value = float(amount)
            if "/" in text:
                text, _, who = text.partition("/")
                session = None if who == "*" else int(who)
            if "@" in text:
                text, _, at = text.partition("@")
                bundle = int(at)
        except ValueError:
            raise ConfigError(
                f"cannot read fault {spec!r}; expected KIND[@BUNDLE][/SESSION][=VALUE]"
            ) from None
        return cls(text, bundle, session, value=value)


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
