"""File outputs as eNcore writes them: `{0}` is the file's start time in epoch seconds,
rotation after `maxLogs` lines, `relfile://` relative to the config directory; plus what we
add: private file modes, no overwrites, rotation by size, gzip of finished files that keeps
the exactly-once cut-back at start working, an fsync policy, and clear errors for streams
we do not have."""

import gzip
import io
import itertools
import json
import os
import stat
from pathlib import Path

import pytest

from estreamer.client import recovery
from estreamer.client.bookmark import Bookmark
from estreamer.config import StreamOptions, default_config, load_config
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
    assert sorted(tmp_path.iterdir()) == list(out.files)


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
    assert sorted(out.files) == list(out.files)
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


# ----------------------------------------------------------------------------- size


def sized(sizes: list[int]) -> list[bytes]:
    """Lines of the given lengths (without the newline), each one unique."""
    return [(f"{i:04d}" + "x" * (n - 4)).encode() for i, n in enumerate(sizes)]


def test_rotation_by_size_never_splits_a_line(tmp_path):
    sizes = [10, 30, 5, 40, 60, 4, 19, 19, 100, 8, 9, 50]
    batch = sized(sizes)
    out = FileOutput(tmp_path, "e.{0}.json", max_lines=None, max_bytes=50, clock=ticking())
    for part in (batch[:3], batch[3:4], batch[4:9], batch[9:]):  # straddling batches
        out.write(part)
    out.close()
    contents = [read_lines(p) for p in out.files]
    assert [line for c in contents for line in c] == batch
    for path, content in zip(out.files, contents, strict=True):
        size = path.stat().st_size
        # Within the limit, or a single line longer than the limit alone in its file.
        assert size <= 50 or len(content) == 1
    for path, content, following in zip(out.files, contents, contents[1:], strict=False):
        # Each finished file was full: the next line would not have fitted.
        assert path.stat().st_size + len(following[0]) + 1 > 50, content
    # 11+31+6 | 41 | 61 alone | 5+20+20 | 101 alone | 9+10 | 51 alone (bytes with newline)
    assert [len(c) for c in contents] == [3, 1, 1, 3, 1, 2, 1]


def test_lines_and_bytes_together_whichever_comes_first(tmp_path):
    out = FileOutput(tmp_path, "e.{0}.json", max_lines=3, max_bytes=40, clock=ticking())
    out.write(sized([5] * 6 + [15] * 4))
    out.close()
    # 6 bytes a line: maxLogs ends the file at 18 bytes; 16 bytes a line: a third would
    # take it to 48 of 40 bytes.
    assert [len(read_lines(p)) for p in out.files] == [3, 3, 2, 2]


def test_size_alone_means_no_line_limit(tmp_path):
    out = open_output("relfile:///logs/e.{0}.json", {"maxBytes": 1000}, tmp_path)
    assert isinstance(out, FileOutput) and out.max_lines is None
    out.write(lines(20000))  # far more than eNcore's default of 10000 lines
    out.close()
    assert all(p.stat().st_size <= 1000 for p in out.files)
    assert [x for p in out.files for x in read_lines(p)] == lines(20000)
    both = open_output("relfile:///logs/e.{0}.json", {"maxBytes": 1000, "maxLogs": 5}, tmp_path)
    assert (both.max_lines, both.max_bytes) == (5, 1000)
    both.close()


# ----------------------------------------------------------------------------- gzip


def everything(directory: Path) -> list[bytes]:
    """Every line of the e.* files in a directory, .gz and plain, in the order the files
    were written."""
    def order(p: Path) -> str:
        return p.name.removesuffix(".gz")
    out = []
    for p in sorted(directory.glob("e.*"), key=order):
        data = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
        out.extend(data.splitlines())
    return out


def commit(out: FileOutput, bookmark: Bookmark) -> None:
    """What the pipeline does at a commit: outputs durable, then the bookmark with where
    the file outputs stand."""
    out.flush(durable=True)
    bookmark.set_outputs(recovery.positions([out]))
    bookmark.save()


def test_finished_files_are_gzipped_once_a_commit_has_passed_them(tmp_path):
    bookmark = Bookmark(tmp_path / "bm.dat")
    data = tmp_path / "data"
    out = FileOutput(data, "e.{0}.json", max_lines=4, compress=True, clock=ticking())
    out.write(lines(10))  # two full files and a third with two lines
    commit(out, bookmark)
    # The bookmark just saved names the newest file; the previous one (before this commit)
    # named nothing of these: still nothing may be compressed, or a crash now would leave
    # the bookmark naming a file that is gone.
    assert sorted(p.name for p in data.iterdir()) == [p.name for p in out.files]
    out.write(lines(6, 10))
    commit(out, bookmark)
    out.close()
    names = sorted(p.name for p in data.iterdir())
    # The two files finished before the first commit are compressed now; the third
    # (finished after it) and the newest stay plain until later commits.
    assert names == [out.files[0].name + ".gz", out.files[1].name + ".gz",
                     out.files[2].name, out.files[3].name]
    assert everything(data) == lines(16)
    assert [p.name for p in out.compressed] == names[:2]
    for gz in out.compressed:
        assert stat.S_IMODE(gz.stat().st_mode) & 0o137 == 0  # as private as the original
        with gzip.open(gz) as f:
            assert f.read().endswith(b"\n")


def test_the_next_run_compresses_what_the_last_one_left(tmp_path):
    bookmark = Bookmark(tmp_path / "bm.dat")
    first = FileOutput(tmp_path, "e.{0}.json", max_lines=2, compress=True, clock=ticking(100))
    first.write(lines(7))
    commit(first, bookmark)
    first.close()
    a, b, c, d = first.files
    # States a crash can leave in the middle of compressing: a half-written .gz.tmp (the
    # original still whole), and a finished .gz whose original was not yet removed.
    (tmp_path / (a.name + ".gz.tmp")).write_bytes(b"\x1f\x8b half")
    (tmp_path / (b.name + ".gz")).write_bytes(gzip.compress(b.read_bytes()))
    second = FileOutput(tmp_path, "e.{0}.json", max_lines=2, compress=True, clock=ticking(200))
    second.write(lines(1, 7))
    commit(second, bookmark)
    assert not (tmp_path / (a.name + ".gz.tmp")).exists() and not b.exists()
    second.write(lines(1, 8))
    commit(second, bookmark)  # the first commit of this run now names its own file
    second.close()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "bm.dat") == [
        a.name + ".gz", b.name + ".gz", c.name + ".gz", d.name + ".gz", second.files[0].name]
    assert everything(tmp_path) == lines(9)


def test_compression_keeps_the_cut_back_after_a_kill_exact(tmp_path):
    """The exactly-once recovery at start (estreamer.client.recovery) still works with
    compression on: what was committed is there once, what was not is cut off."""
    path = tmp_path / "bm.dat"
    bookmark = Bookmark(path)
    out = FileOutput(tmp_path / "d", "e.{0}.json", max_lines=3, compress=True, clock=ticking())
    for i in range(6):
        out.write(lines(4, 4 * i))
        commit(out, bookmark)
    out.write(lines(5, 24))  # written, not committed: the FMC sends these again
    out.close()  # the bytes reach the files as with kill -9; only close() joins the gzip thread
    assert list((tmp_path / "d").glob("*.gz"))
    restart = FileOutput(tmp_path / "d", "e.{0}.json", max_lines=3, compress=True,
                         clock=ticking(1591300000))
    assert recovery.restore([restart], Bookmark.open(path)) > 0
    restart.write(lines(5, 24))  # the resent records
    restart.close()
    assert everything(tmp_path / "d") == lines(29)


def test_a_name_without_placeholder_is_never_compressed(tmp_path):
    out = FileOutput(tmp_path, "events.json", compress=True)
    out.write(lines(3))
    out.flush(durable=True)
    out.flush(durable=True)
    out.close()
    assert [p.name for p in tmp_path.iterdir()] == ["events.json"]


# ----------------------------------------------------------------------------- fsync


@pytest.mark.parametrize(("policy", "synced"), [("commit", True), ("never", False)])
def test_fsync_policy(tmp_path, monkeypatch, policy, synced):
    out = FileOutput(tmp_path, "e.{0}.json", max_lines=2, fsync=policy, clock=ticking())
    calls = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real_fsync(fd)))
    out.write(lines(3))  # one file finished by rotation, one open
    out.flush(durable=True)
    assert bool(calls) is synced
    # Either way the bytes were handed to the OS: another reader sees them at once.
    assert [x for p in out.files for x in read_lines(p)] == lines(3)
    out.close()


# ----------------------------------------------------------------------------- options


def test_file_options_from_the_config_file(tmp_path):
    data = default_config("127.0.0.1", 8302, "client.pkcs12", uri="relfile:///data/e.{0}.json")
    data["handler"]["outputters"][0]["stream"]["options"] = {
        "maxBytes": 1048576, "compress": True, "fsync": "never"}
    path = tmp_path / "estreamer.conf"
    path.write_text(json.dumps(data))
    settings = load_config(path)
    (o,) = settings.outputters
    assert o.options == StreamOptions(max_logs=None, max_bytes=1048576, compress=True,
                                      fsync="never")
    assert settings.unknown == ()
    out = open_output(o.uri, o.options, tmp_path)
    assert (out.max_lines, out.max_bytes, out.compress, out.fsync) == (
        None, 1048576, True, "never")
    out.close()


@pytest.mark.parametrize(("options", "words"), [
    ({"maxBytes": 0}, "maxBytes"),
    ({"compress": "yes"}, "compress"),
    ({"fsync": "always"}, "fsync"),
])
def test_bad_file_options_in_the_config_file(tmp_path, options, words):
    data = default_config("127.0.0.1", 8302, "client.pkcs12", uri="relfile:///data/e.{0}.json")
    data["handler"]["outputters"][0]["stream"]["options"] = options
    path = tmp_path / "estreamer.conf"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=words):
        load_config(path)
    with pytest.raises(ConfigError, match=words):
        open_output("relfile:///x.{0}", options, tmp_path)


def test_a_write_that_fails_in_the_writer_thread_fails_the_flush_and_stops_writing(tmp_path):
    """The bytes go to the file from a thread of the output's own; a failure there (here a
    descriptor closed under it, as a disk error would) comes back at the next call, and
    nothing given after it is written: the file holds a prefix, and the commit fails."""
    out = FileOutput(tmp_path, "f.{0}.log", max_lines=None)
    out.write([b"first"])
    out.flush(durable=True)
    os.close(out._file.fileno())  # the next write(2) fails with EBADF
    out.write([b"second" * 100_000])  # past the buffer: written by the thread, at once
    with pytest.raises(OSError, match=r"writing f\.\{0\}\.log failed"):
        out.flush(durable=True)
    with pytest.raises(OSError):
        out.write([b"third"])
    assert [p.read_bytes() for p in tmp_path.iterdir()] == [b"first\n"]
    with pytest.raises(OSError):
        out.close()
