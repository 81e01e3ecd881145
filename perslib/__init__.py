"""perslib: models that adapt to the sample or cluster they serve.

``perslib.personalized`` (personalized regression, Lengerich et al. 2018/2019) and
``perslib.armed`` (ARMED mixed-effects deep learning, Nguyen et al. 2023) are the two
method families; ``perslib.evaluation``, ``perslib.data``, ``perslib.plotting`` and
``perslib.reports`` serve the tutorial notebooks, ``perslib.analysis`` the report on a user's
own data (``perslib report``). The main estimators, ``set_seed``,
``resolve_device`` and ``load`` are importable from here.
"""

import importlib

from perslib._core.persistence import load
from perslib._core.runtime import resolve_device, set_seed
from perslib.armed import ARMEDAutoencoder, ARMEDClassifier, ARMEDImageClassifier, ARMEDRegressor
from perslib.cnn import CNNClassifier
from perslib.mlp import MLPClassifier, MLPRegressor
from perslib.personalized import PersonalizedClassifier, PersonalizedRegressor

__version__ = "0.2.0"

_SUBMODULES = {"analysis", "armed", "cnn", "data", "evaluation", "mlp", "personalized", "plotting", "reports"}

__all__ = [
    "ARMEDAutoencoder",
    "ARMEDClassifier",
    "ARMEDImageClassifier",
    "ARMEDRegressor",
    "CNNClassifier",
    "MLPClassifier",
    "MLPRegressor",
    "PersonalizedClassifier",
    "PersonalizedRegressor",
    "__version__",
    "load",
    "resolve_device",
    "set_seed",
    *sorted(_SUBMODULES),
]


def __getattr__(name):
    # Submodules load on first use (``perslib.plotting`` pulls in matplotlib and seaborn).
    if name in _SUBMODULES:
        return importlib.import_module(f"perslib.{name}")
    raise AttributeError(f"module 'perslib' has no attribute {name!r}")
