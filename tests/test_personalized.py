"""Tests of perslib.personalized and perslib.personalized against the simulator's truth and closed forms."""

import pickle
import tracemalloc

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone

from perslib import load
from perslib.data.simulate import make_personalized_regression
from perslib.personalized import (
    CovariateSpace,
    PersonalizedClassifier,
    PersonalizedModule,
    PersonalizedRegressor,
    distance_matching_loss,
    knn_table,
    mean_abs_pairwise_difference,
    pair_deltas,
)

FAST = dict(device="cpu", random_state=0, progress=False)


@pytest.fixture(scope="module")
def sim():
    X, y, U, theta, _ = make_personalized_regression(600, random_state=0)
    Xt, yt, Ut, theta_t, _ = make_personalized_regression(400, random_state=1)
    return X, y, U, theta, Xt, yt, Ut, theta_t


@pytest.fixture(scope="module")
def low_rank_fit(sim):
    X, y, U, *_ = sim
    return PersonalizedRegressor(rank=4, epochs=150, **FAST).fit(X, y, covariates=U)


def _pop_mse(theta):
    return float(((theta - theta.mean(0)) ** 2).mean())  # population model ≈ E[θ]


# ------------------------------------------------------------------ recovery
def test_low_rank_recovers_parameters_and_metric(sim, low_rank_fit):
    X, y, U, theta, *_ = sim
    m = low_rank_fit
    pop_mse = float(((m.population_coef_ - theta) ** 2).mean())
    pr_mse = float(((m.coef_ - theta) ** 2).mean())
    assert pop_mse > 1.0
    assert pr_mse < 0.3 * pop_mse
    assert m.coef_.shape == theta.shape and m.intercept_.shape == (600,)
    assert m.dictionary_.shape == (4, 5) and m.embeddings_.shape == (600, 4)
    # coef_ = population + embeddings @ dictionary (user's units)
    np.testing.assert_allclose(m.coef_, m.population_coef_ + m.embeddings_ @ m.dictionary_, atol=1e-4)
    w = m.covariate_weights_
    assert isinstance(w, pd.Series) and list(w.index) == list(U.columns)
    assert w["u_irrelevant_0"] < 0.25 * min(w["u_position"], w["u_process"])
    assert np.isclose(w.sum(), 1.0)  # shares; the scale is in matching_
    # distance matching relates the distances instead of collapsing: a scale far from 0,
    # parameter distances that grow with covariate distances
    assert m.matching_["scale"] > 0.1 and m.matching_["correlation"] > 0.3
    assert 0 < m.matching_["within_bound"] <= 1


def test_metric_and_error_do_not_drift_with_many_steps_per_epoch():
    """At large n an epoch has many Adam steps (n / batch_size); the irrelevant
    covariate's share and the parameter error must not grow with them. Batch 64 at
    n = 1500 gives 22 steps per epoch, as n = 11,000 does at the default batch 512 (before
    the fix: share 0.10, θ MSE 0.12 after 30 epochs)."""
    X, y, U, theta, _ = make_personalized_regression(1500, random_state=0)
    m = PersonalizedRegressor(rank=4, batch_size=64, epochs=30, **FAST).fit(X, y, covariates=U)
    w = m.covariate_weights_
    assert w["u_irrelevant_0"] / w.sum() < 0.05
    assert ((m.coef_ - theta) ** 2).mean() < 0.11  # population model: about 1.5; batch 512: 0.06


def test_new_sample_prediction_knn_rule(sim, low_rank_fit):
    *_, Xt, yt, Ut, theta_t = sim
    coef, intercept = low_rank_fit.predict_params(Ut)
    assert coef.shape == (400, 5) and intercept.shape == (400,)
    assert ((coef - theta_t) ** 2).mean() < 0.3 * _pop_mse(theta_t)
    pred = low_rank_fit.predict(Xt, covariates=Ut)
    np.testing.assert_allclose(pred, np.einsum("ij,ij->i", Xt, coef) + intercept)


def test_encoder_predicts_new_samples(sim):
    X, y, U, theta, Xt, yt, Ut, theta_t = sim
    m = PersonalizedRegressor(rank=4, encoder="mlp", epochs=150, **FAST).fit(X, y, covariates=U)
    coef, _ = m.predict_params(Ut)
    assert ((coef - theta_t) ** 2).mean() < 0.5 * _pop_mse(theta_t)


def test_full_rank_beats_population(sim):
    X, y, U, theta, *_ = sim
    m = PersonalizedRegressor(rank=None, epochs=100, **FAST).fit(X, y, covariates=U)
    assert ((m.coef_ - theta) ** 2).mean() < 0.6 * ((m.population_coef_ - theta) ** 2).mean()
    assert m.parameter_weights_.shape == (5,) and np.isclose(m.parameter_weights_.sum(), 1.0)


def test_classifier_recovers_better_than_population():
    X, y, U, theta, _ = make_personalized_regression(800, task="logistic", random_state=2)
    m = PersonalizedClassifier(rank=4, epochs=100, **FAST).fit(X, y, covariates=U)
    pr = ((m.coef_ - theta) ** 2).mean()
    pop = ((m.population_coef_ - theta) ** 2).mean()
    assert pr < 0.6 * pop
    proba = m.predict_proba(X[:50], covariates=U.iloc[:50])
    assert proba.shape == (50, 2) and np.allclose(proba.sum(1), 1) and ((proba >= 0) & (proba <= 1)).all()
    assert set(m.predict(X[:50], covariates=U.iloc[:50])) <= {0, 1}


# ------------------------------------------------------------------ closed forms
def test_matching_loss_zero_when_embedding_reproduces_covariate_distances():
    rng = np.random.default_rng(0)
    u = rng.uniform(-2, 2, 200)
    space = CovariateSpace().fit(u[:, None])
    enc = space.transform(u[:, None])
    assert np.isclose(space.scale_[0], np.abs(u[:, None] - u[None, :])[np.triu_indices(200, 1)].mean())
    phi = 0.7
    module = PersonalizedModule(200, 3, 1, 1, np.zeros(3), rng).double()
    module.scale_phi_raw.data = torch.tensor(float(np.log(np.expm1(phi))), dtype=torch.float64)  # φ = s = 0.7
    module.Z.data = torch.as_tensor(phi * enc)  # 1-D embedding: |z_i − z_j| = φ|u_i − u_j| / scale
    idx = torch.arange(200)
    partners = torch.as_tensor(rng.integers(0, 200, (200, 5)))
    U = torch.as_tensor(enc)
    deltas = pair_deltas(U[idx][:, None, :], U[partners], torch.tensor([False]))
    phi_t = module.phi()
    assert torch.isclose(phi_t, torch.tensor(phi, dtype=torch.float64))
    loss = distance_matching_loss(module.param_distance(idx, partners), deltas, phi_t)
    assert float(loss.detach()) < 1e-10
    module.Z.data = module.Z.data * 1.5  # a wrong scale must be penalized
    assert float(distance_matching_loss(module.param_distance(idx, partners), deltas, phi_t).detach()) > 1e-3


def test_pair_deltas_categorical_and_missing():
    U = pd.DataFrame({"a": [0.0, 2.0, np.nan, 4.0], "c": ["x", "y", "x", None]})
    space = CovariateSpace().fit(U)
    assert list(space.is_categorical_) == [False, True]
    enc = torch.as_tensor(space.transform(U))
    d = pair_deltas(enc[[0, 0, 0, 1]], enc[[1, 2, 3, 3]], torch.as_tensor(space.is_categorical_)).numpy()
    scale = mean_abs_pairwise_difference(np.array([0.0, 2.0, 4.0]))  # (2 + 4 + 2) / 3
    np.testing.assert_allclose(d, [[2 / scale, 1], [0, 0], [4 / scale, 0], [2 / scale, 0]])
    # the search space reproduces φᵀΔ as a Manhattan distance (complete rows)
    phi = np.array([0.3, 2.0])
    S = space.search_matrix(space.transform(U), phi)
    assert np.isclose(np.abs(S[0] - S[1]).sum(), phi @ d[0])


def test_mean_abs_pairwise_difference_matches_brute_force():
    a = np.random.default_rng(3).standard_normal(57)
    brute = np.abs(a[:, None] - a[None, :])[np.triu_indices(57, 1)].mean()
    assert np.isclose(mean_abs_pairwise_difference(a), brute)


def test_knn_table_excludes_self_and_matches_brute_force():
    P = np.random.default_rng(4).standard_normal((100, 3))
    ind = knn_table(P, 4)
    D = np.abs(P[:, None] - P[None]).sum(-1)
    np.fill_diagonal(D, np.inf)
    np.testing.assert_array_equal(np.sort(ind, 1), np.sort(np.argsort(D, 1)[:, :4], 1))


# ------------------------------------------------------------------ limiting cases
def test_homogeneous_data_gives_back_population_model():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((500, 3))
    true = np.array([1.5, -2.0, 0.5])
    y = X @ true + 0.1 * rng.standard_normal(500)
    U = rng.uniform(size=(500, 2))
    m = PersonalizedRegressor(rank=2, epochs=100, **FAST).fit(X, y, covariates=U)
    np.testing.assert_allclose(m.population_coef_, true, atol=0.05)
    dev = np.abs(m.coef_ - m.population_coef_)
    assert dev.mean() < 0.03 and dev.max() < 0.15  # no personalization where there is none
    assert isinstance(m.covariate_weights_, np.ndarray) and m.covariate_weights_.shape == (2,)


def test_large_matching_weight_collapses_identical_covariates():
    rng = np.random.default_rng(6)
    n_groups, size = 60, 4
    u = np.repeat(rng.uniform(0, 10, n_groups), size)[:, None]
    X = rng.standard_normal((n_groups * size, 3))
    theta = rng.standard_normal((n_groups * size, 3))  # every sample its own truth
    y = (X * theta).sum(1)

    def within_spread(gamma):
        m = PersonalizedRegressor(
            rank=3, matching_weight=gamma, n_neighbors=size - 1, val_fraction=0.0, epochs=60, **FAST
        )
        coef = m.fit(X, y, covariates=u).coef_.reshape(n_groups, size, 3)
        return float(((coef - coef.mean(1, keepdims=True)) ** 2).mean()), m

    free, _ = within_spread(0.0)
    tied, m = within_spread(1e4)
    assert free > 0.05
    assert tied < 0.02 * free
    groups = np.arange(n_groups * size) // size
    assert (groups[m.partners_] == groups[:, None]).all()  # partners are the identical-covariate samples


# ------------------------------------------------------------------ scaling / memory
def test_no_quadratic_allocation():
    n, k = 4000, 5
    X, y, U, _, _ = make_personalized_regression(n, random_state=7)
    m = PersonalizedRegressor(rank=3, n_neighbors=k, epochs=2, batch_size=512, **FAST)
    tracemalloc.start()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        m.fit(X, y, covariates=U)
    _, peak_numpy = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    dense = n * n * 4  # one float32 n×n matrix: 64 MB
    largest_torch = max(e.cpu_memory_usage for e in prof.events())
    assert largest_torch < dense / 20
    assert peak_numpy < dense / 4
    assert m.partners_.shape == (len(m.train_index_), k)


@pytest.mark.parametrize("mode", ["latent", "random"])
def test_other_neighbor_modes_run(sim, mode):
    X, y, U, *_ = sim
    for rank in (3, None):
        m = PersonalizedRegressor(rank=rank, neighbors=mode, n_neighbors=4, epochs=3, **FAST).fit(X, y, covariates=U)
        assert m.partners_.shape == (len(m.train_index_), 4)
        assert (m.partners_ != m.train_index_[:, None]).all()


# ------------------------------------------------------------------ contract
def test_determinism_save_load_and_clone(sim, tmp_path):
    X, y, U, *_ = sim
    est = PersonalizedRegressor(rank=3, epochs=15, encoder="mlp", **FAST)
    a = clone(est).fit(X, y, covariates=U)
    b = clone(est).fit(X, y, covariates=U)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    np.testing.assert_array_equal(a.predict(X[:20], covariates=U[:20]), b.predict(X[:20], covariates=U[:20]))
    a.save(tmp_path / "m.pkl")
    c = load(tmp_path / "m.pkl")
    np.testing.assert_array_equal(c.predict(X[:20], covariates=U[:20]), a.predict(X[:20], covariates=U[:20]))
    d = pickle.loads(pickle.dumps(PersonalizedRegressor(rank=3, epochs=5, **FAST).fit(X, y, covariates=U)))
    assert d.predict(X[:5], covariates=U[:5]).shape == (5,)
    params = est.get_params()
    assert params["rank"] == 3 and params["encoder"] == "mlp"
    fresh = clone(est).set_params(rank=None)
    assert fresh.rank is None and not hasattr(fresh, "coef_")


def test_categorical_and_missing_covariates_fit():
    rng = np.random.default_rng(8)
    n = 300
    group = rng.choice(["a", "b", "c"], n)
    X = rng.standard_normal((n, 2))
    theta = np.where((group == "a")[:, None], [2.0, -1.0], [-1.0, 2.0])
    y = (X * theta).sum(1) + 0.1 * rng.standard_normal(n)
    U = pd.DataFrame({"group": pd.Categorical(group), "noise": rng.standard_normal(n)})
    U.loc[::10, "noise"] = np.nan
    m = PersonalizedRegressor(rank=2, epochs=60, **FAST).fit(X, y, covariates=U)
    assert ((m.coef_ - theta) ** 2).mean() < 0.3 * ((m.population_coef_ - theta) ** 2).mean()
    assert list(m.covariate_weights_.index) == ["group", "noise"]
    new = pd.DataFrame({"group": ["a", "z"], "noise": [np.nan, 0.0]})  # unseen level and missing value
    assert m.predict(X[:2], covariates=new).shape == (2,)


def test_bad_input_names_the_argument(sim):
    X, y, U, *_ = sim
    est = PersonalizedRegressor(rank=2, epochs=1, **FAST)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="X"):
        est.fit(Xn, y, covariates=U)
    yi = y.copy()
    yi[3] = np.inf
    with pytest.raises(ValueError, match="y"):
        est.fit(X, yi, covariates=U)
    with pytest.raises(ValueError, match="covariates"):
        est.fit(X, y, covariates=U.iloc[:-1])
    with pytest.raises(ValueError, match="covariates"):
        est.fit(X, y)
    bad = U.to_numpy().astype(object)
    bad[0, 0] = "oops"
    with pytest.raises(ValueError, match="covariates"):
        est.fit(X, y, covariates=bad)
    with pytest.raises(ValueError, match="rank"):
        PersonalizedRegressor(rank=0).fit(X, y, covariates=U)
    with pytest.raises(ValueError, match="neighbors"):
        PersonalizedRegressor(neighbors="all").fit(X, y, covariates=U)
    m = est.fit(X, y, covariates=U)
    with pytest.raises(ValueError, match="covariates"):
        m.predict(X[:5], covariates=U.iloc[:5, :2].to_numpy())
    with pytest.raises(ValueError, match="X"):
        m.predict(X[:5, :3], covariates=U.iloc[:5])
    with pytest.raises(ValueError, match="y"):
        PersonalizedClassifier(epochs=1, **FAST).fit(X, np.ones(len(X)), covariates=U)


# ------------------------------------------------------------------ relaxation snapshots
def test_snapshots_start_at_population_and_relax(sim):
    X, y, U, theta, *_ = sim
    m = PersonalizedRegressor(rank=None, epochs=40, patience=0, snapshot_epochs=[0, 5, 39, 500], **FAST).fit(
        X, y, covariates=U
    )
    assert sorted(m.snapshots_) == [0, 5, 39]  # 500 > n_epochs_ is absent, not an error
    coef0, int0 = m.snapshots_[0]
    assert coef0.shape == (len(m.train_index_), X.shape[1]) and int0.shape == (len(m.train_index_),)
    # full rank starts every model exactly at the population estimate (ridge on standardized data)
    np.testing.assert_allclose(coef0, np.tile(m.population_coef_, (len(coef0), 1)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(int0, m.population_intercept_, rtol=1e-5, atol=1e-5)
    # ... and relaxes: the spread of the per-sample models grows and ends near the truth's spread
    spread = [m.snapshots_[e][0].std(0).mean() for e in (0, 5, 39)]
    assert spread[0] < 1e-5 < spread[1] < spread[2]
    truth_err = [((m.snapshots_[e][0] - theta[m.train_index_]) ** 2).mean() for e in (0, 39)]
    assert truth_err[1] < truth_err[0]
    with pytest.raises(ValueError, match="snapshot_epochs"):
        PersonalizedRegressor(snapshot_epochs=[-1], **FAST).fit(X, y, covariates=U)


def test_default_chooses_the_rank_by_held_out_loss(sim):
    """PersonalizedRegressor() is low rank: rank="auto" tries 1, 2, 4, … and keeps the
    smallest rank within 1 % of the best held-out loss; on the simulation (θ needs about
    four directions) it lands at 4 or above and recovers θ far better than the population."""
    X, y, U, theta, *_ = sim
    m = PersonalizedRegressor(**FAST).fit(X, y, covariates=U)
    scores = m.rank_scores_
    assert list(scores.index) == [1, 2, 4, 6] and m.rank_ >= 4  # p + 1 = 6 < 8
    assert scores[m.rank_] <= 1.01 * scores.min() and all(
        scores[q] > 1.01 * scores.min() for q in scores.index if q < m.rank_
    )
    assert scores[1] > 2 * scores[m.rank_]
    assert ((m.coef_ - theta) ** 2).mean() < 0.1 * ((m.population_coef_ - theta) ** 2).mean()
    with pytest.raises(ValueError, match="val_fraction must be > 0"):
        PersonalizedRegressor(**{**FAST, "val_fraction": 0.0}).fit(X, y, covariates=U)


def test_paper_objective_has_no_transfer_term_and_learns_its_metric(sim):
    X, y, U, *_ = sim
    m = PersonalizedRegressor(rank=4, objective="paper", epochs=40, **FAST).fit(X, y, covariates=U)
    assert (m.history_["transfer_loss"] == 0).all()
    assert m.history_["metric_scale"].std() > 0  # φ moves with the matching term
    b = PersonalizedRegressor(rank=4, objective="bound", epochs=40, **FAST).fit(X, y, covariates=U)
    assert (b.history_["transfer_loss"] > 0).all()


def test_tied_covariates_get_random_partners_among_the_ties():
    """Samples that share their covariates (students of one school) used to get the same
    lowest-numbered k partners at every refresh; ties are now broken at random."""
    points = np.repeat(np.array([[0.0], [1.0], [2.0]]), 30, axis=0)  # 3 groups of 30 identical rows
    fixed = knn_table(points, 5)
    assert len(np.unique(fixed)) <= 3 * 6  # the same few rows of each group, for everyone
    rng = np.random.default_rng(0)
    shuffled = knn_table(points, 5, rng=rng)
    assert len(np.unique(shuffled)) > 0.9 * len(points)
    assert (
        np.repeat(np.arange(3), 30)[shuffled] == np.repeat(np.arange(3), 30)[:, None]
    ).all()  # still within the group
    assert not (shuffled == np.arange(90)[:, None]).any()  # never oneself
    np.testing.assert_array_equal(knn_table(points, 5, rng=np.random.default_rng(0)), shuffled)  # seeded
