"""mnist_hierarchical_rnn: idx parsing and its errors, the model's shapes, turning pictures into MNIST-style
inputs, and predict end to end with a tiny trained model (its CPU LSTM kernel: test_kernels.py)."""

from __future__ import annotations

import gzip
import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from rnnzoo.cli import main
from rnnzoo.data import DATASETS, mnist
from rnnzoo.data.cache import DataError
from rnnzoo.errors import InputError
from rnnzoo.models.hierarchical import HierarchicalRNN
from rnnzoo.specs import get_example
from rnnzoo.summary import layer_rows

EXAMPLE = "mnist_hierarchical_rnn"

# --- the idx format --------------------------------------------------------------------------------------


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    magic = magic if magic is not None else 0x0800 + array.ndim
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


@pytest.fixture
def split_files(tmp_path: Path) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 10, 5).astype(np.uint8)
    return (write(tmp_path / "imgs-idx3-ubyte.gz", idx_bytes(images)),
            write(tmp_path / "lbls-idx1-ubyte.gz", idx_bytes(labels)), images, labels)


def test_idx_round_trip(split_files, tmp_path: Path) -> None:
    images_path, labels_path, images, labels = split_files
    got_images, got_labels = mnist.read_split(images_path, labels_path)
    assert got_images.shape == (5, 28, 28) and got_images.dtype == np.uint8
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    plain = write(tmp_path / "plain-idx1-ubyte", idx_bytes(labels))  # an uncompressed copy reads the same
    np.testing.assert_array_equal(mnist.read_idx(plain, mnist.LABEL_MAGIC), labels)
    floats = mnist.to_float(images)
    assert floats.shape == (5, 28, 28, 1) and floats.dtype == np.float32
    assert floats.min() >= 0 and floats.max() <= 1 and floats[0, 3, 4, 0] == pytest.approx(images[0, 3, 4] / 255)


@pytest.mark.parametrize("data, message", [
    (idx_bytes(np.zeros(4), magic=0x00000803), "magic number 0x00000803, expected 0x00000801"),
    (b"\x00\x00\x08", "truncated idx file"),
    (idx_bytes(np.zeros(4))[:-1], "truncated idx file: the header announces 4 = 4 bytes of data, the file holds 3"),
    (idx_bytes(np.zeros(4)) + b"\x00", "too long"),
])
def test_broken_label_files_are_clear_errors(tmp_path: Path, data: bytes, message: str) -> None:
    path = write(tmp_path / "labels-idx1-ubyte.gz", data)
    with pytest.raises(DataError, match=re.escape(message)) as info:
        mnist.read_idx(path, mnist.LABEL_MAGIC)
    assert str(path) in str(info.value)


def test_sizes_whose_product_overflows_64_bits_are_a_clear_error(tmp_path: Path) -> None:
    """2**31 x 2**31 x 4 = 2**64 bytes: a 64-bit product wraps to 0 and matched an empty body."""
    path = write(tmp_path / "huge-idx3-ubyte.gz", struct.pack(">IIII", mnist.IMAGE_MAGIC, 2**31, 2**31, 4))
    with pytest.raises(DataError, match="truncated idx file: the header announces 2147483648 x 2147483648 x 4"):
        mnist.read_idx(path, mnist.IMAGE_MAGIC)


def test_broken_gzip_and_images_are_clear_errors(split_files, tmp_path: Path) -> None:
    images_path, labels_path, images, labels = split_files
    not_gzip = tmp_path / "x-idx3-ubyte.gz"
    not_gzip.write_bytes(idx_bytes(images))
    with pytest.raises(DataError, match="gzip") as info:
        mnist.read_idx(not_gzip, mnist.IMAGE_MAGIC)
    assert str(not_gzip) in str(info.value)
    cut = tmp_path / "cut-idx3-ubyte.gz"
    cut.write_bytes(images_path.read_bytes()[:-20])  # an interrupted download
    with pytest.raises(DataError, match="gzip"):
        mnist.read_idx(cut, mnist.IMAGE_MAGIC)
    with pytest.raises(DataError, match="4 labels"):
        mnist.read_split(images_path, write(tmp_path / "four-idx1-ubyte.gz", idx_bytes(labels[:4])))
    small = write(tmp_path / "small-idx3-ubyte.gz", idx_bytes(images[:, :27]))
    with pytest.raises(DataError, match="27 x 28 pixels, expected 28 x 28"):
        mnist.read_split(small, labels_path)
    with pytest.raises(DataError, match="label 12"):
        mnist.read_split(images_path, write(tmp_path / "bad-idx1-ubyte.gz", idx_bytes(np.full(5, 12))))
    with pytest.raises(DataError, match="not an idx file of images"):
        mnist.read_split(labels_path, labels_path)


def test_dataset_declares_the_four_files_with_their_checksums() -> None:
    ds = DATASETS["mnist"]
    assert [r.filename for r in ds.resources] == [name for pair in mnist.FILES.values() for name in pair]
    for res in ds.resources:
        assert len(res.sha256) == 64 and len(res.md5) == 32 and res.urls
        assert all(url.endswith("/" + res.filename) for url in res.urls)


def test_declared_checksums_match_the_test_data_readme(real_data: Path) -> None:
    readme = (real_data / "README.md").read_text()
    for res in DATASETS["mnist"].resources:
        assert res.sha256 in readme and res.md5 in readme


def test_a_wrong_file_is_refused_by_data_add(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = write(tmp_path / "t10k-labels-idx1-ubyte.gz", idx_bytes(np.zeros(3)))
    assert main(["data", "add", "mnist", str(fake)]) == 2
    err = capsys.readouterr().err
    assert "this is not the t10k-labels-idx1-ubyte.gz of mnist" in err and "Traceback" not in err


@pytest.mark.slow
def test_real_mnist_facts(real_data) -> None:
    splits = mnist.load_mnist()
    (train_x, train_y), (test_x, test_y) = splits["train"], splits["test"]
    assert train_x.shape == (60_000, 28, 28) and test_x.shape == (10_000, 28, 28)
    assert np.bincount(train_y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(test_y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert train_x.mean() / 255 == pytest.approx(0.1306604763, abs=1e-9)
    example = get_example(EXAMPLE)
    data = example.load_data(example.config(), seed=0)
    assert (len(data.train), len(data.val), len(data.test)) == (57_000, 3_000, 10_000)
    assert data.train.inputs[0].shape[1:] == (28, 28, 1) and data.train.inputs[0].dtype == torch.float32
    assert data.meta == example.shape_meta(example.config())


def test_generated_digits_are_seeded_and_mnist_like() -> None:
    a, labels = mnist.generate_digits(30, np.random.default_rng(5))
    b, labels_b = mnist.generate_digits(30, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(labels, labels_b)
    assert a.shape == (30, 28, 28) and a.dtype == np.uint8 and labels.max() <= 9
    assert (a.max(axis=(1, 2)) == 255).all() and (a[:, 0, :] == 0).all()  # bright strokes, black border


# --- the model -------------------------------------------------------------------------------------------


def test_faithful_model_follows_the_seed_table() -> None:
    example = get_example(EXAMPLE)
    cfg = example.config()
    model = example.build_model(cfg, example.shape_meta(cfg))
    inputs, target = example.synthetic_batch(cfg, example.shape_meta(cfg), 3, torch.Generator().manual_seed(0))
    rows = [(name, shape) for name, _, shape, _ in layer_rows(model, inputs)]
    assert rows == [("input", "(None, 28, 28, 1)"), ("row_lstm", "(None, 28, 128)"),
                    ("column_lstm", "(None, 128)"), ("dense", "(None, 10)")]
    assert model(*inputs).shape == (3, 10) and target.shape == (3,)
    # Keras counts one bias per LSTM; PyTorch keeps two (b_ih, b_hh): 512 + 512 more than Keras' 199,434
    assert sum(p.numel() for p in model.parameters()) == 199_434 + 2 * 512


def test_rows_and_columns_are_not_swapped() -> None:
    model = HierarchicalRNN(channels=2, row_hidden=6, column_hidden=5, num_classes=4)
    image = torch.rand(3, 7, 9, 2)  # 7 rows of 9 pixels with 2 channels
    seen = []
    model.row_lstm.layer.register_forward_hook(lambda m, args, out: seen.append((args[0].shape, out.shape)))
    rows = layer_rows(model, [image])
    assert [shape for _, _, shape, _ in rows] == ["(None, 7, 9, 2)", "(None, 7, 6)", "(None, 5)", "(None, 4)"]
    assert seen == [((3 * 7, 9, 2), (3 * 7, 6))]  # one LSTM call over all B*rows rows, 9 steps each


# --- pictures -> MNIST-style inputs ----------------------------------------------------------------------


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    rows, cols = np.indices(image.shape)
    return float((image * rows).sum() / image.sum()), float((image * cols).sum() / image.sum())


def draw_digit(size: tuple[int, int], ink: int | tuple[int, ...], paper: int | tuple[int, ...], mode: str = "L"
               ) -> Image.Image:
    """An off-centre '7' with a blob at its top: its centre of mass is well above its box's centre."""
    w, h = size
    img = Image.new(mode, size, paper)
    draw = ImageDraw.Draw(img)
    draw.line([(w * 0.55, h * 0.2), (w * 0.9, h * 0.2), (w * 0.65, h * 0.85)], fill=ink, width=max(2, w // 25))
    draw.ellipse([w * 0.55, h * 0.15, w * 0.62, h * 0.3], fill=ink)
    return img


@pytest.mark.parametrize("size", [(300, 200), (40, 90), (12, 12)])
def test_digit_is_fitted_to_20_pixels_and_centred_by_mass(size: tuple[int, int]) -> None:
    grey = np.asarray(draw_digit(size, ink=255, paper=0), np.float32)
    field = mnist.mnist_style(grey)
    assert field.shape == (28, 28) and field.dtype == np.float32
    assert field.max() == pytest.approx(1.0) and field.min() >= 0
    rows, cols = np.nonzero(field > 0)
    assert max(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) <= mnist.BOX
    assert max(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) >= mnist.BOX - 1
    r, c = centre_of_mass(field)
    assert abs(r - 14) <= 0.5 and abs(c - 14) <= 0.5
    assert rows.min() > (28 - mnist.BOX) // 2  # placed by its centre of mass, lower than its box's centre


def test_a_lopsided_digit_keeps_all_its_ink() -> None:
    """When centring the mass would push the box out of the field, the box stops at the edge."""
    grey = np.zeros((100, 100), np.float32)
    grey[10:20, 20:80] = 255  # a heavy bar on top
    grey[20:90, 48:52] = 255  # a thin stem
    field = mnist.mnist_style(grey)
    rows, _ = np.nonzero(field > 0)
    assert rows.max() - rows.min() + 1 == mnist.BOX and rows.max() == 27
    assert centre_of_mass(field)[0] < 14


def test_dark_on_light_is_inverted() -> None:
    light_on_dark = mnist.mnist_style(np.asarray(draw_digit((150, 150), 255, 0), np.float32))
    dark_on_light = mnist.mnist_style(np.asarray(draw_digit((150, 150), 0, 255), np.float32))
    grey_paper = mnist.mnist_style(np.asarray(draw_digit((150, 150), 40, 200), np.float32))  # a photo of paper
    np.testing.assert_allclose(dark_on_light, light_on_dark, atol=1e-5)
    np.testing.assert_allclose(grey_paper, light_on_dark, atol=0.02)
    assert dark_on_light[0].max() == 0 and dark_on_light[:, 0].max() == 0  # black background


def test_an_mnist_digit_survives_a_round_trip_through_a_picture(tmp_path: Path) -> None:
    """A digit drawn MNIST-style, enlarged 5x and printed dark on light, comes back close to itself."""
    images, _ = mnist.generate_digits(6, np.random.default_rng(2))
    for i, digit in enumerate(images):
        picture = Image.fromarray(255 - digit).resize((140, 140), Image.Resampling.BICUBIC)
        path = tmp_path / f"digit{i}.png"
        picture.save(path)
        seen = mnist.prepare_image(path)
        original = mnist.mnist_style(digit.astype(np.float32))  # the same digit, re-centred and re-scaled
        assert np.corrcoef(seen.ravel(), original.ravel())[0, 1] > 0.9


@pytest.mark.parametrize("name, make", [
    ("colour.jpg", lambda: draw_digit((120, 160), ink=(200, 20, 20), paper=(250, 240, 120), mode="RGB")),
    ("transparent.png", lambda: draw_digit((120, 160), ink=(0, 0, 0, 255), paper=(0, 0, 0, 0), mode="RGBA")),
    ("white-on-clear.png", lambda: draw_digit((120, 160), ink=(255, 255, 255, 255), paper=(255, 255, 255, 0),
                                              mode="RGBA")),
    ("palette.gif", lambda: draw_digit((120, 160), ink=0, paper=255).convert("P")),
    ("grey16.png", lambda: Image.fromarray(np.asarray(draw_digit((120, 160), 255, 0), np.uint16) * 257)),
])
def test_image_files_of_any_kind(tmp_path: Path, name: str, make) -> None:
    path = tmp_path / name
    make().save(path)
    reference = mnist.mnist_style(np.asarray(draw_digit((120, 160), 255, 0), np.float32))
    seen = mnist.prepare_image(path)
    assert np.corrcoef(seen.ravel(), reference.ravel())[0, 1] > 0.95
    assert seen[0].max() == 0


def test_unreadable_and_blank_images_are_clear_errors(tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    with pytest.raises(InputError, match="is not a picture Pillow can read"):
        mnist.prepare_image(text)
    with pytest.raises(InputError, match="no image file"):
        mnist.prepare_image(tmp_path / "missing.png")
    blank = tmp_path / "blank.png"
    Image.new("L", (64, 64), 230).save(blank)
    with pytest.raises(InputError, match="blank") as info:
        mnist.prepare_image(blank)
    assert str(blank) in str(info.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_float_tiff_with_non_finite_pixels_is_refused(tmp_path: Path, bad: float) -> None:
    pixels = np.asarray(draw_digit((40, 40), 255, 0), np.float32)
    pixels[3, 5] = bad
    path = tmp_path / "float.tif"
    Image.fromarray(pixels, mode="F").save(path)
    with pytest.raises(InputError, match=f"^{re.escape(str(path))}: the image has NaN or infinite pixels"):
        mnist.prepare_image(path)
    with pytest.raises(InputError, match="NaN or infinite grey levels"):
        mnist.mnist_style(pixels)


def damaged_png(path: Path) -> Path:
    """A PNG whose pixel chunk claims to be empty: Pillow opens it and fails while decoding (SyntaxError)."""
    draw_digit((40, 40), 255, 0).save(path)
    data = bytearray(path.read_bytes())
    at = data.index(b"IDAT")
    data[at - 4:at] = bytes(4)
    path.write_bytes(data)
    return path


def damaged_dds(path: Path) -> Path:
    """A DDS file with pixel-format flags no decoder knows (Pillow: NotImplementedError)."""
    draw_digit((40, 40), (255, 255, 255, 255), (0, 0, 0, 255), mode="RGBA").save(path)
    data = bytearray(path.read_bytes())
    data[80:84] = (0x4100).to_bytes(4, "little")  # DDS_PIXELFORMAT.dwFlags
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name, damage", [("broken.png", damaged_png), ("broken.dds", damaged_dds)])
def test_an_image_that_fails_to_decode_is_an_input_error(tmp_path: Path, name: str, damage) -> None:
    path = damage(tmp_path / name)
    with pytest.raises(InputError, match=f"^cannot read the image {re.escape(str(path))}: "):
        mnist.prepare_image(path)
    if name.endswith(".png"):  # Pillow opens this one lazily: as a PIL image it fails in the same way
        with Image.open(path) as opened, pytest.raises(InputError, match=f"^cannot read {re.escape(str(path))}: "):
            mnist.prepare_image(opened)


@pytest.mark.parametrize("mode, ink, paper", [("L", 255, 0), ("RGB", (200, 20, 20), (250, 240, 120)),
                                              ("RGBA", (0, 0, 0, 255), (0, 0, 0, 0))])
def test_prepare_image_takes_a_pil_image_as_its_file(tmp_path: Path, mode: str, ink, paper) -> None:
    path = tmp_path / "digit.png"
    draw_digit((120, 160), ink, paper, mode=mode).save(path)
    with Image.open(path) as opened:
        np.testing.assert_array_equal(mnist.prepare_image(opened), mnist.prepare_image(path))


def test_prepare_image_takes_numpy_arrays() -> None:
    grey = np.asarray(draw_digit((120, 160), 255, 0))  # (160, 120) uint8
    reference = mnist.prepare_image(Image.fromarray(grey))
    np.testing.assert_array_equal(mnist.prepare_image(grey), reference)
    np.testing.assert_array_equal(mnist.prepare_image(grey[..., None]), reference)  # (H, W, 1)
    np.testing.assert_allclose(mnist.prepare_image(grey / 255.0), reference, atol=1e-5)  # float 0-1
    np.testing.assert_allclose(mnist.prepare_image((grey / 255.0).astype(np.float32)), reference, atol=1e-5)

    rgb = np.asarray(draw_digit((120, 160), (200, 20, 20), (250, 240, 120), mode="RGB"))
    np.testing.assert_allclose(mnist.prepare_image(rgb), mnist.prepare_image(Image.fromarray(rgb)), atol=0.02)
    np.testing.assert_allclose(mnist.prepare_image(rgb / 255.0), mnist.prepare_image(rgb), atol=1e-5)
    rgba = np.asarray(draw_digit((120, 160), (0, 0, 0, 255), (0, 0, 0, 0), mode="RGBA"))
    seen = mnist.prepare_image(rgba)
    np.testing.assert_allclose(seen, mnist.prepare_image(Image.fromarray(rgba)), atol=0.02)
    assert np.corrcoef(seen.ravel(), reference.ravel())[0, 1] > 0.95  # dark strokes on clear: flattened


@pytest.mark.parametrize("array, message", [
    (np.zeros((28, 28, 2), np.uint8),
     r"shape \(H, W\), \(H, W, 1\), \(H, W, 3\) RGB or \(H, W, 4\) RGBA, got shape \(28, 28, 2\)"),
    (np.zeros((28,), np.uint8), r"got shape \(28,\)"),
    (np.zeros((2, 28, 28, 1), np.uint8), r"got shape \(2, 28, 28, 1\)"),
    (np.zeros((0, 28), np.uint8), r"non-empty array"),
    (np.zeros((28, 28), np.int64), r"uint8 \(0-255\) or floating-point \(0-1\) values, got dtype int64"),
    (np.zeros((28, 28), bool), r"got dtype bool"),
    (np.full((28, 28), np.nan), r"NaN or infinite values"),
    (np.full((28, 28, 3), np.inf, np.float32), r"NaN or infinite values"),
    (np.full((28, 28), 1.5), r"values must lie in 0-1, got 1.5 to 1.5 \(for 0-255, pass a uint8 array\)"),
    (np.full((28, 28), -0.25), r"got -0.25 to -0.25"),
])
def test_prepare_image_refuses_arrays_that_are_no_picture(array: np.ndarray, message: str) -> None:
    with pytest.raises(InputError, match="^the image array: .*" + message):
        mnist.prepare_image(array)


def test_prepare_image_refuses_other_types() -> None:
    with pytest.raises(InputError, match="path of an image file, a PIL image or a numpy array, got list"):
        mnist.prepare_image([[0, 255], [255, 0]])


# --- predict end to end ----------------------------------------------------------------------------------


def test_predict_end_to_end_with_a_tiny_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rnnzoo.training import train

    example = get_example(EXAMPLE)
    run = train(example, example.config("tiny"), seed=0, device="cpu", progress=False, log=lambda *a: None)
    blob = tmp_path / "blob.png"
    Image.new("L", (80, 60), 255).save(blob)
    ImageDraw.Draw(im := Image.open(blob).convert("L")).ellipse([20, 10, 45, 50], fill=30)
    im.save(blob)
    colour = tmp_path / "colour.jpg"
    draw_digit((90, 120), ink=(10, 10, 120), paper=(255, 250, 230), mode="RGB").save(colour)
    show = tmp_path / "seen.png"
    capsys.readouterr()
    assert main(["predict", str(run.run_dir), "--image", str(blob), str(colour), "--show", str(show)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    pattern = r"(.+): (\d)  \(p=(0\.\d{3}|1\.000)\)  top 3: \d \d\.\d{3}, \d \d\.\d{3}, \d \d\.\d{3}"
    assert [re.fullmatch(pattern, line).group(1) for line in lines] == [str(blob), str(colour)]
    assert f"wrote {show}" in err
    with Image.open(show) as sheet:
        assert sheet.size == (2 * 28 * 8 + 4, 28 * 8)
    assert main(["predict", str(run.run_dir), "--image", str(blob), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["digit"] == result["top"][0][0] and 0 <= result["probability"] <= 1
    assert sum(p for _, p in result["top"]) <= 1 + 1e-6 and abs(sum(result["probabilities"]) - 1) < 1e-5
    # --show never overwrites an input image, and says when it replaces another file
    assert main(["predict", str(run.run_dir), "--image", str(blob), "--show", str(blob)]) == 2
    assert "would overwrite the input image" in capsys.readouterr().err
    assert main(["predict", str(run.run_dir), "--image", str(blob), "--show", str(show)]) == 0
    assert f"replaced {show}" in capsys.readouterr().err
    assert main(["predict", str(run.run_dir)]) == 2
    assert "--image" in capsys.readouterr().err


def test_preview_takes_the_format_of_its_suffix(tmp_path: Path) -> None:
    digit = np.zeros((28, 28))
    for name, image_format in (("seen.jpg", "JPEG"), ("seen.png", "PNG"), ("seen.preview", "PNG")):
        with Image.open(mnist.save_preview([digit], tmp_path / name)) as sheet:
            assert sheet.format == image_format and sheet.size == (28 * 8, 28 * 8)
