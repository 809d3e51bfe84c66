"""What the metrics know of the outputs (queue depth, failures) and of decode errors (by
record type and kind), from the pipeline's hooks to the Prometheus text."""

import struct

import pytest

from estreamer.client.bookmark import Bookmark
from estreamer.client.runner import MonitorSnapshot
from estreamer.errors import OutputError
from estreamer.formats import get_formatter
from estreamer.metrics import Metrics
from estreamer.outputs.syslog import NetworkOutput
from estreamer.pipeline import (
    OutputState,
    Pipeline,
    Sink,
    decode_error_kind,
    output_label,
)
from estreamer.protocol.records import decode_record, encode_record

pytest.importorskip("prometheus_client")


class Collector:
    """An output that keeps lines until a durable flush, and can be told to fail."""

    def __init__(self):
        self.held: list[bytes] = []
        self.fail = False

    def write(self, lines):
        self.held.extend(lines)

    def flush(self, durable):
        if self.fail:
            raise ConnectionResetError("collector went away")
        if durable:
            self.held.clear()

    def close(self):
        pass

    def queued(self) -> int:
        return len(self.held)


class Plain:
    """An output without `queued()`: only the pipeline's own batch counts."""

    def write(self, lines):
        pass

    def flush(self, durable):
        pass

    def close(self):
        pass


def malformed(record_type: int, archive: int):
    """A record whose length word claims one byte more than its container holds."""
    raw = encode_record(record_type, {"block_type": 60, "event_id": 5}, archive)
    length = struct.unpack_from(">I", raw, 4)[0]
    return decode_record(raw[:4] + struct.pack(">I", length + 1) + raw[8:])


def test_decode_error_kinds():
    assert decode_error_kind("record of 5 bytes is shorter than its 8-byte header") == "short"
    assert decode_error_kind("record length 40 does not match its 30-byte container "
                             "(expected container = length + 8 or + 16)") == "length"
    assert decode_error_kind("Intrusion Event does not fit its layout: block 60 …") == "layout"
    assert decode_record(b"\x00\x01").error is not None
    assert decode_error_kind(decode_record(b"\x00\x01").error) == "short"


def test_output_labels_never_show_credentials():
    assert output_label("splunk://admin:s3cret@hec.example:8088/services?token=abc") == \
        "splunk://hec.example:8088/services"
    assert output_label("relfile:///data/encore.{0}.json") == "relfile:///data/encore.{0}.json"
    assert output_label("udp://10.0.0.9:514") == "udp://10.0.0.9:514"


def test_queue_depth_failures_and_decode_errors_per_output(tmp_path):
    collector, plain = Collector(), Plain()
    pipeline = Pipeline(
        [Sink(collector, "json", get_formatter("json"), name="tcp://user:pw@siem:601"),
         Sink(plain, "json", get_formatter("json")),
         Sink(Plain(), "splunk", get_formatter("splunk"), name="tcp://user:pw@siem:601")],
        Bookmark(tmp_path / "bm.dat"), commit_interval=3600)
    event = decode_record(encode_record(400, {"block_type": 60, "event_id": 5},
                                        1_700_000_000))
    pipeline.handle(event)
    # In the pipeline's batch: every output has one line waiting.
    assert [(s.name, s.queued, s.failures) for s in pipeline.output_states()] == [
        ("tcp://siem:601", 1, 0), ("Plain", 1, 0), ("tcp://siem:601 #2", 1, 0)]
    pipeline.maybe_commit()  # handed over, not yet durable: the collector holds it
    assert [s.queued for s in pipeline.output_states()] == [1, 0, 0]
    pipeline.commit()
    assert [s.queued for s in pipeline.output_states()] == [0, 0, 0]
    collector.fail = True
    for _ in range(2):
        with pytest.raises(OutputError):
            pipeline.commit()
    assert [s.failures for s in pipeline.output_states()] == [2, 0, 0]

    bad = malformed(400, 1_700_000_001)
    assert bad.error is not None
    pipeline.handle(bad)
    pipeline.handle(decode_record(b"\x00\x00\x00"))
    assert dict(pipeline.stats.decode_errors) == {(400, "length"): 1, (-1, "short"): 1}


def test_network_output_reports_its_queue():
    output = NetworkOutput("127.0.0.1", 9, transport="udp")
    output.write([b"one", b"two"])
    assert output.queued() == 2
    output.close()


def scrape(metrics: Metrics) -> dict[str, float]:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)  # type: ignore[arg-type]
    values = {}
    for line in generate_latest(registry).decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_prometheus_families_for_outputs_and_decode_errors():
    metrics = Metrics()
    update = metrics.updater("10.0.0.5", 8302)
    update(MonitorSnapshot(
        handled=10, written=9, duplicates=0, malformed=2, rate=1.0, seconds=10.0,
        bookmark=None, newest=None, lag=None, bytes_received=100, connections=1,
        recv_queue=None, counts={400: 10},
        decode_errors={(400, "layout"): 2, (None, "message"): 1},
        outputs=(OutputState("kafka://b1:9092/fmc", 250, 3),
                 OutputState("relfile:///data/encore.{0}.json", 0, 0))))
    values = scrape(metrics)
    who = 'server="10.0.0.5:8302"'  # the exposition sorts labels by name
    assert values[f"estreamer_decode_errors_total{{{who}}}"] == 3
    assert values[f'estreamer_decode_errors_by_type_total{{kind="layout",{who},type="400"}}'] == 2
    assert values[f'estreamer_decode_errors_by_type_total{{kind="message",{who},type=""}}'] == 1
    assert values[f'estreamer_output_queue_depth{{output="kafka://b1:9092/fmc",{who}}}'] == 250
    assert values[f'estreamer_output_failures_total{{output="kafka://b1:9092/fmc",{who}}}'] == 3
    assert values['estreamer_output_queue_depth{output="relfile:///data/encore.{0}.json",'
                  f'{who}}}'] == 0
