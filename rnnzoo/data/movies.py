"""Moving squares: the generated movies of the Keras `conv_lstm` example (no download).

As the original `generate_movies(n_samples=1200, n_frames=15)`: each movie is drawn on an 80x80 canvas and
cropped to its centre 40x40; it holds 3 to 7 squares, each with a start (x and y in 20..59 of the canvas), a
direction (a step of -1, 0 or +1 pixel per frame on each axis) and a half-size w of 2 or 3 pixels, drawn
with value 1 over [x-w, x+w) x [y-w, y+w). The input movie gets noise "for robustness": with probability
1/2, per square and frame, +-0.1 is added over a box one pixel larger on each side. The target is the same
movie one frame later, without noise. Overlaps add up; values are then clipped to 1 from above (as the
original; the -0.1 noise may leave small negative values around a square).

`size` scales the geometry for quick tests: canvas 2*size, crop and start range [size/2, 3*size/2).
Movies are drawn one after the other from one generator, so movie i is the same whatever `n_samples` is
(the first 1,000 of 1,200 are the first 1,000 of 1,005).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from rnnzoo.errors import InputError, TooLarge

SQUARES = (3, 7)  # squares per movie, inclusive
HALF_SIZES = (2, 3)  # half-size w of a square, inclusive
NOISE = 0.1  # the input noise amplitude


@dataclass(frozen=True)
class Square:
    """One moving square, in canvas coordinates: at frame t its centre is (x + dx*t, y + dy*t)."""

    x: int
    y: int
    dx: int
    dy: int
    half: int
    noise: np.ndarray  # (n_frames,): the noise added around it in each input frame, 0 or +-NOISE


def draw_squares(rng: np.random.Generator, n_frames: int, size: int = 40) -> list[Square]:
    """The squares of one movie (the original's draws, in its order per square)."""
    low = size // 2
    squares = []
    for _ in range(rng.integers(SQUARES[0], SQUARES[1] + 1)):
        x, y = (int(v) for v in rng.integers(low, low + size, size=2))
        dx, dy = (int(v) for v in rng.integers(-1, 2, size=2))
        half = int(rng.integers(HALF_SIZES[0], HALF_SIZES[1] + 1))
        noisy = rng.integers(0, 2, size=n_frames) == 1  # which frames get noise, probability 1/2
        sign = np.where(rng.integers(0, 2, size=n_frames) == 0, 1.0, -1.0)  # (-1) ** randint(0, 2)
        squares.append(Square(x, y, dx, dy, half, np.where(noisy, NOISE * sign, 0.0)))
    return squares


def render(squares: list[Square], n_frames: int, size: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """One movie's (noisy input, target) frames, each (n_frames, size, size) float32, cropped and clipped."""
    canvas, low = 2 * size, size // 2
    noisy = np.zeros((n_frames, canvas, canvas), dtype=np.float32)
    shifted = np.zeros_like(noisy)
    for s in squares:
        for t in range(n_frames):
            x, y = s.x + s.dx * t, s.y + s.dy * t
            _box(noisy[t], x, y, s.half, 1.0)
            if s.noise[t]:
                _box(noisy[t], x, y, s.half + 1, s.noise[t])
            _box(shifted[t], x + s.dx, y + s.dy, s.half, 1.0)  # the square one frame later
    crop = (slice(None), slice(low, low + size), slice(low, low + size))
    return np.minimum(noisy[crop], 1.0), np.minimum(shifted[crop], 1.0)


def generate_movies(n_samples: int = 1200, n_frames: int = 15, *, rng: np.random.Generator, size: int = 40
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(noisy input movies, target movies), each float32 of shape (n_samples, n_frames, size, size, 1):
    target[:, t] is the clean frame t+1."""
    if n_samples < 1 or n_frames < 1 or size < 8:
        raise ValueError(f"need n_samples >= 1, n_frames >= 1 and size >= 8; got {n_samples}, {n_frames}, {size}")
    noisy = np.zeros((n_samples, n_frames, size, size, 1), dtype=np.float32)
    shifted = np.zeros_like(noisy)
    for i in range(n_samples):
        noisy[i, ..., 0], shifted[i, ..., 0] = render(draw_squares(rng, n_frames, size), n_frames, size)
    return noisy, shifted


def _box(frame: np.ndarray, x: int, y: int, half: int, value: float) -> None:
    """Add `value` over [x-half, x+half) x [y-half, y+half), clipped to the canvas (the original's slices
    would wrap around below 0; with its sizes no square gets there)."""
    n = frame.shape[0]
    frame[max(x - half, 0):min(x + half, n), max(y - half, 0):min(y + half, n)] += value


# --- movies of one's own ---------------------------------------------------------------------------------

MAX_FRAMES = 500  # a longer movie is refused: the rollout feeds the whole track back each frame


def read_movie(source: Any, size: int, resize: bool = False) -> np.ndarray:
    """A movie of the user's own as frames (F, size, size) float32 in [0, 1], lit squares on a dark ground.

    `source`: a numpy array (F, H, W) or (F, H, W, 1), uint8 (0-255) or float (0-1); a `.npy` file of one;
    an animated GIF; or a folder of PNG frames, read in name order. Frames of another size are refused with
    the size expected, or, with `resize`, scaled to it. Every bad input is an InputError."""
    if isinstance(source, str | Path):
        array = _read_movie_file(Path(source))
        where = str(source)
    elif isinstance(source, np.ndarray):
        array, where = source, "the movie"
    else:
        raise InputError(f"a movie is a numpy array (frames, {size}, {size}), a .npy file, a GIF or a folder of "
                         f"PNG frames; got {type(source).__name__}")
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise InputError(f"{where}: a movie has the shape (frames, height, width) or (frames, height, width, 1), "
                         f"got {array.shape}")
    if not 2 <= len(array) <= MAX_FRAMES:
        raise InputError(f"{where}: a movie needs 2 to {MAX_FRAMES} frames, got {len(array)}")
    if array.dtype == np.uint8:
        frames = array.astype(np.float32) / 255
    elif np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer) or array.dtype == bool:
        frames = array.astype(np.float32)
        if not np.isfinite(frames).all():
            raise InputError(f"{where}: the frames hold NaN or infinite values")
        if frames.min() < 0 or frames.max() > 1:
            raise InputError(f"{where}: frame values must lie in [0, 1] (or be uint8 0-255), got "
                             f"{frames.min():g}..{frames.max():g}")
    else:
        raise InputError(f"{where}: frames of type {array.dtype} are not pixel values")
    if frames.shape[1:] != (size, size):
        if not resize:
            raise InputError(f"{where}: frames of {frames.shape[2]}x{frames.shape[1]} pixels; this model reads "
                             f"{size}x{size} (resize them, or ask for resizing: --resize, resize=True)")
        frames = np.stack([_resized(f, size) for f in frames])
    return np.ascontiguousarray(frames, dtype=np.float32)


def _resized(frame: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    image = Image.fromarray(np.round(frame * 255).astype(np.uint8))
    return np.asarray(image.resize((size, size), Image.BILINEAR), dtype=np.float32) / 255


def _read_movie_file(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".png")
        if not files:
            raise InputError(f"{path} holds no .png frames")
        if len(files) > MAX_FRAMES:
            raise InputError(f"{path}: a movie needs 2 to {MAX_FRAMES} frames, got {len(files)}")
        frames = []
        for f in files:
            try:
                with Image.open(f) as image:
                    frames.append(np.asarray(image.convert("L")))
            except (OSError, UnidentifiedImageError, ValueError) as e:
                raise InputError(f"{f} is not a readable PNG frame ({e})") from None
        if len({f.shape for f in frames}) > 1:
            raise InputError(f"{path}: the frames differ in size ({', '.join(sorted({str(f.shape) for f in frames}))})")
        return np.stack(frames)
    if not path.is_file():
        raise InputError(f"no movie at {path}: give a .npy file, a GIF or a folder of PNG frames")
    with path.open("rb") as file:
        return decode_movie(file, str(path))


def decode_movie(file: BinaryIO, where: str = "the movie", max_pixels: int | None = None) -> np.ndarray:
    """The frames (F, H, W) of a movie file: a .npy array (read without unpickling: it never runs code) or an
    animated picture (GIF, or any Pillow reads) as grey levels. At most MAX_FRAMES + 1 frames are decoded (a
    longer movie is then refused by `read_movie`); with `max_pixels`, a movie of more pixels in all is a
    TooLarge, found before more are decoded. `where` names the file in messages."""
    from PIL import Image, ImageSequence

    start = file.read(6)
    file.seek(0)
    if start == b"\x93NUMPY":
        try:
            array = np.load(file, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise InputError(f"{where} is not a readable .npy array ({e})") from None
        if max_pixels is not None and array.size > max_pixels:
            raise TooLarge(f"{where} has more than {max_pixels:,} pixels in all")
        return array
    try:
        with Image.open(file) as image:
            width, height = image.size
            frames = []
            for frame in ImageSequence.Iterator(image):
                if len(frames) > MAX_FRAMES:
                    break
                if max_pixels is not None and (len(frames) + 1) * width * height > max_pixels:
                    raise TooLarge(f"{where} has more than {max_pixels:,} pixels in all (frames of {width}x{height})")
                frames.append(np.asarray(frame.convert("L")))
    except TooLarge:
        raise
    except (OSError, ValueError, EOFError, SyntaxError) as e:  # (UnidentifiedImageError is an OSError)
        raise InputError(f"cannot read {where} as a movie: give an animated GIF or a .npy array of shape (frames, "
                         f"height, width) ({e})") from None
    return np.stack(frames)
