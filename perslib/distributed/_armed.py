"""Data-parallel training of ARMED (:class:`perslib.armed.ARMEDNet`) on torch.distributed.

Every rank holds a full replica of the network: the fixed-effects network, the
adversary and the random-effects table (K rows, small: replicated, not sharded). Each
step, every rank runs the library's own :meth:`ARMEDNet.training_step` on its slice of
the global minibatch, with the main and adversary optimizers wrapped so that each
``step()`` first averages that optimizer's gradients over the ranks; the adversary's
step (inside ``training_step``, before the main one) and the main step are thus each
synchronized, as two separate DDP modules would be. The random-effects rows are in the
main optimizer: a cluster present only on one rank's slice gets that rank's gradient
divided by W, which is exactly its share of the global minibatch's mean loss.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone
from sklearn.preprocessing import StandardScaler

from perslib._core.estimator import standardize_target
from perslib._core.runtime import seeded_torch, torch_threads
from perslib._core.validation import check_array, check_groups, sorted_unique
from perslib.distributed._result import DistributedFit
from perslib.distributed._runtime import (
    AveragedOptimizer,
    DistInfo,
    broadcast_module,
    init_distributed,
    rank_batches,
)

__all__ = ["fit_armed_ddp"]


def _check_common(steps, batch_size, n, info) -> int:
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or not 1 <= batch_size <= n:
        raise ValueError(f"batch_size (the global batch) must be an int in [1, n_samples={n}], got {batch_size!r}")
    if batch_size % info.world_size:
        raise ValueError(
            f"batch_size (the global batch, {batch_size}) must be a multiple of the number of processes "
            f"({info.world_size})"
        )
    return int(batch_size)


def fit_armed_ddp(
    estimator,
    X,
    y,
    groups,
    *,
    steps: int,
    batch_size: int | None = None,
    seed: int = 0,
    info: DistInfo | None = None,
) -> DistributedFit:
    """Train an ARMED network data-parallel for ``steps`` optimizer steps.

    Call it on every rank (under ``torchrun``) with the same full data: each rank
    trains on its slice of every global minibatch. One process (no ``torchrun``) runs
    the same code without communication, so its result is the reference the ranks reproduce.

    Parameters
    ----------
    estimator : ARMEDClassifier or ARMEDRegressor
        Unfitted; only its parameters are read (network, objective, ``lr``,
        ``weight_decay``, ``re_lr_scale``, ``standardize``, and ``batch_size`` as the default
        global batch). Early stopping, the validation split, the closed-form refit and the
        z-predictor of ``estimator.fit`` are not run.
    X : array-like of shape (n, p)
    y : array-like of shape (n,)
        Two classes for the classifier, numbers for the regressor.
    groups : array-like of shape (n,)
        Cluster labels.
    steps : int
        Optimizer steps (each one global minibatch; epochs follow each other).
    batch_size : int, optional
        The global minibatch, a multiple of the world size; each rank takes
        ``batch_size / world_size`` of it. Default: ``estimator.batch_size`` (``"auto"`` resolved
        for all ``n_samples`` rows, as in ``fit``); the learning rate likewise.
    seed : int, default=0
        Seeds the initialisation, the random-effect draws and the minibatch order
        (identical on every rank).
    info : DistInfo, optional
        From :func:`init_distributed` (called here when not given).

    Returns
    -------
    DistributedFit
        ``module`` is the trained :class:`ARMEDNet`; ``meta`` holds ``groups``,
        ``x_mean``/``x_scale``, ``y_mean``/``y_scale`` (regressor), ``classes``
        (classifier), the network ``config``, ``world_size``, ``batch_size``, ``steps``,
        ``step_time`` (seconds per step) and ``replica_divergence`` (largest parameter
        difference between ranks at the end; 0 when in sync).
    """
    from perslib.armed import ARMEDClassifier, ARMEDRegressor

    if not isinstance(estimator, (ARMEDClassifier, ARMEDRegressor)):
        raise ValueError(f"estimator must be an ARMEDClassifier or ARMEDRegressor, got {type(estimator).__name__}")
    estimator._validate_params()
    info = info if info is not None else init_distributed()
    classifier = isinstance(estimator, ARMEDClassifier)
    Xa = check_array(X, "X", ndim=2)
    n = len(Xa)
    ya = np.asarray(y)
    if ya.shape != (n,):
        raise ValueError(f"y must have shape ({n},) to match X, got {ya.shape}")
    g = check_groups(groups, n)
    if batch_size is not None:
        _check_common(steps, batch_size, n, info)
    # "auto" batch_size / lr resolved as in fit (lr="auto" follows the batch actually used)
    chosen = estimator if batch_size is None else clone(estimator).set_params(batch_size=int(batch_size))
    batch_size, lr = chosen._training_schedule(n)
    batch_size = _check_common(steps, batch_size, n, info)
    meta = {"kind": "armed", "classifier": classifier}
    if classifier:
        classes, target = np.unique(ya, return_inverse=True)
        if len(classes) != 2:
            raise ValueError(f"y must have exactly two classes for ARMEDClassifier, got {len(classes)}")
        meta["classes"] = classes.tolist()
        target = target.astype(np.float32)
    else:
        target, y_mean, y_scale = standardize_target(check_array(ya, "y", ndim=1), estimator.standardize)
        meta.update(y_mean=y_mean, y_scale=y_scale)
    scaler = StandardScaler(with_mean=estimator.standardize, with_std=estimator.standardize).fit(Xa)
    meta.update(x_mean=np.broadcast_to(scaler.mean_ if scaler.mean_ is not None else 0.0, Xa.shape[1]).tolist())
    meta.update(x_scale=np.broadcast_to(scaler.scale_ if scaler.scale_ is not None else 1.0, Xa.shape[1]).tolist())
    labels = sorted_unique(g)
    codes = pd.Index(labels).get_indexer(g)
    K = len(labels)
    meta["groups"] = labels.tolist()
    has_re = bool(estimator.random_effects) and (estimator.random_intercept or estimator.slopes != "none")
    use_adv = bool(estimator.adversary) and K >= 2
    dev = info.device
    with seeded_torch(seed, dev), torch_threads(1 if dev.type == "cpu" else None):
        # the estimator's own network and objective, built on a clone sized for this data
        spec = clone(estimator)
        spec.n_features_in_, spec.n_clusters_, spec.device_ = Xa.shape[1], K, dev
        net = spec._build_network(use_adv).to(dev)
        broadcast_module(net, info)
        objective = spec._objective(codes, n, has_re, use_adv)
        opt_main, opt_adv = net.configure_optimizers(lr, estimator.weight_decay, estimator.re_lr_scale)
        opt_main = AveragedOptimizer(opt_main, net.main_parameters(), info)
        if opt_adv is not None:
            opt_adv = AveragedOptimizer(opt_adv, net.adversary.parameters(), info)
        Xt = torch.as_tensor(scaler.transform(Xa), dtype=torch.float32, device=dev)
        zt = torch.as_tensor(codes, dtype=torch.int64, device=dev)
        yt = torch.as_tensor(target, dtype=torch.float32, device=dev)
        net.train()
        rows, epochs = [], []
        t0 = time.perf_counter()
        for epoch, idx in rank_batches(n, batch_size, int(steps), seed, info.rank, info.world_size):
            idx = idx.to(dev)
            rows.append(net.training_step((Xt[idx], zt[idx], yt[idx]), objective, opt_main, opt_adv))
            epochs.append(epoch)
        step_time = (time.perf_counter() - t0) / int(steps)
        net.eval()
    names = list(rows[0])
    return DistributedFit.collect(
        net,
        [[r[k] for k in names] for r in rows],
        names,
        epochs,
        info,
        meta,
        config=net.config,
        batch_size=batch_size,
        steps=int(steps),
        seed=int(seed),
        step_time=step_time,
    )
