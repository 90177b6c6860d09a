"""funcgrad.debug: print under jit, and the debug_nans check in both passes."""
import warnings

import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp
from funcgrad import grad, jit


def test_debug_print_under_jit(capsys):
    def f(x):
        funcgrad.debug.print("x = {}", x)
        return x * 2

    jf = jit(f)
    jf(np.array([1.0]))
    jf(np.array([2.0]))
    out = capsys.readouterr().out
    assert "x = [1.]" in out and "x = [2.]" in out


# ---- debug_nans ----------------------------------------------------------------------------
def test_debug_nans_forward_and_backward():
    with funcgrad.config.override(debug_nans=True):
        with pytest.raises(FloatingPointError, match=r"'log'.*test_debug.py"):
            fnp.log(np.array([-1.0]))
        # NaN appears only in the backward pass: sqrt'(0) = inf, times a zero cotangent
        with pytest.raises(FloatingPointError, match="reverse rule of primitive .sqrt."):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                grad(lambda x: fnp.sum(fnp.sqrt(x) * 0.0))(np.array([0.0, 1.0]))
        with pytest.raises(FloatingPointError):
            jit(lambda x: fnp.log(x))(np.array([-1.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(fnp.log(np.array([-1.0]))).all()     # off again
