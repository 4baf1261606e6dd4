"""Time the Keras 3 peer one training batch at a time, for models too slow for keras_peers.py's own
timing (3 warm-up batches, then N timed in one fit call: conv_lstm's did not finish in 18 minutes on
1 CPU thread).

    KERAS_BACKEND=jax /tmp/kpeer/bin/python benchmarks/peer_batches.py conv_lstm --batches 4 --minutes 20

Builds the peer's model and data with keras_peers.py's own functions, then calls train_on_batch
repeatedly and prints each batch's seconds as it ends. The first batch includes compilation; the
steady-state rate is the median of the later ones (printed at the end).
"""

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

PEER = Path(__file__).resolve().parents[2] / "shared" / "bench" / "keras_peers.py"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("example")
    ap.add_argument("--batches", type=int, default=4, help="batches after the first (compiling) one")
    ap.add_argument("--minutes", type=float, default=20.0, help="stop starting new batches after this long")
    ap.add_argument("--peer", type=Path, default=PEER)
    args = ap.parse_args()
    spec = importlib.util.spec_from_file_location("keras_peers", args.peer)
    peers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peers)
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    model, data, batch = peers.EXAMPLES[args.example]()
    x, y = data(batch, np.random.default_rng(0))
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
