"""funcgrad.scipy.signal.convolve/correlate against SciPy (issue 17, item 12): n-d, every
mode, values and second-order derivatives in both inputs (table harness), float32 kept."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import strategies as st

import funcgrad.scipy.signal as fs
from funcgrad.errors import FuncgradValueError

from . import table
from .table import Case

ssig = pytest.importorskip("scipy.signal")


def _draw(valid):
    def draw(data):
        nd = data.draw(st.integers(1, 3))
        s1 = tuple(data.draw(st.integers(1, 5)) for _ in range(nd))
        if valid:       # one at least as large as the other on every axis
            s2 = tuple(data.draw(st.integers(1, n)) for n in s1)
            if data.draw(st.booleans()):
                s1, s2 = s2, s1
        else:
            s2 = tuple(data.draw(st.integers(1, 4)) for _ in range(nd))
        rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16)))
        return [rng.standard_normal(s1), rng.standard_normal(s2)], {}
    return draw


def _lib(m):
    return ssig if m is np else fs


CASES = [Case(f"{f}_{mode}", _draw(mode == "valid"),
              (lambda f, mode: lambda m, a, b: getattr(_lib(m), f)(
                  a, b, mode=mode, **({"method": "direct"} if m is np else {})))(f, mode),
              dispatch=False, mixed=True, rtol=1e-11, atol=1e-11)
         for f in ("convolve", "correlate") for mode in ("full", "same", "valid")]

(test_values_match_scipy, test_grads, test_float32, test_mixed_precision,
 _) = table.table_tests(CASES, values=4, grads=3, float32=1, mixed=1, dispatch=0)
test_jit_matches = table.jit_table_test(CASES)


def test_errors_name_the_function():
    with pytest.raises(FuncgradValueError, match="convolve.*same number of dimensions"):
        fs.convolve(np.ones(3), np.ones((2, 2)))
    with pytest.raises(FuncgradValueError, match="convolve: for mode='valid'"):
        fs.convolve(np.ones((3, 1)), np.ones((1, 3)), mode="valid")
    with pytest.raises(FuncgradValueError, match="mode must be"):
        fs.convolve(np.ones(3), np.ones(3), mode="wrap")
