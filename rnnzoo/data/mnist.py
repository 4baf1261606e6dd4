"""MNIST (LeCun, Cortes, Burges): the four original idx files, parsed with numpy; digits from image files.

* `read_idx` reads one gzipped idx file: a big-endian header (magic number, then one uint32 size per
  dimension) followed by the uint8 data. Every check failing (gzip, magic, sizes, length) is a `DataError`
  naming the file.
* `load_mnist` returns the 60,000 training and 10,000 test digits, verified through `rnnzoo.data.cache`.
* `prepare_image` (an image file, a PIL image or a numpy array) and `mnist_style` (grey levels) convert
  any picture of one digit the way the MNIST digits were made (grey levels, the digit fitted into a 20x20
  box keeping its aspect ratio, then placed in a 28x28 field so that its centre of mass lies at the
  centre), so that `rnnzoo predict` can read a photo or a drawing. Whatever cannot be read as one
  picture is an `InputError`.
* `generate_digits` draws seven-segment-like digits from a seeded generator: the offline data of the
  tiny and small presets.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rnnzoo.data.cache import DataError, Dataset, Resource, require
from rnnzoo.errors import InputError, TooLarge
from rnnzoo.files import write_atomically

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

FILES = {  # split -> (images, labels)
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_DIGESTS = {  # file -> (sha256, md5), the published checksums of the original distribution
    "train-images-idx3-ubyte.gz": ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                                   "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train-labels-idx1-ubyte.gz": ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                                   "d53e105ee54ea40749a09fcbcd1e9432"),
    "t10k-images-idx3-ubyte.gz": ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                                  "9fb629c4189551a2d022fa330f9573f3"),
    "t10k-labels-idx1-ubyte.gz": ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                                  "ec29112dd5afa0611ce80d1b7f02629c"),
}
MIRRORS = ("https://storage.googleapis.com/cvdf-datasets/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/",
           "http://yann.lecun.com/exdb/mnist/")

DATASET = Dataset(
    name="mnist",
    description="MNIST handwritten digits, the four original idx files",
    resources=tuple(
        Resource(filename=name, urls=tuple(base + name for base in MIRRORS), sha256=sha256, md5=md5)
        for name, (sha256, md5) in _DIGESTS.items()),
)

ROWS = COLUMNS = 28  # the MNIST field
BOX = 20  # the digit is fitted into a BOX x BOX square inside the field, as in MNIST
IMAGE_MAGIC, LABEL_MAGIC = 0x00000803, 0x00000801  # 0x08: unsigned bytes; last byte: number of dimensions


# --- the idx format --------------------------------------------------------------------------------------


def parse_idx(raw: bytes, expected_magic: int, source: str) -> np.ndarray:
    """The uint8 array of an (uncompressed) idx file whose magic number must be `expected_magic`."""
    ndim = expected_magic & 0xFF
    header = 4 * (1 + ndim)
    magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if magic is not None and magic != expected_magic:
        kinds = {IMAGE_MAGIC: "images", LABEL_MAGIC: "labels"}
        raise DataError(f"{source}: not an idx file of {kinds.get(expected_magic, 'this kind')}: magic number "
                        f"0x{magic:08x}, expected 0x{expected_magic:08x}")
    if len(raw) < header:
        raise DataError(f"{source}: truncated idx file, {len(raw)} bytes is less than its {header}-byte header; "
                        "delete it and fetch it again")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    size = math.prod(shape)  # exact: numpy's product of 32-bit sizes can overflow and wrap around
    if len(raw) - header != size:
        state = "truncated" if len(raw) - header < size else "too long"
        raise DataError(f"{source}: {state} idx file: the header announces {' x '.join(map(str, shape))} = "
                        f"{size:,} bytes of data, the file holds {len(raw) - header:,}; delete it and fetch it again")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def read_idx(path: Path, expected_magic: int) -> np.ndarray:
    """Parse a gzipped (name ends with .gz) or plain idx file."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: cannot read it as a gzip file ({e}); delete it and fetch it again") from e
    return parse_idx(raw, expected_magic, str(path))


def read_split(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28) uint8, labels (N,) uint8) of one split, with the sizes checked."""
    images = read_idx(images_path, IMAGE_MAGIC)
    labels = read_idx(labels_path, LABEL_MAGIC)
    if images.shape[1:] != (ROWS, COLUMNS):
        raise DataError(f"{images_path}: images of {images.shape[1]} x {images.shape[2]} pixels, "
                        f"expected {ROWS} x {COLUMNS}")
    if len(images) != len(labels):
        raise DataError(f"{images_path} holds {len(images):,} images but {labels_path} {len(labels):,} labels; "
                        "one of them is another version of the file")
    if labels.size and labels.max() > 9:
        raise DataError(f"{labels_path}: label {labels.max()} is not a digit 0-9")
    return images, labels


def load_mnist() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train": (60,000 images, labels), "test": (10,000 images, labels)} from the verified cache."""
    return {split: read_split(require(DATASET, images), require(DATASET, labels))
            for split, (images, labels) in FILES.items()}


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in [0, 1], as the original scales the pixels."""
    return (images.astype(np.float32) / 255.0)[..., None]


# --- generated digits (offline data of the tiny and small presets) ---------------------------------------

# Seven segments in a unit box (x right, y down): a top, b top right, c bottom right, d bottom, e bottom left,
# f top left, g middle.
_SEGMENTS = {"a": ((0, 0), (1, 0)), "b": ((1, 0), (1, 0.5)), "c": ((1, 0.5), (1, 1)), "d": ((0, 1), (1, 1)),
             "e": ((0, 0.5), (0, 1)), "f": ((0, 0), (0, 0.5)), "g": ((0, 0.5), (1, 0.5))}
_DIGIT_SEGMENTS = ("abcdef", "bc", "abged", "abgcd", "fgbc", "afgcd", "afgedc", "abc", "abcdefg", "abcdfg")


def generate_digits(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`n` seven-segment digits drawn with random size, slant, position, stroke width and wobble:
    (images (n, 28, 28) uint8, bright strokes on black like MNIST; labels (n,) uint8)."""
    labels = rng.integers(0, 10, n).astype(np.uint8)
    ys, xs = np.mgrid[0:ROWS, 0:COLUMNS].astype(np.float64)
    images = np.zeros((n, ROWS, COLUMNS), np.uint8)
    for i, digit in enumerate(labels):
        height, width = rng.uniform(14, 19), rng.uniform(7, 12)
        top, left = rng.uniform(4, ROWS - 4 - height), rng.uniform(6, COLUMNS - 6 - width)
        slant, thickness = rng.uniform(-0.25, 0.25), rng.uniform(0.8, 1.6)
        distance = np.full((ROWS, COLUMNS), np.inf)
        for name in _DIGIT_SEGMENTS[digit]:
            (x0, y0), (x1, y1) = (np.array(p) + rng.normal(0, 0.04, 2) for p in _SEGMENTS[name])
            # unit box -> pixels, with the slant shifting x by height above the bottom
            p0 = np.array([left + x0 * width + slant * (1 - y0) * height, top + y0 * height])
            p1 = np.array([left + x1 * width + slant * (1 - y1) * height, top + y1 * height])
            distance = np.minimum(distance, _segment_distance(xs, ys, p0, p1))
        ink = np.clip(1.0 + thickness - distance, 0.0, 1.0)  # anti-aliased edge one pixel wide
        images[i] = np.round(ink * 255).astype(np.uint8)
    return images, labels


def _segment_distance(xs: np.ndarray, ys: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    """Distance of every pixel centre to the segment p0-p1."""
    d = p1 - p0
    t = np.clip(((xs - p0[0]) * d[0] + (ys - p0[1]) * d[1]) / max(float(d @ d), 1e-9), 0.0, 1.0)
    return np.hypot(xs - (p0[0] + t * d[0]), ys - (p0[1] + t * d[1]))


# --- any picture of a digit -> an MNIST-style 28x28 input ------------------------------------------------

INK = 0.25  # after the background is removed, pixels above this fraction of the darkest-to-brightest range are ink
FLOOR = 0.08  # below this the pixel is background (paper texture, sensor noise) and becomes 0


def load_grey(source: str | os.PathLike[str] | bytes, max_pixels: int | None = None) -> np.ndarray:
    """An image file, or its bytes, as grey levels (H, W) float32 in [0, 255]; transparency is flattened onto
    a background that contrasts with the strokes. Any input that cannot be read as such (not an image,
    damaged, NaN or infinite pixels) is an InputError naming it; one of more than `max_pixels` pixels is a
    TooLarge, found before it is decoded."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(source, bytes):
        file: io.BytesIO | Path = io.BytesIO(source)
        name = the_image = "the image"
    else:
        file = Path(source)
        name, the_image = str(file), f"the image {file}"
        if not file.is_file():
            raise InputError(f"no image file at {file}")
    try:
        with Image.open(file) as img:
            width, height = img.size
            if max_pixels is not None and width * height > max_pixels:
                raise TooLarge(f"{name} has {width}x{height} pixels; at most {max_pixels:,} pixels are accepted")
            return _grey_of_pil(img, name)
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(f"{name} is not a picture Pillow can read (PNG, JPEG, BMP, GIF, TIFF, WebP, ...)"
                         ) from None
    except Exception as e:  # a damaged file fails in its decoder with any of many types (OSError,
        # ValueError, SyntaxError, struct.error, EOFError, DecompressionBombError ...): all mean "unreadable"
        raise InputError(f"cannot read {the_image}: {e or type(e).__name__}") from None


def _grey_of_pil(img: PILImage, source: str) -> np.ndarray:
    """A PIL image as grey levels (H, W) float32 in [0, 255] (see `load_grey`)."""
    from PIL import ImageOps

    img = ImageOps.exif_transpose(img)  # photos: upright as the camera held them
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit or float grey: stretch to 0-255
        values = np.asarray(img, np.float32)
        if not np.isfinite(values).all():
            raise InputError(f"{source}: the image has NaN or infinite pixels; a picture needs finite grey levels")
        top = 65535.0 if img.mode.startswith("I;16") else max(float(values.max()), 1e-6)
        return np.clip(values / top * 255.0, 0.0, 255.0)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        grey = np.asarray(rgba.convert("L"), np.float32)
        return _flatten_alpha(grey, np.asarray(rgba, np.float32)[..., 3] / 255.0)
    return np.asarray(img.convert("L"), np.float32)


def _flatten_alpha(grey: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Grey levels (0-255) with opacity `alpha` (0-1) on a background that contrasts with the opaque strokes."""
    opaque = alpha > 0.5
    light_strokes = opaque.any() and float(grey[opaque].mean()) > 127.5
    background = 0.0 if light_strokes else 255.0
    return grey * alpha + background * (1 - alpha)


ARRAY_SHAPES = "(H, W), (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA"
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601 weights of R, G, B, as Pillow's convert("L")


def grey_of_array(array: np.ndarray, source: str = "the image array") -> np.ndarray:
    """A picture as a numpy array -> grey levels (H, W) float32 in [0, 255], transparency flattened as in
    `load_grey`. Shapes: ARRAY_SHAPES; values: uint8 0-255 or floating point 0-1. Anything else (another
    shape or dtype, NaN, infinity, a float outside 0-1) is an InputError."""
    a = np.asarray(array)
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (1, 3, 4))) or a.size == 0:
        raise InputError(f"{source}: expected a non-empty array of shape {ARRAY_SHAPES}, got shape {a.shape}")
    if a.dtype == np.uint8:
        values = a.astype(np.float32)
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise InputError(f"{source}: the array has NaN or infinite values; expected grey levels in 0-1")
        low, high = float(a.min()), float(a.max())
        if low < 0 or high > 1:
            raise InputError(f"{source}: a float array's values must lie in 0-1, got {low:g} to {high:g} "
                             "(for 0-255, pass a uint8 array)")
        values = a.astype(np.float32) * 255.0
    else:
        raise InputError(f"{source}: expected uint8 (0-255) or floating-point (0-1) values, got dtype {a.dtype}")
    if values.ndim == 2:
        return values
    grey = values[..., :3] @ LUMA if values.shape[2] >= 3 else values[..., 0]
    return _flatten_alpha(grey, values[..., 3] / 255.0) if values.shape[2] == 4 else grey


def mnist_style(grey: np.ndarray, source: str = "image") -> np.ndarray:
    """Grey levels (H, W) of one digit, any size, dark-on-light or light-on-dark -> (28, 28) float32 in [0, 1],
    bright digit on black, fitted into a 20x20 box (aspect kept) and placed in the 28x28 field so that its
    centre of mass falls on pixel (14, 14) (the mean centre of mass of the MNIST training digits)."""
    from PIL import Image

    grey = np.asarray(grey, np.float64)
    if grey.ndim != 2 or grey.size == 0:
        raise InputError(f"{source}: expected one grey image, got an array of shape {grey.shape}")
    if not np.isfinite(grey).all():
        raise InputError(f"{source}: NaN or infinite grey levels; expected finite values in 0-255")
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
    if background > 127.5:  # dark on light (ink on paper): invert so that the digit is bright, as in MNIST
        grey, background = 255.0 - grey, 255.0 - background
    peak = float(grey.max())
    if peak - background < 16:  # less than about 6% contrast anywhere
        raise InputError(f"{source}: the image is blank (no digit stands out from the background)")
    level = np.clip((grey - background) / (peak - background), 0.0, 1.0)
    level[level < FLOOR] = 0.0
    rows, cols = np.nonzero(level >= INK)
    crop = level[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    h, w = crop.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # PIL sizes are (width, height)
    box = np.asarray(Image.fromarray(crop.astype(np.float32)).resize(size, Image.Resampling.LANCZOS))
    box = np.clip(box, 0.0, None)  # Lanczos rings below zero next to strokes
    if box.max() <= 0:
        raise InputError(f"{source}: the digit vanishes when scaled to {BOX}x{BOX} pixels")
    box = np.clip(box / box.max(), 0.0, 1.0)  # MNIST digits reach full intensity
    field = np.zeros((ROWS, COLUMNS), np.float32)
    bh, bw = box.shape
    mass = box.sum()
    centre_row = (box.sum(axis=1) * np.arange(bh)).sum() / mass
    centre_col = (box.sum(axis=0) * np.arange(bw)).sum() / mass
    # integer shift (MNIST translated whole pixels), kept inside the field
    top = int(np.clip(np.round(ROWS / 2 - centre_row), 0, ROWS - bh))
    left = int(np.clip(np.round(COLUMNS / 2 - centre_col), 0, COLUMNS - bw))
    field[top:top + bh, left:left + bw] = box
    return field


def prepare_image(image: str | os.PathLike[str] | PILImage | np.ndarray) -> np.ndarray:
    """One digit -> the (28, 28) float32 input the model expects. `image` is the path of an image file (any
    format Pillow reads), a PIL image, or a numpy array of shape ARRAY_SHAPES (uint8 0-255 or float 0-1).
    Anything that is not one readable picture of a digit is an InputError."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        return mnist_style(grey_of_array(image), source="the image array")
    if isinstance(image, Image.Image):
        source = getattr(image, "filename", "") or "the PIL image"
        try:
            grey = _grey_of_pil(image, source)
        except InputError:
            raise
        except Exception as e:  # a lazily decoded image fails here as in `load_grey`
            raise InputError(f"cannot read {source}: {e or type(e).__name__}") from None
        return mnist_style(grey, source=source)
    if isinstance(image, str | os.PathLike):
        return mnist_style(load_grey(image), source=str(image))
    raise InputError(f"expected the path of an image file, a PIL image or a numpy array, got {type(image).__name__}")


def save_preview(images: list[np.ndarray], path: Path, zoom: int = 8, gap: int = 4) -> Path:
    """Write the 28x28 inputs side by side, each pixel a zoom x zoom square, as a grey image in the format
    that the file's suffix names (.png, .jpg, ...; PNG when Pillow knows no such suffix)."""
    from PIL import Image

    tiles = [np.kron(np.clip(img, 0, 1), np.ones((zoom, zoom))) for img in images]
    height = max(t.shape[0] for t in tiles)
    width = sum(t.shape[1] for t in tiles) + gap * (len(tiles) - 1)
    sheet = np.full((height, width), 0.5)  # mid-grey gaps separate the black fields
    x = 0
    for t in tiles:
        sheet[:t.shape[0], x:x + t.shape[1]] = t
        x += t.shape[1] + gap
    path = Path(path)
    try:
        image_format = Image.registered_extensions().get(path.suffix.lower(), "PNG")
        picture = Image.fromarray(np.round(sheet * 255).astype(np.uint8))
        write_atomically(path, lambda tmp: picture.save(tmp, format=image_format))
    except OSError as e:
        raise InputError(f"cannot write {path}: {e}") from None
    return path
