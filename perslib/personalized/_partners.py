"""Partner pairs for distance matching: who is compared with whom, refreshed as training goes.

Every training sample carries ``k`` partners; the matching term compares their parameter
distances with their covariate distances. Partners are chosen (``neighbors=``):

* ``"covariate"``: the ``k`` nearest samples under the current learned covariate metric
  (KD-tree, O(n log n));
* ``"latent"``: the ``k`` nearest in ``z`` (low rank) or in the weighted parameter space
  (full rank);
* ``"random"``: ``k`` uniformly random partners.

Memory is O(n·k): no ``n × n`` matrix is ever formed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.spatial import cKDTree
from sklearn.neighbors import NearestNeighbors

from perslib.personalized._distances import pair_deltas

__all__ = ["NEIGHBOR_MODES", "PartnerTable", "Snapshots", "knn_table", "random_partners"]

NEIGHBOR_MODES = ("covariate", "latent", "random")
DELTA_SLICE = 65_536  # rows per slice when the pair distances of a new partner table are computed


# ---------------------------------------------------------------- neighbour search
def knn_table(
    points: np.ndarray,
    k: int,
    metric: str = "manhattan",
    query: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
    fast: bool = False,
    return_tree: bool = False,
):
    """Indices of the ``k`` nearest rows of ``points`` (KD-tree, O(n log n)), shape (m, k).

    ``points`` has shape (n, D) and ``query`` (m, D) (``m = n`` without it). ``fast=True``
    (the large-n path) searches with SciPy's ``cKDTree`` on every core instead of
    scikit-learn's single-threaded tree: the same neighbours up to ties (≈ 2× less CPU at
    n = 10⁵, and parallel), but not necessarily in the same column order, so the
    default path keeps scikit-learn and its results bit for bit.

    Without ``query`` each row's own index is excluded (its k nearest *other* rows). With
    ``rng``, ties are broken at random: every point moves by a random amount far below any
    real distance (1e-9 of the largest coordinate), so that among equally distant
    candidates (samples that share their covariates, such as the students of one school)
    each sample gets its own random k, different at each call, instead of all of them the
    same lowest-numbered ones.

    ``return_tree=True`` (with ``fast``) also returns the ``cKDTree`` of ``points``, for
    later queries (:meth:`PartnerTable.nearest`).
    """
    n = points.shape[0]
    k_eff = min(k, n - 1 if query is None else n)
    if rng is not None:
        eps = 1e-9 * max(float(np.abs(points).max(initial=0.0)), 1.0)
        points = points + eps * rng.uniform(-1.0, 1.0, size=points.shape)
    if fast:
        ind, tree = _fast_knn(points, k, k_eff, metric, query)
        return (ind, tree) if return_tree else ind
    if return_tree:
        raise ValueError("return_tree=True needs fast=True (the cKDTree engine)")
    nn = NearestNeighbors(n_neighbors=max(k_eff, 1), algorithm="kd_tree", metric=metric).fit(points)
    if query is not None:
        ind = nn.kneighbors(query, n_neighbors=k_eff, return_distance=False)
    else:
        ind = nn.kneighbors(n_neighbors=k_eff, return_distance=False)
    if k_eff < k:  # fewer candidates than asked for: repeat columns
        ind = ind[:, np.arange(k) % max(k_eff, 1)]
    return ind.astype(np.int64)


def _fast_knn(points, k, k_eff, metric, query) -> tuple[np.ndarray, cKDTree]:
    """:func:`knn_table` by ``scipy.spatial.cKDTree`` (Manhattan p=1 or Euclidean p=2), all cores; and the tree."""
    p_norm = {"manhattan": 1, "euclidean": 2}[metric]
    tree = cKDTree(points, balanced_tree=False, compact_nodes=False)
    k_eff = max(k_eff, 1)
    if query is not None:
        ind = tree.query(query, k=k_eff, p=p_norm, workers=-1)[1].reshape(len(query), k_eff)
    else:
        n = points.shape[0]
        # queried in the tree's own leaf order, neighbouring queries walk the same nodes (≈ 2× faster at
        # n = 10⁶ than in row order), then put back in row order: the same neighbours
        order = tree.indices
        ind = np.empty((n, k_eff + 1), dtype=np.int64)
        ind[order] = tree.query(points[order], k=k_eff + 1, p=p_norm, workers=-1)[1].reshape(n, k_eff + 1)
        if np.array_equal(ind[:, 0], np.arange(n)):  # each sample first in its own list (no exact duplicates)
            ind = ind[:, 1:]
        else:
            own = ind == np.arange(n)[:, None]
            own[~own.any(1), -1] = True  # a sample not among its own k + 1 (exact duplicates): drop the farthest
            own[np.cumsum(own, 1) > 1] = False  # keep exactly one dropped column per row
            ind = ind[~own].reshape(n, k_eff)
    if k_eff < k:
        ind = ind[:, np.arange(k) % k_eff]
    return ind.astype(np.int64), tree


def random_partners(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` uniformly random partners per sample, never the sample itself, shape (n, k)."""
    if n < 2:
        return np.zeros((n, k), dtype=np.int64)
    offset = rng.integers(1, n, size=(n, k))
    return (np.arange(n)[:, None] + offset) % n


class PartnerTable:
    """The partner table of the training samples, a training callback.

    Parameters
    ----------
    mode : {"covariate", "latent", "random"}
    k : int
        Partners per sample.
    every : int
        Epochs between refreshes (the first is before epoch 1).
    module : PersonalizedModule
        Gives the current shares (``"covariate"``) or latent positions (``"latent"``).
    space : CovariateSpace
    covariates : ndarray of shape (n, K)
        Encoded covariates of the trained samples.
    rng : numpy.random.Generator
        Draws the random partners.
    fast : bool, default=False
        Search with :func:`knn_table`'s ``fast`` engine (the large-n path).

    Attributes
    ----------
    table : torch.LongTensor of shape (n, k)
        Row numbers (among the trained samples) of each sample's partners.
    tree : scipy.spatial.cKDTree or None
        ``fast`` and ``"covariate"``: the tree of the last refresh, built on the trained
        samples in the metric of ``tree_shares`` (:meth:`nearest` queries it).
    """

    def __init__(self, mode, k, every, module, space, covariates, rng, fast: bool = False) -> None:
        self.mode, self.k, self.every, self.fast = mode, int(k), int(every), bool(fast)
        self.module, self.space, self.covariates, self.rng = module, space, covariates, rng
        self.table: torch.Tensor | None = None
        self.tree: cKDTree | None = None  # fast "covariate" path: the last refresh's tree ...
        self.tree_shares: np.ndarray | None = None  # ... and the shares it was built with
        self._deltas: torch.Tensor | None = None

    def current_shares(self) -> np.ndarray:
        """The module's shares π now, as float64 NumPy (K,)."""
        return self.module.shares().detach().cpu().numpy().astype(np.float64)

    def search_points(self, shares: np.ndarray | None = None) -> np.ndarray:
        """The trained samples in the space whose Manhattan distance is the learned metric's (``shares``: π, default now)."""
        return self.space.search_matrix(self.covariates, self.current_shares() if shares is None else shares)

    def compute(self) -> np.ndarray:
        n = len(self.covariates)
        if self.mode == "random":
            return random_partners(n, self.k, self.rng)
        if self.mode == "covariate":
            if not self.fast:
                return knn_table(self.search_points(), self.k, rng=self.rng)
            self.tree_shares = self.current_shares()
            table, self.tree = knn_table(
                self.search_points(self.tree_shares), self.k, rng=self.rng, fast=True, return_tree=True
            )
            return table
        module = self.module
        with torch.no_grad():
            if module.rank is None:
                return knn_table(
                    (module.theta * module.theta_metric()).cpu().numpy(),
                    self.k,
                    metric="manhattan",
                    rng=self.rng,
                    fast=self.fast,
                )
            return knn_table(module.Z.cpu().numpy(), self.k, metric="euclidean", rng=self.rng, fast=self.fast)

    def on_epoch_start(self, epoch: int) -> None:
        if epoch % self.every == 0:
            self.table = torch.as_tensor(self.compute(), device=self.module.theta_pop.device)
            self._deltas = None

    def nearest(self, covariates: np.ndarray, k: int) -> np.ndarray | None:
        """The ``k`` nearest trained samples of query rows under the metric of the last refresh.

        ``covariates`` (m, K) encoded; returns row numbers (m, k) among the trained samples.
        Answered from the tree the last ``"covariate"`` refresh built on the fast path
        (no new tree); ``None`` when there is none (other modes, the default path).
        """
        tree = self.tree
        if tree is None:
            return None
        k = min(int(k), tree.n)
        ind = tree.query(self.space.search_matrix(covariates, self.tree_shares), k=k, p=1, workers=-1)[1]
        return ind.reshape(len(covariates), k).astype(np.int64)

    def deltas(self, U: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        """Per-covariate distances Δ_ij of every sample to each of its partners, shape (n, k, K).

        Computed once per refresh (in slices, so the temporaries stay small) from ``U``
        (n, K), the encoded covariates of the trained samples, as a tensor.
        """
        if self._deltas is None:
            table = self.table
            out = U.new_empty(table.shape + (U.shape[1],))
            for start in range(0, len(table), DELTA_SLICE):
                rows = table[start : start + DELTA_SLICE]
                out[start : start + len(rows)] = pair_deltas(
                    U[start : start + len(rows), None, :], U[rows], categorical
                )
            self._deltas = out
        return self._deltas


class Snapshots:
    """Parameters of the trained samples at chosen epoch counts, a training callback.

    ``values[e]`` is θ (standardized units, shape (n, p+1)) after ``e`` epochs; 0 is the
    initialisation. Epochs that training never reaches are absent.
    """

    def __init__(self, module, epochs: Sequence[int] | None) -> None:
        self.module = module
        self.epochs = set() if epochs is None else {int(e) for e in epochs}
        self.values: dict[int, np.ndarray] = {}

    def on_epoch_start(self, epoch: int) -> None:
        if epoch in self.epochs:
            with torch.no_grad():
                self.values[epoch] = self.module.all_params().cpu().numpy().astype(np.float64)
