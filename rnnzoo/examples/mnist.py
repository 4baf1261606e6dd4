"""mnist_hierarchical_rnn: an LSTM over each pixel row, a second LSTM over the row codes (MNIST digits)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np
import torch
from torch import Tensor, nn

from rnnzoo.data import mnist
from rnnzoo.errors import InputError
from rnnzoo.examples.base import Data, Example, Split, TrainSettings, carve_validation
from rnnzoo.models.hierarchical import HierarchicalRNN

if TYPE_CHECKING:
    from rnnzoo.runs import LoadedRun


@dataclass(frozen=True)
class MnistConfig(TrainSettings):
    epochs: int = field(default=5, metadata={"help": "passes over the training data (the original's 5)"})
    batch_size: int = field(default=32, metadata={"help": "images per optimizer step (the original's 32)"})
    optimizer: str = field(
        default="rmsprop", metadata={"help": "adam | rmsprop | adadelta | sgd, with Keras' defaults (the original: "
                                             "rmsprop)"})
    row_hidden: int = field(
        default=128, metadata={"help": "units of the LSTM that encodes every pixel row (the original's 128)"})
    column_hidden: int = field(
        default=128, metadata={"help": "units of the LSTM that reads the 28 row codes (the original's 128)"})
    generated_images: int = field(
        default=0, metadata={"help": "if > 0, train on this many generated seven-segment digits instead of MNIST "
                                     "(offline demo and tests)"})


class MnistHierarchicalRnn(Example):
    name = "mnist_hierarchical_rnn"
    title = "hierarchical LSTM (rows, then columns), MNIST digits"
    Config = MnistConfig
    presets = {
        "faithful": {},
        "small": {"generated_images": 3000, "epochs": 6, "row_hidden": 64, "column_hidden": 64},  # ~90%, offline
        "tiny": {"generated_images": 40, "epochs": 2, "row_hidden": 6, "column_hidden": 5, "batch_size": 8},
    }
    predict_group = "MNIST"
    predict_options = "--image digit.png [more.png ...] [--show seen.png]"

    @staticmethod
    def add_predict_arguments(group: argparse._ArgumentGroup) -> list[argparse.Action]:
        return [group.add_argument("--image", nargs="+", type=Path,
                                   help="image file(s) of a digit, any size or format"),
                group.add_argument("--show", type=Path,
                                   help="write the 28x28 input(s) as the model saw them to this PNG")]

    # --- data and model -----------------------------------------------------------------------------
    def load_data(self, cfg: MnistConfig, seed: int) -> Data:
        if cfg.generated_images > 0:
            rng = np.random.default_rng(seed)
            train = mnist.generate_digits(cfg.generated_images, rng)
            test = mnist.generate_digits(max(20, cfg.generated_images // 5), rng)
        else:
            splits = mnist.load_mnist()
            train, test = splits["train"], splits["test"]

        def split(images: np.ndarray, labels: np.ndarray) -> Split:
            return Split((torch.from_numpy(mnist.to_float(images)),), torch.from_numpy(labels.astype(np.int64)))

        train_split, val_split = carve_validation(split(*train), cfg.validation_split, seed)
        return Data(train_split, val_split, split(*test), self.shape_meta(cfg))

    def shape_meta(self, cfg: MnistConfig) -> dict[str, Any]:
        return {"rows": mnist.ROWS, "columns": mnist.COLUMNS, "channels": 1, "classes": 10,
                "source": "generated" if cfg.generated_images > 0 else "mnist"}

    def build_model(self, cfg: MnistConfig, meta: Mapping[str, Any]) -> nn.Module:
        return HierarchicalRNN(meta["channels"], cfg.row_hidden, cfg.column_hidden, meta["classes"])

    def synthetic_batch(self, cfg: MnistConfig, meta: Mapping[str, Any], batch_size: int,
                        generator: torch.Generator) -> tuple[tuple[Tensor, ...], Tensor]:
        images = torch.rand((batch_size, meta["rows"], meta["columns"], meta["channels"]), generator=generator)
        return (images,), torch.randint(0, meta["classes"], (batch_size,), generator=generator)

    # --- prediction ---------------------------------------------------------------------------------
    def predict(self, run: LoadedRun, args: argparse.Namespace, out: TextIO) -> None:
        model = run.model
        paths = getattr(args, "image", None) or []
        if not paths:
            raise InputError(f"{self.name} needs --image with one or more image files, e.g. "
                             f"rnnzoo predict {self.name} {self.predict_options}")
        seen = [mnist.prepare_image(path) for path in paths]  # each (28, 28) in [0, 1]
        images = torch.from_numpy(np.stack(seen))[..., None]  # (N, 28, 28, 1)
        model.eval()
        with torch.no_grad():
            probs = model(images).softmax(-1)
        results = []
        for path, p in zip(paths, probs):
            top = p.topk(3)
            results.append({"image": str(path), "digit": int(top.indices[0]), "probability": float(top.values[0]),
                            "top3": [[int(i), float(v)] for v, i in zip(top.values, top.indices)]})
        if getattr(args, "show", None):
            mnist.save_preview(seen, args.show)
        if getattr(args, "json", False):
            out.write(json.dumps(results if len(results) > 1 else results[0]) + "\n")
            return
        for r in results:
            top3 = ", ".join(f"{d} {v:.3f}" for d, v in r["top3"])
            out.write(f"{r['image']}: {r['digit']}  (p={r['probability']:.3f})  top 3: {top3}\n")
        if getattr(args, "show", None):
            out.write(f"wrote the input{'s' if len(seen) > 1 else ''} as the model saw "
                      f"{'them' if len(seen) > 1 else 'it'} to {args.show}\n")
