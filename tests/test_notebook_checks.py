"""The notebook checks themselves: they must pass CPU noise and catch real changes."""

import math

import nbformat
import pytest
from measure_spread import band
from notebook_checks import checked_cell_differences, figure_violations, sanitizer


def _nb(path, cells):
    nb = nbformat.v4.new_notebook()
    for source, text, tags in cells:
        cell = nbformat.v4.new_code_cell(source, metadata={"tags": tags} if tags else {})
        cell.execution_count = 1
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
        nb.cells.append(cell)
    nbformat.write(nb, path)
    return path


CHECKED = "# NBVAL_CHECK_OUTPUT\nprint(table)"


@pytest.fixture()
def committed(tmp_path):
    return _nb(
        tmp_path / "ref.ipynb",
        [
            ("seed = 0", "", ["parameters"]),
            (CHECKED, "model      accuracy\nMLP            0.88\nARMED          0.92\nflipped 10%\n", None),
            ("print(t)", "took 3.2 s\n", None),
        ],
    )


def _executed(tmp_path, table, other="took 9.9 s\n"):
    return _nb(
        tmp_path / "new.ipynb",
        [
            ("seed = 0", "", ["parameters"]),
            ("# Parameters\nout_dir = 'x'", "", ["injected-parameters"]),
            (CHECKED, table, None),
            ("print(t)", other, None),
        ],
    )


def test_numbers_that_move_with_the_cpu_pass(committed, tmp_path):
    table = "model      accuracy\nMLP           -0.30\nARMED          0.93\nflipped 9%\n"  # new widths, sign
    assert checked_cell_differences(committed, _executed(tmp_path, table)) == []


@pytest.mark.parametrize(
    "table",
    [
        "model      accuracy\nCNN            0.88\nARMED          0.92\nflipped 10%\n",  # a label changed
        "model      accuracy\nMLP            0.88\nflipped 10%\n",  # a row is missing
        "model      auroc\nMLP            0.88\nARMED          0.92\nflipped 10%\n",  # a column renamed
    ],
)
def test_text_changes_in_checked_cells_fail(committed, tmp_path, table):
    problems = checked_cell_differences(committed, _executed(tmp_path, table))
    assert len(problems) == 1 and "code cell 1" in problems[0]


def test_unchecked_cells_and_other_code_are_told_apart(committed, tmp_path):
    same = "model      accuracy\nMLP            0.88\nARMED          0.92\nflipped 10%\n"
    assert checked_cell_differences(committed, _executed(tmp_path, same, other="anything\n")) == []
    other_code = _nb(tmp_path / "other.ipynb", [("seed = 1", "", ["parameters"]), (CHECKED, same, None)])
    assert "does not hold the code cells" in checked_cell_differences(committed, other_code)[0]


def test_sanitizer_keeps_words_and_counts():
    s = sanitizer()
    assert s("7224 parameters, 106 schools, q 4") == "7224_parameters,_106_schools,_q_4"
    assert s("0.63 -0.30 +0.018 1e-05 2.5E+03 3°") == "F_F_F_F_F_N°"


EXPECTED = {
    "notebook": "demo",
    "figures": {"acc": {"value": 0.90, "abs": 0.02}, "n": {"value": 100.0, "rel": 1e-6, "abs": 1e-9}},
    "unchecked": {r".*fit_time": "wall time"},
}


def test_figures_within_their_bands_pass():
    assert figure_violations({"acc": 0.915, "n": 100.0, "MLP fit_time": 3.2}, EXPECTED) == []


def test_figures_outside_bands_missing_new_or_nan_are_named():
    problems = figure_violations({"acc": 0.93, "n": 100.01, "extra": 1.0}, EXPECTED)
    assert len(problems) == 3
    assert problems[0].startswith("acc: 0.93 outside 0.9 ± 0.02")
    assert problems[1].startswith("n: 100 outside 100 ± 0.0001")
    assert problems[2].startswith("extra: new figure")
    problems = figure_violations({"acc": math.nan}, EXPECTED)
    assert problems == ["acc: nan is not a finite number", "n: missing from metrics.json (expected 100)"]


def test_band_rule():
    # a figure that neither CPU paths nor seeds move: relative 1e-6
    assert band(2.0, [2.0, 2.0], [2.0, 2.0]) == {"value": 2.0, "rel": 1e-6, "abs": 1e-9}
    # three times the largest CPU change, rounded up to two digits ...
    assert band(0.90, [0.904, 0.897], [0.90, 0.90])["abs"] == pytest.approx(0.012)
    assert band(0.90, [0.90137], [0.90, 0.90])["abs"] == pytest.approx(0.0042)
    # ... but never under twice the seed-to-seed spread (here sd 0.1 and 0.01)
    assert band(0.90, [0.901], [0.80, 1.00])["abs"] == pytest.approx(0.2)
    assert band(1.5, [1.5], [1.49, 1.51])["abs"] == pytest.approx(0.02)
    assert band(1.5, [1.5], [1.5, 1.5 + 3e-10]) == {"value": 1.5, "rel": 1e-6, "abs": 1e-9}
