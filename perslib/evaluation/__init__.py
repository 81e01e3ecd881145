"""Evaluating models that serve clusters: grouped cross-validation, scores, parameter recovery, cost.

Cross-validation
    cross_validate_models, summarize_folds, label_cluster_strata
Adapters
    WithCovariates, OnColumns
Scores
    METRICS, per_group_score, mean_ci, permutation_score_drop
Clustering
    intraclass_correlation, IntraclassCorrelation
Parameter recovery
    parameter_mse, binned_explained_variance, low_rank_floor
Cost
    power_law_fit, peak_memory_increase
"""

from perslib.evaluation._adapters import OnColumns, WithCovariates
from perslib.evaluation._cost import peak_memory_increase, power_law_fit
from perslib.evaluation._cv import cross_validate_models, label_cluster_strata, summarize_folds
from perslib.evaluation._icc import IntraclassCorrelation, intraclass_correlation
from perslib.evaluation._recovery import binned_explained_variance, low_rank_floor, parameter_mse
from perslib.evaluation._scores import METRICS, mean_ci, per_group_score, permutation_score_drop

__all__ = [
    "METRICS",
    "IntraclassCorrelation",
    "OnColumns",
    "WithCovariates",
    "binned_explained_variance",
    "cross_validate_models",
    "intraclass_correlation",
    "label_cluster_strata",
    "low_rank_floor",
    "mean_ci",
    "parameter_mse",
    "peak_memory_increase",
    "per_group_score",
    "permutation_score_drop",
    "power_law_fit",
    "summarize_folds",
]
