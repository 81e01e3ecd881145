"""Layers of ARMED's networks: the Bayesian random-effects layer and gradient reversal."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["GradientReversal", "RandomEffects", "grad_reverse", "inv_softplus"]


def inv_softplus(x: float) -> float:
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
            raise ValueError(f"n_clusters and n_units must be >= 1, got {n_clusters!r}, {n_units!r}")
        lo, width = (float(v) for v in post_scale_init)
        if not lo > min_scale or width < 0:
            raise ValueError(f"post_scale_init must be (min > min_scale, range >= 0), got {post_scale_init!r}")
        prior = np.broadcast_to(np.asarray(prior_scale, dtype=np.float64), (int(n_units),)).copy()
        if not (prior > 0).all():
            raise ValueError(f"prior_scale must be > 0, got {prior_scale!r}")
        init = np.broadcast_to(np.asarray(post_init_scale, dtype=np.float64), (int(n_units),)).copy()
        self.n_clusters, self.n_units, self.min_scale = (
            int(n_clusters),
            int(n_units),
            float(min_scale),
        )
        self.loc = nn.Parameter(torch.randn(self.n_clusters, self.n_units) * torch.as_tensor(init, dtype=torch.float32))
        rho = torch.empty(self.n_clusters, self.n_units).uniform_(
            inv_softplus(lo - min_scale), inv_softplus(lo + width - min_scale) + 1e-12
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
            raise ValueError(f"z must have {self.n_clusters} columns, got shape {tuple(z.shape)}")
        return z.to(self.loc.dtype) @ self.weight()

    @torch.no_grad()
    def update_prior_scale_(self) -> None:
        """Set each prior scale to its empirical-Bayes optimum given the current posterior.

        ``tau_j^2 = mean_k (mu_kj^2 + sigma_kj^2)`` minimises the summed KL over ``tau``
        (the M-step of variational EM); an alternative to learning ``tau`` by gradient.
        """
        tau2 = (self.loc.square() + self.scale.square()).mean(0)
        self.log_prior_scale.copy_(torch.log((tau2.sqrt() - self.min_scale).clamp_min(self.min_scale)))

    def kl(self) -> torch.Tensor:
        """KL(q || p) summed over every element: a scalar (closed form for Gaussians)."""
        q, p = self.scale, self.prior_scale
        return (torch.log(p / q) + (q.square() + self.loc.square()) / (2 * p.square()) - 0.5).sum()

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
