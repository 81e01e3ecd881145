"""Your own clustered data, analysed: the steps of the report notebook (08) and ``perslib report``.

A table with a target, a cluster column and features answers four questions, one function
each; notebook ``08_report`` calls them in order and ``perslib report DATA --target COL
--groups COL`` runs that notebook on a file (:func:`run_report`).

Data
    load_table (CSV, Parquet or ``"dataset:<name>"``), prepare_data -> ReportData (roles,
    encoding, audit, folds), ReportDataError (one-line messages)
Does the clustering matter?
    clustering_matters -> ClusteringResult (intraclass correlations, cluster means, a test)
Which model, on seen and on new clusters?
    report_models, compare_models -> ModelComparison
What ARMED learned
    fit_final_models -> FinalModels (random effects with intervals, feature importances),
    random_effect_intervals
What personalized regression learned (with covariates)
    personalize -> PersonalizationResult, model_clusters
The summary
    summarize
Running the report
    run_report, find_report_notebook, stage (progress lines)
"""

from perslib.analysis._clustering import ClusteringResult, clustering_matters
from perslib.analysis._data import DATASET_PREFIX, ReportData, ReportDataError, load_table, prepare_data
from perslib.analysis._effects import random_effect_intervals
from perslib.analysis._models import (
    FinalModels,
    ModelComparison,
    compare_models,
    fit_final_models,
    report_models,
)
from perslib.analysis._personalize import PersonalizationResult, model_clusters, personalize
from perslib.analysis._progress import PROGRESS_ENV, stage
from perslib.analysis._run import ReportResult, find_report_notebook, run_report
from perslib.analysis._summary import summarize

__all__ = [
    "DATASET_PREFIX",
    "PROGRESS_ENV",
    "ClusteringResult",
    "FinalModels",
    "ModelComparison",
    "PersonalizationResult",
    "ReportData",
    "ReportDataError",
    "ReportResult",
    "clustering_matters",
    "compare_models",
    "find_report_notebook",
    "fit_final_models",
    "load_table",
    "model_clusters",
    "personalize",
    "prepare_data",
    "random_effect_intervals",
    "report_models",
    "run_report",
    "stage",
    "summarize",
]
