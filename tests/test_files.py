import os
from pathlib import Path

import pytest

from rnnzoo.files import write_atomically


def test_write_atomically_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "metrics.png"
    write_atomically(path, lambda tmp: tmp.write_bytes(b"new"))
    assert path.read_bytes() == b"new"
    assert [p.name for p in path.parent.iterdir()] == ["metrics.png"]


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "best.pt"
    path.write_bytes(b"old")

    def half_write(tmp: Path) -> None:
        assert tmp.suffix == ".pt" and tmp != path  # writers pick the format from the suffix
        tmp.write_bytes(b"ha")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(path, half_write)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]


def test_the_file_is_flushed_before_the_rename_and_the_folder_after(tmp_path: Path, monkeypatch) -> None:
    events: list[tuple[str, str]] = []
    fsync, replace = os.fsync, os.replace

    def recording_fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        fsync(fd)

    def recording_replace(src, dst) -> None:
        events.append(("replace", str(dst)))
        replace(src, dst)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    path = tmp_path / "last.pt"
    write_atomically(path, lambda tmp: tmp.write_bytes(b"weights"))
    assert [kind for kind, _ in events] == ["fsync", "replace", "fsync"]
    assert ".tmp" in events[0][1] and events[1][1] == str(path) and events[2][1] == str(tmp_path)
