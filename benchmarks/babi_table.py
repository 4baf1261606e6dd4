"""Train bAbI models on many tasks and seeds, and write the table of test accuracies beside published ones.

Each (model, task, size, seed) is one `python -m rnnzoo train` subprocess with its own run folder; its test
score is that of the checkpoint picked on validation (the run's test.json). A finished one leaves a JSON record
in OUT/records/, so a rerun skips it and continues an interrupted training from its last checkpoint (interrupt
and rerun at will); the table is written from the records alone, one section per training size. Per task and
model it gives the mean test accuracy over the seeds and the test accuracy of the one seed picked on validation
accuracy (the test set picks nothing). Published columns come beside ours: the Keras babi_rnn docstring's, the
bAbI paper's LSTM baseline (Weston et al. 2015, as that docstring quotes it) and End-To-End Memory Networks'
best one-task model (Sukhbaatar et al. 2015, Table 1, 1k: PE LS RN; for 10k its summary rows). Failed tasks are
those above 5% error, as in both papers. A copy without a task's training file (some lack QA3's en-10k one) gets
a cell that says so.

    OMP_NUM_THREADS=1 RNNZOO_MIRROR=... python benchmarks/babi_table.py --models babi_memn2n --tasks 1-20 \\
        --sizes 1k --seeds 1 --out benchmarks/results/babi-table-memn2n-1k
    python benchmarks/babi_table.py --out benchmarks/results/babi-table-memn2n-1k --table-only

Settings after `--` go to every training (e.g. `-- --epochs 50`); --preset picks a preset for all models.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from statistics import mean
from typing import Any

MODELS = ("babi_memnn", "babi_rnn", "babi_memn2n")
TASK_NAMES = ("single supporting fact", "two supporting facts", "three supporting facts", "two arg. relations",
              "three arg. relations", "yes/no questions", "counting", "lists/sets", "simple negation",
              "indefinite knowledge", "basic coreference", "conjunction", "compound coreference", "time reasoning",
              "basic deduction", "basic induction", "positional reasoning", "size reasoning", "path finding",
              "agent's motivations")
# Published test accuracies (%) per task, QA1..QA20, all on the 1k training stories.
PUBLISHED: dict[str, tuple[str, list[float]]] = {
    "keras": ("Keras babi_rnn docstring (its \"Keras QA\" column)",
              [100.0, 50.0, 20.5, 62.9, 61.9, 50.7, 78.9, 77.2, 64.0, 47.7, 74.9, 76.4, 94.4, 34.8, 32.4, 50.6,
               49.1, 90.8, 9.0, 90.7]),
    "lstm": ("bAbI paper's LSTM (Weston et al. 2015, arXiv:1502.05698), as the Keras docstring quotes it",
             [50, 20, 20, 61, 70, 48, 49, 45, 64, 44, 72, 74, 94, 27, 21, 23, 51, 52, 8, 91]),
    # Table 1 gives errors: 0.0 8.3 40.3 2.8 13.1 7.6 17.3 10.0 13.2 15.1 0.9 0.2 0.4 1.7 0.0 1.3 51.0 11.1 82.8 0.0
    # (mean 13.9, 11 failed: the table's own summary rows agree with these values).
    "memn2n": ("End-To-End Memory Networks (Sukhbaatar et al. 2015, arXiv:1503.08895), Table 1, 1k, PE LS RN, "
               "one task at a time",
               [100.0, 91.7, 59.7, 97.2, 86.9, 92.4, 82.7, 90.0, 86.8, 84.9, 99.1, 99.8, 99.6, 98.3, 100.0, 98.7,
                49.0, 88.9, 17.2, 100.0]),
}
# The same paper's summary rows for the 10k training stories (Table 1; per task only in its appendix, not
# transcribed here): mean error (%) and failed tasks.
PUBLISHED_10K = {"memn2n": ("End-To-End Memory Networks, Table 1, 10k, PE LS RN, one task at a time", 6.6, 4)}
SECONDS_PER_RUN = {  # rough single-thread CPU times of one faithful run on 1k stories (10k: about 10x)
    "babi_memnn": 60, "babi_rnn": 40, "babi_memn2n": 50}


def parse_tasks(text: str) -> list[int]:
    """'1-20', '1,2,5' or '3' -> task numbers."""
    tasks: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        tasks += list(range(int(a), int(b or a) + 1))
    if not tasks or not all(1 <= t <= 20 for t in tasks):
        raise SystemExit(f"--tasks must name tasks 1 to 20, got {text!r}")
    return tasks


def key(model: str, task: int, size: str, seed: int) -> str:
    return f"{model}-qa{task}-{size}-s{seed}"


def unavailable(task: int, size: str) -> str | None:
    """Why the training file of (task, size) cannot be read (some copies lack QA3's en-10k one), or None."""
    from rnnzoo.data import babi
    from rnnzoo.data.cache import DataError, read_member, require

    try:
        read_member(require(babi.DATASET, babi.ARCHIVE), babi.member_path(f"qa{task}", size, "train"))
    except DataError as exc:
        return str(exc)
    return None


def run_one(args: argparse.Namespace, model: str, task: int, size: str, seed: int, extra: list[str]) -> dict:
    """Train one (model, task, size, seed) in a subprocess; its record (written to OUT/records/)."""
    name = key(model, task, size, seed)
    run_dir = (args.runs or args.out / "runs") / name
    record: dict[str, Any] = {"model": model, "task": task, "size": size, "seed": seed, "preset": args.preset,
                              "extra": extra}
    missing = unavailable(task, size)
    if missing:
        record.update(status="unavailable", message=missing)
    else:
        train = [sys.executable, "-m", "rnnzoo", "train", model]
        command = [*train, "--preset", args.preset, "--task", str(task), "--size", size, "--seed", str(seed),
                   "--run-dir", str(run_dir), "--quiet", *extra]
        record["command"] = " ".join(command[1:command.index("--run-dir")] + command[command.index("--quiet"):])
        started, returncode, output = time.perf_counter(), 0, ""
        if not (run_dir / "test.json").is_file():  # (with one, it finished but stopped before its record)
            if (run_dir / "config.json").is_file():  # an interrupted attempt: continue from its last checkpoint
                record["resumed"] = True
                command = [*train, "--resume", str(run_dir), "--quiet"]
            elif run_dir.exists():  # killed before it wrote its settings
                shutil.rmtree(run_dir)
            proc = subprocess.run(command, capture_output=True, text=True,
                                  env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
            returncode, output = proc.returncode, proc.stderr or proc.stdout
        record["seconds"] = round(time.perf_counter() - started, 1)
        if returncode != 0:
            record.update(status="failed", message=output[-2000:])
        else:
            test = json.loads((run_dir / "test.json").read_text())
            history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
            record.update(status="ok", test_accuracy=test["accuracy"], best_epoch=test["best_epoch"],
                          val_accuracy=history[test["best_epoch"] - 1]["val_accuracy"], epochs=len(history),
                          run=name)
    path = args.out / "records" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(path)
    return record


def load_records(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "records").glob("*.json"))]


def picked(runs: list[dict]) -> dict:
    """The run of the seed with the best validation accuracy (the first seed of a tie): the test set only scores it."""
    return max(sorted(runs, key=lambda r: r["seed"]), key=lambda r: r["val_accuracy"])


def duration(runs: list[dict]) -> str:
    """The summed training time of `runs` ("at least" where one was resumed: its record has only the rest)."""
    seconds = sum(r.get("seconds", 0) for r in runs)
    if not seconds:
        return "-"
    text = f"{seconds / 60:.0f} min" if seconds < 5940 else f"{seconds // 3600:.0f} h {seconds % 3600 / 60:.0f} min"
    return ("at least " if any(r.get("resumed") for r in runs) else "") + text


def table(records: list[dict], tasks: list[int] | None = None, size: str = "1k") -> str:
    """The Markdown table of the records of one training size: per task and model, the mean test accuracy over
    the seeds and that of the seed picked on validation; then the mean error and the failed tasks (> 5%
    error) over the tasks measured, for ours and the published columns (per task only for 1k), and the
    training time of ours."""
    records = [r for r in records if r["size"] == size]
    models = sorted({r["model"] for r in records}, key=MODELS.index)
    tasks = tasks or sorted({r["task"] for r in records})
    published = ("keras", "lstm", "memn2n") if size == "1k" else ()
    header = ["task"] + [f"{m} {size}: {label}" for m in models for label in ("mean (seeds)", "picked on validation")]
    header += [{"keras": "Keras docstring", "lstm": "bAbI LSTM", "memn2n": "MemN2N paper"}[p] for p in published]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    means: dict[str, dict[int, float]] = {m: {} for m in models}
    picks: dict[str, dict[int, float]] = {m: {} for m in models}
    for t in tasks:
        cells = [f"QA{t} {TASK_NAMES[t - 1]}"]
        for m in models:
            rs = [r for r in records if r["model"] == m and r["task"] == t]
            ok = [r for r in rs if r["status"] == "ok"]
            if ok:
                means[m][t] = mean(100 * r["test_accuracy"] for r in ok)
                picks[m][t] = 100 * picked(ok)["test_accuracy"]
                cells += [f"{means[m][t]:.1f} ({len(ok)})", f"{picks[m][t]:.1f}"]
            elif any(r["status"] == "unavailable" for r in rs):
                cells += ["no training file in this copy", "-"]
            elif rs:
                cells += ["failed: " + rs[0].get("message", "").strip().splitlines()[-1][:60], "-"]
            else:
                cells += ["not run", "-"]
        cells += [f"{PUBLISHED[p][1][t - 1]:g}" for p in published]
        lines.append("| " + " | ".join(cells) + " |")

    def summary(accuracies: dict[int, float]) -> tuple[str, str]:
        if not accuracies:
            return "-", "-"
        errors = [100 - a for a in accuracies.values()]
        return f"{mean(errors):.1f}", f"{sum(e > 5 for e in errors)} of {len(errors)}"

    ours = [summary(d[m]) for m in models for d in (means, picks)]
    theirs = [summary({t: PUBLISHED[p][1][t - 1] for t in tasks}) for p in published]
    lines.append("| mean error (%) | " + " | ".join(s[0] for s in ours + theirs) + " |")
    lines.append("| failed tasks (error > 5%) | " + " | ".join(s[1] for s in ours + theirs) + " |")
    times = [duration([r for r in records if r["model"] == m and r["task"] in tasks and r["status"] == "ok"])
             for m in models]
    lines.append("| training time (one thread, all seeds) | " + " | ".join(f"{t} | -" for t in times)
                 + " | -" * len(theirs) + " |")
    notes = ["", f"Test accuracy (%) on the {size} tasks of the checkpoint picked on validation, as the mean over "
             "the seeds (their number in brackets) and for the one seed picked on validation accuracy."]
    if published:
        notes.append("Published columns, over the same tasks:")
        notes += [f"- {label}: {PUBLISHED[p][0]}." for label, p in (
            ("Keras docstring", "keras"), ("bAbI LSTM", "lstm"), ("MemN2N paper", "memn2n"))]
        notes.append("- The MemN2N paper's numbers are the best of 10 trainings per task (picked on training error).")
    else:
        notes += [f"- {label}: mean error {error}%, {failed} failed tasks (all 20 tasks)."
                  for label, error, failed in PUBLISHED_10K.values()]
    return "\n".join(lines + notes) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="babi_memn2n", help=f"comma-separated, of {', '.join(MODELS)}")
    ap.add_argument("--tasks", default="1-20", help="task numbers: 1-20, 1,2,5, ...")
    ap.add_argument("--sizes", default="1k", help="1k, 10k or 1k,10k")
    ap.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 per (model, task, size)")
    ap.add_argument("--preset", default="faithful", help="the preset of every training")
    ap.add_argument("--jobs", type=int, default=1, help="trainings at once (each one thread)")
    ap.add_argument("--out", type=Path, required=True, help="folder of the records and table.md")
    ap.add_argument("--runs", type=Path, help="folder of the run folders (default: OUT/runs)")
    ap.add_argument("--table-only", action="store_true", help="write the table from the records; train nothing")
    args, extra = ap.parse_known_args()
    extra = [a for a in extra if a != "--"]
    models = args.models.split(",")
    if not set(models) <= set(MODELS) or args.seeds < 1 or args.jobs < 1:
        raise SystemExit(f"--models must be of {', '.join(MODELS)}; --seeds and --jobs at least 1")
    tasks, sizes = parse_tasks(args.tasks), args.sizes.split(",")
    wanted = [(m, t, s, seed) for m in models for s in sizes for t in tasks for seed in range(args.seeds)]
    recorded = load_records(args.out) if (args.out / "records").is_dir() else []
    other = [r for r in recorded if (r["preset"], r["extra"]) != (args.preset, extra)]
    if other and not args.table_only:
        raise SystemExit(f"{args.out} holds records of other settings (--preset {other[0]['preset']} "
                         f"{' '.join(other[0]['extra'])}): choose another --out for these")
    done = {key(r["model"], r["task"], r["size"], r["seed"]) for r in recorded if r["status"] in ("ok", "unavailable")}
    pending = [w for w in wanted if key(*w) not in done]
    if not args.table_only:
        estimate = sum(SECONDS_PER_RUN[m] * (10 if s == "10k" else 1) for m, _, s, _ in pending) / args.jobs
        print(f"{len(wanted)} runs, {len(wanted) - len(pending)} already recorded, {len(pending)} to train: "
              f"about {estimate / 60:.0f} minutes with --jobs {args.jobs} (rough single-thread estimates)",
              flush=True)
        with ThreadPoolExecutor(args.jobs) as pool:
            futures = [pool.submit(run_one, args, *w, extra) for w in pending]
            for n, future in enumerate(as_completed(futures), 1):  # as they finish, not in the order started
                record = future.result()
                score = f"{100 * record['test_accuracy']:.1f}%" if record["status"] == "ok" else record["status"]
                print(f"[{n}/{len(pending)}] {key(record['model'], record['task'], record['size'], record['seed'])}: "
                      f"{score} ({record.get('seconds', 0):.0f} s{', resumed' if record.get('resumed') else ''})",
                      flush=True)
    records = [r for r in load_records(args.out) if r["model"] in models and r["size"] in sizes]
    text = "\n".join(f"## {size} training stories\n\n" + table(records, tasks, size) for size in sizes)
    (args.out / "table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
