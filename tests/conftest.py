"""Shared test set-up: quiet progress bars, a non-interactive plot backend, repo paths."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("PERSLIB_PROGRESS", "0")  # tqdm bars off, also inside notebook kernels
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT
