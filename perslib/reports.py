"""Run the tutorial notebooks as parameterized reports.

Each notebook's source of truth is a jupytext ``py:percent`` file (``notebooks/NN_name.py``).
:func:`run_notebook` reads it, checks and types the parameters against the notebook's own
``parameters`` cell, injects them with papermill, executes the notebook on the project's
kernel with ``notebooks/`` as the working directory, and writes the executed ``.ipynb``
plus a self-contained HTML page. A run that fails (an exception, a cell timeout, a kernel
that does not start) is marked as failed inside both files.

Parameters come, in increasing priority, from the notebook's own defaults, a *profile*
(``notebooks/params/<profile>.yaml``: a ``defaults`` section for every notebook and one
section per notebook stem), and explicit ``-p name value`` pairs.

Command line (``make run`` uses it)::

    python -m perslib.reports                        # every notebook, default parameters
    python -m perslib.reports notebooks/01_simulation.py --profile smoke --out build/smoke
    python -m perslib.reports notebooks/02_*.py -p seed 3 --out build/seed3
"""

from __future__ import annotations

import argparse
import ast
import csv
import glob
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import yaml

__all__ = [
    "NotebookResult",
    "find_notebooks",
    "load_profile",
    "notebook_parameters",
    "parse_parameter",
    "run_notebook",
    "write_timings",
    "main",
]

KERNEL_NAME = "perslib"  # installed into the project's venv with `ipykernel install --sys-prefix`
KERNELSPEC = {"name": KERNEL_NAME, "display_name": "Python (perslib)", "language": "python"}
FAILED_TAG = "perslib-failed"  # tag of the banner cell that marks a failed run
TIMING_COLUMNS = ["notebook", "profile", "status", "wall_s", "cpu_s", "cpu_capability", "finished"]


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


class ParameterError(ValueError):
    """A parameter name or value that the notebook does not accept."""


# --------------------------------------------------------------------------- finding notebooks


def find_notebooks(notebooks_dir: str | Path = "notebooks") -> list[Path]:
    """The numbered notebook sources ``NN_*.py`` in ``notebooks_dir``, in order."""
    return sorted(Path(p) for p in glob.glob(os.path.join(str(notebooks_dir), "[0-9][0-9]_*.py")))


def _read_notebook(path: Path):
    import jupytext
    import nbformat

    nb = jupytext.read(path) if path.suffix == ".py" else nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    return nb


_NO_LITERAL = object()  # a default that is an expression, not a literal


def notebook_parameters(path: str | Path) -> dict:
    """The parameters of a notebook and their default values.

    Reads the first code cell tagged ``parameters`` and returns ``{name: default}`` for
    every ``name = value`` line in it, in order. A default that is not a Python literal
    is returned as the source text of its expression.
    """
    path = Path(path)
    nb = _read_notebook(path)
    cell = next((c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])), None)
    if cell is None:
        raise ParameterError(f"{path.name} has no code cell tagged 'parameters'")
    params = {}
    for node in ast.parse(cell.source).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    try:
                        params[target.id] = ast.literal_eval(node.value)
                    except ValueError:
                        params[target.id] = ast.get_source_segment(cell.source, node.value)
    return params


# --------------------------------------------------------------------------- typing parameters

_TRUE, _FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}


def _untyped(text: str):
    """A value from text when the default says nothing about its type (``None``)."""
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    if text.lower() in {"none", "null", "~"}:
        return None
    if text.lower() in {"true", "false"}:
        return text.lower() == "true"
    if text[:1] in "[{":
        return _structured(text)
    return text


def _structured(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return yaml.safe_load(text)


def parse_parameter(notebook: str, name: str, text: str, default):
    """Convert the command-line text of a parameter to the type of its default.

    ``int`` defaults take integers (``1e3`` is read as 1000), ``float`` defaults any
    number, ``bool`` defaults true/false/yes/no/1/0, ``str`` defaults keep the text as it
    is (``no`` stays ``"no"``), list and dict defaults take JSON or YAML of the same kind;
    ``None`` defaults take a number, ``null``, true/false, a list, or else the text.

    Raises
    ------
    ParameterError
        When the text cannot be read as the default's type; the message names the
        notebook, the parameter, the expected type and the default.
    """

    def fail(expected):
        raise ParameterError(
            f"parameter {name!r} of {notebook} expects {expected} (default {default!r}), got {text!r}"
        )

    if isinstance(default, bool):
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        fail("true or false")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                fail("an integer")
            if not value.is_integer():
                fail("an integer")
            return int(value)
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            fail("a number")
    if isinstance(default, str):
        return text
    if default is None:
        return _untyped(text)
    if isinstance(default, (list, tuple, dict)):
        try:
            value = _structured(text)
        except yaml.YAMLError:
            value = None
        kind = dict if isinstance(default, dict) else (list, tuple)
        if not isinstance(value, kind):
            fail("a dict such as {\"a\": 1}" if kind is dict else "a list such as [1, 2]")
        return value
    return _untyped(text)


def _check_names(notebook: str, given: dict, known: dict, source: str) -> None:
    unknown = [k for k in given if k not in known]
    if unknown:
        names = ", ".join(unknown)
        raise ParameterError(
            f"{source} sets unknown parameter{'s' if len(unknown) > 1 else ''} {names} for {notebook}; "
            f"its parameters are: {', '.join(known)}"
        )


# --------------------------------------------------------------------------- profiles


def _profile_sections(profile: str | Path, notebooks_dir: str | Path) -> dict:
    """The sections of a profile file: ``{"defaults": {...}, "<stem>": {...}, ...}``."""
    path = Path(profile)
    if not path.suffix:
        path = Path(notebooks_dir) / "params" / f"{profile}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in (Path(notebooks_dir) / "params").glob("*.yaml"))
        raise ValueError(
            f"profile {str(profile)!r} not found (looked for {path}; available: {', '.join(available) or 'none'})"
        )
    try:
        content = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"profile {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(content, dict) or not all(isinstance(v, dict) or v is None for v in content.values()):
        raise ValueError(f"profile {path} must map notebook names to parameter mappings")
    return {k: dict(v or {}) for k, v in content.items()}


def load_profile(profile: str | Path | None, stem: str, notebooks_dir: str | Path = "notebooks") -> dict:
    """Parameters of ``profile`` for the notebook ``stem``.

    ``profile`` is a name (``"smoke"``, ``"paper"`` → ``notebooks/params/<name>.yaml``) or
    a path to a YAML file. Its ``defaults`` section applies to every notebook; the
    section named ``stem`` overrides it. A missing or malformed profile raises a
    ``ValueError`` that names it.
    """
    if profile is None:
        return {}
    sections = _profile_sections(profile, notebooks_dir)
    return {**sections.get("defaults", {}), **sections.get(stem, {})}


def _profile_name(profile) -> str:
    return "default" if profile is None else Path(str(profile)).stem


def resolve_parameters(
    path: str | Path, parameters: dict | None = None, profile: str | Path | None = None
) -> dict:
    """The parameters a run of ``path`` injects: the profile's, then ``parameters``.

    String values of ``parameters`` are typed from the notebook's defaults
    (:func:`parse_parameter`); names the notebook does not have raise a
    :class:`ParameterError` that lists the notebook's parameters. Keys of a profile's
    ``defaults`` section that the notebook lacks are skipped; keys of its own section are
    checked like explicit parameters.
    """
    path = Path(path)
    known = notebook_parameters(path)
    resolved = {}
    if profile is not None:
        sections = _profile_sections(profile, path.parent)
        own = sections.get(path.stem, {})
        _check_names(path.stem, own, known, f"profile {_profile_name(profile)!r}")
        resolved.update({k: v for k, v in sections.get("defaults", {}).items() if k in known})
        resolved.update(own)
    given = dict(parameters or {})
    _check_names(path.stem, given, known, "-p")
    for name, value in given.items():
        resolved[name] = parse_parameter(path.stem, name, value, known[name]) if isinstance(value, str) else value
    return resolved


# --------------------------------------------------------------------------- failures


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


# --------------------------------------------------------------------------- running


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
        nbformat.write(_read_notebook(path), source)
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
        from nbconvert import HTMLExporter

        body, _ = HTMLExporter(template_name="lab", embed_images=True).from_notebook_node(executed)
        html_path = out_nb.with_suffix(".html")
        html_path.write_text(body, encoding="utf-8")
    return NotebookResult(stem, status, seconds, out_nb, html_path, error, cpu, _profile_name(profile))


# --------------------------------------------------------------------------- reporting


def format_table(results: list[NotebookResult]) -> str:
    """A plain-text summary table: notebook, status, wall and CPU time, output or error."""
    header = f"{'notebook':<32} {'status':<7} {'wall':>8} {'CPU':>8}  output"
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(f"{r.name:<32} {r.status:<7} {r.seconds:>7.1f}s {r.cpu_seconds:>7.1f}s  {r.html or r.notebook or ''}")
        if r.error:
            lines.append(f"{'':<32} error: {r.error}")
    total, cpu = sum(r.seconds for r in results), sum(r.cpu_seconds for r in results)
    lines.append(f"{'total':<32} {'':<7} {total:>7.1f}s {cpu:>7.1f}s  {sum(r.status == 'ok' for r in results)}/{len(results)} ok")
    return "\n".join(lines)


def write_timings(results: list[NotebookResult], path: str | Path) -> Path:
    """Add the runs to a timing table (CSV), replacing earlier rows of the same notebook, profile
    and CPU code path.

    Columns: notebook, profile, status, wall_s, cpu_s (the kernel's CPU time and that of
    the worker processes it waited for), cpu_capability (torch's CPU code path) and the
    time the run finished (UTC).
    """
    import torch

    path = Path(path)
    rows = {}
    if path.exists():
        with path.open(newline="") as fh:
            rows = {(r["notebook"], r["profile"], r["cpu_capability"]): r for r in csv.DictReader(fh)}
    finished = datetime.now(timezone.utc).isoformat(timespec="seconds")
    capability = torch.backends.cpu.get_cpu_capability()
    for r in results:
        rows[(r.name, r.profile, capability)] = {
            "notebook": r.name, "profile": r.profile, "status": r.status, "wall_s": f"{r.seconds:.1f}",
            "cpu_s": f"{r.cpu_seconds:.1f}", "cpu_capability": capability, "finished": finished,
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, TIMING_COLUMNS)
        writer.writeheader()
        writer.writerows(sorted(rows.values(), key=lambda r: (r["notebook"], r["profile"], r["cpu_capability"])))
    return path


def _fail(message: str) -> int:
    print(f"perslib.reports: error: {message}", file=sys.stderr)
    return 2


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
        return _fail(f"no notebooks NN_*.py found in {args.notebooks_dir}")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        return _fail(f"notebook {missing[0]} does not exist")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        return _fail(f"--out {out} is a file, not a folder")
    parameters = dict(args.parameter)
    if args.device:
        parameters["device"] = args.device
    try:  # every check before the first run: a typo must not cost a finished notebook
        check_kernel(args.kernel)
        for p in paths:
            resolve_parameters(p, parameters, args.profile)
    except ValueError as exc:
        return _fail(str(exc))
    results = []
    for p in paths:
        print(f"running {p} ...", flush=True)
        results.append(
            run_notebook(
                p, out, parameters=parameters, profile=args.profile, kernel_name=args.kernel,
                html=not args.no_html, timeout=args.timeout,
            )
        )
    print()
    print(format_table(results))
    print(f"timings: {write_timings(results, out / 'timings.csv')}")
    return 0 if all(r.status == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
