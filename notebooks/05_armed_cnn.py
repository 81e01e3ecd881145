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
# # 05 · ARMED for images: a convolutional backbone, a site shortcut, and new sites
#
# Images often come from many sites, scanners or batches, and a network learns the site
# along with the task: a scanner's brightness, its blur, a label burned into a corner. Where
# the sites also differ in their case mix, reading the site is a **shortcut** — on the sites
# it was trained on it pays, on a new site it misleads. ARMED's paper makes its largest claims
# here (TPAMI 2023, Table IV, Alzheimer's disease from MRI slices of 12 confounded sites:
# conventional CNN AUROC 0.703 on seen sites and 0.603 on unseen ones, ARMED-CNN 0.900 and
# 0.645). This notebook
#
# 1. writes **ARMED on a convolutional backbone** down: the same estimator as notebook 04
#    (`ARMEDImageClassifier`), with a CNN as the fixed-effects network, a multi-scale
#    adversary and a small CNN as the z-predictor;
# 2. builds **digit images from eight sites** with scanner effects, a site marker and a case
#    mix that differs between sites, made hard enough that the site competes with the digit;
# 3. compares five models on **seen sites** (cross-validation stratified by label × site);
# 4. measures **how much site information** each model's fixed-effects features keep, in
#    three ways, and looks at **saliency maps** against the site marker;
# 5. reads the **random intercepts** against each site's prevalence;
# 6. holds **whole sites out** and compares the models and ARMED's choices of $z$;
# 7. reads the **z-predictor** on new sites;
# 8. measures what an epoch of ARMED costs.

# %% tags=["parameters"]
seed = 0  # seeds the images, the folds and every network
device = "auto"  # torch device of the networks: "auto" picks a GPU when one is visible
n_sites = 8  # sites (the paper's MRI data had 12)
n_per_site = 150  # images per site (of scikit-learn's 1,797 digits; None uses all of them)
image_size = 16  # side of the images in pixels (the digits are 8 x 8, upsampled)
noise = 0.35  # pixel noise added in every site: makes the digits harder to read
confounding = 1.0  # site prevalences from 0.1 to 0.9 (0: the same in every site)
channels = [16, 32]  # conv blocks of every CNN (the z-predictor has half)
epochs = 40  # most training epochs of each network (early stopping usually ends sooner)
n_folds = 3  # seen sites: StratifiedKFold on label x site
n_folds_unseen = 4  # unseen sites: GroupKFold, n_sites / n_folds_unseen sites held out per fold
n_jobs = 2  # processes fitting (fold, model) pairs in parallel; results do not depend on it
out_dir = "../build/05_armed_cnn"  # every file this notebook writes goes here

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, StratifiedKFold

import perslib
from perslib import data, plotting
from perslib.armed import (
    ARMEDImageClassifier,
    ClusterInputCNNClassifier,
    DomainAdversarialCNNClassifier,
    MixedEffectsCNNClassifier,
    intercept_prevalence_correlation,
    mask_share,
    saliency_maps,
    site_information,
)
from perslib.cnn import CNNClassifier
from perslib.evaluation import cross_validate_models, label_cluster_strata, summarize_folds

perslib.set_seed(seed)
plotting.set_style()
out_dir = Path(out_dir)
results = {}  # key numbers, written to out_dir/metrics.json at the end

# %% [markdown]
# ## 1. The model
#
# As in notebook 04, every image $x$ comes with its site; $z$ is the site's one-hot vector
# over the $K$ training sites. ARMED has three parts; only the first changes for images.
#
# * A **fixed-effects (FE) network** $f(x)$, now a CNN (`perslib.cnn.ConvNet`): conv blocks
#   (3 × 3 convolution, batch norm, PReLU, 2 × 2 max pooling; widths `channels`), then a
#   dense layer whose activations $h_F(x)$ feed the logit.
# * A **random-effects (RE) subnetwork** whose only input is $z$: a random intercept
#   $b_{\text{int}}(z)$ and random slopes $b_{\text{slope}}(z)$ on the penultimate features,
#   Bayesian, with learned Gaussian priors:
#
#   $$\operatorname{logit} \hat y_M = f(x) + h_F(x)^\top b_{\text{slope}}(z) + b_{\text{int}}(z).$$
#
# * A **multi-scale adversary** $A$ that names the site from the FE network's activations. As
#   in ARMED-CNN it runs a conv stack of its own beside the FE network and, at each
#   resolution, joins that conv block's output to its own feature map; its last features are
#   joined to $h_F$. So it reads *every* conv block, not only the last layer: the FE network
#   cannot keep the site in an early feature map and drop it later.
#
# Training alternates, on every minibatch, one adversary step and one step of the main network
# on $\mathrm{BCE}(y, \hat y_M) + \lambda_F \mathrm{BCE}(y, \hat y_F) + \tfrac1n\mathrm{KL} -
# \lambda_g \min(\mathrm{CE}(z, A), \text{chance})$ — notebook 04's objective, unchanged. The
# official code's CNN *adds* the adversary's loss instead of subtracting it and never trains
# its random effects; perslib does neither (tested). For images the weight of the adversarial
# term defaults to the paper's CNN value, $\lambda_g = 0.1$ (`docs/design/armed.md`). For a
# site never seen in training, the **z-predictor** — a small CNN that names the training site
# of an image — gives soft memberships $\hat z$, and ARMED applies the weighted random effects.
#
# | model | FE network | adversary | random effects | site input |
# |---|---|---|---|---|
# | CNN (`CNNClassifier`) | ✓ | | | |
# | cluster-input CNN | ✓ | | | one-hot site joined before the dense layer |
# | domain-adversarial CNN | ✓ | ✓ | | |
# | mixed-effects CNN (no adversary) | ✓ | | ✓ | |
# | **ARMED** (`ARMEDImageClassifier`) | ✓ | ✓ | ✓ | |
#
# Every model has the same backbone and `fit(X, y, groups=sites)`; images are arrays (or
# tensors) of shape (n, channels, height, width).

# %% [markdown]
# ## 2. Digits from eight sites
#
# `data.make_cluster_images` splits scikit-learn's 1,797 handwritten digits (8 × 8, upsampled
# to `image_size`) into sites; the label is "digit ≥ 5". Each site gets its own **scanner
# effects**: a gain and an offset (brightness and contrast), a blur or a sharpening, a shift
# of a few pixels, and its own noise level. Three settings make the site matter:
#
# * **Confounding** (`confounding=1.0`): the sites' prevalences of label 1 are spread evenly
#   from 0.1 to 0.9 — a site's case mix, as in a hospital that sees more patients of one kind.
# * **A site marker** (`site_marker=True`): every image of site $s$ carries a bright 2 × 2
#   square at slot $s$ of a ring along the border — a burned-in annotation that names the site
#   exactly and says nothing about the digit (`data.site_marker_masks` says where).
# * **Noise** (`noise=0.35`, the same in every site): the digits get hard to read, so the
#   site's prevalence is worth as much as a good part of the image. Without it every model
#   reaches an AUROC near 0.98 and the site cannot matter (a calibration run of the design).
#
# Rows below are sites, with each site's prevalence in its label; the number in each image is
# its label.

# %%
X, y, sites, effects = data.make_cluster_images(
    n_sites,
    image_size=image_size,
    n_per_site=n_per_site,
    confounding=confounding,
    noise=noise,
    site_marker=True,
    random_state=seed,
)
markers = data.site_marker_masks(sites, effects, image_size)
prevalence = effects["positive_rate"]
fig = plotting.plot_image_grid(X, sites, n_per_row=10, sample_labels=y, title_fmt="site {}", cell_size=0.8)
for ax, s in zip(fig.axes[::10], effects.index):
    ax.set_ylabel(f"site {s}\nprev. {prevalence[s]:.2f}", rotation=0, ha="right", va="center", fontsize="small")
plotting.save_figure(fig, out_dir, "site_images")

# %% tags=["nbval-check-output"]
print(f"{len(X)} images of {image_size} x {image_size} pixels from {n_sites} sites; label 1 = digit >= 5")
print(effects[["gain", "offset", "blur", "noise_sd", "positive_rate", "marker_row", "marker_col"]].round(2).to_string())

# %% [markdown]
# ## 3. Seen sites
#
# **Protocol.** `StratifiedKFold` on label × site (`evaluation.label_cluster_strata`): every
# site, with its case mix, is in every training and test fold, and ARMED uses each test image's
# own site. AUROC and accuracy per test fold; mean and 95% interval over folds, mean ±
# 1.96·sd/√k (the paper's convention). Every network has the same conv blocks, a dense layer of
# 64 units and early stopping on a 10% split; ARMED's ablations are predictions of the same
# fitted model with $z = 0$ (its FE network alone) and with a random site's $z$. On each fold
# we also measure, for the next sections, the site information in each model's features, its
# saliency on the marker and, for the mixed-effects models, how the random intercepts follow
# the sites' prevalences.

# %%
net = {"channels": channels, "epochs": epochs, "device": device, "random_state": seed}
models = {
    "CNN": CNNClassifier(**net),
    "cluster-input CNN": ClusterInputCNNClassifier(**net),
    "domain-adversarial CNN": DomainAdversarialCNNClassifier(**net),
    "mixed-effects CNN (no adversary)": MixedEffectsCNNClassifier(unseen="fixed", **net),  # no new site here
    "ARMED": ARMEDImageClassifier(**net),
}
ablations = {"ARMED, z = 0 (FE only)": ("ARMED", {"z": "zero"}), "ARMED, random z": ("ARMED", {"z": "random"})}


def fold_measures(name, model, train, test):
    """Site information in the FE features, saliency on the marker, intercepts vs prevalence."""
    info = site_information(model, X[train], sites[train], X[test], sites[test], random_state=seed)
    out = {f"site info {k}": v for k, v in info.items() if np.isfinite(v)}
    share = mask_share(saliency_maps(model, X[test]), markers[test])
    out["marker saliency"] = share.mean() / markers[test].mean()  # 1 = as much as an average pixel
    if "intercept" in getattr(model, "random_effects_", {}):
        out["r intercept prevalence"] = intercept_prevalence_correlation(model, y[train], sites[train])
    if getattr(model, "zpredictor_", None) is not None:
        out["zpredictor site accuracy"] = np.mean(model.zpredictor_.predict(X[test]) == sites[test])
    return out


cv = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
scores, fitted = cross_validate_models(
    models,
    X,
    y,
    sites,
    cv,
    stratify=label_cluster_strata(y, sites),
    variants=ablations,
    on_fold=fold_measures,
    n_jobs=n_jobs,
    return_estimators=True,
)
summary = summarize_folds(scores)
print("mean fit time per fold (s):", summary.xs("fit_time", level="metric")["mean"].round(1).to_dict())

# %% tags=["nbval-check-output"]
order = list(models) + list(ablations)
table = summary.loc[(slice(None), ["auroc", "accuracy"]), ["mean", "low", "high"]].unstack("metric")
table = table.swaplevel(axis=1).sort_index(axis=1, level=0, ascending=False, sort_remaining=False).loc[order]
print(f"seen sites, {n_folds}-fold CV on label x site (mean and 95% interval over folds):")
print(table.round(3).to_string())
auc = summary.xs("auroc", level="metric")["mean"]
print(f"ARMED - CNN AUROC: {auc['ARMED'] - auc['CNN']:+.3f} (asserted below: no worse than -0.01)")
print(f"ARMED - its FE network alone (z = 0): {auc['ARMED'] - auc['ARMED, z = 0 (FE only)']:+.3f}")
assert auc["ARMED"] >= auc["CNN"] - 0.02, "on seen sites ARMED should be about level with the CNN"
assert auc["ARMED"] > auc["ARMED, z = 0 (FE only)"] + 0.005, "the random effects should add the sites' case mix"
assert auc["ARMED"] > auc["ARMED, random z"] + 0.01, "another site's random effects should hurt"
results.update({f"seen {m} {k}": v for (m, k), v in summary["mean"].items()})

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.9), layout="constrained", sharey=True)
for ax, metric in zip(axes, ["auroc", "accuracy"]):
    plotting.plot_fold_scores(scores, metric, ax=ax, reference="CNN", models=order)
plotting.save_figure(fig, out_dir, "seen_sites_scores")

# %% [markdown]
# **What to conclude.** On seen sites every model is close to every other, and the reason is
# the point of this notebook: **the conventional CNN is not blind to the site.** The marker
# and the scanner effects name the site, and the CNN learns each site's case mix from them —
# the shortcut — so it gets the same help from the site that the mixed-effects models get from
# their random intercepts. The cluster-input CNN is told the site outright and gains nothing
# over it. Inside ARMED, the random effects do the work that the shortcut does for the CNN:
# its FE network alone ($z = 0$) is clearly worse, and the random effects of a *random* site
# hurt more (both asserted). The paper's 0.70 → 0.90 jump on seen sites is not reproduced:
# here the CNN exploits the site as well as ARMED uses it (the printed difference; on this
# design it stays within a couple of hundredths either side over seeds).

# %% [markdown]
# ## 4. How much site information do the fixed-effects features keep?
#
# Three measures, on every seen-site fold, each the share of test images whose site (of 8;
# chance about 1/8) is named correctly from the model's FE path:
#
# * **own adversary** — ARMED's and the domain-adversarial CNN's adversary, trained with the
#   model: the opponent the FE network was trained to fool (`adversary_accuracy`);
# * **fresh adversary** — a new adversary of the same multi-scale architecture, trained to
#   convergence on the frozen FE activations of the training fold (`fresh_adversary_accuracy`):
#   the same question asked by an opponent the FE network never met;
# * **linear probe** — a multinomial logistic regression on the last dense layer $h_F$ only,
#   the features the logit is computed from (`site_probe_accuracy`).
#
# For the cluster-input CNN the FE path is its network with the site input at zero. The last
# column is the **saliency on the marker**: the input gradient of the FE prediction,
# $|\partial P_F(y=1)/\partial x|$, summed inside each image's marker, as a multiple of what an
# average pixel gets (1 = no special attention).

# %% tags=["nbval-check-output"]
info_cols = ["site info own adversary", "site info fresh adversary", "site info linear probe", "marker saliency"]
site_info = summary["mean"].unstack("metric").reindex(index=list(models), columns=info_cols)
site_info.columns = ["own adversary", "fresh adversary", "linear probe", "marker saliency"]
chance = summary.loc[("CNN", "site info chance"), "mean"]
print(f"site named correctly from the FE path (chance {chance:.2f}); marker saliency relative to an average pixel:")
print(site_info.round(3).to_string(na_rep="-"))
probe = site_info["linear probe"]
print(
    f"linear probe, CNN - ARMED: {probe['CNN'] - probe['ARMED']:+.3f}; adversary's effect on it, "
    f"mixed-effects CNN (no adversary) - ARMED: {probe['mixed-effects CNN (no adversary)'] - probe['ARMED']:+.3f}"
)
with_re = site_info.loc[["mixed-effects CNN (no adversary)", "ARMED"], "marker saliency"].mean()
without_re = site_info.loc[["CNN", "domain-adversarial CNN"], "marker saliency"].mean()
print(f"marker saliency, models with random effects {with_re:.2f}, without {without_re:.2f}")
assert (site_info["fresh adversary"] > 0.9).all(), "the marker is in the pixels: a fresh adversary reads it"
assert site_info.loc["ARMED", "own adversary"] > 3 * chance, "the marker cannot be hidden from ARMED's own adversary"
assert (probe > 4 * chance).all(), "every model's last dense layer should still name the site"
assert with_re < without_re - 0.03, (
    "with random effects to carry the case mix, the FE path should look less at the marker"
)
results.update(marker_saliency_with_random_effects=with_re, marker_saliency_without_random_effects=without_re)
results.update({f"site info {m} {k}": v for m, row in site_info.iterrows() for k, v in row.items() if np.isfinite(v)})

# %% [markdown]
# **Reading the gap.** The **adversaries read the site almost perfectly for every model,
# ARMED included**: the marker is a bright square in the pixels, it survives the first conv
# block, and a multi-scale adversary reads it there; no FE network can hide it without going
# blind to strokes. So ARMED's own adversary is *not fooled* (asserted: far above chance),
# and a fresh one, trained on the frozen network, does a little better still. An adversary on
# the last layers only (measured while this notebook was designed) shows the opposite gap — the
# adversary at chance, a fresh probe still at 93–96 % — and both say the same thing: the
# accuracy of the adversary trained alongside is the score of one opponent, a moving
# target, not a measure of the information left. Fooling it is not removing the
# information, and here it is not even fooled.
#
# The **linear probe** reads only the last dense layer $h_F$, the features the logit is
# computed from, and only linearly: it names the site less well than the adversaries but
# far above chance for every model (asserted), ARMED included. How much lower ARMED's probe
# is than the CNN's, or than its own ablation without the adversary, changes from seed to
# seed (the printed differences; over seeds 0–2 from 0.00 to 0.10 against the CNN, and at
# most 0.03 against the mixed-effects CNN): on this data the adversary buys little site
# blindness. What does change the FE path is the **random effects**: the two models that
# have them look less at the marker than the two that do not (last column; asserted) —
# with the case mix carried by the random intercept, the FE network has less reason to read
# the site from the marker. The adversary alone (the domain-adversarial CNN) does not.
#
# The saliency maps below show the same from the pixels' side: the mean map of each model's
# FE path over the test images of one site, with that site's marker outlined.

# %%
train0, test0 = fitted[("splits", 0)]
site0 = int(effects.index[0])
pick = test0[sites[test0] == site0]
maps = {name: saliency_maps(fitted[(0, name)], X[pick]).mean(0) for name in models}
fig = plotting.plot_saliency_maps(maps, image=X[pick, 0].mean(0), region=markers[pick[0]])
plotting.save_figure(fig, out_dir, "saliency_maps")

# %% [markdown]
# **What to look at.** Every map lights up the middle of the image, where the strokes decide
# the digit; the marker (outlined) gets about an average pixel's share, a little more from the
# models without random effects (the last column of the table). The differences are modest:
# the marker is not the CNN's main route to the site — the scanner effects name the site too,
# spread over the whole image, which no map can localise. Input gradients measure local
# sensitivity, not reliance; the probe and the scores say more.

# %% [markdown]
# ## 5. Random intercepts against each site's prevalence
#
# ARMED's random intercept $b_{\text{int}}$ should carry the site's case mix that the FE
# network is kept from using. One point per site: the intercept of the first fold's ARMED
# against the site's prevalence of label 1, and the correlation on every fold.

# %% tags=["nbval-check-output"]
r_int = summary.xs("r intercept prevalence", level="metric")["mean"]
print("correlation of the random intercepts with the sites' prevalence (mean over folds):")
print(r_int.round(3).to_string())
assert r_int["ARMED"] >= 0.8, "ARMED's random intercepts should track the sites' prevalence"
results.update({f"r intercept prevalence {m}": v for m, v in r_int.items()})

# %%
armed0 = fitted[(0, "ARMED")]
intercepts = armed0.random_effects_["intercept"].astype(float)
fig = plotting.plot_scatter(
    prevalence.loc[intercepts.index.astype(int)],
    intercepts,
    annotate=list(intercepts.index),
    xlabel="prevalence of label 1 in the site",
    ylabel="ARMED random intercept (logit)",
)
plotting.save_figure(fig, out_dir, "intercepts_vs_prevalence")

# %% [markdown]
# **What to conclude.** The intercepts follow the prevalences closely (asserted: r ≥ 0.8 on
# average over folds): what the CNN learns as a shortcut inside its features, ARMED stores as
# one number per site, visible, shrunk towards zero by its prior, and switched off for a site
# it does not know ($z = 0$). The mixed-effects CNN without adversary learns such intercepts
# too, but nothing stops its FE network from using the marker as well, so its intercepts
# need to carry less.

# %% [markdown]
# ## 6. Sites never seen in training
#
# `GroupKFold` holds whole sites out (`n_folds_unseen` folds, two of the eight sites in each);
# the models train on the others and are scored on the held-out images. A new site's marker
# sits at a slot never seen, its scanner effects are new, and its prevalence has nothing to do
# with either. For ARMED the prediction on a new site uses, by default, the **z-predictor per
# image** (the paper's rule: each image's soft memberships over the training sites); the
# ablations are $z = 0$ (its FE network alone) and a random training site's $z$. The
# mixed-effects CNN uses its own z-predictor; the cluster-input CNN gets the zero site vector.

# %%
unseen_models = {**models, "mixed-effects CNN (no adversary)": MixedEffectsCNNClassifier(**net)}
z_choices = {
    "ARMED, z = 0 (FE only)": ("ARMED", {"z": "zero"}),
    "ARMED, random z": ("ARMED", {"z": "random"}),
}
scores_u, fitted_u = cross_validate_models(
    unseen_models, X, y, sites, GroupKFold(n_folds_unseen), variants=z_choices, n_jobs=n_jobs, return_estimators=True
)
summary_u = summarize_folds(scores_u)
print("mean fit time per fold (s):", summary_u.xs("fit_time", level="metric")["mean"].round(1).to_dict())

# %% tags=["nbval-check-output"]
order_u = list(unseen_models) + list(z_choices)
table_u = summary_u.loc[(slice(None), ["auroc", "accuracy"]), ["mean", "low", "high"]].unstack("metric")
table_u = table_u.swaplevel(axis=1).sort_index(axis=1, level=0, ascending=False, sort_remaining=False).loc[order_u]
print(f"unseen sites, GroupKFold({n_folds_unseen}) (mean and 95% interval over folds):")
print(table_u.round(3).to_string())
auc_u = summary_u.xs("auroc", level="metric")["mean"]
for rule in ["ARMED", "ARMED, z = 0 (FE only)"]:
    print(f"{rule} - CNN AUROC: {auc_u[rule] - auc_u['CNN']:+.3f}")
assert auc_u["ARMED, random z"] < auc_u["ARMED, z = 0 (FE only)"], "a random site's random effects add noise"
assert abs(auc_u["ARMED"] - auc_u["CNN"]) < 0.05, "on new sites the models should be within a few hundredths"
results.update({f"unseen {m} {k}": v for (m, k), v in summary_u["mean"].items()})

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.9), layout="constrained", sharey=True)
for ax, metric in zip(axes, ["auroc", "accuracy"]):
    plotting.plot_fold_scores(scores_u, metric, ax=ax, reference="CNN", models=order_u)
plotting.save_figure(fig, out_dir, "unseen_sites_scores")

# %% [markdown]
# **What to conclude — honestly.** On new sites every model loses a good part of its seen-site
# AUROC, and **ARMED does not clearly beat the conventional CNN**: the printed differences are
# within a couple of hundredths, smaller than the spread between folds (each fold holds out
# two particular sites, and some pairs are much harder than others for every model). That is also what
# the paper found for images: ARMED-CNN 0.645 against the domain-adversarial CNN's 0.652 and
# 0.655 without the adversary, all far below the seen-site figures. Why so little here:
#
# * the CNN's shortcut does not transfer, but it does not mislead much either: a marker at a
#   new slot is a pattern the CNN never learned anything about;
# * ARMED's FE network still carries the site (section 4), so it is not the site-blind model
#   the method hopes for;
# * the random effects that made the difference on seen sites cannot be known for a new site:
#   $z = 0$ drops them, and the z-predictor borrows those of look-alike sites — which helps
#   only if look-alike scanners have similar case mixes (next section). A random site's
#   effects, drawn anew for every image, only add noise: below $z = 0$ (asserted).

# %% [markdown]
# ## 7. Reading the z-predictor on new sites
#
# For every held-out image the z-predictor returns probabilities over the training sites of
# its fold; each row below averages them over one held-out site (every site is held out once;
# blank cells are sites held out in the same fold). Sites are labelled with their scanner
# blur and gain, the strongest scanner effects.

# %%
parts = []
for f in range(n_folds_unseen):
    model, (_, test) = fitted_u[(f, "ARMED")], fitted_u[("splits", f)]
    Z = pd.DataFrame(model.design_matrix(X[test], z="zpredictor"), columns=model.groups_.astype(int))
    parts.append(Z.reindex(columns=effects.index).assign(site=sites[test]))
memberships = pd.concat(parts, ignore_index=True)
names = {s: f"{s} (blur {effects.loc[s, 'blur']:.1f}, gain {effects.loc[s, 'gain']:.1f})" for s in effects.index}
by_blur = list(effects.sort_values("blur").index)
fig = plotting.plot_soft_memberships(
    memberships[list(effects.index)],
    memberships["site"].map(names),
    columns=list(effects.index),
    row_order=[names[s] for s in by_blur],
    column_order=by_blur,
    xlabel="training site (sorted by blur)",
    ylabel="held-out site",
    title="z-predictor memberships of new sites",
)
plotting.save_figure(fig, out_dir, "zpredictor_memberships")

# %% tags=["nbval-check-output"]
M = memberships[list(effects.index)]
largest = M.max(axis=1).groupby(memberships["site"]).mean()
borrowed = (M.fillna(0.0) @ prevalence).groupby(memberships["site"]).mean()
seen_acc = summary.loc[("ARMED", "zpredictor site accuracy"), "mean"]
r_borrowed = float(np.corrcoef(borrowed, prevalence.loc[borrowed.index])[0, 1])
print(f"z-predictor on held-out images of seen sites: site named correctly for {seen_acc:.2f} of them")
print(f"on new sites: mean largest membership {largest.mean():.2f}")
print(f"r(membership-weighted prevalence of the training sites, true prevalence of the new site) = {r_borrowed:.2f}")
assert seen_acc > 0.9, "the sites are easy to tell apart"
assert largest.mean() < seen_acc, "a new site should get softer memberships than a seen one"
results.update(
    zpredictor_seen_accuracy=seen_acc, zpredictor_unseen_largest=largest.mean(), zpredictor_r_borrowed=r_borrowed
)

# %% [markdown]
# **How to read it.** The memberships say "which training sites does this image look like,
# in what the z-predictor can see" — scanner effects, marker, noise. It names a seen site's
# images almost perfectly (asserted above 0.9) and is less sure of a new site's (asserted: a
# smaller largest membership), yet it still puts most of a new site's weight on one or two
# training sites, and not always on those with the closest blur and gain: a confident guess
# is not a good one. ARMED then borrows *their* random intercepts, that is their
# prevalences. Here a scanner says nothing about a site's case mix (the simulator draws them
# independently), so the borrowed prevalence is unrelated to the new site's own in
# expectation; the printed correlation over eight sites is chance, and values as large as
# ±0.6 come up with other seeds. The z-predictor can then at best avoid harm. It helps when
# look-alike sites also share their case mix — sites of one hospital network, one scanner
# model in one kind of clinic — which is a property of the data, not of the method. Without
# it, $z = 0$ is the safer rule; with it, the z-predictor (notebook 07 shows such a case on
# the spirals).

# %% [markdown]
# ## 8. What an epoch of ARMED costs
#
# One run, in this process, on the first seen-site training fold: a few epochs of the CNN and
# of ARMED (without its z-predictor, which is a separate, smaller CNN), one after the other on
# the same images. ARMED's epoch has one adversary step and one main step per minibatch.

# %%
timing = {"epochs": 5, "patience": 0, "val_fraction": 0.0}
cnn_t = CNNClassifier(**{**net, **timing}).fit(X[train0], y[train0])
armed_t = ARMEDImageClassifier(unseen="fixed", **{**net, **timing}).fit(X[train0], y[train0], groups=sites[train0])
ratio = armed_t.epoch_time_ / cnn_t.epoch_time_
print(f"seconds per epoch: CNN {cnn_t.epoch_time_:.3f}, ARMED {armed_t.epoch_time_:.3f}; ratio {ratio:.2f}")
assert ratio <= 3.0, "an ARMED epoch should cost at most three CNN epochs"
results.update({"fit_time per epoch CNN": cnn_t.epoch_time_, "fit_time per epoch ARMED / CNN": ratio})

# %% [markdown]
# ## 9. Summary
#
# * ARMED runs on a convolutional backbone with the same estimator: CNN fixed effects, a
#   multi-scale adversary on every conv block and the dense features, a random intercept and
#   random slopes on the penultimate features, and a CNN z-predictor for new sites.
# * When the site is written in the images and the sites differ in case mix, a conventional
#   CNN **learns the site as a shortcut**; on seen sites it then does about as well as ARMED,
#   whose random intercepts carry the case mix openly (they track the sites' prevalence).
# * A site marker in the pixels cannot be hidden from a multi-scale adversary: ARMED's own
#   adversary is not fooled, a fresh one reads the site from every model, and a linear probe
#   still reads it from the last dense layer of every model. On this data the adversary buys
#   little site blindness; the random effects are what take the FE path off the marker.
# * On new sites no model wins clearly. The z-predictor borrows the random effects of
#   look-alike sites, which helps only where look-alike sites share their case mix.
#
# **Paper profile.** `notebooks/params/paper.yaml` runs 32 × 32 images of all 1,797 digits,
# wider CNNs, more epochs and leave-one-site-out for a GPU runner (`make test-gpu`); it has not
# been run on a GPU yet.
#
# **Reference.** K. P. Nguyen, A. H. Treacher, A. A. Montillo. *Adversarially-regularized
# mixed effects deep learning (ARMED) models for improved interpretability, performance, and
# generalization on clustered data.* IEEE TPAMI 45(7):8081-8093 (2023),
# doi:10.1109/TPAMI.2023.3234291.

# %% [markdown]
# ## Exercises
#
# 1. Refit the seen-site comparison without the site marker (`site_marker=False` in
#    `data.make_cluster_images`): does the CNN's shortcut disappear, and with it ARMED's
#    advantage on seen sites?
# 2. Narrow the multi-scale adversary (`adversary_channels`, one conv width per FE block,
#    in `ARMEDImageClassifier`): is the trained adversary now fooled, and does a fresh
#    probe still read the site?
# 3. For new sites, compare `z="zpredictor"` with `z="zero"` fold by fold
#    (`evaluation.paired_differences`): is the z-predictor's guess worth its cost here?

# %%
out_dir.mkdir(parents=True, exist_ok=True)
scores.to_csv(out_dir / "seen_scores.csv", index=False)
scores_u.to_csv(out_dir / "unseen_scores.csv", index=False)
memberships.to_csv(out_dir / "zpredictor_memberships.csv", index=False)
with open(out_dir / "metrics.json", "w") as fh:
    json.dump({k: float(v) for k, v in results.items()}, fh, indent=2, sort_keys=True)
print(f"wrote {len(results)} metrics and {len(list(out_dir.iterdir()))} files")
