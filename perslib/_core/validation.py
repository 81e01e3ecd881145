"""Input and parameter validation: every error names the argument and says what was expected.

* ``check_*`` turn bad input (NaN/inf, wrong shapes, text columns, missing cluster labels,
  a single class) into a ``ValueError`` that names the argument;
* :class:`Interval`, :class:`Options` and :class:`Instance` declare what a constructor
  parameter accepts, once per estimator (``_parameter_constraints``), and
  :func:`validate_params` checks them at the start of ``fit``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "Instance",
    "Interval",
    "InvalidParameterError",
    "Options",
    "check_array",
    "check_binary_labels",
    "check_consistent_length",
    "check_target",
    "column_or_1d",
    "check_groups",
    "check_n_columns",
    "check_random_state",
    "sorted_unique",
    "validate_params",
]


def check_random_state(random_state: Any) -> np.random.Generator:
    """Return a NumPy ``Generator`` from ``None``, an int seed or an existing generator."""
    if random_state is None or isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    raise ValueError(f"random_state must be None, an int or a numpy Generator, got {type(random_state).__name__}")


def check_array(
    value: Any,
    name: str,
    *,
    ndim: int | tuple[int, ...] | None = None,
    dtype: Any = np.float64,
    allow_nan: bool = False,
    min_rows: int = 1,
) -> np.ndarray:
    """Convert ``value`` to a NumPy array and validate it, naming ``name`` in every error.

    Parameters
    ----------
    value : array-like or pandas object
        The input.
    name : str
        The argument's name, quoted in error messages (``"X"``, ``"covariates"``...).
    ndim : int or tuple of int, optional
        Allowed numbers of dimensions.
    dtype : numpy dtype or None, default=float64
        Target dtype; ``None`` keeps the input's. A failed numeric conversion (a text
        column, say) raises a ``ValueError`` naming the argument.
    allow_nan : bool, default=False
        Accept NaN (never inf).
    min_rows : int, default=1
        Smallest accepted length of the first axis.

    Returns
    -------
    numpy.ndarray
    """
    if value is None:
        if name == "y":  # scikit-learn's wording
            raise ValueError("requires y to be passed, but the target y is None")
        raise ValueError(f"{name} is required, got None")
    if hasattr(value, "toarray") or type(value).__module__.startswith("scipy.sparse"):
        raise TypeError(f"{name} is a sparse matrix; sparse input is not supported: pass {name}.toarray()")
    dtypes = getattr(value, "dtypes", None)
    kinds = [t.kind for t in (dtypes if hasattr(dtypes, "__iter__") else [dtypes])] if dtypes is not None else []
    raw = None if dtypes is not None else np.asarray(value)
    if "c" in kinds or (raw is not None and raw.dtype.kind == "c"):
        raise ValueError(f"Complex data not supported: {name} must be real-valued")
    try:
        if hasattr(value, "to_numpy"):
            arr = value.to_numpy(dtype=dtype) if dtype is not None else value.to_numpy()
        else:
            arr = raw.astype(dtype) if dtype is not None else raw
    except (TypeError, ValueError) as exc:
        bad = ""
        if hasattr(value, "dtypes") and hasattr(value, "columns"):
            from pandas.api.types import is_bool_dtype, is_numeric_dtype

            cols = [str(c) for c, t in value.dtypes.items() if not (is_numeric_dtype(t) or is_bool_dtype(t))]
            if cols:
                bad = f" (non-numeric columns: {cols})"
        raise type(exc)(f"{name} must be numeric{bad}: {exc}") from None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            hint = ""
            if allowed == (2,) and arr.ndim == 1:
                hint = (
                    " Reshape your data with array.reshape(-1, 1) if it has a single feature,"
                    " or array.reshape(1, -1) if it is a single sample."
                )
            raise ValueError(
                f"{name} must have {' or '.join(map(str, allowed))} dimension(s), got shape {arr.shape}.{hint}"
            )
    if arr.ndim >= 1 and arr.shape[0] < min_rows:
        raise ValueError(f"{name} must have at least {min_rows} row(s), got shape {arr.shape}")
    if arr.ndim == 2 and arr.shape[1] < 1:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required by {name}."
        )
    if arr.dtype.kind in "fc":
        if np.isinf(arr).any():
            raise ValueError(f"{name} contains inf; expected finite values")
        if not allow_nan and np.isnan(arr).any():
            raise ValueError(f"{name} contains NaN; expected finite values (impute or drop them first)")
    return arr


def check_n_columns(arr: np.ndarray, expected: int, name: str = "X", what: str = "features") -> None:
    """Raise a ``ValueError`` when ``arr`` (2-D) does not have the ``expected`` number of
    columns seen at fit time: ``"X has 3 features, but the estimator was fitted with 2"``."""
    if arr.shape[1] != expected:
        raise ValueError(f"{name} has {arr.shape[1]} {what}, but the estimator was fitted with {expected}")


def check_consistent_length(**arrays: Any) -> int:
    """Check that all given arrays have the same first-axis length and return it.

    Call it with keyword arguments so that the error names them:
    ``check_consistent_length(X=X, y=y, groups=groups)``.
    """
    lengths = {name: len(a) for name, a in arrays.items() if a is not None}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k} has {v}" for k, v in lengths.items())
        raise ValueError(f"inconsistent numbers of samples: {detail}")
    return next(iter(lengths.values())) if lengths else 0


def check_groups(groups, n: int | None = None, *, fitting: bool = True) -> np.ndarray:
    """Validate cluster labels: a 1-d object array of hashable labels (of length ``n``).

    Missing labels (NaN/None) are refused when ``fitting``; at predict time they mean
    "cluster unknown".
    """
    if groups is None:
        raise ValueError("groups is required: one cluster label per sample")
    arr = groups.to_numpy() if hasattr(groups, "to_numpy") else np.asarray(groups, dtype=object)
    if arr.ndim != 1:
        raise ValueError(f"groups must be 1-dimensional, got shape {arr.shape}")
    if n is not None and len(arr) != n:
        raise ValueError(f"groups has {len(arr)} labels but X has {n} samples")
    if fitting and pd.isna(pd.Series(arr, dtype=object)).any():
        raise ValueError("groups contains missing values (NaN/None); give every sample a cluster label")
    return arr.astype(object)


def column_or_1d(y, name: str = "y") -> np.ndarray:
    """``y`` as a 1-d array; a column vector (n, 1) is flattened with scikit-learn's
    ``DataConversionWarning``, any other shape is refused."""
    arr = y.to_numpy() if hasattr(y, "to_numpy") else np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        import warnings

        from sklearn.exceptions import DataConversionWarning

        warnings.warn(
            f"A column-vector {name} was passed when a 1d array was expected. Please change the shape of {name} "
            "to (n_samples,), for example using ravel().",
            DataConversionWarning,
            stacklevel=3,
        )
        return arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional (n_samples,), got shape {arr.shape}")
    return arr


def check_target(y, name: str = "y") -> np.ndarray:
    """A regression target: finite floats of shape (n,) (a column vector is flattened with a warning)."""
    if y is None:
        raise ValueError(f"requires {name} to be passed, but the target {name} is None")
    return check_array(column_or_1d(y, name), name, ndim=1)


def sorted_unique(labels: np.ndarray) -> np.ndarray:
    """The distinct labels, sorted when they can be (mixed, unorderable labels keep first-seen order)."""
    uniq = pd.unique(pd.Series(labels, dtype=object))
    try:
        return np.asarray(sorted(uniq), dtype=object)
    except TypeError:
        return np.asarray(uniq, dtype=object)


def check_binary_labels(y, name: str = "y", *, binary: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Validate classification labels; return ``(classes, encoded)``.

    Continuous targets are refused the way scikit-learn refuses them ("Unknown label
    type: continuous"), as are NaN/inf and a single class; with ``binary=True`` exactly
    two classes are required.
    """
    from sklearn.utils.multiclass import check_classification_targets

    if y is None:
        raise ValueError(f"requires {name} to be passed, but the target {name} is None")
    arr = column_or_1d(y, name)
    if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf; expected class labels")
    check_classification_targets(arr)
    classes, encoded = np.unique(arr, return_inverse=True)
    if binary and len(classes) != 2:
        raise ValueError(
            f"Only binary classification is supported. {name} must contain exactly 2 classes, "
            f"got {len(classes)} class{'es' if len(classes) > 1 else ''}: {classes.tolist()[:10]}"
        )
    if len(classes) < 2:
        raise ValueError(f"{name} must contain at least 2 classes, got only 1 class: {classes.tolist()}")
    return classes, encoded


# --------------------------------------------------------------------------- parameter constraints


class InvalidParameterError(ValueError, TypeError):
    """A constructor parameter outside what the estimator accepts (a ValueError and a TypeError)."""


class Interval:
    """Numbers of ``kind`` (``Integral`` or ``Real``) between ``low`` and ``high``.

    ``closed`` is ``"both"``, ``"left"``, ``"right"`` or ``"neither"``; ``None`` bounds are open.
    Booleans are never numbers here.
    """

    def __init__(self, kind, low=None, high=None, closed: str = "both") -> None:
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def accepts(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, self.kind):
            return False
        if self.kind is Real and not np.isfinite(value):
            return False
        lo_ok = self.low is None or (value >= self.low if self.closed in ("both", "left") else value > self.low)
        hi_ok = self.high is None or (value <= self.high if self.closed in ("both", "right") else value < self.high)
        return bool(lo_ok and hi_ok)

    def __str__(self) -> str:
        what = "an int" if self.kind is Integral else "a float"
        left = "[" if self.closed in ("both", "left") and self.low is not None else "("
        right = "]" if self.closed in ("both", "right") and self.high is not None else ")"
        low = "-inf" if self.low is None else self.low
        high = "inf" if self.high is None else self.high
        return f"{what} in the range {left}{low}, {high}{right}"


class Options:
    """One of the given values (strings, ``None``, ``True``/``False``)."""

    def __init__(self, *values) -> None:
        self.values = values

    def accepts(self, value) -> bool:
        return any(value is v or (type(value) is type(v) and value == v) for v in self.values)

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


class Instance:
    """An instance of ``types``; with ``of=`` a sequence (not a string) whose items all satisfy ``of``."""

    def __init__(self, *types, of: Interval | None = None, description: str | None = None) -> None:
        self.types, self.of, self.description = types, of, description

    def accepts(self, value) -> bool:
        if not isinstance(value, self.types) or isinstance(value, str) and self.of is not None:
            return False
        return self.of is None or all(self.of.accepts(v) for v in value)

    def __str__(self) -> str:
        if self.description:
            return self.description
        names = " or ".join(t.__name__ for t in self.types)
        return f"a {names}" + (f" of {self.of}s" if self.of is not None else "")


def validate_params(estimator, constraints: Mapping[str, Sequence] | None = None) -> None:
    """Check every constructor parameter of ``estimator`` against its declared constraints.

    ``constraints`` defaults to the class's ``_parameter_constraints``: a mapping from each
    parameter name to a list of :class:`Interval` / :class:`Options` / :class:`Instance`;
    the value must satisfy one of them. A parameter without an entry is not checked.

    Raises
    ------
    InvalidParameterError
        ``"The 'epochs' parameter of MLPClassifier must be an int in the range [1, inf); got 0."``
    """
    constraints = type(estimator)._parameter_constraints if constraints is None else constraints
    params = estimator.get_params(deep=False)
    for name, allowed in constraints.items():
        value = params[name]
        if not any(c.accepts(value) for c in allowed):
            what = " or ".join(str(c) for c in allowed)
            raise InvalidParameterError(
                f"The {name!r} parameter of {type(estimator).__name__} must be {what}; got {value!r}."
            )
