"""The seven rnnzoo models in Keras 3: the speed peer that `benchmarks/run.py` compares `rnnzoo bench` with.

Each model follows its example's layer table (the originals' layers, sizes, optimizer and loss) and is
trained on synthetic inputs of the example's shapes, as `rnnzoo bench` is, so both sides time the same
work: whole training steps (forward, loss, backward, optimizer update) after a warm-up.

Keras is not a dependency of rnnzoo; the peer runs in its own virtual environment:

    python3 -m venv .venv-peer && .venv-peer/bin/pip install keras jax          # add tensorflow-cpu for TF
    KERAS_BACKEND=jax .venv-peer/bin/python benchmarks/keras_peers.py babi_memnn --batches 30
    KERAS_BACKEND=tensorflow .venv-peer/bin/python benchmarks/keras_peers.py conv_lstm --batches 2 --summary

It prints one line, `<name> keras-<backend> <rate> samples/s`, which run.py reads. The names are the
examples', plus `imdb_lstm_fused`: imdb_lstm's original LSTM has recurrent dropout, which keeps Keras on
its step-by-step path; without it Keras may use its fused LSTM, the closer peer to rnnzoo's default.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow loads: no start-up log lines

import keras  # noqa: E402  (after the environment above)
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

Inputs = np.ndarray | list[np.ndarray]


@dataclass
class Peer:
    """A compiled Keras model, its batch size, and a maker of n synthetic (inputs, targets) pairs."""

    model: keras.Model
    batch_size: int
    make_batch: Callable[[int, np.random.Generator], tuple[Inputs, np.ndarray]]


def _tokens(rng: np.random.Generator, n: int, length: int, vocab: int) -> np.ndarray:
    return rng.integers(1, vocab, size=(n, length), dtype=np.int32)  # 0 is padding; no masks are used


def _qa_batches(story_len: int, question_len: int, vocab: int):
    """Batches of random story and question word indices and answers, for the two bAbI peers."""
    def make_batch(n: int, rng: np.random.Generator) -> tuple[Inputs, np.ndarray]:
        inputs = [_tokens(rng, n, story_len, vocab), _tokens(rng, n, question_len, vocab)]
        return inputs, rng.integers(0, vocab, size=n)
    return make_batch


def babi_memnn() -> Peer:
    """Memory network, bAbI QA1-10k: story 68 words, question 4, 22 words in the vocabulary and answers."""
    story_len, question_len, vocab = 68, 4, 22
    story = keras.Input(shape=(story_len,), dtype="int32", name="story")
    question = keras.Input(shape=(question_len,), dtype="int32", name="question")
    memory_in = layers.Dropout(0.3)(layers.Embedding(vocab, 64)(story))  # (None, 68, 64)
    memory_out = layers.Dropout(0.3)(layers.Embedding(vocab, question_len)(story))  # (None, 68, 4)
    question_code = layers.Dropout(0.3)(layers.Embedding(vocab, 64)(question))  # (None, 4, 64)
    match = layers.Dot(axes=2)([memory_in, question_code])  # (None, 68, 4)
    match = layers.Softmax(axis=-1)(match)  # over the question words, as the original
    response = layers.Permute((2, 1))(layers.Add()([match, memory_out]))  # (None, 4, 68)
    x = layers.Concatenate(axis=-1)([response, question_code])  # (None, 4, 132)
    x = layers.Dropout(0.3)(layers.LSTM(32)(x))  # (None, 32)
    answer = layers.Dense(vocab, activation="softmax")(x)  # (None, 22)
    model = keras.Model([story, question], answer, name="babi_memnn")
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy")

    return Peer(model, 32, _qa_batches(story_len, question_len, vocab))


def babi_rnn() -> Peer:
    """Two-branch LSTM, bAbI QA2-10k: story 552 words, question 5, 36 words, embeddings and LSTMs of 50."""
    story_len, question_len, vocab, width = 552, 5, 36, 50
    story = keras.Input(shape=(story_len,), dtype="int32", name="story")
    question = keras.Input(shape=(question_len,), dtype="int32", name="question")
    s = layers.Dropout(0.3)(layers.Embedding(vocab, width)(story))  # (None, 552, 50)
    q = layers.Dropout(0.3)(layers.Embedding(vocab, width)(question))  # (None, 5, 50)
    q = layers.RepeatVector(story_len)(layers.LSTM(width)(q))  # (None, 552, 50)
    x = layers.Dropout(0.3)(layers.LSTM(width)(layers.Add()([s, q])))  # (None, 50)
    answer = layers.Dense(vocab, activation="softmax")(x)  # (None, 36)
    model = keras.Model([story, question], answer, name="babi_rnn")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")

    return Peer(model, 32, _qa_batches(story_len, question_len, vocab))


def _review_classifier(name: str, maxlen: int, batch_size: int,
                       body: Callable[[keras.KerasTensor], keras.KerasTensor]) -> Peer:
    """The IMDB models share their input (word ranks below 20,000), embedding (128) and loss."""
    words = 20000
    tokens = keras.Input(shape=(maxlen,), dtype="int32", name="review")
    model = keras.Model(tokens, body(layers.Embedding(words, 128)(tokens)), name=name)
    model.compile(optimizer="adam", loss="binary_crossentropy")

    def make_batch(n: int, rng: np.random.Generator) -> tuple[Inputs, np.ndarray]:
        return _tokens(rng, n, maxlen, words), rng.integers(0, 2, size=(n, 1)).astype(np.float32)

    return Peer(model, batch_size, make_batch)


def imdb_lstm() -> Peer:
    """Embedding -> LSTM(128, dropout 0.2, recurrent dropout 0.2) -> Dense(1, sigmoid); maxlen 80."""
    def body(x: keras.KerasTensor) -> keras.KerasTensor:
        x = layers.LSTM(128, dropout=0.2, recurrent_dropout=0.2)(x)  # (None, 128)
        return layers.Dense(1, activation="sigmoid")(x)  # (None, 1)

    return _review_classifier("imdb_lstm", 80, 32, body)


def imdb_lstm_fused() -> Peer:
    """imdb_lstm without the recurrent dropout, so that Keras may run its fused LSTM."""
    def body(x: keras.KerasTensor) -> keras.KerasTensor:
        return layers.Dense(1, activation="sigmoid")(layers.LSTM(128, dropout=0.2)(x))

    return _review_classifier("imdb_lstm_fused", 80, 32, body)


def imdb_cnn_lstm() -> Peer:
    """Embedding -> Dropout(0.25) -> Conv1D(64, 5, relu) -> MaxPooling1D(4) -> LSTM(70) -> Dense(1) -> sigmoid."""
    def body(x: keras.KerasTensor) -> keras.KerasTensor:
        x = layers.Dropout(0.25)(x)  # (None, 100, 128)
        x = layers.Conv1D(64, 5, padding="valid", activation="relu")(x)  # (None, 96, 64)
        x = layers.MaxPooling1D(pool_size=4)(x)  # (None, 24, 64)
        x = layers.Dense(1)(layers.LSTM(70)(x))  # (None, 1)
        return layers.Activation("sigmoid")(x)

    return _review_classifier("imdb_cnn_lstm", 100, 30, body)


def imdb_bidirectional_lstm() -> Peer:
    """Embedding -> Bidirectional(LSTM(64)) -> Dropout(0.5) -> Dense(1, sigmoid); maxlen 100."""
    def body(x: keras.KerasTensor) -> keras.KerasTensor:
        x = layers.Dropout(0.5)(layers.Bidirectional(layers.LSTM(64))(x))  # (None, 128)
        return layers.Dense(1, activation="sigmoid")(x)

    return _review_classifier("imdb_bidirectional_lstm", 100, 32, body)


def mnist_hierarchical_rnn() -> Peer:
    """Row LSTM(128) over each image row (TimeDistributed) -> column LSTM(128) -> Dense(10, softmax)."""
    image = keras.Input(shape=(28, 28, 1), name="image")
    rows = layers.TimeDistributed(layers.LSTM(128))(image)  # (None, 28, 128)
    digit = layers.Dense(10, activation="softmax")(layers.LSTM(128)(rows))  # (None, 10)
    model = keras.Model(image, digit, name="mnist_hierarchical_rnn")
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy")

    def make_batch(n: int, rng: np.random.Generator) -> tuple[Inputs, np.ndarray]:
        return rng.random((n, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, size=n)

    return Peer(model, 32, make_batch)


def conv_lstm() -> Peer:
    """4 x [ConvLSTM2D(40, 3x3, same) -> BatchNorm] -> Conv3D(1, 3x3x3, same, sigmoid); movies of 15 x 40 x 40."""
    frames, size = 15, 40
    model = keras.Sequential([keras.Input(shape=(None, size, size, 1))], name="conv_lstm")
    for _ in range(4):
        model.add(layers.ConvLSTM2D(40, kernel_size=3, padding="same", return_sequences=True))
        model.add(layers.BatchNormalization())  # (None, None, 40, 40, 40)
    model.add(layers.Conv3D(1, kernel_size=3, padding="same", activation="sigmoid"))  # (None, None, 40, 40, 1)
    # Adadelta with the original's (Keras 2) learning rate of 1.0, as rnnzoo trains it.
    model.compile(optimizer=keras.optimizers.Adadelta(learning_rate=1.0), loss="binary_crossentropy")

    def make_batch(n: int, rng: np.random.Generator) -> tuple[Inputs, np.ndarray]:
        # Sparse binary frames; the target is the movie one frame later (the last frame repeated).
        movies = (rng.random((n, frames, size, size, 1)) < 0.1).astype(np.float32)
        return movies, np.concatenate([movies[:, 1:], movies[:, -1:]], axis=1)

    return Peer(model, 10, make_batch)


PEERS: dict[str, Callable[[], Peer]] = {build.__name__: build for build in (
    babi_memnn, babi_rnn, imdb_lstm, imdb_lstm_fused, imdb_cnn_lstm, imdb_bidirectional_lstm,
    mnist_hierarchical_rnn, conv_lstm)}


def _take(inputs: Inputs, start: int, stop: int | None) -> Inputs:
    return [x[start:stop] for x in inputs] if isinstance(inputs, list) else inputs[start:stop]


def samples_per_second(peer: Peer, batches: int, warmup: int, seed: int = 0) -> float:
    """Training samples per second over `batches` steps in one fit() call, after `warmup` steps (in a first
    fit() call, which also compiles the step)."""
    rng = np.random.default_rng(seed)
    n = peer.batch_size
    x, y = peer.make_batch(n * (warmup + batches), rng)
    peer.model.fit(_take(x, 0, n * warmup), y[: n * warmup], batch_size=n, epochs=1, shuffle=False, verbose=0)
    started = time.perf_counter()
    peer.model.fit(_take(x, n * warmup, None), y[n * warmup:], batch_size=n, epochs=1, shuffle=False, verbose=0)
    return batches * n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=PEERS, help="the example (or imdb_lstm_fused)")
    parser.add_argument("--batches", type=int, default=30, help="timed training steps (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first, compilation included (3)")
    parser.add_argument("--summary", action="store_true", help="print the Keras summary first")
    args = parser.parse_args()
    if args.batches < 1 or args.warmup < 1:
        parser.error("--batches and --warmup must be at least 1")
    keras.utils.set_random_seed(0)
    peer = PEERS[args.name]()
    if args.summary:
        peer.model.summary()
    rate = samples_per_second(peer, args.batches, args.warmup)
    print(f"{args.name} keras-{keras.backend.backend()} {rate:.1f} samples/s")


if __name__ == "__main__":
    main()
