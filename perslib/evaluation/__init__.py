"""Evaluating models that serve clusters: grouped cross-validation, scores, parameter recovery, cost.

Cross-validation
    cross_validate_models, summarize_folds, label_cluster_strata, score_fitted (the fitted fold
    models on altered test rows)
Adapters
    WithCovariates, OnColumns
Scores
    METRICS, per_group_score, mean_ci, permutation_score_drop
Comparing models over folds (Nadeau-Bengio corrected t intervals)
    corrected_t_interval, corrected_summary, paired_differences, split_ratio
Clustering
    intraclass_correlation, IntraclassCorrelation
Batch effects
    batch_effect_scores, batch_effect_intervals, zscore, reconstruction_mse; the peer: pca_harmony (needs harmonypy),
    harmony_available
Parameter recovery
    parameter_mse, binned_explained_variance, low_rank_floor
Cost
    power_law_fit, peak_memory_increase
"""

from perslib.evaluation._adapters import OnColumns, WithCovariates
from perslib.evaluation._batch import batch_effect_intervals, batch_effect_scores, reconstruction_mse, zscore
from perslib.evaluation._compare import corrected_summary, corrected_t_interval, paired_differences, split_ratio
from perslib.evaluation._cost import peak_memory_increase, power_law_fit
from perslib.evaluation._cv import cross_validate_models, label_cluster_strata, summarize_folds
from perslib.evaluation._harmony import harmony_available, pca_harmony
from perslib.evaluation._icc import IntraclassCorrelation, intraclass_correlation
from perslib.evaluation._recovery import binned_explained_variance, low_rank_floor, parameter_mse
from perslib.evaluation._rescore import score_fitted
from perslib.evaluation._scores import METRICS, mean_ci, per_group_score, permutation_score_drop

__all__ = [
    "METRICS",
    "IntraclassCorrelation",
    "OnColumns",
    "WithCovariates",
    "batch_effect_intervals",
    "batch_effect_scores",
    "binned_explained_variance",
    "corrected_summary",
    "corrected_t_interval",
    "cross_validate_models",
    "harmony_available",
    "intraclass_correlation",
    "label_cluster_strata",
    "low_rank_floor",
    "mean_ci",
    "paired_differences",
    "parameter_mse",
    "pca_harmony",
    "peak_memory_increase",
    "per_group_score",
    "permutation_score_drop",
    "power_law_fit",
    "split_ratio",
    "reconstruction_mse",
    "score_fitted",
    "summarize_folds",
    "zscore",
]
