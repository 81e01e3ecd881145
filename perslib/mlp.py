"""A plain multilayer perceptron and its scikit-learn style estimators.

This is the "conventional" pooled network of the tutorials: one model for every sample,
blind to clusters. :class:`MLP` is the torch module (it can also return its hidden
activations, which ARMED's adversary reads); :class:`MLPClassifier` and
:class:`MLPRegressor` wrap it in the scikit-learn contract. They accept ``groups=`` so
that they drop into the same cross-validation code as the cluster-aware models, and
ignore it.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.nn import functional as F

from perslib._core.estimator import PerslibEstimator, standardize_target
from perslib._core.runtime import resolve_device, seeded_torch
from perslib._core.training import split_validation, train_module
from perslib._core.validation import (
    Instance,
    Interval,
    Options,
)

__all__ = ["MLP", "MLPClassifier", "MLPRegressor"]

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU, "leaky_relu": nn.LeakyReLU}


class MLP(nn.Module):
    """Fully connected network: ``in_features -> hidden... -> out_features``.

    Parameters
    ----------
    in_features : int
    hidden : sequence of int, default=(32, 32)
        Widths of the hidden layers (may be empty: a linear model).
    out_features : int, default=1
    activation : {"relu", "tanh", "elu", "gelu", "leaky_relu"}, default="relu"
    dropout : float, default=0.0
        Dropout after each hidden activation.
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (32, 32),
        out_features: int = 1,
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.config = {
            "in_features": int(in_features),
            "hidden": [int(h) for h in hidden],
            "out_features": int(out_features),
            "activation": activation,
            "dropout": float(dropout),
        }  # what persistence rebuilds it from
        widths = [int(in_features), *[int(h) for h in hidden]]
        self.hidden_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.act = _ACTIVATIONS[activation]()
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(widths[-1], int(out_features))

    def forward(self, x: torch.Tensor, return_hidden: bool = False):
        """Map ``x`` of shape (batch, in_features) to outputs (batch, out_features).

        With ``return_hidden=True`` also return the list of hidden activations, each of
        shape (batch, width), in layer order.
        """
        hiddens = []
        drop = self.drop if self.drop.p > 0 else None  # p = 0: the identity, without the module call
        for layer in self.hidden_layers:
            x = self.act(layer(x))
            if drop is not None:
                x = drop(x)
            hiddens.append(x)
        out = self.out(x)
        return (out, hiddens) if return_hidden else out


_NETWORK_CONSTRAINTS = {
    "hidden": [Instance(tuple, list, of=Interval(Integral, 1, None), description="a sequence of positive ints")],
    "activation": [Options(*_ACTIVATIONS)],
    "dropout": [Interval(Real, 0, 1, closed="left")],
    "epochs": [Interval(Integral, 1, None)],
    "batch_size": [Interval(Integral, 1, None)],
    "lr": [Interval(Real, 0, None, closed="neither")],
    "weight_decay": [Interval(Real, 0, None)],
    "val_fraction": [Interval(Real, 0, 1, closed="left")],
    "patience": [Interval(Integral, 0, None)],
    "standardize": [Options(True, False)],
    "device": [Instance(str, torch.device)],
    "random_state": [Options(None), Interval(Integral, 0, None), Instance(np.random.Generator)],
    "progress": [Options(None, True, False)],
}


class _BaseMLPEstimator(PerslibEstimator):
    """Shared fit/transform code of the two estimators (not public)."""

    _parameter_constraints = _NETWORK_CONSTRAINTS

    def __init__(
        self,
        hidden: Sequence[int] = (32, 32),
        *,
        activation: str = "relu",
        dropout: float = 0.0,
        epochs: int = 100,
        batch_size: int = 64,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        val_fraction: float = 0.1,
        patience: int = 10,
        standardize: bool = True,
        device: str = "auto",
        random_state: int | None = None,
        progress: bool | None = None,
    ) -> None:
        self.hidden = hidden
        self.activation = activation
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.val_fraction = val_fraction
        self.patience = patience
        self.standardize = standardize
        self.device = device
        self.random_state = random_state
        self.progress = progress

    def _to_tensor(self, X: np.ndarray) -> torch.Tensor:
        if self.scaler_ is not None:
            X = self.scaler_.transform(X)
        return torch.as_tensor(X, dtype=torch.float32, device=self.device_)

    def _fit_network(self, X: np.ndarray, target: np.ndarray, out_features: int, loss_fn, stratify=None):
        rng, torch_seed = self._random_streams()
        self.device_ = resolve_device(self.device)
        self.scaler_ = StandardScaler().fit(X) if self.standardize else None
        train_idx, val_idx = split_validation(len(X), self.val_fraction, rng, stratify=stratify)
        with seeded_torch(torch_seed, self.device_):
            self.model_ = MLP(X.shape[1], self.hidden, out_features, self.activation, self.dropout).to(self.device_)
            Xt = self._to_tensor(X)
            yt = torch.as_tensor(target, device=self.device_)
            self.history_ = train_module(
                self.model_,
                loss_fn,
                (Xt[train_idx], yt[train_idx]),
                self._train_config(weight_decay=self.weight_decay),
                val_tensors=(Xt[val_idx], yt[val_idx]),
                generator=torch.Generator().manual_seed(torch_seed),
            )
        self.n_epochs_ = int(len(self.history_))
        return self

    def _raw_output(self, X) -> torch.Tensor:
        X = self._check_X(X, reset=False)
        self.model_.eval()
        with torch.no_grad():
            return self.model_(self._to_tensor(X)).cpu()


class MLPClassifier(ClassifierMixin, _BaseMLPEstimator):
    """Pooled MLP classifier (binary or multiclass), blind to clusters.

    Parameters
    ----------
    hidden : sequence of int, default=(32, 32)
        Hidden layer widths (empty: a linear model).
    activation : {"relu", "tanh", "elu", "gelu", "leaky_relu"}, default="relu"
    dropout : float, default=0.0
        Dropout after each hidden activation.
    epochs : int, default=100
        Most training epochs (early stopping usually ends sooner).
    batch_size : int, default=64
    lr : float, default=1e-3
        Adam learning rate.
    weight_decay : float, default=0.0
        Adam's (coupled) L2 penalty.
    val_fraction : float, default=0.1
        Share of the training data held out (stratified by class) for early stopping.
    patience : int, default=10
        Epochs without validation improvement before stopping; 0 never stops early.
    standardize : bool, default=True
        Standardize the features inside the estimator.
    device : str, default="auto"
        ``"auto"`` (CUDA when visible), ``"cpu"`` or ``"cuda"``.
    random_state : int, optional
        Seeds the split, the initialisation and the minibatch order.
    progress : bool, optional
        Progress bar; ``None`` follows ``PERSLIB_PROGRESS``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    model_ : MLP
    history_ : pandas.DataFrame
        Per-epoch ``train_loss`` and ``val_loss``.
    n_epochs_ : int
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Column names of a DataFrame ``X`` (absent for arrays).
    """

    def fit(self, X, y, *, groups=None):
        """Fit on ``X`` (n, p) and labels ``y`` (n,); ``groups`` (n,) is accepted and ignored."""
        X, encoded = self._validate_fit(X, y, labels="classes", groups=groups)
        binary = len(self.classes_) == 2
        if binary:
            target = encoded.astype(np.float32)

            def loss_fn(model, xb, yb):
                return F.binary_cross_entropy_with_logits(model(xb).squeeze(-1), yb)

        else:
            target = encoded.astype(np.int64)

            def loss_fn(model, xb, yb):
                return F.cross_entropy(model(xb), yb)

        return self._fit_network(X, target, 1 if binary else len(self.classes_), loss_fn, stratify=encoded)

    def decision_function(self, X, *, groups=None) -> np.ndarray:
        """Logits: shape (n,) for binary problems, (n, n_classes) otherwise."""
        out = self._raw_output(X).numpy().astype(np.float64)
        return out[:, 0] if len(self.classes_) == 2 else out

    def predict_proba(self, X, *, groups=None) -> np.ndarray:
        """Class probabilities of shape (n, n_classes), columns in ``classes_`` order."""
        out = self._raw_output(X)
        if len(self.classes_) == 2:
            p1 = torch.sigmoid(out[:, 0]).numpy().astype(np.float64)
            return np.column_stack([1 - p1, p1])
        return torch.softmax(out, dim=1).numpy().astype(np.float64)

    def predict(self, X, *, groups=None) -> np.ndarray:
        """Most probable class per sample, shape (n,)."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


class MLPRegressor(RegressorMixin, _BaseMLPEstimator):
    """Pooled MLP regressor (squared error), blind to clusters.

    Takes the same parameters as :class:`MLPClassifier`; with ``standardize=True`` the
    target is standardized inside the estimator too.

    Attributes
    ----------
    model_ : MLP
    history_ : pandas.DataFrame
    y_mean_, y_scale_ : float
        Target standardization.
    """

    def fit(self, X, y, *, groups=None):
        """Fit on ``X`` (n, p) and ``y`` (n,); ``groups`` (n,) is accepted and ignored."""
        X, y = self._validate_fit(X, y, groups=groups)
        target, self.y_mean_, self.y_scale_ = standardize_target(y, self.standardize)

        def loss_fn(model, xb, yb):
            return F.mse_loss(model(xb).squeeze(-1), yb)

        return self._fit_network(X, target.astype(np.float32), 1, loss_fn)

    def predict(self, X, *, groups=None) -> np.ndarray:
        """Predictions of shape (n,)."""
        out = self._raw_output(X)[:, 0].numpy().astype(np.float64)
        return out * self.y_scale_ + self.y_mean_
