"""The bookmark: eNcore's file name, our JSON with last-second digests, eNcore's own file
read too, atomic and private saves (a real crash mid-save keeps the old file), and a corrupt
file stopping the client with a sentence that says how to go on."""

import json
import logging
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from estreamer.client.bookmark import Bookmark, BookmarkError, bookmark_path
from estreamer.protocol.records import encode_record, record_digest

T = 1591210934


def digest(n: int, ts: int = T) -> str:
    return record_digest(encode_record(123, {"id": n, "name": f"sensor-{n}"},
                                       archive_timestamp=ts))


def test_file_name_is_encores(tmp_path):
    assert bookmark_path(tmp_path, "10.62.148.75", 8302) == \
        tmp_path / "10.62.148.75-8302_bookmark.dat"


def test_missing_file_is_none_and_says_so_like_encore(tmp_path, caplog):
    path = bookmark_path(tmp_path, "10.48.26.49", 8302)
    with caplog.at_level(logging.INFO, logger="Bookmark"):
        assert Bookmark.load(path) is None
    assert f"Bookmark file {path} does not exist." in caplog.text
    fresh = Bookmark.open(path)
    assert fresh.timestamp is None and fresh.keys == frozenset()


def test_round_trip_and_private_mode(tmp_path):
    path = bookmark_path(tmp_path / "state", "fmc", 8302)  # directory made on save
    b = Bookmark(path)
    b.advance(T, digest(1))
    b.advance(T, digest(2))
    b.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data == {"timestamp": T, "keys": sorted([digest(1), digest(2)]), "1": T}
    again = Bookmark.load(path)
    assert again is not None
    assert again.timestamp == T and again.keys == {digest(1), digest(2)}
    assert not again.dirty
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp left behind


def test_save_rewrites_only_when_something_changed(tmp_path):
    path = tmp_path / "b.dat"
    b = Bookmark(path)
    b.save()
    assert not path.exists()
    b.advance(None, "meta")  # metadata: no archive timestamp, never moves it
    b.save()
    assert not path.exists() and b.timestamp is None


def test_advance_only_moves_forward_and_keeps_the_last_seconds_digests(tmp_path):
    b = Bookmark(tmp_path / "b.dat")
    b.advance(T, digest(1))
    b.advance(T + 1, digest(2, T + 1))
    assert b.timestamp == T + 1 and b.keys == {digest(2, T + 1)}
    b.advance(T, digest(3))  # late, older record: never moves back
    assert b.timestamp == T + 1 and b.keys == {digest(2, T + 1)}
    b.advance(None, digest(4))  # metadata
    b.advance(T + 1, digest(5, T + 1))
    assert b.keys == {digest(2, T + 1), digest(5, T + 1)}
    assert b.seen_in_last_second(digest(5, T + 1))
    assert not b.seen_in_last_second(digest(1))
    assert b.is_duplicate(T + 1, digest(2, T + 1))
    assert not b.is_duplicate(T, digest(2, T + 1)) and not b.is_duplicate(None, "x")


def test_restart_drops_exactly_the_resent_last_second(tmp_path):
    path = tmp_path / "b.dat"
    first = Bookmark(path)
    for n, ts in ((1, T), (2, T), (3, T + 1), (4, T + 1)):
        first.advance(ts, digest(n, ts))
    first.save()
    # The FMC resends from T+1 (inclusive): 3 and 4 again, then new records.
    second = Bookmark.load(path)
    assert second is not None and second.timestamp == T + 1
    resent = [(3, T + 1), (4, T + 1), (5, T + 1), (6, T + 2)]
    written = []
    for n, ts in resent:
        if second.seen_in_last_second(digest(n, ts)):
            continue
        written.append(n)
        second.advance(ts, digest(n, ts))
    assert written == [5, 6]
    assert second.timestamp == T + 2 and second.keys == {digest(6, T + 2)}


def test_encores_own_bookmark_file_is_read(tmp_path, caplog):
    path = bookmark_path(tmp_path, "10.62.148.75", 8302)
    path.write_text(json.dumps({"1": T}))
    with caplog.at_level(logging.INFO, logger="Bookmark"):
        b = Bookmark.load(path)
    assert b is not None and b.timestamp == T and b.keys == frozenset()
    assert f"Opening bookmark file {path}." in caplog.text
    path.write_text("{}")  # what eNcore reads as "no bookmark yet"
    empty = Bookmark.load(path)
    assert empty is not None and empty.timestamp is None


def test_saved_file_is_readable_by_encore(tmp_path):
    # eNcore reads store["1"] when it is an int; a user going back keeps the position.
    b = Bookmark(tmp_path / "b.dat")
    b.advance(T, digest(1))
    b.save()
    assert json.loads((tmp_path / "b.dat").read_text())["1"] == T


@pytest.mark.parametrize(("content", "words"), [
    (b"", "is empty"),
    (b'{"timestamp": 15912', "is not valid JSON"),
    (b"\xff\xfe\x00", "cannot be read"),
    (b"[1591210934]", "JSON object"),
    (b'{"timestamp": "1591210934", "keys": []}', "invalid timestamp"),
    (b'{"timestamp": -1, "keys": []}', "invalid timestamp"),
    (b'{"timestamp": 1591210934, "keys": [1, 2]}', "list of strings"),
    (b'{"1": "yesterday"}', "invalid timestamp"),
    (b'{"ts": 1591210934}', "neither"),
])
def test_corrupt_file_refuses_to_start_and_says_how_to_reset(tmp_path, content, words):
    path = bookmark_path(tmp_path, "fmc", 8302)
    path.write_bytes(content)
    with pytest.raises(BookmarkError) as info:
        Bookmark.load(path)
    message = str(info.value)
    assert str(path) in message and words in message
    assert "move the file away" in message and '"start"' in message
    assert path.read_bytes() == content  # never replaced behind the user's back


CRASH_MID_SAVE = textwrap.dedent("""
    import os, sys
    from estreamer.client.bookmark import Bookmark

    b = Bookmark.load(sys.argv[1])
    b.advance(b.timestamp + 10, "new-second")

    def crash(src, dst):
        os._exit(9)  # the process dies after the temp file is written, before the rename

    os.replace = crash
    b.save()
""")


def test_crash_between_write_and_rename_keeps_the_old_bookmark(tmp_path):
    path = bookmark_path(tmp_path, "fmc", 8302)
    old = Bookmark(path)
    old.advance(T, digest(1))
    old.save()
    before = path.read_bytes()

    result = subprocess.run([sys.executable, "-c", CRASH_MID_SAVE, str(path)],
                            capture_output=True, timeout=60)
    assert result.returncode == 9, result.stderr.decode()
    assert path.read_bytes() == before
    leftovers = [p for p in tmp_path.iterdir() if p != path]
    assert len(leftovers) == 1 and b"new-second" in leftovers[0].read_bytes()
    assert stat.S_IMODE(leftovers[0].stat().st_mode) == 0o600  # private even when left over

    again = Bookmark.load(path)
    assert again is not None and again.timestamp == T and again.keys == {digest(1)}
    assert list(tmp_path.iterdir()) == [path]  # the stale temp file is cleaned up


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root ignores directory permissions")
def test_save_into_a_read_only_directory_fails_cleanly(tmp_path):
    path = tmp_path / "b.dat"
    b = Bookmark(path)
    b.advance(T, digest(1))
    b.save()
    before = path.read_bytes()
    b.advance(T + 1, digest(2, T + 1))
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(BookmarkError, match="cannot save bookmark"):
            b.save()
    finally:
        tmp_path.chmod(0o700)
    assert path.read_bytes() == before and b.dirty


def test_failed_rename_keeps_the_old_file_and_removes_the_temp(tmp_path):
    # A directory where the bookmark file should be: os.replace really fails (as root too).
    path = tmp_path / "b.dat"
    path.mkdir()
    (path / "keep").write_text("x")
    b = Bookmark(path)
    b.advance(T, digest(1))
    with pytest.raises(BookmarkError, match="cannot save bookmark"):
        b.save()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.dat"]
    assert (path / "keep").read_text() == "x" and b.dirty


def test_repr_is_short(tmp_path):
    b = Bookmark(Path("/x/b.dat"), T, [digest(1)])
    assert repr(b) == f"Bookmark('/x/b.dat', timestamp={T}, keys=1)"


def wire(n: int, ts: int = T) -> bytes:
    return encode_record(123, {"id": n, "name": f"sensor-{n}"}, archive_timestamp=ts)


def test_records_given_by_their_bytes_are_hashed_only_when_their_second_is_kept(tmp_path):
    """Digests are taken lazily: a second that is over before the save costs no hashing,
    yet the saved file holds the same digests as if each had been hashed at once, and a
    record given twice is a duplicate either way."""
    b = Bookmark(tmp_path / "b.dat")
    b.advance(T, raw=wire(1))
    assert b.is_duplicate(T, None, wire(1))
    assert not b.is_duplicate(T, None, wire(2))
    b.advance(T + 1, raw=wire(2, T + 1))  # T is over: wire(1) is never hashed
    b.advance(T + 1, raw=wire(3, T + 1))
    b.save()
    saved = json.loads((tmp_path / "b.dat").read_text())
    assert saved["timestamp"] == T + 1
    assert saved["keys"] == sorted([digest(2, T + 1), digest(3, T + 1)])
    # Reloaded (a restart): the resent records are known by their digests.
    again = Bookmark.load(tmp_path / "b.dat")
    assert again.is_duplicate(T + 1, None, wire(3, T + 1))
    assert not again.is_duplicate(T + 1, None, wire(4, T + 1))


def test_a_crowded_second_is_hashed_as_it_goes(tmp_path, monkeypatch):
    from estreamer.client import bookmark as module

    monkeypatch.setattr(module, "UNHASHED_LIMIT", 3)
    b = Bookmark(tmp_path / "b.dat")
    for n in range(7):
        b.advance(T, raw=wire(n))
    assert len(b._unhashed) < 3  # bounded memory: the bytes were let go once hashed
    assert all(b.is_duplicate(T, None, wire(n)) for n in range(7))
    assert b.keys == {digest(n) for n in range(7)}
