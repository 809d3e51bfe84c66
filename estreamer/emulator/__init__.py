"""An FMC that speaks eStreamer over mutual TLS, for tests and `estreamer demo`/`emulate`.

`history` makes the records, `session` is the protocol (sans-IO), `server` the TLS server,
`ledger` the account of what was sent, `faults` the errors it can inject."""

from estreamer.emulator.faults import Fault
from estreamer.emulator.history import History
from estreamer.emulator.ledger import Ledger, LedgerEntry
from estreamer.emulator.server import Emulator
from estreamer.emulator.session import ServerSession

__all__ = ["Emulator", "Fault", "History", "Ledger", "LedgerEntry", "ServerSession"]
