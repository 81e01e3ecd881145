"""ARMED for images: :class:`ARMEDImageClassifier`, the ARMED classifier on a convolutional backbone.

The same estimator as :class:`perslib.armed.ARMEDClassifier` — adversary, random effects,
z-predictor, clusters not seen in training, interpretation — with the fixed-effects network
a CNN (:class:`perslib.cnn.ConvNet`), the adversary multi-scale
(:class:`perslib.armed.MultiScaleAdversary`) and the z-predictor a small CNN site classifier
(:class:`perslib.cnn.CNNClassifier`). Design and measurements: ``docs/design/armed.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import numpy as np
import pandas as pd
import torch

from perslib._core.validation import Instance, Interval, Options, check_groups
from perslib.armed._estimators import ARMEDClassifier
from perslib.armed._network import ARMEDNet
from perslib.cnn import _IMAGE_CONSTRAINTS, CNNClassifier, ImageInputMixin, batched

__all__ = ["ARMEDImageClassifier"]

_WIDTHS = Instance(tuple, list, of=Interval(Integral, 1, None), description="a sequence of positive ints")


def check_sites(groups, n: int, name: str) -> np.ndarray:
    """Cluster labels for an image model that learns from differences between sites: at least two."""
    g = check_groups(groups, n)
    n_sites = len(pd.unique(pd.Series(g, dtype=object)))
    if n_sites < 2:
        raise ValueError(
            f"groups must hold at least 2 sites (clusters) for {name}, got {n_sites}: "
            "it learns what differs between sites"
        )
    return g


class ARMEDImageClassifier(ImageInputMixin, ARMEDClassifier):
    """ARMED binary classifier on images: CNN fixed effects, multi-scale adversary, random effects.

    ``fit(X, y, groups=g)`` with images ``X`` of shape (n, C, H, W) (arrays or tensors),
    binary labels ``y`` (n,) and site labels ``groups`` (n,); ``predict``,
    ``predict_proba``, ``decision_function`` and ``design_matrix`` take the same ``groups``
    and ``z`` arguments as :class:`ARMEDClassifier`. The logit is
    ``f(x) + h_F(x)'u_slope(z) + u_int(z)``: the FE CNN's logit, random slopes on its last
    dense layer ``h_F`` and a random intercept.

    Parameters
    ----------
    channels : sequence of int, default=(16, 32)
        Conv blocks of the FE network (conv, batch norm, PReLU, 2 x 2 max pooling); each
        image side must be at least ``2 ** len(channels)`` pixels.
    hidden : sequence of int, default=(64,)
        Dense layers after the conv blocks; the last one, ``h_F``, carries the random slopes.
    kernel_size : int, default=3
    activation : str, default="relu"
        Activation of the dense layers.
    slopes : {"nonlinear", "none"}, default="nonlinear"
        Random slopes on ``h_F``, or none.
    random_intercept, random_effects, adversary : bool, default=True
        ``random_effects=False``: the domain-adversarial CNN; ``adversary=False``: the
        mixed-effects CNN without adversary.
    adversary_channels : sequence of int, optional
        Conv widths of the multi-scale adversary, one per FE block (default: half the FE's,
        at least 4).
    adversary_hidden : sequence of int, default=(32,)
        Dense layers of the adversary (after it joins its conv features and ``h_F``).
    lambda_adv : float, default=0.1
        Weight of the adversarial term (the paper's value for its CNN; 0.3 for the dense
        network).
    adversary_mode, adversary_guard, adversary_cap, lambda_mixed, lambda_fixed,
    intercept_prior, slope_prior, learn_prior_scale, kl_weight, unseen, unseen_pooling
        As in :class:`ARMEDClassifier`.
    zpredictor_channels : sequence of int, default=(8, 16)
        Conv blocks of the z-predictor, a :class:`perslib.cnn.CNNClassifier` over the sites.
    zpredictor_hidden : sequence of int, default=(32,)
    epochs : int, default=40
    batch_size, lr, weight_decay, re_lr_scale, val_fraction, patience : as in ARMEDClassifier
    standardize : bool, default=True
        Standardize each image channel by its training mean and standard deviation.
    device : str, default="auto"
    random_state : int, optional
    progress : bool, optional

    Attributes
    ----------
    classes_, groups_, n_clusters_, history_, n_epochs_, epoch_time_, random_effects_,
    random_effect_sd_ : as in :class:`ARMEDClassifier`
    net_ : ARMEDNet
        With the convolutional backbone (``net_.fe`` a :class:`perslib.cnn.ConvNet`).
    zpredictor_ : CNNClassifier or None
    n_features_in_ : int
        Number of image channels.
    image_shape_ : tuple of int
        ``(C, H, W)`` of the training images.
    channel_mean_, channel_scale_ : ndarray of shape (C,)
    """

    refit = False  # the regressor's closed-form refit: not a parameter of a classifier
    _parameter_constraints = {
        **{k: v for k, v in ARMEDClassifier._parameter_constraints.items() if k != "refit"},
        **_IMAGE_CONSTRAINTS,
        "slopes": [Options("nonlinear", "none")],
        "adversary_channels": [Options(None), _WIDTHS],
        "zpredictor_channels": _IMAGE_CONSTRAINTS["channels"],
    }

    def __init__(
        self,
        channels: Sequence[int] = (16, 32),
        *,
        hidden: Sequence[int] = (64,),
        kernel_size: int = 3,
        activation: str = "relu",
        slopes: str = "nonlinear",
        random_intercept: bool = True,
        random_effects: bool = True,
        adversary: bool = True,
        adversary_channels: Sequence[int] | None = None,
        adversary_hidden: Sequence[int] = (32,),
        adversary_mode: str = "alternating",
        adversary_guard: str = "clamp",
        adversary_cap: float = 1.0,
        lambda_mixed: float = 1.0,
        lambda_fixed: float = 0.5,
        lambda_adv: float = 0.1,
        intercept_prior: float = 0.5,
        slope_prior: float = 0.1,
        learn_prior_scale: bool = True,
        kl_weight: float | str = "auto",
        unseen: str = "zpredictor",
        unseen_pooling: str = "none",
        zpredictor_channels: Sequence[int] = (8, 16),
        zpredictor_hidden: Sequence[int] = (32,),
        epochs: int = 40,
        batch_size: int = 64,
        lr: float = 1e-3,
        weight_decay: float = 1e-2,
        re_lr_scale: float = 10.0,
        val_fraction: float = 0.1,
        patience: int = 10,
        standardize: bool = True,
        device: str = "auto",
        random_state: int | None = None,
        progress: bool | None = None,
    ) -> None:
        self.channels = channels
        self.hidden = hidden
        self.kernel_size = kernel_size
        self.activation = activation
        self.slopes = slopes
        self.random_intercept = random_intercept
        self.random_effects = random_effects
        self.adversary = adversary
        self.adversary_channels = adversary_channels
        self.adversary_hidden = adversary_hidden
        self.adversary_mode = adversary_mode
        self.adversary_guard = adversary_guard
        self.adversary_cap = adversary_cap
        self.lambda_mixed = lambda_mixed
        self.lambda_fixed = lambda_fixed
        self.lambda_adv = lambda_adv
        self.intercept_prior = intercept_prior
        self.slope_prior = slope_prior
        self.learn_prior_scale = learn_prior_scale
        self.kl_weight = kl_weight
        self.unseen = unseen
        self.unseen_pooling = unseen_pooling
        self.zpredictor_channels = zpredictor_channels
        self.zpredictor_hidden = zpredictor_hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.re_lr_scale = re_lr_scale
        self.val_fraction = val_fraction
        self.patience = patience
        self.standardize = standardize
        self.device = device
        self.random_state = random_state
        self.progress = progress

    # ------------------------------------------------------------------ hooks of the ARMED estimator
    def _validate_params(self) -> None:
        super()._validate_params()
        name = type(self).__name__
        if not len(self.channels):
            raise ValueError(f"The 'channels' parameter of {name} must be non-empty; got {self.channels!r}.")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"The 'kernel_size' parameter of {name} must be odd; got {self.kernel_size!r}.")
        if self.adversary_channels is not None and len(self.adversary_channels) != len(self.channels):
            raise ValueError(
                f"The 'adversary_channels' parameter of {name} needs one width per conv block "
                f"({len(self.channels)}); got {self.adversary_channels!r}."
            )

    def _fit_scaler(self, X: np.ndarray):
        self._fit_channel_scale(X)
        return None

    def _build_network(self, use_adv: bool) -> ARMEDNet:
        c, h, w = self.image_shape_
        backbone = {
            "image_size": (h, w),
            "channels": self.channels,
            "kernel_size": self.kernel_size,
            "adversary_channels": self.adversary_channels,
        }
        return ARMEDNet(
            c,
            self.n_clusters_,
            hidden=self.hidden,
            activation=self.activation,
            slopes=self.slopes if self.random_effects else "none",
            random_intercept=bool(self.random_intercept and self.random_effects),
            adversary_hidden=self.adversary_hidden if use_adv else None,
            intercept_prior=self.intercept_prior,
            slope_prior=self.slope_prior,
            learn_prior_scale=self.learn_prior_scale,
            backbone=backbone,
        )

    def _make_zpredictor(self, seed: int) -> CNNClassifier:
        return CNNClassifier(
            self.zpredictor_channels,
            hidden=self.zpredictor_hidden,
            kernel_size=self.kernel_size,
            epochs=self.epochs,
            batch_size=self.batch_size_,
            lr=self.lr_,
            val_fraction=self.val_fraction,
            patience=self.patience,
            standardize=self.standardize,
            device=self.device,
            random_state=seed,
            progress=self.progress,
        )

    # ------------------------------------------------------------------ fit / predict
    def fit(self, X, y, *, groups=None):
        """Fit on images ``X`` (n, C, H, W), binary labels ``y`` (n,) and site labels ``groups`` (n,)."""
        X, encoded = self._validate_fit(X, y, labels="binary")
        g = check_sites(groups, len(X), type(self).__name__)
        return self._fit(X, encoded.astype(np.float32), g, stratify_extra=encoded)

    def _output(self, X, groups, z, which: str = "mixed") -> np.ndarray:
        Z = self.design_matrix(X, groups, z)
        Xa = self._check_X(X, reset=False)
        self.net_.eval()
        xt = self._x_tensor(Xa)
        zt = torch.as_tensor(Z, dtype=torch.float32, device=self.device_)
        with torch.no_grad():
            rows = torch.arange(len(xt), device=self.device_)
            out = batched(lambda i: self.net_(xt[i], zt[i] if self.has_random_effects_ else None)[which], rows)
        return out.cpu().numpy().astype(np.float64)
