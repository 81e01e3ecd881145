#!/usr/bin/env python
"""Benchmark of ARMED against its baselines: spirals, MathAchieve, guImmun and Exam, seen and unseen clusters.

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
    guimmun         ``load_guatemala_immunization()`` (binary ``immun``, 161 communities;
                    the 10 child-level features and the 2 community-level covariates as
                    inputs). Fold ``f``: 25 % of the communities drawn with seed ``f`` are
                    held out whole (rows ``guimmun_unseen``); of every other community 20 %
                    of its rows (rounded) are held out (rows ``guimmun_seen``); one fit on
                    the rest gives both scores. ``score`` is the ROC AUC, ``score_acc`` the
                    accuracy.
    exam            ``load_exam()`` (continuous ``normexam``, 65 schools; 3 pupil-level
                    features and 4 school-level covariates), the same design; R^2.
    timing          all spirals (10,000 samples), 15 epochs without early stopping, the MLP
                    and ARMED fitted alternately ``--timing-reps`` times; the median
                    seconds per epoch of each, and their ratio (the same process, so the
                    same machine load, as far as a shared machine allows).

Models
    mlp             the conventional network (``MLPClassifier`` / ``MLPRegressor``, defaults)
    armed           ``ARMEDClassifier(slopes=...)`` / ``ARMEDRegressor()`` at their defaults
                    (``--spiral-slopes`` picks the spirals variants, default nonlinear)
    mixedlm         ``MixedLMRegressor()`` (random intercept), MathAchieve and Exam
    bayesglm        ``BayesMixedGLMClassifier(random_state=f)`` (random intercept), guImmun
    gpboost         ``GPBoostClassifier`` / ``GPBoostRegressor(random_state=f)`` at their defaults
                    (200 rounds, learning rate 0.05, depth 3; the optional extra
                    ``perslib[peers]``), every task but timing

``--models`` keeps only the named models (e.g. ``--models gpboost``); ``--merge`` writes the
new rows into the existing ``--out`` file, replacing rows of the same task, fold and model
and keeping the others (without it the file is overwritten).

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
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.model_selection import GroupKFold, StratifiedKFold

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from perslib.armed import (
    ARMEDClassifier,
    ARMEDRegressor,
    BayesMixedGLMClassifier,
    GPBoostClassifier,
    GPBoostRegressor,
    MixedLMRegressor,
    feature_importance,
)
from perslib.data import load_exam, load_guatemala_immunization, load_math_achievement, make_spirals
from perslib.evaluation import corrected_summary, paired_differences
from perslib.mlp import MLPClassifier, MLPRegressor

TASKS = ("spirals_seen", "spirals_unseen", "mathach_seen", "mathach_unseen", "guimmun", "exam", "timing")
REAL = {"guimmun": (load_guatemala_immunization, True), "exam": (load_exam, False)}
GPB = {"num_boost_round": 200, "learning_rate": 0.05, "max_depth": 3}


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
        out["gpboost"] = GPBoostClassifier(random_state=fold, **GPB)
        return out
    if task == "guimmun":
        return {
            "bayesglm": BayesMixedGLMClassifier(random_state=fold),
            "mlp": MLPClassifier(random_state=fold),
            "gpboost": GPBoostClassifier(random_state=fold, **GPB),
            "armed": ARMEDClassifier(random_state=fold),
        }
    return {
        "mixedlm": MixedLMRegressor(),
        "mlp": MLPRegressor(random_state=fold),
        "gpboost": GPBoostRegressor(random_state=fold, **GPB),
        "armed": ARMEDRegressor(random_state=fold),
    }


def _real_split(g: np.ndarray, fold: int, unseen_share: float = 0.25, seen_share: float = 0.2):
    """(train, seen test, unseen test) row indices: ``unseen_share`` of the clusters held out
    whole, ``seen_share`` of the rows of every other cluster (rounded) held out; seed ``fold``."""
    rng = np.random.default_rng(fold)
    clusters = np.unique(g)
    n_unseen = int(round(unseen_share * len(clusters)))
    unseen = rng.choice(clusters, size=n_unseen, replace=False)
    is_unseen = np.isin(g, unseen)
    seen_test = []
    for c in clusters[~np.isin(clusters, unseen)]:
        rows = np.flatnonzero(g == c)
        k = int(round(seen_share * len(rows)))
        seen_test += list(rng.choice(rows, size=k, replace=False))
    is_seen_test = np.zeros(len(g), dtype=bool)
    is_seen_test[seen_test] = True
    return np.flatnonzero(~is_unseen & ~is_seen_test), np.flatnonzero(is_seen_test), np.flatnonzero(is_unseen)


def run_real(task: str, folds, keep=None) -> list[dict]:
    """One fit per fold and model on a real dataset; rows ``<task>_seen`` and ``<task>_unseen``."""
    loader, binary = REAL[task]
    ds = loader()
    X = pd.concat([ds.X, ds.U], axis=1).astype(float)
    y, g = np.asarray(ds.y), np.asarray(ds.groups)
    rows = []
    for fold in folds:
        tr, seen, unseen = _real_split(g, fold)
        for name, model in _models(task, fold, ()).items():
            if keep and name not in keep:
                continue
            t0 = time.perf_counter()
            model.fit(X.iloc[tr], y[tr].astype(int) if binary else y[tr], groups=g[tr])
            fit_s = time.perf_counter() - t0
            for part, te in (("seen", seen), ("unseen", unseen)):
                row = {
                    "task": f"{task}_{part}",
                    "fold": fold,
                    "model": name,
                    "fit_s": fit_s,
                    "ratio": len(te) / len(tr),
                }
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # unseen clusters warn by design
                    if binary:
                        proba = model.predict_proba(X.iloc[te], groups=g[te])[:, 1]
                        row["score"] = float(roc_auc_score(y[te], proba))
                        row["score_acc"] = float(np.mean((proba > 0.5) == (y[te] > 0.5)))
                    else:
                        row["score"] = float(r2_score(y[te], model.predict(X.iloc[te], groups=g[te])))
                if hasattr(model, "epoch_time_"):
                    row["epoch_s"] = float(model.epoch_time_)
                elif hasattr(model, "n_epochs_"):
                    row["epoch_s"] = fit_s / max(int(model.n_epochs_), 1)
                sd = getattr(model, "random_effect_sd_", None)
                if sd is not None and len(sd):
                    row["re_sd"] = float(sd["intercept"]) if "intercept" in sd.index else float(sd.iloc[0])
                rows.append(row)
                print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    return rows


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


def run_task(task: str, n_folds: int, folds, slopes, reps: int = 3, keep=None) -> list[dict]:
    if task == "timing":
        return run_timing(slopes, reps)
    if task in REAL:
        return run_real(task, folds, keep)
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
            if keep and name not in keep:
                continue
            t0 = time.perf_counter()
            model.fit(X.iloc[tr], y[tr], groups=g[tr])
            fit_s = time.perf_counter() - t0
            row = {"task": task, "fold": fold, "model": name, "fit_s": fit_s, "ratio": len(te) / len(tr)}
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
            if task.startswith("spirals") and name != "gpboost":  # input gradients: networks only
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


FAMILIES = {  # overview column -> model names in the rows (the first present is used)
    "MLP": ("mlp",),
    "mixed model": ("mixedlm", "bayesglm"),
    "GPBoost": ("gpboost",),
    "ARMED": ("armed", "armed_nonlinear"),
}
METRIC = {"spirals": "accuracy", "mathach": "R²", "guimmun": "ROC AUC", "exam": "R²"}


def _ratio(d: pd.DataFrame) -> float:
    """Mean n_test / n_train of a task's rows (5-fold CV, 0.25, for rows written before the column)."""
    r = d["ratio"].dropna() if "ratio" in d else pd.Series(dtype=float)
    return float(r.mean()) if len(r) else 0.25


def _long(d: pd.DataFrame, metrics=("score", "fit_s")) -> pd.DataFrame:
    """A task's rows in perslib.evaluation's layout (fold, model, metric, value)."""
    out = d.melt(id_vars=["fold", "model"], value_vars=[m for m in metrics if m in d], var_name="metric")
    return out.dropna(subset=["value"])[["fold", "model", "metric", "value"]]


def overview(df: pd.DataFrame) -> str:
    """One line per task: mean ± s.d. of ``score`` per model family, and the median fit seconds."""
    lines = [
        "| data | metric | MLP | mixed model | GPBoost | ARMED | fit s (MLP / mixed / GPBoost / ARMED, median) |",
        "|---|---|---|---|---|---|---|",
    ]
    for task, d in df[df["task"] != "timing"].groupby("task", sort=False):
        cells, times = [], []
        for names in FAMILIES.values():
            name = next((n for n in names if n in set(d["model"])), None)
            part = d[d["model"] == name] if name else d.iloc[:0]
            cells.append(_fmt(part["score"]))
            times.append(f"{part['fit_s'].median():.1f}" if len(part) else "–")
        metric = METRIC.get(task.split("_")[0], "score")
        lines.append(f"| {task} | {metric} | " + " | ".join(cells) + f" | {' / '.join(times)} |")
    return "\n".join(lines)


def corrected(df: pd.DataFrame, reference: str = "gpboost") -> str:
    """perslib.evaluation's corrected t intervals of every model's score, and the paired
    fold differences of every model from ``reference`` (Nadeau & Bengio's correction)."""
    lines = []
    for task, d in df[df["task"] != "timing"].groupby("task", sort=False):
        ratio = _ratio(d)
        scores = _long(d)
        summ = corrected_summary(scores, ratio, metrics=["score"])
        parts = [
            f"{m} {r['mean']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"
            for (m, _), r in summ.iterrows()
            if r["n_folds"] > 1
        ]
        lines.append(f"* {task} (n_test/n_train {ratio:.2f}), score with 95 % corrected interval: " + "; ".join(parts))
        if reference in set(d["model"]):
            common = d.groupby("model")["fold"].apply(set)
            folds = set.intersection(*common.tolist())
            sub = scores[scores["fold"].isin(folds)]
            if len(folds) < 2:
                continue
            diff = paired_differences(sub, "score", reference, ratio)
            for m, r in diff.iterrows():
                per_fold = [round(float(r[c]), 3) for c in diff.columns if str(c).startswith("fold")]
                lines.append(
                    f"  * {m} − {reference}: {r['mean_diff']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]"
                    f"{' (excludes 0)' if r['excludes_zero'] else ''}, per fold {per_fold}"
                )
    return "\n".join(lines)


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
    ap.add_argument("--models", nargs="*", default=None, help="only these models (default all)")
    ap.add_argument(
        "--merge",
        action="store_true",
        help="replace rows of the same task, fold and model in --out and keep the others",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    folds = args.folds if args.folds else list(range(args.n_folds))
    rows = []
    for task in args.tasks:
        rows += run_task(task, args.n_folds, folds, args.spiral_slopes, args.timing_reps, args.models)
    df = pd.DataFrame(rows)
    if args.merge and args.out.exists():
        old = pd.read_csv(args.out)
        key = ["task", "fold", "model"]
        fresh = set(map(tuple, df[key].to_numpy().tolist()))
        old = old[[tuple(k) not in fresh for k in old[key].to_numpy().tolist()]]
        df = pd.concat([old, df], ignore_index=True)
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
        print()
        print(overview(df))
        print()
        print(corrected(df))


if __name__ == "__main__":
    main()
