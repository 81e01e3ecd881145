"""GPBoost baselines (perslib.armed.GPBoostClassifier / GPBoostRegressor) against gpboost itself,
the simulated ground truth and a plain gradient-boosting model; unseen clusters and bad input."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.metrics import r2_score

gpb = pytest.importorskip("gpboost")

from perslib import load  # noqa: E402
from perslib.armed import GPBoostClassifier, GPBoostRegressor  # noqa: E402

SMALL = {"num_boost_round": 50, "random_state": 0, "n_jobs": 1}


def _clustered(n_clusters=30, per_cluster=40, sd=1.0, seed=0, binary=False):
    """Clusters with a random intercept b ~ N(0, sd^2) on top of a nonlinear f(x)."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_clusters), per_cluster)
    b = sd * rng.normal(size=n_clusters)
    X = rng.normal(size=(len(g), 3))
    f = np.sin(2 * X[:, 0]) + X[:, 1] - 0.5 * X[:, 2] ** 2
    if binary:
        y = (f + b[g] + rng.logistic(size=len(g)) > 0).astype(int)
    else:
        y = f + b[g] + 0.5 * rng.normal(size=len(g))
    return X, y, g, b


def _direct(X, y, g, likelihood, n_rounds):
    """The same model fitted with gpboost's own API (the seed our estimator draws from random_state=0)."""
    seed = int(np.random.default_rng(0).integers(2**31 - 1))
    params = {
        "learning_rate": 0.05,
        "max_depth": 3,
        "num_leaves": 8,
        "min_data_in_leaf": 20,
        "seed": seed,
        "deterministic": True,
        "verbose": -1,
        "num_threads": 1,
    }
    gp = gpb.GPModel(group_data=g, likelihood=likelihood, num_parallel_threads=1)
    bst = gpb.train(params=params, train_set=gpb.Dataset(X, y.astype(float)), gp_model=gp, num_boost_round=n_rounds)
    return bst


@pytest.mark.parametrize("standardize", [True, False])
def test_regressor_equals_gpboost_directly(standardize):
    X, y, g, _ = _clustered()
    y = 10 + 3 * y  # not on the unit scale: standardization matters
    ours = GPBoostRegressor(standardize=standardize, **SMALL).fit(X, y, groups=g)
    mu, sd = (y.mean(), y.std()) if standardize else (0.0, 1.0)
    bst = _direct(X, (y - mu) / sd, g, "gaussian", 50)
    pred = bst.predict(data=X, group_data_pred=g, predict_var=False, pred_latent=False)["response_mean"]
    assert np.allclose(ours.predict(X, groups=g), pred * sd + mu)
    fe = bst.predict(data=X, ignore_gp_model=True, pred_latent=True)
    assert np.allclose(ours.fixed_effects(X), fe * sd + mu)
    cov = bst.gp_model.get_cov_pars()
    assert np.isclose(ours.random_effect_sd_["intercept"], np.sqrt(float(cov["Group_1"].iloc[0])) * sd)
    assert np.isclose(ours.residual_sd_, np.sqrt(float(cov["Error_var"].iloc[0])) * sd)


def test_classifier_equals_gpboost_directly():
    X, y, g, _ = _clustered(binary=True)
    ours = GPBoostClassifier(**SMALL).fit(X, y, groups=g)
    bst = _direct(X, y, g, "bernoulli_logit", 50)
    latent = bst.predict(data=X, group_data_pred=g, predict_var=False, pred_latent=True)
    logit = latent["fixed_effect"] + latent["random_effect_mean"]
    proba = ours.predict_proba(X, groups=g)
    assert proba.shape == (len(X), 2)
    assert np.allclose(proba[:, 1], 1 / (1 + np.exp(-logit)))
    assert np.allclose(ours.decision_function(X, groups=g), logit)
    assert np.array_equal(ours.predict(X, groups=g), ours.classes_[(logit > 0).astype(int)])
    # gpboost's response mean averages over the posterior of b: close to, not equal to, the plug-in
    response = bst.predict(data=X, group_data_pred=g, predict_var=False, pred_latent=False)["response_mean"]
    assert np.abs(response - proba[:, 1]).max() < 0.1


def test_string_labels_and_classes():
    X, y, g, _ = _clustered(binary=True)
    labels = np.array(["no", "yes"])[y]
    groups = np.array([f"site-{k}" for k in g], dtype=object)
    model = GPBoostClassifier(**SMALL).fit(X, labels, groups=groups)
    assert list(model.classes_) == ["no", "yes"]
    by_codes = GPBoostClassifier(**SMALL).fit(X, y, groups=g)
    # the same clusters under text names (sorted differently, so the fit differs slightly): per cluster
    for k in (0, 5, 17):
        rows = g == k
        a = model.predict_proba(X[rows], groups=groups[rows])[:, 1]
        b = by_codes.predict_proba(X[rows], groups=g[rows])[:, 1]
        assert np.corrcoef(a, b)[0, 1] > 0.95


def test_recovers_random_intercepts_and_beats_plain_boosting():
    X, y, g, b = _clustered(n_clusters=40, per_cluster=50, sd=1.0, seed=1)
    rng = np.random.default_rng(2)
    test = rng.random(len(y)) < 0.2  # 20 % of each cluster (on average) held out: seen clusters
    model = GPBoostRegressor(random_state=0).fit(X[~test], y[~test], groups=g[~test])
    est = model.random_effects_["intercept"].reindex(np.arange(40)).to_numpy()
    assert np.corrcoef(est, b)[0, 1] > 0.8
    assert abs(model.random_effect_sd_["intercept"] - 1.0) < 0.35
    plain = GradientBoostingRegressor(n_estimators=200, learning_rate=0.05, max_depth=3, random_state=0)
    plain.fit(X[~test], y[~test])
    r2_gpb = r2_score(y[test], model.predict(X[test], groups=g[test]))
    r2_plain = r2_score(y[test], plain.predict(X[test]))
    assert r2_gpb > r2_plain + 0.1, (r2_gpb, r2_plain)


def test_classifier_recovers_random_intercepts():
    X, y, g, b = _clustered(n_clusters=30, per_cluster=100, sd=1.5, seed=3, binary=True)
    model = GPBoostClassifier(random_state=0).fit(X, y, groups=g)
    est = model.random_effects_["intercept"].reindex(np.arange(30)).to_numpy()
    assert np.corrcoef(est, b)[0, 1] > 0.8


@pytest.mark.parametrize("cls", [GPBoostRegressor, GPBoostClassifier])
def test_unseen_clusters_get_fixed_effects_only(cls):
    X, y, g, _ = _clustered(binary=cls is GPBoostClassifier)
    model = cls(**SMALL).fit(X[g < 25], y[g < 25], groups=g[g < 25])
    predict = model.decision_function if cls is GPBoostClassifier else model.predict
    fe = model.booster_.predict(data=X, ignore_gp_model=True, pred_latent=True)
    if cls is GPBoostRegressor:
        fe = fe * model.y_scale_ + model.y_mean_
    assert np.allclose(model.fixed_effects(X), fe)
    unseen = g >= 25
    with pytest.warns(UserWarning, match=rf"{cls.__name__}: {int(unseen.sum())} sample\(s\) without a cluster seen"):
        mixed = predict(X, groups=g)
    assert np.allclose(mixed[unseen], fe[unseen])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # seen clusters only: no warning
        seen = predict(X[~unseen], groups=g[~unseen])
    assert np.allclose(mixed[~unseen], seen)
    assert not np.allclose(seen, fe[~unseen])  # the random effects do something on seen clusters
    with pytest.warns(UserWarning, match=rf"{len(X)} sample\(s\)"):
        assert np.allclose(predict(X), fe)  # no groups at all: fixed effects for every sample


def test_deterministic_with_seed_and_survives_save_load(tmp_path):
    X, y, g, _ = _clustered(binary=True)
    a = GPBoostClassifier(**SMALL).fit(X, y, groups=g)
    b = GPBoostClassifier(**SMALL).fit(X, y, groups=g)
    assert np.array_equal(a.predict_proba(X, groups=g), b.predict_proba(X, groups=g))
    a.save(tmp_path / "gpb.pt")
    c = load(tmp_path / "gpb.pt")
    assert np.allclose(c.predict_proba(X, groups=g), a.predict_proba(X, groups=g))


def test_bad_input_is_refused_with_the_argument_named():
    X, y, g, _ = _clustered(binary=True)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="X"):
        GPBoostClassifier(**SMALL).fit(bad, y, groups=g)
    with pytest.raises(ValueError, match="groups"):
        GPBoostClassifier(**SMALL).fit(X, y, groups=g[:-1])
    with pytest.raises(ValueError, match="groups"):
        GPBoostRegressor(**SMALL).fit(X, y.astype(float))
    with pytest.raises(ValueError, match="y"):
        GPBoostClassifier(**SMALL).fit(X, np.ones(len(y)), groups=g)
    with pytest.raises(ValueError, match="y"):
        GPBoostClassifier(**SMALL).fit(X, y[:-1], groups=g)
    with pytest.raises(ValueError, match="learning_rate"):
        GPBoostRegressor(learning_rate=0).fit(X, y.astype(float), groups=g)
    model = GPBoostRegressor(**SMALL).fit(X, y.astype(float), groups=g)
    with pytest.raises(ValueError, match="groups"):
        model.predict(X, groups=g[:-1])
    with pytest.raises(ValueError, match="X"):
        model.predict(bad, groups=g)


def test_missing_gpboost_says_how_to_install(monkeypatch):
    X, y, g, _ = _clustered()
    monkeypatch.setitem(sys.modules, "gpboost", None)
    with pytest.raises(ImportError, match=r"perslib\[peers\]"):
        GPBoostRegressor(**SMALL).fit(X, y, groups=g)
