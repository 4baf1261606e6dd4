"""Hierarchical RNN for MNIST digits: a port of Keras' `mnist_hierarchical_rnn.py`.

One LSTM reads each 28-pixel row of the image, left to right, one pixel per step, and encodes it into a
128-vector (the same LSTM for every row, Keras' TimeDistributed); a second LSTM reads the 28 row codes top
to bottom into a 128-vector image code; a dense layer gives the digit. After Hihi & Bengio (1996),
"Hierarchical recurrent neural networks for long-term dependencies", and Tang, Qin & Liu (2015),
"Document modeling with gated recurrent neural network for sentiment classification". The Keras example
reports 98.64% test accuracy after 5 epochs (rmsprop, batch 32); this port 98.65% (mean of 2 seeds,
docs/RESULTS.md).

Training on the CPU is dominated by the row LSTM (32 x 28 = 896 sequences of 28 steps per batch), so its
LSTMs are `StepwiseLSTM`s: on the CPU they train with rnnzoo.kernels.lstm's stepwise kernel, faster than
`nn.LSTM`'s CPU training path (measured: docs/SPEED.md; how: that module's docstring).
"""

from __future__ import annotations

from torch import Tensor, nn

from rnnzoo.models.layers import StepwiseLSTM, TimeDistributed, init_like_keras


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
