"""Clusters never seen in training: pooling the z-predictor's soft memberships."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["UNSEEN_POOLING", "one_hot", "pool_memberships", "zpredictor_memberships"]


def pool_memberships(proba: np.ndarray, groups, how: str = "geometric") -> np.ndarray:
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


UNSEEN_POOLING = ("geometric", "arithmetic", "none")


def one_hot(codes: np.ndarray, n_clusters: int) -> np.ndarray:
    """Cluster design matrix (n, K): row i is the one-hot vector of ``codes[i]``; all zero where ``codes < 0``."""
    Z = np.zeros((len(codes), n_clusters))
    seen = codes >= 0
    Z[np.flatnonzero(seen), codes[seen]] = 1.0
    return Z


def zpredictor_memberships(
    zpredictor, X: np.ndarray, n_clusters: int, groups=None, pooling: str = "none"
) -> np.ndarray:
    """Soft memberships (n, K) of samples over the training clusters from the z-predictor.

    ``pooling`` other than ``"none"``, with ``groups`` given, replaces the rows of each
    labelled cluster by their pooled vector (:func:`pool_memberships`); the result for a
    row then depends on the other rows of its cluster passed with it. Without a
    z-predictor every row is zero (fixed effects only).
    """
    if zpredictor is None:
        return np.zeros((len(X), n_clusters))
    if pooling not in UNSEEN_POOLING:
        raise ValueError(f"unseen_pooling must be one of {UNSEEN_POOLING}, got {pooling!r}")
    proba = zpredictor.predict_proba(X)
    if groups is None or pooling == "none":
        return proba
    return pool_memberships(proba, groups, how=pooling)
