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
# # 06 · The ARMED autoencoder: batch effects removed from the latent, and made visible
#
# Images recorded on different days, machines or plates carry **batch effects**: brightness,
# contrast, blur, a shift of the field of view. An autoencoder trained on them learns a latent
# space in which the images cluster *by batch*, and everything built on that space (a
# classifier, a nearest-neighbour search, a UMAP) inherits the batches. ARMED's third
# application (TPAMI 2023, Table V; melanoma live-cell images, batches = imaging dates) makes
# the autoencoder's fixed-effects latent lose its batch clusters (Davies–Bouldin 8.9 → 43.0,
# Calinski–Harabasz 545.9 → 20.4) while reconstruction and the downstream classifier improve,
# and uses the random effects to show what each batch does to an image. This notebook
#
# 1. writes the **ARMED autoencoder** down (`perslib.ARMEDAutoencoder`): a batch-blind encoder,
#    a decoder whose batch norms carry each batch's scale and bias as random effects, a
#    classifier head with a random intercept, one network trained end to end;
# 2. builds **digits from eight batches** with strong batch effects, six seen in training and
#    two held out;
# 3. compares the **latent spaces** of a conventional autoencoder, a domain-adversarial one and
#    ARMED — and **Harmony**, the batch-correction tool users reach for, on a PCA embedding of
#    the same size — by batch separation and by the class information they keep;
# 4. measures **which adversarial objective** actually removes the batch;
# 5. runs the same comparison on a **convolutional** autoencoder;
# 6. decodes one image **as each batch would have recorded it**, and without any batch;
# 7. reconstructs and classifies images of **batches never seen**, with the z-predictor and
#    with $z = 0$.

# %% tags=["parameters"]
seed = 0  # seeds the images, the split and every network
device = "auto"  # torch device of the networks: "auto" picks a GPU when one is visible
n_batches = 8  # batches (imaging dates, plates); the last n_unseen are held out of training
n_unseen = 2  # batches never seen in training (section 6)
n_per_batch = None  # images per batch (None: all 1,797 digits, about 225 per batch)
image_size = 16  # side of the images in pixels (the digits are 8 x 8, upsampled)
effect_strength = 2.0  # multiplier of every batch effect (1: the default of the simulator)
latent_dim = 16  # width of every latent and of the PCA / Harmony embedding
hidden = [128, 64]  # dense encoder widths (the decoders mirror them)
channels = [16, 32]  # conv blocks of the convolutional autoencoders (section 5)
run_conv = True  # fit the convolutional autoencoders of section 5
epochs = 60  # most training epochs of each autoencoder (early stopping usually ends sooner)
test_fraction = 0.3  # held-out images of the seen batches (stratified by batch x label)
n_boot = 200  # bootstrap resamples of the batch-separation intervals
out_dir = "../build/06_armed_autoencoder"  # every file this notebook writes goes here

# %%
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

import perslib
from perslib import data, plotting
from perslib.armed import ARMEDAutoencoder
from perslib.evaluation import (
    batch_effect_intervals,
    batch_effect_scores,
    harmony_available,
    pca_harmony,
    reconstruction_mse,
)

perslib.set_seed(seed)
plotting.set_style()
out_dir = Path(out_dir)
results = {}  # key numbers, written to out_dir/metrics.json at the end

# %% [markdown]
# ## 1. The model
#
# Every image $x$ comes with its batch; $z$ is the batch's one-hot vector over the $K$
# training batches. One network, three parts:
#
# * a **fixed-effects encoder** $e = E(x)$, the latent that `transform` returns. An
#   **adversary** $A$ reads $e$ and names the batch; $E$ is trained to make it fail;
# * a **decoder** $\hat x = D(e, z)$ in which every batch norm's affine parameters are replaced
#   by a fixed part plus a **random effect per batch** (`ClusterScaleBias`, the paper's
#   "domain-enhancing" blocks), and the output gets a per-batch, per-pixel gain and offset:
#   $\mathrm{BN}(h)\,(\gamma + a_z) + (\beta + b_z)$, with Gaussian posteriors for $a_z, b_z$
#   and a learned zero-mean prior. $z = 0$ drops them: the **batch-free** reconstruction;
# * a **classifier** on the latent with a random intercept per batch,
#   $\operatorname{logit}\hat y_M = C(e) + b_{\text{int}}(z)$ (fitted when labels are given).
#
# The network minimises, on every minibatch, after one step of the adversary,
#
# $$\lambda_r\,\mathrm{MSE}(x, D(e, z)) + \lambda_c\big(\mathrm{CE}(y, \hat y_M) +
# \tfrac12\mathrm{CE}(y, \hat y_F)\big) + w\,\mathrm{KL} + \lambda_g\,
# \mathrm{CE}\big(\pi, A(e)\big),$$
#
# with $\lambda_r = 1$, $\lambda_c = 0.1$, $\lambda_g = 0.3$, $w = 1/(n\,p)$ (the ELBO's $1/n$
# for a reconstruction averaged over $p$ pixels) and $\pi$ the batch proportions: the last
# term, a **confusion loss**, pulls the adversary's prediction towards "any batch, in
# proportion" (section 4 says why not $-\mathrm{CE}(z, A(e))$). The official single-model code
# is unfinished and *adds* the adversary's loss; the sign here is tested.
#
# | model | adversary | random effects in the decoder | labels |
# |---|---|---|---|
# | conventional AE (+ classifier) | | | ✓ |
# | domain-adversarial AE | ✓ | | ✓ |
# | **ARMED AE** | ✓ | ✓ | ✓ |
# | ARMED AE without labels | ✓ | ✓ | |
# | PCA, and **Harmony** on it (`harmonypy`) | | | |

# %% [markdown]
# ## 2. Digits from eight batches
#
# `data.make_cluster_images` splits scikit-learn's 1,797 digits into batches, each with its own
# blur or sharpening, shift, gain, offset and noise level; `effect_strength=2` doubles them, so
# the batches are obvious to the eye (rows below). The label is "digit ≥ 5". The first six
# batches are **seen**: 70% of their images train every model, 30% are held out and scored.
# The last two batches are **unseen** (section 6).

# %%
X, y, batches, effects = data.make_cluster_images(
    n_batches, image_size=image_size, n_per_site=n_per_batch, effect_strength=effect_strength, random_state=seed
)
Xf = X.reshape(len(X), -1)  # the dense autoencoders read flattened images
unseen_ids = np.sort(np.unique(batches))[-n_unseen:]
seen_rows = np.flatnonzero(~np.isin(batches, unseen_ids))
unseen = np.flatnonzero(np.isin(batches, unseen_ids))
strata = batches[seen_rows].astype(str) + "|" + y[seen_rows].astype(str)
train, test = train_test_split(seen_rows, test_size=test_fraction, stratify=strata, random_state=seed)
train, test = np.sort(train), np.sort(test)
fig = plotting.plot_image_grid(X, batches, n_per_row=10, sample_labels=y, title_fmt="batch {}", cell_size=0.8)
plotting.save_figure(fig, out_dir, "batch_images")

# %% tags=["nbval-check-output"]
print(f"{len(X)} images of {image_size} x {image_size} pixels from {n_batches} batches; label 1 = digit >= 5")
print(f"seen batches: {len(train)} training and {len(test)} held-out images; unseen batches {unseen_ids.tolist()}")
print(effects[["gain", "offset", "blur", "shift_x", "shift_y", "noise_sd"]].round(2).to_string())

# %% [markdown]
# ## 3. Latent spaces of the seen batches
#
# Every autoencoder has the same encoder (dense layers of `hidden` units with batch norm), a
# latent of `latent_dim` numbers and the mirrored decoder; they differ only in the adversary
# and the random effects (table above). The **peer** is what a user would do without a
# network: PCA to the same `latent_dim` components (fitted on the training images), then
# Harmony, which clusters the embedding softly and removes each cluster's batch-specific
# shift. Harmony corrects the embedding it is given (there is no `transform` for new
# images), so it gets the training and held-out images of the seen batches together.

# %%
net = {"latent_dim": latent_dim, "hidden": hidden, "epochs": epochs, "device": device, "random_state": seed}
models = {
    "conventional AE": ARMEDAutoencoder(random_effects=False, adversary=False, **net),
    "domain-adversarial AE": ARMEDAutoencoder(random_effects=False, **net),
    "ARMED AE": ARMEDAutoencoder(**net),
    "ARMED AE, -CE clamped per sample": ARMEDAutoencoder(adversary_guard="clamp", **net),
    "ARMED AE, gradient reversal": ARMEDAutoencoder(adversary_mode="reversal", adversary_guard="clamp", **net),
}
for model in models.values():
    model.fit(Xf[train], y[train], groups=batches[train])
unlabelled = ARMEDAutoencoder(**net).fit(Xf[train], groups=batches[train])  # no y: a pure autoencoder
latents = {name: (m.transform(Xf[train]), m.transform(Xf[test])) for name, m in models.items()}
latents["ARMED AE without labels"] = (unlabelled.transform(Xf[train]), unlabelled.transform(Xf[test]))
rows = np.concatenate([train, test])
if harmony_available():
    pcs, corrected = pca_harmony(Xf[rows], batches[rows], latent_dim, fit_rows=np.arange(len(train)), random_state=seed)
    latents["PCA"] = (pcs[: len(train)], pcs[len(train) :])
    latents["PCA + Harmony"] = (corrected[: len(train)], corrected[len(train) :])
else:
    print('harmonypy is not installed (pip install "perslib[batch]"): the peer is skipped')

# %%
rows_out = {}
for name, (L_train, L_test) in latents.items():
    row = batch_effect_scores(L_test, batches[test], y[test], reference=L_train, random_state=seed)
    ci = batch_effect_intervals(L_test, batches[test], reference=L_train, n_boot=n_boot, random_state=seed)
    row.update({f"{k} low": v for k, v in ci["low"].items()} | {f"{k} high": v for k, v in ci["high"].items()})
    model = models.get(name, unlabelled if name == "ARMED AE without labels" else None)
    if model is not None:
        row["reconstruction MSE"] = reconstruction_mse(Xf[test], model.reconstruct(Xf[test], groups=batches[test]))
        row["MSE batch-free"] = reconstruction_mse(Xf[test], model.reconstruct(Xf[test]))
    if name in models:
        row["AUROC"] = roc_auc_score(y[test], models[name].predict_proba(Xf[test], groups=batches[test])[:, 1])
    rows_out[name] = row
scores = pd.DataFrame(rows_out).T
results.update({f"seen {m} {k}": v for m, row in scores.iterrows() for k, v in row.items() if np.isfinite(v)})

# %% [markdown]
# **The table.** Held-out images of the seen batches, latents z-scored by the training images.
# *Batch separation* (what ARMED should remove): Davies–Bouldin (DB, higher = less separated;
# with a 95% bootstrap interval over the held-out images), Calinski–Harabasz (CH, lower = less separated)
# and the silhouette by batch (0 or below = mixed). *Class information* (what must be kept):
# 10-nearest-neighbour accuracy of the label (5-fold) and the silhouette by label. Then the
# reconstruction MSE (pixels in [0, 1]) with each image's batch effects and without (z = 0),
# and the AUROC of each model's classifier.

# %% tags=["nbval-check-output"]
show = {
    "batch_davies_bouldin": "DB",
    "batch_davies_bouldin low": "DB low",
    "batch_davies_bouldin high": "DB high",
    "batch_calinski_harabasz": "CH",
    "batch_silhouette": "sil. batch",
    "label_knn_accuracy": "kNN label",
    "label_silhouette": "sil. label",
    "reconstruction MSE": "MSE",
    "MSE batch-free": "MSE z=0",
    "AUROC": "AUROC",
}
table = scores.reindex(columns=list(show)).rename(columns=show)
print("held-out images of the seen batches:")
print(table.round({"DB": 2, "DB low": 2, "DB high": 2, "CH": 1}).round(4).to_string(na_rep="-"))

# %%
conv, armed = scores.loc["conventional AE"], scores.loc["ARMED AE"]
db_ratio = armed["batch_davies_bouldin"] / conv["batch_davies_bouldin"]
ch_ratio = armed["batch_calinski_harabasz"] / conv["batch_calinski_harabasz"]
knn_gap = armed["label_knn_accuracy"] - conv["label_knn_accuracy"]
mse_ratio = armed["reconstruction MSE"] / conv["reconstruction MSE"]
print(f"ARMED / conventional: DB x{db_ratio:.1f} (asserted >= 2), CH x{ch_ratio:.3f} (asserted <= 0.25)")
print(f"kNN label accuracy, ARMED - conventional: {knn_gap:+.3f} (asserted >= -0.03)")
print(f"reconstruction MSE with the batch's random effects, ARMED / conventional: {mse_ratio:.3f} (asserted <= 1.05)")
assert db_ratio >= 2 and ch_ratio <= 0.25, "ARMED's latent should cluster far less by batch"
assert knn_gap >= -0.03, "and keep the class information"
assert mse_ratio <= 1.05, "the random effects should give the batch back to the reconstruction"
assert armed["MSE batch-free"] > armed["reconstruction MSE"], "without z the batch's own look is missing"
results.update(db_ratio=db_ratio, ch_ratio=ch_ratio, knn_gap=knn_gap, mse_ratio=mse_ratio)

# %% [markdown]
# **What to conclude.** The conventional autoencoder's latent clusters by batch: the batch is
# the largest thing in these images, and a latent that reconstructs them has to encode it.
# ARMED's fixed-effects latent does not (DB several times higher, CH a small fraction, the
# silhouette by batch below zero; all asserted), and it keeps the
# class: its nearest-neighbour accuracy is level with the conventional one (asserted within 3
# points). The reconstruction does not pay for it, because the batch comes back through the
# decoder's random effects — switch them off ($z = 0$) and the MSE rises several-fold. The
# domain-adversarial autoencoder, the same adversary without random effects, removes the batch
# less and reconstructs worse: its decoder has no other route for the batch, so its encoder
# fights the adversary. ARMED's MSE is at or a little below the conventional one (0.90–0.99
# of it over seeds 0–2, `notebooks/expected/06_armed_autoencoder.json`; asserted ≤ 1.05 to
# leave room for other seeds and CPUs).

# %% [markdown]
# ## 4. Which adversarial objective removes the batch?
#
# Three ways for the encoder to fight the adversary, same network otherwise:
#
# * **confusion** (ARMED's default here): $\mathrm{CE}(\pi, A(e))$, the adversary's prediction
#   pulled towards the batch proportions — minimal when the latent says nothing of the batch;
# * **$-\mathrm{CE}$ clamped per sample** at chance level, $-\min(\mathrm{CE}_i, -\log\pi_{z_i})$
#   (ARMED's classifiers' default);
# * **gradient reversal** (DANN): the adversary's gradient, reversed, in one pass.
#
# Both of the last two *reward the encoder for making the adversary wrong*. An encoder can do
# that without removing the batch: move batch 1's images to where the adversary expects batch
# 2, and so on — the batches stay as far apart as before, only relabelled.

# %% tags=["nbval-check-output"]
objectives = {
    "confusion": "ARMED AE",
    "-CE clamped per sample": "ARMED AE, -CE clamped per sample",
    "gradient reversal": "ARMED AE, gradient reversal",
}
cols = ["batch_davies_bouldin", "batch_calinski_harabasz", "batch_silhouette", "label_knn_accuracy"]
by_objective = scores.loc[list(objectives.values()), cols].set_axis(list(objectives), axis=0)
print("generator objective of the encoder (ARMED AE otherwise):")
print(by_objective.round(3).to_string())
ch = by_objective["batch_calinski_harabasz"]
assert ch["confusion"] < min(ch["-CE clamped per sample"], ch["gradient reversal"]), "confusion removes most"

# %% [markdown]
# **Why.** Confusion has its optimum exactly where the latent is batch-free, and it stops
# pushing there; the clamped $-\mathrm{CE}$ stops at chance-level *loss*, which a confidently
# wrong adversary reaches too, and gradient reversal keeps pushing towards any configuration
# that fools the current adversary. In a calibration run made while designing this notebook, an unclamped $-\mathrm{CE}$ on the
# batch mean made batch clustering *worse* than no adversary (CH 4,444). The per-sample clamp
# and gradient reversal help here, but leave several times the batch structure of confusion
# (asserted: confusion has the lowest CH).

# %% [markdown]
# ## 5. The convolutional backbone
#
# The same estimator on the images themselves, shape (n, 1, 16, 16): the encoder is the conv
# blocks of `perslib.cnn.ConvNet` (3 × 3 conv, batch norm, PReLU, 2 × 2 max pooling; widths
# `channels`) and a linear latent; the decoder upsamples back, with `ClusterScaleBias` after
# every convolution and a per-pixel batch gain and offset at the output. The adversary reads
# the latent (`adversary_reads="latent"`; the paper's multi-scale adversary on every conv
# block, `"all"`, forces the first convolutions to be batch-blind although every pixel carries
# the batch — in a throwaway run on this data it left the latent *more* batch-clustered, DB 1.7,
# and the label at kNN 0.56).

# %% tags=["nbval-check-output"]
if run_conv:
    conv_models = {
        "conventional conv AE": ARMEDAutoencoder(random_effects=False, adversary=False, channels=channels, **net),
        "ARMED conv AE": ARMEDAutoencoder(channels=channels, unseen="fixed", **net),
    }
    conv_rows = {}
    for name, m in conv_models.items():
        m.fit(X[train], y[train], groups=batches[train])
        row = batch_effect_scores(m.transform(X[test]), batches[test], y[test], reference=m.transform(X[train]))
        row["reconstruction MSE"] = reconstruction_mse(X[test], m.reconstruct(X[test], groups=batches[test]))
        row["AUROC"] = roc_auc_score(y[test], m.predict_proba(X[test], groups=batches[test])[:, 1])
        conv_rows[name] = row
    conv_scores = pd.DataFrame(conv_rows).T
    print("held-out images of the seen batches, convolutional autoencoders:")
    print(conv_scores.round(4).to_string())
    c0, c1 = conv_scores.loc["conventional conv AE"], conv_scores.loc["ARMED conv AE"]
    conv_db = c1["batch_davies_bouldin"] / c0["batch_davies_bouldin"]
    conv_ch = c1["batch_calinski_harabasz"] / c0["batch_calinski_harabasz"]
    conv_mse = c1["reconstruction MSE"] / c0["reconstruction MSE"]
    conv_knn = c1["label_knn_accuracy"] - c0["label_knn_accuracy"]
    print(f"ARMED / conventional: DB x{conv_db:.1f}, CH x{conv_ch:.3f}, kNN {conv_knn:+.3f}, MSE x{conv_mse:.2f}")
    assert conv_db >= 2 and conv_ch <= 0.25 and conv_knn >= -0.03, "the batch claims hold for images too"
    results.update({f"conv {m} {k}": v for m, row in conv_scores.iterrows() for k, v in row.items()})
    results.update(conv_db_ratio=conv_db, conv_ch_ratio=conv_ch, conv_mse_ratio=conv_mse, conv_knn_gap=conv_knn)

# %% [markdown]
# **What to conclude.** The convolutional ARMED autoencoder removes the batch from its latent
# as the dense one does, against the conventional convolutional autoencoder (asserted: DB at
# least twice, CH at most a quarter, kNN within 3 points). Its reconstruction is **not** as
# good as the conventional one's: 1.02, 1.16 and 1.05 times its MSE on seeds 0, 1 and 2. The
# conventional convolutional autoencoder reconstructs better than the dense one, and the
# batch effects that matter most here (a shift of up to four pixels, a blur) are
# transformations of the content that a per-channel scale and bias in the decoder cannot
# fully redo. The rest of the notebook uses the dense models, which remove it
# with no reconstruction cost.

# %% [markdown]
# ## 6. The latent spaces, drawn
#
# Held-out images of the seen batches; each panel is the first two principal components of
# the z-scored embedding. Top: coloured by batch — a batch-free space shows them mixed. Bottom:
# the same points coloured by label — a useful space shows the classes apart.

# %%
panels = ["conventional AE", "ARMED AE", "ARMED AE without labels", "PCA", "PCA + Harmony"]
panels = [p for p in panels if p in latents]
fig = plotting.plot_embeddings(
    {p: latents[p][1] for p in panels}, {"batch": batches[test], "label": y[test]}, random_state=seed
)
plotting.save_figure(fig, out_dir, "latent_spaces")

# %% [markdown]
# **What to look at.** The conventional autoencoder and PCA show one island per batch; ARMED's
# latent is one cloud in which the batches overlap, and the labels still split it. Harmony
# mixes the batches of the PCA embedding too — the numbers below say how far.

# %% tags=["nbval-check-output"]
if "PCA + Harmony" in latents:
    peers = ["ARMED AE", "ARMED AE without labels", "PCA", "PCA + Harmony"]
    print("ARMED against the peer (same embedding size):")
    print(scores.loc[peers, cols + ["label_silhouette"]].round(3).to_string())
    h, a, u = scores.loc["PCA + Harmony"], scores.loc["ARMED AE"], scores.loc["ARMED AE without labels"]
    assert h["batch_calinski_harabasz"] < scores.loc["PCA", "batch_calinski_harabasz"], "Harmony removes batch"
    assert a["label_knn_accuracy"] > h["label_knn_accuracy"], "ARMED's latent should keep more class information"
    results.update(harmony_ch_over_armed=h["batch_calinski_harabasz"] / a["batch_calinski_harabasz"])

# %%
if "PCA + Harmony" in latents:
    better_batch = "ARMED" if a["batch_calinski_harabasz"] < h["batch_calinski_harabasz"] else "Harmony"
    better_class = "ARMED" if a["label_knn_accuracy"] > h["label_knn_accuracy"] else "Harmony"
    print(f"removes batch better (lower CH): {better_batch}; keeps class better (kNN): {better_class}")
    print(f"ARMED without labels: CH {u['batch_calinski_harabasz']:.1f}, kNN {u['label_knn_accuracy']:.3f}")

# %% [markdown]
# **Side by side with Harmony.** Harmony is the tool users pick, and on this data it does what
# it promises: the batch clusters of the PCA embedding shrink (asserted). Which of the two
# removes batch better depends on the score: on seed 0 Harmony's Davies–Bouldin is the
# higher (better) one, ARMED's Calinski–Harabasz the lower (better) one and the silhouettes
# by batch are about equal — call it a draw on batch removal (the printed line uses CH).
# ARMED keeps clearly more class information (kNN accuracy and silhouette by label;
# asserted for kNN).
# Two things make that comparison uneven, both ways: the ARMED autoencoder is *nonlinear*
# and the labelled one is trained with the labels (its classifier head shapes the latent);
# the unlabelled ARMED autoencoder shows what is left without them — still batch-free, with
# less class structure. Harmony in turn is transductive (it corrects the samples it sees; a
# new image needs a new run) and it cannot give an image back: ARMED's latent comes with a
# decoder, the next section.

# %% [markdown]
# ## 7. The same image as each batch would have recorded it
#
# Take a held-out image, encode it once, and decode its latent with each seen batch's random
# effects (the one-hot $z$ of that batch), and with none ($z = 0$). Rows: the input, then the
# decodes "as batch $k$", then the batch-free one. Columns: six held-out images.

# %%
armed_ae = models["ARMED AE"]
pick = test[:6]
e = armed_ae.transform(Xf[pick])
stack, labels = [X[pick, 0]], ["0: input"] * len(pick)
for k, b in enumerate(armed_ae.groups_):
    Z = np.zeros((len(pick), armed_ae.n_clusters_))
    Z[:, k] = 1.0
    stack.append(armed_ae.decode(e, Z).reshape(len(pick), image_size, image_size))
    labels += [f"{k + 1}: as batch {b}"] * len(pick)
stack.append(armed_ae.decode(e).reshape(len(pick), image_size, image_size))
labels += [f"{len(armed_ae.groups_) + 1}: batch-free"] * len(pick)
fig = plotting.plot_image_grid(np.concatenate(stack), np.array(labels), n_per_row=len(pick), title_fmt="{}")
plotting.save_figure(fig, out_dir, "as_each_batch")

# %% tags=["nbval-check-output"]
latent_test = armed_ae.transform(Xf[test])
decoded_mean, real_mean = {}, {}
for k, b in enumerate(armed_ae.groups_):
    Z = np.zeros((len(test), armed_ae.n_clusters_))
    Z[:, k] = 1.0
    decoded_mean[b] = armed_ae.decode(latent_test, Z).mean()
    real_mean[b] = Xf[train][batches[train] == b].mean()
r_brightness = float(np.corrcoef(list(decoded_mean.values()), list(real_mean.values()))[0, 1])
print(f"r(mean brightness of all test latents decoded as batch k, batch k's real mean brightness) = {r_brightness:.3f}")
assert r_brightness > 0.9, "decoding as batch k should give batch k's look"
results.update(r_brightness=r_brightness)

# %% [markdown]
# **What to look at.** Along a column the digit stays the same — its latent is fixed — and
# the batch's look changes: brighter or darker, sharper or blurred, shifted. Decoding *every*
# held-out latent as batch $k$ gives images as bright as batch $k$'s real ones (asserted:
# r > 0.9 over the six batches). The batch-free row is the decoder's fixed part alone: a
# digit with none of the batches' offsets — smooth, somewhat faint, centred. This is the
# "visualise cluster effects" half of ARMED: what each batch does to an image, read off the
# model, while the latent is batch-free.

# %% [markdown]
# ## 8. Batches never seen in training
#
# The two held-out batches: a new batch's random effects are unknown. ARMED either uses the
# **z-predictor** (an MLP trained to name the training batch of an image; its soft memberships
# mix the training batches' effects) or $z = 0$ (the batch-free decoder). Reconstruction MSE
# and AUROC of the classifier on all their images.

# %% tags=["nbval-check-output"]
unseen_rows = {}
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # "samples from clusters not seen in training"
    for name in ["conventional AE", "domain-adversarial AE", "ARMED AE"]:
        m = models[name]
        for rule, z in [("z-predictor", "auto"), ("z = 0", "zero")] if m.has_random_effects_ else [("", "auto")]:
            label = f"{name}, {rule}" if rule else name
            rec = m.reconstruct(Xf[unseen], groups=batches[unseen], z=z)
            proba = m.predict_proba(Xf[unseen], groups=batches[unseen], z=z)[:, 1]
            unseen_rows[label] = {"MSE": reconstruction_mse(Xf[unseen], rec), "AUROC": roc_auc_score(y[unseen], proba)}
unseen_scores = pd.DataFrame(unseen_rows).T
print(f"unseen batches {unseen_ids.tolist()} ({len(unseen)} images):")
print(unseen_scores.round(4).to_string())
mse_u = unseen_scores["MSE"]
assert mse_u["ARMED AE, z-predictor"] < mse_u["ARMED AE, z = 0"], "look-alike batches' effects beat none"
results.update({f"unseen {m} {k}": v for m, row in unseen_scores.iterrows() for k, v in row.items()})

# %% [markdown]
# **What to conclude — honestly.** On batches never seen, the z-predictor's borrowed effects
# reconstruct better than none (asserted): a new batch resembles some training batches more
# than the batch-free average. But every model reconstructs a new batch worse than a seen one,
# and the conventional autoencoder, whose encoder can read the new batch's look straight from
# the image, does best at it. The classifiers are all close to chance on these two batches:
# at twice the simulator's batch effects a new batch's blur and shift take the digits outside
# what any model saw, and no choice of $z$ fixes that (ARMED's classifier is, if anything,
# below the conventional one here). The paper's unseen-batch AUROC gain
# (0.817 → 0.869 on seen, smaller on unseen) is not reproduced on this design.

# %% [markdown]
# ## 9. Summary
#
# * `ARMEDAutoencoder` gives a **batch-free latent** (`transform`, which takes no batch label)
#   and a decoder that puts each batch back through random scale and bias in place of its
#   batch norms (`reconstruct(X, groups=...)`, or batch-free without `groups`).
# * Against a conventional autoencoder on strongly batch-affected images: DB several times
#   higher and CH a small fraction, the class information kept, reconstruction at or a little
#   better (asserted, the last with a 5% margin).
# * The encoder's adversarial objective matters: a **confusion loss** removes the batch;
#   objectives that reward a *wrong* adversary leave much of it.
# * **Harmony** on PCA removes batch from a linear embedding; ARMED's latent, nonlinear and
#   label-aware, keeps more class information and comes with a decoder.
# * The convolutional backbone (4-D `X`) removes the batch as well (section 5), but does not
#   reconstruct as well as a conventional convolutional autoencoder.
# * New batches: the z-predictor beats $z = 0$ for reconstruction, not for the classifier.
#
# **Paper profile.** `notebooks/params/paper.yaml` runs 32 × 32 images, a wider latent and more
# epochs; it has not been run on a GPU yet.
#
# **Reference.** K. P. Nguyen, A. H. Treacher, A. A. Montillo. *Adversarially-regularized
# mixed effects deep learning (ARMED) models for improved interpretability, performance, and
# generalization on clustered data.* IEEE TPAMI 45(7):8081-8093 (2023),
# doi:10.1109/TPAMI.2023.3234291. Harmony: I. Korsunsky et al., *Nature Methods* 16:1289-1296
# (2019).

# %% [markdown]
# ## Exercises
#
# 1. Shrink the latent (`latent_dim=4`) and refit ARMED and the conventional autoencoder:
#    which of the batch scores (DB, CH), the kNN label accuracy and the reconstruction MSE
#    move, and for which model?
# 2. Lower the adversary's weight (`lambda_adv`) step by step and plot the latent again: at
#    which weight does the batch structure come back?
# 3. Harmony corrects a PCA of the images, not an autoencoder: which of the two can also
#    redraw an image as another batch would have recorded it (section 7), and why?

# %%
out_dir.mkdir(parents=True, exist_ok=True)
scores.to_csv(out_dir / "seen_scores.csv")
unseen_scores.to_csv(out_dir / "unseen_scores.csv")
with open(out_dir / "metrics.json", "w") as fh:
    json.dump({k: float(v) for k, v in results.items()}, fh, indent=2, sort_keys=True)
print(f"wrote {len(results)} metrics and {len(list(out_dir.iterdir()))} files")
