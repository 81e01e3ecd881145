"""Tests of the ARMED baselines (perslib.armed)."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from sklearn.base import clone

from perslib.armed import (
    BayesMixedGLMClassifier,
    ClusterInputMLPClassifier,
    ClusterInputMLPRegressor,
    DomainAdversarialMLPClassifier,
    DomainAdversarialMLPRegressor,
    MixedEffectsMLPClassifier,
    MixedEffectsMLPRegressor,
    MixedLMRegressor,
    feature_importance,
)
from perslib.mlp import MLPClassifier

FAST = {
    "hidden": (8,),
    "epochs": 3,
    "batch_size": 128,
    "patience": 0,
    "device": "cpu",
    "random_state": 0,
}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    K, per = 12, 40
    g = np.repeat([f"c{k}" for k in range(K)], per).astype(object)
    b0 = rng.normal(0, 1.0, K)
    b1 = rng.normal(0, 0.5, K)
    X = pd.DataFrame({"a": rng.normal(size=K * per), "b": rng.normal(size=K * per)})
    k = np.repeat(np.arange(K), per)
    y = 1 + 2 * X["a"] - X["b"] + b0[k] + b1[k] * X["a"] + rng.normal(0, 0.5, K * per)
    ybin = (y + rng.logistic(size=len(y)) * 0.5 > 1).astype(int)
    return X, y.to_numpy(), ybin, g, pd.Series(b0, index=[f"c{k}" for k in range(K)])


def test_mixedlm_matches_statsmodels(data):
    X, y, _, g, _ = data
    m = MixedLMRegressor(random_slopes=["a"]).fit(X, y, groups=g)
    frame = X.assign(y=y, g=g)
    ref = smf.mixedlm("y ~ a + b", frame, groups=frame["g"], re_formula="~a").fit(reml=True)
    assert np.allclose(m.fe_params_.to_numpy(), ref.fe_params.to_numpy(), atol=1e-4)
    assert np.allclose(m.predict(X, groups=g), ref.fittedvalues.to_numpy(), atol=1e-4)  # fixed + BLUP
    assert np.isclose(m.residual_sd_, np.sqrt(ref.scale), rtol=1e-4)
    assert list(m.random_effects_.columns) == ["Group", "a"]
    with pytest.warns(UserWarning, match="fixed effects only"):
        unseen = m.predict(X.iloc[:4], groups=["new"] * 4)
    fixed = ref.fe_params["Intercept"] + X.iloc[:4].to_numpy() @ ref.fe_params[["a", "b"]].to_numpy()
    assert np.allclose(unseen, fixed, atol=1e-4)


def test_mixedlm_intercept_only_recovers_effects(data):
    X, y, _, g, b0 = data
    m = MixedLMRegressor().fit(X, y, groups=g)
    assert np.corrcoef(m.random_effects_["Group"].to_numpy(), b0[m.random_effects_.index])[0, 1] > 0.9
    with pytest.raises(ValueError, match="random_slopes"):
        MixedLMRegressor(random_slopes=["nope"]).fit(X, y, groups=g)


def test_bayes_mixed_glm(data):
    X, _, ybin, g, b0 = data
    m = BayesMixedGLMClassifier().fit(X, ybin, groups=g)
    assert np.corrcoef(m.random_effects_["intercept"].to_numpy(), b0[m.random_effects_.index])[0, 1] > 0.7
    assert m.fe_mean_["a"] > 0 > m.fe_mean_["b"]
    p = m.predict_proba(X, groups=g)
    assert p.shape == (len(X), 2) and np.allclose(p.sum(1), 1)
    assert (m.predict(X, groups=g) == ybin).mean() > 0.7
    with pytest.warns(UserWarning, match="fixed effects only"):
        m.predict(X.iloc[:3], groups=["zz"] * 3)
    with pytest.raises(ValueError, match="2 classes"):
        BayesMixedGLMClassifier().fit(X, np.zeros(len(X)), groups=g)


def test_cluster_input_mlp(data):
    X, y, ybin, g, _ = data
    clf = ClusterInputMLPClassifier(**FAST).fit(X, ybin, groups=g)
    assert clf.estimator_.n_features_in_ == 2 + 12
    assert clf.predict_proba(X, groups=g).shape == (len(X), 2)
    with pytest.warns(UserWarning, match="zero vector"):
        p_new = clf.predict_proba(X.iloc[:5], groups=["unseen"] * 5)
    zero = clf.estimator_.predict_proba(np.hstack([clf.scaler_.transform(X.iloc[:5].to_numpy()), np.zeros((5, 12))]))
    assert np.allclose(p_new, zero)
    imp = feature_importance(clf, X)
    assert list(imp.index) == ["a", "b"]
    reg = ClusterInputMLPRegressor(**FAST).fit(X, y, groups=g)
    assert reg.predict(X, groups=g).shape == (len(X),)
    with pytest.raises(ValueError, match="groups has"):
        reg.fit(X, y, groups=g[:-1])
    assert np.array_equal(pickle.loads(pickle.dumps(reg)).predict(X, groups=g), reg.predict(X, groups=g))


def test_armed_variants(data):
    X, y, ybin, g, _ = data
    da = DomainAdversarialMLPClassifier(**FAST)
    assert da.get_params()["random_effects"] is False and clone(da).random_effects is False
    da.fit(X, ybin, groups=g)
    assert da.net_.re is None and da.net_.adversary is not None and da.zpredictor_ is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no random effects: unseen groups change nothing
        da.predict(X.iloc[:3], groups=["new"] * 3)
    me = MixedEffectsMLPRegressor(**FAST).fit(X, y, groups=g)
    assert me.net_.adversary is None and me.net_.re is not None
    assert "adv_loss" not in me.history_
    assert clone(MixedEffectsMLPClassifier(lr=0.01)).get_params()["adversary"] is False
    assert DomainAdversarialMLPRegressor(random_effects=True).random_effects is True  # still overridable
    assert type(pickle.loads(pickle.dumps(me))).__name__ == "MixedEffectsMLPRegressor"


def test_feature_importance_for_plain_mlp(data):
    X, _, ybin, _, _ = data
    mlp = MLPClassifier(**FAST).fit(X, ybin)
    imp = feature_importance(mlp, X)
    assert imp["a"] > 0 and imp["b"] > 0
