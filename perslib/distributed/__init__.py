"""Data-parallel training on torch.distributed (gloo on CPU, NCCL on GPU), launched by ``torchrun``.

Every rank holds a replica of the model and takes its slice of the same global
minibatch; gradients are averaged across ranks before every optimizer step, so W
processes with per-rank batch B / W take the steps one process with batch B takes.

* ARMED (:func:`fit_armed_ddp`): the main network (fixed effects, random-effects table,
  residual scale) and the adversary are synchronized separately, each before its own
  optimizer step inside :meth:`perslib.armed.ARMEDNet.training_step`; the K-row
  random-effects table is replicated with all-reduced gradients.
* Personalized regression (:func:`fit_personalized_ddp`): shared tensors all-reduced;
  the per-sample table's gradient travels as the touched rows only (sparse all-gather).

Command line: ``torchrun --standalone --nproc_per_node 2 -m perslib.distributed armed
--data d.csv --y y --groups g --steps 100 --out params.pt`` (``python -m perslib.distributed
--help``).
"""

from perslib.distributed._armed import fit_armed_ddp
from perslib.distributed._personalized import fit_personalized_ddp
from perslib.distributed._result import DistributedFit
from perslib.distributed._runtime import (
    AveragedOptimizer,
    DistInfo,
    GradientAverager,
    global_batches,
    init_distributed,
    rank_batches,
    shard_indices,
)

__all__ = [
    "AveragedOptimizer",
    "DistInfo",
    "DistributedFit",
    "GradientAverager",
    "fit_armed_ddp",
    "fit_personalized_ddp",
    "global_batches",
    "init_distributed",
    "rank_batches",
    "shard_indices",
]
