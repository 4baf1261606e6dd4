"""Every example's settings and presets, as plain dataclasses: no torch and no numpy here, so that the
command line's `--help`, `list` and completion start in a blink.

Each example has a frozen Config dataclass (its hyperparameters, with the original's values as defaults and a
help text per field) and named presets (overrides of those defaults). The preset names mean the same in every
example:

- ``faithful``: the original's settings (the default);
- ``small``: minutes on a 2-core CPU, on the real data (a part of it) where the example has real data;
- ``offline``: generated data, no download: the offline demos;
- ``tiny``: seconds, generated data, for tests;
- any other name is an improvement over the original, measured in docs/RESULTS.md.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from rnnzoo.errors import InputError

# Seeds are 0 <= seed < SEED_LIMIT: epoch_order seeds a generator with seed * 100_003 + epoch, which must
# stay below 2**64 (about 1.84e14 * 100_003).
SEED_LIMIT = 10**14
OPTIMIZERS = ("adam", "rmsprop", "adadelta", "sgd")  # each with Keras' defaults (rnnzoo.specs.base)
BABI_TASKS = tuple(f"qa{n}" for n in range(1, 21))
IMDB_INDEX_FROM = 3  # Keras' default: a word of rank r gets index r + 3 (0 pads, 1 starts, 2 is unknown)


def _task(value: Any) -> str:
    """'qa3', 'QA3', '3' and 3 all name bAbI task qa3."""
    text = str(value).strip().lower()
    return f"qa{text}" if text.isdigit() else text


@dataclass(frozen=True)
class TrainSettings:
    """Hyperparameters every example has; each example's Config extends this and sets its own defaults."""

    epochs: int = field(default=10, metadata={"help": "passes over the training data"})
    batch_size: int = field(default=32, metadata={"help": "examples per optimizer step (per process)"})
    optimizer: str = field(default="adam", metadata={"help": "adam | rmsprop | adadelta | sgd, with Keras' defaults"})
    lr: float | None = field(
        default=None, metadata={"help": "learning rate (when not given: the optimizer's Keras default)"})
    validation_split: float = field(
        default=0.05, metadata={"help": "fraction of the training data held out to pick the best epoch"})
    clip_norm: float | None = field(
        default=None, metadata={"help": "clip the gradient norm (RNN gradients can explode); off as in the originals"})

    def __post_init__(self) -> None:
        """Reject impossible settings up front, before any data is read, with the option's name."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value, option = getattr(self, f.name), "--" + f.name.replace("_", "-")
            hint = hints[f.name]
            allowed = typing.get_args(hint) if typing.get_origin(hint) is typing.Literal else ()
            if allowed and value not in allowed:
                raise InputError(f"{option} must be one of {', '.join(map(str, allowed))}, got {value!r}")
            if hint in (int, float) and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise InputError(f"{option} must be a number, got {value!r}")
            if hint is bool and not isinstance(value, bool):
                raise InputError(f"{option} must be true or false, got {value!r}")
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if hint is int and isinstance(value, float):
                raise InputError(f"{option} must be a whole number, got {value!r}")
            if not math.isfinite(value):
                raise InputError(f"{option} must be a finite number, got {value}")
            # counts and sizes are >= 1, except where a field says otherwise ("min" in its metadata) or its
            # default 0 means "off" or "all"
            least = f.metadata.get("min", 0 if f.default == 0 else 1)
            if isinstance(value, int) and value < least:
                raise InputError(f"{option} must be at least {least}, got {value}")
            if f.name.endswith("rate") and not 0 <= value < 1:
                raise InputError(f"{option} is a dropout rate: 0 <= rate < 1, got {value}")
            if f.name in ("lr", "clip_norm") and value <= 0:
                raise InputError(f"{option} must be positive, got {value}")
            if f.name == "validation_split" and not 0 < value < 1:
                raise InputError(f"{option} must be between 0 and 1, got {value}")
            if f.name.endswith("momentum") and not 0 <= value <= 1:
                raise InputError(f"{option} must be between 0 and 1, got {value}")
        if self.optimizer not in OPTIMIZERS:
            raise InputError(f"unknown optimizer {self.optimizer!r}; choose from {', '.join(OPTIMIZERS)}")


TRAIN_FIELDS = frozenset(f.name for f in dataclasses.fields(TrainSettings))  # how to train, not what


# --- bAbI ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BabiData(TrainSettings):
    task: str = field(default="qa1", metadata={"help": "bAbI task: qa1 to qa20 (or just its number)"})
    size: Literal["1k", "10k"] = field(default="10k", metadata={"help": "1k (en) or 10k (en-10k) training stories"})
    only_supporting: bool = field(default=False, metadata={"help": "keep only the supporting sentences"})
    generated_stories: int = field(
        default=0, metadata={"help": "if > 0, train on this many generated QA1-style stories instead (offline)"})
    story_questions: int = field(
        default=5, metadata={"help": "questions per generated story, two sentences before each (bAbI QA1 has 5)"})

    def __post_init__(self) -> None:
        object.__setattr__(self, "task", _task(self.task))
        super().__post_init__()
        if self.task not in BABI_TASKS:
            raise InputError(f"--task must be qa1 to qa20 (or 1 to 20), got {self.task!r}")


@dataclass(frozen=True)
class MemnnConfig(BabiData):
    epochs: int = field(default=120, metadata={"help": "passes over the training stories (the original's)"})
    optimizer: str = field(default="rmsprop", metadata={
        "help": "adam | rmsprop | adadelta | sgd, with Keras' defaults (the original's rmsprop)"})
    embedding_dim: int = field(default=64, metadata={"help": "story/question embedding size"})
    lstm_size: int = field(default=32, metadata={"help": "units of the LSTM that reads the response"})
    dropout_rate: float = field(default=0.3, metadata={"help": "dropout after each embedding and the LSTM"})
    attention: Literal["question", "memory"] = field(
        default="question",
        metadata={"help": "softmax axis of the match: question words (the original's) or story positions"})
    recurrent_activation: Literal["sigmoid", "hard_sigmoid"] = field(
        default="sigmoid", metadata={"help": "LSTM gate activation: sigmoid (fused kernels; tf.keras, Keras 3) or "
                                             "hard_sigmoid (Keras 2.3's default, which the original ran)"})


@dataclass(frozen=True)
class BabiRnnConfig(BabiData):
    task: str = field(default="qa2", metadata={"help": "bAbI task: qa1 to qa20 (or just its number)"})
    epochs: int = field(default=20, metadata={"help": "passes over the training stories (the original's)"})
    optimizer: str = field(default="adam", metadata={
        "help": "adam | rmsprop | adadelta | sgd, with Keras' defaults (the original's adam)"})
    embedding_dim: int = field(default=50, metadata={"help": "word embedding size (= question LSTM size)"})
    sentence_hidden: int = field(default=50, metadata={"help": "units of the LSTM that reads the story"})
    dropout_rate: float = field(default=0.3, metadata={"help": "dropout after the embeddings and the LSTM"})


@dataclass(frozen=True)
class Memn2nConfig(BabiData):
    """End-To-End Memory Networks' bAbI settings (Sukhbaatar et al. 2015, section 4.2), with the details the
    paper leaves open taken from the authors' code (MemN2N-babi-matlab): PE LS RN, adjacent tying, 3 hops of
    20-dimensional vectors over the last 50 sentences, SGD with clipping; linear start for 20 epochs, then 100
    epochs with the step halved every 25. The paper's cost is summed over a batch of 32 where the loop
    averages it, so its step sizes are multiplied by 32 here and its clipping norm divided."""

    size: Literal["1k", "10k"] = field(default="1k", metadata={
        "help": "1k (en, the paper's main table) or 10k (en-10k) training stories"})
    epochs: int = field(default=120, metadata={
        "help": "passes over the training stories: 20 of linear start and the paper's 100"})
    optimizer: str = field(default="sgd", metadata={"help": "adam | rmsprop | adadelta | sgd (the paper's plain SGD)"})
    lr: float | None = field(default=0.16, metadata={
        "help": "step size on the batch-mean cost after linear start: the authors' code's 0.005 on a cost summed "
                "over 32 examples (the paper's text says 0.01, that is 0.32)"})
    clip_norm: float | None = field(default=1.25, metadata={
        "help": "gradient norm clip on the batch-mean cost: the paper's 40 on the summed cost, / 32"})
    validation_split: float = field(default=0.1, metadata={
        "help": "fraction of the training stories held out (the paper's tenth); it picks the best epoch (and "
                "ends linear start with --linear-start-end validation)"})
    lr_halving_epochs: int = field(default=25, metadata={
        "help": "halve the step size every this many epochs (the paper's 25), counted again from the end of "
                "linear start; 0: never", "min": 0})
    lowercase: bool = field(default=True, metadata={
        "help": "read words lowercased, as the authors' code (QA15's stories say Gertrude, its questions gertrude)"})
    punctuation: bool = field(default=False, metadata={
        "help": "keep '.' and '?' as words (the authors' code drops them)"})
    memory_size: int = field(default=50, metadata={"help": "sentences in the memory: a story keeps its last ones"})
    hops: int = field(default=3, metadata={"help": "memory reads (the paper's K)"})
    embedding_dim: int = field(default=20, metadata={"help": "size of the word, sentence and question vectors"})
    weight_tying: Literal["adjacent", "layerwise"] = field(default="adjacent", metadata={
        "help": "adjacent (hop k's output embedding is hop k+1's input) or layerwise (one pair for all hops, "
                "and a linear map between them)"})
    position_encoding: bool = field(default=True, metadata={
        "help": "weigh each word by its place in the sentence (PE); false: a bag of words"})
    position_formula: Literal["code", "paper"] = field(default="code", metadata={
        "help": "PE weights: the authors' code's, 1 + 4(k - (d+1)/2)(j - (J+1)/2)/(dJ) with J the longest "
                "sentence, or the paper's text's, (1 - j/J) - (k/d)(1 - 2j/J) with J the sentence's length"})
    empty_memories: Literal["attended", "masked"] = field(default="attended", metadata={
        "help": "the slots of a story shorter than the memory: zero vectors the softmax attends to like the "
                "others (the authors' code), or left out of the softmax"})
    temporal_encoding: bool = field(default=True, metadata={"help": "add a learned vector for each sentence's age"})
    random_noise: float = field(default=0.1, metadata={
        "help": "while training, ages shifted as if this fraction of empty memories sat among the sentences (RN)"})
    linear_start: bool = field(default=True, metadata={
        "help": "train without the hops' softmaxes first (LS), for --linear-start-epochs epochs or until the "
                "validation loss stops falling"})
    linear_start_lr: float = field(default=0.16, metadata={
        "help": "step size while linear (the paper's 0.005, x 32)"})
    linear_start_epochs: int = field(default=20, metadata={
        "help": "the most epochs linear start may last (the authors' code: 20)"})
    linear_start_end: Literal["validation", "epochs"] = field(default="epochs", metadata={
        "help": "end linear start when the validation loss stops falling (the paper's text) or after exactly "
                "linear_start_epochs epochs (the authors' code)"})
    init_std: float = field(default=0.1, metadata={
        "help": "std of the Gaussian every weight starts from (the paper's)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.random_noise <= 1:
            raise InputError(f"--random-noise is a fraction: 0 <= noise <= 1, got {self.random_noise}")
        if self.init_std <= 0 or self.linear_start_lr <= 0:
            raise InputError(f"--init-std and --linear-start-lr must be positive, got {self.init_std} and "
                             f"{self.linear_start_lr}")


# --- IMDB ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImdbData(TrainSettings):
    validation_split: float = field(
        default=0.1, metadata={"help": "fraction of the training reviews held out to pick the best epoch (2,500 "
                                       "reviews: about 0.7 points of standard error)"})
    num_words: int = field(
        default=20_000, metadata={"help": "Keras' max_features: indices below this are words, the rest become "
                                          "the out-of-vocabulary index 2 (the originals')"})
    maxlen: int = field(default=100, metadata={"help": "words per review: the last maxlen are kept, shorter ones "
                                                       "padded in front (Keras' pad_sequences)"})
    index_from: int = field(default=IMDB_INDEX_FROM, metadata={
        "help": "a word of rank r gets index r + index_from; 0 pads, 1 starts, 2 is out of vocabulary (Keras')",
        "min": 0})
    embedding_dim: int = field(default=128, metadata={"help": "word vector size (the originals')"})
    train_reviews: int = field(default=0, metadata={
        "help": "if > 0, use only this many of the 25,000 training reviews (quick runs); 0: all"})
    test_reviews: int = field(default=0, metadata={
        "help": "if > 0, test on only this many of the 25,000 test reviews (quick runs); 0: all"})
    generated_reviews: int = field(default=0, metadata={
        "help": "if > 0, train on this many generated short reviews and their own word index instead (offline)"})


@dataclass(frozen=True)
class LstmConfig(ImdbData):
    epochs: int = field(default=15, metadata={"help": "passes over the training reviews (the original's)"})
    maxlen: int = field(default=80, metadata={"help": "words per review: the last maxlen are kept, shorter ones "
                                                      "padded in front (the original's)"})
    lstm_size: int = field(default=128, metadata={"help": "LSTM units (the original's)"})
    dropout_rate: float = field(default=0.2, metadata={
        "help": "dropout of the LSTM's inputs, one mask per review (Keras' dropout)"})
    recurrent_dropout_rate: float = field(default=0.2, metadata={
        "help": "Keras' recurrent_dropout: the rate of the mask on h (recurrent_dropout) or of the "
                "DropConnect on the hidden-to-hidden weights (fused)"})
    lstm_regularization: Literal["fused", "recurrent_dropout"] = field(default="fused", metadata={
        "help": "fused: input dropout + DropConnect, in the fused cuDNN/oneDNN kernel (faster); "
                "recurrent_dropout: Keras' exact masks, in a step loop"})


@dataclass(frozen=True)
class CnnLstmConfig(ImdbData):
    epochs: int = field(default=2, metadata={"help": "passes over the training reviews (the original's)"})
    batch_size: int = field(default=30, metadata={"help": "reviews per step (the original's)"})
    dropout_rate: float = field(default=0.25, metadata={"help": "dropout after the embedding (the original's)"})
    filters: int = field(default=64, metadata={"help": "Conv1D filters (the original's)"})
    kernel_size: int = field(default=5, metadata={"help": "Conv1D window in words (the original's)"})
    pool_size: int = field(default=4, metadata={"help": "MaxPooling1D window (the original's)"})
    lstm_size: int = field(default=70, metadata={"help": "LSTM units (the original's)"})


@dataclass(frozen=True)
class BidirectionalConfig(ImdbData):
    epochs: int = field(default=4, metadata={"help": "passes over the training reviews (the original's)"})
    lstm_size: int = field(default=64, metadata={"help": "units per direction; the two are concatenated"})
    dropout_rate: float = field(default=0.5, metadata={"help": "dropout before the dense layer (the original's)"})


# --- MNIST -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MnistConfig(TrainSettings):
    epochs: int = field(default=5, metadata={"help": "passes over the training data (the original's)"})
    batch_size: int = field(default=32, metadata={"help": "images per optimizer step (the original's)"})
    optimizer: str = field(
        default="rmsprop", metadata={"help": "adam | rmsprop | adadelta | sgd, with Keras' defaults (the original's "
                                             "rmsprop)"})
    row_hidden: int = field(
        default=128, metadata={"help": "units of the LSTM that encodes every pixel row (the original's)"})
    column_hidden: int = field(
        default=128, metadata={"help": "units of the LSTM that reads the 28 row codes (the original's)"})
    train_images: int = field(default=0, metadata={
        "help": "if > 0, use only this many of the 60,000 training images (quick runs); 0: all"})
    generated_images: int = field(
        default=0, metadata={"help": "if > 0, train on this many generated seven-segment digits instead of MNIST "
                                     "(offline demo and tests)"})


# --- conv_lstm -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvLstmConfig(TrainSettings):
    epochs: int = field(default=300, metadata={"help": "passes over the training movies (the original's)"})
    batch_size: int = field(default=10, metadata={"help": "movies per optimizer step (the original's)"})
    optimizer: str = field(default="adadelta", metadata={"help": "the original's Adadelta (Keras defaults)"})
    lr: float | None = field(
        default=1.0, metadata={"help": "Adadelta's Keras 2 default, as the original (Keras 3's is 0.001)"})
    movies: int = field(default=1200, metadata={"help": "movies generated (the original's n_samples)"})
    train_movies: int = field(
        default=1000, metadata={"help": "the first N movies train, less validation_split held out (the original's)"})
    test_start: int = field(
        default=1000, metadata={"help": "movies from this one on are the test set (the original's)", "min": 0})
    frames: int = field(default=15, metadata={"help": "frames per movie (the original's n_frames)"})
    size: int = field(default=40, metadata={"help": "frame height and width (the original's 40x40 crop)"})
    data_seed: int = field(default=0, metadata={"help": "seed of the movie generator (the same movies for any --seed)"})
    filters: int = field(default=40, metadata={"help": "filters of each ConvLSTM2D layer (the original's)"})
    layers: int = field(default=4, metadata={"help": "ConvLSTM2D + BatchNorm blocks (the original's)"})
    kernel_size: int = field(default=3, metadata={"help": "kernel of the ConvLSTM2D and Conv3D layers"})
    batchnorm_momentum: float = field(
        default=0.99, metadata={"help": "BatchNorm moving-average momentum in Keras' terms (its default)"})
    time_padding: Literal["same", "causal"] = field(
        default="same", metadata={"help": "Conv3D time padding: same (the original's; frame t also sees frame "
                                          "t+1's state) or causal (frames t-2..t only)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kernel_size % 2 != 1:
            raise InputError(f"--kernel-size must be odd ('same' padding keeps the frame size), got {self.kernel_size}")
        if not 2 <= self.train_movies <= self.test_start < self.movies:
            raise InputError(f"need 2 <= train_movies <= test_start < movies (train on movies 0..train_movies-1, "
                             f"test on test_start..movies-1), got train_movies {self.train_movies}, test_start "
                             f"{self.test_start}, movies {self.movies}")
        if self.frames < 2 or self.size < 8:
            raise InputError(f"need frames >= 2 and size >= 8, got frames {self.frames}, size {self.size}")


# --- the catalogue ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preset:
    """Named overrides of a Config's defaults, and one line on what they are for."""

    about: str
    values: Mapping[str, Any] = field(default_factory=dict)

    @property
    def generated(self) -> bool:
        """Whether this preset trains on generated data instead of the real dataset."""
        return any(k.startswith("generated_") and v for k, v in self.values.items())


FAITHFUL = Preset("the original's settings")
IMDB_TINY = {"generated_reviews": 60, "epochs": 2, "batch_size": 8, "num_words": 50, "maxlen": 12, "embedding_dim": 8}
IMDB_SMALL = Preset("minutes on a CPU: a fifth of the real reviews",
                    {"train_reviews": 5000, "test_reviews": 5000})
TINY = "seconds, on generated data: for tests"


@dataclass(frozen=True)
class Card:
    """What the command line knows of an example without importing torch: its name, what it is, its
    settings and presets, the data it reads, how long its faithful training takes, how to call predict."""

    name: str
    title: str
    data: str  # the dataset, as a user would name it
    Config: type[TrainSettings]
    presets: Mapping[str, Preset]
    typical_time: str  # the faithful preset's training time, measured (docs/RESULTS.md)
    predict_group: str  # examples that read the same predict options share a group (the dataset)
    predict_options: str  # how to call `rnnzoo predict` for it
    metric: str = "accuracy"  # the validation metric that picks the best checkpoint (higher is better, but loss)

    def config(self, preset: str = "faithful", **overrides: Any) -> Any:
        """The Config of `preset` with `overrides`; an unknown preset or setting is an InputError."""
        if preset not in self.presets:
            raise InputError(f"{self.name} has no preset {preset!r}{did_you_mean(preset, self.presets)}; "
                             f"choose from {', '.join(self.presets)}")
        values = {**self.presets[preset].values, **overrides}
        known = {f.name for f in dataclasses.fields(self.Config)}
        unknown = sorted(set(values) - known)
        if unknown:
            hint = did_you_mean(unknown[0], known) if len(unknown) == 1 else ""
            raise InputError(f"{self.name} has no setting {', '.join(unknown)}{hint}; "
                             f"valid: {', '.join(sorted(known))}")
        try:
            return self.Config(**values)
        except TypeError as exc:  # a value of the wrong kind reached a check
            raise InputError(f"{self.name}: {exc}") from None

    def config_from_dict(self, values: Mapping[str, Any]) -> Any:
        known = {f.name for f in dataclasses.fields(self.Config)}
        return self.Config(**{k: v for k, v in values.items() if k in known})


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    """'; did you mean X?' for the closest of `choices` to a misspelled `word`, or ''."""
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


BABI_PREDICT = '--story "Mary moved to the bathroom. John went to the hallway." --question "Where is Mary?"'
IMDB_PREDICT = '--text "A moving, beautifully acted film." --file reviews.txt'

CARDS: dict[str, Card] = {c.name: c for c in (
    Card("babi_memnn", "memory network, bAbI QA1 10k (single supporting fact)", "bAbI v1.2", MemnnConfig, {
        "faithful": FAITHFUL,
        # Reaches the original's ~98% on QA1-10k where the faithful settings stop near 93% (docs/RESULTS.md).
        "tuned": Preset("reaches the original's 98% on QA1-10k: twice the rmsprop step, a 64-unit LSTM, 300 epochs",
                        {"lr": 0.002, "lstm_size": 64, "epochs": 300}),
        # The paper's softmax over the memory and a larger Adam step make it learn in a minute on a CPU.
        "offline": Preset("a minute on a CPU, on generated QA1-style stories: the offline demo",
                          {"generated_stories": 5000, "story_questions": 2, "epochs": 40, "attention": "memory",
                           "optimizer": "adam", "lr": 0.005}),
        "tiny": Preset(TINY, {"generated_stories": 30, "epochs": 2, "embedding_dim": 8, "lstm_size": 6,
                              "batch_size": 8}),
    }, "about 2 minutes on 2 CPU cores (120 epochs of 1 s)", "bAbI", BABI_PREDICT),
    Card("babi_rnn", "two-branch LSTM, bAbI QA2 10k (two supporting facts)", "bAbI v1.2", BabiRnnConfig, {
        "faithful": FAITHFUL,
        "small": Preset("a minute on a CPU: the 1k training stories (about 17%, as the original's 1k figure)",
                        {"size": "1k"}),
        "tiny": Preset(TINY, {"generated_stories": 30, "epochs": 2, "embedding_dim": 6, "sentence_hidden": 5,
                              "batch_size": 8}),
    }, "about 5 minutes on 2 CPU cores (20 epochs of 13 s)", "bAbI", BABI_PREDICT),
    Card("babi_memn2n", "end-to-end memory network, 3 hops over sentences, bAbI QA1 1k (any of the 20 tasks)",
         "bAbI v1.2", Memn2nConfig, {
             "faithful": Preset("the paper's best settings for one task of 1k stories: PE LS RN, adjacent tying, "
                                "3 hops, as the authors' code trains them"),
             "tiny": Preset(TINY, {"generated_stories": 30, "epochs": 2, "embedding_dim": 4, "memory_size": 5,
                                   "hops": 2, "batch_size": 8, "linear_start_epochs": 1}),
         }, "about 20 to 60 s a 1k task, 2 to 7 minutes a 10k task (120 epochs, 1 CPU thread)", "bAbI", BABI_PREDICT),
    Card("imdb_lstm", "LSTM sentiment classifier, IMDB reviews (maxlen 80)", "IMDB reviews", LstmConfig, {
        "faithful": FAITHFUL,
        "keras_dropout": Preset("Keras' own recurrent-dropout masks, in a step loop (3x slower)",
                                {"lstm_regularization": "recurrent_dropout"}),
        "small": IMDB_SMALL,
        "tiny": Preset(TINY, {**IMDB_TINY, "lstm_size": 6}),
    }, "about 6 minutes on a CPU (15 epochs of 23 s, 1 thread)", "IMDB", IMDB_PREDICT),
    Card("imdb_cnn_lstm", "Conv1D + LSTM sentiment classifier, IMDB reviews (maxlen 100)", "IMDB reviews",
         CnnLstmConfig, {
             "faithful": FAITHFUL,
             "small": IMDB_SMALL,
             "tiny": Preset(TINY, {**IMDB_TINY, "filters": 7, "kernel_size": 3, "pool_size": 2, "lstm_size": 6}),
         }, "under a minute on a CPU (2 epochs of 11 s, 1 thread)", "IMDB", IMDB_PREDICT),
    Card("imdb_bidirectional_lstm", "bidirectional LSTM sentiment classifier, IMDB reviews (maxlen 100)",
         "IMDB reviews", BidirectionalConfig, {
             "faithful": FAITHFUL,
             "small": IMDB_SMALL,
             "tiny": Preset(TINY, {**IMDB_TINY, "lstm_size": 6}),
         }, "about 1.5 minutes on a CPU (4 epochs of 18 s, 1 thread)", "IMDB", IMDB_PREDICT),
    Card("mnist_hierarchical_rnn", "hierarchical LSTM (rows, then columns), MNIST digits", "MNIST",
         MnistConfig, {
             "faithful": FAITHFUL,
             "small": Preset("minutes on a CPU: 10,000 of the real training images, 3 epochs (about 88%)",
                             {"train_images": 10_000, "epochs": 3}),
             "offline": Preset("a minute on a CPU, on generated seven-segment digits (about 90%): no download",
                               {"generated_images": 3000, "epochs": 6, "row_hidden": 64, "column_hidden": 64}),
             "tiny": Preset(TINY, {"generated_images": 40, "epochs": 2, "row_hidden": 6, "column_hidden": 5,
                                   "batch_size": 8}),
         }, "about 20 minutes on a CPU (5 epochs of 220-265 s, 1 thread)", "MNIST",
         "--image digit.png [more.png ...] [--show seen.png]"),
    Card("conv_lstm", "ConvLSTM next-frame prediction, generated moving squares", "generated moving squares",
         ConvLstmConfig, {
             "faithful": FAITHFUL,
             # Two changes besides the sizes: a BatchNorm momentum of 0.9, as Keras' 0.99 leaves the moving
             # averages (used at evaluation) far from the batch statistics after only ~300 steps; and a causal
             # Conv3D, so that training practises the rollout's one-step-ahead prediction instead of reading
             # frame t+1.
             "small": Preset("2 minutes on a CPU: 400 movies, 2 blocks of 16 filters, causal head; beats "
                             "copying the last frame",
                             {"train_movies": 400, "filters": 16, "layers": 2, "epochs": 8,
                              "batchnorm_momentum": 0.9, "time_padding": "causal"}),
             # Distinct sizes (6 frames, 12x12, 5 filters) so that a transposed axis fails loudly.
             "tiny": Preset("seconds, on a few small movies: for tests",
                            {"movies": 14, "train_movies": 10, "test_start": 10, "frames": 6, "size": 12,
                             "filters": 5, "layers": 2, "epochs": 2, "batch_size": 4}),
         }, "about 24 hours on 2 CPU cores, 15 minutes on one NVIDIA H200 (300 epochs)", "moving squares",
         "--movie 1004 --frames 7 --ahead 8", metric="loss"),
)}


def get_card(name: str) -> Card:
    """The card of example `name`; an unknown name is an InputError that suggests the closest."""
    if name not in CARDS:
        raise InputError(f"unknown example {name!r}{did_you_mean(name, CARDS)}; choose from {', '.join(CARDS)}")
    return CARDS[name]


def describe_value(value: Any) -> str:
    return "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def preset_lines(card: Card) -> list[str]:
    """One line per preset: its name, what it is for, and its values."""
    lines = []
    for name, preset in card.presets.items():
        values = " ".join(f"--{k.replace('_', '-')} {describe_value(v)}" for k, v in preset.values.items())
        lines.append(f"{name}: {preset.about}" + (f"  [{values}]" if values else ""))
    return lines
