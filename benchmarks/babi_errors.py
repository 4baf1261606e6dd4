"""Where a babi_memnn run trained on QA1 (single supporting fact) goes wrong on the test set.

Counts the test errors by how many sentences follow the last one that mentions the question's person
(0: the answer is in the story's last sentence about anyone), and by the verb of that sentence:

    python benchmarks/babi_errors.py runs/babi_memnn/<id>

docs/RESULTS.md (babi_memnn) quotes these counts.
"""

from __future__ import annotations

import argparse
from collections import Counter

import torch

from rnnzoo.data import babi
from rnnzoo.runs import load_run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="a run folder (its best checkpoint is used)")
    args = ap.parse_args()
    run = load_run(args.run)
    task, size = run.config.task, run.config.size
    if run.example.name != "babi_memnn" or task != "qa1" or run.config.generated_stories:
        raise SystemExit(f"{args.run}: this analysis is for babi_memnn runs on the real QA1 task")
    split = run.example.load_data(run.config, seed=0).test  # vectorized as in training, in file order
    with torch.no_grad():
        wrong = (run.model(*split.inputs).argmax(-1) != split.target).numpy()
    _, test = babi.load_task(task, size, run.config.only_supporting)  # the same questions, as words
    print(f"{run.path}: {task}-{size} test accuracy {1 - wrong.mean():.4f}, {wrong.sum()} errors")
    errors: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    for k, (story, question, _) in enumerate(test):
        sentences = [x.split() for x in " ".join(story).split(" . ")]
        person = question[-2]  # "Where is Mary ?"
        last = max(i for i, words in enumerate(sentences) if words[0] == person)
        after = len(sentences) - 1 - last
        verb = "went back" if "back" in sentences[last] else sentences[last][1]
        for key in (f"{min(after, 4)}{'+' if after >= 4 else ''} sentences after", f"verb: {verb}"):
            totals[key] += 1
            errors[key] += int(wrong[k])
    for key in sorted(totals):
        print(f"  {key:<24} {errors[key]:>4} errors of {totals[key]:>4}")


if __name__ == "__main__":
    main()
