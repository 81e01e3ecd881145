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

__all__ = ["NEIGHBOR_MODES", "PartnerTable", "Snapshots", "knn_table", "random_partners"]

NEIGHBOR_MODES = ("covariate", "latent", "random")


# ---------------------------------------------------------------- neighbour search
def knn_table(
    points: np.ndarray,
    k: int,
    metric: str = "manhattan",
    query: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
    fast: bool = False,
) -> np.ndarray:
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
    """
    n = points.shape[0]
    k_eff = min(k, n - 1 if query is None else n)
    if rng is not None:
        eps = 1e-9 * max(float(np.abs(points).max(initial=0.0)), 1.0)
        points = points + eps * rng.uniform(-1.0, 1.0, size=points.shape)
    if fast:
        return _fast_knn(points, k, k_eff, metric, query)
    nn = NearestNeighbors(n_neighbors=max(k_eff, 1), algorithm="kd_tree", metric=metric).fit(points)
    if query is not None:
        ind = nn.kneighbors(query, n_neighbors=k_eff, return_distance=False)
    else:
        ind = nn.kneighbors(n_neighbors=k_eff, return_distance=False)
    if k_eff < k:  # fewer candidates than asked for: repeat columns
        ind = ind[:, np.arange(k) % max(k_eff, 1)]
    return ind.astype(np.int64)


def _fast_knn(points, k, k_eff, metric, query) -> np.ndarray:
    """:func:`knn_table` by ``scipy.spatial.cKDTree`` (Manhattan p=1 or Euclidean p=2), all cores."""
    p_norm = {"manhattan": 1, "euclidean": 2}[metric]
    tree = cKDTree(points, balanced_tree=False, compact_nodes=False)
    k_eff = max(k_eff, 1)
    if query is not None:
        ind = tree.query(query, k=k_eff, p=p_norm, workers=-1)[1].reshape(len(query), k_eff)
    else:
        n = points.shape[0]
        ind = tree.query(points, k=k_eff + 1, p=p_norm, workers=-1)[1].reshape(n, k_eff + 1)
        own = ind == np.arange(n)[:, None]
        own[~own.any(1), -1] = True  # a sample not among its own k + 1 (exact duplicates): drop the farthest
        own[np.cumsum(own, 1) > 1] = False  # keep exactly one dropped column per row
        ind = ind[~own].reshape(n, k_eff)
    if k_eff < k:
        ind = ind[:, np.arange(k) % k_eff]
    return ind.astype(np.int64)


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
    """

    def __init__(self, mode, k, every, module, space, covariates, rng, fast: bool = False) -> None:
        self.mode, self.k, self.every, self.fast = mode, int(k), int(every), bool(fast)
        self.module, self.space, self.covariates, self.rng = module, space, covariates, rng
        self.table: torch.Tensor | None = None

    def search_points(self) -> np.ndarray:
        """The trained samples in the space whose Manhattan distance is the learned metric's."""
        shares = self.module.shares().detach().cpu().numpy().astype(np.float64)
        return self.space.search_matrix(self.covariates, shares)

    def compute(self) -> np.ndarray:
        n = len(self.covariates)
        if self.mode == "random":
            return random_partners(n, self.k, self.rng)
        if self.mode == "covariate":
            return knn_table(self.search_points(), self.k, rng=self.rng, fast=self.fast)
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
