"""The opt-in Prometheus endpoint, scraped over HTTP after a real run against the emulator."""

import json
import urllib.request

import pytest

from estreamer.certs import init_certs
from estreamer.config import Secret, default_config, settings_from_dict
from estreamer.emulator.server import Emulator
from estreamer.errors import ConfigError
from estreamer.job import build_runner
from estreamer.metrics import Metrics, parse_listen, serve

pytest.importorskip("prometheus_client")


def test_parse_listen():
    assert parse_listen(":9102") == ("0.0.0.0", 9102)
    assert parse_listen("9102") == ("0.0.0.0", 9102)
    assert parse_listen("127.0.0.1:9102") == ("127.0.0.1", 9102)
    assert parse_listen("[::1]:9102") == ("::1", 9102)
    with pytest.raises(ConfigError) as bad:
        parse_listen("localhost:metrics")
    assert str(bad.value) == "--metrics wants [ADDRESS]:PORT such as :9102, got 'localhost:metrics'"


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_metrics_endpoint_serves_what_the_run_received(tmp_path):
    certs = init_certs(tmp_path / "certs", client_cn="127.0.0.1")
    with Emulator(certs.directory, rate=0, seed=6, history_size=150) as emulator:
        config = default_config("127.0.0.1", emulator.port, certs.client_pkcs12, start=0,
                                log_filepath="", uri="relfile:///out/encore.{0}.json")
        config["responseTimeout"] = 0.1
        path = tmp_path / "estreamer.conf"
        path.write_text(json.dumps(config))
        settings = settings_from_dict(config, path)
        runner = build_runner(settings, Secret(certs.password), max_retries=0,
                              commit_interval=0.0)
        metrics = Metrics("127.0.0.1", emulator.port)
        snapshots = []
        runner.on_report = lambda snap: (snapshots.append(snap), metrics.update(snap))
        server = serve("127.0.0.1:0", metrics)
        try:
            result = runner.run(stop_when_idle=1.2)
            assert snapshots, "the runner hands the monitor a snapshot every second"
            metrics.update(runner.snapshot())
            values = scrape(server.server_port)
        finally:
            server.shutdown()
    who = f'server="127.0.0.1:{emulator.port}"'
    events = {name: v for name, v in values.items() if name.startswith("estreamer_events_total")}
    assert sum(events.values()) == result.handled
    assert events[f'estreamer_events_total{{{who},type="71"}}'] == runner.counts[71]
    assert values[f"estreamer_written_total{{{who}}}"] == result.written
    assert values[f"estreamer_reconnects_total{{{who}}}"] == 0
    assert values[f"estreamer_decode_errors_total{{{who}}}"] == 0
    assert values[f"estreamer_received_bytes_total{{{who}}}"] == runner.bytes_received() > 0
    assert values[f"estreamer_bookmark_timestamp_seconds{{{who}}}"] == \
        runner.pipeline.bookmark.timestamp
    assert values[f"estreamer_lag_seconds{{{who}}}"] >= 0
    output = 'output="relfile:///out/encore.{0}.json"'
    assert values[f"estreamer_output_queue_depth{{{output},{who}}}"] == 0  # all committed
    assert values[f"estreamer_output_failures_total{{{output},{who}}}"] == 0
