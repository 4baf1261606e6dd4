"""End-to-end runs on real data and the demo (minutes each): `make test-slow` / `pytest -m slow`."""

from __future__ import annotations

import pytest

from rnnzoo.specs import get_example
from rnnzoo.training import train

pytestmark = pytest.mark.slow


def test_demo_learns_generated_stories(capsys) -> None:
    from rnnzoo.demo import run_demo

    accuracy = run_demo(seed=0, device="cpu")
    out = capsys.readouterr().out
    assert accuracy >= 0.9, out[-2000:]
    assert sum(line.startswith("answer: ") for line in out.splitlines()) == 3
    assert "attention over the story sentences" in out


def test_babi_memnn_learns_real_qa1(real_data) -> None:
    example = get_example("babi_memnn")
    result = train(example, example.config(epochs=8), seed=0, progress=False)
    assert result.history[-1]["val_accuracy"] > 0.4  # chance is 1/6 (six places)
    assert result.test is not None and result.test["accuracy"] > 0.4


def test_babi_rnn_runs_on_real_qa2(real_data) -> None:
    example = get_example("babi_rnn")
    result = train(example, example.config(epochs=1), seed=0, progress=False)
    assert result.test is not None and result.test["accuracy"] > 0.15  # above chance (1/6) after one epoch
