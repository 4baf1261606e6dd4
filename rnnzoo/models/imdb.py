"""Binary sentiment of IMDB reviews: ports of Keras' `imdb_lstm.py`, `imdb_cnn_lstm.py` and
`imdb_bidirectional_lstm.py`.

All three read word indices (Embedding(20000, 128)) and end in one unit whose sigmoid is the probability
that the review is positive. Dataset: Maas et al. 2011, "Learning Word Vectors for Sentiment Analysis".
What the originals reach on the 25,000 test reviews (the Keras scripts' own notes):

* `ImdbLSTM` (maxlen 80, LSTM(128, dropout=0.2, recurrent_dropout=0.2), 15 epochs): the script states
  no figure.
* `ImdbCnnLSTM` (maxlen 100, Conv1D + MaxPooling1D + LSTM(70)): 0.8498 after 2 epochs.
* `ImdbBidirectionalLSTM` (maxlen 100, Bidirectional(LSTM(64))): about 0.8146 after 4 epochs.

Every model returns logits (B,); the sigmoid belongs to the loss (binary cross-entropy with logits, which
is exact where sigmoid-then-log underflows) and to prediction.

The LSTM of imdb_lstm, two ways (`regularization`):

* "recurrent_dropout" (`RecurrentDropoutLSTM`): Keras' own. `dropout` multiplies each sequence's inputs
  by one mask for all time steps, `recurrent_dropout` each sequence's previous hidden state h by one mask
  for all steps. A mask on h inside the recurrence rules out the fused kernels (cuDNN, oneDNN), so this
  runs an explicit step loop while training; evaluation has no masks and uses the fused kernel.
* "fused" (`WeightDropLSTM`): the same per-sequence input mask, and DropConnect (Wan et al. 2013, as in
  Merity et al. 2017's AWD-LSTM) in place of the mask on h: the hidden-to-hidden weights are dropped once
  per batch, then the whole sequence runs in the fused kernel.

Both keep nn.LSTM's parameters (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0), so a checkpoint of
one loads into the other. The default is "fused", measured (2026-11, torch 2.11, one seed each unless
said; the later full 15-epoch CPU trainings, seed 0, agree: fused 0.8368, recurrent_dropout 0.8353):

| imdb_lstm | fused | recurrent_dropout |
| --- | --- | --- |
| `rnnzoo bench`, H200 | 11,327 samples/s | 732 samples/s |
| `rnnzoo bench`, 2 CPU threads | 1,169 samples/s | 324 samples/s |
| one epoch of 22,500 reviews, H200 | 2.3 s | 31 s |
| test accuracy at the best validation epoch, seed 0 | 0.8360 (epoch 2 of 15) | 0.8276 (epoch 3 of 6) |
| the same, seed 1 (3 epochs each) | 0.8337 (epoch 2) | 0.8244 (epoch 3) |

Both overfit after epoch 2-3 (training accuracy 0.99 by epoch 10), so the 15 epochs of the original add
nothing once the best validation epoch is kept. Measured alongside on the H200: imdb_cnn_lstm 0.8507
after 2 epochs (the original: 0.8498), imdb_bidirectional_lstm 0.8516 (best epoch 1 of 4).
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnzoo.models.layers import LSTM, Dropout, KeptGradEmbedding, Tap, dropout_mask, init_like_keras, lstm_steps

Regularization = Literal["fused", "recurrent_dropout"]


class RecurrentDropoutLSTM(nn.LSTM):
    """Keras' LSTM(units, dropout=p, recurrent_dropout=q) (implementation 2, Keras 2.3's default): one
    mask per sequence on the inputs and one on the previous hidden state, fixed across time steps.
    Returns the last hidden state (B, H)."""

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
        return lstm_steps(self, x, input_mask=input_mask, hidden_mask=hidden_mask)


class WeightDropLSTM(nn.LSTM):
    """LSTM with a per-sequence dropout mask on its inputs (as Keras' `dropout`) and DropConnect on the
    hidden-to-hidden weights (in place of Keras' `recurrent_dropout`), in the fused kernel. Returns the
    last hidden state (B, H)."""

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


class ImdbLSTM(nn.Module):
    """imdb_lstm: Embedding(20000, 128) -> LSTM(128, dropout 0.2, recurrent dropout 0.2) -> Dense(1)."""

    def __init__(self, num_words: int, embedding_dim: int = 128, lstm_size: int = 128, dropout_rate: float = 0.2,
                 recurrent_dropout_rate: float = 0.2, regularization: Regularization = "fused") -> None:
        super().__init__()
        self.embedding = KeptGradEmbedding(num_words, embedding_dim)
        if regularization == "fused":
            self.lstm: nn.LSTM = WeightDropLSTM(embedding_dim, lstm_size, dropout_rate, recurrent_dropout_rate)
        elif regularization == "recurrent_dropout":
            self.lstm = RecurrentDropoutLSTM(embedding_dim, lstm_size, dropout_rate, recurrent_dropout_rate)
        else:
            raise ValueError(f"regularization must be 'fused' or 'recurrent_dropout', got {regularization!r}")
        self.dense = nn.Linear(lstm_size, 1)
        init_like_keras(self)

    def forward(self, tokens: Tensor) -> Tensor:
        B, T = tokens.shape
        x = self.embedding(tokens)  # (B, 80, 128)
        x = self.lstm(x)  # (B, 128)
        return self.dense(x).squeeze(-1)  # (B, 1) -> (B,) logits


class Conv1D(nn.Conv1d):
    """Keras' Conv1D on (B, T, C) sequences, 'valid' padding.

    (B, T, C) in memory is a channels-last image of height 1, so the convolution runs as a 2-D one on that
    layout: oneDNN's channels-last kernels, with no transposed copies on the way in or out (a step of
    imdb_cnn_lstm on 1 CPU thread: 15 ms, against 19.5 ms through nn.Conv1d's (B, C, T))."""

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        image = x.transpose(1, 2).unsqueeze(2)  # (B, C, 1, T), a view: channels-last in memory
        kernel = self.weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)  # (filters, C, 1, k)
        y = F.conv2d(image, kernel, self.bias)  # (B, filters, 1, T - k + 1), channels-last
        return y.squeeze(2).transpose(1, 2)  # (B, T - k + 1, filters), contiguous


class MaxPooling1D(nn.MaxPool1d):
    """Keras' MaxPooling1D on (B, T, C) sequences: windows of `kernel_size` steps, stride the same.

    Pooled as a channels-last image of height 1, like `Conv1D`: no transposed copies of the input, the
    output or their gradients (imdb_cnn_lstm's step on 2 CPU threads: 2% faster than nn.MaxPool1d on (B, C, T))."""

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        image = x.transpose(1, 2).unsqueeze(2)  # (B, C, 1, T), a view: channels-last in memory
        y = F.max_pool2d(image, (1, self.kernel_size), (1, self.stride), (0, self.padding), (1, self.dilation),
                         self.ceil_mode)  # (B, C, 1, T // pool), channels-last
        return y.squeeze(2).transpose(1, 2)  # (B, T // pool, C)


class ImdbCnnLSTM(nn.Module):
    """imdb_cnn_lstm: Embedding -> Dropout(0.25) -> Conv1D(64, 5, relu) -> MaxPooling1D(4) -> LSTM(70)
    -> Dense(1) -> Activation('sigmoid')."""

    def __init__(self, num_words: int, embedding_dim: int = 128, dropout_rate: float = 0.25, filters: int = 64,
                 kernel_size: int = 5, pool_size: int = 4, lstm_size: int = 70) -> None:
        super().__init__()
        self.embedding = KeptGradEmbedding(num_words, embedding_dim)
        self.dropout = Dropout(dropout_rate, inplace=True)  # on the fresh lookup, which nothing else reads
        self.conv1d = Conv1D(embedding_dim, filters, kernel_size)
        self.max_pooling = MaxPooling1D(pool_size)
        self.lstm = LSTM(filters, lstm_size)
        self.dense = nn.Linear(lstm_size, 1)
        # Keras' separate Activation('sigmoid') layer. The sigmoid itself is applied by the loss (with
        # logits) and by predict; this Tap only marks its place so `rnnzoo summary` lists it, (None, 1).
        self.activation = Tap()
        init_like_keras(self)

    def forward(self, tokens: Tensor) -> Tensor:
        B, T = tokens.shape
        x = self.dropout(self.embedding(tokens))  # (B, 100, 128)
        x = self.conv1d(x)  # (B, 96, 64)
        # Keras' Conv1D(activation='relu') then MaxPooling1D. The ReLU runs after the pooling: the max of
        # a window commutes with the monotone ReLU (values and gradients), and there it touches 1/4 the values.
        x = F.relu(self.max_pooling(x))  # (B, 24, 64)
        x = self.lstm(x)  # (B, 70)
        logits = self.activation(self.dense(x))  # (B, 1): where Keras applies the sigmoid
        return logits.squeeze(-1)  # (B,) logits


class ImdbBidirectionalLSTM(nn.Module):
    """imdb_bidirectional_lstm: Embedding -> Bidirectional(LSTM(64)) (concatenated) -> Dropout(0.5)
    -> Dense(1)."""

    def __init__(self, num_words: int, embedding_dim: int = 128, lstm_size: int = 64, dropout_rate: float = 0.5
                 ) -> None:
        super().__init__()
        self.embedding = KeptGradEmbedding(num_words, embedding_dim)
        self.bidirectional_lstm = LSTM(embedding_dim, lstm_size, bidirectional=True)
        self.dropout = Dropout(dropout_rate)
        self.dense = nn.Linear(2 * lstm_size, 1)
        init_like_keras(self)

    def forward(self, tokens: Tensor) -> Tensor:
        B, T = tokens.shape
        x = self.embedding(tokens)  # (B, 100, 128)
        x = self.dropout(self.bidirectional_lstm(x))  # (B, 128): last forward state ++ last backward state
        return self.dense(x).squeeze(-1)  # (B, 1) -> (B,) logits
