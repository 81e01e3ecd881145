"""Batch effects in an embedding: how well batches separate, and how much class information is kept.

The ARMED paper's measures (Nguyen et al., TPAMI 2023, Table V), on z-scored latents: the
Davies–Bouldin (higher = batches less separated) and Calinski–Harabasz (lower = less
separated) scores with the batch as the cluster label. To them we add the silhouette by
batch (near 0 or below: mixed) and, for what must be *kept*, the k-nearest-neighbour
accuracy of the class label and the silhouette by label. Every score is scikit-learn's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from perslib._core.validation import check_array, check_consistent_length, check_groups

__all__ = ["batch_effect_intervals", "batch_effect_scores", "reconstruction_mse", "zscore"]


def zscore(latent, reference=None) -> np.ndarray:
    """Z-score each column of ``latent`` (n, d) by the mean and sd of ``reference`` (default: itself).

    Constant columns keep scale 1.
    """
    L = check_array(latent, "latent", ndim=2)
    R = L if reference is None else check_array(reference, "reference", ndim=2)
    if R.shape[1] != L.shape[1]:
        raise ValueError(f"reference has {R.shape[1]} columns but latent has {L.shape[1]}")
    sd = R.std(axis=0)
    return (L - R.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def batch_effect_scores(
    latent,
    batches,
    labels=None,
    *,
    reference=None,
    n_neighbors: int = 10,
    n_folds: int = 5,
    random_state: int = 0,
) -> dict[str, float]:
    """Batch separation and class information of an embedding, on z-scored columns.

    Parameters
    ----------
    latent : array-like of shape (n, d)
        The embedding (a latent, principal components, a corrected embedding).
    batches : array-like of shape (n,)
        Batch of each sample (at least two distinct).
    labels : array-like of shape (n,), optional
        Class labels; adds ``label_knn_accuracy`` and ``label_silhouette``.
    reference : array-like of shape (m, d), optional
        Rows whose column means and sds z-score ``latent`` (the paper z-scores by the
        training images); default ``latent`` itself.
    n_neighbors : int, default=10
        k of the k-NN label classifier.
    n_folds : int, default=5
        Stratified folds of the k-NN accuracy (each sample is predicted by a classifier
        that did not see it).
    random_state : int, default=0
        Shuffles the folds.

    Returns
    -------
    dict
        ``batch_davies_bouldin`` (higher: batches less separated), ``batch_calinski_harabasz``
        (lower: less separated), ``batch_silhouette`` (about 0 or below: mixed) and, with
        ``labels``, ``label_knn_accuracy`` and ``label_silhouette`` (higher: classes kept).
    """
    Z = zscore(latent, reference)
    b = check_groups(batches, len(Z))
    codes = pd.factorize(pd.Series(b, dtype=object))[0]
    if codes.max() < 1:
        raise ValueError("batches must hold at least 2 distinct batches")
    out = {
        "batch_davies_bouldin": float(davies_bouldin_score(Z, codes)),
        "batch_calinski_harabasz": float(calinski_harabasz_score(Z, codes)),
        "batch_silhouette": float(silhouette_score(Z, codes)),
    }
    if labels is not None:
        y = np.asarray(labels)
        check_consistent_length(latent=Z, labels=y)
        cv = StratifiedKFold(n_folds, shuffle=True, random_state=random_state)
        knn = KNeighborsClassifier(n_neighbors)
        out["label_knn_accuracy"] = float(cross_val_score(knn, Z, y, cv=cv).mean())
        out["label_silhouette"] = float(silhouette_score(Z, y))
    return out


def batch_effect_intervals(
    latent, batches, *, reference=None, n_boot: int = 200, level: float = 0.95, random_state: int = 0
) -> pd.DataFrame:
    """Normal bootstrap intervals of the batch-separation scores of :func:`batch_effect_scores`.

    Samples are resampled with replacement within each batch (so every batch keeps its
    size); the z-scoring is fixed (by ``reference``, default the full ``latent``). The
    interval is ``estimate ± z · sd`` of the bootstrap replicates: the percentile interval
    is not used because duplicated samples bias these scores (Davies–Bouldin drops by
    10-30% on resamples), so the replicates' percentiles can miss the estimate itself.

    Parameters
    ----------
    latent : array-like of shape (n, d)
    batches : array-like of shape (n,)
    reference : array-like of shape (m, d), optional
    n_boot : int, default=200
    level : float, default=0.95
    random_state : int, default=0

    Returns
    -------
    pandas.DataFrame
        Index ``batch_davies_bouldin``, ``batch_calinski_harabasz``, ``batch_silhouette``;
        columns ``low`` and ``high``.
    """
    L = check_array(latent, "latent", ndim=2)
    Z = zscore(L, L if reference is None else reference)
    codes = pd.factorize(pd.Series(check_groups(batches, len(Z)), dtype=object))[0]
    members = [np.flatnonzero(codes == k) for k in range(codes.max() + 1)]
    rng = np.random.default_rng(random_state)
    rows = []
    for _ in range(int(n_boot)):
        idx = np.concatenate([rng.choice(m, len(m)) for m in members])
        Zb, cb = Z[idx], codes[idx]
        rows.append([davies_bouldin_score(Zb, cb), calinski_harabasz_score(Zb, cb), silhouette_score(Zb, cb)])
    from scipy.stats import norm

    names = ["batch_davies_bouldin", "batch_calinski_harabasz", "batch_silhouette"]
    estimate = np.array([davies_bouldin_score(Z, codes), calinski_harabasz_score(Z, codes), silhouette_score(Z, codes)])
    half = norm.ppf(0.5 + level / 2) * np.asarray(rows).std(axis=0, ddof=1)
    return pd.DataFrame({"low": estimate - half, "high": estimate + half}, index=names)


def reconstruction_mse(X, X_hat) -> float:
    """Mean squared error over every number of ``X`` and its reconstruction (same shape)."""
    A, B = np.asarray(X, dtype=np.float64), np.asarray(X_hat, dtype=np.float64)
    if A.shape != B.shape:
        raise ValueError(f"X_hat has shape {B.shape} but X has shape {A.shape}")
    if not (np.isfinite(A).all() and np.isfinite(B).all()):
        raise ValueError("X and X_hat must be finite")
    return float(np.mean((A - B) ** 2))
