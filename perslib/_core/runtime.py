"""Run-time switches shared by all of perslib: seeds, devices, threads, progress bars.

One place for each: :func:`set_seed` seeds every generator a notebook touches,
:func:`resolve_device` is the only code that names a device, :func:`seeded_torch` gives
a fit its own torch random stream without touching the caller's.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

__all__ = ["progress_enabled", "resolve_device", "seeded_torch", "set_seed", "torch_threads"]


def set_seed(seed: int, deterministic: bool = True) -> None:
    """Seed Python's ``random``, NumPy's legacy global generator and torch (CPU and CUDA).

    Parameters
    ----------
    seed : int
        The seed; the same seed gives the same results on the same device.
    deterministic : bool, default=True
        Also ask torch for deterministic kernels (``cudnn.deterministic``, no cudnn
        autotuning, ``use_deterministic_algorithms(warn_only=True)``). PyTorch does not
        promise equal results between CPU and GPU, only between runs on one device.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int, got {type(seed).__name__}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` (or ``"cuda:N"``, ``"mps"``) into a ``torch.device``.

    ``"auto"`` picks CUDA when a GPU is visible, else Apple's MPS when available, else
    the CPU. Asking for a device that is not present raises a ``ValueError``.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or a torch.device, got {device!r}")
    name = device.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was asked for but no CUDA GPU is visible; use device='auto' or 'cpu'")
        return torch.device(name)
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError("device='mps' was asked for but MPS is not available; use device='auto' or 'cpu'")
        return torch.device("mps")
    raise ValueError(f"device must be 'auto', 'cpu', 'cuda[:N]' or 'mps', got {device!r}")


@contextmanager
def seeded_torch(seed: int, device: torch.device | str | None = None) -> Iterator[None]:
    """Run a block on a torch random stream of its own, seeded with ``seed``.

    Module initialisation, dropout and random-effect draws use torch's global generator;
    inside this block it is seeded with ``seed``, and on exit the caller's generator
    state (CPU, and the CUDA device when one is used) is restored, so that fitting an
    estimator never changes the random numbers its caller draws next.
    """
    devices = []
    if device is not None and torch.device(device).type == "cuda":
        index = torch.device(device).index
        devices = [torch.cuda.current_device() if index is None else index]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        yield


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with ``torch.set_num_threads(n)`` and restore the previous setting.

    ``None`` leaves torch's setting alone. The small networks of perslib train fastest on
    one CPU thread: intra-op parallelism on small tensors costs more than it gains, and
    on a busy 2-core machine two threads can run 20 times slower than one.
    """
    if n is None:
        yield
        return
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"the number of threads must be a positive int or None, got {n!r}")
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def progress_enabled(progress: bool | None = None) -> bool:
    """Whether to draw a tqdm progress bar.

    An explicit ``True``/``False`` wins; ``None`` follows the environment variable
    ``PERSLIB_PROGRESS`` (``"0"`` switches bars off, as the test suite does), default on.
    """
    if progress is not None:
        return bool(progress)
    return os.environ.get("PERSLIB_PROGRESS", "1").strip().lower() not in {"0", "false", "no", "off"}
