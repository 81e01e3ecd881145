"""Refit of a linear mixed model on given features: maximum likelihood, then BLUPs."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["linear_mixed_refit", "refit_network"]


def linear_mixed_refit(
    y: np.ndarray,
    H: np.ndarray,
    B: np.ndarray,
    clusters: np.ndarray,
    n_clusters: int,
    tau: np.ndarray,
    sigma: float,
    max_iter: int = 500,
    tol: float = 1e-10,
    ridge: float = 0.0,
) -> dict:
    r"""Maximum-likelihood fit of a linear mixed model on given features, and its BLUPs.

    Model: ``y_i = H_i beta + B_i u_{k(i)} + e_i`` with ``u_k ~ N(0, diag(tau^2))`` and
    ``e_i ~ N(0, sigma^2)``. The marginal likelihood is maximised over ``log tau`` and
    ``log sigma`` by L-BFGS-B with exact gradients (torch autograd, float64), ``beta``
    profiled out by generalized least squares at every step; the random effects then get
    their exact Gaussian posterior (``S_k = (B_k'B_k / sigma^2 + diag(tau^-2))^-1``,
    ``mu_k = S_k B_k'(y_k - H_k beta) / sigma^2``, the BLUP). Only cluster-level sums of
    cross products enter, so a step costs O(K d^2 (d + q)), whatever n. (EM, the obvious
    alternative, crawls when a variance component is near zero: thousands of steps.)
    The ARMED regressor applies it after training with ``H`` = [1, last FE hidden layer]
    (its output layer) and ``B`` = [1, slope basis]: a linear mixed model on the learned
    FE features.

    Parameters
    ----------
    y : array (n,)
    H : array (n, q)
        Fixed-effects design; the first column is the intercept (a column of ones).
    B : array (n, d)
        Random-effects design (column of ones = random intercept).
    clusters : int array (n,)
        Cluster index of each row, in ``0 .. n_clusters - 1``.
    n_clusters : int
    tau : array (d,)
        Starting random-effect standard deviations (> 0).
    sigma : float
        Starting residual standard deviation (> 0).
    max_iter, tol : int, float
        At most ``max_iter`` L-BFGS-B iterations; stop when the mean negative
        log-likelihood changes by less than ``tol`` (relative). A ``ConvergenceWarning``
        says when it did not converge.
    ridge : float, default=0.0
        L2 penalty ``(n · ridge / 2) ‖beta[1:]‖²`` on the fixed effects other than the
        intercept (per sample, on the scale of the mean log-likelihood). The ARMED
        regressor passes its ``weight_decay``, so the refit keeps the penalty its output
        layer was trained with: learned hidden features are often nearly collinear, and
        unpenalized least squares then extrapolates badly.

    Returns
    -------
    dict with ``beta`` (q,), ``mu`` (K, d) posterior means, ``cov`` (K, d, d) posterior
    covariances, ``tau`` (d,), ``sigma`` (float), ``n_iter`` and ``converged``.
    """
    import warnings

    from scipy.optimize import minimize
    from sklearn.exceptions import ConvergenceWarning

    stats = _cluster_sums(y, H, B, clusters, int(n_clusters))
    n, d = len(y), B.shape[1]
    penalty = torch.ones(H.shape[1], dtype=torch.float64)
    penalty[0] = 0.0  # the intercept column

    def objective(x):
        with torch.enable_grad():  # callers may run under no_grad
            params = torch.as_tensor(x, dtype=torch.float64).requires_grad_(True)
            value = _profile_nll(params, stats, float(ridge), penalty)[0] / n
            (grad,) = torch.autograd.grad(value, params)
        return float(value.detach()), grad.numpy()

    # parameters: log(tau / sigma) (the relative scales) and log sigma, bounded so that every
    # factorization stays well conditioned whatever the data (sigma -> 0 on data fitted exactly)
    y_sd = max(float(np.std(np.asarray(y, dtype=np.float64))), 1e-12)
    tau0 = np.clip(np.asarray(tau, dtype=np.float64), 1e-8, None)
    sigma0 = float(np.clip(sigma, 1e-6 * y_sd, 1e3 * y_sd))
    x0 = np.r_[np.clip(np.log(tau0 / sigma0), _LOG_RATIO[0], _LOG_RATIO[1]), np.log(sigma0)]
    bounds = [_LOG_RATIO] * d + [(np.log(1e-6 * y_sd), np.log(1e3 * y_sd))]
    res = minimize(
        objective,
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": int(max_iter), "ftol": float(tol), "gtol": 1e-9},
    )
    if not res.success:
        warnings.warn(
            f"linear_mixed_refit did not converge in {res.nit} iterations ({res.message}); "
            "raise max_iter or check the features",
            ConvergenceWarning,
            stacklevel=2,
        )
    with torch.no_grad():
        _, beta, mu, cov = _profile_nll(torch.as_tensor(res.x), stats, float(ridge), penalty)
    sigma_hat = float(np.exp(res.x[d]))
    return {
        "beta": beta.numpy(),
        "mu": mu.numpy(),
        "cov": cov.numpy(),
        "tau": np.exp(res.x[:d]) * sigma_hat,
        "sigma": sigma_hat,
        "n_iter": int(res.nit),
        "converged": bool(res.success),
    }


_LOG_RATIO = (float(np.log(1e-8)), float(np.log(1e4)))  # bounds of log(tau / sigma)


def _cluster_sums(y, H, B, clusters, K) -> dict:
    """The cross products the likelihood needs, summed per cluster (float64 tensors)."""
    y, H, B = (np.asarray(a, dtype=np.float64) for a in (y, H, B))
    codes = np.asarray(clusters, dtype=np.int64)
    BtB = np.zeros((K, B.shape[1], B.shape[1]))
    np.add.at(BtB, codes, B[:, :, None] * B[:, None, :])
    BtH = np.zeros((K, B.shape[1], H.shape[1]))
    np.add.at(BtH, codes, B[:, :, None] * H[:, None, :])
    Bty = np.zeros((K, B.shape[1]))
    np.add.at(Bty, codes, B * y[:, None])
    sums = {"BtB": BtB, "BtH": BtH, "Bty": Bty, "HtH": H.T @ H, "Hty": H.T @ y}
    t = {k: torch.as_tensor(v) for k, v in sums.items()}
    t["yty"], t["n"] = float(y @ y), len(y)
    t["jitter"] = 1e-10 * max(float(np.trace(sums["HtH"])) / H.shape[1], 1e-12)
    return t


def _profile_nll(params, s, ridge, penalty):
    """Penalized negative log-likelihood at ``params = [log(tau / sigma), log sigma]``, beta profiled out.

    Returns ``(value, beta, mu, cov)``. In the relative-covariance form (as lme4 writes it),
    with ``Λ = diag(tau / sigma)`` and ``P_k = I + Λ B_k'B_k Λ`` (always ≥ I, so its
    Cholesky factor exists however small sigma is): ``V_k = sigma² (I + B_k Λ² B_k')``,
    ``log|V_k| = n_k log sigma² + log|P_k|`` and
    ``r_k'V_k^-1 r_k = (r_k'r_k − w_k'P_k^-1 w_k) / sigma²`` with ``w_k = Λ B_k'r_k``. The
    random effects' posterior is ``mu_k = Λ P_k^-1 w_k``, ``cov_k = sigma² Λ P_k^-1 Λ``.
    """
    d = s["BtB"].shape[1]
    lam, log_sigma = torch.exp(params[:d]), params[d]
    s2 = torch.exp(2 * log_sigma)
    K = s["BtB"].shape[0]
    P = lam[:, None] * s["BtB"] * lam[None, :] + torch.eye(d, dtype=s["BtB"].dtype).expand(K, d, d)
    L = torch.linalg.cholesky(P)
    LBtH = lam[:, None] * s["BtH"]  # Λ B'H, (K, d, q)
    LBty = lam * s["Bty"]  # Λ B'y, (K, d)
    sol = torch.cholesky_solve(torch.cat([LBtH, LBty[..., None]], dim=-1), L)  # P^-1 [ΛB'H, ΛB'y]
    G = LBtH.transpose(1, 2) @ sol  # (K, q, q + 1)
    q = s["HtH"].shape[0]
    A = s["HtH"] - G[..., :q].sum(0) + s["n"] * ridge * s2 * torch.diag(penalty)  # sigma² · H'V^-1H + ridge
    A = A + s["jitter"] * torch.eye(q, dtype=A.dtype)  # numerical safety (collinear or too few rows)
    beta = torch.linalg.solve(A, s["Hty"] - G[..., q].sum(0))
    w = LBty - LBtH @ beta  # Λ B'r, (K, d)
    Pw = torch.cholesky_solve(w[..., None], L)[..., 0]
    rss = s["yty"] - 2 * beta @ s["Hty"] + beta @ (s["HtH"] @ beta) - (w * Pw).sum()
    logdet = s["n"] * torch.log(s2) + 2 * torch.log(torch.diagonal(L, dim1=1, dim2=2)).sum()
    value = 0.5 * (logdet + rss / s2) + 0.5 * s["n"] * ridge * (penalty * beta**2).sum()
    mu = lam * Pw
    cov = s2 * lam[:, None] * torch.cholesky_inverse(L) * lam[None, :]
    return value, beta, mu, cov


@torch.no_grad()
def refit_network(net, Xt: torch.Tensor, target: np.ndarray, codes: np.ndarray, ridge: float) -> dict:
    """Refit a trained Gaussian :class:`~perslib.armed.ARMEDNet`'s output layer and random effects.

    With the FE hidden layers held fixed, the mixed output is a linear mixed model in the
    last hidden layer ``h`` (the fixed part) and the slope basis (the random part); it is
    refitted by :func:`linear_mixed_refit` (ML variance components, BLUP posterior means,
    the output layer's L2 penalty ``ridge`` kept), and the results
    are written back into the FE output layer, the RE posterior and prior scales and the
    residual sd. Returns ``tau``, ``sigma``, ``n_iter`` and ``converged``.
    """
    from perslib.armed._layers import inv_softplus

    net.eval()
    out = net(Xt)
    h = out["hidden"][-1] if out["hidden"] else Xt
    h = h.double().cpu().numpy()
    ones = np.ones((len(h), 1))
    basis = {"linear": Xt.double().cpu().numpy(), "nonlinear": h}.get(net.slopes)
    B = np.hstack(([ones] if net.n_intercepts else []) + ([basis] if net.n_slopes else []))
    re = net.re
    res = linear_mixed_refit(
        np.asarray(target, dtype=np.float64),
        np.hstack([ones, h]),
        B,
        codes,
        net.n_clusters,
        re.prior_scale.double().cpu().numpy(),
        float(net.log_sd[0].exp()),
        ridge=ridge,
    )
    dev, f32 = Xt.device, torch.float32
    beta = torch.as_tensor(res["beta"], dtype=f32, device=dev)
    net.fe.out.bias.copy_(beta[:1])
    net.fe.out.weight.copy_(beta[1:][None, :])
    re.loc.copy_(torch.as_tensor(res["mu"], dtype=f32, device=dev))
    sd = np.sqrt(np.diagonal(res["cov"], axis1=1, axis2=2)) - re.min_scale
    rho = np.vectorize(inv_softplus)(np.maximum(sd, 1e-8))
    re.rho.copy_(torch.as_tensor(rho, dtype=f32, device=dev))
    re.log_prior_scale.copy_(
        torch.as_tensor(np.log(np.maximum(res["tau"] - re.min_scale, 1e-8)), dtype=f32, device=dev)
    )
    net.log_sd[0].fill_(float(np.log(res["sigma"])))
    return {k: res[k] for k in ("tau", "sigma", "n_iter", "converged")}
