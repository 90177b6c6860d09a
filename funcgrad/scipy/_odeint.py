"""odeint: adaptive Dormand-Prince (RK45) integration with an adjoint reverse derivative.

The forward pass steps each interval ``[t[i-1], t[i]]`` with an embedded 5(4) pair,
shortening the last step of the interval so it lands on ``t[i]`` exactly (no dense-output
interpolation needed). The reverse pass does not differentiate through the steps: it
integrates the adjoint system backwards in time, interval by interval, carrying the state
``y`` (re-integrated backwards), its adjoint ``a = dL/dy``, and the running integrals that
become ``dL/dt[0]`` and ``dL/dargs``:

    a'      = -a . df/dy
    d(arg)  =  integral of a . df/dargs dt
    dL/dt_i =  g_i . f(y_i, t_i)  (i >= 1),   dL/dt_0 = -a(t_0) . f(y_0, t_0)
"""
from __future__ import annotations

import numpy as np

from .. import lax
from .. import numpy as fnp
from .._src.api import vjp, vmap
from .._src.core import Tracer
from .._src.custom import custom_vjp
from .._src.errors import FuncgradTypeError, FuncgradValueError
from ..flatten_util import ravel_pytree
from ..tree_util import tree_leaves

# Dormand-Prince 5(4): nodes, stage coefficients, 5th- and 4th-order weights
_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0)
_A = ((),
      (1 / 5,),
      (3 / 40, 9 / 40),
      (44 / 45, -56 / 15, 32 / 9),
      (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
      (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656))
_B5 = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
_B4 = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)
_SAFETY, _MIN_FACTOR, _MAX_FACTOR = 0.9, 0.2, 10.0


def _combine(y, h, weights, ks):
    acc = None
    for w, k in zip(weights, ks):
        if w != 0.0:
            acc = w * k if acc is None else acc + w * k
    return y if acc is None else y + h * acc


def _dopri_step(f, y, fy, t, h):
    """One step of size ``h``: the 5th-order solution, f there (first-same-as-last), and
    the difference to the embedded 4th-order solution (the local error estimate)."""
    ks = [fy]
    for i in range(1, 6):
        ks.append(f(_combine(y, h, _A[i], ks), t + _C[i] * h))
    y_new = _combine(y, h, _B5, ks)
    f_new = f(y_new, t + h)
    ks.append(f_new)
    err = h * sum((b5 - b4) * k for b5, b4, k in zip(_B5, _B4, ks) if b5 != b4)
    return y_new, f_new, err


def _rms(v):
    return fnp.sqrt(fnp.mean(v * v))


def _initial_step(f, y0, f0, t0, rtol, atol):
    """Hairer, Norsett & Wanner's starting step (Solving ODEs I, II.4) for order 5."""
    scale = atol + rtol * fnp.abs(y0)
    d0, d1 = _rms(y0 / scale), _rms(f0 / scale)
    h0 = fnp.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / fnp.maximum(d1, 1e-300))
    f1 = f(y0 + h0 * f0, t0 + h0)
    d2 = _rms((f1 - f0) / scale) / h0
    big = fnp.maximum(d1, d2)
    h1 = fnp.where(big <= 1e-15, fnp.maximum(1e-6, h0 * 1e-3),
                   (0.01 / fnp.maximum(big, 1e-300)) ** (1 / 5))
    return fnp.minimum(100 * h0, h1)


def _integrate(f, y0, t, rtol, atol, mxstep, hmax):
    """Values of y at every ``t`` (``t[0]`` gives ``y0``); ``y0`` a 1-D array. An interval
    that ``mxstep`` steps do not finish gives NaN (from there on)."""
    f0 = f(y0, t[0])
    h = fnp.minimum(_initial_step(f, y0, f0, t[0], rtol, atol), hmax)
    state = (y0, f0, t[0], h)
    out = [y0]
    for i in range(1, t.shape[0]):
        target = t[i]

        def cond(s, target=target):
            _, _, tc, hc, n = s
            return (tc < target) & (n < mxstep) & (hc > 0)

        def body(s, target=target):
            y, fy, tc, hc, n = s
            left = target - tc
            clamped = hc >= left
            step = fnp.where(clamped, left, hc)
            y_new, f_new, err = _dopri_step(f, y, fy, tc, step)
            scale = atol + rtol * fnp.maximum(fnp.abs(y), fnp.abs(y_new))
            ratio = _rms(err / scale)
            ok = ratio <= 1.0
            factor = fnp.clip(_SAFETY * fnp.maximum(ratio, 1e-10) ** -0.2,
                              _MIN_FACTOR, _MAX_FACTOR)
            h_next = step * factor
            # a step shortened to land on the target says little about the affordable step
            h_next = fnp.minimum(fnp.where(ok & clamped, fnp.maximum(h_next, hc), h_next),
                                 hmax)
            return (fnp.where(ok, y_new, y), fnp.where(ok, f_new, fy),
                    fnp.where(ok, fnp.where(clamped, target, tc + step), tc), h_next, n + 1)

        y, fy, tc, h, _ = lax.while_loop(cond, body, state + (np.asarray(0, np.int64),))
        y = fnp.where(tc < target, fnp.nan, y)
        state = (y, fy, tc, h)
        out.append(y)
    return fnp.stack(out)


def _check_increasing(t):
    if not isinstance(t, Tracer):
        tt = np.asarray(t)
        if tt.ndim != 1 or tt.shape[0] < 1:
            raise FuncgradValueError(f"odeint: t must be a 1-D array of times, got shape "
                                     f"{tt.shape}")
        if np.any(np.diff(tt) < 0):
            raise FuncgradValueError("odeint: t must be non-decreasing (integrate backwards "
                                     "by negating time inside func)")


def _odeint_flat_impl(func, rtol, atol, mxstep, hmax, y0, t, *args):
    return _integrate(lambda y, tt: func(y, tt, *args), y0, t, rtol, atol, mxstep, hmax)


_odeint_flat = custom_vjp(_odeint_flat_impl, nondiff_argnums=(0, 1, 2, 3, 4))


def _odeint_fwd(func, rtol, atol, mxstep, hmax, y0, t, *args):
    ys = _odeint_flat_impl(func, rtol, atol, mxstep, hmax, y0, t, *args)
    return ys, (ys, t, args)


def _odeint_bwd(func, rtol, atol, mxstep, hmax, res, g):
    ys, t, args = res
    m = ys.shape[1]
    flat_args, unravel_args = ravel_pytree(args)
    p = flat_args.shape[0]

    def augmented(z, s):
        # the adjoint system in reversed time s = -t, so the integrator runs forwards
        y, a = z[:m], z[m:2 * m]
        f_val, pull = vjp(lambda yy, tt, *aa: func(yy, tt, *aa), y, -s, *args)
        a_y, a_t, *a_args = pull(a)
        pieces = [-f_val, a_y, fnp.reshape(a_t, (1,))]
        if p:
            pieces.append(ravel_pytree(tuple(a_args))[0])
        return fnp.concatenate(pieces)

    a = g[-1]
    t0_bar = fnp.zeros((1,), ys.dtype)
    args_bar = fnp.zeros((p,), ys.dtype)
    t_bars = []
    for i in range(t.shape[0] - 1, 0, -1):
        t_bar = fnp.dot(func(ys[i], t[i], *args), g[i])
        t_bars.append(t_bar)
        z = fnp.concatenate([ys[i], a, t0_bar - t_bar, args_bar])
        z = _integrate(augmented, z, fnp.stack([-t[i], -t[i - 1]]), rtol, atol, mxstep,
                       hmax)[-1]
        a = z[m:2 * m] + g[i - 1]
        t0_bar, args_bar = z[2 * m:2 * m + 1], z[2 * m + 1:]
    t_bar_all = fnp.concatenate([t0_bar, fnp.stack(t_bars[::-1])]) if t_bars else t0_bar
    args_ct = unravel_args(args_bar) if p else tuple(fnp.zeros_like(x) for x in args)
    return (a, fnp.reshape(t_bar_all, t.shape)) + tuple(args_ct)


_odeint_flat.defvjp(_odeint_fwd, _odeint_bwd)


def odeint(func, y0, t, *args, rtol=1.4e-8, atol=1.4e-8, mxstep=np.inf, hmax=np.inf):
    """Solve ``dy/dt = func(y, t, *args)`` from ``y(t[0]) = y0``; JAX's
    ``jax.experimental.ode.odeint`` (note the ``func(y, t)`` argument order, as in
    ``scipy.integrate.odeint``).

    Adaptive Dormand-Prince 5(4) steps with local error control ``rtol``/``atol`` (RMS
    norm). ``grad``/``vjp`` with respect to ``y0``, ``t`` and ``args`` use the adjoint
    method: the adjoint system is integrated backwards with the same tolerances, so memory
    does not grow with the number of steps.

    Args:
        func: ``func(y, t, *args)`` returning an array (pytree) shaped like ``y``.
        y0: initial state, an array or a pytree of float arrays.
        t: 1-D non-decreasing array of times; ``t[0]`` is the initial time.
        *args: extra arrays (pytrees) passed to ``func``; differentiable.
        rtol, atol: relative and absolute error tolerances.
        mxstep: the most steps (accepted or rejected) per interval of ``t``; an interval
            that needs more gives NaN from there on.
        hmax: the largest step size.

    Returns:
        ``y`` at every time in ``t``: leading axis ``len(t)``, ``ys[0] == y0``.

    Raises:
        FuncgradTypeError: an ``args`` entry that is not an array or a number (pass
            functions through ``func``'s closure instead).
        FuncgradValueError: ``t`` not 1-D or decreasing (checked when concrete).

    Forward mode (``jvp``, ``jacfwd``) raises, as in JAX; so do second reverse
    derivatives (``grad`` of ``grad``: the adjoint's adaptive loop is a ``while_loop``).
    Values ``func`` closes over are treated as constants by the adjoint: pass anything to
    differentiate through ``args``. ``jit`` and ``vmap`` work.

    Example:
        >>> import numpy as np
        >>> from funcgrad.scipy.integrate import odeint
        >>> ys = odeint(lambda y, t, k: -k * y, np.array([1.0]), np.array([0.0, 1.0]), 2.0)
        >>> round(float(ys[1, 0]), 6) == round(float(np.exp(-2.0)), 6)
        True
    """
    for k, a in enumerate(args):
        for leaf in _leaves(a):
            if not (isinstance(leaf, (Tracer, np.ndarray, np.generic, int, float, complex))
                    or hasattr(leaf, "__array__")):
                raise FuncgradTypeError(
                    f"odeint: args[{k}] holds a {type(leaf).__name__}; args must be arrays "
                    "(pytrees of arrays); put other values in func's closure")
    _check_increasing(t)
    flat_y0, unravel = ravel_pytree(y0)
    if flat_y0.dtype.kind not in "fc":
        flat_y0 = fnp.astype(flat_y0, np.float64)
    t = fnp.asarray(t)
    if t.dtype.kind != "f":
        t = fnp.astype(t, flat_y0.dtype)
    args = tuple(fnp.asarray(a) if isinstance(a, (int, float)) else a for a in args)

    def flat_func(y, tt, *a):
        return fnp.ravel(ravel_pytree(func(unravel(y), tt, *a))[0])

    ys = _odeint_flat(flat_func, rtol, atol, mxstep, hmax, flat_y0, t, *args)
    if isinstance(y0, (np.ndarray, Tracer)) or np.isscalar(y0):
        return fnp.reshape(ys, (t.shape[0],) + tuple(np.shape(y0)))
    return vmap(unravel)(ys)


def _leaves(tree):
    return tree_leaves(tree)
