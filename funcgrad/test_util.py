"""Gradient checking for your own tests: ``check_grads``, ``check_jvp``, ``check_vjp``.

``check_grads(f, args, order)`` checks forward mode against central finite differences and
reverse mode against forward mode (the transposition identity ``<ct, J t> == <J^T ct, t>``),
for every argument, recursively up to ``order``: the JVP is checked in turn as a function
of the primals and tangents, the VJP as a function of the primals and cotangent. It
raises ``AssertionError`` with the numbers when a rule is wrong.

A property test over random shapes with hypothesis::

    import numpy as np
    from hypothesis import given, strategies as st
    import funcgrad.numpy as fnp
    from funcgrad.test_util import check_grads

    @given(st.integers(1, 5), st.integers(0, 2**32 - 1))
    def test_my_function(n, seed):
        x = np.random.default_rng(seed).normal(size=(n,))
        check_grads(lambda x: fnp.sum(fnp.tanh(x) ** 2), (x,), order=2)
"""
from __future__ import annotations

import numpy as np

from ._src.api import jvp, vjp
from ._src.backend import float0
from ._src.errors import FuncgradTypeError
from ._src.tree_util import tree_flatten, tree_map, tree_unflatten

# Defaults per dtype: finite-difference step and tolerance.
_EPS = {np.dtype(np.float16): 1e-1, np.dtype(np.float32): 3e-3, np.dtype(np.float64): 1e-5,
        np.dtype(np.complex64): 3e-3, np.dtype(np.complex128): 1e-5}
_TOL = {np.dtype(np.float16): 1e-1, np.dtype(np.float32): 2e-2, np.dtype(np.float64): 1e-5,
        np.dtype(np.complex64): 2e-2, np.dtype(np.complex128): 1e-5}


def _to_host(x):
    x = getattr(x, "get", lambda: x)() if not isinstance(x, np.ndarray) else x
    return np.asarray(x)


def _inexact_leaves(tree):
    return [x for x in tree_flatten(tree)[0] if np.asarray(_to_host(x)).dtype.kind in "fc"]


def _default(table, trees, given):
    if given is not None:
        return given
    dts = [np.asarray(_to_host(x)).dtype for t in trees for x in _inexact_leaves(t)]
    return max((table.get(d, table[np.dtype(np.float64)]) for d in dts),
               default=table[np.dtype(np.float64)])


def _rand_like(rng, x):
    x = np.asarray(_to_host(x))
    if x.dtype.kind == "c":
        v = rng.standard_normal(x.shape) + 1j * rng.standard_normal(x.shape)
    elif x.dtype.kind == "f":
        v = rng.standard_normal(x.shape)
    else:
        return np.zeros(x.shape, float0)
    return np.asarray(v, dtype=x.dtype)


def _vdot(a, b):
    """Real inner product sum(a * b) (no conjugation), summed over the leaves of two trees."""
    fa, fb = tree_flatten(a)[0], tree_flatten(b)[0]
    total = 0.0
    for x, y in zip(fa, fb):
        x, y = np.asarray(_to_host(x)), np.asarray(_to_host(y))
        if x.dtype.kind not in "fc" or y.dtype.kind not in "fc":
            continue
        total = total + np.sum(x.astype(np.complex128) * y.astype(np.complex128))
    return total


def _check_close(what, actual, expected, atol, rtol):
    fa, ta = tree_flatten(actual)
    fe, te = tree_flatten(expected)
    if ta != te:
        raise AssertionError(f"{what}: structures differ: {ta} vs {te}")
    for i, (a, e) in enumerate(zip(fa, fe)):
        a = np.asarray(_to_host(a))
        e = np.asarray(_to_host(e))
        if a.dtype.kind not in "fc" and e.dtype.kind not in "fc":
            continue
        if a.shape != e.shape:
            raise AssertionError(f"{what}: leaf {i}: shapes differ: {a.shape} vs {e.shape}")
        a64 = a.astype(np.complex128)
        e64 = e.astype(np.complex128)
        if not np.allclose(a64, e64, atol=atol, rtol=rtol, equal_nan=True):
            err = np.abs(a64 - e64)
            k = tuple(int(j) for j in np.unravel_index(np.argmax(err), err.shape)) if err.size else ()
            raise AssertionError(
                f"{what}: leaf {i} differs (atol={atol}, rtol={rtol}); max abs error "
                f"{err.max() if err.size else 0:.3e} at index {k}: got {_number(a[k])} "
                f"expected {_number(e[k])}\nactual:\n{a}\nexpected:\n{e}")


def _number(v):
    """A value as people write it: real numbers without ``+0j``, no ``np.float64(...)``."""
    v = np.asarray(v)
    return repr(complex(v)) if v.dtype.kind == "c" else repr(float(v))


def _axpy(a, x, y):
    return tree_map(lambda xi, yi: (yi + a * xi).astype(np.asarray(_to_host(yi)).dtype)
                    if np.asarray(_to_host(yi)).dtype.kind in "fc" else yi, x, y)


def numerical_jvp(f, primals, tangents, eps):
    """Central finite difference (f(x + eps t) - f(x - eps t)) / (2 eps)."""
    plus = f(*_axpy(eps, tangents, primals))
    minus = f(*_axpy(-eps, tangents, primals))
    return tree_map(lambda p, m: (np.asarray(_to_host(p)).astype(np.result_type(p, np.float64))
                                  - np.asarray(_to_host(m))) / (2 * eps)
                    if np.asarray(_to_host(p)).dtype.kind in "fc" else p, plus, minus)


def check_jvp(f, primals, tangents=None, *, atol=None, rtol=None, eps=None, seed=0):
    """Check ``jvp(f, primals, tangents)`` against central finite differences."""
    primals = tuple(primals)
    rng = np.random.default_rng(seed)
    if tangents is None:
        tangents = tree_map(lambda x: _rand_like(rng, x), primals)
    atol = _default(_TOL, [primals], atol)
    rtol = _default(_TOL, [primals], rtol)
    eps = _default(_EPS, [primals], eps)
    out, t_out = jvp(f, primals, tangents)
    t_num = numerical_jvp(f, primals, tangents, eps)
    _check_close(f"jvp of {getattr(f, '__name__', f)} vs finite differences", t_out, t_num,
                 atol, rtol)


def check_vjp(f, primals, *, atol=None, rtol=None, seed=0):
    """Check ``vjp`` against ``jvp`` by the transposition identity."""
    primals = tuple(primals)
    rng = np.random.default_rng(seed)
    tangents = tree_map(lambda x: _rand_like(rng, x), primals)
    try:
        out, t_out = jvp(f, primals, tangents)
    except FuncgradTypeError as e:
        if "custom_vjp" not in str(e):
            raise
        # A function with only a reverse rule: compare with finite differences instead.
        out = f(*primals)
        t_out = numerical_jvp(f, primals, tangents, _default(_EPS, [primals], None))
    out2, f_vjp = vjp(f, *primals)
    ct = tree_map(lambda x: _rand_like(rng, x), out2)
    ct_in = f_vjp(ct)
    # Real parts: for maps between real and complex spaces the transpose (JAX's
    # convention, no conjugation) satisfies Re<ct, J t> = <J^T ct, t>.
    lhs = np.real(_vdot(ct, t_out))
    rhs = np.real(_vdot(ct_in, tangents))
    atol = _default(_TOL, [primals], atol)
    rtol = _default(_TOL, [primals], rtol)
    scale = max(1.0, abs(lhs), abs(rhs))
    if not np.isclose(lhs, rhs, atol=atol * scale, rtol=rtol):
        raise AssertionError(
            f"vjp of {getattr(f, '__name__', f)} disagrees with jvp: <ct, J t> = {lhs} but "
            f"<J^T ct, t> = {rhs} (atol={atol}, rtol={rtol})")
    _check_close(f"vjp of {getattr(f, '__name__', f)}: primal output", out2, out, atol, rtol)


def _inexact_slots(tree):
    """``(leaves, treedef, indices of the float/complex leaves)`` of ``tree``."""
    leaves, tdef = tree_flatten(tree)
    idx = [i for i, x in enumerate(leaves) if np.asarray(_to_host(x)).dtype.kind in "fc"]
    return leaves, tdef, idx


def _refill(leaves, tdef, idx, values):
    leaves = list(leaves)
    for i, v in zip(idx, values):
        leaves[i] = v
    return tree_unflatten(tdef, leaves)


def check_grads(f, args, order, modes=("fwd", "rev"), atol=None, rtol=None, eps=None):
    """Check the derivatives of ``f`` at ``args`` up to ``order``.

    ``modes`` chooses forward (``"fwd"``: jvp against finite differences) and/or reverse
    (``"rev"``: vjp against jvp by transposition). For ``order > 1`` the derivative
    functions themselves are checked, recursively, as functions of all their inputs:
    the JVP as a function of ``(primals, tangents)`` and the VJP as a function of
    ``(primals, cotangent)`` (as autograd's checker does), so a wrong rule reached only
    through the derivative of a JVP in its tangent, or of a VJP in its cotangent, is
    caught too. (Integer inputs, whose tangents are float0, stay fixed.) Tolerances
    default per dtype (float64: 1e-5; float32: 2e-2). Raises ``AssertionError`` with the
    mismatching numbers.

    Example:
        >>> import numpy as np, funcgrad.numpy as fnp
        >>> from funcgrad.test_util import check_grads
        >>> check_grads(fnp.sin, (np.array([0.1, 0.7]),), order=2)
    """
    args = tuple(args)
    rng = np.random.default_rng(0)

    def _check(f, args, order):
        n = len(args)
        if "fwd" in modes:
            check_jvp(f, args, atol=atol, rtol=rtol, eps=eps)
            if order > 1:
                t_leaves, t_def, t_idx = _inexact_slots(
                    tree_map(lambda x: _rand_like(rng, x), args))

                def f_jvp(*a):
                    return jvp(f, a[:n], _refill(t_leaves, t_def, t_idx, a[n:]))[1]
                _check(f_jvp, args + tuple(t_leaves[i] for i in t_idx), order - 1)
        if "rev" in modes:
            check_vjp(f, args, atol=atol, rtol=rtol)
            if order > 1:
                out = f(*args)
                c_leaves, c_def, c_idx = _inexact_slots(
                    tree_map(lambda x: _rand_like(rng, x), out))

                def f_vjp(*a):
                    return vjp(f, *a[:n])[1](_refill(c_leaves, c_def, c_idx, a[n:]))
                _check(f_vjp, args + tuple(c_leaves[i] for i in c_idx), order - 1)

    _check(f, args, order)


__all__ = ["check_grads", "check_jvp", "check_vjp", "numerical_jvp"]
