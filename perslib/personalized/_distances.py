"""Covariate distances for personalized regression: encoding, per-pair distances, the matching loss.

Personalized regression compares samples through their covariates ``u``. For a pair
``(i, j)`` the per-covariate distances form a vector ``Δ_ij ∈ R^K``:

* numeric covariate ``k``: ``|u_ik − u_jk| / c_k`` where ``c_k`` is the covariate's mean
  absolute pairwise difference (Gini's mean difference, computed exactly in
  ``O(n log n)`` by sorting), so every covariate has mean pair distance 1;
* categorical covariate (object, category, string or bool column of a DataFrame, or a
  column named in ``categorical``): ``1[u_ik ≠ u_jk]``;
* ``0`` wherever either value is missing (NaN / None).

A learned metric ``φ ≥ 0`` gives ``d_φ(u_i, u_j) = φᵀΔ_ij``. Distances are only ever
computed for explicitly listed pairs (:func:`pair_deltas`), never as an ``n × n`` matrix.
Nearest neighbours under ``d_φ`` come from a KD-tree on :meth:`CovariateSpace.search_matrix`,
whose Manhattan distance equals ``d_φ`` exactly for complete numeric and categorical data
(numeric columns multiplied by ``φ_k``, categorical ones one-hot coded times ``φ_k / 2``).
For the search only, a missing numeric value is imputed by the column median and a
missing category is an all-zero code (distance ``φ_k / 2`` to every level); the pair
distances used in training keep the exact "missing counts 0" rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from perslib._core.validation import check_n_columns

__all__ = ["CovariateSpace", "distance_matching_loss", "mean_abs_pairwise_difference", "pair_deltas"]


def mean_abs_pairwise_difference(values: np.ndarray) -> float:
    """Exact mean of ``|a_i − a_j|`` over all pairs ``i < j`` of the finite values, O(n log n).

    Uses the sorted-order identity ``Σ_{i<j} |a_i − a_j| = Σ_i (2i − n + 1) a_(i)``
    (0-based ranks). Returns 1.0 for fewer than two values or a constant column.
    """
    a = np.sort(np.asarray(values, dtype=np.float64)[np.isfinite(values)])
    n = a.size
    if n < 2:
        return 1.0
    total = float(np.dot(2.0 * np.arange(n) - n + 1.0, a))
    mean = 2.0 * total / (n * (n - 1.0))
    return mean if mean > 0 else 1.0


class CovariateSpace:
    """Encode covariates once at fit time; reuse the encoding for new samples.

    Parameters
    ----------
    categorical : sequence of column names or positions, optional
        Columns to treat as categorical in addition to the automatically detected ones
        (object, category, string and bool columns of a DataFrame). Columns of a plain
        array must be numeric unless named here.

    Attributes
    ----------
    columns_ : list
        Column names (DataFrame) or positions (array).
    is_categorical_ : ndarray of bool, shape (K,)
    scale_ : ndarray of shape (K,)
        Divisor of each numeric covariate (1 for categorical ones).
    categories_ : list
        Known levels of each categorical column (``None`` for numeric ones).
    """

    def __init__(self, categorical: Sequence[Any] | None = None) -> None:
        self.categorical = categorical

    # ----------------------------------------------------------------- encoding
    def _columns(self, U: Any, fitting: bool) -> tuple[list, list]:
        name = "covariates"
        if isinstance(U, pd.Series):
            U = U.to_frame()
        if isinstance(U, pd.DataFrame):
            cols = list(U.columns)
            if not fitting:
                if len(cols) != len(self.columns_):
                    raise ValueError(
                        f"{name} has {len(cols)} columns, but the estimator was fitted with {len(self.columns_)}"
                    )
                if self.frame_:
                    missing = [c for c in self.columns_ if c not in cols]
                    if missing:
                        raise ValueError(f"{name} lacks the fitted columns {missing}")
                    U = U[self.columns_]
            return [U.iloc[:, k] for k in range(U.shape[1])], [str(c) for c in U.columns] if fitting else self.columns_
        arr = np.asarray(U, dtype=object) if not isinstance(U, np.ndarray) else U
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise ValueError(f"{name} must be 2-dimensional (n_samples, n_covariates), got shape {arr.shape}")
        if not fitting:
            check_n_columns(arr, len(self.columns_), name, "columns")
        return [pd.Series(arr[:, k]) for k in range(arr.shape[1])], list(range(arr.shape[1]))

    def __perslib_state__(self) -> dict:
        """Plain data for :mod:`perslib._core.persistence`."""
        return dict(vars(self))

    @classmethod
    def __from_perslib_state__(cls, state: dict) -> CovariateSpace:
        space = cls(state.pop("categorical"))
        space.__dict__.update(state)
        return space

    def fit(self, U: Any) -> CovariateSpace:
        """Learn column types, numeric scales and categorical levels from ``U`` (n, K)."""
        self.frame_ = isinstance(U, (pd.DataFrame, pd.Series))
        series, cols = self._columns(U, fitting=True)
        if not series:
            raise ValueError("covariates must have at least one column")
        self.columns_ = cols
        forced = set(self.categorical or [])
        self.is_categorical_ = np.zeros(len(series), dtype=bool)
        self.scale_ = np.ones(len(series))
        self.medians_ = np.zeros(len(series))
        self.categories_: list = []
        for k, s in enumerate(series):
            cat = cols[k] in forced or k in forced or (self.frame_ and _is_categorical_dtype(s))
            self.is_categorical_[k] = cat
            if cat:
                try:
                    levels = pd.unique(s.dropna())
                except TypeError as exc:
                    raise ValueError(
                        f"covariates column {cols[k]!r} is neither numeric nor categorical: {exc}"
                    ) from None
                self.categories_.append(pd.Index(levels))
            else:
                values = _numeric(s, cols[k])
                self.categories_.append(None)
                self.scale_[k] = mean_abs_pairwise_difference(values)
                finite = values[np.isfinite(values)]
                self.medians_[k] = float(np.median(finite)) if finite.size else 0.0
        return self

    def transform(self, U: Any) -> np.ndarray:
        """Encoded covariates, float64 (n, K): numeric divided by ``scale_``, categorical as
        integer codes (unseen levels get a fresh code that matches no training level),
        NaN where missing."""
        series, _ = self._columns(U, fitting=False)
        out = np.empty((len(series[0]), len(series)))
        for k, s in enumerate(series):
            if self.is_categorical_[k]:
                levels = self.categories_[k]
                try:
                    codes = levels.get_indexer(s).astype(np.float64)
                except TypeError as exc:
                    raise ValueError(
                        f"covariates column {self.columns_[k]!r} is not categorical-convertible: {exc}"
                    ) from None
                codes[codes < 0] = len(levels)  # unseen level
                codes[s.isna().to_numpy()] = np.nan
                out[:, k] = codes
            else:
                out[:, k] = _numeric(s, self.columns_[k]) / self.scale_[k]
        return out

    def search_matrix(self, encoded: np.ndarray, phi: np.ndarray) -> np.ndarray:
        """Rows whose Manhattan distance is ``φᵀΔ`` (see the module docstring), shape (n, D)."""
        blocks = []
        for k in range(encoded.shape[1]):
            col = encoded[:, k]
            if self.is_categorical_[k]:
                n_levels = len(self.categories_[k])
                onehot = np.zeros((len(col), n_levels))
                ok = np.isfinite(col) & (col < n_levels)
                onehot[np.flatnonzero(ok), col[ok].astype(np.int64)] = 0.5 * phi[k]
                blocks.append(onehot)
            else:
                filled = np.where(np.isnan(col), self.medians_[k] / self.scale_[k], col)
                blocks.append((phi[k] * filled)[:, None])
        return np.hstack(blocks)

    def feature_matrix(self, encoded: np.ndarray) -> np.ndarray:
        """Input of the amortized encoder: centred numeric columns (missing → 0) and one-hot
        categorical columns, shape (n, D)."""
        centred = encoded.copy()
        num = ~self.is_categorical_
        centred[:, num] = encoded[:, num] - (self.medians_ / self.scale_)[num]
        return self.search_matrix(centred, np.where(self.is_categorical_, 2.0, 1.0))


def _is_categorical_dtype(s: pd.Series) -> bool:
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    return is_bool_dtype(s.dtype) or not is_numeric_dtype(s.dtype)


def _numeric(s: pd.Series, column: Any) -> np.ndarray:
    try:
        values = pd.to_numeric(s, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"covariates column {column!r} must be numeric (or declared categorical): {exc}") from None
    if np.isinf(values).any():
        raise ValueError(f"covariates column {column!r} contains inf; expected finite values or NaN")
    return values


# ------------------------------------------------------------------ pair distances
def pair_deltas(u_i: torch.Tensor, u_j: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
    """Per-covariate distances ``Δ_ij`` of encoded covariates, broadcasting ``u_i`` against ``u_j``.

    Parameters
    ----------
    u_i, u_j : torch.Tensor of shape (..., K)
        Encoded covariates (:meth:`CovariateSpace.transform`); NaN marks a missing value.
    categorical : torch.BoolTensor of shape (K,)

    Returns
    -------
    torch.Tensor of shape (..., K): ``|u_i − u_j|`` (numeric), ``1[u_i ≠ u_j]``
    (categorical), 0 where either value is missing.
    """
    diff = u_i - u_j
    missing = torch.isnan(diff)
    d = torch.where(categorical, (diff != 0).to(diff.dtype), diff.abs())
    return torch.where(missing, torch.zeros_like(d), d)


def distance_matching_loss(param_dist: torch.Tensor, deltas: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """Mean squared distance error ``mean (d_param(i, j) − φᵀΔ_ij)²`` over the given pairs.

    Parameters
    ----------
    param_dist : torch.Tensor of shape (b, k)
        Distances between the pairs' parameters (latent ``‖z_i − z_j‖`` or weighted ℓ1).
    deltas : torch.Tensor of shape (b, k, K)
    phi : torch.Tensor of shape (K,)
    """
    return ((param_dist - deltas @ phi) ** 2).mean()
