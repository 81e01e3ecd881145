"""A plain multilayer perceptron and its scikit-learn style estimators.

This is the "conventional" pooled network of the tutorials: one model for every sample,
blind to clusters. :class:`MLP` is the torch module (it can also return its hidden
activations, which ARMED's adversary reads); :class:`MLPClassifier` and
:class:`MLPRegressor` wrap it in the scikit-learn contract. They accept ``groups=`` so
that they drop into the same cross-validation code as the cluster-aware models, and
ignore it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.nn import functional as F

from perslib.training import TrainConfig, split_validation, train_module
from perslib.utils import check_array, check_consistent_length, check_n_columns, check_random_state, resolve_device

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
        for layer in self.hidden_layers:
            x = self.drop(self.act(layer(x)))
            hiddens.append(x)
        out = self.out(x)
        return (out, hiddens) if return_hidden else out


class _BaseMLPEstimator(BaseEstimator):
    """Shared fit/transform code of the two estimators (not public)."""

    def __init__(
        self,
        hidden: Sequence[int] = (32, 32),
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

    # -- helpers ---------------------------------------------------------------------
    def _validate_X(self, X, fitting: bool) -> np.ndarray:
        if fitting:
            self.feature_names_in_ = np.asarray(X.columns, dtype=object) if hasattr(X, "columns") else None
        arr = check_array(X, "X", ndim=2)
        if fitting:
            self.n_features_in_ = arr.shape[1]
        else:
            check_n_columns(arr, self.n_features_in_)
        return arr

    def _to_tensor(self, X: np.ndarray) -> torch.Tensor:
        if self.scaler_ is not None:
            X = self.scaler_.transform(X)
        return torch.as_tensor(X, dtype=torch.float32, device=self.device_)

    def _fit_network(self, X: np.ndarray, target: np.ndarray, out_features: int, loss_fn, stratify=None):
        rng = check_random_state(self.random_state)
        torch_seed = int(rng.integers(2**31 - 1))
        self.device_ = resolve_device(self.device)
        self.scaler_ = StandardScaler().fit(X) if self.standardize else None
        train_idx, val_idx = split_validation(len(X), self.val_fraction, rng, stratify=stratify)
        torch.manual_seed(torch_seed)
        self.model_ = MLP(X.shape[1], self.hidden, out_features, self.activation, self.dropout).to(self.device_)
        Xt = self._to_tensor(X)
        yt = torch.as_tensor(target, device=self.device_)
        config = TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            patience=self.patience,
            progress=self.progress,
            desc=type(self).__name__,
        )
        gen = torch.Generator().manual_seed(torch_seed)
        self.history_ = train_module(
            self.model_,
            loss_fn,
            (Xt[train_idx], yt[train_idx]),
            config,
            val_tensors=(Xt[val_idx], yt[val_idx]),
            generator=gen,
        )
        self.n_epochs_ = int(len(self.history_))
        return self

    def _raw_output(self, X) -> torch.Tensor:
        check_is_fitted(self, "model_")
        X = self._validate_X(X, fitting=False)
        self.model_.eval()
        with torch.no_grad():
            return self.model_(self._to_tensor(X)).cpu()


class MLPClassifier(ClassifierMixin, _BaseMLPEstimator):
    """Pooled MLP classifier (binary or multiclass), blind to clusters.

    Parameters
    ----------
    hidden : sequence of int, default=(32, 32)
        Hidden layer widths.
    activation : str, default="relu"
    dropout : float, default=0.0
    epochs : int, default=100
        Most training epochs (early stopping usually ends sooner).
    batch_size : int, default=64
    lr : float, default=1e-3
        Adam learning rate.
    weight_decay : float, default=0.0
    val_fraction : float, default=0.1
        Share of the training data held out (stratified by class) for early stopping.
    patience : int, default=10
        Epochs without validation improvement before stopping.
    standardize : bool, default=True
        Standardize the features inside the estimator.
    device : str, default="auto"
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    random_state : int, optional
        Seed for the split, the initialisation and the minibatch order.
    progress : bool, optional
        Progress bar; ``None`` follows ``PERSLIB_PROGRESS``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    model_ : MLP
    history_ : pandas.DataFrame
        Per-epoch ``train_loss`` and ``val_loss``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str or None
    """

    def fit(self, X, y, groups=None):
        """Fit on ``X`` (n, p) and labels ``y`` (n,); ``groups`` (n,) is checked and ignored."""
        X = self._validate_X(X, fitting=True)
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-dimensional, got shape {y.shape}")
        check_consistent_length(X=X, y=y, groups=groups)
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise ValueError("y contains NaN or inf; expected class labels")
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y must contain at least 2 classes, got only {self.classes_.tolist()}")
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

    def decision_function(self, X, groups=None) -> np.ndarray:
        """Logits: shape (n,) for binary problems, (n, n_classes) otherwise."""
        out = self._raw_output(X).numpy().astype(np.float64)
        return out[:, 0] if len(self.classes_) == 2 else out

    def predict_proba(self, X, groups=None) -> np.ndarray:
        """Class probabilities of shape (n, n_classes), columns in ``classes_`` order."""
        out = self._raw_output(X)
        if len(self.classes_) == 2:
            p1 = torch.sigmoid(out[:, 0]).numpy().astype(np.float64)
            return np.column_stack([1 - p1, p1])
        return torch.softmax(out, dim=1).numpy().astype(np.float64)

    def predict(self, X, groups=None) -> np.ndarray:
        """Most probable class per sample, shape (n,)."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


class MLPRegressor(RegressorMixin, _BaseMLPEstimator):
    """Pooled MLP regressor (squared error), blind to clusters.

    Takes the same parameters as :class:`MLPClassifier`; the target is standardized
    inside the estimator as well when ``standardize=True``.

    Attributes
    ----------
    model_ : MLP
    history_ : pandas.DataFrame
    y_mean_, y_scale_ : float
        Target standardization.
    """

    def fit(self, X, y, groups=None):
        """Fit on ``X`` (n, p) and ``y`` (n,); ``groups`` (n,) is checked and ignored."""
        X = self._validate_X(X, fitting=True)
        y = check_array(y, "y", ndim=1)
        check_consistent_length(X=X, y=y, groups=groups)
        self.y_mean_ = float(y.mean()) if self.standardize else 0.0
        self.y_scale_ = float(y.std()) if self.standardize and y.std() > 0 else 1.0
        target = ((y - self.y_mean_) / self.y_scale_).astype(np.float32)

        def loss_fn(model, xb, yb):
            return F.mse_loss(model(xb).squeeze(-1), yb)

        return self._fit_network(X, target, 1, loss_fn)

    def predict(self, X, groups=None) -> np.ndarray:
        """Predictions of shape (n,)."""
        out = self._raw_output(X)[:, 0].numpy().astype(np.float64)
        return out * self.y_scale_ + self.y_mean_
