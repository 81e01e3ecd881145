"""Tests of perslib.data: simulators against their own ground truth, real loaders
against data/checksums.json, and input validation."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage
from sklearn.datasets import load_digits
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import silhouette_score
from sklearn.neighbors import KNeighborsRegressor

from perslib.data import (
    DATASET_LOADERS,
    ClusteredDataset,
    dataset_fingerprint,
    load_dataset,
    make_cluster_images,
    make_personalized_regression,
    make_spirals,
)

DATA_DIR = Path(__file__).resolve().parents[1] / "data"


def _arrays(out):
    """Every returned object as a NumPy array, for bit-identity checks."""
    return [o.to_numpy() if isinstance(o, (pd.DataFrame, pd.Series)) else np.asarray(o) for o in out]


SIMULATORS = [
    (make_personalized_regression, dict(n_samples=200, n_features=3, n_covariates=4)),
    (make_personalized_regression, dict(n_samples=200, task="logistic")),
    (make_spirals, dict(n_clusters=3, n_per_cluster=40)),
    (make_spirals, dict(n_clusters=3, n_per_cluster=40, confounded=True, slope_sd=0.2)),
    (make_cluster_images, dict(n_sites=3, n_per_site=30, confounding=0.5)),
]


# ----------------------------------------------------------------------- determinism
@pytest.mark.parametrize("func,kwargs", SIMULATORS)
def test_same_seed_identical_different_seed_differs(func, kwargs):
    a, b, c = func(**kwargs, random_state=3), func(**kwargs, random_state=3), func(**kwargs, random_state=4)
    for x, y in zip(_arrays(a), _arrays(b)):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.array_equal(x, y)
    assert not np.array_equal(_arrays(a)[0], _arrays(c)[0])


@pytest.mark.parametrize("func,kwargs", SIMULATORS)
def test_generator_seed_and_global_state_untouched(func, kwargs):
    np.random.seed(0)
    before = np.random.get_state()[1].copy()
    a = func(**kwargs, random_state=np.random.default_rng(11))
    b = func(**kwargs, random_state=11)
    assert np.array_equal(np.random.get_state()[1], before)
    for x, y in zip(_arrays(a), _arrays(b)):
        assert np.array_equal(x, y)


# ------------------------------------------------------------ personalized regression
@pytest.fixture(scope="module")
def regression():
    return make_personalized_regression(n_samples=2000, random_state=0)


def test_regression_shapes_and_types(regression):
    X, y, U, theta, process = regression
    assert X.shape == (2000, 5) and X.dtype == np.float64
    assert y.shape == (2000,) and y.dtype == np.float64
    assert theta.shape == (2000, 5) and theta.dtype == np.float64
    assert process.shape == (2000,) and process.dtype == np.int64
    assert isinstance(U, pd.DataFrame)
    assert list(U.columns) == ["u_position", "u_process", "u_irrelevant_0"]
    assert set(process) == {0, 1, 2}
    assert np.bincount(process).min() >= 666


def test_regression_column_names_with_modulators():
    X, y, U, theta, process = make_personalized_regression(300, 4, 6, n_irrelevant=2, random_state=1)
    assert list(U.columns) == [
        "u_position",
        "u_process",
        "u_modulator_0",
        "u_modulator_1",
        "u_irrelevant_0",
        "u_irrelevant_1",
    ]
    assert theta.shape == (300, 4)


def test_regression_y_reproduced_from_x_theta(regression):
    X, y, U, theta, process = regression
    resid = y - np.einsum("ij,ij->i", X, theta)
    assert abs(resid.mean()) < 0.05
    assert resid.var() == pytest.approx(0.5**2, rel=0.12)
    X0, y0, _, theta0, _ = make_personalized_regression(50, noise=0.0, random_state=2)
    np.testing.assert_allclose(y0, np.einsum("ij,ij->i", X0, theta0))


def test_regression_theta_is_function_of_relevant_covariates(regression):
    X, y, U, theta, process = regression
    assert np.array_equal(np.rint(U["u_process"]).astype(np.int64), process)
    rel = U[["u_position", "u_process"]].to_numpy()
    rel = (rel - rel.mean(0)) / rel.std(0)
    knn = KNeighborsRegressor(n_neighbors=10).fit(rel[:1500], theta[:1500])
    assert knn.score(rel[1500:], theta[1500:]) > 0.95
    # position alone does not reveal the process (same range for every process)
    pos = U["u_position"].to_numpy()
    for k in range(3):
        assert pos[process == k].min() < 0.05 and pos[process == k].max() > 0.95


def test_regression_irrelevant_covariates_shape_nothing(regression):
    X, y, U, theta, process = regression
    irr = U[["u_irrelevant_0"]].to_numpy()
    corr = [abs(np.corrcoef(irr[:, 0], theta[:, d])[0, 1]) for d in range(theta.shape[1])]
    assert max(corr) < 4 / np.sqrt(len(theta))
    knn = KNeighborsRegressor(n_neighbors=10).fit(irr[:1500], theta[:1500])
    assert knn.score(irr[1500:], theta[1500:]) < 0.05
    # same seed, more irrelevant columns: the relevant part of the picture is unchanged
    # in law, and theta never depends on the noise columns' values
    X2, y2, U2, theta2, _ = make_personalized_regression(2000, n_covariates=4, n_irrelevant=2, random_state=0)
    assert np.array_equal(U2["u_position"], U["u_position"]) and np.array_equal(theta2, theta)


def test_regression_pooled_ols_has_large_parameter_error(regression):
    X, y, U, theta, process = regression
    pooled = np.linalg.lstsq(X, y, rcond=None)[0]
    err = np.mean(np.sum((pooled - theta) ** 2, axis=1)) / theta.shape[1]
    assert err > 0.5 * theta.var(axis=0).mean()
    assert 0.3 < theta.std(axis=0).min() and theta.std(axis=0).max() < 3


def test_regression_processes_separated(regression):
    X, y, U, theta, process = regression
    assert silhouette_score(theta, process) > 0.4
    clf = LogisticRegression(max_iter=1000).fit(theta[:1500], process[:1500])
    assert clf.score(theta[1500:], process[1500:]) > 0.99


def test_regression_theta_curves_within_process(regression):
    """Within a process theta is a nonlinear function of the position."""
    X, y, U, theta, process = regression
    for k in range(3):
        m = process == k
        t = U["u_position"].to_numpy()[m, None]
        r2_linear = LinearRegression().fit(t, theta[m]).score(t, theta[m])
        assert r2_linear < 0.9


def test_regression_logistic_task():
    X, y, U, theta, process = make_personalized_regression(3000, task="logistic", random_state=5)
    assert y.dtype == np.int64 and set(np.unique(y)) == {0, 1}
    assert 0.4 < y.mean() < 0.6
    bayes = np.mean((np.einsum("ij,ij->i", X, theta) > 0) == y)
    assert 0.7 < bayes < 0.95  # learnable from theta, not separable
    assert LogisticRegression().fit(X, y).score(X, y) < 0.65  # a pooled model is poor
    # same seed gives the same X, U, theta for either task
    X1, _, U1, theta1, _ = make_personalized_regression(3000, task="linear", random_state=5)
    assert np.array_equal(X, X1) and np.array_equal(theta, theta1) and U.equals(U1)


# --------------------------------------------------------------------------- spirals
def test_spirals_shapes_types_balanced():
    X, y, groups, effects = make_spirals(4, 101, random_state=0)
    assert X.shape == (404, 2) and X.dtype == np.float64
    assert y.dtype == np.int64 and groups.dtype == np.int64
    assert np.array_equal(groups, np.repeat(np.arange(4), 101))
    assert list(effects.columns) == ["radius", "slope", "class0_ratio", "n_samples"]
    assert effects.index.name == "cluster" and list(effects.index) == [0, 1, 2, 3]
    for k in range(4):
        assert (y[groups == k] == 0).sum() == 50
    assert (effects["class0_ratio"] == 0.5).all() and (effects["slope"] == 0).all()
    assert (effects["n_samples"] == 101).all()


def test_spirals_exact_geometry_without_noise():
    """With noise 0 each point is (-cos(a - c pi), sin(a - c pi)) * a * r_k / max(a)."""
    X, y, groups, effects = make_spirals(3, 200, radius_sd=0.3, noise=0.0, random_state=1)
    for k in range(3):
        r = effects.loc[k, "radius"]
        for c in (0, 1):
            pts = X[(groups == k) & (y == c)] * np.sign(r)
            norm = np.linalg.norm(pts, axis=1)
            assert norm.max() == pytest.approx(abs(r), rel=1e-12)
            angle = np.mod(np.arctan2(pts[:, 1], -pts[:, 0]) + c * np.pi, 2 * np.pi)
            ok = norm > 1e-9
            ratio = norm[ok] / angle[ok]
            np.testing.assert_allclose(ratio, ratio.mean(), rtol=1e-6)


def test_spirals_radius_recoverable_with_noise():
    X, y, groups, effects = make_spirals(10, 400, radius_sd=0.3, noise=0.1, random_state=2)
    est = np.array([np.quantile(np.linalg.norm(X[groups == k], axis=1), 0.95) for k in range(10)])
    assert np.corrcoef(est, np.abs(effects["radius"]))[0, 1] > 0.95
    np.testing.assert_allclose(est, np.abs(effects["radius"]), atol=0.2)


def test_spirals_slope_effect_applied():
    kw = dict(n_clusters=4, n_per_cluster=60, random_state=3)
    X0, y0, g0, e0 = make_spirals(slope_sd=0.0, **kw)
    X1, y1, g1, e1 = make_spirals(slope_sd=0.2, **kw)
    assert (e0["slope"] == 0).all() and (e1["slope"] != 0).all()
    np.testing.assert_allclose(e0["radius"], e1["radius"])
    np.testing.assert_allclose(X1[:, 0], X0[:, 0])
    np.testing.assert_allclose(X1[:, 1] * (1 + e1["slope"].to_numpy()[g1]), X0[:, 1])


def test_spirals_confounded_ratios_and_probes():
    X, y, groups, effects = make_spirals(
        8, 500, confounded=True, ratio_sd=0.3, n_probes=3, as_frame=True, random_state=4
    )
    assert list(X.columns) == ["x1", "x2", "probe_1", "probe_2", "probe_3"]
    ratio = effects["class0_ratio"].to_numpy()
    assert ratio.min() >= 0.1 and ratio.max() <= 0.9 and ratio.std() > 0.1
    for k in range(8):
        m = groups == k
        assert (y[m] == 0).sum() == np.floor(500 * ratio[k])
        probes = X.loc[m, ["probe_1", "probe_2", "probe_3"]].to_numpy()
        np.testing.assert_allclose(probes.mean(axis=0), ratio[k], atol=4 * 0.2 / np.sqrt(500))
        assert probes.std() == pytest.approx(0.2, rel=0.1)


def test_spirals_reversed_probes_flip_the_link_and_keep_everything_else():
    kw = dict(n_clusters=8, n_per_cluster=400, confounded=True, ratio_sd=0.3, as_frame=True, random_state=5)
    X, y, groups, effects = make_spirals(**kw)
    Xr, yr, groups_r, effects_r = make_spirals(probe_link="reversed", **kw)
    np.testing.assert_array_equal(y, yr)
    np.testing.assert_array_equal(X[["x1", "x2"]], Xr[["x1", "x2"]])
    ratio = effects["class0_ratio"].to_numpy()
    centre = Xr.groupby(groups_r)[["probe_1", "probe_2"]].mean().mean(axis=1).to_numpy()
    np.testing.assert_allclose(centre, 1 - ratio, atol=4 * 0.2 / np.sqrt(400))
    share0 = pd.Series(y == 0).groupby(groups).mean().to_numpy()
    assert np.corrcoef(centre, share0)[0, 1] < -0.9  # direct probes: > +0.9
    with pytest.raises(ValueError, match="probe_link"):
        make_spirals(3, 40, confounded=True, probe_link="flipped")


def test_spirals_non_confounded_has_no_probes():
    X, y, groups, effects = make_spirals(3, 50, n_probes=4, as_frame=True, random_state=0)
    assert list(X.columns) == ["x1", "x2"]


# ---------------------------------------------------------------------------- images
@pytest.fixture(scope="module")
def baseline_digits():
    return np.sort(
        ndimage.zoom(load_digits().images / 16.0, (1, 2, 2), order=1).astype(np.float32).reshape(1797, -1), axis=0
    )


def test_images_shape_range_every_image_once(baseline_digits):
    images, y, sites, effects = make_cluster_images(5, random_state=0)
    assert images.shape == (1797, 1, 16, 16) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1
    assert y.dtype == np.int64 and sites.dtype == np.int64
    assert set(np.unique(sites)) == set(range(5)) and np.ptp(np.bincount(sites)) <= 1
    assert y.sum() == (load_digits().target >= 5).sum()
    # with no effect the images are exactly the upsampled digits, each used once
    plain, y0, sites0, e0 = make_cluster_images(5, effect_strength=0.0, random_state=0)
    assert np.array_equal(np.sort(plain.reshape(1797, -1), axis=0), baseline_digits)
    assert np.array_equal(y0, y) and np.array_equal(sites0, sites)
    assert (e0["gain"] == 1).all() and (e0["offset"] == 0).all() and (e0["noise_sd"] == 0).all()


def test_images_site_effects_recorded():
    images, y, sites, effects = make_cluster_images(6, random_state=1)
    plain, _, sites0, _ = make_cluster_images(6, effect_strength=0.0, random_state=1)
    assert list(effects.columns) == [
        "gain",
        "offset",
        "blur",
        "shift_x",
        "shift_y",
        "noise_sd",
        "positive_rate",
        "n_samples",
    ]
    observed = np.array([images[sites == s].mean() for s in range(6)])
    implied = np.array(
        [np.clip(effects.loc[s, "gain"] * plain[sites0 == s] + effects.loc[s, "offset"], 0, 1).mean() for s in range(6)]
    )
    assert np.corrcoef(observed, implied)[0, 1] > 0.9
    np.testing.assert_allclose(observed, implied, atol=0.08)
    for s in range(6):
        m = sites == s
        assert effects.loc[s, "n_samples"] == m.sum()
        assert effects.loc[s, "positive_rate"] == pytest.approx(y[m].mean())
        # the recorded shift best aligns the mean site image with the unshifted baseline
        mean_img, base = images[m, 0].mean(0).ravel(), plain[m, 0].mean(0)
        scores = {
            (dx, dy): np.corrcoef(mean_img, ndimage.shift(base, (dy, dx), order=0).ravel())[0, 1]
            for dx in range(-3, 4)
            for dy in range(-3, 4)
        }
        assert max(scores, key=scores.get) == (effects.loc[s, "shift_x"], effects.loc[s, "shift_y"])


def test_images_no_effect_sites_alike():
    images, y, sites, effects = make_cluster_images(4, effect_strength=0.0, random_state=2)
    means = np.array([images[sites == s].mean() for s in range(4)])
    assert np.ptp(means) < 0.02
    assert np.ptp(effects["positive_rate"]) < 0.01


@pytest.mark.parametrize("n_per_site", [None, 40])
def test_images_confounding_spreads_positive_rates(n_per_site):
    spread = {}
    for conf in (0.0, 1.0):
        _, y, sites, effects = make_cluster_images(5, n_per_site=n_per_site, confounding=conf, random_state=3)
        rates = np.array([y[sites == s].mean() for s in range(5)])
        np.testing.assert_allclose(rates, effects["positive_rate"])
        assert rates.min() > 0 and rates.max() < 1  # both classes in every site
        spread[conf] = rates.std()
    assert spread[0.0] < 0.03 and spread[1.0] > 0.2


def test_images_sizes_and_subsampling():
    images, y, sites, effects = make_cluster_images(3, image_size=20, n_per_site=25, random_state=0)
    assert images.shape == (75, 1, 20, 20)
    assert (effects["n_samples"] == 25).all()
    flat = images.reshape(75, -1)
    assert len(np.unique(flat, axis=0)) == 75


# ------------------------------------------------------------------------ real data
CHECKSUMS = json.loads((DATA_DIR / "checksums.json").read_text())
EXPECTED = {
    "sleepstudy": (180, 18),
    "math_achievement": (7185, 160),
    "grunfeld": (220, 11),
    "contraception": (1934, 60),
    "guatemala_immunization": (2159, 161),
    "exam": (4059, 65),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_loader(name):
    ds = load_dataset(name)
    assert isinstance(ds, ClusteredDataset) and ds.name == name
    rows, clusters = EXPECTED[name]
    assert len(ds.frame) == rows and ds.n_groups == clusters
    assert ds.X.shape == (rows, len(ds.features)) and ds.U.shape == (rows, len(ds.covariates))
    assert ds.y.shape == (rows,) and ds.y.dtype == np.float64 and ds.groups.shape == (rows,)
    used = [ds.target, ds.group, *ds.features, *ds.covariates]
    assert not ds.frame[used].isna().any().any()
    assert all(pd.api.types.is_numeric_dtype(ds.frame[c]) for c in [ds.target, *ds.features, *ds.covariates])
    assert "rownames" not in ds.frame.columns
    if ds.covariates:  # cluster-level: constant within each cluster
        assert (ds.frame.groupby(ds.group)[ds.covariates].nunique() == 1).all().all()
    record = CHECKSUMS["datasets"][name]
    assert record["rows"] == rows and record["columns"] == list(ds.frame.columns)
    assert dataset_fingerprint(ds.frame) == record["sha256"]
    assert ds.source and ds.licence and ds.description


def test_math_achievement_encoding():
    ds = load_dataset("math_achievement")
    assert ds.features == ["SES", "Female", "Minority"]
    assert ds.frame["Female"].sum() == 3795 and ds.frame["Minority"].sum() == 1974
    assert ds.frame.groupby("School")["Catholic"].first().sum() == 70


def test_fingerprint_robust_to_dtype_changes():
    frame = load_dataset("grunfeld").frame
    alt = frame.astype({"firm": object, "year": np.float64})
    assert dataset_fingerprint(alt) == dataset_fingerprint(frame)
    changed = frame.copy()
    changed.loc[0, "invest"] += 1.0
    assert dataset_fingerprint(changed) != dataset_fingerprint(frame)


def test_checksums_cover_every_stored_file():
    assert set(CHECKSUMS) == {"files", "datasets"} and set(CHECKSUMS["datasets"]) == set(DATASET_LOADERS)
    listed = CHECKSUMS["files"]
    stored = {p.relative_to(DATA_DIR).as_posix() for p in DATA_DIR.rglob("*") if p.is_file()}
    stored -= {"README.md", "checksums.json"}
    assert stored == set(listed), "every file under data/ must be listed in checksums.json['files']"
    for rel, digest in listed.items():
        assert hashlib.sha256((DATA_DIR / rel).read_bytes()).hexdigest() == digest


# ------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "func,kwargs,name",
    [
        (make_personalized_regression, dict(n_samples=0), "n_samples"),
        (make_personalized_regression, dict(n_features=1), "n_features"),
        (make_personalized_regression, dict(n_covariates=2, n_irrelevant=1), "n_covariates"),
        (make_personalized_regression, dict(n_irrelevant=-1), "n_irrelevant"),
        (make_personalized_regression, dict(n_processes=0), "n_processes"),
        (make_personalized_regression, dict(task="poisson"), "task"),
        (make_personalized_regression, dict(noise=-0.1), "noise"),
        (make_personalized_regression, dict(n_samples=2.5), "n_samples"),
        (make_personalized_regression, dict(random_state="x"), "random_state"),
        (make_spirals, dict(n_clusters=1), "n_clusters"),
        (make_spirals, dict(n_per_cluster=1), "n_per_cluster"),
        (make_spirals, dict(n_per_cluster=5, confounded=True), "n_per_cluster"),
        (make_spirals, dict(radius_sd=-1.0), "radius_sd"),
        (make_spirals, dict(noise=float("nan")), "noise"),
        (make_spirals, dict(degrees=1), "degrees"),
        (make_spirals, dict(slope_sd=-0.2), "slope_sd"),
        (make_spirals, dict(n_probes=-1), "n_probes"),
        (make_spirals, dict(confounded="yes"), "confounded"),
        (make_cluster_images, dict(n_sites=1), "n_sites"),
        (make_cluster_images, dict(image_size=4), "image_size"),
        (make_cluster_images, dict(confounding=2.0), "confounding"),
        (make_cluster_images, dict(effect_strength=-1.0), "effect_strength"),
        (make_cluster_images, dict(noise=-0.1), "noise"),
        (make_cluster_images, dict(n_sites=10, n_per_site=500), "n_per_site"),
        (make_cluster_images, dict(n_per_site=1), "n_per_site"),
    ],
)
def test_bad_input_names_argument(func, kwargs, name):
    with pytest.raises(ValueError, match=name):
        func(**kwargs)


def test_bad_dataset_name():
    with pytest.raises(ValueError, match="name"):
        load_dataset("iris")
    with pytest.raises(ValueError, match="frame"):
        dataset_fingerprint(np.zeros(3))
