"""Clustered images: scikit-learn's bundled 8x8 digits split into "sites".

:func:`make_cluster_images` gives each site its own batch effect (gain, offset,
blur/sharpening, shift, noise), optionally a site-label confounding and a site marker (a
burned-in mark whose position identifies the site), the way ARMED's synthetic image data
do. :func:`site_marker_masks` says where each image's marker is. No download:
``sklearn.datasets.load_digits`` ships with scikit-learn (CC BY 4.0). All randomness comes
from ``random_state``.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from scipy import ndimage

from perslib._core.validation import check_random_state
from perslib.data.simulate import _check_float, _check_int

__all__ = ["make_cluster_images", "site_marker_masks"]


# --------------------------------------------------------------------- cluster images
@functools.lru_cache(maxsize=1)
def _digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images / 16.0, bunch.target.astype(np.int64)


def _site_positive_counts(sizes, n_positive, target_rate):
    """Integer positives per site: close to ``sizes * (target_rate + shift)``, summing to
    ``n_positive``, with at least one positive and one negative in every site."""
    lo, hi = np.ones_like(sizes), sizes - 1

    def total(shift):
        return np.clip(sizes * (target_rate + shift), lo, hi)

    left, right = -1.0, 1.0
    for _ in range(100):  # bisection on the common shift of the target rates
        mid = 0.5 * (left + right)
        left, right = (mid, right) if total(mid).sum() < n_positive else (left, mid)
    exact = total(0.5 * (left + right))
    exact *= n_positive / exact.sum()  # remove the last bisection error
    counts = np.clip(np.floor(exact), lo, hi).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")  # largest remainders first
    while counts.sum() != n_positive:
        step = 1 if counts.sum() < n_positive else -1
        room = counts < hi if step > 0 else counts > lo
        s = order[room[order]][0] if step > 0 else order[room[order]][-1]
        counts[s] += step
    return counts


def make_cluster_images(
    n_sites=6,
    *,
    image_size=16,
    n_per_site=None,
    confounding=0.0,
    effect_strength=1.0,
    noise=0.0,
    site_marker=False,
    random_state=None,
):
    """Digit images split into sites, each with its own scanner-like batch effect.

    The images are scikit-learn's bundled ``load_digits`` (1,797 8x8 handwritten
    digits, the UCI test set; CC BY 4.0; nothing is downloaded), rescaled to [0, 1]
    (pixel / 16) and upsampled to ``image_size x image_size`` with linear
    interpolation (``scipy.ndimage.zoom``, ``order=1``). The binary label is
    ``digit >= 5`` (1) versus ``digit < 5`` (0); about 49.9% are positive.

    Site assignment: every site gets a target positive rate
    ``0.5 + 0.4 * confounding * z_s`` with ``z_s`` evenly spaced in [-1, 1] and
    randomly permuted over sites; the number of positives per site follows these
    targets (shifted so that the counts add up to the positives available), each site
    keeping at least one image of each class. ``confounding=0`` gives every site the
    same prevalence (a stratified random partition); ``confounding=1`` spreads target
    rates from 0.1 to 0.9.

    Site effects, drawn per site and multiplied by ``effect_strength = e``, are applied
    in this order: (1) blur or sharpening of signed strength ``b ~ e * N(0, 0.75^2)``
    (in pixels at 16x16, scaled by ``image_size / 16``): ``b > 0`` is a Gaussian blur
    with sigma ``b``, ``b < 0`` an unsharp mask ``x + |b| (x - G_s x)`` with
    ``s = image_size / 16``; (2) an integer shift ``round(e * U(-2, 2) * image_size /
    16)`` pixels per axis with zero fill; (3) gain and offset ``x <- g x + o`` with
    ``g = exp(e * N(0, 0.25^2))`` and ``o ~ e * N(0, 0.1^2)``; (4) additive Gaussian
    noise with sd ``e * U(0.02, 0.1) + noise``; finally the images are clipped to [0, 1].
    ``effect_strength=0`` (and ``noise=0``) leaves the digits untouched, so all sites look
    alike.

    ``noise`` adds pixel noise of the same standard deviation in every site: it makes the
    digits harder to read without telling the sites apart (a harder task). With
    ``site_marker=True`` every image of site ``s`` gets a bright square (value 1, side
    ``max(1, round(image_size / 8))`` pixels) at slot ``s`` of a ring of slots along the
    image border (clockwise from the top-left corner, two marker sides apart), drawn after
    the gain and offset and before the noise: a burned-in annotation that identifies the
    site exactly and says nothing about the digit — a site artefact. The slots do not
    depend on the random draws, so the images are otherwise those without the marker.

    Parameters
    ----------
    n_sites : int, default=6
        Number of sites (>= 2).
    image_size : int, default=16
        Side of the output images in pixels (>= 8).
    n_per_site : int or None, default=None
        Images per site (>= 2). None uses every image exactly once (near-equal sites);
        otherwise ``n_sites * n_per_site`` distinct images (<= 1,797) are drawn without
        replacement, stratified by label.
    confounding : float in [0, 1], default=0.0
        Strength of the dependence of site on label (see above).
    effect_strength : float, default=1.0
        Multiplier of every site effect (>= 0).
    noise : float, default=0.0
        Extra pixel noise standard deviation, the same in every site (>= 0).
    site_marker : bool, default=False
        Burn a marker identifying the site into every image (see above).
    random_state : None, int or numpy.random.Generator, default=None
        Seed of every random draw. The site assignment is drawn before (and
        independently of) the effects, so a seed gives the same images and sites for
        every ``effect_strength``.

    Returns
    -------
    images : ndarray of shape (N, 1, image_size, image_size), float32
        Images in [0, 1], grouped by site (site 0 first), shuffled within a site.
    y : ndarray of shape (N,), int64
        1 for digits 5-9, 0 for digits 0-4.
    sites : ndarray of shape (N,), int64
        Site ids ``0 .. n_sites - 1``.
    effects : pandas.DataFrame indexed by ``site``
        What was applied: ``gain``, ``offset``, ``blur`` (signed, as above),
        ``shift_x`` and ``shift_y`` (pixels, columns and rows), ``noise_sd``, plus the
        realised ``positive_rate`` and ``n_samples`` of each site; with ``site_marker``
        also ``marker_row``, ``marker_col`` (top-left pixel) and ``marker_size``.
    """
    n_sites = _check_int(n_sites, "n_sites", 2)
    image_size = _check_int(image_size, "image_size", 8)
    digits, target = _digits()
    n_total = len(target)
    if n_per_site is None:
        if n_sites > n_total // 2:
            raise ValueError(f"n_sites must be <= {n_total // 2} when n_per_site is None, got {n_sites}")
    else:
        n_per_site = _check_int(n_per_site, "n_per_site", 2)
        if n_sites * n_per_site > n_total:
            raise ValueError(
                f"n_per_site must be <= {n_total // n_sites} for n_sites={n_sites} "
                f"(only {n_total} digit images to draw without replacement), got {n_per_site}"
            )
    confounding = _check_float(confounding, "confounding", 0.0, 1.0)
    effect_strength = _check_float(effect_strength, "effect_strength", 0.0)
    noise = _check_float(noise, "noise", 0.0)
    markers = _marker_slots(n_sites, image_size) if site_marker else None
    rng = check_random_state(random_state)
    label = (target >= 5).astype(np.int64)

    # --- choose the pool and the site sizes
    pos_idx, neg_idx = rng.permutation(np.flatnonzero(label == 1)), rng.permutation(np.flatnonzero(label == 0))
    if n_per_site is None:
        n_used = n_total
        sizes = np.full(n_sites, n_total // n_sites, dtype=np.int64)
        sizes[rng.permutation(n_sites)[: n_total % n_sites]] += 1
    else:
        n_used = n_sites * n_per_site
        sizes = np.full(n_sites, n_per_site, dtype=np.int64)
    n_pos = int(np.clip(round(n_used * len(pos_idx) / n_total), n_sites, n_used - n_sites))
    pos_idx, neg_idx = pos_idx[:n_pos], neg_idx[: n_used - n_pos]

    # --- label-dependent split into sites
    z = rng.permutation(np.linspace(-1.0, 1.0, n_sites))
    pos_counts = _site_positive_counts(sizes, n_pos, 0.5 + 0.4 * confounding * z)
    pos_cuts, neg_cuts = np.cumsum(pos_counts)[:-1], np.cumsum(sizes - pos_counts)[:-1]
    site_idx = [
        rng.permutation(np.concatenate([p, q]))
        for p, q in zip(np.split(pos_idx, pos_cuts), np.split(neg_idx, neg_cuts))
    ]

    # --- per-site effects (always drawn, then scaled, so the assignment above is shared)
    scale = image_size / 16.0
    e = effect_strength
    gain = np.exp(e * rng.normal(0.0, 0.25, n_sites))
    offset = e * rng.normal(0.0, 0.1, n_sites)
    blur = e * rng.normal(0.0, 0.75, n_sites) * scale
    shifts = np.rint(e * rng.uniform(-2.0, 2.0, (n_sites, 2)) * scale).astype(np.int64)
    noise_sd = e * rng.uniform(0.02, 0.1, n_sites) + noise

    zoom = image_size / 8.0
    out, ys, ss = [], [], []
    for s, idx in enumerate(site_idx):
        img = ndimage.zoom(digits[idx], (1.0, zoom, zoom), order=1)
        if blur[s] > 0:
            img = ndimage.gaussian_filter(img, sigma=(0.0, blur[s], blur[s]))
        elif blur[s] < 0:
            img = img + (-blur[s]) * (img - ndimage.gaussian_filter(img, sigma=(0.0, scale, scale)))
        if shifts[s].any():
            img = ndimage.shift(img, (0, shifts[s, 1], shifts[s, 0]), order=0, mode="constant", cval=0.0)
        img = gain[s] * img + offset[s]
        if markers is not None:
            r, c, m = markers[s]
            img[:, r : r + m, c : c + m] = 1.0
        if noise_sd[s] > 0:
            img = img + rng.normal(0.0, noise_sd[s], img.shape)
        out.append(np.clip(img, 0.0, 1.0))
        ys.append(label[idx])
        ss.append(np.full(len(idx), s, dtype=np.int64))
    images = np.concatenate(out)[:, None, :, :].astype(np.float32)
    y, sites = np.concatenate(ys), np.concatenate(ss)
    effects = pd.DataFrame(
        {
            "gain": gain,
            "offset": offset,
            "blur": blur,
            "shift_x": shifts[:, 0],
            "shift_y": shifts[:, 1],
            "noise_sd": noise_sd,
            "positive_rate": np.array([label[idx].mean() for idx in site_idx]),
            "n_samples": np.array([len(idx) for idx in site_idx], dtype=np.int64),
        },
        index=pd.RangeIndex(n_sites, name="site"),
    )
    if markers is not None:
        effects["marker_row"], effects["marker_col"], effects["marker_size"] = np.asarray(markers, dtype=np.int64).T
    return images, y, sites, effects


def _marker_slots(n_sites: int, image_size: int) -> list[tuple[int, int, int]]:
    """``(row, col, side)`` of each site's marker: slots two sides apart around the border, clockwise."""
    m = max(1, round(image_size / 8))
    last = image_size - m
    steps = range(0, last + 1, 2 * m)
    ring = [(0, c) for c in steps]  # top edge, left to right
    ring += [(r, last) for r in steps if r > 0]  # right edge, downwards
    ring += [(last, c) for c in reversed(steps) if c < last]  # bottom edge, right to left
    ring += [(r, 0) for r in reversed(steps) if 0 < r < last]  # left edge, upwards
    ring = list(dict.fromkeys(ring))
    if n_sites > len(ring):
        raise ValueError(
            f"site_marker: images of {image_size} pixels have {len(ring)} marker slots, fewer than "
            f"n_sites={n_sites}; use larger images"
        )
    return [(r, c, m) for r, c in ring[:n_sites]]


def site_marker_masks(sites, effects, image_size: int) -> np.ndarray:
    """Where each image's site marker is: boolean masks of shape (n, image_size, image_size).

    Parameters
    ----------
    sites : array-like of shape (n,)
        Site id of each image (the ``sites`` of :func:`make_cluster_images`).
    effects : pandas.DataFrame
        The ``effects`` of :func:`make_cluster_images` called with ``site_marker=True``.
    image_size : int

    Returns
    -------
    ndarray of bool, shape (n, image_size, image_size)
    """
    if not {"marker_row", "marker_col", "marker_size"} <= set(effects.columns):
        raise ValueError("effects has no marker columns: make the images with site_marker=True")
    s = np.asarray(sites)
    masks = np.zeros((len(s), image_size, image_size), dtype=bool)
    for site, row in effects.iterrows():
        r, c, m = int(row["marker_row"]), int(row["marker_col"]), int(row["marker_size"])
        masks[s == site, r : r + m, c : c + m] = True
    return masks
