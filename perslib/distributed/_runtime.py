"""Process-group set-up, the global minibatch schedule and gradient averaging across ranks.

Data parallelism here is synchronous and exact: every rank holds a full replica of the
model, takes its contiguous slice of the *same* global minibatch (one seeded permutation
per epoch, identical on every rank), computes the gradient of its slice's mean loss, and
the gradients are averaged across ranks before every optimizer step. With equal slices
the average of the slices' mean-loss gradients is the gradient of the global minibatch's
mean loss, so ``W`` processes with per-rank batch ``B / W`` take the same steps as one
process with batch ``B`` (up to float rounding of the sums).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from perslib._core.runtime import resolve_device

__all__ = [
    "DistInfo",
    "GradientAverager",
    "AveragedOptimizer",
    "global_batches",
    "init_distributed",
    "rank_batches",
    "shard_indices",
]

DEFAULT_TIMEOUT = 120.0  # seconds a collective (or the rendezvous) may wait before it fails


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the job.

    ``initialized`` is False for a plain single process (no torchrun, no process group):
    then every collective below is skipped.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    device: torch.device = torch.device("cpu")
    initialized: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {value!r}") from None


def init_distributed(backend: str = "auto", timeout: float = DEFAULT_TIMEOUT, device: str = "auto") -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment.

    Reads ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``
    (set by ``torchrun``). Without them (a plain ``python`` run) the process is a job of
    one and no process group is created.

    Parameters
    ----------
    backend : {"auto", "gloo", "nccl"}, default="auto"
        ``"auto"``: NCCL when the training device is a CUDA GPU, else gloo.
    timeout : float, default=120
        Seconds the rendezvous and every collective may wait; a rank that died or hangs
        makes the others fail after this long instead of waiting forever.
    device : {"auto", "cpu", "cuda"}, default="auto"
        ``"auto"``: ``cuda:LOCAL_RANK`` when a GPU is visible, else the CPU.

    Returns
    -------
    DistInfo
    """
    if backend not in ("auto", "gloo", "nccl"):
        raise ValueError(f"backend must be 'auto', 'gloo' or 'nccl', got {backend!r}")
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    world = _env_int("WORLD_SIZE", 1)
    rank, local = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"RANK must be in [0, WORLD_SIZE): got RANK={rank}, WORLD_SIZE={world}")
    # "auto": CUDA when visible, else the CPU (no MPS: torch.distributed has no backend for it)
    dev = resolve_device("cpu" if device == "auto" and not torch.cuda.is_available() else device)
    if dev.type == "cuda":  # one GPU per process on its node: the local rank's
        dev = resolve_device(f"cuda:{local % torch.cuda.device_count()}")
        torch.cuda.set_device(dev)
    if backend == "auto":
        backend = "nccl" if dev.type == "cuda" else "gloo"
    if backend == "nccl" and dev.type != "cuda":
        raise ValueError("backend='nccl' needs CUDA GPUs; use backend='gloo' on the CPU")
    if "MASTER_ADDR" not in os.environ:  # a plain single process: nothing to join
        if world > 1:
            raise ValueError(f"WORLD_SIZE={world} but MASTER_ADDR is not set; launch with torchrun")
        return DistInfo(0, 1, 0, None, dev, False)
    if not dist.is_initialized():
        dist.init_process_group(
            backend,
            timeout=timedelta(seconds=float(timeout)),
            device_id=dev if dev.type == "cuda" else None,
        )
    return DistInfo(dist.get_rank(), dist.get_world_size(), local, backend, dev, True)


def shard_indices(n: int, rank: int, world_size: int, seed: int) -> torch.Tensor:
    """This rank's contiguous block of one seeded permutation of ``range(n)``.

    Every rank draws the same permutation (same ``seed``) and keeps block ``rank`` of
    ``world_size`` near-equal blocks (sizes differ by at most one), so the shards are
    disjoint and cover ``range(n)``.

    Returns
    -------
    torch.LongTensor of shape (about n / world_size,)
    """
    _check_rank(rank, world_size)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n!r}")
    perm = torch.randperm(int(n), generator=torch.Generator().manual_seed(int(seed)))
    return torch.tensor_split(perm, int(world_size))[int(rank)]


def _check_rank(rank: int, world_size: int) -> None:
    if int(world_size) < 1 or not 0 <= int(rank) < int(world_size):
        raise ValueError(f"rank must be in [0, world_size) with world_size >= 1, got rank={rank}, {world_size=}")


def global_batches(n: int, batch_size: int, steps: int, seed: int) -> Iterator[tuple[int, torch.Tensor]]:
    """``(epoch, indices)`` of ``steps`` global minibatches of exactly ``batch_size`` samples.

    One seeded permutation of ``range(n)`` per epoch (the same on every rank), cut into
    ``n // batch_size`` full batches (the incomplete tail is dropped, so every step averages
    over exactly ``batch_size`` samples); epochs follow each other until ``steps`` batches.
    """
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be in [1, n={n}], got {batch_size!r}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps!r}")
    gen = torch.Generator().manual_seed(int(seed))
    per_epoch = n // batch_size
    done, epoch = 0, 0
    while done < steps:
        perm = torch.randperm(n, generator=gen)
        for b in range(min(per_epoch, steps - done)):
            yield epoch, perm[b * batch_size : (b + 1) * batch_size]
        done += per_epoch
        epoch += 1


def rank_batches(
    n: int, batch_size: int, steps: int, seed: int, rank: int, world_size: int
) -> Iterator[tuple[int, torch.Tensor]]:
    """This rank's slice of each global minibatch of :func:`global_batches`.

    ``batch_size`` is the *global* batch and must be a multiple of ``world_size``; rank
    ``r`` gets positions ``[r·B/W, (r+1)·B/W)`` of every global batch.
    """
    _check_rank(rank, world_size)
    if batch_size % world_size:
        raise ValueError(
            f"the global batch_size ({batch_size}) must be a multiple of the number of processes ({world_size})"
        )
    local = batch_size // world_size
    for epoch, idx in global_batches(n, batch_size, steps, seed):
        yield epoch, idx[rank * local : (rank + 1) * local]


class GradientAverager:
    """Average the gradients of a set of parameters over all ranks (in place).

    Dense gradients travel in one flat all-reduce (with one presence flag per parameter:
    a parameter that got no gradient on any rank keeps ``grad=None``, as in one process,
    which optimizers skip). Sparse gradients (a per-sample table looked up with
    ``sparse=True``) travel as their touched rows only: an all-gather of (row index,
    row gradient) pairs, summed and divided by the world size; the result touches the
    union of the rows touched on any rank, as the one-process gradient of the whole
    minibatch would.

    Parameters
    ----------
    params : iterable of torch.nn.Parameter
    info : DistInfo
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], info: DistInfo) -> None:
        self.params = list(params)
        self.info = info

    def __call__(self) -> None:
        if not self.info.initialized or self.info.world_size == 1:
            return
        dense = [p for p in self.params if not (p.grad is not None and p.grad.is_sparse)]
        sparse = [p for p in self.params if p.grad is not None and p.grad.is_sparse]
        self._dense(dense)
        for p in sparse:
            p.grad = self._sparse(p.grad)

    def _dense(self, params: list) -> None:
        if not params:
            return
        device = params[0].device
        parts = [p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel(), device=device) for p in params]
        flags = torch.tensor([float(p.grad is not None) for p in params], device=device)
        flat = torch.cat([*parts, flags])
        dist.all_reduce(flat)
        flat /= self.info.world_size
        offset = 0
        for p, present in zip(params, flat[-len(params) :].tolist()):
            chunk = flat[offset : offset + p.numel()].view_as(p)
            offset += p.numel()
            if present > 0:
                if p.grad is None:
                    p.grad = chunk.clone()
                else:
                    p.grad.copy_(chunk)

    def _sparse(self, grad: torch.Tensor) -> torch.Tensor:
        g = grad.coalesce()
        rows_all, values_all = _all_gather_varlen([g.indices()[0], g.values()], self.info.world_size)
        out = torch.sparse_coo_tensor(
            rows_all[None, :], values_all / self.info.world_size, g.shape, check_invariants=False
        )
        return out.coalesce()


def _all_gather_varlen(tensors: list[torch.Tensor], world_size: int) -> list[torch.Tensor]:
    """Concatenation over ranks of each tensor, whose (shared) first dimension differs between ranks.

    One all-gather of the lengths, then one per tensor (padded to the longest rank's).
    """
    count = torch.tensor([tensors[0].shape[0]], device=tensors[0].device)
    counts = [torch.zeros_like(count) for _ in range(world_size)]
    dist.all_gather(counts, count)
    sizes = [int(c) for c in counts]
    out = []
    for t in tensors:
        padded = t.new_zeros((max(sizes), *t.shape[1:]))
        padded[: t.shape[0]] = t
        gathered = [torch.empty_like(padded) for _ in range(world_size)]
        dist.all_gather(gathered, padded)
        out.append(torch.cat([part[:size] for part, size in zip(gathered, sizes)]))
    return out


class AveragedOptimizer:
    """An optimizer whose ``step()`` first averages its parameters' gradients over the ranks.

    It wraps an existing optimizer (or perslib's joint optimizer) and is passed wherever
    the library's training step expects one: ``zero_grad`` and everything else are the
    wrapped optimizer's. This is the all-reduce DDP performs, placed where the library's
    step already calls ``optimizer.step()``, so the step's own code runs unchanged.
    """

    def __init__(self, optimizer, params: Iterable[torch.nn.Parameter], info: DistInfo) -> None:
        self.optimizer = optimizer
        self.average = GradientAverager(params, info)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        self.average()
        self.optimizer.step()

    def __getattr__(self, name):
        return getattr(self.optimizer, name)


def broadcast_module(module: torch.nn.Module, info: DistInfo) -> None:
    """Copy rank 0's parameters and buffers into every rank's replica (as DDP does at start)."""
    if not info.initialized or info.world_size == 1:
        return
    with torch.no_grad():
        for t in [*module.parameters(), *module.buffers()]:
            dist.broadcast(t.data, src=0)


def replica_divergence(module: torch.nn.Module, info: DistInfo) -> float:
    """Largest absolute difference between any rank's parameters and rank 0's (0.0 alone)."""
    if not info.initialized or info.world_size == 1:
        return 0.0
    with torch.no_grad():
        flat = torch.cat([p.detach().reshape(-1) for p in module.parameters()])
        ref = flat.clone()
        dist.broadcast(ref, src=0)
        gap = (flat - ref).abs().max().reshape(1)
        dist.all_reduce(gap, op=dist.ReduceOp.MAX)
    return float(gap)


def global_sum(info: DistInfo):
    """A function that sums a tensor over the processes (the identity in a single process).

    The closed-form statistics of a minibatch (ratios of sums) need the sums of the global
    minibatch, not of each process's slice; the result is detached (no gradient flows
    through the collective).
    """
    if not (info.initialized and info.world_size > 1):
        return None

    def total(value: torch.Tensor) -> torch.Tensor:
        out = value.detach().clone()
        dist.all_reduce(out)
        return out

    return total


def average_history(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Mean over ranks of a (steps, terms) table of per-rank losses (one collective)."""
    if info.initialized and info.world_size > 1:
        on_device = values.to(info.device)  # NCCL reduces CUDA tensors only
        dist.all_reduce(on_device)
        values = on_device.cpu() / info.world_size
    return values
