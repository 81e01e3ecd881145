"""perslib.evaluation against closed forms and scikit-learn; perslib.plotting figure contents."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # tests only: no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import accuracy_score, mean_squared_error, r2_score, roc_auc_score  # noqa: E402

from perslib import evaluation, plotting  # noqa: E402


@pytest.fixture(autouse=True)
def _draw_and_close_figures():
    """Render every figure a test made (layout errors only show at draw time), then close."""
    yield
    try:
        for num in plt.get_fignums():
            plt.figure(num).canvas.draw()
    finally:
        plt.close("all")


@pytest.fixture
def grouped():
    rng = np.random.default_rng(0)
    n = 600
    groups = rng.integers(0, 5, size=n)
    y = rng.integers(0, 2, size=n)
    # predictions get worse with the group index, so groups really differ
    flip = rng.random(n) < 0.05 + 0.08 * groups
    pred = np.where(flip, 1 - y, y)
    score = np.clip(y * 0.3 + rng.random(n) * (1.0 - 0.1 * groups), 0, 1)
    return y, pred, score, groups


def _n_offsets(ax) -> int:
    """Number of scatter points (PathCollections) drawn in ``ax``."""
    return sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))


def _title(ax) -> str:
    return ax.get_title("left") or ax.get_title("center") or ax.get_title("right")


# --------------------------------------------------------------------------- metrics
def test_parameter_mse_full_matches_closed_form():
    rng = np.random.default_rng(1)
    theta = rng.normal(size=(50, 4))
    est = theta + 0.1 * rng.normal(size=(50, 4))
    assert evaluation.parameter_mse(est, theta) == pytest.approx(np.mean((est - theta) ** 2))
    per = evaluation.parameter_mse(est, theta, per_sample=True)
    assert per.shape == (50,)
    np.testing.assert_allclose(per, ((est - theta) ** 2).mean(axis=1))
    assert per.mean() == pytest.approx(evaluation.parameter_mse(est, theta))


def test_parameter_mse_constant_estimate_is_mean_squared_deviation():
    rng = np.random.default_rng(2)
    theta = rng.normal(loc=[1.0, -2.0, 0.5], scale=[1.0, 0.5, 2.0], size=(400, 3))
    c = np.array([0.3, 0.0, -1.0])
    # closed form: E(c - θ)² = var(θ) + (mean(θ) - c)², averaged over coordinates
    closed = np.mean(theta.var(axis=0) + (theta.mean(axis=0) - c) ** 2)
    assert evaluation.parameter_mse(c, theta) == pytest.approx(closed, rel=1e-12)
    # the column mean is the best constant; its error is the average variance
    assert evaluation.parameter_mse(theta.mean(axis=0), theta) == pytest.approx(theta.var(axis=0).mean())
    assert evaluation.parameter_mse(c[None, :], theta) == pytest.approx(closed)


def test_parameter_mse_validates():
    theta = np.zeros((10, 3))
    with pytest.raises(ValueError, match="theta_hat"):
        evaluation.parameter_mse(np.zeros(4), theta)
    with pytest.raises(ValueError, match="inconsistent"):
        evaluation.parameter_mse(np.zeros((9, 3)), theta)
    bad = theta.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="theta_true"):
        evaluation.parameter_mse(np.zeros(3), bad)
    with pytest.raises(ValueError, match="theta_hat"):
        evaluation.parameter_mse(bad, theta)


def test_per_group_accuracy_matches_sklearn(grouped):
    y, pred, _, groups = grouped
    frame = evaluation.per_group_score(y, pred, groups, metric="accuracy")
    assert list(frame.columns) == ["group", "n", "score"]
    assert list(frame["group"]) == [0, 1, 2, 3, 4]
    assert frame["n"].sum() == len(y)
    for _, row in frame.iterrows():
        m = groups == row["group"]
        assert row["n"] == m.sum()
        assert row["score"] == pytest.approx(accuracy_score(y[m], pred[m]))
    # the simulated groups really differ (accuracy falls with the group index)
    assert frame["score"].iloc[0] > frame["score"].iloc[-1] + 0.15


def test_per_group_other_metrics_match_sklearn(grouped):
    y, _, score, groups = grouped
    auc = evaluation.per_group_score(y, score, groups, metric="auroc")
    rng = np.random.default_rng(3)
    t = rng.normal(size=len(y))
    p = t + rng.normal(scale=0.5, size=len(y))
    r2 = evaluation.per_group_score(t, p, groups, metric="r2")
    mse = evaluation.per_group_score(t, p, groups, metric="mse")
    custom = evaluation.per_group_score(t, p, groups, metric=lambda a, b: float(np.max(np.abs(a - b))))
    for k in range(5):
        m = groups == k
        assert auc["score"].iloc[k] == pytest.approx(roc_auc_score(y[m], score[m]))
        assert r2["score"].iloc[k] == pytest.approx(r2_score(t[m], p[m]))
        assert mse["score"].iloc[k] == pytest.approx(mean_squared_error(t[m], p[m]))
        assert custom["score"].iloc[k] == pytest.approx(np.max(np.abs(t[m] - p[m])))


def test_per_group_auroc_single_class_is_nan_and_string_groups():
    y = np.array([0, 1, 0, 1, 1, 1])
    s = np.array([0.1, 0.9, 0.2, 0.8, 0.7, 0.6])
    g = np.array(["a", "a", "a", "a", "b", "b"])
    frame = evaluation.per_group_score(y, s, g, metric="auroc")
    assert list(frame["group"]) == ["a", "b"]
    assert frame["score"].iloc[0] == pytest.approx(1.0)
    assert np.isnan(frame["score"].iloc[1])


def test_per_group_score_validates(grouped):
    y, pred, _, groups = grouped
    with pytest.raises(ValueError, match="metric"):
        evaluation.per_group_score(y, pred, groups, metric="f7")
    with pytest.raises(ValueError, match="inconsistent"):
        evaluation.per_group_score(y, pred[:-1], groups)
    yf = y.astype(float)
    yf[3] = np.nan
    with pytest.raises(ValueError, match="y_true"):
        evaluation.per_group_score(yf, pred, groups)
    gs = pd.Series(groups.astype(object))
    gs.iloc[0] = None
    with pytest.raises(ValueError, match="groups"):
        evaluation.per_group_score(y, pred, gs)


def test_mean_ci_hand_computation():
    v = np.array([0.70, 0.74, 0.78, 0.72, 0.76])
    mean, lo, hi = evaluation.mean_ci(v)
    # by hand: mean 0.74, squared deviations sum to 0.004, sample sd = sqrt(0.004 / 4) = 0.0316228,
    # half-width = 1.959964 * 0.0316228 / sqrt(5) = 0.0277181
    sd = np.sqrt(((v - 0.74) ** 2).sum() / 4)
    half = 1.959963984540054 * sd / np.sqrt(5)
    assert mean == pytest.approx(0.74)
    assert lo == pytest.approx(0.74 - half)
    assert hi == pytest.approx(0.74 + half)
    assert hi - mean == pytest.approx(0.0277181, abs=1e-6)
    _, lo90, hi90 = evaluation.mean_ci(v, level=0.90)
    assert hi90 - lo90 == pytest.approx(2 * 1.6448536269514722 * sd / np.sqrt(5))


def test_mean_ci_validates():
    with pytest.raises(ValueError, match="values"):
        evaluation.mean_ci([0.5])
    with pytest.raises(ValueError, match="values"):
        evaluation.mean_ci([0.5, np.nan, 0.7])
    with pytest.raises(ValueError, match="level"):
        evaluation.mean_ci([0.5, 0.6], level=95)


def test_permutation_score_drop_detects_reliance():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(500, 3))
    y = (X[:, 0] > 0).astype(int)

    def predict(A):
        return (A[:, 0] > 0).astype(int)

    drop_used, scores = evaluation.permutation_score_drop(predict, X, y, [0], n_repeats=4, random_state=0)
    drop_unused, _ = evaluation.permutation_score_drop(predict, X, y, [1, 2], n_repeats=4, random_state=0)
    assert scores.shape == (4,)
    assert drop_used == pytest.approx(0.5, abs=0.08)  # a coin flip after shuffling
    assert drop_unused == 0.0
    with pytest.raises(ValueError, match="columns"):
        evaluation.permutation_score_drop(predict, X, y, [5])


# --------------------------------------------------------------------------- plotting
def test_set_style_applies_house_rc():
    plotting.set_style()
    assert plt.rcParams["figure.dpi"] == 100
    assert plt.rcParams["axes.spines.top"] is False
    assert plt.rcParams["axes.spines.right"] is False
    with pytest.raises(ValueError, match="context"):
        plotting.set_style("huge")


def test_plot_parameter_space_points_and_estimates():
    rng = np.random.default_rng(5)
    theta = rng.normal(size=(120, 3))
    labels = np.repeat([0, 1, 2], 40)
    fig = plotting.plot_parameter_space(theta, labels)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 1
    assert _n_offsets(fig.axes[0]) == 120
    fig2 = plotting.plot_parameter_space(
        theta, labels, dims=(0, 2), estimates={"pooled": theta.mean(0), "per process": np.zeros((3, 3))}
    )
    ax = fig2.axes[0]
    assert _n_offsets(ax) == 120 + 1 + 3
    np.testing.assert_allclose(ax.collections[-2].get_offsets()[0], theta.mean(0)[[0, 2]])
    with pytest.raises(ValueError, match="dims"):
        plotting.plot_parameter_space(theta, dims=(0, 3))
    with pytest.raises(ValueError, match="labels"):
        plotting.plot_parameter_space(theta, labels[:-1])


def test_plot_parameters_vs_covariate_grid():
    rng = np.random.default_rng(6)
    theta = rng.normal(size=(200, 4))
    U = pd.DataFrame(rng.normal(size=(200, 3)), columns=["u0", "u1", "noise"])
    fig = plotting.plot_parameters_vs_covariate(theta, U, labels=rng.integers(0, 3, 200))
    assert len(fig.axes) == 3 * 4
    assert fig.axes[0].get_xlabel() == "u0"
    assert all(_n_offsets(ax) == 200 for ax in fig.axes)
    fig1 = plotting.plot_parameters_vs_covariate(theta, U["u1"], max_points=50)
    assert len(fig1.axes) == 4
    assert _n_offsets(fig1.axes[0]) == 50
    assert fig1.axes[0].get_xlabel() == "u1"


def test_plot_clusters_2d_panels_and_points():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(700, 4))
    y = rng.integers(0, 2, 700)
    groups = np.repeat(np.arange(7), 100)
    fig = plotting.plot_clusters_2d(X, y, groups, n_cols=3, max_points=60)
    assert len(fig.axes) == 7  # 3 × 3 grid, two empty cells removed
    assert all(_n_offsets(ax) == 60 for ax in fig.axes)
    fig_all = plotting.plot_clusters_2d(X, y, groups, max_points=None, titles=[f"r={k}" for k in range(7)])
    assert sum(_n_offsets(ax) for ax in fig_all.axes) == 700
    assert _title(fig_all.axes[2]) == "r=2"


def test_plot_image_grid_shape_and_shared_scale():
    rng = np.random.default_rng(8)
    images = rng.random((60, 1, 8, 8)).astype(np.float32)
    sites = np.repeat([2, 0, 1], 20)
    images[sites == 2] += 3.0
    fig = plotting.plot_image_grid(images, sites, n_per_row=5, sample_labels=rng.integers(0, 2, 60))
    assert len(fig.axes) == 3 * 5
    assert fig.axes[0].get_ylabel() == "site 0"
    clims = {ax.images[0].get_clim() for ax in fig.axes}
    assert len(clims) == 1  # one grey scale for all: batch effects stay visible
    with pytest.raises(ValueError, match="images"):
        plotting.plot_image_grid(rng.random((4, 3, 8, 8)), np.zeros(4))


def test_plot_group_scores_dots_and_reference(grouped):
    y, pred, _, groups = grouped
    frame = evaluation.per_group_score(y, pred, groups)
    fig = plotting.plot_group_scores(frame, "group", "score", reference={"pooled": accuracy_score(y, pred)})
    ax = fig.axes[0]
    assert _n_offsets(ax) == 5
    assert len(ax.get_lines()) == 1  # the reference line
    stems = [c for c in ax.collections if not isinstance(c, PathCollection)]
    assert len(stems) == 1 and len(stems[0].get_segments()) == 5  # one stem per group, from the reference
    assert ax.get_lines()[0].get_ydata()[0] == pytest.approx(accuracy_score(y, pred))
    both = pd.concat([frame.assign(model="a"), frame.assign(model="b", score=frame["score"] - 0.1)])
    fig2 = plotting.plot_group_scores(both, "group", "score", hue="model", sort=True)
    assert _n_offsets(fig2.axes[0]) == 10
    with pytest.raises(ValueError, match="score_col"):
        plotting.plot_group_scores(frame, "group", "nope")


def test_plot_scatter_and_history():
    x = np.arange(10.0)
    fig = plotting.plot_scatter(x, 2 * x + 1, annotate=list(range(10)), xlabel="radius", ylabel="accuracy")
    ax = fig.axes[0]
    assert _n_offsets(ax) == 10
    assert "Pearson r = 1.00" in [t.get_text() for t in ax.get_legend().get_texts()]
    fig_id = plotting.plot_scatter(x, x + 0.5, fit_line=False, identity=True, show_r=False)
    assert [t.get_text() for t in fig_id.axes[0].get_legend().get_texts()] == ["y = x"]
    hist = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.7, 0.6]})
    fig_h = plotting.plot_history(hist)
    assert len(fig_h.axes[0].get_lines()) == 2


def test_save_figure_writes_files(tmp_path):
    fig = plotting.plot_scatter(np.arange(5.0), np.arange(5.0))
    out = tmp_path / "nested" / "figs"
    paths = plotting.save_figure(fig, out, "scatter", formats=("png", "svg"))
    assert paths == [out / "scatter.png", out / "scatter.svg"]
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="name"):
        plotting.save_figure(fig, out, "../escape")


def test_plot_fold_scores_intervals_match_mean_ci():
    rng = np.random.default_rng(0)
    vals = {"mlp": 0.80 + 0.02 * rng.random(5), "armed": 0.85 + 0.02 * rng.random(5)}
    scores = pd.DataFrame(
        [
            (f, m, met, v + (0.1 if met == "auroc" else 0.0))
            for m, vs in vals.items()
            for f, v in enumerate(vs)
            for met in ("accuracy", "auroc")
        ],
        columns=["fold", "model", "metric", "value"],
    )
    fig = plotting.plot_fold_scores(scores, "accuracy", reference="mlp")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["armed", "mlp"]  # first model on top
    bars = {round(float(line.get_ydata()[0])): line.get_xdata() for line in ax.get_lines()[:2]}
    for row, name in ((1, "mlp"), (0, "armed")):
        _, low, high = evaluation.mean_ci(vals[name])
        np.testing.assert_allclose(bars[row], [low, high])
    ref = ax.get_lines()[-1]
    assert ref.get_xdata()[0] == pytest.approx(vals["mlp"].mean())
    assert sum(len(c.get_offsets()) for c in ax.collections) == 10 + 2  # folds + means
    with pytest.raises(ValueError, match="metric"):
        plotting.plot_fold_scores(scores, "r2")
    with pytest.raises(ValueError, match="reference"):
        plotting.plot_fold_scores(scores, "auroc", reference="nope")


def test_plot_soft_memberships_cells_are_group_means():
    rng = np.random.default_rng(1)
    Z = rng.dirichlet(np.ones(4), size=60)
    rows = np.repeat(["a", "b", "c"], 20)
    fig = plotting.plot_soft_memberships(Z, rows, columns=["k0", "k1", "k2", "k3"], row_order=["c", "a", "b"])
    ax = fig.axes[0]
    expected = pd.DataFrame(Z, columns=["k0", "k1", "k2", "k3"]).groupby(rows).mean().loc[["c", "a", "b"]]
    np.testing.assert_allclose(ax.memberships_.to_numpy(), expected.to_numpy())
    mesh = ax.collections[0].get_array()
    np.testing.assert_allclose(np.asarray(mesh).reshape(3, 4), expected.to_numpy())
    assert [t.get_text() for t in ax.get_yticklabels()] == ["c", "a", "b"]
    with pytest.raises(ValueError, match="columns"):
        plotting.plot_soft_memberships(Z, rows, columns=["k0"])
    with pytest.raises(ValueError, match="row_groups"):
        plotting.plot_soft_memberships(Z, rows[:-1])


# --------------------------------------------------------------------------- low-rank dictionaries (notebook 03)
def test_low_rank_floor_is_the_pca_reconstruction_error():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(3)
    theta = rng.normal(size=(400, 5)) @ np.diag([3.0, 2.0, 1.0, 0.5, 0.1]) + np.array([1.0, -2.0, 0.0, 3.0, 0.5])
    floors = evaluation.low_rank_floor(theta, [0, 1, 2, 3, 5, 9])
    assert floors[0] == pytest.approx(evaluation.parameter_mse(theta.mean(axis=0), theta))  # the best constant
    for q, floor in zip([1, 2, 3], floors[1:4]):
        pca = PCA(n_components=q).fit(theta)
        assert floor == pytest.approx(evaluation.parameter_mse(pca.inverse_transform(pca.transform(theta)), theta))
    assert floors[4] == pytest.approx(0.0, abs=1e-20) and floors[5] == pytest.approx(0.0, abs=1e-20)
    assert np.all(np.diff(floors) <= 0)
    # no other rank-2 affine collection gets below the floor
    c, Q = rng.normal(size=5), rng.normal(size=(2, 5))
    Z = np.linalg.lstsq(Q.T, (theta - c).T, rcond=None)[0].T
    assert evaluation.parameter_mse(c + Z @ Q, theta) > floors[2]
    with pytest.raises(ValueError, match="ranks"):
        evaluation.low_rank_floor(theta, [-1])
    with pytest.raises(ValueError, match="ranks"):
        evaluation.low_rank_floor(theta, [1.5])


def test_power_law_fit_recovers_exponent_and_validates():
    x = np.array([500.0, 1000.0, 4000.0, 1e5])
    b, c = evaluation.power_law_fit(x, 3e-4 * x**1.25)
    assert b == pytest.approx(1.25) and c == pytest.approx(3e-4)
    noisy = 2.0 * x**2 * np.array([1.1, 0.9, 1.05, 0.95])
    assert evaluation.power_law_fit(x, noisy)[0] == pytest.approx(np.polyfit(np.log(x), np.log(noisy), 1)[0])
    with pytest.raises(ValueError, match="positive"):
        evaluation.power_law_fit([1.0, 2.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="distinct"):
        evaluation.power_law_fit([2.0, 2.0], [1.0, 3.0])


def test_peak_memory_increase_sees_a_large_temporary_allocation():
    import time

    def allocate(mb):
        block = np.ones(mb * 2**20 // 8)  # touched, so resident
        time.sleep(0.05)
        return float(block[-1])

    value, increase = evaluation.peak_memory_increase(allocate, 120)
    if increase is None:
        pytest.skip("resident memory cannot be read on this platform")
    assert value == 1.0
    assert increase >= 90 * 2**20  # freed before the call returned, still seen by the sampler
    _, idle = evaluation.peak_memory_increase(lambda: None)
    assert idle < 30 * 2**20
    with pytest.raises(ValueError, match="interval"):
        evaluation.peak_memory_increase(lambda: None, interval=0)
    with pytest.raises(ValueError, match="fn"):
        evaluation.peak_memory_increase(3)


def test_plot_dictionary_shows_the_atoms_on_a_symmetric_scale():
    D = np.array([[1.0, -2.0, 0.5], [0.0, 0.25, -0.75]])
    fig = plotting.plot_dictionary(D, param_names=["a", "b", "c"], title="atoms")
    ax = fig.axes[0]
    image = ax.get_images()[0]
    np.testing.assert_allclose(image.get_array(), D)
    assert image.get_clim() == (-2.0, 2.0)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["atom 1", "atom 2"]
    assert sorted(t.get_text() for t in ax.texts) == sorted(f"{v:.2f}" for v in D.ravel())
    assert _title(ax) == "atoms"
    with pytest.raises(ValueError, match="atom_names"):
        plotting.plot_dictionary(D, atom_names=["only one"])


def test_plot_sweep_curves_and_references():
    q = [1, 2, 4, 8]
    fig = plotting.plot_sweep(
        q,
        {"fit": [1.0, 0.3, 0.05, 0.04], "floor": [0.9, 0.2, 0.01, 0.0]},
        references={"population": 1.5},
        logy=True,
        xlabel="rank q",
    )
    ax = fig.axes[0]
    lines = ax.get_lines()
    np.testing.assert_allclose(lines[0].get_xdata(), q)
    np.testing.assert_allclose(lines[1].get_ydata(), [0.9, 0.2, 0.01, 0.0])
    assert lines[2].get_ydata()[0] == pytest.approx(1.5)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["fit", "floor", "population (1.5)"]
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "rank q"
    with pytest.raises(ValueError, match="series\\['bad'\\]"):
        plotting.plot_sweep(q, {"bad": [1.0, 2.0]})


def test_plot_snapshots_one_shared_panel_per_snapshot():
    rng = np.random.default_rng(4)
    theta = rng.normal(size=(90, 3))
    labels = np.repeat([0, 1, 2], 30)
    snaps = {"epoch 0": np.tile(theta.mean(0), (90, 1)), "epoch 5": 0.5 * theta, "true θ": theta}
    fig = plotting.plot_snapshots(snaps, labels=labels, dims=(0, 2), n_cols=2)
    assert len(fig.axes) == 3  # the empty fourth cell is removed
    assert [_title(ax) for ax in fig.axes] == list(snaps)
    for ax, th in zip(fig.axes, snaps.values()):
        assert _n_offsets(ax) == 90
        pts = np.concatenate([c.get_offsets() for c in ax.collections])
        np.testing.assert_allclose(np.sort(pts[:, 0]), np.sort(th[:, 0]))
        np.testing.assert_allclose(np.sort(pts[:, 1]), np.sort(th[:, 2]))
    assert fig.axes[0].get_shared_x_axes().joined(fig.axes[0], fig.axes[2])
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["process 0", "process 1", "process 2"]
    with pytest.raises(ValueError, match="same shape"):
        plotting.plot_snapshots({"a": theta, "b": theta[:10]})


def test_plot_scaling_fits_the_slope_per_series():
    n = np.array([500, 1000, 2000, 4000])
    frame = pd.concat(
        [
            pd.DataFrame({"n": n, "s": 1e-3 * n, "source": "live"}),
            pd.DataFrame({"n": n, "s": 1e-6 * n**2.0, "source": "quadratic"}),
        ]
    )
    fig = plotting.plot_scaling(frame, "n", "s", hue="source")
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "live (slope 1.00)" in texts and "quadratic (slope 2.00)" in texts
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    markers = [line for line in ax.get_lines() if line.get_linestyle() == "None"]
    np.testing.assert_allclose(markers[1].get_ydata(), 1e-6 * n**2.0)
    low, high = ax.get_ylim()
    assert low <= frame["s"].min() and high >= frame["s"].max()
    with pytest.raises(ValueError, match="positive"):
        plotting.plot_scaling(frame.assign(s=0.0), "n", "s")
    with pytest.raises(ValueError, match="hue"):
        plotting.plot_scaling(frame, "n", "s", hue="nope")


def test_plot_soft_memberships_leaves_missing_columns_blank():
    Z = np.array([[0.7, 0.3, np.nan], [0.5, 0.5, np.nan], [np.nan, 0.2, 0.8]])
    fig = plotting.plot_soft_memberships(Z, ["a", "a", "b"], columns=["k0", "k1", "k2"], annotate=False)
    table = fig.axes[0].memberships_
    np.testing.assert_allclose(table.loc["a"].to_numpy(), [0.6, 0.4, np.nan])
    np.testing.assert_allclose(table.loc["b"].to_numpy(), [np.nan, 0.2, 0.8])
