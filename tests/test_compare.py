"""Corrected resampled t intervals and paired fold differences (perslib.evaluation._compare)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402
from sklearn.model_selection import GroupKFold, KFold  # noqa: E402

from perslib import evaluation, plotting  # noqa: E402

VALUES = np.array([0.71, 0.64, 0.80])  # k = 3 fold scores


def test_corrected_interval_by_hand():
    mean, lo, hi = evaluation.corrected_t_interval(VALUES, 0.5)
    k, s2 = 3, np.var(VALUES, ddof=1)
    half = stats.t.ppf(0.975, df=k - 1) * np.sqrt((1 / k + 0.5) * s2)
    assert mean == pytest.approx(VALUES.mean())
    assert (lo, hi) == pytest.approx((VALUES.mean() - half, VALUES.mean() + half))
    # hand numbers: s = 0.080208, t_{2, 0.975} = 4.302653
    assert hi - lo == pytest.approx(2 * 4.302653 * np.sqrt(5 / 6) * 0.0802081, rel=1e-5)


def test_zero_ratio_is_the_ordinary_t_interval():
    _, lo, hi = evaluation.corrected_t_interval(VALUES, 0.0, level=0.9)
    ref = stats.t.interval(0.9, df=2, loc=VALUES.mean(), scale=stats.sem(VALUES))
    assert (lo, hi) == pytest.approx(ref)
    _, lo2, hi2 = evaluation.corrected_t_interval(VALUES, 1e-12, level=0.9)
    assert (lo2, hi2) == pytest.approx(ref)


def test_wider_than_normal_approximation():
    _, lo_n, hi_n = evaluation.mean_ci(VALUES)
    _, lo_c, hi_c = evaluation.corrected_t_interval(VALUES, 0.5)
    ratio = (hi_c - lo_c) / (hi_n - lo_n)
    expected = stats.t.ppf(0.975, 2) / stats.norm.ppf(0.975) * np.sqrt((1 / 3 + 0.5) * 3)
    assert ratio == pytest.approx(expected)
    assert ratio > 3.4  # t quantile (x2.2) and the correction (x1.58) together


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"values": [0.5], "test_train_ratio": 0.5}, "at least 2"),
        ({"values": [0.5, np.nan], "test_train_ratio": 0.5}, "values"),
        ({"values": [0.5, 0.6], "test_train_ratio": -0.1}, "test_train_ratio"),
        ({"values": [0.5, 0.6], "test_train_ratio": "half"}, "test_train_ratio"),
        ({"values": [0.5, 0.6], "test_train_ratio": 0.5, "level": 95}, "level"),
    ],
)
def test_corrected_interval_validates(kwargs, match):
    with pytest.raises(ValueError, match=match):
        evaluation.corrected_t_interval(**kwargs)


def test_split_ratio():
    X = np.zeros((12, 1))
    assert evaluation.split_ratio(KFold(3).split(X)) == pytest.approx(4 / 8)
    groups = np.repeat([0, 1, 2, 3], [1, 2, 3, 6])
    splits = list(GroupKFold(2).split(X, groups=groups))
    expected = np.mean([len(te) / len(tr) for tr, te in splits])
    assert evaluation.split_ratio(splits) == pytest.approx(expected)
    with pytest.raises(ValueError, match="splits"):
        evaluation.split_ratio([])
    with pytest.raises(ValueError, match="splits"):
        evaluation.split_ratio([np.arange(3)])


@pytest.fixture
def scores():
    a = [0.70, 0.60, 0.80]
    b = [0.73, 0.635, 0.825]  # b is a + (0.03, 0.035, 0.025): a clear paired gain
    c = [0.60, 0.80, 0.70]
    rows = [
        {"fold": f, "model": m, "metric": "accuracy", "value": v}
        for m, vals in [("a", a), ("b", b), ("c", c)]
        for f, v in enumerate(vals)
    ]
    rows += [{"fold": f, "model": "a", "metric": "fit_time", "value": 1.0 + f} for f in range(3)]
    return pd.DataFrame(rows)


def test_corrected_summary_matches_function(scores):
    table = evaluation.corrected_summary(scores, 0.5, metrics=["accuracy"])
    assert list(table.index.get_level_values("model")) == ["a", "b", "c"]
    mean, lo, hi = evaluation.corrected_t_interval([0.73, 0.635, 0.825], 0.5)
    assert table.loc[("b", "accuracy"), ["mean", "low", "high"]].tolist() == pytest.approx([mean, lo, hi])
    assert table.loc[("b", "accuracy"), "n_folds"] == 3
    with pytest.raises(ValueError, match="scores"):
        evaluation.corrected_summary(scores.drop(columns="fold"), 0.5)


def test_paired_differences(scores):
    diff = evaluation.paired_differences(scores, "accuracy", "a", 0.5)
    assert list(diff.index) == ["b", "c"]
    d = np.array([0.03, 0.035, 0.025])
    assert diff.loc["b", ["fold 0", "fold 1", "fold 2"]].tolist() == pytest.approx(d)
    half = stats.t.ppf(0.975, 2) * np.sqrt((1 / 3 + 0.5) * d.var(ddof=1))
    assert diff.loc["b", ["mean_diff", "low", "high"]].tolist() == pytest.approx([0.03, 0.03 - half, 0.03 + half])
    # the paired difference is clear although the two models' own intervals overlap
    assert diff.loc["b", "excludes_zero"]
    summ = evaluation.corrected_summary(scores, 0.5, metrics=["accuracy"])
    assert summ.loc[("b", "accuracy"), "low"] < summ.loc[("a", "accuracy"), "high"]
    assert not diff.loc["c", "excludes_zero"]
    assert diff.attrs == {"metric": "accuracy", "reference": "a", "level": 0.95}


def test_paired_differences_validates(scores):
    with pytest.raises(ValueError, match="reference"):
        evaluation.paired_differences(scores, "accuracy", "zz", 0.5)
    with pytest.raises(ValueError, match="metric"):
        evaluation.paired_differences(scores, "auroc", "a", 0.5)
    with pytest.raises(ValueError, match="models"):
        evaluation.paired_differences(scores, "accuracy", "a", 0.5, models=["q"])
    short = scores[~((scores["model"] == "c") & (scores["fold"] == 2))]
    with pytest.raises(ValueError, match="same folds"):
        evaluation.paired_differences(short, "accuracy", "a", 0.5)


def test_plot_paired_differences_draws_the_table(scores):
    diff = evaluation.paired_differences(scores, "accuracy", "a", 0.5)
    fig = plotting.plot_paired_differences(diff)
    ax = fig.axes[0]
    bars = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 2 and ln.get_ydata()[0] == ln.get_ydata()[1]]
    spans = sorted(tuple(np.round(ln.get_xdata(), 10)) for ln in bars)
    assert spans == sorted(tuple(np.round(diff.loc[m, ["low", "high"]].to_numpy(float), 10)) for m in diff.index)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["c", "b"]
    with pytest.raises(ValueError, match="table"):
        plotting.plot_paired_differences(pd.DataFrame({"x": [1]}))
    plt.close("all")


def test_plot_fold_scores_corrected_interval(scores):
    fig = plotting.plot_fold_scores(scores, "accuracy", test_train_ratio=0.5)
    ax = fig.axes[0]
    bars = sorted(tuple(np.round(ln.get_xdata(), 10)) for ln in ax.get_lines() if len(ln.get_xdata()) == 2)
    want = sorted(
        tuple(
            np.round(
                evaluation.corrected_t_interval(scores.query("model == @m and metric == 'accuracy'")["value"], 0.5)[1:],
                10,
            )
        )
        for m in ["a", "b", "c"]
    )
    assert bars == want
    plt.close("all")


def test_plot_training_diagnostics_panels_and_restored_epoch():
    history = pd.DataFrame(
        {
            "epoch": np.arange(1, 7),
            "train_loss": [5.0, 3.0, 2.0, 1.5, 1.2, 1.0],
            "kl": [1e-3, 8e-4, 7e-4, 6e-4, 6e-4, 5e-4],
            "adv_loss": [2.3, 2.2, 2.25, 2.3, 2.28, 2.29],
            "val_loss": [4.0, 2.5, 2.0, 2.1, 2.2, 2.4],
        }
    )
    fig = plotting.plot_training_diagnostics(history, reference_lines={"adv_loss": np.log(10)}, ncols=2)
    drawn = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title() for ax in drawn] == ["train loss", "kl", "adv loss", "val loss"]
    for ax in drawn:  # each loss on its own axis: the tiny KL term fills its panel
        ys = ax.get_lines()[0].get_ydata()
        lo, hi = ax.get_ylim()
        assert hi - lo < 3 * np.ptp(ys)
        vlines = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
        assert vlines and vlines[0].get_xdata()[0] == 3  # lowest val_loss at epoch 3
    adv = drawn[2]
    assert any(np.allclose(ln.get_ydata(), np.log(10)) for ln in adv.get_lines() if ln.get_linestyle() == ":")
    with pytest.raises(ValueError, match="history"):
        plotting.plot_training_diagnostics(history.drop(columns="epoch"))
    with pytest.raises(ValueError, match="reference_lines"):
        plotting.plot_training_diagnostics(history, reference_lines={"nope": 1.0})
    with pytest.raises(ValueError, match="ncols"):
        plotting.plot_training_diagnostics(history, ncols=0)
    plt.close("all")
