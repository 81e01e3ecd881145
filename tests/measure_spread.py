"""Measure how much each notebook's figures move across seeds and CPU code paths, and write
the reference values with their tolerances (``notebooks/expected/NN_name.json``).

Other CPUs run other floating-point kernels (torch picks AVX-512, AVX2 or its default
code path; MKL and OpenBLAS do the same), so trained figures differ in their last digits
from machine to machine, and training amplifies them. This script emulates other CPUs on
this one by forcing the other code paths, runs every notebook at its default parameters
on each, and at a few seeds on the native path::

    python tests/measure_spread.py run --out build/spread            # every notebook (~25 min)
    python tests/measure_spread.py run --out build/spread --notebooks 04_armed_dense
    python tests/measure_spread.py write --out build/spread          # notebooks/expected/*.json
    python tests/measure_spread.py reband     # new band rule, same measurements (no runs)

``run`` leaves each run's ``metrics.json`` under ``<out>/<path>-seed<S>/``; ``write``
collects them into ``<out>/figures.csv`` (notebook, path, seed, figure, value) and sets each
figure's band from them (the rule is in :func:`band` and in notebooks/expected/README.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from notebook_checks import EXPECTED_DIR, flatten_figures  # noqa: E402

from perslib.reports._expected import band_width  # noqa: E402

# CPU code paths: environment variables that make torch, MKL, OpenBLAS and NumPy use the
# kernels another x86-64 CPU would use.
PATHS = {
    "native": {},
    "portable": {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
    "avx2": {
        "ATEN_CPU_CAPABILITY": "avx2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        "OPENBLAS_CORETYPE": "Haswell",
        "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
    },
}
UNCHECKED = {
    r".*fit_time.*": "wall time of a fit: depends on the machine and its load",
    r"scaling slope live.*": "slope of wall times measured during the run: depends on the machine and its load",
}
# figures of one notebook that are not compared either
NOTEBOOK_UNCHECKED = {
    "02_personalized_regression": {
        r"ablation .* paper objective, partners nearest in a": (
            "a fit that collapses by design (the paper's objective with partners nearest in the latent "
            "space): how far it collapses depends on the CPU's kernels (by 5 seed sd on an Intel Xeon's "
            "portable kernels); notebook 02 asserts the claim (its error > 2x the default's)"
        ),
    },
}


def _folder(out: Path, path: str, seed: int) -> Path:
    return out / f"{path}-seed{seed}"


def _run_one(py: Path, path: str, seed: int, out: Path) -> bool:
    folder = _folder(out, path, seed)
    env = {**os.environ, **PATHS[path], "PERSLIB_PROGRESS": "0", "MPLBACKEND": "Agg"}
    cmd = [sys.executable, "-m", "perslib.reports", str(py), "--out", str(folder), "--no-html", "-p", "seed", str(seed)]
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    print(f"{py.stem} {path} seed {seed}: exit {proc.returncode}", flush=True)
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-2000:], sep="\n", flush=True)
    return proc.returncode == 0


def run(args) -> None:
    """Run every (notebook, path, seed); each run's figures land in <out>/<path>-seed<S>/<stem>/."""
    from perslib.reports import find_notebooks

    notebooks = [p for p in find_notebooks(ROOT / "notebooks") if not args.notebooks or p.stem in args.notebooks]
    jobs = [(py, "native", s) for py in notebooks for s in args.seeds]
    jobs += [(py, path, args.seeds[0]) for py in notebooks for path in args.paths if path != "native"]
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        ok = list(pool.map(lambda job: _run_one(*job, out), jobs))
    print(f"failed runs: {[(p.stem, path, s) for (p, path, s), good in zip(jobs, ok) if not good]}")


def collect(out: Path) -> list[dict]:
    """Every figure of every finished run under ``out``, one row each (also written to figures.csv)."""
    rows = []
    for metrics in sorted(out.glob("*-seed*/*/metrics.json")):
        path, seed = metrics.parent.parent.name.rsplit("-seed", 1)
        for name, value in flatten_figures(json.loads(metrics.read_text())).items():
            rows.append(
                {"notebook": metrics.parent.name, "path": path, "seed": int(seed), "figure": name, "value": value}
            )
    with (out / "figures.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, ["notebook", "path", "seed", "figure", "value"])
        writer.writeheader()
        writer.writerows(rows)
    return rows


def band(ref: float, cpu: list[float], seeds: list[float]) -> dict:
    """The tolerance of one figure from what was measured.

    ``cpu``: the figure at the reference seed on the other CPU code paths; ``seeds``: the
    figure at the other seeds on the native path.

    * A figure that neither the code paths nor the seeds move (a count, a constant) gets a
      relative band of 1e-6.
    * Any other figure gets ``max(3 × largest CPU change, 2 × seed sd)``, rounded up to two
      significant digits (:func:`perslib.reports._expected.band_width`): three times what
      another CPU was seen to do, and never tighter than twice the seed-to-seed spread, since
      on a real other CPU a figure whose training is chaotic moves like a fresh seed, and the
      emulated paths sample that thinly (some kernels, e.g. MKL's on AMD CPUs, cannot be
      forced here).
    """
    scale = max(1.0, abs(ref))
    moves = [abs(v - ref) for v in cpu]
    seed_sd = _sd([ref, *seeds]) if seeds else 0.0
    if max(moves + [seed_sd]) <= 1e-9 * scale:
        return {"value": ref, "rel": 1e-6, "abs": 1e-9}
    return {"value": ref, "abs": band_width(max(moves, default=0.0), seed_sd)}


def _sd(values: list[float]) -> float:
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / max(1, len(values) - 1))


def write(args) -> None:
    rows = collect(Path(args.out).resolve())
    by_nb: dict = {}
    for r in rows:
        by_nb.setdefault(r["notebook"], {}).setdefault(r["figure"], []).append(
            (r["path"], int(r["seed"]), float(r["value"]))
        )
    EXPECTED_DIR.mkdir(parents=True, exist_ok=True)
    for stem, figures in sorted(by_nb.items()):
        if args.notebooks and stem not in args.notebooks:
            continue
        ref_seed = min(s for vals in figures.values() for p, s, _ in vals if p == "native")
        unchecked = {**UNCHECKED, **NOTEBOOK_UNCHECKED.get(stem, {})}
        out = {
            "notebook": stem,
            "profile": "default parameters",
            "seed": ref_seed,
            "figures": {},
            "unchecked": unchecked,
            "measured": {},
        }

        for name, vals in sorted(figures.items()):
            if any(re.fullmatch(p, name) for p in unchecked):
                continue
            ref = next(v for p, s, v in vals if p == "native" and s == ref_seed)
            cpu = [v for p, s, v in vals if p != "native" and s == ref_seed]
            seeds = [v for p, s, v in vals if p == "native" and s != ref_seed]
            spec = band(ref, cpu, seeds)
            spec["cpu_change"] = float(f"{max((abs(v - ref) for v in cpu), default=0.0):.3g}")
            spec["seed_sd"] = float(f"{_sd([ref, *seeds]):.3g}") if seeds else None
            out["figures"][name] = spec
        paths = sorted({p for vals in figures.values() for p, _, _ in vals})
        seeds = sorted({s for vals in figures.values() for p, s, _ in vals if p == "native"})
        out["measured"] = {"paths": {p: PATHS[p] for p in paths}, "native seeds": seeds, "machine": args.machine}
        path = EXPECTED_DIR / f"{stem}.json"
        path.write_text(_dumps(out))
        print(f"wrote {path} ({len(out['figures'])} figures)")


def reband(args) -> None:
    """Recompute the bands of the committed references from their stored measurements.

    After a change of the band rule (:func:`band`), without re-running the notebooks: each
    figure keeps its ``value``, ``cpu_change`` and ``seed_sd``; fixed figures stay fixed.
    """
    for path in sorted(EXPECTED_DIR.glob("*.json")):
        content = json.loads(path.read_text())
        if args.notebooks and content["notebook"] not in args.notebooks:
            continue
        for spec in content["figures"].values():
            if "rel" in spec:
                continue
            spec["abs"] = band_width(spec.get("cpu_change") or 0.0, spec.get("seed_sd") or 0.0)
        path.write_text(_dumps(content))
        print(f"rebanded {path}")


def _dumps(content: dict) -> str:
    """JSON with one line per figure, so that a diff shows which figures moved."""
    lines = ["{"]
    items = list(content.items())
    for i, (key, value) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        if key == "figures":
            lines.append('  "figures": {')
            figs = list(value.items())
            for j, (name, spec) in enumerate(figs):
                sep = "," if j < len(figs) - 1 else ""
                lines.append(f"    {json.dumps(name, ensure_ascii=False)}: {json.dumps(spec)}{sep}")
            lines.append(f"  }}{comma}")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}{comma}")
    return "\n".join(lines + ["}"]) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "write", "reband"):
        p = sub.add_parser(name)
        p.add_argument("--out", default="build/spread")
        p.add_argument("--notebooks", nargs="*", default=[])
    sub.choices["run"].add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    sub.choices["run"].add_argument("--paths", nargs="*", default=list(PATHS))
    sub.choices["run"].add_argument("--jobs", type=int, default=2)
    sub.choices["write"].add_argument("--machine", default="")
    args = parser.parse_args(argv)
    {"run": run, "write": write, "reband": reband}[args.command](args)


if __name__ == "__main__":
    main()
