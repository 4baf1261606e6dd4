"""What a web request may hold, read into the Python values the specs' `predict` takes: JSON objects with
typed fields, and images and movies sent as data URLs (`data:<type>;base64,...`), decoded in memory.

Every bad input is an InputError whose message says what was wrong and what is valid, as on the command
line; the limits here keep one request from holding the server's memory or time.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnzoo.data.mnist import load_grey
from rnnzoo.data.movies import decode_movie
from rnnzoo.errors import InputError, TooLarge
from rnnzoo.specs.settings import did_you_mean


@dataclass(frozen=True)
class Limits:
    """The most a request may send: bytes of its body (`upload_bytes` for images and movies), characters
    of a story or a review, pixels of an image, pixels of a movie (all frames together), reviews per
    request."""

    body_bytes: int = 256 * 1024
    upload_bytes: int = 8 * 1024 * 1024
    story_chars: int = 20_000  # the longest bAbI story (QA3, 10k) has about 3,000 words
    review_chars: int = 50_000  # the longest IMDB review has about 14,000 characters
    reviews: int = 64
    image_pixels: int = 4_000_000  # a 2000x2000 picture of a digit
    movie_pixels: int = 4_000_000  # e.g. 500 frames of 89x89


def parse_object(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object."""
    try:
        value = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError("the request body is not UTF-8 text; send a JSON object") from None
    except ValueError as e:
        raise InputError(f"the request body is not valid JSON ({e}); send a JSON object, e.g. "
                         '{"story": "...", "question": "..."}') from None
    if not isinstance(value, dict):
        raise InputError(f"the request body must be a JSON object, got a JSON {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number",
            type(None): "null"}.get(type(value), type(value).__name__)


def check_fields(body: dict[str, Any], fields: dict[str, tuple[type, ...]], required: tuple[str, ...] = ()) -> None:
    """Every key of `body` is one of `fields` with a value of one of its types; the `required` ones are there."""
    for key, value in body.items():
        if key not in fields:
            raise InputError(f"unknown field {key!r}{did_you_mean(key, fields)}; valid: {', '.join(fields)}")
        kinds = fields[key]
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            names = " or ".join(_type_name(k) for k in kinds)
            raise InputError(f"{key} must be {names}, got a JSON {_json_type(value)}")
    missing = [k for k in required if k not in body]
    if missing:
        raise InputError(f"missing field {', '.join(missing)}; give {', '.join(required)}")


def _type_name(kind: type) -> str:
    return {str: "text", int: "a whole number", bool: "true or false", list: "a list", float: "a number"}.get(
        kind, kind.__name__)


def check_length(text: str, limit: int, what: str) -> None:
    if len(text) > limit:
        raise TooLarge(f"the {what} has {len(text):,} characters; at most {limit:,} are accepted")


def decode_data_url(url: str, what: str, limit: int) -> bytes:
    """The bytes of a `data:[<type>][;base64],<data>` URL (what a browser's FileReader or a canvas makes)."""
    head, comma, data = url.partition(",")
    if not head.startswith("data:") or not comma or not head.endswith(";base64"):
        raise InputError(f"{what} must be a base64 data URL (data:<type>;base64,...), as a browser's "
                         f"FileReader.readAsDataURL or canvas.toDataURL gives")
    if len(data) > limit * 4 // 3 + 4:
        raise TooLarge(f"{what} is larger than {limit >> 20} MB")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{what} is not valid base64") from None


def read_image(raw: bytes, max_pixels: int) -> np.ndarray:
    """An uploaded picture (PNG, JPEG, GIF, BMP, WebP ...) as grey levels (H, W) float32 in [0, 1] (what the
    MNIST spec's predict takes), its transparency laid on a ground that contrasts with the strokes."""
    return load_grey(raw, max_pixels) / 255.0


def read_movie(raw: bytes, max_pixels: int) -> np.ndarray:
    """An uploaded movie, an animated GIF or a .npy array (frames, H, W), as an array for conv_lstm's
    predict (which checks its shape and values). A .npy file never runs code (no pickles)."""
    return decode_movie(io.BytesIO(raw), "the upload", max_pixels)
