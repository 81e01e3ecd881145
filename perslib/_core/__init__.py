"""What every part of perslib shares: run-time switches, validation, the training loop and the
estimator contract. Nothing here knows about a method family."""

from perslib._core.estimator import BinaryClassifierMixin, PerslibEstimator, Tags, standardize_target
from perslib._core.persistence import load, save
from perslib._core.runtime import progress_enabled, resolve_device, seeded_torch, set_seed, torch_threads
from perslib._core.training import (
    Callback,
    TrainConfig,
    iterate_minibatches,
    split_validation,
    train_loop,
    train_module,
)
from perslib._core.validation import (
    Instance,
    Interval,
    InvalidParameterError,
    Options,
    check_array,
    check_binary_labels,
    check_consistent_length,
    check_groups,
    check_n_columns,
    check_random_state,
    sorted_unique,
    validate_params,
)

__all__ = [
    "BinaryClassifierMixin",
    "Callback",
    "Instance",
    "Interval",
    "InvalidParameterError",
    "Options",
    "PerslibEstimator",
    "Tags",
    "TrainConfig",
    "check_array",
    "check_binary_labels",
    "check_consistent_length",
    "check_groups",
    "check_n_columns",
    "check_random_state",
    "iterate_minibatches",
    "load",
    "progress_enabled",
    "resolve_device",
    "save",
    "seeded_torch",
    "set_seed",
    "sorted_unique",
    "split_validation",
    "standardize_target",
    "torch_threads",
    "train_loop",
    "train_module",
    "validate_params",
]
