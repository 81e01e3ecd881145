"""Run the tutorial notebooks as parameterized reports.

Each notebook's source of truth is a jupytext ``py:percent`` file (``notebooks/NN_name.py``).
:func:`run_notebook` reads it, injects parameters with papermill (after the cell tagged
``parameters``), executes it on the project's kernel with ``notebooks/`` as the working
directory, and writes the executed ``.ipynb`` plus a self-contained HTML page.

Parameters come, in increasing priority, from the notebook's own defaults, a *profile*
(``notebooks/params/<profile>.yaml``: a ``defaults`` section for every notebook and one
section per notebook stem), and explicit ``-p name value`` pairs.

Command line (``make run`` uses it)::

    python -m perslib.reports                        # every notebook, default parameters
    python -m perslib.reports notebooks/01_simulation.py --profile smoke --out build/smoke
    python -m perslib.reports notebooks/02_*.py -p seed 3 -p out_dir ../build/seed3
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = ["NotebookResult", "find_notebooks", "load_profile", "run_notebook", "main"]

KERNEL_NAME = "perslib"  # installed into the project's venv with `ipykernel install --sys-prefix`
KERNELSPEC = {"name": KERNEL_NAME, "display_name": "Python (perslib)", "language": "python"}


@dataclass
class NotebookResult:
    """Outcome of one notebook run."""

    name: str  # notebook stem, e.g. "01_simulation"
    status: str  # "ok" or "failed"
    seconds: float  # wall time of the execution (papermill's own duration when available)
    notebook: Path | None  # executed .ipynb
    html: Path | None  # HTML rendering (None when not asked for or execution failed early)
    error: str = ""  # first line of the error, when failed


def find_notebooks(notebooks_dir: str | Path = "notebooks") -> list[Path]:
    """The numbered notebook sources ``NN_*.py`` in ``notebooks_dir``, in order."""
    return sorted(Path(p) for p in glob.glob(os.path.join(str(notebooks_dir), "[0-9][0-9]_*.py")))


def load_profile(profile: str | Path | None, stem: str, notebooks_dir: str | Path = "notebooks") -> dict:
    """Parameters of ``profile`` for the notebook ``stem``.

    ``profile`` is a name (``"smoke"``, ``"paper"`` → ``notebooks/params/<name>.yaml``) or
    a path to a YAML file. Its ``defaults`` section applies to every notebook; the
    section named ``stem`` overrides it. Unknown names raise a ``ValueError``.
    """
    if profile is None:
        return {}
    path = Path(profile)
    if not path.suffix:
        path = Path(notebooks_dir) / "params" / f"{profile}.yaml"
    if not path.exists():
        raise ValueError(f"profile {str(profile)!r} not found (looked for {path})")
    content = yaml.safe_load(path.read_text()) or {}
    if not isinstance(content, dict):
        raise ValueError(f"profile {path} must map notebook names to parameter mappings")
    params = dict(content.get("defaults") or {})
    params.update(content.get(stem) or {})
    return params


def _read_source(path: Path):
    import jupytext

    nb = jupytext.read(path)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    return nb


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
) -> NotebookResult:
    """Execute one notebook with papermill and render it to HTML.

    Parameters
    ----------
    path : str or Path
        ``notebooks/NN_name.py`` (jupytext source) or an ``.ipynb``.
    out_dir : str or Path, default="build"
        Where ``NN_name.ipynb`` and ``NN_name.html`` are written. Unless ``parameters``
        sets ``out_dir`` itself, the notebook's own ``out_dir`` parameter is pointed at
        ``<out_dir>/NN_name`` so that everything it writes lands there too — except
        when nothing at all is injected (default run), where the notebook keeps its
        default folder.
    parameters : dict, optional
        Explicit parameters; they override the profile.
    profile : str or Path, optional
        ``"smoke"``, ``"paper"`` or a YAML path (see :func:`load_profile`).
    kernel_name : str, default="perslib"
    html : bool, default=True
    timeout : float or None, default=1800
        Per-cell execution timeout in seconds.
    output_path : str or Path, optional
        Write the executed notebook here instead of ``<out_dir>/NN_name.ipynb``.

    Returns
    -------
    NotebookResult
    """
    import papermill as pm

    path = Path(path).resolve()
    stem = path.stem
    nb_dir = path.parent
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    params = load_profile(profile, stem, nb_dir)
    params.update(parameters or {})
    if params and "out_dir" not in params:
        params["out_dir"] = str(out_dir / stem)
    out_nb = Path(output_path).resolve() if output_path else out_dir / f"{stem}.ipynb"
    tmp = None
    source = str(path)
    if path.suffix == ".py":  # papermill reads .ipynb: convert the jupytext source to a temporary one
        import nbformat

        tmp = tempfile.TemporaryDirectory(prefix="perslib-")
        source = os.path.join(tmp.name, f"{stem}.ipynb")
        nbformat.write(_read_source(path), source)
    env_backup = os.environ.get("PYDEVD_DISABLE_FILE_VALIDATION")
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # silence debugger warnings in the kernel
    start = time.perf_counter()
    status, error = "ok", ""
    try:
        pm.execute_notebook(
            source,
            str(out_nb),
            parameters=params,
            kernel_name=kernel_name,
            cwd=str(nb_dir),
            progress_bar=False,
            log_output=False,
            execution_timeout=timeout,
            start_timeout=120,
        )
    except Exception as exc:  # papermill raises PapermillExecutionError with the cell's traceback
        status = "failed"
        error = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:300]
    finally:
        if env_backup is None:
            os.environ.pop("PYDEVD_DISABLE_FILE_VALIDATION", None)
        if tmp is not None:
            tmp.cleanup()
    seconds = time.perf_counter() - start
    html_path = None
    if out_nb.exists():
        import nbformat

        executed = nbformat.read(out_nb, as_version=4)
        seconds = float(executed.metadata.get("papermill", {}).get("duration") or seconds)
        if "papermill" in executed.metadata:  # record the real source, not the temporary copy
            executed.metadata.papermill["input_path"] = os.path.relpath(path, out_nb.parent)
            executed.metadata.papermill["output_path"] = out_nb.name
            nbformat.write(executed, out_nb)
        if html:
            from nbconvert import HTMLExporter

            body, _ = HTMLExporter(template_name="lab", embed_images=True).from_notebook_node(executed)
            html_path = out_nb.with_suffix(".html")
            html_path.write_text(body, encoding="utf-8")
    return NotebookResult(stem, status, seconds, out_nb if out_nb.exists() else None, html_path, error)


def format_table(results: list[NotebookResult]) -> str:
    """A plain-text summary table: notebook, status, wall time, output."""
    header = f"{'notebook':<32} {'status':<7} {'wall time':>10}  output"
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(f"{r.name:<32} {r.status:<7} {r.seconds:>9.1f}s  {r.html or r.notebook or ''}")
        if r.error:
            lines.append(f"{'':<32} {r.error}")
    total = sum(r.seconds for r in results)
    lines.append(f"{'total':<32} {'':<7} {total:>9.1f}s  {sum(r.status == 'ok' for r in results)}/{len(results)} ok")
    return "\n".join(lines)


def _parse_value(text: str):
    value = yaml.safe_load(text)
    return text if value is None and text.lower() not in {"null", "none", "~"} else value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m perslib.reports", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="notebook sources (default: every notebooks/NN_*.py)")
    parser.add_argument("--notebooks-dir", default="notebooks")
    parser.add_argument("--out", default="build", help="output folder (default: build)")
    parser.add_argument("--profile", default=None, help="smoke, paper, or a YAML file")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    parser.add_argument("--device", default=None, help="sets the notebooks' device parameter (e.g. cuda)")
    parser.add_argument("--kernel", default=KERNEL_NAME)
    parser.add_argument("--no-html", action="store_true")
    parser.add_argument("--timeout", type=float, default=1800, help="per-cell timeout in seconds")
    args = parser.parse_args(argv)

    paths = [Path(p) for p in args.notebooks] or find_notebooks(args.notebooks_dir)
    if not paths:
        parser.error(f"no notebooks found in {args.notebooks_dir}")
    for p in paths:
        if not p.exists():
            parser.error(f"notebook {p} does not exist")
    parameters = {name: _parse_value(value) for name, value in args.parameter}
    if args.device:
        parameters["device"] = args.device
    results = []
    for p in paths:
        print(f"running {p} ...", flush=True)
        results.append(
            run_notebook(
                p, args.out, parameters=parameters, profile=args.profile, kernel_name=args.kernel,
                html=not args.no_html, timeout=args.timeout,
            )
        )
    print()
    print(format_table(results))
    return 0 if all(r.status == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
