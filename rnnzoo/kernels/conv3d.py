"""A 3-D convolution with one output channel, computed as one 2-D convolution over all frames.

`time_sliced_conv3d` convolves every frame at once with k filters, one per time slice of the (1, C, k, k, k)
kernel, then adds each output frame's k time-shifted results: the same sums as F.conv3d over the
time-padded video. oneDNN's 3-D path with a single output channel is slow on the CPU; its 2-D path with
k output channels, over a (T*B, C, H, W) batch of frames, is fast, forward and backward.

Reference: `reference_conv3d`, F.conv3d over the time-padded video.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from rnnzoo.kernels.conv_lstm import frames


def time_sliced_conv3d(x: Tensor, weight: Tensor, bias: Tensor, time_pad: tuple[int, int]) -> Tensor:
    """Conv3D of a channels-last video x (B, T, H, W, C) with weight (1, C, k, k, k) and bias (1,), 'same'
    padding in height and width and `time_pad` (frames before, frames after) in time: (B, T, H, W, 1)."""
    B, T, H, W, C = x.shape
    k = weight.shape[2]
    slices = weight[0].transpose(0, 1)  # (k, C, k, k): the kernel's time slices as k filters
    per_slice = F.conv2d(frames(x.permute(0, 1, 4, 2, 3)), slices, padding=k // 2)  # (T*B, k, H, W)
    padded = F.pad(per_slice.view(T, B, k, H, W), (0,) * 8 + time_pad)  # (T + k - 1, B, k, H, W)
    # output frame t: time slice dt of the kernel over input frame t + dt - (frames padded in front)
    y = sum(padded[dt:dt + T, :, dt] for dt in range(k)) + bias.to(padded.dtype)  # (T, B, H, W)
    return y.permute(1, 0, 2, 3).unsqueeze(-1)  # (B, T, H, W, 1)


def reference_conv3d(x: Tensor, weight: Tensor, bias: Tensor, time_pad: tuple[int, int]) -> Tensor:
    """`time_sliced_conv3d` as F.conv3d over the time-padded video: (B, T, H, W, C) -> (B, T, H, W, 1)."""
    k = weight.shape[2]
    padded = F.pad(x.permute(0, 4, 1, 2, 3), (0, 0, 0, 0, *time_pad))  # (B, C, T + k - 1, H, W)
    y = F.conv3d(padded, weight, bias, padding=(0, k // 2, k // 2))  # (B, 1, T, H, W)
    return y.permute(0, 2, 3, 4, 1)  # (B, T, H, W, 1)
