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
# # 01 · Why one model per sample, and why clusters matter
#
# Most machine learning fits **one** model to a whole population and hopes that a big
# enough model can absorb every difference between samples. This notebook shows, on
# three simulations whose ground truth we know, what that single population model gets
# wrong when the data come from *different processes* or from *different clusters*
# (sites, patients, batches):
#
# 1. **Personalized regression data** — every sample has its own coefficient vector
#    θᵢ. A pooled regression recovers only the average θ, and even an oracle that knows
#    the latent groups misses the variation inside each group.
# 2. **ARMED's clustered spirals** — the same classification problem, distorted
#    differently in each cluster. A pooled neural network serves some clusters well and
#    others badly, and it happily learns cluster-level *confounders*.
# 3. **Images from several sites** — each site's scanner leaves a fingerprint; a simple
#    classifier can tell the site from the image alone.
#
# The two method families that the rest of the series builds are the answers:
# *personalized regression* (Lengerich, Aragam & Xing, ISMB 2018 and NeurIPS 2019) and
# *ARMED mixed-effects deep learning* (Nguyen, Treacher & Montillo, IEEE TPAMI 2023).
# Nothing here is trained with those methods yet; this notebook builds the motivation
# and the yardsticks (parameter error, per-cluster scores) that later notebooks reuse.
#
# **Notation used throughout the series.**
#
# | symbol | meaning | where |
# |---|---|---|
# | $i$, $n$ | a sample, the number of samples | everywhere |
# | $x_i$ ($p$ entries), $y_i$ | a sample's predictors (features) and response | everywhere |
# | $u_i$, $c$ | a sample's **covariates** (say *whose* model it is, not predictors); $c$ indexes them | 01–03, 07 |
# | $\theta_i$, $\theta_\text{pop}$ | a sample's own parameters; the population model | 01–03, 07 |
# | $q$, $Q$, $a_i$ | rank, dictionary of $q$ basis models, a sample's **latent code** (its weights on the atoms): $\theta_i = \theta_\text{pop} + Q^\top a_i$ | 02, 03, 07 |
# | $m$, $N(i)$ | number of partners per sample, the partners of sample $i$ | 02, 03 |
# | φ = s·π | learned covariate metric: scale $s$ times shares π | 02, 03, 07 |
# | $k$, $K$ | a **cluster** (site, school, patient) and the number of clusters | 01, 04–07 |
# | $z$ (ARMED) | a sample's **cluster vector**: one-hot over the $K$ training clusters, or the z-predictor's memberships $\hat z$ for a new cluster (the `z=` argument) | 04–07 |
# | β, $f(x)$ | fixed effects; ARMED's fixed-effects (FE) network | 01, 04–07 |
# | $b_k$, τ | **random effects** of cluster $k$ ($b_\text{int}$ intercept, $b_\text{lin}$ / $b_\text{nlin}$ slopes) and their prior s.d. | 01, 04–07 |
# | $h_F(x)$, $A$ | the FE network's last hidden layer; the adversary | 04–07 |
# | $J$ | number of cross-validation folds | 04, 07 |
#
# Each letter has one meaning in the whole series. Two clashes of the source papers are
# resolved here: the low-rank paper writes the latent code $z_i$ and ARMED writes the
# cluster vector $z$; the series keeps $z$ for ARMED (it is the library's `z=` argument)
# and writes the latent code $a_i$ (the library's `embeddings_`). Random effects are $b$
# (the papers use $u$), because $u$ is the covariates here.

# %% tags=["parameters"]
seed = 0  # seeds every simulator, data split and network initialisation
device = "auto"  # torch device for the MLPs: "auto" picks a GPU when one is visible
n_samples = 2000  # samples in the personalized-regression simulation
n_features = 5  # predictors x per sample, i.e. the length of each coefficient vector theta_i
n_covariates = 3  # covariates u: position, process and one irrelevant column
n_clusters = 10  # spiral clusters (ARMED uses 10)
n_per_cluster = 1000  # points per spiral cluster (ARMED uses 1000)
epochs = 30  # training epochs of the pooled MLPs (early stopping may end sooner)
n_sites = 6  # imaging sites
n_per_site = None  # images per site; None uses all 1,797 bundled digits
out_dir = "../build/01_simulation"  # every file this notebook writes goes here

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import perslib
from perslib import data, evaluation, plotting
from perslib.mlp import MLPClassifier

perslib.set_seed(seed)
plotting.set_style()
out_dir = Path(out_dir)
results = {}  # key numbers, written to out_dir/metrics.json at the end

# %% [markdown]
# ## 1. Two reasons a single model is not enough
#
# **Heterogeneous processes.** A population model assumes that one parameter vector
# describes everyone, $y_i = x_i^\top\theta + \varepsilon_i$. When the process that
# generated sample $i$ differs from sample to sample (tumours of different types,
# patients on different trajectories, markets in different regimes), the honest model is
#
# $$y_i = x_i^\top \theta_i + \varepsilon_i, \qquad i = 1,\dots,n,$$
#
# with **one parameter vector per sample**. That sounds hopeless — $n \times p$
# parameters from $n$ observations — but if it can be done, it buys a lot
# (Lengerich et al., 2019):
#
# * *sample embeddings*: θᵢ describes the process behind sample $i$, not just its data;
# * *data-driven clustering*: the θᵢ cluster by themselves into as many groups as there
#   are distinct processes;
# * *interpretability at any granularity*: each θᵢ is a simple linear model, and we can
#   zoom from the individual to a subgroup to the population by averaging θᵢ.
#
# The trick that makes estimation possible is to *share statistical strength*: samples
# whose covariates $u_i$ are similar should get similar θᵢ (notebooks 02 and 03).
#
# **Clustered samples.** Data from sites, subjects or batches violate the independence
# assumption behind ordinary training. Each cluster $k$ shifts the relationship a little,
# as in the mixed-effects model of statistics,
#
# $$y_{ik} = f(x_{ik};\beta) + g(x_{ik}; b_k) + \varepsilon_{ik}, \qquad b_k \sim \mathcal N(0, \Sigma),$$
#
# with *fixed effects* β shared by all clusters and *random effects* $b_k$ specific to
# cluster $k$. Ignoring the clusters gives a model that fits the typical cluster, serves
# atypical clusters poorly, and may learn spurious, cluster-level associations
# (confounding). ARMED (Nguyen et al., 2023) adds random-effects subnetworks and an
# adversary that keeps the fixed-effects network cluster-invariant (notebooks 04 onwards).

# %% [markdown]
# ## 2. Personalized regression: coefficients that live on curves
#
# `perslib.data.make_personalized_regression` draws each sample from one of three latent
# *processes* and gives it a position $t_i \in [0, 1]$ along that process's arc. Its
# coefficients θᵢ are a smooth, non-linear function of the process and the position —
# the setting of Figure 1 in Lengerich et al. (NeurIPS 2019). The features are
# $x_i \sim \mathcal N(0, I_p)$ and $y_i = x_i^\top\theta_i + \varepsilon_i$.
#
# We observe covariates $U$: `u_position` (the position $t_i$), `u_process` (the process
# number plus a little jitter, so rounding it recovers the process) and `u_irrelevant_0`,
# pure noise. The covariates are
# **not** predictors; they only tell us which samples should have similar θ.

# %%
X, y, U, theta, process = data.make_personalized_regression(
    n_samples=n_samples, n_features=n_features, n_covariates=n_covariates, random_state=seed
)
param_names = [f"θ{j}" for j in range(theta.shape[1])]
print(f"X {X.shape}, y {y.shape}, U {U.shape}, true θ {theta.shape}, processes {np.bincount(process)}")
U.head()

# %% [markdown]
# **What to look at.** Each panel plots one coefficient (columns) against one covariate
# (rows), coloured by the true process. Along `u_process` the samples fall into three
# separate blocks: the process decides where θ lives (most clearly in θ0 and θ1). Along
# `u_position` each process traces its own curve — the *same* covariate moves θ in
# different directions for different processes. Along `u_irrelevant_0` nothing trends:
# that covariate shapes nothing.

# %%
fig = plotting.plot_parameters_vs_covariate(theta, U, labels=process, param_names=param_names)
plotting.save_figure(fig, out_dir, "theta_vs_covariates")
# %% [markdown]
# We can put numbers on the picture with the correlation ratio η²: cut a covariate into
# quantile bins and ask what share of the variance of θ the bin means explain
# (`evaluation.binned_explained_variance`; 12 bins, four per process). Alone, `u_position`
# explains almost nothing — averaged over the processes its effects cancel — yet
# *together with the process* it explains practically all of θ. The irrelevant covariate
# adds nothing to the process. Relationships like this, where a covariate matters only in
# interaction with others, are exactly what a personalized model must discover.

# %% tags=["nbval-check-output"]
share_process = evaluation.binned_explained_variance(theta, process)["all"].iloc[0]
alone = evaluation.binned_explained_variance(theta, U, n_bins=12)["all"]
with_process = evaluation.binned_explained_variance(theta, U, n_bins=12, by=process)["all"]
eta2 = pd.DataFrame({"alone": alone, "together with process": with_process}).round(2)
print(f"share of var(θ) explained by the process labels: {share_process:.2f}")
print(eta2.to_string())
assert share_process > 0.6 and alone["u_position"] < 0.06 and with_process["u_position"] > 0.95
assert alone["u_irrelevant_0"] < 0.06 and with_process["u_irrelevant_0"] - share_process < 0.05
results["eta2"] = {"process": share_process, **{f"{k} alone": v for k, v in alone.items()}}

# %% [markdown]
# ### A pooled regression recovers only the average θ
#
# Ordinary least squares on all samples estimates one θ̂ for everyone. We score any
# estimate by its **parameter error**, the mean over samples and coordinates of the
# squared distance to the truth,
#
# $$\mathrm{MSE}(\hat\theta) = \frac{1}{np}\sum_{i=1}^n \lVert \hat\theta_i - \theta_i\rVert^2 .$$
#
# For a single shared θ̂ this error can never be smaller than the average variance of
# the true θᵢ (the error of their mean), so that variance is the yardstick. As a second
# reference, an **oracle** that is told each sample's process fits one regression per
# process: the best that *cluster-level* models can do.

# %%
theta_pooled = LinearRegression(fit_intercept=False).fit(X, y).coef_
theta_oracle = np.zeros_like(theta)
oracle_coefs = []
for k in np.unique(process):
    in_k = process == k
    oracle_coefs.append(LinearRegression(fit_intercept=False).fit(X[in_k], y[in_k]).coef_)
    theta_oracle[in_k] = oracle_coefs[-1]
var_theta = evaluation.parameter_mse(theta.mean(axis=0), theta)  # = mean variance of θ
err_pooled = evaluation.parameter_mse(theta_pooled, theta)
err_oracle = evaluation.parameter_mse(theta_oracle, theta)
results.update(var_theta=var_theta, err_pooled=err_pooled, err_oracle=err_oracle)

# %% tags=["nbval-check-output"]
print(f"variance of the true θ (error of their mean):  {var_theta:.2f}")
print(f"pooled OLS parameter error:                   {err_pooled:.2f}  ({err_pooled / var_theta:.0%} of the variance)")
print(f"one OLS per true process (oracle):            {err_oracle:.2f}  ({err_oracle / var_theta:.0%} of the variance)")
gap_to_mean = evaluation.parameter_mse(theta_pooled, theta.mean(axis=0)[None, :])
print(f"squared distance of the pooled θ̂ from the average true θ: {gap_to_mean:.3f}")
assert gap_to_mean < 0.05 * var_theta, "the pooled fit should recover the average θ"
assert err_pooled < 1.05 * var_theta, "so its error should be (almost) the whole variance of θ"
assert 0.1 < err_oracle / var_theta < 0.5, "the oracle should remove most, but not all, of the error"

# %% [markdown]
# The pooled fit recovers the average θ and is no better than guessing it: its error is
# the whole variance of θ. Knowing the processes removes most of the error, but a part
# remains (the oracle's share printed above, asserted between 10% and 50%), and it is
# spread over every process alike (table below): that is the
# **within-process** variation along each arc, which no cluster-level model can capture.

# %% tags=["nbval-check-output"]
per_process = (
    pd.DataFrame(
        {
            "process": process,
            "pooled": evaluation.parameter_mse(theta_pooled, theta, per_sample=True),
            "oracle per process": evaluation.parameter_mse(theta_oracle, theta, per_sample=True),
        }
    )
    .groupby("process")
    .mean()
    .round(2)
)
print(per_process.to_string())

# %% [markdown]
# **The parameter-space picture** (compare Figure 1 of Lengerich et al., 2019). Each dot
# is one sample's true (θ0, θ1); the three arcs are the three processes. The pooled
# estimate (star) sits in the middle, far from every sample. The oracle's three per-process
# estimates (crosses) sit inside each arc but cannot follow it. Personalized regression
# (notebook 02) estimates one point per sample and aims to trace the arcs themselves.

# %%
fig = plotting.plot_parameter_space(
    theta,
    process,
    param_names=param_names,
    estimates={"pooled OLS": theta_pooled, "one OLS per process (oracle)": np.array(oracle_coefs)},
)
plotting.save_figure(fig, out_dir, "parameter_space")
# %% [markdown]
# ## 3. Clustered spirals: one network, many clusters
#
# ARMED's dense-network simulation (Nguyen et al., 2023, after `spirals.py` in their
# code) builds two interleaved spirals — class 0 and class 1 — in every cluster. Cluster
# $k$ draws its own radius $r_k \sim \mathcal N(1, 0.3^2)$, a *random effect*: a point at
# angle $a$ of class $c$ sits at
#
# $$\big(-\cos(a - c\pi),\ \sin(a - c\pi)\big)\, \frac{a\, r_k}{\max a} + \text{noise}.$$
#
# The class boundary has the same shape everywhere, but its scale differs by cluster.
# Each panel below is one cluster; look at how far out the spirals reach.

# %%
Xs, ys, gs, effects = data.make_spirals(n_clusters=n_clusters, n_per_cluster=n_per_cluster, random_state=seed)
titles = {k: f"cluster {k}: r = {r:.2f}" for k, r in effects["radius"].items()}
fig = plotting.plot_clusters_2d(Xs, ys, gs, n_cols=5, titles=titles)
plotting.save_figure(fig, out_dir, "spiral_clusters")
# %% [markdown]
# We train a conventional MLP on all clusters together (it ignores the cluster labels:
# the "pooled" model every later notebook compares against). The train/test split is
# stratified by label × cluster, so every cluster appears in both parts with its own
# class balance. Then we
# score the test predictions **per cluster** with `evaluation.per_group_score`.

# %%
strata = 2 * gs + ys  # label × cluster
Xtr, Xte, ytr, yte, gtr, gte = train_test_split(Xs, ys, gs, test_size=0.25, stratify=strata, random_state=seed)
mlp = MLPClassifier(hidden=(32, 32), epochs=epochs, device=device, random_state=seed)
mlp.fit(Xtr, ytr, groups=gtr)  # groups are accepted and ignored: a pooled model
pred = mlp.predict(Xte)
acc_pooled = float(np.mean(pred == yte))
by_cluster = evaluation.per_group_score(yte, pred, gte, metric="accuracy").join(effects, on="group")
by_cluster["radius_deviation"] = (by_cluster["radius"] - by_cluster["radius"].mean()).abs()
r_dev = float(np.corrcoef(by_cluster["radius_deviation"], by_cluster["score"])[0, 1])
results.update(
    spiral_acc=acc_pooled,
    spiral_acc_min=by_cluster["score"].min(),
    spiral_acc_max=by_cluster["score"].max(),
    spiral_corr_radius_dev=r_dev,
)

# %% tags=["nbval-check-output"]
print(f"pooled MLP test accuracy: {acc_pooled:.2f}")
print(
    f"per-cluster accuracy: min {by_cluster['score'].min():.2f}, max {by_cluster['score'].max():.2f}, "
    f"sd {by_cluster['score'].std():.2f}"
)
print(f"correlation of cluster accuracy with |r_k - mean r|: {r_dev:.2f}")
assert by_cluster["score"].max() - by_cluster["score"].min() > 0.1, "clusters should be served unequally"
assert r_dev < -0.3, "clusters with atypical radius should be served worse"

# %% [markdown]
# **What to look at.** Left: accuracy per cluster against the pooled accuracy (dashed).
# The single average hides a wide spread. Right: the same accuracies against how far each
# cluster's radius lies from the average radius. The MLP has learned one boundary that
# suits the *typical* spiral; the further a cluster's spiral is from typical, the worse it
# is served. Cluster-specific random effects — ARMED's random-effects subnetwork adds
# per-cluster slopes and an intercept to the network's output — let each cluster bend the
# shared boundary towards its own spiral while the shape is still learned from everyone.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
plotting.plot_group_scores(
    by_cluster,
    "group",
    "score",
    reference={"pooled test accuracy": acc_pooled},
    ax=axes[0],
    score_label="test accuracy",
    group_label="cluster",
)
plotting.plot_scatter(
    by_cluster["radius_deviation"],
    by_cluster["score"],
    annotate=by_cluster["group"].tolist(),
    xlabel="|radius − mean radius|",
    ylabel="test accuracy",
    ax=axes[1],
)
plotting.save_figure(fig, out_dir, "spiral_accuracy_by_cluster")
# %% [markdown]
# ### Confounded clusters: the network also learns *which cluster*
#
# In ARMED's confounded variant each cluster also has its own class balance: the share of
# class 0 is $\rho_k \sim \mathcal N(0.5, 0.2^2)$ (clipped to [0.1, 0.9]), and every sample
# carries two **probe** features drawn around $\rho_k$. The probes say nothing about where
# a point lies on the spiral; they only identify the cluster and, through it, its class
# balance — like a site's scanner signature that happens to go with its patient mix.
# The left plot below confirms that the cluster mean of the probes tracks the class
# balance.

# %%
Xc, yc, gc, effects_c = data.make_spirals(
    n_clusters=n_clusters, n_per_cluster=n_per_cluster, confounded=True, random_state=seed
)
probe_cols = [2, 3]
probe_mean = pd.Series(Xc[:, probe_cols].mean(axis=1)).groupby(gc).mean()
Xtr_c, Xte_c, ytr_c, yte_c, gtr_c, gte_c = train_test_split(
    Xc, yc, gc, test_size=0.25, stratify=2 * gc + yc, random_state=seed
)
mlp_c = MLPClassifier(hidden=(32, 32), epochs=epochs, device=device, random_state=seed).fit(Xtr_c, ytr_c)
acc_c = float(np.mean(mlp_c.predict(Xte_c) == yte_c))
drop, _ = evaluation.permutation_score_drop(mlp_c.predict, Xte_c, yte_c, probe_cols, n_repeats=5, random_state=seed)

# %% [markdown]
# Does the pooled MLP use the probes? Two tests. **Permutation**: shuffle both probe
# columns together across the test set and measure the accuracy lost. **Counterfactual**:
# keep every test point's position on the spiral and only swap its probes — once for the
# probe values of the most class-1-heavy training cluster, once for those of the most
# class-0-heavy one — and compare the predictions. Nothing about the spiral changes, yet
# the predicted probability of class 1 moves and some predictions flip. The right plot
# shows the change for every test point (log scale): points that sit clearly on a spiral
# arm barely move (the spike at zero), while for the ambiguous points the probes of the
# class-1-heavy cluster mostly push the prediction towards class 1.

# %%
k_lo, k_hi = effects_c["class0_ratio"].idxmin(), effects_c["class0_ratio"].idxmax()
as_lo, as_hi = Xte_c.copy(), Xte_c.copy()
as_lo[:, probe_cols] = Xtr_c[gtr_c == k_lo][:, probe_cols].mean(axis=0)
as_hi[:, probe_cols] = Xtr_c[gtr_c == k_hi][:, probe_cols].mean(axis=0)
p1_lo, p1_hi = mlp_c.predict_proba(as_lo)[:, 1].mean(), mlp_c.predict_proba(as_hi)[:, 1].mean()
flipped = float(np.mean(mlp_c.predict(as_lo) != mlp_c.predict(as_hi)))
r_probe = float(np.corrcoef(probe_mean, effects_c["class0_ratio"])[0, 1])
results.update(
    confounded_acc=acc_c,
    probe_permutation_drop=drop,
    probe_shift_p1=p1_lo - p1_hi,
    probe_flipped=flipped,
    corr_probe_ratio=r_probe,
)

# %% tags=["nbval-check-output"]
print(f"correlation of cluster probe mean with class-0 share: {r_probe:.2f}")
print(f"pooled MLP on spirals + probes, test accuracy: {acc_c:.2f}")
print(f"accuracy lost when the probes are shuffled: {drop:.2f}")
for k, p1 in ((k_lo, p1_lo), (k_hi, p1_hi)):
    print(f"mean P(class 1) with probes of cluster {k} (class-0 share {effects_c['class0_ratio'][k]:.2f}): {p1:.2f}")
print(f"predictions flipped by the probes alone: {flipped:.0%}")
assert drop > 0, "shuffling the probes should cost the pooled MLP accuracy"
assert p1_lo - p1_hi > 0.03 and flipped > 0.03, "the pooled MLP should lean on the probes"

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
plotting.plot_scatter(
    effects_c["class0_ratio"],
    probe_mean,
    annotate=list(effects_c.index),
    xlabel="class-0 share of the cluster (ρ_k)",
    ylabel="cluster mean of the probes",
    ax=axes[0],
)
change = mlp_c.predict_proba(as_lo)[:, 1] - mlp_c.predict_proba(as_hi)[:, 1]
axes[1].hist(change, bins=40, color=plotting.categorical_colors(1)[0])
axes[1].axvline(0.0, color="0.3", ls=":", lw=1)
axes[1].set(
    xlabel=f"P(class 1 | probes of cluster {k_lo}) − P(class 1 | probes of cluster {k_hi})",
    ylabel="test points",
    yscale="log",
)
plotting.save_figure(fig, out_dir, "spiral_probes")
# %% [markdown]
# The probes *are* predictive here — they carry each cluster's class balance — so using
# them is not a bug of the optimiser. The trouble is what it means. The model's
# explanation now mixes "which cluster is this?" with "which class is this point?"; its
# feature importances credit features that say nothing about the point itself; and in a
# cluster where the probe-to-balance link is different (a new site, a changed patient
# mix) the shortcut misleads it. ARMED's adversary penalises the fixed-effects network for
# carrying cluster information, and routes what is genuinely cluster-specific into the
# random effects instead (notebook 04).

# %% [markdown]
# ## 4. Images from several sites: batch effects are visible — and learnable
#
# `perslib.data.make_cluster_images` splits scikit-learn's bundled 8×8 handwritten digits
# (upsampled to 16×16) into sites and gives each site its own scanner: gain and offset of
# the intensities, blur or sharpening, a small shift, and noise. The task later in the
# series is digit ≥ 5 versus < 5. Each row below is one site; all images share one grey
# scale, so differences in brightness and contrast are real.

# %%
images, y_img, sites, site_effects = data.make_cluster_images(n_sites=n_sites, n_per_site=n_per_site, random_state=seed)
# the same digits and sites without any batch effect: the control
clean, _, _, _ = data.make_cluster_images(
    n_sites=n_sites, n_per_site=n_per_site, effect_strength=0.0, random_state=seed
)
fig = plotting.plot_image_grid(images, sites, n_per_row=10, title_fmt="site {}", sample_labels=y_img)
plotting.save_figure(fig, out_dir, "site_images")
# %% [markdown]
# The number in each image's corner is its label (1 = digit ≥ 5). The simulator returns
# the effects it applied to each site: multiplicative `gain`, additive `offset`, `blur`
# (positive: Gaussian blur; negative: sharpening), the shift in pixels and the noise level.

# %%
site_effects.round(2)

# %% [markdown]
# **Mean brightness by site.** Without batch effects every site has the same mean pixel
# value (the digits were split at random). With them, each site's mean is close to what
# its gain and offset predict, gain × (clean mean) + offset — clipping to [0, 1] and the
# noise account for the rest.

# %%
bright = (
    pd.DataFrame({"site": sites, "observed": images.mean(axis=(1, 2, 3)), "clean": clean.mean(axis=(1, 2, 3))})
    .groupby("site")
    .mean()
)
bright["predicted"] = site_effects["gain"] * bright["clean"] + site_effects["offset"]
r_bright = float(np.corrcoef(bright["predicted"], bright["observed"])[0, 1])
fig = plotting.plot_scatter(
    bright["predicted"],
    bright["observed"],
    annotate=list(bright.index),
    fit_line=False,
    identity=True,
    xlabel="gain × clean mean + offset",
    ylabel="observed mean brightness",
)
plotting.save_figure(fig, out_dir, "site_brightness")

# %% [markdown]
# **The site is written into every image.** A plain logistic regression on the raw
# pixels predicts which site an image came from. On the clean control it can only guess
# (chance is 1 / number of sites); with batch effects it is nearly always right. Any
# network trained on such images can pick up the site as a shortcut — exactly the
# cluster information that ARMED's adversary is built to remove from the fixed-effects
# network (the image notebooks later in the series).


# %%
def site_accuracy(imgs):
    """Held-out accuracy of a logistic regression predicting the site from the pixels."""
    flat = imgs.reshape(len(imgs), -1)
    Ftr, Fte, s_tr, s_te = train_test_split(flat, sites, test_size=0.3, stratify=sites, random_state=seed)
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000))
    return clf.fit(Ftr, s_tr).score(Fte, s_te)


acc_site, acc_site_clean, chance = site_accuracy(images), site_accuracy(clean), 1 / n_sites
results.update(site_acc=acc_site, site_acc_clean=acc_site_clean, site_chance=chance, corr_brightness=r_bright)

# %% tags=["nbval-check-output"]
print(f"correlation of observed with predicted site brightness: {r_bright:.2f}")
print(f"site predicted from pixels, with batch effects: {acc_site:.2f}")
print(f"site predicted from pixels, clean control:      {acc_site_clean:.2f}  (chance {chance:.2f})")
assert r_bright > 0.9
assert acc_site > 0.8 and acc_site - acc_site_clean > 0.4, "batch effects make the site predictable"
assert abs(acc_site_clean - chance) < 0.15, "without batch effects the site should be unpredictable"

# %% [markdown]
# ## 5. Summary
#
# What a single population model gets wrong:
#
# * **It averages processes away.** With per-sample coefficients, pooled OLS recovers
#   only the mean θ: its parameter error equals the full variance of θ. Even one model per
#   known process leaves the within-process variation — about a quarter of it here.
# * **It serves the typical cluster.** One MLP for all spiral clusters is accurate on
#   clusters near the average and much worse on atypical ones; the overall accuracy hides
#   the spread.
# * **It learns the cluster as a shortcut.** Cluster-level probes that carry the class
#   balance change its predictions although they say nothing about the geometry, and site
#   fingerprints in images are easy to read off the pixels.
#
# Where the series goes next: **02** fits personalized regression (one θᵢ per sample,
# tied together by distance matching on the covariates); **03** makes it low-rank with a
# dictionary of basis models, $\theta_i = \theta_\text{pop} + Q^\top a_i$; **04** builds ARMED for dense
# networks (adversary + random effects) on these spirals; **07** predicts for clusters
# never seen in training. The yardsticks from this notebook — `evaluation.parameter_mse`,
# `evaluation.per_group_score` and the pooled MLP — are the baselines every later notebook
# has to beat.
#
# **References.** B. Lengerich, B. Aragam, E. P. Xing. *Personalized regression enables
# sample-specific pan-cancer analysis.* Bioinformatics 34(13):i178-i186 (ISMB 2018).
# B. Lengerich, B. Aragam, E. P. Xing. *Learning sample-specific models with low-rank
# personalized regression.* NeurIPS 2019 (arXiv:1910.06939). K. P. Nguyen,
# A. H. Treacher, A. A. Montillo. *Adversarially-regularized mixed effects deep learning
# (ARMED) models for improved interpretability, performance, and generalization on
# clustered data.* IEEE TPAMI 45(7):8081-8093 (2023), doi:10.1109/TPAMI.2023.3234291.

# %%
out_dir.mkdir(parents=True, exist_ok=True)
by_cluster.to_csv(out_dir / "spiral_accuracy_by_cluster.csv", index=False)
with open(out_dir / "metrics.json", "w") as fh:
    json.dump(
        {k: (float(v) if np.isscalar(v) else {a: float(b) for a, b in v.items()}) for k, v in results.items()},
        fh,
        indent=2,
        sort_keys=True,
    )
print(f"wrote {len(results)} metrics and {len(list(out_dir.iterdir()))} files")

# %% [markdown]
# ## Exercises
#
# 1. Re-run with `seed = 3` (`python -m perslib.reports notebooks/01_simulation.py -p seed 3`).
#    Which figures move by more than a few hundredths, and which stay put? Why is the
#    pooled OLS parameter error tied to the variance of θ, whatever the seed?
# 2. Drop the probe features from the spirals and refit the pooled MLP. Does the spread of
#    per-cluster accuracy shrink or grow? What does that say about the shortcut?
# 3. In the notation table, which symbols would you need for a study of patients ($i$) in
#    hospitals ($k$) with hospital-level covariates (bed count, teaching status)?
