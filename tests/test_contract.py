"""The estimator contract on every estimator: regression tests of defects once found by fuzzing.

Each test names the defect it guards against: silently wrong predictions on reordered or
renamed columns, unsafe loading, reseeding of the caller's random stream, AttributeError
instead of NotFittedError, continuous targets taken as classes, an unscaled target, and
raw errors from the statsmodels wrappers.
"""

from __future__ import annotations

import os
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

import perslib
from perslib.armed import (
    ARMEDAutoencoder,
    ARMEDClassifier,
    ARMEDImageClassifier,
    ARMEDRegressor,
    BayesMixedGLMClassifier,
    ClusterInputCNNClassifier,
    ClusterInputMLPClassifier,
    ClusterInputMLPRegressor,
    DomainAdversarialCNNClassifier,
    DomainAdversarialMLPClassifier,
    DomainAdversarialMLPRegressor,
    MixedEffectsCNNClassifier,
    MixedEffectsMLPClassifier,
    MixedEffectsMLPRegressor,
    MixedLMRegressor,
)
from perslib.cnn import CNNClassifier
from perslib.mlp import MLPClassifier, MLPRegressor
from perslib.personalized import (
    KNNLocalRegressor,
    MixtureRegressor,
    PersonalizedClassifier,
    PersonalizedRegressor,
    PopulationClassifier,
    PopulationRegressor,
    VaryingCoefficientClassifier,
    VaryingCoefficientRegressor,
)

pytestmark = pytest.mark.contract  # the API contract: make test-portable skips it

NET = {"epochs": 3, "batch_size": 32, "hidden": (8,), "device": "cpu", "random_state": 0, "progress": False}
ARMED = {**NET, "adversary_hidden": (4,), "zpredictor_hidden": (4,)}
PR = {"rank": 2, "epochs": 3, "device": "cpu", "random_state": 0, "progress": False}

# (estimator, what its fit needs besides X and y, classifier?)
CASES = [
    (MLPClassifier(**NET), "", True),
    (MLPRegressor(**NET), "", False),
    (PersonalizedRegressor(**PR), "covariates", False),
    (PersonalizedClassifier(**PR), "covariates", True),
    (PopulationRegressor(), "", False),
    (PopulationClassifier(), "", True),
    (MixtureRegressor(n_components=2, n_init=1, random_state=0), "covariates", False),
    (VaryingCoefficientRegressor(), "covariates", False),
    (VaryingCoefficientClassifier(), "covariates", True),
    (KNNLocalRegressor(n_neighbors=10), "covariates", False),
    (ARMEDClassifier(**ARMED), "groups", True),
    (ARMEDAutoencoder(latent_dim=2, **ARMED), "groups", True),
    (ARMEDRegressor(**ARMED), "groups", False),
    (DomainAdversarialMLPClassifier(**ARMED), "groups", True),
    (DomainAdversarialMLPRegressor(**ARMED), "groups", False),
    (MixedEffectsMLPClassifier(**ARMED), "groups", True),
    (MixedEffectsMLPRegressor(**ARMED), "groups", False),
    (ClusterInputMLPClassifier(**NET), "groups", True),
    (ClusterInputMLPRegressor(**NET), "groups", False),
    (MixedLMRegressor(), "groups", False),
    (BayesMixedGLMClassifier(random_state=0), "groups", True),
]
IDS = [type(e).__name__ for e, _, _ in CASES]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n = 120
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    g = np.repeat(["s1", "s2", "s3", "s4"], n // 4)
    U = pd.DataFrame({"u": rng.normal(size=n), "v": rng.normal(size=n)})
    y_reg = (
        X["a"]
        - 2 * X["b"]
        + 0.5 * X["c"]
        + pd.Series(g).map({"s1": 0, "s2": 1, "s3": -1, "s4": 2})
        + 0.1 * rng.normal(size=n)
    )
    y_clf = (y_reg > np.median(y_reg)).astype(int).to_numpy()
    return X, y_reg.to_numpy(), y_clf, g, U


def _extra(needs, g, U, rows=slice(None)):
    if needs == "groups":
        return {"groups": g[rows]}
    if needs == "covariates":
        return {"covariates": U.iloc[rows]}
    return {}


def _fitted(est, needs, clf, data):
    X, y_reg, y_clf, g, U = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return clone(est).fit(X, y_clf if clf else y_reg, **_extra(needs, g, U))


def _predict(model, X, needs, data, rows=slice(None)):
    _, _, _, g, U = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        method = model.predict_proba if hasattr(model, "predict_proba") else model.predict
        return np.asarray(method(X, **_extra(needs, g, U, rows)), dtype=float)


@pytest.mark.parametrize(("est", "needs", "clf"), CASES, ids=IDS)
def test_reordered_or_renamed_columns_are_refused(est, needs, clf, data):
    """Defect: 15 of 21 estimators predicted silently wrong on reordered DataFrame columns."""
    X = data[0]
    model = _fitted(est, needs, clf, data)
    assert list(model.feature_names_in_) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="feature names should match"):
        _predict(model, X[["c", "a", "b"]], needs, data)
    with pytest.raises(ValueError, match="feature names should match"):
        _predict(model, X.rename(columns={"a": "z"}), needs, data)
    np.testing.assert_allclose(_predict(model, X, needs, data), _predict(model, X.to_numpy(), needs, data))


@pytest.mark.parametrize(
    ("est", "needs", "clf"),
    [c for c in CASES if c[1] == "covariates"],
    ids=[i for i, c in zip(IDS, CASES) if c[1] == "covariates"],
)
def test_reordered_covariates_are_refused(est, needs, clf, data):
    """Defect: the covariate tables of the baselines were positional."""
    X, _, _, g, U = data
    model = _fitted(est, needs, clf, data)
    assert list(model.covariate_names_in_) == ["u", "v"]
    method = model.predict_proba if clf else model.predict
    with pytest.raises(ValueError, match="covariates column names should match"):
        method(X, covariates=U[["v", "u"]])


@pytest.mark.parametrize(("est", "needs", "clf"), CASES, ids=IDS)
def test_predict_before_fit_raises_not_fitted(est, needs, clf, data):
    """Defect: 9 estimators raised AttributeError instead of NotFittedError."""
    X, _, _, g, U = data
    methods = ["predict"] + [m for m in ("predict_proba", "decision_function") if hasattr(est, m)]
    for name in methods:
        with pytest.raises(NotFittedError):
            getattr(est, name)(X, **_extra(needs, g, U))


@pytest.mark.parametrize(("est", "needs", "clf"), CASES, ids=IDS)
def test_fit_leaves_the_callers_random_streams_alone(est, needs, clf, data):
    """Defect: fit reseeded torch's global generator (and so the caller's stream)."""
    torch.manual_seed(123)
    np.random.seed(7)
    expected_t, expected_n = torch.rand(3), np.random.rand(3)
    torch.manual_seed(123)
    np.random.seed(7)
    _fitted(est, needs, clf, data)
    np.testing.assert_array_equal(torch.rand(3), expected_t)
    np.testing.assert_array_equal(np.random.rand(3), expected_n)


@pytest.mark.parametrize(("est", "needs", "clf"), CASES, ids=IDS)
def test_save_and_load_give_the_same_predictions(est, needs, clf, data, tmp_path):
    """Defect: ARMED and MLP models had no save/load; personalized load was a bare pickle.load."""
    X = data[0]
    model = _fitted(est, needs, clf, data)
    path = tmp_path / "model.pt"
    model.save(path)
    loaded = perslib.load(path)
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    np.testing.assert_allclose(_predict(loaded, X, needs, data), _predict(model, X, needs, data), rtol=1e-6, atol=1e-7)
    assert type(model).load(path).get_params() == model.get_params()
    plain = pickle.loads(pickle.dumps(model))  # pickle keeps working, for trusted files
    np.testing.assert_allclose(_predict(plain, X, needs, data), _predict(model, X, needs, data))


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch PWNED_BY_PICKLE",))


def test_a_crafted_file_does_not_run_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "model.pt"
    torch.save({"format": "perslib-estimator/1", "payload": _Exploit()}, path)
    with pytest.raises(ValueError, match="not a perslib model file"):
        perslib.load(path)
    assert not (tmp_path / "PWNED_BY_PICKLE").exists()
    with open(tmp_path / "plain.pkl", "wb") as fh:
        pickle.dump(_Exploit(), fh)
    with pytest.raises(ValueError, match="not a perslib model file"):
        perslib.load(tmp_path / "plain.pkl")
    assert not (tmp_path / "PWNED_BY_PICKLE").exists()


def test_load_checks_format_class_and_version(tmp_path, data):
    X, y_reg, *_ = data
    torch.save({"some": "dict"}, tmp_path / "dict.pt")
    with pytest.raises(ValueError, match="no 'perslib-estimator/1' marker"):
        perslib.load(tmp_path / "dict.pt")
    model = PopulationRegressor().fit(X, y_reg)
    model.save(tmp_path / "pop.pt")
    with pytest.raises(ValueError, match="holds a PopulationRegressor, not a MLPRegressor"):
        MLPRegressor.load(tmp_path / "pop.pt")
    content = torch.load(tmp_path / "pop.pt", weights_only=True)
    content["perslib_version"] = "0.0.1"
    torch.save(content, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="written by perslib 0.0.1"):
        perslib.load(tmp_path / "old.pt")
    content["perslib_version"] = perslib.__version__
    content["estimator"]["class"] = "os.system"
    torch.save(content, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="'os.system', which is not a perslib estimator"):
        perslib.load(tmp_path / "other.pt")


@pytest.mark.parametrize(
    "est", [MLPClassifier(**NET), ClusterInputMLPClassifier(**NET), ARMEDClassifier(**ARMED)], ids=type
)
def test_continuous_targets_are_not_classes(est, data):
    """Defect: MLPClassifier and ClusterInputMLPClassifier took 60 floats as 60 classes."""
    X, y_reg, _, g, _ = data
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        est.fit(X, y_reg, groups=g)


def test_cluster_input_regressor_standardizes_its_target(data):
    """Defect: ClusterInputMLPRegressor predicted ≈0.3 for targets near 1e5."""
    X, y_reg, _, g, _ = data
    model = ClusterInputMLPRegressor(**{**NET, "epochs": 30}).fit(X, 1e5 + 10 * y_reg, groups=g)
    pred = model.predict(X, groups=g)
    assert abs(pred.mean() - 1e5) < 20 and np.corrcoef(pred, y_reg)[0, 1] > 0.8


@pytest.mark.parametrize("cls", [PopulationRegressor, PopulationClassifier])
def test_population_models_accept_covariates_they_were_not_fitted_with(cls, data):
    """Defect: fitted without covariates, they crashed at predict when covariates were passed."""
    X, y_reg, y_clf, _, U = data
    y = y_clf if cls is PopulationClassifier else y_reg
    model = cls().fit(X, y)
    np.testing.assert_array_equal(model.predict(X, covariates=U), model.predict(X))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        cls().fit(X, y, covariates=U.iloc[:-3])


def test_mixed_lm_gives_clear_errors_and_takes_mixed_labels(data):
    """Defect: MixedLMRegressor passed raw statsmodels/numpy errors through."""
    X, y_reg, _, g, _ = data
    mixed = np.where(np.arange(len(g)) % 2 == 0, g, np.arange(len(g)) % 3).astype(object)  # strings and ints
    model = MixedLMRegressor().fit(X, y_reg, groups=mixed)
    assert len(model.random_effects_) == len(set(mixed)) and np.isfinite(model.predict(X, groups=mixed)).all()
    for n in (1, 2):
        with pytest.raises(ValueError, match=rf"needs at least 6 samples for 4 fixed effects, got {n} sample"):
            MixedLMRegressor().fit(X.iloc[:n], y_reg[:n], groups=g[:n])
    with pytest.raises(ValueError, match="at least 2 clusters"):
        MixedLMRegressor().fit(X, y_reg, groups=np.zeros(len(g)))


@pytest.mark.parametrize(
    "est", [ARMEDClassifier(**ARMED), PersonalizedClassifier(**PR), BayesMixedGLMClassifier()], ids=type
)
def test_binary_only_classifiers_say_so(est):
    assert est.__sklearn_tags__().classifier_tags.multi_class is False
    assert MLPClassifier().__sklearn_tags__().classifier_tags.multi_class is True


def test_complex_and_sparse_inputs_get_clear_errors(data):
    X, y_reg, *_ = data
    with pytest.raises(ValueError, match="Complex data not supported: X must be real-valued"):
        MLPRegressor(**NET).fit(X.to_numpy() + 1j, y_reg)
    with pytest.raises(TypeError, match="sparse input is not supported: pass X.toarray()"):
        MLPRegressor(**NET).fit(sp.csr_matrix(X.to_numpy()), y_reg)


def test_parameter_constraints_name_the_parameter(data):
    X, y_reg, _, g, _ = data
    with pytest.raises(
        ValueError, match=r"The 'epochs' parameter of MLPRegressor must be an int in the range \[1, inf\); got 0"
    ):
        MLPRegressor(epochs=0).fit(X, y_reg)
    with pytest.raises(
        ValueError, match="The 'slopes' parameter of ARMEDRegressor must be one of 'linear', 'nonlinear', 'none'"
    ):
        ARMEDRegressor(slopes="quadratic").fit(X, y_reg, groups=g)
    with pytest.raises(TypeError, match="positional"):
        MLPRegressor((8,), "relu")  # keyword-only after the first argument


# -- image estimators (perslib.cnn, ARMED on the convolutional backbone) ------------------------
CNN_NET = {**NET, "channels": (4,), "hidden": (8,)}
ARMED_CNN = {**CNN_NET, "adversary_hidden": (4,), "zpredictor_channels": (4,), "zpredictor_hidden": (4,)}
IMAGE_CASES = [
    CNNClassifier(**CNN_NET),
    ClusterInputCNNClassifier(**CNN_NET),
    ARMEDImageClassifier(**ARMED_CNN),
    DomainAdversarialCNNClassifier(**ARMED_CNN),
    MixedEffectsCNNClassifier(**ARMED_CNN),
]


@pytest.fixture(scope="module")
def image_data():
    rng = np.random.default_rng(0)
    g = np.repeat(["s1", "s2", "s3"], 30)
    X = rng.normal(size=(90, 2, 8, 8)).astype(np.float32)
    y = (X[:, 0, 2:6, 2:6].mean(axis=(1, 2)) > 0).astype(int)
    return X, y, g


@pytest.mark.parametrize("est", IMAGE_CASES, ids=type)
def test_image_estimators_contract(est, image_data, tmp_path):
    """NotFittedError, the caller's random streams, save / load and pickle for the image models."""
    X, y, g = image_data
    with pytest.raises(NotFittedError):
        est.predict(X, groups=g)
    torch.manual_seed(123)
    np.random.seed(7)
    expected_t, expected_n = torch.rand(3), np.random.rand(3)
    torch.manual_seed(123)
    np.random.seed(7)
    model = clone(est).fit(X, y, groups=g)
    np.testing.assert_array_equal(torch.rand(3), expected_t)
    np.testing.assert_array_equal(np.random.rand(3), expected_n)
    assert model.n_features_in_ == 2 and model.image_shape_ == (2, 8, 8)
    model.save(tmp_path / "model.pt")
    loaded = perslib.load(tmp_path / "model.pt")
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    np.testing.assert_allclose(
        loaded.predict_proba(X, groups=g), model.predict_proba(X, groups=g), rtol=1e-6, atol=1e-7
    )
    plain = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(plain.predict_proba(X, groups=g), model.predict_proba(X, groups=g))
    with pytest.raises(ValueError, match=r"X must be images of shape \(n, C, H, W\)"):
        model.predict(X.reshape(len(X), -1), groups=g)
