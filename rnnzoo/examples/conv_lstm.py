"""conv_lstm: next-frame prediction of generated moving squares with stacked ConvLSTM layers.

Data: `rnnzoo.data.movies.generate_movies` (no download), movies 0..999 to train (5% of them held out for
validation), 1000..1199 to test. Prediction (`rnnzoo predict RUN --which 1004`) continues a movie from its
first 7 frames, one predicted frame at a time fed back (the original's `track`), compares with the true
frames (`track2`) and the copy-the-last-frame baseline, and draws both.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

import numpy as np
import torch
from torch import Tensor, nn

from rnnzoo.data.movies import generate_movies
from rnnzoo.errors import InputError
from rnnzoo.examples.base import Data, Example, Split, TrainSettings, carve_validation
from rnnzoo.files import pyplot, save_figure, write_atomically
from rnnzoo.models.conv_lstm import ConvLSTMNet

if TYPE_CHECKING:
    from rnnzoo.runs import LoadedRun

SCORES = ("model_bce", "base_bce", "model_iou", "base_iou")
EPS = 1e-7  # Keras clips probabilities to [eps, 1 - eps] in binary cross-entropy; so do the rollout scores


@dataclass(frozen=True)
class ConvLstmConfig(TrainSettings):
    epochs: int = field(default=300, metadata={"help": "passes over the training movies (the original's 300)"})
    batch_size: int = field(default=10, metadata={"help": "movies per optimizer step (the original's 10)"})
    optimizer: str = field(default="adadelta", metadata={"help": "the original's Adadelta (Keras defaults)"})
    lr: float | None = field(
        default=1.0, metadata={"help": "Adadelta's Keras 2 default 1.0, as the original (Keras 3's is 0.001)"})
    movies: int = field(default=1200, metadata={"help": "movies generated (the original's n_samples)"})
    train_movies: int = field(
        default=1000, metadata={"help": "the first N movies train, less validation_split held out (original: 1000)"})
    test_start: int = field(
        default=1000, metadata={"help": "movies from this one on are the test set (the original's 1000..1199)",
                                "min": 0})
    frames: int = field(default=15, metadata={"help": "frames per movie (the original's n_frames)"})
    size: int = field(default=40, metadata={"help": "frame height and width (the original's 40x40 crop)"})
    data_seed: int = field(default=0, metadata={"help": "seed of the movie generator (the same movies for any --seed)"})
    filters: int = field(default=40, metadata={"help": "filters of each ConvLSTM2D layer (the original's 40)"})
    layers: int = field(default=4, metadata={"help": "ConvLSTM2D + BatchNorm blocks (the original's 4)"})
    kernel_size: int = field(default=3, metadata={"help": "kernel of the ConvLSTM2D and Conv3D layers (3)"})
    batchnorm_momentum: float = field(
        default=0.99, metadata={"help": "BatchNorm moving-average momentum in Keras' terms (its default 0.99)"})
    time_padding: Literal["same", "causal"] = field(
        default="same", metadata={"help": "Conv3D time padding: same (the original's; frame t also sees frame "
                                          "t+1's state) or causal (frames t-2..t only)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kernel_size % 2 != 1:
            raise InputError(f"--kernel-size must be odd ('same' padding keeps the frame size), got {self.kernel_size}")


class ConvLstm(Example):
    name = "conv_lstm"
    title = "ConvLSTM next-frame prediction, generated moving squares"
    Config = ConvLstmConfig
    presets = {
        "faithful": {},
        # Under 10 minutes on 2 CPU cores; beats the copy-last-frame baseline on the 8-frame rollout. Two
        # changes besides the sizes: a BatchNorm momentum of 0.9, as Keras' 0.99 leaves the moving averages
        # (used at evaluation) far from the batch statistics after only ~300 steps; and a causal Conv3D, so
        # that training practises the rollout's one-step-ahead prediction instead of reading frame t+1.
        "small": {"train_movies": 400, "filters": 16, "layers": 2, "epochs": 8, "batchnorm_momentum": 0.9,
                  "time_padding": "causal"},
        # Seconds; distinct sizes (6 frames, 12x12, 5 filters) so that a transposed axis fails loudly.
        "tiny": {"movies": 14, "train_movies": 10, "test_start": 10, "frames": 6, "size": 12, "filters": 5,
                 "layers": 2, "epochs": 2, "batch_size": 4},
    }
    metric = "loss"  # binary cross-entropy per pixel, lower is better (the original reports only the loss)
    summary_dynamic_axes = (0, 1)  # batch and frames: Keras' (None, None, 40, 40, 1)
    predict_group = "moving squares"
    predict_options = "--which 1004 --frames 7 --ahead 8"

    @staticmethod
    def add_predict_arguments(group: argparse._ArgumentGroup) -> list[argparse.Action]:
        return [group.add_argument("--which", type=int, help="index of the generated movie to continue"),
                group.add_argument("--frames", type=int,
                                   help="frames fed to the model (default 7; for shorter movies, half)"),
                group.add_argument("--ahead", type=int,
                                   help="frames predicted one at a time (default 8, or as many as the movie has)"),
                group.add_argument("--out", type=Path, help="folder for the pictures (default: the run folder)"),
                group.add_argument("--test-movies", type=int, default=0, help="also score the rollout over "
                                   "the first N test movies against the copy-last-frame baseline")]

    # --- data and model -----------------------------------------------------------------------------
    def check(self, cfg: ConvLstmConfig) -> None:
        if not 2 <= cfg.train_movies <= cfg.test_start < cfg.movies:
            raise InputError(f"need 2 <= train_movies <= test_start < movies (train on movies 0..train_movies-1, "
                             f"test on test_start..movies-1), got train_movies {cfg.train_movies}, test_start "
                             f"{cfg.test_start}, movies {cfg.movies}")
        if cfg.frames < 2 or cfg.size < 8:
            raise InputError(f"need frames >= 2 and size >= 8, got frames {cfg.frames}, size {cfg.size}")

    def load_data(self, cfg: ConvLstmConfig, seed: int) -> Data:
        self.check(cfg)
        noisy, shifted = generate_movies(cfg.movies, cfg.frames, rng=np.random.default_rng(cfg.data_seed),
                                         size=cfg.size)
        inputs, targets = torch.from_numpy(noisy), torch.from_numpy(shifted)  # (N, T, H, W, 1) each
        n, start = cfg.train_movies, cfg.test_start
        train, val = carve_validation(Split((inputs[:n],), targets[:n]), cfg.validation_split, seed)
        return Data(train, val, Split((inputs[start:],), targets[start:]), self.shape_meta(cfg))

    def shape_meta(self, cfg: ConvLstmConfig) -> dict[str, Any]:
        return {"frames": cfg.frames, "size": cfg.size, "movies": cfg.movies, "train_movies": cfg.train_movies,
                "test_start": cfg.test_start, "data_seed": cfg.data_seed}

    def build_model(self, cfg: ConvLstmConfig, meta: Mapping[str, Any]) -> nn.Module:
        return ConvLSTMNet(cfg.filters, cfg.layers, cfg.kernel_size, momentum=cfg.batchnorm_momentum,
                           time_padding=cfg.time_padding)

    def synthetic_batch(self, cfg: ConvLstmConfig, meta: Mapping[str, Any], batch_size: int,
                        generator: torch.Generator) -> tuple[tuple[Tensor, ...], Tensor]:
        shape = (batch_size, meta["frames"], meta["size"], meta["size"], 1)
        movies = (torch.rand(shape, generator=generator) > 0.9).float()  # ~10% lit pixels, like the squares
        return (movies,), (torch.rand(shape, generator=generator) > 0.9).float()

    # --- objective ----------------------------------------------------------------------------------
    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return nn.functional.binary_cross_entropy_with_logits(output, target)

    def metrics(self, output: Tensor, target: Tensor) -> dict[str, Tensor]:
        """Sum over the batch of each movie's IoU of the squares (pixels > 0.5), predicted vs true."""
        return {"iou": iou(output > 0, target > 0.5, dims=(1, 2, 3, 4)).sum()}

    # --- prediction ---------------------------------------------------------------------------------
    def predict(self, run: LoadedRun, args: argparse.Namespace, out: TextIO) -> None:
        model, meta = run.model, run.meta
        T, n_train, n_movies = meta["frames"], meta["train_movies"], meta["movies"]
        test_start = meta.get("test_start", n_train)
        which = args.which if args.which is not None else (1004 if n_movies > 1004 else test_start)
        if not 0 <= which < n_movies:
            raise InputError(f"no movie {which}: this run's generator makes movies 0..{n_movies - 1} (test movies "
                             f"{test_start}..{n_movies - 1}; the original shows 1004)")
        # the original's 7 given and 8 predicted for its 15 frames; shorter movies (small presets) get fewer
        given = args.frames if args.frames is not None else min(7, max(2, T // 2))
        ahead = args.ahead if args.ahead is not None else min(8, T + 1 - given)
        if given < 2 or ahead < 1 or given + ahead > T + 1:
            raise InputError(f"--frames {given} --ahead {ahead}: need --frames >= 2, --ahead >= 1 and frames + ahead "
                             f"<= {T + 1} (movies of {T} frames, whose targets reach frame {T + 1})")
        test_movies = getattr(args, "test_movies", 0) or 0
        if test_movies < 0:
            raise InputError(f"--test-movies must be >= 0, got {test_movies}")
        test_movies = min(test_movies, n_movies - test_start)
        # Movies are drawn one after another, so the first `last` movies are those the run saw.
        last = max(which + 1, test_start + test_movies)
        noisy, shifted = generate_movies(last, T, rng=np.random.default_rng(meta["data_seed"]), size=meta["size"])
        noisy_t, shifted_t = torch.from_numpy(noisy), torch.from_numpy(shifted)

        device = next(model.parameters()).device
        scores = rollout_scores(model, noisy_t[which:which + 1], shifted_t[which:which + 1], given, ahead, device)
        split = "test" if which >= test_start else "training" if which < n_train else "unused"
        first = given + 1  # 1-based number of the first predicted frame
        report: dict[str, Any] = {
            "movie": which, "split": split, "given_frames": given,
            "predicted_frames": list(range(first, first + ahead)),
            "model": {"bce": scores["model_bce"][0].tolist(), "iou": scores["model_iou"][0].tolist()},
            "copy_last_frame": {"bce": scores["base_bce"][0].tolist(), "iou": scores["base_iou"][0].tolist()},
        }
        if test_movies:
            chosen = slice(test_start, test_start + test_movies)
            test = rollout_scores(model, noisy_t[chosen], shifted_t[chosen], given, ahead, device)
            report["test_movies"] = {"movies": [test_start, test_start + test_movies - 1],
                                     **{k: float(test[k].mean()) for k in SCORES}}

        folder = args.out or run.path
        # Both rows start with the frames the model was given; then true frames over predicted ones.
        # The true (clean) frame k, 1-based, is target k - 2.
        inputs = noisy[which, :given, :, :, 0]
        true = np.concatenate([inputs, shifted[which, given - 1:given - 1 + ahead, :, :, 0]])
        predicted = np.concatenate([inputs, scores["predicted"][0, :, :, :, 0].numpy()])
        png, gif = folder / f"conv_lstm_movie{which}.png", folder / f"conv_lstm_movie{which}.gif"
        try:  # (each picture is written atomically, its folder made as needed)
            draw_grid(png, true, predicted, given, report["model"]["iou"], which)
            draw_gif(gif, true, predicted, given)
        except OSError as exc:
            raise InputError(f"cannot write the pictures to {folder}: {exc.strerror or exc}; give another --out"
                             ) from None
        report["png"], report["gif"] = str(png), str(gif)

        if args.json:
            out.write(json.dumps(report) + "\n")
            return
        out.write(f"movie {which} ({split} movie): frames 1-{given} given (noisy, as in training), frames "
                  f"{first}-{first + ahead - 1} predicted one at a time, each fed back\n")
        out.write(f"{'frame':>5}  {'BCE model':>9}  {'BCE copy-last':>13}  {'IoU model':>9}  {'IoU copy-last':>13}\n")
        m, b = report["model"], report["copy_last_frame"]
        for k, n in enumerate(report["predicted_frames"]):
            out.write(f"{n:>5}  {m['bce'][k]:>9.4f}  {b['bce'][k]:>13.4f}  {m['iou'][k]:>9.3f}  {b['iou'][k]:>13.3f}\n")
        out.write(f"{'mean':>5}  {np.mean(m['bce']):>9.4f}  {np.mean(b['bce']):>13.4f}  {np.mean(m['iou']):>9.3f}  "
                  f"{np.mean(b['iou']):>13.3f}\n")
        if test_movies:
            t = report["test_movies"]
            out.write(f"mean over test movies {t['movies'][0]}..{t['movies'][1]}, frames {first}-{first + ahead - 1}: "
                      f"BCE model {t['model_bce']:.4f} vs copy-last {t['base_bce']:.4f}, IoU model "
                      f"{t['model_iou']:.3f} vs copy-last {t['base_iou']:.3f}\n")
        out.write(f"(BCE per pixel, probabilities clipped to [{EPS:g}, 1 - {EPS:g}] as Keras does; IoU of the pixels "
                  "> 0.5, 1 when both are empty)\n")
        out.write(f"wrote {png}\nwrote {gif}\n")


# --- rollout and scores --------------------------------------------------------------------------------------


def iou(pred: Tensor, true: Tensor, dims: tuple[int, ...]) -> Tensor:
    """Intersection over union of two boolean masks over `dims`; 1 where both are empty."""
    inter = (pred & true).sum(dims).double()
    union = (pred | true).sum(dims).double()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def bce(prob: Tensor, true: Tensor, dims: tuple[int, ...]) -> Tensor:
    """Mean binary cross-entropy over `dims`, probabilities clipped to [EPS, 1 - EPS] (Keras)."""
    p = prob.double().clamp(EPS, 1 - EPS)
    t = true.double()
    return -(t * p.log() + (1 - t) * (1 - p).log()).mean(dims)


@torch.no_grad()
def rollout(model: nn.Module, movies: Tensor, given: int, ahead: int) -> Tensor:
    """The original's `track`: feed frames [0, given), then predict the next frame from the whole track,
    append it (the raw probabilities, not thresholded) and repeat. movies (N, T, H, W, 1) -> the `ahead`
    predicted frames' probabilities (N, ahead, H, W, 1)."""
    model.eval()
    track = movies[:, :given]  # (N, given, H, W, 1)
    for _ in range(ahead):
        nxt = torch.sigmoid(model(track)[:, -1:])  # (N, 1, H, W, 1): the next frame after the last one
        track = torch.cat([track, nxt], dim=1)
    return track[:, given:]


def rollout_scores(model: nn.Module, noisy: Tensor, shifted: Tensor, given: int, ahead: int,
                   device: torch.device, batch: int = 50) -> dict[str, Tensor]:
    """Per movie and predicted frame (N, ahead): BCE and IoU of the rollout and of the copy-the-last-given-
    frame baseline against the true frames; and the predicted frames (N, ahead, H, W, 1), on the CPU."""
    predicted = torch.cat([rollout(model, noisy[i:i + batch].to(device), given, ahead).cpu()
                           for i in range(0, len(noisy), batch)])
    true = shifted[:, given - 1:given - 1 + ahead]  # clean frames given..given+ahead-1 (0-based)
    base = shifted[:, given - 2:given - 1].expand_as(true)  # the clean last given frame, repeated
    dims = (2, 3, 4)
    return {"predicted": predicted,
            "model_bce": bce(predicted, true, dims), "base_bce": bce(base, true, dims),
            "model_iou": iou(predicted > 0.5, true > 0.5, dims), "base_iou": iou(base > 0.5, true > 0.5, dims)}


# --- pictures ------------------------------------------------------------------------------------------------


def draw_grid(path: Path, true: np.ndarray, predicted: np.ndarray, given: int, ious: list[float],
              which: int) -> None:
    """Two rows of frames (F, H, W): the true movie over the model's, frame numbers on top; the first
    `given` frames are the (noisy) input in both rows, the rest true frames over predicted ones."""
    plt = pyplot()
    n = len(true)
    fig, axes = plt.subplots(2, n, figsize=(1.1 * n, 3.0), squeeze=False)
    for k in range(n):
        for row, frames in enumerate((true, predicted)):
            ax = axes[row][k]
            ax.imshow(np.clip(frames[k], 0, 1), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if k >= given:
                for spine in ax.spines.values():
                    spine.set_color("tab:red" if row else "tab:green")
                    spine.set_linewidth(2)
        axes[0][k].set_title(str(k + 1), fontsize=8)
        if k >= given:
            axes[1][k].set_xlabel(f"IoU {ious[k - given]:.2f}", fontsize=7)
    axes[0][0].set_ylabel("true", fontsize=9)
    axes[1][0].set_ylabel("predicted", fontsize=9)
    fig.suptitle(f"movie {which}: frames 1-{given} given, {given + 1}-{n} predicted one at a time", fontsize=9)
    fig.tight_layout(h_pad=1.2)
    save_figure(fig, path)


def draw_gif(path: Path, true: np.ndarray, predicted: np.ndarray, given: int, scale: int = 4) -> None:
    """An animated GIF: per frame, the true frame (left) beside the predicted one (right), with a caption."""
    from PIL import Image, ImageDraw

    n, H, W = true.shape
    band = 14
    pictures = []
    for k in range(n):
        canvas = Image.new("L", (2 * W * scale + scale * 2, H * scale + band), color=255)
        for col, frames in enumerate((true, predicted)):
            pixels = (np.clip(frames[k], 0, 1) * 255).astype(np.uint8)
            tile = Image.fromarray(pixels).resize((W * scale, H * scale), Image.NEAREST)
            canvas.paste(tile, (col * (W * scale + scale * 2), band))
        label = f"frame {k + 1}: " + ("given" if k < given else "true | predicted")
        ImageDraw.Draw(canvas).text((2, 1), label, fill=0)
        pictures.append(canvas)
    write_atomically(path, lambda tmp: pictures[0].save(tmp, save_all=True, append_images=pictures[1:],
                                                       duration=400, loop=0))
