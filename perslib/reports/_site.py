"""The course site: the executed notebooks of ``make run`` as one browsable folder.

:func:`build_site` reads ``build/NN_name.ipynb`` and ``build/NN_name.html`` (what the runner
wrote), and writes ``<out>/index.html`` — each notebook's title, what it teaches (the
README's notebook table, else the notebook's first paragraph), when it ran, its wall and CPU
time and status — and a copy of every page with a navigation bar (index, previous, next).
Every page is self-contained (:func:`perslib.reports.export_html`): the site opens from disk
with no network, and the folder can be served or copied as it is.
"""

from __future__ import annotations

import csv
import html
import re
from datetime import datetime, timezone
from pathlib import Path

from perslib.reports._notebooks import find_notebooks

__all__ = ["SiteError", "build_site", "notebook_entries"]

SITE_TITLE = "perslib — models that adapt to the sample or cluster they serve"
_ROW = re.compile(r"^\|\s*`(\d\d_[A-Za-z0-9_]+)`\s*\|\s*(.+?)\s*\|\s*$")


class SiteError(ValueError):
    """Nothing to build a site from (one-line message that says what to run first)."""


def _readme_descriptions(readme: Path) -> dict[str, str]:
    """``{stem: what it teaches}`` from the README's notebook table (rows ``| `NN_name` | text |``)."""
    if not readme.is_file():
        return {}
    rows = map(_ROW.match, readme.read_text(encoding="utf-8").splitlines())
    return {m.group(1): m.group(2).replace("\\|", "|") for m in rows if m}


def _title_and_intro(nb) -> tuple[str, str]:
    """The first markdown heading of a notebook and the paragraph after it."""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        lines = cell.source.strip().splitlines()
        if lines and lines[0].startswith("# "):
            rest = "\n".join(lines[1:]).strip().split("\n\n")[0]
            return lines[0][2:].strip(), " ".join(rest.split())
    return "", ""


def _timings(path: Path) -> dict[str, dict]:
    """The latest default-profile row of each notebook in the runner's ``timings.csv``."""
    rows: dict[str, dict] = {}
    if path.is_file():
        with path.open(newline="") as fh:
            for r in csv.DictReader(fh):
                if r.get("profile") == "default" and r.get("finished", "") >= rows.get(r["notebook"], {}).get(
                    "finished", ""
                ):
                    rows[r["notebook"]] = r
    return rows


def notebook_entries(
    build_dir: str | Path = "build", notebooks_dir: str | Path = "notebooks", readme: str | Path = "README.md"
) -> list[dict]:
    """What the index says about each notebook ``notebooks/NN_*.py``.

    Returns
    -------
    list of dict
        Per notebook, in order: ``stem``, ``title``, ``teaches``, ``status`` (``"ok"``,
        ``"failed"`` or ``"not run"``), ``error``, ``html`` (the executed page or None),
        ``wall_s`` and ``cpu_s`` (float or None), ``finished`` (ISO date or ""),
        ``stale`` (the source changed after the run).
    """
    import nbformat

    build = Path(build_dir)
    described = _readme_descriptions(Path(readme))
    timings = _timings(build / "timings.csv")
    entries = []
    for py in find_notebooks(notebooks_dir):
        stem, ipynb, page = py.stem, build / f"{py.stem}.ipynb", build / f"{py.stem}.html"
        entry = {"stem": stem, "title": stem, "teaches": described.get(stem, ""), "status": "not run", "error": ""}
        entry.update(html=None, wall_s=None, cpu_s=None, finished="", stale=False)
        if ipynb.is_file() and page.is_file():
            nb = nbformat.read(ipynb, as_version=4)
            title, intro = _title_and_intro(nb)
            meta = nb.metadata.get("perslib", {})
            pm = nb.metadata.get("papermill", {})
            entry.update(
                title=title or stem,
                teaches=entry["teaches"] or intro,
                status="failed" if meta.get("status") == "failed" or pm.get("exception") else "ok",
                error=meta.get("error", ""),
                html=page,
                wall_s=pm.get("duration"),
                finished=(pm.get("end_time") or "")[:10].replace("-", "\u2011"),  # no line break inside a date
                stale=py.stat().st_mtime > ipynb.stat().st_mtime,
            )
            row = timings.get(stem)
            if row:
                entry["cpu_s"] = float(row["cpu_s"])
                entry["wall_s"] = entry["wall_s"] or float(row["wall_s"])
        entries.append(entry)
    return entries


def _nav(entries: list[dict], k: int) -> str:
    built = [e for e in entries if e["html"] is not None]
    i = next(j for j, e in enumerate(built) if e["stem"] == entries[k]["stem"])
    links = ['<a href="index.html">&#8592; course index</a>']
    if i > 0:
        links.append(f'<a href="{built[i - 1]["stem"]}.html">previous: {html.escape(built[i - 1]["title"])}</a>')
    if i + 1 < len(built):
        links.append(f'<a href="{built[i + 1]["stem"]}.html">next: {html.escape(built[i + 1]["title"])}</a>')
    style = (
        "font-family:system-ui,sans-serif;font-size:14px;padding:8px 16px;background:#f3f4f6;"
        "border-bottom:1px solid #d1d5db;display:flex;gap:24px;flex-wrap:wrap"
    )
    return f'<nav class="perslib-site-nav" style="{style}">' + "".join(links) + "</nav>"


def _seconds(value) -> str:
    if value is None:
        return "—"
    value = float(value)
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"


def _index_notebook(entries: list[dict], built_at: str):
    import nbformat

    rows = ["| notebook | what it teaches | run | wall | CPU |", "|---|---|---|---|---|"]
    for e in entries:
        teaches = e["teaches"].replace("|", "\\|")
        if e["html"] is None:
            name, run = f"{e['title']} (not built)", "not run: `make run`"
        else:
            name = f"[{e['title']}]({e['stem']}.html)"
            run = e["finished"] or "—"
            if e["status"] == "failed":
                run = f"**failed** ({e['error'][:80]})" if e["error"] else "**failed**"
            if e["stale"]:
                run += " (source changed since)"
        rows.append(f"| {name} | {teaches} | {run} | {_seconds(e['wall_s'])} | {_seconds(e['cpu_s'])} |")
    n_ok = sum(e["status"] == "ok" for e in entries)
    cells = [
        nbformat.v4.new_markdown_cell(
            f"# {SITE_TITLE}\n\n"
            "A numbered series of tutorials on two ideas: **personalized regression** — one model per "
            "sample, made estimable by distance matching and a low-rank dictionary (Lengerich et al., "
            "ISMB 2018; NeurIPS 2019) — and **ARMED**, mixed-effects deep learning for clustered data "
            "(Nguyen et al., IEEE TPAMI 2023). Each page below is a notebook executed at its default "
            "parameters on a CPU, with its figures and its checks; every page opens offline."
        ),
        nbformat.v4.new_markdown_cell("\n".join(rows)),
        nbformat.v4.new_markdown_cell(
            f"{n_ok} of {len(entries)} notebooks built; site written {built_at} from the executed notebooks "
            "of `make run` (wall: the notebook's run, kernel start included; CPU: the kernel and its "
            "workers, from `build/timings.csv`). Notebook 08 is a parameterized report: "
            "`perslib report DATA --target COL --groups COL` renders the same page for your own data."
        ),
    ]
    return nbformat.v4.new_notebook(cells=cells, metadata={"title": "perslib course"})


def build_site(
    build_dir: str | Path = "build",
    out_dir: str | Path | None = None,
    *,
    notebooks_dir: str | Path = "notebooks",
    readme: str | Path = "README.md",
) -> Path:
    """Build the course site from the executed notebooks.

    Parameters
    ----------
    build_dir : str or Path, default="build"
        Where ``make run`` (``python -m perslib.reports --out build``) wrote
        ``NN_name.ipynb``, ``NN_name.html`` and ``timings.csv``.
    out_dir : str or Path, optional
        The site folder (default ``<build_dir>/site``); its ``index.html`` and
        ``NN_name.html`` are rewritten, nothing else in it is touched.
    notebooks_dir : str or Path, default="notebooks"
        The notebook sources, for the list and the order of the series.
    readme : str or Path, default="README.md"
        Its notebook table gives each notebook's "what it teaches".

    Returns
    -------
    Path
        ``<out_dir>/index.html``.

    Raises
    ------
    SiteError
        No notebook sources, or no executed notebook in ``build_dir`` (the message says to
        run ``make run`` first).
    """
    from perslib.reports._html import export_html

    build = Path(build_dir)
    if not find_notebooks(notebooks_dir):
        raise SiteError(f"no notebook sources NN_*.py in {notebooks_dir}")
    entries = notebook_entries(build, notebooks_dir, readme)
    if not any(e["html"] is not None for e in entries):
        raise SiteError(
            f"no executed notebooks in {build}/ (looked for {build}/NN_name.ipynb and .html): run `make run` first"
        )
    out = Path(out_dir) if out_dir is not None else build / "site"
    out.mkdir(parents=True, exist_ok=True)
    for k, e in enumerate(entries):
        if e["html"] is None:
            continue
        page = e["html"].read_text(encoding="utf-8")
        nav = _nav(entries, k)
        page, n = re.subn(r"(<body[^>]*>)", lambda m, nav=nav: m.group(1) + nav, page, count=1)
        if n == 0:
            page = nav + page
        (out / f"{e['stem']}.html").write_text(page, encoding="utf-8")
    built_at = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    index = out / "index.html"
    index.write_text(export_html(_index_notebook(entries, built_at), name="perslib course"), encoding="utf-8")
    return index
