"""Inverted dropout with masks drawn from bit lanes of random words.

`dropout_mask` gives the same kind of mask as `reference_dropout_mask` (0 with probability p, else
1 / (1 - p)): on the CPU each element takes one 8- or 16-bit lane of a 64-bit random integer, eight or four
elements per draw, where the reference draws one uniform float per element; and the comparison writes into
the float mask, without a bool tensor in between. The masks are a large share of a bAbI training step,
whose (B, story, 64) embeddings are each dropped. On other devices it is the reference.

`LaneDropout` is nn.Dropout with that mask (Keras' Dropout layer); with inplace=True it overwrites its
input, which spares writing a second tensor when nothing else reads the input.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def reference_dropout_mask(shape: tuple[int, ...], p: float, like: Tensor) -> Tensor:
    """Inverted-dropout mask of `shape` from one uniform draw per element: 0 with probability p, else
    1 / (1 - p), in the dtype and on the device of `like`."""
    if p >= 1:
        return like.new_zeros(shape)
    return (torch.rand(shape, device=like.device) >= p).to(like.dtype).mul_(1.0 / (1.0 - p))


def dropout_mask(shape: tuple[int, ...], p: float, like: Tensor) -> Tensor:
    """`reference_dropout_mask`'s mask with its random bits drawn in lanes on the CPU.

    8 bits serve a rate that is a multiple of 1/256 (0.25, 0.5) exactly; any other rate is rounded to a
    multiple of 1/65536 (0.3 becomes 0.300003)."""
    if p >= 1 or like.device.type != "cpu":
        return reference_dropout_mask(shape, p, like)
    lane = torch.int8 if (p * 256).is_integer() else torch.int16
    bits = torch.iinfo(lane).bits
    n, per_word = math.prod(shape), 64 // bits
    words = torch.randint(-2**63, 2**63 - 1, ((n + per_word - 1) // per_word,), dtype=torch.int64)
    lanes = words.view(lane)[:n].view(shape)  # uniform over the lane's integers, -2**(bits-1) and up
    mask = torch.empty(shape, dtype=like.dtype)
    torch.ge(lanes, round(p * 2**bits) - 2**(bits - 1), out=mask)  # 1.0 or 0.0, without a bool tensor
    return mask.mul_(1.0 / (1.0 - p))


class LaneDropout(nn.Dropout):
    """nn.Dropout (inverted dropout: keep with probability 1 - p, scale by 1 / (1 - p)) with the mask of
    `dropout_mask`. With inplace=True, as nn.Dropout, it overwrites its input: for a tensor that nothing
    else reads, such as a fresh embedding lookup, that spares writing a second copy."""

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        mask = dropout_mask(x.shape, self.p, x)
        return x.mul_(mask) if self.inplace else x * mask
