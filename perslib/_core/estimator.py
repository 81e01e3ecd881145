"""The scikit-learn contract, written once for every perslib estimator.

:class:`PerslibEstimator` gives each estimator the same behaviour where scikit-learn
users expect it:

* constructor parameters are only stored; their constraints are declared once per class
  (``_parameter_constraints``) and checked at the start of ``fit``;
* ``X`` is validated with the messages of :func:`perslib._core.validation.check_array`,
  and its column names are stored (``feature_names_in_``) and checked at predict time by
  scikit-learn's own rules (different or reordered columns raise scikit-learn's error);
  covariate tables get the same check (``covariate_names_in_``);
* ``predict`` before ``fit`` raises scikit-learn's ``NotFittedError``;
* randomness comes from ``random_state`` alone: the torch parts train on a stream of
  their own (:func:`perslib._core.runtime.seeded_torch`), the caller's is left as it was;
* tags say what an estimator needs (:class:`Tags`: binary-only, ``groups``, ``covariates``);
* ``save`` / :func:`perslib.load` store the estimator as plain data
  (:mod:`perslib._core.persistence`).

:class:`BinaryClassifierMixin` turns a ``decision_function`` into ``predict_proba`` and
``predict`` for the two-class estimators.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import Tags as _SklearnTags
from sklearn.utils.validation import check_is_fitted, validate_data

from perslib._core.training import TrainConfig
from perslib._core.validation import (
    check_array,
    check_binary_labels,
    check_consistent_length,
    check_random_state,
    check_target,
    validate_params,
)

__all__ = ["BinaryClassifierMixin", "PerslibEstimator", "Tags", "init_with_defaults", "standardize_target"]


def init_with_defaults(base_init, **defaults):
    """An ``__init__`` that calls ``base_init`` with other defaults, visible to ``get_params`` / ``clone``.

    scikit-learn reads an estimator's parameters from the signature of its ``__init__``;
    the returned function carries ``base_init``'s signature with the new defaults, so a
    subclass (or a class whose defaults differ from its base's) stays a normal estimator.
    """
    import inspect

    sig = inspect.signature(base_init)
    unknown = sorted(set(defaults) - set(sig.parameters))
    if unknown:
        raise ValueError(f"defaults {unknown} are not parameters of {base_init.__qualname__}")
    new_sig = sig.replace(
        parameters=[p.replace(default=defaults.get(p.name, p.default)) for p in sig.parameters.values()]
    )

    def __init__(self, *args, **kwargs):
        bound = new_sig.bind(self, *args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        arguments.pop("self")
        base_init(self, **arguments)

    __init__.__signature__ = new_sig
    return __init__


@dataclass
class Tags(_SklearnTags):
    """scikit-learn's estimator tags plus what a perslib estimator needs besides ``X`` and ``y``."""

    requires_groups: bool = False  # fit needs groups= (cluster labels)
    requires_covariates: bool = False  # fit needs covariates= (per-sample covariates)


class PerslibEstimator(BaseEstimator):
    """Base class of every perslib estimator (see the module docstring)."""

    _parameter_constraints: ClassVar[dict] = {}
    _requires_groups: ClassVar[bool] = False
    _requires_covariates: ClassVar[bool] = False
    _unsaved: ClassVar[tuple[str, ...]] = ()  # fitted attributes that save() leaves out (e.g. statsmodels results)

    # ------------------------------------------------------------------ parameters and inputs
    def _validate_params(self) -> None:
        validate_params(self)

    def _check_X(self, X, *, reset: bool) -> np.ndarray:
        """``X`` as a float array (n, p); with ``reset`` store its width and column names,
        else check them against the fitted ones (``NotFittedError`` before ``fit``)."""
        if not reset:
            check_is_fitted(self)
        arr = check_array(X, "X", ndim=2)
        validate_data(self, X if hasattr(X, "columns") else arr, reset=reset, skip_check_array=True)
        return arr

    def _validate_fit(self, X, y, *, labels: str | None = None, **aligned) -> tuple[np.ndarray, np.ndarray]:
        """The start of every ``fit``: parameters, ``X`` (its names stored), ``y``, aligned lengths.

        ``labels=None`` reads ``y`` as a regression target; ``"binary"`` or ``"classes"``
        as class labels (exactly two, or at least two), setting ``classes_`` and returning
        them encoded as 0 … n_classes − 1. ``aligned`` (``groups=``, ``covariates=``) must
        have as many rows as ``X``.
        """
        self._validate_params()
        X = self._check_X(X, reset=True)
        if labels is None:
            y = check_target(y)
        else:
            self.classes_, y = check_binary_labels(y, binary=labels == "binary")
        check_consistent_length(X=X, y=y, **aligned)
        return X, y

    def _check_column_names(self, value, *, reset: bool, name: str = "covariates") -> None:
        """The column-name check of :meth:`_check_X` for another table (``covariates``)."""
        attr = "covariate_names_in_" if name == "covariates" else f"{name}_names_in_"
        columns = getattr(value, "columns", None)
        names = (
            None
            if columns is None or not all(isinstance(c, str) for c in columns)
            else np.asarray(columns, dtype=object)
        )
        if reset:
            if names is not None:
                setattr(self, attr, names)
            elif hasattr(self, attr):
                delattr(self, attr)
            return
        fitted = getattr(self, attr, None)
        if fitted is None or names is None:
            return
        if len(names) != len(fitted) or (names != fitted).any():
            unseen = [c for c in names if c not in set(fitted)]
            missing = [c for c in fitted if c not in set(names)]
            detail = "".join(
                [
                    f"\n{name} columns unseen at fit time: {unseen}" if unseen else "",
                    f"\n{name} columns seen at fit time, yet now missing: {missing}" if missing else "",
                ]
            )
            raise ValueError(
                f"The {name} column names should match those that were passed during fit."
                + (detail or f"\n{name} columns must be in the same order as they were in fit: {list(fitted)}")
            )

    # ------------------------------------------------------------------ randomness and training
    def _random_streams(self) -> tuple[np.random.Generator, int]:
        """``(numpy generator, torch seed)`` from ``random_state``, for one fit."""
        rng = check_random_state(getattr(self, "random_state", None))
        return rng, int(rng.integers(2**31 - 1))

    def _train_config(self, **overrides) -> TrainConfig:
        """The training loop's settings from the estimator's ``epochs``, ``batch_size``, ``lr``,
        ``patience`` and ``progress`` parameters."""
        settings = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "patience": self.patience,
            "progress": self.progress,
            "desc": type(self).__name__,
        }
        settings.update(overrides)
        return TrainConfig(**settings)

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Write the estimator to ``path`` as plain data (no pickle; load with :func:`perslib.load`)."""
        from perslib._core.persistence import save

        save(self, path)

    @classmethod
    def load(cls, path):
        """Read an estimator written by :meth:`save`; it must be an instance of this class."""
        from perslib._core.persistence import load

        return load(path, expected=cls)

    # ------------------------------------------------------------------ tags
    def __sklearn_tags__(self) -> Tags:
        base = super().__sklearn_tags__()
        return Tags(
            **{f.name: getattr(base, f.name) for f in fields(base)},
            requires_groups=self._requires_groups,
            requires_covariates=self._requires_covariates,
        )


class BinaryClassifierMixin:
    """``predict_proba`` and ``predict`` of a two-class estimator from its ``decision_function``.

    The decision function is the logit of ``classes_[1]``; extra keyword arguments
    (``groups=``, ``covariates=``, ``z=``) are passed through. Its tags say that it is
    binary-only (``classifier_tags.multi_class = False``).
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def predict_proba(self, X, **kwargs) -> np.ndarray:
        """Class probabilities of shape (n, 2), columns in ``classes_`` order."""
        logit = np.asarray(self.decision_function(X, **kwargs), dtype=np.float64)
        p1 = 1.0 / (1.0 + np.exp(-logit))
        return np.column_stack([1.0 - p1, p1])

    def predict(self, X, **kwargs) -> np.ndarray:
        """The more probable class of each sample, shape (n,)."""
        positive = np.asarray(self.decision_function(X, **kwargs)) > 0  # first: NotFittedError before fit
        return self.classes_[positive.astype(int)]


def standardize_target(y: np.ndarray, standardize: bool) -> tuple[np.ndarray, float, float]:
    """``(standardized y, mean, scale)``: ``(y - mean) / scale``, or ``y`` unchanged when not asked.

    A constant target keeps scale 1.
    """
    mean = float(y.mean()) if standardize else 0.0
    sd = float(y.std())
    scale = sd if standardize and sd > 0 else 1.0
    return (y - mean) / scale, mean, scale
