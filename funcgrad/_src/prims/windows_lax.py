"""The public convolution and windowed-reduction functions with JAX's ``jax.lax`` names
(exported by ``funcgrad.lax``): dimension numbers and padding strings turned into the
canonical layout of the primitives in windows.py, with funcgrad transposes, so the
permutations are differentiated like any other operation."""
from __future__ import annotations

import functools
import math
import operator
from typing import NamedTuple

import numpy as np

from ..backend import dtype_name
from ..core import Tracer, bind
from ..errors import FuncgradTypeError, FuncgradValueError
from . import elementwise as _el
from . import shape as _shape
from .indexing import _getitem
from .windows import conv_p, window_max_p, window_sum_p
from .windows_kernels import _dilated, _lowest, _window_sum_impl

# =======================================================================================
# Public functions (exported by funcgrad.lax with JAX's names)


def _ints(v, n, name, op, positive=True):
    """``v`` (None -> all ones; an int -> repeated) as a tuple of ``n`` ints."""
    if v is None:
        return (1,) * n
    if isinstance(v, (int, np.integer)):
        v = (v,) * n
    try:
        t = tuple(operator.index(a) for a in v)
    except TypeError:
        raise FuncgradTypeError(
            f"{op}: {name} must be a sequence of {n} integers, got {v!r}") from None
    if len(t) != n:
        raise FuncgradValueError(
            f"{op}: {name} has {len(t)} entries {t} but there are {n} dimensions to "
            f"apply it to; give one integer per dimension")
    if positive and any(a < 1 for a in t):
        raise FuncgradValueError(f"{op}: {name} must be positive integers, got {t}")
    return t


def padtype_to_pads(in_shape, window_shape, window_strides, padding):
    """Explicit ``(lo, hi)`` pairs for ``padding`` ('VALID', 'SAME', 'SAME_LOWER' or
    already pairs) given the (dilated) input and window sizes and the strides.

    'SAME' pads so that ``out = ceil(in / stride)``, with the odd element of padding at
    the end ('SAME_LOWER': at the start).

        >>> from funcgrad import lax
        >>> lax.padtype_to_pads((5, 6), (3, 3), (2, 2), "SAME")
        ((1, 1), (0, 1))
    """
    n = len(in_shape)
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return ((0, 0),) * n
        if mode in ("SAME", "SAME_LOWER"):
            pads = []
            for i, w, s in zip(in_shape, window_shape, window_strides):
                total = max(0, (-(-i // s) - 1) * s + w - i)
                lo = total // 2 if mode == "SAME" else total - total // 2
                pads.append((lo, total - lo))
            return tuple(pads)
        raise FuncgradValueError(
            f"padding must be 'VALID', 'SAME', 'SAME_LOWER' or a sequence of (low, high) "
            f"pairs, got {padding!r}")
    try:
        pads = tuple((operator.index(lo), operator.index(hi)) for lo, hi in padding)
    except (TypeError, ValueError):
        raise FuncgradTypeError(
            f"padding must be 'VALID', 'SAME', 'SAME_LOWER' or a sequence of (low, high) "
            f"integer pairs, got {padding!r}") from None
    if len(pads) != n:
        raise FuncgradValueError(
            f"padding has {len(pads)} (low, high) pairs {pads} but there are {n} "
            "dimensions to pad; give one pair per dimension")
    return pads


class ConvDimensionNumbers(NamedTuple):
    """Which axis is which, as JAX spells it: ``lhs_spec`` = (batch, feature, spatial...),
    ``rhs_spec`` = (out feature, in feature, spatial...), ``out_spec`` = (batch, feature,
    spatial...), each a tuple of axis indices into the respective array."""
    lhs_spec: tuple
    rhs_spec: tuple
    out_spec: tuple


def _spec_perm(spec, first, second, order, what):
    if len(set(spec)) != len(spec) or first not in spec or second not in spec:
        raise FuncgradValueError(
            f"conv dimension_numbers: {what} spec {spec!r} must name each dimension once "
            f"and contain {first!r} and {second!r}")
    spatial = [c for c in spec if c not in (first, second)]
    if sorted(spatial) != sorted(order):
        raise FuncgradValueError(
            f"conv dimension_numbers: {what} spec {spec!r} has spatial dimensions "
            f"{''.join(spatial)!r} but the rhs spec has {''.join(order)!r}; use the same "
            "letters in all three specs")
    return (spec.index(first), spec.index(second)) + tuple(spec.index(c) for c in order)


def conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers):
    """A :class:`ConvDimensionNumbers` from None (NC..., OI..., NC...), a triple of spec
    strings such as ``("NHWC", "HWIO", "NHWC")``, or a ConvDimensionNumbers.

    With strings, spatial dimensions are taken in the order they appear in the rhs spec;
    strides, dilations and padding follow that order.
    """
    nd = len(lhs_shape)
    if len(rhs_shape) != nd:
        raise FuncgradValueError(
            f"conv: lhs shape {tuple(lhs_shape)} and rhs shape {tuple(rhs_shape)} have "
            "different numbers of dimensions; both need batch/feature plus the same "
            "spatial dimensions")
    if dimension_numbers is None:
        ident = tuple(range(nd))
        return ConvDimensionNumbers(ident, ident, ident)
    if isinstance(dimension_numbers, ConvDimensionNumbers):
        return dimension_numbers
    try:
        lhs_s, rhs_s, out_s = dimension_numbers
    except (TypeError, ValueError):
        raise FuncgradTypeError(
            "conv: dimension_numbers must be None, a ConvDimensionNumbers or a triple of "
            f"strings like ('NCHW', 'OIHW', 'NCHW'), got {dimension_numbers!r}") from None
    if not all(isinstance(s, str) for s in (lhs_s, rhs_s, out_s)):
        return ConvDimensionNumbers(*(tuple(operator.index(i) for i in s)
                                      for s in (lhs_s, rhs_s, out_s)))
    if not len(lhs_s) == len(rhs_s) == len(out_s) == nd:
        raise FuncgradValueError(
            f"conv: dimension_numbers {dimension_numbers!r} must have {nd} letters each, "
            f"one per dimension of the lhs {tuple(lhs_shape)}")
    order = [c for c in rhs_s if c not in "OI"]
    return ConvDimensionNumbers(_spec_perm(lhs_s, "N", "C", order, "lhs"),
                                _spec_perm(rhs_s, "O", "I", order, "rhs"),
                                _spec_perm(out_s, "N", "C", order, "out"))


def _to_array(x):
    x = _shape._as_array(x)
    if x.dtype.kind not in "biufc":
        raise FuncgradTypeError(f"expected a numeric array, got {dtype_name(x)}")
    return x


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                         batch_group_count=1, precision=None, preferred_element_type=None):
    """General N-d convolution (cross-correlation, like every deep-learning library).

    Args:
      lhs: input, by default (N, C, *spatial).
      rhs: kernel, by default (O, I, *kernel) with ``I * feature_group_count == C``.
      window_strides: one stride per spatial dimension.
      padding: 'VALID', 'SAME', 'SAME_LOWER' or ``((lo, hi), ...)`` per spatial dimension
        (negative values crop).
      lhs_dilation: input dilation (holes between input elements; this is what a
        transposed convolution uses). rhs_dilation: kernel dilation (atrous).
      dimension_numbers: None, a triple of spec strings such as
        ``("NHWC", "HWIO", "NHWC")`` or ``("NCH", "OIH", "NCH")``, or a
        :class:`ConvDimensionNumbers`.
      feature_group_count: grouped convolution (``C`` and ``O`` are split into this many
        groups; ``feature_group_count == C`` is a depthwise convolution).
      batch_group_count: only 1 is supported (other values raise).
      precision: accepted and ignored (NumPy computes in the arrays' precision).
      preferred_element_type: dtype to compute and return in (the inputs are cast).

    Differentiable in ``lhs`` and ``rhs`` to any order, in forward and reverse mode. The
    inputs are promoted to a common dtype; float32 stays float32.

    Raises FuncgradValueError for mismatched feature counts, a window larger than the
    padded input, or malformed strides/padding/dimension numbers.

        >>> import numpy as np
        >>> from funcgrad import lax
        >>> x = np.arange(5.0).reshape(1, 1, 5)
        >>> lax.conv_general_dilated(x, np.ones((1, 1, 2)), (1,), "VALID")
        array([[[1., 3., 5., 7.]]])
    """
    lhs = _to_array(lhs)
    rhs = _to_array(rhs)
    lhs_perm, rhs_perm, out_perm, dtype, params = _cached(
        _conv_setup, tuple(lhs.shape), lhs.dtype, tuple(rhs.shape), rhs.dtype,
        window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
        feature_group_count, batch_group_count, preferred_element_type)
    if lhs_perm is not None:
        lhs = _shape.transpose(lhs, lhs_perm)
    if rhs_perm is not None:
        rhs = _shape.transpose(rhs, rhs_perm)
    if lhs.dtype != dtype:
        lhs = _shape.astype(lhs, dtype)
    if rhs.dtype != dtype:
        rhs = _shape.astype(rhs, dtype)
    out = bind(conv_p, lhs, rhs, **params)
    return out if out_perm is None else _shape.transpose(out, out_perm)


def _freeze(v):
    return tuple(_freeze(a) for a in v) if isinstance(v, (list, tuple)) else v


def _cached(setup, *key):
    """``setup(*key)`` through its lru_cache when the (frozen) arguments are hashable."""
    try:
        hash(key)
    except TypeError:
        key = _freeze(key)
        try:
            hash(key)
        except TypeError:
            return setup.__wrapped__(*key)
    return setup(*key)


def _desc(shape, dtype):
    return f"{np.dtype(dtype).name}[{','.join(str(d) for d in shape)}]"


@functools.lru_cache(maxsize=256)
def _conv_setup(lhs_shape, lhs_dtype, rhs_shape, rhs_dtype, window_strides, padding,
                lhs_dilation, rhs_dilation, dimension_numbers, feature_group_count,
                batch_group_count, preferred_element_type):
    """Validated canonical-layout parameters of a convolution: (lhs permutation, rhs
    permutation, output permutation (each None when the identity), dtype, params)."""
    op = "conv_general_dilated"
    lhs_d, rhs_d = _desc(lhs_shape, lhs_dtype), _desc(rhs_shape, rhs_dtype)
    nd = len(lhs_shape)
    if nd < 3 or nd != len(rhs_shape):
        raise FuncgradValueError(
            f"{op}: lhs {lhs_d} and rhs {rhs_d} must have the same number of dimensions, "
            "at least 3 (batch, feature and one or more spatial dimensions); add a batch "
            "or feature axis with expand_dims")
    if batch_group_count != 1:
        raise FuncgradValueError(
            f"{op}: batch_group_count={batch_group_count} is not supported (only 1); "
            "split the batch and call the convolution per group instead")
    dn = conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers)
    nsp = nd - 2
    strides = _ints(window_strides, nsp, "window_strides", op)
    lhs_dil = _ints(lhs_dilation, nsp, "lhs_dilation", op)
    rhs_dil = _ints(rhs_dilation, nsp, "rhs_dilation", op)
    groups = operator.index(feature_group_count)
    ident = tuple(range(nd))
    n, c, *sp = (lhs_shape[d] for d in dn.lhs_spec)
    o, i, *kernel = (rhs_shape[d] for d in dn.rhs_spec)
    if groups < 1 or c != i * groups or o % groups:
        raise FuncgradValueError(
            f"{op}: lhs {lhs_d} has {c} input features and rhs {rhs_d} has {i} input and "
            f"{o} output features, with feature_group_count={groups}. The rhs input "
            f"features times feature_group_count must equal the lhs features "
            f"({i} * {groups} != {c})" + (f" and the output features must be divisible by "
                                          f"feature_group_count ({o} % {groups} != 0)"
                                          if groups >= 1 and o % groups else "") +
            "; fix the kernel shape, the feature_group_count, or the dimension_numbers "
            f"(now {dimension_numbers!r})")
    if isinstance(padding, str):
        pads = padtype_to_pads(tuple(_dilated(s, d) for s, d in zip(sp, lhs_dil)),
                               tuple(_dilated(k, d) for k, d in zip(kernel, rhs_dil)),
                               strides, padding)
    else:
        pads = padtype_to_pads(sp, kernel, strides, padding)
    for s, k, (lo, hi), ld, rd in zip(sp, kernel, pads, lhs_dil, rhs_dil):
        if s == 0 or k == 0 or _dilated(s, ld) + lo + hi < _dilated(k, rd):
            raise FuncgradValueError(
                f"{op}: the (dilated) kernel {rhs_d} does not fit in the padded (dilated) "
                f"input {lhs_d} with padding {pads}: every output dimension would be "
                "empty; pad more or use a smaller kernel")
    dtype = np.dtype(preferred_element_type or np.result_type(lhs_dtype, rhs_dtype))
    out_perm = tuple(np.argsort(dn.out_spec).tolist())
    params = dict(window_strides=strides, padding=pads, lhs_dilation=lhs_dil,
                  rhs_dilation=rhs_dil, feature_group_count=groups)
    return (None if tuple(dn.lhs_spec) == ident else tuple(dn.lhs_spec),
            None if tuple(dn.rhs_spec) == ident else tuple(dn.rhs_spec),
            None if out_perm == ident else out_perm, dtype, params)


def conv(lhs, rhs, window_strides, padding, precision=None, preferred_element_type=None):
    """Convolution in the NC.../OI... layout with strides and padding only (see
    :func:`conv_general_dilated`)."""
    return conv_general_dilated(lhs, rhs, window_strides, padding, precision=precision,
                                preferred_element_type=preferred_element_type)


def conv_with_general_padding(lhs, rhs, window_strides, padding, lhs_dilation,
                              rhs_dilation, precision=None, preferred_element_type=None):
    """Convolution in the NC.../OI... layout with dilations (see
    :func:`conv_general_dilated`)."""
    return conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation,
                                rhs_dilation, precision=precision,
                                preferred_element_type=preferred_element_type)


def _conv_transpose_pads(k, s, padding):
    if padding == "SAME":
        total = k + s - 2
        lo = k - 1 if s > k - 1 else -(-total // 2)
    elif padding == "VALID":
        total = k + s - 2 + max(k - s, 0)
        lo = k - 1
    else:
        raise FuncgradValueError(
            f"conv_transpose: padding must be 'SAME', 'VALID' or (low, high) pairs, got "
            f"{padding!r}")
    return lo, total - lo


_DEFAULT_TRANSPOSE_DN = {3: ("NHC", "HIO", "NHC"), 4: ("NHWC", "HWIO", "NHWC"),
                         5: ("NHWDC", "HWDIO", "NHWDC")}


def conv_transpose(lhs, rhs, strides, padding, rhs_dilation=None, dimension_numbers=None,
                   transpose_kernel=False, precision=None, preferred_element_type=None):
    """Transposed convolution ("deconvolution"): a convolution of ``lhs`` dilated by
    ``strides``, with JAX's semantics.

    Args:
      strides: the upsampling factor per spatial dimension (becomes ``lhs_dilation``).
      padding: 'SAME' (output = input * stride), 'VALID', or explicit ``(lo, hi)`` pairs
        applied to the dilated input.
      dimension_numbers: as in :func:`conv_general_dilated`; the default, as in JAX, is
        channels-last: ('NHC', 'HIO', 'NHC'), ('NHWC', 'HWIO', 'NHWC') or
        ('NHWDC', 'HWDIO', 'NHWDC').
      transpose_kernel: flip the kernel's spatial axes and swap its I/O axes, which makes
        this the exact transpose (gradient) of a ``conv_general_dilated`` with that kernel,
        like ``torch.nn.functional.conv_transpose2d``.
    """
    lhs = _to_array(lhs)
    rhs = _to_array(rhs)
    nd = lhs.ndim
    if dimension_numbers is None:
        if nd not in _DEFAULT_TRANSPOSE_DN:
            raise FuncgradValueError(
                f"conv_transpose: give dimension_numbers for a {nd}-d lhs {dtype_name(lhs)}")
        dimension_numbers = _DEFAULT_TRANSPOSE_DN[nd]
    dn = conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
    nsp = nd - 2
    strides = _ints(strides, nsp, "strides", "conv_transpose")
    rhs_dil = _ints(rhs_dilation, nsp, "rhs_dilation", "conv_transpose")
    kernel = [rhs.shape[d] for d in dn.rhs_spec[2:]]
    if isinstance(padding, str):
        padding = tuple(_conv_transpose_pads(_dilated(k, r), s, padding.upper())
                        for k, r, s in zip(kernel, rhs_dil, strides))
    if transpose_kernel:
        spatial = set(dn.rhs_spec[2:])
        rhs = _getitem(rhs, tuple(slice(None, None, -1) if d in spatial else slice(None)
                                  for d in range(nd)))
        rhs = _shape.swapaxes(rhs, dn.rhs_spec[0], dn.rhs_spec[1])
    return conv_general_dilated(lhs, rhs, (1,) * nsp, padding, lhs_dilation=strides,
                                rhs_dilation=rhs_dil, dimension_numbers=dn,
                                precision=precision,
                                preferred_element_type=preferred_element_type)


# ---- reduce_window and pooling ---------------------------------------------------------


_KINDS = {"max": "max", "min": "min", "add": "add", np.maximum: "max", np.minimum: "min",
          np.add: "add", operator.add: "add"}


def _computation_kind(computation):
    try:
        kind = _KINDS.get(computation)
    except TypeError:       # unhashable
        kind = None
    if kind is None:
        _KINDS.update({_el.maximum: "max", _el.minimum: "min", _el.add: "add"})
        kind = _KINDS.get(computation)
    if kind is not None:
        return kind
    name = getattr(computation, "__name__", repr(computation))
    raise FuncgradTypeError(
        f"reduce_window: computation {name} is not supported; use funcgrad.lax.max, "
        "funcgrad.lax.min or funcgrad.lax.add (the NumPy/funcgrad.numpy maximum, minimum "
        "and add ufuncs are accepted too)")


@functools.lru_cache(maxsize=256)
def _window_params(op, shape, window_dimensions, window_strides, padding, base_dilation,
                   window_dilation):
    nd = len(shape)
    wd = _ints(window_dimensions, nd, "window_dimensions", op)
    ws = _ints(window_strides, nd, "window_strides", op)
    bd = _ints(base_dilation, nd, "base_dilation", op)
    wdl = _ints(window_dilation, nd, "window_dilation", op)
    if isinstance(padding, str):
        pads = padtype_to_pads(tuple(_dilated(n, b) for n, b in zip(shape, bd)),
                               tuple(_dilated(w, d) for w, d in zip(wd, wdl)), ws, padding)
    else:
        pads = padtype_to_pads(shape, wd, ws, padding)
    for n, w, (lo, hi), b, d in zip(shape, wd, pads, bd, wdl):
        if _dilated(n, b) + lo + hi < _dilated(w, d):
            raise FuncgradValueError(
                f"{op}: window {wd} (dilation {wdl}) does not fit in the padded operand of "
                f"shape {tuple(shape)} with padding {pads}; pad more or use a smaller window")
    return dict(window_dimensions=wd, window_strides=ws, padding=pads, base_dilation=bd,
                window_dilation=wdl)


def reduce_window(operand, init_value, computation, window_dimensions, window_strides,
                  padding, base_dilation=None, window_dilation=None):
    """Reduce every window of ``operand`` with ``computation`` (pooling).

    Args:
      operand: an array; windows span all of its dimensions (use 1 for the batch and
        feature dimensions).
      init_value: a concrete scalar; padding is filled with it and it takes part in every
        window (``-inf`` for max, ``0`` for add, ``inf`` for min are the identities).
      computation: ``funcgrad.lax.max``, ``funcgrad.lax.min`` or ``funcgrad.lax.add``
        (NumPy's and funcgrad.numpy's maximum/minimum/add are accepted). Anything else
        raises FuncgradTypeError.
      window_dimensions, window_strides: one int per dimension.
      padding: 'VALID', 'SAME', 'SAME_LOWER' or ``(lo, hi)`` pairs per dimension.
      base_dilation, window_dilation: dilation of the operand and of the window.

    Derivatives (any order, both modes) flow to ``operand``. For max (and min) the
    gradient of each window goes to its arg-max element; on ties the first one in
    row-major order within the window wins (PyTorch's convention). Overlapping windows
    accumulate their contributions. A window holding a NaN has a NaN maximum, and its
    gradient goes to its last element. A non-identity ``init_value`` is combined with
    ``maximum``/``minimum``/``add`` after the reduction (ties with it share the gradient).

        >>> import numpy as np
        >>> from funcgrad import lax
        >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
        >>> lax.reduce_window(x, -np.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
        array([[[[ 5.,  7.],
                 [13., 15.]]]])
    """
    op = "reduce_window"
    kind = _computation_kind(computation)
    x = _to_array(operand)
    if isinstance(init_value, Tracer):
        raise FuncgradTypeError(
            f"{op}: init_value must be a constant scalar, got a traced {dtype_name(init_value)};"
            " add a traced offset to the result instead")
    init = np.asarray(init_value)
    if init.ndim != 0:
        raise FuncgradValueError(f"{op}: init_value must be a scalar, got shape {init.shape}")
    init = init.item()
    p = _cached(_window_params, op, tuple(x.shape), window_dimensions, window_strides,
                padding, base_dilation, window_dilation)
    if kind == "add":
        out = bind(window_sum_p, x, **p)
        return out if init == 0 else _el.add(out, np.asarray(init, out.dtype))
    if kind == "min":
        return _el.negative(reduce_window(_el.negative(x), -init, "max", window_dimensions,
                                          window_strides, p["padding"], p["base_dilation"],
                                          p["window_dilation"]))
    out = bind(window_max_p, x, **p)[0]
    if x.dtype.kind == "b" or init > _lowest(x.dtype):
        out = _el.maximum(out, np.asarray(init, out.dtype))
    return out


def _pool_params(op, x, window_shape, strides, padding):
    x = _to_array(x)
    return (x,) + _cached(_pool_setup, op, tuple(x.shape), window_shape, strides, padding)


@functools.lru_cache(maxsize=256)
def _pool_setup(op, shape, window_shape, strides, padding):
    k = len(window_shape)
    if k > len(shape):
        raise FuncgradValueError(
            f"{op}: window_shape {tuple(window_shape)} has more dimensions than the input "
            f"of shape {shape}")
    lead = len(shape) - k
    strides = window_shape if strides is None else strides
    ws = (1,) * lead + _ints(window_shape, k, "window_shape", op)
    st = (1,) * lead + _ints(strides, k, "strides", op)
    if not isinstance(padding, str):
        padding = ((0, 0),) * lead + tuple(padding)
    return ws, st, padding


def max_pool(x, window_shape, strides=None, padding="VALID"):
    """Max pooling over the last ``len(window_shape)`` dimensions (so NCHW input pools
    H and W); ``strides`` default to the window shape. See :func:`reduce_window` for the
    gradient's tie convention.

        >>> import numpy as np
        >>> from funcgrad import lax
        >>> lax.max_pool(np.array([[1.0, 3.0, 2.0, 0.0]]), (2,))
        array([[3., 2.]])
    """
    x, ws, st, padding = _pool_params("max_pool", x, window_shape, strides, padding)
    return reduce_window(x, -np.inf if x.dtype.kind in "fc" else _lowest(x.dtype), "max",
                         ws, st, padding)


def avg_pool(x, window_shape, strides=None, padding="VALID", count_include_pad=True):
    """Average pooling over the last ``len(window_shape)`` dimensions; ``strides`` default
    to the window shape. With ``count_include_pad=False`` padded positions are left out of
    each window's count (PyTorch's and Flax's option of the same name).

        >>> import numpy as np
        >>> from funcgrad import lax
        >>> lax.avg_pool(np.array([[1.0, 3.0, 2.0, 0.0]]), (2,))
        array([[2., 1.]])
    """
    x, ws, st, padding = _pool_params("avg_pool", x, window_shape, strides, padding)
    p = _cached(_window_params, "avg_pool", tuple(x.shape), ws, st, padding, None, None)
    total = bind(window_sum_p, x, **p)
    if count_include_pad or all(lo == 0 and hi == 0 for lo, hi in p["padding"]):
        return total / float(math.prod(ws))
    counts = _window_sum_impl(np.ones(x.shape, total.dtype if total.dtype.kind in "fc"
                                      else np.float64), **p)
    return total / counts
