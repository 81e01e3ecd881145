"""ARMED estimators (scikit-learn style): ``fit(X, y, groups=g)``, ``predict(X, groups=g)``.

:class:`ARMEDClassifier` (binary) and :class:`ARMEDRegressor` wrap
:class:`perslib.armed.ARMEDNet`, which owns the objective and the optimizers; inputs (and
the regression target) are standardized inside; cluster labels may be any hashable
values. Clusters not seen in training get soft memberships from a z-predictor. The
design, the defects of the official code that are avoided and the measurements behind
the defaults: ``docs/design/armed.md``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from numbers import Real

import numpy as np
import pandas as pd
import torch
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from perslib._core.estimator import BinaryClassifierMixin, PerslibEstimator, init_with_defaults, standardize_target
from perslib._core.runtime import resolve_device, seeded_torch, torch_threads
from perslib._core.training import split_validation, train_loop
from perslib._core.validation import (
    Interval,
    Options,
    check_array,
    check_groups,
    sorted_unique,
)
from perslib.armed._network import ARMEDNet, Objective
from perslib.armed._refit import refit_network
from perslib.armed._unseen import UNSEEN_POOLING, one_hot, zpredictor_memberships
from perslib.mlp import _NETWORK_CONSTRAINTS, MLPClassifier

__all__ = ["ARMEDClassifier", "ARMEDRegressor"]

_WEIGHT = [Interval(Real, 0, None)]
_PRIOR = [Interval(Real, 0, None, closed="neither")]
AUTO_BATCH_ROWS = 1024  # training rows from which batch_size="auto" takes minibatches of 256 (else 64)


class _ARMEDBase(PerslibEstimator):
    """Shared fit / predict code of the ARMED estimators (not public).

    One constructor argument per setting, as scikit-learn's ``get_params`` / grid search
    need; the settings group into the network (``hidden`` … ``slope_prior``), the
    objective (``lambda_*``, ``kl_weight``, ``adversary_*``), unseen clusters
    (``unseen*``, ``zpredictor_hidden``) and training (``epochs`` … ``progress``).
    """

    _classifier = False
    _requires_groups = True
    _parameter_constraints = {
        "hidden": _NETWORK_CONSTRAINTS["hidden"],
        "activation": _NETWORK_CONSTRAINTS["activation"],
        "slopes": [Options("linear", "nonlinear", "none")],
        "random_intercept": [Options(True, False)],
        "random_effects": [Options(True, False)],
        "adversary": [Options(True, False)],
        "adversary_hidden": _NETWORK_CONSTRAINTS["hidden"],
        "adversary_mode": [Options("alternating", "reversal")],
        "adversary_guard": [Options("clamp", "confusion", "none")],
        "adversary_cap": _PRIOR,
        "lambda_mixed": _WEIGHT,
        "lambda_fixed": _WEIGHT,
        "lambda_adv": _WEIGHT,
        "intercept_prior": _PRIOR,
        "slope_prior": _PRIOR,
        "learn_prior_scale": [Options(True, False)],
        "kl_weight": [Options("auto"), Interval(Real, 0, None)],
        "refit": [Options(True, False)],
        "unseen": [Options("zpredictor", "fixed")],
        "unseen_pooling": [Options(*UNSEEN_POOLING)],
        "zpredictor_hidden": _NETWORK_CONSTRAINTS["hidden"],
        "epochs": _NETWORK_CONSTRAINTS["epochs"],
        "batch_size": [Options("auto"), *_NETWORK_CONSTRAINTS["batch_size"]],
        "lr": [Options("auto"), *_NETWORK_CONSTRAINTS["lr"]],
        "weight_decay": _WEIGHT,
        "re_lr_scale": _PRIOR,
        "val_fraction": _NETWORK_CONSTRAINTS["val_fraction"],
        "patience": _NETWORK_CONSTRAINTS["patience"],
        "standardize": [Options(True, False)],
        "device": _NETWORK_CONSTRAINTS["device"],
        "random_state": _NETWORK_CONSTRAINTS["random_state"],
        "progress": _NETWORK_CONSTRAINTS["progress"],
    }

    def __init__(
        self,
        hidden: Sequence[int] = (32, 32),
        *,
        activation: str = "relu",
        slopes: str = "linear",
        random_intercept: bool = True,
        random_effects: bool = True,
        adversary: bool = True,
        adversary_hidden: Sequence[int] = (16, 16),
        adversary_mode: str = "alternating",
        adversary_guard: str = "clamp",
        adversary_cap: float = 1.0,
        lambda_mixed: float = 1.0,
        lambda_fixed: float = 0.5,
        lambda_adv: float = 0.3,
        intercept_prior: float = 0.5,
        slope_prior: float = 0.1,
        learn_prior_scale: bool = True,
        kl_weight: float | str = "auto",
        refit: bool = True,
        unseen: str = "zpredictor",
        unseen_pooling: str = "none",
        zpredictor_hidden: Sequence[int] = (32, 32),
        epochs: int = 100,
        batch_size: int | str = "auto",
        lr: float | str = "auto",
        weight_decay: float = 1e-2,
        re_lr_scale: float = 10.0,
        val_fraction: float = 0.1,
        patience: int = 10,
        standardize: bool = True,
        device: str = "auto",
        random_state: int | None = None,
        progress: bool | None = None,
    ) -> None:
        self.hidden = hidden
        self.activation = activation
        self.slopes = slopes
        self.random_intercept = random_intercept
        self.random_effects = random_effects
        self.adversary = adversary
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
        self.refit = refit
        self.unseen = unseen
        self.unseen_pooling = unseen_pooling
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

    # ------------------------------------------------------------------ inputs
    def _validate_params(self) -> None:
        super()._validate_params()
        if self.adversary_mode == "reversal" and self.adversary_guard == "confusion":
            raise ValueError("adversary_guard='confusion' needs adversary_mode='alternating'")
        if self.slopes == "nonlinear" and not len(self.hidden):
            raise ValueError("slopes='nonlinear' needs at least one hidden layer (hidden=())")

    def _feature_names(self) -> list[str]:
        names = getattr(self, "feature_names_in_", None)
        return list(names) if names is not None else [f"x{j}" for j in range(self.n_features_in_)]

    def _x_tensor(self, X: np.ndarray) -> torch.Tensor:
        if self.scaler_ is not None:
            X = self.scaler_.transform(X)
        return torch.as_tensor(X, dtype=torch.float32, device=self.device_)

    def _fit_scaler(self, X: np.ndarray):
        """The input scaler (None without standardization); the image estimators scale per channel."""
        return StandardScaler().fit(X) if self.standardize else None

    def _make_zpredictor(self, seed: int):
        """The unfitted z-predictor, a classifier of the training cluster from the inputs."""
        return MLPClassifier(
            self.zpredictor_hidden,
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

    # ------------------------------------------------------------------ fit
    def _training_schedule(self, n_train: int) -> tuple[int, float]:
        """Minibatch size and learning rate for ``n_train`` training rows (``"auto"`` resolved).

        ``batch_size="auto"``: 256 from ``AUTO_BATCH_ROWS`` training rows on (a quarter of the
        optimizer steps of 64, the fit-time lever on tabular data), else 64 (smaller sets need
        the steps). ``lr="auto"``: 1e-3 · sqrt(batch / 64), Adam's square-root scaling (1e-3
        at 64, 2e-3 at 256).
        """
        batch = self.batch_size
        if batch == "auto":
            batch = 256 if n_train >= AUTO_BATCH_ROWS else 64
        lr = self.lr if self.lr != "auto" else 1e-3 * (int(batch) / 64) ** 0.5
        return int(batch), float(lr)

    def _fit(self, X_raw: np.ndarray, target: np.ndarray, groups: np.ndarray, stratify_extra=None):
        rng, torch_seed = self._random_streams()
        self.device_ = resolve_device(self.device)
        self.groups_ = sorted_unique(groups)
        self._group_index = pd.Index(self.groups_)
        codes = self._group_index.get_indexer(groups)
        K = self.n_clusters_ = len(self.groups_)
        self.scaler_ = self._fit_scaler(X_raw)
        strat = codes.astype(str)
        if stratify_extra is not None:
            strat = np.char.add(np.char.add(strat, "|"), stratify_extra.astype(str))
        train_idx, val_idx = split_validation(len(X_raw), self.val_fraction, rng, stratify=strat)
        self.batch_size_, self.lr_ = self._training_schedule(len(train_idx))
        self.has_random_effects_ = bool(self.random_effects) and (self.random_intercept or self.slopes != "none")
        use_adv = bool(self.adversary) and K >= 2
        with seeded_torch(torch_seed, self.device_):
            self.net_ = self._build_network(use_adv).to(self.device_)
            Xt = self._x_tensor(X_raw)
            objective = self._objective(codes[train_idx], len(train_idx), self.has_random_effects_, use_adv)
            self._train(Xt, target, codes, train_idx, val_idx, objective, torch_seed)
            self.refit_ = None
            if self.refit and self.has_random_effects_ and not self._classifier:
                # small tensors: one CPU thread, as in training (many threads spin on a busy machine)
                with torch_threads(1 if self.device_.type == "cpu" else None):
                    self.refit_ = refit_network(self.net_, Xt, target, codes, ridge=self.weight_decay)
        self.zpredictor_ = None
        if self.has_random_effects_ and self.unseen == "zpredictor" and K >= 2:
            self.zpredictor_ = self._make_zpredictor(int(rng.integers(2**31 - 1))).fit(X_raw, codes)
        self._rng_seed = int(rng.integers(2**31 - 1))
        self._store_effects()
        return self

    def _build_network(self, use_adv: bool) -> ARMEDNet:
        return ARMEDNet(
            self.n_features_in_,
            self.n_clusters_,
            hidden=self.hidden,
            activation=self.activation,
            slopes=self.slopes if self.random_effects else "none",
            random_intercept=bool(self.random_intercept and self.random_effects),
            adversary_hidden=self.adversary_hidden if use_adv else None,
            intercept_prior=self.intercept_prior,
            slope_prior=self.slope_prior,
            learn_prior_scale=self.learn_prior_scale,
            gaussian=not self._classifier,
        )

    def _train(self, Xt, target, codes, train_idx, val_idx, objective, torch_seed) -> None:
        """Minibatches of the network's training step; early stopping on the held-out mixed loss."""
        net = self.net_
        yt = torch.as_tensor(target, dtype=torch.float32, device=self.device_)
        zt = torch.as_tensor(codes, dtype=torch.int64, device=self.device_)
        opt_main, opt_adv = net.configure_optimizers(self.lr_, self.weight_decay, self.re_lr_scale)

        def step(batch):
            return net.training_step(batch, objective, opt_main, opt_adv)

        evaluate = None
        if len(val_idx):
            Xv, yv = Xt[val_idx], yt[val_idx]  # indexed once, not every epoch
            zv = zt[val_idx] if self.has_random_effects_ else None

            def evaluate():
                return net.validation_loss(net(Xv, zv)["mixed"], yv).item()

        t0 = time.perf_counter()
        self.history_ = train_loop(
            step,
            (Xt[train_idx], zt[train_idx], yt[train_idx]),
            self._train_config(batch_size=self.batch_size_, lr=self.lr_),
            module=net,
            evaluate=evaluate,
            generator=torch.Generator().manual_seed(torch_seed),
        )
        self.n_epochs_ = len(self.history_)
        self.epoch_time_ = (time.perf_counter() - t0) / max(self.n_epochs_, 1)

    def _objective(self, train_codes: np.ndarray, n_train: int, has_re: bool, use_adv: bool) -> Objective:
        counts = np.bincount(train_codes, minlength=self.n_clusters_) + 1e-3
        log_prior = torch.as_tensor(np.log(counts / counts.sum()), dtype=torch.float32, device=self.device_)
        chance = float(-(log_prior.exp() * log_prior).sum())
        self.cluster_entropy_ = chance
        return Objective(
            log_prior=log_prior,
            chance=chance,
            lambda_mixed=float(self.lambda_mixed),
            lambda_fixed=float(self.lambda_fixed),
            lambda_adv=float(self.lambda_adv),
            kl_weight=1.0 / n_train if self.kl_weight == "auto" else float(self.kl_weight),
            guard=self.adversary_guard,
            cap=float(self.adversary_cap),
            mode=self.adversary_mode,
            use_random_effects=has_re,
            use_adversary=use_adv,
        )

    def _out_scale(self) -> float:
        return 1.0 if self._classifier else self.y_scale_

    def _store_effects(self) -> None:
        net, s = self.net_, self._out_scale()
        index = pd.Index(self.groups_, name="group")
        if net.re is None:
            self.random_effects_ = pd.DataFrame(index=index)
            self.random_effect_sd_ = pd.Series(dtype=float)
            return
        names = ["intercept"] * net.n_intercepts
        names += self._feature_names() if net.slopes == "linear" else [f"h{j}" for j in range(net.n_slopes)]
        loc = net.re.loc.detach().cpu().numpy().astype(np.float64)
        self.random_effects_ = pd.DataFrame(loc * s, index=index, columns=names)
        self.random_effect_sd_ = pd.Series(
            net.re.prior_scale.detach().cpu().numpy().astype(np.float64) * s, index=names
        )

    # ------------------------------------------------------------------ prediction
    def design_matrix(self, X, groups=None, z="auto") -> np.ndarray:
        """The cluster design matrix (n, K) used for prediction.

        ``z="auto"``: one-hot rows for clusters seen in training; other rows (unseen or
        missing labels, or all rows when ``groups`` is None) follow ``unseen`` — the
        z-predictor's memberships or zeros (``"fixed"``) — with a ``UserWarning``.
        ``"zero"`` / ``"fixed"``: all zeros (FE-only prediction). ``"random"``: a random
        one-hot row per sample (ablation). ``"zpredictor"``: the z-predictor for every
        row. An array (n, K) is used as given.

        By default (``unseen_pooling="none"``) every row gets its own memberships. With
        pooling (opt-in), the z-predictor rows that share a cluster label are pooled into
        one membership vector per cluster (:func:`perslib.armed.pool_memberships`): a
        sample's prediction then depends on the other samples of its cluster passed in the
        same call.

        Parameters
        ----------
        X : array-like of shape (n, p)
        groups : array-like of shape (n,), optional
        z : {"auto", "zero", "fixed", "random", "zpredictor"} or array of shape (n, K)

        Returns
        -------
        ndarray of shape (n, K)
        """
        Xa = self._check_X(X, reset=False)
        n, K = len(Xa), self.n_clusters_
        if not isinstance(z, str):
            Z = check_array(z, "z", ndim=2)
            if Z.shape != (n, K):
                raise ValueError(f"z must have shape ({n}, {K}), got {Z.shape}")
            return Z
        if z in ("zero", "fixed"):
            return np.zeros((n, K))
        if z == "random":
            return np.eye(K)[np.random.default_rng(self._rng_seed).integers(K, size=n)]
        g = None if groups is None else check_groups(groups, n, fitting=False)
        if z == "zpredictor":
            return zpredictor_memberships(self.zpredictor_, Xa, K, g, self.unseen_pooling)
        if z != "auto":
            raise ValueError(f"z must be 'auto', 'zero', 'random', 'zpredictor' or an array, got {z!r}")
        codes = np.full(n, -1) if g is None else self._group_index.get_indexer(g)
        Z = one_hot(codes, K)
        seen = codes >= 0
        if not seen.all() and self.has_random_effects_:
            what = (
                "groups not given"
                if g is None
                else f"{int((~seen).sum())} sample(s) from clusters not seen in training"
            )
            how = (
                "the z-predictor's soft cluster weights"
                if self.zpredictor_ is not None
                else "z = 0 (fixed effects only)"
            )
            warnings.warn(f"{type(self).__name__}: {what}; using {how} for them", UserWarning, stacklevel=3)
            Z[~seen] = zpredictor_memberships(
                self.zpredictor_, Xa[~seen], K, None if g is None else g[~seen], self.unseen_pooling
            )
        return Z

    def _output(self, X, groups, z, which: str = "mixed") -> np.ndarray:
        Z = self.design_matrix(X, groups, z)
        Xa = self._check_X(X, reset=False)
        self.net_.eval()
        with torch.no_grad():
            zt = torch.as_tensor(Z, dtype=torch.float32, device=self.device_) if self.has_random_effects_ else None
            out = self.net_(self._x_tensor(Xa), zt)[which]
        return out.cpu().numpy().astype(np.float64)

    def fixed_effects_forward(self, x_std: torch.Tensor) -> torch.Tensor:
        """FE output (logit or standardized regression output) for standardized inputs."""
        check_is_fitted(self, "net_")
        return self.net_(x_std)["fixed"]


class ARMEDClassifier(BinaryClassifierMixin, ClassifierMixin, _ARMEDBase):
    """ARMED binary classifier: FE MLP + adversary + Bayesian random intercept/slopes.

    Parameters
    ----------
    hidden : sequence of int, default=(32, 32)
        FE network hidden widths.
    activation : str, default="relu"
    slopes : {"linear", "nonlinear", "none"}, default="linear"
        Random slopes on the inputs, on the last FE hidden layer, or none.
    random_intercept : bool, default=True
    random_effects : bool, default=True
        False removes the RE subnetwork (the domain-adversarial MLP).
    adversary : bool, default=True
        False removes the adversary (the mixed-effects MLP without adversary).
    adversary_hidden : sequence of int, default=(16, 16)
    adversary_mode : {"alternating", "reversal"}, default="alternating"
        Alternating adversary / main steps, or one pass through gradient reversal.
    adversary_guard : {"clamp", "confusion", "none"}, default="clamp"
        Bound on the FE network's adversarial term (:func:`perslib.armed.generator_loss`).
    adversary_cap : float, default=1.0
        Chance-level multiple at which ``"clamp"`` stops pushing.
    lambda_mixed, lambda_fixed, lambda_adv : float, default=1.0, 0.5, 0.3
        Weights of the mixed-output loss, the FE-output loss and the adversarial term.
    intercept_prior, slope_prior : float, default=0.5, 0.1
        Prior scales of the random effects (initial values when learned).
    learn_prior_scale : bool, default=True
        Learn each random effect's prior scale (empirical Bayes).
    kl_weight : float or "auto", default="auto"
        Weight of the summed KL; ``"auto"`` = 1 / number of training samples (the ELBO).
    refit : bool, default=True
        Regressor only: after training, refit the FE output layer, the random effects and
        their variance components in closed form as a linear mixed model on the learned
        last hidden layer (:func:`perslib.armed.linear_mixed_refit`).
    unseen : {"zpredictor", "fixed"}, default="zpredictor"
        Clusters not seen in training: the z-predictor's soft memberships over the
        training clusters, or z = 0 (fixed effects only).
    unseen_pooling : {"none", "geometric", "arithmetic"}, default="none"
        ``"none"``: each sample of a cluster not seen in training gets its own
        z-predictor memberships (the paper's rule; a row's prediction never depends on the
        other rows passed with it). ``"geometric"`` / ``"arithmetic"`` pool the
        memberships over the rows that share an unseen ``groups`` label in one ``predict``
        call (their mean log-probability, or their mean): transductive, opt-in — the
        prediction of a row then depends on the other rows of its cluster in that call.
    zpredictor_hidden : sequence of int, default=(32, 32)
    epochs : int, default=100
    batch_size : int or "auto", default="auto"
        Minibatch size of the network and of the z-predictor. ``"auto"``: 256 when the
        training part (after the validation split) has at least 1,024 rows, else 64 — a
        quarter of the optimizer steps where there are enough rows, and enough steps per
        epoch where there are not. The value used is ``batch_size_``.
    lr : float or "auto", default="auto"
        Adam learning rate of the network and of the z-predictor (the random effects'
        is ``lr * re_lr_scale``). ``"auto"``: 1e-3 · sqrt(batch / 64), i.e. 1e-3 at 64 and
        2e-3 at 256; the value used is ``lr_``.
    weight_decay : float, default=1e-2
        L2 penalty on the FE network's weights only (a Gaussian prior on the fixed effects).
    re_lr_scale : float, default=10.0
        Learning-rate multiplier of the random-effects parameters.
    val_fraction : float, default=0.1
        Share of the data (stratified by cluster and label) held out for early stopping.
    patience : int, default=10
    standardize : bool, default=True
    device : str, default="auto"
    random_state : int, optional
    progress : bool, optional

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
    groups_ : ndarray of shape (K,)
        Training clusters, sorted.
    n_clusters_ : int
    net_ : ARMEDNet
    zpredictor_ : MLPClassifier or None
    history_ : pandas.DataFrame
        Per epoch: losses of the objective's terms, the adversary's loss, ``val_loss``.
    n_epochs_ : int
    epoch_time_ : float
        Seconds per training epoch.
    random_effects_ : pandas.DataFrame of shape (K, n_effects)
        Posterior means (logit scale; slopes per standardized input unit, or per FE
        hidden unit ``h{j}``).
    random_effect_sd_ : pandas.Series
        Learned prior scale (inter-cluster spread) of each effect.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Column names of a DataFrame ``X`` (absent for arrays).
    """

    _classifier = True

    def fit(self, X, y, *, groups=None):
        """Fit on ``X`` (n, p), binary labels ``y`` (n,) and cluster labels ``groups`` (n,)."""
        X, encoded = self._validate_fit(X, y, labels="binary")
        g = check_groups(groups, len(X))
        return self._fit(X, encoded.astype(np.float32), g, stratify_extra=encoded)

    def decision_function(self, X, *, groups=None, z="auto") -> np.ndarray:
        """Mixed logit, shape (n,); ``z`` as in :meth:`design_matrix`."""
        return self._output(X, groups, z)

    def score(self, X, y, *, groups=None, sample_weight=None) -> float:
        """Accuracy of ``predict(X, groups=groups)``."""
        from sklearn.metrics import accuracy_score

        return float(accuracy_score(y, self.predict(X, groups=groups), sample_weight=sample_weight))


class ARMEDRegressor(RegressorMixin, _ARMEDBase):
    """ARMED regressor (Gaussian likelihood with a learned residual scale).

    Same parameters as :class:`ARMEDClassifier`, except the defaults ``batch_size=64`` and
    ``lr=1e-3`` instead of ``"auto"`` (the classifier's larger batches moved the regressor's
    unseen-school R² of notebook 07 outside its tolerance band; the regressor's closed-form
    refit keeps its fit short anyway; ``"auto"`` is accepted). The target is standardized inside
    (``standardize=True``); ``random_effects_`` and ``random_effect_sd_`` are in units of
    ``y`` (slopes per standardized input unit).

    Attributes
    ----------
    y_mean_, y_scale_ : float
    residual_sd_ : float
        Learned residual standard deviation of the mixed output, in units of ``y``.
    refit_ : dict or None
        ``tau`` (RE s.d., standardized units), ``sigma`` and ``n_iter`` of the closed-form
        refit (``refit=True``), else None.
    """

    def fit(self, X, y, *, groups=None):
        """Fit on ``X`` (n, p), ``y`` (n,) and cluster labels ``groups`` (n,)."""
        X, y = self._validate_fit(X, y)
        g = check_groups(groups, len(X))
        target, self.y_mean_, self.y_scale_ = standardize_target(y, self.standardize)
        self._fit(X, target.astype(np.float32), g)
        self.residual_sd_ = float(self.net_.log_sd[0].detach().exp()) * self.y_scale_
        return self

    def predict(self, X, *, groups=None, z="auto") -> np.ndarray:
        """Predictions (n,); ``z`` as in :meth:`design_matrix`."""
        return self._output(X, groups, z) * self.y_scale_ + self.y_mean_

    def score(self, X, y, *, groups=None, sample_weight=None) -> float:
        """R^2 of ``predict(X, groups=groups)``."""
        from sklearn.metrics import r2_score

        return float(r2_score(y, self.predict(X, groups=groups), sample_weight=sample_weight))


# the regressor's own defaults (its docstring says why); get_params / clone read this signature
ARMEDRegressor.__init__ = init_with_defaults(_ARMEDBase.__init__, batch_size=64, lr=1e-3)
