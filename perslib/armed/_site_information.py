"""How much site information an image model's fixed-effects features keep, measured three ways.

* :func:`adversary_accuracy` — the model's own adversary, trained with it (ARMED, the
  domain-adversarial CNN): the opponent the FE network was trained to fool;
* :func:`fresh_adversary_accuracy` — a new adversary of the same multi-scale architecture,
  trained to convergence on the frozen FE activations: an opponent the FE network never met;
* :func:`site_probe_accuracy` — a fresh linear probe (multinomial logistic regression) on the
  FE network's last dense layer ``h_F``.

The FE path is the CNN of the ARMED estimators (``net_.fe``), the conventional CNN's network,
or the cluster-input CNN's network with its site input at zero.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from perslib._core.runtime import seeded_torch
from perslib._core.training import TrainConfig, train_module
from perslib._core.validation import check_groups
from perslib.armed._backbones import MultiScaleAdversary
from perslib.cnn import ConvNet

__all__ = [
    "adversary_accuracy",
    "fixed_effects_activations",
    "fixed_effects_features",
    "fresh_adversary_accuracy",
    "site_information",
    "site_probe_accuracy",
]


def fixed_effects_network(model) -> ConvNet:
    """The FE convolutional network of a fitted image model (ARMED family, CNN, cluster-input CNN)."""
    check_is_fitted(model)
    net = getattr(model, "net_", None)
    fe = net.fe if net is not None else getattr(model, "model_", None)
    if not isinstance(fe, ConvNet):
        raise TypeError(f"{type(model).__name__} has no convolutional fixed-effects network")
    return fe


def fixed_effects_activations(model, X) -> list[torch.Tensor]:
    """Every conv block's output and dense activation of the FE path (eval mode), on the CPU.

    Parameters
    ----------
    model : fitted image estimator
    X : array or tensor of shape (n, C, H, W)

    Returns
    -------
    list of tensors: ``(n, C_i, H_i, W_i)`` per conv block, then ``(n, width)`` per dense layer
    """
    fe = fixed_effects_network(model)
    xt = model._x_tensor(model._check_X(X, reset=False))
    fe.eval()
    parts = []
    with torch.no_grad():
        for i in range(0, len(xt), 1024):
            parts.append([h.cpu() for h in fe(xt[i : i + 1024], return_hidden=True)[1]])
    return [torch.cat(layer) for layer in zip(*parts)]


def fixed_effects_features(model, X) -> np.ndarray:
    """The FE network's last dense layer ``h_F`` for images ``X`` (n, C, H, W): an array (n, width)."""
    return fixed_effects_activations(model, X)[-1].numpy().astype(np.float64)


def _codes(model, groups, n: int) -> np.ndarray:
    g = check_groups(groups, n)
    codes = pd.Index(model.groups_).get_indexer(g)
    if (codes < 0).any():
        raise ValueError("groups holds sites not seen in training: site information is measured on seen sites")
    return codes


def adversary_accuracy(model, X, groups) -> float:
    """Share of images whose site the model's own (jointly trained) adversary names correctly.

    Parameters
    ----------
    model : ARMEDImageClassifier (or a variant) with an adversary
    X : array or tensor of shape (n, C, H, W)
    groups : array-like of shape (n,)
        Sites, all seen in training.
    """
    check_is_fitted(model, "net_")
    adversary = model.net_.adversary
    if adversary is None:
        raise ValueError(f"{type(model).__name__} has no adversary (adversary=False or one site)")
    codes = _codes(model, groups, len(X))
    acts = fixed_effects_activations(model, X)
    adversary.eval()
    with torch.no_grad():
        device = next(adversary.parameters()).device
        logits = adversary([a.to(device) for a in acts]).cpu()
    return float((logits.argmax(1).numpy() == codes).mean())


def site_probe_accuracy(model, X_train, groups_train, X_test, groups_test, *, C: float = 1.0) -> float:
    """Accuracy of a fresh linear probe that reads the site from the FE features ``h_F``.

    A multinomial logistic regression (standardized features, L2 penalty ``C``) is fitted
    on ``h_F`` of the training images and scored on the test images (sites seen in both).
    """
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    probe.fit(fixed_effects_features(model, X_train), check_groups(groups_train, len(X_train)).astype(str))
    pred = probe.predict(fixed_effects_features(model, X_test))
    return float((pred == check_groups(groups_test, len(X_test)).astype(str)).mean())


def fresh_adversary_accuracy(
    model,
    X_train,
    groups_train,
    X_test,
    groups_test,
    *,
    epochs: int = 30,
    hidden=(32,),
    batch_size: int = 64,
    lr: float = 1e-3,
    random_state: int = 0,
) -> float:
    """Accuracy of a new multi-scale adversary trained on the frozen FE activations.

    The adversary has ARMED's architecture (:class:`perslib.armed.MultiScaleAdversary`, conv
    widths half the FE's) and reads every conv block and the dense features; it is trained
    for ``epochs`` epochs on the training images' activations and scored on the test images.
    """
    fe = fixed_effects_network(model)
    groups = pd.Index(pd.unique(pd.Series(check_groups(groups_train, len(X_train)), dtype=object)))
    codes_tr = torch.as_tensor(groups.get_indexer(check_groups(groups_train, len(X_train))))
    codes_te = groups.get_indexer(check_groups(groups_test, len(X_test)))
    if (codes_te < 0).any():
        raise ValueError("groups_test holds sites not in groups_train")
    acts_tr, acts_te = fixed_effects_activations(model, X_train), fixed_effects_activations(model, X_test)
    channels = [max(4, c // 2) for c in fe.config["channels"]]
    dense = sum(fe.config["hidden"])
    with seeded_torch(random_state):
        adversary = MultiScaleAdversary(
            fe.block_shapes(), dense, channels, hidden, len(groups), fe.config["kernel_size"]
        )

        def loss_fn(module, *batch):
            return torch.nn.functional.cross_entropy(module(list(batch[:-1])), batch[-1])

        config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, patience=0, progress=False)
        train_module(
            adversary, loss_fn, (*acts_tr, codes_tr), config, generator=torch.Generator().manual_seed(random_state)
        )
    adversary.eval()
    with torch.no_grad():
        pred = adversary(acts_te).argmax(1).numpy()
    return float((pred == codes_te).mean())


def site_information(
    model, X_train, groups_train, X_test, groups_test, *, epochs: int = 30, random_state: int = 0
) -> dict:
    """The three measures on one train / test split of seen sites: a dict of accuracies.

    ``"own adversary"`` (NaN for a model without one), ``"fresh adversary"`` and
    ``"linear probe"``, each the share of test images whose site is named correctly, and
    ``"chance"``, the share of the most frequent test site.
    """
    own = np.nan
    if getattr(getattr(model, "net_", None), "adversary", None) is not None:
        own = adversary_accuracy(model, X_test, groups_test)
    g_test = check_groups(groups_test, len(X_test))
    return {
        "own adversary": own,
        "fresh adversary": fresh_adversary_accuracy(
            model, X_train, groups_train, X_test, groups_test, epochs=epochs, random_state=random_state
        ),
        "linear probe": site_probe_accuracy(model, X_train, groups_train, X_test, groups_test),
        "chance": float(pd.Series(g_test, dtype=object).value_counts(normalize=True).iloc[0]),
    }
