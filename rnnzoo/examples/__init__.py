"""The registry of examples: one spec per example (data, model, loss, optimizer, defaults, metric)."""

from __future__ import annotations

from rnnzoo.errors import InputError
from rnnzoo.examples.babi import BabiMemnn, BabiRnn
from rnnzoo.examples.base import Example
from rnnzoo.examples.conv_lstm import ConvLstm
from rnnzoo.examples.imdb import ImdbBidirectionalLstm, ImdbCnnLstm, ImdbLstm
from rnnzoo.examples.mnist import MnistHierarchicalRnn

EXAMPLES: dict[str, Example] = {e.name: e for e in (BabiMemnn(), BabiRnn(), ImdbLstm(), ImdbCnnLstm(),
                                                    ImdbBidirectionalLstm(), MnistHierarchicalRnn(), ConvLstm())}


def get_example(name: str) -> Example:
    if name not in EXAMPLES:
        raise InputError(f"unknown example {name!r}; choose from {', '.join(EXAMPLES)}")
    return EXAMPLES[name]
