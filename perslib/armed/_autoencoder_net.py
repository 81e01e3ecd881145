"""The ARMED autoencoder network: a batch-blind encoder, a decoder whose normalisation layers carry
each cluster's scale and bias as random effects, a classifier head and an adversary.

One network, trained end to end (:meth:`ARMEDAutoencoderNet.training_step`):

* the **fixed-effects encoder** ``E`` maps an input to the latent ``e = E(x)``; an adversary
  reads ``E``'s hidden activations and ``e`` and is trained to name the cluster (batch),
  ``E`` to make it fail (:func:`perslib.armed.generator_loss`);
* the **decoder** ``D(e, z)`` reconstructs ``x``. Every normalisation layer of ``D`` is a
  :class:`ClusterScaleBias`: batch norm without affine parameters, then a scale and a bias
  that are the sum of a fixed part and a cluster-specific Bayesian random effect of ``z``
  (the paper's "domain-enhancing" ``ClusterScaleBiasBlock``). ``z = 0`` decodes with the
  fixed parts only: the batch-free reconstruction; cluster ``k``'s one-hot ``z`` decodes
  ``e`` "as batch ``k`` would have recorded it";
* a **classifier head** ``C(e)`` (optional, when labels are given) with a random intercept
  per cluster: ``logit_M = C(e) + u(z)``.

The paper trains two autoencoders (a fixed-effects and a random-effects one) and a mixing
classifier; the official single-model version is unfinished and adds the adversary's loss
with the wrong sign. Here the random effects sit in the one decoder, so the fixed-effects
latent is the only code and the batch enters only through ``z`` (``docs/design/armed.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from perslib.armed._backbones import MultiScaleAdversary
from perslib.armed._layers import RandomEffects, grad_reverse
from perslib.armed._losses import adversary_loss, generator_loss
from perslib.armed._network import Objective, _adam, _each
from perslib.cnn import _ConvBlock
from perslib.mlp import _ACTIVATIONS, MLP

__all__ = ["ARMEDAutoencoderNet", "AutoencoderObjective", "ClusterAffine", "ClusterScaleBias"]


@dataclass
class AutoencoderObjective(Objective):
    """:class:`perslib.armed._network.Objective` plus the autoencoder's weights.

    ``lambda_mixed`` / ``lambda_fixed`` weigh the classifier's mixed and FE cross-entropy.
    """

    lambda_recon: float = 1.0  # weight of the reconstruction MSE (with the batch's random effects)
    lambda_class: float = 0.1  # weight of the classifier's loss (0 or no labels: a pure autoencoder)


class ClusterScaleBias(nn.Module):
    """Batch norm whose affine scale and bias are fixed effects plus per-cluster random effects.

    ``out = BN(h) * (gamma + a(z)) + (beta + b(z))``; ``BN`` has no affine parameters (its
    running statistics are used in eval mode), ``(a, b)`` are the rows of a
    :class:`RandomEffects` layer (K, 2 * units) picked (or mixed) by ``z``. ``z=None`` (or a
    zero row) leaves only ``gamma`` and ``beta``.

    Parameters
    ----------
    n_units : int
        Features (dense) or channels (``spatial=True``).
    n_clusters : int
    spatial : bool, default=False
        Inputs of shape (batch, units, H, W) instead of (batch, units).
    prior_scale : float, default=0.25
        Initial prior s.d. of the random scale and bias (learned, empirical Bayes).
    post_init_scale : float, default=0.1
        S.d. of the initial posterior means.
    random_effects : bool, default=True
        False: a plain batch norm with affine parameters (no cluster terms).
    """

    def __init__(
        self,
        n_units: int,
        n_clusters: int,
        spatial: bool = False,
        prior_scale: float = 0.25,
        post_init_scale: float = 0.1,
        random_effects: bool = True,
    ) -> None:
        super().__init__()
        self.n_units, self.spatial = int(n_units), bool(spatial)
        self.norm = (nn.BatchNorm2d if spatial else nn.BatchNorm1d)(self.n_units, affine=False)
        self.weight = nn.Parameter(torch.ones(self.n_units))
        self.bias = nn.Parameter(torch.zeros(self.n_units))
        self.re = (
            RandomEffects(n_clusters, 2 * self.n_units, prior_scale, True, post_init_scale)
            if random_effects and n_clusters >= 1
            else None
        )

    def scale_bias(self, z: torch.Tensor | None, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample scale and bias, each (n, units)."""
        scale = self.weight.expand(n, -1)
        bias = self.bias.expand(n, -1)
        if z is not None and self.re is not None:
            u = self.re(z)
            scale, bias = scale + u[:, : self.n_units], bias + u[:, self.n_units :]
        return scale, bias

    def forward(self, h: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        scale, bias = self.scale_bias(z, len(h))
        if self.spatial:
            scale, bias = scale[:, :, None, None], bias[:, :, None, None]
        return self.norm(h) * scale + bias

    def kl(self) -> torch.Tensor:
        return self.re.kl() if self.re is not None else self.weight.new_zeros(())


class ClusterAffine(nn.Module):
    """Per-cluster random scale and bias of every output feature: ``h * (1 + a(z)) + b(z)``.

    The decoder's output layer has no batch norm to replace; this gives each batch its own
    per-feature (per-pixel) gain and offset, Bayesian with a learned zero-mean prior, so
    ``z = 0`` (or ``None``) is the identity.

    Parameters
    ----------
    shape : tuple of int
        Shape of one output (``(p,)`` or ``(C, H, W)``).
    n_clusters : int
    prior_scale, post_init_scale : float
    """

    def __init__(self, shape, n_clusters: int, prior_scale: float = 0.25, post_init_scale: float = 0.01) -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        self.n_units = int(np.prod(self.shape))
        self.re = RandomEffects(n_clusters, 2 * self.n_units, prior_scale, True, post_init_scale)

    def forward(self, h: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        if z is None:
            return h
        u = self.re(z)
        a = u[:, : self.n_units].view(len(h), *self.shape)
        b = u[:, self.n_units :].view(len(h), *self.shape)
        return h * (1 + a) + b

    def kl(self) -> torch.Tensor:
        return self.re.kl()


class _DenseEncoder(nn.Module):
    """Linear -> batch norm -> activation per hidden width, then a linear map to the latent."""

    def __init__(self, n_features: int, hidden: Sequence[int], latent_dim: int, activation: str) -> None:
        super().__init__()
        widths = [int(n_features), *[int(h) for h in hidden]]
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Linear(a, b), nn.BatchNorm1d(b), _ACTIVATIONS[activation]())
            for a, b in zip(widths[:-1], widths[1:])
        )
        self.out = nn.Linear(widths[-1], int(latent_dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        hiddens = []
        for layer in self.layers:
            x = layer(x)
            hiddens.append(x)
        return self.out(x), hiddens


class _DenseDecoder(nn.Module):
    """Linear -> :class:`ClusterScaleBias` -> activation per (mirrored) hidden width, then linear."""

    def __init__(self, n_features, hidden, latent_dim, activation, n_clusters, re_kwargs) -> None:
        super().__init__()
        widths = [int(latent_dim), *[int(h) for h in reversed(hidden)]]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.norms = nn.ModuleList(ClusterScaleBias(b, n_clusters, **re_kwargs) for b in widths[1:])
        self.act = _ACTIVATIONS[activation]()
        self.out = nn.Linear(widths[-1], int(n_features))
        self.out_re = _output_effects((int(n_features),), n_clusters, re_kwargs)

    def forward(self, e: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        h = e
        for linear, norm in zip(self.linears, self.norms):
            h = self.act(norm(linear(h), z))
        out = self.out(h)
        return out if self.out_re is None else self.out_re(out, z)


class _ConvEncoder(nn.Module):
    """Conv blocks of :class:`perslib.cnn.ConvNet` (conv, batch norm, PReLU, max pool), then linear."""

    def __init__(self, in_channels, image_size, channels, latent_dim, kernel_size) -> None:
        super().__init__()
        sizes = [int(in_channels), *[int(c) for c in channels]]
        self.blocks = nn.ModuleList(_ConvBlock(a, b, int(kernel_size)) for a, b in zip(sizes[:-1], sizes[1:]))
        h, w = (int(s) for s in image_size)
        self.shapes = []
        for c in channels:
            h, w = h // 2, w // 2
            self.shapes.append((int(c), h, w))
        c, h, w = self.shapes[-1]
        self.out = nn.Linear(c * h * w, int(latent_dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        hiddens = []
        for block in self.blocks:
            x = block(x)
            hiddens.append(x)
        return self.out(x.flatten(1)), hiddens


class _ConvDecoder(nn.Module):
    """Linear to the last block's shape, then per block upsample -> conv -> ClusterScaleBias -> PReLU."""

    def __init__(self, in_channels, image_size, channels, latent_dim, kernel_size, n_clusters, re_kwargs) -> None:
        super().__init__()
        h, w = (int(s) for s in image_size)
        sizes = [(h, w)]
        for _ in channels:
            sizes.append((sizes[-1][0] // 2, sizes[-1][1] // 2))
        channels = [int(c) for c in channels]
        self.top = (channels[-1], *sizes[-1])
        self.inp = nn.Linear(int(latent_dim), channels[-1] * sizes[-1][0] * sizes[-1][1])
        self.inp_norm = ClusterScaleBias(channels[-1], n_clusters, spatial=True, **re_kwargs)
        self.inp_act = nn.PReLU(channels[-1])
        outs = [*reversed(channels[:-1]), None]  # last: the image itself
        k = int(kernel_size)
        self.ups = nn.ModuleList(nn.Upsample(size=s) for s in reversed(sizes[:-1]))
        ins = list(reversed(channels))
        self.convs = nn.ModuleList(
            nn.Conv2d(a, int(in_channels) if b is None else b, k, padding=k // 2, bias=b is None)
            for a, b in zip(ins, outs)
        )
        self.norms = nn.ModuleList(ClusterScaleBias(b, n_clusters, spatial=True, **re_kwargs) for b in outs[:-1])
        self.acts = nn.ModuleList(nn.PReLU(b) for b in outs[:-1])
        self.out_re = _output_effects((int(in_channels), h, w), n_clusters, re_kwargs)

    def forward(self, e: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        h = self.inp(e).view(len(e), *self.top)
        h = self.inp_act(self.inp_norm(h, z))
        for i, (up, conv) in enumerate(zip(self.ups, self.convs)):
            h = conv(up(h))
            if i < len(self.norms):
                h = self.acts[i](self.norms[i](h, z))
        return h if self.out_re is None else self.out_re(h, z)


def _output_effects(shape, n_clusters: int, re_kwargs: dict) -> ClusterAffine | None:
    if not re_kwargs["random_effects"] or not re_kwargs.get("output_effects", True):
        return None
    return ClusterAffine(shape, n_clusters, re_kwargs["prior_scale"])


class ARMEDAutoencoderNet(nn.Module):
    """The ARMED autoencoder (see the module docstring): encoder, RE decoder, classifier, adversary.

    Parameters
    ----------
    n_features : int
        Input features (dense) or image channels (``image_size`` given).
    n_clusters : int
        Training clusters K (the width of z).
    latent_dim : int
    hidden : sequence of int
        Dense backbone: the encoder's hidden widths (the decoder mirrors them).
    image_size : (int, int) or None
        None: dense backbone on inputs (batch, n_features); else a convolutional one on
        images (batch, n_features, H, W) with conv widths ``channels``.
    channels : sequence of int
    kernel_size : int
    activation : str
    n_outputs : int
        Classifier logits (1 for two classes, the number of classes otherwise; 0: none).
    classifier_hidden : sequence of int
    random_effects : bool
        Cluster scale and bias in the decoder and a random intercept of the classifier.
    adversary_hidden : sequence of int or None
        None builds no adversary.
    adversary_channels : sequence of int or None
        Conv widths of the multi-scale adversary (images; default half of ``channels``, >= 4).
    re_prior, re_post_init : float
        Prior scale and initial posterior-mean s.d. of the random scale and bias.
    adversary_reads : {"latent", "all"}
        What the adversary reads: the latent only (an MLP), or every encoder activation and
        the latent (dense: an MLP on their concatenation; images: the multi-scale adversary).
    """

    def __init__(
        self,
        n_features: int,
        n_clusters: int,
        latent_dim: int = 16,
        hidden: Sequence[int] = (128,),
        image_size: Sequence[int] | None = None,
        channels: Sequence[int] = (16, 32),
        kernel_size: int = 3,
        activation: str = "relu",
        n_outputs: int = 0,
        classifier_hidden: Sequence[int] = (32,),
        random_effects: bool = True,
        adversary_hidden: Sequence[int] | None = (64,),
        adversary_channels: Sequence[int] | None = None,
        re_prior: float = 0.25,
        re_post_init: float = 0.1,
        adversary_reads: str = "latent",
    ) -> None:
        super().__init__()
        self.config = {
            "n_features": int(n_features),
            "n_clusters": int(n_clusters),
            "latent_dim": int(latent_dim),
            "hidden": [int(h) for h in hidden],
            "image_size": None if image_size is None else [int(s) for s in image_size],
            "channels": [int(c) for c in channels],
            "kernel_size": int(kernel_size),
            "activation": activation,
            "n_outputs": int(n_outputs),
            "classifier_hidden": [int(h) for h in classifier_hidden],
            "random_effects": bool(random_effects),
            "adversary_hidden": None if adversary_hidden is None else [int(h) for h in adversary_hidden],
            "adversary_channels": None if adversary_channels is None else [int(c) for c in adversary_channels],
            "re_prior": float(re_prior),
            "re_post_init": float(re_post_init),
            "adversary_reads": adversary_reads,
        }
        if adversary_reads not in ("latent", "all"):
            raise ValueError(f"adversary_reads must be 'latent' or 'all', got {adversary_reads!r}")
        K, cfg = int(n_clusters), self.config
        re_kwargs = {"prior_scale": re_prior, "post_init_scale": re_post_init, "random_effects": random_effects}
        if image_size is None:
            self.encoder = _DenseEncoder(n_features, cfg["hidden"], latent_dim, activation)
            self.decoder = _DenseDecoder(n_features, cfg["hidden"], latent_dim, activation, K, re_kwargs)
            adv_in = (sum(cfg["hidden"]) if adversary_reads == "all" else 0) + int(latent_dim)
        else:
            self.encoder = _ConvEncoder(n_features, image_size, cfg["channels"], latent_dim, kernel_size)
            self.decoder = _ConvDecoder(n_features, image_size, cfg["channels"], latent_dim, kernel_size, K, re_kwargs)
        self.classifier = (
            MLP(int(latent_dim), cfg["classifier_hidden"], int(n_outputs), activation) if n_outputs else None
        )
        self.intercept = RandomEffects(K, int(n_outputs), 0.5, True, 0.1) if n_outputs and random_effects else None
        self.adversary = None
        if adversary_hidden is not None and K >= 2:
            if adversary_reads == "latent":
                self.adversary = MLP(int(latent_dim), cfg["adversary_hidden"], K, activation)
            elif image_size is None:
                self.adversary = MLP(adv_in, cfg["adversary_hidden"], K, activation)
            else:
                adv_ch = cfg["adversary_channels"] or [max(4, c // 2) for c in cfg["channels"]]
                self.adversary = MultiScaleAdversary(
                    self.encoder.shapes, int(latent_dim), adv_ch, cfg["adversary_hidden"], K, kernel_size, activation
                )

    # ------------------------------------------------------------------ forward
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``(latent (batch, latent_dim), encoder hidden activations)``."""
        return self.encoder(x)

    def decode(self, e: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """Reconstruction from latents ``e``; ``z`` (batch, K), int64 (batch,) or None (fixed effects only)."""
        return self.decoder(e, z)

    def classify(self, e: torch.Tensor, z: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(FE logits, mixed logits)``, each (batch, n_outputs)."""
        fixed = self.classifier(e)
        mixed = fixed if z is None or self.intercept is None else fixed + self.intercept(z)
        return fixed, mixed

    def adversary_input(self, e: torch.Tensor, hiddens: list[torch.Tensor]):
        """What the adversary reads: every encoder activation and the latent."""
        if self.config["adversary_reads"] == "latent":
            return e
        if self.config["image_size"] is None:
            return torch.cat([*hiddens, e], dim=1)
        return [*hiddens, e]

    def kl(self) -> torch.Tensor:
        """Summed KL of every random-effects layer (a scalar)."""
        total = self.decoder_kl()
        if self.intercept is not None:
            total = total + self.intercept.kl()
        return total

    def decoder_kl(self) -> torch.Tensor:
        terms = [m.kl() for m in self.decoder.modules() if isinstance(m, (ClusterScaleBias, ClusterAffine))]
        return torch.stack(terms).sum() if terms else torch.zeros(())

    def random_effect_layers(self) -> list[RandomEffects]:
        """Every :class:`RandomEffects` of the network (decoder scale/bias, classifier intercept)."""
        return [m for m in self.modules() if isinstance(m, RandomEffects)]

    # ------------------------------------------------------------------ the objective
    def task_loss(self, x, zb, yb, o: AutoencoderObjective, e=None) -> tuple[torch.Tensor, dict]:
        """Reconstruction and classification terms (no adversary, no KL) and their values."""
        if e is None:
            e, _ = self.encode(x)
        z = zb if o.use_random_effects else None
        recon = F.mse_loss(self.decode(e, z), x)
        loss, parts = o.lambda_recon * recon, {"recon": recon}
        if self.classifier is not None and o.lambda_class > 0:
            fixed, mixed = self.classify(e, z)
            nll_m, nll_f = _nll(mixed, yb), _nll(fixed, yb)
            loss = loss + o.lambda_class * (o.lambda_mixed * nll_m + o.lambda_fixed * nll_f)
            parts.update(nll_mixed=nll_m, nll_fixed=nll_f)
        return loss, parts

    def configure_optimizers(self, lr: float, weight_decay: float, re_lr_scale: float):
        """Adam for the main network (random effects at ``lr * re_lr_scale``) and for the adversary."""
        device = next(self.parameters()).device
        re_params = [p for layer in self.random_effect_layers() for p in layer.parameters()]
        adv_ids = {id(p) for p in self.adversary.parameters()} if self.adversary is not None else set()
        skip = adv_ids | {id(p) for p in re_params}
        main = [p for p in self.parameters() if id(p) not in skip]
        groups = [{"params": main, "weight_decay": float(weight_decay)}]
        groups += [{"params": re_params, "lr": lr * float(re_lr_scale)}] if re_params else []
        opt_adv = _adam(self.adversary.parameters(), lr, device) if self.adversary is not None else None
        return _adam(groups, lr, device), opt_adv

    def training_step(self, batch, o: AutoencoderObjective, opt_main, opt_adv) -> dict:
        """One update on ``(x, cluster index, y)``; returns the named losses.

        The main network minimises ``λ_r·MSE(x, D(E(x), z)) + λ_c·(λ_M·CE(y, ŷ_M) +
        λ_F·CE(y, ŷ_F)) + kl_weight·KL + λ_g·G``; ``G`` is the guarded adversarial term
        (``"alternating"``: one adversary step on detached activations first) or, with
        ``"reversal"``, the adversary's loss through a gradient-reversal layer.
        """
        xb, zb, yb = batch
        e, hiddens = self.encode(xb)
        loss, parts = self.task_loss(xb, zb, yb, o, e=e)
        kl = self.kl()
        loss = report = loss + o.kl_weight * kl
        parts["kl"] = kl
        if o.use_adversary and self.adversary is not None:
            h = self.adversary_input(e, hiddens)
            if o.mode == "alternating":
                opt_adv.zero_grad(set_to_none=True)
                la = adversary_loss(self.adversary(_each(h, torch.Tensor.detach)), zb)
                la.backward()
                opt_adv.step()
                parts["adv_loss"] = la
                if o.lambda_adv > 0:
                    gen = generator_loss(self.adversary(h), zb, o.log_prior, o.guard, o.cap)
                    loss = report = loss + o.lambda_adv * gen
                    parts["gen_loss"] = gen
            else:
                if o._coef is None:
                    o._coef = torch.zeros((), device=xb.device)
                la = adversary_loss(self.adversary(_each(h, lambda t: grad_reverse(t, o._coef))), zb)
                blocked = o.guard == "clamp" and la.item() >= o.cap * o.chance
                o._coef.fill_(0.0 if blocked else o.lambda_adv)
                parts["adv_loss"] = la
                opt_adv.zero_grad(set_to_none=True)
                report = loss - o._coef * la.detach()
                loss = loss + la  # the adversary minimises la; the encoder gets -coef * its gradient
        opt_main.zero_grad(set_to_none=True)
        loss.backward()
        opt_main.step()
        if o.use_adversary and self.adversary is not None and o.mode == "reversal":
            opt_adv.step()
        names = ["loss", *parts]
        numbers = torch.stack([report.detach(), *[v.detach() for v in parts.values()]]).tolist()
        return dict(zip(names, numbers))


def _nll(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if logits.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(logits[:, 0], y.to(logits.dtype))
    return F.cross_entropy(logits, y)
