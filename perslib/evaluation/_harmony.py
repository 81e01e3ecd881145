"""The peer that users pick for batch correction: Harmony (Korsunsky et al., Nature Methods 2019)
on a PCA embedding, through the ``harmonypy`` package (optional extra ``perslib[batch]``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from perslib._core.validation import check_array, check_groups

__all__ = ["harmony_available", "pca_harmony"]


def harmony_available() -> bool:
    """Whether ``harmonypy`` can be imported (``pip install "perslib[batch]"``)."""
    try:
        import harmonypy  # noqa: F401
    except ImportError:
        return False
    return True


def pca_harmony(
    X, batches, n_components: int = 16, *, fit_rows=None, random_state: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Principal components of ``X`` and their Harmony-corrected version.

    Harmony is transductive: it corrects the embedding of the samples it is given (it
    clusters them softly and removes each cluster's batch-specific centroid shift), so
    every sample to be scored must be passed here; there is no ``transform`` of new data.

    Parameters
    ----------
    X : array-like of shape (n, p)
        Flatten images first.
    batches : array-like of shape (n,)
    n_components : int, default=16
        Embedding size (use the autoencoder's latent size for a like-for-like comparison).
    fit_rows : array-like of int or bool, optional
        Rows the PCA is fitted on (e.g. the training images); default all.
    random_state : int, default=0

    Returns
    -------
    pcs : ndarray of shape (n, n_components)
        The uncorrected principal components.
    corrected : ndarray of shape (n, n_components)
        Harmony's corrected embedding (``Z_corr``).
    """
    try:
        import harmonypy
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError('pca_harmony needs the optional package harmonypy: pip install "perslib[batch]"') from err
    A = check_array(X, "X", ndim=2)
    b = check_groups(batches, len(A))
    rows = np.arange(len(A)) if fit_rows is None else np.asarray(fit_rows)
    pcs = PCA(n_components, random_state=random_state).fit(A[rows]).transform(A)
    meta = pd.DataFrame({"batch": pd.Series(b, dtype=object).astype(str).to_numpy()})
    result = harmonypy.run_harmony(pcs, meta, ["batch"], verbose=False, random_state=random_state)
    Z = np.asarray(result.Z_corr, dtype=np.float64)
    if Z.shape != pcs.shape:  # harmonypy < 2 returns (n_components, n)
        Z = Z.T
    return pcs, Z
