"""A whole ConvLSTM layer with its forward and backward written by hand.

A ConvLSTM cell is an LSTM whose matrix products are convolutions: gates = conv([x_t, h_{t-1}]) =
conv_x(x_t) + conv_h(h_{t-1}), split into the input, forget and output gates (sigmoid) and the candidate
(tanh); c_t = f * c_{t-1} + i * g; h_t = o * tanh(c_t).

`conv_lstm` (through `ConvLSTMFunction`) is faster and lighter than autograd over the cell:

- the input part of the gates, conv_x, does not depend on the recurrence, so it runs once over all frames
  (one (T*B, C, H, W) convolution); only conv_h runs per frame. Backward likewise: conv_x's gradients, and
  conv_h's kernel gradient, are each one convolution over all frames, after the loop over frames;
- the gate activations overwrite the input gates in place, and the gate gradients overwrite the
  activations, so a layer allocates one (T, B, 4F, H, W) buffer instead of ~10 tensors per frame;
- about 7 element-wise kernels per frame forward and 12 backward, where autograd runs ~30;
- everything is time-major and channels-last, (T, B, H, W, C): all frames of a layer are one
  (T*B, C, H, W) channels_last batch (oneDNN's fastest layout on CPU), and each frame's slice is contiguous.

Reference: `reference_conv_lstm`, the cell step by step with autograd, its gates from one convolution over
[x_t, h_{t-1}].
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

CL = torch.channels_last


def frames(x: Tensor) -> Tensor:
    """(B, T, C, H, W) -> (T*B, C, H, W): a view when x is stored time-major (a copy otherwise)."""
    B, T, C, H, W = x.shape
    return x.transpose(0, 1).reshape(T * B, C, H, W)


def unframes(x: Tensor, B: int) -> Tensor:
    """(T*B, C, H, W) -> (B, T, C, H, W), a view."""
    return x.reshape(-1, B, *x.shape[1:]).transpose(0, 1)


class ConvLSTMFunction(torch.autograd.Function):
    """A whole ConvLSTM layer, forward and backward written by hand for speed and memory (how: the module
    docstring); x and the hidden states are time-major, (T, B, C, H, W) and (T, B, F, H, W).
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


def conv_lstm(x: Tensor, w_x: Tensor, b_x: Tensor, w_h: Tensor) -> Tensor:
    """A ConvLSTM layer ('same' padding, zero initial state) over a video x (B, T, C, H, W), with input
    kernel w_x (4F, C, k, k) and its bias b_x (4F,), recurrent kernel w_h (4F, F, k, k), gates in the order
    i, f, o, g: every frame's hidden state (B, T, F, H, W).

    Under torch.export (which `rnnzoo export` runs for ONNX) the layer is `scan_conv_lstm`, the plain cell:
    ConvLSTMFunction's buffers written in place trace into a graph of scatters, and its loop over the frames
    into a graph of one fixed length."""
    if torch.compiler.is_exporting():
        return scan_conv_lstm(x, w_x, b_x, w_h)
    hs = ConvLSTMFunction.apply(x.transpose(0, 1), w_x, b_x, w_h)  # (T, B, F, H, W)
    return hs.transpose(0, 1)  # (B, T, F, H, W)


def reference_conv_lstm(x: Tensor, w_x: Tensor, b_x: Tensor, w_h: Tensor) -> Tensor:
    """`conv_lstm` step by step with autograd, gates from one convolution over [x_t, h_{t-1}]:
    (B, T, C, H, W) -> (B, T, F, H, W)."""
    B, T, C, H, W = x.shape
    Fh = w_h.shape[1]
    weight = torch.cat([w_x, w_h], dim=1)  # (4F, C + F, k, k)
    h = x.new_zeros(B, Fh, H, W)
    c = x.new_zeros(B, Fh, H, W)
    out = []
    for t in range(T):
        gates = F.conv2d(torch.cat([x[:, t], h], dim=1), weight, b_x,
                         padding=weight.shape[-1] // 2)  # (B, 4F, H, W)
        i, f, o, g = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        out.append(h)
    return torch.stack(out, dim=1)


def scan_conv_lstm(x: Tensor, w_x: Tensor, b_x: Tensor, w_h: Tensor) -> Tensor:
    """`reference_conv_lstm`'s cell as one torch scan over the frames: (B, T, C, H, W) -> (B, T, F, H, W).
    An exported graph holds it as one loop (ONNX's Scan), so that the number of frames stays an input's
    size rather than the length of the trace. For export, not training: torch's scan is a prototype."""
    from torch._higher_order_ops.scan import scan  # torch's only scan; imported where export needs it

    B, T, C, H, W = x.shape
    weight = torch.cat([w_x, w_h], dim=1)  # (4F, C + F, k, k)
    pad = weight.shape[-1] // 2

    def step(state: tuple[Tensor, Tensor], x_t: Tensor) -> tuple[tuple[Tensor, Tensor], Tensor]:
        h, c = state  # (B, F, H, W) each
        gates = F.conv2d(torch.cat([x_t, h], dim=1), weight, b_x, padding=pad)  # (B, 4F, H, W)
        i, f, o, g = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return (h, c), h.clone()  # scan's outputs may not alias its state

    h0 = x.new_zeros(B, w_h.shape[1], H, W)
    _, hs = scan(step, (h0, h0.clone()), x.transpose(0, 1))  # (T, B, F, H, W)
    return hs.transpose(0, 1)  # (B, T, F, H, W)
