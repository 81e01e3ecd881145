"""What a data-parallel fit returns, and its on-disk form."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

__all__ = ["DistributedFit"]


@dataclass
class DistributedFit:
    """The outcome of :func:`fit_armed_ddp` or :func:`fit_personalized_ddp` (the same on every rank).

    Attributes
    ----------
    module : torch.nn.Module
        The trained replica (``ARMEDNet`` or ``PersonalizedModule``), in eval mode.
    history : pandas.DataFrame
        One row per optimizer step: ``step``, ``epoch`` and the step's named losses,
        averaged over the ranks (the global minibatch's losses).
    meta : dict
        What is needed to use the parameters: standardization, cluster labels, the
        network's config, world size, global batch, steps, seconds per step.
    """

    module: torch.nn.Module
    history: pd.DataFrame
    meta: dict = field(default_factory=dict)

    @classmethod
    def collect(cls, module, rows, names, epochs, info, meta: dict, **run) -> DistributedFit:
        """The fit of one rank's run: per-step losses averaged over the ranks, and the run's metadata.

        ``rows`` holds one list of floats per step (in ``names`` order), ``epochs`` the epoch of
        each step; ``run`` (batch size, steps, seed, seconds per step, ...) joins ``meta`` with the
        world size and the largest parameter difference between the replicas.
        """
        from perslib.distributed._runtime import average_history, replica_divergence

        table = average_history(torch.tensor(rows, dtype=torch.float64), info)
        history = pd.DataFrame(table.numpy(), columns=list(names))
        history.insert(0, "epoch", epochs)
        history.insert(0, "step", np.arange(1, len(rows) + 1))
        meta.update(world_size=info.world_size, **run, replica_divergence=replica_divergence(module, info))
        return cls(module, history, meta)

    def state(self) -> dict:
        """Plain tensors and Python values: ``{"kind", "state_dict", "history", "meta"}``."""
        return {
            "kind": self.meta.get("kind"),
            "state_dict": {k: v.detach().cpu() for k, v in self.module.state_dict().items()},
            "history": self.history.to_dict(orient="list"),
            "meta": self.meta,
        }

    def save(self, path: str | Path) -> Path:
        """Write :meth:`state` with ``torch.save`` (call on one rank only)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(self.state(), tmp)
        tmp.replace(path)
        return path
