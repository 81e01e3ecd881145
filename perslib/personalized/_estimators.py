"""Personalized regression estimators: one regression model per sample.

Lengerich, Aragam & Xing, ISMB 2018 (full rank) and NeurIPS 2019 (low rank). Every
training sample gets its own parameters θ_i; covariates ``u_i`` (never predictors) say
which samples should have similar parameters, through distance matching. The objective
and the optimizers live in :class:`perslib.personalized._module.PersonalizedModule`; the
partner table and the snapshots are callbacks of the shared training loop. Why each
piece is as it is, with the measurements: ``docs/design/personalized.md``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from numbers import Integral, Real
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch
from scipy.spatial import cKDTree
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import NearestNeighbors

from perslib._core.estimator import BinaryClassifierMixin, PerslibEstimator, standardize_target
from perslib._core.runtime import resolve_device, seeded_torch
from perslib._core.training import PlateauDecay, split_validation, train_loop
from perslib._core.validation import (
    Instance,
    Interval,
    Options,
    check_consistent_length,
)
from perslib.mlp import _NETWORK_CONSTRAINTS
from perslib.personalized._distances import CovariateSpace
from perslib.personalized._module import Objective, PersonalizedModule
from perslib.personalized._partners import NEIGHBOR_MODES, PartnerTable, Snapshots, knn_table

__all__ = ["PersonalizedClassifier", "PersonalizedRegressor"]

_NONNEGATIVE = [Interval(Real, 0, None)]
AUTO_RANKS = (1, 2, 4, 8)  # ranks rank="auto" tries (and p + 1 when below 8)
AUTO_RANK_GAIN = 0.01  # it keeps the smallest rank whose held-out loss is within 1 % of the best
_POSITIVE_INT = [Interval(Integral, 1, None)]
# the large-n path (``large_n``): from this many trained samples on, the "auto" settings below apply;
# at 9,000-36,000 trained samples it fits 3-5x faster than the small path and recovers θ better
# (benchmarks/README.md); n = 10⁴ (9,000 trained) takes it, the notebooks' data (≤ 7,185 samples) do not
LARGE_N = 8_000
SMALL_BATCH = 512  # batch_size="auto" below large_n: the value every fit used before "auto" existed
STEPS_PER_EPOCH = 64  # batch_size="auto" at large n, autograd objectives: ceil(n_train / 64), at least SMALL_BATCH
FUSED_STEPS_PER_EPOCH = 16  # ... closed-form engine (_fused): its step costs per row, so fewer, larger steps
LARGE_REFRESH = 5  # refresh_every="auto" at large n: partners refreshed every 5 epochs (1 below large_n)
LARGE_VAL_MAX = 10_000  # at large n the per-epoch held-out loss is taken on a fixed subsample of this many
LARGE_DECAY_FACTOR = 0.5  # at large n the learning rate is halved ...
LARGE_DECAY_PATIENCE = 5  # ... after this many epochs without held-out improvement


def auto_schedule(
    n_train: int, batch_size="auto", refresh_every="auto", large_n: int = LARGE_N, fused: bool = False
) -> tuple[int, int, bool]:
    """Minibatch size, partner-refresh period and path of a fit on ``n_train`` samples.

    Parameters
    ----------
    n_train : int
        Trained samples (after the held-out split).
    batch_size, refresh_every : int or "auto"
        The estimator's parameters; an int is returned unchanged.
    large_n : int
        First ``n_train`` of the large-n path.
    fused : bool, default=False
        Whether the fit runs on the closed-form engine (:mod:`perslib.personalized._fused`).

    Returns
    -------
    batch_size : int
        ``"auto"``: 512 below ``large_n`` (the historical default, so small fits are bit
        for bit what they were), else ``max(512, ceil(n_train / 64))``: about 64 optimizer
        steps per epoch whatever n, so the per-step Python overhead no longer grows with n;
        with ``fused``, ``ceil(n_train / 16)`` (that engine's step costs per row, not per
        call). Every row of the per-sample table still gets one lazy-Adam step per epoch.
    refresh_every : int
        ``"auto"``: 1 below ``large_n``, else 5 (a neighbour search is O(n log n) and costs
        more than an epoch of steps at large n).
    large : bool
        ``n_train >= large_n``: the large-n path (also SciPy neighbour search on every
        core and a held-out loss on a fixed subsample of at most 10,000 samples).
    """
    large = n_train >= large_n
    if batch_size == "auto":
        steps = FUSED_STEPS_PER_EPOCH if fused else STEPS_PER_EPOCH
        batch_size = max(SMALL_BATCH, -(-n_train // steps)) if large else SMALL_BATCH
    if refresh_every == "auto":
        refresh_every = LARGE_REFRESH if large else 1
    return int(batch_size), int(refresh_every), large


class _PersonalizedBase(PerslibEstimator):
    """Shared fit/predict code of the two personalized estimators (not public)."""

    _task = "linear"
    _requires_covariates = True
    _parameter_constraints = {
        "rank": [Options(None, "auto"), Interval(Integral, 1, None)],
        "objective": [Options("bound", "match", "paper")],
        "neighbors": [Options(*NEIGHBOR_MODES)],
        "n_neighbors": _POSITIVE_INT,
        "refresh_every": [Options("auto"), Interval(Integral, 1, None)],
        "matching_weight": [Options(None), Interval(Real, 0, None)],
        "pull": _NONNEGATIVE,
        "metric_penalty": _NONNEGATIVE,
        "metric_learning": _NONNEGATIVE,
        "latent_decay": _NONNEGATIVE,
        "population_alpha": _NONNEGATIVE,
        "n_neighbors_predict": _POSITIVE_INT,
        "encoder": [Options(None, "mlp")],
        "encoder_hidden": _NETWORK_CONSTRAINTS["hidden"],
        "encoder_weight": _NONNEGATIVE,
        "epochs": _POSITIVE_INT,
        "batch_size": [Options("auto"), Interval(Integral, 1, None)],
        "large_n": _POSITIVE_INT,
        "lr": _NETWORK_CONSTRAINTS["lr"],
        "val_fraction": _NETWORK_CONSTRAINTS["val_fraction"],
        "patience": _NETWORK_CONSTRAINTS["patience"],
        "standardize": [Options(True, False)],
        "categorical_covariates": [Options(None), Instance(tuple, list)],
        "device": _NETWORK_CONSTRAINTS["device"],
        "random_state": _NETWORK_CONSTRAINTS["random_state"],
        "progress": _NETWORK_CONSTRAINTS["progress"],
        "snapshot_epochs": [
            Options(None),
            Instance(tuple, list, range, of=Interval(Integral, 0, None), description="a sequence of ints >= 0"),
        ],
    }

    def __init__(
        self,
        rank: int | str | None = "auto",
        *,
        objective: str = "bound",
        neighbors: str = "covariate",
        n_neighbors: int = 10,
        refresh_every: int | str = "auto",
        matching_weight: float | None = None,
        pull: float = 1e-2,
        metric_penalty: float = 1e-2,
        metric_learning: float = 1.0,
        latent_decay: float = 1e-3,
        population_alpha: float = 1.0,
        n_neighbors_predict: int = 10,
        encoder: str | None = None,
        encoder_hidden: Sequence[int] = (32, 32),
        encoder_weight: float = 1.0,
        epochs: int = 300,
        batch_size: int | str = "auto",
        large_n: int = LARGE_N,
        lr: float = 0.04,
        val_fraction: float = 0.1,
        patience: int = 20,
        standardize: bool = True,
        categorical_covariates: Sequence | None = None,
        device: str = "auto",
        random_state: int | None = None,
        progress: bool | None = None,
        snapshot_epochs: Sequence[int] | None = None,
    ) -> None:
        self.rank = rank
        self.objective = objective
        self.neighbors = neighbors
        self.n_neighbors = n_neighbors
        self.refresh_every = refresh_every
        self.matching_weight = matching_weight
        self.pull = pull
        self.metric_penalty = metric_penalty
        self.metric_learning = metric_learning
        self.latent_decay = latent_decay
        self.population_alpha = population_alpha
        self.n_neighbors_predict = n_neighbors_predict
        self.encoder = encoder
        self.encoder_hidden = encoder_hidden
        self.encoder_weight = encoder_weight
        self.epochs = epochs
        self.batch_size = batch_size
        self.large_n = large_n
        self.lr = lr
        self.val_fraction = val_fraction
        self.patience = patience
        self.standardize = standardize
        self.categorical_covariates = categorical_covariates
        self.device = device
        self.random_state = random_state
        self.progress = progress
        self.snapshot_epochs = snapshot_epochs

    # ------------------------------------------------------------------ inputs
    def _check_covariates(self, covariates, n: int, *, reset: bool) -> np.ndarray:
        if covariates is None:
            raise ValueError("covariates is required: pass covariates=U of shape (n_samples, n_covariates)")
        if len(covariates) != n:
            raise ValueError(f"inconsistent numbers of samples: X has {n}, covariates has {len(covariates)}")
        self._check_column_names(covariates, reset=reset)
        if reset:
            self.covariate_space_ = CovariateSpace(self.categorical_covariates).fit(covariates)
        return self.covariate_space_.transform(covariates)

    def _objective(self) -> Objective:
        gamma = self.matching_weight if self.matching_weight is not None else 100.0
        return Objective(
            task=self._task,
            kind=self.objective,
            matching_weight=gamma,
            pull=self.pull,
            metric_penalty=self.metric_penalty,
            metric_learning=self.metric_learning,
            latent_decay=self.latent_decay,
            encoder_weight=self.encoder_weight,
        )

    def _population(self, Xs, target) -> np.ndarray:
        raise NotImplementedError

    def _predicted_latent(
        self, module, cov_query: np.ndarray, feats_query: torch.Tensor, fast: bool = False, partners=None
    ) -> torch.Tensor:
        """Latent (z, or θ for full rank) of query samples: the encoder, or the kNN rule.

        ``cov_query`` (m, K) encoded covariates, ``feats_query`` (m, D) encoder inputs;
        returns (m, q) (or (m, p + 1) at full rank). ``fast``: SciPy neighbour search.
        ``partners``: a :class:`PartnerTable` whose last refresh built a tree answers the
        search (:meth:`PartnerTable.nearest`, no new tree) when it can.
        """
        if module.encoder is not None:
            return module.encoder(feats_query)
        ind = partners.nearest(cov_query, self.n_neighbors_predict) if partners is not None else None
        if ind is None:
            shares = module.shares().detach().cpu().numpy().astype(np.float64)
            space = self.covariate_space_
            ind = knn_table(
                space.search_matrix(self._cov_train, shares),
                self.n_neighbors_predict,
                query=space.search_matrix(cov_query, shares),
                fast=fast,
            )
        return module.latent_of(torch.as_tensor(ind, device=self.device_)).mean(1)

    # ------------------------------------------------------------------ fit
    def _fit(self, X, covariates, target: np.ndarray):
        """Fit at the given rank, or (``rank="auto"``) choose it by the held-out loss."""
        if self.rank != "auto":
            return self._fit_rank(self.rank, X, covariates, target)
        if not self.val_fraction > 0:
            raise ValueError("rank='auto' chooses the rank by the held-out samples' loss: val_fraction must be > 0")
        t0 = time.perf_counter()
        n_params = X.shape[1] + 1
        candidates = sorted(
            {q for q in AUTO_RANKS if q <= n_params} | ({n_params} if n_params < max(AUTO_RANKS) else set())
        )
        scores, fits = {}, {}
        for q in candidates:
            self._fit_rank(q, X, covariates, target)
            scores[q], fits[q] = float(self.history_["val_loss"].min()), dict(vars(self))
        # the smallest rank within 1 % of the best held-out loss: a larger dictionary must pay for itself
        chosen = min(q for q in candidates if scores[q] <= min(scores.values()) * (1 + AUTO_RANK_GAIN))
        self.__dict__.update(fits[chosen])
        self.rank_scores_ = pd.Series(scores, name="held-out loss").rename_axis("rank")
        self.fit_time_ = time.perf_counter() - t0
        return self

    def _fit_rank(self, rank, X, covariates, target: np.ndarray):
        self.rank_ = rank
        t0 = time.perf_counter()
        rng, torch_seed = self._random_streams()
        self.device_ = resolve_device(self.device)
        d = self._prepare(X, target, covariates, rng)
        with seeded_torch(torch_seed, self.device_):
            module = PersonalizedModule(
                len(d.train_idx),
                d.X.shape[1],
                d.cov.shape[1],
                self.rank_,
                d.theta_pop,
                rng,
                encoder_in=d.feats.shape[1] if self.encoder == "mlp" else None,
                encoder_hidden=self.encoder_hidden,
                objective=self._objective(),
            ).to(self.device_)
            large = len(d.train_idx) >= self.large_n
            d.large, d.fused = large, large and module.supports_fused()
            self.batch_size_, self.refresh_every_, _ = auto_schedule(
                len(d.train_idx), self.batch_size, self.refresh_every, self.large_n, fused=d.fused
            )
            partners = PartnerTable(
                self.neighbors,
                self.n_neighbors,
                self.refresh_every_,
                module,
                self.covariate_space_,
                self._cov_train,
                rng,
                fast=large,
            )
            snapshots = Snapshots(module, self.snapshot_epochs)
            self.history_ = self._train(module, d, partners, snapshots, torch_seed)
        self.n_epochs_ = int(len(self.history_))
        self._store_fit(module, d, partners.table, snapshots.values)
        self.fit_time_ = time.perf_counter() - t0
        return self

    def _prepare(self, X, target, covariates, rng) -> SimpleNamespace:
        """Standardize, fit the population model, split off the held-out samples, make tensors."""
        n = X.shape[0]
        cov = self._check_covariates(covariates, n, reset=True)
        self.n_covariates_ = cov.shape[1]
        # standardization (undone on the way out, so coef_ are in the user's units)
        self.x_mean_ = X.mean(0) if self.standardize else np.zeros(X.shape[1])
        sd = X.std(0) if self.standardize else np.ones(X.shape[1])
        self.x_scale_ = np.where(sd > 0, sd, 1.0)
        Xs = (X - self.x_mean_) / self.x_scale_
        theta_pop = self._population(Xs, target)  # (p+1,), intercept last, standardized units
        stratify = target if self._task == "logistic" else None
        train_idx, val_idx = split_validation(n, self.val_fraction, rng, stratify=stratify)
        if len(train_idx) < 2:
            raise ValueError(
                f"need at least 2 training samples after the validation split, got {len(train_idx)} sample(s)"
            )
        if len(train_idx) >= self.large_n:
            # large n: the trained samples in the leaf order of a KD-tree over their covariates, so a
            # sample's partners (its covariate neighbours) sit near it in memory; _store_fit restores
            # the row order of every fitted attribute
            uniform = np.full(cov.shape[1], 1.0 / cov.shape[1])
            train_idx = train_idx[cKDTree(self.covariate_space_.search_matrix(cov[train_idx], uniform)).indices]
        self._cov_train = cov[train_idx]

        def tensor(a, dtype=torch.float32):
            return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=self.device_)

        feats = tensor(self.covariate_space_.feature_matrix(cov))
        return SimpleNamespace(
            X=tensor(np.hstack([Xs, np.ones((n, 1))])),
            y=tensor(target),
            U=tensor(cov),
            feats=feats,
            cov=cov,
            theta_pop=theta_pop,
            train_idx=train_idx,
            val_idx=val_idx,
            categorical=torch.as_tensor(self.covariate_space_.is_categorical_, device=self.device_),
        )

    def _train(self, module, d, partners, snapshots, torch_seed) -> pd.DataFrame:
        """Minibatches of trained samples on the module's objective; early stopping on the held-out ones."""
        tr, val = d.train_idx, d.val_idx
        X_tr, y_tr, U_tr, F_tr = d.X[tr], d.y[tr], d.U[tr], d.feats[tr]
        fused = d.fused  # large n: closed-form gradients (perslib.personalized._fused)
        optimizer = module.configure_optimizers(self.lr, fused=fused)

        def step(batch):
            (idx,) = batch
            optimizer.zero_grad(set_to_none=True)
            if fused:
                loss, terms, rows, row_grads = module.loss_and_grads(
                    idx,
                    partners.table.index_select(0, idx),
                    partners.deltas(U_tr, d.categorical).index_select(0, idx),
                    X_tr,
                    y_tr,
                )
                optimizer.step(rows, row_grads)
            else:
                loss, terms = module.loss(idx, partners.table[idx], X_tr, y_tr, U_tr, F_tr, d.categorical)
                loss.backward()
                optimizer.step()
            return {"loss": loss.item(), **{k: v.item() for k, v in terms.items()}}

        evaluate = None
        if d.large and len(val) > LARGE_VAL_MAX:  # large n: a fixed subsample keeps the per-epoch check cheap
            val = np.sort(np.random.default_rng(torch_seed).choice(val, LARGE_VAL_MAX, replace=False))
        if len(val):

            def evaluate():
                # large n: the neighbours from the last refresh's tree (no new tree each epoch)
                latent = self._predicted_latent(module, d.cov[val], d.feats[val], fast=d.large, partners=partners)
                theta_val = module.from_latent(latent)
                return module.prediction_loss((d.X[val] * theta_val).sum(1), d.y[val]).item()

        return train_loop(
            step,
            (torch.arange(len(tr), device=self.device_),),
            # large n: torch on every core (the gathers and scatters of the big per-sample tables split well)
            self._train_config(batch_size=self.batch_size_, cpu_threads=None if d.large else 1),
            module=module,
            evaluate=evaluate,
            generator=torch.Generator().manual_seed(torch_seed),
            # large n: the learning rate halved on held-out plateaus (the rows' Adam noise sets the error floor)
            callbacks=[snapshots, partners]
            + ([PlateauDecay(optimizer, LARGE_DECAY_FACTOR, LARGE_DECAY_PATIENCE)] if d.large else []),
        )

    def _store_fit(self, module, d, partners, snapshots) -> None:
        """The fitted state, NumPy and CPU only (the module itself is not kept)."""
        train_idx, val_idx, cov, Ft, theta_pop, n = d.train_idx, d.val_idx, d.cov, d.feats, d.theta_pop, len(d.cov)
        order = np.argsort(train_idx, kind="stable")  # internal row order -> the data's (identity below large_n)
        module.eval()
        with torch.no_grad():
            idx_all = torch.arange(len(train_idx), device=self.device_)
            theta_all = np.empty((n, module.theta_pop.shape[0]))
            theta_all[train_idx] = module.params_of(idx_all).cpu().numpy()
            latent_tr = module.latent_of(idx_all).cpu().numpy().astype(np.float64)
            if len(val_idx):
                latent_val = self._predicted_latent(module, cov[val_idx], Ft[val_idx], fast=d.large)
                theta_all[val_idx] = module.from_latent(latent_val).cpu().numpy()
            shares = module.shares().cpu().numpy().astype(np.float64)
        self.matching_ = module.matching_diagnostic(partners, d.U[train_idx], d.categorical)
        self.partners_ = train_idx[partners.cpu().numpy()][order]  # last partner table (n_fit, k), data row numbers
        self.heldout_ = np.zeros(n, dtype=bool)
        self.heldout_[val_idx] = True
        self.train_index_ = train_idx[order]
        self._theta_train_std = theta_all[self.train_index_]
        self.coef_, self.intercept_ = self._unstandardize(theta_all)
        self.snapshots_ = {e: self._unstandardize(snapshots[e][order]) for e in sorted(snapshots)}
        pop_coef, pop_int = self._unstandardize(theta_pop[None, :])
        self.population_coef_, self.population_intercept_ = pop_coef[0], float(pop_int[0])
        names = self.covariate_space_.columns_
        self.covariate_weights_ = (
            pd.Series(shares, index=names, name="share") if self.covariate_space_.frame_ else shares
        )
        if self.rank_ is not None:
            Q = module.Q.detach().cpu().numpy().astype(np.float64)
            self.dictionary_ = Q[:, :-1] * (self._y_scale / self.x_scale_)
            emb = np.empty((n, Q.shape[0]))
            emb[train_idx] = latent_tr
            if len(val_idx):
                emb[val_idx] = latent_val.cpu().numpy()
            self.embeddings_ = emb
            self._Q = Q
        else:
            with torch.no_grad():
                self.parameter_weights_ = module.theta_metric()[:-1].cpu().numpy().astype(np.float64)
                self.parameter_scale_ = float(torch.nn.functional.softplus(module.scale_raw))
            self._Q = None
        self._search_train = self.covariate_space_.search_matrix(self._cov_train[order], shares)
        self.neighbors_index_ = NearestNeighbors(algorithm="kd_tree", metric="manhattan").fit(self._search_train)
        self.encoder_ = module.encoder.cpu().eval() if module.encoder is not None else None
        self._theta_pop_std = theta_pop
        del self._cov_train

    def _unstandardize(self, theta_std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(coef (m, p), intercept (m,)) in the user's units from standardized θ (m, p+1)."""
        beta = theta_std[:, :-1] / self.x_scale_
        coef = beta * self._y_scale
        intercept = self._y_scale * (theta_std[:, -1] - beta @ self.x_mean_) + self._y_mean
        return coef, intercept

    # ------------------------------------------------------------------ predict
    def predict_params(self, covariates) -> tuple[np.ndarray, np.ndarray]:
        """Parameters of new samples from their covariates.

        Parameters
        ----------
        covariates : array-like or DataFrame of shape (m, K)

        Returns
        -------
        coef : ndarray of shape (m, p)
        intercept : ndarray of shape (m,)
            By the encoder when ``encoder="mlp"``, else the mean θ of the
            ``n_neighbors_predict`` nearest training samples under the learned metric.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "coef_")
        self._check_column_names(covariates, reset=False)
        cov = self.covariate_space_.transform(covariates)
        if self.encoder_ is not None:
            feats = torch.as_tensor(self.covariate_space_.feature_matrix(cov), dtype=torch.float32)
            with torch.no_grad():
                latent = self.encoder_(feats).numpy().astype(np.float64)
            theta = latent if self.rank_ is None else self._theta_pop_std + latent @ self._Q
        else:
            k = min(self.n_neighbors_predict, self._search_train.shape[0])
            query = self.covariate_space_.search_matrix(cov, np.asarray(self.covariate_weights_, dtype=np.float64))
            ind = self.neighbors_index_.kneighbors(query, n_neighbors=k, return_distance=False)
            theta = self._theta_train_std[ind].mean(1)
        return self._unstandardize(theta)

    def _decision(self, X, covariates) -> np.ndarray:
        X = self._check_X(X, reset=False)
        if covariates is None:
            raise ValueError("covariates is required: pass covariates=U of shape (n_samples, n_covariates)")
        check_consistent_length(X=X, covariates=covariates)
        coef, intercept = self.predict_params(covariates)
        return np.einsum("ij,ij->i", X, coef) + intercept


_DOC_PARAMS = """
    Parameters
    ----------
    rank : "auto", int or None, default="auto"
        ``q``: low rank (NeurIPS 2019), θ_i = θ_pop + Qᵀz_i with ``z_i ∈ R^q``.
        ``"auto"``: q chosen among 1, 2, 4, 8 (and p + 1 when smaller) by the loss on the
        held-out samples: the smallest q within 1 % of the best (one fit per rank tried). ``None``: full rank (ISMB 2018), one free
        θ_i per sample.
    objective : {"bound", "match", "paper"}, default="bound"
        The distance-matching term. ``"bound"``: the models of two partners may be no
        farther apart than s·πᵀΔ (their covariate distance under the learned shares π
        times a scale s fitted in closed form, least squares over the minibatch's pairs);
        farther pairs are pulled together. ``"match"``: the same scale, every pair pulled
        or pushed to exactly s·πᵀΔ (two-sided). In both the shares π are learned by the
        kNN-transfer term (``metric_learning``). ``"paper"``: exactly the NeurIPS 2019
        objective, ``(‖z_i − z_j‖ − φᵀΔ_ij)²`` with φ learned by this term and an L1
        penalty ``metric_penalty·Σφ``, no transfer term.
    neighbors : {"covariate", "latent", "random"}, default="covariate"
        How the ``n_neighbors`` partner pairs of each sample are chosen.
    n_neighbors : int, default=10
        Partners per sample (k); memory is O(n·k).
    refresh_every : int or "auto", default="auto"
        Epochs between partner refreshes. ``"auto"``: 1 below ``large_n`` trained
        samples, 5 from it on (a neighbour search costs more than an epoch's steps there).
    matching_weight : float or None, default=None
        γ, weight of the distance-matching term; ``None`` means 100.
    pull : float, default=1e-2
        λ, weight of ``‖θ_i − θ_pop‖²`` (standardized units).
    metric_penalty : float, default=1e-2
        υ, L1 penalty ``υ·Σφ`` on the covariate metric (``objective="paper"`` only; the
        other objectives fit the scale in closed form).
    metric_learning : float, default=1.0
        μ, weight of the kNN-transfer loss that teaches the shares π (objectives
        ``"bound"`` and ``"match"``); with 0 they stay uniform.
    latent_decay : float, default=1e-3
        ω, weight decay on Z and Q (low rank only).
    population_alpha : float, default=1.0
        Ridge α of the population model (logistic: ``C = 1/α``).
    n_neighbors_predict : int, default=10
        Training samples averaged to predict a new sample (kNN rule).
    encoder : {None, "mlp"}, default=None
        ``"mlp"`` trains an amortized encoder covariates → z (or θ) that then predicts.
    encoder_hidden : sequence of int, default=(32, 32)
    encoder_weight : float, default=1.0
        Weight of the encoder's pull towards the learned z_i (θ_i).
    epochs : int, default=300
        Most passes over the samples (early stopping usually ends sooner).
    batch_size : int or "auto", default="auto"
        Samples per minibatch, each with its k partner pairs. ``"auto"``: 512 below
        ``large_n`` trained samples (the value this estimator has always used, so small
        fits are unchanged); from it on ``ceil(n_train / 16)`` for the objectives of the
        closed-form engine (see ``large_n``) and ``max(512, ceil(n_train / 64))`` for the
        others: each row of the per-sample table still gets one step per epoch, and the
        per-step overhead stops growing with n.
    large_n : int, default=8000
        Number of trained samples (after the held-out split) from which the large-n path
        is taken: the ``"auto"`` batch size and refresh period above; for the low-rank
        objectives ``"bound"`` and ``"match"`` without encoder, gradients in closed form
        instead of autograd (the same objective and lazy Adam, ``perslib.personalized._fused``);
        the learning rate halved after 5 epochs without held-out improvement (column
        ``lr`` of ``history_``); torch on every CPU core; the trained samples stored in
        a spatial order of their covariates (fitted attributes keep the data's order);
        neighbour searches by SciPy's ``cKDTree`` on every core, the held-out samples'
        neighbours from the last refresh's tree, and the per-epoch held-out loss on a
        fixed random subsample of at most 10,000 held-out samples (all of them are
        still predicted at the end). Below it every fit is exactly as before the large-n
        path existed (the notebooks' default fits all are). The benchmark behind it,
        including the choice of 8,000, is in ``benchmarks/README.md``.
    lr : float, default=0.04
        Adam learning rate (the encoder's is ``min(lr, 0.02)``).
    val_fraction : float, default=0.1
        Samples held out of training; their predicted θ's loss is the early-stopping
        criterion (``heldout_``).
    patience : int, default=20
        Epochs without validation improvement before stopping.
    standardize : bool, default=True
        Standardize X (and y for regression) internally; ``coef_`` are in original units.
    categorical_covariates : sequence, optional
        Covariate columns (names or positions) to treat as categorical in addition to
        object/category/string/bool DataFrame columns.
    device : str, default="auto"
    random_state : int, optional
        Seeds the split, the initialisation, the partners and the minibatch order.
    progress : bool, optional
        Progress bar; ``None`` follows ``PERSLIB_PROGRESS``.
    snapshot_epochs : sequence of int, optional
        Record the trained samples' parameters after these many epochs (``snapshots_``).

    Attributes
    ----------
    coef_ : ndarray of shape (n_train, p)
        Per-sample coefficients, in the user's units, training-sample order.
    intercept_ : ndarray of shape (n_train,)
    population_coef_ : ndarray of shape (p,)
    population_intercept_ : float
    covariate_weights_ : pandas.Series (DataFrame covariates) or ndarray of shape (K,)
        The learned covariate metric's shares π (sum 1): which covariates decide who is
        close; partner search and the kNN rule use them. The metric is φ = s·π with the
        scale s in ``matching_``.
    matching_ : dict
        How the fitted models' distances relate to the covariate distances over the last
        partner pairs: ``scale`` s, ``correlation`` of ``d_param(i, j)`` with ``πᵀΔ_ij``,
        and the share of pairs ``within_bound`` (``d_param ≤ s·πᵀΔ``).
    rank_ : int or None
        The rank used (chosen by ``rank="auto"``).
    rank_scores_ : pandas.Series
        ``rank="auto"`` only: the held-out loss of each rank tried.
    dictionary_ : ndarray of shape (q, p)
        Low rank only: coefficient directions of the latent coordinates (user's units;
        ``coef_ = population_coef_ + embeddings_ @ dictionary_``).
    embeddings_ : ndarray of shape (n_train, q)
        Low rank only: latent z_i.
    parameter_weights_, parameter_scale_ : ndarray (p,), float
        Full rank only: the parameter-side metric φθ and scale s_θ.
    partners_ : ndarray of int, shape (n_train − n_heldout, k)
        The last partner table (row numbers of the training data).
    train_index_ : ndarray of int
        Rows that were trained (not held out).
    heldout_ : ndarray of bool, shape (n_train,)
        Samples held out for early stopping; their rows of ``coef_`` are predicted.
    history_ : pandas.DataFrame
        Per epoch: ``train_loss``, ``pred_loss``, ``match_loss``, ``transfer_loss``, ``val_loss``
        (and, on the large-n path, ``lr``: the learning rate the epoch ran at).
    snapshots_ : dict of int -> (ndarray (n_fit, p), ndarray (n_fit,))
        With ``snapshot_epochs``: ``(coef, intercept)`` of the trained samples after that
        many epochs; 0 is the initialisation (every model at the population estimate).
    n_epochs_ : int
    batch_size_, refresh_every_ : int
        The minibatch size and partner-refresh period used (``"auto"`` resolved).
    fit_time_ : float
        Seconds.
    feature_names_in_, covariate_names_in_ : ndarray of str
        Column names of DataFrame ``X`` / ``covariates`` (absent for arrays).
"""


class PersonalizedRegressor(RegressorMixin, _PersonalizedBase):
    __doc__ = "Personalized linear regression: one (coef, intercept) per sample.\n" + _DOC_PARAMS

    _task = "linear"

    def _population(self, Xs, target):
        model = Ridge(alpha=self.population_alpha).fit(Xs, target)
        return np.append(model.coef_, model.intercept_)

    def fit(self, X, y, *, covariates=None):
        """Fit on ``X`` (n, p), ``y`` (n,) and ``covariates`` (n, K); returns self."""
        X, y = self._validate_fit(X, y, covariates=covariates)
        target, self._y_mean, self._y_scale = standardize_target(y, self.standardize)
        return self._fit(X, covariates, target)

    def predict(self, X, *, covariates=None) -> np.ndarray:
        """Predictions (m,) for new samples ``X`` (m, p) with ``covariates`` (m, K)."""
        return self._decision(X, covariates)


class PersonalizedClassifier(BinaryClassifierMixin, ClassifierMixin, _PersonalizedBase):
    __doc__ = "Personalized logistic regression (binary): one (coef, intercept) per sample.\n" + _DOC_PARAMS

    _task = "logistic"

    def _population(self, Xs, target):
        model = LogisticRegression(C=1.0 / max(self.population_alpha, 1e-12), max_iter=1000).fit(Xs, target)
        return np.append(model.coef_[0], model.intercept_[0])

    def fit(self, X, y, *, covariates=None):
        """Fit on ``X`` (n, p), binary labels ``y`` (n,) and ``covariates`` (n, K); returns self."""
        X, encoded = self._validate_fit(X, y, labels="binary", covariates=covariates)
        self._y_mean, self._y_scale = 0.0, 1.0
        return self._fit(X, covariates, encoded.astype(np.float64))

    def decision_function(self, X, *, covariates=None) -> np.ndarray:
        """Logits (m,) of the positive class ``classes_[1]``."""
        return self._decision(X, covariates)
