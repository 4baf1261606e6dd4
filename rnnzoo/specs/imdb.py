"""The three IMDB sentiment examples: imdb_lstm, imdb_cnn_lstm and imdb_bidirectional_lstm.

The originals read Keras' pre-indexed `imdb.npz`; these train from the raw reviews (rnnzoo.data.imdb
indexes them as `imdb.load_data` describes) and `rnnzoo predict` scores any text with the same normaliser.

Validation: 10% of the 25,000 training reviews (the originals validated on the test set). With 2,500
reviews the standard error of an accuracy near 85% is about 0.7 points, against about 1 point with the
default 5%, which matters when the best of 15 epochs is picked by a difference of that size.

imdb_lstm's LSTM regularisation (`--lstm-regularization`, see rnnzoo.models.imdb): "fused" (the default
and so the "faithful" preset: per-sequence input dropout + DropConnect on the hidden-to-hidden weights, in
the fused kernel) or "recurrent_dropout" (Keras' own masks in a step loop; preset "keras_dropout"). The
fused variant is several times faster (docs/SPEED.md) and as accurate (docs/RESULTS.md, IMDB), so it is the
default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rnnzoo.data import imdb
from rnnzoo.data.cache import DataError
from rnnzoo.errors import InputError
from rnnzoo.models.imdb import ImdbBidirectionalLSTM, ImdbCnnLSTM, ImdbLSTM
from rnnzoo.specs.base import Data, Example, Result, Split, carve_validation, model_device
from rnnzoo.specs.settings import CARDS, BidirectionalConfig, CnnLstmConfig, LstmConfig


@dataclass
class ReviewScore(Result):
    """The model's reading of one review: the probability that it is positive and its label; `words` the
    review's words after normalisation, `oov` those outside the model's vocabulary (read as index 2),
    `truncated` the first words cut off (the model reads the last `maxlen`); `warnings` about the input."""

    probability: float
    label: str  # "positive" (probability >= 0.5) or "negative"
    words: list[str]
    oov: list[str]
    truncated: list[str]
    warnings: list[str]


@dataclass
class WordContribution(Result):
    """One word of a review and how much it moves the model: `contribution` is the probability of the review
    minus that of the review without this word (positive: the word pushes towards "positive"); None for a
    word cut from the front (`truncated`), which the model does not read. `oov`: outside the vocabulary."""

    word: str
    contribution: float | None
    oov: bool
    truncated: bool


@dataclass
class ReviewContributions(Result):
    """A review's score and each of its words' contribution to it, in the review's order."""

    score: ReviewScore
    words: list[WordContribution]


class _Imdb(Example):
    """Data, objective and prediction shared by the three IMDB examples."""

    # --- data ---------------------------------------------------------------------------------------------
    def load_data(self, cfg: Any, seed: int) -> Data:
        try:
            imdb.check_sizes(cfg.num_words, cfg.index_from)
        except DataError as e:
            raise InputError(str(e)) from None
        if cfg.maxlen < 1:
            raise InputError(f"maxlen must be at least 1, got {cfg.maxlen}")
        if cfg.generated_reviews > 0:
            rng = np.random.default_rng(seed)
            train_reviews = imdb.generate_reviews(cfg.generated_reviews, rng)
            test_reviews = imdb.generate_reviews(max(20, cfg.generated_reviews // 5), rng)
            word_index = imdb.build_word_index(text for text, _ in train_reviews)
            train, test = (imdb.rank_reviews([t for t, _ in r], [label for _, label in r], word_index)
                           for r in (train_reviews, test_reviews))
            source = "generated"
        else:
            ranked = imdb.load_ranked()
            train, test = imdb.shuffled(ranked["train"]), imdb.shuffled(ranked["test"])
            word_index = imdb.load_word_index()
            source = "aclImdb_v1"
        for name, count in (("train_reviews", cfg.train_reviews), ("test_reviews", cfg.test_reviews)):
            if count < 0:
                raise InputError(f"{name} must be 0 (all) or a positive number, got {count}")
        if cfg.train_reviews:
            train = train.take(np.arange(min(cfg.train_reviews, len(train))))
        if cfg.test_reviews:
            test = test.take(np.arange(min(cfg.test_reviews, len(test))))
        meta = {"source": source, "num_words": cfg.num_words, "maxlen": cfg.maxlen, "index_from": cfg.index_from,
                "normaliser": imdb.NORMALISER_VERSION,
                "vocab": imdb.vocabulary(word_index, cfg.num_words, cfg.index_from)}

        def split(reviews: imdb.RankedReviews) -> Split:
            x = imdb.vectorize(reviews, cfg.num_words, cfg.maxlen, cfg.index_from)
            return Split((torch.from_numpy(x),), torch.from_numpy(reviews.labels.astype(np.float32)))

        train_split, val_split = carve_validation(split(train), cfg.validation_split, seed)
        return Data(train_split, val_split, split(test), meta)

    def shape_meta(self, cfg: Any) -> dict[str, Any]:
        return {"num_words": cfg.num_words, "maxlen": cfg.maxlen, "index_from": cfg.index_from}

    def synthetic_batch(self, cfg: Any, meta: Mapping[str, Any], batch_size: int, generator: torch.Generator
                        ) -> tuple[tuple[Tensor, ...], Tensor]:
        tokens = torch.randint(0, meta["num_words"], (batch_size, meta["maxlen"]), generator=generator)
        return (tokens,), torch.randint(0, 2, (batch_size,), generator=generator).float()

    # --- objective: logits (B,) against labels (B,) of 0.0 / 1.0 ------------------------------------------
    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return nn.functional.binary_cross_entropy_with_logits(output, target)

    def metrics(self, output: Tensor, target: Tensor) -> dict[str, Tensor]:
        return {"accuracy": ((output > 0) == (target > 0.5)).sum()}

    # --- prediction ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, model: nn.Module, meta: Mapping[str, Any], texts: str | Sequence[str],  # type: ignore[override]
                batch_size: int = 256, names: Sequence[str] | None = None) -> ReviewScore | list[ReviewScore]:
        """Score review text(s): one string gives one ReviewScore, a list gives a list. An error names a
        review by its number ("review 2"), or by its entry in `names` (where it came from: "line 2", ...).

        >>> model.predict("A moving, beautifully acted film.").label
        'positive'
        """
        single = isinstance(texts, str)
        reviews = [texts] if single else list(texts) if isinstance(texts, Sequence) else None
        if reviews is None or not all(isinstance(t, str) for t in reviews):
            raise InputError(f"{self.name} scores review text: give a string or a list of strings, got "
                             f"{type(texts).__name__}")
        if not reviews:
            raise InputError(f"give reviews to score, e.g. {self.card.predict_options}")
        common = []
        if meta.get("normaliser", imdb.NORMALISER_VERSION) != imdb.NORMALISER_VERSION:
            common.append(f"this run was trained with text normaliser version {meta['normaliser']}, this rnnzoo "
                          f"has version {imdb.NORMALISER_VERSION}; words may be split differently")
        indices = imdb.word_indices(meta["vocab"], meta["index_from"])
        if names is not None and len(names) != len(reviews):
            raise InputError(f"give one name per review: {len(names)} names for {len(reviews)} reviews")
        encoded = []
        for n, text in enumerate(reviews, start=1):
            name = names[n - 1] if names is not None else f"review {n}"
            if not text.strip():
                raise InputError(f"{name} is empty; give the review's text")
            try:
                encoded.append(imdb.encode(text, indices, meta["maxlen"]))
            except DataError as e:
                raise InputError(f"{name}: {e}; give review text") from None
        model.eval()
        device = model_device(model)
        probs: list[float] = []
        for start in range(0, len(encoded), batch_size):
            batch = torch.from_numpy(np.stack([e.indices for e in encoded[start:start + batch_size]])).to(device)
            probs += torch.sigmoid(model(batch)).cpu().tolist()
        scores = []
        for e, p in zip(encoded, probs):
            warnings = list(common)
            if all(w not in indices for w in e.kept):
                warnings.append("none of its words is in the model's vocabulary; is it an English movie review?")
            scores.append(ReviewScore(p, "positive" if p >= 0.5 else "negative", list(e.words), list(e.oov),
                                      list(e.truncated), warnings))
        return scores[0] if single else scores

    @torch.no_grad()
    def word_contributions(self, model: nn.Module, meta: Mapping[str, Any], text: str) -> ReviewContributions:
        """Leave each word out in turn: the change in probability it makes, for every word the model reads,
        computed in one batch (the review and one copy without each of its read words). Leaving out a word
        lets the last truncated word (if any) into the window, as typing the review without it would.

        >>> model.example.word_contributions(model.model, model.meta, "A moving, beautifully acted film.").words[1]
        WordContribution(word='moving', contribution=0.21, oov=False, truncated=False)
        """
        if not isinstance(text, str):
            raise InputError(f"{self.name} explains one review's text, got {type(text).__name__}")
        score = self.predict(model, meta, text)  # checks the text; the warnings, OOV and truncated words
        assert isinstance(score, ReviewScore)
        indices = imdb.word_indices(meta["vocab"], meta["index_from"])
        sequence = np.array([indices.get(w, imdb.OOV) for w in score.words], dtype=np.int64)
        cut = len(score.truncated)
        rows = [imdb.pad_front(sequence, meta["maxlen"])]
        rows += [imdb.pad_front(np.delete(sequence, i), meta["maxlen"]) for i in range(cut, len(sequence))]
        model.eval()
        batch = torch.from_numpy(np.stack(rows)).to(model_device(model))  # (1 + read words, maxlen)
        probs = torch.sigmoid(model(batch)).cpu().tolist()
        words = [WordContribution(w, None if i < cut else probs[0] - probs[1 + i - cut], w not in indices, i < cut)
                 for i, w in enumerate(score.words)]
        return ReviewContributions(score, words)


class ImdbLstm(_Imdb):
    card = CARDS["imdb_lstm"]

    def build_model(self, cfg: LstmConfig, meta: Mapping[str, Any]) -> nn.Module:
        return ImdbLSTM(meta["num_words"], cfg.embedding_dim, cfg.lstm_size, cfg.dropout_rate,
                        cfg.recurrent_dropout_rate, cfg.lstm_regularization)


class ImdbCnnLstm(_Imdb):
    card = CARDS["imdb_cnn_lstm"]

    def build_model(self, cfg: CnnLstmConfig, meta: Mapping[str, Any]) -> nn.Module:
        if meta["maxlen"] - cfg.kernel_size + 1 < cfg.pool_size:
            raise InputError(f"maxlen {meta['maxlen']} is too short for a convolution of kernel_size "
                             f"{cfg.kernel_size} followed by pooling over {cfg.pool_size}: need maxlen >= "
                             f"{cfg.kernel_size + cfg.pool_size - 1}")
        return ImdbCnnLSTM(meta["num_words"], cfg.embedding_dim, cfg.dropout_rate, cfg.filters, cfg.kernel_size,
                           cfg.pool_size, cfg.lstm_size)


class ImdbBidirectionalLstm(_Imdb):
    card = CARDS["imdb_bidirectional_lstm"]

    def build_model(self, cfg: BidirectionalConfig, meta: Mapping[str, Any]) -> nn.Module:
        return ImdbBidirectionalLSTM(meta["num_words"], cfg.embedding_dim, cfg.lstm_size, cfg.dropout_rate)
