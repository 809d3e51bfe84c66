"""Opt-in Prometheus metrics: `estreamer run --metrics :9102` serves /metrics over HTTP.

The values come from the runner's monitor snapshots (one a second), read at scrape time by
a custom collector: the streaming loop never touches a Prometheus object, so the endpoint
costs nothing per record. prometheus-client is imported only when --metrics is given."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
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
    """A Prometheus collector over the latest MonitorSnapshot of each FMC the process
    streams from (label `server`)."""

    def __init__(self, host: str | None = None, port: int | None = None):
        self.server = f"{host}:{port}" if host is not None else None
        self._snapshots: dict[str, MonitorSnapshot | None] = {}
        if self.server is not None:
            self._snapshots[self.server] = None
        self._lock = threading.Lock()

    def update(self, snap: MonitorSnapshot) -> None:
        """The snapshot of the server named at construction."""
        assert self.server is not None, "use updater(host, port) with several servers"
        self._set(self.server, snap)

    def updater(self, host: str, port: int) -> Callable[[MonitorSnapshot], None]:
        """A `Runner.on_report` callback for one more server."""
        server = f"{host}:{port}"
        with self._lock:
            self._snapshots.setdefault(server, None)
        return lambda snap: self._set(server, snap)

    def _set(self, server: str, snap: MonitorSnapshot) -> None:
        with self._lock:
            self._snapshots[server] = snap

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        with self._lock:
            snapshots = sorted(self._snapshots.items())
        labels = ["server"]

        def family(kind: Any, name: str, text: str,
                   value: Callable[[MonitorSnapshot], float | None]) -> Any:
            metric = kind(f"{NAMESPACE}_{name}", text, labels=labels)
            for server, snap in snapshots:
                number = None if snap is None else value(snap)
                if number is not None:  # absent rather than a made-up zero
                    metric.add_metric([server], number)
            return metric

        events = CounterMetricFamily(f"{NAMESPACE}_events", "Records received, by record type",
                                     labels=["server", "type"])
        for server, snap in snapshots:
            if snap is not None:
                for record_type, count in sorted(snap.counts.items()):
                    events.add_metric([server, str(record_type)], count)
        yield events
        if all(snap is None for _, snap in snapshots):
            return
        counter, gauge = CounterMetricFamily, GaugeMetricFamily
        yield family(counter, "written", "Records handed to the outputs", lambda s: s.written)
        yield family(counter, "duplicates", "Resent records dropped by the bookmark",
                     lambda s: s.duplicates)
        yield family(counter, "decode_errors",
                     "Records that did not fit their layout and messages that could not be read",
                     lambda s: sum(s.decode_errors.values()) if s.decode_errors else s.malformed)
        by_type = CounterMetricFamily(
            f"{NAMESPACE}_decode_errors_by_type",
            "Decode errors by record type (empty for a whole message) and kind: layout, "
            "length, short, message, stream", labels=["server", "type", "kind"])
        for server, snap in snapshots:
            if snap is not None:
                for (record_type, kind), count in sorted(snap.decode_errors.items(),
                                                         key=lambda item: str(item[0])):
                    by_type.add_metric([server, "" if record_type is None else str(record_type),
                                        kind], count)
        yield by_type
        depth = GaugeMetricFamily(f"{NAMESPACE}_output_queue_depth",
                                  "Lines accepted by an output and not yet sent or durable",
                                  labels=["server", "output"])
        failures = CounterMetricFamily(f"{NAMESPACE}_output_failures",
                                       "Writes or flushes to an output that failed",
                                       labels=["server", "output"])
        for server, snap in snapshots:
            if snap is not None:
                for output in snap.outputs:
                    depth.add_metric([server, output.name], output.queued)
                    failures.add_metric([server, output.name], output.failures)
        yield depth
        yield failures
        yield family(counter, "received_bytes", "Bytes read from the FMC",
                     lambda s: s.bytes_received)
        yield family(counter, "reconnects", "Connections after the first",
                     lambda s: max(0, s.connections - 1))
        yield family(gauge, "lag_seconds", "Now minus the newest archive timestamp received",
                     lambda s: s.lag)
        yield family(gauge, "bookmark_timestamp_seconds",
                     "Archive timestamp of the saved bookmark", lambda s: s.bookmark)
        yield family(gauge, "receive_queue_bytes", "Unread bytes in the socket (netstat Recv-Q)",
                     lambda s: s.recv_queue)


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
