"""ARMED building blocks: random-effects layer, mixed-effects network, adversary, losses.

ARMED (Adversarially-Regularized Mixed Effects Deep learning; Nguyen, Treacher &
Montillo, IEEE TPAMI 2023) splits a network into

* a **fixed-effects (FE) network** f(x) — the conventional model, made blind to the
  cluster by an **adversary** A that tries to recognise the cluster from the FE hidden
  activations while the FE network is trained to *increase* A's cross-entropy;
* a **random-effects (RE) subnetwork** whose only input is the cluster design vector z
  (one-hot, or soft probabilities for clusters not seen in training): Bayesian per-cluster
  intercepts and slopes, shrunk towards zero by a Gaussian prior;
* **mixing on the logit**: ``logit_M = f(x) + x'u_lin(z) + h_F'u_nlin(z) + u_int(z)``.

Everything here is a plain ``torch.nn.Module`` or function usable inside any model; the
scikit-learn style estimators live in :mod:`perslib.armed_models`. Written from the
method description, not from the official (academic-licence) code, and free of the
defects listed for it (see the module docstring of :mod:`perslib.armed_models`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from perslib.mlp import MLP

__all__ = [
    "ARMEDNet",
    "GradientReversal",
    "RandomEffects",
    "adversary_loss",
    "gaussian_nll",
    "generator_loss",
    "grad_reverse",
    "linear_mixed_refit",
    "pool_memberships",
]


def _inv_softplus(x: float) -> float:
    """Inverse of softplus for x > 0: log(exp(x) - 1), computed stably."""
    return float(x + math.log(-math.expm1(-x)))


class RandomEffects(nn.Module):
    r"""Bayesian per-cluster parameters: output ``z @ W`` with ``W`` of shape (K, units).

    Each element of ``W`` has a mean-field Gaussian posterior ``N(mu, sigma^2)`` with
    ``sigma = min_scale + softplus(rho)`` and a zero-mean Gaussian prior
    ``N(0, tau_j^2)`` (one prior scale per unit ``j``). With ``learn_prior_scale=True``
    the prior scales are parameters trained on the same objective (empirical Bayes: the
    variational optimum is ``tau_j^2 = mean_k (mu_kj^2 + sigma_kj^2)``, the analogue of a
    mixed model's variance component).

    In training mode each forward call draws **one** reparameterised sample of ``W``,
    shared by the whole minibatch; in eval mode the posterior means are used, so the
    output is deterministic and equals ``z @ mu``. ``z`` may be one-hot (a cluster's row)
    or soft (a probability-weighted mix of cluster rows; all-zero switches the RE off).

    Parameters
    ----------
    n_clusters : int
        Number of clusters K (rows of W).
    n_units : int, default=1
        Parameters per cluster (1 for an intercept, p for slopes on p inputs).
    prior_scale : float or sequence of float, default=0.1
        Prior standard deviation ``tau`` (its initial value when learned), per unit.
    learn_prior_scale : bool, default=True
        Learn ``tau`` (empirical Bayes) rather than keep it fixed.
    post_init_scale : float or sequence of float, default=0.1
        Standard deviation of the random initialisation of the posterior means (per unit).
    post_scale_init : (float, float), default=(0.05, 0.05)
        ``(min, range)``: initial posterior standard deviations are uniform on
        ``[min, min + range]`` (the inverse softplus is applied to both ends, not to
        ``min`` and ``range`` separately).
    min_scale : float, default=1e-5
        Floor added to the softplus of the posterior scale and to the prior scale.
    """

    def __init__(
        self,
        n_clusters: int,
        n_units: int = 1,
        prior_scale: float | Sequence[float] = 0.1,
        learn_prior_scale: bool = True,
        post_init_scale: float = 0.1,
        post_scale_init: tuple[float, float] = (0.05, 0.05),
        min_scale: float = 1e-5,
    ) -> None:
        super().__init__()
        if int(n_clusters) < 1 or int(n_units) < 1:
            raise ValueError(
                f"n_clusters and n_units must be >= 1, got {n_clusters!r}, {n_units!r}"
            )
        lo, width = (float(v) for v in post_scale_init)
        if not lo > min_scale or width < 0:
            raise ValueError(
                f"post_scale_init must be (min > min_scale, range >= 0), got {post_scale_init!r}"
            )
        prior = np.broadcast_to(
            np.asarray(prior_scale, dtype=np.float64), (int(n_units),)
        ).copy()
        if not (prior > 0).all():
            raise ValueError(f"prior_scale must be > 0, got {prior_scale!r}")
        init = np.broadcast_to(
            np.asarray(post_init_scale, dtype=np.float64), (int(n_units),)
        ).copy()
        self.n_clusters, self.n_units, self.min_scale = (
            int(n_clusters),
            int(n_units),
            float(min_scale),
        )
        self.loc = nn.Parameter(
            torch.randn(self.n_clusters, self.n_units)
            * torch.as_tensor(init, dtype=torch.float32)
        )
        rho = torch.empty(self.n_clusters, self.n_units).uniform_(
            _inv_softplus(lo - min_scale), _inv_softplus(lo + width - min_scale) + 1e-12
        )
        self.rho = nn.Parameter(rho)
        log_prior = torch.as_tensor(np.log(prior), dtype=torch.float32)
        if learn_prior_scale:
            self.log_prior_scale = nn.Parameter(log_prior)
        else:
            self.register_buffer("log_prior_scale", log_prior)

    @property
    def scale(self) -> torch.Tensor:
        """Posterior standard deviations, shape (K, units)."""
        return self.min_scale + F.softplus(self.rho)

    @property
    def prior_scale(self) -> torch.Tensor:
        """Prior standard deviations, shape (units,)."""
        return self.min_scale + self.log_prior_scale.exp()

    def weight(self) -> torch.Tensor:
        """One reparameterised draw of W in training mode; the posterior means in eval mode."""
        if self.training:
            return self.loc + self.scale * torch.randn_like(self.loc)
        return self.loc

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Map cluster vectors ``z`` (batch, K) to per-sample parameters (batch, units).

        ``z`` may also be an int64 tensor of cluster indices (batch,): the same as its
        one-hot encoding, computed by row look-up (faster in training).
        """
        if z.dtype == torch.int64 and z.ndim == 1:
            return self.weight()[z]
        if z.shape[-1] != self.n_clusters:
            raise ValueError(
                f"z must have {self.n_clusters} columns, got shape {tuple(z.shape)}"
            )
        return z.to(self.loc.dtype) @ self.weight()

    @torch.no_grad()
    def update_prior_scale_(self) -> None:
        """Set each prior scale to its empirical-Bayes optimum given the current posterior.

        ``tau_j^2 = mean_k (mu_kj^2 + sigma_kj^2)`` minimises the summed KL over ``tau``
        (the M-step of variational EM); an alternative to learning ``tau`` by gradient.
        """
        tau2 = (self.loc.square() + self.scale.square()).mean(0)
        self.log_prior_scale.copy_(
            torch.log((tau2.sqrt() - self.min_scale).clamp_min(self.min_scale))
        )

    def kl(self) -> torch.Tensor:
        """KL(q || p) summed over every element: a scalar (closed form for Gaussians)."""
        q, p = self.scale, self.prior_scale
        return (
            torch.log(p / q) + (q.square() + self.loc.square()) / (2 * p.square()) - 0.5
        ).sum()

    def extra_repr(self) -> str:
        return f"n_clusters={self.n_clusters}, n_units={self.n_units}"


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, coef):
        ctx.coef = coef  # a 0-d tensor, read at backward time
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.coef.to(grad.dtype) * grad, None


def grad_reverse(x: torch.Tensor, coef: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Identity forward; multiplies the gradient by ``-coef`` backward.

    ``coef`` may be a 0-d tensor that is changed in place before ``backward()`` (the
    estimators use this to switch the reversal off for a batch whose adversary loss is
    already at chance level).
    """
    coef = coef if torch.is_tensor(coef) else torch.tensor(float(coef))
    return _GradReverse.apply(x, coef)


class GradientReversal(nn.Module):
    """Module form of :func:`grad_reverse` with a fixed coefficient."""

    def __init__(self, coef: float = 1.0) -> None:
        super().__init__()
        self.coef = float(coef)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.coef)


def adversary_loss(logits: torch.Tensor, clusters: torch.Tensor) -> torch.Tensor:
    """Adversary's objective (minimised by the adversary): mean cross-entropy of the cluster."""
    return F.cross_entropy(logits, clusters)


def generator_loss(
    logits: torch.Tensor,
    clusters: torch.Tensor,
    log_prior: torch.Tensor,
    guard: str = "clamp",
    cap: float = 1.0,
) -> torch.Tensor:
    r"""The FE network's adversarial term, to be **added** to (and minimised with) its loss.

    The FE network wants the adversary to fail. The raw objective ``-CE`` is unbounded
    below (the FE network can make the lagging adversary arbitrarily confidently wrong),
    so a guard is applied:

    * ``"clamp"`` (default): ``-mean_i min(CE_i, cap * (-log pi_{k_i}))`` — each sample is
      pushed only until the adversary's loss on it reaches ``cap`` times the loss of the
      chance-level (marginal) predictor ``pi``; beyond that the gradient is zero.
    * ``"confusion"``: ``mean_i CE(pi, A(h_i)) - H(pi)`` — pulls the adversary's
      prediction towards the marginal cluster distribution (>= 0, minimum at chance).
    * ``"none"``: ``-mean_i CE_i`` (the paper's loss, unbounded).

    Parameters
    ----------
    logits : tensor (batch, K)
        Adversary logits on the (non-detached) FE activations.
    clusters : tensor (batch,) of int64
    log_prior : tensor (K,)
        Log of the training cluster proportions ``pi``.
    guard : {"clamp", "confusion", "none"}
    cap : float, default=1.0
        Multiple of the chance-level loss at which ``"clamp"`` stops pushing.
    """
    if guard == "confusion":
        logp = F.log_softmax(logits, dim=1)
        prior = log_prior.exp()
        entropy = -(prior * log_prior).sum()
        return -(logp * prior).sum(1).mean() - entropy
    ce = F.cross_entropy(logits, clusters, reduction="none")
    if guard == "clamp":
        ce = torch.minimum(ce, -cap * log_prior[clusters])
    elif guard != "none":
        raise ValueError(f"guard must be 'clamp', 'confusion' or 'none', got {guard!r}")
    return -ce.mean()


def gaussian_nll(
    pred: torch.Tensor, target: torch.Tensor, log_sd: torch.Tensor
) -> torch.Tensor:
    """Mean Gaussian negative log-likelihood (without the constant) with a learned residual sd."""
    return 0.5 * ((target - pred) / log_sd.exp()).square().mean() + log_sd


class ARMEDNet(nn.Module):
    """Dense ARMED network: FE MLP, optional adversary, random intercept and slopes.

    The random intercept and slopes live in one :class:`RandomEffects` layer ``re``
    (column 0 the intercept when present, then the slopes), each column with its own
    prior scale, so they are drawn, shrunk and (with empirical Bayes) scaled per effect.

    Parameters
    ----------
    n_features : int
    n_clusters : int
        Number of training clusters K (the width of z).
    hidden : sequence of int, default=(32, 32)
        Hidden widths of the FE network (:class:`perslib.mlp.MLP`, one output: the FE
        logit or the FE regression output).
    activation : str, default="relu"
    slopes : {"linear", "nonlinear", "none"}, default="linear"
        Random slopes on the inputs (``x'u_lin(z)``), on the last FE hidden layer
        (``h_F'u_nlin(z)``) or none.
    random_intercept : bool, default=True
    adversary_hidden : sequence of int or None, default=(16, 16)
        Hidden widths of the adversary (on the concatenation of all FE hidden
        activations); ``None`` builds no adversary.
    intercept_prior, slope_prior : float
        Initial (or fixed) prior scales of the random intercept and slopes.
    learn_prior_scale : bool, default=True
    intercept_post_init, slope_post_init : float
        Standard deviation of the initial posterior means.
    """

    def __init__(
        self,
        n_features: int,
        n_clusters: int,
        hidden: Sequence[int] = (32, 32),
        activation: str = "relu",
        slopes: str = "linear",
        random_intercept: bool = True,
        adversary_hidden: Sequence[int] | None = (16, 16),
        intercept_prior: float = 0.5,
        slope_prior: float = 0.1,
        learn_prior_scale: bool = True,
        intercept_post_init: float = 0.1,
        slope_post_init: float = 0.05,
    ) -> None:
        super().__init__()
        if slopes not in ("linear", "nonlinear", "none"):
            raise ValueError(
                f"slopes must be 'linear', 'nonlinear' or 'none', got {slopes!r}"
            )
        hidden = [int(h) for h in hidden]
        if slopes == "nonlinear" and not hidden:
            raise ValueError("slopes='nonlinear' needs at least one hidden layer")
        self.n_clusters, self.slopes = int(n_clusters), slopes
        self.n_intercepts = int(bool(random_intercept))
        self.n_slopes = {
            "linear": int(n_features),
            "nonlinear": hidden[-1] if hidden else 0,
            "none": 0,
        }[slopes]
        self.fe = MLP(n_features, hidden, 1, activation)
        units = self.n_intercepts + self.n_slopes
        prior = [intercept_prior] * self.n_intercepts + [slope_prior] * self.n_slopes
        init = [intercept_post_init] * self.n_intercepts + [
            slope_post_init
        ] * self.n_slopes
        self.re = (
            RandomEffects(n_clusters, units, prior, learn_prior_scale, init)
            if units
            else None
        )
        self.adversary = (
            MLP(
                sum(hidden) or int(n_features), adversary_hidden, n_clusters, activation
            )
            if adversary_hidden is not None and n_clusters >= 2
            else None
        )

    def main_parameters(self):
        """Parameters of the FE network and the random effects (not the adversary's)."""
        for name, p in self.named_parameters():
            if not name.startswith("adversary."):
                yield p

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> dict:
        """Return ``{"fixed": f(x), "mixed": f(x) + RE terms, "hidden": [h_1..h_L]}``.

        ``fixed`` and ``mixed`` have shape (batch,) and are logits for classifiers.
        ``z`` is (batch, K) (one-hot, soft or zero) or int64 cluster indices (batch,);
        ``z=None`` (or all-zero rows) gives ``mixed == fixed``.
        """
        out, hiddens = self.fe(x, return_hidden=True)
        fixed = out[:, 0]
        mixed = fixed
        if z is not None and self.re is not None:
            u = self.re(z)
            if self.n_intercepts:
                mixed = mixed + u[:, 0]
            if self.n_slopes:
                basis = x if self.slopes == "linear" else hiddens[-1]
                mixed = mixed + (basis * u[:, self.n_intercepts :]).sum(1)
        return {"fixed": fixed, "mixed": mixed, "hidden": hiddens}

    def adversary_input(
        self, hiddens: list[torch.Tensor], x: torch.Tensor
    ) -> torch.Tensor:
        """Concatenated FE hidden activations (the input itself for a linear FE net)."""
        return torch.cat(hiddens, dim=1) if hiddens else x

    def kl(self) -> torch.Tensor:
        """Sum of the KL terms of the random effects (a scalar; 0 without random effects)."""
        if self.re is None:
            return torch.zeros((), device=self.fe.out.weight.device)
        return self.re.kl()


def linear_mixed_refit(
    y: np.ndarray,
    H: np.ndarray,
    B: np.ndarray,
    clusters: np.ndarray,
    n_clusters: int,
    tau: np.ndarray,
    sigma: float,
    n_iter: int = 100,
    tol: float = 1e-6,
    ridge: float = 0.0,
) -> dict:
    r"""Closed-form empirical-Bayes fit of a linear mixed model on given features (EM).

    Model: ``y_i = H_i beta + B_i u_{k(i)} + e_i`` with ``u_k ~ N(0, diag(tau^2))`` and
    ``e_i ~ N(0, sigma^2)``. EM for maximum likelihood: the E-step is the exact Gaussian
    posterior of every ``u_k`` (``S_k = (B_k'B_k / sigma^2 + diag(tau^-2))^-1``,
    ``mu_k = S_k B_k'(y_k - H_k beta) / sigma^2``, the BLUP); the M-step sets
    ``tau_j^2 = mean_k (mu_kj^2 + S_k,jj)``, ``sigma^2`` to the expected mean squared
    residual and ``beta`` to least squares on ``y - B mu``. The ARMED regressor applies
    it after training with ``H`` = [1, last FE hidden layer] (its output layer) and ``B``
    = [1, slope basis], i.e. a linear mixed model on the learned FE features.

    Parameters
    ----------
    y : array (n,)
    H : array (n, q)
        Fixed-effects design (include a column of ones for an intercept).
    B : array (n, d)
        Random-effects design (column of ones = random intercept).
    clusters : int array (n,)
        Cluster index of each row, in ``0 .. n_clusters - 1``.
    n_clusters : int
    tau : array (d,)
        Initial random-effect standard deviations (> 0).
    sigma : float
        Initial residual standard deviation (> 0).
    n_iter, tol : int, float
        At most ``n_iter`` EM steps; stop when the relative change of ``tau`` and
        ``sigma`` is below ``tol``.
    ridge : float, default=0.0
        L2 penalty on ``beta[1:]`` (the first column of ``H`` is taken to be the
        intercept and is not penalized), per sample and on the scale of the mean
        log-likelihood: the M-step solves
        ``(H'H + n · ridge · sigma^2 · D) beta = H'(y - B mu)``, ``D = diag(0, 1, …, 1)``.
        The ARMED regressor passes its ``weight_decay``, so the refit keeps the penalty
        its output layer was trained with. Learned hidden features are often nearly
        collinear (few distinct input rows, dead units): unpenalized least squares then
        puts huge weights on directions with singular values near zero and extrapolates
        badly (MathAchieve, one fold: held-out R² −0.03 against 0.21 with the penalty).
        A tiny jitter (1e-10 of the mean diagonal) is always added for numerical safety.

    Returns
    -------
    dict with ``beta`` (q,), ``mu`` (K, d) posterior means, ``cov`` (K, d, d) posterior
    covariances, ``tau`` (d,), ``sigma`` (float) and ``n_iter``.
    """
    y = np.asarray(y, dtype=np.float64)
    H = np.asarray(H, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    codes = np.asarray(clusters, dtype=np.int64)
    K, (n, d) = int(n_clusters), B.shape
    tau = np.asarray(tau, dtype=np.float64).copy()
    sigma = float(sigma)
    BtB = np.zeros((K, d, d))
    np.add.at(BtB, codes, B[:, :, None] * B[:, None, :])
    HtH = H.T @ H
    penalty = np.ones(H.shape[1])
    penalty[0] = 0.0  # the intercept column
    jitter = 1e-10 * np.trace(HtH) / H.shape[1] * np.eye(H.shape[1])

    def solve_beta(target, sigma):
        return np.linalg.solve(HtH + n * float(ridge) * sigma**2 * np.diag(penalty) + jitter, H.T @ target)

    beta = solve_beta(y, sigma)
    eye = np.eye(d)
    it = 0
    for it in range(1, int(n_iter) + 1):
        r = y - H @ beta
        Btr = np.zeros((K, d))
        np.add.at(Btr, codes, B * r[:, None])
        cov = np.linalg.inv(BtB / sigma**2 + eye / tau**2)
        mu = np.einsum("kij,kj->ki", cov, Btr) / sigma**2
        new_tau = np.sqrt((mu**2 + np.diagonal(cov, axis1=1, axis2=2)).mean(0))
        new_tau = np.maximum(new_tau, 1e-6)
        fitted = (B * mu[codes]).sum(1)
        resid = ((r - fitted) ** 2).sum() + np.einsum("kij,kji->", BtB, cov)
        new_sigma = max(float(np.sqrt(resid / n)), 1e-6)
        beta = solve_beta(y - fitted, new_sigma)
        change = max(np.abs(new_tau / tau - 1).max(), abs(new_sigma / sigma - 1))
        tau, sigma = new_tau, new_sigma
        if change < tol:
            break
    r = y - H @ beta
    Btr = np.zeros((K, d))
    np.add.at(Btr, codes, B * r[:, None])
    cov = np.linalg.inv(BtB / sigma**2 + eye / tau**2)
    mu = np.einsum("kij,kj->ki", cov, Btr) / sigma**2
    return {
        "beta": beta,
        "mu": mu,
        "cov": cov,
        "tau": tau,
        "sigma": sigma,
        "n_iter": it,
    }


def pool_memberships(
    proba: np.ndarray, groups, how: str = "geometric"
) -> np.ndarray:
    """Pool per-sample soft cluster memberships within each cluster of new samples.

    The z-predictor sees one sample at a time, so its membership vector for a sample of
    a new cluster is noisy. When the samples' own cluster labels are known (a new
    hospital, a new school), the evidence of all samples of that cluster can be pooled
    into one membership vector for the whole cluster.

    Parameters
    ----------
    proba : ndarray of shape (n, K)
        Per-sample membership probabilities over the K training clusters (rows sum to 1).
    groups : array-like of shape (n,)
        Cluster label of each sample. Samples with a missing label (None/NaN) are left
        as they are.
    how : {"geometric", "arithmetic"}, default="geometric"
        ``"geometric"``: ``softmax(mean_i log p_i)``, the posterior over the training
        clusters given all samples of the cluster, with each sample's log-evidence
        weighted 1/n_g (memberships that all samples support gain weight, without
        becoming n_g times as confident as a single sample). ``"arithmetic"``: the mean
        of the rows.

    Returns
    -------
    ndarray of shape (n, K)
        Each labelled row replaced by its cluster's pooled membership vector.
    """
    P = np.asarray(proba, dtype=np.float64)
    if P.ndim != 2:
        raise ValueError(f"proba must be 2-dimensional (n, K), got shape {P.shape}")
    if not np.isfinite(P).all() or (P < 0).any():
        raise ValueError("proba must contain finite, non-negative probabilities")
    g = pd.Series(np.asarray(groups, dtype=object), dtype=object)
    if len(g) != len(P):
        raise ValueError(f"groups has {len(g)} labels but proba has {len(P)} rows")
    if how not in ("geometric", "arithmetic"):
        raise ValueError(f"how must be 'geometric' or 'arithmetic', got {how!r}")
    out = P.copy()
    labelled = ~g.isna().to_numpy()
    if not labelled.any():
        return out
    codes, _ = pd.factorize(g[labelled])
    rows = np.flatnonzero(labelled)
    for c in range(codes.max() + 1):
        idx = rows[codes == c]
        if how == "arithmetic":
            out[idx] = P[idx].mean(axis=0)
        else:
            logp = np.log(np.clip(P[idx], 1e-12, None)).mean(axis=0)
            e = np.exp(logp - logp.max())
            out[idx] = e / e.sum()
    return out
