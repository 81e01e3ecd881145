"""ARMED: adversarially-regularized mixed-effects deep learning for clustered data.

Nguyen, Treacher & Montillo, IEEE TPAMI 2023. A fixed-effects network is kept blind to
the cluster by an adversary; Bayesian random effects per cluster capture what is
cluster-specific; a z-predictor guesses the cluster of samples from clusters never seen
in training. Design notes: ``docs/design/armed.md``.

Estimators
    ARMEDClassifier, ARMEDRegressor, ARMEDImageClassifier (images, convolutional backbone),
    ARMEDAutoencoder (batch-free latent, batch effects as random scale and bias; tables or images)
Baselines (same ``fit(X, y, groups=g)`` API)
    ClusterInputMLPClassifier/Regressor, DomainAdversarialMLPClassifier/Regressor,
    MixedEffectsMLPClassifier/Regressor, MixedLMRegressor, BayesMixedGLMClassifier;
    on images: perslib.cnn.CNNClassifier, ClusterInputCNNClassifier,
    DomainAdversarialCNNClassifier, MixedEffectsCNNClassifier
Interpretation
    feature_importance, random_slope_spread, intercept_prevalence_correlation;
    on images: saliency_maps, mask_share, fixed_effects_features, adversary_accuracy,
    fresh_adversary_accuracy, site_probe_accuracy, site_information
Building blocks
    ARMEDNet, ARMEDAutoencoderNet, ClusterScaleBias, ClusterAffine, MultiScaleAdversary, RandomEffects,
    GradientReversal, grad_reverse,
    adversary_loss, generator_loss, gaussian_nll, linear_mixed_refit, pool_memberships
"""

from perslib.armed._autoencoder import ARMEDAutoencoder
from perslib.armed._autoencoder_net import ARMEDAutoencoderNet, ClusterAffine, ClusterScaleBias
from perslib.armed._backbones import MultiScaleAdversary
from perslib.armed._baselines import (
    BayesMixedGLMClassifier,
    ClusterInputMLPClassifier,
    ClusterInputMLPRegressor,
    DomainAdversarialMLPClassifier,
    DomainAdversarialMLPRegressor,
    MixedEffectsMLPClassifier,
    MixedEffectsMLPRegressor,
    MixedLMRegressor,
)
from perslib.armed._estimators import ARMEDClassifier, ARMEDRegressor
from perslib.armed._gpboost import GPBoostClassifier, GPBoostRegressor
from perslib.armed._image import ARMEDImageClassifier
from perslib.armed._image_baselines import (
    ClusterInputCNNClassifier,
    DomainAdversarialCNNClassifier,
    MixedEffectsCNNClassifier,
)
from perslib.armed._interpret import feature_importance, intercept_prevalence_correlation, random_slope_spread
from perslib.armed._layers import GradientReversal, RandomEffects, grad_reverse
from perslib.armed._losses import adversary_loss, gaussian_nll, generator_loss
from perslib.armed._network import ARMEDNet
from perslib.armed._refit import linear_mixed_refit
from perslib.armed._saliency import mask_share, saliency_maps
from perslib.armed._site_information import (
    adversary_accuracy,
    fixed_effects_features,
    fresh_adversary_accuracy,
    site_information,
    site_probe_accuracy,
)
from perslib.armed._unseen import pool_memberships

__all__ = [
    "ARMEDAutoencoder",
    "ARMEDAutoencoderNet",
    "ARMEDClassifier",
    "ARMEDImageClassifier",
    "ARMEDNet",
    "ARMEDRegressor",
    "BayesMixedGLMClassifier",
    "ClusterAffine",
    "ClusterInputCNNClassifier",
    "ClusterInputMLPClassifier",
    "ClusterInputMLPRegressor",
    "ClusterScaleBias",
    "DomainAdversarialCNNClassifier",
    "DomainAdversarialMLPClassifier",
    "DomainAdversarialMLPRegressor",
    "GPBoostClassifier",
    "GPBoostRegressor",
    "GradientReversal",
    "MixedEffectsCNNClassifier",
    "MixedEffectsMLPClassifier",
    "MixedEffectsMLPRegressor",
    "MixedLMRegressor",
    "MultiScaleAdversary",
    "RandomEffects",
    "adversary_accuracy",
    "adversary_loss",
    "feature_importance",
    "fixed_effects_features",
    "fresh_adversary_accuracy",
    "gaussian_nll",
    "generator_loss",
    "grad_reverse",
    "intercept_prevalence_correlation",
    "linear_mixed_refit",
    "mask_share",
    "pool_memberships",
    "random_slope_spread",
    "saliency_maps",
    "site_information",
    "site_probe_accuracy",
]
