#!/usr/bin/env python
"""Benchmark of ARMED against its baselines: spirals and MathAchieve, seen and unseen clusters.

Runnable script, not a test::

    PERSLIB_PROGRESS=0 .venv/bin/python benchmarks/armed.py \
        --tasks spirals_seen spirals_unseen mathach_seen mathach_unseen \
        --out benchmarks/armed_results.csv --markdown

Protocols (5 folds, fold ``f`` fits every model with ``random_state=f``)
    spirals_seen    ``make_spirals(confounded=True, random_state=0)`` (10 clusters, 2 probe
                    features), ``StratifiedKFold(5, shuffle=True, random_state=0)`` on
                    label x cluster: every test cluster was seen in training.
    spirals_unseen  the same data, ``GroupKFold(5)`` on the clusters: the test clusters
                    are new; ARMED uses its default rule for them (the z-predictor).
    mathach_seen    ``load_math_achievement()`` (features SES, Female, Minority; schools
                    as clusters), ``StratifiedKFold(5, shuffle=True, random_state=0)`` on
                    the school.
    mathach_unseen  the same data, ``GroupKFold(5)`` on the schools.
    timing          all spirals (10,000 samples), 15 epochs without early stopping, the MLP
                    and ARMED fitted alternately ``--timing-reps`` times; the median
                    seconds per epoch of each, and their ratio (the same process, so the
                    same machine load, as far as a shared machine allows).

Models
    mlp             the conventional network (``MLPClassifier`` / ``MLPRegressor``, defaults)
    armed           ``ARMEDClassifier(slopes=...)`` / ``ARMEDRegressor()`` at their defaults
                    (``--spiral-slopes`` picks the spirals variants, default nonlinear)
    mixedlm         ``MixedLMRegressor()`` (random intercept), MathAchieve only

Columns: ``score`` is the test accuracy (spirals) or R^2 (MathAchieve) with the default
prediction rule (one-hot ``z`` for seen clusters, the z-predictor applied to each sample
of an unseen one on its own, as in the paper); ``score_pooled`` (unseen tasks) the
opt-in rule that pools the z-predictor's memberships over each held-out cluster's
samples (``unseen_pooling="geometric"``; rows recorded with perslib 0.1, whose default
it was, hold it in ``score`` and the per-sample rule in ``score_sample``);
``score_z0`` the FE-only prediction
(``z="zero"``); ``probe_imp`` / ``x_imp`` the mean
input-gradient importance (:func:`perslib.armed.feature_importance`, random
effects off) of the probes / of x1, x2; ``re_sd`` the learned random-intercept s.d. (y
units); ``epoch_s`` the training time per epoch (fit time / epochs for the MLP, the
training loop's own timing for ARMED). The markdown table gives mean ± s.d. over folds
and, per task, the paired fold differences ARMED - baseline.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("PERSLIB_PROGRESS", "0")

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import r2_score
from sklearn.model_selection import GroupKFold, StratifiedKFold

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from perslib.armed import (
    ARMEDClassifier,
    ARMEDRegressor,
    MixedLMRegressor,
    feature_importance,
)
from perslib.data import load_math_achievement, make_spirals
from perslib.mlp import MLPClassifier, MLPRegressor

TASKS = ("spirals_seen", "spirals_unseen", "mathach_seen", "mathach_unseen", "timing")


def _splits(task: str, X, y, g, n_folds: int):
    if task.endswith("_unseen"):
        return list(GroupKFold(n_folds).split(X, y, g))
    if task.startswith("spirals"):
        strat = np.char.add(np.char.add(y.astype(str), "_"), g.astype(str))
    else:
        strat = g
    return list(StratifiedKFold(n_folds, shuffle=True, random_state=0).split(X, strat))


def _models(task: str, fold: int, slopes):
    if task.startswith("spirals"):
        out = {"mlp": MLPClassifier(random_state=fold)}
        for s in slopes:
            out[f"armed_{s}"] = ARMEDClassifier(slopes=s, random_state=fold)
        return out
    return {
        "mixedlm": MixedLMRegressor(),
        "mlp": MLPRegressor(random_state=fold),
        "armed": ARMEDRegressor(random_state=fold),
    }


def run_timing(slopes, reps: int) -> list[dict]:
    X, y, g, _ = make_spirals(confounded=True, random_state=0)
    fixed = {"epochs": 15, "patience": 0, "random_state": 0}
    rows = []
    for rep in range(reps):
        models = {"mlp": MLPClassifier(**fixed)}
        for s in slopes:
            models[f"armed_{s}"] = ARMEDClassifier(slopes=s, unseen="fixed", **fixed)
        for name, model in models.items():
            t0 = time.perf_counter()
            model.fit(X, y, groups=g)
            fit_s = time.perf_counter() - t0
            epoch_s = getattr(model, "epoch_time_", fit_s / 15)
            rows.append(
                {
                    "task": "timing",
                    "fold": rep,
                    "model": name,
                    "fit_s": fit_s,
                    "epoch_s": float(epoch_s),
                }
            )
            print(rows[-1], flush=True)
    return rows


def run_task(task: str, n_folds: int, folds, slopes, reps: int = 3) -> list[dict]:
    if task == "timing":
        return run_timing(slopes, reps)
    if task.startswith("spirals"):
        X, y, g, _ = make_spirals(confounded=True, random_state=0, as_frame=True)
        g = np.asarray(g)
    else:
        ds = load_math_achievement()
        X, y, g = ds.X, np.asarray(ds.y), np.asarray(ds.groups)
    splits = _splits(task, X, y, g, n_folds)
    rows = []
    for fold in folds:
        tr, te = splits[fold]
        for name, model in _models(task, fold, slopes).items():
            t0 = time.perf_counter()
            model.fit(X.iloc[tr], y[tr], groups=g[tr])
            fit_s = time.perf_counter() - t0
            row = {"task": task, "fold": fold, "model": name, "fit_s": fit_s}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # unseen clusters warn by design
                Xte = X.iloc[te]

                def score(pred, truth=y[te]):  # accuracy on the spirals, R^2 on MathAchieve
                    if task.startswith("spirals"):
                        return float(np.mean(pred == truth))
                    return float(r2_score(truth, pred))

                row["score"] = score(model.predict(Xte, groups=g[te]))
                if name.startswith("armed"):
                    row["score_z0"] = score(model.predict(Xte, groups=g[te], z="zero"))
                    if task.endswith("_unseen"):  # the opt-in pooled rule, on the same fitted model
                        model.set_params(unseen_pooling="geometric")
                        row["score_pooled"] = score(model.predict(Xte, groups=g[te]))
                        model.set_params(unseen_pooling="none")
            if task.startswith("spirals"):
                imp = feature_importance(model, X.iloc[tr])
                row["probe_imp"] = float(imp[["probe_1", "probe_2"]].mean())
                row["x_imp"] = float(imp[["x1", "x2"]].mean())
            if hasattr(model, "epoch_time_"):
                row["epoch_s"] = float(model.epoch_time_)
            elif hasattr(model, "n_epochs_"):
                row["epoch_s"] = fit_s / max(int(model.n_epochs_), 1)
            sd = getattr(model, "random_effect_sd_", None)
            if sd is not None and len(sd) and "intercept" in sd.index:
                row["re_sd"] = float(sd["intercept"])
            elif sd is not None and len(sd):
                row["re_sd"] = float(sd.iloc[0])
            rows.append(row)
            print(
                {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()},
                flush=True,
            )
    return rows


def _fmt(s: pd.Series) -> str:
    s = s.dropna()
    if s.empty:
        return ""
    return f"{s.mean():.3f} ± {s.std(ddof=1):.3f}" if len(s) > 1 else f"{s.mean():.3f}"


def markdown(df: pd.DataFrame) -> str:
    cols = ["score", "score_pooled", "score_sample", "score_z0", "probe_imp", "x_imp", "re_sd", "epoch_s"]
    lines = [
        "| task | model | score | score (pooled, opt-in) | score (per sample, 0.1 rows) | score (z = 0) | probe importance | x importance | RE intercept sd | s / epoch |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (task, model), d in df.groupby(["task", "model"], sort=False):
        cells = [_fmt(d[c]) if c in d else "" for c in cols]
        lines.append(f"| {task} | {model} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Paired fold differences (mean ± s.d. over folds):")
    lines.append("")
    for task, d in df.groupby("task", sort=False):
        if task == "timing":
            ep = d.pivot(index="fold", columns="model", values="epoch_s").median()
            for arm in [c for c in ep.index if c.startswith("armed")]:
                lines.append(
                    f"* timing: s/epoch {arm} / mlp = {ep[arm] / ep['mlp']:.2f} (medians {ep[arm]:.3f} / {ep['mlp']:.3f} s)"
                )
            continue
        wide = d.pivot(index="fold", columns="model", values="score")
        for arm in [c for c in wide.columns if c.startswith("armed")]:
            for base in [c for c in wide.columns if not c.startswith("armed")]:
                diff = wide[arm] - wide[base]
                lines.append(
                    f"* {task}: {arm} - {base} score = {_fmt(diff)} (per fold {np.round(diff.to_numpy(), 3).tolist()})"
                )
            if task.startswith("spirals") and "mlp" in wide.columns:
                imp = d.pivot(index="fold", columns="model", values="probe_imp")
                ratio = imp[arm].mean() / imp["mlp"].mean()
                lines.append(f"* {task}: probe importance {arm} / mlp = {ratio:.2f}")
            ep = d.pivot(index="fold", columns="model", values="epoch_s")
            if "mlp" in ep.columns:
                lines.append(
                    f"* {task}: s/epoch {arm} / mlp = {ep[arm].median() / ep['mlp'].median():.2f} (median over folds)"
                )
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    ap.add_argument("--n-folds", type=int, default=5)
    ap.add_argument(
        "--folds",
        type=int,
        nargs="*",
        default=None,
        help="subset of folds (default all)",
    )
    ap.add_argument(
        "--spiral-slopes",
        nargs="+",
        default=["nonlinear"],
        choices=["nonlinear", "linear", "none"],
    )
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--timing-reps", type=int, default=3)
    ap.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / "armed_results.csv",
    )
    ap.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    folds = args.folds if args.folds else list(range(args.n_folds))
    rows = []
    for task in args.tasks:
        rows += run_task(task, args.n_folds, folds, args.spiral_slopes, args.timing_reps)
    df = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    print(f"wrote {args.out}")
    if args.markdown:
        print()
        print(
            f"Machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPU(s), "
            f"torch {torch.__version__}, {args.threads} thread(s), Python {platform.python_version()}"
        )
        print()
        print(markdown(df))


if __name__ == "__main__":
    main()
