"""ConvLSTM next-frame predictor: the Keras `conv_lstm.py` example (moving squares, 4 stacked ConvLSTM2D).

Paper: Shi et al. 2015, "Convolutional LSTM Network: A Machine Learning Approach for Precipitation
Nowcasting" (arXiv:1506.04214). The model reads a movie (B, T, 40, 40, 1) and gives, for every frame, the
logits of the next frame: 4 x [ConvLSTM2D(40 filters, 3x3, same) -> BatchNorm] -> Conv3D(1, 3x3x3, same).
The first Keras port reported about 0.026 validation binary cross-entropy after 200 epochs; this one, on
the faithful preset, 0.0003 after 12 epochs (H200, about 3 s an epoch), the moving averages of BatchNorm
taking 6 epochs to settle. The small preset (16 filters, 2 blocks, causal Conv3D) continues held-out movies
for 8 frames at IoU 0.53 against the copy-the-last-frame baseline's 0.24.

PyTorch has no ConvLSTM layer; `ConvLSTM2D` below is one. A ConvLSTM cell is an LSTM whose matrix products
are convolutions: gates = conv([x_t, h_{t-1}]) = conv_x(x_t) + conv_h(h_{t-1}), split into the input,
forget and output gates (sigmoid) and the candidate (tanh); c_t = f * c_{t-1} + i * g; h_t = o * tanh(c_t).
`conv_x` does not depend on the recurrence, so it runs once over all frames; only `conv_h` runs per frame.
`ConvLSTMFunction` is the layer's hand-written forward and backward (its docstring says why).
`reference_conv_lstm` is the same layer written step by step with autograd, for the tests.

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

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CL = torch.channels_last


def frames(x: Tensor) -> Tensor:
    """(B, T, C, H, W) -> (T*B, C, H, W): a view when x is stored time-major (a copy otherwise)."""
    B, T, C, H, W = x.shape
    return x.transpose(0, 1).reshape(T * B, C, H, W)


def unframes(x: Tensor, B: int) -> Tensor:
    """(T*B, C, H, W) -> (B, T, C, H, W), a view."""
    return x.reshape(-1, B, *x.shape[1:]).transpose(0, 1)


class ConvLSTMFunction(torch.autograd.Function):
    """A whole ConvLSTM layer, forward and backward written by hand for speed and memory:

    - the input part of the gates, conv_x, runs once over all frames (one (T*B, C, H, W) convolution);
      only conv_h runs per frame. Backward likewise: conv_x's gradients, and conv_h's kernel gradient,
      are each one convolution over all frames, after the loop over frames;
    - the gate activations overwrite the input gates in place, and the gate gradients overwrite the
      activations, so a layer allocates one (T, B, 4F, H, W) buffer instead of ~10 tensors per frame;
    - about 7 element-wise kernels per frame forward and 12 backward, where autograd runs ~30.
    Gate order inside: input, forget, output, candidate (so the three sigmoids are one call). The gradient
    is checked against `reference_conv_lstm` (plain autograd) in the tests. Backward runs once per forward
    (it reuses the forward's buffers: a second one through the same graph raises PyTorch's in-place error).
    Under autocast the whole layer computes in the autocast dtype.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, w_x: Tensor, b_x: Tensor, w_h: Tensor) -> Tensor:
        # x (T, B, C, H, W), w_x (4F, C, k, k), b_x (4F,), w_h (4F, F, k, k) -> hs (T, B, F, H, W)
        ctx.dtypes = (x.dtype, w_x.dtype, b_x.dtype, w_h.dtype)
        kind = x.device.type
        dtype = torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else x.dtype
        with torch.autocast(kind, enabled=False):
            hs = ConvLSTMFunction._forward(ctx, x.to(dtype), w_x.to(dtype), b_x.to(dtype), w_h.to(dtype))
        return hs

    @staticmethod
    def _forward(ctx: Any, x: Tensor, w_x: Tensor, b_x: Tensor, w_h: Tensor) -> Tensor:
        T, B, C, H, W = x.shape
        F4, Fh, pad = w_h.shape[0], w_h.shape[1], w_h.shape[-1] // 2
        x = _channels_last(x.reshape(T * B, C, H, W))  # (T*B, C, H, W), a view after another layer
        # channels_last kernels too, so that every convolution (also the first layer's, whose input has one
        # channel and so no layout of its own) gives channels_last outputs
        w_x, w_h = (w.contiguous(memory_format=CL) for w in (w_x, w_h))
        acts = F.conv2d(x, w_x, b_x, padding=pad)  # (T*B, 4F, H, W) input gates of all frames at once
        acts = acts.contiguous(memory_format=CL).view(T, B, F4, H, W)  # becomes sigmoid(i, f, o), tanh(g)
        hs = x.new_empty((T, B, H, W, Fh)).permute(0, 1, 4, 2, 3)  # (T, B, F, H, W), channels-last frames
        cs = torch.empty_like(hs)
        for t in range(T):
            a = acts[t]  # (B, 4F, H, W)
            if t > 0:
                a.add_(F.conv2d(hs[t - 1], w_h, padding=pad))  # + conv_h(h_{t-1}): the gates
            i, f, o, g = a.chunk(4, dim=1)  # views of a, each (B, F, H, W)
            torch.tanh(g, out=g)
            torch.sigmoid(a[:, :3 * Fh], out=a[:, :3 * Fh])
            torch.mul(i, g, out=cs[t])
            if t > 0:
                cs[t].addcmul_(f, cs[t - 1])  # c_t = f * c_{t-1} + i * g
            torch.mul(o, torch.tanh(cs[t]), out=hs[t])  # h_t = o * tanh(c_t)
        ctx.save_for_backward(x, w_x, w_h, acts, cs, hs)
        return hs

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, dhs: Tensor) -> tuple[Tensor | None, Tensor, Tensor, Tensor]:
        with torch.autocast(dhs.device.type, enabled=False):
            grads = ConvLSTMFunction._backward(ctx, dhs)
        return tuple(g if g is None else g.to(dtype) for g, dtype in zip(grads, ctx.dtypes))  # type: ignore

    @staticmethod
    def _backward(ctx: Any, dhs: Tensor) -> tuple[Tensor | None, Tensor, Tensor, Tensor]:
        x, w_x, w_h, acts, cs, hs = ctx.saved_tensors
        dhs = dhs.to(acts.dtype)
        T, B, F4, H, W = acts.shape
        Fh, pad = F4 // 4, w_h.shape[-1] // 2
        grad = acts.new_empty((B, H, W, F4)).permute(0, 3, 1, 2)  # (B, 4F, H, W): d loss / d activations
        dh = dc = None  # flowing back from frame t+1 into h_t and c_t
        for t in reversed(range(T)):
            a = acts[t]  # activations of frame t; overwritten below by the gates' gradient
            i, f, o, g = a.chunk(4, dim=1)
            di, df, do, dg = grad.chunk(4, dim=1)
            dh_t = dhs[t] if dh is None else dhs[t] + dh  # (B, F, H, W)
            tanh_c = torch.tanh(cs[t])  # recomputed: cheaper than keeping it
            torch.mul(dh_t, tanh_c, out=do)
            dc_t = torch.ops.aten.tanh_backward(dh_t * o, tanh_c)  # through h_t = o * tanh(c_t)
            if dc is not None:
                dc_t.add_(dc)
            torch.mul(dc_t, g, out=di)
            torch.mul(dc_t, i, out=dg)
            if t > 0:
                torch.mul(dc_t, cs[t - 1], out=df)
                dc = dc_t.mul_(f)  # into c_{t-1}
            else:
                df.zero_()  # c_{-1} = 0
            # Through the activations, in place: sigmoid' = y (1 - y) for i, f, o and tanh' = 1 - y^2 for g.
            sig = slice(0, 3 * Fh)
            torch.ops.aten.sigmoid_backward.grad_input(grad[:, sig], a[:, sig], grad_input=a[:, sig])
            torch.ops.aten.tanh_backward.grad_input(dg, g, grad_input=g)
            if t > 0:
                dh = _conv_input_grad(hs[t - 1], w_h, a, pad)  # into h_{t-1}, via conv_h
        dgates = acts.view(T * B, F4, H, W)
        # The kernels' gradients, each one convolution over all frames (conv_h: inputs h_0..h_{T-2}, outputs
        # the gates of frames 1..T-1).
        dx = _conv_input_grad(x, w_x, dgates, pad) if ctx.needs_input_grad[0] else None
        dw_x = torch.nn.grad.conv2d_weight(x, w_x.shape, dgates, padding=pad)
        db_x = dgates.sum(dim=(0, 2, 3))
        if T > 1:
            dw_h = torch.nn.grad.conv2d_weight(hs[:-1].reshape((T - 1) * B, Fh, H, W), w_h.shape,
                                               dgates[B:], padding=pad)
        else:
            dw_h = torch.zeros_like(w_h)
        if dx is not None:
            dx = dx.view(T, B, *x.shape[1:])
        return dx, dw_x, db_x, dw_h


def _channels_last(x: Tensor) -> Tensor:
    """(N, C, H, W) stored and strided channels-last. With one channel both layouts hold the same bytes and
    PyTorch keeps the NCHW strides, but oneDNN picks its layout by the strides: give it NHWC ones."""
    N, C, H, W = x.shape
    x = x.contiguous(memory_format=CL)
    return x if x.stride(1) == 1 else x.as_strided((N, C, H, W), (H * W * C, 1, W * C, C))


def _conv_input_grad(x: Tensor, weight: Tensor, grad_out: Tensor, pad: int) -> Tensor:
    """d loss / d x of conv2d(x, weight, padding=pad). Unlike torch.nn.grad.conv2d_input, which passes a
    stand-in input without a memory layout, this passes x itself, so a channels_last input keeps oneDNN
    on its channels_last path (no copies of the gradient into NCHW and back)."""
    return torch.ops.aten.convolution_backward(grad_out, x, weight, None, [1, 1], [pad, pad], [1, 1], False, [0, 0],
                                               1, [True, False, False])[0]


class ConvLSTM2D(nn.Module):
    """Keras' ConvLSTM2D(filters, kernel_size, padding="same", return_sequences=True):
    (B, T, C, H, W) -> every frame's hidden state (B, T, filters, H, W)."""

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
        hs = ConvLSTMFunction.apply(x.transpose(0, 1), self.input_conv.weight, self.input_conv.bias,
                                    self.recurrent_conv.weight)  # (T, B, F, H, W)
        return hs.transpose(0, 1)  # (B, T, F, H, W)


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

    It holds nn.Conv3d's parameters but computes the convolution as one 2-D convolution over all frames,
    with one filter per time slice of the kernel, then adds each frame's k time-shifted results: the same
    sums (tested against F.conv3d), 5.6x faster forward and backward on the CPU for the full model's
    (10, 15, 40, 40, 40) input (0.2 against 0.04 s on 2 threads), where oneDNN's 3-D path with a single output
    channel took 0.16 s of a profiled 3.1 s training step."""

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
        B, T, H, W, C = x.shape
        k = self.conv.kernel_size[0]
        slices = self.conv.weight[0].transpose(0, 1)  # (k, F, k, k): the kernel's time slices as k filters
        per_slice = F.conv2d(frames(x.permute(0, 1, 4, 2, 3)), slices, padding=k // 2)  # (T*B, k, H, W)
        padded = F.pad(per_slice.view(T, B, k, H, W), (0,) * 8 + self.time_pad)  # (T + k - 1, B, k, H, W)
        # output frame t: time slice dt of the kernel over input frame t + dt - (frames padded in front)
        y = sum(padded[dt:dt + T, :, dt] for dt in range(k)) + self.conv.bias.to(padded.dtype)  # (T, B, H, W)
        return y.permute(1, 0, 2, 3).unsqueeze(-1)  # (B, T, H, W, 1)


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


def reference_conv_lstm(layer: ConvLSTM2D, x: Tensor) -> Tensor:
    """`layer` step by step with autograd, gates from one convolution over [x_t, h_{t-1}] (for the tests):
    (B, T, C, H, W) -> (B, T, F, H, W)."""
    B, T, C, H, W = x.shape
    Fh = layer.filters
    weight = torch.cat([layer.input_conv.weight, layer.recurrent_conv.weight], dim=1)  # (4F, C + F, k, k)
    h = x.new_zeros(B, Fh, H, W)
    c = x.new_zeros(B, Fh, H, W)
    out = []
    for t in range(T):
        gates = F.conv2d(torch.cat([x[:, t], h], dim=1), weight, layer.input_conv.bias,
                         padding=weight.shape[-1] // 2)  # (B, 4F, H, W)
        i, f, o, g = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        out.append(h)
    return torch.stack(out, dim=1)
