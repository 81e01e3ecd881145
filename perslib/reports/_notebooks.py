"""Finding the notebooks and reading their ``parameters`` cell."""

from __future__ import annotations

import ast
import glob
import os
from pathlib import Path

__all__ = ["KERNELSPEC", "KERNEL_NAME", "ParameterError", "find_notebooks", "notebook_parameters", "read_notebook"]

KERNEL_NAME = "perslib"  # installed into the project's venv with `ipykernel install --sys-prefix`
KERNELSPEC = {"name": KERNEL_NAME, "display_name": "Python (perslib)", "language": "python"}


class ParameterError(ValueError):
    """A parameter name or value that the notebook does not accept."""


def find_notebooks(notebooks_dir: str | Path = "notebooks") -> list[Path]:
    """The numbered notebook sources ``NN_*.py`` in ``notebooks_dir``, in order."""
    return sorted(Path(p) for p in glob.glob(os.path.join(str(notebooks_dir), "[0-9][0-9]_*.py")))


def read_notebook(path: Path):
    import jupytext
    import nbformat

    nb = jupytext.read(path) if path.suffix == ".py" else nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    return nb


def notebook_parameters(path: str | Path) -> dict:
    """The parameters of a notebook and their default values.

    Reads the first code cell tagged ``parameters`` and returns ``{name: default}`` for
    every ``name = value`` line in it, in order. A default that is not a Python literal
    is returned as the source text of its expression.
    """
    path = Path(path)
    nb = read_notebook(path)
    cell = next((c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])), None)
    if cell is None:
        raise ParameterError(f"{path.name} has no code cell tagged 'parameters'")
    params = {}
    for node in ast.parse(cell.source).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    try:
                        params[target.id] = ast.literal_eval(node.value)
                    except ValueError:
                        params[target.id] = ast.get_source_segment(cell.source, node.value)
    return params
