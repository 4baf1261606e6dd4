"""Hierarchical RNN for MNIST digits: a port of Keras' `mnist_hierarchical_rnn.py`.

One LSTM reads each 28-pixel row of the image, left to right, one pixel per step, and encodes it into a
128-vector (the same LSTM for every row, Keras' TimeDistributed); a second LSTM reads the 28 row codes top
to bottom into a 128-vector image code; a dense layer gives the digit. After Hihi & Bengio (1996),
"Hierarchical recurrent neural networks for long-term dependencies", and Tang, Qin & Liu (2015),
"Document modeling with gated recurrent neural network for sentiment classification". The Keras example
reports 98.64% test accuracy after 5 epochs (rmsprop, batch 32); this port 98.65% (mean of 2 seeds,
README, Results).

Training on the CPU is dominated by the row LSTM (32 x 28 = 896 sequences of 28 steps per batch), so its
LSTMs train with `StepwiseLSTM`, a CPU training path about 2x as fast as `nn.LSTM`'s (measured: README,
Speed; how: its docstring).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx, once_differentiable

from rnnzoo.models.layers import LSTM, TimeDistributed, init_like_keras


class HierarchicalRNN(nn.Module):
    def __init__(self, channels: int = 1, row_hidden: int = 128, column_hidden: int = 128,
                 num_classes: int = 10) -> None:
        super().__init__()
        # Each row is a sequence of pixels with `channels` features: the Keras LSTM inside TimeDistributed sees
        # slices of shape (columns, channels).
        self.row_lstm = TimeDistributed(StepwiseLSTM(channels, row_hidden))
        self.column_lstm = StepwiseLSTM(row_hidden, column_hidden)
        self.dense = nn.Linear(column_hidden, num_classes)
        init_like_keras(self)

    def forward(self, image: Tensor) -> Tensor:
        B, R, C, P = image.shape  # batch, rows (28), columns (28), pixel channels (1)
        rows = self.row_lstm(image)  # (B, 28, 128): one LSTM call over B*28 rows of 28 pixels each
        code = self.column_lstm(rows)  # (B, 128)
        return self.dense(code)  # (B, 10) logits


class StepwiseLSTM(LSTM):
    """`LSTM` (same parameters, same results) that runs on the CPU with its steps written out.

    `nn.LSTM`'s CPU training path allocates its buffers so that it page-faults on tens of MB every batch
    (here about 40% of a training step was system time). This path keeps every per-step tensor small (the
    allocator reuses them), lays the state out as (H, N) so that each gate is one contiguous block (and
    the three sigmoid gates one block), and fuses input, recurrent and bias weights into one matrix, so
    that a step is one matrix product forward and two backward. Without gradients (evaluation,
    prediction), on a GPU (cuDNN), and for bidirectional or stacked layers, it is `nn.LSTM`.
    """

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        params = (self.weight_ih_l0, self.weight_hh_l0, self.bias_ih_l0, self.bias_hh_l0)
        if (x.device.type == "cpu" and torch.is_grad_enabled() and not self.bidirectional and self.num_layers == 1
                and x.dtype in (torch.float32, torch.float64) and x.shape[1] > 0
                and (x.requires_grad or any(p.requires_grad for p in params))):
            return _LSTMSteps.apply(x, *params, self.return_sequences)  # (B, H), or (B, T, H)
        return super().forward(x)  # the same, from nn.LSTM


def fuse_weights(w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor) -> Tensor:
    """W = [W_ih | W_hh | b_ih + b_hh] (4H, D+H+1) for D input features, its gates reordered to (i, f, o, g):
    a step's gates are W @ [x_t; h_(t-1); 1]."""
    return _swap_o_g(torch.cat([w_ih, w_hh, (b_ih + b_hh)[:, None]], dim=1))


def _swap_o_g(w: Tensor) -> Tensor:
    """PyTorch's gate order (i, f, g, o) <-> (i, f, o, g), which makes the sigmoid gates one block."""
    i, f, g, o = w.chunk(4, dim=0)
    return torch.cat([i, f, o, g], dim=0)


def _run_steps(x: Tensor, W: Tensor, return_sequences: bool, saved: list[Tensor]) -> Tensor:
    """The forward pass of one batch-first LSTM layer from a zero state, the batch on the last axis inside.
    Appends z_t = [x_t; h_(t-1); 1], the activated gates, c_(t-1) and tanh(c_t) of every step to `saved`,
    then z_T (which holds h_T), for the backward pass."""
    N, T, D = x.shape
    H = W.shape[1] - D - 1
    xs = x.permute(1, 2, 0)  # (T, D, N)
    z = x.new_empty(D + H + 1, N)
    z[:D] = xs[0]
    z[D:D + H] = 0
    z[D + H] = 1
    c = x.new_zeros(H, N)
    hs: list[Tensor] = []
    for t in range(T):
        gates = torch.mm(W, z)  # (4H, N)
        gates[:3 * H].sigmoid_()  # input, forget and output gates
        gates[3 * H:].tanh_()  # candidate cell
        i, f, o, g = gates.chunk(4, dim=0)  # (H, N) each
        c_prev, c = c, f * c
        c.addcmul_(i, g)
        tanh_c = torch.tanh(c)
        saved += [z, gates, c_prev, tanh_c]
        z = x.new_empty(D + H + 1, N)
        h = torch.mul(o, tanh_c, out=z[D:D + H])  # h_t, stored where step t+1 reads it
        if return_sequences:
            hs.append(h)
        if t + 1 < T:
            z[:D] = xs[t + 1]
            z[D + H] = 1
    saved.append(z)
    if return_sequences:
        return torch.stack(hs).permute(2, 0, 1).contiguous()  # (N, T, H)
    return z[D:D + H].t().contiguous()  # (N, H)


class _LSTMSteps(torch.autograd.Function):
    """`_run_steps` with its backward pass: per step, the gates' gradients, then one product for the
    weights' gradient and one for the inputs' ([dx_t; dh_(t-1)])."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor,
                return_sequences: bool) -> Tensor:
        W = fuse_weights(w_ih, w_hh, b_ih, b_hh)
        saved: list[Tensor] = []
        out = _run_steps(x, W, return_sequences, saved)
        ctx.save_for_backward(W, *saved)
        ctx.sizes = (*x.shape, w_hh.shape[1])
        ctx.return_sequences = return_sequences
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad: Tensor) -> tuple[Tensor | None, ...]:
        W, *saved = ctx.saved_tensors
        N, T, D, H = ctx.sizes
        per_step = grad.permute(1, 2, 0) if ctx.return_sequences else None  # (T, H, N)
        dh = grad.new_zeros(H, N) if per_step is not None else grad.t().contiguous()
        dc = grad.new_zeros(H, N)
        tmp = grad.new_empty(H, N)
        d_gates = grad.new_empty(4 * H, N)  # gradients of the gates' pre-activations, reused every step
        d_sig, dg = d_gates[:3 * H], d_gates[3 * H:]
        di, df, do, _ = d_gates.chunk(4, dim=0)
        dW = torch.zeros_like(W)
        dx = grad.new_empty(T, D, N) if ctx.needs_input_grad[0] else None
        for t in reversed(range(T)):
            z, gates, c_prev, tanh_c = saved[4 * t:4 * t + 4]
            h = saved[4 * t + 4][D:D + H]  # h_t = o * tanh(c_t)
            if per_step is not None:
                dh = dh + per_step[t]
            i, f, o, g = gates.chunk(4, dim=0)
            torch.mul(dh, tanh_c, out=do)  # through h = o * tanh(c): d(o) = dh * tanh(c)
            dc.addcmul_(dh, o)
            dc.addcmul_(do, h, value=-1)  # dc += dh * o * (1 - tanh(c)^2), as dh*tanh(c) * o*tanh(c) = do * h
            torch.mul(dc, g, out=di)  # through c = f * c_prev + i * g
            torch.mul(dc, c_prev, out=df)
            d_sig.mul_(gates[:3 * H])
            d_sig.addcmul_(d_sig, gates[:3 * H], value=-1)  # sigmoid' = s(1 - s), the three gates at once
            torch.mul(dc, i, out=dg)
            torch.mul(dg, g, out=tmp)
            dg.addcmul_(tmp, g, value=-1)  # tanh' = 1 - g^2
            dc.mul_(f)
            dW.addmm_(d_gates, z.t())  # (4H, D+H+1)
            if t or dx is not None:
                dz = torch.mm(W.t(), d_gates)  # (D+H+1, N): [dx_t; dh_(t-1); -]
                if dx is not None:
                    dx[t] = dz[:D]
                dh = dz[D:D + H]
        dW = _swap_o_g(dW)  # back to PyTorch's gate order
        d_x = dx.permute(2, 0, 1) if dx is not None else None  # (N, T, D)
        d_b = dW[:, D + H].contiguous()
        return d_x, dW[:, :D].contiguous(), dW[:, D:D + H].contiguous(), d_b, d_b.clone(), None
