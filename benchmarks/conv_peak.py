"""How close conv_lstm's convolutions run to this CPU's peak: GFLOP/s of its 3x3 convolutions (forward,
input gradient, kernel gradient) against a large matrix product, in float32 and bfloat16.

    python benchmarks/conv_peak.py --threads 1

The shapes are the faithful model's: 40 channels in, 4 x 40 gate channels out, 40 x 40 frames; batch 10
(a recurrent convolution, one frame of a batch) and 150 (an input convolution, all 15 frames at once).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F


def seconds(fn: Callable[[], object], repeats: int) -> float:
    for _ in range(3):
        fn()
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - started) / repeats


def conv_rates(batch: int, dtype: torch.dtype, repeats: int) -> dict[str, float]:
    """GFLOP/s of the forward pass and the two gradients of one 3x3 convolution, 40 -> 160 channels."""
    cl = torch.channels_last
    x = torch.randn(batch, 40, 40, 40, dtype=dtype).contiguous(memory_format=cl)
    w = torch.randn(160, 40, 3, 3, dtype=dtype).contiguous(memory_format=cl)
    dy = torch.randn(batch, 160, 40, 40, dtype=dtype).contiguous(memory_format=cl)
    flops = 2 * batch * 40 * 40 * 160 * 40 * 9

    def backward(which: list[bool]) -> object:
        return torch.ops.aten.convolution_backward(dy, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, which)

    passes: dict[str, Callable[[], object]] = {
        "forward": lambda: F.conv2d(x, w, padding=1),
        "input gradient": lambda: backward([True, False, False]),
        "kernel gradient": lambda: backward([False, True, False]),
    }
    return {name: flops / seconds(fn, repeats) / 1e9 for name, fn in passes.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s)")

    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    print(f"matrix product {n}x{n}, float32: {2 * n**3 / seconds(lambda: a @ b, args.repeats) / 1e9:.0f} GFLOP/s")
    for dtype in (torch.float32, torch.bfloat16):
        for batch in (10, 150):
            rates = ", ".join(f"{name} {rate:.0f}" for name, rate in conv_rates(batch, dtype, args.repeats).items())
            print(f"conv 3x3 40->160 on 40x40, batch {batch:3d}, {str(dtype).removeprefix('torch.')}: "
                  f"{rates} GFLOP/s")


if __name__ == "__main__":
    main()
