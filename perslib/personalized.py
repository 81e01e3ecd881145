"""Personalized regression: one regression model per sample (Lengerich et al., ISMB 2018; NeurIPS 2019).

Every training sample ``i`` gets its own parameters ``θ_i`` (coefficients and an
intercept). Covariates ``u_i`` — never used as predictors — say which samples should
have similar parameters, through *distance matching*: the distance between two samples'
parameters should equal a learned weighted distance between their covariates,
``d_φ(u_i, u_j) = φᵀΔ_ij`` (per-covariate distances Δ, see :mod:`perslib.distances`).

Objective (on standardized ``X`` and, for regression, standardized ``y``), minimised on
minibatches of samples, each sample carrying its ``k`` partner pairs::

    L = mean_i ℓ(x_i, y_i, θ_i)                              prediction loss (½ squared error / logistic)
      + γ/2 · mean_(i,j) (d_param(i, j) − s · sg(π)ᵀΔ_ij)²   distance matching on sampled pairs
      + λ · mean_i ‖θ_i − θ_pop‖²                            pull towards the population model
      + υ · Σ_k φ_k  (= υ · s)                               L1 on the covariate metric φ = s · π
      + μ · mean_i ℓ(x_i, y_i, Σ_j w_ij sg(θ_j))             kNN-transfer loss, teaches π and τ only
      + rank-specific terms (below)

    w_ij = softmax over j of (−πᵀΔ_ij / (τ · sg(d̄))),  d̄ = mean of πᵀΔ over the minibatch's pairs

(``sg`` = stop-gradient.) The covariate metric is split into **shares** ``π = softmax(a)``
(Σπ = 1: which covariates decide who is close) and a **scale** ``s = Σφ = softplus(b)``
(how far apart, in parameter-distance units, the models of two samples one unit of
covariate distance apart should be); ``covariate_weights_`` is ``φ = s·π``.

* The shares are learned by the transfer term only (``metric_learning=μ``, an addition to
  the papers' objective): sample i is predicted with a softmax-weighted mean of its
  partners' detached parameters, so the term moves only π and the temperature τ. τ is
  dimensionless: it multiplies the current mean partner distance d̄, so the softmax sees
  distances *relative to the neighbourhood* and behaves alike whether the partners are
  close (large n) or far (small n), and whatever the scale s. A covariate whose closeness
  does not make parameters transferable loses share. Partners and the kNN prediction rule
  search under π (the scale does not change who is nearest). Where all ``k`` partners of
  a sample share its covariates exactly (groups larger than ``k``, e.g. students of one
  school), Δ = 0 and the term has nothing to weigh: the shares then stay near uniform.
* The scale is learned by the matching term against the L1 ``υ·s``; matching does not
  move the shares (``sg(π)``).

Why the split (issue 3, measured on ``make_personalized_regression``, rank 4). With one
unconstrained ``φ = softplus(a)`` in both terms, the matching term raised every φ_k to
chase the partners' latent distances ``‖z_i − z_j‖``, which contain each ``z_i``'s own
noise and do not shrink as neighbours get closer with n; it raised the irrelevant
covariate's weight too (partners are far apart in it), and only the L1 held φ back. How
far φ got depended on the number of Adam steps (``n / batch_size`` per epoch) rather than
on n as such: φ stayed near its start at n = 2000 with batch 512 (4 steps per epoch), but
at n = 10,000–20,000 Σφ reached 2–4, the irrelevant covariate took 26–27 % of it and the
training θ error doubled (0.04 → 0.07–0.08); n = 2000 with batch 64 reproduced it (12 %,
θ error 0.15). A large s also weakens the matching: it then asks neighbours' ``z`` to
stay apart by their noise. With ``υ = 1`` (default) s settles near zero on these data,
so matching acts as a local smoothness prior that pulls the partners' ``z`` together and
φ's *shares* carry the learned metric; a smaller ``υ`` lets s grow where matching pays
for it. The papers learn one φ through the matching term and its penalty alone; the
split and the transfer term are ours (with ``μ = 0`` the shares stay uniform).

* Low rank (``rank=q``, NeurIPS 2019): ``θ_i = θ_pop + Qᵀ z_i`` with ``Z`` (n, q) and a
  dictionary ``Q`` (q, p+1); ``d_param = ‖z_i − z_j‖₂``; plus ``ω (mean_i ‖z_i‖² + ‖Q‖²)``.
* Full rank (``rank=None``, ISMB 2018): free ``θ_i``; ``d_param = s_θ · Σ_d φθ_d |θ_id − θ_jd|``
  with ``φθ = softmax`` over the coefficients (intercept excluded) and a learned scale
  ``s_θ = softplus(·)``; plus ``κ / s_θ`` (κ = 1e-3) so that ``s_θ`` cannot shrink to zero and
  switch the matching off, and ``α ‖φθ − 1/p‖²`` (α = 1, ISMB's ψ_θ) so that φθ cannot
  concentrate on one coefficient and leave the others unregularized.

Optimisation. Adam (``lr``) for the shared tensors (Q, π, s, τ, encoder, full-rank
metric) and *lazy* Adam (``torch.optim.SparseAdam``) for the per-sample table (``Z`` or
``θ``): a row is updated only when its sample, or a partner of one, is in the minibatch,
with its own moment estimates. Dense Adam keeps moving rows that were not in the
minibatch on stale momentum, so every ``z_i``'s step per epoch grew with the number of
steps per epoch, i.e. with n — the second way the fit depended on n (n = 2000 at batch
64, shares already split: training θ MSE 0.069 with dense Adam, 0.044 with lazy Adam).

Initialisation: ``θ_pop`` from a ridge / logistic regression (sklearn); every model starts
there (full rank: a tile of ``θ_pop``; low rank: ``Q`` random orthonormal rows and ``Z``
small noise, which is what PCA of a jittered tile of ``θ_pop`` gives) and relaxes away
only as far as its own loss pays for against the pull ``λ`` and the matching term. The
shares start uniform, the scale at ``s = K · 1e-3`` (all samples "equally close",
consistent with all models starting at θ_pop), τ at 1.

Partners ``N(i)`` (``neighbors=``), refreshed every ``refresh_every`` epochs, memory O(n·k):

* ``"covariate"`` (default): the ``k`` nearest samples under the *current* learned metric
  (KD-tree on π-scaled covariates, O(n log n)); matching then acts as a local
  smoothness prior whose neighbourhood the model learns.
* ``"latent"``: the ``k`` nearest in ``z`` (low rank) or in the φθ-weighted parameter space
  (full rank), as the NeurIPS code does.
* ``"random"``: ``k`` uniformly random partners (ISMB). Random pairs ask for one global
  isometry between covariates and parameters, which a nonlinear θ(u) cannot satisfy.

Early stopping. A training sample's ``θ_i`` is trained by its own loss term only, so a
training-loss criterion says nothing about generalization. We therefore hold out a random
``val_fraction`` of the samples: they take no part in training; after every epoch their
``θ`` is predicted exactly as for new samples (kNN rule or encoder, below) and their
prediction loss is the early-stopping criterion (best epoch restored). This measures what
the matching term is for — transferring parameters between samples that the metric calls
close. The held-out samples' ``coef_`` rows are their predicted ``θ``
(``heldout_`` marks them). With ``val_fraction=0`` all samples train for ``epochs`` epochs.

Prediction for new samples: by default (``encoder=None``) the average θ of the
``n_neighbors_predict`` nearest training samples under the learned metric (the papers'
rule). With ``encoder="mlp"`` an MLP ``u → z`` (low rank) or ``u → θ`` (full rank) is
trained jointly: a loss ``‖f(u_i) − z_i‖²`` (``z_i`` detached, so the encoder follows the
embedding without distorting it) plus the prediction loss of ``θ(f(u_i))``; the encoder
then predicts new samples (Contextualized-style amortization). The encoder's Adam rate is
``min(lr, 0.02)``: at the shared ``lr = 0.04`` it stalled in a poor fit on one of three
seeds (n = 2000, seed 2: test θ MSE 0.127 against 0.046 at 0.02, while the per-sample
fit was fine); 0.01 is as accurate but needs up to twice the epochs.

Persistence: fitted estimators hold only NumPy arrays, sklearn trees and CPU torch
modules, so ``pickle``/``joblib`` work; :meth:`save` and :func:`load` wrap pickle.
"""

from __future__ import annotations

import pickle
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.nn import functional as F

from perslib.distances import CovariateSpace, distance_matching_loss, knn_table, pair_deltas, random_partners
from perslib.mlp import MLP
from perslib.training import TrainConfig, split_validation, train_loop
from perslib.utils import check_array, check_consistent_length, check_n_columns, check_random_state, resolve_device

__all__ = ["PersonalizedRegressor", "PersonalizedClassifier", "load"]

_SCALE_PENALTY = 1e-3  # κ of the full-rank κ/s term (ISMB's ψ_s)
_THETA_METRIC_PENALTY = 1.0  # α of ISMB's ψ_θ = α‖φθ − uniform‖², keeps φθ from collapsing onto one coefficient
_PHI_INIT = 1e-3  # initial φ_k (scale s = K·1e-3, uniform shares): start consistent with "all models equal"
_TAU_INIT = 1.0  # initial transfer temperature, in units of the mean partner distance
_LOG_SCALE_FLOOR = -20.0  # softplus argument floor of the scale s (≈ 2e-9), so φ = s·π never underflows to 0
_ENCODER_LR_CAP = 2e-2  # the encoder MLP trains at min(lr, this): at lr 0.04 it can stall in a poor fit
_NEIGHBOR_MODES = ("covariate", "latent", "random")


def _param_groups(module: nn.Module, table: nn.Parameter, lr: float) -> list[dict]:
    """Adam groups of the shared tensors: everything but the per-sample table; the encoder at ``min(lr, cap)``."""
    enc = {id(q) for q in module.encoder.parameters()} if module.encoder is not None else set()
    groups = [{"params": [q for q in module.parameters() if q is not table and id(q) not in enc]}]
    if enc:
        groups.append({"params": list(module.encoder.parameters()), "lr": min(lr, _ENCODER_LR_CAP)})
    return groups


class _JointOptimizer:
    """Step several optimizers as one (lazy SparseAdam for the per-sample table, Adam for the rest)."""

    def __init__(self, *optimizers):
        self.optimizers = optimizers

    def zero_grad(self, set_to_none=True):
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def step(self):
        for opt in self.optimizers:
            opt.step()


class _PRModule(nn.Module):
    """All trained tensors of one fit: per-sample parameters, the metric(s) and the encoder."""

    def __init__(self, n, n_params, n_cov, rank, theta_pop, phi0, rng, encoder_in=None, encoder_hidden=(32, 32)):
        super().__init__()
        self.rank = rank
        self.register_buffer("theta_pop", torch.as_tensor(theta_pop, dtype=torch.float32))
        self.tau_raw = nn.Parameter(torch.tensor(float(np.log(np.expm1(_TAU_INIT))), dtype=torch.float32))
        self.share_raw = nn.Parameter(torch.zeros(n_cov, dtype=torch.float32))
        self.scale_phi_raw = nn.Parameter(torch.tensor(float(np.log(np.expm1(n_cov * phi0))), dtype=torch.float32))
        if rank is None:
            self.theta = nn.Parameter(self.theta_pop.repeat(n, 1).clone())
            self.theta_metric_raw = nn.Parameter(torch.zeros(n_params - 1))
            self.scale_raw = nn.Parameter(torch.tensor(float(np.log(np.expm1(1.0)))))
            out = n_params
        else:
            q = int(rank)
            basis = np.linalg.qr(rng.standard_normal((max(q, n_params), n_params)).T)[0].T[:q]  # orthonormal rows
            if q > n_params:
                basis = rng.standard_normal((q, n_params)) / np.sqrt(n_params)
            self.Q = nn.Parameter(torch.as_tensor(basis, dtype=torch.float32))
            self.Z = nn.Parameter(torch.as_tensor(1e-2 * rng.standard_normal((n, q)), dtype=torch.float32))
            out = q
        self.encoder = MLP(encoder_in, encoder_hidden, out) if encoder_in is not None else None

    def shares(self) -> torch.Tensor:
        return torch.softmax(self.share_raw, 0)

    def phi_scale(self) -> torch.Tensor:
        return F.softplus(self.scale_phi_raw.clamp(min=_LOG_SCALE_FLOOR))

    def phi(self) -> torch.Tensor:
        return self.phi_scale() * self.shares()

    def theta_metric(self) -> torch.Tensor:  # full rank: weights of the parameter-side ℓ1, intercept weight 0
        return torch.cat([torch.softmax(self.theta_metric_raw, 0), self.theta_metric_raw.new_zeros(1)])

    def per_sample(self) -> nn.Parameter:
        """The (n, ·) table of per-sample parameters: θ (full rank) or Z (low rank)."""
        return self.theta if self.rank is None else self.Z

    def rows(self, idx) -> torch.Tensor:
        """Rows ``idx`` of :meth:`per_sample` with a *sparse* gradient (lazy per-row Adam, see fit)."""
        return F.embedding(idx, self.per_sample(), sparse=True)

    def params_of(self, idx) -> torch.Tensor:
        """θ of training samples ``idx`` (standardized units), shape (len(idx), p+1)."""
        return self.rows(idx) if self.rank is None else self.theta_pop + self.rows(idx) @ self.Q

    def latent_of(self, idx) -> torch.Tensor:
        return self.rows(idx)

    def from_latent(self, latent) -> torch.Tensor:
        return latent if self.rank is None else self.theta_pop + latent @ self.Q

    def param_distance(self, idx, partners) -> torch.Tensor:
        if self.rank is None:
            diff = (self.rows(idx)[:, None, :] - self.rows(partners)).abs()
            return F.softplus(self.scale_raw) * (diff @ self.theta_metric())
        diff = self.rows(idx)[:, None, :] - self.rows(partners)
        return torch.sqrt((diff**2).sum(-1) + 1e-12)


class _PersonalizedBase(BaseEstimator):
    """Shared fit/predict code of the two personalized estimators (not public)."""

    _task = "linear"

    def __init__(
        self,
        rank: int | None = None,  # None: full rank (ISMB 2018); q: θ_i = θ_pop + Qᵀz_i (NeurIPS 2019)
        neighbors: str = "covariate",  # partner pairs: "covariate", "latent" or "random"
        n_neighbors: int = 10,  # k partners per sample
        refresh_every: int = 1,  # epochs between partner refreshes
        matching_weight: float | None = None,  # γ of the distance matching; None: 10 (low rank) or 100 (full rank)
        pull: float = 1e-2,  # λ of the pull ‖θ_i − θ_pop‖²
        metric_penalty: float = 1.0,  # υ, L1 on Σφ = s, the scale of the covariate metric
        metric_learning: float = 1.0,  # μ, weight of the kNN-transfer loss that teaches the shares π (0: π stays uniform)
        latent_decay: float = 1e-3,  # ω, weight decay on Z and Q (low rank)
        population_alpha: float = 1.0,  # ridge α of the population model (logistic: C = 1/α)
        n_neighbors_predict: int = 10,  # training samples averaged for a new sample (kNN rule)
        encoder: str | None = None,  # None (kNN rule) or "mlp" (amortized encoder)
        encoder_hidden: Sequence[int] = (32, 32),  # hidden widths of the encoder MLP
        encoder_weight: float = 1.0,  # weight of the encoder's pull towards z_i (or θ_i)
        epochs: int = 300,  # most passes over the samples
        batch_size: int = 512,  # samples per minibatch (each brings its k pairs)
        lr: float = 0.04,  # Adam learning rate
        val_fraction: float = 0.1,  # samples held out for early stopping (see module docstring)
        patience: int = 20,  # epochs without validation improvement before stopping
        standardize: bool = True,  # standardize X (and y for regression) internally
        categorical_covariates: Sequence[Any] | None = None,  # extra covariate columns to treat as categorical
        device: str = "auto",  # "auto", "cpu" or "cuda"
        random_state: int | None = None,  # seed of split, initialisation, pairs and minibatches
        progress: bool | None = None,  # tqdm bar; None follows PERSLIB_PROGRESS
        snapshot_epochs: Sequence[int] | None = None,  # record θ of the trained samples after these many epochs (0 = start)
    ) -> None:
        self.rank = rank
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
        self.lr = lr
        self.val_fraction = val_fraction
        self.patience = patience
        self.standardize = standardize
        self.categorical_covariates = categorical_covariates
        self.device = device
        self.random_state = random_state
        self.progress = progress
        self.snapshot_epochs = snapshot_epochs

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> None:
        if self.rank is not None and (isinstance(self.rank, bool) or not isinstance(self.rank, (int, np.integer)) or self.rank < 1):
            raise ValueError(f"rank must be None or a positive int, got {self.rank!r}")
        if self.neighbors not in _NEIGHBOR_MODES:
            raise ValueError(f"neighbors must be one of {_NEIGHBOR_MODES}, got {self.neighbors!r}")
        if self.encoder not in (None, "mlp"):
            raise ValueError(f"encoder must be None or 'mlp', got {self.encoder!r}")
        for name in ("n_neighbors", "n_neighbors_predict", "refresh_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.matching_weight is not None and not (np.isfinite(self.matching_weight) and self.matching_weight >= 0):
            raise ValueError(f"matching_weight must be None or a finite number >= 0, got {self.matching_weight!r}")
        for name in ("pull", "metric_penalty", "metric_learning", "latent_decay", "population_alpha", "encoder_weight"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float, np.number)) and np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.snapshot_epochs is not None:
            snaps = np.asarray(list(self.snapshot_epochs))
            if snaps.ndim != 1 or not np.issubdtype(snaps.dtype, np.integer) or (snaps < 0).any():
                raise ValueError(f"snapshot_epochs must be a sequence of ints >= 0, got {self.snapshot_epochs!r}")

    def _check_X(self, X, fitting: bool) -> np.ndarray:
        arr = check_array(X, "X", ndim=2)
        if fitting:
            self.n_features_in_ = arr.shape[1]
            self.feature_names_in_ = np.asarray(X.columns, dtype=object) if hasattr(X, "columns") else None
        else:
            check_n_columns(arr, self.n_features_in_)
        return arr

    def _check_covariates(self, covariates, n: int) -> np.ndarray:
        if covariates is None:
            raise ValueError("covariates is required: pass covariates=U of shape (n_samples, n_covariates)")
        if len(covariates) != n:
            raise ValueError(f"inconsistent numbers of samples: X has {n}, covariates has {len(covariates)}")
        return self.covariate_space_.transform(covariates)

    # ------------------------------------------------------------------ helpers
    def _population(self, Xs, target) -> np.ndarray:
        raise NotImplementedError

    def _loss(self, eta, target) -> torch.Tensor:
        raise NotImplementedError

    def _partners(self, module, n_tr, rng) -> np.ndarray:
        k = self.n_neighbors
        if self.neighbors == "random":
            return random_partners(n_tr, k, rng)
        if self.neighbors == "covariate":
            return knn_table(self._search_points(module), k)
        with torch.no_grad():
            if self.rank is None:
                pts = (module.theta * module.theta_metric()).cpu().numpy()
                return knn_table(pts, k, metric="manhattan")
            return knn_table(module.Z.cpu().numpy(), k, metric="euclidean")

    def _search_points(self, module) -> np.ndarray:
        shares = module.shares().detach().cpu().numpy().astype(np.float64)
        return self.covariate_space_.search_matrix(self._cov_train, shares)

    def _knn_latent(self, module, cov_query: np.ndarray, feats_query: torch.Tensor | None) -> torch.Tensor:
        """Latent (z, or θ for full rank) of query samples by the encoder or the kNN rule."""
        if module.encoder is not None:
            return module.encoder(feats_query)
        shares = module.shares().detach().cpu().numpy().astype(np.float64)
        space = self.covariate_space_
        ind = knn_table(space.search_matrix(self._cov_train, shares), self.n_neighbors_predict, query=space.search_matrix(cov_query, shares))
        ind = torch.as_tensor(ind, device=self.device_)
        return module.latent_of(ind).mean(1)

    # ------------------------------------------------------------------ fit
    def _fit(self, X, y, covariates, target: np.ndarray):
        t0 = time.perf_counter()
        self._check_params()
        n = X.shape[0]
        rng = check_random_state(self.random_state)
        torch_seed = int(rng.integers(2**31 - 1))
        self.device_ = device = resolve_device(self.device)
        self.covariate_space_ = CovariateSpace(self.categorical_covariates).fit(covariates)
        cov = self._check_covariates(covariates, n)
        self.n_covariates_ = cov.shape[1]

        # standardization (undone on the way out, so coef_ are in the user's units)
        self.x_mean_ = X.mean(0) if self.standardize else np.zeros(X.shape[1])
        sd = X.std(0) if self.standardize else np.ones(X.shape[1])
        self.x_scale_ = np.where(sd > 0, sd, 1.0)
        Xs = (X - self.x_mean_) / self.x_scale_
        theta_pop = self._population(Xs, target)  # (p+1,), intercept last, standardized units
        Xa = np.hstack([Xs, np.ones((n, 1))])

        stratify = target if self._task == "logistic" else None
        train_idx, val_idx = split_validation(n, self.val_fraction, rng, stratify=stratify)
        n_tr = len(train_idx)
        if n_tr < 2:
            raise ValueError(f"need at least 2 training samples after the validation split, got {n_tr}")
        self._cov_train = cov[train_idx]
        feats = self.covariate_space_.feature_matrix(cov)

        def tensor(a, dtype=torch.float32):
            return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)

        Xt, yt, Ut, Ft = tensor(Xa), tensor(target), tensor(cov), tensor(feats)
        X_tr, y_tr, U_tr, F_tr = Xt[train_idx], yt[train_idx], Ut[train_idx], Ft[train_idx]
        categorical = torch.as_tensor(self.covariate_space_.is_categorical_, device=device)
        n_cov = cov.shape[1]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(torch_seed)
            module = _PRModule(
                n_tr, Xa.shape[1], n_cov, self.rank, theta_pop, _PHI_INIT, rng,
                encoder_in=feats.shape[1] if self.encoder == "mlp" else None, encoder_hidden=self.encoder_hidden,
            ).to(device)
        self.module_ = module
        table = module.per_sample()  # lazy Adam for the per-sample rows (module docstring, "Optimisation")
        optimizer = _JointOptimizer(
            torch.optim.SparseAdam([table], lr=self.lr),
            torch.optim.Adam(_param_groups(module, table, self.lr), lr=self.lr),
        )
        steps_per_epoch = int(np.ceil(n_tr / self.batch_size))
        state = {"step": 0, "partners": None}
        snapshot_at = set() if self.snapshot_epochs is None else {int(e) for e in self.snapshot_epochs}
        snapshots: dict[int, np.ndarray] = {}
        idx_all = torch.arange(n_tr, device=device)

        def snapshot(epoch):
            with torch.no_grad():
                snapshots[epoch] = module.params_of(idx_all).cpu().numpy().astype(np.float64)
        gamma = self.matching_weight if self.matching_weight is not None else (100.0 if self.rank is None else 10.0)
        lam, ups, omega = self.pull, self.metric_penalty, self.latent_decay

        def refresh():
            state["partners"] = torch.as_tensor(self._partners(module, n_tr, rng), device=device)

        def step(batch):
            if state["step"] % steps_per_epoch == 0 and state["step"] // steps_per_epoch in snapshot_at:
                snapshot(state["step"] // steps_per_epoch)
            if state["step"] % (self.refresh_every * steps_per_epoch) == 0:
                refresh()
            state["step"] += 1
            (idx,) = batch
            optimizer.zero_grad(set_to_none=True)
            theta = module.params_of(idx)
            pred = self._loss((X_tr[idx] * theta).sum(1), y_tr[idx])
            partners = state["partners"][idx]  # (b, k)
            deltas = pair_deltas(U_tr[idx][:, None, :], U_tr[partners], categorical)
            pi, s_phi = module.shares(), module.phi_scale()
            match = distance_matching_loss(module.param_distance(idx, partners), deltas, s_phi * pi.detach())  # moves s, not π
            if self.metric_learning > 0:  # π-only signal: do the partners' θ, weighted by πᵀΔ, predict y_i?
                dist = deltas @ pi
                tau = F.softplus(module.tau_raw) * (dist.detach().mean() + 1e-12)  # relative to the neighbourhood's scale
                with torch.no_grad():
                    theta_partners = module.params_of(partners)
                w = torch.softmax(-dist / tau, dim=1)
                theta_nb = (w[:, :, None] * theta_partners).sum(1)
                transfer = self._loss((X_tr[idx] * theta_nb).sum(1), y_tr[idx])
            else:
                transfer = torch.zeros((), device=device)
            pull = ((theta - module.theta_pop) ** 2).sum(1).mean()
            loss = pred + 0.5 * gamma * match + lam * pull + ups * s_phi + self.metric_learning * transfer
            if self.rank is None:
                w_theta = module.theta_metric()[:-1]
                loss = loss + _SCALE_PENALTY / F.softplus(module.scale_raw) + _THETA_METRIC_PENALTY * ((w_theta - 1.0 / len(w_theta)) ** 2).sum()
            else:
                loss = loss + omega * ((module.rows(idx) ** 2).sum(1).mean() + (module.Q**2).sum())
            if module.encoder is not None:
                latent_hat = module.encoder(F_tr[idx])
                enc_fit = ((latent_hat - module.latent_of(idx).detach()) ** 2).sum(1).mean()
                enc_pred = self._loss((X_tr[idx] * module.from_latent(latent_hat)).sum(1), y_tr[idx])
                loss = loss + self.encoder_weight * enc_fit + enc_pred
            loss.backward()
            optimizer.step()
            return {"loss": loss.item(), "pred_loss": pred.item(), "match_loss": match.item(), "transfer_loss": transfer.item()}

        evaluate = None
        if len(val_idx):
            X_val, y_val = Xt[val_idx], yt[val_idx]

            def evaluate():
                theta_val = module.from_latent(self._knn_latent(module, cov[val_idx], Ft[val_idx]))
                return self._loss((X_val * theta_val).sum(1), y_val).item()

        config = TrainConfig(
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, patience=self.patience,
            progress=self.progress, desc=type(self).__name__,
        )
        gen = torch.Generator().manual_seed(torch_seed)
        self.history_ = train_loop(step, (idx_all,), config, module=module, evaluate=evaluate, generator=gen)
        self.n_epochs_ = int(len(self.history_))

        # ---- fitted state (NumPy / CPU only, so the estimator pickles)
        module.eval()
        with torch.no_grad():
            theta_all = np.empty((n, Xa.shape[1]))
            theta_all[train_idx] = module.params_of(idx_all).cpu().numpy()
            latent_tr = module.latent_of(idx_all).cpu().numpy().astype(np.float64)
            if len(val_idx):
                latent_val = self._knn_latent(module, cov[val_idx], Ft[val_idx])
                theta_all[val_idx] = module.from_latent(latent_val).cpu().numpy()
            phi = module.phi().cpu().numpy().astype(np.float64)
            shares = module.shares().cpu().numpy().astype(np.float64)
        self.partners_ = train_idx[state["partners"].cpu().numpy()]  # last partner table (n_fit, k), original row numbers
        self.heldout_ = np.zeros(n, dtype=bool)
        self.heldout_[val_idx] = True
        self.train_index_ = train_idx
        self._theta_train_std = theta_all[train_idx]
        self._latent_train = latent_tr
        self.coef_, self.intercept_ = self._unstandardize(theta_all)
        self.snapshots_ = {e: self._unstandardize(snapshots[e]) for e in sorted(snapshots)}
        pop_coef, pop_int = self._unstandardize(theta_pop[None, :])
        self.population_coef_, self.population_intercept_ = pop_coef[0], float(pop_int[0])
        names = self.covariate_space_.columns_
        self.covariate_weights_ = pd.Series(phi, index=names, name="weight") if self.covariate_space_.frame_ else phi
        if self.rank is not None:
            Q = module.Q.detach().cpu().numpy().astype(np.float64)
            self.dictionary_ = Q[:, :-1] * (self._y_scale / self.x_scale_)
            emb = np.empty((n, Q.shape[0]))
            emb[train_idx] = latent_tr
            if len(val_idx):
                emb[val_idx] = latent_val.cpu().numpy()
            self.embeddings_ = emb
        else:
            with torch.no_grad():
                self.parameter_weights_ = module.theta_metric()[:-1].cpu().numpy().astype(np.float64)
                self.parameter_scale_ = float(F.softplus(module.scale_raw))
        self.covariate_shares_ = shares
        self._search_train = self.covariate_space_.search_matrix(self._cov_train, shares)
        from sklearn.neighbors import NearestNeighbors

        self.neighbors_index_ = NearestNeighbors(algorithm="kd_tree", metric="manhattan").fit(self._search_train)
        self.encoder_ = module.encoder.cpu().eval() if module.encoder is not None else None
        self._Q = module.Q.detach().cpu().numpy().astype(np.float64) if self.rank is not None else None
        self._theta_pop_std = theta_pop
        del self.module_, self._cov_train
        self.fit_time_ = time.perf_counter() - t0
        return self

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
        check_is_fitted(self, "coef_")
        cov = self.covariate_space_.transform(covariates)
        if self.encoder_ is not None:
            feats = torch.as_tensor(self.covariate_space_.feature_matrix(cov), dtype=torch.float32)
            with torch.no_grad():
                latent = self.encoder_(feats).numpy().astype(np.float64)
            theta = latent if self.rank is None else self._theta_pop_std + latent @ self._Q
        else:
            k = min(self.n_neighbors_predict, self._search_train.shape[0])
            # the index was built on the shares (estimators pickled before they existed: on φ)
            metric = getattr(self, "covariate_shares_", None)
            metric = np.asarray(self.covariate_weights_, dtype=np.float64) if metric is None else metric
            query = self.covariate_space_.search_matrix(cov, metric)
            ind = self.neighbors_index_.kneighbors(query, n_neighbors=k, return_distance=False)
            theta = self._theta_train_std[ind].mean(1)
        return self._unstandardize(theta)

    def _decision(self, X, covariates) -> np.ndarray:
        check_is_fitted(self, "coef_")
        X = self._check_X(X, fitting=False)
        if covariates is None:
            raise ValueError("covariates is required: pass covariates=U of shape (n_samples, n_covariates)")
        check_consistent_length(X=X, covariates=covariates)
        coef, intercept = self.predict_params(covariates)
        return np.einsum("ij,ij->i", X, coef) + intercept

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Pickle the fitted estimator to ``path`` (all fitted state is CPU/NumPy)."""
        with open(path, "wb") as fh:
            pickle.dump(self, fh, protocol=pickle.HIGHEST_PROTOCOL)


def load(path: str | Path):
    """Load an estimator written by :meth:`PersonalizedRegressor.save` (pickle: trusted files only)."""
    with open(path, "rb") as fh:
        return pickle.load(fh)


_DOC_PARAMS = """
    Parameters
    ----------
    rank : int or None, default=None
        ``None``: full rank (ISMB 2018), one free θ_i per sample. ``q``: low rank (NeurIPS
        2019), θ_i = θ_pop + Qᵀz_i with ``z_i ∈ R^q``.
    neighbors : {"covariate", "latent", "random"}, default="covariate"
        How the ``n_neighbors`` partner pairs of each sample are chosen (module docstring).
    n_neighbors : int, default=10
        Partners per sample (k); memory is O(n·k).
    refresh_every : int, default=1
        Epochs between partner refreshes.
    matching_weight : float or None, default=None
        γ, weight of the distance-matching term; ``None`` means 10 for low rank and 100
        for full rank (free θ_i need the stronger coupling).
    pull : float, default=1e-2
        λ, weight of ``‖θ_i − θ_pop‖²`` (standardized units).
    metric_penalty : float, default=1.0
        υ, L1 penalty ``υ·Σφ = υ·s`` on the scale of the covariate metric; it decides how
        far the matching may raise s (module docstring). Before issue 3 it was 1e-2 on an
        unsplit φ.
    metric_learning : float, default=1.0
        μ, weight of the kNN-transfer loss that teaches the shares π (see the module
        docstring); with 0 the shares stay uniform.
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
    epochs, batch_size, lr, val_fraction, patience
        Adam on minibatches of samples; early stopping on held-out samples.
    standardize : bool, default=True
        Standardize X (and y for regression) internally; ``coef_`` are in original units.
    categorical_covariates : sequence, optional
        Covariate columns (names or positions) to treat as categorical in addition to
        object/category/string/bool DataFrame columns.
    device : str, default="auto"
    random_state : int, optional
    progress : bool, optional
    snapshot_epochs : sequence of int, optional
        Record the trained samples' parameters after these many epochs (``snapshots_``),
        e.g. to watch the models relax away from the population estimate.

    Attributes
    ----------
    coef_ : ndarray of shape (n_train, p)
        Per-sample coefficients, in the user's units, training-sample order.
    intercept_ : ndarray of shape (n_train,)
    population_coef_ : ndarray of shape (p,)
    population_intercept_ : float
    covariate_weights_ : pandas.Series (DataFrame covariates) or ndarray of shape (K,)
        Learned covariate metric φ = s·π (per unit of mean pairwise covariate distance).
        Its scale s = Σφ is often tiny at the default ``metric_penalty``; read the shares.
    covariate_shares_ : ndarray of shape (K,)
        π = φ / Σφ, the learned shares (sum 1) that partner search and the kNN rule use.
    dictionary_ : ndarray of shape (q, p)
        Low rank only: rows are the coefficient directions of the latent coordinates
        (user's units; ``coef_ = population_coef_ + embeddings_ @ dictionary_``).
    embeddings_ : ndarray of shape (n_train, q)
        Low rank only: latent z_i.
    parameter_weights_, parameter_scale_ : ndarray (p,), float
        Full rank only: the parameter-side metric φθ and scale s_θ.
    partners_ : ndarray of int, shape (n_train − n_heldout, k)
        The last partner table (rows of the samples in ``train_index_``, entries are row
        numbers of the training data); the only pair structure ever stored.
    train_index_ : ndarray of int
        Rows that were trained (not held out).
    heldout_ : ndarray of bool, shape (n_train,)
        Samples held out for early stopping; their rows of ``coef_`` are predicted.
    history_ : pandas.DataFrame
        Per epoch: ``train_loss``, ``pred_loss``, ``match_loss``, ``val_loss``.
    snapshots_ : dict of int -> (ndarray (n_fit, p), ndarray (n_fit,))
        With ``snapshot_epochs``: ``(coef, intercept)`` of the trained samples (rows of
        ``train_index_``, user's units) after that many epochs; 0 is the initialisation
        (every model at the population estimate). A snapshot is taken when the next epoch
        starts, so epochs ``>= n_epochs_`` are absent; the fitted ``coef_`` is the
        restored best epoch's state.
    n_epochs_, fit_time_ : int, float
"""


class PersonalizedRegressor(RegressorMixin, _PersonalizedBase):
    __doc__ = "Personalized linear regression: one (coef, intercept) per sample.\n" + _DOC_PARAMS

    _task = "linear"

    def _population(self, Xs, target):
        model = Ridge(alpha=self.population_alpha).fit(Xs, target)
        return np.append(model.coef_, model.intercept_)

    def _loss(self, eta, target):
        return 0.5 * ((eta - target) ** 2).mean()

    def fit(self, X, y, covariates=None):
        """Fit on ``X`` (n, p), ``y`` (n,) and ``covariates`` (n, K); returns self."""
        X = self._check_X(X, fitting=True)
        y = check_array(y, "y", ndim=1)
        check_consistent_length(X=X, y=y, covariates=covariates)
        self._y_mean = float(y.mean()) if self.standardize else 0.0
        self._y_scale = float(y.std()) if self.standardize and y.std() > 0 else 1.0
        return self._fit(X, y, covariates, (y - self._y_mean) / self._y_scale)

    def predict(self, X, covariates=None) -> np.ndarray:
        """Predictions (m,) for new samples ``X`` (m, p) with ``covariates`` (m, K)."""
        return self._decision(X, covariates)


class PersonalizedClassifier(ClassifierMixin, _PersonalizedBase):
    __doc__ = "Personalized logistic regression (binary): one (coef, intercept) per sample.\n" + _DOC_PARAMS

    _task = "logistic"

    def _population(self, Xs, target):
        model = LogisticRegression(C=1.0 / max(self.population_alpha, 1e-12), max_iter=1000).fit(Xs, target)
        return np.append(model.coef_[0], model.intercept_[0])

    def _loss(self, eta, target):
        return F.binary_cross_entropy_with_logits(eta, target)

    def fit(self, X, y, covariates=None):
        """Fit on ``X`` (n, p), binary labels ``y`` (n,) and ``covariates`` (n, K); returns self."""
        X = self._check_X(X, fitting=True)
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-dimensional, got shape {y.shape}")
        check_consistent_length(X=X, y=y, covariates=covariates)
        if y.dtype.kind in "fc" and not np.isfinite(y).all():
            raise ValueError("y contains NaN or inf; expected class labels")
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) != 2:
            raise ValueError(f"y must contain exactly 2 classes, got {self.classes_.tolist()}")
        self._y_mean, self._y_scale = 0.0, 1.0
        return self._fit(X, y, covariates, encoded.astype(np.float64))

    def decision_function(self, X, covariates=None) -> np.ndarray:
        """Logits (m,) of the positive class ``classes_[1]``."""
        return self._decision(X, covariates)

    def predict_proba(self, X, covariates=None) -> np.ndarray:
        """Class probabilities (m, 2), columns in ``classes_`` order."""
        p1 = 1.0 / (1.0 + np.exp(-self.decision_function(X, covariates)))
        return np.column_stack([1.0 - p1, p1])

    def predict(self, X, covariates=None) -> np.ndarray:
        """Most probable class (m,)."""
        return self.classes_[(self.decision_function(X, covariates) > 0).astype(int)]
