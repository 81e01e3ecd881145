"""Personalized regression: one regression model per sample.

Lengerich, Aragam & Xing, ISMB 2018 (full rank) and NeurIPS 2019 (low rank,
θ_i = θ_pop + Qᵀz_i). Covariates say which samples should have similar models, through
distance matching with a learned covariate metric; every model starts at the population
estimate and relaxes. Design notes: ``docs/design/personalized.md``.

Estimators
    PersonalizedRegressor, PersonalizedClassifier
Baselines (same ``fit(X, y, covariates=U)`` API)
    PopulationRegressor/Classifier, MixtureRegressor, VaryingCoefficientRegressor/Classifier,
    KNNLocalRegressor
Choosing settings without the truth
    select_by_held_out_loss (any setting, by the held-out samples' loss; rank="auto" does it for the rank)
Uncertainty
    bootstrap_coef (percentile bootstrap intervals of every sample's θ) -> BootstrapCoef
Building blocks
    PersonalizedModule, Objective, CovariateSpace, pair_deltas, distance_matching_loss,
    knn_table, random_partners, PartnerTable, Snapshots
"""

from perslib.personalized._baselines import (
    KNNLocalRegressor,
    MixtureRegressor,
    PopulationClassifier,
    PopulationRegressor,
    VaryingCoefficientClassifier,
    VaryingCoefficientRegressor,
)
from perslib.personalized._bootstrap import BootstrapCoef, bootstrap_coef
from perslib.personalized._distances import (
    CovariateSpace,
    distance_matching_loss,
    mean_abs_pairwise_difference,
    pair_deltas,
)
from perslib.personalized._estimators import PersonalizedClassifier, PersonalizedRegressor
from perslib.personalized._module import Objective, PersonalizedModule
from perslib.personalized._partners import PartnerTable, Snapshots, knn_table, random_partners
from perslib.personalized._select import select_by_held_out_loss

__all__ = [
    "BootstrapCoef",
    "CovariateSpace",
    "KNNLocalRegressor",
    "MixtureRegressor",
    "Objective",
    "PartnerTable",
    "PersonalizedClassifier",
    "PersonalizedModule",
    "PersonalizedRegressor",
    "PopulationClassifier",
    "PopulationRegressor",
    "Snapshots",
    "VaryingCoefficientClassifier",
    "VaryingCoefficientRegressor",
    "bootstrap_coef",
    "distance_matching_loss",
    "knn_table",
    "mean_abs_pairwise_difference",
    "pair_deltas",
    "random_partners",
    "select_by_held_out_loss",
]
