"""Test set-up: a private data cache and runs folder per test; the real datasets, where they are on disk,
through the offline mirror mechanism (RNNZOO_MIRROR).

RNNZOO_TEST_DATA names the folder of real datasets (the files `rnnzoo data fetch` downloads, as a mirror
holds them); by default `shared/data` in the checkout's parent folder. Tests that need it skip with a
reason when it is absent."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def offline_data_dir() -> Path:
    """The folder of real datasets the slow and real-data tests read: $RNNZOO_TEST_DATA, else the default."""
    return Path(os.environ.get("RNNZOO_TEST_DATA") or REPO.parent / "shared" / "data")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RNNZOO_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setenv("RNNZOO_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("RNNZOO_MIRROR", raising=False)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny test models gain nothing from threads; on a busy machine idle OpenMP threads cost seconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def real_data_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder shared by the tests that read the real datasets (copied and verified once)."""
    return tmp_path_factory.mktemp("real-cache")


@pytest.fixture
def real_data(real_data_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Use the real datasets (RNNZOO_TEST_DATA) as the offline mirror; skip when they are absent."""
    data = offline_data_dir()
    if not data.is_dir():
        pytest.skip(reason=f"the real datasets are not at {data} (set RNNZOO_TEST_DATA to their folder)")
    monkeypatch.setenv("RNNZOO_HOME", str(real_data_home))
    monkeypatch.setenv("RNNZOO_MIRROR", str(data))
    return data
