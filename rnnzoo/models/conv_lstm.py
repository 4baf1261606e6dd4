"""ConvLSTM next-frame predictor: the Keras `conv_lstm.py` example (moving squares, 4 stacked ConvLSTM2D).

Paper: Shi et al. 2015, "Convolutional LSTM Network: A Machine Learning Approach for Precipitation
Nowcasting" (arXiv:1506.04214). The model reads a movie (B, T, 40, 40, 1) and gives, for every frame, the
logits of the next frame: 4 x [ConvLSTM2D(40 filters, 3x3, same) -> BatchNorm] -> Conv3D(1, 3x3x3, same).
The first Keras port reported about 0.026 validation binary cross-entropy after 200 epochs; the results
of this one, faithful and small presets, are in docs/RESULTS.md.

PyTorch has no ConvLSTM layer; `ConvLSTM2D` below is one. A ConvLSTM cell is an LSTM whose matrix products
are convolutions: gates = conv([x_t, h_{t-1}]) = conv_x(x_t) + conv_h(h_{t-1}), split into the input,
forget and output gates (sigmoid) and the candidate (tanh); c_t = f * c_{t-1} + i * g; h_t = o * tanh(c_t).
It runs in rnnzoo.kernels.conv_lstm's hand-written forward and backward (that module says why it is faster;
its `reference_conv_lstm` is the same layer step by step with autograd).

Differences from Keras 2 ConvLSTM2D, on purpose: the gates use the logistic sigmoid (Keras 2 defaulted to
hard_sigmoid for ConvLSTM2D, Keras 3 to sigmoid). Initialization follows Keras: Glorot-uniform input kernel,
orthogonal recurrent kernel (over its (4F, F*k*k) matrix, as Keras over (k*k*F, 4F)), zero bias but 1 for
the forget gate; BatchNorm with Keras' momentum (0.99 -> PyTorch 0.01) and epsilon (1e-3).

Layout: the PyTorch layers (`ConvLSTM2D`, `FrameBatchNorm`) take video as (B, T, C, H, W), as everywhere
in rnnzoo; the blocks that stand for the seed table's rows take and give Keras' channels-last
(B, T, H, W, C), so the model and `rnnzoo summary` read like the original. Both are views of the same
memory, which is time-major and channels-last, (T, B, H, W, C): all frames of a layer are then one
(T*B, C, H, W) channels_last batch for the convolutions and BatchNorm (oneDNN's fastest layout on CPU),
each frame's slice is contiguous, and nothing is copied between layers.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnzoo.kernels.conv3d import time_sliced_conv3d
from rnnzoo.kernels.conv_lstm import conv_lstm, frames, unframes


class ConvLSTM2D(nn.Module):
    """Keras' ConvLSTM2D(filters, kernel_size, padding="same", return_sequences=True):
    (B, T, C, H, W) -> every frame's hidden state (B, T, filters, H, W)."""

    keras_name = "ConvLSTM2D"

    def __init__(self, in_channels: int, filters: int, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"'same' padding needs an odd kernel size, got {kernel_size}")
        self.filters = filters
        # One convolution per operand for all four gates (fused, order i, f, o, g): W_x with the bias, W_h.
        self.input_conv = nn.Conv2d(in_channels, 4 * filters, kernel_size, padding=kernel_size // 2)
        self.recurrent_conv = nn.Conv2d(filters, 4 * filters, kernel_size, padding=kernel_size // 2, bias=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Keras' defaults: Glorot-uniform kernel, orthogonal recurrent kernel, unit forget bias."""
        nn.init.xavier_uniform_(self.input_conv.weight)
        nn.init.orthogonal_(self.recurrent_conv.weight)  # over the (4F, F*k*k) matrix
        self.input_conv.bias.zero_()
        self.input_conv.bias[self.filters:2 * self.filters] = 1.0

    def forward(self, x: Tensor) -> Tensor:
        B, T, C, H, W = x.shape
        return conv_lstm(x, self.input_conv.weight, self.input_conv.bias,
                         self.recurrent_conv.weight)  # (B, T, F, H, W)


class FrameBatchNorm(nn.BatchNorm2d):
    """Keras' BatchNormalization on a video: statistics per channel over batch, frames and pixels.
    `momentum` is Keras' (the weight of the old moving average: 0.99), not PyTorch's (1 - that)."""

    def __init__(self, channels: int, momentum: float = 0.99) -> None:
        super().__init__(channels, eps=1e-3, momentum=1 - momentum)  # Keras' epsilon 1e-3

    def forward(self, x: Tensor) -> Tensor:
        B = x.shape[0]
        return unframes(super().forward(frames(x)), B)  # (B, T, C, H, W)


class ConvLSTMBlock(nn.Module):
    """One row of the seed table, ConvLSTM2D -> BatchNorm, with Keras' channels-last input and output
    (B, T, H, W, C) -> (B, T, H, W, F), so that the model and its summary read like the Keras original;
    (B, T, C, H, W) inside. The permutes are views: no copies."""

    keras_name = "ConvLSTM2D + BatchNormalization"  # one row of the seed table
    summary_as_layer = True

    def __init__(self, in_channels: int, filters: int, kernel_size: int, momentum: float = 0.99) -> None:
        super().__init__()
        self.conv_lstm = ConvLSTM2D(in_channels, filters, kernel_size)
        self.norm = FrameBatchNorm(filters, momentum)

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 1, 4, 2, 3)  # (B, T, C, H, W)
        x = self.norm(self.conv_lstm(x))  # (B, T, F, H, W)
        return x.permute(0, 1, 3, 4, 2)  # (B, T, H, W, F)


class NextFrameConv3d(nn.Module):
    """Keras' Conv3D(1, (3, 3, 3), padding="same") over (frames, height, width), without the sigmoid (the
    model returns logits): (B, T, H, W, F) -> (B, T, H, W, 1).

    With time_padding="same" (the original's) frame t's output also sees the hidden state of frame t+1,
    which has read input frame t+1, nearly the target: a shortcut in training that a rollout, whose last
    frame has no successor, lacks. "causal" pads only the past, so frame t sees frames t-2..t.

    It holds nn.Conv3d's parameters and computes the convolution with rnnzoo.kernels.conv3d's
    `time_sliced_conv3d`: one 2-D convolution over all frames, the same sums as F.conv3d."""

    keras_name = "Conv3D"
    summary_as_layer = True

    def __init__(self, in_channels: int, kernel_size: int = 3, time_padding: str = "same") -> None:
        super().__init__()
        if time_padding not in ("same", "causal"):
            raise ValueError(f"time_padding must be 'same' or 'causal', got {time_padding!r}")
        self.time_pad = (kernel_size // 2, kernel_size // 2) if time_padding == "same" else (kernel_size - 1, 0)
        self.conv = nn.Conv3d(in_channels, 1, kernel_size, padding=(0, kernel_size // 2, kernel_size // 2))
        nn.init.xavier_uniform_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        B, T, H, W, F = x.shape
        return time_sliced_conv3d(x, self.conv.weight, self.conv.bias, self.time_pad)  # (B, T, H, W, 1)


class ConvLSTMNet(nn.Module):
    """The Keras conv_lstm model: movies (B, T, H, W, 1) -> next-frame logits (B, T, H, W, 1)."""

    def __init__(self, filters: int = 40, layers: int = 4, kernel_size: int = 3, channels: int = 1,
                 momentum: float = 0.99, time_padding: str = "same") -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            ConvLSTMBlock(channels if n == 0 else filters, filters, kernel_size, momentum) for n in range(layers))
        self.head = NextFrameConv3d(filters, kernel_size, time_padding)

    def forward(self, movies: Tensor) -> Tensor:
        B, T, H, W, C = movies.shape
        x = movies
        for block in self.blocks:
            x = block(x)  # (B, T, H, W, F)
        return self.head(x)  # (B, T, H, W, 1)
