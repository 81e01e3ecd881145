"""A plain convolutional network and its scikit-learn style classifier.

The image counterpart of :mod:`perslib.mlp`: :class:`ConvNet` is the torch module (conv
blocks with batch norm, PReLU and max pooling, then dense layers; it can also return every
block's output and the dense features, which ARMED's multi-scale adversary reads), and
:class:`CNNClassifier` wraps it in the scikit-learn contract. It is the "conventional CNN"
of the ARMED tutorials and, with one output per site, ARMED's z-predictor for images.
It accepts ``groups=`` (and ignores it) so that it joins the same cross-validation code as
the site-aware models. Images come as arrays or tensors of shape (n, C, H, W).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from numbers import Integral

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from torch import nn
from torch.nn import functional as F

from perslib._core.estimator import PerslibEstimator
from perslib._core.runtime import resolve_device, seeded_torch
from perslib._core.training import split_validation, train_module
from perslib._core.validation import Instance, Interval, check_array
from perslib.mlp import _ACTIVATIONS, _NETWORK_CONSTRAINTS

__all__ = ["CNNClassifier", "ConvNet", "check_images"]


def check_images(X, name: str = "X") -> np.ndarray:
    """Images as a float array of shape (n, C, H, W); a torch tensor is copied to the CPU.

    Every error names ``name``: a wrong number of dimensions (with a hint for (n, H, W)
    single-channel stacks), NaN or inf pixels, no images.
    """
    if torch.is_tensor(X):
        X = X.detach().cpu().numpy()
    if X is None or hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        return check_array(X, name)  # its errors: required, or sparse input is not supported
    arr = np.asarray(X) if not hasattr(X, "to_numpy") else X
    if getattr(arr, "ndim", 4) != 4:
        hint = " (single-channel images: add the channel axis, X[:, None])" if arr.ndim == 3 else ""
        raise ValueError(f"{name} must be images of shape (n, C, H, W) (4 dimensions), got shape {arr.shape}{hint}")
    arr = check_array(arr, name, ndim=4)
    if min(arr.shape[1:]) < 1:
        raise ValueError(f"{name} must have at least 1 channel and 1 pixel a side, got shape {arr.shape}")
    return arr


class _ConvBlock(nn.Sequential):
    """Conv k x k ('same' padding) -> BatchNorm -> PReLU (one slope per channel) -> MaxPool 2 (optional)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, pool: bool = True) -> None:
        layers = [
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.PReLU(out_channels),
        ]
        super().__init__(*layers, *([nn.MaxPool2d(2)] if pool else []))


class ConvNet(nn.Module):
    """Convolutional network: conv blocks -> flatten (-> join ``extra``) -> dense layers -> output.

    Parameters
    ----------
    in_channels : int
    image_size : (int, int)
        Height and width of the input images; each side must be at least ``2 ** len(channels)``.
    channels : sequence of int, default=(16, 32)
        Output channels of the conv blocks (conv, batch norm, PReLU, 2 x 2 max pooling).
    hidden : sequence of int, default=(64,)
        Widths of the dense layers after the conv blocks (may be empty).
    out_features : int, default=1
    kernel_size : int, default=3
        Odd side of the square convolution kernels.
    activation : str, default="relu"
        Activation of the dense layers.
    n_extra : int, default=0
        Width of an extra input joined to the flattened conv features before the dense
        layers (the cluster-input CNN joins its one-hot site there).
    dropout : float, default=0.0
        Dropout after each dense activation.
    """

    def __init__(
        self,
        in_channels: int,
        image_size: Sequence[int],
        channels: Sequence[int] = (16, 32),
        hidden: Sequence[int] = (64,),
        out_features: int = 1,
        kernel_size: int = 3,
        activation: str = "relu",
        n_extra: int = 0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        height, width = (int(s) for s in image_size)
        channels, hidden = [int(c) for c in channels], [int(h) for h in hidden]
        if not channels or min(channels) < 1:
            raise ValueError(f"channels must be a non-empty sequence of positive ints, got {channels!r}")
        if int(kernel_size) < 1 or int(kernel_size) % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size!r}")
        if min(height, width) < 2 ** len(channels):
            raise ValueError(
                f"images of {height}x{width} pixels are too small for {len(channels)} conv blocks "
                f"(each halves the size): need at least {2 ** len(channels)} pixels a side"
            )
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        self.config = {  # what persistence rebuilds it from
            "in_channels": int(in_channels),
            "image_size": [height, width],
            "channels": channels,
            "hidden": hidden,
            "out_features": int(out_features),
            "kernel_size": int(kernel_size),
            "activation": activation,
            "n_extra": int(n_extra),
            "dropout": float(dropout),
        }
        sizes = [int(in_channels), *channels]
        self.blocks = nn.ModuleList(_ConvBlock(a, b, int(kernel_size)) for a, b in zip(sizes[:-1], sizes[1:]))
        c, h, w = self.block_shapes()[-1]
        widths = [c * h * w + int(n_extra), *hidden]
        self.hidden_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.act = _ACTIVATIONS[activation]()
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(widths[-1], int(out_features))

    @property
    def n_blocks(self) -> int:
        return len(self.config["channels"])

    def block_shapes(self) -> list[tuple[int, int, int]]:
        """``(channels, height, width)`` of each conv block's output."""
        h, w = self.config["image_size"]
        shapes = []
        for c in self.config["channels"]:
            h, w = h // 2, w // 2
            shapes.append((c, h, w))
        return shapes

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None, return_hidden: bool = False):
        """Map images (batch, C, H, W) to outputs (batch, out_features).

        ``extra`` (batch, n_extra) is joined to the flattened conv features (zeros when
        omitted). With ``return_hidden=True`` also return the list of every conv block's
        output (batch, C_i, H_i, W_i) followed by every dense activation (batch, width).
        """
        hiddens = []
        for block in self.blocks:
            x = block(x)
            hiddens.append(x)
        x = x.flatten(1)
        n_extra = self.config["n_extra"]
        if n_extra:
            extra = x.new_zeros(len(x), n_extra) if extra is None else extra.to(x.dtype)
            x = torch.cat([x, extra], dim=1)
        for layer in self.hidden_layers:
            x = self.drop(self.act(layer(x)))
            hiddens.append(x)
        out = self.out(x)
        return (out, hiddens) if return_hidden else out


_IMAGE_CONSTRAINTS = {
    "channels": [
        Instance(tuple, list, of=Interval(Integral, 1, None), description="a non-empty sequence of positive ints")
    ],
    "kernel_size": [Interval(Integral, 1, None)],
}


class ImageInputMixin:
    """Image inputs for an estimator: shape checks, per-channel standardization, tensors.

    ``n_features_in_`` is the number of channels (a convolutional network's input features
    at each pixel) and ``image_shape_`` the fitted ``(C, H, W)``; predict-time images must
    have the same shape. With ``standardize=True`` every channel is standardized by the
    mean and standard deviation of its pixels in the training images
    (``channel_mean_``, ``channel_scale_``).
    """

    def _check_X(self, X, *, reset: bool) -> np.ndarray:
        from sklearn.utils.validation import check_is_fitted

        if not reset:
            check_is_fitted(self)
        arr = check_images(X)
        if reset:
            if min(arr.shape[2:]) < 2 ** len(self.channels):
                raise ValueError(
                    f"X holds images of {arr.shape[2]}x{arr.shape[3]} pixels, too small for {len(self.channels)} "
                    f"conv blocks (channels={tuple(self.channels)}): need at least {2 ** len(self.channels)} a side"
                )
            self.n_features_in_, self.image_shape_ = arr.shape[1], tuple(int(s) for s in arr.shape[1:])
            return arr
        name = type(self).__name__
        c, h, w = self.image_shape_
        if arr.shape[1] != c:
            raise ValueError(
                f"X has {arr.shape[1]} features, but {name} is expecting {c} features as input "
                f"(image channels: expected images of shape (n, {c}, {h}, {w}), got {arr.shape})"
            )
        if arr.shape[2:] != (h, w):
            raise ValueError(
                f"X holds images of {arr.shape[2]}x{arr.shape[3]} pixels, but {name} was fitted on {h}x{w}"
            )
        return arr

    def _fit_channel_scale(self, X: np.ndarray) -> None:
        if self.standardize:
            self.channel_mean_ = X.mean(axis=(0, 2, 3))
            sd = X.std(axis=(0, 2, 3))
            self.channel_scale_ = np.where(sd > 0, sd, 1.0)
        else:
            self.channel_mean_ = np.zeros(X.shape[1])
            self.channel_scale_ = np.ones(X.shape[1])

    def _x_tensor(self, X: np.ndarray) -> torch.Tensor:
        X = (X - self.channel_mean_[None, :, None, None]) / self.channel_scale_[None, :, None, None]
        return torch.as_tensor(X, dtype=torch.float32, device=self.device_)


def batched(fn, x: torch.Tensor, size: int = 1024) -> torch.Tensor:
    """``fn`` applied to slices of ``x`` of at most ``size`` rows, concatenated (bounded memory)."""
    if len(x) <= size:
        return fn(x)
    return torch.cat([fn(x[i : i + size]) for i in range(0, len(x), size)])


class CNNClassifier(ImageInputMixin, ClassifierMixin, PerslibEstimator):
    """Conventional CNN classifier (binary or multiclass) on images, blind to sites.

    Parameters
    ----------
    channels : sequence of int, default=(16, 32)
        Output channels of the conv blocks (conv 3 x 3, batch norm, PReLU, max pool 2).
    hidden : sequence of int, default=(64,)
        Widths of the dense layers after the conv blocks.
    kernel_size : int, default=3
    activation : str, default="relu"
        Activation of the dense layers.
    dropout : float, default=0.0
    epochs : int, default=30
    batch_size : int, default=64
    lr : float, default=1e-3
        Adam learning rate.
    weight_decay : float, default=0.0
    val_fraction : float, default=0.1
        Share of the images held out (stratified by class) for early stopping.
    patience : int, default=10
    standardize : bool, default=True
        Standardize each channel by its training mean and standard deviation.
    device : str, default="auto"
    random_state : int, optional
    progress : bool, optional

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    model_ : ConvNet
    history_ : pandas.DataFrame
        Per-epoch ``train_loss`` and ``val_loss``.
    n_epochs_ : int
    epoch_time_ : float
        Seconds per training epoch.
    n_features_in_ : int
        Number of image channels.
    image_shape_ : tuple of int
        ``(C, H, W)`` of the training images.
    channel_mean_, channel_scale_ : ndarray of shape (C,)
    """

    _parameter_constraints = {
        **_IMAGE_CONSTRAINTS,
        **{k: v for k, v in _NETWORK_CONSTRAINTS.items() if k != "hidden"},
        "hidden": [Instance(tuple, list, of=Interval(Integral, 1, None), description="a sequence of positive ints")],
    }
    _n_extra = 0  # width of the extra dense input (the cluster-input CNN's one-hot site)

    def __init__(
        self,
        channels: Sequence[int] = (16, 32),
        *,
        hidden: Sequence[int] = (64,),
        kernel_size: int = 3,
        activation: str = "relu",
        dropout: float = 0.0,
        epochs: int = 30,
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
        self.channels = channels
        self.hidden = hidden
        self.kernel_size = kernel_size
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

    def _validate_params(self) -> None:
        super()._validate_params()
        if len(self.channels) == 0:
            raise ValueError(
                f"The 'channels' parameter of {type(self).__name__} must be non-empty; got {self.channels!r}."
            )
        if self.kernel_size % 2 == 0:
            raise ValueError(
                f"The 'kernel_size' parameter of {type(self).__name__} must be odd; got {self.kernel_size!r}."
            )

    def _network(self, out_features: int) -> ConvNet:
        c, h, w = self.image_shape_
        return ConvNet(
            c,
            (h, w),
            self.channels,
            self.hidden,
            out_features,
            self.kernel_size,
            self.activation,
            self._n_extra,
            self.dropout,
        )

    def fit(self, X, y, *, groups=None):
        """Fit on images ``X`` (n, C, H, W) and labels ``y`` (n,); ``groups`` (n,) is accepted and ignored."""
        return self._fit_images(X, y, groups=groups)

    def _fit_images(self, X, y, *, groups=None, extra=None):
        """The fit; ``extra`` (n, n_extra) is joined to the dense layers' input (subclasses)."""
        X, encoded = self._validate_fit(X, y, labels="classes", groups=groups)
        binary = len(self.classes_) == 2
        target = encoded.astype(np.float32 if binary else np.int64)

        def loss_fn(model, xb, eb, yb):
            out = model(xb, eb if self._n_extra else None)
            return F.binary_cross_entropy_with_logits(out[:, 0], yb) if binary else F.cross_entropy(out, yb)

        rng, torch_seed = self._random_streams()
        self.device_ = resolve_device(self.device)
        self._fit_channel_scale(X)
        train_idx, val_idx = split_validation(len(X), self.val_fraction, rng, stratify=encoded)
        with seeded_torch(torch_seed, self.device_):
            self.model_ = self._network(1 if binary else len(self.classes_)).to(self.device_)
            Xt, yt = self._x_tensor(X), torch.as_tensor(target, device=self.device_)
            Et = torch.as_tensor(
                np.zeros((len(X), 0)) if extra is None else extra, dtype=torch.float32, device=self.device_
            )
            t0 = time.perf_counter()
            self.history_ = train_module(
                self.model_,
                loss_fn,
                (Xt[train_idx], Et[train_idx], yt[train_idx]),
                self._train_config(weight_decay=self.weight_decay),
                val_tensors=(Xt[val_idx], Et[val_idx], yt[val_idx]),
                generator=torch.Generator().manual_seed(torch_seed),
            )
        self.n_epochs_ = int(len(self.history_))
        self.epoch_time_ = (time.perf_counter() - t0) / max(self.n_epochs_, 1)
        return self

    def _raw_output(self, X, extra=None) -> torch.Tensor:
        X = self._check_X(X, reset=False)
        self.model_.eval()
        et = None if extra is None else torch.as_tensor(extra, dtype=torch.float32, device=self.device_)
        with torch.no_grad():
            xt = self._x_tensor(X)
            if et is None:
                return batched(self.model_, xt).cpu()
            return torch.cat([self.model_(xt[i : i + 1024], et[i : i + 1024]) for i in range(0, len(xt), 1024)]).cpu()

    def decision_function(self, X, *, groups=None) -> np.ndarray:
        """Logits: shape (n,) for binary problems, (n, n_classes) otherwise."""
        out = self._raw_output(X).numpy().astype(np.float64)
        return out[:, 0] if len(self.classes_) == 2 else out

    def predict_proba(self, X, *, groups=None) -> np.ndarray:
        """Class probabilities of shape (n, n_classes), columns in ``classes_`` order."""
        return _proba(self._raw_output(X), len(self.classes_))

    def predict(self, X, *, groups=None) -> np.ndarray:
        """Most probable class per image, shape (n,)."""
        proba = self.predict_proba(X)  # first: NotFittedError before fit
        return self.classes_[np.argmax(proba, axis=1)]

    def fixed_effects_forward(self, x_std: torch.Tensor) -> torch.Tensor:
        """Logit of ``classes_[1]`` for standardized images (binary models; the whole network)."""
        return self.model_(x_std)[:, 0]


def _proba(out: torch.Tensor, n_classes: int) -> np.ndarray:
    if n_classes == 2:
        p1 = torch.sigmoid(out[:, 0]).numpy().astype(np.float64)
        return np.column_stack([1 - p1, p1])
    return torch.softmax(out, dim=1).numpy().astype(np.float64)
