"""Seeded simulators with their ground truth, and real clustered datasets.

Simulators (:mod:`perslib.data.simulate`, :mod:`perslib.data.images`)
    make_personalized_regression  per-sample coefficients on curved arcs, one per latent process
    make_spirals                  ARMED's clustered two-spiral problem with cluster effects
    make_cluster_images           bundled digits split into sites with per-site batch effects
    site_marker_masks             where make_cluster_images' site markers are

Real data (:mod:`perslib.data.real`; no download, see ``data/README.md``)
    load_sleepstudy, load_math_achievement, load_grunfeld, load_contraception,
    load_guatemala_immunization, load_exam, load_dataset, ClusteredDataset, dataset_fingerprint
"""

from perslib.data.images import make_cluster_images, site_marker_masks
from perslib.data.real import (
    DATASET_LOADERS,
    ClusteredDataset,
    dataset_fingerprint,
    load_contraception,
    load_dataset,
    load_exam,
    load_grunfeld,
    load_guatemala_immunization,
    load_math_achievement,
    load_sleepstudy,
)
from perslib.data.simulate import make_personalized_regression, make_spirals

__all__ = [
    "make_personalized_regression",
    "make_spirals",
    "make_cluster_images",
    "site_marker_masks",
    "ClusteredDataset",
    "load_sleepstudy",
    "load_math_achievement",
    "load_grunfeld",
    "load_contraception",
    "load_guatemala_immunization",
    "load_exam",
    "load_dataset",
    "DATASET_LOADERS",
    "dataset_fingerprint",
]
