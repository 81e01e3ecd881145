"""Choosing personalized regression's settings by the held-out loss, checked against the true θ."""

import numpy as np
import pytest

from perslib.data import make_personalized_regression
from perslib.evaluation import parameter_mse
from perslib.personalized import PersonalizedRegressor, select_by_held_out_loss


@pytest.fixture(scope="module")
def sim():
    X, y, U, theta, _ = make_personalized_regression(n_samples=600, random_state=3)
    return X, y, U, theta


def test_held_out_choice_is_the_setting_closest_to_the_truth(sim):
    X, y, U, theta = sim
    base = PersonalizedRegressor(rank=4, epochs=40, random_state=0, progress=False)
    best, table = select_by_held_out_loss(base, X, y, covariates=U, param_grid={"pull": [100.0, 0.01]})
    assert table["chosen"].sum() == 1 and list(table["pull"]) == [100.0, 0.01]
    errors = []
    for pull in table["pull"]:
        errors.append(parameter_mse(base.set_params(pull=pull).fit(X, y, covariates=U).coef_, theta))
    # ground truth: a pull of 100 collapses every model onto the population model
    assert errors[0] > 2 * errors[1]
    assert best.pull == 0.01 and bool(table.loc[1, "chosen"])
    assert parameter_mse(best.coef_, theta) == pytest.approx(errors[1], rel=1e-6)
    assert table.loc[1, "held_out_loss"] < table.loc[0, "held_out_loss"]
    np.testing.assert_allclose(table["held_out_loss"].iloc[1], best.history_["val_loss"].min())


def test_tolerance_prefers_the_first_setting_within_it(sim):
    X, y, U, _ = sim
    base = PersonalizedRegressor(rank=2, epochs=3, random_state=0, progress=False)
    _, table = select_by_held_out_loss(base, X, y, covariates=U, param_grid={"n_neighbors": [5, 6]}, tolerance=10.0)
    assert list(table["chosen"]) == [True, False]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"param_grid": {}}, "at least one parameter"),
        ({"param_grid": {"no_such": [1]}}, "no_such"),
        ({"param_grid": {"pull": [1.0]}, "tolerance": -1}, "tolerance"),
    ],
)
def test_bad_input_names_the_argument(sim, kwargs, message):
    X, y, U, _ = sim
    with pytest.raises(ValueError, match=message):
        select_by_held_out_loss(PersonalizedRegressor(random_state=0), X, y, covariates=U, **kwargs)


def test_needs_held_out_samples_and_a_seed(sim):
    X, y, U, _ = sim
    with pytest.raises(ValueError, match="val_fraction"):
        select_by_held_out_loss(
            PersonalizedRegressor(val_fraction=0.0, random_state=0), X, y, covariates=U, param_grid={"pull": [1.0]}
        )
    with pytest.raises(ValueError, match="random_state"):
        select_by_held_out_loss(PersonalizedRegressor(), X, y, covariates=U, param_grid={"pull": [1.0]})
