"""conv_lstm: the movie generator, the ConvLSTM layer and the model, the layer table, and training ->
prediction -> pictures end to end with the tiny preset (the kernels against their references:
test_kernels.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils._python_dispatch import TorchDispatchMode

from rnnzoo.cli import main
from rnnzoo.data import movies
from rnnzoo.errors import InputError
from rnnzoo.models.conv_lstm import ConvLSTM2D, ConvLSTMNet
from rnnzoo.specs import get_example
from rnnzoo.specs.conv_lstm import bce, iou, rollout, rollout_scores
from rnnzoo.summary import layer_rows
from rnnzoo.training import train

# --- the generator -------------------------------------------------------------------------------------------


def test_squares_are_drawn_from_the_original_ranges() -> None:
    rng = np.random.default_rng(0)
    draws = [movies.draw_squares(rng, n_frames=15) for _ in range(400)]
    assert {len(d) for d in draws} == {3, 4, 5, 6, 7}
    squares = [s for d in draws for s in d]
    assert {s.x for s in squares} == set(range(20, 60)) and {s.y for s in squares} == set(range(20, 60))
    assert {s.dx for s in squares} == {s.dy for s in squares} == {-1, 0, 1}
    assert {s.half for s in squares} == {2, 3}
    noise = np.concatenate([s.noise for s in squares])
    assert set(np.round(noise, 6)) == {0.0, 0.1, -0.1}
    assert 0.45 < (noise != 0).mean() < 0.55  # probability 1/2 per square and frame


def test_render_draws_half_open_squares_and_a_noise_box_one_pixel_larger() -> None:
    square = movies.Square(x=30, y=25, dx=1, dy=-1, half=2, noise=np.array([0.1, 0.0, -0.1]))
    noisy, shifted = movies.render([square], n_frames=3)
    assert noisy.shape == shifted.shape == (3, 40, 40)
    # frame 0: rows [28, 32), columns [23, 27) of the canvas, minus the crop offset 20; +0.1 around it
    expected = np.zeros((40, 40), np.float32)
    expected[7:13, 2:8] = 0.1
    expected[8:12, 3:7] = 1.0  # 1.1, clipped to 1
    np.testing.assert_allclose(noisy[0], expected, atol=1e-6)
    clean = np.zeros((40, 40), np.float32)
    clean[9:13, 2:6] = 1.0  # frame 1: one row down, one column left
    np.testing.assert_array_equal(noisy[1], clean)  # no noise drawn for frame 1
    np.testing.assert_array_equal(shifted[0], clean)  # the target of frame 0 is frame 1
    assert noisy[2].min() == pytest.approx(-0.1) and noisy[2].max() == pytest.approx(0.9)


def test_movies_target_is_the_next_frame_and_noise_is_only_on_the_input(monkeypatch: pytest.MonkeyPatch) -> None:
    noisy, shifted = movies.generate_movies(6, 5, rng=np.random.default_rng(3))
    assert noisy.shape == shifted.shape == (6, 5, 40, 40, 1) and noisy.dtype == np.float32
    assert set(np.unique(shifted)) == {0.0, 1.0}  # targets: clean squares
    assert not set(np.unique(noisy)) <= {0.0, 1.0} and noisy.max() <= 1.0  # inputs: noisy, clipped to 1
    assert np.array_equal(noisy[:, 1:] > 0.5, shifted[:, :-1] > 0.5)
    monkeypatch.setattr(movies, "NOISE", 0.0)  # the same draws, no noise: input t+1 == target t exactly
    quiet, shifted_again = movies.generate_movies(6, 5, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(shifted_again, shifted)
    np.testing.assert_array_equal(quiet[:, 1:], shifted[:, :-1])


def test_movies_are_seeded_and_a_prefix_does_not_depend_on_the_count() -> None:
    a = movies.generate_movies(5, 4, rng=np.random.default_rng(1), size=12)
    b = movies.generate_movies(3, 4, rng=np.random.default_rng(1), size=12)
    c = movies.generate_movies(5, 4, rng=np.random.default_rng(2), size=12)
    assert a[0].shape == (5, 4, 12, 12, 1)
    np.testing.assert_array_equal(a[0][:3], b[0])
    np.testing.assert_array_equal(a[1][:3], b[1])
    assert not np.array_equal(a[0], c[0])


def test_splits_train_validation_and_test_movies() -> None:
    example = get_example("conv_lstm")
    data = example.load_data(example.config("tiny"), seed=0)
    assert (len(data.train), len(data.val), len(data.test)) == (9, 1, 4)
    noisy, shifted = movies.generate_movies(14, 6, rng=np.random.default_rng(0), size=12)
    assert torch.equal(data.test.inputs[0], torch.from_numpy(noisy[10:]))
    assert torch.equal(data.test.target, torch.from_numpy(shifted[10:]))
    with pytest.raises(InputError, match="train_movies <= test_start"):
        example.load_data(example.config("tiny", train_movies=12), seed=0)


def test_movie_files_decode_alike_from_disk_and_from_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rnnzoo.errors import TooLarge

    frames = np.zeros((6, 12, 12), np.uint8)
    for t in range(6):
        frames[t, 4:7, 2 + t:5 + t] = 255
    pictures = [Image.fromarray(f) for f in frames]
    pictures[0].save(tmp_path / "m.gif", save_all=True, append_images=pictures[1:])
    raw = (tmp_path / "m.gif").read_bytes()
    assert np.array_equal(movies.decode_movie(io.BytesIO(raw)), frames)
    assert np.array_equal(movies.read_movie(tmp_path / "m.gif", 12), frames / 255)
    with pytest.raises(TooLarge, match="more than 500 pixels in all"):  # found at the fourth frame of 144 pixels
        movies.decode_movie(io.BytesIO(raw), "the upload", max_pixels=500)
    monkeypatch.setattr(movies, "MAX_FRAMES", 4)  # one frame past the most is decoded, so the refusal names it
    assert len(movies.decode_movie(io.BytesIO(raw))) == 5
    with pytest.raises(InputError, match="needs 2 to 4 frames, got 5"):
        movies.read_movie(tmp_path / "m.gif", 12)
    (tmp_path / "notes.gif").write_text("not a movie")
    with pytest.raises(InputError, match="cannot read .*notes.gif as a movie"):
        movies.read_movie(tmp_path / "notes.gif", 12)


# --- the ConvLSTM layer -----------------------------------------------------------------------------------------


class _CountConvolutions(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        self.count += func is torch.ops.aten.convolution.default
        return func(*args, **(kwargs or {}))


def test_conv_lstm_layer_shapes_and_one_input_convolution_for_all_frames() -> None:
    torch.manual_seed(0)
    layer = ConvLSTM2D(3, 5, kernel_size=3)
    x = torch.randn(2, 4, 3, 6, 7)  # (B, T, C, H, W)
    with _CountConvolutions() as counter:
        y = layer(x)
    assert y.shape == (2, 4, 5, 6, 7)
    assert counter.count == 1 + 3  # conv_x once for all 4 frames; conv_h for frames 1..3 (h_{-1} = 0)
    # Keras' parameter count of ConvLSTM2D(5, (3, 3)) on 3 channels: kernel, recurrent kernel, bias
    assert sum(p.numel() for p in layer.parameters()) == 3 * 3 * 3 * 20 + 3 * 3 * 5 * 20 + 20
    assert torch.all(layer.input_conv.bias[5:10] == 1) and torch.all(layer.input_conv.bias[:5] == 0)


def test_model_returns_channels_last_logits_for_any_frame_size() -> None:
    torch.manual_seed(0)
    model = ConvLSTMNet(filters=4, layers=2)
    movies_in = torch.rand(3, 5, 12, 10, 1)  # H != W, so a transposed axis fails
    assert model(movies_in).shape == (3, 5, 12, 10, 1)


@pytest.mark.parametrize("padding, sees_next_frame", [("same", True), ("causal", False)])
def test_time_padding_decides_whether_frame_t_sees_frame_t_plus_1(padding: str, sees_next_frame: bool) -> None:
    torch.manual_seed(0)
    model = ConvLSTMNet(filters=4, layers=1, time_padding=padding).eval()
    x = torch.rand(1, 5, 8, 8, 1)
    changed = x.clone()
    changed[:, 3] = 1 - changed[:, 3]
    with torch.no_grad():
        a, b = model(x), model(changed)
    assert torch.equal(a[:, :2], b[:, :2])  # frames 0 and 1 never see frame 3
    assert (not torch.equal(a[:, 2], b[:, 2])) == sees_next_frame


def test_faithful_layer_table_matches_the_seed_notes() -> None:
    example = get_example("conv_lstm")
    cfg = example.config()
    meta = example.shape_meta(cfg)
    model = example.build_model(cfg, meta)
    inputs, _ = example.synthetic_batch(cfg, meta, 2, torch.Generator().manual_seed(0))
    rows = layer_rows(model, [inputs[0][:, :3]], example.summary_dynamic_axes)  # 3 frames: the shapes suffice
    assert [(name, shape) for name, _, shape, _ in rows] == [
        ("input", "(None, None, 40, 40, 1)"),
        *[(f"blocks.{n}", "(None, None, 40, 40, 40)") for n in range(4)],
        ("head", "(None, None, 40, 40, 1)")]
    # Keras: ConvLSTM2D 59,200 then 115,360 (kernel + recurrent kernel + bias), BatchNorm 80 trainable,
    # Conv3D 1,081
    assert [params for *_, params in rows] == [0, 59_280, 115_440, 115_440, 115_440, 1_081]


def test_tiny_layer_table_shows_channels_last() -> None:
    example = get_example("conv_lstm")
    cfg = example.config("tiny")
    meta = example.shape_meta(cfg)
    model = example.build_model(cfg, meta)
    inputs, target = example.synthetic_batch(cfg, meta, 3, torch.Generator().manual_seed(0))
    assert inputs[0].shape == target.shape == (3, 6, 12, 12, 1)
    rows = layer_rows(model, inputs, example.summary_dynamic_axes)
    assert [shape for _, _, shape, _ in rows] == ["(None, None, 12, 12, 1)", "(None, None, 12, 12, 5)",
                                                  "(None, None, 12, 12, 5)", "(None, None, 12, 12, 1)"]


# --- rollout, scores, prediction ----------------------------------------------------------------------------------


def test_scores() -> None:
    a = torch.tensor([[True, True, False, False]])
    b = torch.tensor([[True, False, True, False]])
    assert iou(a, b, dims=(1,)).item() == pytest.approx(1 / 3)
    assert iou(a & False, b & False, dims=(1,)).item() == 1.0  # both empty
    p = torch.tensor([[0.9, 0.0]])
    t = torch.tensor([[1.0, 0.0]])
    assert bce(p, t, dims=(1,)).item() == pytest.approx(-(np.log(0.9) + np.log(1 - 1e-7)) / 2)


class _Oracle(torch.nn.Module):
    """Predicts each next frame exactly, from the squares' positions it was given (for a static movie)."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, movies_in: torch.Tensor) -> torch.Tensor:
        return torch.where(movies_in > 0.5, 20.0, -20.0) + self.dummy


def test_rollout_feeds_predictions_back_and_scores_against_the_copy_last_baseline() -> None:
    still = movies.Square(x=12, y=12, dx=0, dy=0, half=3, noise=np.zeros(6))
    moving = movies.Square(x=10, y=10, dx=1, dy=1, half=2, noise=np.zeros(6))
    movie = [movies.render([still], 6, size=12), movies.render([moving], 6, size=12)]
    noisy = torch.from_numpy(np.stack([m[0] for m in movie]))[..., None]
    shifted = torch.from_numpy(np.stack([m[1] for m in movie]))[..., None]
    predicted = rollout(_Oracle(), noisy, given=3, ahead=2)
    assert predicted.shape == (2, 2, 12, 12, 1)
    torch.testing.assert_close(predicted[0], torch.sigmoid(torch.where(noisy[0, 2:3] > 0.5, 20.0, -20.0)).expand(
        2, 12, 12, 1))  # the fed-back frames keep a still square still
    scores = rollout_scores(_Oracle(), noisy, shifted, given=3, ahead=2, device=torch.device("cpu"))
    assert scores["base_iou"][0].tolist() == [1.0, 1.0]  # copying the last frame is right for a still square
    assert scores["base_iou"][1, 1] < scores["base_iou"][1, 0] < 1.0  # and ever more wrong for a moving one
    assert scores["base_bce"][0].max() < 1e-6
    assert scores["model_iou"][0].tolist() == pytest.approx([1.0, 1.0])  # the oracle keeps the still square


def test_train_then_predict_writes_pictures_and_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    example = get_example("conv_lstm")
    result = train(example, example.config("tiny"), seed=0, device="cpu", progress=False, log=lambda *a: None)
    run = str(result.run_dir)
    out = tmp_path / "pictures"
    assert main(["predict", run, "--frames", "3", "--ahead", "3", "--test-movies", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "movie 10 (test movie)" in text and "mean over test movies 10..11" in text
    png, gif = out / "conv_lstm_movie10.png", out / "conv_lstm_movie10.gif"
    assert f"wrote {png}" in text and f"wrote {gif}" in text
    with Image.open(png) as picture:
        assert picture.size[0] > 2 * picture.size[1]  # a wide grid: two rows of six frames
    with Image.open(gif) as animation:
        assert animation.n_frames == 6
    assert main(["predict", run, "--which", "2", "--frames", "2", "--ahead", "5", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["source"] == "movie 2 (training movie)" and report["frame_numbers"] == [3, 4, 5, 6, 7]
    assert len(report["scores"]["model_iou"]) == len(report["scores"]["base_bce"]) == 5
    assert Path(report["png"]).parent == result.run_dir  # the run folder by default


@pytest.mark.parametrize("options, message", [
    (["--which", "14"], "no movie 14: this run's generator makes movies 0..13"),
    (["--frames", "5", "--ahead", "3"], "frames + ahead <= 7"),
    (["--frames", "1"], "--frames: must be at least 2, got 1"),
    (["--movie", "nothere.gif"], "no movie at nothere.gif"),
])
def test_predict_errors_say_what_is_valid(options: list[str], message: str, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    example = get_example("conv_lstm")
    result = train(example, example.config("tiny", epochs=1), seed=0, device="cpu", progress=False, test=False,
                   log=lambda *a: None)
    assert main(["predict", str(result.run_dir), *options]) == 2
    assert message in capsys.readouterr().err


def test_conv_lstm_under_bf16_autocast_computes_in_bf16_and_returns_float32_gradients() -> None:
    torch.manual_seed(0)
    model = ConvLSTMNet(filters=4, layers=2)
    x = (torch.rand(2, 4, 8, 8, 1) > 0.8).float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert out.dtype == torch.bfloat16
    torch.nn.functional.binary_cross_entropy_with_logits(out.float(), x).backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()
               for p in model.parameters())
