"""Two-branch LSTM for bAbI question answering: a port of Keras' `babi_rnn.py`.

The question is read by an LSTM, its code repeated along the story and added to the story's word
embeddings; a second LSTM reads the sum. The Keras example reports about 37% test accuracy on QA2
(two supporting facts) after 20 epochs, this port 41.5% (docs/RESULTS.md); the original names Weston et al.
2015 (arXiv:1502.05698) for the task.
"""

from __future__ import annotations

from torch import Tensor, nn

from rnnzoo.kernels.dropout import LaneDropout
from rnnzoo.kernels.embedding import TimeMajorEmbedding
from rnnzoo.models.layers import LSTM, Tap, init_like_keras


class BabiRNN(nn.Module):
    def __init__(self, vocab_size: int, embedding_dim: int = 50, sentence_hidden: int = 50,
                 query_hidden: int = 50, dropout_rate: float = 0.3) -> None:
        super().__init__()
        if query_hidden != embedding_dim:
            raise ValueError("query_hidden must equal embedding_dim: the question code is added to the story")
        self.story_enc = TimeMajorEmbedding(vocab_size, embedding_dim)  # the story LSTM's layout, no copies
        self.question_enc = nn.Embedding(vocab_size, embedding_dim)
        self.dropout = LaneDropout(dropout_rate)
        self.question_lstm = LSTM(embedding_dim, query_hidden)
        self.repeat, self.add = Tap("RepeatVector"), Tap("Add")
        self.lstm = LSTM(embedding_dim, sentence_hidden)
        self.answer = nn.Linear(sentence_hidden, vocab_size)
        init_like_keras(self)

    def forward(self, story: Tensor, question: Tensor) -> Tensor:
        B, S = story.shape
        s = self.dropout(self.story_enc(story))  # (B, S, 50), time-major in memory as the LSTM reads it
        q = self.dropout(self.question_enc(question))  # (B, Q, 50)
        q = self.question_lstm(q)  # (B, 50)
        q = self.repeat(q.unsqueeze(1).expand(B, S, q.shape[-1]))  # (B, S, 50)
        x = self.add(s + q)  # (B, S, 50)
        x = self.dropout(self.lstm(x))  # (B, 50)
        return self.answer(x)  # (B, V) logits
