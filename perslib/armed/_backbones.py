"""ARMED's backbones: the fixed-effects network and the adversary that reads it.

* dense (the default): the FE network is a :class:`perslib.mlp.MLP`; the adversary an MLP on
  the concatenation of every hidden activation;
* convolutional (``backbone={"image_size": (H, W), "channels": (...), "kernel_size": 3}``):
  the FE network is a :class:`perslib.cnn.ConvNet` (conv blocks with batch norm, PReLU and
  pooling, then dense layers); the adversary, :class:`MultiScaleAdversary`, reads every conv
  block's output and the dense features, as in ARMED-CNN (Nguyen et al., TPAMI 2023).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from perslib.cnn import ConvNet, _ConvBlock
from perslib.mlp import MLP

__all__ = ["MultiScaleAdversary", "backbone_config", "build_adversary", "build_fixed_effects"]

_BACKBONE_KEYS = {"image_size", "channels", "kernel_size", "adversary_channels"}


def backbone_config(backbone: Mapping | None) -> dict | None:
    """A checked, plain-data copy of a convolutional backbone spec (None: the dense backbone).

    Keys: ``image_size`` (H, W), ``channels`` (conv widths), optional ``kernel_size``
    (default 3) and ``adversary_channels`` (the adversary's conv widths, one per block;
    default half the FE's, at least 4).
    """
    if backbone is None:
        return None
    unknown = set(backbone) - _BACKBONE_KEYS
    if unknown or not {"image_size", "channels"} <= set(backbone):
        raise ValueError(
            f"backbone must be None or a dict with image_size and channels (optional kernel_size, "
            f"adversary_channels), got keys {sorted(backbone)}"
        )
    channels = [int(c) for c in backbone["channels"]]
    adv = backbone.get("adversary_channels")
    adv = [max(4, c // 2) for c in channels] if adv is None else [int(c) for c in adv]
    if len(adv) != len(channels):
        raise ValueError(f"adversary_channels needs one width per conv block ({len(channels)}), got {adv}")
    return {
        "image_size": [int(s) for s in backbone["image_size"]],
        "channels": channels,
        "kernel_size": int(backbone.get("kernel_size", 3)),
        "adversary_channels": adv,
    }


def build_fixed_effects(n_features: int, hidden: Sequence[int], activation: str, backbone: dict | None) -> nn.Module:
    """The FE network: one output (the FE logit or regression output)."""
    if backbone is None:
        return MLP(n_features, hidden, 1, activation)
    return ConvNet(
        n_features,
        backbone["image_size"],
        backbone["channels"],
        hidden,
        1,
        backbone["kernel_size"],
        activation,
    )


def build_adversary(
    fe: nn.Module,
    n_features: int,
    hidden: Sequence[int],
    adversary_hidden: Sequence[int],
    n_clusters: int,
    activation: str,
    backbone: dict | None,
) -> nn.Module:
    """The adversary: cluster logits (K) from the FE activations (see the module docstring)."""
    if backbone is None:
        return MLP(sum(hidden) or int(n_features), adversary_hidden, n_clusters, activation)
    return MultiScaleAdversary(
        fe.block_shapes(),
        sum(hidden),
        backbone["adversary_channels"],
        adversary_hidden,
        n_clusters,
        backbone["kernel_size"],
        activation,
    )


class MultiScaleAdversary(nn.Module):
    """Cluster classifier on every conv block of a :class:`perslib.cnn.ConvNet` and its dense features.

    Its own conv stack runs alongside the FE network's: block ``i`` reads the FE's block
    ``i`` output joined (along channels) to its own previous block's pooled output, which
    has the same resolution; the last block's output is flattened, joined to the FE's dense
    activations and classified by an MLP. So the FE network cannot hide the cluster in an
    early feature map that later layers drop: every scale is read.

    Parameters
    ----------
    block_shapes : sequence of (C, H, W)
        Output shapes of the FE's conv blocks.
    dense_width : int
        Total width of the FE's dense activations (0: none).
    channels : sequence of int
        The adversary's conv widths, one per FE block.
    hidden : sequence of int
        Widths of the adversary's dense layers.
    n_clusters : int
    kernel_size : int, default=3
    activation : str, default="relu"
    """

    def __init__(
        self,
        block_shapes: Sequence[Sequence[int]],
        dense_width: int,
        channels: Sequence[int],
        hidden: Sequence[int],
        n_clusters: int,
        kernel_size: int = 3,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        shapes = [tuple(int(v) for v in s) for s in block_shapes]
        self.n_blocks = len(shapes)
        blocks, previous = [], 0
        for i, ((c, _, _), width) in enumerate(zip(shapes, channels)):
            last = i == len(shapes) - 1  # flattened at the FE's last resolution: no pooling
            blocks.append(_ConvBlock(c + previous, int(width), int(kernel_size), pool=not last))
            previous = int(width)
        self.blocks = nn.ModuleList(blocks)
        _, h, w = shapes[-1]
        self.head = MLP(previous * h * w + int(dense_width), hidden, n_clusters, activation)

    def forward(self, activations: Sequence[torch.Tensor]) -> torch.Tensor:
        """Cluster logits (batch, K) from ``[block_1 .. block_L, dense_1 .. dense_m]`` (``ConvNet`` order)."""
        maps, dense = activations[: self.n_blocks], activations[self.n_blocks :]
        a = None
        for block, c in zip(self.blocks, maps):
            a = block(c if a is None else torch.cat([a, c], dim=1))
        return self.head(torch.cat([a.flatten(1), *dense], dim=1))
