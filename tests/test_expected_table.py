"""perslib.reports.expected_table: the reference figures of notebooks/expected/ as one table."""

import json
from pathlib import Path

import pandas as pd
import pytest

from perslib.reports import expected_markdown, expected_table

EXPECTED = Path(__file__).resolve().parents[1] / "notebooks" / "expected"


def test_expected_table_reads_every_file_and_figure():
    table = expected_table(EXPECTED)
    files = sorted(EXPECTED.glob("*.json"))
    assert len(files) >= 8
    for path in files:
        data = json.loads(path.read_text())
        part = table[table["notebook"] == data["notebook"]]
        assert list(part["figure"]) == list(data["figures"])  # every figure, in file order
        for name, entry in data["figures"].items():
            row = part[part["figure"] == name].iloc[0]
            assert row["value"] == entry["value"]
            assert row["band"] == pytest.approx(entry["abs"] + entry.get("rel", 0.0) * abs(entry["value"]))
    assert len(table) == sum(len(json.loads(p.read_text())["figures"]) for p in files)
    assert (table["band"] > 0).all()
    # the band is never narrower than twice the seed-to-seed spread it was derived from (2% rounding slack)
    assert (table["band"] >= 0.98 * 2 * table["seed_sd"]).all()
    assert set(table["source"]) <= {"2 × seed sd", "3 × CPU change", "fixed: nothing moves it (relative 1e-6)"}


def test_expected_table_source_and_markdown(tmp_path):
    figures = {
        "a": {"value": 0.9, "abs": 0.039, "cpu_change": 0.001, "seed_sd": 0.0195},
        "b": {"value": 2.0, "abs": 0.3, "cpu_change": 0.1, "seed_sd": 0.05},
        "c|d": {"value": 10.0, "rel": 1e-6, "abs": 1e-9, "cpu_change": 0.0, "seed_sd": 0.0},
    }
    (tmp_path / "09_x.json").write_text(
        json.dumps({"notebook": "09_x", "figures": figures, "unchecked": {"t.*": "time"}})
    )
    table = expected_table(tmp_path)
    assert list(table["source"]) == ["2 × seed sd", "3 × CPU change", "fixed: nothing moves it (relative 1e-6)"]
    assert table["band"].tolist() == pytest.approx([0.039, 0.3, 1e-9 + 1e-5])
    # a band narrower than its rule is flagged
    figures["a"]["abs"] = 0.02
    (tmp_path / "09_x.json").write_text(json.dumps({"notebook": "09_x", "figures": figures}))
    assert expected_table(tmp_path)["source"].iloc[0] == "set by hand (below 2 × seed sd)"
    text = expected_markdown(table)
    assert "## 09_x" in text and "| c\\|d |" in text and "`t.*` (time)" in text
    assert text.count("\n| ") == 1 + 3  # header + one row per figure (separator starts with |-)


def test_expected_table_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no \\*.json"):
        expected_table(tmp_path)
    (tmp_path / "x.json").write_text(json.dumps({"figures": {"a": {"value": 1.0}}}))
    with pytest.raises(ValueError, match="'a' needs 'value' and 'abs'"):
        expected_table(tmp_path)
    with pytest.raises(ValueError, match="missing columns"):
        expected_markdown(pd.DataFrame({"figure": []}))


def test_the_committed_seed_spread_page_is_up_to_date():
    from pathlib import Path

    from perslib.reports import expected_markdown, expected_table

    root = Path(__file__).resolve().parents[1]
    page = (root / "docs" / "seed_spread.md").read_text()
    assert page == expected_markdown(expected_table(root / "notebooks" / "expected")), (
        "docs/seed_spread.md is stale: regenerate it with perslib.reports.expected_markdown(expected_table())"
    )
