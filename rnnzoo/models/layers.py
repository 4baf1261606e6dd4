"""Small building blocks shared by the models: a Keras-like LSTM, TimeDistributed, Keras initialization.

The seed notes' lesson: "recurrent layers should be as easy to use as dense or convolution layers".
`LSTM` wraps the fused `nn.LSTM` kernel (oneDNN on CPU, cuDNN on GPU) and returns what Keras' LSTM
returns, so a model's forward() reads like the original's layer table.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LSTM(nn.LSTM):
    """Batch-first LSTM returning the last hidden state (B, H), or every step (B, T, H) with
    return_sequences=True. Bidirectional concatenates both directions: (B, 2H) or (B, T, 2H)."""

    def __init__(self, input_size: int, hidden_size: int, *, return_sequences: bool = False,
                 bidirectional: bool = False) -> None:
        super().__init__(input_size, hidden_size, batch_first=True, bidirectional=bidirectional)
        self.return_sequences = return_sequences

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        steps, (h, _) = super().forward(x)  # steps (B, T, D*H), h (D, B, H)
        if self.return_sequences:
            return steps
        return h[0] if h.shape[0] == 1 else torch.cat(list(h), dim=-1)


def hard_sigmoid(x: Tensor) -> Tensor:
    """Keras 2's hard_sigmoid: a line of slope 0.2 through (0, 0.5), clipped to [0, 1] (PyTorch's
    F.hardsigmoid has slope 1/6)."""
    return (0.2 * x + 0.5).clamp(0.0, 1.0)


def lstm_steps(lstm: nn.LSTM, x: Tensor, gate: Callable[[Tensor], Tensor] = torch.sigmoid,
               input_mask: Tensor | None = None, hidden_mask: Tensor | None = None,
               return_sequences: bool = False) -> Tensor:
    """One batch-first LSTM layer (`lstm`'s parameters) written out step by step, gates fused as in
    nn.LSTM (order i, f, g, o): for what the fused kernels cannot run, another gate activation or dropout
    masks held fixed across the time steps (Keras' dropout and recurrent_dropout)."""
    B, T, _ = x.shape
    if input_mask is not None:
        x = x * input_mask
    xw = F.linear(x, lstm.weight_ih_l0, lstm.bias_ih_l0 + lstm.bias_hh_l0)  # (B, T, 4H)
    h = c = x.new_zeros(B, lstm.hidden_size)  # (B, H)
    steps = []
    for t in range(T):
        recurrent = h if hidden_mask is None else h * hidden_mask
        i, f, g, o = (xw[:, t] + F.linear(recurrent, lstm.weight_hh_l0)).chunk(4, dim=1)  # (B, H) each
        c = gate(f) * c + gate(i) * g.tanh()  # (B, H)
        h = gate(o) * c.tanh()  # (B, H)
        if return_sequences:
            steps.append(h)
    return torch.stack(steps, dim=1) if return_sequences else h  # (B, T, H) or (B, H)


class HardSigmoidLSTM(LSTM):
    """`LSTM` with Keras 2.3's default gate activation, hard_sigmoid, in place of the sigmoid (tf.keras 2 and
    Keras 3 use the sigmoid, as PyTorch's fused kernels do). Same parameters; one layer, one direction;
    the steps written out (`lstm_steps`), so it suits short sequences."""

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        return lstm_steps(self, x, hard_sigmoid, return_sequences=self.return_sequences)  # (B, H) or (B, T, H)


class TimeDistributed(nn.Module):
    """Apply `layer` to every item of axis 1 at once, by folding that axis into the batch (no Python loop)."""

    summary_as_layer = True  # one row in `rnnzoo summary`, with the (B, T, ...) output, as Keras shows it

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor) -> Tensor:
        B, T = x.shape[:2]
        y = self.layer(x.reshape(B * T, *x.shape[2:]))  # (B*T, ...)
        return y.reshape(B, T, *y.shape[1:])


def dropout_mask(shape: tuple[int, ...], p: float, like: Tensor) -> Tensor:
    """Inverted-dropout mask of `shape`: 0 with probability p, else 1 / (1 - p), in the dtype and on the
    device of `like`.

    On the CPU each element takes one 8- or 16-bit lane of a 64-bit random integer (eight or four
    elements per draw), about 5x faster than torch.rand's one draw per element (which is itself twice as
    fast as nn.Dropout's bernoulli kernel): masks over (B, story, 64) embeddings were the largest cost of
    a bAbI training step. 8 bits serve a rate that is a multiple of 1/256 (0.25, 0.5) exactly; any other
    rate is rounded to a multiple of 1/65536 (0.3 becomes 0.300003)."""
    if p >= 1:
        return like.new_zeros(shape)
    if like.device.type != "cpu":
        return (torch.rand(shape, device=like.device) >= p).to(like.dtype).mul_(1.0 / (1.0 - p))
    lane = torch.int8 if (p * 256).is_integer() else torch.int16
    bits = torch.iinfo(lane).bits
    n, per_word = math.prod(shape), 64 // bits
    words = torch.randint(-2**63, 2**63 - 1, ((n + per_word - 1) // per_word,), dtype=torch.int64)
    lanes = words.view(lane)[:n].view(shape)  # uniform over the lane's integers, -2**(bits-1) and up
    mask = torch.empty(shape, dtype=like.dtype)
    torch.ge(lanes, round(p * 2**bits) - 2**(bits - 1), out=mask)  # 1.0 or 0.0, without a bool tensor
    return mask.mul_(1.0 / (1.0 - p))


class Dropout(nn.Dropout):
    """nn.Dropout (inverted dropout: keep with probability 1 - p, scale by 1 / (1 - p)) with the faster
    mask of `dropout_mask`. With inplace=True, as nn.Dropout, it overwrites its input: for a tensor that
    nothing else reads, such as a fresh embedding lookup, that spares writing a second copy."""

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        mask = dropout_mask(x.shape, self.p, x)
        return x.mul_(mask) if self.inplace else x * mask


class TimeMajorEmbedding(nn.Embedding):
    """nn.Embedding whose (B, T, D) output lies time-major in memory: a transposed view of (T, B, D).

    That is the layout the fused LSTM kernels read, so an LSTM fed from it (after element-wise steps,
    which keep the layout) needs no transposed copy of its input, nor of that input's gradient: with
    babi_rnn's (32, 552, 50) story, `rnnzoo bench` runs 4% faster on 2 CPU threads and 15% on 1. Same
    values as nn.Embedding."""

    def forward(self, indices: Tensor) -> Tensor:  # type: ignore[override]
        return super().forward(indices.T.contiguous()).transpose(0, 1)  # (B, T, D), stored (T, B, D)


class KeptGradEmbedding(nn.Embedding):
    """nn.Embedding for a large table whose weight gradient lives in a buffer kept from step to step.

    nn.Embedding's backward allocates and zero-fills a dense (num_embeddings, dim) gradient every step
    (10 MB for IMDB's 20000 x 128 table, about 1.5 ms a step on our CPU) to add a batch's few thousand
    rows into it. Here the backward clears only the rows the previous batch touched and adds the new ones.
    The gradient, and so the optimizer's (dense) update, is exactly nn.Embedding's.

    The gradient is set on `weight.grad` directly rather than passed through autograd, which would copy a
    buffer that we keep. Under DistributedDataParallel, which all-reduces `weight.grad` in place, the
    buffer would then hold rows that another process's batch touched and this one never clears, so
    there it falls back to nn.Embedding's backward."""

    def __init__(self, num_embeddings: int, embedding_dim: int) -> None:
        super().__init__(num_embeddings, embedding_dim)
        self._grad: Tensor | None = None  # the kept gradient buffer, while it is weight.grad
        self._rows: list[Tensor] = []  # indices whose rows of the buffer are nonzero

    def forward(self, indices: Tensor) -> Tensor:  # type: ignore[override]
        if not (torch.is_grad_enabled() and self.weight.requires_grad) or torch.distributed.is_initialized():
            return super().forward(indices)  # (..., D)
        return _KeptGradLookup.apply(indices, self.weight, self)  # (..., D) for indices (...)

    @torch.no_grad()
    def add_grad(self, indices: Tensor, grad_rows: Tensor) -> None:
        weight = self.weight
        if weight.grad is not None and weight.grad is not self._grad:  # someone else's gradient: add to it
            weight.grad.index_add_(0, indices, grad_rows)
            return
        buf = self._grad
        if buf is None or buf.shape != weight.shape or buf.device != weight.device or buf.dtype != weight.dtype:
            buf, self._rows = torch.zeros_like(weight), []
        elif weight.grad is None:  # a new step: clear what the last one added
            for rows in self._rows:
                buf.index_fill_(0, rows, 0.0)
            self._rows = []
        buf.index_add_(0, indices, grad_rows)
        self._rows.append(indices)
        if sum(len(r) for r in self._rows) > len(buf):  # e.g. zero_grad(set_to_none=False) never clears them
            self._rows = [torch.cat(self._rows).unique()]
        self._grad = weight.grad = buf


class _KeptGradLookup(torch.autograd.Function):
    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, indices: Tensor, weight: Tensor,  # type: ignore[override]
                module: KeptGradEmbedding) -> Tensor:
        ctx.save_for_backward(indices)
        ctx.module = module  # type: ignore[attr-defined]
        return F.embedding(indices, weight)  # the gradient for `weight` goes to weight.grad in backward

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple[None, ...]:  # type: ignore[override]
        (indices,) = ctx.saved_tensors  # type: ignore[attr-defined]
        ctx.module.add_grad(indices.reshape(-1), grad.reshape(-1, grad.shape[-1]))  # type: ignore[attr-defined]
        return None, None, None


class Tap(nn.Identity):
    """Names a functional step of forward() (a dot product, a concatenation) so that `rnnzoo summary`
    lists its output shape like a Keras layer. It computes nothing."""


@torch.no_grad()
def init_like_keras(model: nn.Module) -> None:
    """Keras' default initializers, so faithful configs start where the originals started: embeddings
    uniform(-0.05, 0.05); dense and conv kernels Glorot-uniform with zero bias; LSTM input kernels
    Glorot-uniform over all four gates, recurrent kernels orthogonal, biases zero but the forget gate's 1."""
    for module in model.modules():
        if isinstance(module, nn.Embedding):
            nn.init.uniform_(module.weight, -0.05, 0.05)
        elif isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LSTM):
            H = module.hidden_size
            for name, param in module.named_parameters():
                if name.startswith("weight_ih"):
                    nn.init.xavier_uniform_(param)  # (4H, I): fans 4H and I, as Keras' (I, 4H) kernel
                elif name.startswith("weight_hh"):
                    param.copy_(_orthogonal(H, 4 * H).T)  # Keras' recurrent kernel (H, 4H), orthogonal
                elif name.startswith("bias_ih"):
                    param.zero_()
                    param[H:2 * H] = 1.0  # unit forget bias (gate order i, f, g, o in both frameworks)
                elif name.startswith("bias_hh"):
                    param.zero_()


def _orthogonal(rows: int, cols: int) -> Tensor:
    w = torch.empty(rows, cols)
    nn.init.orthogonal_(w)
    return w
