"""The course site (make site): an index of the executed notebooks and their pages, offline."""

import re
from pathlib import Path

import nbformat
import pytest

from perslib._cli import main
from perslib.reports import SiteError, build_site, export_html, external_resources, notebook_entries

ROOT = Path(__file__).resolve().parents[1]


def _executed(title: str, failed: str = "") -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell(f"# {title}\n\nWhat the first paragraph says about {title}.\n\nMore."),
            nbformat.v4.new_code_cell("print(1)", outputs=[nbformat.v4.new_output("stream", text="1\n")]),
        ]
    )
    nb.metadata["papermill"] = {"duration": 75.5, "end_time": "2026-01-02T10:00:00", "exception": bool(failed)}
    if failed:
        nb.metadata["perslib"] = {"status": "failed", "error": failed}
    return nb


@pytest.fixture()
def project(tmp_path):
    nbs, build = tmp_path / "notebooks", tmp_path / "build"
    nbs.mkdir()
    build.mkdir()
    for stem in ("01_first", "02_second", "03_third"):
        (nbs / f"{stem}.py").write_text("# %% [markdown]\n# # x\n")
    (tmp_path / "README.md").write_text(
        "| notebook | what it teaches |\n|---|---|\n| `01_first` | the first lesson, with a \\| bar |\n"
    )
    for stem, title, failed in (("01_first", "01 · First steps", ""), ("02_second", "02 · Second", "cell 3: boom")):
        nb = _executed(title, failed)
        nbformat.write(nb, build / f"{stem}.ipynb")
        (build / f"{stem}.html").write_text(export_html(nb, name=stem))
    (build / "timings.csv").write_text(
        "notebook,profile,status,wall_s,cpu_s,cpu_capability,finished\n"
        "01_first,default,ok,80.0,150.0,AVX512,2026-01-02T10:00:00+00:00\n"
        "01_first,smoke,ok,9.0,12.0,AVX512,2026-01-02T11:00:00+00:00\n"
    )
    return tmp_path


def test_entries_read_titles_readme_timings_and_status(project):
    e = {x["stem"]: x for x in notebook_entries(project / "build", project / "notebooks", project / "README.md")}
    assert e["01_first"]["title"] == "01 · First steps" and e["01_first"]["teaches"].startswith("the first lesson")
    assert e["01_first"]["cpu_s"] == 150.0 and e["01_first"]["wall_s"] == 75.5  # the default run, not the smoke one
    assert e["02_second"]["teaches"] == "What the first paragraph says about 02 · Second."  # not in the README
    assert e["02_second"]["status"] == "failed" and e["02_second"]["error"] == "cell 3: boom"
    assert e["03_third"]["status"] == "not run" and e["03_third"]["html"] is None


def test_site_index_links_every_built_page_and_pages_navigate(project):
    index = build_site(project / "build", notebooks_dir=project / "notebooks", readme=project / "README.md")
    site = project / "build" / "site"
    assert index == site / "index.html" and {p.name for p in site.iterdir()} == {
        "index.html",
        "01_first.html",
        "02_second.html",
    }
    text = index.read_text()
    assert external_resources(text) == []
    assert 'href="01_first.html"' in text and 'href="02_second.html"' in text and "03_third (not built)" in text
    assert "the first lesson, with a | bar" in text and "2.5 min" in text  # the CPU time, 150 s
    assert "failed" in text and "cell 3: boom" in text and "1 of 3 notebooks built" in text
    first = (site / "01_first.html").read_text()
    assert external_resources(first) == []
    nav = re.search(r'<nav class="perslib-site-nav".*?</nav>', first).group(0)
    assert 'href="index.html"' in nav and 'href="02_second.html"' in nav and "previous" not in nav
    assert 'href="01_first.html"' in re.search(r"<nav.*?</nav>", (site / "02_second.html").read_text()).group(0)
    assert first.index("perslib-site-nav") > first.index("<body")


def test_no_executed_notebooks_says_to_run_make_run(tmp_path, project, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SiteError, match=r"no executed notebooks in .*empty/.*run `make run` first"):
        build_site(empty, notebooks_dir=project / "notebooks")
    code = main(["site", "--build", str(empty), "--notebooks-dir", str(project / "notebooks")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "make run" in err


def test_makefile_and_readme_name_the_site_target():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^site:", makefile, re.M) and "perslib site" in makefile.replace(
        "-m perslib site", "perslib site"
    )
    readme = (ROOT / "README.md").read_text()
    assert "`make site`" in readme and "perslib report" in readme and "`08_report`" in readme
