"""Splunk HTTP Event Collector: batched, gzip-compressed POSTs to /services/collector/event.

Each line becomes one HEC event: a JSON line (json, ecs) is embedded as the event object,
any other line (splunk key=value, cef) as a string; `sourcetype` defaults to eNcore's
`cisco:estreamer:data`, and `auto_extract_timestamp=true` lets Splunk take the time from the
line as the add-on's props say (`TIME_PREFIX = event_sec=`).

Acknowledgement: `flush(durable=True)` returns only when every batch was answered 200 and,
with indexer acknowledgement on (`"ack": true`, a channel per output), when Splunk reports
every batch's ackId as indexed. 503 (server busy), 429, other 5xx and connection failures
are retried with backoff for `retryFor` seconds, then raise; 4xx other than 429 (a bad token,
a disabled input) raise at once, naming the status and Splunk's text. Batches are sent again
whole on a retry, so Splunk may see a batch twice: at-least-once, like every output here.

The token comes from the environment variable named by `tokenEnv` (default
ESTREAMER_HEC_TOKEN) or from the file `tokenFile`; never from the config file itself, which
is often world-readable. TLS certificates are verified against the system's CAs or `caFile`;
`"tlsVerify": false` turns that off for a lab."""

from __future__ import annotations

import gzip
import http.client
import logging
import ssl
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson

log = logging.getLogger("HecStream")

DEFAULT_SOURCETYPE = "cisco:estreamer:data"


class HecError(OSError):
    """HEC refused or never answered; the bookmark must not move past the batch."""


@dataclass
class HecStats:
    posts: int = 0
    events: int = 0
    retries: int = 0
    acked: int = 0


class HecOutput:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        sourcetype: str = DEFAULT_SOURCETYPE,
        source: str = "estreamer",
        index: str | None = None,
        batch_lines: int = 500,
        gzip_level: int = 6,
        ack: bool = False,
        ack_timeout: float = 60.0,
        context: ssl.SSLContext | None = None,
        timeout: float = 30.0,
        retry_for: float = 60.0,
        first_backoff: float = 0.2,
        max_backoff: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"HEC URL must be http(s)://host[:port]/..., got {url!r}")
        self.url = url
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or 8088
        path = parts.path.rstrip("/") or "/services/collector"
        if path.endswith("/services/collector"):
            path += "/event"
        self.path = path + "?auto_extract_timestamp=true"
        self.ack_path = path.rsplit("/services/collector", 1)[0] + "/services/collector/ack"
        self.token = token
        self.meta = b"".join(
            b',"%s":%s' % (k.encode(), orjson.dumps(v))
            for k, v in (("sourcetype", sourcetype), ("source", source), ("index", index))
            if v
        )
        self.batch_lines, self.gzip_level = batch_lines, gzip_level
        self.ack, self.ack_timeout = ack, ack_timeout
        self.channel = str(uuid.uuid4())
        self.context = context if context is not None else (
            ssl.create_default_context() if self.https else None)
        self.timeout, self.retry_for = timeout, retry_for
        self.first_backoff, self.max_backoff = first_backoff, max_backoff
        self.clock, self.sleep = clock, sleep
        self.stats = HecStats()
        self._pending: list[bytes] = []
        self._unacked: set[int] = set()
        self._conn: http.client.HTTPConnection | None = None
        self._closed = False

    # ------------------------------------------------------------------ Output

    def write(self, lines: Sequence[bytes]) -> None:
        if self._closed:
            raise ValueError("write to a closed HEC output")
        for line in lines:
            self._pending.append(self._event(line))
            if len(self._pending) >= self.batch_lines:
                self._post_pending()

    def flush(self, durable: bool) -> None:
        self._post_pending()
        if durable and self.ack:
            self._wait_for_acks()

    def queued(self) -> int:
        """Events in the batch not posted yet (the monitor's queue depth)."""
        return len(self._pending)

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.flush(durable=True)
        finally:
            self._closed = True
            if self._conn is not None:
                self._conn.close()

    # ------------------------------------------------------------------ events

    def _event(self, line: bytes) -> bytes:
        if line[:1] == b"{":
            return b'{"event":' + line + self.meta + b"}"
        return b'{"event":' + orjson.dumps(line.decode("utf-8", "replace")) + self.meta + b"}"

    def _post_pending(self) -> None:
        while self._pending:
            batch = self._pending[: self.batch_lines]
            body = b"\n".join(batch)
            if self.gzip_level:
                body = gzip.compress(body, self.gzip_level)
            answer = self._request("POST", self.path, body, gzipped=bool(self.gzip_level))
            if self.ack:
                ack_id = answer.get("ackId")
                if not isinstance(ack_id, int):
                    raise HecError(f"{self.url}: indexer acknowledgement is on here but "
                                   f"Splunk gave no ackId (is it enabled on the token?)")
                self._unacked.add(ack_id)
            del self._pending[: len(batch)]
            self.stats.posts += 1
            self.stats.events += len(batch)

    def _wait_for_acks(self) -> None:
        deadline = self.clock() + self.ack_timeout
        delay = self.first_backoff
        while self._unacked:
            body = orjson.dumps({"acks": sorted(self._unacked)})
            answer = self._request("POST", self.ack_path, body, gzipped=False)
            done = {int(k) for k, v in (answer.get("acks") or {}).items() if v}
            self.stats.acked += len(done & self._unacked)
            self._unacked -= done
            if not self._unacked:
                return
            if self.clock() >= deadline:
                raise HecError(f"{self.url}: {len(self._unacked)} batches not acknowledged "
                               f"by the indexers within {self.ack_timeout:.0f}s")
            self.sleep(delay)
            delay = min(delay * 2, self.max_backoff)

    # ------------------------------------------------------------------ HTTP

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.https:
                self._conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout, context=self.context)
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port,
                                                        timeout=self.timeout)
        return self._conn

    def _request(self, method: str, path: str, body: bytes, *, gzipped: bool) -> dict:
        headers = {"Authorization": f"Splunk {self.token}",
                   "Content-Type": "application/json",
                   "X-Splunk-Request-Channel": self.channel}
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        deadline = self.clock() + self.retry_for
        delay = self.first_backoff
        while True:
            try:
                conn = self._connection()
                conn.request(method, path, body, headers)
                response = conn.getresponse()
                status, text = response.status, response.read()
            except (OSError, http.client.HTTPException) as exc:
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if status == 200:
                    try:
                        answer = orjson.loads(text) if text else {}
                    except orjson.JSONDecodeError:
                        answer = {}
                    return answer if isinstance(answer, dict) else {}
                problem = f"HTTP {status}: {text[:200].decode('utf-8', 'replace')}"
                if 400 <= status < 500 and status != 429:
                    raise HecError(f"{self.url}: Splunk refused the events: {problem}")
            if self.clock() >= deadline:
                raise HecError(f"{self.url}: gave up after {self.retry_for:.0f}s: {problem}")
            log.warning("%s: %s; retrying in %.1fs", self.url, problem, delay)
            self.stats.retries += 1
            self.sleep(delay)
            delay = min(delay * 2, self.max_backoff)
