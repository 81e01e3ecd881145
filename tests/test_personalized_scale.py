"""Tests of the large-n path of PersonalizedRegressor (``large_n``, ``batch_size="auto"``, ``refresh_every="auto"``).

The large-n path is forced at small n (``large_n`` low, the step count per epoch patched
up) so that every test runs in seconds.
"""

import numpy as np
import pytest
import torch

from perslib.data.simulate import make_personalized_regression
from perslib.evaluation import parameter_mse
from perslib.personalized import PersonalizedRegressor, _estimators, knn_table
from perslib.personalized._estimators import LARGE_N, auto_schedule

FAST = dict(rank=4, device="cpu", random_state=0, progress=False)


@pytest.fixture(scope="module")
def sim():
    X, y, U, theta, _ = make_personalized_regression(3000, random_state=0)
    return X, y, U, theta


@pytest.mark.parametrize("n_train", [2, 100, 720, 1800, 7_000, LARGE_N - 1])
def test_auto_schedule_below_large_n_is_the_old_default(n_train):
    # the defaults before the large-n path: batch_size=512, refresh_every=1
    assert auto_schedule(n_train) == (512, 1, False)


def test_auto_schedule_large_n():
    assert auto_schedule(LARGE_N) == (max(512, -(-LARGE_N // 64)), 5, True)
    assert auto_schedule(900_000) == (14_063, 5, True)  # ≈ 64 steps per epoch
    assert auto_schedule(900_000, batch_size=256, refresh_every=2) == (256, 2, True)
    assert auto_schedule(10, batch_size=32, refresh_every=3, large_n=5) == (32, 3, True)
    # the closed-form engine takes fewer, larger steps (≈ 16 per epoch); below large_n nothing changes
    assert auto_schedule(900_000, fused=True) == (56_250, 5, True)
    assert auto_schedule(1800, fused=True) == (512, 1, False)


def test_default_small_n_fit_is_the_old_default_fit(sim):
    """Default parameters below large_n give bit for bit the fit of batch_size=512, refresh_every=1."""
    X, y, U, _ = sim
    X, y, U = X[:800], y[:800], U.iloc[:800]
    new = PersonalizedRegressor(epochs=15, **FAST).fit(X, y, covariates=U)
    old = PersonalizedRegressor(epochs=15, batch_size=512, refresh_every=1, **FAST).fit(X, y, covariates=U)
    assert (new.batch_size_, new.refresh_every_) == (512, 1)
    assert np.array_equal(new.coef_, old.coef_)
    assert np.array_equal(new.intercept_, old.intercept_)
    assert np.array_equal(new.history_.to_numpy(), old.history_.to_numpy())


@pytest.fixture(scope="module")
def large_path_fit(sim):
    X, y, U, _ = sim
    patch = pytest.MonkeyPatch()
    patch.setattr(_estimators, "STEPS_PER_EPOCH", 4)  # batch ceil(2700 / 4) = 675 > 512
    patch.setattr(_estimators, "FUSED_STEPS_PER_EPOCH", 4)  # (the default low-rank fit takes the fused engine)
    patch.setattr(_estimators, "LARGE_VAL_MAX", 100)  # held-out loss on 100 of the 300 held-out samples
    try:
        return [PersonalizedRegressor(large_n=1000, **FAST).fit(X, y, covariates=U) for _ in range(2)]
    finally:
        patch.undo()


def test_large_path_is_taken(large_path_fit):
    m = large_path_fit[0]
    assert (m.batch_size_, m.refresh_every_) == (675, 5)
    # the learning rate is halved on held-out plateaus (PlateauDecay): the history says when
    lr = m.history_["lr"].to_numpy()
    assert lr[0] == m.lr and np.all(np.diff(lr) <= 0)
    assert set(np.round(np.log2(m.lr / lr), 9)) <= set(range(0, 30))


def test_small_path_has_no_schedule(sim):
    X, y, U, _ = sim
    m = PersonalizedRegressor(epochs=3, **FAST).fit(X[:500], y[:500], covariates=U.iloc[:500])
    assert "lr" not in m.history_


def test_large_path_matches_small_path_error(sim, large_path_fit):
    X, y, U, theta = sim
    small = PersonalizedRegressor(**FAST).fit(X, y, covariates=U)
    err_small = parameter_mse(small.coef_, theta)
    err_large = parameter_mse(large_path_fit[0].coef_, theta)
    err_pop = parameter_mse(np.broadcast_to(small.population_coef_, theta.shape), theta)
    assert err_small < 0.5 * err_pop
    assert err_large < err_small * 1.3 + 0.02, (err_large, err_small)


def test_large_path_is_deterministic(large_path_fit):
    a, b = large_path_fit
    assert np.array_equal(a.coef_, b.coef_)
    assert np.array_equal(a.intercept_, b.intercept_)
    assert np.array_equal(a.partners_, b.partners_)


def test_fast_knn_finds_the_same_neighbours():
    rng = np.random.default_rng(3)
    points = rng.standard_normal((2000, 3))
    for metric in ("manhattan", "euclidean"):
        a = knn_table(points, 7, metric=metric, rng=np.random.default_rng(0))
        b = knn_table(points, 7, metric=metric, rng=np.random.default_rng(0), fast=True)
        assert b.shape == (2000, 7) and b.dtype == np.int64
        assert np.array_equal(np.sort(a, 1), np.sort(b, 1))
        assert not (b == np.arange(2000)[:, None]).any()
    dup = np.repeat(points[:50], 20, axis=0)  # exact duplicates, no tie-breaking jitter
    c = knn_table(dup, 5, fast=True)
    assert c.shape == (1000, 5) and not (c == np.arange(1000)[:, None]).any()
    q = knn_table(points, 4, query=points[:10] + 1e-3, fast=True)
    assert np.array_equal(np.sort(q, 1), np.sort(knn_table(points, 4, query=points[:10] + 1e-3), 1))


def test_partner_tree_answers_held_out_queries_like_a_fresh_search():
    """PartnerTable.nearest (the last refresh's tree) finds what knn_table finds under the same shares."""
    from perslib.personalized._distances import CovariateSpace
    from perslib.personalized._partners import PartnerTable

    rng = np.random.default_rng(5)
    space = CovariateSpace().fit(rng.standard_normal((600, 3)))
    cov = space.transform(rng.standard_normal((500, 3)))
    query = space.transform(rng.standard_normal((40, 3)))

    class Shares:  # the module's only role here: the current shares π
        theta_pop = torch.zeros(1)

        def shares(self):
            return torch.tensor([0.6, 0.3, 0.1])

    table = PartnerTable("covariate", 6, 5, Shares(), space, cov, np.random.default_rng(0), fast=True)
    table.on_epoch_start(0)
    got = table.nearest(query, 4)
    shares = np.array([0.6, 0.3, 0.1])
    want = knn_table(space.search_matrix(cov, shares), 4, query=space.search_matrix(query, shares))
    assert np.array_equal(np.sort(got, 1), np.sort(want, 1))
    assert PartnerTable("random", 6, 5, Shares(), space, cov, np.random.default_rng(0)).nearest(query, 4) is None


@pytest.mark.parametrize(
    "params",
    [{"batch_size": "big"}, {"batch_size": 0}, {"refresh_every": "sometimes"}, {"large_n": 0}],
)
def test_bad_schedule_parameters_name_the_argument(sim, params):
    X, y, U, _ = sim
    name = next(iter(params))
    with pytest.raises((ValueError, TypeError), match=name):
        PersonalizedRegressor(**FAST, **params).fit(X[:100], y[:100], covariates=U.iloc[:100])


def test_large_path_classifier_recovers_the_probabilities(sim):
    """The closed-form engine's logistic loss: the large path of PersonalizedClassifier fits as well as the small one."""
    from perslib.personalized import PersonalizedClassifier

    X, _, U, theta = sim
    eta = (X * theta).sum(1)
    p_true = 1.0 / (1.0 + np.exp(-eta))
    y = (np.random.default_rng(0).random(len(eta)) < p_true).astype(int)
    fits = {}
    for name, large_n in (("small", LARGE_N), ("large", 1000)):
        m = PersonalizedClassifier(large_n=large_n, **FAST).fit(X, y, covariates=U)
        p_hat = m.predict_proba(X, covariates=U)[:, 1]
        fits[name] = (m, np.corrcoef(p_hat, p_true)[0, 1])
    assert "lr" in fits["large"][0].history_ and "lr" not in fits["small"][0].history_
    r_small, r_large = fits["small"][1], fits["large"][1]
    assert r_small > 0.8, r_small
    assert r_large > r_small - 0.05, (r_large, r_small)
