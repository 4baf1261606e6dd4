"""Keras' Conv1D and MaxPooling1D on (B, T, C) sequences, run as 2-D operations on that same memory.

A (B, T, C) tensor in memory is a channels-last image (B, C, 1, T) of height 1. `ChannelsLastConv1d` and
`ChannelsLastMaxPool1d` convolve and pool that view with oneDNN's channels-last 2-D kernels, so that neither
the input, the output nor their gradients are copied into nn.Conv1d's (B, C, T) layout and back.

References: `reference_conv1d` and `reference_max_pool1d`, nn.Conv1d's and nn.MaxPool1d's operations on
the transposed (B, C, T) sequence.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ChannelsLastConv1d(nn.Conv1d):
    """nn.Conv1d's parameters, 'valid' padding, on (B, T, C) sequences: (B, T, C) -> (B, T - k + 1, filters)."""

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        image = x.transpose(1, 2).unsqueeze(2)  # (B, C, 1, T), a view: channels-last in memory
        kernel = self.weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)  # (filters, C, 1, k)
        y = F.conv2d(image, kernel, self.bias)  # (B, filters, 1, T - k + 1), channels-last
        return y.squeeze(2).transpose(1, 2)  # (B, T - k + 1, filters), contiguous


class ChannelsLastMaxPool1d(nn.MaxPool1d):
    """nn.MaxPool1d's windows on (B, T, C) sequences: (B, T, C) -> (B, T // pool, C) for stride = window."""

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        image = x.transpose(1, 2).unsqueeze(2)  # (B, C, 1, T), a view: channels-last in memory
        y = F.max_pool2d(image, (1, self.kernel_size), (1, self.stride), (0, self.padding), (1, self.dilation),
                         self.ceil_mode)  # (B, C, 1, T // pool), channels-last
        return y.squeeze(2).transpose(1, 2)  # (B, T // pool, C)


def reference_conv1d(conv: nn.Conv1d, x: Tensor) -> Tensor:
    """nn.Conv1d's forward on the (B, C, T) transpose of x (B, T, C), transposed back: (B, T', filters)."""
    return nn.Conv1d.forward(conv, x.transpose(1, 2)).transpose(1, 2)


def reference_max_pool1d(pool: nn.MaxPool1d, x: Tensor) -> Tensor:
    """nn.MaxPool1d's forward on the (B, C, T) transpose of x (B, T, C), transposed back: (B, T', C)."""
    return nn.MaxPool1d.forward(pool, x.transpose(1, 2)).transpose(1, 2)
