"""Tests of perslib.personalized against closed forms and exactly-specified simulations."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

from perslib.personalized import (
    KNNLocalRegressor,
    MixtureRegressor,
    PopulationClassifier,
    PopulationRegressor,
    VaryingCoefficientClassifier,
    VaryingCoefficientRegressor,
)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 3))
    U = rng.uniform(-1, 1, (300, 2))
    y = X @ [1.0, -2.0, 0.5] + 0.3 + 0.2 * rng.standard_normal(300)
    return X, y, U


def test_population_regressor_equals_sklearn(data):
    X, y, U = data
    m = PopulationRegressor(alpha=2.0).fit(X, y, covariates=U)
    ref = Ridge(alpha=2.0).fit(X, y)
    np.testing.assert_allclose(m.population_coef_, ref.coef_)
    np.testing.assert_allclose(m.coef_, np.tile(ref.coef_, (300, 1)))
    np.testing.assert_allclose(m.predict(X), ref.predict(X))
    ols = PopulationRegressor(alpha=0.0).fit(X, y)
    np.testing.assert_allclose(ols.population_coef_, LinearRegression().fit(X, y).coef_, atol=1e-10)
    coef, intercept = m.predict_params(U[:7])
    assert coef.shape == (7, 3) and intercept.shape == (7,)


def test_population_classifier_equals_sklearn(data):
    X, y, U = data
    labels = (y > 0).astype(int)
    m = PopulationClassifier(alpha=1.0).fit(X, labels, covariates=U)
    ref = LogisticRegression(C=1.0, max_iter=1000).fit(X, labels)
    np.testing.assert_allclose(m.population_coef_, ref.coef_[0], rtol=1e-5)
    np.testing.assert_allclose(m.predict_proba(X), ref.predict_proba(X), atol=1e-6)
    np.testing.assert_array_equal(m.predict(X), ref.predict(X))


def test_varying_coefficient_recovers_linear_theta():
    rng = np.random.default_rng(1)
    n = 500
    X = rng.standard_normal((n, 3))
    U = rng.uniform(-1, 1, (n, 2))
    A = rng.standard_normal((3, 4))  # [1, u] -> (coef, intercept)
    theta = np.hstack([np.ones((n, 1)), U]) @ A
    y = (X * theta[:, :3]).sum(1) + theta[:, 3]
    m = VaryingCoefficientRegressor(alpha=1e-8).fit(X, y, covariates=U)
    np.testing.assert_allclose(m.coef_, theta[:, :3], atol=1e-5)
    np.testing.assert_allclose(m.intercept_, theta[:, 3], atol=1e-5)
    Unew = rng.uniform(-1, 1, (20, 2))
    coef, _ = m.predict_params(Unew)
    np.testing.assert_allclose(coef, (np.hstack([np.ones((20, 1)), Unew]) @ A)[:, :3], atol=1e-5)


def test_varying_coefficient_classifier_beats_population():
    rng = np.random.default_rng(2)
    n = 2000
    X = rng.standard_normal((n, 2))
    U = rng.uniform(-1, 1, (n, 1))
    theta = np.hstack([3 * U, -3 * U])  # the sign of the effect flips with u
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(X * theta).sum(1)))).astype(int)
    vc = VaryingCoefficientClassifier().fit(X, y, covariates=U)
    pop = PopulationClassifier().fit(X, y, covariates=U)
    assert (vc.predict(X, covariates=U) == y).mean() > (pop.predict(X) == y).mean() + 0.1
    assert ((vc.coef_ - theta) ** 2).mean() < 0.2 * ((pop.coef_ - theta) ** 2).mean()


def test_mixture_recovers_two_separated_components():
    rng = np.random.default_rng(3)
    n = 600
    X = rng.standard_normal((n, 2))
    z = rng.integers(0, 2, n)
    comps = np.array([[3.0, -2.0], [-3.0, 2.0]])
    y = (X * comps[z]).sum(1) + 0.1 * rng.standard_normal(n)
    U = (z + 0.1 * rng.standard_normal(n))[:, None]  # covariate reveals the component
    m = MixtureRegressor(n_components=2, random_state=0).fit(X, y, covariates=U)
    order = np.argsort(m.components_coef_[:, 0])[::-1]
    np.testing.assert_allclose(m.components_coef_[order], comps, atol=0.05)
    np.testing.assert_allclose(m.components_intercept_, 0, atol=0.05)
    np.testing.assert_allclose(m.sigma2_, 0.01, rtol=0.3)
    # samples whose x makes both lines predict alike are ambiguous; nearly all others are assigned right
    assert (np.abs(m.coef_ - comps[z]).max(1) < 0.05).mean() > 0.97
    coef, _ = m.predict_params(np.array([[0.0], [1.0]]))
    np.testing.assert_allclose(coef, comps, atol=0.05)


def test_knn_local_matches_hand_computed_ridge():
    rng = np.random.default_rng(4)
    n, k = 200, 15
    X = rng.standard_normal((n, 3))
    U = rng.standard_normal((n, 2)) * [1.0, 10.0]
    y = X @ [1.0, 2.0, 3.0] + U[:, 0] + 0.1 * rng.standard_normal(n)
    m = KNNLocalRegressor(n_neighbors=k, alpha=0.5).fit(X, y, covariates=U)
    Us = (U - U.mean(0)) / U.std(0)
    for i in (0, 17, 123):
        nb = np.argsort(((Us - Us[i]) ** 2).sum(1))[:k]
        ref = Ridge(alpha=0.5).fit(X[nb], y[nb])
        np.testing.assert_allclose(m.coef_[i], ref.coef_, atol=1e-8)
        np.testing.assert_allclose(m.intercept_[i], ref.intercept_, atol=1e-8)
    u_new = np.array([[0.3, -4.0]])
    nb = np.argsort((((u_new - U.mean(0)) / U.std(0) - Us) ** 2).sum(1))[:k]
    coef, intercept = m.predict_params(u_new)
    np.testing.assert_allclose(coef[0], Ridge(alpha=0.5).fit(X[nb], y[nb]).coef_, atol=1e-8)


@pytest.mark.parametrize(
    "est", [PopulationRegressor(), MixtureRegressor(2, n_init=1), VaryingCoefficientRegressor(), KNNLocalRegressor(10)]
)
def test_bad_input_and_contract(est, data):
    X, y, U = data
    assert clone(est).get_params() == est.get_params()
    Xn = X.copy()
    Xn[1, 1] = np.nan
    with pytest.raises(ValueError, match="X"):
        clone(est).fit(Xn, y, covariates=U)
    with pytest.raises(ValueError, match="y"):
        clone(est).fit(X, np.r_[y[:-1], np.inf], covariates=U)
    with pytest.raises(ValueError, match="covariates"):
        clone(est).fit(X, y, covariates=U[:-2])
    m = clone(est).fit(X, y, covariates=U)
    assert m.coef_.shape == (300, 3) and m.intercept_.shape == (300,)
    if not isinstance(est, PopulationRegressor):
        with pytest.raises(ValueError, match="covariates"):
            m.predict(X[:4], covariates=U[:4, :1])
        with pytest.raises(ValueError, match="covariates"):
            clone(est).fit(X, y)


def test_classifier_single_class_rejected(data):
    X, _, U = data
    with pytest.raises(ValueError, match="y"):
        PopulationClassifier().fit(X, np.zeros(len(X)), covariates=U)
    with pytest.raises(ValueError, match="y"):
        VaryingCoefficientClassifier().fit(X, np.zeros(len(X)), covariates=U)
