"""Seeded simulators that return their own ground truth.

* :func:`make_personalized_regression` -- per-sample regression coefficients on curved
  arcs, one arc per latent process (the NeurIPS 2019 Figure 1 picture).
* :func:`make_spirals` -- ARMED's clustered two-spiral classification problem with
  per-cluster radius, slope and class-balance effects (TPAMI 2023, "Simulated spirals").
* :func:`perslib.data.images.make_cluster_images` -- bundled digits split into sites with
  per-site batch effects (its own module).

Every simulator draws all of its randomness from ``random_state`` (None, an int or a
``numpy.random.Generator``); the global NumPy state is never touched, and the same
seed gives bit-identical outputs.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import pandas as pd

from perslib._core.validation import check_random_state

__all__ = ["make_personalized_regression", "make_spirals"]


# --------------------------------------------------------------------------- validation
def _check_int(value, name, min_value=None, max_value=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    value = int(value)
    if min_value is not None and value < min_value:
        raise ValueError(f"{name} must be >= {min_value}, got {value}")
    if max_value is not None and value > max_value:
        raise ValueError(f"{name} must be <= {max_value}, got {value}")
    return value


def _check_float(value, name, min_value=None, max_value=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    if min_value is not None and value < min_value:
        raise ValueError(f"{name} must be >= {min_value}, got {value}")
    if max_value is not None and value > max_value:
        raise ValueError(f"{name} must be <= {max_value}, got {value}")
    return value


# ------------------------------------------------------------- personalized regression
_ARC_RADIUS = 1.0  # radius a of every process's arc in parameter space
_ARC_SPAN = np.pi  # angle swept along an arc as the position goes from 0 to 1
_ARC_GAP = 3.0  # distance between neighbouring arc centres (in units of the radius)
_PROCESS_HALF_WIDTH = 0.35  # u_process lies in [k - 0.35, k + 0.35] for process k
_MODULATOR_AMPLITUDE = 0.3  # largest shift one modulator covariate adds to a coordinate


def _arc_theta(process, position, modulators, n_features, n_processes):
    """The deterministic map (process, position, modulators) -> theta; see the docstring
    of :func:`make_personalized_regression` for the formula."""
    k = process.astype(np.float64)
    t = position
    alpha = 2.0 * np.pi * k / n_processes  # direction of process k's centre
    centre = _ARC_GAP / (2.0 * np.sin(np.pi / n_processes)) if n_processes > 1 else 0.0
    beta = alpha - _ARC_SPAN / 2.0 + _ARC_SPAN * t  # angle along the arc
    theta = np.empty((len(t), n_features), dtype=np.float64)
    theta[:, 0] = centre * np.cos(alpha) + _ARC_RADIUS * np.cos(beta)
    theta[:, 1] = centre * np.sin(alpha) + _ARC_RADIUS * np.sin(beta)
    for d in range(2, n_features):
        freq = 1.0 + 0.5 * (d - 1)
        theta[:, d] = _ARC_RADIUS * np.cos(freq * _ARC_SPAN * t + alpha + d)
    for j in range(modulators.shape[1]):
        loading = np.cos((j + 1.0) * (np.arange(n_features) + 1.0))
        theta += _MODULATOR_AMPLITUDE * np.sin(np.pi * modulators[:, j])[:, None] * loading[None, :]
    return theta


def make_personalized_regression(
    n_samples=2000,
    n_features=5,
    n_covariates=3,
    *,
    n_processes=3,
    n_irrelevant=1,
    task="linear",
    noise=0.5,
    random_state=None,
):
    r"""Simulate personalized regression data whose true coefficients lie on curved arcs.

    Each sample ``i`` belongs to a latent process ``k_i`` (balanced, in random order)
    and has a position ``t_i ~ U(0, 1)`` along that process's arc. Its coefficient
    vector ``theta_i`` is a deterministic, smooth and nonlinear function of the
    *relevant* covariates (``u_position``, ``u_process`` and any ``u_modulator_j``):

    .. math::

        \alpha_k &= 2\pi k / K, \qquad c = 3 / (2 \sin(\pi / K)), \qquad
        \beta_i = \alpha_{k_i} - \pi/2 + \pi t_i, \\
        \theta_{i,0} &= c \cos\alpha_{k_i} + \cos\beta_i, \qquad
        \theta_{i,1} = c \sin\alpha_{k_i} + \sin\beta_i, \\
        \theta_{i,d} &= \cos\big((1 + (d - 1)/2)\,\pi t_i + \alpha_{k_i} + d\big)
        \quad (d \ge 2), \\
        \theta_{i,d} &\mathrel{+}= 0.3 \sin(\pi v_{ij}) \cos\big((j + 1)(d + 1)\big)
        \quad \text{for each modulator } v_{ij} \sim U(-1, 1).

    In the first two coordinates every process traces a half circle of radius 1 that
    bulges outwards from a centre on a circle of radius ``c``, so neighbouring arc
    centres are 3 apart and distinct processes sit clearly apart; the remaining
    coordinates oscillate along the arc with growing frequency and a process-specific
    phase. (With ``n_processes=1`` the single centre is the origin.) Across samples the
    variance of a coordinate is about 3 for the first two coordinates at ``K = 3``
    (about ``c^2 / 2``, so it grows with ``K``) and 0.5 for the others.

    The process is revealed by ``u_process ~ U(k - 0.35, k + 0.35)`` (so
    ``round(u_process) == process`` exactly) but *not* by ``u_position``, whose range is
    the same for every process. The last ``n_irrelevant`` columns are pure
    ``N(0, 1)`` noise that shapes nothing. Features are ``X ~ N(0, I_p)``; there is
    **no intercept** (the true intercept is 0). Because ``X`` is independent of
    ``theta`` and the arcs are spread around the origin, a single pooled regression
    recovers only ``E[theta]`` and its parameter error is about the total variance of
    ``theta``.

    Parameters
    ----------
    n_samples : int, default=2000
        Number of samples ``n`` (>= 2).
    n_features : int, default=5
        Number of features ``p`` (>= 2), i.e. the length of each ``theta_i``.
    n_covariates : int, default=3
        Number of covariate columns of ``U``; must be >= ``n_irrelevant + 2``. Columns
        are ``u_position``, ``u_process``, then ``n_covariates - n_irrelevant - 2``
        relevant ``u_modulator_j`` (each ~ ``U(-1, 1)``, bending ``theta`` smoothly by
        at most 0.3 per coordinate), then ``u_irrelevant_j``.
    n_processes : int, default=3
        Number of latent processes ``K`` (>= 1), i.e. arcs in parameter space. At most
        ``n_samples``.
    n_irrelevant : int, default=1
        Number of pure-noise covariates (>= 0), placed last.
    task : {"linear", "logistic"}, default="linear"
        ``"linear"``: ``y = X theta_i + noise * eps`` with ``eps ~ N(0, 1)``.
        ``"logistic"``: ``y ~ Bernoulli(sigmoid(X theta_i))``. The same ``theta`` serves
        both tasks (a seed gives the same ``X``, ``U``, ``theta`` for either); with
        ``|theta_i|`` around 2.8 at the defaults the classes are balanced, learnable but
        not separable (the Bayes accuracy from the true ``theta`` is about 0.83).
    noise : float, default=0.5
        Standard deviation of the additive Gaussian noise (>= 0); ignored for
        ``task="logistic"``.
    random_state : None, int or numpy.random.Generator, default=None
        Seed of every random draw.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64
        Features, standard normal.
    y : ndarray of shape (n_samples,)
        float64 responses (``"linear"``) or int64 labels in {0, 1} (``"logistic"``).
    U : pandas.DataFrame of shape (n_samples, n_covariates), float64
        Covariates with the named columns described above.
    theta : ndarray of shape (n_samples, n_features), float64
        True per-sample coefficients (no intercept).
    process : ndarray of shape (n_samples,), int64
        True process label in ``0 .. n_processes - 1``.
    """
    n_samples = _check_int(n_samples, "n_samples", 2)
    n_features = _check_int(n_features, "n_features", 2)
    n_irrelevant = _check_int(n_irrelevant, "n_irrelevant", 0)
    n_covariates = _check_int(n_covariates, "n_covariates")
    if n_covariates < n_irrelevant + 2:
        raise ValueError(
            f"n_covariates must be >= n_irrelevant + 2 = {n_irrelevant + 2} "
            f"(u_position, u_process and the irrelevant ones), got {n_covariates}"
        )
    n_processes = _check_int(n_processes, "n_processes", 1, n_samples)
    if task not in ("linear", "logistic"):
        raise ValueError(f"task must be 'linear' or 'logistic', got {task!r}")
    noise = _check_float(noise, "noise", 0.0)
    rng = check_random_state(random_state)
    n_modulators = n_covariates - n_irrelevant - 2

    process = rng.permutation(np.arange(n_samples) % n_processes).astype(np.int64)
    position = rng.uniform(0.0, 1.0, n_samples)
    u_process = process + rng.uniform(-_PROCESS_HALF_WIDTH, _PROCESS_HALF_WIDTH, n_samples)
    modulators = rng.uniform(-1.0, 1.0, (n_samples, n_modulators))
    irrelevant = rng.standard_normal((n_samples, n_irrelevant))
    X = rng.standard_normal((n_samples, n_features))

    theta = _arc_theta(process, position, modulators, n_features, n_processes)
    eta = np.einsum("ij,ij->i", X, theta)
    if task == "linear":
        y = eta + noise * rng.standard_normal(n_samples)
    else:
        prob = 1.0 / (1.0 + np.exp(-eta))
        y = (rng.uniform(0.0, 1.0, n_samples) < prob).astype(np.int64)

    columns = {"u_position": position, "u_process": u_process}
    columns.update({f"u_modulator_{j}": modulators[:, j] for j in range(n_modulators)})
    columns.update({f"u_irrelevant_{j}": irrelevant[:, j] for j in range(n_irrelevant)})
    U = pd.DataFrame(columns)
    return X, y, U, theta, process


# ---------------------------------------------------------------------------- spirals
def make_spirals(
    n_clusters=10,
    n_per_cluster=1000,
    radius_sd=0.3,
    noise=0.1,
    *,
    degrees=360,
    mean_radius=1.0,
    slope_sd=0.0,
    confounded=False,
    ratio_sd=0.2,
    n_probes=2,
    probe_sd=0.2,
    probe_link="direct",
    as_frame=False,
    random_state=None,
):
    r"""Two interleaved spirals per cluster, with cluster-level random effects (ARMED).

    For cluster ``k`` and class ``c`` in {0, 1}, integer angles ``a ~ U{0, ...,
    degrees - 1}`` (in degrees, converted to radians) give the points

    .. math::

        (x_1, x_2) = \big(-\cos(a - c\pi),\ \sin(a - c\pi)\big)\, a\, r_k / \max(a)
        + \mathcal N(0, \text{noise}^2 I_2),

    where ``max(a)`` is the largest angle drawn for that class in that cluster. The
    cluster's radius is ``r_k ~ N(mean_radius, radius_sd^2)`` (a negative radius mirrors
    the spiral). A random slope then rescales the second coordinate,
    ``x_2 <- x_2 / (1 + s_k)`` with ``s_k ~ N(0, slope_sd^2)`` (``s_k = 0`` exactly when
    ``slope_sd = 0``).

    Non-confounded: each cluster has ``n_per_cluster // 2`` class-0 points and the rest
    class 1, and ``class0_ratio`` is 0.5. Confounded: the class-0 fraction
    ``rho_k ~ N(0.5, ratio_sd^2)`` clipped to [0.1, 0.9]; the cluster keeps
    ``floor(n_per_cluster * rho_k)`` class-0 points and the rest class 1, and
    ``n_probes`` probe features ``~ N(rho_k, probe_sd^2)`` are appended to every
    sample: cluster-level confounders that carry the class balance but nothing about
    the spiral geometry. ``probe_link="reversed"`` centres the probes on ``1 - rho_k``
    instead (same draws, shifted): clusters in which the link between the probes and the
    class balance is the opposite of the one a model learned, the test of whether a
    model leans on the confounder.

    Parameters
    ----------
    n_clusters : int, default=10
        Number of clusters ``K`` (>= 2).
    n_per_cluster : int, default=1000
        Points per cluster (>= 2; >= 10 when ``confounded``, so both classes exist).
    radius_sd : float, default=0.3
        Standard deviation of the per-cluster radius (>= 0).
    noise : float, default=0.1
        Standard deviation of the Gaussian noise on each coordinate (>= 0).
    degrees : int, default=360
        Angles are drawn from ``0 .. degrees - 1`` degrees (>= 2).
    mean_radius : float, default=1.0
        Mean of the per-cluster radius; 0 mirrors about half of the clusters.
    slope_sd : float, default=0.0
        Standard deviation of the per-cluster slope ``s_k`` (>= 0).
    confounded : bool, default=False
        Use cluster-specific class balance and add probe features.
    ratio_sd : float, default=0.2
        Standard deviation of ``rho_k`` (>= 0); used only when ``confounded``.
    n_probes : int, default=2
        Number of probe features (>= 0); used only when ``confounded``.
    probe_sd : float, default=0.2
        Standard deviation of the probes around ``rho_k`` (>= 0).
    probe_link : {"direct", "reversed"}, default="direct"
        Probes centred on the cluster's class-0 share ``rho_k`` or on ``1 - rho_k``; used
        only when ``confounded``. Every other draw is the same for both.
    as_frame : bool, default=False
        Return ``X`` as a DataFrame with columns ``x1, x2, probe_1, ...``.
    random_state : None, int or numpy.random.Generator, default=None
        Seed of every random draw.

    Returns
    -------
    X : ndarray of shape (N, 2 + P), float64, or DataFrame
        ``N = n_clusters * n_per_cluster``; ``P = n_probes`` if ``confounded`` else 0.
        Rows are grouped by cluster (0 first), class 0 before class 1 within a cluster.
    y : ndarray of shape (N,), int64
        Class labels in {0, 1}.
    groups : ndarray of shape (N,), int64
        Cluster ids ``0 .. n_clusters - 1``.
    effects : pandas.DataFrame indexed by ``cluster``
        The true cluster effects: ``radius`` (r_k), ``slope`` (s_k), ``class0_ratio``
        (rho_k, or 0.5) and ``n_samples``.
    """
    n_clusters = _check_int(n_clusters, "n_clusters", 2)
    if not isinstance(confounded, (bool, np.bool_)):
        raise ValueError(f"confounded must be a bool, got {confounded!r}")
    n_per_cluster = _check_int(n_per_cluster, "n_per_cluster", 10 if confounded else 2)
    radius_sd = _check_float(radius_sd, "radius_sd", 0.0)
    noise = _check_float(noise, "noise", 0.0)
    degrees = _check_int(degrees, "degrees", 2)
    mean_radius = _check_float(mean_radius, "mean_radius")
    slope_sd = _check_float(slope_sd, "slope_sd", 0.0)
    ratio_sd = _check_float(ratio_sd, "ratio_sd", 0.0)
    n_probes = _check_int(n_probes, "n_probes", 0)
    probe_sd = _check_float(probe_sd, "probe_sd", 0.0)
    if probe_link not in ("direct", "reversed"):
        raise ValueError(f"probe_link must be 'direct' or 'reversed', got {probe_link!r}")
    if not isinstance(as_frame, (bool, np.bool_)):
        raise ValueError(f"as_frame must be a bool, got {as_frame!r}")
    rng = check_random_state(random_state)

    radius = rng.normal(mean_radius, radius_sd, n_clusters)
    slope = rng.normal(0.0, slope_sd, n_clusters) + 0.0  # always drawn; + 0.0 turns -0.0 into 0.0
    if confounded:
        ratio = np.clip(rng.normal(0.5, ratio_sd, n_clusters), 0.1, 0.9)
        n_class0 = np.floor(n_per_cluster * ratio).astype(np.int64)
    else:
        ratio = np.full(n_clusters, 0.5)
        n_class0 = np.full(n_clusters, n_per_cluster // 2, dtype=np.int64)
    n_extra = n_probes if confounded else 0

    blocks, labels = [], []
    for k in range(n_clusters):
        for c, n_c in ((0, n_class0[k]), (1, n_per_cluster - n_class0[k])):
            angle = np.deg2rad(rng.integers(0, degrees, n_c).astype(np.float64))
            top = angle.max()
            scale = angle * radius[k] / (top if top > 0 else 1.0)
            phase = angle - c * np.pi
            xy = np.column_stack([-np.cos(phase) * scale, np.sin(phase) * scale])
            xy += rng.normal(0.0, noise, xy.shape)
            xy[:, 1] /= 1.0 + slope[k]
            if n_extra:
                probes = rng.normal(ratio[k], probe_sd, (n_c, n_extra))
                if probe_link == "reversed":
                    probes += 1.0 - 2.0 * ratio[k]  # centred on 1 - rho_k, the same draws
                xy = np.column_stack([xy, probes])
            blocks.append(xy)
            labels.append(np.full(n_c, c, dtype=np.int64))
    X = np.concatenate(blocks).astype(np.float64)
    y = np.concatenate(labels)
    groups = np.repeat(np.arange(n_clusters, dtype=np.int64), n_per_cluster)
    effects = pd.DataFrame(
        {
            "radius": radius,
            "slope": slope,
            "class0_ratio": ratio,
            "n_samples": np.full(n_clusters, n_per_cluster, dtype=np.int64),
        },
        index=pd.RangeIndex(n_clusters, name="cluster"),
    )
    if as_frame:
        X = pd.DataFrame(X, columns=["x1", "x2"] + [f"probe_{j + 1}" for j in range(n_extra)])
    return X, y, groups, effects
