import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from perslib._core.training import TrainConfig, split_validation, train_loop, train_module


def _linear_data(n=400, p=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    beta = np.array([1.5, -2.0, 0.5])[:p]
    y = X @ beta + 0.3 + 0.1 * rng.normal(size=n)
    return X, y


def test_train_module_reaches_least_squares_solution():
    X, y = _linear_data()
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    Xt, yt = torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    cfg = TrainConfig(epochs=300, batch_size=50, lr=0.05, patience=0)

    def loss(m, xb, yb):
        return ((m(xb).squeeze(-1) - yb) ** 2).mean()

    history = train_module(model, loss, (Xt, yt), cfg, generator=torch.Generator().manual_seed(0))
    ols = np.linalg.lstsq(np.column_stack([X, np.ones(len(X))]), y, rcond=None)[0]
    fitted = np.r_[model.weight.detach().numpy().ravel(), model.bias.item()]
    assert np.allclose(fitted, ols, atol=0.02)
    assert len(history) == 300 and history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]


def test_early_stopping_restores_best_epoch():
    # The validation loss is a scripted sequence: best at epoch 3, then worse.
    module = nn.Linear(1, 1)
    val_losses = iter([5.0, 4.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    weights_seen = []

    def step(batch):
        with torch.no_grad():
            module.weight += 1.0
        return 0.5

    def evaluate():
        weights_seen.append(module.weight.item())
        return next(val_losses)

    cfg = TrainConfig(epochs=8, batch_size=10, patience=2)
    hist = train_loop(step, (torch.zeros(10, 1),), cfg, module=module, evaluate=evaluate)
    assert len(hist) == 5  # epochs 4 and 5 do not improve on epoch 3 -> stop
    assert module.weight.item() == pytest.approx(weights_seen[2])
    assert list(hist["val_loss"]) == [5.0, 4.0, 1.0, 2.0, 3.0]


def test_train_loop_refuses_nan_loss():
    module = nn.Linear(1, 1)
    with pytest.raises(FloatingPointError, match="epoch 1"):
        train_loop(lambda b: float("nan"), (torch.zeros(4, 1),), TrainConfig(epochs=2), module=module)


def test_step_may_return_named_losses():
    module = nn.Linear(1, 1)
    hist = train_loop(
        lambda b: {"loss": 1.0, "adversary": 2.0},
        (torch.zeros(8, 1),),
        TrainConfig(epochs=2, batch_size=4),
        module=module,
    )
    assert list(hist.columns) == ["epoch", "train_loss", "adversary"]
    assert hist["adversary"].tolist() == [2.0, 2.0]


def test_split_validation_stratified():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    tr, va = split_validation(100, 0.2, rng, stratify=labels)
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == 100
    assert np.bincount(labels[va]).tolist() == [10, 6, 4]
    with pytest.raises(ValueError, match="val_fraction"):
        split_validation(10, 1.0, rng)


@pytest.mark.parametrize("kwargs", [{"epochs": 0}, {"batch_size": -1}, {"lr": 0.0}, {"patience": -1}])
def test_config_validation(kwargs):
    with pytest.raises(ValueError, match=list(kwargs)[0]):
        TrainConfig(**kwargs)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 300),
    frac=st.floats(0.0, 0.9),
    n_labels=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_split_validation_is_a_partition(n, frac, n_labels, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(n_labels, size=n)
    for stratify in (None, labels):
        tr, va = split_validation(n, frac, np.random.default_rng(seed), stratify=stratify)
        assert sorted(np.r_[tr, va].tolist()) == list(range(n))
        if frac > 0 and stratify is not None:
            # every label with at least two samples keeps one in training
            for lab in np.unique(labels):
                if (labels == lab).sum() >= 2:
                    assert (labels[tr] == lab).any()


def test_callbacks_run_at_every_epoch_boundary():
    torch.manual_seed(0)
    x = torch.randn(30, 2)
    y = x @ torch.tensor([1.0, -1.0])
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    class Log:
        def __init__(self):
            self.events = []

        def on_epoch_start(self, epoch):
            self.events.append(("start", epoch))

        def on_epoch_end(self, epoch, row):
            self.events.append(("end", epoch, round(row["train_loss"], 6) >= 0))

    def step(batch):
        xb, yb = batch
        opt.zero_grad()
        loss = ((model(xb)[:, 0] - yb) ** 2).mean()
        loss.backward()
        opt.step()
        return loss.item()

    log, starts_only = Log(), type("S", (), {"on_epoch_start": lambda self, e: seen.append(e)})()
    seen = []
    history = train_loop(
        step, (x, y), TrainConfig(epochs=3, batch_size=7, progress=False), module=model, callbacks=[log, starts_only]
    )
    assert len(history) == 3
    assert log.events == [
        ("start", 0),
        ("end", 1, True),
        ("start", 1),
        ("end", 2, True),
        ("start", 2),
        ("end", 3, True),
    ]
    assert seen == [0, 1, 2]


def test_early_stopping_restores_buffers_of_best_epoch():
    # The snapshot must hold copies of parameters and buffers (running statistics, counters) as
    # they were at the best epoch, unaffected by later in-place updates.
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    x = torch.randn(16, 2)
    val_losses = iter([3.0, 1.0, 2.0, 2.5])
    seen = []

    def step(batch):
        module(batch[0])  # updates the running statistics in place
        with torch.no_grad():
            module[0].weight.mul_(1.5)
        return 0.0

    def evaluate():
        seen.append({k: v.clone() for k, v in module.state_dict().items()})
        return next(val_losses)

    cfg = TrainConfig(epochs=4, batch_size=16, patience=2)
    train_loop(step, (x,), cfg, module=module, evaluate=evaluate)
    best = seen[1]
    state = module.state_dict()
    assert int(state["1.num_batches_tracked"]) == 2
    for key, value in best.items():
        assert torch.equal(state[key], value), key
    assert not torch.equal(seen[3]["0.weight"], best["0.weight"])
