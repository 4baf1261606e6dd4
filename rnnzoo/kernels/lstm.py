"""LSTM layers that compute what the plain LSTM cell computes, faster where PyTorch's own paths are slow.

- `stepwise_lstm`: one batch-first LSTM layer trained on the CPU with its forward and backward written
  out. nn.LSTM's CPU training path allocates its buffers so that it page-faults on tens of MB every batch;
  this path keeps every per-step tensor small (the allocator reuses them), lays the state out as (H, N) so
  that each gate is one contiguous block (and the three sigmoid gates one block), and fuses input,
  recurrent and bias weights into one matrix, so that a step is one matrix product forward and two
  backward. `stepwise_applies` says when it runs: with gradients, on the CPU, for one layer in one direction.
- `WeightDropLSTM`: a per-sequence dropout mask on the inputs (as Keras' `dropout`) and DropConnect on the
  hidden-to-hidden weights (Wan et al. 2013, as in Merity et al. 2017's AWD-LSTM) in place of Keras'
  `recurrent_dropout`. A mask on the hidden state inside the recurrence rules out the fused kernels (cuDNN,
  oneDNN); a mask on the weights, drawn once per batch, does not, so the whole sequence runs in one fused
  kernel call instead of a Python loop over the steps.

Reference: `reference_lstm`, the LSTM cell written out step by step with autograd, gates fused as in
nn.LSTM (order i, f, g, o). It also runs what the fused kernels cannot: another gate activation, or
dropout masks held fixed across the time steps (Keras' dropout and recurrent_dropout).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx, once_differentiable

from rnnzoo.kernels.dropout import dropout_mask


def reference_lstm(lstm: nn.LSTM, x: Tensor, gate: Callable[[Tensor], Tensor] = torch.sigmoid,
                   input_mask: Tensor | None = None, hidden_mask: Tensor | None = None,
                   return_sequences: bool = False, weight_hh: Tensor | None = None) -> Tensor:
    """One batch-first LSTM layer (`lstm`'s parameters, or `weight_hh` in place of its recurrent weights)
    step by step from a zero state: the last hidden state (B, H), or every step's (B, T, H)."""
    B, T, _ = x.shape
    if weight_hh is None:
        weight_hh = lstm.weight_hh_l0
    if input_mask is not None:
        x = x * input_mask
    xw = F.linear(x, lstm.weight_ih_l0, lstm.bias_ih_l0 + lstm.bias_hh_l0)  # (B, T, 4H)
    h = c = x.new_zeros(B, lstm.hidden_size)  # (B, H)
    steps = []
    for t in range(T):
        recurrent = h if hidden_mask is None else h * hidden_mask
        i, f, g, o = (xw[:, t] + F.linear(recurrent, weight_hh)).chunk(4, dim=1)  # (B, H) each
        c = gate(f) * c + gate(i) * g.tanh()  # (B, H)
        h = gate(o) * c.tanh()  # (B, H)
        if return_sequences:
            steps.append(h)
    return torch.stack(steps, dim=1) if return_sequences else h  # (B, T, H) or (B, H)


# --- the stepwise CPU training path -------------------------------------------------------------------------


def stepwise_applies(lstm: nn.LSTM, x: Tensor) -> bool:
    """Whether `stepwise_lstm` runs `lstm` on `x`: on the CPU, with gradients, for one layer in one direction
    (float32 or float64, at least one step). Elsewhere (evaluation, prediction, cuDNN) nn.LSTM is as fast."""
    params = (lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)
    return (x.device.type == "cpu" and torch.is_grad_enabled() and not lstm.bidirectional and lstm.num_layers == 1
            and x.dtype in (torch.float32, torch.float64) and x.shape[1] > 0
            and (x.requires_grad or any(p.requires_grad for p in params)))


def stepwise_lstm(lstm: nn.LSTM, x: Tensor, return_sequences: bool) -> Tensor:
    """`lstm` (one batch-first layer, one direction) over x (B, T, D) from a zero state, forward and backward
    written out: the last hidden state (B, H), or every step's (B, T, H)."""
    return _LSTMSteps.apply(x, lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0,
                            return_sequences)


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


# --- DropConnect in the fused kernel ------------------------------------------------------------------------


class WeightDropLSTM(nn.LSTM):
    """LSTM with a per-sequence dropout mask on its inputs (as Keras' `dropout`) and DropConnect on the
    hidden-to-hidden weights (in place of Keras' `recurrent_dropout`), in the fused kernel. Returns the
    last hidden state (B, H). Reference: `reference_lstm` with the input mask and the dropped `weight_hh`."""

    def __init__(self, input_size: int, hidden_size: int, dropout_rate: float, weight_dropout_rate: float
                 ) -> None:
        super().__init__(input_size, hidden_size, batch_first=True)
        self.input_dropout_rate = dropout_rate
        self.weight_dropout_rate = weight_dropout_rate

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        B, T, D = x.shape
        weight_hh = self.weight_hh_l0
        if self.training:
            x = x * dropout_mask((B, 1, D), self.input_dropout_rate, x)  # (B, T, I)
            weight_hh = weight_hh * dropout_mask(weight_hh.shape, self.weight_dropout_rate, x)  # (4H, H), once a batch
        h0 = x.new_zeros(1, B, self.hidden_size)
        weights = [self.weight_ih_l0, weight_hh, self.bias_ih_l0, self.bias_hh_l0]
        # nn.LSTM.forward's own call, with the dropped weight in place of the parameter: the fused kernel
        # (arguments: has_biases, num_layers, dropout between layers, train, bidirectional, batch_first).
        # cuDNN copies weights that are not in nn.LSTM's flat buffer (a dropped weight never is) and warns
        # that this costs memory; for one (4H, H) matrix per batch the copy is what DropConnect needs.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous")
            _, h, _ = torch._VF.lstm(x, (h0, h0), weights, True, 1, 0.0, self.training, False, True)
        return h[0]  # (B, H)
