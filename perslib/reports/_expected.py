"""The notebooks' reference figures and their tolerance bands, as one table.

``notebooks/expected/NN_name.json`` holds, per figure a notebook writes at its default
parameters (seed 0), the reference ``value``, the band ``abs`` (+ ``rel`` × |value|) a fresh
run must land in, and the measurements behind the band: ``seed_sd`` (standard deviation over
seeds 0, 1, 2 on the native CPU path) and ``cpu_change`` (largest change at seed 0 on the
other emulated CPU code paths). The band is :func:`band_width`: max(3 × cpu_change,
2 × seed_sd) rounded up to two significant digits, or a relative 1e-6 for figures that nothing moves
(``tests/measure_spread.py``, ``notebooks/expected/README.md``).
:func:`expected_table` reads every file into one DataFrame; :func:`expected_markdown`
renders it (``docs/seed_spread.md``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["expected_markdown", "expected_table"]

COLUMNS = ["notebook", "figure", "value", "band", "seed_sd", "cpu_change", "source"]
CPU_FACTOR = 3  # the band covers 3 × the largest change seen on the emulated CPU code paths ...
# ... and 2 × the seed-to-seed sd: on a real second CPU (2-vCPU Intel Xeon, references measured
# on an AMD EPYC) a trained figure whose training is chaotic moved like a fresh seed, by up to
# 1.24 seed sd; two draws differ by more than one sd about half the time
SEED_SD_FACTOR = 2
SOURCES = (f"{SEED_SD_FACTOR} × seed sd", f"{CPU_FACTOR} × CPU change", "fixed: nothing moves it (relative 1e-6)")


def _nice(x: float) -> float:
    """Round a tolerance up to two significant digits (0.01372 -> 0.014)."""
    if x <= 0:
        return 0.0
    step = 10 ** (math.floor(math.log10(x)) - 1)
    return float(f"{math.ceil(x / step - 1e-9) * step:.2g}")


def band_width(cpu_change: float, seed_sd: float) -> float:
    """Half-width of a figure's band: max(3 × cpu_change, 2 × seed_sd), rounded up to two digits.

    Parameters
    ----------
    cpu_change : float
        Largest change of the figure at the reference seed on the other CPU code paths.
    seed_sd : float
        Standard deviation of the figure over the native seeds.

    Returns
    -------
    float
        0.0 when neither moves the figure (the caller then fixes it, relative 1e-6).
    """
    return _nice(max(CPU_FACTOR * cpu_change, SEED_SD_FACTOR * seed_sd))


def _source(band: float, seed_sd: float, cpu_change: float, fixed: bool) -> str:
    """Which rule set the band; the stored measurements have 3 significant digits, so 2% slack."""
    if fixed:
        return SOURCES[2]
    if SEED_SD_FACTOR * seed_sd >= CPU_FACTOR * cpu_change:
        ok = band >= 0.98 * SEED_SD_FACTOR * seed_sd
        return SOURCES[0] if ok else f"set by hand (below {SOURCES[0]})"
    return SOURCES[1] if band >= 0.98 * CPU_FACTOR * cpu_change else f"set by hand (below {SOURCES[1]})"


def expected_table(directory: str | Path = "notebooks/expected") -> pd.DataFrame:
    """Every reference figure of every notebook with its band and what the band comes from.

    Parameters
    ----------
    directory : str or Path, default="notebooks/expected"
        Folder of ``NN_name.json`` files (relative paths from the working directory).

    Returns
    -------
    pandas.DataFrame
        One row per (notebook, figure), sorted by notebook then file order; columns
        ``notebook``, ``figure``, ``value`` (seed-0 reference), ``band`` (half-width of
        the accepted range: ``abs + rel·|value|``), ``seed_sd``, ``cpu_change`` and
        ``source`` (``"2 × seed sd"``, ``"3 × CPU change"``, ``"fixed: …"`` or, where the
        stored band is narrower than its own rule gives, ``"set by hand …"``).
        ``attrs["unchecked"]`` maps each notebook to its unchecked figure patterns.

    Raises
    ------
    FileNotFoundError
        If ``directory`` holds no ``*.json`` file.
    ValueError
        For a file without a ``figures`` mapping or a figure without ``value`` and ``abs``.
    """
    folder = Path(directory)
    files = sorted(folder.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"directory {str(folder)!r} holds no *.json reference file")
    rows, unchecked = [], {}
    for path in files:
        data = json.loads(path.read_text())
        figures = data.get("figures")
        if not isinstance(figures, dict):
            raise ValueError(f"{path.name}: expected a 'figures' mapping")
        notebook = data.get("notebook", path.stem)
        unchecked[notebook] = dict(data.get("unchecked", {}))
        for name, entry in figures.items():
            if not isinstance(entry, dict) or "value" not in entry or "abs" not in entry:
                raise ValueError(f"{path.name}: figure {name!r} needs 'value' and 'abs'")
            value = float(entry["value"])
            rel = float(entry.get("rel", 0.0))
            band = float(entry["abs"]) + rel * abs(value)
            seed_sd = float(entry.get("seed_sd", np.nan))
            cpu = float(entry.get("cpu_change", np.nan))
            rows.append(
                {
                    "notebook": notebook,
                    "figure": name,
                    "value": value,
                    "band": band,
                    "seed_sd": seed_sd,
                    "cpu_change": cpu,
                    "source": _source(band, seed_sd, cpu, fixed="rel" in entry),
                }
            )
    table = pd.DataFrame(rows, columns=COLUMNS)
    table.attrs["unchecked"] = unchecked
    return table


def expected_markdown(table: pd.DataFrame) -> str:
    """A Markdown page of :func:`expected_table`: one section per notebook, one row per figure.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`expected_table`.

    Returns
    -------
    str
    """
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"table must come from expected_table; missing columns {missing}")
    lines = [
        "# Reference figures and their seed spread",
        "",
        "Generated from `notebooks/expected/*.json` by `perslib.reports.expected_table` /",
        "`expected_markdown` (do not edit by hand). A fresh run at the default parameters must give",
        "*value* ± *band*. *seed sd*: standard deviation over seeds 0, 1, 2 (native CPU path);",
        "*CPU change*: largest change at seed 0 on the emulated CPU code paths. The band is",
        "max(3 × CPU change, 2 × seed sd), rounded up to two significant digits (*source* says which),",
        "or a relative 1e-6 for figures nothing moves. See `notebooks/expected/README.md`.",
        "",
    ]
    for notebook, part in table.groupby("notebook", sort=False):
        lines += [
            f"## {notebook}",
            "",
            "| figure | value | band | seed sd | CPU change | source |",
            "|---|---|---|---|---|---|",
        ]
        for r in part.itertuples(index=False):
            name = str(r.figure).replace("|", "\\|")
            lines.append(
                f"| {name} | {r.value:.4g} | ± {r.band:.2g} | {r.seed_sd:.2g} | {r.cpu_change:.2g} | {r.source} |"
            )
        patterns = table.attrs.get("unchecked", {}).get(notebook, {})
        if patterns:
            lines += ["", "Not compared: " + "; ".join(f"`{p}` ({why})" for p, why in patterns.items()) + "."]
        lines.append("")
    return "\n".join(lines)
