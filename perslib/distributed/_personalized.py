"""Data-parallel training of personalized regression (:class:`PersonalizedModule`) on torch.distributed.

The shared tensors (the dictionary Q, the covariate metric, the temperature, the
encoder) are replicated and their gradients all-reduced (averaged) before every step.
The per-sample table (z_i, or θ_i at full rank) is replicated too, but only the rows a
rank's slice touches (its samples and their partners) carry gradient there, and only
those rows travel: an all-gather of (row, gradient) pairs, summed and divided by the
world size, after which every rank applies the same lazy (SparseAdam) update to the
union of touched rows. Each row's forward and backward is therefore computed only on
the rank whose slice holds it or a partner of it; the rows are kept identical
everywhere so that partners may cross shards, exactly as in one process.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression, Ridge

from perslib._core.estimator import standardize_target
from perslib._core.runtime import seeded_torch, torch_threads
from perslib._core.validation import check_array
from perslib.distributed._armed import _check_common
from perslib.distributed._result import DistributedFit
from perslib.distributed._runtime import (
    AveragedOptimizer,
    DistInfo,
    broadcast_module,
    global_sum,
    init_distributed,
    rank_batches,
)
from perslib.personalized._distances import CovariateSpace
from perslib.personalized._module import Objective, PersonalizedModule
from perslib.personalized._partners import PartnerTable

__all__ = ["fit_personalized_ddp"]


def fit_personalized_ddp(
    estimator,
    X,
    y,
    covariates,
    *,
    steps: int,
    batch_size: int | None = None,
    seed: int = 0,
    info: DistInfo | None = None,
) -> DistributedFit:
    """Train a personalized-regression module data-parallel for ``steps`` optimizer steps.

    Call it on every rank (under ``torchrun``) with the same full data. Every sample is
    trained (no held-out split, no early stopping, no ``rank="auto"`` search).

    Parameters
    ----------
    estimator : PersonalizedRegressor or PersonalizedClassifier
        Unfitted; its parameters are read (``rank`` must be an int or None).
    X : array-like of shape (n, p)
    y : array-like of shape (n,)
    covariates : array-like or DataFrame of shape (n, K)
    steps : int
        Optimizer steps, one global minibatch each. The partner table is refreshed at
        the start of every ``refresh_every``-th epoch (``"auto"``: every epoch), on every
        rank from the same seeded generator.
    batch_size : int, optional
        Global minibatch, a multiple of the world size. Default: ``estimator.batch_size``
        (512 for ``"auto"``, capped at n).
    seed : int, default=0
    info : DistInfo, optional

    Returns
    -------
    DistributedFit
        ``module`` is the trained :class:`PersonalizedModule` (rows in sample order);
        ``meta`` holds ``x_mean``/``x_scale``, ``y_mean``/``y_scale``, ``rank``,
        ``world_size``, ``batch_size``, ``steps``, ``step_time`` and ``replica_divergence``.

    Notes
    -----
    Every term is a mean over the minibatch's samples or pairs, whose gradients the
    processes average; the closed-form scale s of ``"bound"`` / ``"match"`` and the
    transfer temperature's neighbourhood scale are ratios of sums, which are summed over
    the processes first (``PersonalizedModule.loss(batch_sum=...)``). So the result equals
    one process's with the same global batch, up to float rounding — until a partner
    refresh meets near-tied neighbours, which rounding can order differently.
    """
    from perslib.personalized import PersonalizedClassifier, PersonalizedRegressor

    if not isinstance(estimator, (PersonalizedRegressor, PersonalizedClassifier)):
        raise ValueError(
            f"estimator must be a PersonalizedRegressor or PersonalizedClassifier, got {type(estimator).__name__}"
        )
    estimator._validate_params()
    if estimator.rank == "auto":
        raise ValueError("rank='auto' is not supported data-parallel: set the estimator's rank to an int or None")
    info = info if info is not None else init_distributed()
    classifier = isinstance(estimator, PersonalizedClassifier)
    Xa = check_array(X, "X", ndim=2)
    n = len(Xa)
    ya = np.asarray(y)
    if ya.shape != (n,):
        raise ValueError(f"y must have shape ({n},) to match X, got {ya.shape}")
    if covariates is None or len(covariates) != n:
        raise ValueError(f"covariates must have {n} rows (one per sample of X)")
    default_batch = min(512, n) if estimator.batch_size == "auto" else estimator.batch_size
    batch_size = _check_common(steps, default_batch if batch_size is None else batch_size, n, info)
    meta = {"kind": "personalized", "classifier": classifier, "rank": estimator.rank}
    if classifier:
        classes, target = np.unique(ya, return_inverse=True)
        if len(classes) != 2:
            raise ValueError(f"y must have exactly two classes for PersonalizedClassifier, got {len(classes)}")
        meta["classes"] = classes.tolist()
        target = target.astype(np.float64)
    else:
        target, y_mean, y_scale = standardize_target(check_array(ya, "y", ndim=1), estimator.standardize)
        meta.update(y_mean=y_mean, y_scale=y_scale)
    x_mean = Xa.mean(0) if estimator.standardize else np.zeros(Xa.shape[1])
    sd = Xa.std(0) if estimator.standardize else np.ones(Xa.shape[1])
    x_scale = np.where(sd > 0, sd, 1.0)
    Xs = (Xa - x_mean) / x_scale
    meta.update(x_mean=x_mean.tolist(), x_scale=x_scale.tolist())
    if classifier:
        pop = LogisticRegression(C=1.0 / max(estimator.population_alpha, 1e-12), max_iter=1000).fit(Xs, target)
        theta_pop = np.append(pop.coef_[0], pop.intercept_[0])
    else:
        pop = Ridge(alpha=estimator.population_alpha).fit(Xs, target)
        theta_pop = np.append(pop.coef_, pop.intercept_)
    space = CovariateSpace(estimator.categorical_covariates).fit(covariates)
    cov = space.transform(covariates)
    dev = info.device

    def tensor(a, dtype=torch.float32):
        return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=dev)

    Xt, yt = tensor(np.hstack([Xs, np.ones((n, 1))])), tensor(target)
    Ut, Ft = tensor(cov), tensor(space.feature_matrix(cov))
    categorical = torch.as_tensor(space.is_categorical_, device=dev)
    objective = Objective(
        task="logistic" if classifier else "linear",
        kind=estimator.objective,
        matching_weight=100.0 if estimator.matching_weight is None else estimator.matching_weight,
        pull=estimator.pull,
        metric_penalty=estimator.metric_penalty,
        metric_learning=estimator.metric_learning,
        latent_decay=estimator.latent_decay,
        encoder_weight=estimator.encoder_weight,
    )
    every = 1 if estimator.refresh_every == "auto" else int(estimator.refresh_every)
    rng = np.random.default_rng(seed)
    with seeded_torch(seed, dev), torch_threads(1 if dev.type == "cpu" else None):
        module = PersonalizedModule(
            n,
            Xt.shape[1],
            cov.shape[1],
            estimator.rank,
            theta_pop,
            rng,
            encoder_in=Ft.shape[1] if estimator.encoder == "mlp" else None,
            encoder_hidden=estimator.encoder_hidden,
            objective=objective,
        ).to(dev)
        broadcast_module(module, info)
        partners = PartnerTable(estimator.neighbors, estimator.n_neighbors, every, module, space, cov, rng)
        optimizer = AveragedOptimizer(module.configure_optimizers(estimator.lr), module.parameters(), info)
        module.train()
        batch_sum = global_sum(info)  # the closed-form scale and temperature over the global batch
        rows, epochs, current = [], [], -1
        t0 = time.perf_counter()
        for epoch, idx in rank_batches(n, batch_size, int(steps), seed, info.rank, info.world_size):
            if epoch != current:  # the training loop's epoch-start callback
                partners.on_epoch_start(epoch)
                current = epoch
            idx = idx.to(dev)
            optimizer.zero_grad(set_to_none=True)
            loss, terms = module.loss(idx, partners.table[idx], Xt, yt, Ut, Ft, categorical, batch_sum=batch_sum)
            loss.backward()
            optimizer.step()
            rows.append([loss.item(), *(v.item() for v in terms.values())])
            epochs.append(epoch)
        step_time = (time.perf_counter() - t0) / int(steps)
        module.eval()
    return DistributedFit.collect(
        module,
        rows,
        ["loss", *terms],
        epochs,
        info,
        meta,
        batch_size=batch_size,
        steps=int(steps),
        seed=int(seed),
        step_time=step_time,
    )
