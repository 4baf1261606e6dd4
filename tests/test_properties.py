"""Property-based tests (hypothesis) of every reader of the data layer: whatever the input, each reader
returns a well-formed result or raises its documented error (DataError, InputError), never another
exception; the archive extractor never writes outside its folder; the text normalisers are idempotent;
padding and the validation split keep their invariants."""

from __future__ import annotations

import gzip
import io
import os
import struct
import tarfile
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from rnnzoo.data import babi, cache, imdb, mnist
from rnnzoo.data.cache import DataError
from rnnzoo.errors import InputError
from rnnzoo.specs.base import Split, carve_validation

# No deadline (a loaded machine is slow, not wrong); no example database, so the runs leave no folder
# behind (a failure prints its smallest example). The counts keep the whole file under 20 s.
BASE = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
FEW, SOME, MANY = (settings(BASE, max_examples=n) for n in (40, 120, 300))

# Text that reaches the odd corners: markup, apostrophes of every kind, digits beyond ASCII, tabs.
ODD_CHARACTERS = "ab Z1 9'`\u2019\u00b4<>/br\t\n.?!_-\u00b2\u0661\u0130\u00df\u0301"
tricky_text = st.text(alphabet=st.sampled_from(list(ODD_CHARACTERS)) | st.characters(), max_size=60)


# --- bAbI ------------------------------------------------------------------------------------------------

babi_line = st.one_of(
    tricky_text,
    st.builds("{} {}".format, st.text("0123456789\u00b2\u00b3\u0661-", min_size=1, max_size=3), tricky_text),
    st.builds("{} {}\t{}\t{}".format, st.integers(-2, 12), tricky_text, tricky_text,
              st.text(" 0123456789-\u00b2", max_size=6)),
)


@MANY
@given(st.lists(babi_line, max_size=10), st.booleans())
@example(["1 Mary went home.", "\u00b2 Where is Mary?\thome\t1"], False)  # a digit int() cannot read
def test_babi_parser_parses_or_raises_data_error(lines: list[str], only_supporting: bool) -> None:
    try:
        stories = babi.get_stories(lines, only_supporting)
    except (DataError, InputError):
        return
    for story, question, answer in stories:
        assert all(isinstance(w, str) and w for w in story + question) and isinstance(answer, str)


@st.composite
def babi_story(draw: st.DrawFn) -> tuple[list[str], list[list[int]]]:
    """A well-formed story of statements and questions whose supporting ids are any integers."""
    lines, supports = [], []
    for nid in range(1, draw(st.integers(1, 8)) + 1):
        if nid > 1 and draw(st.booleans()):
            ids = draw(st.lists(st.integers(-2, nid + 1), min_size=1, max_size=3))
            lines.append(f"{nid} Where is it?\tthere\t{' '.join(map(str, ids))}")
            supports.append(ids)
        else:
            lines.append(f"{nid} Sentence number {nid}.")
    return lines, supports


@MANY
@given(babi_story())
@example((["1 Mary went home.", "2 Where is Mary?\thome\t0"], [[0]]))  # id 0 once read story[-1]
def test_babi_supporting_ids_name_earlier_lines_or_are_refused(story: tuple[list[str], list[list[int]]]) -> None:
    lines, supports = story
    statements = {int(line.split()[0]): babi.tokenize(line.split(" ", 1)[1]) for line in lines if "\t" not in line}
    questions = {int(line.split()[0]) for line in lines if "\t" in line}
    asked = [int(line.split()[0]) for line in lines if "\t" in line]
    valid = all(0 < i < q for ids, q in zip(supports, asked) for i in ids)
    if not valid:
        with pytest.raises(DataError, match="supporting id"):
            babi.parse_stories(lines, only_supporting=True)
        return
    parsed = babi.parse_stories(lines, only_supporting=True)
    assert len(parsed) == len(supports)
    for (kept, _, _), ids in zip(parsed, supports):
        assert kept == [statements[i] if i not in questions else [] for i in ids]


@MANY
@given(tricky_text)
def test_babi_tokenize_is_idempotent(text: str) -> None:
    tokens = babi.tokenize(text)
    assert babi.tokenize(" ".join(tokens)) == tokens
    assert all(t and not any(c.isspace() for c in t) for t in tokens)


# --- IMDB ------------------------------------------------------------------------------------------------


@MANY
@given(tricky_text)
@example("<<br />br />")  # removing one break must not make another
def test_imdb_normaliser_and_tokenizer_are_idempotent(text: str) -> None:
    once = imdb.normalize(text)
    assert imdb.normalize(once) == once
    words = imdb.tokenize(text)
    assert imdb.tokenize(" ".join(words)) == words


VOCAB = ["the", "movie", "good", "bad", "it's", "don't", "caf\u00e9"]


@MANY
@given(tricky_text, st.integers(1, 12))
def test_imdb_encode_fails_only_on_a_review_without_words(text: str, maxlen: int) -> None:
    indices = imdb.word_indices(VOCAB)
    words = imdb.tokenize(text)
    if not words:
        with pytest.raises(DataError, match="the review has no words"):
            imdb.encode(text, indices, maxlen)
        return
    encoded = imdb.encode(text, indices, maxlen)
    assert encoded.indices.shape == (maxlen,) and encoded.indices.dtype == np.int64
    assert encoded.words == words and encoded.truncated + encoded.kept == words
    assert encoded.kept == words[-maxlen:]
    assert set(encoded.oov) == {w for w in encoded.kept if w not in indices}
    known = [indices.get(w, imdb.OOV) for w in encoded.kept]
    assert encoded.indices[maxlen - len(known):].tolist() == known


# --- MNIST: the idx format -------------------------------------------------------------------------------

dimension = st.sampled_from([0, 1, 2, 3, 4, 28, 2**16, 2**31, 2**32 - 1]) | st.integers(0, 2**32 - 1)


@st.composite
def idx_file(draw: st.DrawFn) -> bytes:
    """An idx file that is right, or wrong in its magic number, its sizes or its length."""
    magic = draw(st.sampled_from([mnist.IMAGE_MAGIC, mnist.LABEL_MAGIC]) | st.integers(0, 2**32 - 1))
    dims = draw(st.lists(dimension, min_size=0, max_size=4))
    header = struct.pack(f">I{len(dims)}I", magic, *dims)
    body = draw(st.binary(max_size=64))
    return (header + body)[:draw(st.integers(0, len(header) + len(body)))]


@MANY
@given(idx_file() | st.binary(max_size=80), st.sampled_from([mnist.IMAGE_MAGIC, mnist.LABEL_MAGIC]))
@example(struct.pack(">IIII", mnist.IMAGE_MAGIC, 2**31, 2**31, 4), mnist.IMAGE_MAGIC)  # sizes multiply to 2**64
def test_idx_parser_parses_or_raises_data_error(raw: bytes, magic: int) -> None:
    try:
        array = mnist.parse_idx(raw, magic, "x.idx")
    except DataError as e:
        assert str(e).startswith("x.idx: ")
        return
    assert array.dtype == np.uint8 and array.ndim == magic & 0xFF
    assert array.size == len(raw) - 4 * (1 + array.ndim)


@SOME
@given(st.binary(max_size=200) | idx_file().map(gzip.compress))
def test_gzipped_idx_reader_reads_or_raises_data_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x-idx1-ubyte.gz"
        path.write_bytes(data)
        try:
            mnist.read_idx(path, mnist.LABEL_MAGIC)
        except DataError as e:
            assert str(path) in str(e)


# --- MNIST: pictures -------------------------------------------------------------------------------------


def _picture(fmt: str, mode: str) -> bytes:
    grey = np.zeros((24, 20), np.uint8)
    grey[4:20, 8:12] = 255
    image = Image.fromarray(grey).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


PICTURES = [_picture(fmt, mode) for fmt, mode in (("PNG", "L"), ("PNG", "RGBA"), ("JPEG", "RGB"), ("BMP", "RGB"),
                                                  ("GIF", "P"), ("TIFF", "F"), ("TIFF", "L"), ("WEBP", "RGB"))]


@st.composite
def damaged_picture(draw: st.DrawFn) -> bytes:
    """A small valid image file with a few bytes overwritten, inserted or cut off."""
    data = bytearray(draw(st.sampled_from(PICTURES)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["set", "insert", "cut"]))
        if action == "set":
            data[at:at + 4] = draw(st.binary(min_size=1, max_size=4))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[max(at, 1):]
    return bytes(data)


def check_input(prepare: object) -> None:
    """`prepare()` gives a (28, 28) float32 picture in [0, 1] or raises InputError, nothing else."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about some damaged files before failing on them
            field = prepare()  # type: ignore[operator]
    except InputError:
        return
    assert field.shape == (28, 28) and field.dtype == np.float32
    assert np.isfinite(field).all() and field.min() >= 0 and field.max() <= 1


@MANY
@given(st.binary(max_size=300) | damaged_picture(), st.sampled_from(["digit.png", "digit.tif", "digit"]))
def test_any_image_file_gives_a_picture_or_input_error(data: bytes, name: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        check_input(lambda: mnist.prepare_image(path))


@SOME
@given(st.binary(max_size=300))
def test_random_bytes_are_no_image(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "noise.png"
        path.write_bytes(data)
        with pytest.raises(InputError, match=str(path)):
            mnist.prepare_image(path)


picture_shapes = st.sampled_from([(), (1,), (2,), (3,), (4,), (5,)]).flatmap(
    lambda tail: hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=12).map(lambda hw: hw + tail))
picture_arrays = st.one_of(
    hnp.arrays(np.uint8, picture_shapes),
    hnp.arrays(st.sampled_from([np.float16, np.float32, np.float64]), picture_shapes,
               elements=st.floats(-0.5, 1.5, width=16) | st.sampled_from([0.0, 1.0, np.nan, np.inf])),
    hnp.arrays(st.sampled_from([np.int64, np.bool_, np.uint16]), picture_shapes),
    hnp.arrays(np.uint8, hnp.array_shapes(min_dims=1, max_dims=4, max_side=4)),
)


@SOME
@given(picture_arrays)
def test_any_array_gives_a_picture_or_input_error(array: np.ndarray) -> None:
    check_input(lambda: mnist.prepare_image(array))


# --- archives --------------------------------------------------------------------------------------------

path_part = st.sampled_from(["a", "b", "..", ".", "", "c.txt"])
member_name = st.lists(path_part, min_size=1, max_size=4).map("/".join) | st.sampled_from(
    ["/abs", "/tmp/evil", "C:/evil", "..\\evil", "a/../../evil", "./a", "a//b"])
member = st.tuples(st.sampled_from(["file", "dir", "symlink", "hardlink"]), member_name,
                   member_name | st.sampled_from(["../outside", "/", "outside/canary.txt", "a"]))


def _tar(members: list[tuple[str, str, str]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for kind, name, target in members:
            info = tarfile.TarInfo(name)
            info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
                         "hardlink": tarfile.LNKTYPE}[kind]
            data = b"evil" if kind == "file" else b""
            info.size, info.linkname = len(data), target if kind in ("symlink", "hardlink") else ""
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _zip(members: list[tuple[str, str, str]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": a repeated member is part of the test
        for _, name, _ in members:
            zf.writestr(name or "empty", b"evil")
    return buffer.getvalue()


def _snapshot(folder: Path, skip: Path) -> dict[str, bytes | str]:
    """Every path under `folder` but `skip`, with its content (a file) or its kind."""
    found: dict[str, bytes | str] = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if Path(root, d) != skip]
        for name in dirs + files:
            path = Path(root, name)
            found[str(path)] = path.read_bytes() if path.is_file() and not path.is_symlink() else "other"
    return found


@FEW
@given(st.lists(member, min_size=1, max_size=5), st.sampled_from(["tar", "zip"]))
def test_extraction_never_writes_outside_its_folder(members: list[tuple[str, str, str]], kind: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        sandbox = Path(folder)
        (sandbox / "outside").mkdir()
        (sandbox / "outside" / "canary.txt").write_bytes(b"untouched")
        archive = sandbox / f"a.{kind}"
        archive.write_bytes(_tar(members) if kind == "tar" else _zip(members))
        target = sandbox / "work" / "out"
        target.parent.mkdir()
        before = _snapshot(sandbox, target)
        try:
            cache.safe_extract(archive, target)
        except DataError:
            pass
        assert _snapshot(sandbox, target) == before
        real_target = os.path.realpath(target)
        for root, dirs, files in os.walk(target):
            for name in dirs + files:
                resolved = os.path.realpath(Path(root, name))
                assert resolved == real_target or resolved.startswith(real_target + os.sep), (name, resolved)


# --- padding ---------------------------------------------------------------------------------------------

sequences = st.lists(st.lists(st.integers(1, 10_000), max_size=15), max_size=8)


@SOME
@given(sequences, st.integers(0, 12))
def test_pad_sequences_keeps_the_tail_and_pads_in_front(seqs: list[list[int]], maxlen: int) -> None:
    out = babi.pad_sequences(seqs, maxlen)
    assert out.shape == (len(seqs), maxlen) and out.dtype == np.int64
    for row, seq in zip(out.tolist(), seqs):
        tail = seq[-maxlen:] if maxlen else []
        assert row == [0] * (maxlen - len(tail)) + tail


@SOME
@given(st.lists(st.integers(1, 10_000), max_size=15), st.integers(1, 12))
def test_imdb_pad_front_puts_the_start_token_first(seq: list[int], maxlen: int) -> None:
    row = imdb.pad_front(np.array(seq, dtype=np.int64), maxlen).tolist()
    full = [imdb.START, *seq]
    assert row == [0] * max(0, maxlen - len(full)) + full[-maxlen:]


# --- the validation split --------------------------------------------------------------------------------


@st.composite
def examples_and_groups(draw: st.DrawFn) -> tuple[int, torch.Tensor | None]:
    n = draw(st.integers(1, 40))
    if draw(st.booleans()):
        return n, None
    ids = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    return n, torch.tensor(sorted(ids))  # the questions of one story come one after another


fractions = st.floats(0.0, 1.0, exclude_min=True, exclude_max=True)


@SOME
@given(examples_and_groups(), fractions, st.integers(0, 2**31))
def test_carve_validation_partitions_whole_groups(data: tuple[int, torch.Tensor | None], fraction: float,
                                                  seed: int) -> None:
    n, groups = data
    split = Split((torch.arange(n), torch.arange(n) * 10), torch.arange(n) % 3)
    if len(torch.arange(n) if groups is None else groups.unique()) < 2:  # nothing to split: a clear refusal
        with pytest.raises(InputError, match="too few examples"):
            carve_validation(split, fraction, seed, groups)
        return
    train, val = carve_validation(split, fraction, seed, groups)
    kept, held = train.inputs[0].tolist(), val.inputs[0].tolist()
    assert sorted(kept + held) == list(range(n))  # every example on exactly one side
    assert len(held) >= 1 and len(kept) >= 1
    for side in (train, val):  # inputs and target stay together
        assert side.inputs[1].tolist() == [10 * i for i in side.inputs[0].tolist()]
        assert side.target.tolist() == [i % 3 for i in side.inputs[0].tolist()]
    if groups is not None:
        assert not set(groups[kept].tolist()) & set(groups[held].tolist())  # no group on both sides
    assert carve_validation(split, fraction, seed, groups)[1].inputs[0].tolist() == held  # the seed decides


@pytest.mark.parametrize("n, fraction", [(2, 0.9), (10, 0.96), (40, 0.99)])
def test_carve_validation_leaves_training_data(n: int, fraction: float) -> None:
    """Found by the property above once it also asked for a non-empty training side: round(groups * fraction)
    could be every group."""
    train, val = carve_validation(Split((torch.arange(n),), torch.arange(n)), fraction, seed=0)
    assert len(train) >= 1 and len(val) >= 1
    with pytest.raises(InputError, match="too few examples"):
        carve_validation(Split((torch.arange(1),), torch.arange(1)), 0.5, seed=0)
