"""Train examples for the results tables (docs/RESULTS.md) and collect what they score.

Runs `rnnzoo train` jobs (example, seed, extra settings) a few at a time, each in its own process and run
folder, then gathers every run's test.json and metrics.jsonl into one JSON file and prints a Markdown table
(mean ± std over seeds of the test metric, epochs, seconds per epoch).

    python benchmarks/train_all.py --jobs "babi_memnn:0,1,2" "babi_rnn:0" --parallel 2 --device cpu
    python benchmarks/train_all.py --jobs "imdb_lstm:0,1,2" "babi_memnn:0:--attention memory" --device cuda

A job is EXAMPLE:SEEDS[:EXTRA ARGUMENTS]. Results go to --out (default benchmarks/results/train-<time>.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path


def parse_job(text: str) -> list[tuple[str, int, list[str]]]:
    example, seeds, *extra = text.split(":", 2)
    return [(example, int(s), shlex.split(extra[0]) if extra else []) for s in seeds.split(",")]


def machine(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return f"{torch.cuda.get_device_name(0)} (torch {torch.__version__})"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (torch CPU)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", nargs="+", required=True)
    ap.add_argument("--parallel", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="OMP/torch threads per job (0: leave as is)")
    ap.add_argument("--runs", type=Path, default=Path("runs-results"))
    ap.add_argument("--out", type=Path)
    ap.add_argument("--deadline", type=float, default=0, help="seconds; jobs not done by then are stopped")
    args = ap.parse_args()
    jobs = [job for text in args.jobs for job in parse_job(text)]
    env = {**os.environ, "RNNZOO_RUNS": str(args.runs)}
    if args.threads:
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    started, running, done = time.time(), [], []
    pending = list(jobs)
    logs = args.runs / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    while pending or running:
        while pending and len(running) < args.parallel:
            example, seed, extra = pending.pop(0)
            tag = f"{example}-s{seed}" + ("-" + "_".join(a.strip("-") for a in extra) if extra else "")
            run_dir = args.runs / example / tag
            cmd = [sys.executable, "-m", "rnnzoo", "train", example, "--seed", str(seed), "--quiet",
                   "--device", args.device, "--run-dir", str(run_dir), *extra]
            log = open(logs / f"{tag}.log", "w")
            running.append((subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env),
                            (example, seed, extra, tag, run_dir), log))
        time.sleep(2)
        for item in list(running):
            proc, info, log = item
            late = args.deadline and time.time() - started > args.deadline
            if late and proc.poll() is None:
                proc.send_signal(2)  # Ctrl-C: the run saves a checkpoint and stops
                proc.wait(60)
            if proc.poll() is not None:
                running.remove(item)
                log.close()
                done.append(info)
    rows = []
    for example, seed, extra, tag, run_dir in done:
        history = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()] \
            if (run_dir / "metrics.jsonl").exists() else []
        test = json.loads((run_dir / "test.json").read_text()) if (run_dir / "test.json").exists() else None
        rows.append({"example": example, "seed": seed, "extra": extra, "tag": tag, "epochs": len(history),
                     "seconds_per_epoch": statistics.median([h["seconds"] for h in history]) if history else None,
                     "best_epoch": test["best_epoch"] if test else None, "test": test,
                     "last": history[-1] if history else None})
    out = args.out or Path("benchmarks/results") / f"train-{time.strftime('%Y%m%d-%H%M')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(args.device), "device": args.device, "rows": rows}, indent=1))
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["example"], " ".join(row["extra"])), []).append(row)
    print(f"machine: {machine(args.device)}\n")
    print("| example | settings | seeds | epochs | test accuracy (mean ± std) | test loss | s/epoch |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for (example, extra), group in groups.items():
        scored = [r for r in group if r["test"]]
        acc = [r["test"].get("accuracy", float("nan")) for r in scored]
        loss = [r["test"]["loss"] for r in scored]
        spread = f" ± {statistics.stdev(acc):.4f}" if len(acc) > 1 else ""
        print(f"| {example} | {extra or 'faithful'} | {len(scored)} | "
              f"{', '.join(str(r['epochs']) for r in group)} | "
              f"{statistics.mean(acc) if acc else float('nan'):.4f}{spread} | "
              f"{statistics.mean(loss) if loss else float('nan'):.4f} | "
              f"{statistics.median([r['seconds_per_epoch'] for r in group if r['seconds_per_epoch']] or [0]):.1f} |")
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
