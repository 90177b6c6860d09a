"""The funcgrad.numpy namespace as a whole: plain NumPy calls on tracers dispatch to it,
NumPy functions it does not support raise naming themselves, every differentiable export
of the first families is in a table of cases, and its errors are of the built-in kinds."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

import funcgrad
import funcgrad.errors
import funcgrad.numpy as fnp

from . import (test_contractions, test_creation, test_elementwise, test_indexing,
               test_reductions, test_shape)

# The first families' tables, together.
SPECS = [c for m in (test_elementwise, test_reductions, test_shape, test_contractions,
                     test_indexing, test_creation) for c in m.CASES]
SPEC_BY_NAME = {s.name: s for s in SPECS}
assert len(SPEC_BY_NAME) == len(SPECS), "duplicate spec names"


def test_dispatch_example_from_the_docs():
    x = np.array([0.3, -1.2, 2.0])
    g1 = funcgrad.grad(lambda x: np.sum(np.sin(x) * np.mean(x)))(x)
    g2 = funcgrad.grad(lambda x: fnp.sum(fnp.sin(x) * fnp.mean(x)))(x)
    expected = np.cos(x) * np.mean(x) + np.sum(np.sin(x)) / x.size
    np.testing.assert_allclose(g1, expected, rtol=1e-12)
    np.testing.assert_allclose(g2, expected, rtol=1e-12)


# Functions NumPy has and funcgrad.numpy is unlikely ever to support; the test uses the
# first ones not exported so that it keeps testing something as coverage grows.
# (each takes the array as its only required argument)
_UNSUPPORTED_FUNCTIONS = ["unique", "histogram", "poly", "roots", "polyder", "sort_complex",
                          "nanpercentile"]


_UNSUPPORTED_UFUNCS = ["spacing", "nextafter", "frexp", "ldexp", "gcd", "heaviside"]


def test_unsupported_numpy_function_raises_naming_it():
    name = next(n for n in _UNSUPPORTED_FUNCTIONS if not hasattr(fnp, n))
    with pytest.raises(TypeError, match=rf"numpy\.{name}\b"):
        funcgrad.grad(lambda x: getattr(np, name)(x).sum())(np.array([1.0, 2.0, 2.0]))


def test_unsupported_numpy_ufunc_raises_naming_it():
    name = next(n for n in _UNSUPPORTED_UFUNCS if not hasattr(fnp, n))
    uf = getattr(np, name)
    args = (lambda x: (x,)) if uf.nin == 1 else (lambda x: (x, x))
    with pytest.raises(TypeError, match=rf"numpy\.{name}\b"):
        funcgrad.grad(lambda x: fnp.sum(uf(*args(x))))(np.array([1.0, 2.0]))


def test_table_covers_first_families():
    """Every function exported from the first-family modules is in the table (or is known
    to have no derivative / no array argument to differentiate)."""
    not_differentiable = {
        "all", "any", "argmax", "argmin", "equal", "not_equal", "less", "less_equal",
        "greater", "greater_equal", "logical_and", "logical_or", "logical_xor",
        "logical_not", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "invert",
        "isnan", "isinf", "isfinite", "signbit", "nonzero", "flatnonzero", "argwhere",
        "arange", "zeros", "ones", "empty", "eye", "identity", "tri", "empty_like",
        "shape", "ndim", "size", "broadcast_shapes", "left_shift", "right_shift",
    }
    modules = {f"funcgrad._src.prims.{m}" for m in
               ("elementwise", "reductions", "shape", "indexing", "contractions", "creation")}
    exported = {n for n in fnp.__all__ if getattr(getattr(fnp, n), "__module__", None) in modules}
    tabled = "\n".join(inspect.getsource(s.fn) for s in SPECS)
    missing = sorted(n for n in exported - not_differentiable
                     if not any(n == t or t.startswith(n + "_") or t.startswith(n + "[")
                                for t in SPEC_BY_NAME))
    # Spellings covered inside another entry's function.
    missing = [n for n in missing if f"m.{n}(" not in tabled]
    # NumPy 2's spellings (acos, bitwise_left_shift, ...): the same function objects
    missing = [n for n in missing if not any(
        getattr(fnp, n) is getattr(fnp, m) for m in fnp.__all__ if m != n and m not in missing)]
    assert not missing, f"exported but not in the battery: {missing}"


def test_errors_are_funcgrad_errors_of_the_builtin_kinds():
    x = np.ones((2, 3))
    with pytest.raises(IndexError, match=r"float64\[2,3\].*out of bounds"):
        funcgrad.grad(lambda x: fnp.sum(x[5]))(x)
    with pytest.raises(IndexError, match="too many indices"):
        funcgrad.grad(lambda x: fnp.sum(x[0, 0, 0]))(x)
    with pytest.raises(funcgrad.errors.FuncgradValueError):
        funcgrad.grad(lambda x: fnp.sum(x[5]))(x)
    with pytest.raises(funcgrad.errors.FuncgradTypeError, match="where: give both"):
        fnp.where(x > 0, x)
    with pytest.raises(funcgrad.errors.FuncgradValueError, match="clip: at least one"):
        fnp.clip(x)
    with pytest.raises(funcgrad.errors.FuncgradTypeError, match="clip: out="):
        fnp.clip(x, 0, 1, out=x)
    with pytest.raises(funcgrad.errors.FuncgradValueError, match="max: where= needs initial"):
        fnp.max(x, where=x > 0)
    with pytest.raises(funcgrad.errors.FuncgradValueError, match="min: zero-size"):
        funcgrad.grad(lambda x: fnp.min(x))(np.ones(0))
