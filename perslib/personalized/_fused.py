"""The large-n engine of low-rank personalized regression: the objective's gradients in closed form.

At large n an epoch's arithmetic is tiny (a few hundred flops per sample) and the time
goes to machinery: autograd records and replays ~60 small operations a step, the
per-sample table's gradient is a sparse tensor that ``SparseAdam`` must coalesce (a
sort), and the gathers go through advanced indexing. For the objective every default
low-rank fit uses (``objective="bound"`` or ``"match"``, no encoder, linear or logistic
loss) the gradients have a short closed form, so this module computes them directly
(no autograd graph), gathers rows with ``index_select`` and runs the lazy Adam step on
the touched rows by plain gathers and scatters (no sparse tensors). The objective, its stop-gradients
and the optimizer's arithmetic are those of :meth:`PersonalizedModule.loss` and
``torch.optim.SparseAdam``; the tests check the gradients against autograd and the
steps against ``SparseAdam`` (equal up to float rounding).

Gradients, with ``b`` samples in the minibatch, ``k`` partners each, ``x_i`` the design
row (intercept last), ``θ_i = θ_pop + Qᵀz_i``, ``r_i = ∂ℓ/∂η_i`` (``η_i − y_i``, or
``σ(η_i) − y_i`` for the logistic loss)::

    g_θi   = r_i x_i / b + 2λ (θ_i − θ_pop) / b
    ∂/∂z_i = Q g_θi + Σ_j c_ij (z_i − z_j) + 2ω z_i / b,    ∂/∂z_j = −c_ij (z_i − z_j)
    ∂/∂Q   = Σ_i z_i g_θiᵀ + 2ω Q
    c_ij   = γ · relu(gap_ij) / (b k ‖z_i − z_j‖)            ("match": gap_ij itself)

and, for the kNN-transfer term (``w = softmax(−δ/τ)``, ``δ = Δπ``, ``e_ij = x_iᵀθ_j``,
``ρ_i = μ ∂ℓ/∂η̃_i / b``)::

    ∂/∂(−δ_ij/τ) = w_ij (ρ_i e_ij − Σ_l w_il ρ_i e_il) =: h_ij
    ∂/∂π = −Σ_ij h_ij Δ_ij / τ,   ∂/∂τ = Σ_ij h_ij δ_ij / τ²

carried through ``π = softmax(a)`` and ``τ = softplus(t)·mean(δ)`` by the chain rule.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["LazyRowAdam", "FusedOptimizer", "fused_supported", "loss_and_grads"]


def fused_supported(module) -> bool:
    """Whether ``module``'s objective has the closed-form gradients of this engine."""
    return module.rank is not None and module.objective.kind in ("bound", "match") and module.encoder is None


@torch.no_grad()
def loss_and_grads(module, idx, partners, deltas, X, y):
    """The objective of :meth:`PersonalizedModule.loss` on a minibatch and its gradients.

    Parameters
    ----------
    module : PersonalizedModule
        Low rank, objective ``"bound"`` or ``"match"``, no encoder (:func:`fused_supported`).
    idx : LongTensor of shape (b,)
        Trained samples of the minibatch.
    partners : LongTensor of shape (b, k)
    deltas : tensor of shape (b, k, K)
        Per-covariate distances Δ_ij of the minibatch's pairs (:func:`pair_deltas`; at
        large n :meth:`PartnerTable.deltas` computes them once per partner refresh).
    X, y : tensors of shape (n, p+1), (n,)
        Standardized design and target of the trained samples.

    Returns
    -------
    loss : 0-d tensor
    terms : dict of 0-d tensors
        The named terms :meth:`PersonalizedModule.loss` reports.
    rows : LongTensor of shape (b·(k+1),)
        Rows of ``Z`` whose gradients follow (repeats allowed: they add up).
    row_grads : tensor of shape (b·(k+1), q)

    The gradients of the shared tensors are stored in their ``.grad`` (``Q``,
    ``share_raw``, ``tau_raw``; the closed-form scale leaves ``scale_phi_raw`` without
    one, as under autograd).
    """
    o = module.objective
    Q, Z, theta_pop = module.Q, module.Z, module.theta_pop
    b, k = partners.shape
    flat = partners.reshape(-1)
    zi = Z.index_select(0, idx)
    zp = Z.index_select(0, flat).view(b, k, -1)
    xi, yi = X.index_select(0, idx), y.index_select(0, idx)
    logistic = o.task == "logistic"

    def loss_and_slope(eta):  # ℓ averaged over the batch and ∂ℓ/∂η per sample (before the 1/b)
        if logistic:
            return F.binary_cross_entropy_with_logits(eta, yi), torch.sigmoid(eta) - yi
        resid = eta - yi
        return 0.5 * (resid**2).mean(), resid

    # prediction, pull and latent decay: through θ_i = θ_pop + Qᵀz_i
    eta_pop = xi @ theta_pop
    dtheta = zi @ Q
    pred, slope = loss_and_slope(eta_pop + (xi * dtheta).sum(1))
    pull = (dtheta**2).sum(1).mean()
    g_theta = (slope / b)[:, None] * xi + (2.0 * o.pull / b) * dtheta
    decay = (zi**2).sum(1).mean() + (Q**2).sum()
    # distance matching with the closed-form scale s (no gradient through s or π)
    pi = module.shares()
    delta = deltas @ pi
    diff = zi[:, None, :] - zp
    pdist = torch.sqrt((diff**2).sum(-1) + 1e-12)
    s_phi = (pdist * delta).sum() / (delta**2).sum().clamp_min(1e-12)
    gap = pdist - s_phi * delta
    if o.kind == "bound":
        gap = torch.relu(gap)
    match = (gap**2).mean()
    g_diff = diff.mul_(((o.matching_weight / (b * k)) * gap / pdist).unsqueeze(-1))  # ∂/∂z_i of each pair
    g_zi = g_theta @ Q.T + g_diff.sum(1) + (2.0 * o.latent_decay / b) * zi
    module.Q.grad = zi.T @ g_theta + (2.0 * o.latent_decay) * Q
    # kNN transfer: teaches π and τ only (the partners' θ are constants)
    transfer = delta.new_zeros(())
    if o.metric_learning > 0:
        scale = delta.mean() + 1e-12
        tau = F.softplus(module.tau_raw) * scale
        eta_p = eta_pop[:, None] + (zp * (xi @ Q.T)[:, None, :]).sum(-1)  # e_ij = x_iᵀθ_j
        w = torch.softmax(-delta / tau, 1)
        transfer, slope_t = loss_and_slope((w * eta_p).sum(1))
        a = (o.metric_learning / b) * slope_t[:, None] * eta_p
        h = w * (a - (w * a).sum(1, keepdim=True))
        g_pi = -(h.unsqueeze(-1) * deltas).sum((0, 1)) / tau
        module.share_raw.grad = pi * (g_pi - (pi * g_pi).sum())
        g_tau = (h * delta).sum() / tau**2
        module.tau_raw.grad = (g_tau * torch.sigmoid(module.tau_raw) * scale).reshape(module.tau_raw.shape)
    loss = (
        pred + 0.5 * o.matching_weight * match + o.pull * pull + o.metric_learning * transfer + o.latent_decay * decay
    )
    terms = {"pred_loss": pred, "match_loss": match, "transfer_loss": transfer, "metric_scale": s_phi}
    rows = torch.cat([idx, flat])
    row_grads = torch.cat([g_zi, g_diff.neg_().view(b * k, -1)])
    return loss, terms, rows, row_grads


class LazyRowAdam:
    """``torch.optim.SparseAdam``'s update on the rows of a table, from (rows, gradients) with repeats.

    Repeated rows have their gradients summed (as coalescing a sparse gradient does); the
    moments of rows not touched stay as they are, and the bias correction counts steps of
    the whole table, as in ``SparseAdam``. Instead of sorting the rows (``coalesce``), the
    rows are made unique with ``torch.unique`` (sorted, so the gathers and scatters that
    follow walk the table in memory order).

    Parameters
    ----------
    table : torch.nn.Parameter of shape (n, q)
    lr : float
    betas : tuple of float, default=(0.9, 0.999)
    eps : float, default=1e-8
    """

    def __init__(self, table, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.table, self.betas, self.eps = table, betas, float(eps)
        self.param_groups = [{"lr": float(lr)}]  # as a torch optimizer's, so schedules can set it
        self.exp_avg = torch.zeros_like(table, memory_format=torch.contiguous_format)
        self.exp_avg_sq = torch.zeros_like(self.exp_avg)
        self.steps = 0

    @torch.no_grad()
    def step(self, rows: torch.Tensor, grads: torch.Tensor) -> None:
        beta1, beta2 = self.betas
        q = self.table.shape[1]
        self.steps += 1
        rows, inverse = torch.unique(rows, return_inverse=True)  # sorted: the gathers below run in memory order
        g = grads.new_zeros(len(rows), q).index_add_(0, inverse, grads)
        m = self.exp_avg.index_select(0, rows)
        v = self.exp_avg_sq.index_select(0, rows)
        m.add_(g.sub(m).mul_(1 - beta1))
        v.add_(g.pow_(2).sub_(v).mul_(1 - beta2))
        self.exp_avg.index_copy_(0, rows, m)
        self.exp_avg_sq.index_copy_(0, rows, v)
        step_size = self.param_groups[0]["lr"] * (1 - beta2**self.steps) ** 0.5 / (1 - beta1**self.steps)
        update = m.div_(v.sqrt_().add_(self.eps)).mul_(-step_size)
        data = self.table.data
        data.index_copy_(0, rows, data.index_select(0, rows).add_(update))


class FusedOptimizer:
    """Lazy row Adam for the per-sample table and Adam for the shared tensors, stepped together.

    ``step(rows, row_grads)`` after :func:`loss_and_grads` has set the shared tensors'
    ``.grad``.
    """

    def __init__(self, rows: LazyRowAdam, shared: torch.optim.Optimizer) -> None:
        self.rows, self.shared = rows, shared

    @property
    def param_groups(self) -> list[dict]:
        return self.rows.param_groups + self.shared.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.shared.zero_grad(set_to_none=set_to_none)

    def step(self, rows: torch.Tensor, row_grads: torch.Tensor) -> None:
        self.rows.step(rows, row_grads)
        self.shared.step()
