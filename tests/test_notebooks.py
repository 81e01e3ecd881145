"""Every notebook: paired sources, conventions, a smoke run and a default run within budget.

nbval (run by `make test` on notebooks/*.ipynb) re-executes the committed notebooks and
compares the cells marked NBVAL_CHECK_OUTPUT; these tests cover the rest.
"""

import re
from pathlib import Path

import jupytext
import pytest
import yaml

from perslib.reports import find_notebooks, run_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = find_notebooks(ROOT / "notebooks")
IDS = [p.stem for p in NOTEBOOKS]
DEFAULT_BUDGET_S = 180  # each notebook at default parameters on the 2-core CPU
SMOKE_BUDGET_S = 45  # each notebook with notebooks/params/smoke.yaml, kernel start included (ARMED notebooks: ~28 s)


def _parameters(py: Path) -> dict:
    nb = jupytext.read(py)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and "parameters" in code[0].metadata.get("tags", []), f"{py.name}: first code cell must be tagged 'parameters'"
    names = re.findall(r"^(\w+)\s*=", code[0].source, flags=re.M)
    return dict.fromkeys(names)


def _tree(folder: Path) -> set:
    return {p.relative_to(folder) for p in folder.rglob("*") if ".ipynb_checkpoints" not in p.parts and "__pycache__" not in p.parts}


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks/NN_*.py found"


@pytest.mark.parametrize("py", NOTEBOOKS, ids=IDS)
def test_pair_holds_the_same_cells_and_outputs(py):
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.name} missing: run `make notebooks`"
    a = [(c.cell_type, c.source.strip()) for c in jupytext.read(py).cells]
    b = [(c.cell_type, c.source.strip()) for c in jupytext.read(ipynb).cells]
    assert a == b, f"{py.name} and {ipynb.name} differ: edit the .py, then `make notebooks`"
    code = [c for c in jupytext.read(ipynb).cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), f"{ipynb.name} is not fully executed"
    assert any(c.get("outputs") for c in code)


@pytest.mark.parametrize("py", NOTEBOOKS, ids=IDS)
def test_conventions(py):
    params = _parameters(py)
    for name in ("seed", "device", "out_dir"):
        assert name in params, f"{py.name}: parameters cell lacks {name!r}"
    text = py.read_text()
    assert "# NBVAL_CHECK_OUTPUT" in text, f"{py.name}: no checked metrics cell"
    assert re.search(r"^\s*assert ", text, re.M), f"{py.name}: no asserted claim"
    assert jupytext.read(py).metadata["kernelspec"]["name"] == "perslib"
    for profile in ("smoke", "paper"):
        content = yaml.safe_load((ROOT / "notebooks" / "params" / f"{profile}.yaml").read_text())
        assert py.stem in content, f"{profile}.yaml has no section for {py.stem}"
        unknown = set(content[py.stem]) - set(params)
        assert not unknown, f"{profile}.yaml sets parameters {unknown} that {py.name} does not have"


@pytest.mark.notebook
@pytest.mark.parametrize("py", NOTEBOOKS, ids=IDS)
def test_smoke_profile_runs_fast_and_writes_only_to_out_dir(py, tmp_path):
    before = _tree(ROOT / "notebooks")
    result = run_notebook(py, tmp_path, profile="smoke", html=False)
    assert result.status == "ok", result.error
    assert result.seconds <= SMOKE_BUDGET_S, f"{py.stem} smoke run took {result.seconds:.1f}s > {SMOKE_BUDGET_S}s"
    assert _tree(ROOT / "notebooks") == before, "the notebook wrote outside its out_dir"
    assert any((tmp_path / py.stem).iterdir()), "the notebook wrote nothing to out_dir"


@pytest.mark.notebook
@pytest.mark.parametrize("py", NOTEBOOKS, ids=IDS)
def test_default_parameters_run_within_budget(py, tmp_path):
    result = run_notebook(py, tmp_path, parameters={"out_dir": str(tmp_path / py.stem)}, html=False)
    assert result.status == "ok", result.error
    assert result.seconds <= DEFAULT_BUDGET_S, f"{py.stem} took {result.seconds:.0f}s at defaults > budget {DEFAULT_BUDGET_S}s"
