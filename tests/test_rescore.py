"""score_fitted: the fitted fold models of a cross-validation on altered test rows."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GroupKFold

from perslib.armed import ClusterInputMLPClassifier
from perslib.evaluation import cross_validate_models, score_fitted


@pytest.fixture(scope="module")
def cv_run():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(240, 3)), columns=["a", "b", "c"])
    groups = np.repeat(np.arange(8), 30)
    y = (X["a"] + 0.5 * (groups % 2) + rng.normal(0, 0.5, 240) > 0).astype(int)
    models = {"logistic": LogisticRegression(), "cluster MLP": ClusterInputMLPClassifier(epochs=3, random_state=0)}
    scores, fitted = cross_validate_models(models, X, y, groups, GroupKFold(4), return_estimators=True)
    return X, y, groups, scores, fitted


def test_same_rows_give_the_cross_validation_scores(cv_run):
    X, y, groups, scores, fitted = cv_run
    again = score_fitted(fitted, X, y, groups)
    merged = scores.merge(again, on=["fold", "model", "metric"], suffixes=("", "_again"))
    assert len(merged) == len(scores[scores["metric"] != "fit_time"])
    np.testing.assert_array_equal(merged["value"], merged["value_again"])


def test_altered_rows_are_scored_by_each_folds_own_model(cv_run):
    X, y, groups, _, fitted = cv_run
    flipped = X.assign(a=-X["a"])
    out = score_fitted(fitted, flipped, y, groups, models=["logistic"])
    for f in range(4):
        test = fitted[("splits", f)][1]
        expected = accuracy_score(y[test], fitted[(f, "logistic")].predict(flipped.iloc[test]))
        got = out.query("fold == @f and metric == 'accuracy'")["value"].item()
        assert got == expected
    assert out.query("metric == 'accuracy'")["value"].mean() < 0.5  # the sign of the main feature reversed


def test_bad_input(cv_run):
    X, y, groups, _, fitted = cv_run
    with pytest.raises(ValueError, match="models"):
        score_fitted(fitted, X, y, groups, models=["nope"])
    with pytest.raises(ValueError, match="splits"):
        score_fitted({}, X, y, groups)
    with pytest.raises(ValueError, match="length|rows|consistent"):
        score_fitted(fitted, X.iloc[:100], y[:100], groups[:100])
    with pytest.raises(ValueError, match="variants"):
        score_fitted(fitted, X, y, groups, variants={"v": ("nope", {})})
