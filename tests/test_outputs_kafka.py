"""kafka:// against librdkafka's built-in mock cluster (`test.mock.num.brokers`): real
brokers speaking the Kafka protocol on loopback, so no Kafka install is needed. Records go
through the real pipeline, come back through a real Consumer, and must be there exactly
once; a commit whose messages Kafka did not take must not move the bookmark."""

import json
import logging
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from estreamer.certs import init_certs
from estreamer.client.bookmark import Bookmark
from estreamer.config import load_config
from estreamer.errors import ConfigError, OutputError
from estreamer.formats import get_formatter
from estreamer.outputs import KeyedOutput, open_output
from estreamer.outputs.kafka import KafkaOutput
from estreamer.pipeline import Pipeline, Sink
from estreamer.protocol.records import decode_record, encode_record

quiet = logging.getLogger("test.librdkafka")  # librdkafka would log to stderr otherwise
TOPIC = "estreamer.events"


class MockCluster:
    """A mock cluster lives inside the librdkafka client that asked for it; this one is
    kept only to hold it (and to create topics behind the output's back)."""

    def __init__(self, brokers: int):
        self.holder = Producer({"test.mock.num.brokers": brokers, "logger": quiet})
        found = self.holder.list_topics(timeout=10).brokers.values()
        self.bootstrap = ",".join(f"{b.host}:{b.port}" for b in found)

    def create_topic(self, topic: str) -> None:
        self.holder.produce(topic, b"topic created", b"test")
        assert self.holder.flush(10) == 0

    def stop(self) -> None:
        self.holder = None  # the last reference: librdkafka destroys the cluster with it


@pytest.fixture
def cluster():
    c = MockCluster(3)
    yield c
    c.stop()


def consume(bootstrap: str, topic: str, want: int, timeout: float = 30.0) -> list:
    """Every message of `topic`, read from the beginning of each partition; after `want`
    have come, a further second of polling catches any duplicate."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "test",
                         "enable.auto.commit": False, "logger": quiet})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        got: list = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None:
                continue
            assert message.error() is None, message.error()
            got.append(message)
            if len(got) == want:
                deadline = min(deadline, time.monotonic() + 1.0)
        return got
    finally:
        consumer.close()


def intrusion(device: int, instance: int, counter: int, event_id: int, archive: int):
    fields = {"block_type": 60, "device_id": device, "event_id": event_id,
              "connection_instance_id": instance, "connection_counter": counter}
    return decode_record(encode_record(400, fields, archive))


def kafka_pipeline(output, bookmark_path):
    sink = Sink(output, "json", get_formatter("json"))
    return Pipeline([sink], Bookmark(bookmark_path), commit_interval=0)


def test_every_record_arrives_once_in_order_per_connection(cluster, tmp_path):
    output = open_output(f"kafka://{cluster.bootstrap}/{TOPIC}",
                         {"key": "connection", "linger.ms": 1}, tmp_path)
    assert isinstance(output, KafkaOutput) and isinstance(output, KeyedOutput)
    pipeline = kafka_pipeline(output, tmp_path / "bm.dat")
    sent = []
    for n in range(600):
        device, instance, counter = 1 + n % 3, 1 + n % 2, n % 10
        sent.append((device, instance, counter, n))
        pipeline.handle(intrusion(device, instance, counter, n, 1700000000 + n // 100))
        if n % 150 == 149:
            pipeline.maybe_commit()  # several commits, each waiting for its reports
    pipeline.close()
    assert Bookmark.open(tmp_path / "bm.dat").timestamp == 1700000005
    assert output.stats.delivered == 600 and output.stats.failed == 0

    got = consume(cluster.bootstrap, TOPIC, 600)
    events = [json.loads(m.value()) for m in got]
    assert sorted(e["event_id"] for e in events) == list(range(600))  # each exactly once
    partitions: dict[bytes, set[int]] = {}
    order: dict[bytes, list[int]] = {}
    for m, e in zip(got, events, strict=True):
        key = f"{e['device_id']}:{e['connection_instance_id']}:{e['connection_counter']}"
        assert m.key() == key.encode()
        partitions.setdefault(m.key(), set()).add(m.partition())
        order.setdefault(m.key(), []).append(e["event_id"])
    assert len(order) == 30
    # One connection, one partition, in the order the FMC sent its events.
    assert all(len(p) == 1 for p in partitions.values())
    assert all(ids == sorted(ids) for ids in order.values())
    assert len({p for ps in partitions.values() for p in ps}) > 1  # and the load is spread


def test_failed_delivery_holds_the_bookmark_until_a_retry_gets_through(tmp_path):
    cluster = MockCluster(1)
    # The topic does not exist and the producer may not create it: Kafka refuses every
    # message until someone creates it.
    output = open_output(f"kafka://{cluster.bootstrap}/late.topic",
                         {"allow.auto.create.topics": False, "message.timeout.ms": 1500},
                         tmp_path)
    path = tmp_path / "bm.dat"
    pipeline = kafka_pipeline(output, path)
    for n in range(20):
        pipeline.handle(intrusion(7, 0, n, n, 1700000100))
    with pytest.raises(OutputError, match=r"20 messages not delivered \(_MSG_TIMED_OUT"):
        pipeline.commit()
    assert not path.exists()  # the bookmark did not move past what Kafka does not have

    cluster.create_topic("late.topic")
    for n in range(20, 30):
        pipeline.handle(intrusion(7, 0, n, n, 1700000200))
    pipeline.commit()  # the 20 kept messages go again, with the 10 new ones
    assert Bookmark.open(path).timestamp == 1700000200
    pipeline.close()
    got = [m for m in consume(cluster.bootstrap, "late.topic", 31) if m.key() != b"test"]
    assert sorted(json.loads(m.value())["event_id"] for m in got) == list(range(30))
    assert output.stats.retried == 20
    cluster.stop()


def test_a_cluster_that_goes_away_fails_the_commit(tmp_path):
    cluster = MockCluster(1)
    # 4 s, not 1: on a busy machine the first delivery (metadata, topic creation) can take
    # over a second, and the test is about the second commit failing, not the first.
    output = open_output(f"kafka://{cluster.bootstrap}/{TOPIC}",
                         {"message.timeout.ms": 4000, "key": "none"}, tmp_path)
    path = tmp_path / "bm.dat"
    pipeline = kafka_pipeline(output, path)
    pipeline.handle(intrusion(1, 0, 0, 1, 1700000300))
    pipeline.commit()
    assert Bookmark.open(path).timestamp == 1700000300
    cluster.stop()
    pipeline.handle(intrusion(1, 0, 0, 2, 1700000400))
    with pytest.raises(OutputError, match="not delivered"):
        pipeline.commit()
    assert Bookmark.open(path).timestamp == 1700000300
    with pytest.raises((OutputError, OSError), match="not delivered"):
        pipeline.close()  # still undeliverable: closing says so rather than pretending


def test_message_keys():
    by_device = KafkaOutput("127.0.0.1:9", "t", config={"logger": quiet})
    by_connection = KafkaOutput("127.0.0.1:9", "t", key="connection", config={"logger": quiet})
    none = KafkaOutput("127.0.0.1:9", "t", key="none", config={"logger": quiet})
    connection = {"device_id": 7, "connection_instance_id": 2, "connection_counter": 30}
    assert by_device.key_of(connection) == b"7"
    assert by_connection.key_of(connection) == b"7:2:30"
    assert by_connection.key_of({"device_id": 7}) == b"7"  # no connection: the device
    assert by_device.key_of({"id": 1, "name": "sensor"}) is None  # metadata: no key
    assert none.key_of(connection) is None


# ----------------------------------------------------------------------------- options


@pytest.mark.parametrize(("uri", "options", "words"), [
    ("kafka://broker:9092", {}, "kafka://host:port"),
    ("kafka:///topic", {}, "kafka://host:port"),
    ("kafka://broker:9092/bad topic", {}, "topic name"),
    ("kafka://broker/topic", {}, "host:port"),
    ("kafka://broker:9092/t", {"key": "event"}, "key must be one of"),
    ("kafka://broker:9092/t", {"acks": "1"}, "acks must stay all"),
    ("kafka://broker:9092/t", {"enable.idempotence": False}, "enable.idempotence must stay"),
    ("kafka://broker:9092/t", {"lingr.ms": 5}, 'No such configuration property: "lingr.ms"'),
    ("kafka://broker:9092/t", {"sasl.password": "x"}, "ESTREAMER_KAFKA_PASSWORD"),
    ("kafka://broker:9092/t", {"security.protocol": "carrier-pigeon"}, "security.protocol"),
])
def test_bad_kafka_streams_are_config_errors(tmp_path, uri, options, words):
    with pytest.raises(ConfigError) as info:
        open_output(uri, options, tmp_path)
    assert uri in str(info.value) and words in str(info.value)


def test_tls_and_sasl_options_pass_through_from_the_config_file(tmp_path, monkeypatch):
    monkeypatch.setenv("ESTREAMER_KAFKA_PASSWORD", "from-the-environment")
    init_certs(tmp_path / "certs")  # librdkafka loads ssl.ca.location when it starts
    conf = tmp_path / "estreamer.conf"
    conf.write_text(json.dumps({
        "subscription": {"servers": [{"host": "10.0.0.5"}]},
        "handler": {"outputters": [{"adapter": "ecs", "stream": {
            "uri": "kafka://k1.example:9093,k2.example:9093/fmc.events",
            "options": {"key": "connection", "security.protocol": "SASL_SSL",
                        "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "estreamer",
                        "ssl.ca.location": "certs/ca.pem", "compression.type": "lz4",
                        "logger@comment": "librdkafka's own properties, as it spells them"},
        }}]},
    }))
    settings = load_config(conf)
    assert settings.unknown == ()
    (o,) = settings.outputters
    output = open_output(o.uri, o.options, conf.parent)
    assert isinstance(output, KafkaOutput)
    assert (output.brokers, output.topic, output.key) == (
        "k1.example:9093,k2.example:9093", "fmc.events", "connection")
    c = output.config
    assert (c["security.protocol"], c["sasl.mechanism"], c["sasl.username"]) == (
        "SASL_SSL", "SCRAM-SHA-512", "estreamer")
    assert c["sasl.password"] == "from-the-environment"
    assert c["ssl.ca.location"] == str(tmp_path / "certs" / "ca.pem")  # config-relative
    assert (c["enable.idempotence"], c["acks"]) == (True, "all")
    # Nothing is connected until the first message, so closing with none is immediate.
    output.close()


def test_password_file(tmp_path, monkeypatch):
    monkeypatch.delenv("ESTREAMER_KAFKA_PASSWORD", raising=False)
    secret = tmp_path / "kafka.pw"
    secret.write_text("from-a-file\n")
    secret.chmod(0o600)
    output = open_output("kafka://k:9093/t", {"passwordFile": "kafka.pw"}, tmp_path)
    assert output.config["sasl.password"] == "from-a-file"
    output.close()
    with pytest.raises(ConfigError, match="cannot read passwordFile"):
        open_output("kafka://k:9093/t", {"passwordFile": "missing.pw"}, tmp_path)

