"""The command line: run notebooks, print a summary table, keep a timing table."""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import datetime, timezone
from pathlib import Path

from perslib.reports._notebooks import KERNEL_NAME, find_notebooks
from perslib.reports._parameters import resolve_parameters
from perslib.reports._run import NotebookResult, check_kernel, run_notebook

__all__ = ["format_table", "main", "write_timings"]

TIMING_COLUMNS = ["notebook", "profile", "status", "wall_s", "cpu_s", "cpu_capability", "finished"]
DESCRIPTION = "Run the tutorial notebooks as parameterized reports."


def format_table(results: list[NotebookResult]) -> str:
    """A plain-text summary table: notebook, status, wall and CPU time, output or error."""
    header = f"{'notebook':<32} {'status':<7} {'wall':>8} {'CPU':>8}  output"
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r.name:<32} {r.status:<7} {r.seconds:>7.1f}s {r.cpu_seconds:>7.1f}s  {r.html or r.notebook or ''}"
        )
        if r.error:
            lines.append(f"{'':<32} error: {r.error}")
    total, cpu = sum(r.seconds for r in results), sum(r.cpu_seconds for r in results)
    lines.append(
        f"{'total':<32} {'':<7} {total:>7.1f}s {cpu:>7.1f}s  {sum(r.status == 'ok' for r in results)}/{len(results)} ok"
    )
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
            "notebook": r.name,
            "profile": r.profile,
            "status": r.status,
            "wall_s": f"{r.seconds:.1f}",
            "cpu_s": f"{r.cpu_seconds:.1f}",
            "cpu_capability": capability,
            "finished": finished,
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
    parser = argparse.ArgumentParser(prog="python -m perslib.reports", description=DESCRIPTION)
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
                p,
                out,
                parameters=parameters,
                profile=args.profile,
                kernel_name=args.kernel,
                html=not args.no_html,
                timeout=args.timeout,
            )
        )
    print()
    print(format_table(results))
    print(f"timings: {write_timings(results, out / 'timings.csv')}")
    return 0 if all(r.status == "ok" for r in results) else 1
