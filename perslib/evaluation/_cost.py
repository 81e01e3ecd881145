"""What a fit costs: a power law fitted to times against sizes, and the peak memory of a call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from perslib._core.validation import check_array, check_consistent_length

__all__ = ["peak_memory_increase", "power_law_fit"]


def power_law_fit(x: Any, y: Any) -> tuple[float, float]:
    """Least-squares fit of ``y ≈ c · x^b`` on log-log axes; returns ``(b, c)``.

    The exponent ``b`` is the slope of ``log y`` against ``log x``: for fit time against
    sample size, ``b ≈ 1`` means linear scaling and ``b ≈ 2`` quadratic.

    Parameters
    ----------
    x, y : array-like of shape (m,)
        Positive values, m >= 2 with at least two distinct ``x``.

    Returns
    -------
    exponent : float
    coefficient : float
    """
    xa = check_array(x, "x", ndim=1)
    ya = check_array(y, "y", ndim=1)
    check_consistent_length(x=xa, y=ya)
    for arr, name in ((xa, "x"), (ya, "y")):
        if (arr <= 0).any():
            raise ValueError(f"{name} must be positive for a log-log fit, got min {arr.min()!r}")
    if np.unique(xa).size < 2:
        raise ValueError("x needs at least two distinct values")
    slope, intercept = np.polyfit(np.log(xa), np.log(ya), 1)
    return float(slope), float(np.exp(intercept))


def _rss_bytes() -> int | None:
    """Resident set size of this process in bytes (psutil, else /proc), or None."""
    import os

    try:
        import psutil
    except ImportError:  # not a dependency of perslib; usually present with Jupyter
        psutil = None
    if psutil is not None:
        try:
            return int(psutil.Process().memory_info().rss)
        except (psutil.Error, OSError):
            pass
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def peak_memory_increase(fn: Callable, *args: Any, interval: float = 0.002, **kwargs: Any) -> tuple[Any, int | None]:
    """Call ``fn(*args, **kwargs)`` and measure how far the process's resident memory rose.

    A background thread samples the resident set size (RSS) every ``interval`` seconds
    during the call; the result is the highest sample (including one after the call)
    minus the RSS just before it. What this measures, honestly:

    * memory the process *obtained from the operating system* during the call — NumPy,
      torch and interpreter allocations alike, unlike :mod:`tracemalloc`, which sees
      only Python-level allocations and misses torch tensors;
    * **not** memory the call reused from earlier, already freed allocations (the
      allocators keep freed blocks), so a second identical call often reads near 0,
      and the first call in a process includes one-off costs such as torch's lazy
      initialisation;
    * not short spikes between two samples.

    It is a lower bound on the call's working memory, good for spotting large
    differences (tens of MB and up); for the peak of a single fit in isolation run it
    in a fresh process, as ``benchmarks/personalized.py`` does.

    Parameters
    ----------
    fn : callable
        The function to measure.
    *args, **kwargs
        Passed to ``fn``.
    interval : float, default=0.002
        Seconds between RSS samples (> 0).

    Returns
    -------
    result : object
        What ``fn`` returned.
    increase : int or None
        Peak RSS increase in bytes (>= 0), or None where RSS cannot be read.
    """
    import threading
    import time

    if not callable(fn):
        raise ValueError(f"fn must be callable, got {type(fn).__name__}")
    if not (isinstance(interval, (int, float)) and interval > 0):
        raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
    base = _rss_bytes()
    if base is None:
        return fn(*args, **kwargs), None
    peak = [base]
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_bytes() or 0)
            time.sleep(interval)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        result = fn(*args, **kwargs)
        peak[0] = max(peak[0], _rss_bytes() or 0)
    finally:
        stop.set()
        thread.join()
    return result, max(peak[0] - base, 0)
