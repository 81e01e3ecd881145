"""Time ``perslib report`` end to end on a synthetic clustered table, and its bad-input failures.

Writes a seeded table (``--rows`` rows, ``--features`` feature columns of which three are
text, ``--clusters`` clusters, a few missing values, two cluster-level covariates), then
runs ``perslib report`` on it as a user would — a fresh process, default settings unless
``--extra`` adds options — and prints its wall time and the CPU time of it and its
children (the kernel and the model-fitting workers). With ``--bad`` it also times every
bad-input case of the report's checks (each must fail with exit code 2)::

    PERSLIB_PROGRESS=0 .venv/bin/python benchmarks/report_cli.py --out build/bench_report
    PERSLIB_PROGRESS=0 .venv/bin/python benchmarks/report_cli.py --out build/bench_report --extra "--covariates u_site u_region"
    PERSLIB_PROGRESS=0 .venv/bin/python benchmarks/report_cli.py --out build/bench_report --bad --no-report
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def make_table(n_rows: int = 10_000, n_features: int = 20, n_clusters: int = 50, seed: int = 0) -> pd.DataFrame:
    """A clustered regression table: random intercepts and slopes, a nonlinearity, text columns.

    Columns ``y`` (target), ``site`` (cluster, text), ``x0`` … (numbers), ``c0`` … ``c2``
    (text with 3-4 levels), ``u_site`` and ``u_region`` (cluster-level covariates, a
    number and a text), with 0.3% missing values in ``x1`` and ``c0``.
    """
    rng = np.random.default_rng(seed)
    n_text = 3
    n_num = n_features - n_text
    site = rng.integers(n_clusters, size=n_rows)
    X = rng.normal(size=(n_rows, n_num))
    u_site = rng.normal(size=n_clusters)
    region = rng.integers(3, size=n_clusters)
    intercept = 1.5 * rng.normal(size=n_clusters) + 0.8 * u_site
    slope = 0.5 * rng.normal(size=n_clusters) + 0.4 * (region == 1)
    beta = rng.normal(size=n_num) * (rng.random(n_num) < 0.5)
    text = {f"c{j}": rng.choice(list("abcd")[: 3 + j % 2], size=n_rows) for j in range(n_text)}
    y = (
        X @ beta
        + intercept[site]
        + slope[site] * X[:, 0]
        + np.sin(2 * X[:, 1])
        + 0.7 * (text["c0"] == "b")
        + rng.normal(size=n_rows)
    )
    frame = pd.DataFrame({"y": y, "site": [f"site{k:02d}" for k in site]})
    for j in range(n_num):
        frame[f"x{j}"] = X[:, j]
    for name, values in text.items():
        frame[name] = values
    frame["u_site"] = u_site[site]
    frame["u_region"] = np.array(["north", "south", "west"])[region][site]
    for col in ("x1", "c0"):
        frame.loc[rng.random(n_rows) < 0.003, col] = np.nan
    return frame


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(cmd: list[str]) -> tuple[int, float, float, str]:
    """Exit code, wall s, CPU s (the process and its children) and the output of ``cmd``."""
    cpu0, t0 = _children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PERSLIB_PROGRESS": "0"})
    return proc.returncode, time.perf_counter() - t0, _children_cpu() - cpu0, proc.stdout + proc.stderr


BAD_CASES = {
    "missing file": ["{dir}/nope.csv", "--target", "y", "--groups", "site"],
    "unreadable file": ["{dir}/garbage.parquet", "--target", "y", "--groups", "site"],
    "unknown column": ["{csv}", "--target", "yy", "--groups", "site"],
    "target with missing values": ["{dir}/target_nan.csv", "--target", "y", "--groups", "site"],
    "target with one value": ["{dir}/target_const.csv", "--target", "y", "--groups", "site"],
    "groups with missing values": ["{dir}/groups_nan.csv", "--target", "y", "--groups", "site"],
    "a single cluster": ["{dir}/one_cluster.csv", "--target", "y", "--groups", "site"],
    "too few rows per cluster": ["{csv}", "--target", "y", "--groups", "site", "--folds", "500"],
}


def bad_inputs(folder: Path, csv: Path) -> list[tuple[str, int, float, float, str]]:
    frame = pd.read_csv(csv)
    (folder / "garbage.parquet").write_bytes(b"this is not parquet")
    frame.assign(y=frame["y"].where(frame.index % 97 != 0)).to_csv(folder / "target_nan.csv", index=False)
    frame.assign(y=1.0).to_csv(folder / "target_const.csv", index=False)
    frame.assign(site=frame["site"].where(frame.index % 89 != 0)).to_csv(folder / "groups_nan.csv", index=False)
    frame.assign(site="only").to_csv(folder / "one_cluster.csv", index=False)
    rows = []
    for name, args in BAD_CASES.items():
        args = [a.format(dir=folder, csv=csv) for a in args]
        code, wall, cpu, text = run(
            [str(ROOT / ".venv" / "bin" / "perslib"), "report", *args, "--out", str(folder / "bad")]
        )
        rows.append((name, code, wall, cpu, text.strip().splitlines()[-1] if text.strip() else ""))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="build/bench_report")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--clusters", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--extra", default="", help="more perslib report options, e.g. '--covariates u_site'")
    parser.add_argument("--bad", action="store_true", help="also time the bad-input cases")
    parser.add_argument("--no-report", action="store_true", help="skip the full report run")
    args = parser.parse_args()
    folder = Path(args.out).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / f"table_{args.rows}x{args.features}x{args.clusters}.csv"
    make_table(args.rows, args.features, args.clusters, args.seed).to_csv(csv, index=False)
    print(f"table: {csv} ({csv.stat().st_size / 1e6:.1f} MB); nproc {os.cpu_count()}; load {os.getloadavg()}")
    if not args.no_report:
        cmd = [str(ROOT / ".venv" / "bin" / "perslib"), "report", str(csv), "--target", "y", "--groups", "site"]
        cmd += shlex.split(args.extra) + ["--out", str(folder / "report")]
        code, wall, cpu, text = run(cmd)
        print(text)
        print(f"perslib report: exit {code}, wall {wall:.1f} s, CPU {cpu:.1f} s (process and children)")
    if args.bad:
        for name, code, wall, cpu, last in bad_inputs(folder, csv):
            print(f"{name:<28} exit {code}  wall {wall:4.1f} s  CPU {cpu:4.1f} s  {last}")
    sys.exit(0)


if __name__ == "__main__":
    main()
