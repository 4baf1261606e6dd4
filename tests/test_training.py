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


def test_a_diverging_training_stops_with_a_clear_error_and_marks_nothing_best(capsys, tmp_path: Path) -> None:
    from rnnzoo.cli import main
    from rnnzoo.errors import InputError

    example = get_example("babi_memnn")
    with pytest.raises(InputError, match=r"diverged: the loss is nan in epoch 1 by step \d+ of \d+.*lower --lr"):
        train(example, example.config("tiny", lr=1e30), seed=0, progress=False, run_dir=tmp_path / "a")
    assert not (tmp_path / "a" / "checkpoints" / "best.pt").exists()
    assert main(["train", "babi_memnn", "--preset", "tiny", "--lr", "1e30", "--quiet", "--run-dir",
                 str(tmp_path / "b")]) == 2
    assert "diverged" in capsys.readouterr().err


def _trained_run(tmp_path: Path, epochs: int = 1) -> Path:
    example = get_example("babi_memnn")
    return train(example, example.config("tiny", epochs=epochs), seed=0, progress=False,
                 run_dir=tmp_path / "run").run_dir


def test_loading_refuses_weights_that_are_not_finite(tmp_path: Path) -> None:
    from rnnzoo.errors import InputError

    run = _trained_run(tmp_path)
    path = run / "checkpoints" / "best.pt"
    state = load_checkpoint(path)
    name = next(iter(state["model"]))
    state["model"][name][0] = float("nan")
    torch.save(state, path)
    with pytest.raises(InputError, match=rf"{path}.*not finite.*{name}"):
        load_run(str(run))


def test_a_checkpoint_of_other_layers_is_refused_naming_the_checkpoint_and_parameter(tmp_path: Path) -> None:
    from rnnzoo.errors import InputError

    run = _trained_run(tmp_path)
    best, last = run / "checkpoints" / "best.pt", run / "checkpoints" / "last.pt"
    state = load_checkpoint(best)
    first, second = list(state["model"])[:2]
    for change, named in [(lambda w: w.pop(first), first), (lambda w: w.update(extra=torch.zeros(1)), "extra"),
                          (lambda w: w.update({second: torch.zeros(3, 3, 3)}), second)]:
        broken = {**state, "model": dict(state["model"])}
        change(broken["model"])
        torch.save(broken, best)
        torch.save(broken, last)
        with pytest.raises(InputError, match=rf"{best} does not fit .*'{named}'"):
            load_run(str(run))
        with pytest.raises(InputError, match=rf"{last} does not fit .*'{named}'"):
            train(get_example("babi_memnn"), get_example("babi_memnn").config(epochs=2), progress=False, resume=run)


def test_refusing_an_unsafe_checkpoint_gives_no_advice_to_load_it_anyway(tmp_path: Path) -> None:
    from rnnzoo.errors import InputError

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"format": 1, "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(InputError) as caught:
        load_checkpoint(tmp_path / "evil.pt")
    assert "weights_only" not in str(caught.value) and "posix.system" in str(caught.value)


@pytest.mark.parametrize("seed", [2**64, 2 * 10**14, -1])
def test_a_seed_out_of_range_is_refused_before_any_folder_is_made(capsys, tmp_path: Path, seed: int) -> None:
    from rnnzoo.cli import main
    from rnnzoo.errors import InputError

    example = get_example("babi_memnn")
    with pytest.raises(InputError, match="--seed must be"):
        train(example, example.config("tiny"), seed=seed, progress=False)
    with pytest.raises(InputError, match="--seed must be"):
        train(example, example.config("tiny"), seed=seed, progress=False, run_dir=tmp_path / "r")
    assert main(["train", "babi_memnn", "--preset", "tiny", "--quiet", "--seed", str(seed)]) == 2
    assert "--seed" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "r").exists()


def test_metrics_csv_has_the_keras_csvlogger_columns(tmp_path: Path) -> None:
    import csv

    run = _trained_run(tmp_path, epochs=2)
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss", "seconds"]
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [[float(x) for x in row] for row in rows[1:]] == [[r[k] for k in rows[0]] for r in history]


def test_tensorboard_event_files_hold_each_epoch(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    example = get_example("babi_memnn")
    first = train(example, example.config("tiny", epochs=2), seed=0, progress=False, run_dir=tmp_path / "r",
                  tensorboard=True)
    train(example, example.config("tiny", epochs=3), progress=False, resume=first.run_dir, tensorboard=True)
    events = EventAccumulator(str(tmp_path / "r" / "tensorboard"))
    events.Reload()
    assert {"loss/train", "loss/validation", "accuracy/train", "accuracy/validation"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("loss/validation")] == [1, 2, 3]


def test_tensorboard_without_its_package_says_how_to_install_it(monkeypatch, tmp_path: Path) -> None:
    from rnnzoo.errors import InputError

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as when not installed
    example = get_example("babi_memnn")
    with pytest.raises(InputError, match=r"pip install 'rnnzoo\[tensorboard\]'"):
        train(example, example.config("tiny"), progress=False, run_dir=tmp_path / "r", tensorboard=True)
    assert not (tmp_path / "r").exists()
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'tensorboard = ["tensorboard' in pyproject


def test_metrics_png_shows_the_loss_on_a_log_scale_and_the_best_epoch(monkeypatch, tmp_path: Path) -> None:
    import rnnzoo.training as training

    figures = []
    monkeypatch.setattr(training, "save_figure", lambda fig, path: figures.append(fig))
    result = _trained_run(tmp_path, epochs=2)
    best = load_checkpoint(result / "checkpoints" / "best.pt")["epoch"]
    loss_axes = figures[-1].axes[0]
    assert loss_axes.get_yscale() == "log" and "loss" in loss_axes.get_title()
    marked = [line for line in loss_axes.get_lines() if f"best (epoch {best})" in line.get_label()]
    assert marked and list(marked[0].get_xdata()) == [best, best]


def test_config_json_records_versions_commit_device_and_threads(tmp_path: Path) -> None:
    import platform

    env = json.loads((_trained_run(tmp_path) / "config.json").read_text())["environment"]
    assert env["torch"] == torch.__version__ and env["python"] == platform.python_version()
    assert env["rnnzoo"] and env["device"] == "cpu" and env["threads"] == torch.get_num_threads()
    if (REPO / ".git").exists():
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
        assert env["git_commit"] == head.stdout.strip()


def test_messages_count_one_epoch_and_one_thread_in_the_singular(tmp_path: Path) -> None:
    from rnnzoo.errors import InputError

    lines: list[str] = []
    example = get_example("babi_memnn")
    run = train(example, example.config("tiny", epochs=1), seed=0, progress=False, run_dir=tmp_path / "r",
                log=lines.append).run_dir
    assert ", 1 epoch," in lines[0] and "1 thread" in lines[0] and "epochs" not in lines[0]
    with pytest.raises(InputError, match="already trained 1 epoch;"):
        train(example, None, progress=False, resume=run)


def test_a_long_projected_training_time_names_the_quicker_presets(monkeypatch, tmp_path: Path) -> None:
    import dataclasses

    import rnnzoo.training as training
    from rnnzoo.specs.settings import Preset

    card = BabiMemnn.card
    speedy = Preset("one epoch of tiny", {**card.presets["tiny"].values, "epochs": 1})

    class Presets(BabiMemnn):
        card = dataclasses.replace(BabiMemnn.card, presets={**BabiMemnn.card.presets, "speedy": speedy})

    monkeypatch.setattr(training, "PROJECT_AFTER_STEPS", 3)
    monkeypatch.setattr(training, "LONG_RUN_SECONDS", 0.0)
    lines: list[str] = []
    example = Presets()
    train(example, example.config("tiny", epochs=2), seed=0, progress=False, run_dir=tmp_path / "r",
          log=lines.append)
    projected = [line for line in lines if line.startswith("projected training time: about ")]
    assert len(projected) == 1
    assert "2 epochs of 18 batches, with validation" in projected[0] and "presets offline, speedy train" in projected[0]


def test_validation_and_test_have_progress_bars_that_wait_a_moment(monkeypatch, tmp_path: Path) -> None:
    import rnnzoo.training as training

    bars: list[dict] = []

    class Recording(training.tqdm):
        def __init__(self, *args, **kwargs) -> None:
            bars.append(kwargs)
            super().__init__(*args, **{**kwargs, "disable": True})

    monkeypatch.setattr(training, "tqdm", Recording)
    example = get_example("babi_memnn")
    train(example, example.config("tiny"), seed=0, run_dir=tmp_path / "r")
    evaluation = {b["desc"]: b for b in bars if b["desc"] in ("validation", "test")}
    assert set(evaluation) == {"validation", "test"}
    assert all(b["disable"] is None and b["delay"] > 0 and b["file"] is sys.stderr for b in evaluation.values())


@pytest.mark.slow
def test_distributed_training_exits_cleanly_every_time(tmp_path: Path) -> None:
    """The README's torchrun command, 10 times: each must exit 0 (a crash at teardown once aborted 2 of 9)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "RNNZOO_RUNS": str(tmp_path)}
    for attempt in range(10):
        proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone",
                               "-m", "rnnzoo", "train", "babi_rnn", "--preset", "tiny", "--quiet"],
                              capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, f"attempt {attempt + 1}: exit {proc.returncode}\n{proc.stderr[-3000:]}"


def test_a_torchrun_process_skips_the_interpreter_shutdown_once_its_command_is_done(monkeypatch) -> None:
    import rnnzoo.__main__ as entry
    import rnnzoo.cli

    class Exited(BaseException):
        pass

    def fake_exit(code: int) -> None:
        raise Exited(code)

    monkeypatch.setattr(rnnzoo.cli, "main", lambda: 0)
    monkeypatch.setattr(os, "_exit", fake_exit)
    assert entry.run() == 0  # alone: an ordinary return
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(Exited) as exited:
        entry.run()
    assert exited.value.args == (0,)
