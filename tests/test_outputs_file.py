"""File outputs as eNcore writes them: `{0}` is the file's start time in epoch seconds,
rotation after `maxLogs` lines, `relfile://` relative to the config directory; plus what we
add: private file modes, no overwrites, and clear errors for streams we do not have yet."""

import io
import itertools
import stat
from pathlib import Path

import pytest

from estreamer.config import StreamOptions
from estreamer.errors import ConfigError
from estreamer.outputs import FileOutput, Output, StdoutOutput, open_output, parse_file_uri


def lines(n: int, start: int = 0) -> list[bytes]:
    return [f'{{"n": {i}}}'.encode() for i in range(start, start + n)]


def ticking(start: int = 1591210934):
    counter = itertools.count(start)
    return lambda: float(next(counter))


def read_lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return data[:-1].split(b"\n")


def test_rotation_after_max_lines(tmp_path):
    out = FileOutput(tmp_path, "encore.{0}.json", max_lines=4, rotate=True, clock=ticking())
    # Batches that straddle file boundaries in every way.
    for batch in (lines(3, 0), lines(1, 3), lines(6, 4), lines(0), lines(4, 10)):
        out.write(batch)
    out.close()
    assert [p.name for p in out.files] == [
        "encore.1591210934.json", "encore.1591210935.json", "encore.1591210936.json",
        "encore.1591210937.json",
    ]
    counts = [len(read_lines(p)) for p in out.files]
    assert counts == [4, 4, 4, 2]
    everything = [line for p in out.files for line in read_lines(p)]
    assert everything == lines(14)
    assert sorted(tmp_path.iterdir()) == out.files


def test_exact_multiple_opens_no_empty_file(tmp_path):
    out = FileOutput(tmp_path, "e.{0}.json", max_lines=5, clock=ticking())
    out.write(lines(10))
    out.close()
    assert [len(read_lines(p)) for p in out.files] == [5, 5]
    assert len(list(tmp_path.iterdir())) == 2


def test_no_rotation_keeps_one_file(tmp_path):
    out = FileOutput(tmp_path, "e.{0}.json", max_lines=3, rotate=False, clock=ticking())
    out.write(lines(5))
    out.write(lines(5, 5))
    out.close()
    (only,) = out.files
    assert read_lines(only) == lines(10)


def test_same_second_files_are_never_overwritten(tmp_path):
    (tmp_path / "e.100.json").write_bytes(b"someone else's\n")
    out = FileOutput(tmp_path, "e.{0}.json", max_lines=2, clock=lambda: 100.0)
    out.write(lines(5))
    out.close()
    assert [p.name for p in out.files] == ["e.100_001.json", "e.100_002.json", "e.100_003.json"]
    assert (tmp_path / "e.100.json").read_bytes() == b"someone else's\n"


def test_same_second_names_sort_in_writing_order(tmp_path):
    out = FileOutput(tmp_path, "encore.{0}.json", max_lines=1, clock=lambda: 100.0)
    out.write(lines(12))
    out.close()
    assert sorted(out.files) == out.files
    assert [read_lines(p) for p in sorted(tmp_path.iterdir())] == [[x] for x in lines(12)]


def test_files_are_private_and_opened_lazily(tmp_path):
    directory = tmp_path / "data" / "json"
    out = FileOutput(directory, "e.{0}.json", clock=ticking())
    out.flush(durable=True)  # nothing written yet: no file, not even the directory
    assert not directory.exists()
    out.write(lines(1))
    out.flush(durable=True)
    assert out.path is not None
    mode = stat.S_IMODE(out.path.stat().st_mode)
    assert mode & 0o137 == 0  # 0640 or stricter: no execute, no group write, nothing for others
    assert read_lines(out.path) == lines(1)  # durable flush put it on disk
    out.close()
    out.close()  # twice is fine


def test_name_without_placeholder_appends_and_never_rotates(tmp_path):
    for _ in range(2):
        out = FileOutput(tmp_path, "events.json", max_lines=2, clock=ticking())
        out.write(lines(3))
        out.close()
    assert [p.name for p in tmp_path.iterdir()] == ["events.json"]
    assert read_lines(tmp_path / "events.json") == lines(3) + lines(3)


def test_a_line_with_a_newline_is_refused(tmp_path):
    out = FileOutput(tmp_path, "e.{0}.json")
    with pytest.raises(ValueError, match="newline"):
        out.write([b'{"a": 1}', b"two\nlines"])
    out.close()


# ----------------------------------------------------------------------------- URIs


def test_relfile_resolves_against_the_base_directory(tmp_path):
    out = open_output("relfile:///data/json/encore.{0}.json", {"maxLogs": 2, "rotate": True},
                      tmp_path)
    assert isinstance(out, FileOutput) and isinstance(out, Output)
    out.write(lines(3))
    out.close()
    files = sorted((tmp_path / "data" / "json").iterdir())
    assert [len(read_lines(p)) for p in files] == [2, 1]
    assert all(p.name.startswith("encore.") and p.name.endswith(".json") for p in files)
    stamp = files[0].name.split(".")[1]
    assert stamp.isdigit() and len(stamp) == 10  # epoch seconds, like eNcore


def test_file_uri_is_absolute(tmp_path):
    out = open_output(f"file://{tmp_path}/abs/x.{{0}}.log", StreamOptions(max_logs=10),
                      base_dir="/nowhere")
    out.write(lines(1))
    out.close()
    assert len(list((tmp_path / "abs").iterdir())) == 1


def test_parse_file_uri():
    assert parse_file_uri("relfile:///data/json/encore.{0}.json", "/etc/es") == (
        Path("/etc/es/data/json"), "encore.{0}.json")
    assert parse_file_uri("file:///var/log/es/e.{0}.cef") == (Path("/var/log/es"), "e.{0}.cef")
    assert parse_file_uri("file://localhost/var/x.json") == (Path("/var"), "x.json")
    assert parse_file_uri("relfile:///data/", "/b") == (Path("/b/data"), "log{0}")


@pytest.mark.parametrize(("uri", "words"), [
    ("kafka://broker.example:9092", "not supported yet"),
    ("tcp://siem.example", "host:port"),
    ("splunk://hec.example:8088", "not supported yet"),
    ("scp://user@host/dir/x.{0}", "not supported yet"),
    ("gopher://x/y", "unknown kind of output"),
    ("relfile://data/json/x.{0}.json", "three slashes"),
    ("file://otherhost/x.json", "local path"),
    ("relfile:///x.json?y=1", "not allowed"),
])
def test_unusable_uris_are_config_errors(tmp_path, uri, words):
    with pytest.raises(ConfigError) as info:
        open_output(uri, {}, tmp_path)
    assert uri in str(info.value) and words in str(info.value)


@pytest.mark.parametrize("options", [{"maxLogs": 0}, {"maxLogs": "10"}, {"rotate": "yes"}])
def test_bad_raw_options_are_config_errors(tmp_path, options):
    with pytest.raises(ConfigError, match="relfile:///x"):
        open_output("relfile:///x.{0}", options, tmp_path)


def test_stdout_output_writes_lines():
    buffer = io.BytesIO()
    out = StdoutOutput(buffer)
    assert isinstance(out, Output)
    out.write(lines(2))
    out.write([])
    out.flush(durable=True)
    out.close()
    assert buffer.getvalue() == b'{"n": 0}\n{"n": 1}\n'
    assert not buffer.closed
    assert isinstance(open_output("stdout://", None), StdoutOutput)
