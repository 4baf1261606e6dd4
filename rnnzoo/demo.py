"""`rnnzoo demo`: a memory network learns generated QA1-style stories, offline, in a minute or two on a CPU,
then answers new generated questions and shows where it looked."""

from __future__ import annotations

import numpy as np

from rnnzoo.data import babi
from rnnzoo.render import babi_text
from rnnzoo.runs import load_run
from rnnzoo.specs import get_example
from rnnzoo.training import train

PRESET = "offline"


def run_demo(seed: int = 0, device: str = "auto", epochs: int | None = None) -> float | None:
    """Train, test and answer; returns the test accuracy, or None when stopped with Ctrl-C."""
    example = get_example("babi_memnn")
    overrides = {"epochs": epochs} if epochs is not None else {}
    cfg = example.config(PRESET, **overrides)
    print(f"Training babi_memnn on {cfg.generated_stories} generated stories "
          f"({cfg.generated_stories * cfg.story_questions} questions like 'Where is Mary?'), {cfg.epochs} "
          f"epoch{'s' if cfg.epochs != 1 else ''}, no download needed.\n")
    result = train(example, cfg, seed=seed, device=device, command="rnnzoo demo")
    if result.stopped:
        return None
    accuracy = result.test["accuracy"] if result.test else float("nan")
    print(f"\ntest accuracy on new generated stories: {accuracy:.1%}\n")

    run = load_run(result.run_dir)
    rng = np.random.default_rng(seed + 1)
    lines = babi.generate_qa1_lines(3, rng, cfg.story_questions)
    last_questions = babi.parse_stories(lines, source="generated")[cfg.story_questions - 1::cfg.story_questions]
    for story, question, answer in last_questions:
        story_text = " ".join(" ".join(s) for s in story).replace(" .", ".")
        question_text = " ".join(question).replace(" ?", "?")
        print(f"story:    {story_text}\nquestion: {question_text}   (true answer: {answer})")
        print(babi_text(run.predict(story_text, question_text)) + "\n")
    print(f"Run folder: {result.run_dir}  (try: rnnzoo predict {result.run_dir} --story ... --question ...)")
    return accuracy
