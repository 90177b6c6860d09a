"""funcgrad.scipy.special against SciPy: limits and the functions added below."""
import numpy as np
import pytest

import funcgrad
import funcgrad.scipy.special as fsp
from funcgrad.test_util import check_grads

ss = pytest.importorskip("scipy.special")


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4])
def test_polygamma_limits_and_poles(n):
    x = np.array([np.inf, -np.inf, 2.5, -1.5, -2.0, 0.0, -0.0])
    got, want = fsp.polygamma(n, x), ss.polygamma(n, x)
    np.testing.assert_allclose(got, want, rtol=1e-10)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
