"""The ARMED autoencoder (scikit-learn style): :class:`ARMEDAutoencoder`.

``fit(X, y=None, groups=batch)``; ``transform(X)`` gives the batch-invariant fixed-effects
latent; ``reconstruct(X, groups=...)`` decodes it with or without the batch's random
effects; ``predict_proba(X, groups=...)`` when labels were given. Dense for tables (2-D
``X``), convolutional for images (4-D ``X``). The network:
:class:`perslib.armed._autoencoder_net.ARMEDAutoencoderNet`; design and measurements:
``docs/design/armed.md``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
from sklearn.base import TransformerMixin
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from perslib._core.estimator import PerslibEstimator
from perslib._core.runtime import resolve_device, seeded_torch
from perslib._core.training import split_validation, train_loop
from perslib._core.validation import (
    Instance,
    Interval,
    Options,
    check_binary_labels,
    check_consistent_length,
    check_groups,
    sorted_unique,
)
from perslib.armed._autoencoder_net import ARMEDAutoencoderNet, AutoencoderObjective
from perslib.armed._estimators import _ARMEDBase
from perslib.armed._unseen import UNSEEN_POOLING
from perslib.cnn import _IMAGE_CONSTRAINTS, CNNClassifier, ImageInputMixin, batched
from perslib.mlp import _NETWORK_CONSTRAINTS, MLPClassifier

__all__ = ["ARMEDAutoencoder"]

_WEIGHT = [Interval(Real, 0, None)]
_POSITIVE = [Interval(Real, 0, None, closed="neither")]
_WIDTHS = Instance(tuple, list, of=Interval(Integral, 1, None), description="a sequence of positive ints")


class ARMEDAutoencoder(TransformerMixin, PerslibEstimator):
    """ARMED autoencoder: a batch-free latent, batch effects as random effects, an optional classifier.

    One network trained end to end on
    ``λ_r·MSE(x, D(e, z)) + λ_c·(λ_M·CE(y, ŷ_M) + λ_F·CE(y, ŷ_F)) + KL/n + λ_g·G``:
    the encoder ``e = E(x)`` is kept blind to the batch by an adversary (``G``, see
    ``adversary_guard``); the decoder ``D(e, z)`` gets the batch back through
    cluster-specific Bayesian **scale and bias** in place of every batch norm's affine
    parameters (``z`` the batch's one-hot vector; ``z = 0``: the batch-free decoder); the
    classifier ``ŷ_M = σ(C(e) + u(z))`` adds a random intercept per batch to the FE
    classifier ``ŷ_F = σ(C(e))``.

    ``X`` of shape (n, p) uses dense layers; images of shape (n, C, H, W) a convolutional
    encoder (the conv blocks of :class:`perslib.cnn.ConvNet`) and an upsampling decoder
    (``adversary_reads="all"`` adds the multi-scale adversary).

    Parameters
    ----------
    latent_dim : int, default=16
        Width of the fixed-effects latent.
    hidden : sequence of int, default=(128, 64)
        Dense encoder's hidden widths (the decoder mirrors them). Unused for images.
    channels : sequence of int, default=(16, 32)
        Conv blocks of the image encoder (each halves the image). Unused for tables.
    kernel_size : int, default=3
    activation : str, default="relu"
    classifier_hidden : sequence of int, default=(32,)
        Hidden widths of the classifier head on the latent (used when ``y`` is given).
    random_effects : bool, default=True
        False: no cluster scale/bias and no random intercept (the conventional or the
        domain-adversarial autoencoder).
    adversary : bool, default=True
        False: no adversary (the conventional autoencoder, or ARMED without adversary).
    adversary_hidden : sequence of int, default=(64,)
    adversary_channels : sequence of int, optional
        Conv widths of the multi-scale adversary (images; default half of ``channels``).
    adversary_reads : {"latent", "all"}, default="latent"
        The adversary reads the latent only (an MLP), or every encoder activation and the
        latent (images: :class:`perslib.armed.MultiScaleAdversary`, as in ARMED-CNN).
        ``"all"`` forces the first layers to be batch-blind although the input carries the
        batch, which costs reconstruction and class information; the latent is what must be
        batch-free (measured in ``docs/design/armed.md``).
    adversary_mode : {"alternating", "reversal"}, default="alternating"
        One adversary step then one main step per minibatch, or a single pass through a
        gradient-reversal layer.
    adversary_guard : {"confusion", "clamp", "none"}, default="confusion"
        The encoder's adversarial term (:func:`perslib.armed.generator_loss`).
        ``"confusion"`` pulls the adversary's prediction towards the batch proportions —
        at its optimum the latent carries no batch information. ``"clamp"`` (per-sample
        ``-min(CE, chance)``) and ``"none"`` (``-CE``) reward the encoder for making the
        adversary *wrong*, which it can do by mapping each batch to another batch's
        region: batches stay apart (measured in ``docs/design/armed.md``: the batch
        Calinski–Harabasz score of the latent rises). ``"confusion"`` needs
        ``adversary_mode="alternating"``.
    adversary_cap : float, default=1.0
        Chance-level multiple at which ``"clamp"`` stops pushing.
    lambda_recon : float, default=1.0
        Weight of the reconstruction MSE (standardized units).
    lambda_class : float, default=0.1
        Weight of the classifier's loss (the paper's 0.01 on BCE, at its image scale).
    lambda_mixed, lambda_fixed : float, default=1.0, 0.5
        Within the classifier's loss: weights of the mixed and the FE cross-entropy.
    lambda_adv : float, default=0.3
        Weight of the adversarial term (the paper's dense-network value; with the
        confusion guard 0.3 and 1.0 removed batch about equally, 1.0 lost more class
        information).
    re_prior : float, default=0.25
        Initial prior s.d. of the random scale and bias (the paper's value; learned).
    re_post_init : float, default=0.1
        S.d. of the initial posterior means of the random scale and bias.
    kl_weight : float or "auto", default="auto"
        Weight of the summed KL; ``"auto"`` = 1 / (training samples x numbers per sample):
        the ELBO's ``1/n`` rescaled like the reconstruction term, which is a *mean* over
        the ``p`` (or ``C·H·W``) numbers of a sample (a Gaussian likelihood of unit
        variance in standardized units, divided by ``p``). With ``1/n`` the KL outweighs
        the reconstruction's gradient ``p``-fold and the random effects shrink to zero.
    unseen : {"zpredictor", "fixed"}, default="zpredictor"
        Batches not seen in training: the z-predictor's soft memberships, or z = 0.
    unseen_pooling : {"none", "geometric", "arithmetic"}, default="none"
        As in :class:`perslib.armed.ARMEDClassifier`.
    zpredictor_hidden : sequence of int, default=(32,)
        The z-predictor (an MLP for tables, a CNN with ``zpredictor_channels`` for images).
    zpredictor_channels : sequence of int, default=(8, 16)
    epochs : int, default=60
    batch_size : int, default=64
    lr : float, default=1e-3
    weight_decay : float, default=0.0
    re_lr_scale : float, default=10.0
        Learning-rate multiplier of the random effects (each batch's row learns from its
        own samples only).
    val_fraction : float, default=0.1
        Share held out (stratified by batch, and label) for early stopping on the
        reconstruction (+ classifier) loss.
    patience : int, default=10
    standardize : bool, default=True
        Standardize each feature (tables) or channel (images) by its training mean and sd.
    device : str, default="auto"
    random_state : int, optional
    progress : bool, optional

    Attributes
    ----------
    groups_ : ndarray of shape (K,)
        Training batches, sorted.
    n_clusters_ : int
    classes_ : ndarray of shape (n_classes,)
        Only when fitted with ``y``.
    net_ : ARMEDAutoencoderNet
    zpredictor_ : MLPClassifier, CNNClassifier or None
    history_ : pandas.DataFrame
        Per epoch: the loss terms, the adversary's loss, ``val_loss``.
    n_epochs_ : int
    epoch_time_ : float
    has_random_effects_ : bool
    image_shape_ : tuple of int or None
        ``(C, H, W)`` for images, None for tables.
    n_features_in_ : int
        Features (tables) or channels (images).
    """

    _requires_groups = True
    _parameter_constraints = {
        "latent_dim": [Interval(Integral, 1, None)],
        "hidden": _NETWORK_CONSTRAINTS["hidden"],
        **_IMAGE_CONSTRAINTS,
        "activation": _NETWORK_CONSTRAINTS["activation"],
        "classifier_hidden": _NETWORK_CONSTRAINTS["hidden"],
        "random_effects": [Options(True, False)],
        "adversary": [Options(True, False)],
        "adversary_hidden": [_WIDTHS],
        "adversary_channels": [Options(None), _WIDTHS],
        "adversary_reads": [Options("latent", "all")],
        "adversary_mode": [Options("alternating", "reversal")],
        "adversary_guard": [Options("confusion", "clamp", "none")],
        "adversary_cap": _POSITIVE,
        "lambda_recon": _WEIGHT,
        "lambda_class": _WEIGHT,
        "lambda_mixed": _WEIGHT,
        "lambda_fixed": _WEIGHT,
        "lambda_adv": _WEIGHT,
        "re_prior": _POSITIVE,
        "re_post_init": _WEIGHT,
        "kl_weight": [Options("auto"), Interval(Real, 0, None)],
        "unseen": [Options("zpredictor", "fixed")],
        "unseen_pooling": [Options(*UNSEEN_POOLING)],
        "zpredictor_hidden": _NETWORK_CONSTRAINTS["hidden"],
        "zpredictor_channels": _IMAGE_CONSTRAINTS["channels"],
        "epochs": _NETWORK_CONSTRAINTS["epochs"],
        "batch_size": _NETWORK_CONSTRAINTS["batch_size"],
        "lr": _NETWORK_CONSTRAINTS["lr"],
        "weight_decay": _WEIGHT,
        "re_lr_scale": _POSITIVE,
        "val_fraction": _NETWORK_CONSTRAINTS["val_fraction"],
        "patience": _NETWORK_CONSTRAINTS["patience"],
        "standardize": [Options(True, False)],
        "device": _NETWORK_CONSTRAINTS["device"],
        "random_state": _NETWORK_CONSTRAINTS["random_state"],
        "progress": _NETWORK_CONSTRAINTS["progress"],
    }

    def __init__(
        self,
        latent_dim: int = 16,
        *,
        hidden: Sequence[int] = (128, 64),
        channels: Sequence[int] = (16, 32),
        kernel_size: int = 3,
        activation: str = "relu",
        classifier_hidden: Sequence[int] = (32,),
        random_effects: bool = True,
        adversary: bool = True,
        adversary_hidden: Sequence[int] = (64,),
        adversary_channels: Sequence[int] | None = None,
        adversary_reads: str = "latent",
        adversary_mode: str = "alternating",
        adversary_guard: str = "confusion",
        adversary_cap: float = 1.0,
        lambda_recon: float = 1.0,
        lambda_class: float = 0.1,
        lambda_mixed: float = 1.0,
        lambda_fixed: float = 0.5,
        lambda_adv: float = 0.3,
        re_prior: float = 0.25,
        re_post_init: float = 0.1,
        kl_weight: float | str = "auto",
        unseen: str = "zpredictor",
        unseen_pooling: str = "none",
        zpredictor_hidden: Sequence[int] = (32,),
        zpredictor_channels: Sequence[int] = (8, 16),
        epochs: int = 60,
        batch_size: int = 64,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        re_lr_scale: float = 10.0,
        val_fraction: float = 0.1,
        patience: int = 10,
        standardize: bool = True,
        device: str = "auto",
        random_state: int | None = None,
        progress: bool | None = None,
    ) -> None:
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.channels = channels
        self.kernel_size = kernel_size
        self.activation = activation
        self.classifier_hidden = classifier_hidden
        self.random_effects = random_effects
        self.adversary = adversary
        self.adversary_hidden = adversary_hidden
        self.adversary_channels = adversary_channels
        self.adversary_reads = adversary_reads
        self.adversary_mode = adversary_mode
        self.adversary_guard = adversary_guard
        self.adversary_cap = adversary_cap
        self.lambda_recon = lambda_recon
        self.lambda_class = lambda_class
        self.lambda_mixed = lambda_mixed
        self.lambda_fixed = lambda_fixed
        self.lambda_adv = lambda_adv
        self.re_prior = re_prior
        self.re_post_init = re_post_init
        self.kl_weight = kl_weight
        self.unseen = unseen
        self.unseen_pooling = unseen_pooling
        self.zpredictor_hidden = zpredictor_hidden
        self.zpredictor_channels = zpredictor_channels
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

    # ------------------------------------------------------------------ inputs
    def _validate_params(self) -> None:
        super()._validate_params()
        name = type(self).__name__
        if self.adversary_mode == "reversal" and self.adversary_guard == "confusion":
            raise ValueError(f"{name}: adversary_guard='confusion' needs adversary_mode='alternating'")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"The 'kernel_size' parameter of {name} must be odd; got {self.kernel_size!r}.")
        if self.adversary_channels is not None and len(self.adversary_channels) != len(self.channels):
            raise ValueError(
                f"The 'adversary_channels' parameter of {name} needs one width per conv block "
                f"({len(self.channels)}); got {self.adversary_channels!r}."
            )

    def _check_X(self, X, *, reset: bool) -> np.ndarray:
        """Tables (n, p) or images (n, C, H, W): the kind is fixed by the training ``X``."""
        if not reset:
            check_is_fitted(self, "net_")
            images = self.image_shape_ is not None
        else:
            images = (X.ndim if torch.is_tensor(X) else np.asarray(X, dtype=object).ndim) == 4
        if images:
            return ImageInputMixin._check_X(self, X, reset=reset)
        if reset:
            self.image_shape_ = None
        return PerslibEstimator._check_X(self, X, reset=reset)

    def _x_tensor(self, X: np.ndarray) -> torch.Tensor:
        if self.image_shape_ is not None:
            return ImageInputMixin._x_tensor(self, X)
        if self.scaler_ is not None:
            X = self.scaler_.transform(X)
        return torch.as_tensor(X, dtype=torch.float32, device=self.device_)

    def _from_standard(self, out: np.ndarray) -> np.ndarray:
        """Reconstructions back in the units of ``X``."""
        if self.image_shape_ is not None:
            return out * self.channel_scale_[None, :, None, None] + self.channel_mean_[None, :, None, None]
        return self.scaler_.inverse_transform(out) if self.scaler_ is not None else out

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, *, groups=None):
        """Fit on ``X`` (n, p) or images (n, C, H, W), batch labels ``groups`` (n,) and optional labels ``y`` (n,).

        Returns
        -------
        self
        """
        self._validate_params()
        X = self._check_X(X, reset=True)
        g = check_groups(groups, len(X))
        if len(pd.unique(pd.Series(g, dtype=object))) < 2:
            raise ValueError(
                f"groups must hold at least 2 batches (clusters) for {type(self).__name__}: "
                "it learns what differs between them"
            )
        encoded = None
        if y is not None:
            self.classes_, encoded = check_binary_labels(y, binary=False)
            check_consistent_length(X=X, y=encoded, groups=g)
        elif hasattr(self, "classes_"):
            del self.classes_
        rng, torch_seed = self._random_streams()
        self.device_ = resolve_device(self.device)
        self.groups_ = sorted_unique(g)
        self._group_index = pd.Index(self.groups_)
        codes = self._group_index.get_indexer(g)
        self.n_clusters_ = len(self.groups_)
        if self.image_shape_ is not None:
            ImageInputMixin._fit_channel_scale(self, X)
            self.scaler_ = None
        else:
            self.scaler_ = StandardScaler().fit(X) if self.standardize else None
        strat = codes.astype(str) if encoded is None else np.char.add(codes.astype(str), "|" + encoded.astype(str))
        train_idx, val_idx = split_validation(len(X), self.val_fraction, rng, stratify=strat)
        self.has_random_effects_ = bool(self.random_effects)
        n_out = 0 if encoded is None else (1 if len(self.classes_) == 2 else len(self.classes_))
        with seeded_torch(torch_seed, self.device_):
            self.net_ = self._build_network(n_out).to(self.device_)
            Xt = self._x_tensor(X)
            yt = torch.as_tensor(np.zeros(len(X), dtype=np.int64) if encoded is None else encoded, device=self.device_)
            if n_out == 1:
                yt = yt.to(torch.float32)
            zt = torch.as_tensor(codes, dtype=torch.int64, device=self.device_)
            objective = self._objective(codes[train_idx], len(train_idx))
            self._train(Xt, zt, yt, train_idx, val_idx, objective, torch_seed)
        self.zpredictor_ = None
        if self.has_random_effects_ and self.unseen == "zpredictor":
            self.zpredictor_ = self._make_zpredictor(int(rng.integers(2**31 - 1))).fit(X, codes)
        self._rng_seed = int(rng.integers(2**31 - 1))
        return self

    def _build_network(self, n_out: int) -> ARMEDAutoencoderNet:
        images = self.image_shape_ is not None
        return ARMEDAutoencoderNet(
            self.n_features_in_,
            self.n_clusters_,
            latent_dim=self.latent_dim,
            hidden=self.hidden,
            image_size=self.image_shape_[1:] if images else None,
            channels=self.channels,
            kernel_size=self.kernel_size,
            activation=self.activation,
            n_outputs=n_out,
            classifier_hidden=self.classifier_hidden,
            random_effects=self.random_effects,
            adversary_hidden=self.adversary_hidden if self.adversary else None,
            adversary_channels=self.adversary_channels,
            re_prior=self.re_prior,
            re_post_init=self.re_post_init,
            adversary_reads=self.adversary_reads,
        )

    def _objective(self, train_codes: np.ndarray, n_train: int) -> AutoencoderObjective:
        counts = np.bincount(train_codes, minlength=self.n_clusters_) + 1e-3
        log_prior = torch.as_tensor(np.log(counts / counts.sum()), dtype=torch.float32, device=self.device_)
        return AutoencoderObjective(
            log_prior=log_prior,
            chance=float(-(log_prior.exp() * log_prior).sum()),
            lambda_mixed=float(self.lambda_mixed),
            lambda_fixed=float(self.lambda_fixed),
            lambda_adv=float(self.lambda_adv),
            kl_weight=1.0 / (n_train * self._n_values()) if self.kl_weight == "auto" else float(self.kl_weight),
            guard=self.adversary_guard,
            cap=float(self.adversary_cap),
            mode=self.adversary_mode,
            use_random_effects=self.has_random_effects_,
            use_adversary=bool(self.adversary),
            lambda_recon=float(self.lambda_recon),
            lambda_class=float(self.lambda_class),
        )

    def _n_values(self) -> int:
        """Numbers per sample: features, or channels x pixels."""
        return int(np.prod(self.image_shape_)) if self.image_shape_ is not None else int(self.n_features_in_)

    def _train(self, Xt, zt, yt, train_idx, val_idx, objective, torch_seed) -> None:
        net = self.net_
        opt_main, opt_adv = net.configure_optimizers(self.lr, self.weight_decay, self.re_lr_scale)

        def step(batch):
            return net.training_step(batch, objective, opt_main, opt_adv)

        evaluate = None
        if len(val_idx):

            def evaluate():
                rows = torch.as_tensor(val_idx, device=self.device_)
                return net.task_loss(Xt[rows], zt[rows], yt[rows], objective)[0].item()

        t0 = time.perf_counter()
        self.history_ = train_loop(
            step,
            (Xt[train_idx], zt[train_idx], yt[train_idx]),
            self._train_config(),
            module=net,
            evaluate=evaluate,
            generator=torch.Generator().manual_seed(torch_seed),
        )
        self.n_epochs_ = len(self.history_)
        self.epoch_time_ = (time.perf_counter() - t0) / max(self.n_epochs_, 1)

    def _make_zpredictor(self, seed: int):
        common = {
            "hidden": self.zpredictor_hidden,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "val_fraction": self.val_fraction,
            "patience": self.patience,
            "standardize": self.standardize,
            "device": self.device,
            "random_state": seed,
            "progress": self.progress,
        }
        if self.image_shape_ is not None:
            return CNNClassifier(self.zpredictor_channels, kernel_size=self.kernel_size, **common)
        return MLPClassifier(common.pop("hidden"), **common)

    # ------------------------------------------------------------------ outputs
    design_matrix = _ARMEDBase.design_matrix  # the same rule as every ARMED estimator

    def transform(self, X) -> np.ndarray:
        """The fixed-effects latent: shape (n, latent_dim). It does not depend on any batch label."""
        Xa = self._check_X(X, reset=False)
        self.net_.eval()
        with torch.no_grad():
            e = batched(lambda t: self.net_.encode(t)[0], self._x_tensor(Xa))
        return e.cpu().numpy().astype(np.float64)

    def reconstruct(self, X, groups=None, z=None) -> np.ndarray:
        """Reconstructions of ``X`` in its own units and shape.

        Parameters
        ----------
        X : array-like of shape (n, p) or (n, C, H, W)
        groups : array-like of shape (n,), optional
            None: the batch-free reconstruction (fixed effects only, ``z = 0``). Given:
            each sample's batch's random effects; batches not seen in training follow
            ``unseen`` (z-predictor or zero), with a ``UserWarning``.
        z : None, str or array of shape (n, K)
            Overrides ``groups``' rule: as in :meth:`design_matrix` (``"zero"``,
            ``"zpredictor"``, an explicit matrix — a one-hot row decodes "as that batch").

        Returns
        -------
        ndarray of the shape of ``X``
        """
        if z is None:
            z = "zero" if groups is None else "auto"
        Z = self.design_matrix(X, groups, z)
        return self.decode(self.transform(X), Z)

    def decode(self, latent, Z=None) -> np.ndarray:
        """Decode latents (n, latent_dim) with batch vectors ``Z`` (n, K) (None: batch-free); units of ``X``."""
        check_is_fitted(self, "net_")
        e = torch.as_tensor(np.asarray(latent, dtype=np.float32), device=self.device_)
        if e.ndim != 2 or e.shape[1] != self.latent_dim:
            raise ValueError(f"latent must have shape (n, {self.latent_dim}), got {tuple(e.shape)}")
        zt = None
        if Z is not None and self.has_random_effects_:
            Zarr = np.asarray(Z, dtype=np.float32)
            if Zarr.shape != (len(e), self.n_clusters_):
                raise ValueError(f"Z must have shape ({len(e)}, {self.n_clusters_}), got {Zarr.shape}")
            zt = torch.as_tensor(Zarr, device=self.device_)
        self.net_.eval()
        with torch.no_grad():
            rows = torch.arange(len(e), device=self.device_)
            out = batched(lambda i: self.net_.decode(e[i], None if zt is None else zt[i]), rows)
        return self._from_standard(out.cpu().numpy().astype(np.float64))

    def decision_function(self, X, *, groups=None, z="auto") -> np.ndarray:
        """Mixed logits: (n,) for two classes, (n, n_classes) otherwise; ``z`` as in :meth:`design_matrix`."""
        check_is_fitted(self, "net_")
        if self.net_.classifier is None:
            raise AttributeError(f"{type(self).__name__} was fitted without y: it has no classifier")
        Z = self.design_matrix(X, groups, z)
        latent = torch.as_tensor(self.transform(X), dtype=torch.float32, device=self.device_)
        zt = torch.as_tensor(Z, dtype=torch.float32, device=self.device_) if self.has_random_effects_ else None
        with torch.no_grad():
            out = self.net_.classify(latent, zt)[1].cpu().numpy().astype(np.float64)
        return out[:, 0] if out.shape[1] == 1 else out

    def predict_proba(self, X, *, groups=None, z="auto") -> np.ndarray:
        """Class probabilities (n, n_classes) of the mixed classifier; ``z`` as in :meth:`design_matrix`."""
        out = self.decision_function(X, groups=groups, z=z)
        if out.ndim == 1:
            p1 = 1.0 / (1.0 + np.exp(-out))
            return np.column_stack([1.0 - p1, p1])
        e = np.exp(out - out.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X, *, groups=None, z="auto") -> np.ndarray:
        """Most probable class per sample, shape (n,)."""
        proba = self.predict_proba(X, groups=groups, z=z)  # first: NotFittedError before fit
        return self.classes_[np.argmax(proba, axis=1)]

    def cluster_scale_bias(self) -> pd.DataFrame:
        """Posterior-mean random scale and bias of the decoder's first normalisation layer, one row per batch."""
        check_is_fitted(self, "net_")
        from perslib.armed._autoencoder_net import ClusterScaleBias

        layer = next(m for m in self.net_.decoder.modules() if isinstance(m, ClusterScaleBias))
        if layer.re is None:
            return pd.DataFrame(index=pd.Index(self.groups_, name="group"))
        loc = layer.re.loc.detach().cpu().numpy().astype(np.float64)
        n = layer.n_units
        cols = [f"scale{j}" for j in range(n)] + [f"bias{j}" for j in range(n)]
        return pd.DataFrame(loc, index=pd.Index(self.groups_, name="group"), columns=cols)
