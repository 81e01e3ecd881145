import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_moons
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GroupKFold, cross_val_score

from perslib.mlp import MLP, MLPClassifier, MLPRegressor


def test_mlp_module_shapes_and_hidden():
    net = MLP(4, hidden=(8, 6), out_features=3)
    out, hidden = net(torch.zeros(5, 4), return_hidden=True)
    assert out.shape == (5, 3) and [h.shape for h in hidden] == [(5, 8), (5, 6)]
    with pytest.raises(ValueError, match="activation"):
        MLP(2, activation="swish!")


def test_linear_mlp_regressor_matches_ordinary_least_squares():
    # hidden=() makes the network a linear model: its fit must equal the closed form.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 3)) * [1.0, 3.0, 0.5] + [2.0, -1.0, 0.0]
    y = X @ [0.7, -1.2, 2.0] + 4.0 + 0.2 * rng.normal(size=500)
    reg = MLPRegressor(hidden=(), epochs=300, lr=0.01, batch_size=100, val_fraction=0.0, random_state=0).fit(X, y)
    ols = LinearRegression().fit(X, y)
    assert np.allclose(reg.predict(X), ols.predict(X), atol=0.02)


def test_classifier_learns_moons_and_is_deterministic():
    X, y = make_moons(600, noise=0.15, random_state=0)
    a = MLPClassifier(random_state=1, epochs=60).fit(X, y)
    b = MLPClassifier(random_state=1, epochs=60).fit(X, y)
    assert a.score(X, y) > 0.95
    assert np.array_equal(a.predict_proba(X), b.predict_proba(X))
    proba = a.predict_proba(X)
    assert proba.shape == (600, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert set(a.history_.columns) >= {"epoch", "train_loss", "val_loss"}


def test_multiclass_and_string_labels():
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0], [4, 0], [0, 4]])
    labels = np.repeat(["a", "b", "c"], 100)
    X = centers[np.repeat([0, 1, 2], 100)] + rng.normal(size=(300, 2))
    clf = MLPClassifier(random_state=0, epochs=40).fit(X, labels)
    assert clf.classes_.tolist() == ["a", "b", "c"]
    assert clf.score(X, labels) > 0.9
    assert clf.predict_proba(X).shape == (300, 3)


def test_sklearn_contract_and_group_cv():
    X, y = make_moons(300, noise=0.2, random_state=0)
    groups = np.arange(300) % 5
    clf = MLPClassifier(epochs=5, random_state=0)
    assert clone(clf).get_params() == clf.get_params()
    assert clf.fit(X, y, groups=groups) is clf
    scores = cross_val_score(MLPClassifier(epochs=5, random_state=0), X, y, groups=groups, cv=GroupKFold(5))
    assert scores.shape == (5,)


def test_dataframe_names_are_kept():
    X = pd.DataFrame({"age": [1.0, 2.0, 3.0, 4.0] * 10, "dose": [0.0, 1.0, 0.0, 1.0] * 10})
    y = (X["dose"] > 0).astype(int)
    clf = MLPClassifier(epochs=2, random_state=0).fit(X, y)
    assert clf.feature_names_in_.tolist() == ["age", "dose"]


@pytest.mark.parametrize(
    "X, y, groups, message",
    [
        ([[0.0], [np.nan]], [0, 1], None, "X contains NaN"),
        ([[0.0], [1.0]], [0, 0], None, "at least 2 classes"),
        ([[0.0], [1.0], [2.0]], [0, 1], None, "X has 3, y has 2"),
        ([[0.0], [1.0]], [0, 1], [1, 2, 3], "groups has 3"),
    ],
)
def test_bad_input_raises_named_errors(X, y, groups, message):
    with pytest.raises(ValueError, match=message):
        MLPClassifier(epochs=1).fit(X, y, groups=groups)


def test_predict_checks_feature_count_and_fit_state():
    X, y = make_moons(100, random_state=0)
    with pytest.raises(NotFittedError, match="not fitted"):
        MLPClassifier().predict(X)
    clf = MLPClassifier(epochs=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="3 features"):
        clf.predict(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="y contains NaN"):
        MLPRegressor(epochs=1).fit(X, np.r_[np.nan, np.zeros(99)])
