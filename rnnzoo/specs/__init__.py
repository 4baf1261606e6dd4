"""The registry of examples: the one place that ties each example's name to its spec (data, model, loss,
metric, predict).

Importing this package costs no torch: the names, titles, settings and presets are in the cards of
`rnnzoo.specs.settings`; a spec (which imports torch and its model) is imported when `get_example` first asks
for it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rnnzoo.specs.settings import CARDS, Card, get_card

if TYPE_CHECKING:  # a type only: the spec modules import torch
    from rnnzoo.specs.base import Example

# example name -> "module:class" of its spec
SPECS: dict[str, str] = {
    "babi_memnn": "rnnzoo.specs.babi:BabiMemnn",
    "babi_rnn": "rnnzoo.specs.babi:BabiRnn",
    "babi_memn2n": "rnnzoo.specs.babi:BabiMemn2n",
    "imdb_lstm": "rnnzoo.specs.imdb:ImdbLstm",
    "imdb_cnn_lstm": "rnnzoo.specs.imdb:ImdbCnnLstm",
    "imdb_bidirectional_lstm": "rnnzoo.specs.imdb:ImdbBidirectionalLstm",
    "mnist_hierarchical_rnn": "rnnzoo.specs.mnist:MnistHierarchicalRnn",
    "conv_lstm": "rnnzoo.specs.conv_lstm:ConvLstm",
}
assert list(SPECS) == list(CARDS), "every card has a spec, in the same order"

_loaded: dict[str, Example] = {}


def get_example(name: str) -> Example:
    """The spec of example `name` (an InputError, with the closest name, for an unknown one)."""
    get_card(name)
    if name not in _loaded:
        module, cls = SPECS[name].split(":")
        _loaded[name] = getattr(importlib.import_module(module), cls)()
    return _loaded[name]


def __getattr__(name: str) -> Any:
    """`EXAMPLES`: every spec by name (imports them all, and so torch)."""
    if name == "EXAMPLES":
        return {n: get_example(n) for n in SPECS}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CARDS", "SPECS", "Card", "get_card", "get_example"]
