"""Shared test set-up: quiet progress bars, a non-interactive plot backend, repo paths."""

import os
from pathlib import Path

import pytest

from perslib._core import torch_threads

os.environ.setdefault("PERSLIB_PROGRESS", "0")  # tqdm bars off, also inside notebook kernels
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """The tests fit tiny models: on a shared 2-core machine intra-op threads only add
    contention (a 1 s fit can take 30 s). Notebook kernels run in their own processes."""
    with torch_threads(1):
        yield
