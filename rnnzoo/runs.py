"""Finding, listing and loading trained runs: what `rnnzoo.load`, `rnnzoo evaluate` and `rnnzoo predict`
(and the demo) start from.

A run is a folder `runs/<example>/<id>/` written by `rnnzoo.training.train`; its checkpoints name the
example, so loading one picks the example spec from the registry and rebuilds its model. A loaded `Run`
answers new inputs with `run.predict(...)`, whose arguments are those of its example's `predict`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnzoo.errors import InputError
from rnnzoo.specs import CARDS, get_example
from rnnzoo.specs.base import Example
from rnnzoo.specs.settings import did_you_mean
from rnnzoo.training import load_checkpoint, load_weights, runs_root


def find_run(spec: str) -> Path:
    """A run folder from a path (run folder or checkpoint file) or an example name (its latest run)."""
    path = Path(spec)
    if path.is_file() and path.suffix == ".pt":  # runs/<example>/<id>/checkpoints/x.pt, or a copy elsewhere
        run = path.parent.parent
        return run if (run / "config.json").is_file() else path.parent
    for folder in (path, runs_root() / spec):
        if (folder / "config.json").is_file():
            return folder
        if folder.is_dir():
            runs = sorted(folder.glob("*/config.json"), key=lambda p: p.stat().st_mtime)
            if runs:
                return runs[-1].parent
    if spec in CARDS:
        raise InputError(f"{spec} has no trained run under {runs_root().resolve()}/ yet; train one with: rnnzoo "
                         f"train {spec} (quick: --preset {'tiny' if 'tiny' in CARDS[spec].presets else 'faithful'}), "
                         "or set RNNZOO_RUNS to the folder that holds your runs")
    hint = did_you_mean(spec, CARDS) if "/" not in spec else ""
    raise InputError(f"no run at {spec!r}{hint}: give a run folder (runs/<example>/<id>), a checkpoint file, or an "
                     f"example name to use its latest run under {runs_root()}/")


@dataclass
class Run:
    """A trained run, loaded: its folder, example spec, settings, data facts (`meta`: vocabulary, sizes),
    the model (in eval mode) and the checkpoint it came from."""

    path: Path
    example: Example
    config: Any
    meta: dict[str, Any]
    model: nn.Module
    checkpoint: dict[str, Any]

    @property
    def name(self) -> str:
        """The example's name, e.g. "babi_memnn"."""
        return self.example.name

    @property
    def epoch(self) -> int:
        """The epochs trained when the checkpoint was written."""
        return int(self.checkpoint["epoch"])

    @property
    def test(self) -> dict[str, float] | None:
        """The test scores the training wrote (test.json), or None."""
        return read_json(self.path / "test.json")

    def predict(self, *inputs: Any, **options: Any) -> Any:
        """Answer new inputs; returns typed results (dataclasses with `to_dict()`), raises InputError on bad
        input. The arguments are those of the example's own predict:

        - bAbI: `predict(story, question)` -> BabiAnswer (`rnnzoo.specs.babi`)
        - IMDB: `predict(texts)`, a string or a list -> ReviewScore or a list (`rnnzoo.specs.imdb`)
        - MNIST: `predict(images)`, paths, PIL images or arrays, one or a list -> DigitPrediction(s)
        - conv_lstm: `predict(movie, frames=7, ahead=8)`, a movie's number or your own -> MoviePrediction
        """
        return self.example.predict(self.model, self.meta, *inputs, **options)

    def __repr__(self) -> str:
        return f"<rnnzoo run {self.name} at {self.path}, epoch {self.epoch}>"


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@dataclass
class RunInfo:
    """One line of `rnnzoo runs`."""

    example: str
    path: Path
    started: str  # local time, "YYYY-MM-DD HH:MM"
    epochs_done: int
    epochs: int | None
    best: float | None  # the best validation metric
    metric: str
    test: dict[str, float] | None


def list_runs(root: Path | None = None) -> list[RunInfo]:
    """Every run under `root` (default: $RNNZOO_RUNS or ./runs), oldest first, read from its small files
    (config.json, metrics.jsonl, test.json) without loading a checkpoint."""
    root = root or runs_root()
    infos = []
    for config_file in sorted(root.glob("*/*/config.json")):
        run, config = config_file.parent, read_json(config_file) or {}
        name = config.get("example", run.parent.name)
        card = CARDS.get(name)
        metric = card.metric if card else "accuracy"
        history = []
        try:
            for line in (run / "metrics.jsonl").read_text().splitlines():
                try:
                    history.append(json.loads(line))
                except ValueError:
                    continue
        except OSError:
            pass
        values = [r[f"val_{metric}"] for r in history if isinstance(r.get(f"val_{metric}"), int | float)]
        best = (min(values) if metric == "loss" else max(values)) if values else None
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(config_file.stat().st_mtime))
        infos.append(RunInfo(name, run, started, len(history), (config.get("config") or {}).get("epochs"), best,
                             metric, read_json(run / "test.json")))
    return sorted(infos, key=lambda i: (i.started, str(i.path)))


def load_run(spec: str | Path, which: str = "best", device: torch.device | str | None = None) -> Run:
    """Load a trained run: `spec` is a run folder, a checkpoint file, or an example name (its latest run);
    `which` the checkpoint, "best" (on validation) or "last"."""
    spec = str(spec)
    if which not in ("best", "last"):
        raise InputError(f"checkpoint must be best or last, got {which!r}")
    path = find_run(spec)
    ckpt_path = Path(spec) if Path(spec).is_file() else path / "checkpoints" / f"{which}.pt"
    ckpt = load_checkpoint(ckpt_path)
    example = get_example(ckpt["example"])
    cfg = example.config_from_dict(ckpt["config"])
    model = example.build_model(cfg, ckpt["meta"])
    load_weights(model, ckpt["model"], ckpt_path)
    model.to(torch.device(device) if device is not None else torch.device("cpu")).eval()
    bad = next((k for k, v in model.state_dict().items() if v.is_floating_point() and not v.isfinite().all()), None)
    if bad is not None:  # a diverged training's weights: every answer would be NaN
        raise InputError(f"{ckpt_path} holds weights that are not finite ({bad}): its training diverged; train "
                         "again with a lower --lr")
    return Run(path, example, cfg, ckpt["meta"], model, ckpt)
