"""The one setting for where the tests find the real datasets: RNNZOO_TEST_DATA (conftest.py)."""

from pathlib import Path

import pytest
from conftest import REPO, offline_data_dir


def test_the_real_data_folder_is_taken_from_rnnzoo_test_data(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RNNZOO_TEST_DATA", str(tmp_path))
    assert offline_data_dir() == tmp_path


def test_the_real_data_folder_defaults_to_shared_data_beside_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RNNZOO_TEST_DATA", raising=False)
    assert offline_data_dir() == REPO.parent / "shared" / "data"
