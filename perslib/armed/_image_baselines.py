"""Baselines for ARMED on images, on the same convolutional backbone and ``fit(X, y, groups=g)`` API.

* :class:`perslib.cnn.CNNClassifier` — the conventional CNN (accepts and ignores ``groups``).
* :class:`ClusterInputCNNClassifier` — the site's one-hot vector joined to the flattened conv
  features, before the dense layers; unseen sites get the zero vector (with a ``UserWarning``).
* :class:`DomainAdversarialCNNClassifier` — ARMED without random effects
  (``random_effects=False``): the FE CNN and its multi-scale adversary.
* :class:`MixedEffectsCNNClassifier` — ARMED without the adversary (``adversary=False``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.utils.validation import check_is_fitted

from perslib._core.validation import check_groups, sorted_unique
from perslib.armed._baselines import _variant
from perslib.armed._image import ARMEDImageClassifier, check_sites
from perslib.armed._unseen import one_hot
from perslib.cnn import CNNClassifier, _proba, check_images

__all__ = ["ClusterInputCNNClassifier", "DomainAdversarialCNNClassifier", "MixedEffectsCNNClassifier"]

DomainAdversarialCNNClassifier = _variant(
    ARMEDImageClassifier,
    "DomainAdversarialCNNClassifier",
    "Domain-adversarial CNN: :class:`ARMEDImageClassifier` with ``random_effects=False`` by default.",
    random_effects=False,
)
DomainAdversarialCNNClassifier.__module__ = __name__
MixedEffectsCNNClassifier = _variant(
    ARMEDImageClassifier,
    "MixedEffectsCNNClassifier",
    "Mixed-effects CNN without adversary: :class:`ARMEDImageClassifier` with ``adversary=False`` by default.",
    adversary=False,
)
MixedEffectsCNNClassifier.__module__ = __name__


class ClusterInputCNNClassifier(CNNClassifier):
    """CNN classifier with the one-hot site joined to its flattened conv features; parameters as
    :class:`perslib.cnn.CNNClassifier`.

    ``fit(X, y, groups=g)``; ``predict(X, groups=g)``. Sites not seen in training (or
    ``groups=None``) get the zero site vector, an input the network never saw in training,
    with a ``UserWarning``.

    Attributes
    ----------
    groups_ : ndarray of shape (K,)
        Training sites, sorted.
    classes_, model_, history_, n_epochs_, epoch_time_, n_features_in_, image_shape_,
    channel_mean_, channel_scale_ : as in :class:`perslib.cnn.CNNClassifier`
    """

    _requires_groups = True

    @property
    def _n_extra(self) -> int:  # the one-hot site enters the dense head
        return len(self.groups_)

    def _site_vectors(self, groups, n: int) -> np.ndarray:
        g = None if groups is None else check_groups(groups, n, fitting=False)
        codes = np.full(n, -1) if g is None else pd.Index(self.groups_).get_indexer(g)
        if (codes < 0).any():
            warnings.warn(
                f"{type(self).__name__}: {int((codes < 0).sum())} sample(s) without a site seen in training; "
                "their site input is the zero vector",
                UserWarning,
                stacklevel=3,
            )
        return one_hot(codes, len(self.groups_))

    def fit(self, X, y, *, groups=None):
        """Fit on images ``X`` (n, C, H, W), labels ``y`` (n,) and site labels ``groups`` (n,)."""
        self._validate_params()
        X = check_images(X)
        g = check_sites(groups, len(X), type(self).__name__)
        self.groups_ = sorted_unique(g)
        extra = one_hot(pd.Index(self.groups_).get_indexer(g), len(self.groups_))
        return self._fit_images(X, y, groups=g, extra=extra)

    def _site_output(self, X, groups) -> torch.Tensor:
        check_is_fitted(self, "model_")
        return self._raw_output(X, extra=self._site_vectors(groups, len(X)))

    def decision_function(self, X, *, groups=None) -> np.ndarray:
        """Logits: shape (n,) for binary problems, (n, n_classes) otherwise."""
        out = self._site_output(X, groups).numpy().astype(np.float64)
        return out[:, 0] if len(self.classes_) == 2 else out

    def predict_proba(self, X, *, groups=None) -> np.ndarray:
        """Class probabilities of shape (n, n_classes)."""
        return _proba(self._site_output(X, groups), len(self.classes_))

    def predict(self, X, *, groups=None) -> np.ndarray:
        """Most probable class per image, shape (n,)."""
        proba = self.predict_proba(X, groups=groups)  # first: NotFittedError before fit
        return self.classes_[np.argmax(proba, axis=1)]
