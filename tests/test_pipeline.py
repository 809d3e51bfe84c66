"""The pipeline: per-output formats, filtering, de-duplication, and the bookmark that never
runs ahead of what the outputs durably accepted."""

import json

import pytest

from estreamer.client.bookmark import Bookmark
from estreamer.config import RecordFilter
from estreamer.errors import OutputError
from estreamer.formats import get_formatter
from estreamer.outputs import FileOutput
from estreamer.pipeline import Pipeline, RecordSelector, Sink
from estreamer.protocol.records import decode_record, encode_record


def record(record_type, fields, archive=None):
    return decode_record(encode_record(record_type, fields, archive))


class FailingOutput:
    """An output whose durable flush fails, like a full disk or a dead collector."""

    def __init__(self):
        self.lines = []

    def write(self, lines):
        self.lines.extend(lines)

    def flush(self, durable):
        if durable:
            raise OSError(28, "No space left on device")

    def close(self):
        pass


def file_sink(tmp_path, name, fmt):
    return Sink(
        FileOutput(tmp_path / name, "out.{0}.log", max_lines=1000, rotate=False),
        fmt,
        get_formatter(fmt),
    )


def read(tmp_path, name):
    return [
        line for f in sorted((tmp_path / name).glob("*")) for line in f.read_text().splitlines()
    ]


def test_each_output_gets_its_own_format_and_duplicates_drop(tmp_path):
    bookmark = Bookmark(tmp_path / "bm.dat")
    pipeline = Pipeline(
        [file_sink(tmp_path, "j", "json"), file_sink(tmp_path, "s", "splunk")],
        bookmark,
        commit_interval=0,
    )
    device = record(123, {"id": 1, "name": "sensor one"})
    event = record(400, {"block_type": 60, "event_id": 5, "source_ip": "10.0.0.1"}, 1700000000)
    for r in (device, event, event):
        pipeline.handle(r)
    pipeline.close()
    assert pipeline.stats.written == 2 and pipeline.stats.duplicates == 1
    assert [json.loads(line)["record_type"] for line in read(tmp_path, "j")] == [123, 400]
    assert read(tmp_path, "s")[0] == (
        'rec_type=123 rec_type_simple=SENSOR rec_type_desc="Managed Device Metadata" '
        'id=1 name="sensor one"'
    )
    saved = Bookmark.load(tmp_path / "bm.dat")
    assert saved.timestamp == 1700000000 and saved.keys == {event.digest}


def test_selector_follows_encore_precedence():
    selector = RecordSelector(
        RecordFilter(metadata=False, intrusion=False, include=(400,), exclude=(123,))
    )
    assert not selector.wants(record(123, {"id": 1, "name": "x"}))  # excluded
    assert selector.wants(record(400, {"block_type": 60}))  # included beats the switch
    assert not selector.wants(record(4, {"id": 1, "name": "high"}))  # metadata off
    assert selector.wants(record(71, {"discovery_header": {}, "block_type": 160}))


def test_bookmark_does_not_move_when_an_output_fails(tmp_path):
    bookmark = Bookmark(tmp_path / "bm.dat")
    failing = FailingOutput()
    pipeline = Pipeline(
        [file_sink(tmp_path, "ok", "json"), Sink(failing, "json", get_formatter("json"))],
        bookmark,
        commit_interval=0,
    )
    pipeline.handle(record(400, {"block_type": 60}, 1700000000))
    with pytest.raises(OutputError, match=r"could not flush output FailingOutput: .*No space left"):
        pipeline.commit()
    assert not (tmp_path / "bm.dat").exists()
    assert len(failing.lines) == 1
