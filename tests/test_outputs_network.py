"""Network outputs against real listeners on loopback: syslog over UDP, TCP and TLS, and a
Splunk HTTP Event Collector that answers 503 and delays acknowledgements. Every record must
arrive exactly once, and the bookmark must never move past an output that failed."""

import gzip
import json
import re
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from estreamer.certs import init_certs
from estreamer.client.bookmark import Bookmark
from estreamer.errors import ConfigError, OutputError
from estreamer.formats import get_formatter
from estreamer.outputs import HecOutput, NetworkOutput, open_output
from estreamer.pipeline import Pipeline, Sink
from estreamer.protocol.records import decode_record, encode_record

LINES = [f"rec_type=400 event_sec={1700000000 + i} msg=\"line {i}\"".encode() for i in range(50)]
RFC5424 = re.compile(rb"^<13>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z \S+ estreamer - - - (.*)$",
                     re.S)


# --------------------------------------------------------------------------- listeners


class TcpSyslogServer:
    """Accepts connections and parses octet-counted (or LF) frames; `tls` wraps them."""

    def __init__(self, context=None, newline=False):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.context, self.newline = context, newline
        self.frames: list[bytes] = []
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn):
        if self.context is not None:
            try:
                conn = self.context.wrap_socket(conn, server_side=True)
            except OSError:  # a client that does not trust us: the test checks its side
                conn.close()
                return
        buf = b""
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                buf += data
                while True:
                    if self.newline:
                        if b"\n" not in buf:
                            break
                        frame, buf = buf.split(b"\n", 1)
                    else:
                        if b" " not in buf:
                            break
                        size, rest = buf.split(b" ", 1)
                        if len(rest) < int(size):
                            break
                        frame, buf = rest[: int(size)], rest[int(size):]
                    self.frames.append(frame)

    def wait_for(self, n, timeout=5.0):
        import time
        end = time.monotonic() + timeout
        while len(self.frames) < n and time.monotonic() < end:
            time.sleep(0.01)
        return self.frames

    def close(self):
        self.done.set()
        self.sock.close()


def udp_server():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2)
    return sock


def bodies(frames):
    out = []
    for frame in frames:
        found = RFC5424.match(frame)
        assert found, frame
        out.append(found.group(1))
    return out


# --------------------------------------------------------------------------- syslog


def test_syslog_udp_rfc5424_and_oversize_lines_are_truncated_and_counted():
    server = udp_server()
    port = server.getsockname()[1]
    out = open_output(f"syslog+udp://127.0.0.1:{port}", {"maxDatagram": 200})
    big = b"x" * 500
    out.write([*LINES[:5], big])
    out.flush(durable=True)
    got = [server.recv(65536) for _ in range(6)]
    assert bodies(got[:5]) == LINES[:5]
    assert len(got[5]) == 200 and out.stats.truncated == 1 and out.stats.sent == 6
    out.close()
    server.close()


def test_encore_udp_uri_sends_lines_as_they_are():
    server = udp_server()
    out = open_output(f"udp://127.0.0.1:{server.getsockname()[1]}")
    out.write(LINES[:3])
    out.flush(durable=True)
    assert [server.recv(65536) for _ in range(3)] == LINES[:3]
    out.close()
    server.close()


def test_syslog_tcp_octet_counting_delivers_every_line_once():
    server = TcpSyslogServer()
    out = open_output(f"syslog+tcp://127.0.0.1:{server.port}", {"queueSize": 7})
    out.write(LINES)  # more than the queue holds: "block" sends as it goes
    out.flush(durable=True)
    assert bodies(server.wait_for(len(LINES))) == LINES
    out.close()
    server.close()


def test_encore_tcp_uri_is_newline_delimited_and_rfc3164_keeps_a_cef_header():
    server = TcpSyslogServer(newline=True)
    out = open_output(f"tcp://127.0.0.1:{server.port}")
    out.write(LINES[:4])
    out.close()
    assert server.wait_for(4) == LINES[:4]
    server.close()
    cef = b"<13>Nov 14 22:13:20 host CEF:0|Cisco|Firepower|6.0|PKT:2:1|Packet Data|7|x=1"
    plain = NetworkOutput("127.0.0.1", 1, transport="tcp", syslog="rfc3164")
    assert plain._wrap(cef) == cef
    rfc5424 = NetworkOutput("127.0.0.1", 1, transport="tcp", syslog="rfc5424")
    assert RFC5424.match(rfc5424._wrap(cef)).group(1) == cef.split(b" host ", 1)[1]


def test_syslog_tls_with_verified_certificates(tmp_path):
    certs = init_certs(tmp_path / "certs", client_cn="127.0.0.1")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(certs.server_cert, certs.server_key)
    server = TcpSyslogServer(context=server_context)
    out = open_output(f"syslog+tls://127.0.0.1:{server.port}", {"caFile": str(certs.ca_cert)})
    out.write(LINES[:10])
    out.flush(durable=True)
    assert bodies(server.wait_for(10)) == LINES[:10]
    out.close()
    # A stranger's CA: the handshake fails and the flush says so instead of pretending.
    other = init_certs(tmp_path / "other", client_cn="127.0.0.1")
    bad = open_output(f"tls://127.0.0.1:{server.port}",
                      {"caFile": str(other.ca_cert), "retryFor": 0})
    bad.write(LINES[:1])
    with pytest.raises(ConnectionError, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
        bad.flush(durable=True)
    server.close()


def test_tcp_reconnects_with_backoff_until_the_receiver_is_back():
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nobody listens on `port` now
    holder = {}
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        if len(waits) == 3:  # the receiver comes back after the third failed attempt
            holder["server"] = TcpSyslogServer.__new__(TcpSyslogServer)
            server = holder["server"]
            server.sock = socket.create_server(("127.0.0.1", port))
            server.port, server.context, server.newline = port, None, False
            server.frames, server.done = [], threading.Event()
            threading.Thread(target=server._serve, daemon=True).start()

    out = NetworkOutput("127.0.0.1", port, transport="tcp", syslog="rfc5424", sleep=sleep,
                        first_backoff=0.1)
    out.write(LINES[:20])
    out.flush(durable=True)
    assert waits == [0.1, 0.2, 0.4] and out.stats.reconnects == 3
    assert bodies(holder["server"].wait_for(20)) == LINES[:20]
    out.close()
    holder["server"].close()


def record(i):
    return decode_record(encode_record(400, {"block_type": 85, "event_id": i,
                                             "event_second": 1700000000 + i}, 1700000000 + i))


def test_bookmark_stays_when_the_syslog_receiver_is_gone(tmp_path):
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    out = open_output(f"syslog+tcp://127.0.0.1:{port}", {"retryFor": 0})
    bookmark = Bookmark(tmp_path / "bm.dat")
    pipeline = Pipeline([Sink(out, "splunk", get_formatter("splunk"))], bookmark,
                        commit_interval=0)
    pipeline.handle(record(1))
    # The pipeline names the failing output; the transport's own reason is kept as the cause.
    with pytest.raises(OutputError, match="cannot deliver 1 lines") as caught:
        pipeline.commit()
    assert isinstance(caught.value.__cause__, ConnectionError)
    assert not (tmp_path / "bm.dat").exists()


def test_network_options_are_checked():
    with pytest.raises(ConfigError, match="unknown option"):
        open_output("syslog+udp://127.0.0.1:514", {"maxDatagarm": 100})
    with pytest.raises(ConfigError, match="syslogFormat must be one of"):
        open_output("syslog+tcp://127.0.0.1", {"syslogFormat": "rfc1234"})
    with pytest.raises(ConfigError, match="no HEC token"):
        open_output("splunk+hec://127.0.0.1:8088", {"tokenEnv": "NO_SUCH_VARIABLE_HERE"})


# --------------------------------------------------------------------------- HEC


class Hec:
    """A Splunk HEC stand-in: checks the token, answers 503 `busy` times first, records
    events (gunzipped), and with ack on hands out ackIds that turn true after `ack_polls`."""

    def __init__(self, busy=0, status=200, ack_polls=0):
        self.busy, self.status, self.ack_polls = busy, status, ack_polls
        self.events, self.requests, self.polls = [], [], 0
        self.next_ack = 0
        hec = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                hec.requests.append((self.path, dict(self.headers)))
                if self.headers.get("Authorization") != "Splunk s3cret":
                    return self.answer(401, {"text": "Invalid token", "code": 4})
                if self.path.startswith("/services/collector/ack"):
                    hec.polls += 1
                    ids = json.loads(body)["acks"]
                    ready = hec.polls > hec.ack_polls
                    return self.answer(200, {"acks": {str(i): ready for i in ids}})
                if hec.busy:
                    hec.busy -= 1
                    return self.answer(503, {"text": "Server is busy", "code": 9})
                if hec.status != 200:
                    return self.answer(hec.status, {"text": "Incorrect index", "code": 7})
                hec.events += [json.loads(line) for line in body.splitlines()]
                answer = {"text": "Success", "code": 0}
                if self.headers.get("X-Splunk-Request-Channel"):
                    answer["ackId"] = hec.next_ack
                    hec.next_ack += 1
                return self.answer(200, answer)

            def answer(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/collector"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hec_token(monkeypatch):
    monkeypatch.setenv("ESTREAMER_HEC_TOKEN", "s3cret")


def test_hec_retries_503_and_delivers_every_event_once(hec_token):
    hec = Hec(busy=2)
    out = open_output(hec.url, {"batchSize": 20})
    assert isinstance(out, HecOutput)
    out.sleep = lambda s: None
    out.write(LINES)
    out.flush(durable=True)
    assert [e["event"].encode() for e in hec.events] == LINES
    assert {e["sourcetype"] for e in hec.events} == {"cisco:estreamer:data"}
    assert out.stats.retries == 2 and out.stats.posts == 3
    assert hec.requests[0][0] == "/services/collector/event?auto_extract_timestamp=true"
    assert hec.requests[0][1]["Content-Encoding"] == "gzip"
    out.close()
    hec.close()


def test_hec_embeds_json_lines_as_objects(hec_token):
    hec = Hec()
    out = open_output(hec.url, {"sourcetype": "estreamer:ecs", "gzip": 0})
    out.write([b'{"a":1}'])
    out.close()
    assert hec.events == [{"event": {"a": 1}, "sourcetype": "estreamer:ecs",
                           "source": "estreamer"}]
    hec.close()


def test_hec_indexer_acknowledgement_holds_the_flush_until_indexed(hec_token):
    hec = Hec(ack_polls=2)
    out = open_output(hec.url, {"ack": True, "batchSize": 10})
    out.sleep = lambda s: None
    out.write(LINES[:25])
    out.flush(durable=False)
    assert out._unacked == {0, 1, 2}  # posted, not yet known to be indexed
    out.flush(durable=True)
    assert hec.polls == 3 and out._unacked == set() and out.stats.acked == 3
    out.close()
    hec.close()


def test_hec_refusal_keeps_the_bookmark_and_names_the_reason(tmp_path, hec_token):
    hec = Hec(status=400)
    out = open_output(hec.url)
    bookmark = Bookmark(tmp_path / "bm.dat")
    pipeline = Pipeline([Sink(out, "json", get_formatter("json"))], bookmark,
                        commit_interval=0)
    pipeline.handle(record(1))
    with pytest.raises(OutputError, match=r"HTTP 400: .*Incorrect index"):
        pipeline.commit()
    assert not (tmp_path / "bm.dat").exists()
    hec.close()


def test_hec_bad_token_fails_at_once(monkeypatch):
    monkeypatch.setenv("ESTREAMER_HEC_TOKEN", "wrong")
    hec = Hec()
    out = open_output(hec.url)
    out.write(LINES[:1])
    with pytest.raises(OSError, match="HTTP 401"):
        out.flush(durable=True)
    assert len(hec.requests) == 1  # not retried
    hec.close()
