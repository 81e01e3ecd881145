"""The ARMED network: fixed-effects network (dense or convolutional), adversary, random intercept and
slopes, mixed on the logit.

ARMED (Adversarially-Regularized Mixed Effects Deep learning; Nguyen, Treacher &
Montillo, IEEE TPAMI 2023) splits a network into a fixed-effects (FE) network f(x), made
blind to the cluster by an adversary that reads its hidden activations, and a
random-effects (RE) subnetwork whose only input is the cluster vector z; the two are
mixed on the logit: ``logit_M = f(x) + x'u_lin(z) + h_F'u_nlin(z) + u_int(z)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from perslib.armed._backbones import backbone_config, build_adversary, build_fixed_effects
from perslib.armed._layers import RandomEffects, grad_reverse
from perslib.armed._losses import adversary_loss, gaussian_nll, generator_loss

__all__ = ["ARMEDNet", "Objective"]


@dataclass
class Objective:
    """The weights and switches of ARMED's training objective (see :meth:`ARMEDNet.training_step`).

    ``log_prior`` holds the log of the training clusters' proportions π; ``chance`` the
    cross-entropy of the marginal predictor, ``-Σ π log π``.
    """

    log_prior: torch.Tensor  # (K,)
    chance: float
    lambda_mixed: float = 1.0  # weight of the mixed prediction's likelihood
    lambda_fixed: float = 0.5  # weight of the FE-only prediction's likelihood
    lambda_adv: float = 0.3  # weight of the guarded adversarial term
    kl_weight: float = 0.0  # weight of the summed KL of the random effects (1/n: the ELBO)
    guard: str = "clamp"  # "clamp", "confusion" or "none" (perslib.armed.generator_loss)
    cap: float = 1.0  # chance-level multiple at which "clamp" stops pushing
    mode: str = "alternating"  # "alternating" steps, or "reversal" (gradient reversal, one pass)
    use_random_effects: bool = True  # feed z to the RE subnetwork
    use_adversary: bool = True
    _coef: torch.Tensor = field(default=None, repr=False)  # gradient-reversal coefficient (mode "reversal")


class ARMEDNet(nn.Module):
    """ARMED network: FE network (dense or convolutional), optional adversary, random intercept and slopes.

    The random intercept and slopes live in one :class:`RandomEffects` layer ``re``
    (column 0 the intercept when present, then the slopes), each column with its own
    prior scale, so they are drawn, shrunk and (with empirical Bayes) scaled per effect.

    Parameters
    ----------
    n_features : int
    n_clusters : int
        Number of training clusters K (the width of z).
    hidden : sequence of int, default=(32, 32)
        Hidden widths of the FE network (:class:`perslib.mlp.MLP`, one output: the FE
        logit or the FE regression output).
    activation : str, default="relu"
    slopes : {"linear", "nonlinear", "none"}, default="linear"
        Random slopes on the inputs (``x'u_lin(z)``), on the last FE hidden layer
        (``h_F'u_nlin(z)``) or none.
    random_intercept : bool, default=True
    adversary_hidden : sequence of int or None, default=(16, 16)
        Hidden widths of the adversary (on the concatenation of all FE hidden
        activations); ``None`` builds no adversary.
    intercept_prior, slope_prior : float
        Initial (or fixed) prior scales of the random intercept and slopes.
    learn_prior_scale : bool, default=True
    intercept_post_init, slope_post_init : float
        Standard deviation of the initial posterior means.
    gaussian : bool, default=False
        Regression: a Gaussian likelihood with a learned residual scale (``log_sd``);
        otherwise outputs are logits of a Bernoulli likelihood.
    backbone : dict or None, default=None
        None: the dense FE network above (inputs of shape (batch, n_features)). A dict
        ``{"image_size": (H, W), "channels": (...), "kernel_size": 3, "adversary_channels":
        None}`` builds a convolutional FE network (:class:`perslib.cnn.ConvNet`, conv blocks
        then the dense layers ``hidden``) on images (batch, n_features, H, W), ``n_features``
        being the channels, and a :class:`perslib.armed.MultiScaleAdversary` that reads every
        conv block and the dense features. Random slopes are then ``"nonlinear"`` (on the last
        dense layer) or ``"none"``.
    """

    def __init__(
        self,
        n_features: int,
        n_clusters: int,
        hidden: Sequence[int] = (32, 32),
        activation: str = "relu",
        slopes: str = "linear",
        random_intercept: bool = True,
        adversary_hidden: Sequence[int] | None = (16, 16),
        intercept_prior: float = 0.5,
        slope_prior: float = 0.1,
        learn_prior_scale: bool = True,
        intercept_post_init: float = 0.1,
        slope_post_init: float = 0.05,
        gaussian: bool = False,
        backbone: dict | None = None,
    ) -> None:
        super().__init__()
        backbone = backbone_config(backbone)
        self.config = {  # what persistence rebuilds the network from
            "n_features": int(n_features),
            "n_clusters": int(n_clusters),
            "hidden": [int(h) for h in hidden],
            "activation": activation,
            "slopes": slopes,
            "random_intercept": bool(random_intercept),
            "adversary_hidden": None if adversary_hidden is None else [int(h) for h in adversary_hidden],
            "intercept_prior": float(intercept_prior),
            "slope_prior": float(slope_prior),
            "learn_prior_scale": bool(learn_prior_scale),
            "intercept_post_init": float(intercept_post_init),
            "slope_post_init": float(slope_post_init),
            "gaussian": bool(gaussian),
            "backbone": backbone,
        }
        if slopes not in ("linear", "nonlinear", "none"):
            raise ValueError(f"slopes must be 'linear', 'nonlinear' or 'none', got {slopes!r}")
        hidden = [int(h) for h in hidden]
        if slopes == "nonlinear" and not hidden:
            raise ValueError("slopes='nonlinear' needs at least one hidden layer")
        if slopes == "linear" and backbone is not None:
            raise ValueError("slopes='linear' (one per input) needs the dense backbone; use 'nonlinear' for images")
        self.n_clusters, self.slopes = int(n_clusters), slopes
        self.n_intercepts = int(bool(random_intercept))
        self.n_slopes = {
            "linear": int(n_features),
            "nonlinear": hidden[-1] if hidden else 0,
            "none": 0,
        }[slopes]
        self.fe = build_fixed_effects(n_features, hidden, activation, backbone)
        units = self.n_intercepts + self.n_slopes
        prior = [intercept_prior] * self.n_intercepts + [slope_prior] * self.n_slopes
        init = [intercept_post_init] * self.n_intercepts + [slope_post_init] * self.n_slopes
        self.re = RandomEffects(n_clusters, units, prior, learn_prior_scale, init) if units else None
        self.adversary = (
            build_adversary(self.fe, n_features, hidden, adversary_hidden, n_clusters, activation, backbone)
            if adversary_hidden is not None and n_clusters >= 2
            else None
        )
        # Gaussian likelihood (regression): learned residual log-sd of the mixed and the FE output
        self.log_sd = nn.Parameter(torch.zeros(2)) if gaussian else None

    def main_parameters(self):
        """Parameters of the FE network and the random effects (not the adversary's)."""
        for name, p in self.named_parameters():
            if not name.startswith("adversary."):
                yield p

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> dict:
        """Return ``{"fixed": f(x), "mixed": f(x) + RE terms, "hidden": [h_1..h_L]}``.

        ``fixed`` and ``mixed`` have shape (batch,) and are logits for classifiers.
        ``z`` is (batch, K) (one-hot, soft or zero) or int64 cluster indices (batch,);
        ``z=None`` (or all-zero rows) gives ``mixed == fixed``.
        """
        out, hiddens = self.fe(x, return_hidden=True)
        fixed = out[:, 0]
        mixed = fixed
        if z is not None and self.re is not None:
            u = self.re(z)
            if self.n_intercepts:
                mixed = mixed + u[:, 0]
            if self.n_slopes:
                basis = x if self.slopes == "linear" else hiddens[-1]
                mixed = mixed + (basis * u[:, self.n_intercepts :]).sum(1)
        return {"fixed": fixed, "mixed": mixed, "hidden": hiddens}

    def adversary_input(self, hiddens: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """Concatenated FE hidden activations (the input itself for a linear FE net); with the
        convolutional backbone, the list of every conv block's output and dense activation."""
        if self.config["backbone"] is not None:
            return list(hiddens)
        return torch.cat(hiddens, dim=1) if hiddens else x

    def kl(self) -> torch.Tensor:
        """Sum of the KL terms of the random effects (a scalar; 0 without random effects)."""
        if self.re is None:
            return torch.zeros((), device=self.fe.out.weight.device)
        return self.re.kl()

    # ------------------------------------------------------------------ the objective
    def nll(self, pred: torch.Tensor, target: torch.Tensor, which: int) -> torch.Tensor:
        """Negative log-likelihood of the mixed (``which=0``) or FE (``1``) output."""
        if self.log_sd is None:
            return F.binary_cross_entropy_with_logits(pred, target)
        return gaussian_nll(pred, target, self.log_sd[which])

    def validation_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Early-stopping criterion: log loss (classification) or squared error of the mixed output."""
        if self.log_sd is None:
            return F.binary_cross_entropy_with_logits(pred, target)
        return F.mse_loss(pred, target)

    def configure_optimizers(self, lr: float, weight_decay: float, re_lr_scale: float):
        """Fresh, separate Adam optimizers for the main network and the adversary.

        Groups of the main one: the FE network with ``weight_decay`` (a Gaussian prior on
        the fixed effects), the random effects at ``lr * re_lr_scale`` (each cluster's row
        gets gradient only from its own samples), everything else (``log_sd``) plain.
        Returns ``(main, adversary)``; the second is ``None`` without an adversary.
        """
        device = self.fe.out.weight.device
        re_params = list(self.re.parameters()) if self.re is not None else []
        fe_params = list(self.fe.parameters())
        other = [p for p in self.main_parameters() if all(p is not q for q in re_params + fe_params)]
        groups = [{"params": fe_params, "weight_decay": float(weight_decay)}]
        groups += [{"params": other}] if other else []
        groups += [{"params": re_params, "lr": lr * float(re_lr_scale)}] if re_params else []
        main = _adam(groups, lr, device)
        adversary = _adam(self.adversary.parameters(), lr, device) if self.adversary is not None else None
        return main, adversary

    def training_step(self, batch, objective: Objective, opt_main, opt_adv) -> dict:
        """One update of ARMED on a minibatch ``(x, cluster index, y)``; returns the named losses.

        The main network minimises
        ``λ_M·NLL(y, ŷ_M) + λ_F·NLL(y, ŷ_F) + kl_weight·KL + λ_g·G``, ``G`` the guarded
        adversarial term (:func:`perslib.armed.generator_loss`). ``"alternating"``: first
        one adversary step on the *detached* FE activations, then the main step against
        the updated adversary. ``"reversal"``: one backward pass through a gradient
        reversal layer trains both (switched off for a batch already at chance level).
        """
        o = objective
        xb, zb, yb = batch
        out = self(xb, zb if o.use_random_effects else None)  # integer z: row look-up == one-hot @ W
        nll_m = self.nll(out["mixed"], yb, 0)
        nll_f = self.nll(out["fixed"], yb, 1)
        kl = self.kl()
        loss = report = o.lambda_mixed * nll_m + o.lambda_fixed * nll_f + o.kl_weight * kl
        names, values = ["nll_mixed", "nll_fixed", "kl"], [nll_m, nll_f, kl]
        if o.use_adversary:
            h = self.adversary_input(out["hidden"], xb)
            if o.mode == "alternating":
                opt_adv.zero_grad(set_to_none=True)
                la = adversary_loss(self.adversary(_each(h, torch.Tensor.detach)), zb)  # no gradient reaches the FE
                la.backward()
                opt_adv.step()
                names.append("adv_loss"), values.append(la.detach())
                if o.lambda_adv > 0:  # the FE net is pushed to raise the (updated) adversary's loss
                    gen = generator_loss(self.adversary(h), zb, o.log_prior, o.guard, o.cap)
                    loss = report = loss + o.lambda_adv * gen
                    names.append("gen_loss"), values.append(gen.detach())
            else:
                if o._coef is None:
                    o._coef = torch.zeros((), device=xb.device)
                la = adversary_loss(self.adversary(_each(h, lambda t: grad_reverse(t, o._coef))), zb)
                blocked = o.guard == "clamp" and la.item() >= o.cap * o.chance
                o._coef.fill_(0.0 if blocked else o.lambda_adv)
                names.append("adv_loss"), values.append(la.detach())
                opt_adv.zero_grad(set_to_none=True)
                report = loss - o._coef * la.detach()  # the main network's objective
                loss = loss + la  # backward: the adversary minimises la, the FE net gets -coef * grad
        opt_main.zero_grad(set_to_none=True)
        loss.backward()
        opt_main.step()
        if o.use_adversary and o.mode == "reversal":
            opt_adv.step()
        numbers = torch.stack([report.detach(), *[v.detach() for v in values]]).tolist()  # one sync
        return dict(zip(["loss", *names], numbers))


def _each(h, fn):
    """``fn`` applied to a tensor, or to each tensor of a list (the multi-scale adversary's input)."""
    return fn(h) if torch.is_tensor(h) else [fn(t) for t in h]


def _adam(params, lr: float, device: torch.device) -> torch.optim.Adam:
    """A fresh Adam, with fused kernels where available (the step is many tiny tensors)."""
    params = list(params)
    if device.type in ("cpu", "cuda"):
        try:
            return torch.optim.Adam(params, lr=lr, fused=True)
        except (RuntimeError, TypeError):  # pragma: no cover - older torch
            pass
    return torch.optim.Adam(params, lr=lr)
