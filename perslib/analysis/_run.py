"""``perslib report``: check a user's table, run the report notebook on it, put the result in place.

The data are checked with the notebook's own functions (:func:`load_table`,
:func:`prepare_data`) *before* a kernel starts, so a wrong column name costs seconds and
leaves nothing behind. The notebook then runs in a temporary folder beside ``out`` (a copy
of ``notebooks/08_report.py``, so that the executed notebook's files land in ``files/``
next to it) and the folder is moved to ``out`` only when the run succeeded.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from perslib.analysis._data import DATASET_PREFIX, ReportData, ReportDataError, load_table, prepare_data
from perslib.analysis._progress import PROGRESS_ENV

__all__ = ["REPORT_NOTEBOOK", "ReportResult", "find_report_notebook", "run_report"]

REPORT_NOTEBOOK = "08_report.py"
NOTEBOOK_ENV = "PERSLIB_REPORT_NOTEBOOK"
#: The files a finished report folder holds (a folder with them may be replaced by a new report).
REPORT_FILES = ("report.html", "report.ipynb")


@dataclass
class ReportResult:
    """Outcome of :func:`run_report`.

    Attributes
    ----------
    status : {"ok", "failed"}
    out : Path
        The report folder (written only when ``status == "ok"``).
    html, notebook : Path or None
        ``out/report.html`` and ``out/report.ipynb``.
    seconds, cpu_seconds : float
        Wall time of the notebook run (kernel start included) and the CPU time of the
        kernel and its worker processes.
    check_seconds : float
        Wall time of reading and checking the data.
    error : str
        One line, when the run failed.
    data : ReportData
        The checked data.
    """

    status: str
    out: Path
    html: Path | None
    notebook: Path | None
    seconds: float
    cpu_seconds: float
    check_seconds: float
    error: str
    data: ReportData


def find_report_notebook(notebook: str | Path | None = None) -> Path:
    """The report notebook's source: ``notebook``, ``$PERSLIB_REPORT_NOTEBOOK``, or the checkout's.

    perslib installed from a source checkout (``pip install -e .``, as ``make`` does) finds
    ``notebooks/08_report.py`` beside the package. A wheel ships the library only; then
    pass the path of a copy of the notebook.

    Raises
    ------
    ValueError
        When the file does not exist (one line saying what to do).
    """
    import perslib

    if notebook is None:
        notebook = (
            os.environ.get(NOTEBOOK_ENV) or Path(perslib.__file__).resolve().parents[1] / "notebooks" / REPORT_NOTEBOOK
        )
        if not Path(notebook).is_file():
            raise ValueError(
                f"the report notebook {REPORT_NOTEBOOK} was not found at {notebook}: perslib is not installed from a "
                "source checkout (a wheel ships the library only); pass --notebook PATH to a copy of "
                f"notebooks/{REPORT_NOTEBOOK}, set {NOTEBOOK_ENV}, or install with `pip install -e .` from the repository"
            )
    path = Path(notebook)
    if not path.is_file():
        raise ValueError(f"notebook {path} does not exist")
    return path.resolve()


def _parameter_defaults(path: Path) -> dict:
    """The defaults of a ``py:percent`` notebook's ``parameters`` cell, read without jupytext (fast).

    The complete check (names, types, profile) is :func:`perslib.reports.resolve_parameters`,
    which runs after the data have been checked.
    """
    import ast
    import re

    lines = path.read_text(encoding="utf-8").splitlines()
    start = next((i for i, ln in enumerate(lines) if re.match(r"^# %%.*tags=\[.*['\"]parameters['\"].*\]", ln)), None)
    if start is None:
        raise ValueError(f"{path.name} has no code cell tagged 'parameters'")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("# %%")), len(lines))
    values = {}
    for node in ast.parse("\n".join(lines[start + 1 : end])).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return values


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ReportDataError(f"--out {out} is a file, not a folder")
    if out.is_dir():
        entries = {p.name for p in out.iterdir()}
        if entries and not set(REPORT_FILES) <= entries:
            raise ReportDataError(
                f"--out {out} exists and holds other files (not a perslib report); choose a new or empty folder"
            )


def _follow(path: Path, stop: threading.Event, callback: Callable[[str], None], t0: float) -> None:
    """Pass each new progress line to ``callback`` until ``stop`` is set."""
    done = 0
    while True:
        finished = stop.wait(0.5)
        if path.exists():
            lines = path.read_text(encoding="utf-8").splitlines()
            for line in lines[done:]:
                kind, name, *rest = line.split("\t") + [""]
                elapsed = time.perf_counter() - t0
                if kind == "start":
                    callback(f"[{elapsed:6.1f} s] {name} ...")
                elif kind in ("done", "failed"):
                    callback(f"[{elapsed:6.1f} s] {name}: {kind} in {rest[0]} s")
            done = len(lines)
        if finished:
            return


def run_report(
    data_path: str | Path,
    *,
    target: str,
    groups: str,
    features: list[str] | None = None,
    covariates: list[str] | None = None,
    task: str = "auto",
    out: str | Path | None = None,
    n_folds: int | None = None,
    epochs: int | None = None,
    max_rows: int | None = None,
    drop_small_clusters: bool | None = None,
    missing: str | None = None,
    seed: int | None = None,
    n_jobs: int | None = None,
    device: str | None = None,
    profile: str | Path | None = None,
    notebook: str | Path | None = None,
    timeout: float = 3600,
    kernel_name: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> ReportResult:
    """Run the report notebook (08) on a table and write ``out/report.html``.

    Parameters
    ----------
    data_path : str or Path
        CSV or Parquet file, or ``"dataset:<name>"`` (:func:`load_table`).
    target, groups : str
        The outcome column and the cluster column.
    features : list of str, optional
        Feature columns (default: every column but the target, groups and covariates).
    covariates : list of str, optional
        Covariates for personalized regression (default: none, and no such section).
    task : {"auto", "classification", "regression"}, default="auto"
    out : str or Path, optional
        The report folder (default ``perslib-report-<file stem>`` in the working
        directory). It must be new, empty or an earlier report, which is then replaced.
        It receives ``report.html`` (self-contained page), ``report.ipynb`` (the executed
        notebook) and ``files/`` (figures, tables, ``metrics.json``, the fitted models).
    n_folds, epochs, max_rows, drop_small_clusters, missing, seed, n_jobs, device : optional
        The notebook's parameters of the same names; ``None`` keeps the notebook's default
        (or the profile's value).
    profile : str or Path, optional
        ``"smoke"`` (a quick run), ``"paper"`` or a YAML file (``notebooks/params/``).
    notebook : str or Path, optional
        The notebook source (:func:`find_report_notebook`).
    timeout : float, default=3600
        Per-cell timeout in seconds.
    kernel_name : str, optional
        Jupyter kernel (default: the project's, ``perslib``).
    progress : callable, optional
        Called with one line of text per step (checking the data, each stage of the
        analysis as the notebook reaches it, writing the report).

    Returns
    -------
    ReportResult
        ``status == "failed"`` (with ``error``) when the notebook failed; ``out`` is then
        left as it was.

    Raises
    ------
    ReportDataError
        Bad input, before anything runs: the file, a column, the target, the groups, the
        cluster sizes, ``out`` (one-line messages).
    ValueError
        No report notebook, an unknown parameter or profile, no such Jupyter kernel.
    """
    from perslib.reports import KERNEL_NAME, load_profile

    say = progress or (lambda line: None)
    t0 = time.perf_counter()
    data_text = str(data_path)
    is_dataset = data_text.startswith(DATASET_PREFIX)
    data_abs = data_text if is_dataset else str(Path(data_path).expanduser().resolve())
    stem = data_text[len(DATASET_PREFIX) :] if is_dataset else Path(data_path).name.split(".")[0]
    out = Path(out if out is not None else f"perslib-report-{stem}").expanduser().resolve()
    _check_out(out)
    nb = find_report_notebook(notebook)

    given = {
        "data_path": data_abs,
        "target": target,
        "groups": groups,
        "features": None if features is None else list(features),
        "covariates": list(covariates or []),
        "task": task,
    }
    optional = {
        "n_folds": n_folds,
        "epochs": epochs,
        "max_rows": max_rows,
        "drop_small_clusters": drop_small_clusters,
        "missing": missing,
        "seed": seed,
        "n_jobs": n_jobs,
        "device": device,
    }
    given.update({k: v for k, v in optional.items() if v is not None})
    # the data are checked first, with the values the notebook will see: its defaults, the
    # profile's, the caller's (read without the notebook machinery, which takes seconds to load)
    params = {**_parameter_defaults(nb), **load_profile(profile, nb.stem, nb.parent), **given}

    say(f"checking {data_text} ...")
    data = prepare_data(
        load_table(data_abs),
        target=params["target"],
        groups=params["groups"],
        features=params["features"],
        covariates=params["covariates"],
        task=params["task"],
        n_folds=params["n_folds"],
        max_rows=params["max_rows"],
        drop_small_clusters=params["drop_small_clusters"],
        missing=params["missing"],
        random_state=params["seed"],
        source=data_text,
    )
    check_seconds = time.perf_counter() - t0
    say(
        f"data: {data.n_rows} rows in {data.n_clusters} clusters, {data.X.shape[1]} feature column(s), "
        f"{data.task}; {data.n_rows_read - data.n_rows} row(s) dropped ({check_seconds:.1f} s)"
    )
    from perslib.reports import check_kernel, notebook_parameters, resolve_parameters, run_notebook

    params = {**notebook_parameters(nb), **resolve_parameters(nb, given, profile)}  # names and types checked
    params.pop("out_dir", None)
    kernel = kernel_name or KERNEL_NAME
    check_kernel(kernel)

    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    log = work / ".progress"
    source = work / "report.py"
    shutil.copyfile(nb, source)
    # the kernel and its workers inherit these: stage lines to the log, no per-epoch progress bars
    saved = {k: os.environ.get(k) for k in (PROGRESS_ENV, "PERSLIB_PROGRESS")}
    os.environ.update({PROGRESS_ENV: str(log), "PERSLIB_PROGRESS": "0"})
    stop = threading.Event()
    follower = threading.Thread(target=_follow, args=(log, stop, say, t0), daemon=True)
    follower.start()
    try:
        say(f"running the report notebook ({nb.name}) ...")
        result = run_notebook(
            source,
            work,
            parameters={**params, "out_dir": "files"},
            kernel_name=kernel,
            html=True,
            timeout=timeout,
            inject_out_dir=False,
        )
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        stop.set()
        follower.join()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    if result.status != "ok":
        shutil.rmtree(work, ignore_errors=True)
        return ReportResult(
            "failed", out, None, None, result.seconds, result.cpu_seconds, check_seconds, result.error, data
        )
    source.unlink()
    log.unlink(missing_ok=True)
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(old)
    work.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return ReportResult(
        "ok",
        out,
        out / "report.html",
        out / "report.ipynb",
        result.seconds,
        result.cpu_seconds,
        check_seconds,
        "",
        data,
    )
