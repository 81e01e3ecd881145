"""Input-gradient saliency of an image model's fixed-effects path.

:func:`saliency_maps` gives ``|d P_F(y = 1) / d pixel|`` of the FE prediction (random effects
off, the cluster-input CNN's site input at zero), per image; :func:`mask_share` says which
share of a map falls inside a region (a site marker, say), to compare models on how much
their FE path looks at a site artefact.
"""

from __future__ import annotations

import numpy as np
import torch

from perslib._core.validation import check_array, check_consistent_length
from perslib.armed._site_information import fixed_effects_network

__all__ = ["mask_share", "saliency_maps"]


def saliency_maps(model, X, *, output: str = "proba") -> np.ndarray:
    """Absolute input gradient of the FE prediction, summed over channels: an array (n, H, W).

    The gradient is taken with respect to the raw pixels (the estimator's per-channel
    standardization is part of the differentiated function), in eval mode (batch norm uses
    its running statistics, so each image's map is its own).

    Parameters
    ----------
    model : fitted binary image estimator (ARMED family, CNNClassifier, ClusterInputCNNClassifier)
    X : array or tensor of shape (n, C, H, W)
    output : {"proba", "logit"}, default="proba"
        Differentiate the FE probability of class ``classes_[1]`` or its logit.

    Returns
    -------
    ndarray of shape (n, H, W)
    """
    if output not in ("proba", "logit"):
        raise ValueError(f"output must be 'proba' or 'logit', got {output!r}")
    fe = fixed_effects_network(model)
    if fe.config["out_features"] != 1:
        raise ValueError("saliency_maps needs a binary model (one output logit)")
    Xa = model._check_X(X, reset=False)
    mean = torch.as_tensor(model.channel_mean_, dtype=torch.float32, device=model.device_)[None, :, None, None]
    scale = torch.as_tensor(model.channel_scale_, dtype=torch.float32, device=model.device_)[None, :, None, None]
    fe.eval()
    maps = []
    for i in range(0, len(Xa), 512):
        x = torch.as_tensor(Xa[i : i + 512], dtype=torch.float32, device=model.device_).requires_grad_(True)
        out = fe((x - mean) / scale)[:, 0]
        if output == "proba":
            out = torch.sigmoid(out)
        (grad,) = torch.autograd.grad(out.sum(), x)
        maps.append(grad.abs().sum(1).cpu().numpy().astype(np.float64))
    return np.concatenate(maps)


def mask_share(maps, masks) -> np.ndarray:
    """Share of each saliency map's total that falls inside its mask: an array (n,).

    Parameters
    ----------
    maps : array-like of shape (n, H, W)
        Non-negative saliency maps.
    masks : array-like of bool, shape (n, H, W)
        The region of each image (e.g. :func:`perslib.data.site_marker_masks`).
    """
    m = check_array(maps, "maps", ndim=3)
    k = check_array(masks, "masks", ndim=3, dtype=bool)
    check_consistent_length(maps=m, masks=k)
    if m.shape != k.shape:
        raise ValueError(f"maps and masks must have the same shape, got {m.shape} and {k.shape}")
    total = m.sum(axis=(1, 2))
    return np.where(total > 0, (m * k).sum(axis=(1, 2)) / np.where(total > 0, total, 1.0), 0.0)
