"""Embedding lookups that compute nn.Embedding's values and gradients faster.

- `KeptGradEmbedding`, for a large table: nn.Embedding's backward allocates and zero-fills a dense
  (num_embeddings, dim) gradient every step (10 MB for IMDB's 20000 x 128 table) to add a batch's few
  thousand rows into it. Here the gradient lives in a buffer kept from step to step, and the backward
  clears only the rows the previous batch touched before adding the new ones. The gradient, and so the
  optimizer's (dense) update, is exactly nn.Embedding's.
- `TimeMajorEmbedding`: the (B, T, D) output lies time-major in memory, a transposed view of (T, B, D).
  That is the layout the fused LSTM kernels read, so an LSTM fed from it (after element-wise steps, which
  keep the layout) needs no transposed copy of its input, nor of that input's gradient.

Reference: `reference_embedding`, nn.Embedding's lookup.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def reference_embedding(embedding: nn.Embedding, indices: Tensor) -> Tensor:
    """nn.Embedding's forward: the rows of `embedding.weight` at `indices`, (..., D)."""
    return nn.Embedding.forward(embedding, indices)


class TimeMajorEmbedding(nn.Embedding):
    """nn.Embedding whose (B, T, D) output is stored (T, B, D), as the fused LSTM kernels read it. Same values
    as nn.Embedding."""

    def forward(self, indices: Tensor) -> Tensor:  # type: ignore[override]
        return super().forward(indices.T.contiguous()).transpose(0, 1)  # (B, T, D), stored (T, B, D)


class KeptGradEmbedding(nn.Embedding):
    """nn.Embedding for a large table whose weight gradient lives in a buffer kept from step to step.

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
