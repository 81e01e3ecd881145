"""The optional ``bounds=`` of mean_ci and corrected_t_interval: clip only when asked."""

import numpy as np
import pytest
from scipy import stats

from perslib.evaluation import corrected_t_interval, mean_ci

AUROC = [0.93, 0.99, 1.0]  # three folds near the ceiling


def test_unbounded_intervals_can_pass_one_and_bounds_clip_them():
    v = np.asarray(AUROC)
    half = stats.t.ppf(0.975, 2) * np.sqrt((1 / 3 + 0.5) * v.var(ddof=1))
    mean, lo, hi = corrected_t_interval(v, 0.5)
    assert hi == pytest.approx(v.mean() + half) and hi > 1  # nothing clipped by default
    mean_b, lo_b, hi_b = corrected_t_interval(v, 0.5, bounds=(0, 1))
    assert (mean_b, lo_b, hi_b) == pytest.approx((mean, lo, 1.0))
    _, lo_n, hi_n = mean_ci(v)
    assert hi_n > 1
    assert mean_ci(v, bounds=(0.0, 1.0)) == pytest.approx((v.mean(), lo_n, 1.0))
    # an interval inside the bounds is unchanged
    assert corrected_t_interval([0.5, 0.6, 0.55], 0.5, bounds=(0, 1)) == pytest.approx(
        corrected_t_interval([0.5, 0.6, 0.55], 0.5)
    )


@pytest.mark.parametrize("bounds", [(1, 0), (0.5, 0.5), "ab", (0,), 3])
def test_bad_bounds_are_named(bounds):
    with pytest.raises(ValueError, match="bounds must"):
        corrected_t_interval(AUROC, 0.5, bounds=bounds)
    with pytest.raises(ValueError, match="bounds must"):
        mean_ci(AUROC, bounds=bounds)
