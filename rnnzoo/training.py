"""The one training loop, evaluation and checkpointing shared by every example.

It gets a model, a loss and data from an example spec (`rnnzoo.specs`) and never imports a model. Runs
live in `runs/<example>/<id>/` (under $RNNZOO_RUNS, default ./runs): config.json, command.txt,
summary.txt, metrics.jsonl and metrics.csv (a line an epoch), metrics.png, checkpoints/last.pt (every
epoch, and on Ctrl-C; under torchrun, where Ctrl-C stops every process at once, the end of the last epoch),
checkpoints/best.pt (best validation metric), test.json (the best checkpoint's test scores) and, when asked
for, TensorBoard event files in tensorboard/. Distributed data-parallel training runs under `torchrun`; only
rank 0 writes.

A run survives a kill at any moment: every file is written whole under a temporary name, flushed to disk
and renamed over the old one; best.pt is written after last.pt, from the same bytes, so last.pt always
names the epoch best.pt must hold; and a resumed run removes the temporary files a kill left, re-creates
best.pt and rebuilds the metrics files from last.pt's history, so that it ends as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import math
import os
import pickle
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm import tqdm

import rnnzoo
from rnnzoo.errors import InputError
from rnnzoo.files import pyplot, save_figure, write_atomically, write_text
from rnnzoo.specs.base import Data, Example, Split
from rnnzoo.specs.settings import SEED_LIMIT

CHECKPOINT_FORMAT = 1
CHECK_EVERY = 20  # training steps between the checks that the loss is finite (each waits for the device once)
# The projected training time is printed after this many steps or seconds of training, whichever comes
# first; above LONG_RUN_SECONDS it comes with a warning naming the quicker presets.
PROJECT_AFTER_STEPS, PROJECT_AFTER_SECONDS, LONG_RUN_SECONDS = 20, 5.0, 3 * 3600.0
EVAL_BAR_DELAY = 1.0  # seconds an evaluation runs before its progress bar shows


def plural(n: int, word: str, words: str | None = None) -> str:
    """'1 epoch', '2 epochs'; `words` for a plural other than word + 's' ('batches', 'processes')."""
    return f"{n:,} {word if n == 1 else words or word + 's'}"


# --- devices, processes, seeds ---------------------------------------------------------------------------


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but PyTorch sees no CUDA device; use --device cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise InputError(f"unknown device {name!r}; choose auto, cpu or cuda")
    return torch.device(name)


@dataclass
class Process:
    """This process's place in a `torchrun` job (rank 0 of 1 when run alone)."""

    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0


def start_process(device_name: str) -> Process:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_name)
    if world == 1:
        return Process(0, 1, device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", world))))
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Process(dist.get_rank(), world, device)


def epoch_order(n: int, seed: int, epoch: int) -> Tensor:
    """The shuffled order of epoch `epoch`: a function of (seed, epoch) alone, so a resumed run sees the
    same batches as an uninterrupted one."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


def check_seed(seed: int) -> None:
    """Refuse a seed that epoch_order could not use, before any folder is made."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
        raise InputError(f"--seed must be an integer from 0 to {SEED_LIMIT - 1} (10**14 - 1), got {seed!r}")


# --- checkpoints -----------------------------------------------------------------------------------------


def checkpoint_bytes(state: dict[str, Any]) -> bytes:
    """A checkpoint serialized in memory: written through Python's file writes, a full disk is an OSError
    (ENOSPC), and last.pt and best.pt of one epoch are the same bytes."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def save_checkpoint(path: Path, state: dict[str, Any] | bytes) -> None:
    """Write atomically: a crash mid-write leaves the previous checkpoint intact."""
    data = state if isinstance(state, bytes) else checkpoint_bytes(state)
    write_atomically(path, lambda tmp: tmp.write_bytes(data))


def _load_failure(exc: Exception) -> str:
    """Why torch.load refused a file, without PyTorch's advice to retry with weights_only=False (which
    would run whatever code the file holds)."""
    text = str(exc)
    found = re.search(r"unsupported GLOBAL (\S+)", text, re.IGNORECASE)
    if found:
        return (f"it holds a Python object ({found.group(1)}) besides tensors and plain data, and rnnzoo never "
                "loads those, since loading them can run code")
    if isinstance(exc, pickle.UnpicklingError) or "weights_only" in text:
        return "its contents are not a PyTorch save (another format, or corrupt)"
    return f"{exc.__class__.__name__}: {text.splitlines()[0] if text else 'unreadable'}"


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load tensors and plain data only (weights_only=True: loading never runs code)."""
    if not path.is_file():
        hint = ""
        if path.name == "best.pt" and (path.parent / "last.pt").is_file():  # stopped before an epoch ended
            hint = ("; the run has no finished epoch yet: use --checkpoint last, or continue it with "
                    f"rnnzoo train EXAMPLE --resume {path.parent.parent}")
        raise InputError(f"no checkpoint at {path}{hint}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file
        raise InputError(f"{path} is not a readable rnnzoo checkpoint: {_load_failure(exc)}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path} is not an rnnzoo checkpoint (format {CHECKPOINT_FORMAT})")
    return state


def load_weights(model: nn.Module, weights: dict[str, Tensor], path: Path) -> None:
    """`model.load_state_dict(weights)`, or an InputError naming the checkpoint and the first parameter
    that the model lacks, that the checkpoint lacks, or whose size differs."""
    own = model.state_dict()
    problem = next((f"it lacks {name!r}" for name in own if name not in weights), None)
    problem = problem or next((f"it has {name!r}, which the model lacks" for name in weights if name not in own), None)
    problem = problem or next((f"{name!r} is {tuple(weights[name].shape)} in it and {tuple(t.shape)} in the model"
                               for name, t in own.items() if weights[name].shape != t.shape), None)
    if problem:
        raise InputError(f"{path} does not fit the model that its settings build: {problem} (a checkpoint of "
                         "other layers or sizes, e.g. from another rnnzoo version)")
    model.load_state_dict(weights)


# --- runs ------------------------------------------------------------------------------------------------


def runs_root() -> Path:
    return Path(os.environ.get("RNNZOO_RUNS", "runs"))


def new_run_dir(example: str, seed: int) -> Path:
    base = runs_root() / example / f"{time.strftime('%Y%m%d-%H%M%S')}-s{seed}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def remove_temporary_files(run_dir: Path) -> None:
    """Delete the temporary files (`<name>.<pid>.tmp.<suffix>`) that a kill mid-write leaves in a run."""
    for folder in (run_dir, run_dir / "checkpoints"):
        for path in folder.glob("*.tmp.*"):
            if path.is_file():
                path.unlink(missing_ok=True)


def checkpoint_epoch(path: Path) -> int | None:
    """The epoch a checkpoint holds; None when it is missing or unreadable."""
    try:
        return load_checkpoint(path)["epoch"] if path.is_file() else None
    except InputError:
        return None


def best_is_stale(run_dir: Path, state: dict[str, Any]) -> bool:
    """Whether best.pt lacks the epoch that last.pt (`state`) names as the best."""
    return state["best"]["epoch"] is not None and \
        checkpoint_epoch(run_dir / "checkpoints" / "best.pt") != state["best"]["epoch"]


def repair_best(run_dir: Path, state: dict[str, Any]) -> None:
    """Re-create best.pt after a kill between last.pt and best.pt. best.pt is written after last.pt, so the
    only epoch it can lack is the one last.pt was written at, and then last.pt holds that epoch's weights:
    best.pt of that epoch is a copy of it."""
    last, best = run_dir / "checkpoints" / "last.pt", run_dir / "checkpoints" / "best.pt"
    if not best_is_stale(run_dir, state):
        return
    if state["best"]["epoch"] != state["epoch"] or state["step"] != 0:
        raise InputError(f"{best} does not hold epoch {state['best']['epoch']}, which {last} names as the best, "
                         "and it cannot be re-created from last.pt; evaluate the run with --checkpoint last, or "
                         "train it again")
    write_atomically(best, lambda tmp: shutil.copyfile(last, tmp))


def metrics_jsonl(history: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(record) + "\n" for record in history)


def metrics_csv(history: list[dict[str, Any]]) -> str:
    """The history as Keras' CSVLogger writes it: epoch, then the metrics sorted by name; then seconds."""
    names = sorted({k for record in history for k in record} - {"epoch", "seconds"})
    text = io.StringIO()
    writer = csv.DictWriter(text, ["epoch", *names, "seconds"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return text.getvalue()


def metrics_files_stale(run_dir: Path, history: list[dict[str, Any]]) -> bool:
    """Whether metrics.jsonl, metrics.csv or metrics.png lack something of `history`."""
    def text(name: str) -> str | None:
        return (run_dir / name).read_text() if (run_dir / name).is_file() else None
    return (text("metrics.jsonl") != metrics_jsonl(history) or text("metrics.csv") != metrics_csv(history)
            or bool(history) and not (run_dir / "metrics.png").is_file())


def write_metrics(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """metrics.jsonl and metrics.csv, rewritten whole from the history (so that each epoch is there once)."""
    write_text(run_dir / "metrics.jsonl", metrics_jsonl(history))
    write_text(run_dir / "metrics.csv", metrics_csv(history))


def test_scores_stale(run_dir: Path, best_epoch: int | None) -> bool:
    try:
        return json.loads((run_dir / "test.json").read_text())["best_epoch"] != best_epoch
    except (OSError, ValueError, KeyError, TypeError):
        return True


@contextlib.contextmanager
def writing_run_files(run_dir: Path, example: Example) -> Iterator[None]:
    """Turn a failed write (a full disk, a folder gone read-only) into an InputError naming the folder. The
    file being written keeps its previous version, so the run can be resumed once the problem is fixed."""
    try:
        yield
    except OSError as exc:
        raise InputError(
            f"cannot write the run folder {run_dir}: {exc.strerror or exc}"
            + (f" ({re.sub(r'[.][0-9]+[.]tmp', '', Path(exc.filename).name)})" if exc.filename else "")
            + ". The files written before, "
            "the previous checkpoints among them, are intact: free some space (or fix the folder), then "
            f"continue with: rnnzoo train {example.name} --resume {run_dir}") from None


def summary_writer() -> type:
    """torch.utils.tensorboard's SummaryWriter (imported only when asked for), or an InputError saying how
    to install the tensorboard package it needs."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise InputError("--tensorboard needs the tensorboard package: pip install 'rnnzoo[tensorboard]'") from None
    return SummaryWriter


def open_tensorboard(folder: Path, history: list[dict[str, Any]]) -> Any:
    """A TensorBoard SummaryWriter in `folder`, holding `history`. A resumed run writes the whole history
    again after a purge mark at epoch 1, so that TensorBoard shows each epoch once."""
    writer = summary_writer()(str(folder), purge_step=1 if history else None)
    for record in history:
        log_scalars(writer, record)
    return writer


def log_scalars(writer: Any, record: dict[str, Any]) -> None:
    """One epoch's record as TensorBoard scalars: loss/train and loss/validation, accuracy/train ..."""
    for name, value in record.items():
        if name not in ("epoch", "seconds"):
            tag = f"{name[4:]}/validation" if name.startswith("val_") else f"{name}/train"
            writer.add_scalar(tag, value, record["epoch"])
    writer.add_scalar("seconds per epoch", record["seconds"], record["epoch"])
    writer.flush()


def git_commit() -> str | None:
    """The commit of the git checkout rnnzoo runs from; None when it runs from elsewhere (an install)."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=2)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}([0-9a-f]{24})?", commit) else None


def environment(proc: Process) -> dict[str, Any]:
    """What a run's numbers depend on besides its settings: versions, commit, device, threads."""
    return {"rnnzoo": rnnzoo.__version__, "torch": torch.__version__, "python": platform.python_version(),
            "git_commit": git_commit(), "device": str(proc.device), "threads": torch.get_num_threads(),
            "processes": proc.world}


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def quicker_presets(example: Example, cfg: Any) -> list[str]:
    """The example's presets that lower one of `cfg`'s numbers (fewer epochs, examples or units; a 0, which
    means all the data, counts as unlimited): those to name when `cfg` would train for too long."""
    current = dataclasses.asdict(cfg)

    def lower(name: str, value: Any) -> bool:
        now = current.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not isinstance(now, int | float):
            return False
        return 0 < value < now or now == 0 < value

    return [name for name, preset in example.presets.items()
            if dataclasses.asdict(example.config(name)) != current
            and any(lower(k, v) for k, v in preset.values.items())]


@dataclass
class Forecast:
    """The whole training's time, projected once from its first steps (PROJECT_AFTER_STEPS steps or
    PROJECT_AFTER_SECONDS seconds): the steps left at the measured pace, plus validation and test, taken
    as a forward pass per example, a third of a training step's forward, backward and update."""

    steps_left: int  # training steps from here to the last epoch's end
    eval_examples_left: int  # examples still to validate (and test)
    batch_size: int
    say: Callable[[str], None]
    plan: str  # what is projected, e.g. "20 epochs of 150 batches, with validation"
    warning: str = ""  # appended when the projection is over LONG_RUN_SECONDS
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    started: float = field(default_factory=time.perf_counter)
    steps: int = 0
    done: bool = False

    def step(self) -> None:
        if self.done:
            return
        self.steps += 1
        elapsed = time.perf_counter() - self.started
        if self.steps < PROJECT_AFTER_STEPS and elapsed < PROJECT_AFTER_SECONDS:
            return
        self.done = True
        if self.device.type == "cuda":  # once: the steps queued so far have run
            torch.cuda.synchronize(self.device)
            elapsed = time.perf_counter() - self.started
        per_step = elapsed / self.steps
        total = per_step * (self.steps_left + self.eval_examples_left / self.batch_size / 3)
        message = f"projected training time: about {duration(total)} ({self.plan})"
        if total > LONG_RUN_SECONDS and self.warning:
            message += f"; {self.warning}"
        with tqdm.external_write_mode():  # above the progress bar, not through it
            self.say(message)

# --- the loop --------------------------------------------------------------------------------------------


@dataclass
class Totals:
    """Running sums of one pass (loss * examples, metric counts, examples), kept as tensors on the device
    so the loop does not wait for the GPU at every step."""

    sums: dict[str, Tensor] = field(default_factory=dict)
    count: int = 0

    def add(self, loss: Tensor, metrics: dict[str, Tensor], n: int) -> None:
        for name, value in {"loss": loss.detach() * n, **metrics}.items():
            value = value.detach().double()
            self.sums[name] = self.sums[name] + value if name in self.sums else value
        self.count += n

    def reduce(self) -> None:
        """Add up the totals of every process (torchrun)."""
        if dist.is_initialized():
            names = list(self.sums)  # the same order in every process
            packed = torch.stack([self.sums[k] for k in names] + [torch.tensor(float(self.count)).to(
                self.sums[names[0]].device, torch.float64)])
            dist.all_reduce(packed)
            self.sums = dict(zip(names, packed[:-1]))
            self.count = int(packed[-1].item())

    def means(self, prefix: str = "") -> dict[str, float]:
        return {prefix + k: float(v) / max(self.count, 1) for k, v in self.sums.items()}

    def state(self) -> dict[str, Any]:
        return {"sums": {k: v.cpu() for k, v in self.sums.items()}, "count": self.count}

    @classmethod
    def from_state(cls, state: dict[str, Any], device: torch.device) -> Totals:
        return cls({k: v.to(device) for k, v in state["sums"].items()}, state["count"])


def to_device(split: Split, device: torch.device) -> tuple[tuple[Tensor, ...], Tensor]:
    return tuple(t.to(device, non_blocking=True) for t in split.inputs), split.target.to(device, non_blocking=True)


def shard(order: Tensor, proc: Process) -> Tensor:
    """This process's share of an epoch; every process gets the same number of examples."""
    per_rank = len(order) // proc.world
    return order[proc.rank::proc.world][:per_rank]


class StopRequest:
    """Turns Ctrl-C into a flag the loop checks after each step, so the checkpoint it then writes holds a
    consistent state (a second Ctrl-C stops at once)."""

    def __init__(self) -> None:
        self.requested = False

    @contextlib.contextmanager
    def installed(self, enabled: bool) -> Iterator[None]:
        if not enabled:
            yield
            return
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum: int, frame: Any) -> None:
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True

        signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


def train_one_epoch(model: nn.Module, example: Example, split: Split, order: Tensor, cfg: Any,
                    optimizer: torch.optim.Optimizer, device: torch.device, totals: Totals, start_step: int,
                    stop: StopRequest, bar: tqdm | None, epoch: int = 0, forecast: Forecast | None = None) -> int:
    """Train on `order`'s batches from `start_step`; returns the number of the next step (the number of
    batches when the epoch is complete, fewer when a stop was requested). Every CHECK_EVERY steps, and
    before returning, checks that the loss is finite (InputError when it is not)."""
    model.train()
    batches = order.split(cfg.batch_size)
    for step in range(start_step, len(batches)):
        inputs, target = to_device(split.take(batches[step]), device)
        output = model(*inputs)
        loss = example.loss(output, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.clip_norm:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)  # keeps an exploding RNN step bounded
        optimizer.step()
        with torch.no_grad():
            totals.add(loss, example.metrics(output, target), len(target))
        if (step + 1) % CHECK_EVERY == 0 or step == len(batches) - 1 or stop.requested:
            check_finite(totals, epoch, step + 1, len(batches), optimizer)
        if bar is not None:
            bar.update(1)
            if step % 20 == 0 or step == len(batches) - 1:
                bar.set_postfix({k: f"{v:.4f}" for k, v in totals.means().items()}, refresh=False)
        if forecast is not None:
            forecast.step()
        if stop.requested:
            return step + 1
    return len(batches)


def check_finite(totals: Totals, epoch: int, step: int, n_batches: int, optimizer: torch.optim.Optimizer) -> None:
    """Stop a diverged training: an InputError when the loss summed so far in this epoch is NaN or infinite
    (in any process, under torchrun). One wait for the device, so it runs every CHECK_EVERY steps only."""
    finite = torch.isfinite(totals.sums["loss"]).to(torch.int32)
    if dist.is_initialized():
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    if not finite.item():
        lr = optimizer.param_groups[0]["lr"]
        raise InputError(f"training diverged: the loss is {float(totals.sums['loss'])} in epoch {epoch + 1} by step "
                         f"{step} of {n_batches}; start a new run with a lower --lr (this one's is {lr:g}), or "
                         "with --clip-norm")


@torch.no_grad()
def evaluate(model: nn.Module, example: Example, split: Split, batch_size: int, device: torch.device,
             proc: Process | None = None, progress: bool = False, desc: str = "evaluation") -> dict[str, float]:
    """Mean loss and metrics over a split (each process takes its share under torchrun). With `progress`,
    a progress bar on stderr once it has run for EVAL_BAR_DELAY seconds."""
    model.eval()
    proc = proc or Process(0, 1, device)
    order = torch.arange(len(split))
    if proc.world > 1:
        order = order[proc.rank::proc.world]
    totals = Totals()
    batches = order.split(max(batch_size, 256))
    with tqdm(total=len(batches), desc=desc, leave=False, delay=EVAL_BAR_DELAY, file=sys.stderr,
              disable=None if progress and proc.main else True, dynamic_ncols=True) as bar:
        for index in batches:
            inputs, target = to_device(split.take(index), device)
            output = model(*inputs)
            totals.add(example.loss(output, target), example.metrics(output, target), len(target))
            bar.update(1)
    totals.reduce()
    return totals.means()


def better(example: Example, value: float, best: float | None) -> bool:
    if best is None or math.isnan(best):
        return not math.isnan(value)
    return value < best if example.metric == "loss" else value > best


@dataclass
class TrainResult:
    run_dir: Path
    history: list[dict[str, Any]]
    best_epoch: int | None
    test: dict[str, float] | None
    model: nn.Module
    stopped: bool = False


def train(example: Example, cfg: Any | None, *, seed: int = 0, device: str = "auto", run_dir: Path | None = None,
          resume: Path | None = None, progress: bool = True, test: bool = True, data: Data | None = None,
          command: str | None = None, tensorboard: bool = False, log=print) -> TrainResult:
    """Train `example` with `cfg`; returns the run. With `resume` (a run folder), continue that run from its
    checkpoints/last.pt with its own settings and seed: only `cfg.epochs` is read, the new number of epochs
    (cfg None: the run's own). A run stopped after its last epoch but before its last files is finished.
    With `tensorboard`, TensorBoard event files are written to the run's tensorboard/ folder."""
    if cfg is None and resume is None:
        raise ValueError("train() needs a config, unless it resumes a run")
    check_seed(seed)  # before any folder is made
    if tensorboard:
        summary_writer()  # before any folder is made, not after the data is read
    proc = start_process(device)
    try:
        result = _train(example, cfg, seed, proc, run_dir, resume, progress, test, data, command, tensorboard, log)
    except BaseException:
        if dist.is_initialized():
            dist.destroy_process_group()
        raise
    if dist.is_initialized():
        dist.barrier()  # no process leaves while another still writes or talks to it
        dist.destroy_process_group()
    return result


def _resume_state(example: Example, cfg: Any, resume: Path, test: bool) -> tuple[dict[str, Any] | None, Any, int]:
    """The checkpoint (None for a run killed before its first one), the settings and the seed that resume
    the run in folder `resume`."""
    last = resume / "checkpoints" / "last.pt"
    if not last.is_file() and (resume / "config.json").is_file():  # killed before its first checkpoint
        try:
            saved = json.loads((resume / "config.json").read_text())
            name, values, seed = saved["example"], saved["config"], saved["seed"]
        except (ValueError, KeyError, TypeError):
            raise InputError(f"{resume} holds no checkpoint and no readable config.json: start a new run") from None
        if name != example.name:
            raise InputError(f"{resume} is a run of {name}, not {example.name}")
        epochs = values["epochs"] if cfg is None else cfg.epochs
        return None, example.config_from_dict({**values, "epochs": epochs}), seed
    state = load_checkpoint(last)
    if state["example"] != example.name:
        raise InputError(f"{resume} is a run of {state['example']}, not {example.name}")
    epochs = state["config"]["epochs"] if cfg is None else cfg.epochs
    finished = state["epoch"] > epochs or state["epoch"] == epochs and not (
        best_is_stale(resume, state) or metrics_files_stale(resume, state["history"])
        or test and state["best"]["epoch"] is not None and test_scores_stale(resume, state["best"]["epoch"]))
    if finished:
        raise InputError(f"{resume} has already trained {plural(state['epoch'], 'epoch')}; to train on, give "
                         f"--epochs more than {state['epoch']}")
    return state, example.config_from_dict({**state["config"], "epochs": epochs}), state["seed"]


def _train(example: Example, cfg: Any, seed: int, proc: Process, run_dir: Path | None, resume: Path | None,
           progress: bool, test: bool, data: Data | None, command: str | None, tensorboard: bool,
           log) -> TrainResult:
    say = log if proc.main else (lambda *a, **k: None)
    state: dict[str, Any] | None = None
    if resume is not None:
        state, cfg, seed = _resume_state(example, cfg, resume, test)
        run_dir = resume
    elif run_dir is None:
        run_dir = new_run_dir(example.name, seed)
        if proc.world > 1:  # every process must write to (and read from) the same folder
            holder = [str(run_dir)]
            dist.broadcast_object_list(holder, src=0)
            run_dir = Path(holder[0])
    elif proc.main and ((run_dir / "config.json").exists() or any((run_dir / "checkpoints").glob("*.pt"))):
        raise InputError(f"{run_dir} already holds a run: continue it with --resume {run_dir}, or choose "
                         "another --run-dir")
    assert run_dir is not None
    created = not run_dir.exists()
    if proc.main:
        check_writable(run_dir)  # before the data is read, not after an epoch's work
        remove_temporary_files(run_dir)

    torch.manual_seed(seed)
    if data is None:
        try:
            data = example.load_data(cfg, seed)
        except BaseException:  # leave no empty run folder behind
            if created and proc.main and not any(run_dir.iterdir()):
                run_dir.rmdir()
            raise
    if len(data.train) < proc.world or len(data.val) < 1:
        raise InputError(f"too few examples: {len(data.train)} to train on and {len(data.val)} to validate on "
                         "after the validation split; use more data")
    model = example.build_model(cfg, data.meta).to(proc.device)
    optimizer = example.make_optimizer(cfg, model.parameters())
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"epoch": None, "value": None}
    epoch, step, totals = 0, 0, Totals()
    last_path = run_dir / "checkpoints" / "last.pt"
    if state is not None:
        load_weights(model, state["model"], last_path)
        try:
            optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError, RuntimeError) as exc:
            raise InputError(f"{last_path} holds an optimizer state that does not fit this run's optimizer "
                             f"({exc})") from None
        epoch, step = state["epoch"], state["step"]
        totals = Totals.from_state(state["totals"], proc.device)
        history, best = state["history"], state["best"]
        torch.set_rng_state(state["rng"]["torch"])
        if proc.device.type == "cuda" and state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"], proc.device)
        if proc.main:
            with writing_run_files(run_dir, example):  # what a kill between two writes left out
                repair_best(run_dir, state)
                write_metrics(run_dir, history)
                plot_metrics(history, run_dir / "metrics.png", example.metric, best["epoch"])
        if epoch >= cfg.epochs:
            say(f"finishing {run_dir}, trained to epoch {epoch}: writing the files a stop left out")
        else:
            say(f"resuming {run_dir} from checkpoints/last.pt at epoch {epoch + 1}"
                + (f", step {step}" if step else ""))
    elif proc.main:
        if resume is not None:
            say(f"{run_dir} stopped before its first checkpoint: starting it again with its own settings")
        with writing_run_files(run_dir, example):
            write_run_files(run_dir, example, cfg, seed, data, model, command, proc)
    train_model: nn.Module = model
    if proc.world > 1:
        train_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[proc.device.index] if proc.device.type == "cuda" else None)
    writer = open_tensorboard(run_dir / "tensorboard", history) if tensorboard and proc.main else None

    def checkpoint() -> bytes:
        return checkpoint_bytes({
            "format": CHECKPOINT_FORMAT, "example": example.name, "config": dataclasses.asdict(cfg),
            "meta": data.meta, "seed": seed, "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "epoch": epoch, "step": step, "totals": totals.state(),
            "history": history, "best": best,
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state(proc.device) if proc.device.type == "cuda" else None},
        })

    n_batches = math.ceil(len(shard(torch.arange(len(data.train)), proc)) / cfg.batch_size)
    threads = f", {plural(torch.get_num_threads(), 'thread')}" if proc.device.type == "cpu" else ""
    say(f"{example.name}: {len(data.train):,} train / {len(data.val):,} validation / {len(data.test):,} test "
        f"examples, {plural(cfg.epochs, 'epoch')}, batch {cfg.batch_size}, on {proc.device}{threads}"
        + (f" x {plural(proc.world, 'process', 'processes')}" if proc.world > 1 else "") + f"; run folder {run_dir}")
    quicker = quicker_presets(example, cfg)
    forecast = Forecast(
        steps_left=(cfg.epochs - epoch) * n_batches - step,
        eval_examples_left=(cfg.epochs - epoch) * len(data.val) // proc.world
        + (len(data.test) // proc.world if test else 0),
        batch_size=cfg.batch_size, say=say, device=proc.device,
        plan=f"{plural(cfg.epochs - epoch, 'epoch')} of {plural(n_batches, 'batch', 'batches')}, with validation",
        warning=f"that is long on {proc.device.type}: the quicker "
                + (f"presets {', '.join(quicker)} train" if len(quicker) > 1 else f"preset {quicker[0]} trains")
                + f" in less time (--preset {quicker[0]})" if quicker else "that is long")
    stop = StopRequest()
    stopped = False
    with stop.installed(proc.world == 1):
        while epoch < cfg.epochs:
            example.begin_epoch(cfg, epoch, history, model, optimizer)  # the spec's schedule, if it has one
            order = shard(epoch_order(len(data.train), seed, epoch), proc)
            started = time.perf_counter()
            bar = tqdm(total=n_batches, initial=step, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
                       disable=None if progress and proc.main else True, file=sys.stderr, dynamic_ncols=True)
            step = train_one_epoch(train_model, example, data.train, order, cfg, optimizer, proc.device, totals,
                                   step, stop, bar, epoch, forecast)
            bar.close()
            if step < n_batches:  # Ctrl-C: keep everything needed to continue from this very step
                if proc.main:
                    with writing_run_files(run_dir, example):
                        save_checkpoint(last_path, checkpoint())
                say(f"\nstopped in epoch {epoch + 1} at step {step}/{n_batches}; checkpoint saved. Continue "
                    f"with:\n  rnnzoo train {example.name} --resume {run_dir}")
                stopped = True
                break
            totals.reduce()
            record = {"epoch": epoch + 1, **totals.means(),
                      **{f"val_{k}": v for k, v in evaluate(model, example, data.val, cfg.batch_size, proc.device,
                                                            proc, progress, "validation").items()},
                      "seconds": round(time.perf_counter() - started, 3)}
            history.append(record)
            epoch, step, totals = epoch + 1, 0, Totals()
            value = record[f"val_{example.metric}"]
            improved = better(example, value, best["value"])
            if improved:
                best = {"epoch": epoch, "value": value}
            if proc.main:
                # last.pt first, then best.pt from the same bytes: after a kill between the two, last.pt
                # names this epoch as the best and holds it, and resume re-creates best.pt from it
                with writing_run_files(run_dir, example):
                    saved = checkpoint()
                    save_checkpoint(last_path, saved)
                    if improved:
                        save_checkpoint(run_dir / "checkpoints" / "best.pt", saved)
                    write_metrics(run_dir, history)
                if writer is not None:
                    log_scalars(writer, record)
            say(format_record(record) + ("  *" if improved else ""))
    if writer is not None:
        writer.close()
    if proc.main and history:
        with writing_run_files(run_dir, example):
            plot_metrics(history, run_dir / "metrics.png", example.metric, best["epoch"])
    result = TrainResult(run_dir, history, best["epoch"], None, model, stopped)
    if test and not stopped and best["epoch"] is not None:
        best_path = run_dir / "checkpoints" / "best.pt"
        best_state = load_checkpoint(best_path) if proc.main else None
        if proc.world > 1:
            holder = [best_state["model"] if best_state else None]
            dist.broadcast_object_list(holder, src=0)
            load_weights(model, holder[0], best_path)
        else:
            load_weights(model, best_state["model"], best_path)
        result.test = evaluate(model, example, data.test, cfg.batch_size, proc.device, proc, progress, "test")
        if proc.main:
            with writing_run_files(run_dir, example):
                write_text(run_dir / "test.json", json.dumps({"best_epoch": best["epoch"], **result.test}, indent=1))
        say(f"test (best epoch {best['epoch']} on validation): "
            + "  ".join(f"{k} {v:.4f}" for k, v in result.test.items()))
    return result


def check_writable(folder: Path) -> None:
    """Create `folder` and write a file in it, or stop with a InputError that names the folder."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"cannot write the run folder {folder}: {exc.strerror or exc}") from None


def format_record(record: dict[str, Any]) -> str:
    parts = [f"epoch {record['epoch']:>3}"]
    parts += [f"{k} {v:.4f}" for k, v in record.items() if k not in ("epoch", "seconds")]
    return "  ".join(parts) + f"  ({record['seconds']:.1f}s)"


def write_run_files(run_dir: Path, example: Example, cfg: Any, seed: int, data: Data, model: nn.Module,
                    command: str | None, proc: Process | None = None) -> None:
    from rnnzoo.summary import summary_table

    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "config.json", json.dumps(
        {"example": example.name, "seed": seed, "config": dataclasses.asdict(cfg),
         "environment": environment(proc or Process(device=next(model.parameters()).device))}, indent=1))
    if not (run_dir / "command.txt").exists():  # a run started again after a kill keeps its own command
        write_text(run_dir / "command.txt", (command or " ".join(sys.argv)) + "\n")
    device = next(model.parameters()).device
    inputs = tuple(t[:2].to(device) for t in data.train.inputs)
    write_text(run_dir / "summary.txt", summary_table(model, inputs, example.summary_dynamic_axes) + "\n")


def plot_metrics(history: list[dict[str, Any]], path: Path, metric: str, best_epoch: int | None = None) -> None:
    """The loss (on a log scale) and the metric per epoch, train and validation, the best epoch marked."""
    plt = pyplot()
    epochs = [r["epoch"] for r in history]
    names = ["loss"] + ([metric] if metric != "loss" else [])
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        ax.plot(epochs, [r[name] for r in history], label="train")
        ax.plot(epochs, [r[f"val_{name}"] for r in history], label="validation")
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", linestyle=":", label=f"best (epoch {best_epoch})")
        if name == "loss":
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title(name + (" (log scale)" if name == "loss" else ""))
        ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
