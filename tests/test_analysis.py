"""perslib.analysis (the steps of the report notebook 08) and the intraclass correlation, against
closed forms, statsmodels and scikit-learn; every bad input with its one-line error."""

import time

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from sklearn.metrics import adjusted_rand_score

from perslib import analysis
from perslib.analysis import ReportDataError, load_table, prepare_data, random_effect_intervals
from perslib.armed import ARMEDRegressor, BayesMixedGLMClassifier, MixedLMRegressor
from perslib.evaluation import corrected_t_interval, intraclass_correlation, mean_ci, split_ratio
from perslib.mlp import MLPRegressor


# --------------------------------------------------------------------------- intraclass correlation
def _balanced(K=40, m=12, tau=0.7, seed=0):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(K), m)
    return rng.normal(size=K)[g] * tau + rng.normal(size=K * m), g


def test_icc_equals_the_one_way_anova_estimator_on_balanced_data():
    """For balanced data with MSB > MSW, REML's variance components are the ANOVA estimates."""
    y, g = _balanced()
    K, m = 40, 12
    means = np.array([y[g == k].mean() for k in range(K)])
    msb = m * ((means - y.mean()) ** 2).sum() / (K - 1)
    msw = sum(((y[g == k] - means[k]) ** 2).sum() for k in range(K)) / (K * m - K)
    r = intraclass_correlation(y, g)
    assert r.between_variance == pytest.approx((msb - msw) / m, rel=1e-4)
    assert r.within_variance == pytest.approx(msw, rel=1e-4)
    assert r.icc == pytest.approx(((msb - msw) / m) / ((msb - msw) / m + msw), rel=1e-4)
    assert r.n_clusters == K and r.n_samples == K * m and r.method == "linear" and not r.conditional


def test_conditional_icc_is_statsmodels_mixedlm_with_the_features():
    rng = np.random.default_rng(1)
    g = rng.integers(25, size=600)
    X = rng.normal(size=(600, 2)) + rng.normal(size=25)[g, None]  # features that differ by cluster
    y = X @ [1.5, -1.0] + rng.normal(size=25)[g] * 0.5 + rng.normal(size=600)
    r = intraclass_correlation(y, g, X=X)
    res = sm.MixedLM(y, np.column_stack([np.ones(600), X]), groups=g).fit(reml=True)
    tau2 = float(np.asarray(res.cov_re)[0, 0])
    assert r.icc == pytest.approx(tau2 / (tau2 + res.scale), rel=1e-6) and r.conditional
    # the features explain part of the cluster differences: less between-cluster variance is left
    assert r.between_variance < 0.5 * intraclass_correlation(y, g).between_variance


def test_icc_is_near_zero_without_clusters_and_string_labels_work():
    rng = np.random.default_rng(2)
    y = rng.normal(size=800)
    g = np.array([f"site {k}" for k in rng.integers(20, size=800)], dtype=object)
    r = intraclass_correlation(y, g)
    assert 0.0 <= r.icc < 0.03


def test_logistic_icc_recovers_the_latent_scale_icc():
    rng = np.random.default_rng(3)
    K, m, tau = 200, 50, 1.0
    g = np.repeat(np.arange(K), m)
    eta = rng.normal(size=K)[g] * tau + 0.3
    y = np.where(rng.random(K * m) < 1 / (1 + np.exp(-eta)), "yes", "no")
    r = intraclass_correlation(y, g, method="logistic", random_state=0)
    assert r.within_variance == pytest.approx(np.pi**2 / 3)
    assert r.icc == pytest.approx(tau**2 / (tau**2 + np.pi**2 / 3), abs=0.04)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(y=[1.0, np.nan, 2.0, 3.0], groups=[0, 0, 1, 1]), "y"),
        (dict(y=[1.0, 2.0, 3.0, 4.0], groups=[0, 0, 0, 0]), "groups"),
        (dict(y=[1.0, 2.0, 3.0, 4.0], groups=[0, None, 1, 1]), "groups"),
        (dict(y=[1.0, 2.0, 3.0], groups=[0, 0, 1, 1]), "groups"),
        (dict(y=[1.0, 2.0, 3.0, 4.0], groups=[0, 0, 1, 1], method="probit"), "method"),
        (dict(y=["a", "b", "c", "a"], groups=[0, 0, 1, 1], method="logistic"), "2 classes"),
    ],
)
def test_icc_bad_input_names_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        intraclass_correlation(**kwargs)


# --------------------------------------------------------------------------- reading files
@pytest.fixture()
def table():
    rng = np.random.default_rng(0)
    n = 240
    g = np.repeat([f"h{k}" for k in range(12)], n // 12)
    frame = pd.DataFrame(
        {
            "y": rng.normal(size=n) + np.repeat(rng.normal(size=12) * 2, n // 12),
            "hospital": g,
            "age": rng.normal(50, 10, size=n),
            "sex": rng.choice(["f", "m"], size=n),
            "stage": rng.choice(["I", "II", "III"], size=n),
            "smoker": rng.random(n) < 0.3,
            "u_size": np.repeat(rng.normal(size=12), n // 12),
        }
    )
    return frame


@pytest.mark.parametrize("name", ["t.csv", "t.tsv", "t.csv.gz", "t.parquet"])
def test_load_table_reads_csv_tsv_gzip_and_parquet(table, tmp_path, name):
    path = tmp_path / name
    if name.endswith("parquet"):
        table.to_parquet(path)
    else:
        table.to_csv(path, sep="\t" if ".tsv" in name else ",", index=False)
    back = load_table(path)
    assert list(back.columns) == list(table.columns) and len(back) == len(table)
    np.testing.assert_allclose(back["age"], table["age"])


def test_load_table_semicolon_csv_is_sniffed(table, tmp_path):
    table.to_csv(tmp_path / "t.csv", sep=";", index=False)
    assert list(load_table(tmp_path / "t.csv").columns) == list(table.columns)


def test_load_table_packaged_dataset():
    frame = load_table("dataset:grunfeld")
    assert frame.shape == (220, 5)
    with pytest.raises(ReportDataError, match="no dataset named 'iris'.*grunfeld"):
        load_table("dataset:iris")


def _file(name, content):
    def make(folder):
        (folder / name).write_bytes(content)
        return folder / name

    return make


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda p: p / "missing.csv", "does not exist"),
        (lambda p: p, "is a folder"),
        (_file("t.xlsx", b"x"), "unknown format '.xlsx'"),
        (_file("t.parquet", b"not parquet at all"), "could not be read as Parquet"),
        (_file("t.csv", b""), "could not be read as CSV: No columns to parse"),
        (_file("t.csv", b"y,g\n"), "has a header but no rows"),
        (_file("t.csv", b"y\n1\n2\n"), "has 1 column"),
        (_file("t.csv", b'a,b\n1,"2\n'), "could not be read as CSV"),
    ],
)
def test_load_table_bad_files_give_one_line_errors(tmp_path, make, match):
    path = make(tmp_path)
    with pytest.raises(ReportDataError, match=match) as err:
        load_table(path)
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------- checking and encoding
def test_prepare_data_encodes_and_keeps_every_row(table):
    d = prepare_data(table, target="y", groups="hospital", covariates=["u_size"], n_folds=3)
    assert d.task == "regression" and d.features == ["age", "sex", "stage", "smoker"]
    assert list(d.X.columns) == ["age", "sex=m", "stage=II", "stage=III", "smoker=True"]
    np.testing.assert_array_equal(d.X["sex=m"], (table["sex"] == "m").astype(float))
    np.testing.assert_array_equal(d.X["stage=III"], (table["stage"] == "III").astype(float))
    assert d.encoding["stage"] == ["stage=II", "stage=III"] and d.encoding["age"] == ["age"]
    assert d.n_rows == d.n_rows_read == 240 and d.dropped_rows.empty and d.n_clusters == 12
    assert list(d.U.columns) == ["u_size"] and d.U.shape == (240, 1)
    assert d.cluster_sizes.sum() == 240 and (d.cluster_table()["rows"] == 20).all()


def test_seen_folds_hold_every_cluster_and_unseen_folds_hold_clusters_out(table):
    d = prepare_data(table, target="y", groups="hospital", n_folds=4)
    assert len(d.seen_splits) == len(d.unseen_splits) == 4 and d.seen_unseen_rows == 0
    for tr, te in d.seen_splits:
        assert set(d.groups[tr]) == set(d.groups)  # every cluster in every training fold
        assert len(np.intersect1d(tr, te)) == 0
    tested = np.concatenate([te for _, te in d.unseen_splits])
    assert np.array_equal(np.sort(tested), np.arange(d.n_rows))
    for tr, te in d.unseen_splits:
        assert not set(d.groups[tr]) & set(d.groups[te])  # whole clusters held out


def test_classification_with_text_target_keeps_labels(table):
    t = table.assign(y=np.where(table["y"] > 0, "event", "none"))
    d = prepare_data(t, target="y", groups="hospital")
    assert d.task == "classification" and d.classes == ["event", "none"]
    np.testing.assert_array_equal(d.y_numeric, (t["y"] == "none").astype(float))
    assert any(line.startswith("classes: event") for line in d.audit())


def test_missing_feature_values_drop_rows_counted_by_reason(table):
    t = table.copy()
    t.loc[[3, 7, 11], "age"] = np.nan
    t.loc[[7, 20], "stage"] = np.nan  # row 7 misses both: counted once, under its first reason
    d = prepare_data(t, target="y", groups="hospital")
    assert d.n_rows == 236 and d.n_rows_read == 240
    reasons = dict(zip(d.dropped_rows["reason"], d.dropped_rows["rows"]))
    assert reasons == {"missing value in feature 'age'": 3, "missing value in feature 'stage'": 1}
    assert d.missing["age"] == 3 and d.missing["stage"] == 2
    assert not d.frame.index.isin([3, 7, 11, 20]).any()
    with pytest.raises(ReportDataError, match="features column 'age' has 3 missing value"):
        prepare_data(t, target="y", groups="hospital", missing="error")


def test_constant_and_empty_columns_are_left_out_and_listed(table):
    d = prepare_data(table.assign(ward="A", note=np.nan), target="y", groups="hospital")
    left = dict(zip(d.dropped_columns["column"], d.dropped_columns["reason"]))
    assert left == {"ward": "constant ('A')", "note": "feature with no values"}
    assert "ward" not in d.features and any("left out column ward" in line for line in d.audit())


def test_max_rows_subsamples_every_cluster_and_counts_the_rest(table):
    d = prepare_data(table, target="y", groups="hospital", max_rows=120, random_state=1)
    assert d.n_rows == 120 and (d.cluster_table()["rows"] == 10).all()
    assert d.dropped_rows.iloc[0].to_dict() == {"reason": "left out of the subsample (max_rows=120)", "rows": 120}
    again = prepare_data(table, target="y", groups="hospital", max_rows=120, random_state=1)
    assert d.frame.index.equals(again.frame.index)


def test_small_clusters_stop_the_report_or_are_dropped_and_listed(table):
    t = pd.concat([table, table.iloc[:2].assign(hospital="tiny")], ignore_index=True)
    with pytest.raises(ReportDataError, match=r"1 cluster\(s\) have fewer rows than the 3 folds.*'tiny' \(2 rows\)"):
        prepare_data(t, target="y", groups="hospital")
    d = prepare_data(t, target="y", groups="hospital", drop_small_clusters=True)
    assert d.n_clusters == 12 and d.n_rows == 240
    assert d.dropped_rows.iloc[0].to_dict() == {"reason": "cluster with fewer than 3 rows (1 cluster)", "rows": 2}


def _bad(frame, **kw):
    return {"target": "y", "groups": "hospital", **kw}


@pytest.mark.parametrize(
    "change,kwargs,match",
    [
        (None, dict(target="outcome"), r"target column 'outcome' does not exist; the columns are: y, hospital, age"),
        (None, dict(groups="site"), r"groups column 'site' does not exist"),
        (None, dict(features=["age", "bmi"]), r"features column 'bmi' does not exist"),
        (None, dict(covariates=["region"]), r"covariates column 'region' does not exist"),
        (None, dict(groups="y"), r"groups and target are the same column"),
        (None, dict(features=["age", "y"]), r"features column 'y' is the target"),
        (
            lambda t: t.assign(y=t["y"].where(t.index != 4)),
            {},
            r"target column 'y' has 1 missing value\(s\) \(data rows 5\)",
        ),
        (lambda t: t.assign(y=t["y"].replace(t["y"].iloc[0], np.inf)), {}, r"target column 'y' has infinite values"),
        (lambda t: t.assign(y=2.5), {}, r"target column 'y' has a single value \(2.5\)"),
        (lambda t: t.assign(y=t["stage"]), {}, r"target column 'y' has 3 classes \(I, II, III\).*binary"),
        (lambda t: t.assign(y=t["sex"]), dict(task="regression"), r"target column 'y' is not numeric"),
        (
            lambda t: t.assign(hospital=t["hospital"].where(t.index % 50 != 0)),
            {},
            r"groups column 'hospital' has 5 missing",
        ),
        (lambda t: t.assign(hospital="h0"), {}, r"groups column 'hospital' has a single cluster \('h0'\)"),
        (None, dict(n_folds=21), r"12 cluster\(s\) have fewer rows than the 21 folds"),
        (lambda t: t.iloc[:60], dict(n_folds=4), r"3 clusters: too few for leave-clusters-out"),
        (
            lambda t: t.assign(id=[f"p{i}" for i in range(len(t))]),
            {},
            r"features column 'id' is text with 240 distinct",
        ),
        (
            lambda t: t.assign(age=t["age"].replace(t["age"].iloc[3], -np.inf)),
            {},
            r"features column 'age' has infinite",
        ),
        (None, dict(features=[]), r"no usable feature column"),
        (None, dict(task="survival"), r"task must be one of auto, classification, regression"),
        (None, dict(n_folds=1), r"n_folds must be an integer >= 2"),
        (None, dict(missing="impute"), r"missing must be 'drop' or 'error'"),
    ],
)
def test_bad_input_fails_fast_with_one_line_naming_the_problem(table, change, kwargs, match):
    t = table if change is None else change(table)
    t0 = time.perf_counter()
    with pytest.raises(ReportDataError, match=match) as err:
        prepare_data(t, **_bad(t, **kwargs))
    assert time.perf_counter() - t0 < 5.0
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------- random effects with intervals
@pytest.fixture(scope="module")
def clustered():
    rng = np.random.default_rng(4)
    K = 15
    sizes = rng.integers(8, 60, size=K)
    g = np.repeat(np.arange(K), sizes)
    X = rng.normal(size=(len(g), 2))
    y = X @ [1.0, -0.5] + rng.normal(size=K)[g] * 1.5 + rng.normal(size=len(g))
    return pd.DataFrame(X, columns=["a", "b"]), y, g


def test_mixedlm_intervals_are_statsmodels_conditional_sds(clustered):
    X, y, g = clustered
    m = MixedLMRegressor().fit(X, y, groups=g)
    t = random_effect_intervals(m)
    cov = m.result_.random_effects_cov
    expected = [float(np.sqrt(np.asarray(cov[k])[0, 0])) for k in range(15)]
    np.testing.assert_allclose(t["sd"], expected, rtol=1e-10)
    np.testing.assert_allclose(t["mean"], m.random_effects_["Group"])
    np.testing.assert_allclose(t["high"] - t["mean"], 1.959964 * t["sd"], rtol=1e-5)


def test_armed_regressor_intercept_posterior_is_the_closed_form(clustered):
    """Intercept only: posterior variance 1 / (n_k / sigma^2 + 1 / tau^2) of the refit, in units of y."""
    X, y, g = clustered
    m = ARMEDRegressor(slopes="none", epochs=15, random_state=0).fit(X, y, groups=g)
    t = random_effect_intervals(m, level=0.9)
    n_k = np.bincount(g)
    tau, sigma = float(m.refit_["tau"][0]), float(m.refit_["sigma"])
    expected = np.sqrt(1.0 / (n_k / sigma**2 + 1.0 / tau**2)) * m.y_scale_
    np.testing.assert_allclose(t["sd"], expected, rtol=1e-4)
    np.testing.assert_allclose(t["mean"], m.random_effects_["intercept"], rtol=1e-6)
    assert list(t["effect"].unique()) == ["intercept"] and list(t["cluster"]) == list(m.groups_)
    np.testing.assert_allclose(t["high"] - t["mean"], 1.644854 * t["sd"], rtol=1e-5)


def test_bayes_glm_intervals_and_bad_models(clustered):
    X, y, g = clustered
    m = BayesMixedGLMClassifier(random_state=0).fit(X, (y > np.median(y)).astype(int), groups=g)
    t = random_effect_intervals(m)
    np.testing.assert_allclose(t["sd"], m.result_.vc_sd)
    with pytest.raises(ValueError, match="level"):
        random_effect_intervals(m, level=1.5)
    with pytest.raises(TypeError, match="MLPRegressor"):
        mlp = MLPRegressor(epochs=2, random_state=0).fit(X, y)
        mlp.random_effects_ = pd.DataFrame({"x": [0.0]})
        random_effect_intervals(mlp)


# --------------------------------------------------------------------------- the analysis steps
@pytest.fixture(scope="module")
def report_data():
    rng = np.random.default_rng(5)
    K, m = 12, 30
    g = np.repeat([f"c{k:02d}" for k in range(K)], m)
    u = np.repeat(rng.normal(size=K), m)
    x = rng.normal(size=(K * m, 2))
    y = 3.0 * u + x @ [1.0, 0.5] + 0.5 * rng.normal(size=K * m)
    frame = pd.DataFrame({"y": y, "g": g, "x1": x[:, 0], "x2": x[:, 1], "u": u + 0.1 * rng.normal(size=K * m)})
    return prepare_data(frame, target="y", groups="g", features=["x1", "x2"], covariates=["u"], n_folds=3)


def test_clustering_matters_finds_strong_clustering(report_data):
    c = analysis.clustering_matters(report_data)
    assert c.icc.icc > 0.7 and c.p_value < 1e-10 and c.test == "one-way ANOVA"
    assert c.sd_of_means > 5 * c.sd_of_means_noise
    means = c.cluster_means
    assert len(means) == 12 and ((means["low"] < means["mean"]) & (means["mean"] < means["high"])).all()
    expected = pd.Series(report_data.y).groupby(report_data.groups).mean()
    np.testing.assert_allclose(means["mean"], expected.loc[means.index])
    # half-width = t_{0.975, n-K} * s_w / sqrt(rows), s_w the pooled within-cluster s.d.
    y = pd.Series(report_data.y)
    resid = y - y.groupby(report_data.groups).transform("mean")
    df = len(y) - 12
    half = stats.t.ppf(0.975, df) * np.sqrt((resid**2).sum() / df / means["rows"])
    np.testing.assert_allclose(means["high"] - means["mean"], half, rtol=1e-10)
    np.testing.assert_allclose(means["mean"] - means["low"], half, rtol=1e-10)


def test_compare_models_knowing_the_cluster_pays_on_seen_clusters_only(report_data):
    seen = analysis.compare_models(report_data, "seen", epochs=30, random_state=0)
    unseen = analysis.compare_models(report_data, "unseen", epochs=30, random_state=0)
    for c in (seen, unseen):
        assert (c.scores.groupby(["model", "metric"])["fold"].nunique() == 3).all()
        assert list(c.table().index) == c.models and c.metric == "r2"
    r2_seen, r2_unseen = seen.means(), unseen.means()
    assert r2_seen["linear mixed model"] > r2_seen["MLP"] + 0.3  # the cluster intercept is most of y
    assert r2_seen["ARMED"] > r2_seen["MLP"] + 0.3
    assert r2_unseen["linear mixed model"] < r2_seen["linear mixed model"] - 0.3  # a new cluster's is unknown
    d, lo, hi = seen.difference("ARMED", "MLP")
    s = seen.scores[seen.scores["metric"] == "r2"].pivot(index="fold", columns="model", values="value")
    assert d == pytest.approx((s["ARMED"] - s["MLP"]).mean()) and lo < d < hi
    # the intervals use the test/train ratio of the splits that were actually used
    assert seen.test_train_ratio == pytest.approx(split_ratio(report_data.seen_splits))
    assert unseen.test_train_ratio == pytest.approx(split_ratio(report_data.unseen_splits))
    assert (lo, hi) == pytest.approx(
        corrected_t_interval((s["ARMED"] - s["MLP"]).to_numpy(), seen.test_train_ratio)[1:]
    )


# --------------------------------------------------------------------------- intervals over folds
def _fold_scores():
    """Three models x 5 folds of a made-up metric; folds of 80 test / 320 train rows."""
    values = {
        "MLP": [0.61, 0.58, 0.66, 0.55, 0.63],
        "ARMED": [0.68, 0.62, 0.71, 0.60, 0.70],
        "ARMED, fixed effects only": [0.60, 0.57, 0.65, 0.56, 0.61],
    }
    rows = [
        {"fold": f, "model": m, "metric": metric, "value": v + (0.0 if metric == "r2" else 1.0)}
        for metric in ("r2", "mse")
        for m, vs in values.items()
        for f, v in enumerate(vs)
    ]
    idx = np.arange(400)
    splits = [(np.setdiff1d(idx, idx[80 * f : 80 * (f + 1)]), idx[80 * f : 80 * (f + 1)]) for f in range(5)]
    return pd.DataFrame(rows), splits, values


def test_model_comparison_intervals_are_corrected_t_in_closed_form():
    scores, splits, values = _fold_scores()
    c = analysis.ModelComparison.from_scores("seen", scores, splits, ["r2", "mse"], list(values))
    assert c.test_train_ratio == pytest.approx(80 / 320) and c.n_folds == 5
    k, ratio = 5, 80 / 320
    t = stats.t.ppf(0.975, k - 1)
    for name, v in values.items():
        v = np.asarray(v)
        half = t * np.sqrt((1 / k + ratio) * v.var(ddof=1))  # Nadeau-Bengio, by hand
        row = c.summary.loc[(name, "r2")]
        assert row["mean"] == pytest.approx(v.mean())
        assert (row["low"], row["high"]) == pytest.approx((v.mean() - half, v.mean() + half), rel=1e-12)
        assert (row["low"], row["high"]) == pytest.approx(corrected_t_interval(v, ratio)[1:], rel=1e-12)
        _, naive_lo, naive_hi = mean_ci(v)  # mean +- 1.96 sd / sqrt(k): narrower
        assert row["high"] - row["low"] > 1.5 * (naive_hi - naive_lo)
        assert tuple(c.table().loc[name, "r2"]) == pytest.approx((row["mean"], row["low"], row["high"]))
    d = np.subtract(values["ARMED"], values["MLP"])
    half = t * np.sqrt((1 / k + ratio) * d.var(ddof=1))
    assert c.difference("ARMED", "MLP") == pytest.approx((d.mean(), d.mean() - half, d.mean() + half), rel=1e-12)
    _, naive_lo, naive_hi = mean_ci(d)
    _, lo, hi = c.difference("ARMED", "MLP")
    assert hi - lo > naive_hi - naive_lo
    table = c.differences("MLP")
    assert list(table.index) == ["ARMED", "ARMED, fixed effects only"]
    assert table.loc["ARMED", ["mean_diff", "low", "high"]].tolist() == pytest.approx(
        list(c.difference("ARMED", "MLP"))
    )
    assert bool(table.loc["ARMED", "excludes_zero"]) and not bool(
        table.loc["ARMED, fixed effects only", "excludes_zero"]
    )
    c90 = analysis.ModelComparison.from_scores("seen", scores, splits, ["r2", "mse"], list(values), level=0.9)
    assert c90.summary.loc[("MLP", "r2"), "high"] < c.summary.loc[("MLP", "r2"), "high"]


def test_model_comparison_validates():
    scores, splits, values = _fold_scores()
    with pytest.raises(ValueError, match="setting"):
        analysis.ModelComparison.from_scores("later", scores, splits, ["r2"], list(values))
    c = analysis.ModelComparison.from_scores("unseen", scores, splits, ["r2"], list(values))
    with pytest.raises(ValueError, match="model 'GLM'"):
        c.difference("GLM", "MLP")
    with pytest.raises(ValueError, match="reference"):
        c.differences("GLM")


def test_final_models_and_personalization(report_data):
    f = analysis.fit_final_models(report_data, epochs=30, random_state=0)
    assert f.intercept_agreement > 0.95  # ARMED's intercepts are the mixed model's (refit)
    assert set(f.effects["effect"]) == {"intercept", "x1", "x2"} and len(f.effects) == 36
    assert f.spread.index[0] == "intercept"
    assert (
        np.isclose(f.importance["share ARMED"].sum(), 1)
        and f.importance.loc["x1", "ARMED"] > f.importance.loc["x2", "ARMED"]
    )
    p = analysis.personalize(report_data, random_state=0)
    assert p.coefficients.shape == (360, 3) and np.isclose(p.weights.sum(), 1)
    assert len(p.labels) == 360 and p.profiles["rows"].sum() == 360
    assert p.heldout_score > p.population_score  # the covariate carries the cluster's intercept
    text = analysis.summarize(
        report_data,
        analysis.clustering_matters(report_data),
        *[analysis.compare_models(report_data, s, epochs=5, random_state=0) for s in ("seen", "unseen")],
        f,
        p,
    )
    assert "360 rows in 12 clusters" in text and f"{p.heldout_score:.3f}" in text
    assert text.count("\n* ") == 6


def test_model_clusters_recovers_separated_groups():
    rng = np.random.default_rng(6)
    centers = np.array([[0, 0, 0], [6, 0, 0], [0, 6, 6]])
    truth = rng.integers(3, size=600)
    labels, silhouette = analysis.model_clusters(centers[truth] + rng.normal(size=(600, 3)), random_state=0)
    assert adjusted_rand_score(truth, labels) > 0.97 and silhouette > 0.6
    assert np.bincount(labels)[0] == np.bincount(labels).max()  # numbered by size


# --------------------------------------------------------------------------- the report's figures
def test_report_figures_draw_what_they_are_given():
    import matplotlib
    import matplotlib.pyplot

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from perslib import plotting

    t = pd.DataFrame({"cluster": ["a", "b", "c"], "mean": [2.0, -1.0, 0.5], "low": [1.0, -2.0, 0.0], "high": [3, 0, 1]})
    fig = plotting.plot_caterpillar(t, reference={"mixed model": {"a": 1.9, "b": -0.8, "c": 0.4}})
    ax = fig.axes[0]
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["b", "c", "a"]  # sorted by the estimate
    np.testing.assert_allclose(ax.collections[1].get_offsets()[:, 1], [-1.0, 0.5, 2.0])
    np.testing.assert_allclose(ax.collections[2].get_offsets()[:, 1], [-0.8, 0.4, 1.9])  # reference at its cluster
    imp = pd.DataFrame({"ARMED": [0.5, 0.3, 0.2], "MLP": [0.6, 0.1, 0.3]}, index=["x", "y", "z"])
    assert isinstance(plotting.plot_importance(imp), Figure)
    assert isinstance(plotting.plot_cluster_sizes([3, 5, 8, 13]), Figure)
    coef = pd.DataFrame(np.random.default_rng(0).normal(size=(50, 2)), columns=["a", "b"])
    assert isinstance(plotting.plot_coefficient_spread(coef, {"a": 0.0, "b": 1.0}), Figure)
    with pytest.raises(ValueError, match="columns"):
        plotting.plot_caterpillar(t.drop(columns="low"))
    with pytest.raises(ValueError, match="not in importance"):
        plotting.plot_importance(imp, columns=["ARMED", "GBM"])
    with pytest.raises(ValueError, match="sizes"):
        plotting.plot_cluster_sizes([])
    matplotlib.pyplot.close("all")


def test_report_models_include_gpboost_when_asked():
    from perslib.analysis import report_models

    pytest.importorskip("gpboost")
    for task in ("classification", "regression"):
        with_gp = report_models(task, gpboost=True)
        assert list(with_gp)[-1] == "GPBoost" and list(report_models(task)) == list(with_gp)
        assert "GPBoost" not in report_models(task, gpboost=False)
        assert type(with_gp["GPBoost"]).__name__ == (
            "GPBoostClassifier" if task == "classification" else "GPBoostRegressor"
        )
    with pytest.raises(ValueError, match="gpboost"):
        report_models("regression", gpboost="yes")
