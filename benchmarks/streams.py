"""Byte streams for the benchmarks, made by the emulator's own sans-IO session, so they are
exactly what a client receives from it (2051, then 4002 bundles)."""

from estreamer.client.protocol import ClientSession
from estreamer.emulator.history import History
from estreamer.emulator.session import ServerSession
from estreamer.protocol.flags import ENCORE_DEFAULT_FLAGS, LATEST_EVENTS


def server_stream(events: int, seed: int = 1, bundle_records: int = 100) -> tuple[bytes, int]:
    """(the server's bytes for a whole history of `events` logical events, record count)."""
    client = ClientSession(0, ENCORE_DEFAULT_FLAGS, LATEST_EVENTS)
    server = ServerSession(History(seed, events), connection_id=1, bundle_records=bundle_records)
    parts = [server.receive(client.start())]
    client.receive(parts[0])
    server.receive(client.data_to_send())
    records = 0
    while (bundle := server.next_bundle()) is not None:
        parts.append(bundle.data)
        records += len(bundle.records)
    return b"".join(parts), records
