"""An output that stops taking lines (a TCP receiver that stops reading) for much longer
than the output's patience: the client must stop reading from the FMC instead of buffering
without bound, keep the bookmark behind what the output took, and when the receiver reads
again deliver every event exactly once. Timeouts are scaled down (retryFor 0.5 s, a stall
of a few seconds) so the test stands for "minutes" in seconds."""

import json
import socket
import threading
import time

import pytest

from estreamer.certs import init_certs
from estreamer.config import Secret, default_config, settings_from_dict
from estreamer.emulator.server import Emulator
from estreamer.job import build_runner
from estreamer.outputs.syslog import NetworkOutput

STALL = 4.0  # seconds the receiver reads nothing
PATIENCE = 0.5  # the output's retryFor: it gives up on a stalled write after this
QUEUE = 1000  # the output's queueSize, in lines


class StallingReceiver:
    """A TCP line receiver that reads until `stall()` and again after `release()`. A small
    receive buffer so that a stall fills up quickly."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.port = self.listener.getsockname()[1]
        self.data = bytearray()
        self.connections = 0
        self.reading = threading.Event()
        self.reading.set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.listener.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn):
        conn.settimeout(0.1)
        with conn:
            while not self.stop.is_set():
                if not self.reading.wait(0.1):
                    continue
                try:
                    chunk = conn.recv(1 << 16)
                except TimeoutError:
                    continue
                if not chunk:
                    return
                self.data += chunk

    def lines(self):
        return [json.loads(line) for line in bytes(self.data).splitlines()]

    def close(self):
        self.stop.set()
        self.thread.join()
        self.listener.close()


def test_a_stalled_output_stops_the_stream_and_then_delivers_everything_once(tmp_path):
    certs = init_certs(tmp_path / "certs", client_cn="127.0.0.1")
    receiver = StallingReceiver()
    with Emulator(certs.directory, rate=0, seed=8, history_size=6000, bundle_records=50,
                  keepalive_interval=0.2) as fmc:
        config = default_config("127.0.0.1", fmc.port, certs.client_pkcs12, start=2,
                                uri=f"tcp://127.0.0.1:{receiver.port}", log_filepath="")
        # A small queue: what the client holds is bounded by it, not by how fast this machine
        # decodes before the first flush blocks (the default 10,000 lines exceeds the history).
        config["handler"]["outputters"][0]["stream"]["options"] = {"retryFor": PATIENCE,
                                                                   "queueSize": QUEUE}
        config.update(responseTimeout=0.05, reconnectDelay=0.05, maxReconnectDelay=0.2)
        path = tmp_path / "estreamer.conf"
        path.write_text(json.dumps(config))
        runner = build_runner(settings_from_dict(config, path), Secret(certs.password),
                              commit_interval=0.2)
        bookmark_file = runner.pipeline.bookmark.path
        done = threading.Event()
        worker = threading.Thread(target=lambda: (runner.run(stop_when_idle=1.0), done.set()))
        receiver.reading.clear()  # stalled from the start: nothing gets through
        worker.start()
        try:
            # The first commit: what the socket buffers took before they filled (a slow
            # machine gets there later than a fast one), then the buffers fill, the output
            # gives up, retries, ...
            first_commit = time.monotonic() + 10.0
            while not bookmark_file.exists() and time.monotonic() < first_commit:
                time.sleep(0.05)
            time.sleep(1.0)
            handled_early = runner.pipeline.stats.received
            saved = []
            until = time.monotonic() + STALL - 1.0
            while time.monotonic() < until:
                saved.append(json.loads(bookmark_file.read_text()).get("timestamp")
                             if bookmark_file.exists() else None)
                time.sleep(0.1)
            handled_late = runner.pipeline.stats.received
            got_during_stall = len(receiver.data)
            receiver.reading.set()
            assert done.wait(30), "the client did not catch up after the output unblocked"
        finally:
            runner.stop.set()
            worker.join(10)
            receiver.close()
    events = len(fmc.history.events)
    # Backpressure: while the receiver read nothing, the client took (almost) no new records
    # from the FMC: not the history, and what it held stayed bounded by the buffers. (It
    # does reconnect each time the output gives up, resuming from the bookmark.)
    assert got_during_stall == 0
    assert handled_late - handled_early < 0.2 * events, (handled_early, handled_late)
    assert handled_late < 0.6 * events, (handled_late, events)
    # The bookmark never moved while nothing was acknowledged... (stalled from the start:
    # the window begins after the first commit, of what the buffers took before they filled)
    assert len(set(saved)) <= 1, saved
    # ... and afterwards every event arrived exactly once.
    lines = receiver.lines()
    stamps = [(e["record_type"], e["archive_timestamp"]) for e in lines
              if "archive_timestamp" in e]
    wanted = sorted((r.record_type, r.archive_timestamp) for r in fmc.history.events)
    assert sorted(stamps) == wanted
    raw = [line for line in bytes(receiver.data).splitlines() if b"archive_timestamp" in line]
    assert len(raw) == len(set(raw)), "an event arrived twice"


def test_a_stalled_tcp_receiver_gets_each_line_once_when_it_reads_again():
    """Longer than the send timeout: the output gives up on this flush, but keeps the
    connection and what the receiver has not taken, and goes on from there (resending the
    whole chunk would give the receiver a torn line and then lines twice)."""
    receiver = StallingReceiver()
    receiver.reading.clear()
    output = NetworkOutput("127.0.0.1", receiver.port, transport="tcp", connect_timeout=0.2,
                           retry_for=0.4)
    lines = [b"%06d " % i + b"x" * 200 for i in range(40_000)]  # 8 MB: more than buffers
    try:
        output.write(lines)
        with pytest.raises(ConnectionError, match=r"the receiver took nothing for 0\.4 s"):
            output.flush(durable=True)
        receiver.reading.set()
        output.flush(durable=True)
        output.close()
        until = time.monotonic() + 10
        while time.monotonic() < until and len(receiver.data) < sum(len(x) + 1 for x in lines):
            time.sleep(0.05)
    finally:
        receiver.close()
    assert bytes(receiver.data).splitlines() == lines
    assert receiver.connections == 1 and output.stats.sent == len(lines)
