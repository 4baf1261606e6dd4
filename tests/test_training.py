"""The shared training loop: checkpoints, resume, Ctrl-C, evaluation, prediction, distributed training."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rnnzoo.runs import load_run
from rnnzoo.specs import EXAMPLES, get_example
from rnnzoo.specs.babi import BabiMemnn
from rnnzoo.training import evaluate, load_checkpoint, train

REPO = Path(__file__).resolve().parents[1]


def _weights(run_dir: Path, which: str = "last") -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoints" / f"{which}.pt")["model"]


def test_run_folder_holds_config_metrics_checkpoints_and_summary(tmp_path: Path) -> None:
    example = get_example("babi_memnn")
    result = train(example, example.config("tiny"), seed=1, progress=False, run_dir=tmp_path / "run")
    files = {p.name for p in result.run_dir.iterdir()} | {p.name for p in (result.run_dir / "checkpoints").iterdir()}
    assert {"config.json", "command.txt", "summary.txt", "metrics.jsonl", "metrics.png", "test.json",
            "last.pt", "best.pt"} <= files
    lines = (result.run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"} <= set(json.loads(lines[0]))
    assert 0.0 <= result.test["accuracy"] <= 1.0
    assert "(None, " in (result.run_dir / "summary.txt").read_text()


# imdb_cnn_lstm and babi_rnn: their embeddings keep a gradient buffer / a time-major layout
@pytest.mark.parametrize("name", ["babi_memnn", "imdb_cnn_lstm", "babi_rnn"])
def test_resume_continues_bit_for_bit(name: str, tmp_path: Path) -> None:
    example = get_example(name)
    straight = train(example, example.config("tiny", epochs=3), seed=2, progress=False, run_dir=tmp_path / "a")
    first = train(example, example.config("tiny", epochs=1), seed=2, progress=False, run_dir=tmp_path / "b")
    resumed = train(example, example.config("tiny", epochs=3), progress=False, resume=first.run_dir)
    a, b = _weights(straight.run_dir), _weights(resumed.run_dir)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["loss"] for r in straight.history] == [r["loss"] for r in resumed.history]
    lines = (first.run_dir / "metrics.jsonl").read_text().splitlines()  # epochs 2 and 3 added, not all 3 again
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]


class _CountingSteps(BabiMemnn):
    """babi_memnn that counts its training steps (losses computed with gradients), and whose step number
    `steps` receives a Ctrl-C (SIGINT), as a user would send it."""

    def __init__(self, steps: int | None = None) -> None:
        self.calls, self.steps = 0, steps

    def loss(self, output, target):  # type: ignore[override]
        if torch.is_grad_enabled():
            self.calls += 1
            if self.calls == self.steps:
                os.kill(os.getpid(), signal.SIGINT)
        return super().loss(output, target)


def test_ctrl_c_saves_a_checkpoint_mid_epoch_and_resume_matches(tmp_path: Path) -> None:
    example = get_example("babi_memnn")
    cfg = example.config("tiny", epochs=2)
    straight = train(example, cfg, seed=3, progress=False, run_dir=tmp_path / "a")
    interrupted = train(_CountingSteps(5), cfg, seed=3, progress=False, run_dir=tmp_path / "b")
    assert interrupted.stopped
    state = load_checkpoint(interrupted.run_dir / "checkpoints" / "last.pt")
    assert (state["epoch"], state["step"]) == (0, 5)
    counting = _CountingSteps()
    resumed = train(counting, None, progress=False, resume=interrupted.run_dir)  # None: as the run was set
    a, b = _weights(straight.run_dir), _weights(resumed.run_dir)
    assert all(torch.equal(a[k], b[k]) for k in a)
    all_steps = int(load_checkpoint(straight.run_dir / "checkpoints" / "last.pt")["optimizer"]["state"][0]["step"])
    assert counting.calls == all_steps - 5  # the resumed run took only the steps not yet taken


def test_evaluate_scores_without_dropout() -> None:
    example = get_example("babi_memnn")
    cfg = example.config("tiny", dropout_rate=0.5)
    data = example.load_data(cfg, seed=0)
    torch.manual_seed(0)
    model = example.build_model(cfg, data.meta).train()
    scores = [evaluate(model, example, data.val, cfg.batch_size, torch.device("cpu")) for _ in range(2)]
    assert scores[0] == scores[1]  # with dropout on, two passes would draw different masks
    with torch.no_grad():
        model.eval()
        logits = model(*data.val.inputs)
    assert scores[0]["loss"] == pytest.approx(float(example.loss(logits, data.val.target)), rel=1e-5)


def test_checkpoint_loading_refuses_code_and_foreign_files(tmp_path: Path) -> None:
    from rnnzoo.errors import InputError

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"format": 1, "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(InputError, match="not a readable"):
        load_checkpoint(tmp_path / "evil.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError):
        load_checkpoint(tmp_path / "junk.pt")


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_every_example_trains_evaluates_and_reloads_on_its_tiny_preset(name: str, tmp_path: Path) -> None:
    example = get_example(name)
    result = train(example, example.config("tiny"), seed=0, progress=False, run_dir=tmp_path / "run")
    assert len(result.history) == example.config("tiny").epochs and result.test is not None
    run = load_run(str(result.run_dir))
    assert run.example.name == name and not run.model.training


# imdb_cnn_lstm: its embedding keeps its own gradient buffer, except under DDP, whose all-reduce needs
# autograd's gradient (KeptGradEmbedding)
@pytest.mark.parametrize("name", ["babi_memnn", "imdb_cnn_lstm"])
def test_distributed_two_processes_end_with_identical_weights(name: str, tmp_path: Path) -> None:
    # Each process saves the weights it started from and ended with; test=False, so the end weights are
    # each process's own (the final test loads rank 0's best checkpoint into both).
    worker = tmp_path / "worker.py"
    worker.write_text(
        "import json, os, sys, torch\n"
        "from pathlib import Path\n"
        "from rnnzoo.specs import get_example\n"
        "from rnnzoo.training import train\n"
        f"ex = get_example({name!r})\n"
        "out, rank = Path(sys.argv[1]), os.environ['RANK']\n"
        "build = ex.build_model\n"
        "def build_and_keep(cfg, meta):\n"
        "    model = build(cfg, meta)\n"
        "    torch.save(model.state_dict(), out / f'start{rank}.pt')\n"
        "    return model\n"
        "ex.build_model = build_and_keep\n"
        "cfg = ex.config('tiny', epochs=2)\n"
        "r = train(ex, cfg, seed=0, progress=False, device='cpu', run_dir=out / 'run', test=False)\n"
        "torch.save(r.model.state_dict(), out / f'end{rank}.pt')\n"
        "(out / 'examples.json').write_text(json.dumps(len(ex.load_data(cfg, 0).train)))\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                           "--standalone", str(worker), str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    start, end = ([torch.load(tmp_path / f"{kind}{rank}.pt", weights_only=True) for rank in (0, 1)]
                  for kind in ("start", "end"))
    assert all(torch.equal(end[0][k], end[1][k]) for k in end[0]), "the processes ended with different weights"
    assert any(not torch.equal(end[0][k], start[0][k]) for k in end[0]), "the weights never changed"
    # each process trained on its half of the examples: 2 epochs of ceil((N // 2) / batch) steps
    n, batch = json.loads((tmp_path / "examples.json").read_text()), get_example(name).config("tiny").batch_size
    optimizer = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["optimizer"]
    assert int(optimizer["state"][0]["step"]) == 2 * math.ceil((n // 2) / batch)
    assert (tmp_path / "run" / "metrics.jsonl").read_text().count("\n") == 2  # rank 0 alone wrote
