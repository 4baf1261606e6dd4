"""How prediction results look to a person: text for the terminal and pictures (a PNG grid and a GIF of a
movie, a sheet of the digits the model saw). The results themselves come from the specs' `predict`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rnnzoo.errors import InputError
from rnnzoo.files import pyplot, save_figure, write_atomically


def bar(weight: float, width: int = 40) -> str:
    return "#" * round(max(0.0, min(1.0, weight)) * width)


def babi_text(result: Any) -> str:
    """A BabiAnswer: the answer, the top answers, and the attention per sentence where there is one."""
    lines = [f"answer: {result.answer}  (p={result.probability:.3f})",
             f"top {len(result.top)}:  " + ", ".join(f"{w} {p:.3f}" for w, p in result.top)]
    hops = getattr(result, "hops", None)
    if hops:  # a model that reads the story sentence by sentence, hop after hop: each hop's weights
        lines.append("attention over the story sentences, per hop:")
        for a_hops in zip(*hops):
            weights = "  ".join(f"{a.weight:.3f}" for a in a_hops)
            lines.append(f"  {weights}  {bar(a_hops[-1].weight, 20):<20} {a_hops[-1].sentence}")
        lines.append("  (" + ", ".join(f"hop {k + 1}" for k in range(len(hops))) + "; the bar: the last hop)")
    elif result.attention:
        lines.append("attention over the story sentences:")
        lines += [f"  {a.weight:.3f} {bar(a.weight):<40} {a.sentence}" for a in result.attention]
    return "\n".join(lines)


def review_text(where: str, text: str, result: Any, maxlen: int) -> str:
    """A ReviewScore: probability, label, a preview of the review, and what was out of vocabulary or cut."""
    preview = " ".join(text.split())
    preview = preview if len(preview) <= 70 else preview[:67] + "..."
    lines = [f"{result.probability:.3f}  {result.label:<8}  {where}: {preview}"]
    if result.oov:
        shown = ", ".join(result.oov[:12]) + (f", ... ({len(result.oov)} in all)" if len(result.oov) > 12 else "")
        lines.append(f"       out of vocabulary: {shown}")
    if result.truncated:
        cut = " ".join(result.truncated)
        cut = cut if len(cut) <= 60 else cut[:28] + " ... " + cut[-28:]
        lines.append(f"       truncated away: the first {len(result.truncated)} of {len(result.words)} words "
                     f"(the model reads the last {maxlen}): {cut}")
    return "\n".join(lines)


def digit_text(result: Any) -> str:
    top = ", ".join(f"{d} {v:.3f}" for d, v in result.top)
    return f"{result.source}: {result.digit}  (p={result.probability:.3f})  top 3: {top}"


def movie_text(result: Any) -> str:
    """A MoviePrediction: per predicted frame, the model's scores against copy-last, then what they measure."""
    given, numbers = len(result.given), result.frame_numbers
    lines = [f"{result.source}: frames 1-{given} given, frames {numbers[0]}-{numbers[-1]} predicted one at a time, "
             "each fed back"]
    s = result.scores
    if s is None:
        lines.append("(the movie has no frames after the given ones, so there is nothing to score against)")
    else:
        lines.append(f"{'frame':>5}  {'BCE model':>9}  {'BCE copy-last':>13}  {'IoU model':>9}  {'IoU copy-last':>13}")
        for k, n in enumerate(numbers[:len(s.model_bce)]):
            lines.append(f"{n:>5}  {s.model_bce[k]:>9.4f}  {s.base_bce[k]:>13.4f}  {s.model_iou[k]:>9.3f}  "
                         f"{s.base_iou[k]:>13.3f}")
        lines.append(f"{'mean':>5}  {np.mean(s.model_bce):>9.4f}  {np.mean(s.base_bce):>13.4f}  "
                     f"{np.mean(s.model_iou):>9.3f}  {np.mean(s.base_iou):>13.3f}")
        lines.append(f"(a constant frame at the true share of lit pixels scores BCE {np.mean(s.constant_bce):.4f})")
    if result.test_movies:
        t = result.test_movies
        lines.append(f"mean over test movies {t['movies'][0]}..{t['movies'][1]}, {t['frames_given']} given, "
                     f"{t['frames_predicted']} predicted: BCE model {t['model_bce']:.4f} vs copy-last "
                     f"{t['base_bce']:.4f} (constant frame {t['constant_bce']:.4f}), IoU model {t['model_iou']:.3f} "
                     f"vs copy-last {t['base_iou']:.3f}")
    lines.append(f"({result.metrics})")
    return "\n".join(lines)


# --- pictures ------------------------------------------------------------------------------------------------


def movie_rows(result: Any) -> tuple[np.ndarray, np.ndarray]:
    """The two rows of a movie picture (F, H, W): the given frames then the true ones (blank where there are
    none), over the given frames then the predicted ones."""
    given, predicted = result.given, result.predicted
    true = result.true if result.true is not None else np.zeros((0, *given.shape[1:]), np.float32)
    blank = np.full((len(predicted) - len(true), *given.shape[1:]), 0.5, np.float32)  # mid-grey: no truth
    return np.concatenate([given, true[:len(predicted)], blank]), np.concatenate([given, predicted])


def movie_pictures(result: Any, folder: Path, stem: str) -> tuple[Path, Path]:
    """Write `<stem>.png` (true over predicted frames, IoU under each) and `<stem>.gif` into `folder`."""
    top, bottom = movie_rows(result)
    given = len(result.given)
    ious = result.scores.model_iou if result.scores is not None else []
    png, gif = folder / f"{stem}.png", folder / f"{stem}.gif"
    try:  # (each picture is written atomically, its folder made as needed)
        draw_grid(png, top, bottom, given, ious, result.source)
        draw_gif(gif, top, bottom, given)
    except OSError as exc:
        raise InputError(f"cannot write the pictures to {folder}: {exc.strerror or exc}; give another --out"
                         ) from None
    return png, gif


def draw_grid(path: Path, true: np.ndarray, predicted: np.ndarray, given: int, ious: list[float],
              title: str) -> None:
    """Two rows of frames (F, H, W): the true movie over the model's, frame numbers on top; the first
    `given` frames are the input in both rows, the rest true frames over predicted ones."""
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
        if k >= given and k - given < len(ious):
            axes[1][k].set_xlabel(f"IoU {ious[k - given]:.2f}", fontsize=7)
    axes[0][0].set_ylabel("true", fontsize=9)
    axes[1][0].set_ylabel("predicted", fontsize=9)
    fig.suptitle(f"{title}: frames 1-{given} given, {given + 1}-{n} predicted one at a time", fontsize=9)
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
