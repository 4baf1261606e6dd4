"""A Keras-style model summary: each layer's output shape (None for the batch axis) and parameters.

Rows come from forward hooks, in the order the layers run; `Tap` modules name functional steps (a dot
product, a concatenation) so that the table reads like the originals' layer tables. Each row's type is
the Keras layer it stands for (`keras_layer_name`), not the PyTorch class that computes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

# Keras' names of PyTorch's layers, for modules that declare no `keras_name` (first match wins: subclasses
# of these, such as the fast paths in rnnzoo.kernels, take their base's name).
_KERAS_NAMES: tuple[tuple[type[nn.Module], str], ...] = (
    (nn.Embedding, "Embedding"), (nn.Linear, "Dense"), (nn.Dropout, "Dropout"), (nn.Conv1d, "Conv1D"),
    (nn.Conv2d, "Conv2D"), (nn.Conv3d, "Conv3D"), (nn.MaxPool1d, "MaxPooling1D"),
    (nn.modules.batchnorm._BatchNorm, "BatchNormalization"))


def keras_layer_name(module: nn.Module) -> str:
    """The Keras layer `module` stands for: its `keras_name`, else Keras' name of its PyTorch base class
    (an LSTM in both directions is Keras' Bidirectional), else its class name."""
    name = getattr(module, "keras_name", None)
    if isinstance(name, str):
        return name
    if isinstance(module, nn.LSTM):
        return "Bidirectional" if module.bidirectional else "LSTM"
    return next((keras for base, keras in _KERAS_NAMES if isinstance(module, base)), type(module).__name__)


def _shape(t: object, dynamic_axes: Sequence[int]) -> str:
    if not isinstance(t, Tensor):
        t = next((x for x in t if isinstance(x, Tensor)), None) if isinstance(t, (tuple, list)) else None
        if t is None:
            return "?"
    dims = ["None" if i in dynamic_axes else str(d) for i, d in enumerate(t.shape)]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def layer_rows(model: nn.Module, inputs: Sequence[Tensor], dynamic_axes: Sequence[int] = (0,)
               ) -> list[tuple[str, str, str, int]]:
    """(name, Keras layer type, output shape, parameters) per layer call, inputs first. A module shown as one layer
    (a leaf, or one with `summary_as_layer = True`) hides its children."""
    rows: list[tuple[str, str, str, int]] = [
        (f"input_{i + 1}" if len(inputs) > 1 else "input", "Input", _shape(x, dynamic_axes), 0)
        for i, x in enumerate(inputs)]
    counted: set[int] = set()
    hooks = []
    hidden: set[str] = set()
    for name, module in model.named_modules():
        if not name or any(name.startswith(h + ".") for h in hidden):
            continue
        as_layer = getattr(module, "summary_as_layer", False)
        if as_layer:
            hidden.add(name)
        if as_layer or not list(module.children()):
            def hook(mod: nn.Module, args: object, output: object, name: str = name) -> None:
                params = 0 if id(mod) in counted else sum(p.numel() for p in mod.parameters())
                counted.add(id(mod))
                rows.append((name, keras_layer_name(mod), _shape(output, dynamic_axes), params))
            hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return rows


def summary_table(model: nn.Module, inputs: Sequence[Tensor], dynamic_axes: Sequence[int] = (0,)) -> str:
    rows = layer_rows(model, inputs, dynamic_axes)
    cells = [(f"{name} ({kind})", shape, f"{params:,}") for name, kind, shape, params in rows]
    w0 = max(len("Layer (type)"), *(len(c[0]) for c in cells))
    w1 = max(len("Output Shape"), *(len(c[1]) for c in cells))
    w2 = max(len("Param #"), *(len(c[2]) for c in cells))
    line = "-" * (w0 + w1 + w2 + 4)
    out = [line, f"{'Layer (type)':<{w0}}  {'Output Shape':<{w1}}  {'Param #':>{w2}}", "=" * len(line)]
    out += [f"{a:<{w0}}  {b:<{w1}}  {c:>{w2}}" for a, b, c in cells]
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    out += ["=" * len(line), f"Total params: {total:,}", f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}", line]
    return "\n".join(out)
