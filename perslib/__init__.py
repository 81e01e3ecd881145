"""perslib: models that adapt to the sample or cluster they serve.

Two method families back a numbered series of tutorial notebooks:

* personalized regression (Lengerich et al., ISMB 2018; NeurIPS 2019);
* ARMED mixed-effects deep learning (Nguyen et al., TPAMI 2023).

Modules
-------
utils         seeding, device choice, thread and progress switches, input validation
training      a small reusable minibatch training loop with early stopping
mlp           a plain MLP module and its scikit-learn style estimators
personalized  personalized regression (full rank and low rank), distance matching
distances     per-pair covariate distances and neighbour search (no n x n matrices)
armed         ARMED building blocks: random-effects layer, adversary, generator-loss guard
armed_models  ARMEDClassifier / ARMEDRegressor (unseen clusters, z ablations, closed-form mixed-model refit)
armed_interpret  fixed-effects feature importance, random-slope spread, intercept vs prevalence
armed_baselines  cluster-input, domain-adversarial and mixed-effects MLPs, statsmodels mixed models
baselines     population GLM, mixture of regressions, varying coefficients, kNN local regression
data          seeded simulators with their ground truth, and real clustered datasets
metrics       parameter-recovery and per-cluster scores, intervals over folds
evaluation    cross-validation of several estimators over grouped folds, tidy results
plotting      the house plotting style and the figures the notebooks show
reports       run the notebooks as parameterized reports (papermill + HTML)
"""

import importlib

from perslib.armed_models import ARMEDClassifier, ARMEDRegressor
from perslib.mlp import MLPClassifier, MLPRegressor
from perslib.personalized import PersonalizedClassifier, PersonalizedRegressor
from perslib.utils import resolve_device, set_seed

__version__ = "0.1.0"

_SUBMODULES = {"armed", "armed_baselines", "armed_interpret", "armed_models", "evaluation", "baselines", "data", "distances", "metrics", "mlp", "personalized", "plotting", "reports", "training", "utils"}

__all__ = [
    "__version__",
    "ARMEDClassifier",
    "ARMEDRegressor",
    "MLPClassifier",
    "MLPRegressor",
    "PersonalizedClassifier",
    "PersonalizedRegressor",
    "resolve_device",
    "set_seed",
    *sorted(_SUBMODULES),
]


def __getattr__(name):
    # Submodules load on first use (``perslib.plotting`` pulls in matplotlib and seaborn).
    if name in _SUBMODULES:
        return importlib.import_module(f"perslib.{name}")
    raise AttributeError(f"module 'perslib' has no attribute {name!r}")
