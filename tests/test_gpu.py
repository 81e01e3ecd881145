"""GPU tier (`make test-gpu`): every notebook with the paper profile on CUDA.

Skipped where no CUDA device is visible; CI (CPU only) deselects it with -m "not gpu".
Results on GPU differ in the last digits from the CPU goldens, so this tier checks the
notebooks' own asserts (tolerance bands), not nbval outputs.
"""

from pathlib import Path

import pytest
import torch

from perslib.reports import find_notebooks, run_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = find_notebooks(ROOT / "notebooks")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason="no CUDA GPU visible: the GPU tier needs one (make test-gpu on a GPU machine)",
    ),
]


@pytest.mark.parametrize("py", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_paper_profile_on_cuda(py, tmp_path):
    out = ROOT / "build" / "gpu"
    result = run_notebook(py, out, profile="paper", parameters={"device": "cuda"}, timeout=3600)
    print(f"{py.stem}: {result.status} in {result.seconds:.0f}s -> {result.html}")
    assert result.status == "ok", result.error
