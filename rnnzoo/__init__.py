"""rnnzoo: the seven classic Keras recurrent-network examples, ported to PyTorch.

From Python (`rnnzoo.api`):

    import rnnzoo
    model = rnnzoo.load("babi_memnn")       # a run folder, a checkpoint file, or an example's latest run
    model.predict(story="Mary moved to the bathroom.", question="Where is Mary?").answer

`rnnzoo.examples()`, `rnnzoo.train(example, preset=..., **settings)` and `rnnzoo.load(run)` import torch
when first called; `import rnnzoo` alone does not.
"""

from __future__ import annotations

from typing import Any

from rnnzoo.errors import InputError

__version__ = "0.1.0"

__all__ = ["DataError", "InputError", "__version__", "examples", "load", "train"]


def __getattr__(name: str) -> Any:
    """The API's functions, imported on first use (they bring torch)."""
    if name in ("examples", "load", "train"):
        from rnnzoo import api

        return getattr(api, name)
    if name == "DataError":
        from rnnzoo.data.cache import DataError

        return DataError
    raise AttributeError(f"module 'rnnzoo' has no attribute {name!r}")
