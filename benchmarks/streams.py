"""What the benchmarks stream from: byte streams made by the emulator's own sans-IO session
(exactly what a client receives: 2051, then 4002 bundles), the emulator as a process, and a
bare TLS reader that measures how fast the emulator sends."""

import contextlib
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
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


@dataclass
class EmulatorProcess:
    """`estreamer emulate` in a process of its own, as an FMC would be: its work is not
    the client's, and its CPU and memory are read from /proc apart from the client's."""

    port: int
    process: subprocess.Popen

    def cpu_seconds(self) -> float | None:
        """User + system CPU so far (None off Linux)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1]
        except OSError:
            return None
        utime, stime = fields.split()[11:13]  # fields 14 and 15, counted after "pid (comm)"
        return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mib(self) -> float | None:
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return None
        kib = next((line.split()[1] for line in status.splitlines()
                    if line.startswith("VmHWM:")), None)
        return None if kib is None else int(kib) / 1024


@contextlib.contextmanager
def emulator_processes(cert_dir: Path, seeds: Sequence[int], *, rate: float,
                       history: int) -> Iterator[list[EmulatorProcess]]:
    """One emulator per seed (each a different FMC's history of `history` events), all
    sharing the certificates in `cert_dir`; they build their histories side by side."""
    emulators: list[EmulatorProcess] = []
    try:
        for seed in seeds:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            emulators.append(EmulatorProcess(port, subprocess.Popen(
                [sys.executable, "-m", "estreamer", "--log-level", "WARNING", "emulate",
                 "--dir", str(cert_dir), "--listen", f"127.0.0.1:{port}", "--rate", str(rate),
                 "--seed", str(seed), "--history", str(history)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )))
        for emulator in emulators:
            wait_for_port(emulator.port, emulator.process)
        yield emulators
    finally:
        for emulator in emulators:
            emulator.process.terminate()
        for emulator in emulators:
            emulator.process.wait(timeout=30)


def client_config(workdir: Path, ports: Sequence[int], pkcs12: Path, *, adapter: str = "json",
                  uri: str = "relfile:///out/{host}-{port}/encore.{0}.json",
                  max_logs: int = 1_000_000, workers: int | None = None) -> Path:
    """An eNcore-style config streaming from every port (several: one process, one thread
    per FMC, as `estreamer run` does) into files under `workdir/out`; returns its path.
    `workers`: `workerProcesses` (None: the default config's)."""
    from estreamer.config import default_config

    config = default_config("127.0.0.1", ports[0], pkcs12, adapter=adapter, start=0, uri=uri,
                            log_filepath="", max_logs=max_logs)
    config["responseTimeout"] = 0.2
    if workers is not None:
        config["workerProcesses"] = workers
    servers = config["subscription"]["servers"]
    servers += [dict(servers[0], port=port) for port in ports[1:]]
    path = workdir / "estreamer.conf"
    path.write_text(json.dumps(config))
    return path


@contextlib.contextmanager
def emulator_process(workdir: Path, *, rate: float, history: int, max_logs: int,
                     seed: int = 1) -> Iterator[tuple[Settings, str]]:
    """One emulator process and the client settings to stream from it into JSON files under
    `workdir/out`. Yields (settings, PKCS#12 password)."""
    from estreamer.certs import init_certs
    from estreamer.config import settings_from_dict

    certs = init_certs(workdir / "certs")
    with emulator_processes(certs.directory, [seed], rate=rate, history=history) as [emulator]:
        path = client_config(workdir, [emulator.port], certs.client_pkcs12,
                             uri="relfile:///out/encore.{0}.json", max_logs=max_logs)
        yield settings_from_dict(json.loads(path.read_text()), path), certs.password


def read_raw(port: int, context: ssl.SSLContext, flags: int, *,
             expected: int | None = None, idle: float = 0.5) -> tuple[int, int, float]:
    """What a bare TLS client that asks for everything from the oldest record (`flags`, the
    latest versions) receives: (records, bytes, seconds from the first bundle byte to the
    last). It only walks the bundles' item headers, so it reads far faster than the
    emulator sends: the emulator's own send rate. Ends after `expected` records, or after
    `idle` seconds without data (5 s when the count is known: a pause then is a fault, and
    the count shows it)."""
    from estreamer.protocol.messages import MESSAGE_BUNDLE

    session = ClientSession(0, flags, LATEST_EVENTS)
    with context.wrap_socket(socket.create_connection(("127.0.0.1", port))) as sock:
        sock.sendall(session.start())
        if session.extended:
            while not (reply := session.data_to_send()):  # the 2049 once the 2051 is in
                data = sock.recv(1 << 16)
                if not data:
                    raise RuntimeError("the emulator closed before its 2051")
                session.receive(data)
            sock.sendall(reply)
        sock.settimeout(idle if expected is None else 5.0)
        records = total = 0
        first = last = 0.0
        buffer = bytearray()
        while expected is None or records < expected:
            try:
                data = sock.recv(1 << 18)
            except TimeoutError:
                break
            if not data:
                break
            last = time.perf_counter()
            first = first or last
            total += len(data)
            buffer += data
            pos, end = 0, len(buffer)
            while end - pos >= 8:
                _version, kind, length = _HEADER.unpack_from(buffer, pos)
                if end - pos - 8 < length:
                    break
                if kind == MESSAGE_BUNDLE:
                    item, stop = pos + 16, pos + 8 + length  # past connection id and sequence
                    while item < stop:
                        item += 8 + _ITEM_LENGTH.unpack_from(buffer, item + 4)[0]
                        records += 1
                pos += 8 + length
            del buffer[:pos]
    return records, total, last - first


_HEADER = struct.Struct(">HHI")
_ITEM_LENGTH = struct.Struct(">I")


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
