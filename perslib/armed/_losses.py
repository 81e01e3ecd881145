"""ARMED's loss terms: the adversary's, the fixed-effects network's guarded adversarial term,
and the Gaussian likelihood of the regressor."""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["adversary_loss", "gaussian_nll", "generator_loss"]


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


def gaussian_nll(pred: torch.Tensor, target: torch.Tensor, log_sd: torch.Tensor) -> torch.Tensor:
    """Mean Gaussian negative log-likelihood (without the constant) with a learned residual sd."""
    return 0.5 * ((target - pred) / log_sd.exp()).square().mean() + log_sd
