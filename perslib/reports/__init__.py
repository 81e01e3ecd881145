"""Run the tutorial notebooks as parameterized reports.

Each notebook's source of truth is a jupytext ``py:percent`` file (``notebooks/NN_name.py``).
:func:`run_notebook` reads it, checks and types the parameters against the notebook's own
``parameters`` cell, injects them with papermill, executes the notebook on the project's
kernel with ``notebooks/`` as the working directory, and writes the executed ``.ipynb``
plus a self-contained HTML page (:func:`export_html`: math as MathML, figures embedded, nothing
loaded from the network). A run that fails (an exception, a cell timeout, a kernel
that does not start) is marked as failed inside both files.

Parameters come, in increasing priority, from the notebook's own defaults, a *profile*
(``notebooks/params/<profile>.yaml``: a ``defaults`` section for every notebook and one
section per notebook stem), and explicit ``-p name value`` pairs.

Command line (``make run`` uses it)::

    python -m perslib.reports                        # every notebook, default parameters
    python -m perslib.reports notebooks/01_simulation.py --profile smoke --out build/smoke
    python -m perslib.reports notebooks/02_*.py -p seed 3 --out build/seed3

:func:`expected_table` gathers the reference figures of ``notebooks/expected/`` with their
tolerance bands and seed spread (``docs/seed_spread.md``).

:func:`build_site` turns the executed notebooks in ``build/`` into a browsable course site
(``make site``, ``perslib site``).
"""

from perslib.reports._cli import format_table, main, write_timings
from perslib.reports._expected import expected_markdown, expected_table
from perslib.reports._html import TexError, export_html, external_resources, tex_to_mathml
from perslib.reports._notebooks import KERNEL_NAME, ParameterError, find_notebooks, notebook_parameters, read_notebook
from perslib.reports._parameters import load_profile, parse_parameter, resolve_parameters
from perslib.reports._run import FAILED_TAG, NotebookResult, check_kernel, run_notebook
from perslib.reports._site import SiteError, build_site, notebook_entries

__all__ = [
    "FAILED_TAG",
    "KERNEL_NAME",
    "NotebookResult",
    "ParameterError",
    "SiteError",
    "TexError",
    "build_site",
    "expected_markdown",
    "expected_table",
    "check_kernel",
    "export_html",
    "external_resources",
    "find_notebooks",
    "format_table",
    "load_profile",
    "main",
    "notebook_entries",
    "notebook_parameters",
    "parse_parameter",
    "read_notebook",
    "resolve_parameters",
    "run_notebook",
    "tex_to_mathml",
    "write_timings",
]
