"""Running one notebook with papermill: outputs in place, failures marked, CPU time counted."""

from __future__ import annotations

import os
import resource
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from perslib.reports._html import export_html
from perslib.reports._notebooks import KERNEL_NAME, read_notebook
from perslib.reports._parameters import profile_name, resolve_parameters

__all__ = ["FAILED_TAG", "NotebookResult", "check_kernel", "run_notebook"]

FAILED_TAG = "perslib-failed"  # tag of the banner cell that marks a failed run


@dataclass
class NotebookResult:
    """Outcome of one notebook run."""

    name: str  # notebook stem, e.g. "01_simulation"
    status: str  # "ok" or "failed"
    seconds: float  # wall time of the execution, kernel start included
    notebook: Path | None  # executed .ipynb
    html: Path | None  # HTML rendering (None when not asked for)
    error: str = ""  # one line: what failed, when failed
    cpu_seconds: float = float("nan")  # CPU time of the kernel and the processes it waited for
    profile: str = "default"  # the profile's name, or "default"


def _describe_failure(exc: BaseException, timeout) -> str:
    """One line that says what went wrong, for the summary table and the banner."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        evalue = (str(exc.evalue).strip().splitlines() or [""])[0]
        return f"cell {exc.exec_count}: {exc.ename}: {evalue}"[:300]
    name = type(exc).__name__
    if name == "CellTimeoutError":
        return f"a cell ran longer than the timeout of {timeout:g} s"
    if name == "NoSuchKernel":
        return f"no Jupyter kernel named {getattr(exc, 'name', str(exc))!r} ({_installed_kernels()})"
    if name == "DeadKernelError":
        return "the kernel died during execution (out of memory?)"
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip().strip("-")]
    return f"{name}: {lines[0]}"[:300] if lines else name


def _installed_kernels() -> str:
    from jupyter_client.kernelspec import KernelSpecManager

    names = sorted(KernelSpecManager().find_kernel_specs())
    return "installed: " + (", ".join(names) if names else "none")


def check_kernel(kernel_name: str) -> None:
    """Raise a ``ValueError`` naming the installed kernels when ``kernel_name`` is not one."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        raise ValueError(f"no Jupyter kernel named {kernel_name!r} ({_installed_kernels()})") from None


def _mark_failed(nb, error: str) -> None:
    """Put a banner first in the notebook and record the failure in its metadata."""
    import nbformat

    nb.cells = [c for c in nb.cells if FAILED_TAG not in c.metadata.get("tags", [])]
    banner = nbformat.v4.new_markdown_cell(
        '<div class="alert alert-block alert-danger">\n\n'
        f"**This run failed:** {error}\n\nThe outputs below are partial.\n\n</div>",
        metadata={"tags": [FAILED_TAG]},
    )
    if nb.get("nbformat_minor", 5) < 5:  # cell ids exist from nbformat 4.5 on
        banner.pop("id", None)
    nb.cells.insert(0, banner)
    nb.metadata.setdefault("papermill", {})["exception"] = True
    nb.metadata["perslib"] = {"status": "failed", "error": error}


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _injected_out_dir(folder: Path, nb_dir: Path) -> str:
    """``folder`` as the notebook should see it: relative to ``notebooks/`` inside the repo."""
    try:
        folder.relative_to(nb_dir.parent)
    except ValueError:
        return str(folder)
    return os.path.relpath(folder, nb_dir)


def run_notebook(
    path: str | Path,
    out_dir: str | Path = "build",
    *,
    parameters: dict | None = None,
    profile: str | Path | None = None,
    kernel_name: str = KERNEL_NAME,
    html: bool = True,
    timeout: float | None = 1800,
    output_path: str | Path | None = None,
    inject_out_dir: bool = True,
) -> NotebookResult:
    """Execute one notebook with papermill and render it to HTML.

    Parameters
    ----------
    path : str or Path
        ``notebooks/NN_name.py`` (jupytext source) or an ``.ipynb``.
    out_dir : str or Path, default="build"
        Where ``NN_name.ipynb`` and ``NN_name.html`` are written. Unless ``parameters``
        sets ``out_dir`` itself (or ``inject_out_dir=False``), the notebook's own
        ``out_dir`` parameter is pointed at ``<out_dir>/NN_name``, and that folder is
        emptied before the run, so its files all come from this run.
    parameters : dict, optional
        Explicit parameters; they override the profile. Strings are typed from the
        notebook's defaults; unknown names raise a :class:`ParameterError`.
    profile : str or Path, optional
        ``"smoke"``, ``"paper"`` or a YAML path (see :func:`load_profile`).
    kernel_name : str, default="perslib"
    html : bool, default=True
        Also write ``NN_name.html``, a self-contained page (:func:`export_html`).
    timeout : float or None, default=1800
        Per-cell execution timeout in seconds.
    output_path : str or Path, optional
        Write the executed notebook here instead of ``<out_dir>/NN_name.ipynb``.
    inject_out_dir : bool, default=True
        ``False`` leaves the notebook's ``out_dir`` at its default (``make notebooks``:
        the committed notebook then holds no injected cell when nothing else is injected).

    Returns
    -------
    NotebookResult
        ``status`` is ``"failed"`` with a one-line ``error`` when execution raised, a cell
        timed out or the kernel did not start; the written notebook and HTML then open
        with a banner that says so.
    """
    import nbformat
    import papermill as pm

    path = Path(path).resolve()
    stem, nb_dir = path.stem, path.parent
    out_dir = Path(out_dir).resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"out_dir {out_dir} is a file, not a folder")
    params = resolve_parameters(path, parameters, profile)
    figures_dir = None
    if inject_out_dir and "out_dir" not in params:
        figures_dir = out_dir / stem
        params["out_dir"] = _injected_out_dir(figures_dir, nb_dir)
    out_nb = Path(output_path).resolve() if output_path else out_dir / f"{stem}.ipynb"
    out_nb.parent.mkdir(parents=True, exist_ok=True)
    for stale in (out_nb.with_suffix(".html"),):
        stale.unlink(missing_ok=True)  # never leave an earlier run's page beside this run's notebook
    if figures_dir is not None and figures_dir.is_dir():
        shutil.rmtree(figures_dir)  # the runner owns this folder: no earlier run's files in it

    status, error = "ok", ""
    with tempfile.TemporaryDirectory(prefix="perslib-") as tmp:
        source = os.path.join(tmp, "source.ipynb")
        nbformat.write(read_notebook(path), source)
        work_nb = os.path.join(tmp, f"{stem}.ipynb")
        env_backup = os.environ.get("PYDEVD_DISABLE_FILE_VALIDATION")
        os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # silence debugger warnings in the kernel
        cpu0, start = _cpu_of_children(), time.perf_counter()
        try:
            pm.execute_notebook(
                source,
                work_nb,
                parameters=params,
                kernel_name=kernel_name,
                cwd=str(nb_dir),
                progress_bar=False,
                log_output=False,
                execution_timeout=timeout,
                start_timeout=120,
            )
        except Exception as exc:  # papermill, nbclient and jupyter_client errors alike
            status, error = "failed", _describe_failure(exc, timeout)
        finally:
            if env_backup is None:
                os.environ.pop("PYDEVD_DISABLE_FILE_VALIDATION", None)
        seconds, cpu = time.perf_counter() - start, _cpu_of_children() - cpu0

        if os.path.exists(work_nb):
            executed = nbformat.read(work_nb, as_version=4)
        else:  # failed before papermill wrote anything
            executed = nbformat.read(source, as_version=4)
        meta = executed.metadata.setdefault("papermill", {})
        meta["input_path"] = os.path.relpath(path, out_nb.parent)  # the real source, not the temporary copy
        meta["output_path"] = out_nb.name
        if status == "failed":
            _mark_failed(executed, error)
        nbformat.write(executed, work_nb)
        shutil.move(work_nb, out_nb)  # into place only when complete

    html_path = None
    if html:
        body = export_html(executed, name=stem, path=nb_dir)
        html_path = out_nb.with_suffix(".html")
        html_path.write_text(body, encoding="utf-8")
    return NotebookResult(stem, status, seconds, out_nb, html_path, error, cpu, profile_name(profile))
