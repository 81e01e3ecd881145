"""A small, reusable minibatch training loop with early stopping and epoch hooks.

The loop knows nothing about the model: the caller gives a ``step`` function that takes
one minibatch, updates parameters and returns its loss, and an ``evaluate`` function
that returns the validation loss. That keeps plain models (one optimizer, one loss) and
adversarial ones (several optimizers, alternating steps) on the same loop. For the plain
case :func:`train_module` builds the step itself. *Callbacks* run at epoch boundaries
(refresh a neighbour table, record a snapshot).

Early stopping watches the validation loss; when it has not improved by ``min_delta``
for ``patience`` epochs, training stops and the parameters of the best epoch are restored.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from perslib._core.runtime import progress_enabled, torch_threads

__all__ = [
    "Callback",
    "PlateauDecay",
    "TrainConfig",
    "iterate_minibatches",
    "split_validation",
    "train_loop",
    "train_module",
]


@dataclass
class TrainConfig:
    """Settings of the training loop."""

    epochs: int = 100  # most passes over the training set
    batch_size: int = 64  # samples per minibatch
    lr: float = 1e-3  # Adam learning rate (used by train_module)
    weight_decay: float = 0.0  # Adam weight decay (used by train_module)
    patience: int = 10  # epochs without validation improvement before stopping; 0 = never stop early
    min_delta: float = 1e-4  # smallest decrease of the validation loss that counts as improvement
    restore_best: bool = True  # reload the parameters of the best validation epoch at the end
    progress: bool | None = None  # tqdm bar; None follows the PERSLIB_PROGRESS variable
    desc: str = "training"  # label of the progress bar
    cpu_threads: int | None = 1  # torch CPU threads while training (1 is fastest for small nets); None keeps torch's

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.patience < 0:
            raise ValueError(f"patience must be >= 0, got {self.patience!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")


class Callback(Protocol):
    """Hooks the loop calls at epoch boundaries; implement either or both."""

    def on_epoch_start(self, epoch: int) -> None:
        """Before epoch ``epoch + 1``: ``epoch`` epochs have been completed (0 before the first)."""

    def on_epoch_end(self, epoch: int, row: dict) -> None:
        """After epoch ``epoch`` (1-based), with its history row (losses, ``val_loss``)."""


class PlateauDecay:
    """Multiply the learning rate by ``factor`` after ``patience`` epochs without validation improvement.

    A training callback (``torch.optim.lr_scheduler.ReduceLROnPlateau``'s rule, for any
    object with ``param_groups``): it reads the epoch's ``val_loss`` and counts an epoch
    as an improvement when the loss drops by more than ``min_delta`` below the best so
    far (the early-stopping rule of :func:`train_loop`). Epochs without ``val_loss``
    are ignored. It writes the rate each epoch ran at into the epoch's history row
    (column ``lr``, the first parameter group's).

    Parameters
    ----------
    optimizer : object with ``param_groups`` (list of dicts with ``"lr"``)
    factor : float
        In (0, 1).
    patience : int
        Epochs without improvement before each decay.
    min_delta : float, default=1e-4

    Attributes
    ----------
    decays : list of int
        Epochs after which the learning rate was decayed.
    """

    def __init__(self, optimizer, factor: float, patience: int, min_delta: float = 1e-4) -> None:
        if not 0 < factor < 1:
            raise ValueError(f"factor must be in (0, 1), got {factor!r}")
        self.optimizer, self.factor, self.patience, self.min_delta = optimizer, factor, int(patience), min_delta
        self.best, self.bad, self.decays = np.inf, 0, []

    def on_epoch_end(self, epoch: int, row: dict) -> None:
        row["lr"] = self.optimizer.param_groups[0]["lr"]  # the epoch's rate, into the history
        val = row.get("val_loss")
        if val is None:
            return
        if val < self.best - self.min_delta:
            self.best, self.bad = val, 0
            return
        self.bad += 1
        if self.bad >= self.patience:
            self.bad = 0
            self.decays.append(epoch)
            for group in self.optimizer.param_groups:
                group["lr"] *= self.factor


def split_validation(
    n: int, val_fraction: float, rng: np.random.Generator, stratify: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` into training and validation indices.

    Parameters
    ----------
    n : int
        Number of samples.
    val_fraction : float
        Fraction held out, in [0, 1). 0 gives an empty validation set.
    rng : numpy.random.Generator
        Source of randomness.
    stratify : ndarray of shape (n,), optional
        Labels to stratify on (each label keeps its share in both parts).

    Returns
    -------
    train_idx, val_idx : ndarray of int
    """
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    if val_fraction == 0 or n < 2:
        return np.arange(n), np.arange(0)
    if stratify is None:
        perm = rng.permutation(n)
        n_val = max(1, int(round(val_fraction * n)))
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])
    train, val = [], []
    for label in np.unique(stratify):
        idx = rng.permutation(np.flatnonzero(stratify == label))
        n_val = int(round(val_fraction * len(idx)))
        if len(idx) > 1:
            n_val = min(max(n_val, 1), len(idx) - 1)
        else:
            n_val = 0
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def iterate_minibatches(
    tensors: Sequence[torch.Tensor], batch_size: int, generator: torch.Generator | None = None, shuffle: bool = True
):
    """Yield tuples of aligned minibatches from ``tensors`` (all of equal first dimension)."""
    n = tensors[0].shape[0]
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    order = order.to(tensors[0].device)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        yield tuple(t[idx] for t in tensors)


def train_loop(
    step: Callable[[tuple[torch.Tensor, ...]], float | dict],
    train_tensors: Sequence[torch.Tensor],
    config: TrainConfig,
    *,
    module: nn.Module,
    evaluate: Callable[[], float] | None = None,
    generator: torch.Generator | None = None,
    callbacks: Sequence[Callback] = (),
) -> pd.DataFrame:
    """Run minibatch epochs with optional early stopping.

    Parameters
    ----------
    step : callable
        ``step(batch) -> loss`` performs one parameter update on ``batch`` (a tuple of
        tensors sliced from ``train_tensors``) and returns the loss as a float, or a dict
        of named floats whose ``"loss"`` entry is the one tracked.
    train_tensors : sequence of torch.Tensor
        Aligned tensors of shape (n, ...), already on the training device.
    config : TrainConfig
    module : torch.nn.Module
        Holds every trained parameter; its state is snapshotted at the best epoch.
    evaluate : callable, optional
        ``evaluate() -> float`` validation loss, called after each epoch in eval mode.
        Without it, no early stopping happens.
    generator : torch.Generator, optional
        Drives the minibatch order (seed it for reproducible runs).
    callbacks : sequence of Callback, optional
        Objects whose ``on_epoch_start(epoch)`` / ``on_epoch_end(epoch, row)`` run at
        every epoch boundary, in order.

    Returns
    -------
    pandas.DataFrame
        One row per epoch: ``epoch``, ``train_loss``, ``val_loss`` and any other named
        quantity returned by ``step`` (averaged over the epoch's minibatches).
    """
    on_cpu = all(t.device.type == "cpu" for t in train_tensors)
    with torch_threads(config.cpu_threads if on_cpu else None):
        return _run_epochs(step, train_tensors, config, module, evaluate, generator, callbacks)


def _snapshot(module: nn.Module) -> dict:
    """A detached copy of ``module.state_dict()`` (tensors cloned; other entries deep-copied)."""
    state = module.state_dict()
    snapshot = type(state)(
        (k, v.detach().clone() if torch.is_tensor(v) else copy.deepcopy(v)) for k, v in state.items()
    )
    metadata = getattr(state, "_metadata", None)
    if metadata is not None:
        snapshot._metadata = copy.deepcopy(metadata)
    return snapshot


def _hooks(callbacks, name):
    return [getattr(cb, name) for cb in callbacks if hasattr(cb, name)]


def _run_epochs(step, train_tensors, config, module, evaluate, generator, callbacks) -> pd.DataFrame:
    starts, ends = _hooks(callbacks, "on_epoch_start"), _hooks(callbacks, "on_epoch_end")
    rows = []
    best = np.inf
    best_state = None
    bad_epochs = 0
    bar = tqdm(
        range(1, config.epochs + 1), desc=config.desc, disable=not progress_enabled(config.progress), leave=False
    )
    for epoch in bar:
        for hook in starts:
            hook(epoch - 1)
        module.train()
        sums: dict[str, float] = {}
        n_batches = 0
        for batch in iterate_minibatches(train_tensors, config.batch_size, generator):
            out = step(batch)
            out = {"loss": float(out)} if not isinstance(out, dict) else {k: float(v) for k, v in out.items()}
            for key, value in out.items():
                sums[key] = sums.get(key, 0.0) + value
            n_batches += 1
        row = {"epoch": epoch, "train_loss": sums.pop("loss") / n_batches}
        row.update({k: v / n_batches for k, v in sums.items()})
        if not np.isfinite(row["train_loss"]):
            raise FloatingPointError(
                f"training loss became {row['train_loss']} at epoch {epoch}; lower lr or check the input scaling"
            )
        if evaluate is not None:
            module.eval()
            with torch.no_grad():
                val = float(evaluate())
            row["val_loss"] = val
            if val < best - config.min_delta:
                best, bad_epochs = val, 0
                if config.restore_best:
                    best_state = _snapshot(module)
            else:
                bad_epochs += 1
            bar.set_postfix(train=f"{row['train_loss']:.4f}", val=f"{val:.4f}")
        else:
            bar.set_postfix(train=f"{row['train_loss']:.4f}")
        rows.append(row)
        for hook in ends:
            hook(epoch, row)
        if evaluate is not None and config.patience and bad_epochs >= config.patience:
            break
    bar.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return pd.DataFrame(rows)


def train_module(
    module: nn.Module,
    loss_fn: Callable[..., torch.Tensor],
    train_tensors: Sequence[torch.Tensor],
    config: TrainConfig,
    *,
    val_tensors: Sequence[torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
) -> pd.DataFrame:
    """Train ``module`` with Adam on ``loss_fn(module, *batch)``; the plain case of :func:`train_loop`.

    Parameters
    ----------
    module : torch.nn.Module
    loss_fn : callable
        ``loss_fn(module, *batch) -> scalar tensor`` (mean over the batch).
    train_tensors, val_tensors : sequence of torch.Tensor
        Aligned tensors on the module's device. Without ``val_tensors`` (or with an
        empty one) the loop runs all epochs.
    config : TrainConfig
    generator : torch.Generator, optional

    Returns
    -------
    pandas.DataFrame
        The per-epoch history (see :func:`train_loop`).
    """
    optimizer = torch.optim.Adam(module.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    def step(batch):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(module, *batch)
        loss.backward()
        optimizer.step()
        return loss.item()

    evaluate = None
    if val_tensors is not None and len(val_tensors) and val_tensors[0].shape[0] > 0:

        def evaluate():
            return loss_fn(module, *val_tensors).item()

    return train_loop(step, train_tensors, config, module=module, evaluate=evaluate, generator=generator)
