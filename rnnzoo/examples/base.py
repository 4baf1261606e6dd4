"""What an example is: the one place that ties a dataset to a model, a loss, an optimizer and a metric.

The shared training loop (`rnnzoo.training`) only talks to an `Example`; it never imports a model.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TextIO

import torch
from torch import Tensor, nn

from rnnzoo.errors import InputError

if TYPE_CHECKING:
    from rnnzoo.runs import LoadedRun


@dataclass(frozen=True)
class TrainSettings:
    """Hyperparameters every example has; each example's Config extends this and sets its own defaults."""

    epochs: int = field(default=10, metadata={"help": "passes over the training data"})
    batch_size: int = field(default=32, metadata={"help": "examples per optimizer step (per process)"})
    optimizer: str = field(
        default="adam", metadata={"help": "adam | rmsprop | adadelta | sgd, with Keras' defaults"}
    )
    lr: float | None = field(
        default=None, metadata={"help": "learning rate (when not given: the optimizer's Keras default)"})
    validation_split: float = field(
        default=0.05, metadata={"help": "fraction of the training data held out to pick the best epoch"}
    )
    clip_norm: float | None = field(
        default=None, metadata={"help": "clip the gradient norm (RNN gradients can explode); off as in the originals"}
    )

    def __post_init__(self) -> None:
        """Reject impossible settings up front, before any data is read, with the option's name."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value, option = getattr(self, f.name), "--" + f.name.replace("_", "-")
            allowed = typing.get_args(hints[f.name]) if typing.get_origin(hints[f.name]) is typing.Literal else ()
            if allowed and value not in allowed:
                raise InputError(f"{option} must be one of {', '.join(map(str, allowed))}, got {value!r}")
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if not math.isfinite(value):
                raise InputError(f"{option} must be a finite number, got {value}")
            # counts and sizes are >= 1, except where a field says otherwise ("min" in its metadata) or its
            # default 0 means "off" or "all"
            least = f.metadata.get("min", 0 if f.default == 0 else 1)
            if isinstance(value, int) and value < least:
                raise InputError(f"{option} must be at least {least}, got {value}")
            if f.name.endswith("rate") and not 0 <= value < 1:
                raise InputError(f"{option} is a dropout rate: 0 <= rate < 1, got {value}")
            if f.name in ("lr", "clip_norm") and value <= 0:
                raise InputError(f"{option} must be positive, got {value}")
            if f.name == "validation_split" and not 0 < value < 1:
                raise InputError(f"{option} must be between 0 and 1, got {value}")
            if f.name.endswith("momentum") and not 0 <= value <= 1:
                raise InputError(f"{option} must be between 0 and 1, got {value}")
        if self.optimizer not in KERAS_OPTIMIZERS:
            raise InputError(f"unknown optimizer {self.optimizer!r}; choose from {', '.join(KERAS_OPTIMIZERS)}")


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
    chosen = ids[torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed))]
    held = torch.isin(ids if groups is None else groups, chosen[:max(1, round(len(ids) * fraction))])
    return split.take(torch.nonzero(~held).flatten()), split.take(torch.nonzero(held).flatten())


class Example(ABC):
    """A spec: data, model, loss, optimizer, default hyperparameters and metric of one example."""

    name: ClassVar[str]
    title: ClassVar[str]  # one line for `rnnzoo list`
    Config: ClassVar[type[TrainSettings]]
    # Named presets: overrides of Config's defaults. "faithful" (the original's settings) is the default.
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {"faithful": {}}
    # The validation metric that picks the best checkpoint: higher is better, but for "loss".
    metric: ClassVar[str] = "accuracy"
    summary_dynamic_axes: ClassVar[tuple[int, ...]] = (0,)  # axes shown as None in `rnnzoo summary`

    # --- configuration -------------------------------------------------------------------------------
    def config(self, preset: str = "faithful", **overrides: Any) -> Any:
        if preset not in self.presets:
            raise InputError(f"{self.name} has no preset {preset!r}; choose from {', '.join(self.presets)}")
        values = {**self.presets[preset], **overrides}
        known = {f.name for f in dataclasses.fields(self.Config)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"{self.name} has no setting {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        return self.Config(**values)

    def config_from_dict(self, values: Mapping[str, Any]) -> Any:
        known = {f.name for f in dataclasses.fields(self.Config)}
        return self.Config(**{k: v for k, v in values.items() if k in known})

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

    # --- prediction ---------------------------------------------------------------------------------
    # `rnnzoo predict`'s options come in groups, one per dataset ("bAbI"): the examples that share a group
    # read the same options, which `add_predict_arguments` adds to it.
    predict_group: ClassVar[str]
    predict_options: ClassVar[str]  # how to call `rnnzoo predict` for this example (shown in --help and errors)

    @staticmethod
    @abstractmethod
    def add_predict_arguments(group: argparse._ArgumentGroup) -> list[argparse.Action]:
        """Add this example's group of `rnnzoo predict` options; return them."""

    @abstractmethod
    def predict(self, run: LoadedRun, args: argparse.Namespace, out: TextIO) -> None:
        """Answer the inputs given in `args` with the trained `run`, writing to `out`."""


# --- command-line overrides of a Config ------------------------------------------------------------------


def _parser_for(annotation: Any) -> tuple[typing.Callable[[str], Any], list[str] | None]:
    """A str -> value converter and the choices for one Config field type."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        inner, choices = _parser_for(next(a for a in args if a is not type(None)))

        def optional(text: str) -> Any:
            return None if text.lower() in ("", "none") else inner(text)

        optional.__name__ = getattr(inner, "__name__", "value")  # argparse names it in "invalid float value"
        return optional, choices
    if origin is typing.Literal:
        return str, [str(a) for a in args]
    if annotation is bool:
        def to_bool(text: str) -> bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
        return to_bool, None
    return annotation, None


def add_config_arguments(parser: argparse.ArgumentParser, example: Example) -> None:
    """One `--field-name VALUE` option per Config field, typed, with the field's help and default."""
    group = parser.add_argument_group(f"{example.name} settings (defaults: the faithful preset)")
    hints = typing.get_type_hints(example.Config)
    for f in dataclasses.fields(example.Config):
        convert, choices = _parser_for(hints[f.name])
        help_text = f.metadata.get("help", "")
        metavar = None if choices is not None else "true|false" if hints[f.name] is bool else f.name.upper()
        group.add_argument(
            "--" + f.name.replace("_", "-"), dest=f"cfg_{f.name}", type=convert, choices=choices,
            default=None, metavar=metavar,
            help=help_text if f.default is None else f"{help_text} (default: {f.default})",
        )


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {k[4:]: v for k, v in vars(args).items() if k.startswith("cfg_") and v is not None}
