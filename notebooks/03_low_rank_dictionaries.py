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
# # 03 · Low-rank dictionaries: every model from a few basis models
#
# Notebook 02 fitted one linear model θᵢ per sample with **low-rank** personalized
# regression (Lengerich, Aragam & Xing, NeurIPS 2019) and compared it once with the
# full-rank model of ISMB 2018. This notebook looks inside the low-rank form:
#
# 1. **The dictionary view**: θᵢ = θ_pop + Qᵀzᵢ, and why it makes one model per sample
#    estimable.
# 2. **The rank sweep**: parameter error and fit time against the rank q, next to the
#    best error any rank-q model could reach.
# 3. **The atoms**: what the rows of Q are, what is identifiable about them, and what the
#    latent coordinates aᵢ encode.
# 4. **Full rank against low rank**: accuracy, time and memory.
# 5. **Relaxation**: the models leaving the population estimate during training.
# 6. **Scaling**: fit time against the number of samples, live and from the benchmark.

# %% tags=["parameters"]
seed = 0  # seeds the simulator, the fits and the fresh test samples (seed + 1)
device = "auto"  # torch device of the personalized models: "auto" picks a GPU when one is visible
n_samples = 2000  # samples in the simulation of notebooks 01 and 02
n_features = 5  # predictors x per sample, i.e. the length of each coefficient vector theta_i
n_covariates = 3  # covariates u: position, process and one irrelevant column
rank = 4  # the rank q studied in detail (atoms, relaxation, scaling), at least 2; added to ranks if missing
ranks = [1, 2, 3, 4, 6, 8]  # ranks q of the sweep
epochs = 300  # most training epochs of each fit (early stopping ends sooner)
snapshot_epochs = [0, 2, 4, 6, 10, 20]  # epochs at which the relaxing models are shown (0: the start)
scaling_sizes = [500, 1000, 2000, 4000]  # sample sizes n of the live timing runs (the paper profile goes to 100,000)
benchmark_csv = "../benchmarks/results.csv"  # the committed benchmark table, relative to this notebook
out_dir = "../build/03_low_rank_dictionaries"  # every file this notebook writes goes here

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA

import perslib
from perslib import data, evaluation, plotting
from perslib.personalized import PopulationRegressor, select_by_held_out_loss

perslib.set_seed(seed)
plotting.set_style()
out_dir = Path(out_dir)
results = {}  # key numbers, written to out_dir/metrics.json at the end
ranks = sorted(set(ranks) | {1, rank})

# %% [markdown]
# ## 1. The dictionary view
#
# Personalized regression gives every sample $i$ its own coefficients θᵢ ∈ ℝᵖ⁺¹ (with the
# intercept). Left free, that is $n(p+1)$ numbers estimated from $n$ noisy responses —
# one observation per model. The low-rank form of NeurIPS 2019 writes every model as the
# population model plus a combination of a few shared **basis models**:
#
# $$\theta_i = \theta_{\text{pop}} + Q^\top a_i = \theta_{\text{pop}} + \sum_{r=1}^{q} a_{ir}\, Q_r,
#   \qquad Q \in \mathbb{R}^{q\times(p+1)},\ a_i \in \mathbb{R}^q .$$
#
# The rows $Q_r$ of the **dictionary** are its *atoms*: directions in coefficient space
# along which the models may move away from the population estimate. Each sample only
# chooses its position $a_i$, q numbers instead of $p+1$, while the atoms are shared by
# all $n$ samples and therefore estimated from all the data. The count of free numbers
# drops from $n(p+1)$ to $nq + q(p+1)$, and, more important than the count, every
# sample's model is confined to the same q-dimensional (affine) subspace: a strong
# prior that is right when the population's models really vary along a few directions.
# Distance matching then acts on the short vectors, $\lVert a_i - a_j\rVert \approx d_\varphi(u_i, u_j)$
# (notebook 02 and the docstring of `perslib.personalized` give the full objective).
#
# Two facts to keep in mind:
#
# * **Only the span is identified, not the atoms.** For any orthogonal $q\times q$
#   matrix $R$, $Q' = RQ$ and $a_i' = Ra_i$ give the same models, the same distances
#   $\lVert a_i - a_j\rVert$ and the same penalties on $\lVert A\rVert^2 + \lVert Q\rVert^2$.
#   A fit can return any rotation of the atoms; what it pins down is the subspace they span.
# * **q is a bound on linear, not intrinsic, dimension.** The models may lie on curves
#   (here: three arcs, each one-dimensional), but the dictionary is linear, so q must
#   cover the *linear span* of the curves.
#
# ### What the simulation's θ spans
#
# The data are those of notebooks 01 and 02: three latent processes, coefficients on
# smooth arcs along `u_position`, a noisy `u_process` covariate and an irrelevant one.
# Before fitting anything we ask the truth how many directions it needs: a PCA of the
# true θ (no intercept; the true intercept is 0).

# %% tags=["nbval-check-output"]
X, y, U, theta, process = data.make_personalized_regression(
    n_samples=n_samples, n_features=n_features, n_covariates=n_covariates, random_state=seed
)
param_names = [f"θ{j}" for j in range(theta.shape[1])]
pca_true = PCA().fit(theta)
explained = pd.Series(pca_true.explained_variance_ratio_, index=[f"PC {k + 1}" for k in range(theta.shape[1])])
print("share of the variance of the true θ per principal component:", explained.round(2).to_dict())
print("cumulative:", explained.cumsum().round(3).to_dict())
print(
    f"the first two components hold {explained.iloc[:2].sum():.0%}, components 3 and 4 "
    f"{explained.iloc[2]:.0%} and {explained.iloc[3]:.0%}, four together {explained.iloc[:4].sum():.0%}"
)
assert explained.iloc[:4].sum() > 0.98 and explained.iloc[:3].sum() < 0.95, "the true θ should need four directions"
results.update({f"true theta explained {k}": v for k, v in explained.items()})

# %% [markdown]
# **What to conclude.** The first two components are the plane in which the three arc
# centres sit apart, i.e. which *process* a sample belongs to. Components 3 and 4 carry
# the oscillation of the coefficients θ2–θ4 *along* each arc. Four directions hold nearly
# all of the variance (asserted: more than 98%, while three hold less than 95%). So for
# these data a rank of about 4 should suffice, although each arc is a one-dimensional
# curve.

# %% [markdown]
# ## 2. The rank sweep
#
# We fit `PersonalizedRegressor(rank=q)` for every q in `ranks`, the full-rank model
# (`rank=None`) and the population model, all with the library defaults, and score the
# per-sample coefficients against the truth, $\mathrm{MSE}(\hat\theta) = \frac{1}{np}\sum_i\lVert\hat\theta_i-\theta_i\rVert^2$.
# A rank-q collection θ̂ᵢ = c + Qᵀzᵢ can never be closer to the truth than the best
# q-dimensional affine fit of the true θ itself, its PCA reconstruction with q
# components (`evaluation.low_rank_floor`, Eckart–Young): the **floor** is the error a rank-q
# model would have if it knew θ. Every fit is wrapped in `evaluation.peak_memory_increase`,
# used in section 4. The rank-`rank` fit also records snapshots for section 5.
#
# No user has the true θ. What a user has is the **held-out loss**: the prediction loss of
# the 10% of samples that early stopping holds out, whose θ is predicted from their
# covariate neighbours. `PersonalizedRegressor()` uses it to choose the rank
# (`rank="auto"`: the smallest rank within 1% of the best held-out loss among 1, 2, 4, 8
# and p + 1); we fit it too and set its choice beside the sweep.

# %%
population = PopulationRegressor().fit(X, y, covariates=U)
fits, rss = {}, {}
for q in ranks + [None]:
    model = perslib.PersonalizedRegressor(
        rank=q, epochs=epochs, device=device, random_state=seed, snapshot_epochs=snapshot_epochs if q == rank else None
    )
    fits[q], rss[q] = evaluation.peak_memory_increase(model.fit, X, y, covariates=U)
sweep = pd.DataFrame(
    {
        "q": ranks,
        "parameter MSE": [evaluation.parameter_mse(fits[q].coef_, theta) for q in ranks],
        "floor": evaluation.low_rank_floor(theta, ranks),
        "fit s": [fits[q].fit_time_ for q in ranks],
        "epochs": [fits[q].n_epochs_ for q in ranks],
    }
).set_index("q")
err_pop = evaluation.parameter_mse(population.coef_, theta)
err_full = evaluation.parameter_mse(fits[None].coef_, theta)
auto = perslib.PersonalizedRegressor(epochs=epochs, device=device, random_state=seed).fit(X, y, covariates=U)
sweep["held-out loss"] = auto.rank_scores_.reindex(sweep.index)
sweep.round(3)

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
plotting.plot_sweep(
    sweep.index,
    {"low-rank PR": sweep["parameter MSE"], "floor: PCA of the true θ": sweep["floor"]},
    references={"population model": err_pop, "full-rank PR": err_full},
    logy=True,
    xlabel="rank q",
    ylabel="parameter MSE vs the true θ",
    ax=axes[0],
    title="error against rank",
)
plotting.plot_sweep(
    sweep.index,
    {"low-rank PR": sweep["fit s"]},
    references={"full-rank PR": fits[None].fit_time_},
    xlabel="rank q",
    ylabel="fit time (s)",
    ax=axes[1],
    title="fit time against rank",
)
axes[1].set_ylim(bottom=0)
plotting.save_figure(fig, out_dir, "rank_sweep")
# %% [markdown]
# **What to look at.** Left: the error falls steeply from q = 1 to q = 4, then stays flat;
# the floor shows why — it drops to almost nothing at q = 4 (and to exactly 0, off the
# log scale, from q = p = 5 on), so above that extra atoms have nothing left to explain.
# The fits stay above the floor by the cost of estimating θ from one noisy response per
# sample. Rank 1 can only slide models along one line and cannot even separate three
# processes; rank 2 separates them but not the variation along each arc. Right: fit time barely depends on q at this size: each epoch costs
# O(n·k·q) for the matching term but q is tiny next to the fixed costs (partner search,
# data movement), and differences come mostly from early stopping ending after more or
# fewer epochs (and from a busy machine). Full rank (the dotted line) is worse than every
# low rank from q = 4 on (asserted below): with free θᵢ the noise of a single response per
# sample is only tamed by the matching term, not by a shared subspace.

# %% tags=["nbval-check-output"]
print(sweep[["parameter MSE", "floor"]].round(2).to_string())
print(f"population model {err_pop:.2f}, full rank {err_full:.2f}")
print(
    f"rank chosen by the held-out loss (rank='auto'): {auto.rank_}, parameter MSE {evaluation.parameter_mse(auto.coef_, theta):.2f}"
)
err = sweep["parameter MSE"]
# the error left, as a share of what the truth's rank-q structure allows a fit to remove
unexplained = (err - sweep["floor"]) / (err_pop - sweep["floor"])
assert err[1] > 0.5 * err_pop, "one atom cannot represent three processes"
assert err[rank] < 0.15 * err_pop and err[rank] < 0.2 * err[1], "the error should drop sharply up to q = 4"
assert (unexplained[unexplained.index >= rank] < 0.12).all(), "from q = 4 on the fits should come close to the floor"
assert (err[err.index >= rank] < err_full).all(), "low rank should recover θ better than full rank here"
assert evaluation.parameter_mse(auto.coef_, theta) < 2 * err.min(), "the held-out loss should choose a good rank"
results.update(
    {f"param_mse rank {q}": v for q, v in err.items()},
    **{"param_mse population": err_pop, "param_mse full rank": err_full},
    **{"auto rank": auto.rank_, "param_mse auto rank": evaluation.parameter_mse(auto.coef_, theta)},
)

# %% [markdown]
# **Penalties are chosen the same way.** `personalized.select_by_held_out_loss` fits one
# model per setting (every fit holds out the same samples) and keeps the lowest held-out
# loss; here for the weight γ of the matching term (`matching_weight`) at rank 4. Next to
# each held-out loss is the error against the true θ, which a user cannot compute: the
# question is whether the loss a user has ranks the settings as the truth does.

# %% tags=["nbval-check-output"]
gamma_grid = {"matching_weight": [1.0, 100.0, 10000.0]}
base = perslib.PersonalizedRegressor(rank=rank, epochs=epochs, device=device, random_state=seed)
best_gamma, gamma_table, gamma_fits = select_by_held_out_loss(
    base, X, y, covariates=U, param_grid=gamma_grid, return_estimators=True
)
gamma_table["parameter MSE"] = [evaluation.parameter_mse(m.coef_, theta) for m in gamma_fits]
print(gamma_table[["matching_weight", "held_out_loss", "parameter MSE", "chosen"]].round(3).to_string(index=False))
truth_best = gamma_table["parameter MSE"].idxmin()
assert gamma_table.loc[truth_best, "chosen"], "the held-out loss should pick the γ that is best against the truth"
assert gamma_table["parameter MSE"].max() > 1.5 * gamma_table["parameter MSE"].min(), "γ should matter at all"
results["gamma chosen"] = float(best_gamma.matching_weight)

# %% [markdown]
# ## 3. The atoms and what they mean
#
# Left: the dictionary of the rank-4 fit as fitted (`dictionary_`, in the coefficients'
# own units, intercept left out). Because only the span is identified, the individual rows
# are an arbitrary rotation and hard to read. Right: the same span in a canonical basis,
# the **principal atoms** — a PCA of the fitted deviations θ̂ᵢ − θ_pop, which lie in the
# span of Q: unit-length directions ordered by how much of the models' spread they carry.

# %%
deviation = fits[rank].coef_ - fits[rank].population_coef_
pca_fit = PCA(n_components=rank).fit(deviation)
coords = pca_fit.transform(deviation)  # the latent coordinates in the principal basis, (n, rank)
share_fit = pca_fit.explained_variance_ratio_
fig, axes = plt.subplots(1, 2, figsize=(11, 0.45 * rank + 1.8), layout="constrained")
plotting.plot_dictionary(fits[rank].dictionary_, param_names=param_names, ax=axes[0], title="fitted atoms (rows of Q)")
plotting.plot_dictionary(
    pca_fit.components_,
    param_names=param_names,
    ax=axes[1],
    title="principal atoms",
    atom_names=[f"atom {k + 1} ({s:.0%})" for k, s in enumerate(share_fit)],
)
plotting.save_figure(fig, out_dir, "atoms")
# %% [markdown]
# **Does the dictionary span the right subspace?** The principal angles between the span
# of the fitted atoms and the first q principal directions of the *true* θ
# (`scipy.linalg.subspace_angles`) are 0° for identical subspaces and up to 90°. For
# scale, we also measure random q-dimensional subspaces of ℝᵖ.

# %% tags=["nbval-check-output"]
angles = np.degrees(subspace_angles(fits[rank].dictionary_.T, pca_true.components_[:rank].T))
rng = np.random.default_rng(seed)
angles_random = np.median(
    [
        np.degrees(subspace_angles(rng.standard_normal((theta.shape[1], rank)), pca_true.components_[:rank].T)).max()
        for _ in range(200)
    ]
)
print(f"largest principal angle, fitted atoms vs top-{rank} directions of the true θ: {angles.max():.0f}°")
print(f"the same for random {rank}-dimensional subspaces (median of 200): {angles_random:.0f}°")
assert angles.max() < 15, "the fitted dictionary should span the principal subspace of the true θ"
results.update(max_principal_angle_deg=angles.max(), max_principal_angle_random_median_deg=angles_random)

# %% [markdown]
# The fitted span matches the truth's principal subspace to within a few degrees,
# learned from one noisy response per sample. **What the atoms encode** shows in the
# latent coordinates $a_i$ (in the principal basis): below, coordinates 1 and 2 against
# each other, and the next coordinates against `u_position`, all coloured by the true
# process, which the model never saw.

# %%
n_panels = min(rank, 4) - 1
fig, axes = plt.subplots(1, n_panels, figsize=(4.2 * n_panels, 3.8), layout="constrained", squeeze=False)
plotting.plot_parameter_space(
    coords[:, :2], process, param_names=["coordinate 1", "coordinate 2"], ax=axes[0, 0], title="coordinates 1 and 2"
)
for k in range(2, n_panels + 1):
    plotting.plot_parameter_space(
        np.column_stack([U["u_position"], coords[:, k]]),
        process,
        ax=axes[0, k - 1],
        param_names=["u_position", f"coordinate {k + 1}"],
        title=f"coordinate {k + 1}",
    )
plotting.save_figure(fig, out_dir, "atom_coordinates")
# %% [markdown]
# To put numbers on it we use the correlation ratio η² (`evaluation.binned_explained_variance`):
# the share of a coordinate's variance explained by the process alone, by the process
# together with `u_position` (10 position bins within each process), and by the
# irrelevant covariate.

# %% tags=["nbval-check-output"]
names = [f"coordinate {k + 1}" for k in range(rank)]
eta_process = evaluation.binned_explained_variance(coords, pd.DataFrame({"process": process}), param_names=names)
eta_position = evaluation.binned_explained_variance(coords, U[["u_position"]], by=process, param_names=names)
eta_irrelevant = evaluation.binned_explained_variance(coords, U[["u_irrelevant_0"]], param_names=names)
eta = pd.concat([eta_process, eta_position, eta_irrelevant]).drop(columns="all")
eta.index = ["process", "process × u_position", "u_irrelevant_0"]
print(eta.round(1).to_string())
assert (eta.loc["process", names[:2]] > 0.6).all(), "the two leading atoms should separate the processes"
assert (eta.loc["process × u_position"] > 0.8).all(), "process and position should explain every coordinate"
assert (eta.loc["u_irrelevant_0"] < 0.05).all(), "no atom should follow the irrelevant covariate"
results.update({f"eta2 {row} {col}": v for row, r in eta.iterrows() for col, v in r.items()})

# %% [markdown]
# **What to conclude.** The two leading atoms move a model between the arc centres: their
# coordinates are mostly determined by the process (three clouds in the left panel), with
# the rest of their variance the bulge of each arc. The next atoms are *within-process*
# directions: they carry the oscillation of θ2–θ4 along each arc, smooth curves in
# `u_position` with a different phase per process. Process and position together explain
# essentially all of every coordinate, and the irrelevant covariate none. This matches the
# simulator's formula, which the model never saw: the first two coefficients place the
# process's arc centre, the others oscillate along the arc. Note that the process is
# *not* one atom: with three processes in a plane, the process needs two.

# %% [markdown]
# ## 4. Full rank against low rank
#
# Accuracy on the training samples and on **fresh samples** from the same processes
# (another seed), whose θ is predicted from their covariates alone (the kNN rule,
# `predict_params`); fit time; and memory. For memory we report two things. The number
# of trained per-sample and dictionary parameters, $n_\text{fit}(p+1)$ for full rank and
# $n_\text{fit}q + q(p+1)$ for low rank, and what Adam keeps for them in float32 (value,
# gradient and two moments: 16 bytes each). And the measured increase of the process's
# resident (host) memory during each fit (`evaluation.peak_memory_increase`; on a GPU the
# tensors live in device memory and are not counted). Be careful with the second: it
# sees only memory newly taken from the operating system, and after the first fit of a
# session most memory is reused from earlier fits, so at this size it mostly reads close
# to zero. A fit's peak memory in isolation is what the benchmark measures
# (one fresh process per fit, section 6).

# %%
X_new, y_new, U_new, theta_new, _ = data.make_personalized_regression(
    n_samples=n_samples, n_features=n_features, n_covariates=n_covariates, random_state=seed + 1
)
low_name = f"low rank (q {rank})"
compare = {"population": population, low_name: fits[rank], "full rank": fits[None]}
p1 = theta.shape[1] + 1  # coefficients and intercept
trained = {
    "population": p1,
    low_name: len(fits[rank].train_index_) * rank + rank * p1,
    "full rank": len(fits[None].train_index_) * p1,
}
measured = {"population": np.nan, low_name: rss[rank], "full rank": rss[None]}
table = pd.DataFrame(
    {
        name: {
            "parameter MSE": evaluation.parameter_mse(m.coef_, theta),
            "new samples: parameter MSE": evaluation.parameter_mse(m.predict_params(U_new)[0], theta_new),
            "new samples: prediction MSE": np.mean((m.predict(X_new, covariates=U_new) - y_new) ** 2),
            "trained parameters": trained[name],
            "Adam state (MB)": 16 * trained[name] / 2**20,
            "measured RSS increase (MB)": (measured[name] if measured[name] is not None else np.nan) / 2**20,
            "fit s": getattr(m, "fit_time_", np.nan),
            "epochs": getattr(m, "n_epochs_", np.nan),
        }
        for name, m in compare.items()
    }
).T
table.round(3)

# %% tags=["nbval-check-output"]
print(table[["parameter MSE", "new samples: parameter MSE", "new samples: prediction MSE"]].round(2).to_string())
print("trained parameters:", table["trained parameters"].astype(int).to_dict())
low, full = table.loc[low_name], table.loc["full rank"]
assert low["parameter MSE"] < 0.5 * full["parameter MSE"]
assert low["new samples: parameter MSE"] < 0.5 * full["new samples: parameter MSE"]
assert (
    low["new samples: prediction MSE"]
    < full["new samples: prediction MSE"]
    < table.loc["population", "new samples: prediction MSE"]
)
results.update(
    {
        f"{col} {name}": v
        for name, row in table.iterrows()
        for col, v in row.items()
        if col in ("parameter MSE", "new samples: parameter MSE", "new samples: prediction MSE")
    }
)

# %% [markdown]
# **What to conclude.** Low rank wins on accuracy by a wide margin, on the training
# samples and on new ones, and the gap in the response (prediction MSE; the noise floor is
# 0.25) is as large as in the parameters. Both fit in a few seconds here. On memory the
# honest summary is that with p = 5 there is little to gain: q = 4 against p + 1 = 6
# numbers per sample is a saving of a third, and at n = 2,000 either state is a fraction of
# a megabyte, far below the fixed cost of the Python process with torch (≈ 340 MB in the
# benchmark). The count matters when p is large: for the pan-cancer model of NeurIPS 2019
# (p = 1,234, q = 50) a low-rank model stores about 25 times fewer numbers per sample.
# Section 6 quotes the benchmark's peak memory for its largest fit.

# %% [markdown]
# ## 5. Relaxation: from the population model to one model per sample
#
# Every model starts at the population estimate (θᵢ = θ_pop, up to the tiny random
# initial zᵢ) and relaxes away from it only as far as its own data pay for, against the
# matching term and the pull λ‖θᵢ − θ_pop‖². The rank-4 fit recorded the coefficients of
# its training samples after the epochs in `snapshot_epochs` (`snapshots_`). Below are
# (θ0, θ1) at those epochs, the fitted models (the best validation epoch, which early
# stopping restores)
# and, last, the truth: the three arcs of Figure 1 of the NeurIPS paper. Colour is the
# true process.

# %%
relax = fits[rank]
rows = relax.train_index_  # snapshots cover the trained samples (not the early-stopping hold-out)
panels = {f"epoch {e}": coef for e, (coef, _) in relax.snapshots_.items()}
best_epoch = int(relax.history_.loc[relax.history_["val_loss"].idxmin(), "epoch"])  # restored by early stopping
panels[f"fitted (epoch {best_epoch} of {relax.n_epochs_})"] = relax.coef_[rows]
panels["true θ"] = theta[rows]
fig = plotting.plot_snapshots(panels, labels=process[rows], param_names=param_names, n_cols=4)
plotting.save_figure(fig, out_dir, "relaxation")
# %% [markdown]
# **What to look at.** At epoch 0 all models sit on one point, the population estimate,
# near the centre of the three arcs (where no sample's true model is). Over the first
# epochs the cloud spreads along the directions the atoms are learning, splits into three
# groups by process, and bends into the arcs; within twenty epochs the error has fallen to
# less than half the population model's (asserted below), and the remaining epochs refine
# the picture. The error against the truth at each snapshot:

# %% tags=["nbval-check-output"]
relax_err = pd.Series({e: evaluation.parameter_mse(coef, theta[rows]) for e, (coef, _) in relax.snapshots_.items()})
relax_err.index.name = "epoch"
err_fitted = evaluation.parameter_mse(relax.coef_[rows], theta[rows])
err_pop_rows = evaluation.parameter_mse(relax.population_coef_, theta[rows])
print((relax_err / err_pop_rows).round(2).rename("error / population error").to_string())
print(f"fitted (best epoch): {err_fitted / err_pop_rows:.2f}")
assert (np.diff(relax_err.to_numpy()) < 0.05 * err_pop_rows).all(), "the error should fall as training proceeds"
assert relax_err.loc[20] < 0.5 * relax_err.loc[0], "most of the relaxation should happen in the first twenty epochs"
assert err_fitted < 0.1 * err_pop_rows
results.update({f"relaxation error ratio epoch {e}": v / err_pop_rows for e, v in relax_err.items()})

# %%
fig = plotting.plot_sweep(
    list(relax_err.index) + [best_epoch],
    {"low-rank PR": list(relax_err) + [err_fitted]},
    references={"population model": err_pop_rows},
    logy=True,
    xlabel="epoch",
    ylabel="parameter MSE vs the true θ",
    title="relaxation: error during training",
)
fig.axes[0].annotate("fitted", (best_epoch, err_fitted), xytext=(0, 8), textcoords="offset points", ha="center")
plotting.save_figure(fig, out_dir, "relaxation_error")
# %% [markdown]
# ## 6. Scaling: fit time against the number of samples
#
# Nothing in a fit is quadratic in n: partners are the k nearest samples under the
# learned metric (a KD-tree, O(n log n) per refresh), each epoch visits every sample
# once with its k pairs (O(n·k)), and no n × n distance matrix is ever formed (the
# reference code precomputes one, O(n²) in time and memory). So one epoch should cost
# O(n), and a fit O(n) times the number of epochs, which early stopping decides.
#
# We time rank-`rank` fits live at `scaling_sizes`, on this machine and device, and plot
# them with the committed benchmark (`benchmarks/results.csv`, measured by
# `benchmarks/personalized.py` up to n = 100,000, one fresh process per fit, one thread;
# the machine is in the legend). Where the table holds runs of several library versions,
# tagged in its `note` column (`benchmarks/README.md` explains them), each version is its
# own series. On log-log axes a power law n^b is a straight line of slope b; the dotted
# guides show slopes 1 and 2.

# %%
live = []
for n in scaling_sizes:
    if n == n_samples:  # the same data as the sweep: reuse its rank-q fit
        m = fits[rank]
    else:
        Xs, ys, Us, _, _ = data.make_personalized_regression(
            n_samples=n, n_features=n_features, n_covariates=n_covariates, random_state=seed
        )
        m = perslib.PersonalizedRegressor(rank=rank, epochs=epochs, device=device, random_state=seed).fit(
            Xs, ys, covariates=Us
        )
    live.append({"n": n, "fit_s": m.fit_time_, "epochs": m.n_epochs_})
live = pd.DataFrame(live).assign(source=f"live, this run, {fits[rank].device_.type}")
bench = pd.read_csv(benchmark_csv)
notes = bench["note"].fillna("").str.split(";").apply(lambda tokens: [t.strip() for t in tokens])
bench = bench[(bench["method"] == "lowrank") & (bench["threads"] == 1) & (notes.str[0] == f"rank={rank}")]
version = notes[bench.index].apply(lambda tokens: " ".join(t for t in tokens[1:] if not t.startswith("cpu ")))
cpu = bench["machine"].str.split("; ").str[1].fillna("?")
bench = bench.assign(source=("benchmark " + version).str.strip() + ", " + cpu + ", 1 thread")
scaling = pd.concat([live, bench[["n", "fit_s", "epochs", "source"]]], ignore_index=True)
scaling["s per epoch"] = scaling["fit_s"] / scaling["epochs"]
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
plotting.plot_scaling(
    scaling, "n", "fit_s", hue="source", ax=axes[0], xlabel="samples n", ylabel="fit time (s)", title="fit time"
)
plotting.plot_scaling(
    scaling,
    "n",
    "s per epoch",
    hue="source",
    ax=axes[1],
    xlabel="samples n",
    ylabel="seconds per epoch",
    title="time per epoch",
)
plotting.save_figure(fig, out_dir, "scaling")
scaling.round(3)

# %% [markdown]
# **What to look at.** Every series lies along slope ≈ 1 or below, far from the slope-2
# guide. At small n the fixed costs (population fit, tree building, Python overhead per
# minibatch) dominate and the curve is flatter; above a few thousand samples the cost per
# epoch grows in proportion to n. Whole-fit times scatter more than per-epoch times because
# early stopping ends each fit after a different number of epochs. The live timings come
# from a shared machine and move from run to run; they are not printed in a checked cell.

# %%
slope_live, _ = evaluation.power_law_fit(live["n"], live["fit_s"] / live["epochs"])
slope_fit, _ = evaluation.power_law_fit(live["n"], live["fit_s"])
print(f"live slopes: {slope_live:.2f} per epoch, {slope_fit:.2f} per fit")
assert slope_live < 1.5, "the cost of an epoch should grow about linearly in n, not quadratically"
for source, part in bench.groupby("source", sort=False):  # one series per benchmark version in the table
    if part["n"].nunique() < 2:
        continue
    slope_bench, _ = evaluation.power_law_fit(part["n"], part["fit_s"] / part["epochs"])
    big = part.loc[part["n"].idxmax()]
    print(
        f"{source}: slope per epoch {slope_bench:.2f} (n = {part['n'].min()} to {part['n'].max():,}); at the "
        f"largest n fit {big['fit_s']:.0f} s, peak memory {big['peak_mb']:.0f} MB for the whole process, "
        f"{big['peak_mb'] - big['base_mb']:.0f} MB above its state before the fit"
    )
    assert slope_bench < 1.5
    results[f"scaling slope per epoch {source}"] = slope_bench
results.update({"scaling slope live per epoch": slope_live, "scaling slope live per fit": slope_fit})

# %% [markdown]
# ## 7. Summary
#
# * **A dictionary of a few basis models** makes one model per sample estimable: each
#   sample picks q coordinates, the atoms are learned from everyone. On the simulation
#   the error falls steeply up to q = 4, the linear dimension of the true θ (four
#   principal components hold 99% of its variance), and is flat beyond; it follows the
#   floor set by the PCA of the truth.
# * **The span, not the atoms, is what a fit identifies.** The fitted span agrees with the
#   principal subspace of the true θ to a few degrees. Read in a canonical (principal)
#   basis, the leading atoms separate the processes and the next ones follow the position
#   along each arc; none follows the irrelevant covariate.
# * **Low rank against full rank**: far more accurate, for training and new samples,
#   in comparable time. The memory saving is small at p = 5 and grows with p.
# * **Relaxation**: every model starts at the population estimate and the collection
#   unfolds into the true arcs within a few dozen epochs.
# * **Scaling**: the cost per epoch grows linearly in n; the benchmark fits 100,000
#   samples in a few minutes with one thread of a 2-core CPU.
#
# Choosing q in practice: sweep it as here, with the early-stopping loss (or held-out
# prediction error) in place of the truth, and take the smallest q after which it stops
# improving; too large a q costs little. See notebook 02 for the method and its
# comparison with classic baselines, and `benchmarks/README.md` for the full benchmark,
# including Contextualized ML.
#
# **References.** B. Lengerich, B. Aragam, E. P. Xing. *Learning sample-specific models
# with low-rank personalized regression.* NeurIPS 2019 (arXiv:1910.06939).
# B. Lengerich, B. Aragam, E. P. Xing. *Personalized regression enables sample-specific
# pan-cancer analysis.* Bioinformatics 34(13):i178-i186 (ISMB 2018). C. Eckart, G. Young.
# *The approximation of one matrix by another of lower rank.* Psychometrika 1(3), 1936.

# %%
out_dir.mkdir(parents=True, exist_ok=True)
sweep.to_csv(out_dir / "rank_sweep.csv")
table.to_csv(out_dir / "full_vs_low_rank.csv")
scaling.to_csv(out_dir / "scaling.csv", index=False)
with open(out_dir / "metrics.json", "w") as fh:
    json.dump({k: float(v) for k, v in results.items()}, fh, indent=2, sort_keys=True)
print(f"wrote {len(results)} metrics and {len(list(out_dir.iterdir()))} files")

# %% [markdown]
# ## Exercises
#
# 1. The sweep table puts the held-out loss (what `rank="auto"` uses, no truth needed)
#    next to the parameter error against the true θ. Re-run with `seed = 1`: do the two
#    columns still agree on the best rank?
# 2. Halve the number of samples: does the best rank go down, and why would it?
# 3. Plot two atoms of the dictionary $Q$ against the simulator's processes: which atom
#    carries the process identity and which the position along it?
