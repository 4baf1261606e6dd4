"""The two bAbI question-answering examples: babi_memnn (QA1) and babi_rnn (QA2)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rnnzoo.data import babi
from rnnzoo.errors import InputError
from rnnzoo.models.babi_rnn import BabiRNN
from rnnzoo.models.memnn import MemNN
from rnnzoo.specs.base import Data, Example, Result, Split, carve_validation, model_device
from rnnzoo.specs.settings import CARDS, BabiRnnConfig, MemnnConfig

# Sizes of the default data, so `bench` and `summary` need no download (tests check them on the real data).
KNOWN_SHAPES = {("qa1", "10k"): (21, 68, 4), ("qa2", "10k"): (35, 552, 5)}  # words, story, question


@dataclass
class SentenceWeight(Result):
    sentence: str
    weight: float


@dataclass
class BabiAnswer(Result):
    """The answer to one question about a story.

    `top` holds the `top_k` most probable answer words with their probabilities; `attention` one weight per
    story sentence where the model has something to show (None otherwise, as for babi_rnn; see each example's
    `attention` for what it means); `story_words` the story as the model read it (its last words, when it
    was longer than the training stories); `warnings` what was changed to fit the model."""

    answer: str
    probability: float
    top: list[tuple[str, float]]
    attention: list[SentenceWeight] | None
    story_words: list[str]
    warnings: list[str]


class _Babi(Example):
    """Shared data handling and prediction of the two bAbI examples."""

    def load_data(self, cfg: Any, seed: int) -> Data:
        if cfg.generated_stories > 0:
            rng = np.random.default_rng(seed)
            lines = babi.generate_qa1_lines(cfg.generated_stories, rng, cfg.story_questions)
            test_lines = babi.generate_qa1_lines(max(20, cfg.generated_stories // 10), rng, cfg.story_questions)
            train = babi.get_stories(lines, cfg.only_supporting, source="generated")
            test = babi.get_stories(test_lines, cfg.only_supporting, source="generated")
        else:
            train, test = babi.load_task(cfg.task, cfg.size, cfg.only_supporting)
        vocab = babi.build_vocab(train, test)  # as the original: train + test words, sorted
        word_idx = babi.word_index(vocab)
        story_maxlen = max(len(s) for s, _, _ in train + test)
        query_maxlen = max(len(q) for _, q, _ in train + test)
        meta = {"vocab": vocab, "story_maxlen": story_maxlen, "query_maxlen": query_maxlen,
                "task": "generated" if cfg.generated_stories else f"{cfg.task}-{cfg.size}"}

        def split(data: list[babi.Story]) -> Split:
            s, q, a = babi.vectorize_stories(data, word_idx, story_maxlen, query_maxlen)
            return Split((torch.from_numpy(s), torch.from_numpy(q)), torch.from_numpy(a))

        # Whole stories are held out: a story's questions share its sentences, so a random pick of questions
        # would let validation see training text and score above the test set.
        train_split, val_split = carve_validation(split(train), cfg.validation_split, seed,
                                                  groups=torch.from_numpy(babi.story_ids(train)))
        return Data(train_split, val_split, split(test), meta)

    def shape_meta(self, cfg: Any) -> dict[str, Any]:
        key = (cfg.task, cfg.size)
        if key in KNOWN_SHAPES and not cfg.generated_stories:
            words, story_maxlen, query_maxlen = KNOWN_SHAPES[key]
            return {"vocab": [f"w{i}" for i in range(words)], "story_maxlen": story_maxlen,
                    "query_maxlen": query_maxlen}
        return self.load_data(cfg, seed=0).meta

    def synthetic_batch(self, cfg: Any, meta: Mapping[str, Any], batch_size: int, generator: torch.Generator
                        ) -> tuple[tuple[Tensor, ...], Tensor]:
        V = len(meta["vocab"]) + 1
        story = torch.randint(1, V, (batch_size, meta["story_maxlen"]), generator=generator)
        question = torch.randint(1, V, (batch_size, meta["query_maxlen"]), generator=generator)
        return (story, question), torch.randint(0, V, (batch_size,), generator=generator)

    # --- prediction ---------------------------------------------------------------------------------
    def encode(self, meta: Mapping[str, Any], story: str, question: str
               ) -> tuple[Tensor, Tensor, list[str], list[str]]:
        """Index a typed story and question like the training data; returns them as (1, S) and (1, Q)
        tensors, the story words kept, and warnings about what was cut to fit."""
        if not isinstance(story, str) or not isinstance(question, str):
            raise InputError(f"{self.name} needs the story and the question as text, got "
                             f"{type(story).__name__} and {type(question).__name__}")
        if not story.strip() or not question.strip():
            raise InputError(f"{self.name} needs both a story and a question, e.g. {self.card.predict_options}")
        story_words, question_words = babi.tokenize(story), babi.tokenize(question)
        word_idx = babi.word_index(meta["vocab"])
        unknown = sorted({w for w in story_words + question_words if w not in word_idx})
        if unknown:
            raise InputError(f"unknown word(s) {', '.join(unknown)}: this model knows only "
                             f"{', '.join(meta['vocab'])}")
        S, Q = meta["story_maxlen"], meta["query_maxlen"]
        warnings = []
        if len(story_words) > S:
            warnings.append(f"the story has {len(story_words)} words, more than the {S} the model was trained on; "
                            f"keeping the last {S}, as the original does")
            story_words = story_words[-S:]
        if len(question_words) > Q:
            warnings.append(f"the question has {len(question_words)} words; keeping the last {Q}")
            question_words = question_words[-Q:]
        s = torch.from_numpy(babi.pad_sequences([[word_idx[w] for w in story_words]], S))
        q = torch.from_numpy(babi.pad_sequences([[word_idx[w] for w in question_words]], Q))
        return s, q, story_words, warnings

    @torch.no_grad()
    def predict(self, model: nn.Module, meta: Mapping[str, Any], story: str, question: str,  # type: ignore[override]
                top_k: int = 3) -> BabiAnswer:
        """Answer `question` about `story` (sentences ending with '.', words the model was trained on).

        >>> model.predict(story="Mary moved to the bathroom. John went to the hallway.", question="Where is Mary?")
        BabiAnswer(answer='bathroom', probability=0.98, top=[('bathroom', 0.98), ...], attention=[...], ...)
        """
        s, q, words, warnings = self.encode(meta, story, question)
        device = model_device(model)
        s, q = s.to(device), q.to(device)
        model.eval()
        probs = model(s, q).softmax(-1)[0].cpu()
        vocab = ["<pad>", *meta["vocab"]]
        top = probs.topk(min(max(1, top_k), len(vocab)))
        ranked = [(vocab[i], float(p)) for p, i in zip(top.values, top.indices)]
        return BabiAnswer(ranked[0][0], ranked[0][1], ranked, self.attention(model, s, q, words), words, warnings)

    def attention(self, model: nn.Module, story: Tensor, question: Tensor, words: list[str]
                  ) -> list[SentenceWeight] | None:
        """What the model can show of where it looked, one weight per story sentence (None: nothing)."""
        return None

    def test_stories(self, cfg: Any, seed: int) -> list[babi.Story]:
        """The test questions of a run trained with `cfg` and `seed`, as `load_data` reads them: (story words,
        question words, answer) each. Generated stories are drawn again from the seed (the training stories
        first, as `load_data` draws them); the bAbI stories are read from the cached archive (DataError when
        it is not there)."""
        if cfg.generated_stories > 0:
            rng = np.random.default_rng(seed)
            babi.generate_qa1_lines(cfg.generated_stories, rng, cfg.story_questions)  # the training stories
            test_lines = babi.generate_qa1_lines(max(20, cfg.generated_stories // 10), rng, cfg.story_questions)
            return babi.get_stories(test_lines, cfg.only_supporting, source="generated")
        return babi.load_task(cfg.task, cfg.size, cfg.only_supporting)[1]


def sentences(words: list[str]) -> list[tuple[int, int]]:
    """(start, end) word positions of each sentence: words up to and including a '.', '?' or '!'."""
    spans, start = [], 0
    for end in [i + 1 for i, w in enumerate(words) if w in (".", "?", "!")] + [len(words)]:
        if end > start:
            spans.append((start, end))
            start = end
    return spans


class BabiMemnn(_Babi):
    card = CARDS["babi_memnn"]
    def build_model(self, cfg: MemnnConfig, meta: Mapping[str, Any]) -> nn.Module:
        return MemNN(len(meta["vocab"]) + 1, meta["story_maxlen"], meta["query_maxlen"], cfg.embedding_dim,
                     cfg.lstm_size, cfg.dropout_rate, cfg.attention, cfg.recurrent_activation)

    def attention(self, model: nn.Module, story: Tensor, question: Tensor, words: list[str]
                  ) -> list[SentenceWeight]:
        """A display of the match between story and question, per sentence: the softmax of the match scores
        over the story words (averaged over the question words), summed over each sentence's words.

        This is not the faithful model's own weighting: its softmax runs over the question words (Keras'
        example normalises the match on its last axis), and what it reads is every story position at once.
        With `--attention memory` the model's softmax does run over the story, and this is its weighting."""
        assert isinstance(model, MemNN)
        scores = model.match_scores(story, question)[0]  # (S, Q)
        n = len(words)
        q_used = question[0] != 0
        weights = scores[-n:, q_used].softmax(dim=0).mean(dim=1).cpu() if n else scores[:0, 0]  # (n,)
        return [SentenceWeight(" ".join(words[a:b]), float(weights[a:b].sum())) for a, b in sentences(words)]


class BabiRnn(_Babi):
    card = CARDS["babi_rnn"]
    def build_model(self, cfg: BabiRnnConfig, meta: Mapping[str, Any]) -> nn.Module:
        return BabiRNN(len(meta["vocab"]) + 1, cfg.embedding_dim, cfg.sentence_hidden, cfg.embedding_dim,
                       cfg.dropout_rate)
