"""The notebook runner: profiles, parameter injection, outputs, failure reporting."""


import nbformat
import pytest

from perslib.reports import find_notebooks, load_profile, main, run_notebook

DEMO = '''# %% [markdown]
# # Demo

# %% tags=["parameters"]
seed = 0  # the seed
fail = False  # raise on purpose
out_dir = "../build/00_demo"  # output folder

# %%
import os
os.makedirs(out_dir, exist_ok=True)
open(os.path.join(out_dir, "seed.txt"), "w").write(str(seed))
assert not fail, "asked to fail"
'''


@pytest.fixture()
def demo(tmp_path):
    nb_dir = tmp_path / "notebooks"
    (nb_dir / "params").mkdir(parents=True)
    (nb_dir / "00_demo.py").write_text(DEMO)
    (nb_dir / "params" / "smoke.yaml").write_text("defaults: {seed: 1}\n00_demo: {seed: 7}\nother: {seed: 9}\n")
    return nb_dir / "00_demo.py"


def test_load_profile_merges_defaults_and_section(demo):
    nb_dir = demo.parent
    assert load_profile("smoke", "00_demo", nb_dir) == {"seed": 7}
    assert load_profile("smoke", "99_other", nb_dir) == {"seed": 1}
    assert load_profile(None, "00_demo", nb_dir) == {}
    with pytest.raises(ValueError, match="profile 'nope' not found"):
        load_profile("nope", "00_demo", nb_dir)


def test_run_notebook_injects_profile_and_writes_html(demo, tmp_path):
    out = tmp_path / "out"
    result = run_notebook(demo, out, profile="smoke")
    assert result.status == "ok", result.error
    assert (out / "00_demo" / "seed.txt").read_text() == "7"  # profile value, out_dir redirected
    nb = nbformat.read(result.notebook, as_version=4)
    assert nb.metadata.papermill.parameters["seed"] == 7
    assert "injected-parameters" in nb.cells[2].metadata.tags
    assert result.html.exists() and "<html" in result.html.read_text()[:500].lower()
    assert result.seconds > 0


def test_failed_assert_is_reported(demo, tmp_path, capsys):
    result = run_notebook(demo, tmp_path / "out", parameters={"fail": True}, html=False)
    assert result.status == "failed" and "asked to fail" in result.error
    code = main([str(demo), "--out", str(tmp_path / "cli"), "-p", "fail", "true", "--no-html"])
    table = capsys.readouterr().out
    assert code == 1 and "00_demo" in table and "failed" in table


def test_find_notebooks_only_numbered_sources(tmp_path):
    for name in ("02_b.py", "01_a.py", "helper.py", "01_a.ipynb"):
        (tmp_path / name).write_text("")
    assert [p.name for p in find_notebooks(tmp_path)] == ["01_a.py", "02_b.py"]
