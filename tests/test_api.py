"""The Python API (rnnzoo.load / train / examples), its typed results, the README's example, and the one-way
layout of the modules."""

from __future__ import annotations

import ast
import contextlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import rnnzoo
from rnnzoo.cli import main
from rnnzoo.specs.babi import BabiAnswer
from rnnzoo.specs.conv_lstm import MoviePrediction
from rnnzoo.specs.imdb import ReviewScore
from rnnzoo.specs.mnist import DigitPrediction

REPO = Path(__file__).resolve().parents[1]


def quiet_train(example: str, folder: Path, **settings: object) -> rnnzoo.runs.Run:  # type: ignore[name-defined]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return rnnzoo.train(example, preset="tiny", run_dir=folder, progress=False, **settings)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny run of each family, trained once for the module."""
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("api-runs")
    return {name: quiet_train(name, root / name / "run").path  # laid out as runs/<example>/<id>
            for name in ("babi_memnn", "babi_rnn", "imdb_lstm", "mnist_hierarchical_rnn", "conv_lstm")}


def test_examples_lists_each_example_with_its_presets() -> None:
    infos = rnnzoo.examples()
    assert [i.name for i in infos] == ["babi_memnn", "babi_rnn", "babi_memn2n", "imdb_lstm", "imdb_cnn_lstm",
                                       "imdb_bidirectional_lstm", "mnist_hierarchical_rnn", "conv_lstm"]
    memnn = infos[0]
    assert "faithful" in memnn.presets and "tuned" in memnn.presets and "generated" in memnn.presets["tiny"]
    assert memnn.data == "bAbI v1.2" and memnn.typical_time


def test_train_returns_the_loaded_run_and_load_finds_it_by_example_name(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("RNNZOO_RUNS", str(tmp_path / "runs"))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        run = rnnzoo.train("babi_rnn", preset="tiny", epochs=1, progress=False)
    assert run.name == "babi_rnn" and run.epoch == 1 and run.config.epochs == 1 and run.test is not None
    again = rnnzoo.load("babi_rnn")
    assert again.path == run.path and again.checkpoint["epoch"] == 1
    assert rnnzoo.load(run.path / "checkpoints" / "last.pt").path == run.path
    with pytest.raises(rnnzoo.InputError, match="has no setting epcohs .*did you mean 'epochs'"):
        rnnzoo.train("babi_rnn", preset="tiny", epcohs=1)
    with pytest.raises(rnnzoo.InputError, match="no run at 'babi_rn' .*did you mean 'babi_rnn'"):
        rnnzoo.load("babi_rn")
    with pytest.raises(rnnzoo.InputError, match="babi_memnn has no trained run .*rnnzoo train babi_memnn"):
        rnnzoo.load("babi_memnn")


def test_babi_predict_returns_the_answer_top_and_attention_per_sentence(runs: dict[str, Path]) -> None:
    model = rnnzoo.load(runs["babi_memnn"])
    result = model.predict(story="Mary moved to the bathroom. John went to the hallway.", question="Where is Mary?")
    assert isinstance(result, BabiAnswer)
    assert result.answer == result.top[0][0] and result.probability == result.top[0][1] and len(result.top) == 3
    assert [a.sentence for a in result.attention] == ["Mary moved to the bathroom .", "John went to the hallway ."]
    assert sum(a.weight for a in result.attention) == pytest.approx(1.0)
    assert json.loads(json.dumps(result.to_dict()))["attention"][0]["sentence"] == "Mary moved to the bathroom ."
    assert rnnzoo.load(runs["babi_rnn"]).predict("Mary moved to the bathroom.", "Where is Mary?").attention is None
    with pytest.raises(rnnzoo.InputError, match="unknown word.*unicorn"):
        model.predict(story="The unicorn moved to the bathroom.", question="Where is Mary?")
    with pytest.raises(rnnzoo.InputError, match="needs both a story and a question"):
        model.predict(story="Mary moved to the bathroom.", question=" ")
    with pytest.raises(rnnzoo.InputError, match="as text"):
        model.predict(story=["Mary"], question="Where is Mary?")
    long = model.predict(story="Mary moved to the bathroom. " * 40, question="Where is Mary?")
    assert long.warnings and "keeping the last" in long.warnings[0]


def test_imdb_predict_takes_a_string_or_a_list(runs: dict[str, Path]) -> None:
    model = rnnzoo.load(runs["imdb_lstm"])
    one = model.predict("A moving, beautifully acted film.")
    assert isinstance(one, ReviewScore) and one.label == ("positive" if one.probability >= 0.5 else "negative")
    many = model.predict(["A moving film.", "zzyzx " * 30])
    assert len(many) == 2 and many[1].oov == ["zzyzx"] and len(many[1].truncated) == 30 - 12
    assert "none of its words" in many[1].warnings[0]
    for bad, message in ((["fine", 3], "a string or a list of strings"), ([], "give reviews"),
                         (["fine", "  "], "review 2 is empty"), (["?! ..."], "review 1: the review has no words")):
        with pytest.raises(rnnzoo.InputError, match=message):
            model.predict(bad)
    with pytest.raises(rnnzoo.InputError, match="^line 7 is empty"):  # named as the caller names it
        model.predict(["fine", " "], names=["line 6", "line 7"])
    with pytest.raises(rnnzoo.InputError, match="one name per review"):
        model.predict(["fine"], names=[])


def test_mnist_predict_takes_paths_pil_images_and_arrays(runs: dict[str, Path], tmp_path: Path) -> None:
    model = rnnzoo.load(runs["mnist_hierarchical_rnn"])
    canvas = np.full((60, 50), 255, np.uint8)
    canvas[10:50, 20:28] = 0  # a dark "1" on light paper
    path = tmp_path / "one.png"
    Image.fromarray(canvas).save(path)
    by_path = model.predict(str(path))
    assert isinstance(by_path, DigitPrediction) and by_path.source == str(path) and by_path.seen.shape == (28, 28)
    assert by_path.digit == by_path.top[0][0] and sum(by_path.probabilities) == pytest.approx(1.0, abs=1e-5)
    results = model.predict([path, Image.fromarray(canvas), canvas, canvas.astype(np.float32) / 255])
    assert [r.source for r in results] == [str(path), "image 2", "image 3", "image 4"]
    for r in results[1:]:  # the same picture, however it is given, is the same input
        np.testing.assert_allclose(r.seen, by_path.seen, atol=1e-6)
    assert "seen" in by_path.to_dict() and len(by_path.to_dict()["seen"]) == 28
    with pytest.raises(rnnzoo.InputError):
        model.predict(tmp_path / "missing.png")
    with pytest.raises(rnnzoo.InputError):
        model.predict(np.full((10, 10), np.nan, np.float32))


def test_conv_lstm_predict_continues_a_generated_movie_or_ones_own(runs: dict[str, Path], tmp_path: Path) -> None:
    model = rnnzoo.load(runs["conv_lstm"])
    size = model.meta["size"]  # the tiny preset: 12x12 movies of 6 frames
    generated = model.predict(11, frames=3, ahead=3, test_movies=2)
    assert isinstance(generated, MoviePrediction) and generated.movie == 11 and "test movie" in generated.source
    assert generated.predicted.shape == (3, size, size) and generated.frame_numbers == [4, 5, 6]
    assert len(generated.scores.model_iou) == 3 and generated.test_movies["movies"] == [10, 11]
    # one's own movie: a square moving right, as an array, a .npy file, a GIF and a folder of PNG frames
    frames = np.zeros((6, size, size), np.float32)
    for t in range(6):
        frames[t, 4:8, t:t + 4] = 1
    np.save(tmp_path / "movie.npy", frames)
    pictures = [Image.fromarray((f * 255).astype(np.uint8)) for f in frames]
    pictures[0].save(tmp_path / "movie.gif", save_all=True, append_images=pictures[1:])
    (tmp_path / "pngs").mkdir()
    for t, picture in enumerate(pictures):
        picture.save(tmp_path / "pngs" / f"frame{t:02d}.png")
    results = [model.predict(source, frames=4, ahead=2) for source in
               (frames, frames[..., None], str(tmp_path / "movie.npy"), tmp_path / "movie.gif", tmp_path / "pngs")]
    for r in results:
        assert r.movie is None and r.given.shape == (4, size, size) and r.true.shape == (2, size, size)
        np.testing.assert_allclose(r.predicted, results[0].predicted, atol=1e-6)
        assert r.scores.base_iou[0] == pytest.approx(3 / 5)  # copy-last and the moved square: 3 of 5 columns
    unknown_future = model.predict(frames[:4], frames=4, ahead=2)
    assert unknown_future.true is None and unknown_future.scores is None and len(unknown_future.predicted) == 2
    big = np.zeros((5, 2 * size, 2 * size), np.float32)
    with pytest.raises(rnnzoo.InputError, match=f"this model reads {size}x{size}"):
        model.predict(big)
    assert model.predict(big, resize=True).given.shape[1:] == (size, size)
    for bad, message in ((np.full((4, size, size), 2.0), r"values must lie in \[0, 1\]"),
                         (np.zeros((4, size)), "has the shape"), ("no/such.gif", "no movie at"),
                         (99, "no movie 99"), ("11", "as an int")):
        with pytest.raises(rnnzoo.InputError, match=message):
            model.predict(bad)


def test_iou_scores_grey_and_blurred_guesses_below_copying_the_last_frame() -> None:
    import torch

    from rnnzoo.data.movies import generate_movies
    from rnnzoo.specs.conv_lstm import bce, constant_bce, iou

    _, shifted = generate_movies(60, 15, rng=np.random.default_rng(0))
    true = torch.from_numpy(shifted[:, 7:])  # frames 8..15
    copy_last = torch.from_numpy(shifted[:, 6:7]).expand_as(true)
    dims = (2, 3, 4)
    assert iou(true, true, dims).min() == 1  # exact frames score 1
    for flat in (0.5, 0.51, 0.1, 1.0):  # no constant frame beats copying the last frame
        assert iou(torch.full_like(true, flat), true, dims).mean() < iou(copy_last, true, dims).mean() / 2
    blurred = torch.nn.functional.avg_pool2d(true[..., 0].reshape(-1, 1, 40, 40), 5, 1, 2).reshape(true.shape)
    assert iou(blurred, true, dims).mean() < 0.7
    empty = torch.zeros(1, 1, 4, 4, 1)
    assert iou(empty, empty, dims).item() == 1  # both empty: nothing to miss
    # BCE rewards hedging: the best constant frame beats a sharp copy-last; the output reports it beside
    assert constant_bce(true, dims).mean() < bce(copy_last, true, dims).mean()


def test_the_readme_python_example_runs(tmp_path: Path, monkeypatch) -> None:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Use from Python"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.setenv("RNNZOO_RUNS", str(tmp_path / "runs"))
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        exec(compile(code, "README.md", "exec"), {})
    printed = out.getvalue()
    assert "babi_memnn" in printed and "'answer':" in printed


def test_cli_json_for_every_family_names_the_run_used(runs: dict[str, Path], tmp_path: Path, capsys) -> None:
    canvas = np.zeros((28, 28), np.uint8)
    canvas[5:20, 12:16] = 255
    Image.fromarray(canvas).save(tmp_path / "d.png")
    story = tmp_path / "story.txt"
    story.write_text("Mary moved to the bathroom.\nJohn went to the hallway.\n")
    calls = {"babi_memnn": ["--story-file", str(story), "--question", "Where is Mary?"],
             "imdb_lstm": ["--text", "A fine film."],
             "mnist_hierarchical_rnn": ["--image", str(tmp_path / "d.png")],
             "conv_lstm": ["--movie", "10", "--frames", "3", "--ahead", "2", "--out", str(tmp_path)]}
    for name, options in calls.items():
        assert main(["predict", str(runs[name]), "--json", "--device", "cpu", *options]) == 0
        out, err = capsys.readouterr()
        assert isinstance(json.loads(out.splitlines()[0]), dict)
        assert f"run: {runs[name].resolve()} ({name}, best checkpoint, epoch " in err
    assert main(["predict", str(runs["babi_memnn"]), "--story", "x", "--story-file", str(story),
                 "--question", "Where?"]) == 2
    assert "not both" in capsys.readouterr().err


def test_runs_lists_each_run_with_its_scores(runs: dict[str, Path], monkeypatch, capsys) -> None:
    monkeypatch.setenv("RNNZOO_RUNS", str(runs["babi_memnn"].parent.parent))
    capsys.readouterr()
    assert main(["runs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["example", "started", "epochs"] and len(lines) == 1 + len(runs)
    memnn = next(line for line in lines if line.startswith("babi_memnn"))
    assert " 2/2 " in memnn and "accuracy 0." in memnn and str(runs["babi_memnn"]) in memnn
    assert main(["runs", "conv_lstm", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["example"] == "conv_lstm" and record["metric"] == "loss" and record["epochs_done"] == 2


def test_command_line_rough_edges(capsys, tmp_path: Path) -> None:
    assert main(["--version"]) == 0 and capsys.readouterr().out.strip() == f"rnnzoo {rnnzoo.__version__}"
    assert main(["train", "babi_memnn", "--help"]) == 0
    help_text = capsys.readouterr().out
    assert "presets (--preset NAME):" in help_text and "tuned: " in help_text and "--lstm-size 64" in help_text
    assert help_text.count("(default: 120)") == 1 and "original's 120" not in help_text  # a default, once
    assert main(["summary", "babi_memnn", "--epochs", "3"]) == 2  # summary takes no training options
    assert "unrecognized arguments: --epochs" in capsys.readouterr().err
    assert main(["summary", "babi_memnn", "--lstm-size", "7"]) == 0
    assert main(["completion", "bash"]) == 0 and "babi_memnn" in capsys.readouterr().out
    from rnnzoo.specs.settings import CARDS

    assert CARDS["babi_rnn"].config(task="3").task == "qa3" and CARDS["babi_rnn"].config(task=7).task == "qa7"
    assert main(["train", "babi_memnn", "--preset", "tiny", "--epochs", "1", "--quiet", "--no-test",
                 "--run-dir", str(tmp_path / "r")]) == 0
    assert "trains on generated data, not bAbI v1.2" in capsys.readouterr().err


def test_the_command_line_starts_without_torch() -> None:
    code = "import rnnzoo.cli, sys; assert 'torch' not in sys.modules and 'numpy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    for argv in (["--help"], ["list"], ["train", "babi_memnn", "--help"], ["completion", "zsh"]):
        code = (f"import sys; from rnnzoo.cli import main; main({argv!r}); "
                "assert 'torch' not in sys.modules, 'torch imported'")
        subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, capture_output=True)
    code = ("import sys, rnnzoo; names = [e.name for e in rnnzoo.examples()]; "
            "assert 'babi_memn2n' in names and 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


LAYERS = {  # each layer and the layers it must not import (imports run faces -> runs/training -> specs -> models)
    "rnnzoo/specs": ("rnnzoo.runs", "rnnzoo.training", "rnnzoo.cli", "rnnzoo.api", "rnnzoo.demo", "rnnzoo.render",
                     "rnnzoo.readers", "rnnzoo.bench"),
    "rnnzoo/models": ("rnnzoo.specs", "rnnzoo.runs", "rnnzoo.training", "rnnzoo.cli", "rnnzoo.api", "rnnzoo.data"),
    "rnnzoo/data": ("rnnzoo.specs", "rnnzoo.models", "rnnzoo.runs", "rnnzoo.training", "rnnzoo.cli", "rnnzoo.api"),
    "rnnzoo/training.py": ("rnnzoo.runs", "rnnzoo.cli", "rnnzoo.api", "rnnzoo.demo"),
    "rnnzoo/runs.py": ("rnnzoo.cli", "rnnzoo.api", "rnnzoo.demo"),
}


def imported(path: Path) -> set[str]:
    """Every module a file imports, at any level (TYPE_CHECKING blocks and function bodies too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


@pytest.mark.parametrize("layer", list(LAYERS))
def test_imports_run_one_way(layer: str) -> None:
    root = REPO / layer
    files = [root] if root.is_file() else sorted(root.rglob("*.py"))
    for path in files:
        bad = {m for m in imported(path) if any(m == f or m.startswith(f + ".") for f in LAYERS[layer])}
        assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"
