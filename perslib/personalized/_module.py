"""The torch module of a personalized-regression fit: its tensors, its objective, its optimizers.

On standardized ``X`` (a column of ones appended) and standardized ``y``, with each
minibatch sample ``i`` carrying ``k`` partners ``j``::

    L = mean_i ℓ(x_i, y_i, θ_i)                              prediction loss
      + γ/2 · mean_(i,j) (d_param(i, j) − s · sg(π)ᵀΔ_ij)²   distance matching
      + λ · mean_i ‖θ_i − θ_pop‖²                            pull towards the population model
      + υ · s                                                L1 on the metric φ = s·π (Σφ = s)
      + μ · mean_i ℓ(x_i, y_i, Σ_j w_ij sg(θ_j))             kNN transfer, teaches π and τ only
      + rank terms (low rank: ω(mean‖z_i‖² + ‖Q‖²); full rank: κ/s_θ + α‖φθ − 1/p‖²)
      + encoder terms (encoder="mlp": ‖f(u_i) − sg(z_i)‖² + ℓ(x_i, y_i, θ(f(u_i))))

    w_ij = softmax_j(−πᵀΔ_ij / (τ · sg(d̄))),   d̄ = mean of πᵀΔ over the minibatch's pairs

``sg`` is stop-gradient; ℓ is half the squared error or the logistic loss. Low rank:
``θ_i = θ_pop + Qᵀz_i`` and ``d_param = ‖z_i − z_j‖``; full rank: free θ_i and
``d_param = s_θ Σ_d φθ_d |θ_id − θ_jd|``. The derivation and the measurements behind
each term are in ``docs/design/personalized.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from perslib.mlp import MLP
from perslib.personalized._distances import distance_matching_loss, pair_deltas
from perslib.personalized._fused import FusedOptimizer, LazyRowAdam, fused_supported, loss_and_grads

__all__ = ["Objective", "PersonalizedModule"]

SCALE_PENALTY = 1e-3  # κ of the full-rank κ/s_θ term: s_θ cannot shrink to 0 and switch matching off
THETA_METRIC_PENALTY = 1.0  # α of α‖φθ − uniform‖²: φθ cannot collapse onto one coefficient
PHI_INIT = 1e-3  # initial φ_k (scale s = K·1e-3, uniform shares): "all models equal" at the start
TAU_INIT = 1.0  # initial transfer temperature, in units of the mean partner distance
LOG_SCALE_FLOOR = -20.0  # softplus argument floor of s (≈ 2e-9), so φ = s·π never underflows to 0
ENCODER_LR_CAP = 2e-2  # the encoder trains at min(lr, this): at lr 0.04 it can stall in a poor fit


@dataclass
class Objective:
    """Weights of the terms of the objective (module docstring)."""

    task: str = "linear"  # "linear" (½ squared error) or "logistic"
    kind: str = "bound"  # "bound" / "match": closed-form scale, shares by transfer; "paper": NeurIPS 2019
    matching_weight: float = 100.0  # γ
    pull: float = 1e-2  # λ
    metric_penalty: float = 1e-2  # υ, L1 on Σφ (kind "paper")
    metric_learning: float = 1.0  # μ; 0 switches the transfer term off (kinds "bound", "match")
    latent_decay: float = 1e-3  # ω (low rank)
    encoder_weight: float = 1.0  # weight of ‖f(u_i) − sg(z_i)‖²


class _JointOptimizer:
    """Step several optimizers as one (lazy SparseAdam for the per-sample table, Adam for the rest)."""

    def __init__(self, *optimizers) -> None:
        self.optimizers = optimizers

    @property
    def param_groups(self) -> list[dict]:
        return [group for opt in self.optimizers for group in opt.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()


class PersonalizedModule(nn.Module):
    """Every trained tensor of one fit: per-sample parameters, the metrics and the encoder.

    Parameters
    ----------
    n : int
        Trained samples.
    n_params : int
        Parameters per sample, p + 1 (the intercept last).
    n_cov : int
        Covariates K.
    rank : int or None
        ``None``: free θ_i (full rank); ``q``: ``θ_i = θ_pop + Qᵀz_i``.
    theta_pop : ndarray of shape (p + 1,)
        The population model, where every model starts.
    rng : numpy.random.Generator
        Draws the initial dictionary and embeddings.
    encoder_in : int, optional
        Width of the encoder's input (covariate features); ``None`` builds no encoder.
    encoder_hidden : sequence of int, default=(32, 32)
    objective : Objective, optional
    """

    def __init__(
        self,
        n: int,
        n_params: int,
        n_cov: int,
        rank: int | None,
        theta_pop: np.ndarray,
        rng: np.random.Generator,
        encoder_in: int | None = None,
        encoder_hidden: Sequence[int] = (32, 32),
        objective: Objective | None = None,
    ) -> None:
        super().__init__()
        self.rank = rank
        self.objective = objective or Objective()
        self.register_buffer("theta_pop", torch.as_tensor(theta_pop, dtype=torch.float32))
        self.tau_raw = nn.Parameter(torch.tensor(float(np.log(np.expm1(TAU_INIT))), dtype=torch.float32))
        self.share_raw = nn.Parameter(torch.zeros(n_cov, dtype=torch.float32))
        self.scale_phi_raw = nn.Parameter(torch.tensor(float(np.log(np.expm1(n_cov * PHI_INIT))), dtype=torch.float32))
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

    # ------------------------------------------------------------------ the metric
    def shares(self) -> torch.Tensor:
        """π = softmax(a): which covariates decide who is close (sums to 1)."""
        return torch.softmax(self.share_raw, 0)

    def phi_scale(self) -> torch.Tensor:
        """s = Σφ: how far apart, in parameter distance, one unit of covariate distance puts two models."""
        return F.softplus(self.scale_phi_raw.clamp(min=LOG_SCALE_FLOOR))

    def phi(self) -> torch.Tensor:
        return self.phi_scale() * self.shares()

    def theta_metric(self) -> torch.Tensor:
        """Full rank: weights of the parameter-side ℓ1 (intercept weight 0)."""
        return torch.cat([torch.softmax(self.theta_metric_raw, 0), self.theta_metric_raw.new_zeros(1)])

    # ------------------------------------------------------------------ parameters
    def per_sample(self) -> nn.Parameter:
        """The (n, ·) table of per-sample parameters: θ (full rank) or Z (low rank)."""
        return self.theta if self.rank is None else self.Z

    def rows(self, idx) -> torch.Tensor:
        """Rows ``idx`` of :meth:`per_sample` with a *sparse* gradient (lazy per-row Adam)."""
        return F.embedding(idx, self.per_sample(), sparse=True)

    def params_of(self, idx) -> torch.Tensor:
        """θ of trained samples ``idx`` (standardized units), shape (len(idx), p+1)."""
        return self.rows(idx) if self.rank is None else self.theta_pop + self.rows(idx) @ self.Q

    def all_params(self) -> torch.Tensor:
        return self.params_of(torch.arange(self.per_sample().shape[0], device=self.theta_pop.device))

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

    # ------------------------------------------------------------------ the objective
    def prediction_loss(self, eta: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """ℓ: half the mean squared error (linear) or the mean logistic loss."""
        if self.objective.task == "logistic":
            return F.binary_cross_entropy_with_logits(eta, target)
        return 0.5 * ((eta - target) ** 2).mean()

    def loss(self, idx, partners, X, y, U, feats, categorical, batch_sum=None) -> tuple[torch.Tensor, dict]:
        """The objective on the minibatch ``idx`` (module docstring) and its named terms.

        Parameters
        ----------
        idx : LongTensor (b,)
            Trained samples of the minibatch.
        partners : LongTensor (b, k)
            Their partners.
        X, y, U, feats : tensors (n, p+1), (n,), (n, K), (n, D)
            Standardized design, target, encoded covariates and encoder inputs of every
            trained sample.
        categorical : BoolTensor (K,)
        batch_sum : callable, optional
            Turns a sum over this minibatch into the sum over the *global* minibatch (data
            parallel training: an all-reduce across processes). The closed-form scale s and
            the transfer temperature's neighbourhood scale are ratios of such sums; every
            other term is a mean whose gradients the processes average. ``None``: this
            minibatch is the whole one.
        """
        o = self.objective
        theta = self.params_of(idx)
        pred = self.prediction_loss((X[idx] * theta).sum(1), y[idx])
        deltas = pair_deltas(U[idx][:, None, :], U[partners], categorical)
        pi = self.shares()
        param_dist = self.param_distance(idx, partners)
        if o.kind == "paper":  # φ = s·π learned by the matching term itself, L1 on Σφ = s
            s_phi = self.phi_scale()
            match = distance_matching_loss(param_dist, deltas, s_phi * pi)
            penalty = o.metric_penalty * s_phi
        else:  # the scale in closed form: the least-squares s for these pairs, s = Σ dδ / Σ δ² (δ = πᵀΔ)
            delta = deltas @ pi.detach()
            if batch_sum is None:
                s_phi = (param_dist.detach() * delta).sum() / (delta**2).sum().clamp_min(1e-12)
            else:
                s_phi = batch_sum((param_dist.detach() * delta).sum()) / batch_sum((delta**2).sum()).clamp_min(1e-12)
            gap = param_dist - s_phi * delta
            # "bound": only pairs farther apart than s·δ are pulled in (a Lipschitz bound on θ(u));
            # "match": every pair is pulled or pushed to s·δ (two-sided matching)
            match = ((torch.relu(gap) if o.kind == "bound" else gap) ** 2).mean()
            penalty = torch.zeros((), device=X.device)
        if (
            o.kind != "paper" and o.metric_learning > 0
        ):  # π-only signal: do the partners' θ, weighted by πᵀΔ, predict y_i?
            dist = deltas @ pi
            if batch_sum is None:
                scale = dist.detach().mean()
            else:
                scale = batch_sum(dist.detach().sum()) / batch_sum(dist.new_tensor(float(dist.numel())))
            tau = F.softplus(self.tau_raw) * (scale + 1e-12)  # relative to the neighbourhood's scale
            with torch.no_grad():
                theta_partners = self.params_of(partners)
            w = torch.softmax(-dist / tau, dim=1)
            theta_nb = (w[:, :, None] * theta_partners).sum(1)
            transfer = self.prediction_loss((X[idx] * theta_nb).sum(1), y[idx])
        else:
            transfer = torch.zeros((), device=X.device)
        pull = ((theta - self.theta_pop) ** 2).sum(1).mean()
        loss = pred + 0.5 * o.matching_weight * match + o.pull * pull + penalty + o.metric_learning * transfer
        if self.rank is None:
            w_theta = self.theta_metric()[:-1]
            loss = (
                loss
                + SCALE_PENALTY / F.softplus(self.scale_raw)
                + THETA_METRIC_PENALTY * ((w_theta - 1.0 / len(w_theta)) ** 2).sum()
            )
        else:
            loss = loss + o.latent_decay * ((self.rows(idx) ** 2).sum(1).mean() + (self.Q**2).sum())
        if self.encoder is not None:
            latent_hat = self.encoder(feats[idx])
            enc_fit = ((latent_hat - self.latent_of(idx).detach()) ** 2).sum(1).mean()
            enc_pred = self.prediction_loss((X[idx] * self.from_latent(latent_hat)).sum(1), y[idx])
            loss = loss + o.encoder_weight * enc_fit + enc_pred
        return loss, {"pred_loss": pred, "match_loss": match, "transfer_loss": transfer, "metric_scale": s_phi.detach()}

    @torch.no_grad()
    def matching_diagnostic(self, partners, U, categorical) -> dict:
        """How parameter distances relate to covariate distances over the partner pairs.

        Returns the metric's ``scale`` s (closed form over all pairs, or the learned one
        for the paper's objective), the Pearson ``correlation`` of ``d_param(i, j)`` with
        ``πᵀΔ_ij``, and the share of pairs ``within_bound`` (``d_param ≤ s·πᵀΔ``).
        """
        idx = torch.arange(partners.shape[0], device=partners.device)
        d = self.param_distance(idx, partners).flatten().double()
        delta = (pair_deltas(U[idx][:, None, :], U[partners], categorical) @ self.shares()).flatten().double()
        if self.objective.kind == "paper":
            scale = float(self.phi_scale())
        else:
            scale = float((d * delta).sum() / (delta**2).sum().clamp_min(1e-12))
        r = float(torch.corrcoef(torch.stack([d, delta]))[0, 1]) if d.std() > 0 and delta.std() > 0 else float("nan")
        return {"scale": scale, "correlation": r, "within_bound": float((d <= scale * delta + 1e-12).double().mean())}

    # ------------------------------------------------------------------ optimizers
    def configure_optimizers(self, lr: float, fused: bool = False):
        """Lazy Adam (``SparseAdam``) for the per-sample table, Adam for the shared tensors.

        A row of the table moves only when its sample, or a partner of one, is in the
        minibatch (dense Adam would keep moving every row on stale momentum, so each
        ``z_i``'s step per epoch would grow with n). The encoder trains at
        ``min(lr, ENCODER_LR_CAP)``. ``fused=True``: the optimizer of the closed-form
        engine (:mod:`perslib.personalized._fused`), the same update stepped from
        explicit row gradients.
        """
        table = self.per_sample()
        enc = {id(q) for q in self.encoder.parameters()} if self.encoder is not None else set()
        groups = [{"params": [q for q in self.parameters() if q is not table and id(q) not in enc]}]
        if enc:
            groups.append({"params": list(self.encoder.parameters()), "lr": min(lr, ENCODER_LR_CAP)})
        if fused:
            return FusedOptimizer(LazyRowAdam(table, lr), torch.optim.Adam(groups, lr=lr))
        return _JointOptimizer(torch.optim.SparseAdam([table], lr=lr), torch.optim.Adam(groups, lr=lr))

    def supports_fused(self) -> bool:
        """Whether the closed-form gradients of :mod:`perslib.personalized._fused` cover this objective."""
        return fused_supported(self)

    def loss_and_grads(self, idx, partners, deltas, X, y):
        """:meth:`loss` and its gradients in closed form (:func:`perslib.personalized._fused.loss_and_grads`)."""
        return loss_and_grads(self, idx, partners, deltas, X, y)
