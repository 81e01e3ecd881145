"""The closed-form engine of large-n personalized regression (``perslib.personalized._fused``).

Its gradients are checked against autograd on :meth:`PersonalizedModule.loss` (the
objective every small fit trains), its row optimizer against ``torch.optim.SparseAdam``,
and the learning-rate schedule of the large-n path against its rule.
"""

import numpy as np
import pytest
import torch

from perslib._core.training import PlateauDecay
from perslib.personalized._distances import pair_deltas
from perslib.personalized._fused import LazyRowAdam, fused_supported
from perslib.personalized._module import Objective, PersonalizedModule

N, P, K, Q, KNB, B = 400, 6, 3, 4, 5, 64


def _module(task="linear", kind="bound", seed=0, **kw):
    rng = np.random.default_rng(seed)
    m = PersonalizedModule(N, P, K, Q, rng.standard_normal(P), rng, objective=Objective(task=task, kind=kind), **kw)
    with torch.no_grad():  # away from the initialisation, so every term has a gradient
        m.Z.normal_(generator=torch.Generator().manual_seed(seed))
        m.share_raw.copy_(torch.tensor([0.5, -0.3, 0.1]))
        m.tau_raw.fill_(0.3)
    return m


def _batch(task, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, P, generator=g)
    X[:, -1] = 1.0
    y = torch.randn(N, generator=g) if task == "linear" else (torch.rand(N, generator=g) < 0.5).float()
    U = torch.randn(N, K, generator=g)
    U[::7, 1] = float("nan")  # missing covariates count 0 in Δ
    U[:, 2] = torch.randint(0, 3, (N,), generator=g).float()  # one categorical covariate
    categorical = torch.tensor([False, False, True])
    idx = torch.randperm(N, generator=g)[:B]
    partners = torch.randint(0, N, (B, KNB), generator=g)
    return X, y, U, categorical, idx, partners


@pytest.mark.parametrize("task", ["linear", "logistic"])
@pytest.mark.parametrize("kind", ["bound", "match"])
def test_closed_form_gradients_match_autograd(task, kind):
    m = _module(task, kind)
    X, y, U, categorical, idx, partners = _batch(task)
    loss, terms = m.loss(idx, partners, X, y, U, U, categorical)
    loss.backward()
    ref = {name: p.grad.clone() for name, p in m.named_parameters() if p.grad is not None and name != "Z"}
    ref_z = m.Z.grad.coalesce().to_dense()
    m.zero_grad(set_to_none=True)
    deltas = pair_deltas(U[idx][:, None, :], U[partners], categorical)
    loss2, terms2, rows, row_grads = m.loss_and_grads(idx, partners, deltas, X, y)
    assert loss2.item() == pytest.approx(loss.item(), rel=1e-6)
    for name in terms:
        assert terms2[name].item() == pytest.approx(terms[name].item(), rel=1e-5, abs=1e-8), name
    z = torch.zeros_like(m.Z).index_add_(0, rows, row_grads)
    assert rows.shape == (B * (KNB + 1),)
    torch.testing.assert_close(z, ref_z, rtol=1e-4, atol=1e-6)
    got = {name for name, p in m.named_parameters() if p.grad is not None}
    assert got == set(ref) == {"Q", "share_raw", "tau_raw"}  # the closed-form scale has no gradient
    for name, p in m.named_parameters():
        if name in ref:
            torch.testing.assert_close(p.grad, ref[name], rtol=1e-4, atol=1e-7, msg=name)


def test_transfer_switched_off_leaves_shares_without_gradient():
    m = _module()
    m.objective.metric_learning = 0.0
    X, y, U, categorical, idx, partners = _batch("linear")
    deltas = pair_deltas(U[idx][:, None, :], U[partners], categorical)
    _, terms, _, _ = m.loss_and_grads(idx, partners, deltas, X, y)
    assert float(terms["transfer_loss"]) == 0.0
    assert m.share_raw.grad is None and m.tau_raw.grad is None and m.Q.grad is not None


def test_engine_covers_only_the_objectives_it_derives():
    rng = np.random.default_rng(0)
    assert fused_supported(_module())
    assert fused_supported(_module(kind="match"))
    assert not fused_supported(_module(kind="paper"))
    assert not fused_supported(PersonalizedModule(N, P, K, None, np.zeros(P), rng))  # full rank
    assert not fused_supported(_module(encoder_in=3))


def test_lazy_row_adam_is_sparse_adam():
    """Same updates as torch.optim.SparseAdam, repeated rows included, over several steps."""
    g = torch.Generator().manual_seed(1)
    start = torch.randn(50, 4, generator=g)
    a = torch.nn.Parameter(start.clone())
    b = torch.nn.Parameter(start.clone())
    sparse = torch.optim.SparseAdam([a], lr=0.05)
    lazy = LazyRowAdam(b, lr=0.05)
    touched = torch.zeros(50, dtype=torch.bool)
    for _ in range(6):
        rows = torch.randint(0, 40, (30,), generator=g)  # repeats: their gradients add up
        grads = torch.randn(30, 4, generator=g)
        a.grad = torch.sparse_coo_tensor(rows[None], grads, (50, 4), check_invariants=True)
        sparse.step()
        lazy.step(rows, grads)
        touched[rows] = True
        torch.testing.assert_close(b.data, a.data, rtol=1e-6, atol=1e-7)
    assert torch.equal(b.data[~touched], start[~touched])  # rows 40..49 never moved (lazy)
    assert not torch.equal(b.data[touched], start[touched])


def test_plateau_decay_halves_the_rate_after_patience_epochs_without_improvement():
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))], lr=0.04)
    decay = PlateauDecay(opt, 0.5, 2, min_delta=1e-4)
    losses = [1.0, 0.9, 0.90005, 0.95, 0.8, 0.81, 0.82, 0.83, 0.84]
    rates = []
    for epoch, val in enumerate(losses, 1):
        row = {"val_loss": val}
        decay.on_epoch_end(epoch, row)
        rates.append(row["lr"])
    assert rates == pytest.approx([0.04] * 4 + [0.02] * 3 + [0.01] * 2)
    # no improvement (by more than 1e-4) at epochs 3, 4 -> decay; 6, 7 -> decay; 8, 9 -> decay
    assert decay.decays == [4, 7, 9]
    assert opt.param_groups[0]["lr"] == pytest.approx(0.04 / 8)
    decay.on_epoch_end(10, {"train_loss": 0.1})  # no held-out loss: ignored
    assert decay.decays == [4, 7, 9]
    with pytest.raises(ValueError, match="factor"):
        PlateauDecay(opt, 1.5, 2)
