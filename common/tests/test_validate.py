"""omicsrun.validate.all_finite against numpy's element-wise answer."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from omicsrun.validate import all_finite


@settings(max_examples=200, deadline=None)
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.float32, np.float64, np.int64, np.float16]),
        shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6),
        elements={"allow_nan": True, "allow_infinity": True},
    )
)
def test_all_finite_equals_elementwise_check(arr):
    assert all_finite(arr) == bool(np.isfinite(arr).all())


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (np.full(4, 1e308), True),  # finite entries whose float64 sum overflows
        (np.array([1e308, -np.inf]), False),
        (np.array([np.inf, -np.inf], dtype=np.float32), False),  # sum is NaN
        (np.zeros((0, 3)), True),
    ],
)
def test_all_finite_edge_cases(values, expected):
    assert all_finite(values) is expected
