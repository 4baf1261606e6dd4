"""mnist_hierarchical_rnn: an LSTM over each pixel row, a second LSTM over the row codes (MNIST digits)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rnnzoo.data import mnist
from rnnzoo.errors import InputError
from rnnzoo.models.hierarchical import HierarchicalRNN
from rnnzoo.specs.base import Data, Example, Result, Split, carve_validation, model_device
from rnnzoo.specs.settings import CARDS, MnistConfig


@dataclass
class DigitPrediction(Result):
    """The model's reading of one image: the digit, its probability, all ten probabilities, the three most
    probable digits, and `seen`, the (28, 28) array in [0, 1] the model saw (ink box scaled to 20x20, centre
    of mass in the middle, light on dark, as MNIST); `source` the file, or "image N"."""

    source: str
    digit: int
    probability: float
    probabilities: list[float]
    top: list[tuple[int, float]]
    seen: np.ndarray


class MnistHierarchicalRnn(Example):
    card = CARDS["mnist_hierarchical_rnn"]

    # --- data and model -----------------------------------------------------------------------------
    def load_data(self, cfg: MnistConfig, seed: int) -> Data:
        if cfg.generated_images > 0:
            rng = np.random.default_rng(seed)
            train = mnist.generate_digits(cfg.generated_images, rng)
            test = mnist.generate_digits(max(20, cfg.generated_images // 5), rng)
        else:
            splits = mnist.load_mnist()
            train, test = splits["train"], splits["test"]
            if cfg.train_images:
                train = (train[0][:cfg.train_images], train[1][:cfg.train_images])

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
    @torch.no_grad()
    def predict(self, model: nn.Module, meta: Mapping[str, Any], images: Any  # type: ignore[override]
                ) -> DigitPrediction | list[DigitPrediction]:
        """Read digit image(s): a path (str or Path), a PIL image or a numpy array (H, W) or (H, W, channels),
        uint8 0-255 or float 0-1, dark ink on light paper or the reverse; any size. One image gives one
        DigitPrediction, a list (or tuple) gives a list.

        >>> model.predict("digit.png").digit
        7
        """
        single = not isinstance(images, list | tuple)
        items = [images] if single else list(images)
        if not items:
            raise InputError(f"{self.name} needs one or more images, e.g. rnnzoo predict {self.name} "
                             f"{self.card.predict_options}")
        sources, seen = [], []
        for n, item in enumerate(items, start=1):
            if isinstance(item, str | Path):
                sources.append(str(item))
                seen.append(mnist.prepare_image(Path(item)))  # (28, 28) in [0, 1]
            else:
                sources.append(f"image {n}")
                seen.append(mnist.prepare_image(item))
        batch = torch.from_numpy(np.stack(seen))[..., None].to(model_device(model))  # (N, 28, 28, 1)
        model.eval()
        probs = model(batch).softmax(-1).cpu()
        results = []
        for source, image, p in zip(sources, seen, probs):
            top = p.topk(3)
            ranked = [(int(i), float(v)) for v, i in zip(top.values, top.indices)]
            results.append(DigitPrediction(source, ranked[0][0], ranked[0][1], p.tolist(), ranked, image))
        return results[0] if single else results
