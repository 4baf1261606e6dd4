"""The one training loop, evaluation and checkpointing shared by every example.

It gets a model, a loss and data from an example spec (`rnnzoo.specs`) and never imports a model. Runs
live in `runs/<example>/<id>/` (under $RNNZOO_RUNS, default ./runs): config.json, command.txt,
summary.txt, metrics.jsonl, metrics.png, checkpoints/last.pt (every epoch, and on Ctrl-C; under torchrun,
where Ctrl-C stops every process at once, the end of the last epoch), checkpoints/best.pt (best validation
metric) and test.json (the best checkpoint's test scores). Every file but metrics.jsonl, which grows a
line an epoch, is written whole or not at all. Distributed data-parallel training runs under `torchrun`;
only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm import tqdm

from rnnzoo.errors import InputError
from rnnzoo.files import pyplot, save_figure, write_atomically, write_text
from rnnzoo.specs.base import Data, Example, Split

CHECKPOINT_FORMAT = 1


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


# --- checkpoints -----------------------------------------------------------------------------------------


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write atomically: a crash mid-write leaves the previous checkpoint intact."""
    write_atomically(path, lambda tmp: torch.save(state, tmp))


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
        raise InputError(f"{path} is not a readable rnnzoo checkpoint ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path} is not an rnnzoo checkpoint (format {CHECKPOINT_FORMAT})")
    return state


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
                    stop: StopRequest, bar: tqdm | None) -> int:
    """Train on `order`'s batches from `start_step`; returns the number of the next step (the number of
    batches when the epoch is complete, fewer when a stop was requested)."""
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
        if bar is not None:
            bar.update(1)
            if step % 20 == 0 or step == len(batches) - 1:
                bar.set_postfix({k: f"{v:.4f}" for k, v in totals.means().items()}, refresh=False)
        if stop.requested:
            return step + 1
    return len(batches)


@torch.no_grad()
def evaluate(model: nn.Module, example: Example, split: Split, batch_size: int, device: torch.device,
             proc: Process | None = None) -> dict[str, float]:
    """Mean loss and metrics over a split (each process takes its share under torchrun)."""
    model.eval()
    proc = proc or Process(0, 1, device)
    order = torch.arange(len(split))
    if proc.world > 1:
        order = order[proc.rank::proc.world]
    totals = Totals()
    for index in order.split(max(batch_size, 256)):
        inputs, target = to_device(split.take(index), device)
        output = model(*inputs)
        totals.add(example.loss(output, target), example.metrics(output, target), len(target))
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
          command: str | None = None, log=print) -> TrainResult:
    """Train `example` with `cfg`; returns the run. With `resume` (a run folder), continue that run with its
    own settings and seed: only `cfg.epochs` is read, the new number of epochs (cfg None: the run's own)."""
    if cfg is None and resume is None:
        raise ValueError("train() needs a config, unless it resumes a run")
    proc = start_process(device)
    try:
        return _train(example, cfg, seed, proc, run_dir, resume, progress, test, data, command, log)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _train(example: Example, cfg: Any, seed: int, proc: Process, run_dir: Path | None, resume: Path | None,
           progress: bool, test: bool, data: Data | None, command: str | None, log) -> TrainResult:
    say = log if proc.main else (lambda *a, **k: None)
    state: dict[str, Any] | None = None
    if resume is not None:
        state = load_checkpoint(resume / "checkpoints" / "last.pt")
        if state["example"] != example.name:
            raise InputError(f"{resume} is a run of {state['example']}, not {example.name}")
        epochs = state["config"]["epochs"] if cfg is None else cfg.epochs
        if state["epoch"] >= epochs:
            raise InputError(f"{resume} has already trained {state['epoch']} epochs; to train on, give --epochs "
                             f"more than {state['epoch']}")
        cfg = example.config_from_dict({**state["config"], "epochs": epochs})
        seed, run_dir = state["seed"], resume
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
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        epoch, step = state["epoch"], state["step"]
        totals = Totals.from_state(state["totals"], proc.device)
        history, best = state["history"], state["best"]
        torch.set_rng_state(state["rng"]["torch"])
        if proc.device.type == "cuda" and state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"], proc.device)
        say(f"resuming {run_dir} at epoch {epoch + 1}" + (f", step {step}" if step else ""))
    elif proc.main:
        write_run_files(run_dir, example, cfg, seed, data, model, command)
    train_model: nn.Module = model
    if proc.world > 1:
        train_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[proc.device.index] if proc.device.type == "cuda" else None)

    def checkpoint(name: str) -> None:
        if proc.main:
            save_checkpoint(run_dir / "checkpoints" / f"{name}.pt", {
                "format": CHECKPOINT_FORMAT, "example": example.name, "config": dataclasses.asdict(cfg),
                "meta": data.meta, "seed": seed, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "epoch": epoch, "step": step, "totals": totals.state(),
                "history": history, "best": best,
                "rng": {"torch": torch.get_rng_state(),
                        "cuda": torch.cuda.get_rng_state(proc.device) if proc.device.type == "cuda" else None},
            })

    say(f"{example.name}: {len(data.train):,} train / {len(data.val):,} validation / {len(data.test):,} test "
        f"examples, {cfg.epochs} epochs, batch {cfg.batch_size}, on {proc.device}"
        + (f" x {proc.world} processes" if proc.world > 1 else "") + f"; run folder {run_dir}")
    stop = StopRequest()
    stopped = False
    with stop.installed(proc.world == 1):
        while epoch < cfg.epochs:
            example.begin_epoch(cfg, epoch, history, model, optimizer)  # the spec's schedule, if it has one
            order = shard(epoch_order(len(data.train), seed, epoch), proc)
            n_batches = math.ceil(len(order) / cfg.batch_size)
            started = time.perf_counter()
            bar = tqdm(total=n_batches, initial=step, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
                       disable=None if progress and proc.main else True, file=sys.stderr, dynamic_ncols=True)
            step = train_one_epoch(train_model, example, data.train, order, cfg, optimizer, proc.device, totals,
                                   step, stop, bar)
            bar.close()
            if step < n_batches:  # Ctrl-C: keep everything needed to continue from this very step
                checkpoint("last")
                say(f"\nstopped in epoch {epoch + 1} at step {step}/{n_batches}; checkpoint saved. Continue "
                    f"with:\n  rnnzoo train {example.name} --resume {run_dir}")
                stopped = True
                break
            totals.reduce()
            record = {"epoch": epoch + 1, **totals.means(),
                      **{f"val_{k}": v for k, v in evaluate(model, example, data.val, cfg.batch_size,
                                                            proc.device, proc).items()},
                      "seconds": round(time.perf_counter() - started, 3)}
            history.append(record)
            epoch, step, totals = epoch + 1, 0, Totals()
            value = record[f"val_{example.metric}"]
            improved = better(example, value, best["value"])
            if improved:
                best = {"epoch": epoch, "value": value}
            checkpoint("last")
            if improved:
                checkpoint("best")
            if proc.main:
                with open(run_dir / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(record) + "\n")
            say(format_record(record) + ("  *" if improved else ""))
    if proc.main and history:
        plot_metrics(history, run_dir / "metrics.png", example.metric)
    result = TrainResult(run_dir, history, best["epoch"], None, model, stopped)
    if test and not stopped and best["epoch"] is not None:
        best_state = load_checkpoint(run_dir / "checkpoints" / "best.pt") if proc.main else None
        if proc.world > 1:
            holder = [best_state["model"] if best_state else None]
            dist.broadcast_object_list(holder, src=0)
            model.load_state_dict(holder[0])
        else:
            model.load_state_dict(best_state["model"])
        result.test = evaluate(model, example, data.test, cfg.batch_size, proc.device, proc)
        if proc.main:
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
                    command: str | None) -> None:
    from rnnzoo.summary import summary_table

    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "config.json", json.dumps(
        {"example": example.name, "seed": seed, "config": dataclasses.asdict(cfg)}, indent=1))
    write_text(run_dir / "command.txt", (command or " ".join(sys.argv)) + "\n")
    device = next(model.parameters()).device
    inputs = tuple(t[:2].to(device) for t in data.train.inputs)
    write_text(run_dir / "summary.txt", summary_table(model, inputs, example.summary_dynamic_axes) + "\n")


def plot_metrics(history: list[dict[str, Any]], path: Path, metric: str) -> None:
    plt = pyplot()
    epochs = [r["epoch"] for r in history]
    names = ["loss"] + ([metric] if metric != "loss" else [])
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        ax.plot(epochs, [r[name] for r in history], label="train")
        ax.plot(epochs, [r[f"val_{name}"] for r in history], label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
