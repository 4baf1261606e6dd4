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
* "fused" (`WeightDropLSTM`, the default): the same per-sequence input mask, and DropConnect (Wan et al.
  2013, as in Merity et al. 2017's AWD-LSTM) in place of the mask on h: the hidden-to-hidden weights are
  dropped once per batch, then the whole sequence runs in the fused kernel: several times faster, and as
  accurate on the seeds compared (docs/RESULTS.md).

Both keep nn.LSTM's parameters (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0), so a checkpoint of
one loads into the other.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn
from torch.nn import functional as F

from rnnzoo.kernels.conv1d import ChannelsLastConv1d, ChannelsLastMaxPool1d
from rnnzoo.kernels.dropout import LaneDropout
from rnnzoo.kernels.embedding import KeptGradEmbedding
from rnnzoo.kernels.lstm import WeightDropLSTM
from rnnzoo.models.layers import LSTM, RecurrentDropoutLSTM, Tap, init_like_keras

Regularization = Literal["fused", "recurrent_dropout"]


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


class ImdbCnnLSTM(nn.Module):
    """imdb_cnn_lstm: Embedding -> Dropout(0.25) -> Conv1D(64, 5, relu) -> MaxPooling1D(4) -> LSTM(70)
    -> Dense(1) -> Activation('sigmoid')."""

    def __init__(self, num_words: int, embedding_dim: int = 128, dropout_rate: float = 0.25, filters: int = 64,
                 kernel_size: int = 5, pool_size: int = 4, lstm_size: int = 70) -> None:
        super().__init__()
        self.embedding = KeptGradEmbedding(num_words, embedding_dim)
        self.dropout = LaneDropout(dropout_rate, inplace=True)  # on the fresh lookup, which nothing else reads
        self.conv1d = ChannelsLastConv1d(embedding_dim, filters, kernel_size)
        self.max_pooling = ChannelsLastMaxPool1d(pool_size)
        self.lstm = LSTM(filters, lstm_size)
        self.dense = nn.Linear(lstm_size, 1)
        # Keras' separate Activation('sigmoid') layer. The sigmoid itself is applied by the loss (with
        # logits) and by predict; this Tap only marks its place so `rnnzoo summary` lists it, (None, 1).
        self.activation = Tap("Activation")
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
        self.dropout = LaneDropout(dropout_rate)
        self.dense = nn.Linear(2 * lstm_size, 1)
        init_like_keras(self)

    def forward(self, tokens: Tensor) -> Tensor:
        B, T = tokens.shape
        x = self.embedding(tokens)  # (B, 100, 128)
        x = self.dropout(self.bidirectional_lstm(x))  # (B, 128): last forward state ++ last backward state
        return self.dense(x).squeeze(-1)  # (B, 1) -> (B,) logits
