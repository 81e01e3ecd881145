"""Checks of one executed notebook: its checked cells against the committed pair, its figures
against the committed reference values.

Two of the three layers of notebook testing live here (the third, the claims, are the
``assert`` statements inside each notebook):

* **Checked cells** (tagged ``nbval-check-output``, or nbval's ``# NBVAL_CHECK_OUTPUT`` comment): what a cell prints must read the same as in
  the committed ``.ipynb`` after nbval's sanitizers (``tests/nbval_sanitize.cfg``) have
  replaced every number that depends on floating point. nbval's own marker rules, stream
  handling and comparison keys are used, on the notebook papermill has just executed, so a
  notebook runs once for all checks instead of once more for nbval.
* **Figures** (``metrics.json``): every figure a notebook writes is compared with
  ``notebooks/expected/NN_name.json``, value ± tolerance, or is listed there as unchecked
  with the reason (wall times).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import nbformat
from nbval.plugin import (
    coalesce_streams,
    find_comment_markers,
    find_metadata_tags,
    get_sanitize_patterns,
    transform_streams_for_comparison,
)

ROOT = Path(__file__).resolve().parents[1]
SANITIZE_FILE = ROOT / "tests" / "nbval_sanitize.cfg"
EXPECTED_DIR = ROOT / "notebooks" / "expected"
# nbval's keys that are never compared (--nbval-lax without nbdime), as in nbval/plugin.py
SKIP_COMPARE = {
    "metadata",
    "traceback",
    "prompt_number",
    "output_type",
    "name",
    "execution_count",
    "application/vnd.jupyter.widget-view+json",
    "image/png",
    "image/jpeg",
}


# --------------------------------------------------------------------------- checked cells


def sanitizer(path: Path = SANITIZE_FILE):
    patterns = get_sanitize_patterns(path.read_text())

    def sanitize(text):
        if not isinstance(text, str):
            return text
        for regex, replace in patterns:
            text = re.sub(regex, replace, text)
        return text

    return sanitize


def _is_checked(cell) -> bool:
    options = dict(find_metadata_tags(cell.metadata))
    options.update(dict(find_comment_markers(cell.source)))
    return bool(options.get("check")) and not options.get("skip")


def _flatten(outputs, sanitize) -> dict:
    """nbval's comparison form: one list of sanitized values per output key / MIME type."""
    flat = {}
    for out in transform_streams_for_comparison(coalesce_streams(outputs)):
        for key, value in out.items():
            if key in SKIP_COMPARE:
                continue
            items = value.items() if key == "data" else [(key, value)]
            for k, v in items:
                if k not in SKIP_COMPARE:
                    flat.setdefault(k, []).append(sanitize(v))
    return flat


def code_cells(nb) -> list:
    """The code cells of a notebook, without papermill's injected-parameters cell."""
    return [c for c in nb.cells if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])]


def checked_cell_differences(committed: Path, executed: Path, sanitize_file: Path = SANITIZE_FILE) -> list[str]:
    """Differences between the checked cells of two notebooks, after sanitizing.

    Returns one readable entry per checked cell whose sanitized outputs differ, or whose
    source differs (the two notebooks must hold the same code).
    """
    sanitize = sanitizer(sanitize_file)
    ref_cells = code_cells(nbformat.read(committed, as_version=4))
    new_cells = code_cells(nbformat.read(executed, as_version=4))
    if [c.source for c in ref_cells] != [c.source for c in new_cells]:
        return [f"{executed.name} does not hold the code cells of {committed.name}"]
    problems = []
    for number, (ref, new) in enumerate(zip(ref_cells, new_cells)):
        if not _is_checked(ref) or ref.get("execution_count") is None:
            continue  # nbval does not compare unrun reference cells either
        a, b = _flatten(ref.outputs, sanitize), _flatten(new.outputs, sanitize)
        if a != b:
            first = next(iter(ref.source.splitlines()[1:] or [""]), "")
            problems.append(
                f"code cell {number} ({first.strip()[:60]!r}):\n--- committed\n{_show(a)}\n+++ this run\n{_show(b)}"
            )
    return problems


def _show(flat: dict) -> str:
    return "\n".join(f"[{k}]\n" + "\n".join(str(v) for v in values) for k, values in flat.items())


# --------------------------------------------------------------------------- figures


def expected_path(stem: str) -> Path:
    return EXPECTED_DIR / f"{stem}.json"


def load_expected(stem: str) -> dict:
    return json.loads(expected_path(stem).read_text())


def flatten_figures(metrics: dict, prefix: str = "") -> dict:
    """``{"eta2": {"process": 0.7}}`` → ``{"eta2/process": 0.7}``: one name per figure."""
    flat = {}
    for name, value in metrics.items():
        if isinstance(value, dict):
            flat.update(flatten_figures(value, f"{prefix}{name}/"))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def tolerance(spec: dict) -> float:
    """The half-width of a figure's band: ``abs`` plus ``rel`` × |value|."""
    return spec.get("abs", 0.0) + spec.get("rel", 0.0) * abs(spec["value"])


def _unchecked(name: str, expected: dict) -> bool:
    return any(re.fullmatch(pattern, name) for pattern in expected.get("unchecked", {}))


def figure_violations(metrics: dict, expected: dict) -> list[str]:
    """Every figure outside its band, missing, or without a reference value.

    ``expected["figures"]`` maps a figure's name to ``{"value": v, "abs": a, "rel": r}``:
    the figure must lie within ``v ± (a + r·|v|)``. ``expected["unchecked"]`` maps
    regular expressions of figure names that are not compared to the reason why.
    """
    figures = expected["figures"]
    metrics = flatten_figures(metrics)
    problems = []
    for name, spec in figures.items():
        if name not in metrics:
            problems.append(f"{name}: missing from metrics.json (expected {spec['value']:.4g})")
            continue
        value = metrics[name]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            problems.append(f"{name}: {value!r} is not a finite number")
            continue
        tol = tolerance(spec)
        if abs(value - spec["value"]) > tol:
            problems.append(
                f"{name}: {value:.4g} outside {spec['value']:.4g} ± {tol:.2g} (off by {value - spec['value']:+.3g})"
            )
    for name in metrics:
        if name not in figures and not _unchecked(name, expected):
            problems.append(f"{name}: new figure without a reference value (add it to {expected.get('notebook')}.json)")
    return problems
