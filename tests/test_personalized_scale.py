"""Tests of the large-n path of PersonalizedRegressor (``large_n``, ``batch_size="auto"``, ``refresh_every="auto"``).

The large-n path is forced at small n (``large_n`` low, the step count per epoch patched
up) so that every test runs in seconds.
"""

import numpy as np
import pytest

from perslib.data.simulate import make_personalized_regression
from perslib.evaluation import parameter_mse
from perslib.personalized import PersonalizedRegressor, _estimators, knn_table
from perslib.personalized._estimators import LARGE_N, auto_schedule

FAST = dict(rank=4, device="cpu", random_state=0, progress=False)


@pytest.fixture(scope="module")
def sim():
    X, y, U, theta, _ = make_personalized_regression(3000, random_state=0)
    return X, y, U, theta


@pytest.mark.parametrize("n_train", [2, 100, 720, 1800, 18_000, LARGE_N - 1])
def test_auto_schedule_below_large_n_is_the_old_default(n_train):
    # the defaults before the large-n path: batch_size=512, refresh_every=1
    assert auto_schedule(n_train) == (512, 1, False)


def test_auto_schedule_large_n():
    assert auto_schedule(LARGE_N) == (max(512, -(-LARGE_N // 64)), 5, True)
    assert auto_schedule(900_000) == (14_063, 5, True)  # ≈ 64 steps per epoch
    assert auto_schedule(900_000, batch_size=256, refresh_every=2) == (256, 2, True)
    assert auto_schedule(10, batch_size=32, refresh_every=3, large_n=5) == (32, 3, True)


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
    patch.setattr(_estimators, "LARGE_VAL_MAX", 100)  # held-out loss on 100 of the 300 held-out samples
    try:
        return [PersonalizedRegressor(large_n=1000, **FAST).fit(X, y, covariates=U) for _ in range(2)]
    finally:
        patch.undo()


def test_large_path_is_taken(large_path_fit):
    m = large_path_fit[0]
    assert (m.batch_size_, m.refresh_every_) == (675, 5)


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


@pytest.mark.parametrize(
    "params",
    [{"batch_size": "big"}, {"batch_size": 0}, {"refresh_every": "sometimes"}, {"large_n": 0}],
)
def test_bad_schedule_parameters_name_the_argument(sim, params):
    X, y, U, _ = sim
    name = next(iter(params))
    with pytest.raises((ValueError, TypeError), match=name):
        PersonalizedRegressor(**FAST, **params).fit(X[:100], y[:100], covariates=U.iloc[:100])
