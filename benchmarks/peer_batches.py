"""Time the Keras 3 peer one training batch at a time, for models too slow for keras_peers.py's own
timing (warm-up batches, then N timed in one fit call, with no output until the end: conv_lstm on the JAX
backend takes about 9 minutes a batch on one CPU thread).

    KERAS_BACKEND=tensorflow python benchmarks/peer_batches.py conv_lstm --batches 4 \
        --peer-python .venv-peer/bin/python

Builds the peer's model and data with keras_peers.py's own functions, then calls train_on_batch
repeatedly and prints each batch's seconds as it ends. The first batch includes compilation; the
steady-state rate is the median of the later ones (printed at the end, in keras_peers.py's format).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path

PEER = Path(__file__).resolve().with_name("keras_peers.py")


def rerun_under(python: str) -> None:
    """Run this script again under `python` (the peer's interpreter, with Keras), without --peer-python."""
    argv, skip = [], False
    for arg in sys.argv[1:]:
        if skip:
            skip = False
        elif arg == "--peer-python":
            skip = True
        elif not arg.startswith("--peer-python="):
            argv.append(arg)
    os.execv(python, [python, str(Path(__file__).resolve()), *argv])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("example")
    ap.add_argument("--batches", type=int, default=4, help="batches after the first (compiling) one")
    ap.add_argument("--minutes", type=float, default=20.0, help="stop starting new batches after this long")
    ap.add_argument("--peer", type=Path, default=PEER, help="the peer module (default: keras_peers.py beside this)")
    ap.add_argument("--peer-python", default=sys.executable,
                    help="Python interpreter with Keras to run in (default: this one)")
    args = ap.parse_args()
    if os.path.abspath(args.peer_python) != os.path.abspath(sys.executable):
        rerun_under(args.peer_python)
    spec = importlib.util.spec_from_file_location("keras_peers", args.peer)
    assert spec is not None and spec.loader is not None
    peers = importlib.util.module_from_spec(spec)
    sys.modules["keras_peers"] = peers  # dataclasses look their module up by name
    spec.loader.exec_module(peers)
    import keras
    import numpy as np

    if args.example not in peers.PEERS:
        ap.error(f"unknown peer {args.example!r}; choose from {', '.join(peers.PEERS)}")
    keras.utils.set_random_seed(0)
    peer = peers.PEERS[args.example]()
    model, batch = peer.model, peer.batch_size
    x, y = peer.make_batch(batch, np.random.default_rng(0))
    started, times = time.perf_counter(), []
    for i in range(args.batches + 1):
        if time.perf_counter() - started > args.minutes * 60:
            break
        t = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - t)
        print(f"batch {i + 1}: {times[-1]:.1f} s" + (" (includes compilation)" if i == 0 else ""), flush=True)
    if len(times) > 1:
        steady = statistics.median(times[1:])
        print(f"{args.example} keras-{keras.backend.backend()} {batch / steady:.3f} samples/s "
              f"(median of {len(times) - 1} batches after the first)")
    else:
        print(f"{args.example} keras-{keras.backend.backend()}: only the first batch finished", file=sys.stderr)


if __name__ == "__main__":
    main()
