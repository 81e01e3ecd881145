"""Tests of the fit-time work on ARMED: single-threaded refit, defaults, the z-predictor's settings."""

import numpy as np
import pytest
import torch
from sklearn.base import clone

import perslib.armed._estimators as estimators
from perslib.armed import ARMEDClassifier, ARMEDRegressor
from perslib.data import make_spirals
from perslib.mlp import MLP


def _intercept_data(n_clusters=12, n_per=40, seed=0):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_clusters), n_per)
    X = rng.normal(size=(len(g), 2))
    y = 2 * X[:, 0] - X[:, 1] + rng.normal(0, 1.0, n_clusters)[g] + rng.normal(0, 0.5, len(g))
    return X, y, g


def test_refit_runs_on_one_cpu_thread_and_restores_the_setting(monkeypatch):
    # Many threads on small tensors spin on a busy machine (the refit took minutes there).
    seen = []
    refit = estimators.refit_network

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return refit(*args, **kwargs)

    monkeypatch.setattr(estimators, "refit_network", spy)
    X, y, g = _intercept_data()
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        model = ARMEDRegressor(hidden=(8,), epochs=3, patience=0, device="cpu", random_state=0).fit(X, y, groups=g)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert seen == [1]
    assert model.refit_ is not None and model.refit_["converged"]


def test_auto_schedule_by_training_rows_and_the_zpredictor_inherits_it():
    small = make_spirals(n_clusters=4, n_per_cluster=60, random_state=0)  # 240 rows: 216 train
    large = make_spirals(n_clusters=4, n_per_cluster=600, random_state=0)  # 2,400 rows: 2,160 train
    kw = dict(hidden=(8,), zpredictor_hidden=(8,), epochs=2, device="cpu", random_state=0)
    model = ARMEDClassifier(**kw)
    assert (model.batch_size, model.lr) == ("auto", "auto")
    for (X, y, g, _), expected in [(small, (64, 1e-3)), (large, (256, 2e-3))]:
        model.fit(X, y, groups=g)
        assert (model.batch_size_, model.lr_) == pytest.approx(expected)
        zp = model.zpredictor_
        assert (zp.batch_size, zp.lr, zp.epochs) == pytest.approx((*expected, 2))
    # an explicit batch keeps the square-root rule for lr="auto"
    assert ARMEDClassifier(batch_size=128)._training_schedule(10) == pytest.approx((128, 1e-3 * 2**0.5))
    with pytest.raises(ValueError, match="batch_size"):
        ARMEDClassifier(batch_size="big", **kw).fit(*small[:2], groups=small[2])
    # the regressor keeps fixed defaults (the larger batch moved its unseen-cluster R² outside tolerance)
    reg = ARMEDRegressor(epochs=2)
    assert (reg.batch_size, reg.lr) == (64, 1e-3)
    assert (reg.get_params()["batch_size"], clone(ARMEDRegressor(lr=0.01)).lr) == (64, 0.01)
    X, y, g, _ = small
    other = ARMEDClassifier(batch_size=32, lr=5e-4, **kw)
    other.fit(X, y, groups=g)
    assert (other.zpredictor_.batch_size, other.zpredictor_.lr) == (32, 5e-4)


def test_mlp_without_dropout_is_the_plain_composition_and_dropout_still_drops():
    torch.manual_seed(0)
    x = torch.randn(50, 3)
    net = MLP(3, (6, 5), dropout=0.0).train()
    out, hiddens = net(x, return_hidden=True)
    h1 = torch.relu(net.hidden_layers[0](x))
    h2 = torch.relu(net.hidden_layers[1](h1))
    assert torch.equal(hiddens[0], h1) and torch.equal(hiddens[1], h2)
    assert torch.equal(out, net.out(h2))
    dropped = MLP(3, (6, 5), dropout=0.5).train()
    _, hd = dropped(x, return_hidden=True)
    assert (hd[0] == 0).float().mean() > (torch.relu(dropped.hidden_layers[0](x)) == 0).float().mean()
