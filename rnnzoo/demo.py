"""`rnnzoo demo`: a memory network learns generated QA1-style stories, offline, in a few minutes on a CPU,
then answers new generated questions and shows where it looked."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from rnnzoo.data import babi
from rnnzoo.examples import get_example
from rnnzoo.examples.babi import BabiMemnn
from rnnzoo.runs import load_run
from rnnzoo.training import train


def run_demo(seed: int = 0, device: str = "auto", epochs: int | None = None) -> float | None:
    """Train, test and answer; returns the test accuracy, or None when stopped with Ctrl-C."""
    example = get_example("babi_memnn")
    assert isinstance(example, BabiMemnn)
    overrides = {"epochs": epochs} if epochs is not None else {}
    cfg = example.config("small", **overrides)
    print(f"Training babi_memnn on {cfg.generated_stories} generated stories "
          f"({cfg.generated_stories * cfg.story_questions} questions like 'Where is Mary?'), {cfg.epochs} epochs, "
          "no download needed.\n")
    result = train(example, cfg, seed=seed, device=device, command="rnnzoo demo")
    if result.stopped:
        return None
    accuracy = result.test["accuracy"] if result.test else float("nan")
    print(f"\ntest accuracy on new generated stories: {accuracy:.1%}\n")

    run = load_run(str(result.run_dir))
    rng = np.random.default_rng(seed + 1)
    lines = babi.generate_qa1_lines(3, rng, cfg.story_questions)
    last_questions = babi.parse_stories(lines, source="generated")[cfg.story_questions - 1::cfg.story_questions]
    for story, question, answer in last_questions:
        story_text = " ".join(" ".join(s) for s in story).replace(" .", ".")
        question_text = " ".join(question).replace(" ?", "?")
        print(f"story:    {story_text}\nquestion: {question_text}   (true answer: {answer})")
        args = argparse.Namespace(story=story_text, question=question_text)
        example.predict(run, args, sys.stdout)
        print()
    print(f"Run folder: {result.run_dir}  (try: rnnzoo predict {result.run_dir} --story ... --question ...)")
    return accuracy
