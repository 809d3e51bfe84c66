"""Opt-in Prometheus metrics: `estreamer run --metrics :9102` serves /metrics over HTTP.

The values come from the runner's monitor snapshots (one a second), read at scrape time by
a custom collector: the streaming loop never touches a Prometheus object, so the endpoint
costs nothing per record. prometheus-client is imported only when --metrics is given."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from estreamer.client.runner import MonitorSnapshot
from estreamer.errors import ConfigError

NAMESPACE = "estreamer"


def parse_listen(value: str) -> tuple[str, int]:
    """`:9102`, `9102`, `127.0.0.1:9102` or `[::1]:9102` → (address, port); an empty
    address means every interface, as for node_exporter's `--web.listen-address`."""
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "", value
    if not port.isdigit() or int(port) > 65535:  # 0: any free port (tests)
        raise ConfigError(f"--metrics wants [ADDRESS]:PORT such as :9102, got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


class Metrics:
    """A Prometheus collector over the latest MonitorSnapshot of one client."""

    def __init__(self, host: str, port: int):
        self.server = f"{host}:{port}"
        self._snapshot: MonitorSnapshot | None = None
        self._lock = threading.Lock()

    def update(self, snap: MonitorSnapshot) -> None:
        with self._lock:
            self._snapshot = snap

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        with self._lock:
            snap = self._snapshot
        labels = ["server"]
        server = [self.server]

        def counter(name: str, text: str, value: float) -> Any:
            family = CounterMetricFamily(f"{NAMESPACE}_{name}", text, labels=labels)
            family.add_metric(server, value)
            return family

        def gauge(name: str, text: str, value: float | None) -> Any:
            family = GaugeMetricFamily(f"{NAMESPACE}_{name}", text, labels=labels)
            if value is not None:  # absent rather than a made-up zero
                family.add_metric(server, value)
            return family

        events = CounterMetricFamily(f"{NAMESPACE}_events", "Records received, by record type",
                                     labels=["server", "type"])
        if snap is not None:
            for record_type, count in sorted(snap.counts.items()):
                events.add_metric([self.server, str(record_type)], count)
        yield events
        if snap is None:
            return
        yield counter("written", "Records handed to the outputs", snap.written)
        yield counter("duplicates", "Resent records dropped by the bookmark", snap.duplicates)
        yield counter("decode_errors", "Records that did not fit their layout", snap.malformed)
        yield counter("received_bytes", "Bytes read from the FMC", snap.bytes_received)
        yield counter("reconnects", "Connections after the first",
                      max(0, snap.connections - 1))
        yield gauge("lag_seconds", "Now minus the newest archive timestamp received", snap.lag)
        yield gauge("bookmark_timestamp_seconds", "Archive timestamp of the saved bookmark",
                    snap.bookmark)
        yield gauge("receive_queue_bytes", "Unread bytes in the socket (netstat Recv-Q)",
                    snap.recv_queue)


def serve(listen: str, metrics: Metrics) -> Any:
    """Start the HTTP endpoint in a daemon thread; returns the server (`.shutdown()`,
    `.server_port`)."""
    try:
        from prometheus_client import CollectorRegistry, start_http_server
    except ImportError:
        raise ConfigError(
            "--metrics needs the prometheus-client package: pip install prometheus-client"
        ) from None
    address, port = parse_listen(listen)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)  # type: ignore[arg-type]
    try:
        server, _thread = start_http_server(port, address, registry=registry)
    except OSError as exc:
        raise ConfigError(f"--metrics cannot listen on {address}:{port}: {exc.strerror}") \
            from None
    return server
