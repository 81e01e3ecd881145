"""perslib.evaluation against scikit-learn's own cross-validation and closed forms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold, cross_val_score

from perslib.evaluation import (
    cross_validate_models,
    label_cluster_strata,
    summarize_folds,
)


@pytest.fixture
def clf_data():
    X, y = make_classification(n_samples=300, n_features=5, n_informative=3, random_state=0)
    groups = np.repeat(np.arange(6), 50)
    return X, y, groups


def _values(scores, model, metric):
    part = scores[(scores["model"] == model) & (scores["metric"] == metric)].sort_values("fold")
    return part["value"].to_numpy()


class GroupRecorder(ClassifierMixin, BaseEstimator):
    """Predicts the majority class; records the groups it was fitted and asked about.

    ``predict(..., flip=True)`` predicts the minority class instead (a 'variant').
    """

    def __init__(self, log=None):
        self.log = log

    def fit(self, X, y, groups=None):
        self.classes_, counts = np.unique(y, return_counts=True)
        self.majority_ = self.classes_[np.argmax(counts)]
        self.fit_groups_ = set(np.asarray(groups).tolist())
        return self

    def predict(self, X, groups=None, flip=False):
        self.predict_groups_ = None if groups is None else set(np.asarray(groups).tolist())
        label = self.classes_[self.classes_ != self.majority_][0] if flip else self.majority_
        return np.full(len(X), label)

    def predict_proba(self, X, groups=None, flip=False):
        p1 = float((self.predict(X, groups, flip) == self.classes_[1])[0])
        return np.column_stack([np.full(len(X), 1 - p1), np.full(len(X), p1)])


def test_classification_scores_equal_sklearn_cross_val_score(clf_data):
    X, y, g = clf_data
    cv = StratifiedKFold(4, shuffle=True, random_state=1)
    scores = cross_validate_models({"logreg": LogisticRegression()}, X, y, g, cv)
    np.testing.assert_allclose(
        _values(scores, "logreg", "accuracy"), cross_val_score(LogisticRegression(), X, y, cv=cv, scoring="accuracy")
    )
    np.testing.assert_allclose(
        _values(scores, "logreg", "auroc"), cross_val_score(LogisticRegression(), X, y, cv=cv, scoring="roc_auc")
    )
    assert (_values(scores, "logreg", "fit_time") > 0).all()
    assert list(scores.columns) == ["fold", "model", "metric", "value"]


def test_regression_scores_equal_sklearn_cross_val_score():
    X, y = make_regression(n_samples=200, n_features=4, noise=5.0, random_state=0)
    scores = cross_validate_models({"ridge": Ridge(alpha=3.0)}, pd.DataFrame(X), y, cv=5)
    np.testing.assert_allclose(_values(scores, "ridge", "r2"), cross_val_score(Ridge(alpha=3.0), X, y, cv=KFold(5)))
    np.testing.assert_allclose(
        _values(scores, "ridge", "mse"),
        -cross_val_score(Ridge(alpha=3.0), X, y, cv=KFold(5), scoring="neg_mean_squared_error"),
    )


def test_groups_reach_the_estimators_and_group_folds_hold_clusters_out(clf_data):
    X, y, g = clf_data
    seen = {}

    def record(name, est, train, test):
        seen[len(seen)] = (est.fit_groups_, est.predict_groups_, set(g[train]), set(g[test]))
        return {"n_test": len(test)}

    scores = cross_validate_models({"rec": GroupRecorder()}, X, y, g, GroupKFold(3), on_fold=record)
    assert len(seen) == 3
    for fit_g, pred_g, train_g, test_g in seen.values():
        assert fit_g == train_g and pred_g == test_g and not fit_g & pred_g
    assert _values(scores, "rec", "n_test").sum() == len(y)


def test_label_cluster_strata_put_every_cluster_in_every_fold(clf_data):
    X, y, g = clf_data
    strata = label_cluster_strata(y, g)
    assert len(set(strata)) == len(set(zip(g, y)))
    for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(X, strata):
        assert set(g[train]) == set(g[test]) == set(g)
    seen = []
    cross_validate_models(
        {"rec": GroupRecorder()},
        X,
        y,
        g,
        StratifiedKFold(5),
        stratify=strata,
        on_fold=lambda n, est, tr, te: seen.append(est.predict_groups_ == set(g)),
    )
    assert seen and all(seen)
    with pytest.raises(ValueError, match="groups"):
        label_cluster_strata(y, g[:-1])


def test_variants_score_extra_predictions_of_the_same_fit(clf_data):
    X, y, g = clf_data
    scores = cross_validate_models(
        {"maj": GroupRecorder()}, X, y, g, StratifiedKFold(3), variants={"maj, flipped": ("maj", {"flip": True})}
    )
    acc, acc_flip = _values(scores, "maj", "accuracy"), _values(scores, "maj, flipped", "accuracy")
    np.testing.assert_allclose(acc + acc_flip, 1.0)  # majority and minority class shares
    assert acc.min() > 0.45
    assert len(_values(scores, "maj, flipped", "fit_time")) == 0  # no extra fit
    assert scores["model"].unique().tolist() == ["maj", "maj, flipped"]


def test_a_variant_can_replace_the_test_groups(clf_data):
    X, y, g = clf_data
    last = []
    cross_validate_models(
        {"rec": GroupRecorder()},
        X,
        y,
        g,
        GroupKFold(3),
        variants={"rec, no groups": ("rec", {"groups": None})},
        on_fold=lambda n, est, tr, te: last.append(est.predict_groups_),
    )
    assert last == [None] * 3  # the variant's predict calls (made after the model's) saw no groups


def test_parallel_folds_give_the_same_scores(clf_data):
    X, y, g = clf_data
    kw = {"cv": StratifiedKFold(3, shuffle=True, random_state=0)}
    a = cross_validate_models({"lr": LogisticRegression(C=0.5)}, X, y, g, **kw)
    b = cross_validate_models({"lr": LogisticRegression(C=0.5)}, X, y, g, n_jobs=2, **kw)
    keep = a["metric"] != "fit_time"
    pd.testing.assert_frame_equal(a[keep].reset_index(drop=True), b[b["metric"] != "fit_time"].reset_index(drop=True))


def test_summarize_folds_is_mean_plus_minus_z_sd_over_root_k():
    rng = np.random.default_rng(0)
    vals = {"a": rng.random(5), "b": rng.random(5) + 1}
    scores = pd.DataFrame(
        [(f, m, "accuracy", v) for m, vs in vals.items() for f, v in enumerate(vs)],
        columns=["fold", "model", "metric", "value"],
    )
    summary = summarize_folds(scores)
    z = stats.norm.ppf(0.975)
    for m, vs in vals.items():
        row = summary.loc[(m, "accuracy")]
        half = z * vs.std(ddof=1) / np.sqrt(5)
        np.testing.assert_allclose(
            [row["mean"], row["low"], row["high"]], [vs.mean(), vs.mean() - half, vs.mean() + half]
        )
        assert row["n_folds"] == 5
    assert summarize_folds(scores, metrics=["auroc"]).empty
    with pytest.raises(ValueError, match="columns"):
        summarize_folds(scores.drop(columns="fold"))


def test_bad_arguments(clf_data):
    X, y, g = clf_data
    with pytest.raises(ValueError, match="non-empty mapping"):
        cross_validate_models({}, X, y, g)
    with pytest.raises(ValueError, match="variants"):
        cross_validate_models({"a": LogisticRegression()}, X, y, g, variants={"b": ("missing", {})})
    with pytest.raises(ValueError, match="task="):
        cross_validate_models({"a": LogisticRegression(), "b": Ridge()}, X, y, g)
    with pytest.raises(ValueError, match="task must be"):
        cross_validate_models({"a": LogisticRegression()}, X, y, g, task="ranking")
    with pytest.raises(ValueError, match="X"):
        cross_validate_models({"a": LogisticRegression()}, X[:-1], y, g)
    with pytest.raises(ValueError, match="cv must be"):
        cross_validate_models({"a": LogisticRegression()}, X, y, g, cv="five")


def test_return_estimators_gives_the_fitted_models_of_each_fold(clf_data):
    X, y, g = clf_data
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    scores, fitted = cross_validate_models({"lr": LogisticRegression()}, X, y, g, cv, return_estimators=True)
    for f, (train, test) in enumerate(cv.split(X, y)):
        np.testing.assert_array_equal(fitted[("splits", f)][1], test)
        ref = LogisticRegression().fit(X[train], y[train])
        np.testing.assert_allclose(fitted[(f, "lr")].coef_, ref.coef_)
        assert _values(scores, "lr", "accuracy")[f] == pytest.approx(ref.score(X[test], y[test]))


def test_with_covariates_routes_columns_like_a_direct_call():
    from perslib.evaluation import WithCovariates
    from perslib.personalized import VaryingCoefficientRegressor

    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame({"x": rng.normal(size=n), "u": rng.normal(size=n)})
    y = (1 + frame["u"]) * frame["x"] + 0.1 * rng.normal(size=n)
    wrapped = WithCovariates(VaryingCoefficientRegressor(), covariates=["u"])
    direct = VaryingCoefficientRegressor().fit(frame[["x"]], y, covariates=frame[["u"]])
    np.testing.assert_allclose(
        wrapped.fit(frame, y, groups=np.zeros(n)).predict(frame), direct.predict(frame[["x"]], covariates=frame[["u"]])
    )
    scores = cross_validate_models({"vc": wrapped}, frame, y.to_numpy(), cv=KFold(4))
    assert (_values(scores, "vc", "r2") > 0.9).all()  # the interaction is found on every fold
    with pytest.raises(ValueError, match="covariates"):
        WithCovariates(VaryingCoefficientRegressor(), covariates=["nope"]).fit(frame, y)


def test_on_columns_fits_on_the_selected_columns_and_passes_groups(clf_data):
    from perslib.evaluation import OnColumns

    X, y, g = clf_data
    frame = pd.DataFrame(X, columns=[f"c{j}" for j in range(X.shape[1])])
    wrapped = OnColumns(LogisticRegression(), columns=["c0", "c2"]).fit(frame, y, groups=g)
    ref = LogisticRegression().fit(X[:, [0, 2]], y)
    np.testing.assert_allclose(wrapped.predict_proba(frame), ref.predict_proba(X[:, [0, 2]]))
    rec = OnColumns(GroupRecorder(), columns=["c1"]).fit(frame, y, groups=g)
    assert rec.estimator_.fit_groups_ == set(g)
    flipped = rec.predict(frame, groups=g, flip=True)  # extra arguments reach the estimator
    assert (flipped != rec.estimator_.majority_).all()
    scores = cross_validate_models({"on": OnColumns(LogisticRegression(), columns=["c0", "c2"])}, frame, y, g, cv=3)
    np.testing.assert_allclose(
        _values(scores, "on", "accuracy"), cross_val_score(LogisticRegression(), X[:, [0, 2]], y, cv=StratifiedKFold(3))
    )
    with pytest.raises(ValueError, match="columns"):
        OnColumns(LogisticRegression(), columns=["zz"]).fit(frame, y)
