"""Progress of a report's stages, for the command line that waits on the notebook.

The notebook runs in a Jupyter kernel whose output the caller cannot see while it runs.
Each analysis step is wrapped in :func:`stage`, which appends a line to the file named by
the environment variable ``PERSLIB_REPORT_PROGRESS`` (the kernel inherits it from
``perslib report``); without the variable it does nothing. Lines are tab-separated:
``start<TAB>name`` and ``done<TAB>name<TAB>seconds``.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager

__all__ = ["PROGRESS_ENV", "stage"]

PROGRESS_ENV = "PERSLIB_REPORT_PROGRESS"


def _write(line: str) -> None:
    path = os.environ.get(PROGRESS_ENV)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
    except OSError:  # progress is a courtesy; never fail the analysis over it
        pass


@contextmanager
def stage(name: str):
    """Record the start and the end (with its wall time) of one stage of the analysis."""
    _write(f"start\t{name}")
    t0 = time.perf_counter()
    try:
        yield
    except BaseException:
        _write(f"failed\t{name}\t{time.perf_counter() - t0:.1f}")
        raise
    _write(f"done\t{name}\t{time.perf_counter() - t0:.1f}")
