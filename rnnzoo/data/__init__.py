"""Datasets: one module per dataset, all downloading and caching through `rnnzoo.data.cache`."""

from __future__ import annotations

from rnnzoo.data import babi, imdb, mnist
from rnnzoo.data.cache import Dataset

DATASETS: dict[str, Dataset] = {d.name: d for d in (babi.DATASET, imdb.DATASET, mnist.DATASET)}
