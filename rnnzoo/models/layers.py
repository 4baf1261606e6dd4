"""Keras-like layers shared by the models: LSTM, TimeDistributed, Keras' initialization, and markers for
`rnnzoo summary`.

The aim: recurrent layers as easy to use as dense or convolution layers.
`LSTM` wraps the fused `nn.LSTM` kernel (oneDNN on CPU, cuDNN on GPU) and returns what Keras' LSTM
returns, so a model's forward() reads like the original's layer table. The hand-written fast paths that
some of these layers select live in rnnzoo.kernels, each beside its plain reference.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnzoo.kernels.dropout import dropout_mask
from rnnzoo.kernels.lstm import reference_lstm, stepwise_applies, stepwise_lstm


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


class HardSigmoidLSTM(LSTM):
    """`LSTM` with Keras 2.3's default gate activation, hard_sigmoid, in place of the sigmoid (tf.keras 2 and
    Keras 3 use the sigmoid, as PyTorch's fused kernels do). Same parameters; one layer, one direction;
    the steps written out (`reference_lstm`), so it suits short sequences."""

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        return reference_lstm(self, x, hard_sigmoid, return_sequences=self.return_sequences)  # (B, H) or (B, T, H)


class StepwiseLSTM(LSTM):
    """`LSTM` (same parameters, same results) that trains on the CPU with rnnzoo.kernels.lstm's stepwise
    kernel, where nn.LSTM's CPU training path is slow; elsewhere (evaluation, prediction, a GPU) it is `LSTM`."""

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        if stepwise_applies(self, x):
            return stepwise_lstm(self, x, self.return_sequences)  # (B, H), or (B, T, H)
        return super().forward(x)  # the same, from nn.LSTM


class RecurrentDropoutLSTM(nn.LSTM):
    """Keras' LSTM(units, dropout=p, recurrent_dropout=q) (implementation 2, Keras 2.3's default): one
    mask per sequence on the inputs and one on the previous hidden state, fixed across time steps.
    Returns the last hidden state (B, H).

    A mask on h inside the recurrence rules out the fused kernels (cuDNN, oneDNN), so this runs the steps
    written out (`reference_lstm`) while training; evaluation has no masks and uses the fused kernel."""

    def __init__(self, input_size: int, hidden_size: int, dropout_rate: float, recurrent_dropout_rate: float
                 ) -> None:
        super().__init__(input_size, hidden_size, batch_first=True)
        self.input_dropout_rate = dropout_rate
        self.recurrent_dropout_rate = recurrent_dropout_rate

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        B, T, D = x.shape
        H = self.hidden_size
        if not self.training or (self.input_dropout_rate == 0 and self.recurrent_dropout_rate == 0):
            _, (h, _) = super().forward(x)  # no masks: the same arithmetic, in the fused kernel
            return h[0]  # (B, H)
        return self.step_loop(x, dropout_mask((B, 1, D), self.input_dropout_rate, x),
                              dropout_mask((B, H), self.recurrent_dropout_rate, x))

    def step_loop(self, x: Tensor, input_mask: Tensor, hidden_mask: Tensor) -> Tensor:
        """The LSTM cell written out with the two masks, fixed across time steps; (B, H)."""
        return reference_lstm(self, x, input_mask=input_mask, hidden_mask=hidden_mask)


class TimeDistributed(nn.Module):
    """Apply `layer` to every item of axis 1 at once, by folding that axis into the batch (no Python loop)."""

    keras_name = "TimeDistributed"
    summary_as_layer = True  # one row in `rnnzoo summary`, with the (B, T, ...) output, as Keras shows it

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor) -> Tensor:
        B, T = x.shape[:2]
        y = self.layer(x.reshape(B * T, *x.shape[2:]))  # (B*T, ...)
        return y.reshape(B, T, *y.shape[1:])


class Tap(nn.Identity):
    """Names a functional step of forward() (a dot product, a concatenation) so that `rnnzoo summary`
    lists its output shape as the Keras layer `keras_name` (Dot, Concatenate, ...). It computes nothing."""

    def __init__(self, keras_name: str) -> None:
        super().__init__()
        self.keras_name = keras_name


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
