"""The notebook runner: profiles, typed parameters, outputs, and failures that are loud."""

import csv
import json

import nbformat
import pytest

from perslib.reports import (
    FAILED_TAG,
    ParameterError,
    external_resources,
    find_notebooks,
    load_profile,
    main,
    notebook_parameters,
    parse_parameter,
    resolve_parameters,
    run_notebook,
)

DEMO = r"""# %% [markdown]
# # Demo
#
# A rate $\hat r = \tfrac{1}{n}\textstyle\sum_i x_i$ and a norm
#
# $$\lVert z_i - z_j\rVert \le s\,\pi^\top\Delta_{ij}.$$

# %% tags=["parameters"]
seed = 0  # the seed
rate = 0.5  # a float
label = "a"  # a string
flag = True  # a switch
sizes = [1, 2]  # a list
maybe = None  # untyped
fail = False  # raise on purpose
wait = 0.0  # seconds to sleep (for the timeout test)
out_dir = "../build/00_demo"  # output folder

# %%
import json, os, time
os.makedirs(out_dir, exist_ok=True)
open(os.path.join(out_dir, f"seed{seed}.txt"), "w").write(str(seed))
json.dump({"seed": seed, "rate": rate, "label": label, "flag": flag, "sizes": sizes, "maybe": maybe},
          open(os.path.join(out_dir, "values.json"), "w"))
time.sleep(wait)

# %%
if fail:
    raise RuntimeError("asked to fail")
"""


@pytest.fixture()
def demo(tmp_path):
    nb_dir = tmp_path / "notebooks"
    (nb_dir / "params").mkdir(parents=True)
    (nb_dir / "00_demo.py").write_text(DEMO)
    (nb_dir / "params" / "smoke.yaml").write_text(
        "defaults: {seed: 1, epochs: 3}\n00_demo: {seed: 7}\nother: {seed: 9}\n"
    )
    (nb_dir / "params" / "typo.yaml").write_text("00_demo: {sed: 7}\n")
    return nb_dir / "00_demo.py"


def _values(folder):
    return json.loads((folder / "values.json").read_text())


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


# --------------------------------------------------------------------------- profiles and parameters


def test_load_profile_merges_defaults_and_section(demo):
    nb_dir = demo.parent
    assert load_profile("smoke", "00_demo", nb_dir) == {"seed": 7, "epochs": 3}
    assert load_profile("smoke", "99_other", nb_dir) == {"seed": 1, "epochs": 3}
    assert load_profile(None, "00_demo", nb_dir) == {}
    with pytest.raises(ValueError, match=r"profile 'nope' not found .*available: smoke, typo"):
        load_profile("nope", "00_demo", nb_dir)


def test_notebook_parameters_reads_defaults(demo):
    params = notebook_parameters(demo)
    assert list(params) == ["seed", "rate", "label", "flag", "sizes", "maybe", "fail", "wait", "out_dir"]
    assert params["seed"] == 0 and params["sizes"] == [1, 2] and params["maybe"] is None


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("seed", "3", 3),
        ("seed", "1e3", 1000),  # YAML 1.1 would give the string '1e3'
        ("rate", "1e3", 1000.0),
        ("rate", "2", 2.0),
        ("label", "no", "no"),  # YAML 1.1 would give False
        ("label", "3", "3"),
        ("flag", "no", False),
        ("flag", "True", True),
        ("sizes", "[3, 4]", [3, 4]),
        ("maybe", "null", None),
        ("maybe", "2.5", 2.5),
        ("maybe", "text", "text"),
    ],
)
def test_values_are_typed_from_the_notebooks_defaults(demo, name, text, value):
    got = parse_parameter("00_demo", name, text, notebook_parameters(demo)[name])
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    ("name", "text"), [("seed", "abc"), ("seed", "1.5"), ("rate", "fast"), ("flag", "maybe"), ("sizes", "3")]
)
def test_values_of_the_wrong_type_are_refused(demo, name, text):
    with pytest.raises(ParameterError, match=rf"parameter '{name}' of 00_demo expects .*got '{text}'"):
        resolve_parameters(demo, {name: text})


def test_unknown_parameter_names_it_and_lists_the_notebooks(demo):
    with pytest.raises(ParameterError, match=r"unknown parameter sed .*: seed, rate, label, flag, sizes"):
        resolve_parameters(demo, {"sed": "1"})
    with pytest.raises(ParameterError, match=r"profile 'typo' sets unknown parameter sed"):
        resolve_parameters(demo, profile="typo")
    # keys of a profile's defaults section that a notebook lacks are skipped for it
    assert resolve_parameters(demo, profile="smoke") == {"seed": 7}


def test_cli_unknown_parameter_fails_before_running(demo, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main([str(demo), "--out", str(out), "-p", "n_sample", "999"]) == 2
    _one_line_error(capsys, "unknown parameter n_sample", "seed, rate")
    assert not out.exists(), "nothing may run or be written"


def test_cli_bad_value_fails_before_running(demo, tmp_path, capsys):
    assert main([str(demo), "--out", str(tmp_path / "cli"), "-p", "seed", "abc"]) == 2
    _one_line_error(capsys, "parameter 'seed' of 00_demo expects an integer")


def test_cli_bad_profile_and_out_file_give_one_line_errors(demo, tmp_path, capsys):
    assert main([str(demo), "--out", str(tmp_path / "cli"), "--profile", "nosuchprofile"]) == 2
    _one_line_error(capsys, "profile 'nosuchprofile' not found")
    afile = tmp_path / "afile"
    afile.write_text("")
    assert main([str(demo), "--out", str(afile)]) == 2
    _one_line_error(capsys, "is a file, not a folder")
    assert main([str(tmp_path / "nope.py")]) == 2
    _one_line_error(capsys, "does not exist")


def test_cli_missing_kernel_fails_before_running(demo, tmp_path, capsys):
    assert main([str(demo), "--out", str(tmp_path / "cli"), "--kernel", "nosuchkernel"]) == 2
    _one_line_error(capsys, "no Jupyter kernel named 'nosuchkernel'", "installed:")


# --------------------------------------------------------------------------- runs


def test_run_injects_typed_values_and_writes_html_and_timings(demo, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        [
            str(demo),
            "--out",
            str(out),
            "--profile",
            "smoke",
            "-p",
            "rate",
            "1e3",
            "-p",
            "label",
            "no",
            "-p",
            "flag",
            "no",
        ]
    )
    table = capsys.readouterr().out
    assert code == 0, table
    assert _values(out / "00_demo") == {
        "seed": 7,
        "rate": 1000.0,
        "label": "no",
        "flag": False,
        "sizes": [1, 2],
        "maybe": None,
    }
    nb = nbformat.read(out / "00_demo.ipynb", as_version=4)
    assert nb.metadata.papermill.parameters["seed"] == 7
    assert "injected-parameters" in nb.cells[2].metadata.tags
    assert nb.metadata.papermill.input_path.endswith("00_demo.py")
    page = (out / "00_demo.html").read_text()
    assert "<html" in page[:500].lower() and "<title>00_demo</title>" in page
    # self-contained: the math is MathML, nothing comes from the network (issue 16)
    assert external_resources(page) == []
    assert page.count('<math display="inline">') == 1 and page.count('<math display="block">') == 1
    rows = list(csv.DictReader((out / "timings.csv").open()))
    assert [(r["notebook"], r["profile"], r["status"]) for r in rows] == [("00_demo", "smoke", "ok")]
    assert float(rows[0]["wall_s"]) > 0 and float(rows[0]["cpu_s"]) > 0
    # a second run of another profile adds a row; the same profile replaces its row
    main([str(demo), "--out", str(out), "--no-html"])
    main([str(demo), "--out", str(out), "--no-html", "-p", "seed", "2"])
    rows = list(csv.DictReader((out / "timings.csv").open()))
    assert sorted((r["notebook"], r["profile"]) for r in rows) == [("00_demo", "default"), ("00_demo", "smoke")]


def _assert_marked_failed(nb_path, needle):
    nb = nbformat.read(nb_path, as_version=4)
    assert nb.metadata.papermill.exception is True
    assert nb.metadata.perslib["status"] == "failed" and needle in nb.metadata.perslib["error"]
    assert FAILED_TAG in nb.cells[0].metadata.tags and needle in nb.cells[0].source
    html = nb_path.with_suffix(".html")
    if html.exists():
        page = html.read_text()
        assert "This run failed" in page
        assert external_resources(page) == [] and '<math display="block">' in page


def test_exception_is_reported_and_marked(demo, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main([str(demo), "--out", str(out), "-p", "fail", "true"])
    table = capsys.readouterr().out
    assert code == 1
    assert "failed" in table and "RuntimeError: asked to fail" in table
    _assert_marked_failed(out / "00_demo.ipynb", "RuntimeError: asked to fail")
    rows = list(csv.DictReader((out / "timings.csv").open()))
    assert rows[0]["status"] == "failed"


def test_timeout_is_a_failure_with_a_message(demo, tmp_path):
    result = run_notebook(demo, tmp_path / "out", parameters={"wait": 30.0}, timeout=3)
    assert result.status == "failed" and "timeout of 3 s" in result.error
    _assert_marked_failed(result.notebook, "timeout of 3 s")


def test_missing_kernel_is_a_marked_failure(demo, tmp_path):
    result = run_notebook(demo, tmp_path / "out", kernel_name="nosuchkernel")
    assert result.status == "failed" and "no Jupyter kernel named 'nosuchkernel'" in result.error
    _assert_marked_failed(result.notebook, "nosuchkernel")


def test_failed_run_never_mixes_with_an_earlier_runs_files(demo, tmp_path):
    out = tmp_path / "out"
    assert run_notebook(demo, out, parameters={"seed": 1}).status == "ok"
    assert (out / "00_demo" / "seed1.txt").exists()
    failed = run_notebook(demo, out, parameters={"seed": 2, "fail": True})
    assert failed.status == "failed"
    assert sorted(p.name for p in (out / "00_demo").iterdir()) == ["seed2.txt", "values.json"]
    _assert_marked_failed(out / "00_demo.ipynb", "asked to fail")


def test_run_notebook_rejects_an_out_dir_that_is_a_file(demo, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(ValueError, match="is a file"):
        run_notebook(demo, afile)


def test_find_notebooks_only_numbered_sources(tmp_path):
    for name in ("02_b.py", "01_a.py", "helper.py", "01_a.ipynb"):
        (tmp_path / name).write_text("")
    assert [p.name for p in find_notebooks(tmp_path)] == ["01_a.py", "02_b.py"]
