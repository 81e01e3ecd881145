# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python (perslib)
#     language: python
#     name: perslib
# ---

# %% [markdown]
# # 08 · A report on your own clustered data
#
# Patients in hospitals, students in schools, cells in batches: this notebook takes a table
# with a **target**, a **cluster** column and features, and answers the questions the
# tutorials 01–07 taught one at a time:
#
# 1. what the data hold (an audit: rows, clusters, balance, missing values, what was dropped);
# 2. **does the clustering matter?** — the intraclass correlation of a mixed model and the
#    spread of the cluster means;
# 3. **which model, for clusters seen in training and for new ones?** — the conventional MLP,
#    the cluster-input MLP, ARMED and the classical mixed model, cross-validated both ways;
# 4. **what ARMED learned** — each cluster's random effects with intervals, and which
#    features its cluster-blind fixed effects use, against the MLP;
# 5. with cluster or sample **covariates**: what personalized regression says — which
#    covariates personalize the model, how the per-sample models vary, and which groups of
#    samples share a model.
#
# It is a parameterized report: by default it renders MathAchieve (7,185 students in 160
# schools, notebooks 02, 04 and 07), and on your data it runs with
#
# ```bash
# perslib report your_data.csv --target outcome --groups site --covariates age sex --out my_report
# ```
#
# which checks the table first (a wrong column name fails in seconds, with the list of
# columns) and writes `my_report/report.html`. The summary below is written from the
# results; every number in it comes from this run.

# %% tags=["parameters"]
seed = 0  # seeds the subsample, the folds and every model
device = "auto"  # torch device of the networks: "auto" picks a GPU when one is visible
data_path = "dataset:math_achievement"  # a CSV or Parquet file, or "dataset:<name>" (perslib.data)
target = "MathAch"  # the outcome column: a number (regression) or two classes
groups = "School"  # the cluster column
features = None  # feature columns; None: every column but the target, groups and covariates
covariates = ["Size", "Catholic", "PRACAD", "DISCLIM", "HIMINTY", "MEANSES"]  # for personalized regression; [] for none
task = "auto"  # "auto", "classification" or "regression"
n_folds = 3  # folds of both cross-validations (every cluster needs this many rows)
epochs = 100  # most training epochs of each network (early stopping usually ends sooner)
max_rows = None  # a random subsample of about this many rows, the same share of each cluster (None: all)
drop_small_clusters = False  # drop clusters with fewer than n_folds rows (listed) instead of stopping
missing = "drop"  # a missing feature value: "drop" its row (counted) or stop with an "error"
n_jobs = 2  # processes fitting (fold, model) pairs in parallel; results do not depend on it
out_dir = "../build/08_report"  # every file this notebook writes goes here

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import statsmodels.api as sm
from IPython.display import Markdown, display

import perslib
from perslib import analysis, plotting

perslib.set_seed(seed)
plotting.set_style()
out_dir = Path(out_dir)
results = {}  # key numbers, written to out_dir/metrics.json at the end

# %% [markdown]
# ## Summary
#
# The cell below does all the work — each line is one step of the analysis, and the
# sections after the summary show what each step found. `prepare_data` checks the columns'
# roles and stops with a one-line error on anything it cannot use; the networks
# standardize their inputs inside, and text columns are one-hot encoded.

# %%
data = analysis.prepare_data(
    analysis.load_table(data_path),
    target=target,
    groups=groups,
    features=features,
    covariates=covariates,
    task=task,
    n_folds=n_folds,
    max_rows=max_rows,
    drop_small_clusters=drop_small_clusters,
    missing=missing,
    random_state=seed,
    source=data_path if data_path.startswith("dataset:") else Path(data_path).name,
)
clustering = analysis.clustering_matters(data, random_state=seed)
settings = {"epochs": epochs, "device": device, "random_state": seed}
seen = analysis.compare_models(data, "seen", n_jobs=n_jobs, **settings)
unseen = analysis.compare_models(data, "unseen", n_jobs=n_jobs, **settings)
final = analysis.fit_final_models(data, **settings)
personal = analysis.personalize(data, device=device, random_state=seed) if data.covariates else None
display(Markdown(analysis.summarize(data, clustering, seen, unseen, final, personal)))

# %% [markdown]
# ## 1. The data
#
# What was read, what is used, and what was left out and why. Rows are only dropped for a
# missing feature value (`missing="drop"`), a subsample (`max_rows`) or a cluster too small
# for the folds (`drop_small_clusters`); each reason is counted here. A missing target or
# cluster label stops the report instead.

# %% tags=["nbval-check-output"]
print("\n".join(data.audit()))
assert data.n_rows + int(data.dropped_rows["rows"].sum()) == data.n_rows_read, "every row is used or counted as dropped"
assert data.X.notna().all().all() and len(data.X) == len(data.y) == len(data.groups)
results.update(rows=data.n_rows, clusters=data.n_clusters, rows_dropped=data.n_rows_read - data.n_rows)

# %% [markdown]
# Each cluster's size and its target (mean and standard deviation, or the share of the
# positive class); the largest and smallest clusters:

# %%
table = data.cluster_table().sort_values("rows", ascending=False)
display(pd.concat([table.head(5), table.tail(5)]).round(3))
fig = plotting.plot_cluster_sizes(data.cluster_sizes, label=data.group)
plotting.save_figure(fig, out_dir, "cluster_sizes")

# %% [markdown]
# ## 2. Does the clustering matter?
#
# The **intraclass correlation** (ICC) is the share of the target's variance that lies
# between clusters: a linear mixed model $y_{ik} = \beta_0 + b_k + e_{ik}$ (sample $i$ of cluster $k$) with
# $b_k \sim \mathcal N(0, \tau^2)$ and $e_{ik} \sim \mathcal N(0, \sigma^2)$ gives
# $\rho = \tau^2 / (\tau^2 + \sigma^2)$ (`perslib.evaluation.intraclass_correlation`,
# statsmodels `MixedLM`, REML). With the features as fixed effects the same model says how
# much is left between clusters once the features are accounted for. For a binary target the
# model is fitted to the 0/1 indicator (the ICC on the probability scale), and a logistic
# mixed model adds the latent-scale ICC $\tau^2 / (\tau^2 + \pi^2/3)$. A common rule of
# thumb: from about 0.05 on, the clustering is worth modelling.

# %% tags=["nbval-check-output"]
icc = clustering.icc
print(f"ICC {icc.icc:.3f} (between-cluster variance {icc.between_variance:.4g}, within {icc.within_variance:.4g})")
print(f"ICC after the features: {clustering.icc_conditional.icc:.3f}")
if clustering.icc_latent is not None:
    print(f"latent-scale ICC (logistic mixed model): {clustering.icc_latent.icc:.3f}")
print(f"{clustering.test}: statistic {clustering.statistic:.4g}, p {clustering.p_value:.3g}")
print(
    f"s.d. of the cluster means {clustering.sd_of_means:.4g}; from sampling noise alone {clustering.sd_of_means_noise:.4g}"
)
direct = sm.MixedLM(data.y_numeric, np.ones((data.n_rows, 1)), groups=pd.factorize(data.groups)[0]).fit(reml=True)
tau2 = float(np.asarray(direct.cov_re)[0, 0])
direct_icc = tau2 / (tau2 + float(direct.scale))
assert 0.0 <= icc.icc <= 1.0 and 0.0 <= clustering.icc_conditional.icc <= 1.0
assert abs(icc.icc - max(direct_icc, 0.0)) < 1e-6, "the ICC is statsmodels' MixedLM's"
means = clustering.cluster_means
assert ((means["low"] <= means["mean"]) & (means["mean"] <= means["high"])).all()
results.update(icc=icc.icc, icc_conditional=clustering.icc_conditional.icc, sd_of_cluster_means=clustering.sd_of_means)
if clustering.icc_latent is not None:
    results["icc_latent"] = clustering.icc_latent.icc

# %% [markdown]
# **What to look at.** Each point is one cluster's mean target $\bar y_k$ with its 95%
# interval $\bar y_k \pm t_{n-K,\,0.975}\, s_w / \sqrt{n_k}$ ($s_w$: the pooled within-cluster
# s.d., with $n - K$ degrees of freedom for $n$ rows in $K$ clusters; $n_k$: the cluster's
# rows), sorted; the dotted line is the overall mean. If the clusters did
# not differ, about 95% of the intervals would cross that line and the means would spread
# with s.d. $\sqrt{\operatorname{mean}_k s_w^2 / n_k}$ (the "sampling noise alone" printed
# above); clusters far from it are what the mixed models and ARMED give their own intercepts.

# %%
fig = plotting.plot_caterpillar(
    means.reset_index(),
    label=data.group,
    center=float(data.y_numeric.mean()),
    ylabel=f"mean of {data.target}" + (f" = {data.classes[1]}" if data.task == "classification" else ""),
    title="cluster means with 95% intervals",
)
plotting.save_figure(fig, out_dir, "cluster_means")

# %% [markdown]
# ## 3. Which model? Seen clusters and new clusters
#
# Five models, every network with the library's defaults (`analysis.report_models`; GPBoost
# when the `gpboost` package is installed, `pip install "perslib[peers]"`):
#
# | model | what it knows about the cluster |
# |---|---|
# | MLP | nothing: one network for everyone |
# | cluster-input MLP | the one-hot cluster as extra inputs (zeros for a new cluster) |
# | ARMED | a cluster-blind fixed-effects network (kept blind by an adversary) plus random intercept and slopes per cluster; a z-predictor guesses a new cluster's membership (notebooks 04, 07) |
# | mixed model | a linear (or logistic) model with a random intercept per cluster (statsmodels) |
# | GPBoost | boosted trees with a random intercept per cluster, fitted together (zero for a new cluster) |
#
# and ARMED's fixed-effects network alone ($z = 0$), a prediction of the same fitted model.
#
# * **Seen clusters**: `StratifiedKFold` on the cluster (and the class), so every cluster is
#   in every training fold and each test row uses its own cluster's effects — the question
#   "will the model serve the clusters it knows?".
# * **New clusters**: `GroupKFold` holds whole clusters out — "will it serve a cluster it
#   has never seen?". Here no model has the new cluster's effects.
#
# The intervals are the **corrected resampled t intervals** of notebooks 04 and 07
# (`evaluation.corrected_t_interval`, Nadeau and Bengio 2003): over the $J$ folds' scores
# $v$ with standard deviation $s$,
# $\bar v \pm t_{J-1,\,0.975}\sqrt{(1/J + n_\text{test}/n_\text{train})\,s^2}$. The usual
# $\bar v \pm 1.96\, s/\sqrt{J}$ (the ARMED paper's convention) is several times too narrow
# with three folds whose training sets overlap. Even so, the fold-by-fold differences
# between two models (same folds) are more telling than overlapping intervals.

# %% tags=["nbval-check-output"]
for comparison in (seen, unseen):
    print(f"{comparison.title}, {n_folds} folds (mean and 95% corrected t interval over folds):")
    print(comparison.table().round(3).to_string())
    print()
    counts = comparison.scores.groupby(["model", "metric"])["fold"].nunique()
    assert (counts == n_folds).all(), "every model is scored on every fold"
    s = comparison.summary
    assert ((s["low"] <= s["mean"] + 1e-12) & (s["mean"] <= s["high"] + 1e-12)).all(), "intervals contain their means"
    results.update({f"{comparison.setting} {m} {k}": v for (m, k), v in s["mean"].items() if k != "fit_time"})

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.6), layout="constrained", sharey=True)
for ax, comparison in zip(axes, (seen, unseen)):
    plotting.plot_fold_scores(
        comparison.scores,
        comparison.metric,
        ax=ax,
        reference="MLP",
        models=comparison.models,
        title=comparison.title,
        test_train_ratio=comparison.test_train_ratio,
    )
plotting.save_figure(fig, out_dir, "model_comparison")

# %% [markdown]
# **How to read it.** On seen clusters, a model that knows the cluster (ARMED, the
# cluster-input MLP, the mixed model) should beat the MLP by about as much as the ICC
# suggests, and ARMED's fixed effects alone should fall back towards the MLP. On new
# clusters that advantage shrinks or vanishes — notebook 07 explains why — and what is left
# is the quality of the fixed part and of ARMED's guess of the new cluster. The fold-wise
# differences, ARMED against the MLP:

# %%
for comparison in (seen, unseen):
    d, lo, hi = comparison.difference("ARMED", "MLP")
    print(
        f"{comparison.setting:>6}: ARMED - MLP {comparison.metric} {d:+.3f} "
        f"(95% corrected t interval {lo:+.3f} to {hi:+.3f})"
    )
    results[f"{comparison.setting} ARMED minus MLP"] = d

# %% [markdown]
# ## 4. What ARMED learned
#
# ARMED, the MLP and the mixed model are fitted once more, on every row
# (`analysis.fit_final_models`). ARMED's random effects are Gaussian posteriors
# $b_k \sim \mathcal N(\mu_k, s_k^2)$, one per cluster $k$ and effect, with the interval
# $\mu_k \pm 1.96\, s_k$, the 2.5 % and 97.5 % points of that normal posterior
# (`analysis.random_effect_intervals`: for the regressor after its
# closed-form mixed-model refit, the exact conditional posterior given the learned
# features). The caterpillar plot shows each cluster's random intercept with its 95%
# interval (in units of the target for regression, on the logit scale for classes), and
# the mixed model's intercept of the same cluster as a diamond. Wide intervals belong to
# small clusters: their effect is shrunk towards 0 and uncertain.

# %%
eff = final.effects
intercepts = eff[eff["effect"] == "intercept"]
assert len(intercepts) == data.n_clusters, "one random intercept per cluster"
assert ((eff["low"] <= eff["mean"]) & (eff["mean"] <= eff["high"])).all() and (eff["sd"] > 0).all()
blups = final.mixed_effects.groupby("cluster", sort=False)["mean"].first()
fig = plotting.plot_caterpillar(
    intercepts,
    reference={final.mixed_name: blups},
    ylabel="ARMED random intercept",
    label="cluster",
    title="ARMED's random intercepts with 95% posterior intervals",
)
plotting.save_figure(fig, out_dir, "random_intercepts")
print(f"correlation with the mixed model's intercepts: {final.intercept_agreement:.2f}")
results.update(
    armed_intercept_sd=float(final.spread.get("intercept", np.nan)), intercept_agreement=final.intercept_agreement
)

# %% [markdown]
# **Which effects vary between clusters?** ARMED learns the spread τ of each random effect
# (its prior scale, the analogue of a mixed model's variance component): the intercept and
# one slope per standardized feature. A slope with a large τ is a feature whose effect
# differs from cluster to cluster; one near zero has the same effect everywhere.

# %%
display(final.spread.rename("learned spread τ").to_frame().head(15).round(4))

# %% [markdown]
# **Which features do the fixed effects use?** The mean absolute gradient of the
# fixed-effects prediction with respect to each standardized input
# (`perslib.armed.feature_importance`; for ARMED with the random effects off), as a share
# of each model's total. A feature that the MLP uses much more than ARMED's fixed effects is
# one that carries information about the cluster: the adversary keeps ARMED's fixed part
# from using it as a shortcut, and its cluster-specific part goes to the random effects
# (notebook 04's probes).

# %%
imp = final.importance
assert np.isclose(imp["share ARMED"].sum(), 1.0) and np.isclose(imp["share MLP"].sum(), 1.0)
display(imp.sort_values("share ARMED", ascending=False).head(15).round(3))
fig = plotting.plot_importance(
    imp[["share ARMED", "share MLP"]].set_axis(["ARMED (fixed effects)", "MLP"], axis=1),
    title="feature importance (share of each model's total)",
)
plotting.save_figure(fig, out_dir, "feature_importance")
results.update({f"importance share ARMED {c}": v for c, v in imp["share ARMED"].items()})
results.update({f"importance share MLP {c}": v for c, v in imp["share MLP"].items()})

# %% [markdown]
# ## 5. Personalized regression
#
# With `covariates`, personalized regression (notebooks 02 and 03) fits one linear (or
# logistic) model per sample, $\theta_i = \theta_{\text{pop}} + Q^\top z_i$ at a rank chosen
# by held-out loss, and makes two samples' models alike when their covariates are close
# under a learned metric. Its covariate metric says **which covariates personalize the
# model**; its per-sample coefficients show **how much the models vary**, and k-means on
# them (k by silhouette) finds **groups of samples that share a model**. Coefficients are
# shown per standard deviation of their feature, so that they are comparable.

# %%
if personal is None:
    print("no covariates given: personalized regression is skipped (pass covariates=[...] / --covariates)")
else:
    assert np.isclose(personal.weights.sum(), 1.0) and (personal.weights >= 0).all()
    assert personal.coefficients.shape == (data.n_rows, data.X.shape[1] + 1)
    assert len(personal.labels) == data.n_rows and -1.0 <= personal.silhouette <= 1.0
    print(f"rank {personal.model.rank_}; covariate metric shares:")
    print(personal.weights.round(3).to_string())
    print(
        f"held-out {'R²' if data.task == 'regression' else 'accuracy'} on {personal.n_heldout} samples: "
        f"personalized {personal.heldout_score:.3f}, population model {personal.population_score:.3f}"
    )
    results.update(pr_heldout_score=personal.heldout_score, pr_population_score=personal.population_score)
    results.update({f"pr weight {c}": v for c, v in personal.weights.items()})

# %%
if personal is not None:
    fig, axes = plt.subplots(1, 2, figsize=(12, max(3.4, 0.4 * data.X.shape[1] + 1.5)), layout="constrained")
    personal.weights[::-1].plot.barh(ax=axes[0], color=plotting.categorical_colors(1)[0])
    axes[0].set(xlabel="share of the covariate metric", title="which covariates personalize the model")
    scaled = personal.coefficients * pd.Series([*data.X.std(ddof=0), 1.0], index=personal.coefficients.columns)
    plotting.plot_coefficient_spread(  # the intercept, on the target's scale, is in the table below
        scaled.drop(columns="intercept"), personal.spread["population"], ax=axes[1], title="per-sample coefficients"
    )
    plotting.save_figure(fig, out_dir, "personalized_regression")
    display(personal.spread.round(3))

# %% [markdown]
# **Groups of samples by their models.** Each row is one group found by k-means on the
# standardized per-sample coefficients: its size and its mean coefficients in standard
# deviations from the average model. The adjusted Rand index compares the groups with the
# data's clusters: near 0, the models vary *within* clusters (the covariates, not the
# cluster, decide); near 1, each cluster has its own model.

# %%
if personal is not None:
    display(personal.profiles.round(2))
    print(f"silhouette {personal.silhouette:.2f}; adjusted Rand index with the clusters {personal.agreement:.2f}")
    centered = (scaled - scaled.mean()).to_numpy()
    xy = centered @ np.linalg.svd(centered, full_matrices=False)[2][:2].T  # the first two principal components
    fig = plotting.plot_parameter_space(
        xy, personal.labels, param_names=["PC 1", "PC 2"], label_name="group", title="per-sample models (PCA)"
    )
    plotting.save_figure(fig, out_dir, "model_groups")
    results.update(pr_groups=personal.profiles.shape[0], pr_agreement=personal.agreement)

# %% [markdown]
# ## Exercises
#
# 1. Run this notebook on your own table (`data_path`, `target`, `groups`), then on the
#    same table with one feature removed that you suspect identifies the cluster: which
#    model's seen-cluster score drops most?
# 2. Compare the corrected intervals with `evaluation.mean_ci` on the same fold scores:
#    how many times wider are they with three folds, and with ten?
# 3. Pick the cluster with the widest random-intercept interval in the caterpillar plot:
#    how many rows does it have, and how far is its ARMED intercept from the mixed model's?

# %% [markdown]
# ## 6. Files
#
# Everything above is also written to `out_dir`: the figures, the cross-validation scores,
# the random effects, the audit, `metrics.json`, and the fitted ARMED and personalized
# models. A saved model predicts new samples:
#
# ```python
# armed = perslib.load("files/armed_model.pt")
# armed.predict(new_X, groups=new_clusters)  # new clusters get the z-predictor's memberships
# ```
#
# where `new_X` has the encoded feature columns of `files/features.json`.

# %%
out_dir.mkdir(parents=True, exist_ok=True)
seen.scores.to_csv(out_dir / "scores_seen_clusters.csv", index=False)
unseen.scores.to_csv(out_dir / "scores_new_clusters.csv", index=False)
final.effects.to_csv(out_dir / "armed_random_effects.csv", index=False)
clustering.cluster_means.to_csv(out_dir / "cluster_means.csv")
(out_dir / "audit.txt").write_text("\n".join(data.audit()) + "\n")
(out_dir / "features.json").write_text(
    json.dumps({"columns": list(data.X.columns), "encoding": data.encoding}, indent=2)
)
final.armed.save(out_dir / "armed_model.pt")
if personal is not None:
    personal.model.save(out_dir / "personalized_model.pt")
with open(out_dir / "metrics.json", "w") as fh:
    json.dump({k: float(v) for k, v in results.items()}, fh, indent=2, sort_keys=True)
print(f"wrote {len(results)} metrics and {len(list(out_dir.iterdir()))} files")
