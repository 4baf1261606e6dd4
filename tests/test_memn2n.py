"""babi_memn2n: sentence-level data, the model's encodings, hops and tying, random noise, linear start and the
step-size schedule, training end to end with resume, and predict's attention per hop."""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnzoo.data import babi
from rnnzoo.errors import InputError
from rnnzoo.models.memn2n import MemN2N, bag_of_words_weights, code_position_encoding_weights, position_encoding_weights
from rnnzoo.specs import get_example
from rnnzoo.specs.babi import KNOWN_SENTENCE_SHAPES, BabiAnswer, linear_start_length, step_size
from rnnzoo.summary import layer_rows
from rnnzoo.training import load_checkpoint, train

EXAMPLE = get_example("babi_memn2n")


def _model(**settings) -> tuple[MemN2N, dict]:
    cfg = EXAMPLE.config("tiny", **settings)
    meta = EXAMPLE.shape_meta(cfg)
    torch.manual_seed(0)
    model = EXAMPLE.build_model(cfg, meta)
    assert isinstance(model, MemN2N)
    return model, meta


# --- data ------------------------------------------------------------------------------------------------


def test_vectorize_sentences_keeps_the_last_sentences_newest_last() -> None:
    lines = ["1 Mary moved to the bathroom.", "2 John went to the hallway.", "3 Sandra went back to the garden.",
             "4 Where is Mary? \tbathroom\t1", "1 Daniel moved to the office.", "2 Where is Daniel? \toffice\t1"]
    data = babi.parse_stories(lines)
    vocab = babi.build_vocab(babi.flatten(data))
    idx = babi.word_index(vocab)
    stories, questions, answers = babi.vectorize_sentences(data, idx, memory_size=2, sentence_maxlen=7,
                                                           query_maxlen=5)
    assert stories.shape == (2, 2, 7) and questions.shape == (2, 5) and answers.tolist() == [idx["bathroom"],
                                                                                            idx["office"]]
    # a story longer than the memory keeps its last sentences, the newest in the last row
    assert stories[0, 0].tolist() == [0] + [idx[w] for w in ["John", "went", "to", "the", "hallway", "."]]
    assert stories[0, 1].tolist() == [idx[w] for w in ["Sandra", "went", "back", "to", "the", "garden", "."]]
    # a shorter one is padded in front with empty sentences
    assert stories[1, 0].tolist() == [0] * 7 and stories[1, 1, -1] == idx["."]
    assert questions[0].tolist() == [0] + [idx[w] for w in ["Where", "is", "Mary", "?"]]


def test_example_data_is_sentence_level_and_holds_out_whole_stories() -> None:
    cfg = EXAMPLE.config("tiny", generated_stories=40)
    data = EXAMPLE.load_data(cfg, seed=0)
    M, W, Q = (data.meta[k] for k in ("memory_size", "sentence_maxlen", "query_maxlen"))
    assert (M, W, Q) == (5, 6, 3)  # up to 10 sentences, the last 5 kept; words lowercased, no '.' or '?'
    assert data.meta["vocab"] == sorted(data.meta["vocab"]) and "mary" in data.meta["vocab"]
    assert not {".", "?", "Mary"} & set(data.meta["vocab"])
    for split in (data.train, data.val, data.test):
        stories, questions = split.inputs
        assert stories.shape[1:] == (M, W) and questions.shape[1:] == (Q,)
        assert (stories[:, -1] != 0).any(-1).all()  # the newest sentence is the last row
    assert len(data.train) + len(data.val) == 40 * 5


def test_real_qa1_1k_sentence_facts(real_data) -> None:
    cfg = EXAMPLE.config()
    data = EXAMPLE.load_data(cfg, seed=0)
    meta = data.meta
    assert (len(meta["vocab"]), meta["memory_size"], meta["sentence_maxlen"], meta["query_maxlen"]) == \
        KNOWN_SENTENCE_SHAPES["qa1", "1k"]
    assert (len(data.train), len(data.val), len(data.test)) == (900, 100, 1000)  # the paper's 10% validation
    assert EXAMPLE.shape_meta(cfg)["memory_size"] == meta["memory_size"]
    big = EXAMPLE.load_data(EXAMPLE.config(task="qa3"), seed=0)
    assert big.meta["memory_size"] == 50  # QA3's stories run to 228 sentences: the last 50 are kept


# --- the model -------------------------------------------------------------------------------------------


def test_position_encoding_is_the_papers_formula() -> None:
    words = torch.tensor([[0, 0, 5, 3, 9], [4, 0, 2, 0, 7], [0, 0, 0, 0, 0]])  # padding anywhere, an empty row
    d = 4
    weights = position_encoding_weights(words, d)
    assert weights.shape == (3, 5, d)
    for row in range(3):
        positions = [i for i in range(5) if words[row, i] != 0]
        J = len(positions)
        for i in range(5):
            for k in range(1, d + 1):
                if i in positions:
                    j = positions.index(i) + 1
                    expected = (1 - j / J) - (k / d) * (1 - 2 * j / J)
                else:
                    expected = 0.0
                assert float(weights[row, i, k - 1]) == pytest.approx(expected, abs=1e-6), (row, i, k)
    assert torch.equal(bag_of_words_weights(words, d), (words != 0).float()[..., None].expand(3, 5, d))


def test_code_position_encoding_is_the_authors_formula_with_one_length() -> None:
    words = torch.tensor([[0, 0, 5, 3, 9], [4, 0, 2, 0, 7]])
    d, J = 4, 6
    weights = code_position_encoding_weights(words, d, J)
    for row in range(2):
        positions = [i for i in range(5) if words[row, i] != 0]
        for i in range(5):
            for k in range(1, d + 1):
                j = positions.index(i) + 1 if i in positions else None
                expected = 0.0 if j is None else 1 + 4 * (k - (d + 1) / 2) * (j - (J + 1) / 2) / (d * J)
                assert float(weights[row, i, k - 1]) == pytest.approx(expected, abs=1e-6), (row, i, k)
    # the same words at the same places weigh the same in a sentence of any length (J is the task's)
    assert torch.equal(weights[0, 2:4], code_position_encoding_weights(torch.tensor([[5, 3]]), d, J)[0])
    assert torch.equal(code_position_encoding_weights(words, d), code_position_encoding_weights(words, d, 5))


@pytest.mark.parametrize("tying, empty", [("adjacent", "attended"), ("layerwise", "masked")])
def test_shapes_and_a_gradient_on_every_parameter(tying: str, empty: str) -> None:
    model, meta = _model(weight_tying=tying, hops=3, empty_memories=empty)
    (story, question), target = EXAMPLE.synthetic_batch(EXAMPLE.config("tiny"), meta, 3,
                                                        torch.Generator().manual_seed(0))
    assert story.shape == (3, 5, 6) and question.shape == (3, 3)
    logits, attention = model.read(story, question)
    assert logits.shape == (3, 20) and len(attention) == 3 and all(p.shape == (3, 5) for p in attention)
    present = story.ne(0).any(-1)
    assert (~present).any()
    for p in attention:  # a softmax over the memory; masked, the empty slots get nothing
        assert torch.allclose(p.sum(1), torch.ones(3))
        assert (p[~present] == 0).all() if empty == "masked" else (p[~present] > 0).all()
    torch.nn.functional.cross_entropy(logits, target).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {name}"
    names = {name.split(".")[0] for name, _ in model.named_parameters()}
    if tying == "adjacent":  # A^k+1 = C^k, B = A^1, W = C^K: K + 1 embeddings and nothing else
        assert names == {"embeddings", "temporal"} and len(model.embeddings) == 4
    else:
        assert names == {"embeddings", "temporal", "query_embedding", "answer_weight", "hop_map"}
        assert len(model.embeddings) == 2


def test_adjacent_tying_answers_with_the_last_output_embedding() -> None:
    model, meta = _model(hops=2, temporal_encoding=False)
    model.eval()
    story, question = torch.randint(1, 20, (2, 5, 6)), torch.randint(1, 20, (2, 3))
    with torch.no_grad():
        logits = model(story, question)
        model.embeddings[-1].weight.mul_(2)  # W = C^K: doubling C^K changes the answer layer too
        assert not torch.allclose(model(story, question), logits)


def test_summary_rows_read_like_the_model(real_data) -> None:
    cfg = EXAMPLE.config()
    meta = EXAMPLE.shape_meta(cfg)
    model = EXAMPLE.build_model(cfg, meta)
    inputs, _ = EXAMPLE.synthetic_batch(cfg, meta, 2, torch.Generator().manual_seed(0))
    rows = [(name, kind, shape) for name, kind, shape, _ in layer_rows(model, inputs)]
    memory = [row for k in range(4) for row in (
        (f"embeddings.{k}", "Embedding", "(None, 10, 6, 20)"), ("sentence_sum", "Add", "(None, 10, 20)"),
        (f"temporal.{k}", "Embedding", "(None, 10, 20)"), ("add_time", "Add", "(None, 10, 20)"))]
    hop = [("match", "Dot", "(None, 10)"), ("attention", "Activation", "(None, 10)"),
           ("read_out", "Dot", "(None, 20)"), ("update", "Add", "(None, 20)")]
    assert rows == [("input_1", "Input", "(None, 10, 6)"), ("input_2", "Input", "(None, 3)"),
                    ("embeddings.0", "Embedding", "(None, 3, 20)"), ("question_sum", "Add", "(None, 20)"),
                    *memory, *hop * 3, ("answer", "Dense", "(None, 20)")]


def test_linear_mode_leaves_out_the_softmax() -> None:
    model, meta = _model()
    model.eval()
    story, question = torch.randint(1, 20, (2, 5, 6)), torch.randint(1, 20, (2, 3))
    story[0, :2] = 0
    with torch.no_grad():
        model.linear.fill_(1)
        _, attention = model.read(story, question)
    assert not torch.allclose(attention[0].sum(1), torch.ones(2)) and (attention[0][0, :2] == 0).all()
    assert (attention[0] < 0).any()  # raw match scores, not probabilities


def test_random_noise_shifts_ages_only_while_training() -> None:
    model, _ = _model(memory_size=8, random_noise=0.5)
    present = torch.ones(400, 8, dtype=torch.bool)
    present[:200, :4] = False  # 200 stories of 4 sentences, 200 of 8
    model.eval()
    assert torch.equal(model.ages(present), torch.arange(7, -1, -1).expand(400, 8))
    model.train()
    torch.manual_seed(0)
    ages = model.ages(present)
    assert ages.shape == (400, 8) and (ages >= 0).all() and (ages <= 7).all()
    short, full = ages[:200, 4:].flip(1), ages[200:].flip(1)  # (stories, sentences), newest first
    assert (short[:, 1:] > short[:, :-1]).all()  # distinct ages, in the sentences' order
    assert (short[:, -1] <= 4 + math.ceil(0.5 * 4) - 1).all() and (short[:, -1] > 3).any()  # gaps, at most 2
    assert (full[:, 1:] >= full[:, :-1]).all() and (full[:, -1] == 7).all()  # capped at the memory's last age
    assert (short[:, 0] > 0).any() and (full[:, 0] > 0).any()  # an empty memory can come after the newest
    model.random_noise = 0.0
    assert torch.equal(model.ages(present), torch.arange(7, -1, -1).expand(400, 8))


# --- the schedule ----------------------------------------------------------------------------------------


def test_linear_start_ends_when_the_validation_loss_stops_falling() -> None:
    assert linear_start_length([], 20) is None
    assert linear_start_length([3.0, 2.0, 1.5], 20) is None  # still falling
    assert linear_start_length([3.0, 2.0, 2.5, 1.0], 20) == 3  # epoch 3 did not fall: softmax from epoch 4 on
    assert linear_start_length([3.0, 2.0, float("nan")], 20) == 3
    assert linear_start_length([5.0, 4.0, 3.0, 2.0], 3) == 3  # at most `most` epochs


def test_step_size_halves_every_25_epochs_of_its_phase() -> None:
    cfg = EXAMPLE.config()
    assert (cfg.lr, cfg.linear_start_lr, cfg.clip_norm) == (0.16, 0.16, 1.25)  # the code's 0.005 x 32, 40 / 32
    assert (cfg.epochs, cfg.linear_start_epochs, cfg.linear_start_end) == (120, 20, "epochs")
    assert [step_size(cfg, e, False) for e in (0, 24, 25, 50, 99)] == [0.16, 0.16, 0.08, 0.04, 0.02]
    assert [step_size(cfg, e, False, since=20) for e in (20, 44, 45, 119)] == [0.16, 0.16, 0.08, 0.02]
    assert step_size(cfg, 19, True) == 0.16
    assert step_size(EXAMPLE.config(lr_halving_epochs=0), 99, False) == 0.16


def test_begin_epoch_switches_the_model_and_sets_the_step_size() -> None:
    cfg = EXAMPLE.config(linear_start_end="validation", lr=0.32)  # the paper's text
    model, _ = _model()
    optimizer = EXAMPLE.make_optimizer(cfg, model.parameters())
    history = [{"val_loss": 2.0}, {"val_loss": 1.0}]
    EXAMPLE.begin_epoch(cfg, 2, history, model, optimizer)
    assert int(model.linear) == 1 and optimizer.param_groups[0]["lr"] == 0.16
    history.append({"val_loss": 1.2})
    EXAMPLE.begin_epoch(cfg, 3, history, model, optimizer)
    assert int(model.linear) == 0 and optimizer.param_groups[0]["lr"] == 0.32
    EXAMPLE.begin_epoch(cfg, 28, history + [{"val_loss": 1.0}] * 25, model, optimizer)  # 25 epochs after LS
    assert int(model.linear) == 0 and optimizer.param_groups[0]["lr"] == 0.16
    fixed = EXAMPLE.config(linear_start_epochs=4)  # the default: the authors' code, a set length
    EXAMPLE.begin_epoch(fixed, 3, history, model, optimizer)
    assert int(model.linear) == 1
    EXAMPLE.begin_epoch(fixed, 4, history, model, optimizer)
    assert int(model.linear) == 0
    EXAMPLE.begin_epoch(EXAMPLE.config(linear_start=False), 0, [], model, optimizer)
    assert int(model.linear) == 0 and isinstance(optimizer, torch.optim.SGD)


@pytest.mark.parametrize("settings, message", [
    ({"random_noise": 1.5}, "--random-noise"), ({"weight_tying": "diagonal"}, "--weight-tying"),
    ({"hops": 0}, "--hops must be at least 1"), ({"linear_start_lr": 0.0}, "--linear-start-lr"),
    ({"lr_halving_epochs": -1}, "--lr-halving-epochs must be at least 0")])
def test_bad_settings_are_input_errors(settings: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        EXAMPLE.config(**settings)


# --- end to end ------------------------------------------------------------------------------------------


def _train(run_dir: Path, resume: bool = False, **settings):
    cfg = EXAMPLE.config("tiny", **settings)
    with contextlib.redirect_stdout(io.StringIO()):
        return train(EXAMPLE, cfg, seed=0, progress=False, run_dir=None if resume else run_dir,
                     resume=run_dir if resume else None)


def test_tiny_preset_trains_through_linear_start_and_resumes_the_same(tmp_path: Path) -> None:
    # the paper's text: linear start until the validation loss stops falling, then twice the step
    settings = {"epochs": 4, "linear_start_epochs": 2, "linear_start_end": "validation", "lr": 0.32}
    whole = _train(tmp_path / "whole", **settings)
    assert whole.test is not None and len(whole.history) == 4
    last = load_checkpoint(tmp_path / "whole" / "checkpoints" / "last.pt")
    assert int(last["model"]["linear"]) == 0  # softmax back on after at most 2 epochs
    assert last["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.32)
    _train(tmp_path / "parts", **{**settings, "epochs": 1})
    first = load_checkpoint(tmp_path / "parts" / "checkpoints" / "last.pt")
    assert int(first["model"]["linear"]) == 1 and first["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.16)
    resumed = _train(tmp_path / "parts", resume=True, **settings)
    assert [r["val_loss"] for r in resumed.history] == [r["val_loss"] for r in whole.history]
    for key, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def test_predict_shows_each_hops_attention_over_the_sentences(tmp_path: Path) -> None:
    import rnnzoo

    run = _train(tmp_path / "run", epochs=2, linear_start=False)  # a linear model's weights need not add to 1
    model = rnnzoo.load(run.run_dir)
    story = "Mary moved to the bathroom. John went to the hallway. Sandra went back to the garden."
    result = model.predict(story=story, question="Where is Mary?")
    assert isinstance(result, BabiAnswer) and result.answer == result.top[0][0] and len(result.top) == 3
    assert result.hops is not None and len(result.hops) == 2 and result.attention == result.hops[-1]
    for hop in result.hops:
        assert [a.sentence for a in hop] == ["mary moved to the bathroom", "john went to the hallway",
                                             "sandra went back to the garden"]  # as the model reads them
        assert 0 < sum(a.weight for a in hop) < 1  # the rest went to the two empty memory slots
    assert result.to_dict()["hops"][0][0]["sentence"] == "mary moved to the bathroom"
    long_story = " ".join(["John went to the hallway."] * 8)
    cut = model.predict(story=long_story, question="Where is John?")
    assert len(cut.attention) == 5 and "keeping the last 5" in cut.warnings[0]
    with pytest.raises(InputError, match="unknown word.*unicorn"):
        model.predict(story="The unicorn moved to the bathroom.", question="Where is Mary?")
    assert np.isclose(sum(a.weight for a in cut.attention), 1.0)


def test_a_linear_checkpoint_predicts_with_its_own_raw_weights(tmp_path: Path) -> None:
    import rnnzoo

    run = _train(tmp_path / "run", epochs=1, linear_start_epochs=5)  # still in linear start when it ends
    model = rnnzoo.load(run.run_dir)
    assert int(model.model.linear) == 1
    result = model.predict(story="Mary moved to the bathroom. John went to the hallway.", question="Where is Mary?")
    assert len(result.attention) == 2 and result.hops is not None and len(result.hops) == 2


def test_help_lists_the_settings(capsys: pytest.CaptureFixture[str]) -> None:
    from rnnzoo.cli import main

    assert main(["train", "babi_memn2n", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--linear-start-epochs" in out and "--weight-tying {adjacent,layerwise}" in out and "tenth" in out


def test_distributed_two_processes_end_with_identical_weights(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    worker = tmp_path / "worker.py"
    worker.write_text(
        "import os, sys, torch\n"
        "from pathlib import Path\n"
        "from rnnzoo.specs import get_example\n"
        "from rnnzoo.training import train\n"
        "ex = get_example('babi_memn2n')\n"
        "out = Path(sys.argv[1])\n"
        "r = train(ex, ex.config('tiny', linear_start_epochs=1), seed=0, progress=False, device='cpu',\n"
        "          run_dir=out / 'run', test=False)\n"
        "torch.save(r.model.state_dict(), out / f\"end{os.environ['RANK']}.pt\")\n")
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone",
                           str(worker), str(tmp_path)], capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    end = [torch.load(tmp_path / f"end{rank}.pt", weights_only=True) for rank in (0, 1)]
    assert all(torch.equal(end[0][k], end[1][k]) for k in end[0]), "the processes ended with different weights"
    assert int(end[0]["linear"]) == 0  # both switched to the softmax after the first epoch


# --- the table script ------------------------------------------------------------------------------------


def _record(model: str, task: int, size: str, seed: int, accuracy: float | None, status: str = "ok",
            val: float = 0.5) -> dict:
    return {"model": model, "task": task, "size": size, "seed": seed, "preset": "faithful", "extra": [],
            "status": status, **({"test_accuracy": accuracy, "val_accuracy": val} if accuracy is not None
                                 else {"message": "no file"})}


def test_babi_table_means_picks_on_validation_failures_and_a_missing_file() -> None:
    from benchmarks.babi_table import PUBLISHED, table

    records = [_record("babi_memn2n", 1, "1k", 0, 1.0, val=0.9), _record("babi_memn2n", 1, "1k", 1, 0.98, val=0.95),
               _record("babi_memn2n", 2, "1k", 0, 0.80), _record("babi_rnn", 3, "1k", 0, None, "unavailable"),
               _record("babi_memn2n", 1, "10k", 0, 0.5)]
    lines = table(records, [1, 2, 3], "1k").splitlines()
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[:7]]
    assert rows[0][1:5] == ["babi_rnn 1k: mean (seeds)", "babi_rnn 1k: picked on validation",
                            "babi_memn2n 1k: mean (seeds)", "babi_memn2n 1k: picked on validation"]
    qa1, qa2, qa3, mean_error, failed = rows[2:7]
    assert qa1[1:5] == ["not run", "-", "99.0 (2)", "98.0"]  # the seed of the better validation score, not the test
    assert qa2[3:5] == ["80.0 (1)", "80.0"] and qa3[1] == "no training file in this copy"
    assert mean_error[3:5] == [f"{(1.0 + 20.0) / 2:.1f}", f"{(2.0 + 20.0) / 2:.1f}"] and failed[3] == "1 of 2"
    assert mean_error[1] == "-"
    published = PUBLISHED["memn2n"][1]
    assert mean_error[-1] == f"{sum(100 - a for a in published[:3]) / 3:.1f}"
    assert len(published) == len(PUBLISHED["keras"][1]) == len(PUBLISHED["lstm"][1]) == 20
    assert sum(100 - a for a in published) / 20 == pytest.approx(13.9, abs=0.05)  # the paper's summary rows
    assert sum(100 - a > 5 for a in published) == 11
    timed = [{**r, "seconds": 1800.0} for r in records[:3]] + [{**records[2], "task": 3, "seconds": 4000.0,
                                                                  "resumed": True}]
    assert table(timed, [1, 2], "1k").splitlines()[6] == "| training time (one thread, all seeds) | 90 min " \
        "| - | - | - | - |"
    assert "| at least 2 h 37 min | - |" in table(timed, [1, 2, 3], "1k")
    assert table(records, [1, 2], "1k").splitlines()[6].startswith("| training time (one thread, all seeds) | - |")
    ten = table(records, [1], "10k")
    assert "| QA1 single supporting fact | 50.0 (1) | 50.0 |" in ten and "mean error 6.6%, 4 failed" in ten


def test_babi_table_skips_recorded_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import sys

    from benchmarks import babi_table

    trained: list[tuple] = []

    def fake_run(args, model, task, size, seed, extra):
        trained.append((model, task, size, seed))
        record = _record(model, task, size, seed, 0.5)
        (args.out / "records").mkdir(parents=True, exist_ok=True)
        (args.out / "records" / f"{babi_table.key(model, task, size, seed)}.json").write_text(json.dumps(record))
        return record

    monkeypatch.setattr(babi_table, "run_one", fake_run)
    argv = ["babi_table.py", "--models", "babi_memn2n", "--tasks", "1-2", "--seeds", "2", "--out", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    with contextlib.redirect_stdout(io.StringIO()):
        babi_table.main()
    assert len(trained) == 4 and (tmp_path / "table.md").is_file()
    monkeypatch.setattr(sys, "argv", argv[:4] + ["1-3"] + argv[5:])
    with contextlib.redirect_stdout(io.StringIO()) as out:
        babi_table.main()
    assert trained[4:] == [("babi_memn2n", 3, "1k", 0), ("babi_memn2n", 3, "1k", 1)]
    assert "4 already recorded, 2 to train" in out.getvalue()
    monkeypatch.setattr(sys, "argv", argv + ["--", "--epochs", "5"])
    with pytest.raises(SystemExit, match="records of other settings"):
        babi_table.main()


def test_babi_table_continues_an_interrupted_run_and_reads_a_finished_one(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse
    import json
    import subprocess

    from benchmarks import babi_table

    commands: list[list[str]] = []

    def fake_train(command, **kwargs):  # what `rnnzoo train` leaves in its run folder
        commands.append(command)
        run_dir = Path(command[command.index("--resume" if "--resume" in command else "--run-dir") + 1])
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "test.json").write_text(json.dumps({"accuracy": 0.75, "best_epoch": 2}))
        (run_dir / "metrics.jsonl").write_text('{"val_accuracy": 0.5}\n{"val_accuracy": 0.8}\n')
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(babi_table, "unavailable", lambda task, size: None)
    monkeypatch.setattr(babi_table.subprocess, "run", fake_train)
    args = argparse.Namespace(out=tmp_path, runs=tmp_path / "runs", preset="faithful")
    fresh = babi_table.run_one(args, "babi_rnn", 1, "1k", 0, [])
    assert "--run-dir" in commands[0] and "--resume" not in commands[0] and "resumed" not in fresh
    assert (fresh["status"], fresh["test_accuracy"], fresh["val_accuracy"]) == ("ok", 0.75, 0.8)

    interrupted = tmp_path / "runs" / babi_table.key("babi_rnn", 2, "1k", 0)
    interrupted.mkdir(parents=True)
    (interrupted / "config.json").write_text("{}")
    resumed = babi_table.run_one(args, "babi_rnn", 2, "1k", 0, [])
    assert commands[1][-3:] == ["--resume", str(interrupted), "--quiet"] and resumed["resumed"] is True
    assert "--task 2" in resumed["command"] and "--resume" not in resumed["command"]  # the command to rerun it

    babi_table.run_one(args, "babi_rnn", 2, "1k", 0, [])  # finished before its record: read, not trained
    assert len(commands) == 2
    assert json.loads((tmp_path / "records" / "babi_rnn-qa2-1k-s0.json").read_text())["test_accuracy"] == 0.75


def test_babi_table_knows_the_missing_qa3_10k_file(real_data) -> None:
    from benchmarks.babi_table import unavailable

    assert unavailable(1, "1k") is None
    assert "qa3" in (unavailable(3, "10k") or "")


def test_words_as_written_with_lowercase_and_punctuation_off() -> None:
    data = babi.parse_stories(["1 Mary moved to the bathroom.", "2 .", "3 Where is Mary? \tBathroom\t1"])
    assert babi.normalize(data, lowercase=True, punctuation=False) == [
        ([["mary", "moved", "to", "the", "bathroom"]], ["where", "is", "mary"], "bathroom")]  # "." alone: dropped
    assert babi.normalize(data, lowercase=False, punctuation=True) == data
    meta = EXAMPLE.load_data(EXAMPLE.config("tiny", lowercase=False, punctuation=True), seed=0).meta
    assert {".", "?", "Mary"} <= set(meta["vocab"]) and meta["sentence_maxlen"] == 7


def test_the_command_line_prints_every_hops_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rnnzoo.cli import main

    run = _train(tmp_path / "run", epochs=1, linear_start=False)
    capsys.readouterr()
    assert main(["predict", str(run.run_dir), "--story", "Mary moved to the bathroom. John went to the hallway.",
                 "--question", "Where is Mary?"]) == 0
    out = capsys.readouterr().out
    assert "per hop:" in out and "(hop 1, hop 2; the bar: the last hop)" in out
    rows = [line for line in out.splitlines() if line.endswith("john went to the hallway")]
    assert len(rows) == 1 and len(rows[0].split()[:2]) == 2  # one weight per hop before the sentence
