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


def connection_stream(records: int, block_type: int = 173, seed: int = 1) -> tuple[bytes, int]:
    """Only connection events (record 71) in one block version, in bundles of 100: the bulk
    of a real FMC's stream, and the issue's decode target."""
    from estreamer.protocol.messages import encode_bundle

    history = History(seed, 3000)
    rendered = [history.render(r, block_type=block_type, archive=True)
                for r in history.events if r.record_type == 71]
    items = (rendered * (records // len(rendered) + 1))[:records]
    data = b"".join(encode_bundle(1, n // 100 + 1, items[n : n + 100])
                    for n in range(0, len(items), 100))
    return data, records
