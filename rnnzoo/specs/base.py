"""What an example is: the one place that ties a dataset to a model, a loss, an optimizer, a metric and a
prediction.

The shared training loop (`rnnzoo.training`) only talks to an `Example`; it never imports a model. An example's
settings, presets and name live in its `Card` (`rnnzoo.specs.settings`, no torch); its `predict` is pure:
it takes the model and inputs as Python values and returns typed results (dataclasses with `to_dict()`),
leaving reading files from a command line and printing to the faces (`rnnzoo.cli`, `rnnzoo.demo`).
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from rnnzoo.errors import InputError
from rnnzoo.specs.settings import Card, Preset, TrainSettings

# Keras' defaults, so that a faithful config trains as the original did (PyTorch's differ: RMSprop alpha
# 0.99 vs Keras rho 0.9, Adadelta rho 0.9 vs 0.95, eps 1e-8/1e-6 vs 1e-7).
KERAS_OPTIMIZERS: dict[str, tuple[type[torch.optim.Optimizer], dict[str, Any]]] = {
    "adam": (torch.optim.Adam, {"lr": 1e-3, "eps": 1e-7}),
    "rmsprop": (torch.optim.RMSprop, {"lr": 1e-3, "alpha": 0.9, "eps": 1e-7}),
    "adadelta": (torch.optim.Adadelta, {"lr": 1.0, "rho": 0.95, "eps": 1e-7}),
    "sgd": (torch.optim.SGD, {"lr": 0.01}),
}


@dataclass
class Split:
    """One split held in memory as tensors: model inputs and the target, first axis = examples."""

    inputs: tuple[Tensor, ...]
    target: Tensor

    def __len__(self) -> int:
        return len(self.target)

    def take(self, index: Tensor) -> Split:
        return Split(tuple(t[index] for t in self.inputs), self.target[index])


@dataclass
class Data:
    train: Split
    val: Split
    test: Split
    meta: dict[str, Any]  # JSON-able facts the model and predict need (vocabulary, lengths); saved in checkpoints


def carve_validation(split: Split, fraction: float, seed: int, groups: Tensor | None = None
                     ) -> tuple[Split, Split]:
    """Hold out a random `fraction` of `split` for validation (the originals validated on the test set).

    With `groups` (one id per example), whole groups are held out, so that examples which share content
    (the questions of one bAbI story share its sentences) never sit on both sides."""
    if not 0 < fraction < 1:
        raise InputError(f"validation_split must be between 0 and 1, got {fraction}")
    ids = torch.arange(len(split)) if groups is None else groups.unique()
    if len(ids) < 2:
        raise InputError(f"too few examples to hold out a validation split: {len(split)} (in {len(ids)} group); "
                         "use more data")
    chosen = ids[torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed))]
    n_held = min(max(1, round(len(ids) * fraction)), len(ids) - 1)  # both sides keep at least one group
    held = torch.isin(ids if groups is None else groups, chosen[:n_held])
    return split.take(torch.nonzero(~held).flatten()), split.take(torch.nonzero(held).flatten())


class Result:
    """Mixin of the typed prediction results: `to_dict()` gives plain JSON-able values (numpy arrays as
    nested lists, floats rounded to 6 digits)."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float | np.floating):
        return round(float(value), 6) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


class Example(ABC):
    """A spec: data, model, loss, optimizer, metric and prediction of one example. Its name, title, settings
    (`Config`) and presets come from its `card`."""

    card: ClassVar[Card]
    summary_dynamic_axes: ClassVar[tuple[int, ...]] = (0,)  # axes shown as None in `rnnzoo summary`

    # --- configuration (from the card) ------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.card.name

    @property
    def title(self) -> str:
        return self.card.title

    @property
    def Config(self) -> type[TrainSettings]:  # noqa: N802 (a class, named as one)
        return self.card.Config

    @property
    def presets(self) -> Mapping[str, Preset]:
        return self.card.presets

    @property
    def metric(self) -> str:
        """The validation metric that picks the best checkpoint: higher is better, but for "loss"."""
        return self.card.metric

    def config(self, preset: str = "faithful", **overrides: Any) -> Any:
        return self.card.config(preset, **overrides)

    def config_from_dict(self, values: Mapping[str, Any]) -> Any:
        return self.card.config_from_dict(values)
    # --- data and model -----------------------------------------------------------------------------
    @abstractmethod
    def load_data(self, cfg: Any, seed: int) -> Data:
        """Train/validation/test splits (validation carved from train) and the meta the model needs."""

    @abstractmethod
    def build_model(self, cfg: Any, meta: Mapping[str, Any]) -> nn.Module:
        """A fresh model that returns logits."""

    @abstractmethod
    def shape_meta(self, cfg: Any) -> dict[str, Any]:
        """The meta of the default data, without reading it (for `bench` and `summary` with no data)."""

    @abstractmethod
    def synthetic_batch(
        self, cfg: Any, meta: Mapping[str, Any], batch_size: int, generator: torch.Generator
    ) -> tuple[tuple[Tensor, ...], Tensor]:
        """Random inputs and targets of the right shapes and ranges."""

    # --- objective ----------------------------------------------------------------------------------
    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return nn.functional.cross_entropy(output, target)

    def metrics(self, output: Tensor, target: Tensor) -> dict[str, Tensor]:
        """Per-batch SUMS (the loop divides by the number of examples)."""
        return {"accuracy": (output.argmax(-1) == target).sum()}

    def make_optimizer(self, cfg: Any, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        if cfg.optimizer not in KERAS_OPTIMIZERS:
            raise InputError(f"unknown optimizer {cfg.optimizer!r}; choose from {', '.join(KERAS_OPTIMIZERS)}")
        cls, defaults = KERAS_OPTIMIZERS[cfg.optimizer]
        # Adam and SGD have fused kernels (one pass, no temporaries: +55% a step for imdb_cnn_lstm on CPU,
        # whose Adam update of a 20000 x 128 embedding otherwise allocates and page-faults 10 MB buffers);
        # the others take the multi-tensor path (about +10% on CPU over one tensor at a time).
        kwargs = {**defaults, **({"fused": True} if cls in (torch.optim.Adam, torch.optim.SGD) else {"foreach": True})}
        if cfg.lr is not None:
            kwargs["lr"] = cfg.lr
        return cls(params, **kwargs)

    def begin_epoch(self, cfg: Any, epoch: int, history: Sequence[Mapping[str, Any]], model: nn.Module,
                    optimizer: torch.optim.Optimizer) -> None:
        """The training loop calls this before each epoch (`epoch` counts from 0, `history` holds the records of
        the finished epochs, with their validation scores), and again for the same epoch when a run resumes
        inside it: the place of a schedule (a step size by epoch, a stage of training). It should depend on
        these arguments alone, so that a resumed run follows the same schedule. By default: nothing."""
        return None

    # --- prediction ---------------------------------------------------------------------------------------
    @abstractmethod
    def predict(self, model: nn.Module, meta: Mapping[str, Any], *inputs: Any, **options: Any) -> Any:
        """Answer new inputs with a trained `model` (in eval mode, no gradients); returns typed results.
        Bad input raises InputError. Each example documents its own inputs."""
