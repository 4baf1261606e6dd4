"""Finding and loading a trained run: what `rnnzoo evaluate` and `rnnzoo predict` (and the demo) start from.

A run is a folder `runs/<example>/<id>/` written by `rnnzoo.training.train`; its checkpoints name the
example, so loading one picks the example spec from the registry and rebuilds its model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnzoo.errors import InputError
from rnnzoo.examples import get_example
from rnnzoo.examples.base import Example
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
    raise InputError(f"no run at {spec!r}: give a run folder (runs/<example>/<id>), a checkpoint file, or an "
                     f"example name to use its latest run under {runs_root()}/")


@dataclass
class LoadedRun:
    path: Path
    example: Example
    config: Any
    meta: dict[str, Any]
    model: nn.Module
    checkpoint: dict[str, Any]


def load_run(spec: str, which: str = "best", device: torch.device | None = None) -> LoadedRun:
    path = find_run(spec)
    ckpt_path = Path(spec) if Path(spec).is_file() else path / "checkpoints" / f"{which}.pt"
    ckpt = load_checkpoint(ckpt_path)
    example = get_example(ckpt["example"])
    cfg = example.config_from_dict(ckpt["config"])
    model = example.build_model(cfg, ckpt["meta"])
    load_weights(model, ckpt["model"], ckpt_path)
    model.to(device or torch.device("cpu")).eval()
    bad = next((k for k, v in model.state_dict().items() if v.is_floating_point() and not v.isfinite().all()), None)
    if bad is not None:  # a diverged training's weights: every answer would be NaN
        raise InputError(f"{ckpt_path} holds weights that are not finite ({bad}): its training diverged; train "
                         "again with a lower --lr")
    return LoadedRun(path, example, cfg, ckpt["meta"], model, ckpt)
