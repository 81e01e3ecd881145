"""``perslib report``: bad input fails fast with one line and exit code 2 and writes nothing; the
report runs end to end on two real datasets (a quick profile); a failed analysis is exit code 1
and leaves ``--out`` as it was."""

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from perslib._cli import main
from perslib.analysis import find_report_notebook, run_report
from perslib.data import load_contraception, load_math_achievement
from perslib.reports import FAILED_TAG, external_resources

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.contract  # the command's contract (exit codes, files, messages): make test-portable skips it


@pytest.fixture(scope="module")
def math_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "math.csv"
    load_math_achievement().frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def contraception_csv(tmp_path_factory):
    """Contraception as the survey codes it: Y/N answers and a "3+" level (text columns)."""
    f = load_contraception().frame
    raw = f.assign(
        use=np.where(f["use"] == 1, "Y", "N"),
        urban=np.where(f["urban"] == 1, "Y", "N"),
        livch=f["livch"].astype(str).replace("3", "3+"),
    )
    path = tmp_path_factory.mktemp("data") / "contraception.csv"
    raw.to_csv(path, index=False)
    return path


def _one_line(capsys, code, *needles):
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == 2, (code, err)
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("perslib report: error: "), err
    for needle in needles:
        assert needle in err, err
    return err


def _nothing_written(folder: Path, out: Path):
    assert not out.exists()
    assert not [p for p in folder.iterdir() if ".partial-" in p.name or ".old-" in p.name]


def _bad_files(folder: Path, math_csv: Path) -> dict:
    frame = pd.read_csv(math_csv)
    files = {"garbage": folder / "garbage.parquet"}
    files["garbage"].write_bytes(b"PAR1 but not really")
    cases = {
        "target_nan": frame.assign(MathAch=frame["MathAch"].where(frame.index % 100 != 5)),
        "target_const": frame.assign(MathAch=3.0),
        "groups_nan": frame.assign(School=frame["School"].where(frame.index != 17)),
        "one_cluster": frame.assign(School=1224),
    }
    for name, f in cases.items():
        files[name] = folder / f"{name}.csv"
        f.to_csv(files[name], index=False)
    return files


BAD = [
    ("{dir}/nope.csv", [], ["data file", "nope.csv does not exist"]),
    ("{garbage}", [], ["garbage.parquet could not be read as Parquet"]),
    ("{math}", ["--target", "Score"], ["target column 'Score' does not exist; the columns are: School, MathAch, SES"]),
    ("{math}", ["--features", "SES", "Gender"], ["features column 'Gender' does not exist"]),
    ("{math}", ["--covariates", "Region"], ["covariates column 'Region' does not exist"]),
    ("{target_nan}", [], ["target column 'MathAch' has 72 missing value(s)"]),
    ("{target_const}", [], ["target column 'MathAch' has a single value (3.0)"]),
    ("{groups_nan}", [], ["groups column 'School' has 1 missing value(s) (data rows 18)"]),
    ("{one_cluster}", [], ["groups column 'School' has a single cluster (1224)"]),
    ("{math}", ["--folds", "20"], ["have fewer rows than the 20 folds", "(14 rows)", "--drop-small-clusters"]),
    ("{math}", ["--task", "classification"], ["target column 'MathAch' has", "classes", "binary"]),
]


@pytest.mark.parametrize("data,extra,needles", BAD, ids=[" ".join(n[:1])[:40] for _, _, n in BAD])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, math_csv, capsys, data, extra, needles):
    files = _bad_files(tmp_path, math_csv)
    data = data.format(dir=tmp_path, math=math_csv, **files)
    out = tmp_path / "report"
    args = ["report", data, "--target", "MathAch", "--groups", "School", "--out", str(out)]
    t0 = time.perf_counter()
    code = main(args + extra)
    assert time.perf_counter() - t0 < 5.0, "bad input must fail within 5 s"
    _one_line(capsys, code, *needles)
    _nothing_written(tmp_path, out)


def test_out_that_is_a_file_or_someone_elses_folder_is_refused(tmp_path, math_csv, capsys):
    (tmp_path / "file.txt").write_text("x")
    code = main(
        ["report", str(math_csv), "--target", "MathAch", "--groups", "School", "--out", str(tmp_path / "file.txt")]
    )
    _one_line(capsys, code, "is a file, not a folder")
    other = tmp_path / "thesis"
    other.mkdir()
    (other / "chapter1.tex").write_text("precious")
    code = main(["report", str(math_csv), "--target", "MathAch", "--groups", "School", "--out", str(other)])
    _one_line(capsys, code, "exists and holds other files")
    assert (other / "chapter1.tex").read_text() == "precious"


def test_usage_errors_are_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["report", "data.csv", "--groups", "g"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and "--target" in err
    with pytest.raises(SystemExit) as exc:
        main(["report", "data.csv", "--target", "y", "--groups", "g", "--task", "survival"])
    assert exc.value.code == 2 and "invalid choice: 'survival'" in capsys.readouterr().err


def test_missing_notebook_says_what_to_do(tmp_path, math_csv, capsys):
    code = main(
        ["report", str(math_csv), "--target", "MathAch", "--groups", "School", "--notebook", str(tmp_path / "x.py")]
    )
    _one_line(capsys, code, "x.py does not exist")
    assert find_report_notebook() == ROOT / "notebooks" / "08_report.py"  # an editable install finds it


def test_console_script_exit_code_and_cpu_time(tmp_path, math_csv):
    """The installed ``perslib`` command, as a user runs it: exit 2 within 5 CPU seconds."""
    exe = Path(sys.executable).with_name("perslib")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [str(exe), "report", str(math_csv), "--target", "math", "--groups", "School", "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    assert proc.returncode == 2 and proc.stdout.count("\n") <= 1
    assert proc.stderr.strip().splitlines()[-1].startswith("perslib report: error: target column 'math' does not exist")
    assert cpu < 5.0, f"{cpu:.1f} CPU s"


def _metrics(out: Path) -> dict:
    return json.loads((out / "files" / "metrics.json").read_text())


@pytest.mark.notebook
def test_report_end_to_end_on_math_achievement_then_replaced_by_contraception(
    tmp_path, math_csv, contraception_csv, capsys
):
    out = tmp_path / "report"
    covs = ["Size", "Catholic", "PRACAD", "DISCLIM", "HIMINTY", "MEANSES"]
    code = main(
        ["report", str(math_csv), "--target", "MathAch", "--groups", "School", "--covariates", *covs]
        + ["--profile", "smoke", "--out", str(out)]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert printed.strip().splitlines()[-1] == f"report: {out / 'report.html'}"
    for stage in ("intraclass correlations", "clusters seen in training", "new clusters", "personalized regression"):
        assert f"{stage}" in printed and "done in" in printed
    page = (out / "report.html").read_text()
    assert external_resources(page) == [] and "Does the clustering matter?" in page
    assert "rows in 160 clusters of <code>School</code>" in page
    m = _metrics(out)
    assert m["clusters"] == 160 and m["rows"] + m["rows_dropped"] == 7185 and 0 < m["icc"] < 1
    assert {"seen ARMED r2", "unseen MLP r2", "pr_heldout_score"} <= set(m)
    assert {"report.html", "report.ipynb", "files"} == {p.name for p in out.iterdir()}
    assert {"armed_model.pt", "personalized_model.pt", "audit.txt", "model_comparison.png"} <= {
        p.name for p in (out / "files").iterdir()
    }
    nb = nbformat.read(out / "report.ipynb", as_version=4)
    assert not any(FAILED_TAG in c.metadata.get("tags", []) for c in nb.cells)

    # a second report into the same folder replaces the first, completely
    code = main(
        ["report", str(contraception_csv), "--target", "use", "--groups", "district"]
        + ["--features", "livch", "age", "urban", "--drop-small-clusters", "--profile", "smoke", "--out", str(out)]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    m = _metrics(out)
    assert "seen ARMED auroc" in m and "seen MLP accuracy" in m and "pr_heldout_score" not in m
    assert 0 <= m["icc_latent"] <= 1
    audit = (out / "files" / "audit.txt").read_text()
    assert "task: classification; target: use" in audit and "classes: N " in audit
    assert "left out of the subsample (max_rows=1000)" in audit
    assert "livch -> 3 column(s)" in audit and "urban -> 1 column(s)" in audit
    assert not (out / "files" / "personalized_model.pt").exists()
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name or ".old-" in p.name]


@pytest.mark.notebook
def test_failed_analysis_is_exit_1_and_leaves_out_as_it_was(tmp_path, math_csv, capsys):
    out = tmp_path / "report"
    result = run_report(math_csv, target="MathAch", groups="School", out=out, profile="smoke", epochs=0)
    assert result.status == "failed" and "epochs" in result.error
    _nothing_written(tmp_path, out)
    code = main(
        ["report", str(math_csv), "--target", "MathAch", "--groups", "School", "--out", str(out)]
        + ["--profile", "smoke", "--epochs", "0"]
    )
    err = capsys.readouterr().err
    assert code == 1 and "the analysis failed" in err and "nothing was written" in err
    _nothing_written(tmp_path, out)


def test_run_report_passes_the_checked_parameters_runs_quietly_and_replaces_an_earlier_report(
    tmp_path, math_csv, monkeypatch
):
    """The notebook run itself replaced by a stand-in: what run_report hands it, and what it does after."""
    import os

    import perslib.reports
    from perslib.analysis import PROGRESS_ENV
    from perslib.reports import NotebookResult

    seen = {}

    def fake_run_notebook(path, out_dir, *, parameters, **kw):
        seen.update(parameters=parameters, env={k: os.environ.get(k) for k in ("PERSLIB_PROGRESS", PROGRESS_ENV)})
        seen["cwd_copy"] = Path(path).name
        with open(os.environ[PROGRESS_ENV], "a") as fh:
            fh.write("start\tfitting\ndone\tfitting\t1.0\n")
        for name in ("report.ipynb", "report.html"):
            (Path(out_dir) / name).write_text(name)
        (Path(out_dir) / parameters["out_dir"]).mkdir()
        return NotebookResult("report", "ok", 1.0, Path(out_dir) / "report.ipynb", Path(out_dir) / "report.html")

    monkeypatch.setattr(perslib.reports, "run_notebook", fake_run_notebook)
    monkeypatch.setenv("PERSLIB_PROGRESS", "1")
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.html").write_text("old")
    (out / "report.ipynb").write_text("old")
    (out / "stale.png").write_text("from the earlier report")
    lines = []
    result = run_report(
        math_csv, target="MathAch", groups="School", out=out, profile="smoke", seed=4, progress=lines.append
    )
    p = seen["parameters"]
    assert p["data_path"] == str(math_csv.resolve()) and p["covariates"] == [] and p["features"] is None
    assert p["max_rows"] == 1000 and p["n_folds"] == 2 and p["epochs"] == 15  # the profile's
    assert p["seed"] == 4 and p["out_dir"] == "files" and seen["cwd_copy"] == "report.py"
    assert seen["env"]["PERSLIB_PROGRESS"] == "0" and seen["env"][PROGRESS_ENV]
    assert os.environ["PERSLIB_PROGRESS"] == "1" and PROGRESS_ENV not in os.environ  # restored
    assert result.status == "ok" and result.html == out / "report.html" and result.data.n_rows < 7185
    assert (out / "report.html").read_text() == "report.html" and not (out / "stale.png").exists()
    assert {p.name for p in out.iterdir()} == {"report.html", "report.ipynb", "files"}
    assert any("fitting: done in 1.0 s" in line for line in lines) and lines[0].startswith("checking")
    assert not [q for q in tmp_path.iterdir() if ".partial-" in q.name or ".old-" in q.name]
