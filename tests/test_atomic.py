"""The one atomic, private file writer every piece of state goes through."""

import stat
from pathlib import Path

import pytest

from estreamer import atomic
from estreamer.atomic import stale_temps, write_atomically


def test_replaces_whole_and_private(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "state.json"
    write_atomically(target, b"one")
    write_atomically(target, b"two")
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["state.json"]


def test_mode_is_exact_whatever_the_umask(tmp_path: Path) -> None:
    import os

    old = os.umask(0o077)
    try:
        write_atomically(tmp_path / "ca.pem", b"cert", 0o644)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "ca.pem").stat().st_mode) == 0o644


def test_failure_leaves_the_old_file_and_no_temp(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "secret.key"
    target.write_bytes(b"old")

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(atomic.os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        write_atomically(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]


def test_crash_leftovers_are_recognised(tmp_path: Path) -> None:
    target = tmp_path / "bm.dat"
    leftover = atomic.temp_name(target)
    leftover.write_bytes(b"half")
    (tmp_path / "other.tmp").write_bytes(b"not ours")
    assert stale_temps(target) == [leftover]
