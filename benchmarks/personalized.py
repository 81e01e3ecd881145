#!/usr/bin/env python
"""Benchmark of personalized regression: fit time, peak memory and recovery error against n.

Runnable script, not a test::

    PERSLIB_PROGRESS=0 .venv/bin/python benchmarks/personalized.py \
        --sizes 500 2000 10000 --methods population lowrank lowrank_mlp fullrank contextualized \
        --threads 1 --ctx-python /tmp/ctxvenv/bin/python --out benchmarks/results.csv --markdown

For every size ``n`` the parent process simulates training data with
``make_personalized_regression(n_samples=n, random_state=seed)`` and a fresh test set
(``random_state=seed + 1``, ``--n-test`` samples), writes both to a temporary ``.npz`` and
runs every method in its own child process (``--_worker``), so that each fit's peak
resident memory (``ru_maxrss`` of that child, from ``os.wait4``) is its own and not
inflated by earlier fits. The child loads the data, fits, and writes back the estimated
training parameters, the test parameters predicted from the test covariates only, and the
test predictions; the parent scores them with :func:`perslib.evaluation.parameter_mse`.

Methods
    population      one ridge regression (``PopulationRegressor``): the floor to beat
    lowrank         ``PersonalizedRegressor(rank=--rank)`` (NeurIPS 2019), kNN rule for new samples
    lowrank_mlp     the same with ``encoder="mlp"`` (amortized encoder predicts new samples)
    fullrank        ``PersonalizedRegressor(rank=None)`` (ISMB 2018)
    contextualized  Contextualized ML's ``ContextualizedRegressor(num_archetypes=--ctx-archetypes)``
                    (the archetype / "subtype" metamodel = amortized low-rank PR), its defaults
                    otherwise (training batch size 1, val_split 0.2, early stopping patience 1),
                    ``max_epochs=--ctx-epochs``; skipped with a message when ``contextualized``
                    cannot be imported by ``--ctx-python``
    contextualized_naive  the same with ``num_archetypes=0`` (encoder outputs θ directly)

Contextualized ML (GPLv3) is only *called*, from its own environment if need be
(``--ctx-python``; see benchmarks/README.md for the recipe). Its covariates are
standardized with the training mean/std (its issue #250: unnormalised inputs can diverge);
X is already standard normal. Its ``β (n, 1, p)`` is our ``coef (n, p)``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PERSLIB_METHODS = ("population", "lowrank", "lowrank_mlp", "fullrank")
CTX_METHODS = ("contextualized", "contextualized_naive")
ALL_METHODS = PERSLIB_METHODS + CTX_METHODS
COLUMNS = [
    "method",
    "n",
    "seed",
    "threads",
    "fit_s",
    "cpu_s",
    "peak_mb",
    "base_mb",
    "epochs",
    "train_theta_mse",
    "test_theta_mse",
    "test_pred_mse",
    "note",
]


# ----------------------------------------------------------------------------- worker
def _worker(args) -> None:
    """Child process: fit one method on the data in ``args.data``, write results to ``args.result``."""
    import resource

    import torch

    torch.set_num_threads(args.threads)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    d = np.load(args.data)
    X, y, U, Xt, Ut = d["X"], d["y"], d["U"], d["Xt"], d["Ut"]
    out: dict = {}
    # The first torch optimizer a process creates imports torch._dynamo lazily (~1.3 s of CPU here),
    # whichever library creates it. It is a once-per-process cost, not part of fitting: pay it here,
    # before the clock starts, for every method alike.
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # imports + data, before the fit
    if args.method in PERSLIB_METHODS:
        from perslib import PersonalizedRegressor
        from perslib.personalized import PopulationRegressor

        if args.method == "population":
            model = PopulationRegressor()
        else:
            rank = None if args.method == "fullrank" else args.rank
            encoder = "mlp" if args.method == "lowrank_mlp" else None
            model = PersonalizedRegressor(
                rank=rank,
                encoder=encoder,
                random_state=args.seed,
                device="cpu",
                progress=False,
            )
        t0, c0 = time.perf_counter(), time.process_time()
        model.fit(X, y, covariates=U)
        fit_s, out["cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
        coef_train = model.coef_
        coef_test, _ = model.predict_params(Ut)
        pred_test = model.predict(Xt, covariates=Ut)
        out["epochs"] = int(getattr(model, "n_epochs_", 0)) or ""
        if hasattr(model, "batch_size_"):
            out["schedule"] = f"batch {model.batch_size_}, refresh every {model.refresh_every_}"
            if "lr" in model.history_:  # the large-n path's learning-rate schedule
                out["schedule"] += f", lr halved {model.history_['lr'].nunique() - 1}×"
    else:
        from contextualized.easy import ContextualizedRegressor

        mean, std = U.mean(0), U.std(0) + 1e-12
        C, Ct = (U - mean) / std, (Ut - mean) / std
        k = args.ctx_archetypes if args.method == "contextualized" else 0
        model = ContextualizedRegressor(num_archetypes=k)
        cwd = os.getcwd()
        os.chdir(tempfile.mkdtemp(prefix="ctx_bench_"))  # Lightning writes ./lightning_logs checkpoints
        try:
            t0, c0 = time.perf_counter(), time.process_time()
            model.fit(C, X, y[:, None], max_epochs=args.ctx_epochs)
            fit_s, out["cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
        finally:
            os.chdir(cwd)
        beta, _mu = model.predict_params(C)
        coef_train = np.asarray(beta)[:, 0, :]
        beta_t, _mu_t = model.predict_params(Ct)
        coef_test = np.asarray(beta_t)[:, 0, :]
        pred_test = np.asarray(model.predict(Ct, Xt)).reshape(-1)
        out["epochs"] = ""
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    np.savez(args.result, coef_train=coef_train, coef_test=coef_test, pred_test=pred_test)
    out.update(fit_s=fit_s, base_mb=base_kb / 1024, peak_in_child_mb=peak_kb / 1024)
    Path(args.result + ".json").write_text(json.dumps(out))


# ----------------------------------------------------------------------------- parent
def _ctx_available(python: str) -> tuple[bool, str]:
    r = subprocess.run(
        [python, "-c", "import contextualized, torch; print(torch.__version__)"],
        check=False,
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        return False, (r.stderr.strip().splitlines() or ["import failed"])[-1]
    return True, r.stdout.strip()


def _run_child(python: str, argv: list[str], timeout: float) -> tuple[int, str]:
    """Run one fit in a fresh child process; return (returncode, stderr tail).

    The child reports its own peak RSS (``RUSAGE_SELF`` ``ru_maxrss`` after the fit and
    the predictions), so every figure belongs to one fit in one fresh interpreter.
    """
    env = dict(os.environ, PERSLIB_PROGRESS="0", PYTHONWARNINGS="ignore")
    proc = subprocess.Popen(
        [python, str(Path(__file__).resolve()), *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return -9, f"timeout after {timeout:.0f} s"
    return proc.returncode, (err or "")[-2000:]


def _fmt(v, digits=3):
    if isinstance(v, float):
        if np.isnan(v):
            return "–"
        return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def markdown_table(rows: list[dict]) -> str:
    head = [
        "method",
        "n",
        "seed",
        "threads",
        "fit s",
        "CPU s",
        "peak MB",
        "train θ MSE",
        "test θ MSE",
        "test pred MSE",
        "epochs",
        "note",
    ]
    keys = [
        "method",
        "n",
        "seed",
        "threads",
        "fit_s",
        "cpu_s",
        "peak_mb",
        "train_theta_mse",
        "test_theta_mse",
        "test_pred_mse",
        "epochs",
        "note",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(k, "")) for k in keys) + " |")
    return "\n".join(lines)


def slopes(rows: list[dict]) -> str:
    """Fitted power-law exponents ``b`` of ``y ≈ c·n^b`` per method (fit s, CPU s, peak MB, train θ MSE)."""
    from perslib.evaluation import power_law_fit

    lines = []
    for method in dict.fromkeys(r["method"] for r in rows):
        ok = [r for r in rows if r["method"] == method and np.isfinite(r.get("fit_s", np.nan))]
        if len({r["n"] for r in ok}) < 2:
            continue
        n = [r["n"] for r in ok]
        parts = []
        for key, label in (
            ("fit_s", "fit s"),
            ("cpu_s", "CPU s"),
            ("peak_mb", "peak MB"),
            ("train_theta_mse", "θ MSE"),
        ):
            values = [r.get(key, np.nan) for r in ok]
            if all(isinstance(v, float) and v > 0 for v in values):
                parts.append(f"{label} ∝ n^{power_law_fit(n, values)[0]:.2f}")
        lines.append(f"{method} (n = {min(n)} … {max(n)}): " + ", ".join(parts))
    return "\n".join(lines)


def machine_info(threads: int) -> str:
    import torch

    info = [
        f"python {platform.python_version()}, torch {torch.__version__}, torch threads {threads}, os.cpu_count() {os.cpu_count()}"
    ]
    try:
        info.append(Path("/proc/cpuinfo").read_text().split("model name")[1].split("\n")[0].strip(": \t"))
        mem_kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        info.append(f"RAM {mem_kb / 2**20:.1f} GiB")
        info.append("load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3]))
    except (OSError, IndexError, ValueError):
        pass
    return "; ".join(info)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[500, 2000, 10000],
        help="training-set sizes n",
    )
    p.add_argument(
        "--methods",
        nargs="+",
        default=["population", "lowrank", "lowrank_mlp", "fullrank", "contextualized"],
        choices=ALL_METHODS,
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the training data and the fits (test data: seed + 1)",
    )
    p.add_argument("--n-test", type=int, default=1000, help="test samples")
    p.add_argument("--n-features", type=int, default=5, help="p of make_personalized_regression")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads in every fit")
    p.add_argument("--rank", type=int, default=4, help="latent dimension q of the low-rank models")
    p.add_argument(
        "--ctx-epochs",
        type=int,
        default=20,
        help="max_epochs of ContextualizedRegressor",
    )
    p.add_argument(
        "--ctx-archetypes",
        type=int,
        default=4,
        help="num_archetypes of method 'contextualized'",
    )
    p.add_argument(
        "--ctx-python",
        default=os.environ.get("PERSLIB_CTX_PYTHON", sys.executable),
        help="interpreter that can import contextualized (its own venv)",
    )
    p.add_argument(
        "--ctx-max-n",
        type=int,
        default=None,
        help="skip Contextualized above this n (it is slow)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=1800,
        help="seconds per fit before it is killed",
    )
    p.add_argument(
        "--out",
        default=str(HERE / "results.csv"),
        help="CSV to write (appended if it exists)",
    )
    p.add_argument("--markdown", action="store_true", help="also print the README table")
    p.add_argument("--note", default="", help="text appended to every row's note (e.g. a code version)")
    # private: one fit in a child process
    p.add_argument("--_worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--method", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._worker:
        _worker(args)
        return 0

    import pandas as pd

    from perslib.data.simulate import make_personalized_regression
    from perslib.evaluation import parameter_mse

    ctx_ok, ctx_msg = (False, "")
    if any(m in CTX_METHODS for m in args.methods):
        ctx_ok, ctx_msg = _ctx_available(args.ctx_python)
        print(
            f"contextualized via {args.ctx_python}: "
            + (f"available (torch {ctx_msg})" if ctx_ok else f"NOT importable, skipped ({ctx_msg})"),
            flush=True,
        )
    print("machine:", machine_info(args.threads), flush=True)

    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="perslib_bench_"))
    for n in args.sizes:
        X, y, U, theta, _ = make_personalized_regression(
            n_samples=n, n_features=args.n_features, random_state=args.seed
        )
        Xt, yt, Ut, theta_t, _ = make_personalized_regression(
            n_samples=args.n_test,
            n_features=args.n_features,
            random_state=args.seed + 1,
        )
        data = tmp / f"data_{n}.npz"
        np.savez(data, X=X, y=y, U=U.to_numpy(), Xt=Xt, Ut=Ut.to_numpy())
        for method in args.methods:
            is_ctx = method in CTX_METHODS
            if is_ctx and not ctx_ok:
                continue
            if is_ctx and args.ctx_max_n is not None and n > args.ctx_max_n:
                print(
                    f"{method} n={n}: skipped (--ctx-max-n {args.ctx_max_n})",
                    flush=True,
                )
                continue
            result = str(tmp / f"res_{method}_{n}")
            child = [
                "--_worker",
                "--method",
                method,
                "--data",
                str(data),
                "--result",
                result,
                "--seed",
                str(args.seed),
                "--threads",
                str(args.threads),
                "--rank",
                str(args.rank),
                "--ctx-epochs",
                str(args.ctx_epochs),
                "--ctx-archetypes",
                str(args.ctx_archetypes),
            ]
            rc, err = _run_child(args.ctx_python if is_ctx else sys.executable, child, args.timeout)
            row = {"method": method, "n": n, "seed": args.seed, "threads": args.threads}
            if rc != 0 or not Path(result + ".json").exists():
                row.update(
                    fit_s=float("nan"),
                    peak_mb=float("nan"),
                    note=f"failed (rc {rc}): {err.strip().splitlines()[-1] if err.strip() else ''}",
                )
                print(f"{method} n={n}: FAILED\n{err}", flush=True)
            else:
                meta = json.loads(Path(result + ".json").read_text())
                res = np.load(result + ".npz")
                row.update(
                    fit_s=meta["fit_s"],
                    peak_mb=meta["peak_in_child_mb"],
                    base_mb=meta["base_mb"],
                    epochs=meta["epochs"],
                    train_theta_mse=parameter_mse(res["coef_train"], theta),
                    test_theta_mse=parameter_mse(res["coef_test"], theta_t),
                    test_pred_mse=float(np.mean((res["pred_test"] - yt) ** 2)),
                    note=(
                        f"max_epochs={args.ctx_epochs}, archetypes={args.ctx_archetypes if method == 'contextualized' else 0}, batch 1"
                        if is_ctx
                        else (f"rank={args.rank}" if method.startswith("lowrank") else "")
                    ),
                )
                print(
                    f"{method:>20} n={n:>7}  fit {row['fit_s']:8.2f} s  peak {row['peak_mb']:7.0f} MB  "
                    f"θ MSE train {row['train_theta_mse']:.3f} test {row['test_theta_mse']:.3f}  pred MSE {row['test_pred_mse']:.3f}",
                    flush=True,
                )
                if "cpu_s" in meta:  # CPU seconds of the fit: less sensitive than fit_s to other jobs
                    row["cpu_s"] = float(meta["cpu_s"])
                    row["note"] = "; ".join(x for x in (row["note"], f"cpu {meta['cpu_s']:.1f} s") if x)
                if "schedule" in meta:
                    row["note"] = "; ".join(x for x in (row["note"], meta["schedule"]) if x)
            if args.note:
                row["note"] = "; ".join(x for x in (row.get("note", ""), args.note) if x)
            rows.append(row)

    df = pd.DataFrame(rows, columns=COLUMNS)
    df["machine"] = machine_info(args.threads)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and list(pd.read_csv(out, nrows=0).columns) != list(df.columns):
        # an older file without some of today's columns: rewritten with the union (blank where unknown)
        merged = pd.concat([pd.read_csv(out), df], ignore_index=True)
        merged[list(df.columns)].to_csv(out, index=False)
    else:
        df.to_csv(out, mode="a" if out.exists() else "w", header=not out.exists(), index=False)
    print(f"\nwrote {out}")
    print(df[COLUMNS].to_string(index=False))
    if args.markdown:
        print("\n" + markdown_table(rows))
    fitted = slopes(rows)
    if fitted:
        print("\nfitted power laws (y ≈ c·n^b):\n" + fitted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
