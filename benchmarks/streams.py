"""What the benchmarks stream from: byte streams made by the emulator's own sans-IO session
(exactly what a client receives: 2051, then 4002 bundles), and the emulator as a process."""

import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from estreamer.client.protocol import ClientSession
from estreamer.config import Settings
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


@contextlib.contextmanager
def emulator_process(workdir: Path, *, rate: float, history: int, max_logs: int,
                     seed: int = 1) -> Iterator[tuple[Settings, str]]:
    """The emulator in its own process (as an FMC would be, so the client's rate is not
    shared with the emulator's work under one GIL), and the client settings to stream from
    it into JSON files under `workdir/out`. Yields (settings, PKCS#12 password)."""
    from estreamer.certs import init_certs
    from estreamer.config import default_config, settings_from_dict

    certs = init_certs(workdir / "certs")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    emulator = subprocess.Popen(
        [sys.executable, "-m", "estreamer", "--log-level", "WARNING", "emulate",
         "--dir", str(certs.directory), "--listen", f"127.0.0.1:{port}", "--rate", str(rate),
         "--seed", str(seed), "--history", str(history)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, emulator)
        config = default_config("127.0.0.1", port, certs.client_pkcs12, start=0,
                                uri="relfile:///out/encore.{0}.json", log_filepath="",
                                max_logs=max_logs)
        config["responseTimeout"] = 0.2
        path = workdir / "estreamer.conf"
        path.write_text(json.dumps(config))
        yield settings_from_dict(config, path), certs.password
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the emulator exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the emulator did not listen on port {port} within {timeout} s")
