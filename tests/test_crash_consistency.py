"""A run killed at any file operation, then resumed, ends as an uninterrupted run does: same weights, best
checkpoint, test scores and metrics files; and a full disk is a clear error that leaves a resumable run."""

from __future__ import annotations

import csv
import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from rnnzoo.cli import main
from rnnzoo.errors import InputError
from rnnzoo.specs import get_example
from rnnzoo.training import load_checkpoint, train

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = get_example("babi_memnn")


class DiskAtEachRename:
    """Copies of a run folder taken just before each rename into it: what a kill -9 at that moment leaves
    on disk, since every run file is written under a temporary name and then renamed over the real one."""

    def __init__(self, run_dir: Path, into: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.run_dir, self.into, self.copies, self.active = run_dir.resolve(), into, [], True
        replace = os.replace

        def copy_then_replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
            if self.active and Path(dst).resolve().is_relative_to(self.run_dir):
                copy = self.into / f"{len(self.copies):03d}-before-{Path(dst).name}"
                shutil.copytree(self.run_dir, copy)
                self.copies.append(copy)
            replace(src, dst, *args, **kwargs)

        monkeypatch.setattr(os, "replace", copy_then_replace)


def _recover(run_dir: Path, cfg: Any, seed: int) -> None:
    """What a user does after a kill: resume the run, or start it again where nothing of it was written."""
    if (run_dir / "config.json").exists():
        train(EXAMPLE, None, progress=False, resume=run_dir)
    else:
        train(EXAMPLE, cfg, seed=seed, progress=False, run_dir=run_dir)


def _without_seconds(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]  # wall-clock time differs


def _outcome(run_dir: Path) -> dict[str, Any]:
    """Everything a finished run leaves that must not depend on how often it was interrupted."""
    last, best = (load_checkpoint(run_dir / "checkpoints" / f"{which}.pt") for which in ("last", "best"))
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {
        "last": {k: v.tolist() for k, v in last["model"].items()},
        "last_epoch": (last["epoch"], last["step"], last["best"]),
        "best": {k: v.tolist() for k, v in best["model"].items()},
        "best_epoch": (best["epoch"], best["step"], best["best"]),
        "test": json.loads((run_dir / "test.json").read_text()),
        "jsonl": _without_seconds([json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]),
        "csv": _without_seconds(rows),
        "png": (run_dir / "metrics.png").read_bytes(),
        "stray": sorted(p.name for p in run_dir.rglob("*.tmp.*")),
    }


def _kill_at_every_rename_then_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, epochs: int
                                      ) -> tuple[dict[str, Any], list[tuple[Path, dict[str, Any]]]]:
    cfg = EXAMPLE.config("tiny", epochs=epochs)
    disk = DiskAtEachRename(tmp_path / "straight", tmp_path / "killed", monkeypatch)
    train(EXAMPLE, cfg, seed=4, progress=False, run_dir=tmp_path / "straight")
    disk.active = False
    assert len(disk.copies) >= 3 + 3 * epochs + 2  # run files, 3+ a checkpointed epoch, picture, test scores
    resumed = []
    for copy in disk.copies:
        _recover(copy, cfg, seed=4)
        resumed.append((copy, _outcome(copy)))
    return _outcome(tmp_path / "straight"), resumed


def test_a_kill_at_any_rename_then_resume_ends_as_an_uninterrupted_run(tmp_path: Path, monkeypatch) -> None:
    straight, resumed = _kill_at_every_rename_then_resume(tmp_path, monkeypatch, epochs=2)
    assert straight["stray"] == [] and [r["epoch"] for r in straight["jsonl"]] == [1, 2]
    for copy, outcome in resumed:
        different = [key for key in straight if outcome[key] != straight[key]]
        assert not different, f"killed {copy.name}, resumed: {different} differ"


def test_a_kill_between_last_and_best_leaves_a_best_checkpoint_of_the_best_epoch(tmp_path, monkeypatch) -> None:
    cfg = EXAMPLE.config("tiny", epochs=3)
    disk = DiskAtEachRename(tmp_path / "straight", tmp_path / "killed", monkeypatch)
    train(EXAMPLE, cfg, seed=4, progress=False, run_dir=tmp_path / "straight")
    disk.active = False
    before_best = [c for c in disk.copies if c.name.endswith("before-best.pt")]
    assert before_best
    for copy in before_best:
        train(EXAMPLE, None, progress=False, resume=copy)
        best = load_checkpoint(copy / "checkpoints" / "best.pt")
        assert json.loads((copy / "test.json").read_text())["best_epoch"] == best["epoch"] == best["best"]["epoch"]
        straight = load_checkpoint(tmp_path / "straight" / "checkpoints" / "best.pt")
        assert all(torch.equal(best["model"][k], straight["model"][k]) for k in straight["model"])


def test_resume_rebuilds_the_metrics_files_from_the_checkpoint(tmp_path: Path, monkeypatch) -> None:
    cfg = EXAMPLE.config("tiny", epochs=3)
    disk = DiskAtEachRename(tmp_path / "straight", tmp_path / "killed", monkeypatch)
    train(EXAMPLE, cfg, seed=4, progress=False, run_dir=tmp_path / "straight")
    disk.active = False
    # killed after the first checkpoint, before its metrics line: the epoch is in last.pt's history only
    copy = next(c for c in disk.copies if (c / "checkpoints" / "last.pt").exists())
    assert load_checkpoint(copy / "checkpoints" / "last.pt")["epoch"] == 1
    assert not (copy / "metrics.jsonl").exists() or (copy / "metrics.jsonl").read_text() == ""
    train(EXAMPLE, None, progress=False, resume=copy)
    assert [json.loads(x)["epoch"] for x in (copy / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    with open(copy / "metrics.csv", newline="") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["1", "2", "3"]


def test_resume_removes_the_temporary_files_a_kill_left(tmp_path: Path, monkeypatch) -> None:
    cfg = EXAMPLE.config("tiny", epochs=2)
    disk = DiskAtEachRename(tmp_path / "straight", tmp_path / "killed", monkeypatch)
    train(EXAMPLE, cfg, seed=4, progress=False, run_dir=tmp_path / "straight")
    disk.active = False
    copy = next(c for c in disk.copies if c.name.endswith("before-last.pt"))
    assert list((copy / "checkpoints").glob("last.*.tmp.pt"))  # the checkpoint written, not yet renamed
    _recover(copy, cfg, seed=4)
    assert list(copy.rglob("*.tmp.*")) == []


def test_a_full_disk_is_a_clear_error_and_the_run_resumes_once_space_is_freed(tmp_path, monkeypatch) -> None:
    cfg = EXAMPLE.config("tiny", epochs=3)
    straight = train(EXAMPLE, cfg, seed=5, progress=False, run_dir=tmp_path / "straight")
    run = tmp_path / "full"
    save = torch.save

    def save_until_the_disk_fills(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        if (run / "metrics.jsonl").exists():  # the first epoch is saved; the second one's checkpoint fails
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_the_disk_fills)
    with pytest.raises(InputError) as caught:
        train(EXAMPLE, cfg, seed=5, progress=False, run_dir=run)
    message = str(caught.value)
    assert str(run) in message and "No space left on device" in message and "intact" in message
    assert f"--resume {run}" in message
    assert load_checkpoint(run / "checkpoints" / "last.pt")["epoch"] == 1  # the previous checkpoint, whole
    assert list(run.rglob("*.tmp.*")) == []
    monkeypatch.setattr(torch, "save", save)  # space freed
    resumed = train(EXAMPLE, None, progress=False, resume=run)
    assert resumed.test == straight.test
    a, b = (load_checkpoint(r / "checkpoints" / "last.pt")["model"] for r in (straight.run_dir, run))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_from_a_checkpoint_file_other_than_last_is_refused(capsys, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(["train", "babi_memnn", "--preset", "tiny", "--epochs", "1", "--quiet", "--run-dir", str(run)]) == 0
    resume = ["train", "babi_memnn", "--epochs", "2", "--quiet", "--resume"]
    assert main([*resume, str(run / "checkpoints" / "best.pt")]) == 2
    err = capsys.readouterr().err
    assert "last.pt" in err and f"--resume {run}" in err
    assert main([*resume, str(run / "checkpoints" / "last.pt")]) == 0
    assert "from checkpoints/last.pt" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace (apt-get install strace)")
def test_a_real_kill_at_every_rename_then_resume_ends_as_an_uninterrupted_run(tmp_path: Path) -> None:
    """The kill -9 itself, by strace's fault injection at the Nth rename, for every N of a 3-epoch run."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    base = [sys.executable, "-m", "rnnzoo", "train", "babi_memnn", "--quiet"]
    command = [*base, "--preset", "tiny", "--epochs", "3", "--seed", "6"]
    subprocess.run([*command, "--run-dir", str(tmp_path / "straight")], env=env, check=True, capture_output=True)
    straight = _outcome(tmp_path / "straight")
    for n in range(1, 100):
        run = tmp_path / f"killed-at-{n}"
        killed = subprocess.run(["strace", "-f", "-o", os.devnull, "-e", "trace=rename,renameat,renameat2",
                                 "-e", f"inject=rename,renameat,renameat2:signal=KILL:when={n}",
                                 *command, "--run-dir", str(run)], env=env, capture_output=True, text=True)
        if killed.returncode == 0:  # the run has fewer renames than n: every one was killed once
            assert n > 10
            break
        assert killed.returncode in (-9, 137), killed.stderr[-2000:]
        again = [*base, "--resume", str(run)] if (run / "config.json").exists() else [*command, "--run-dir", str(run)]
        subprocess.run(again, env=env, check=True, capture_output=True)
        outcome = _outcome(run)
        assert not [key for key in straight if outcome[key] != straight[key]], f"killed at rename {n}"
