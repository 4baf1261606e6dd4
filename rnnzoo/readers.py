"""Inputs given on the command line, read from files: reviews (a text file, one per line, or a CSV column)
and stories. Every user mistake is an InputError that says what to do; the Python API takes the text itself."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from rnnzoo.errors import InputError

MAX_TEXT_BYTES = 64 * 1024 * 1024  # a reviews or story file larger than this is refused before it is read


def read_reviews(texts: list[str] | None, file: Path | None, column: str | None, usage: str
                 ) -> Iterator[tuple[str, str]]:
    """(where, text) of each review given on the command line: --text (repeatable) and/or --file (one review
    per line; a CSV with --column)."""
    if not texts and file is None:
        raise InputError(f"give reviews to score: {usage}")
    if column is not None and file is None:
        raise InputError("--column names a column of the CSV file given with --file")
    for n, text in enumerate(texts or [], start=1):
        if not text.strip():
            raise InputError(f"--text #{n} is empty; give the review's text")
        yield f"text {n}", text
    if file is None:
        return
    content = read_text(file, "reviews: a UTF-8 text file with one per line, or a CSV file with --column")
    if column is None and file.suffix.lower() == ".csv":
        header = next(csv.reader(io.StringIO(content, newline="")), [])
        raise InputError(f"{file} is a CSV file: name the column with the reviews with --column; its columns: "
                         f"{', '.join(header) or '(none)'}")
    if column is not None:
        yield from csv_reviews(file, content, column)
        return
    found = False
    # split on newlines only: str.splitlines would also split at U+0085, which raw IMDB reviews contain
    for n, line in enumerate(content.split("\n"), start=1):
        line = line.removesuffix("\r")
        if line.strip():  # blank lines separate nothing and are skipped
            found = True
            yield f"line {n}", line
    if not found:
        raise InputError(f"{file} holds no reviews (expected one review per line)")


def read_text(file: Path, what: str) -> str:
    """The UTF-8 text of `file` (a byte-order mark dropped); `what` tells what the file should hold."""
    try:
        if file.is_dir():
            raise InputError(f"{file} is a folder; give a file of {what}")
        if file.stat().st_size > MAX_TEXT_BYTES:
            raise InputError(f"{file} is larger than {MAX_TEXT_BYTES >> 20} MB; give a file of {what}")
        raw = file.read_bytes()
    except FileNotFoundError:
        raise InputError(f"no file {file}") from None
    except OSError as e:
        raise InputError(f"cannot read {file}: {e.strerror or e}") from None
    if b"\0" in raw[:8192]:
        raise InputError(f"{file} is a binary file; give {what}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise InputError(f"{file} is not UTF-8 text (byte 0x{raw[e.start]:02x} on line {line}); save it as UTF-8 "
                         "and try again") from None


def csv_reviews(file: Path, content: str, column: str) -> Iterator[tuple[str, str]]:
    """The reviews of one CSV column, each with its row number. Strict parsing: a quote that is never closed
    would otherwise swallow every later row into one review, so it is refused, naming the line it opens on."""
    reader = csv.DictReader(io.StringIO(content, newline=""), strict=True)
    rows: list[tuple[int, dict[str, str | None]]] = []
    line = 1
    try:
        header = reader.fieldnames or []
        if column not in header:
            raise InputError(f"{file} has no column {column!r}; its columns: {', '.join(header) or '(none)'}")
        line = reader.line_num + 1
        for row in reader:
            rows.append((line, row))
            line = reader.line_num + 1
    except csv.Error as e:
        hint = " (a quote that is never closed?)" if "unexpected end of data" in str(e) or '"' in content else ""
        raise InputError(f"{file} is not a readable CSV file: the row on line {line}: {e}{hint}") from None
    if not rows:
        raise InputError(f"{file} has a header but no rows")
    for start, row in rows:
        text = row.get(column) or ""
        if not text.strip():
            raise InputError(f"{file}, line {start}: column {column!r} is empty; every row needs a review")
        yield f"line {start}", text


def read_story(story: str | None, story_file: Path | None) -> str:
    """The story from --story or --story-file (for stories longer than a command line allows)."""
    if story is not None and story_file is not None:
        raise InputError("give the story with --story or with --story-file, not both")
    if story_file is not None:
        return read_text(story_file, "a story: sentences ending with '.'")
    return story or ""
