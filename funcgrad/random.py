"""funcgrad.random: stateless random numbers with explicit keys, with JAX's API.

There is no hidden global state: every function takes a *key*, a ``uint32[2]`` array,
and returns the same numbers for the same key, on every run. Make a key from a seed,
and derive fresh keys with :func:`split` (or :func:`fold_in`) instead of reusing one:

    >>> import funcgrad.random as fr
    >>> key = fr.key(0)
    >>> key, sub = fr.split(key)
    >>> fr.uniform(sub, (3,)).dtype
    dtype('float32')

The generator is Threefry-2x32 with 20 rounds, a counter-based hash (see
``funcgrad/_src/prims/random_bits.py``), run with vectorised ``uint32`` array operations
on NumPy or, when the key is a CuPy array, on CuPy (``funcgrad.device_put(key, 'gpu')``).
Keys, :func:`split`, :func:`fold_in`, :func:`bits` and :func:`uniform` follow JAX's
original (non-"partitionable") Threefry scheme bit for bit. The other distributions use
their own algorithms (normals by Box-Muller), so their values differ from JAX's.

Transformations: every sampler is a primitive of the key, so it works under ``grad``,
``jit`` (the key is an input of the graph, not a constant) and ``vmap``: mapping over a
batch of keys runs one vectorised Threefry call for ``key``, ``split``, ``fold_in``,
``bits``, ``uniform``, ``normal`` (and everything built on them), ``randint``,
``truncated_normal`` and ``permutation``; ``choice`` with ``p``, ``gamma`` and ``beta``
fall back to vmap's loop.

Defaults: floats are ``float32`` and integers ``int32`` (JAX's defaults), ``float64`` on
request. Random values do not depend differentiably on the key; location and scale
parameters do where the docstring says so (``uniform``'s ``minval``/``maxval``,
``bernoulli``'s and ``categorical``'s inputs are compared or added with funcgrad
operations; ``choice``/``permutation`` gather from ``a``/``x`` differentiably).
"""
from __future__ import annotations

import math
import operator

import numpy as np

from . import numpy as fnp
from ._src.backend import array_module, dtype_name, on_default_device
from ._src.core import Tracer, bind
from ._src.errors import FuncgradTypeError, FuncgradValueError
from ._src.prims import random_bits as _rb
from ._src.prims.indexing import _getitem

__all__ = ["PRNGKey", "bernoulli", "beta", "bits", "categorical", "choice", "exponential",
           "fold_in", "gamma", "gumbel", "key", "laplace", "logistic", "normal",
           "permutation", "randint", "split", "truncated_normal", "uniform"]

_KEY_HELP = "make one with funcgrad.random.key(seed) and derive more with split(key)"


# --------------------------------------------------------------------------------------
# Argument checks


def _check_key(key, op):
    """The key itself, after checking it is one ``uint32[2]`` array."""
    shape = getattr(key, "shape", None)
    dtype = getattr(key, "dtype", None)
    if shape is None or dtype is None:
        raise FuncgradTypeError(
            f"{op}: expected a PRNG key, a uint32 array of shape (2,), but got "
            f"{type(key).__name__} {_short(key)}; {_KEY_HELP}")
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        dtype = None
    if dtype != np.uint32:
        raise FuncgradTypeError(
            f"{op}: a PRNG key is a uint32 array of shape (2,), but got {dtype_name(key)}; "
            f"{_KEY_HELP} (a JAX typed key converts with jax.random.key_data)")
    shape = tuple(shape)
    if shape != (2,):
        if len(shape) > 1 and shape[-1] == 2:
            raise FuncgradValueError(
                f"{op}: got a batch of keys of shape {shape}; this function takes one key "
                "of shape (2,). Index the batch (keys[i]) or loop over it.")
        raise FuncgradValueError(
            f"{op}: a PRNG key has shape (2,), but got {dtype_name(key)}; {_KEY_HELP}")
    return key


def _short(x):
    r = repr(x)
    return r if len(r) <= 40 else r[:37] + "..."


def _canon_shape(shape, op, what="shape"):
    if shape is None:
        raise FuncgradTypeError(f"{op}: {what} must be a tuple of ints, got None")
    try:
        dims = (operator.index(shape),)
    except TypeError:
        try:
            dims = tuple(operator.index(d) for d in shape)
        except TypeError:
            raise FuncgradTypeError(
                f"{op}: {what} must be a tuple of non-negative ints, got {_short(shape)}"
            ) from None
    if any(d < 0 for d in dims):
        raise FuncgradValueError(f"{op}: {what} {dims} has a negative dimension")
    return dims


def _float_dtype(dtype, op):
    try:
        d = np.dtype(dtype)
    except TypeError:
        d = None
    if d not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise FuncgradTypeError(
            f"{op}: dtype must be float32 or float64, got {dtype!r}"
            + ("; use randint for integers" if d is not None and d.kind in "iub" else ""))
    return d


def _int_dtype(dtype, op):
    try:
        d = np.dtype(dtype)
    except TypeError:
        d = None
    if d is None or d.kind not in "iu":
        raise FuncgradTypeError(
            f"{op}: dtype must be an integer dtype (int8 ... int64, uint8 ... uint64), "
            f"got {dtype!r}; use uniform for floats")
    return d


def _shape_of(x):
    s = getattr(x, "shape", None)
    return tuple(s) if s is not None else np.shape(x)


def _as_array(x):
    """Arrays and tracers as they are; Python numbers and lists as NumPy arrays."""
    if isinstance(x, Tracer) or (hasattr(x, "shape") and hasattr(x, "dtype")):
        return x
    return np.asarray(x)


def _check_fits(op, shape, **params):
    """Each parameter must broadcast to ``shape`` without enlarging it (JAX's rule)."""
    for name, value in params.items():
        pshape = _shape_of(value)
        try:
            ok = np.broadcast_shapes(shape, pshape) == shape
        except ValueError:
            ok = False
        if not ok:
            raise FuncgradValueError(
                f"{op}: {name} of shape {pshape} does not broadcast to the requested shape "
                f"{shape}; pass shape=None to use the parameters' broadcast shape, or a "
                "shape that contains it")


def _param(x, dtype):
    """A location/scale parameter in ``dtype``: Python numbers stay weakly typed, arrays
    and tracers are cast (differentiably) when their dtype differs."""
    if isinstance(x, (bool, int, float)):
        return float(x)
    x = _as_array(x)
    if x.dtype != dtype:
        x = fnp.astype(x, dtype)
    return x


def _default_shape(shape, op, **params):
    if shape is None:
        try:
            return tuple(np.broadcast_shapes(*(_shape_of(v) for v in params.values())))
        except ValueError:
            raise FuncgradValueError(
                f"{op}: the shapes of " + ", ".join(
                    f"{k} {_shape_of(v)}" for k, v in params.items())
                + " do not broadcast together") from None
    shape = _canon_shape(shape, op)
    _check_fits(op, shape, **params)
    return shape


def _normalize_axis(axis, ndim, op):
    try:
        axis = operator.index(axis)
    except TypeError:
        raise FuncgradTypeError(f"{op}: axis must be an int, got {_short(axis)}") from None
    if not -ndim <= axis < ndim:
        raise FuncgradValueError(f"{op}: axis {axis} is out of bounds for an array of "
                                 f"{ndim} dimension(s)")
    return axis % ndim


def _take(x, idx, axis):
    """``take(x, idx, axis)`` by indexing, so that it differentiates through tracers."""
    return _getitem(x, (slice(None),) * axis + (idx,))


# --------------------------------------------------------------------------------------
# Keys


def key(seed):
    """A PRNG key from an integer seed: ``uint32[2]``, the seed's high and low 32 bits.

    Args:
      seed: a Python int or NumPy integer (scalar or 0-d array) in
        ``[-2**63, 2**64)``; negative seeds are taken modulo ``2**64``. A traced integer
        works too (``vmap(key)(seeds)``, or inside ``jit``).

    Raises:
      FuncgradTypeError: for a float, bool or non-scalar seed.
      FuncgradValueError: for a seed out of range.

    Example:
        >>> import funcgrad.random as fr
        >>> fr.key(42)
        array([ 0, 42], dtype=uint32)
    """
    if isinstance(seed, (bool, np.bool_)) or (
            hasattr(seed, "dtype") and np.dtype(seed.dtype).kind not in "iu"):
        raise FuncgradTypeError(f"key: the seed must be an integer, got {_short(seed)}")
    if tuple(getattr(seed, "shape", ())) != ():
        raise FuncgradTypeError(f"key: the seed must be a scalar integer, got an array of "
                                f"shape {tuple(seed.shape)}; use split to make several keys "
                                "(or vmap(key) over an array of seeds)")
    if isinstance(seed, Tracer):        # under vmap/jit: the same bits, as a primitive
        return bind(_rb.random_seed_p, seed)
    try:
        s = operator.index(seed) if not hasattr(seed, "item") else int(seed.item())
    except TypeError:
        raise FuncgradTypeError(
            f"key: the seed must be an integer, got {type(seed).__name__} {_short(seed)}"
        ) from None
    if not -2 ** 63 <= s < 2 ** 64:
        raise FuncgradValueError(f"key: the seed {s} is outside [-2**63, 2**64)")
    s %= 2 ** 64
    return on_default_device(lambda xp: xp.asarray(
        np.array([s >> 32, s & 0xFFFFFFFF], dtype=np.uint32)))


PRNGKey = key


def split(key, num=2):
    """Split a key into ``num`` new, independent keys: an array of shape ``(num, 2)``.

    Args:
      key: a key (``uint32[2]``).
      num: the number of keys, or a tuple for an array of keys of shape ``(*num, 2)``.

    Example:
        >>> import funcgrad.random as fr
        >>> fr.split(fr.key(0), 3).shape
        (3, 2)
    """
    _check_key(key, "split")
    return bind(_rb.random_split_p, key, shape=_canon_shape(num, "split", "num"))


def fold_in(key, data):
    """A new key derived from ``key`` and an integer ``data`` (e.g. a step number).

    Args:
      key: a key (``uint32[2]``).
      data: an integer in ``[-2**31, 2**32)`` (Python int or integer scalar array);
        negative values wrap modulo ``2**32``.

    Example:
        >>> import funcgrad.random as fr
        >>> bool((fr.fold_in(fr.key(0), 1) != fr.fold_in(fr.key(0), 2)).any())
        True
    """
    _check_key(key, "fold_in")
    if isinstance(data, (bool, np.bool_)) or (
            hasattr(data, "dtype") and np.dtype(data.dtype).kind not in "iu"):
        raise FuncgradTypeError(f"fold_in: data must be an integer, got {_short(data)}")
    if _shape_of(data) != ():
        raise FuncgradTypeError(f"fold_in: data must be a scalar integer, got shape "
                                f"{_shape_of(data)}")
    if isinstance(data, Tracer):
        return bind(_rb.random_fold_in_p, key, fnp.astype(data, np.uint32))
    try:
        d = operator.index(data) if not hasattr(data, "item") else int(data.item())
    except TypeError:
        raise FuncgradTypeError(f"fold_in: data must be an integer, got {_short(data)}") from None
    if not -2 ** 31 <= d < 2 ** 32:
        raise FuncgradValueError(f"fold_in: data {d} is outside [-2**31, 2**32)")
    return bind(_rb.random_fold_in_p, key, np.uint32(d % 2 ** 32))


def bits(key, shape=(), dtype=np.uint32):
    """Uniformly random unsigned integers (raw random bits) of ``shape``.

    Args:
      dtype: ``uint32`` (one Threefry output word each) or ``uint64`` (two).
    """
    _check_key(key, "bits")
    d = np.dtype(dtype)
    if d not in (np.dtype(np.uint32), np.dtype(np.uint64)):
        raise FuncgradTypeError(f"bits: dtype must be uint32 or uint64, got {dtype!r}")
    return bind(_rb.random_bits_p, key, shape=_canon_shape(shape, "bits"), dtype=d)


# --------------------------------------------------------------------------------------
# Continuous distributions


def uniform(key, shape=(), dtype=np.float32, minval=0.0, maxval=1.0):
    """Uniform floats in ``[minval, maxval)`` of ``shape``.

    Computed as ``minval + (maxval - minval) * u`` with ``u`` in ``[0, 1)`` built from 23
    (float32) or 52 (float64) random mantissa bits, so the values are identical on every
    platform (and equal JAX's). Rounding can give ``maxval`` itself for some bounds.

    Args:
      key: a key (``uint32[2]``).
      shape: the output shape (a tuple of ints, or an int).
      dtype: float32 (default) or float64.
      minval, maxval: bounds, scalars or arrays that broadcast to ``shape``; they may be
        traced: the result is differentiable with respect to them.

    Raises:
      FuncgradTypeError: for a bad key or a non-float dtype.
      FuncgradValueError: when a bound does not broadcast to ``shape``.

    Example:
        >>> import funcgrad.random as fr
        >>> fr.uniform(fr.key(42), (3,))
        array([0.57414436, 0.10015821, 0.05946112], dtype=float32)
    """
    _check_key(key, "uniform")
    dtype = _float_dtype(dtype, "uniform")
    shape = _canon_shape(shape, "uniform")
    _check_fits("uniform", shape, minval=minval, maxval=maxval)
    u = bind(_rb.random_uniform_p, key, shape=shape, dtype=dtype, open=False)
    plain = isinstance(minval, (int, float)) and isinstance(maxval, (int, float))
    if plain and minval == 0 and maxval == 1:
        return u
    minval = _param(minval, dtype)
    maxval = _param(maxval, dtype)
    return minval + (maxval - minval) * u


def _open_uniform(key, shape, dtype):
    # In (0, 1): safe for logarithms at both ends.
    return bind(_rb.random_uniform_p, key, shape=shape, dtype=dtype, open=True)


def normal(key, shape=(), dtype=np.float32):
    """Standard normal floats of ``shape`` (Box-Muller on pairs of uniforms).

    The largest magnitude that can occur is about 5.8 in float32 and 8.6 in float64 (set by
    the smallest uniform); this truncates a tail of probability ~1e-8 (float32).

    Example:
        >>> import funcgrad.random as fr
        >>> fr.normal(fr.key(0), (2, 3)).shape
        (2, 3)
    """
    _check_key(key, "normal")
    dtype = _float_dtype(dtype, "normal")
    return bind(_rb.random_normal_p, key, shape=_canon_shape(shape, "normal"), dtype=dtype)


def truncated_normal(key, lower, upper, shape=None, dtype=np.float32):
    """Standard normal floats conditioned to lie in ``[lower, upper]``.

    Sampled by the inverse CDF in float64 (Wichura's AS 241 quantile; intervals right of
    zero are mirrored so that far tails keep full precision), then cast and clipped to
    the bounds. ``lower``/``upper`` may be ``-inf``/``inf``; with ``lower > upper`` the
    result is meaningless. The samples carry no derivative with respect to the bounds.

    Args:
      lower, upper: bounds, scalars or arrays.
      shape: output shape; ``None`` (default) means the bounds' broadcast shape.
      dtype: float32 (default) or float64.
    """
    _check_key(key, "truncated_normal")
    dtype = _float_dtype(dtype, "truncated_normal")
    lower, upper = _as_array(lower), _as_array(upper)
    shape = _default_shape(shape, "truncated_normal", lower=lower, upper=upper)
    return bind(_rb.random_truncated_normal_p, key, lower, upper, shape=shape, dtype=dtype)


def gumbel(key, shape=(), dtype=np.float32):
    """Standard Gumbel floats, ``-log(-log(u))`` for ``u`` uniform in ``(0, 1)``."""
    _check_key(key, "gumbel")
    dtype = _float_dtype(dtype, "gumbel")
    u = _open_uniform(key, _canon_shape(shape, "gumbel"), dtype)
    return -fnp.log(-fnp.log(u))


def exponential(key, shape=(), dtype=np.float32):
    """Standard exponential floats (rate 1), ``-log(u)`` for ``u`` uniform in ``(0, 1)``."""
    _check_key(key, "exponential")
    dtype = _float_dtype(dtype, "exponential")
    u = _open_uniform(key, _canon_shape(shape, "exponential"), dtype)
    return -fnp.log(u)


def laplace(key, shape=(), dtype=np.float32):
    """Standard Laplace floats (density ``exp(-|x|) / 2``), by the inverse CDF."""
    _check_key(key, "laplace")
    dtype = _float_dtype(dtype, "laplace")
    u = _open_uniform(key, _canon_shape(shape, "laplace"), dtype)
    # 2u and 2 - 2u are exact, so both halves keep full precision near their tails.
    return fnp.where(u < 0.5, fnp.log(u + u), -fnp.log(2.0 - (u + u)))


def logistic(key, shape=(), dtype=np.float32):
    """Standard logistic floats, ``log(u / (1 - u))`` for ``u`` uniform in ``(0, 1)``."""
    _check_key(key, "logistic")
    dtype = _float_dtype(dtype, "logistic")
    u = _open_uniform(key, _canon_shape(shape, "logistic"), dtype)
    return fnp.log(u) - fnp.log1p(-u)


def gamma(key, a, shape=None, dtype=np.float32):
    """Gamma(a, 1) floats (Marsaglia-Tsang rejection, computed in float64).

    Args:
      a: shape parameter(s) ``> 0``; entries that are not give ``nan``.
      shape: output shape; ``None`` means ``a``'s shape.

    Very small ``a`` can give values that underflow to 0 in float32. No derivative with
    respect to ``a``.
    """
    _check_key(key, "gamma")
    dtype = _float_dtype(dtype, "gamma")
    a = _as_array(a)
    shape = _default_shape(shape, "gamma", a=a)
    return bind(_rb.random_gamma_p, key, a, shape=shape, dtype=dtype)


def beta(key, a, b, shape=None, dtype=np.float32):
    """Beta(a, b) floats, ``X / (X + Y)`` for gamma variates computed in log space.

    Args:
      a, b: parameters ``> 0``; shape ``None`` means their broadcast shape. No derivative
        with respect to them.
    """
    _check_key(key, "beta")
    dtype = _float_dtype(dtype, "beta")
    a, b = _as_array(a), _as_array(b)
    shape = _default_shape(shape, "beta", a=a, b=b)
    return bind(_rb.random_beta_p, key, a, b, shape=shape, dtype=dtype)


# --------------------------------------------------------------------------------------
# Discrete distributions


def bernoulli(key, p=0.5, shape=None):
    """Booleans that are ``True`` with probability ``p``: ``uniform(key, shape) < p``.

    Args:
      p: probability, a scalar or array (its float dtype, else float32, sets the
        precision of the comparison).
      shape: output shape; ``None`` means ``p``'s shape.
    """
    _check_key(key, "bernoulli")
    p = _as_array(p) if not isinstance(p, (int, float)) else p
    dtype = getattr(p, "dtype", None)
    is_float = dtype is not None and np.dtype(dtype).kind == "f"
    dtype = np.dtype(dtype) if is_float else np.dtype(np.float32)
    shape = _default_shape(shape, "bernoulli", p=p)
    return bind(_rb.random_uniform_p, key, shape=shape, dtype=dtype, open=False) < p


def _check_int_bound(x, name, op):
    if isinstance(x, (bool, np.bool_)):
        raise FuncgradTypeError(f"{op}: {name} must be an integer, got {x!r}")
    if isinstance(x, int):
        return x
    x = _as_array(x)
    if np.dtype(x.dtype).kind not in "iu":
        raise FuncgradTypeError(f"{op}: {name} must be an integer or an integer array, got "
                                f"{dtype_name(x)}")
    return x


def randint(key, shape, minval, maxval, dtype=np.int32):
    """Uniform integers in ``[minval, maxval)``.

    Each value is a 64-bit random word modulo ``maxval - minval``; the bias is below
    ``2**-32`` for 32-bit ranges. Bounds are clipped into ``dtype``'s range; where
    ``maxval <= minval`` the value is ``minval``.

    Args:
      shape: output shape.
      minval, maxval: integer bounds (scalars or arrays broadcasting to ``shape``).
      dtype: an integer dtype, int32 by default.

    Example:
        >>> import funcgrad.random as fr
        >>> x = fr.randint(fr.key(0), (1000,), 3, 7)
        >>> int(x.min()), int(x.max()), x.dtype
        (3, 6, dtype('int32'))
    """
    _check_key(key, "randint")
    dtype = _int_dtype(dtype, "randint")
    shape = _canon_shape(shape, "randint")
    minval = _check_int_bound(minval, "minval", "randint")
    maxval = _check_int_bound(maxval, "maxval", "randint")
    _check_fits("randint", shape, minval=minval, maxval=maxval)
    if isinstance(minval, int):
        minval = np.int64(min(max(minval, -2 ** 63), 2 ** 63 - 1))
    if isinstance(maxval, int):
        maxval = np.int64(min(max(maxval, -2 ** 63), 2 ** 63 - 1))
    return bind(_rb.random_randint_p, key, minval, maxval, shape=shape, dtype=dtype)


def _int_or_none(x):
    if isinstance(x, (bool, np.bool_)) or hasattr(x, "shape") and _shape_of(x) != ():
        return None
    if isinstance(x, Tracer) or (hasattr(x, "dtype") and np.dtype(x.dtype).kind not in "iu"):
        return None
    try:
        return operator.index(x) if not hasattr(x, "item") else int(x.item())
    except (TypeError, ValueError):
        return None


def permutation(key, x, axis=0, independent=False):
    """A random permutation of ``range(x)`` for an int ``x``, or ``x`` shuffled along
    ``axis``.

    Args:
      x: an int ``n`` (gives a shuffled ``int32`` range ``0..n-1``) or an array with at
        least one dimension (differentiable: a shuffle is a gather).
      axis: the axis to shuffle.
      independent: if True, shuffle each 1-D slice along ``axis`` independently; otherwise
        move whole slices together.

    Example:
        >>> import funcgrad.random as fr
        >>> sorted(fr.permutation(fr.key(0), 5).tolist())
        [0, 1, 2, 3, 4]
    """
    _check_key(key, "permutation")
    n = _int_or_none(x)
    if n is not None:
        if n < 0:
            raise FuncgradValueError(f"permutation: x = {n} must be a non-negative int")
        return bind(_rb.random_permutation_p, key, shape=(n,), axis=0, independent=False)
    x = _as_array(x)
    if len(x.shape) == 0:
        raise FuncgradValueError(
            "permutation: x is a 0-d array; pass an int n (to shuffle range(n)) or an array "
            "with at least one dimension")
    axis = _normalize_axis(axis, len(x.shape), "permutation")
    shape = tuple(x.shape)
    idx = bind(_rb.random_permutation_p, key, shape=shape, axis=axis,
               independent=bool(independent))
    if not independent:
        return _take(x, idx, axis)
    # One index array per dimension, broadcast against each other: take_along_axis.
    xp = array_module(idx)
    grids = [xp.arange(d).reshape((-1,) + (1,) * (len(shape) - i - 1))
             for i, d in enumerate(shape)]
    grids[axis] = idx
    return _getitem(x, tuple(grids))


def choice(key, a, shape=(), replace=True, p=None, axis=0):
    """Random samples from ``a`` (an int ``n`` meaning ``range(n)``, or an array along
    ``axis``).

    Args:
      a: an int or an array with at least one dimension.
      shape: the shape of the sample; the result has shape
        ``a.shape[:axis] + shape + a.shape[axis+1:]``.
      replace: sample with replacement (default) or without (no repeats; requires
        ``prod(shape) <= n``).
      p: optional probabilities of the ``n`` entries (normalised here; no derivative
        flows to them). With replacement they are used through the inverse CDF; without,
        through the Gumbel top-k trick.
      axis: the axis of ``a`` to sample along.

    Returns ``int32`` indices for an int ``a``; entries of ``a`` otherwise (differentiable
    with respect to ``a``).

    Example:
        >>> import funcgrad.random as fr
        >>> s = fr.choice(fr.key(0), 10, (5,), replace=False)
        >>> len(set(s.tolist()))
        5
    """
    _check_key(key, "choice")
    shape = _canon_shape(shape, "choice")
    n = _int_or_none(a)
    if n is None:
        a = _as_array(a)
        if len(a.shape) == 0:
            raise FuncgradValueError(
                "choice: a is a 0-d array; pass an int n or an array with at least one "
                "dimension")
        axis = _normalize_axis(axis, len(a.shape), "choice")
        n = a.shape[axis]
    elif n < 0:
        raise FuncgradValueError(f"choice: a = {n} must be a non-negative int")
    k = math.prod(shape)
    if k and not n:
        raise FuncgradValueError(f"choice: cannot draw {shape} samples from an empty "
                                 "population")
    if not replace and k > n:
        raise FuncgradValueError(
            f"choice: cannot take {k} samples without replacement from a population of {n}; "
            "use replace=True or a smaller shape")
    if p is not None:
        p = _as_array(p)
        if tuple(p.shape) != (n,):
            raise FuncgradValueError(f"choice: p must have shape ({n},), matching the "
                                     f"population, got {dtype_name(p)}")
        idx = bind(_rb.random_choice_p, key, p, shape=shape, replace=bool(replace))
    elif replace:
        idx = bind(_rb.random_randint_p, key, np.int64(0), np.int64(n), shape=shape,
                   dtype=np.dtype(np.int32))
    else:
        perm = bind(_rb.random_permutation_p, key, shape=(n,), axis=0, independent=False)
        idx = perm[:k].reshape(shape)
    if not hasattr(a, "shape"):
        return idx
    return _take(a, idx, axis)


def categorical(key, logits, axis=-1, shape=None):
    """Indices drawn with probabilities ``softmax(logits, axis)`` (the Gumbel-max trick).

    Args:
      logits: unnormalised log-probabilities, at least 1-D; the categories lie along
        ``axis``.
      shape: output shape; ``None`` means the batch shape (``logits.shape`` without
        ``axis``); otherwise it must end with a shape that the batch shape broadcasts to,
        and leading dimensions give independent draws.

    Returns ``int32`` indices.

    Example:
        >>> import funcgrad.random as fr, numpy as np
        >>> fr.categorical(fr.key(0), np.array([[-30., 30.], [30., -30.]])).tolist()
        [1, 0]
    """
    _check_key(key, "categorical")
    logits = _as_array(logits)
    if len(logits.shape) == 0:
        raise FuncgradValueError("categorical: logits must have at least one dimension")
    nd = len(logits.shape)
    axis = _normalize_axis(axis, nd, "categorical")
    batch = tuple(d for i, d in enumerate(logits.shape) if i != axis)
    if shape is None:
        shape = batch
    else:
        shape = _canon_shape(shape, "categorical")
        try:
            ok = len(shape) >= len(batch) and np.broadcast_shapes(shape, batch) == shape
        except ValueError:
            ok = False
        if not ok:
            raise FuncgradValueError(
                f"categorical: shape {shape} must end with a shape that the batch shape "
                f"{batch} of logits {dtype_name(logits)} (axis {axis} removed) broadcasts to")
    lead = shape[:len(shape) - len(batch)]
    gshape = list(shape[len(lead):])
    gshape.insert(axis, logits.shape[axis])
    kind = np.dtype(logits.dtype).kind
    wide_float = kind == "f" and np.dtype(logits.dtype).itemsize >= 4
    dtype = np.dtype(logits.dtype) if wide_float else np.dtype(np.float32)
    g = gumbel(key, lead + tuple(gshape), dtype)
    return fnp.astype(fnp.argmax(g + logits, axis=len(lead) + axis), np.int32)
