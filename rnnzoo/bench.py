"""Training throughput of an example's configuration on synthetic inputs of the right shapes.

Measured like `benchmarks/keras_peers.py` measures the Keras peer: whole training steps (forward, loss,
backward, optimizer) after a warm-up, in samples per second.
"""

from __future__ import annotations

import resource
import time
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from rnnzoo.specs.base import Example


def lstm_flops(module: nn.LSTM, x: Tensor) -> int:
    """Forward FLOPs of one nn.LSTM call (multiply-adds count 2): 4 gates of (I + H) x H per step,
    per direction and layer; the element-wise gate arithmetic is left out."""
    B, T = (x.shape[0], x.shape[1]) if module.batch_first else (x.shape[1], x.shape[0])
    H, D = module.hidden_size, 2 if module.bidirectional else 1
    total, n_in = 0, module.input_size
    for _ in range(module.num_layers):
        total += 2 * 4 * H * (n_in + H) * T * B * D
        n_in = H * D
    return total


def forward_flops(model: nn.Module, inputs: tuple[Tensor, ...]) -> int:
    """FLOPs of one forward pass: PyTorch's counter for matrix and convolution ops, plus LSTMs (which the
    counter does not see inside the fused kernel)."""
    extra = [0]

    def hook(module: nn.Module, args: tuple[Tensor, ...], output: object) -> None:
        extra[0] += lstm_flops(module, args[0])  # type: ignore[arg-type]

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.LSTM)]
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(*inputs)
    finally:
        for h in hooks:
            h.remove()
    return int(counter.get_total_flops()) + extra[0]


def run_bench(example: Example, cfg: Any, *, batches: int = 30, warmup: int = 3, warmup_seconds: float = 10.0,
              device: str = "cpu", seed: int = 0) -> dict[str, Any]:
    dev = torch.device(device)
    torch.manual_seed(seed)
    meta = example.shape_meta(cfg)
    model = example.build_model(cfg, meta).to(dev)
    optimizer = example.make_optimizer(cfg, model.parameters())
    gen = torch.Generator().manual_seed(seed)
    data = [example.synthetic_batch(cfg, meta, cfg.batch_size, gen) for _ in range(min(batches, 8))]
    data = [(tuple(t.to(dev) for t in x), y.to(dev)) for x, y in data]

    def step(i: int) -> None:
        inputs, target = data[i % len(data)]
        loss = example.loss(model(*inputs), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    # Warm up for `warmup` steps AND `warmup_seconds`: on CPU the first seconds of a process run far slower
    # than its steady state (oneDNN's LSTM backward took 550 ms a step for its first ~10 steps of babi_rnn,
    # then 60 ms), and a training run lives in the steady state.
    model.train()
    started, i = time.perf_counter(), 0
    while i < warmup or time.perf_counter() - started < warmup_seconds:
        step(i)
        i += 1
    sync()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    start = time.perf_counter()
    for i in range(batches):
        step(i)
    sync()
    seconds = time.perf_counter() - start
    flops = forward_flops(model.eval(), tuple(t[:1] for t in data[0][0]))
    result = {
        "example": example.name, "device": str(dev), "threads": torch.get_num_threads(),
        "batch_size": cfg.batch_size, "batches": batches, "seconds": round(seconds, 4),
        "samples_per_s": round(batches * cfg.batch_size / seconds, 1),
        "forward_flops_per_sample": flops,
        "parameters": sum(p.numel() for p in model.parameters()),
        "torch": torch.__version__,
    }
    if dev.type == "cuda":
        result["peak_memory_mb"] = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
        result["gpu"] = torch.cuda.get_device_name(dev)
    else:
        result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result
