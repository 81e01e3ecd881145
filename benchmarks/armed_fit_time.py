#!/usr/bin/env python
"""Fit time of ``ARMEDClassifier()`` at its defaults against GPBoost on small tabular data.

Runnable script, not a test::

    PERSLIB_PROGRESS=0 .venv/bin/python benchmarks/armed_fit_time.py --repeats 3

Tasks (binary outcome, clusters seen in training; 80 % of each cluster's rows train,
the rest are held out)
    spirals200      ``make_spirals(n_clusters=200, n_per_cluster=15, confounded=True)``
                    (3,000 rows, x1, x2 and two probe features) plus one pure-noise
                    feature: 5 features, 200 clusters.
    contraception   ``load_contraception()`` (1,934 rows, 3 features, 60 districts).

For each task both models are fitted ``--repeats`` times, alternately, in this one
process (so on the same load of a shared machine); the table holds the median fit
seconds of each, their ratio, ARMED's epochs to early stopping (main network and
z-predictor), ARMED's seconds per optimizer step of the main training and the held-out
AUROC of each model (seen clusters: one-hot ``z`` for ARMED, the cluster's predicted
random effect for GPBoost). ``--old-defaults`` adds ARMED at its former defaults
(``batch_size=64, lr=1e-3``), fitted in the same loop, and its ratio to GPBoost.

GPBoost: ``GPModel(group_data=g, likelihood="bernoulli_logit")`` boosted by
``gpb.train(num_boost_round=200, learning_rate=0.05, max_depth=3)``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

os.environ.setdefault("PERSLIB_PROGRESS", "0")

from perslib import data  # noqa: E402
from perslib.armed import ARMEDClassifier  # noqa: E402


def load_task(name: str, seed: int = 0):
    """``(X, y, groups)`` of a task: X (n, p) float64, y (n,) 0/1, groups (n,)."""
    if name == "spirals200":
        X, y, g, _ = data.make_spirals(n_clusters=200, n_per_cluster=15, confounded=True, random_state=seed)
        noise = np.random.default_rng(seed + 1).normal(size=(len(X), 1))
        return np.column_stack([X, noise]).astype(np.float64), np.asarray(y), np.asarray(g)
    if name == "contraception":
        ds = data.load_contraception()
        f = ds.frame
        return f[ds.features].to_numpy(np.float64), f[ds.target].to_numpy(), f[ds.group].to_numpy()
    raise ValueError(f"unknown task {name!r}")


def fit_gpboost(X, y, g):
    import gpboost as gpb

    gp_model = gpb.GPModel(group_data=g, likelihood="bernoulli_logit")
    train_set = gpb.Dataset(X, y)
    params = {"learning_rate": 0.05, "max_depth": 3, "verbose": -1}
    booster = gpb.train(params=params, train_set=train_set, gp_model=gp_model, num_boost_round=200)
    return booster


def predict_gpboost(booster, X, g):
    pred = booster.predict(data=X, group_data_pred=g, predict_var=False, pred_latent=False)
    return np.asarray(pred["response_mean"])


OLD_DEFAULTS = {"batch_size": 64, "lr": 1e-3}  # ARMED's defaults before the fit-time work


def run_task(name: str, repeats: int, armed_kwargs: dict, old_defaults: bool = False) -> dict:
    X, y, g = load_task(name)
    tr, te = train_test_split(np.arange(len(X)), test_size=0.2, random_state=0, stratify=g)
    gp_t, ar_t, gp_auc, ar_auc, epochs, z_epochs, step_t = [], [], [], [], [], [], []
    old_t, old_auc = [], []
    for r in range(repeats):
        t0 = time.perf_counter()
        booster = fit_gpboost(X[tr], y[tr], g[tr])
        gp_t.append(time.perf_counter() - t0)
        gp_auc.append(roc_auc_score(y[te], predict_gpboost(booster, X[te], g[te])))

        model = ARMEDClassifier(random_state=r, **armed_kwargs)
        t0 = time.perf_counter()
        model.fit(X[tr], y[tr], groups=g[tr])
        ar_t.append(time.perf_counter() - t0)
        ar_auc.append(roc_auc_score(y[te], model.predict_proba(X[te], groups=g[te])[:, 1]))
        if old_defaults:
            old = ARMEDClassifier(random_state=r, **{**armed_kwargs, **OLD_DEFAULTS})
            t0 = time.perf_counter()
            old.fit(X[tr], y[tr], groups=g[tr])
            old_t.append(time.perf_counter() - t0)
            old_auc.append(roc_auc_score(y[te], old.predict_proba(X[te], groups=g[te])[:, 1]))
        epochs.append(model.n_epochs_)
        z_epochs.append(model.zpredictor_.n_epochs_ if model.zpredictor_ is not None else 0)
        n_steps = int(np.ceil(len(tr) * (1 - model.val_fraction) / model.batch_size_))
        step_t.append(model.epoch_time_ / n_steps)
    gp_s, ar_s = float(np.median(gp_t)), float(np.median(ar_t))
    extra = {}
    if old_defaults:
        old_s = float(np.median(old_t))
        extra = {
            "ARMED old s": round(old_s, 3),
            "old ratio": round(old_s / gp_s, 1),
            "AUROC ARMED old": round(float(np.median(old_auc)), 4),
        }
    return {
        "task": name,
        "rows": len(X),
        "features": X.shape[1],
        "clusters": len(np.unique(g)),
        "GPBoost s": round(gp_s, 3),
        "ARMED s": round(ar_s, 3),
        "ratio": round(ar_s / gp_s, 1),
        "epochs": float(np.median(epochs)),
        "z epochs": float(np.median(z_epochs)),
        "ms/step": round(1e3 * float(np.median(step_t)), 3),
        "AUROC GPBoost": round(float(np.median(gp_auc)), 4),
        "AUROC ARMED": round(float(np.median(ar_auc)), 4),
        **extra,
    }


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["spirals200", "contraception"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--old-defaults",
        action="store_true",
        help="also time ARMEDClassifier(batch_size=64, lr=1e-3), the defaults before this benchmark's changes",
    )
    args = parser.parse_args(argv)
    rows = [run_task(t, args.repeats, {"device": args.device}, args.old_defaults) for t in args.tasks]
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    return table


if __name__ == "__main__":
    main()
