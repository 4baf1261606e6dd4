"""IMDB examples: the normaliser, Keras-style vectorization, the archive reader and its cache, the three
models' layer tables and LSTM variants (their kernels: test_kernels.py), and prediction on raw text end to
end (tiny, generated data)."""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnzoo.cli import main as cli_main
from rnnzoo.data import imdb
from rnnzoo.data.cache import DataError
from rnnzoo.errors import InputError
from rnnzoo.models.layers import RecurrentDropoutLSTM
from rnnzoo.specs import get_example
from rnnzoo.summary import layer_rows
from rnnzoo.training import train

IMDB_EXAMPLES = ("imdb_lstm", "imdb_cnn_lstm", "imdb_bidirectional_lstm")


# --- normaliser ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, words", [
    ("It's <br />GREAT--isn't it?", ["it's", "great", "isn't", "it"]),
    ("Loved it.<br /><br />10/10!", ["loved", "it", "10", "10"]),
    ("'The' movie's ending, sci-fi", ["the", "movie's", "ending", "sci", "fi"]),
    ("Don’t / don´t / don`t", ["don't", "don't", "don't"]),
    ("rock'n'roll O'Brien __init__ café", ["rock'n'roll", "o'brien", "init", "café"]),
    ("!!! ... ''", []),
])
def test_tokenize(text: str, words: list[str]) -> None:
    assert imdb.tokenize(text) == words


def test_normalize_leaves_no_line_break_behind() -> None:
    """Removing the inner break of "<<br />br />" leaves "< br />": that one goes too, so normalising twice
    changes nothing and the markup word "br" does not appear."""
    assert imdb.normalize("a<<br />br />b") == "a b" == imdb.normalize(imdb.normalize("a<<br />br />b"))
    assert imdb.tokenize("Good<<br>br>fun") == ["good", "fun"]


# --- vectorization facts on a mini-corpus ----------------------------------------------------------------

WORD_INDEX = {"the": 1, "movie": 2, "good": 3, "bad": 4, "plot": 5, "rare": 6}  # rank 1 = most frequent


def _mini() -> imdb.RankedReviews:
    return imdb.rank_reviews(["The movie, good!", "bad plot rare unknownword", "the the the the the the the"],
                             [1, 0, 1], WORD_INDEX)


def test_ranks_and_offsets() -> None:
    reviews = _mini()
    assert reviews.ranks.tolist() == [1, 2, 3, 4, 5, 6, 0, *[1] * 7]  # 0: not in the word index
    assert reviews.offsets.tolist() == [0, 3, 7, 14]
    assert reviews.labels.tolist() == [1, 0, 1]
    picked = reviews.take(np.array([2, 0]))
    assert [picked.review(i).tolist() for i in range(2)] == [[1] * 7, [1, 2, 3]]
    assert picked.labels.tolist() == [1, 1]


def test_index_from_oov_and_num_words_cut() -> None:
    ranks = np.array([1, 2, 3, 4, 5, 6, 0], dtype=np.int32)
    # index = rank + 3; num_words=8 keeps indices 4..7 (ranks 1..4); rank 5+ and unknown words become 2
    assert imdb.to_indices(ranks, num_words=8).tolist() == [4, 5, 6, 7, 2, 2, 2]
    assert imdb.to_indices(ranks, num_words=100).tolist() == [4, 5, 6, 7, 8, 9, 2]
    assert imdb.to_indices(ranks, num_words=100, index_from=5).tolist() == [6, 7, 8, 9, 10, 11, 2]
    assert imdb.vocabulary(WORD_INDEX, num_words=8) == ["the", "movie", "good", "bad"]
    with pytest.raises(DataError, match="num_words"):
        imdb.to_indices(ranks, num_words=4)
    with pytest.raises(DataError, match="index_from"):
        imdb.to_indices(ranks, num_words=100, index_from=1)


def test_padding_in_front_and_truncation_keeps_the_end() -> None:
    x = imdb.vectorize(_mini(), num_words=8, maxlen=6)
    assert x.dtype == np.int64 and x.shape == (3, 6)
    assert x[0].tolist() == [0, 0, 1, 4, 5, 6]  # zeros, start token, "the movie good"
    assert x[1].tolist() == [0, 1, 7, 2, 2, 2]  # "bad", then plot/rare beyond num_words, unknownword
    assert x[2].tolist() == [4] * 6  # 7 words + start: the start token and the first word are cut
    assert imdb.vectorize(_mini(), num_words=8, maxlen=4)[1].tolist() == [7, 2, 2, 2]


def test_prediction_encodes_like_training() -> None:
    vocab = imdb.vocabulary(WORD_INDEX, num_words=8)
    indices = imdb.word_indices(vocab)
    for i, text in enumerate(["The movie, good!", "bad plot rare unknownword", "the the the the the the the"]):
        encoded = imdb.encode(text, indices, maxlen=6)
        assert encoded.indices.tolist() == imdb.vectorize(_mini(), 8, 6)[i].tolist()
    long = imdb.encode("bad plot " + "the " * 5 + "unknownword", indices, maxlen=4)
    assert long.truncated == ["bad", "plot", "the", "the"]  # 8 words, the last 4 kept
    assert long.kept == ["the", "the", "the", "unknownword"] and long.oov == ["unknownword"]
    with pytest.raises(DataError, match="no words"):
        imdb.encode(" ?! ", indices, maxlen=4)


def test_word_index_of_a_corpus_ranks_by_frequency() -> None:
    assert imdb.build_word_index(["b a b", "c b a"]) == {"b": 1, "a": 2, "c": 3}


def test_generated_reviews_are_seeded_and_balanced() -> None:
    a = imdb.generate_reviews(40, np.random.default_rng(5))
    assert a == imdb.generate_reviews(40, np.random.default_rng(5))
    assert sum(label for _, label in a) == 20
    for text, label in a:
        words = set(imdb.tokenize(text))
        assert words & set(imdb.POSITIVE if label else imdb.NEGATIVE)
        assert not words & set(imdb.NEGATIVE if label else imdb.POSITIVE)


# --- the archive reader and its cache --------------------------------------------------------------------


def _archive(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


FAKE = {
    "aclImdb/README": b"readme",
    "aclImdb/train/pos/1_9.txt": b"A good movie.<br />Good!",
    "aclImdb/train/pos/0_7.txt": b"good",
    "aclImdb/train/neg/0_2.txt": b"Bad plot.",
    "aclImdb/train/unsup/0_0.txt": b"unlabelled, not read",
    "aclImdb/train/urls_pos.txt": b"http://example",
    "aclImdb/test/neg/3_1.txt": b"The bad, the rare.",
    "aclImdb/test/pos/5_10.txt": "Caf\u00e9 good".encode(),
}


def test_read_archive_sorts_by_label_and_id(tmp_path: Path) -> None:
    splits = imdb.read_archive(_archive(tmp_path / "a.tar.gz", FAKE), WORD_INDEX)
    train, test = splits["train"], splits["test"]
    assert (len(train), len(test)) == (3, 2)
    assert train.labels.tolist() == [0, 1, 1] and train.ids.tolist() == [0, 0, 1]
    assert train.ratings.tolist() == [2, 7, 9]
    assert train.review(2).tolist() == [0, 3, 2, 3]  # "a" is not in the mini index
    assert test.review(0).tolist() == [1, 4, 1, 6]


class Terminal(io.StringIO):
    def isatty(self) -> bool:  # a stderr that says it is a terminal, so that progress bars are drawn into it
        return True


def test_reading_the_reviews_shows_progress_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rnnzoo.data import cache

    archive = _archive(tmp_path / "a.tar.gz", FAKE)
    monkeypatch.setattr(cache, "PROGRESS_DELAY_S", 0.0)  # draw at once, as for the real archive's seconds
    monkeypatch.setattr(sys, "stderr", Terminal())
    imdb.read_archive(archive, WORD_INDEX)
    shown = sys.stderr.getvalue()
    assert f"reading the IMDB reviews:   0%|          | 0.00/{archive.stat().st_size}" in shown  # archive bytes
    assert "tokenizing the train reviews:   0%|          | 0/3" in shown  # reviews
    assert "tokenizing the test reviews:   0%|          | 0/2" in shown
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal: quiet
    imdb.read_archive(archive, WORD_INDEX)
    assert sys.stderr.getvalue() == ""


def test_a_review_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "a.tar.gz", {**FAKE, "aclImdb/test/neg/4_2.txt": b"caf\xe9 bad"})
    with pytest.raises(DataError, match=r"4_2\.txt is not UTF-8"):
        imdb.read_archive(archive, WORD_INDEX)


def test_ranked_reviews_are_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = _archive(tmp_path / "a.tar.gz", FAKE)
    index_file = tmp_path / "index.json"
    index_file.write_text(json.dumps(WORD_INDEX))
    files = {imdb.ARCHIVE: archive, imdb.WORD_INDEX: index_file}
    monkeypatch.setattr(imdb, "require", lambda ds, name: files[name])
    first = imdb.load_ranked()
    assert imdb.cache_path().is_file() and not list(imdb.cache_path().parent.glob("*.tmp*"))
    assert f"normaliser{imdb.NORMALISER_VERSION}" in imdb.cache_path().name

    def no_reading(*args: object) -> None:
        raise AssertionError("the archive was read again")

    monkeypatch.setattr(imdb, "read_archive", no_reading)
    second = imdb.load_ranked()
    assert second["train"].ranks.tolist() == first["train"].ranks.tolist()
    assert second["test"].offsets.tolist() == first["test"].offsets.tolist()
    imdb.cache_path().write_bytes(b"damaged")  # a damaged cache is rebuilt, not an error
    monkeypatch.undo()
    monkeypatch.setattr(imdb, "require", lambda ds, name: files[name])
    assert imdb.load_ranked()["train"].ids.tolist() == first["train"].ids.tolist()


def test_dataset_is_registered_with_both_files() -> None:
    from rnnzoo.data import DATASETS

    ds = DATASETS["imdb"]
    assert ds.resource("aclImdb_v1_labeled.tar.gz").filename == imdb.ARCHIVE
    assert set(ds.resource(imdb.ARCHIVE).member_sets) == set(imdb.REVIEW_SETS)
    assert ds.resource(imdb.WORD_INDEX).md5 == "bfafd718b763782e994055a2d397834f"


# --- models ----------------------------------------------------------------------------------------------

SEED_TABLES = {
    "imdb_lstm": [("input", "(None, 80)"), ("embedding", "(None, 80, 128)"), ("lstm", "(None, 128)"),
                  ("dense", "(None, 1)")],
    "imdb_cnn_lstm": [("input", "(None, 100)"), ("embedding", "(None, 100, 128)"), ("dropout", "(None, 100, 128)"),
                      ("conv1d", "(None, 96, 64)"), ("max_pooling", "(None, 24, 64)"), ("lstm", "(None, 70)"),
                      ("dense", "(None, 1)"), ("activation", "(None, 1)")],
    "imdb_bidirectional_lstm": [("input", "(None, 100)"), ("embedding", "(None, 100, 128)"),
                                ("bidirectional_lstm", "(None, 128)"), ("dropout", "(None, 128)"),
                                ("dense", "(None, 1)")],
}


def _rows(name: str, **overrides: object) -> list[tuple[str, str]]:
    example = get_example(name)
    cfg = example.config(**overrides)
    meta = example.shape_meta(cfg)
    model = example.build_model(cfg, meta)
    inputs, _ = example.synthetic_batch(cfg, meta, 2, torch.Generator().manual_seed(0))
    return [(n, shape) for n, _, shape, _ in layer_rows(model, inputs, example.summary_dynamic_axes)]


@pytest.mark.parametrize("name", IMDB_EXAMPLES)
def test_layer_table_matches_the_seed_notes(name: str) -> None:
    assert _rows(name) == SEED_TABLES[name]


def test_both_lstm_variants_have_the_same_table_and_parameters() -> None:
    assert _rows("imdb_lstm", lstm_regularization="recurrent_dropout") == SEED_TABLES["imdb_lstm"]
    example = get_example("imdb_lstm")
    meta = example.shape_meta(example.config("tiny"))
    fused = example.build_model(example.config("tiny"), meta)
    loop = example.build_model(example.config("tiny", lstm_regularization="recurrent_dropout"), meta)
    loop.load_state_dict(fused.state_dict())  # checkpoints are interchangeable


def test_recurrent_dropout_masks_are_per_sequence() -> None:
    """Keras' masks stay fixed across time: with the hidden mask zeroing all of h for sample 0, that
    sample's output equals a run where every step starts from h = 0 (the same mask at every step)."""
    torch.manual_seed(0)
    lstm = RecurrentDropoutLSTM(4, 6, 0.0, 0.5)
    x = torch.randn(2, 5, 4)
    hidden_mask = torch.ones(2, 6)
    hidden_mask[0] = 0
    out = lstm.step_loop(x, torch.ones(2, 1, 4), hidden_mask)
    with torch.no_grad():
        lstm.weight_hh_l0.zero_()
    no_recurrence = lstm.step_loop(x, torch.ones(2, 1, 4), torch.ones(2, 6))
    torch.testing.assert_close(out[0], no_recurrence[0])
    assert not torch.allclose(out[1], no_recurrence[1])


@pytest.mark.parametrize("name", IMDB_EXAMPLES)
def test_tiny_data_meta_and_shapes(name: str) -> None:
    example = get_example(name)
    cfg = example.config("tiny")
    data = example.load_data(cfg, seed=0)
    assert json.loads(json.dumps(data.meta)) == data.meta  # JSON-able: it goes into checkpoints
    assert data.meta["num_words"] == 50 and data.meta["maxlen"] == 12
    assert 0 < len(data.meta["vocab"]) <= 50 - 3 - 1
    x = data.train.inputs[0]
    assert x.shape[1:] == (12,) and x.dtype == torch.int64 and int(x.max()) < 50
    assert len(data.train) + len(data.val) == 60 and data.train.target.dtype == torch.float32
    assert set(data.train.target.tolist()) == {0.0, 1.0}
    assert example.shape_meta(cfg) == {"num_words": 50, "maxlen": 12, "index_from": 3}


# --- prediction end to end -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """imdb_cnn_lstm trained on generated reviews with the shared loop (maxlen 12, vocabulary 50)."""
    torch.set_num_threads(1)
    example = get_example("imdb_cnn_lstm")
    result = train(example, example.config("tiny"), seed=0, device="cpu",
                   run_dir=tmp_path_factory.mktemp("runs") / "imdb", progress=False, log=lambda *a, **k: None)
    return result.run_dir


def _predict(run_dir: Path, **options: object) -> str:
    """`rnnzoo predict RUN` with these options, through the command line's own parser and command; its
    output (an InputError is raised, as the command raises it)."""
    from rnnzoo.cli import build_parser, cmd_predict

    argv = ["predict", str(run_dir)]
    for key, value in options.items():
        for item in value if isinstance(value, list) else [value]:
            argv += [f"--{key}"] if item is True else [f"--{key}", str(item)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        cmd_predict(build_parser().parse_args(argv))
    return out.getvalue()


LONG = "The movie was superb and the acting brilliant, the story wonderful and i loved it zzyzx " * 2


def test_predict_text_json(tiny_run: Path) -> None:
    lines = _predict(tiny_run, text=["Awful, boring, the worst.", LONG], json=True).splitlines()
    first, second = (json.loads(line) for line in lines)
    assert first["review"] == "text 1" and first["label"] in ("positive", "negative")
    assert 0 <= first["probability"] <= 1 and (first["probability"] >= 0.5) == (first["label"] == "positive")
    assert first["truncated"] == [] and len(first["words"]) == 4
    assert len(second["words"]) == 32 and len(second["truncated"]) == 20
    assert "zzyzx" in second["oov"]


def test_predict_file_and_csv(tiny_run: Path, tmp_path: Path) -> None:
    reviews = tmp_path / "reviews.txt"
    reviews.write_text("A wonderful film.\n\n" + LONG + "\n", encoding="utf-8")
    text = _predict(tiny_run, file=reviews)
    assert "line 1: A wonderful film." in text and "line 3:" in text
    assert "truncated away: the first 20 of 32 words" in text and "out of vocabulary:" in text
    table = tmp_path / "reviews.csv"
    table.write_text('id,text\n1,"Great, moving.\nTwo lines."\n2,Boring\n', encoding="utf-8")
    lines = _predict(tiny_run, file=table, column="text", json=True).splitlines()
    assert [json.loads(line)["review"] for line in lines] == ["line 2", "line 4"]  # where each row starts


@pytest.mark.parametrize("content, options, message", [
    (None, {"text": ["   "]}, "--text #1 is empty"),
    (None, {"text": ["?! ..."]}, "text 1: the review has no words"),
    (None, {}, "give reviews to score"),
    (b"good film\n\xff\xfe bad\n", {}, "not UTF-8 text .* line 2"),
    (b"\x89PNG\r\n\x1a\n\0\0\0IHDR", {}, "binary file"),
    (b"\n\n", {}, "holds no reviews"),
    (b"id,review\n1,good\n", {"column": "text"}, "no column 'text'; its columns: id, review"),
    (b"id,review\n1,\n", {"column": "review"}, "line 2: column 'review' is empty"),
    (b'id,review\n1,"good film\n2,bad film\n', {"column": "review"}, "the row on line 2: .*never closed"),
])
def test_bad_input_is_a_clear_error(tiny_run: Path, tmp_path: Path, content: bytes | None,
                                    options: dict[str, object], message: str) -> None:
    if content is not None:
        path = tmp_path / "reviews.txt"
        path.write_bytes(content)
        options = {**options, "file": path}
    with pytest.raises(InputError, match=message):
        _predict(tiny_run, **options)


def test_csv_without_column_lists_the_columns(tiny_run: Path, tmp_path: Path) -> None:
    path = tmp_path / "reviews.csv"
    path.write_text("id,review\n1,good\n", encoding="utf-8")
    with pytest.raises(InputError, match="--column; its columns: id, review"):
        _predict(tiny_run, file=path)


def test_cli_predict_errors_without_traceback(tiny_run: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["predict", str(tiny_run), "--text", ""]) == 2
    err = capsys.readouterr().err
    assert "empty" in err and "Traceback" not in err
    assert cli_main(["predict", str(tiny_run), "--file", str(tmp_path / "missing.txt")]) == 2
    assert "no file" in capsys.readouterr().err
    assert cli_main(["predict", str(tiny_run), "--text", "Great!", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["review"] == "text 1"


# --- the real data (slow) --------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_reviews_vectorize(real_data: Path) -> None:
    ranked = imdb.load_ranked()
    for split in ("train", "test"):
        reviews = ranked[split]
        assert len(reviews) == 25_000 and int(reviews.labels.sum()) == 12_500  # balanced
        positive = reviews.labels == 1
        assert (reviews.ratings[positive] >= 7).all() and (reviews.ratings[~positive] <= 4).all()
        assert 200 < reviews.lengths.mean() < 260  # Keras' imdb.npz: about 238 words a review
    # the word index was built from the training reviews: the normaliser finds all but 0.01% of their words
    assert (ranked["train"].ranks == 0).mean() < 0.001 and (ranked["test"].ranks == 0).mean() < 0.02
    example = get_example("imdb_lstm")
    data = example.load_data(example.config(), seed=0)
    assert (len(data.train), len(data.val), len(data.test)) == (22_500, 2_500, 25_000)
    assert data.train.inputs[0].shape == (22_500, 80) and int(data.train.inputs[0].max()) < 20_000
    assert len(data.meta["vocab"]) == 20_000 - 3 - 1 and data.meta["vocab"][:3] == ["the", "and", "a"]
    x = data.test.inputs[0]
    assert ((x == 1).sum(1) <= 1).all()  # the start token, where the review fits into 80 words


def test_cnn_lstm_pools_like_keras_and_relu_after_pooling_changes_nothing() -> None:
    import torch
    import torch.nn.functional as F

    from rnnzoo.models.imdb import ImdbCnnLSTM

    torch.manual_seed(0)
    model = ImdbCnnLSTM(50, embedding_dim=6, filters=4, lstm_size=3).double().eval()  # eval: no dropout
    tokens = torch.randint(0, 50, (3, 21))

    def reference(tokens: torch.Tensor) -> torch.Tensor:  # the Keras order: ReLU in the conv, then pooling
        x = model.embedding(tokens).transpose(1, 2)  # (B, C, T)
        x = F.max_pool1d(F.relu(F.conv1d(x, model.conv1d.weight, model.conv1d.bias)), 4)  # (B, 4, 4)
        return model.dense(model.lstm(x.transpose(1, 2))).squeeze(-1)

    grads = []
    for forward in (model, reference):
        model.zero_grad()
        out = forward(tokens)
        out.sum().backward()
        grads.append([out.detach()] + [p.grad.clone() for p in model.parameters()])
    for ours, theirs in zip(*grads, strict=True):
        assert torch.allclose(ours, theirs, atol=1e-12)


