"""Writing run files so that an interruption never leaves a half-written one behind."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Call `write(tmp)` on a temporary sibling of `path`, then rename it over `path` in one step: a crash
    mid-write leaves the previous file (or none), never a truncated one. The temporary name holds the
    process id (two processes may write the same cache file) and keeps the suffix, since writers such as
    matplotlib and Pillow pick the format from it. On failure the temporary file is removed.

    The file is flushed to disk (fsync) before the rename and the folder after it: without the first, a
    power loss soon after can leave the new name on an empty or partial file; without the second, the
    rename itself may be lost."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync(path.parent, folder=True)


def _fsync(path: Path, folder: bool = False) -> None:
    """Flush a file's (or a folder's entries') data to disk. Where a folder cannot be opened (Windows), its
    entries are left to the system."""
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if folder else 0))
    except OSError:
        if folder:
            return
        raise
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text(path: Path, text: str) -> None:
    write_atomically(path, lambda tmp: tmp.write_text(text))


def pyplot() -> Any:
    """matplotlib.pyplot, drawing to files only (the Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path) -> None:
    """Write a matplotlib figure to `path` (format from its suffix) atomically, then free it."""
    try:
        write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=100))
    finally:
        pyplot().close(fig)
