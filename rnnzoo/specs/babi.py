"""The bAbI question-answering examples: babi_memnn (QA1), babi_rnn (QA2) and babi_memn2n (any task, read
sentence by sentence)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rnnzoo.data import babi
from rnnzoo.errors import InputError
from rnnzoo.models.babi_rnn import BabiRNN
from rnnzoo.models.memn2n import MemN2N
from rnnzoo.models.memnn import MemNN
from rnnzoo.specs.base import Data, Example, Result, Split, carve_validation, model_device
from rnnzoo.specs.settings import CARDS, BabiRnnConfig, Memn2nConfig, MemnnConfig

# Sizes of the default data, so `bench` and `summary` need no download (tests check them on the real data).
KNOWN_SHAPES = {("qa1", "10k"): (21, 68, 4), ("qa2", "10k"): (35, 552, 5)}  # words, story, question
KNOWN_SENTENCE_SHAPES = {("qa1", "1k"): (19, 10, 6, 3)}  # words, memory (at most 50), sentence, question


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
    was longer than the training stories); `warnings` what was changed to fit the model; `hops`, for a model
    that reads its memory several times (babi_memn2n), each read's weights per sentence, first to last (the
    last is `attention`), None otherwise."""

    answer: str
    probability: float
    top: list[tuple[str, float]]
    attention: list[SentenceWeight] | None
    story_words: list[str]
    warnings: list[str]
    hops: list[list[SentenceWeight]] | None = None


def story_sentences(cfg: Any, seed: int) -> tuple[list[babi.SentenceStory], list[babi.SentenceStory]]:
    """The train and test stories of `cfg`, as sentences: generated ones (seeded) or a real task."""
    if cfg.generated_stories > 0:
        rng = np.random.default_rng(seed)
        lines = babi.generate_qa1_lines(cfg.generated_stories, rng, cfg.story_questions)
        test_lines = babi.generate_qa1_lines(max(20, cfg.generated_stories // 10), rng, cfg.story_questions)
        return (babi.parse_stories(lines, cfg.only_supporting, source="generated"),
                babi.parse_stories(test_lines, cfg.only_supporting, source="generated"))
    return babi.load_task_sentences(cfg.task, cfg.size, cfg.only_supporting)


def ranked_answers(probs: Tensor, meta: Mapping[str, Any], top_k: int) -> list[tuple[str, float]]:
    """The `top_k` most probable answer words of (V,) probabilities, with those probabilities."""
    vocab = ["<pad>", *meta["vocab"]]
    top = probs.topk(min(max(1, top_k), len(vocab)))
    return [(vocab[i], float(p)) for p, i in zip(top.values, top.indices)]


def held_out(cfg: Any, seed: int, train: Sequence[Any], test: Sequence[Any], meta: dict[str, Any],
             vectorize: Callable[[Sequence[Any]], tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Data:
    """The Data of vectorized train and test stories, with validation carved from train.

    Whole stories are held out: a story's questions share its sentences, so a random pick of questions
    would let validation see training text and score above the test set."""

    def split(data: Sequence[Any]) -> Split:
        s, q, a = vectorize(data)
        return Split((torch.from_numpy(s), torch.from_numpy(q)), torch.from_numpy(a))

    train_split, val_split = carve_validation(split(train), cfg.validation_split, seed,
                                              groups=torch.from_numpy(babi.story_ids(train)))
    return Data(train_split, val_split, split(test), meta)


class _Babi(Example):
    """Shared data handling and prediction of the bAbI examples (babi_memn2n reads sentences, below)."""

    def load_data(self, cfg: Any, seed: int) -> Data:
        train, test = (babi.flatten(stories) for stories in story_sentences(cfg, seed))
        vocab = babi.build_vocab(train, test)  # as the original: train + test words, sorted
        word_idx = babi.word_index(vocab)
        story_maxlen = max(len(s) for s, _, _ in train + test)
        query_maxlen = max(len(q) for _, q, _ in train + test)
        meta = {"vocab": vocab, "story_maxlen": story_maxlen, "query_maxlen": query_maxlen,
                "task": "generated" if cfg.generated_stories else f"{cfg.task}-{cfg.size}"}
        return held_out(cfg, seed, train, test, meta,
                        lambda data: babi.vectorize_stories(data, word_idx, story_maxlen, query_maxlen))

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
    def words(self, meta: Mapping[str, Any], story: str, question: str, lowercase: bool = False,
              punctuation: bool = True) -> tuple[list[str], list[str]]:
        """The words of a typed story and question, as typed; an InputError for missing text or for words
        unknown once read as the model reads them (`babi.normal_words`)."""
        if not isinstance(story, str) or not isinstance(question, str):
            raise InputError(f"{self.name} needs the story and the question as text, got "
                             f"{type(story).__name__} and {type(question).__name__}")
        if not story.strip() or not question.strip():
            raise InputError(f"{self.name} needs both a story and a question, e.g. {self.card.predict_options}")
        story_words, question_words = babi.tokenize(story), babi.tokenize(question)
        word_idx = babi.word_index(meta["vocab"])
        unknown = sorted({w for w in babi.normal_words(story_words + question_words, lowercase, punctuation)
                          if w not in word_idx})
        if unknown:
            raise InputError(f"unknown word(s) {', '.join(unknown)}: this model knows only "
                             f"{', '.join(meta['vocab'])}")
        return story_words, question_words

    def encode(self, meta: Mapping[str, Any], story: str, question: str
               ) -> tuple[Tensor, Tensor, list[str], list[str]]:
        """Index a typed story and question like the training data; returns them as (1, S) and (1, Q)
        tensors, the story words kept, and warnings about what was cut to fit."""
        story_words, question_words = self.words(meta, story, question)
        word_idx = babi.word_index(meta["vocab"])
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
        ranked = ranked_answers(probs, meta, top_k)
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


def linear_start_length(val_losses: Sequence[float], most: int) -> int | None:
    """How many epochs linear start lasts, given the validation losses of the epochs so far: up to and including
    the first epoch whose loss is not below every earlier one (it stopped falling), and `most` at the longest;
    None while it goes on."""
    best = math.inf
    for k, loss in enumerate(val_losses, start=1):
        if k > 1 and not loss < best:  # a NaN loss counts as not falling
            return k
        best = min(best, loss) if loss == loss else best
        if k >= most:
            return k
    return None


def step_size(cfg: Memn2nConfig, epoch: int, linear: bool, since: int = 0) -> float:
    """The SGD step size of `epoch` (from 0): the linear-start or the main rate, halved every
    `lr_halving_epochs` epochs from epoch `since` (where linear start ended: training starts again)."""
    base = cfg.linear_start_lr if linear else cfg.lr
    assert base is not None
    return base * 0.5 ** ((epoch - since) // cfg.lr_halving_epochs) if cfg.lr_halving_epochs else base


class BabiMemn2n(_Babi):
    """End-To-End Memory Networks on any bAbI task: stories as memories of sentences (babi.vectorize_sentences),
    and a schedule (`begin_epoch`) for linear start and the step size."""

    card = CARDS["babi_memn2n"]

    def load_data(self, cfg: Memn2nConfig, seed: int) -> Data:
        train, test = (babi.normalize(data, cfg.lowercase, cfg.punctuation) for data in story_sentences(cfg, seed))
        vocab = babi.build_vocab(babi.flatten(train), babi.flatten(test))  # train + test words, sorted
        word_idx = babi.word_index(vocab)
        both = train + test
        memory_size = min(cfg.memory_size, max(len(s) for s, _, _ in both))
        meta = {"vocab": vocab, "memory_size": memory_size,
                "sentence_maxlen": max(len(sentence) for s, _, _ in both for sentence in s),
                "query_maxlen": max(len(q) for _, q, _ in both),
                "task": "generated" if cfg.generated_stories else f"{cfg.task}-{cfg.size}",
                "words": {"lowercase": cfg.lowercase, "punctuation": cfg.punctuation}}  # how predict reads text
        return held_out(cfg, seed, train, test, meta, lambda data: babi.vectorize_sentences(
            data, word_idx, memory_size, meta["sentence_maxlen"], meta["query_maxlen"]))

    def shape_meta(self, cfg: Memn2nConfig) -> dict[str, Any]:
        key = (cfg.task, cfg.size)
        if key in KNOWN_SENTENCE_SHAPES and not cfg.generated_stories and (cfg.lowercase, cfg.punctuation) == (
                True, False):
            words, memory_size, sentence_maxlen, query_maxlen = KNOWN_SENTENCE_SHAPES[key]
            return {"vocab": [f"w{i}" for i in range(words)], "memory_size": min(cfg.memory_size, memory_size),
                    "sentence_maxlen": sentence_maxlen, "query_maxlen": query_maxlen,
                    "words": {"lowercase": cfg.lowercase, "punctuation": cfg.punctuation}}
        return self.load_data(cfg, seed=0).meta

    def synthetic_batch(self, cfg: Memn2nConfig, meta: Mapping[str, Any], batch_size: int,
                        generator: torch.Generator) -> tuple[tuple[Tensor, ...], Tensor]:
        """Random stories of 1 to memory_size sentences (empty rows in front, as the data has them)."""
        V, M, W = len(meta["vocab"]) + 1, meta["memory_size"], meta["sentence_maxlen"]
        story = torch.randint(1, V, (batch_size, M, W), generator=generator)
        lengths = torch.randint(1, M + 1, (batch_size, 1, 1), generator=generator)
        story = story.masked_fill(torch.arange(M).view(1, M, 1) < M - lengths, 0)
        question = torch.randint(1, V, (batch_size, meta["query_maxlen"]), generator=generator)
        return (story, question), torch.randint(0, V, (batch_size,), generator=generator)

    def build_model(self, cfg: Memn2nConfig, meta: Mapping[str, Any]) -> nn.Module:
        return MemN2N(len(meta["vocab"]) + 1, meta["memory_size"], cfg.embedding_dim, cfg.hops, cfg.weight_tying,
                      cfg.position_encoding, cfg.temporal_encoding, cfg.random_noise, cfg.init_std,
                      cfg.position_formula, cfg.empty_memories)

    def begin_epoch(self, cfg: Memn2nConfig, epoch: int, history: Sequence[Mapping[str, Any]], model: nn.Module,
                    optimizer: torch.optim.Optimizer) -> None:
        """Linear start and the step size, from the epoch and the validation losses so far alone (so a resumed
        run repeats them): the model is linear for the first `linear_start_epochs` epochs (linear_start_end
        "epochs", the default) or until the validation loss stops falling, at most as long; the step size is
        `linear_start_lr` meanwhile, `lr` after, each halved every `lr_halving_epochs` epochs of its phase."""
        assert isinstance(model, MemN2N)
        if cfg.linear_start_end == "epochs":
            ended: int | None = cfg.linear_start_epochs
        else:
            ended = linear_start_length([record["val_loss"] for record in history], cfg.linear_start_epochs)
        linear = cfg.linear_start and (ended is None or epoch < ended)
        model.linear.fill_(int(linear))
        since = ended if cfg.linear_start and ended is not None and not linear else 0
        for group in optimizer.param_groups:
            group["lr"] = step_size(cfg, epoch, linear, since)

    @torch.no_grad()
    def predict(self, model: nn.Module, meta: Mapping[str, Any], story: str, question: str,  # type: ignore[override]
                top_k: int = 3) -> BabiAnswer:
        """Answer `question` about `story` (sentences ending with '.', words the model was trained on), with
        each hop's attention over the story's sentences (`hops`; `attention` is the last hop's).

        >>> model.predict(story="Mary moved to the bathroom. John went to the hallway.", question="Where is Mary?")
        BabiAnswer(answer='bathroom', ..., attention=[SentenceWeight('mary moved to the bathroom', 0.97), ...],
                   ..., hops=[[...], [...], [...]])
        """
        assert isinstance(model, MemN2N)
        lowercase, punctuation = meta["words"]["lowercase"], meta["words"]["punctuation"]
        story_words, question_words = self.words(meta, story, question, lowercase, punctuation)
        M, W, Q = meta["memory_size"], meta["sentence_maxlen"], meta["query_maxlen"]
        kept = babi.kept_words([story_words[a:b] for a, b in sentences(story_words)], lowercase, punctuation)
        question_words = babi.normal_words(question_words, lowercase, punctuation)
        warnings = []
        if len(kept) > M:
            warnings.append(f"the story has {len(kept)} sentences, more than the {M} the model remembers; "
                            f"keeping the last {M}")
            kept = kept[-M:]
        if any(len(s) > W for s in kept):
            warnings.append(f"a sentence has more than the {W} words of the longest training sentence; "
                            f"keeping its last {W}")
            kept = [s[-W:] for s in kept]
        if len(question_words) > Q:
            warnings.append(f"the question has {len(question_words)} words; keeping the last {Q}")
            question_words = question_words[-Q:]
        word_idx = babi.word_index(meta["vocab"])
        device = model_device(model)
        s = torch.from_numpy(babi.sentence_rows(kept, word_idx, M, W))[None].to(device)  # (1, M, W)
        q = torch.from_numpy(babi.pad_sequences([[word_idx[w] for w in question_words]], Q)).to(device)  # (1, Q)
        model.eval()
        logits, attention = model.read(s, q)
        ranked = ranked_answers(logits.softmax(-1)[0].cpu(), meta, top_k)
        n = len(kept)
        hops = [[SentenceWeight(" ".join(words), float(w)) for words, w in zip(kept, p[0, M - n:].cpu())]
                for p in attention]
        return BabiAnswer(ranked[0][0], ranked[0][1], ranked, hops[-1], [w for s in kept for w in s], warnings,
                          hops)
