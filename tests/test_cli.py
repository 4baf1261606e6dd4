"""The command line as a user meets it: help, listings, clear errors (exit 2, no traceback)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rnnzoo.cli import main
from rnnzoo.specs import EXAMPLES


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own exits (--help, bad choices)
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_list_names_every_example(capsys) -> None:
    code, out, _ = run(capsys, "list")
    assert code == 0 and all(name in out for name in EXAMPLES)
    lines = out.splitlines()
    memnn = lines[lines.index(next(line for line in lines if line.startswith("babi_memnn "))) + 2]
    assert "--preset tuned, offline (generated data), tiny (generated data)" in memnn  # where 98% is reached


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["train", "babi_memnn", "--help"],
                                  ["predict", "--help"], ["data", "--help"], ["bench", "babi_rnn", "--help"]])
def test_help_explains(capsys, argv: list[str]) -> None:
    code, out, _ = run(capsys, *argv)
    assert code == 0 and "usage:" in out and "example" in out


def test_train_help_lists_the_example_settings(capsys) -> None:
    _, out, _ = run(capsys, "train", "babi_memnn", "--help")
    assert "--attention {question,memory}" in out and "--embedding-dim" in out and "default: 64" in out


def test_summary_prints_the_seed_table_shapes(capsys) -> None:
    code, out, _ = run(capsys, "summary", "babi_memnn")
    assert code == 0
    for shape in ["(None, 68, 64)", "(None, 4, 132)", "(None, 32)", "(None, 22)"]:
        assert shape in out
    assert "Total params:" in out


@pytest.mark.parametrize("argv, message", [
    (["train", "nope"], "invalid choice"),
    (["train", "babi_memnn", "--attention", "sideways"], "invalid choice"),
    (["train", "babi_memnn", "--epochs", "many"], "invalid int value"),
    (["train", "babi_memnn", "--preset", "huge"], "invalid choice"),
    (["evaluate", "runs/does-not-exist"], "no run at"),
    (["predict", "runs/does-not-exist", "--text", "hi"], "no run at"),
    (["data", "verify", "nope"], "unknown dataset"),
    (["data", "add", "babi", "/no/such/file"], "no file at"),
    (["train", "babi_memnn", "--device", "tpu", "--quiet"], "unknown device"),
    # impossible settings are refused before any data is read (these datasets are not in the test cache)
    (["train", "babi_memnn", "--epochs", "0"], "--epochs must be at least 1"),
    (["train", "babi_memnn", "--dropout-rate", "1.5"], "--dropout-rate is a dropout rate"),
    (["train", "babi_memnn", "--dropout-rate", "1"], "--dropout-rate is a dropout rate"),
    (["train", "babi_memnn", "--lr", "0"], "--lr must be positive"),
    (["train", "babi_memnn", "--clip-norm", "0"], "--clip-norm must be positive"),
    (["train", "conv_lstm", "--batchnorm-momentum", "2"], "--batchnorm-momentum must be between 0 and 1"),
    (["train", "imdb_lstm", "--lr", "-0.1"], "--lr must be positive"),
    (["train", "imdb_lstm", "--lr", "fast"], "invalid float value"),
    (["train", "babi_memnn", "--optimizer", "lbfgs"], "unknown optimizer"),
    (["train", "babi_rnn", "--task", "qa21"], "--task must be qa1 to qa20"),
    (["train", "conv_lstm", "--validation-split", "1"], "--validation-split must be between 0 and 1"),
    (["train", "conv_lstm", "--filters", "0"], "--filters must be at least 1"),
    (["bench", "babi_memnn", "--batches", "0"], "must be at least 1"),
    (["bench", "babi_memnn", "--warmup", "-1"], "must be at least 0"),
    (["bench", "babi_memnn", "--warmup-seconds", "-1"], "--warmup-seconds must be at least 0"),
    (["bench", "babi_memnn", "--threads", "-1"], "must be at least 1"),
    (["train", "babi_memnn", "--seed", "-1"], "must be at least 0"),
    (["demo", "--epochs", "0"], "must be at least 1"),
    (["train", "babi_memnn", "--lr", "nan"], "--lr must be a finite number"),
    (["train", "conv_lstm", "--kernel-size", "2"], "--kernel-size must be odd"),
    # a misspelled option is reported first, with the closest option and the subcommand's help to see
    (["train", "babi_memnn", "--learning-rate", "0.1"], "(see: rnnzoo train babi_memnn --help)"),
    (["train", "babi_memnn", "--epcohs", "3"], "unrecognized arguments: --epcohs 3 (did you mean '--epochs'?)"),
    (["train", "babi_memn"], "invalid choice: 'babi_memn' (choose from"),
    (["train", "babi_memn"], "(did you mean 'babi_memnn'?)"),
    (["train", "babi_memnn", "--preset", "tuend"], "(did you mean 'tuned'?)"),
    (["predict", "babi_memnn", "--story", "x", "--questoin", "y"], "(did you mean '--question'?)"),
    (["runs", "imdb_lstn"], "unknown example 'imdb_lstn' (did you mean 'imdb_lstm'?)"),
    (["train", "babi_memnn", "--preset", "tiny", "--generated-stories", "1", "--quiet"], "too few examples"),
])
def test_user_mistakes_are_one_line_errors(capsys, argv: list[str], message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_unknown_words_in_a_question_are_named(capsys, tmp_path: Path) -> None:
    assert run(capsys, "train", "babi_memnn", "--preset", "tiny", "--quiet", "--run-dir", str(tmp_path / "r"))[0] == 0
    code, _, err = run(capsys, "predict", str(tmp_path / "r"), "--story", "Mary moved to the bathroom.",
                       "--question", "Where is the unicorn?")
    assert code == 2 and "unicorn" in err
    code, _, err = run(capsys, "predict", str(tmp_path / "r"), "--story", "Mary flew to Mars.",
                       "--question", "Where is Mary?")
    assert code == 2 and "flew" in err and "Mars" in err and "knows only" in err
    code, _, err = run(capsys, "predict", str(tmp_path / "r"), "--question", "Where is Mary?")
    assert code == 2 and "--story" in err


def test_a_long_story_keeps_its_tail_with_a_warning(capsys, tmp_path: Path) -> None:
    run(capsys, "train", "babi_memnn", "--preset", "tiny", "--quiet", "--run-dir", str(tmp_path / "r"))
    story = " ".join(["Mary moved to the bathroom."] * 40 + ["John went to the hallway."])
    code, out, err = run(capsys, "predict", str(tmp_path / "r"), "--story", story, "--question", "Where is John?")
    assert code == 0 and "keeping the last" in err and "John went to the hallway ." in out


def test_evaluate_prints_json(capsys, tmp_path: Path) -> None:
    run(capsys, "train", "babi_memnn", "--preset", "tiny", "--quiet", "--run-dir", str(tmp_path / "r"))
    code, out, _ = run(capsys, "evaluate", str(tmp_path / "r"), "--json")
    report = json.loads(out)
    assert code == 0 and report["split"] == "test" and 0 <= report["accuracy"] <= 1 and report["examples"] > 0


def test_resume_refuses_changed_settings(capsys, tmp_path: Path) -> None:
    run(capsys, "train", "babi_memnn", "--preset", "tiny", "--quiet", "--run-dir", str(tmp_path / "r"))
    code, _, err = run(capsys, "train", "babi_memnn", "--resume", str(tmp_path / "r"), "--lstm-size", "9")
    assert code == 2 and "only --epochs" in err
    code, _, err = run(capsys, "train", "babi_memnn", "--resume", str(tmp_path / "r"), "--epochs", "3",
                       "--run-dir", str(tmp_path / "elsewhere"))
    assert code == 2 and "(given: --run-dir)" in err and not (tmp_path / "elsewhere").exists()


def test_resume_with_more_epochs_trains_on_with_the_runs_own_settings(capsys, tmp_path: Path) -> None:
    run(capsys, "train", "babi_memnn", "--preset", "tiny", "--quiet", "--no-test", "--run-dir", str(tmp_path / "r"))
    code, _, _ = run(capsys, "train", "babi_memnn", "--resume", str(tmp_path / "r"), "--epochs", "3", "--quiet",
                     "--no-test")
    lines = (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()
    state = torch.load(tmp_path / "r" / "checkpoints" / "last.pt", weights_only=True)
    assert code == 0 and [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    assert state["config"]["lstm_size"] == 6 and state["config"]["epochs"] == 3  # tiny's, not the default 32


def test_a_run_folder_is_never_mixed_with_another_run(capsys, tmp_path: Path) -> None:
    run(capsys, "train", "babi_memnn", "--preset", "tiny", "--quiet", "--run-dir", str(tmp_path / "r"))
    code, _, err = run(capsys, "train", "babi_rnn", "--preset", "tiny", "--quiet", "--run-dir", str(tmp_path / "r"))
    assert code == 2 and "already holds a run" in err and "--resume" in err
    code, _, err = run(capsys, "train", "babi_memnn", "--resume", str(tmp_path / "r"))  # finished: 2 of 2 epochs
    assert code == 2 and "already trained 2 epochs" in err
    code, _, err = run(capsys, "train", "babi_memnn", "--resume", str(tmp_path / "r"), "--epochs", "4", "--seed", "5")
    assert code == 2 and "only --epochs may change (given: --seed)" in err


def test_a_run_folder_that_cannot_be_written_is_a_clear_error(capsys, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    code, _, err = run(capsys, "train", "babi_memnn", "--preset", "tiny", "--quiet", "--run-dir",
                       str(tmp_path / "file" / "run"))
    assert code == 2 and "cannot write the run folder" in err and "Traceback" not in err


def test_ctrl_c_in_training_exits_with_130(capsys, monkeypatch, tmp_path: Path) -> None:
    import rnnzoo.training

    def stopped_run(*args, **kwargs):  # what train() returns after Ctrl-C (tested in test_training.py)
        return rnnzoo.training.TrainResult(tmp_path, [], None, None, None, True)

    monkeypatch.setattr(rnnzoo.training, "train", stopped_run)
    code, _, _ = run(capsys, "train", "babi_memnn", "--preset", "tiny", "--quiet")
    assert code == 130  # so that `rnnzoo train ... && rnnzoo evaluate ...` stops there


def test_bench_reports_throughput_and_flops(capsys) -> None:
    code, out, _ = run(capsys, "bench", "babi_memnn", "--preset", "tiny", "--batches", "2", "--warmup-seconds", "0",
                       "--json")
    result = json.loads(out)
    assert code == 0 and result["samples_per_s"] > 0 and result["forward_flops_per_sample"] > 0


def test_data_list_shows_state_and_path(capsys, tmp_path: Path) -> None:
    code, out, _ = run(capsys, "data", "list")
    line = next(line for line in out.splitlines() if line.startswith("babi "))
    assert code == 0 and "missing" in line and str(tmp_path / "cache" / "babi" / "babi_tasks_1-20_v1-2.tar.gz") in line


def test_data_add_imports_the_real_archive(capsys, real_data: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("RNNZOO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RNNZOO_MIRROR")
    code, out, err = run(capsys, "data", "add", "babi", str(real_data / "babi/tasks_1-20_v1-2_en_en-10k.tar.gz"))
    assert code == 0, err
    code, out, _ = run(capsys, "data", "verify", "babi")
    assert code == 0 and "present" in out


def test_a_cache_folder_that_cannot_be_written_is_a_clear_error(capsys, monkeypatch, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("RNNZOO_HOME", str(tmp_path / "file"))
    code, _, err = run(capsys, "data", "fetch", "mnist")
    assert code == 2 and "cannot create the cache folder" in err and "RNNZOO_HOME" in err


def test_predict_refuses_options_of_another_example(capsys, tmp_path: Path) -> None:
    run(capsys, "train", "babi_memnn", "--preset", "tiny", "--quiet", "--run-dir", str(tmp_path / "r"))
    code, _, err = run(capsys, "predict", str(tmp_path / "r"), "--text", "A fine film.")
    assert code == 2 and "--text is for IMDB runs" in err
    code, _, err = run(capsys, "predict", str(tmp_path / "r"), "--story", "Mary moved to the office.",
                       "--question", "Where is Mary?", "--test-movies", "5")  # an option with a default, too
    assert code == 2 and "--test-movies is for moving squares runs" in err


def test_predict_help_groups_the_options_by_dataset(capsys) -> None:
    _, out, _ = run(capsys, "predict", "--help")
    groups = {"bAbI (babi_memnn, babi_rnn, babi_memn2n)": ["--story", "--story-file", "--question"],
              "IMDB (imdb_lstm, imdb_cnn_lstm, imdb_bidirectional_lstm)": ["--text", "--file", "--column"],
              "MNIST (mnist_hierarchical_rnn)": ["--image", "--show"],
              "moving squares (conv_lstm)": ["--movie", "--resize", "--frames", "--ahead", "--out", "--test-movies"]}
    titles = [out.index(title + ":") for title in groups]
    assert titles == sorted(titles)
    for (title, options), start, end in zip(groups.items(), titles, titles[1:] + [out.index("examples:")]):
        assert all(f"  {option} " in out[start:end] for option in options), title


def test_conv_lstm_predict_defaults_fit_the_runs_movies(capsys, tmp_path: Path) -> None:
    run(capsys, "train", "conv_lstm", "--preset", "tiny", "--quiet", "--run-dir", str(tmp_path / "r"))
    frames = json.loads((tmp_path / "r" / "config.json").read_text())["config"]["frames"]
    assert frames < 15  # the original's 7 given + 8 predicted would not fit
    code, out, err = run(capsys, "predict", str(tmp_path / "r"), "--json")
    report = json.loads(out)
    assert code == 0, err
    assert len(report["frame_numbers"]) == min(8, frames + 1 - min(7, max(2, frames // 2)))


def test_a_run_without_a_finished_epoch_points_to_its_last_checkpoint(capsys, tmp_path: Path) -> None:
    run(capsys, "train", "babi_memnn", "--preset", "tiny", "--quiet", "--run-dir", str(tmp_path / "r"))
    (tmp_path / "r" / "checkpoints" / "best.pt").unlink()  # as after Ctrl-C in the first epoch
    code, _, err = run(capsys, "evaluate", str(tmp_path / "r"))
    assert code == 2 and "--checkpoint last" in err and "--resume" in err


def test_a_failed_data_load_leaves_no_run_folder_behind(capsys, monkeypatch, tmp_path: Path) -> None:
    from rnnzoo.data.cache import DataError
    from rnnzoo.specs import get_example

    def no_data(*args, **kwargs):
        raise DataError("no network")

    monkeypatch.setattr(type(get_example("babi_memnn")), "load_data", no_data)
    monkeypatch.setenv("RNNZOO_RUNS", str(tmp_path / "runs"))
    code, _, err = run(capsys, "train", "babi_memnn", "--preset", "tiny", "--quiet")
    assert code == 2 and "no network" in err
    assert not list((tmp_path / "runs").glob("babi_memnn/*"))
    code, _, _ = run(capsys, "train", "babi_memnn", "--preset", "tiny", "--quiet", "--run-dir", str(tmp_path / "r"))
    assert code == 2 and not (tmp_path / "r").exists()


def test_the_rnnzoo_script_runs_the_command_line(capsys, monkeypatch) -> None:
    from rnnzoo.__main__ import run as script

    monkeypatch.setattr("sys.argv", ["rnnzoo", "list"])
    assert script() == 0 and "babi_memnn" in capsys.readouterr().out
