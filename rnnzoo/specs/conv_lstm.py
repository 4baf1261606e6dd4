"""conv_lstm: next-frame prediction of generated moving squares with stacked ConvLSTM layers.

Data: `rnnzoo.data.movies.generate_movies` (no download), movies 0..999 to train (5% of them held out for
validation), 1000..1199 to test. Prediction continues a movie from its first 7 frames, one predicted frame at
a time fed back (the original's `track`), and compares with the true frames (`track2`) and with the
copy-the-last-frame baseline: a generated movie by its number, or a movie of the user's own.

Scores, per predicted frame:
- BCE: binary cross-entropy per pixel, probabilities clipped to [1e-7, 1 - 1e-7] as Keras does. It rewards
  hedging: a constant grey frame at the true share of lit pixels scores well although it shows nothing,
  and a sharp frame with a square one pixel off pays dearly (the copy-last baseline's high BCE). So a
  prediction also reports `constant_bce`, the BCE of that best constant frame, as the floor a guess reaches.
- IoU: the overlap of predicted and true ink, sum(min(p, t)) / sum(max(p, t)) over the pixels (the
  Ruzicka similarity; for 0/1 frames the intersection over union of the lit pixels), 1 where both frames
  are empty. No threshold: a grey or blurred frame spreads ink where there is none and scores low (a
  flat 0.5 frame about 0.05 on the test movies, against copy-last's 0.24), and only a sharp frame in the
  right place scores near 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rnnzoo.data.movies import generate_movies, read_movie
from rnnzoo.errors import InputError
from rnnzoo.models.conv_lstm import ConvLSTMNet
from rnnzoo.specs.base import Data, Example, Result, Split, carve_validation, model_device
from rnnzoo.specs.settings import CARDS, ConvLstmConfig

EPS = 1e-7  # Keras clips probabilities to [eps, 1 - eps] in binary cross-entropy; so do the rollout scores
METRICS = ("BCE per pixel, probabilities clipped to [1e-7, 1 - 1e-7] as Keras does; IoU = sum(min(p, t)) / "
           "sum(max(p, t)) over the pixels: the overlap of predicted and true ink, 1 when both are empty, low for "
           "grey or blurred frames")


@dataclass
class FrameScores(Result):
    """Per predicted frame, against the true frames: the model's BCE and IoU, the copy-last-frame baseline's,
    and the BCE of the best constant frame (the true share of lit pixels everywhere)."""

    model_bce: list[float]
    model_iou: list[float]
    base_bce: list[float]
    base_iou: list[float]
    constant_bce: list[float]


@dataclass
class MoviePrediction(Result):
    """A movie continued by the model: `given` (frames, H, W) fed to it, `predicted` (ahead, H, W) the
    probabilities it produced one frame at a time, `true` the true frames after the given ones (None when
    the movie has none), `scores` per predicted frame (None without true frames; covering the first
    len(true) predicted frames), `test_movies` the mean scores over the run's first N test movies when asked.
    `frame_numbers` are the 1-based numbers of the predicted frames."""

    source: str  # "movie 1004 (test movie)", or the user's file
    movie: int | None  # the generated movie's number, None for a movie of the user's own
    given: np.ndarray
    predicted: np.ndarray
    true: np.ndarray | None
    frame_numbers: list[int]
    scores: FrameScores | None
    test_movies: dict[str, Any] | None
    metrics: str = METRICS


class ConvLstm(Example):
    card = CARDS["conv_lstm"]
    summary_dynamic_axes = (0, 1)  # batch and frames: Keras' (None, None, 40, 40, 1)

    # --- data and model -----------------------------------------------------------------------------
    def load_data(self, cfg: ConvLstmConfig, seed: int) -> Data:
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
        """Sum over the batch of each movie's IoU of predicted and true ink (see the module docstring)."""
        return {"iou": iou(torch.sigmoid(output), target, dims=(1, 2, 3, 4)).sum()}

    # --- prediction ---------------------------------------------------------------------------------
    def default_movie(self, meta: Mapping[str, Any]) -> int:
        """The movie the original shows (1004), or the first test movie of a run with fewer movies."""
        return 1004 if meta["movies"] > 1004 else meta.get("test_start", meta["train_movies"])

    @torch.no_grad()
    def predict(self, model: nn.Module, meta: Mapping[str, Any], movie: Any = None,  # type: ignore[override]
                frames: int | None = None, ahead: int | None = None, *, test_movies: int = 0,
                resize: bool = False, progress: Callable[[int, int], None] | None = None) -> MoviePrediction:
        """Continue a movie from its first `frames` frames, predicting `ahead` more one at a time.

        `movie` is a generated movie's number (None: 1004, the one the original shows), or a movie of your
        own: a numpy array (T, H, W) or (T, H, W, 1) with values in [0, 1], a `.npy` file of one, a GIF, or a
        folder of PNG frames (in name order). Frames of another size than the run's are refused, with the
        size expected, unless `resize=True`. Defaults: 7 frames given and 8 predicted (shorter movies: half
        given). With `test_movies=N`, also the mean scores over the run's first N test movies; `progress` is
        called with (done, total) movies as they are scored.

        >>> model.predict(1004, frames=7, ahead=8).scores.model_iou
        [0.91, 0.85, ...]
        """
        T, n_movies, size = meta["frames"], meta["movies"], meta["size"]
        test_start = meta.get("test_start", meta["train_movies"])
        if movie is None:
            movie = self.default_movie(meta)
        own = not (isinstance(movie, int | np.integer) and not isinstance(movie, bool))
        if own:
            if isinstance(movie, str) and movie.strip().isdigit():
                raise InputError(f"give a generated movie's number as an int ({int(movie)}), or a movie of your "
                                 "own as an array, a .npy file, a GIF or a folder of PNG frames")
            clip = read_movie(movie, size, resize)  # (F, H, W) in [0, 1]
            length = len(clip)
        else:
            movie = int(movie)
            if not 0 <= movie < n_movies:
                raise InputError(f"no movie {movie}: this run's generator makes movies 0..{n_movies - 1} (test "
                                 f"movies {test_start}..{n_movies - 1}; the original shows 1004)")
            length = T + 1  # the targets reach one frame past the movie
        given = frames if frames is not None else min(7, max(2, (T if not own else length) // 2))
        if own:
            ahead = ahead if ahead is not None else max(1, min(8, length - given))
            if given < 2 or ahead < 1 or given > length:
                raise InputError(f"frames {given}, ahead {ahead}: need frames >= 2 (at most the movie's {length}) "
                                 "and ahead >= 1")
        else:
            ahead = ahead if ahead is not None else min(8, T + 1 - given)
            if given < 2 or ahead < 1 or given + ahead > T + 1:
                raise InputError(f"frames {given}, ahead {ahead}: need frames >= 2, ahead >= 1 and frames + ahead "
                                 f"<= {T + 1} (movies of {T} frames, whose targets reach frame {T + 1})")
        if test_movies < 0:
            raise InputError(f"test_movies must be >= 0, got {test_movies}")
        test_movies = min(test_movies, n_movies - test_start)
        device = model_device(model)

        # Movies are drawn one after another, so the first `last` movies are those the run saw.
        last = max(0 if own else movie + 1, test_start + test_movies if test_movies else 0)
        noisy = shifted = None
        if last:
            noisy, shifted = generate_movies(last, T, rng=np.random.default_rng(meta["data_seed"]), size=size)
        if own:
            track = torch.from_numpy(clip[None, :, :, :, None])  # (1, F, H, W, 1)
            predicted = rollout(model, track.to(device), given, ahead).cpu()[0, ..., 0]
            true = clip[given:given + ahead] if length > given else None
            base = np.repeat(clip[given - 1:given], len(true), axis=0) if true is not None else None
            split = "your movie"
            source = str(movie) if isinstance(movie, str | Path) else f"array of {length} frames"
            inputs = clip[:given]
        else:
            assert noisy is not None and shifted is not None
            scored = rollout_scores(model, torch.from_numpy(noisy[movie:movie + 1]),
                                    torch.from_numpy(shifted[movie:movie + 1]), given, ahead, device)
            predicted = scored["predicted"][0, ..., 0]
            true = shifted[movie, given - 1:given - 1 + ahead, :, :, 0]  # the clean frames given+1 ...
            base = np.repeat(shifted[movie, given - 2:given - 1, :, :, 0], ahead, axis=0)
            split = "test movie" if movie >= test_start else "training movie" if movie < meta["train_movies"] \
                else "unused movie"
            source = f"movie {movie} ({split})"
            inputs = noisy[movie, :given, :, :, 0]
        scores = None
        if true is not None and len(true):
            t = torch.from_numpy(np.ascontiguousarray(true))[:, None]  # (F, 1, H, W): frames as the batch
            p = predicted[:len(true)][:, None]
            b = torch.from_numpy(np.ascontiguousarray(base))[:, None]
            dims = (1, 2, 3)
            scores = FrameScores(bce(p, t, dims).tolist(), iou(p, t, dims).tolist(), bce(b, t, dims).tolist(),
                                 iou(b, t, dims).tolist(), constant_bce(t, dims).tolist())
        summary = None
        if test_movies:
            assert noisy is not None and shifted is not None
            chosen = slice(test_start, test_start + test_movies)
            test_ahead = min(ahead, T + 1 - given)
            test = rollout_scores(model, torch.from_numpy(noisy[chosen]), torch.from_numpy(shifted[chosen]), given,
                                  test_ahead, device, progress=progress)
            summary = {"movies": [test_start, test_start + test_movies - 1], "frames_given": given,
                       "frames_predicted": test_ahead, **{k: float(test[k].mean()) for k in SCORES}}
        return MoviePrediction(source, None if own else movie, np.asarray(inputs), predicted.numpy(),
                               None if true is None else np.asarray(true),
                               list(range(given + 1, given + 1 + ahead)), scores, summary)


# --- rollout and scores --------------------------------------------------------------------------------------

SCORES = ("model_bce", "base_bce", "model_iou", "base_iou", "constant_bce")


def iou(pred: Tensor, true: Tensor, dims: tuple[int, ...]) -> Tensor:
    """The overlap of predicted and true ink over `dims`: sum(min(p, t)) / sum(max(p, t)) of values in
    [0, 1] (for 0/1 frames, the intersection over union of the lit pixels); 1 where both are empty."""
    p, t = pred.double().clamp(0, 1), true.double().clamp(0, 1)
    inter = torch.minimum(p, t).sum(dims)
    union = torch.maximum(p, t).sum(dims)
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.ones_like(union))


def bce(prob: Tensor, true: Tensor, dims: tuple[int, ...]) -> Tensor:
    """Mean binary cross-entropy over `dims`, probabilities clipped to [EPS, 1 - EPS] (Keras)."""
    p = prob.double().clamp(EPS, 1 - EPS)
    t = true.double()
    return -(t * p.log() + (1 - t) * (1 - p).log()).mean(dims)


def constant_bce(true: Tensor, dims: tuple[int, ...]) -> Tensor:
    """The BCE of the best constant frame: every pixel at the true frame's mean value."""
    t = true.double()
    return bce(t.mean(dims, keepdim=True).expand_as(t), t, dims)


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
                   device: torch.device, batch: int = 50, progress: Callable[[int, int], None] | None = None
                   ) -> dict[str, Tensor]:
    """Per movie and predicted frame (N, ahead): BCE and IoU of the rollout and of the copy-the-last-given-
    frame baseline against the true frames, and the best constant frame's BCE; and the predicted frames
    (N, ahead, H, W, 1), on the CPU. `progress(done, total)` is called after each batch of movies."""
    parts = []
    for i in range(0, len(noisy), batch):
        parts.append(rollout(model, noisy[i:i + batch].to(device), given, ahead).cpu())
        if progress is not None:
            progress(min(i + batch, len(noisy)), len(noisy))
    predicted = torch.cat(parts)
    true = shifted[:, given - 1:given - 1 + ahead]  # clean frames given..given+ahead-1 (0-based)
    base = shifted[:, given - 2:given - 1].expand_as(true)  # the clean last given frame, repeated
    dims = (2, 3, 4)
    return {"predicted": predicted,
            "model_bce": bce(predicted, true, dims), "base_bce": bce(base, true, dims),
            "model_iou": iou(predicted, true, dims), "base_iou": iou(base, true, dims),
            "constant_bce": constant_bce(true, dims)}
