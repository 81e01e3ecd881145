"""Seeding, device choice, progress bars and input validation shared by all of perslib.

One place for each: `set_seed` seeds every generator a run touches, `resolve_device` is
the only code that names a device, and the ``check_*`` helpers turn bad input into a
``ValueError`` that names the argument and says what was expected.
"""

from __future__ import annotations

import os
import random
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import torch

__all__ = [
    "set_seed",
    "resolve_device",
    "progress_enabled",
    "check_array",
    "check_consistent_length",
    "check_n_columns",
    "check_random_state",
    "torch_threads",
]


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


def check_random_state(random_state: Any) -> np.random.Generator:
    """Return a NumPy ``Generator`` from ``None``, an int seed or an existing generator."""
    if random_state is None or isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    raise ValueError(f"random_state must be None, an int or a numpy Generator, got {type(random_state).__name__}")


def check_array(
    value: Any,
    name: str,
    *,
    ndim: int | tuple[int, ...] | None = None,
    dtype: Any = np.float64,
    allow_nan: bool = False,
    min_rows: int = 1,
) -> np.ndarray:
    """Convert ``value`` to a NumPy array and validate it, naming ``name`` in every error.

    Parameters
    ----------
    value : array-like or pandas object
        The input.
    name : str
        The argument's name, quoted in error messages (``"X"``, ``"covariates"``...).
    ndim : int or tuple of int, optional
        Allowed numbers of dimensions.
    dtype : numpy dtype or None, default=float64
        Target dtype; ``None`` keeps the input's. A failed numeric conversion (a text
        column, say) raises a ``ValueError`` naming the argument.
    allow_nan : bool, default=False
        Accept NaN (never inf).
    min_rows : int, default=1
        Smallest accepted length of the first axis.

    Returns
    -------
    numpy.ndarray
    """
    if value is None:
        raise ValueError(f"{name} is required, got None")
    try:
        if hasattr(value, "to_numpy"):
            arr = value.to_numpy(dtype=dtype) if dtype is not None else value.to_numpy()
        else:
            arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        bad = ""
        if hasattr(value, "dtypes") and hasattr(value, "columns"):
            from pandas.api.types import is_bool_dtype, is_numeric_dtype

            cols = [str(c) for c, t in value.dtypes.items() if not (is_numeric_dtype(t) or is_bool_dtype(t))]
            if cols:
                bad = f" (non-numeric columns: {cols})"
        raise ValueError(f"{name} must be numeric{bad}: {exc}") from None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimension(s), got shape {arr.shape}")
    if arr.ndim >= 1 and arr.shape[0] < min_rows:
        raise ValueError(f"{name} must have at least {min_rows} row(s), got shape {arr.shape}")
    if arr.dtype.kind in "fc":
        if np.isinf(arr).any():
            raise ValueError(f"{name} contains inf; expected finite values")
        if not allow_nan and np.isnan(arr).any():
            raise ValueError(f"{name} contains NaN; expected finite values (impute or drop them first)")
    return arr


def check_n_columns(arr: np.ndarray, expected: int, name: str = "X", what: str = "features") -> None:
    """Raise a ``ValueError`` when ``arr`` (2-D) does not have the ``expected`` number of
    columns seen at fit time: ``"X has 3 features, but the estimator was fitted with 2"``."""
    if arr.shape[1] != expected:
        raise ValueError(f"{name} has {arr.shape[1]} {what}, but the estimator was fitted with {expected}")


def check_consistent_length(**arrays: Any) -> int:
    """Check that all given arrays have the same first-axis length and return it.

    Call it with keyword arguments so that the error names them:
    ``check_consistent_length(X=X, y=y, groups=groups)``.
    """
    lengths = {name: len(a) for name, a in arrays.items() if a is not None}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k} has {v}" for k, v in lengths.items())
        raise ValueError(f"inconsistent numbers of samples: {detail}")
    return next(iter(lengths.values())) if lengths else 0
