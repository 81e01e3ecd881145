"""Every notebook: paired sources, conventions, a smoke run, and one default run that is checked
three ways.

A notebook executes twice in `make test`: once with the smoke profile (seconds; its asserts
must hold at tiny sizes too) and once at its default parameters. That default run serves
three tests:

1. its CPU time is within the budget (the kernel's CPU seconds, so a busy machine does not
   fail it; wall time is recorded in build/timings.csv);
2. its figures (``metrics.json``) lie within the tolerances of ``notebooks/expected/``;
3. its checked cells (tagged ``nbval-check-output``) print what the committed ``.ipynb`` prints,
   numbers sanitized (nbval's rules, ``tests/nbval_sanitize.cfg``).

The claims themselves are the ``assert`` statements inside each notebook: a failed assert
fails the run, and so all three tests.
"""

import json
import re
from pathlib import Path

import jupytext
import pytest
import yaml
from notebook_checks import checked_cell_differences, expected_path, figure_violations, load_expected

from perslib.reports import find_notebooks, notebook_parameters, run_notebook, write_timings

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
NOTEBOOKS = find_notebooks(ROOT / "notebooks")
IDS = [p.stem for p in NOTEBOOKS]
# Budgets in CPU seconds per core the notebook may use (its `n_jobs` parameter, at most the
# two cores of the reference machine; 1 without one). A notebook within them takes at most
# as long in wall time on an idle 2-core CPU; kernel start included.
DEFAULT_BUDGET_S = 180  # default parameters
SMOKE_BUDGET_S = 45  # notebooks/params/smoke.yaml (the ARMED notebooks take ~30 s)
TIMINGS = BUILD / "timings.csv"


def _cores(py: Path) -> int:
    n_jobs = notebook_parameters(py).get("n_jobs", 1)
    return max(1, min(2, n_jobs if isinstance(n_jobs, int) and n_jobs > 0 else 1))


def _tree(folder: Path) -> set:
    return {
        p.relative_to(folder)
        for p in folder.rglob("*")
        if ".ipynb_checkpoints" not in p.parts and "__pycache__" not in p.parts
    }


def _within_budget(result, py, budget):
    allowed = budget * _cores(py)
    assert result.cpu_seconds <= allowed, (
        f"{py.stem} used {result.cpu_seconds:.0f} CPU s (wall {result.seconds:.0f} s) > {allowed} CPU s "
        f"({budget} s on each of {_cores(py)} core(s))"
    )


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
    params = notebook_parameters(py)
    for name in ("seed", "device", "out_dir"):
        assert name in params, f"{py.name}: parameters cell lacks {name!r}"
    text = py.read_text()
    assert 'tags=["nbval-check-output"]' in text, f"{py.name}: no checked metrics cell (tag nbval-check-output)"
    assert re.search(r"^\s*assert ", text, re.M), f"{py.name}: no asserted claim"
    assert jupytext.read(py).metadata["kernelspec"]["name"] == "perslib"
    for profile in ("smoke", "paper"):
        content = yaml.safe_load((ROOT / "notebooks" / "params" / f"{profile}.yaml").read_text())
        assert py.stem in content, f"{profile}.yaml has no section for {py.stem}"
        unknown = set(content[py.stem]) - set(params)
        assert not unknown, f"{profile}.yaml sets parameters {unknown} that {py.name} does not have"
    assert expected_path(py.stem).exists(), f"no reference figures: run tests/measure_spread.py for {py.stem}"
    expected = load_expected(py.stem)
    assert expected["notebook"] == py.stem and expected["figures"], f"{expected_path(py.stem).name} holds no figures"


@pytest.mark.notebook
@pytest.mark.smoke
@pytest.mark.parametrize("py", NOTEBOOKS, ids=IDS)
def test_smoke_profile_runs_fast_and_writes_only_to_out_dir(py, tmp_path):
    before = _tree(ROOT / "notebooks")
    result = run_notebook(py, tmp_path, profile="smoke", html=False, timeout=600)
    write_timings([result], TIMINGS)
    assert result.status == "ok", result.error
    _within_budget(result, py, SMOKE_BUDGET_S)
    assert _tree(ROOT / "notebooks") == before, "the notebook wrote outside its out_dir"
    assert any((tmp_path / py.stem).iterdir()), "the notebook wrote nothing to out_dir"


_DEFAULT_RUNS: dict = {}


@pytest.fixture(scope="session")
def default_run():
    """One default-parameter run per notebook, shared by the three tests that check it."""

    def get(py: Path):
        if py.stem not in _DEFAULT_RUNS:
            result = run_notebook(py, BUILD / "test", html=False, timeout=900)
            write_timings([result], TIMINGS)
            _DEFAULT_RUNS[py.stem] = result
        result = _DEFAULT_RUNS[py.stem]
        assert result.status == "ok", f"{py.stem} failed at default parameters: {result.error} (see {result.notebook})"
        return result

    return get


@pytest.mark.notebook
@pytest.mark.parametrize("py", NOTEBOOKS, ids=IDS)
def test_default_run_within_cpu_budget(py, default_run):
    _within_budget(default_run(py), py, DEFAULT_BUDGET_S)


@pytest.mark.notebook
@pytest.mark.parametrize("py", NOTEBOOKS, ids=IDS)
def test_default_run_figures_within_tolerance(py, default_run):
    result = default_run(py)
    metrics = json.loads((result.notebook.parent / py.stem / "metrics.json").read_text())
    problems = figure_violations(metrics, load_expected(py.stem))
    assert not problems, f"{py.stem}: {len(problems)} figure(s) off their reference values:\n" + "\n".join(problems)


@pytest.mark.notebook
@pytest.mark.parametrize("py", NOTEBOOKS, ids=IDS)
def test_default_run_checked_cells_match_committed(py, default_run):
    problems = checked_cell_differences(py.with_suffix(".ipynb"), default_run(py).notebook)
    assert not problems, f"{py.stem}: checked cells print something else than the committed notebook:\n" + "\n".join(
        problems
    )
