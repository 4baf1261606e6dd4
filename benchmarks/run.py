"""Interleaved speed comparison of `rnnzoo bench` with the Keras 3 peer (benchmarks/keras_peers.py).

Each round runs, for every example, our benchmark and the peer on each Keras backend, one after the other,
so that machine noise hits all of them alike; the ratio is of medians over the rounds.

    python benchmarks/run.py --peer-python .venv-peer/bin/python               # every example, 3 rounds, CPU
    python benchmarks/run.py babi_memnn --rounds 5 --threads 1 --peer-python .venv-peer/bin/python

The peer needs Keras in the interpreter given by --peer-python (default: the one running this script; see
the header of keras_peers.py). Results are printed as a table and written as JSON to
benchmarks/results/bench-<date>-<time>.json (or --out).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PEER = Path(__file__).resolve().with_name("keras_peers.py")
EXAMPLES = ["babi_memnn", "babi_rnn", "imdb_lstm", "imdb_cnn_lstm", "imdb_bidirectional_lstm",
            "mnist_hierarchical_rnn", "conv_lstm"]
PEER_NAMES = {"imdb_lstm": ["imdb_lstm", "imdb_lstm_fused"]}  # compare imdb_lstm with both peers
BATCHES = {"conv_lstm": 5, "babi_rnn": 10, "mnist_hierarchical_rnn": 20}


def thread_env(threads: int) -> dict[str, str]:
    """Environment that holds both frameworks to `threads` CPU threads (0: their own choice)."""
    if not threads:
        return {}
    n = str(threads)
    return {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "TF_NUM_INTRAOP_THREADS": n, "TF_NUM_INTEROP_THREADS": "1",
            "XLA_FLAGS": f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
                         f"intra_op_parallelism_threads={n}"}


def ours(example: str, batches: int, device: str, extra: list[str], threads: int) -> float:
    cmd = [sys.executable, "-m", "rnnzoo", "bench", example, "--json", "--batches", str(batches),
           "--device", device, *(["--threads", str(threads)] if threads else []), *extra]
    env = {**os.environ, **thread_env(threads)}
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
    return float(json.loads(out.strip().splitlines()[-1])["samples_per_s"])


def peer(python: str, name: str, backend: str, batches: int, threads: int) -> float:
    env = {**os.environ, "KERAS_BACKEND": backend, **thread_env(threads)}
    proc = subprocess.run([python, str(PEER), name, "--batches", str(batches)], capture_output=True, text=True,
                          env=env)
    match = re.search(r"([\d.]+) samples/s", proc.stdout)
    if not match:
        raise RuntimeError(f"peer {name} on {backend} failed:\n{proc.stderr[-2000:]}")
    return float(match.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("examples", nargs="*", default=EXAMPLES)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--peer-python", default=sys.executable,
                    help="Python interpreter with Keras for the peer (default: this one)")
    ap.add_argument("--backends", default="jax,tensorflow")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--ours-args", default="", help="extra arguments for `rnnzoo bench` (e.g. a preset)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads for both sides (0: each its own choice)")
    ap.add_argument("--out", type=Path, help="JSON file for the results")
    ap.add_argument("--batches", type=int, help="timed batches on both sides (default: per example, 5 to 30)")
    args = ap.parse_args()
    backends = args.backends.split(",")
    samples: dict[str, list[float]] = {}
    for r in range(args.rounds):
        for example in args.examples:
            batches = args.batches or BATCHES.get(example, 30)
            samples.setdefault(f"{example} rnnzoo", []).append(ours(example, batches, args.device,
                                                                    args.ours_args.split(), args.threads))
            for name in PEER_NAMES.get(example, [example]):
                for backend in backends:
                    samples.setdefault(f"{name} keras-{backend}", []).append(
                        peer(args.peer_python, name, backend, batches, args.threads))
            print(f"round {r + 1}: {example} " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in samples.items()
                                                           if k.split()[0] in (example, *PEER_NAMES.get(example, []))),
                  file=sys.stderr, flush=True)
    medians = {k: statistics.median(v) for k, v in samples.items()}
    rows = []
    for example in args.examples:
        mine = medians[f"{example} rnnzoo"]
        for name in PEER_NAMES.get(example, [example]):
            best_backend = max(backends, key=lambda b: medians[f"{name} keras-{b}"])
            best = medians[f"{name} keras-{best_backend}"]
            rows.append({"example": example, "peer": name, "rnnzoo": mine, "keras_best": best,
                         "keras_backend": best_backend, "ratio": round(mine / best, 2),
                         **{f"keras_{b}": medians[f"{name} keras-{b}"] for b in backends}})
            print(f"{example:<26} rnnzoo {mine:>9.1f}  {name} keras-{best_backend} {best:>9.1f}  "
                  f"ratio {mine / best:.2f}x")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M")
    out = args.out or REPO / "benchmarks" / "results" / f"bench-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(
        {"machine": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
         "threads": args.threads, "rounds": args.rounds, "samples": samples, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
