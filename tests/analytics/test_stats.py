"""The fast mean and sample std of metrics.py agree with the exact ``statistics`` ones."""

from __future__ import annotations

import math
import statistics

from hypothesis import given
from hypothesis import strategies as st

from nof0.analytics.metrics import _mean, _std

# dollars, minutes, ratios: no magnitudes so small that their squares underflow
finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False).filter(
    lambda x: x == 0 or abs(x) > 1e-100
)


@given(st.lists(finite, min_size=1, max_size=200))
def test_mean_is_within_an_ulp_of_the_exact_mean(values):
    exact = statistics.mean(values)
    assert math.isclose(_mean(values), exact, rel_tol=1e-15, abs_tol=1e-300)


@given(st.lists(finite, min_size=2, max_size=200))
def test_std_agrees_with_statistics_stdev(values):
    exact = statistics.stdev(values)
    # relative to the spread of the data: a std of ~0 next to values of 1e9 is only known to ~1e-7
    scale = max(abs(v) for v in values)
    assert math.isclose(_std(values), exact, rel_tol=1e-12, abs_tol=scale * 1e-13)


def test_fewer_than_two_samples():
    assert _mean([]) == 0 and _std([]) == 0 and _std([5.0]) == 0
    assert _std([3.0, 3.0, 3.0]) == 0
