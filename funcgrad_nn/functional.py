"""Functional neural-network operations with PyTorch's names and arguments.

Everything here is a pure function of arrays, differentiable with every funcgrad
transformation, built on funcgrad's public API (``funcgrad.numpy``, ``funcgrad.lax``,
``funcgrad.random``). Conventions:

* Layouts are PyTorch's: ``(N, C, *spatial)`` images, ``(out, in)`` linear weights,
  ``(out, in // groups, *kernel)`` convolution weights. Unbatched inputs (no ``N``) are
  accepted where PyTorch accepts them.
* Where PyTorch says ``dim=``, we say ``axis=`` (NumPy's word); ``dim=`` is accepted too.
* Losses take ``reduction='mean' | 'sum' | 'none'``.
* dtypes are preserved: float32 in, float32 out (constants are Python scalars).
* Randomness is explicit: :func:`dropout` takes a ``key`` from ``funcgrad.random``.
* What PyTorch updates in place (BatchNorm's running statistics) is returned instead.

Example:
    >>> import numpy as np
    >>> import funcgrad_nn.functional as F
    >>> logits = np.array([[2.0, 0.5, -1.0]])
    >>> round(float(F.cross_entropy(logits, np.array([0]))), 6)
    0.241311
"""
from __future__ import annotations

import itertools
import math
import numbers

import numpy as np

import funcgrad
import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradTypeError, FuncgradValueError

__all__ = [
    # linear, convolution, pooling
    "linear", "bilinear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
    "conv_transpose2d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d",
    # normalization, dropout, embedding
    "batch_norm", "layer_norm", "group_norm", "dropout", "embedding",
    # activations
    "relu", "relu6", "leaky_relu", "elu", "gelu", "silu", "sigmoid", "tanh", "softplus",
    "logsigmoid", "softmax", "log_softmax", "erf",
    # shape and resampling
    "one_hot", "pad", "interpolate",
    # attention
    "scaled_dot_product_attention",
    # losses and similarities
    "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "cross_entropy", "nll_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div",
    "cosine_similarity",
]


# --------------------------------------------------------------------------------------
# helpers


def _lax():
    try:
        import funcgrad.lax as lax
    except ImportError as e:  # pragma: no cover - only while funcgrad.lax is missing
        raise FuncgradTypeError(
            "funcgrad_nn: convolutions and pooling need funcgrad.lax, which could not be "
            f"imported ({e})") from None
    return lax


def _arr(x):
    """An array view of ``x`` (tracers and arrays pass through; lists become arrays)."""
    if isinstance(x, funcgrad.Tracer) or (hasattr(x, "shape") and hasattr(x, "dtype")):
        return x
    return fnp.asarray(x)


def _is_concrete(x):
    return not isinstance(x, funcgrad.Tracer)


def _axis(axis, dim, default, op):
    """NumPy's ``axis`` with PyTorch's ``dim`` as an alias."""
    if dim is not None:
        if axis is not None and axis != dim:
            raise FuncgradTypeError(f"{op}: got both axis={axis} and dim={dim}; give one")
        return dim
    return default if axis is None else axis


def _ntuple(v, n, what, op):
    if isinstance(v, numbers.Integral):
        return (int(v),) * n
    v = tuple(int(i) for i in v)
    if len(v) == 1:
        return v * n
    if len(v) != n:
        raise FuncgradValueError(f"{op}: {what} must be an int or a tuple of {n} ints, got {v}")
    return v


def _reduce(loss, reduction, op):
    if reduction == "mean":
        return fnp.mean(loss)
    if reduction == "sum":
        return fnp.sum(loss)
    if reduction == "none":
        return loss
    raise FuncgradValueError(
        f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _bcast_channel(v, ndim, axis=1):
    """Reshape a per-channel vector ``(C,)`` to broadcast along ``axis`` of an ``ndim`` array."""
    shape = [1] * ndim
    shape[axis] = -1
    return fnp.reshape(v, tuple(shape))


def _arange_like(x, n, dtype=np.int64):
    """``arange(n)`` of ``dtype`` in ``x``'s array module (NumPy, CuPy, ...), so that the
    constant can meet ``x`` (a device array never mixes with a NumPy array). Built from
    :func:`funcgrad.numpy.ones_like`, a concrete constant even when ``x`` is traced."""
    r = fnp.cumsum(fnp.ones_like(x, shape=(int(n),), dtype=np.int64)) - 1
    return r if np.dtype(dtype) == np.int64 else fnp.astype(r, dtype)


def _float_dtype(x):
    dt = np.dtype(x.dtype)
    return dt if dt.kind in "fc" else np.dtype(np.float64)


# --------------------------------------------------------------------------------------
# linear


def linear(input, weight, bias=None):
    """``input @ weight.T + bias``: weight ``(out_features, in_features)``, bias ``(out,)``.

    Raises FuncgradValueError when ``input.shape[-1] != weight.shape[1]``.

    Example:
        >>> import numpy as np
        >>> linear(np.ones((2, 3)), np.ones((4, 3)), np.zeros(4)).shape
        (2, 4)
    """
    x, w = _arr(input), _arr(weight)
    if w.ndim != 2 or x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise FuncgradValueError(
            f"linear: input of shape {tuple(x.shape)} does not match weight of shape "
            f"{tuple(w.shape)}; the input's last axis must equal weight.shape[1] "
            "(weight is (out_features, in_features), as in PyTorch)")
    y = fnp.matmul(x, fnp.transpose(w))
    return y if bias is None else y + bias


def bilinear(input1, input2, weight, bias=None):
    """``y_k = x1 @ weight[k] @ x2 + bias_k``; weight ``(out, in1, in2)``."""
    y = fnp.einsum("...i,kij,...j->...k", _arr(input1), _arr(weight), _arr(input2))
    return y if bias is None else y + bias


# --------------------------------------------------------------------------------------
# padding


def _gather_axis(x, idx, axis):
    return x[(slice(None),) * axis + (np.asarray(idx, dtype=np.intp),)]


def _pad_axis(x, axis, lo, hi, mode, value, op):
    n = x.shape[axis]
    if mode == "constant":
        if lo < 0 or hi < 0:     # negative padding crops, as in PyTorch
            x = x[(slice(None),) * axis + (slice(max(-lo, 0), n - max(-hi, 0)),)]
            lo, hi = max(lo, 0), max(hi, 0)
        parts = []
        for k in (lo, None, hi):
            if k is None:
                parts.append(x)
            elif k > 0:
                shape = list(x.shape)
                shape[axis] = k
                parts.append(fnp.full(tuple(shape), value, dtype=x.dtype))
        return parts[0] if len(parts) == 1 else fnp.concatenate(parts, axis=axis)
    # The other modes are slices of x itself (no index arrays: nothing to copy to a
    # device, and the reverse rule is a sum of slices).
    def along(sl):
        return x[(slice(None),) * axis + (sl,)]

    if mode == "reflect":
        if lo >= n or hi >= n:
            raise FuncgradValueError(
                f"{op}: reflect padding ({lo}, {hi}) must be smaller than the padded axis "
                f"(size {n}) of the input of shape {tuple(x.shape)}")
        left = along(slice(lo, 0, -1)) if lo > 0 else None            # x[lo], ..., x[1]
        right = along(slice(n - 2, n - 2 - hi, -1)) if hi > 0 else None
    elif mode == "replicate":
        def edge(i, k):
            e = along(slice(i, i + 1))
            shape = list(e.shape)
            shape[axis] = k
            return fnp.broadcast_to(e, tuple(shape))
        left = edge(0, lo) if lo > 0 else None
        right = edge(n - 1, hi) if hi > 0 else None
    elif mode == "circular":
        if lo > n or hi > n:
            raise FuncgradValueError(
                f"{op}: circular padding ({lo}, {hi}) must be at most the size ({n}) of the "
                f"padded axis of the input of shape {tuple(x.shape)}")
        left = along(slice(n - lo, n)) if lo > 0 else None
        right = along(slice(0, hi)) if hi > 0 else None
    else:
        raise FuncgradValueError(
            f"{op}: mode must be 'constant', 'reflect', 'replicate' or 'circular', "
            f"got {mode!r}")
    parts = [p for p in (left, along(slice(max(-lo, 0), n - max(-hi, 0))), right)
             if p is not None]
    return parts[0] if len(parts) == 1 else fnp.concatenate(parts, axis=axis)


def pad(input, pad, mode="constant", value=None):
    """Pad the last ``len(pad) // 2`` axes, PyTorch's way: ``pad = (left_last,
    right_last, left_second_last, right_second_last, ...)``.

    Modes: ``'constant'`` (with ``value``, default 0; negative widths crop),
    ``'reflect'`` (mirror without repeating the edge), ``'replicate'`` (repeat the edge),
    ``'circular'`` (wrap around). Differentiable in ``input``.

    Example:
        >>> import numpy as np
        >>> pad(np.array([1.0, 2.0, 3.0]), (2, 1), mode="reflect")
        array([3., 2., 1., 2., 3., 2.])
    """
    x = _arr(input)
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise FuncgradValueError(
            f"pad: pad={pad} must have an even length of at most 2 * ndim = {2 * x.ndim} for "
            f"an input of shape {tuple(x.shape)}")
    if mode != "constant" and value not in (None, 0):
        raise FuncgradValueError(f"pad: value= is only used with mode='constant', not {mode!r}")
    value = 0 if value is None else value
    for i in range(len(pad) // 2):
        x = _pad_axis(x, x.ndim - 1 - i, pad[2 * i], pad[2 * i + 1], mode, value, "pad")
    return x


# --------------------------------------------------------------------------------------
# convolution


_DN = {1: ("NCH", "OIH", "NCH"), 2: ("NCHW", "OIHW", "NCHW"), 3: ("NCDHW", "OIDHW", "NCDHW")}


def _batched(x, nd, op, what="input"):
    """``(x with a batch axis, whether one was added)``; checks the rank."""
    if x.ndim == nd + 2:
        return x, False
    if x.ndim == nd + 1:
        return x[None], True
    raise FuncgradValueError(
        f"{op}: expected a {nd + 2}-D (batched) or {nd + 1}-D (unbatched) {what}, got shape "
        f"{tuple(x.shape)}")


def _conv(op, nd, input, weight, bias, stride, padding, dilation, groups, padding_mode):
    x, w = _arr(input), _arr(weight)
    x, unbatched = _batched(x, nd, op)
    stride = _ntuple(stride, nd, "stride", op)
    dilation = _ntuple(dilation, nd, "dilation", op)
    groups = int(groups)
    if w.ndim != nd + 2:
        raise FuncgradValueError(
            f"{op}: weight must be {nd + 2}-D (out_channels, in_channels // groups, *kernel), "
            f"got shape {tuple(w.shape)}")
    c_in, c_out, k = x.shape[1], w.shape[0], tuple(w.shape[2:])
    if c_in % groups or c_out % groups or w.shape[1] * groups != c_in:
        raise FuncgradValueError(
            f"{op}: input of shape {tuple(x.shape)} has {c_in} channels, but weight of shape "
            f"{tuple(w.shape)} with groups={groups} expects {w.shape[1] * groups}")
    if isinstance(padding, str):
        if padding == "valid":
            pads = [(0, 0)] * nd
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise FuncgradValueError(f"{op}: padding='same' needs stride 1, got {stride}")
            pads = []
            for kk, d in zip(k, dilation):
                total = d * (kk - 1)
                pads.append((total // 2, total - total // 2))
        else:
            raise FuncgradValueError(
                f"{op}: padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
    else:
        pads = [(p, p) for p in _ntuple(padding, nd, "padding", op)]
    if padding_mode != "zeros":
        if padding_mode not in ("reflect", "replicate", "circular"):
            raise FuncgradValueError(
                f"{op}: padding_mode must be 'zeros', 'reflect', 'replicate' or 'circular', "
                f"got {padding_mode!r}")
        for i, (lo, hi) in enumerate(pads):
            x = _pad_axis(x, 2 + i, lo, hi, padding_mode, 0, op)
        pads = [(0, 0)] * nd
    for i, (lo, hi) in enumerate(pads):
        if x.shape[2 + i] + lo + hi < dilation[i] * (k[i] - 1) + 1:
            raise FuncgradValueError(
                f"{op}: the (padded) input of shape {tuple(x.shape)} is smaller than the "
                f"dilated kernel {k} (dilation {dilation}) along spatial axis {i}")
    y = _lax().conv_general_dilated(
        x, w, window_strides=stride, padding=tuple(pads), lhs_dilation=(1,) * nd,
        rhs_dilation=dilation, dimension_numbers=_DN[nd], feature_group_count=groups)
    if bias is not None:
        y = y + _bcast_channel(bias, y.ndim)
    return y[0] if unbatched else y


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
           padding_mode="zeros"):
    """1-D convolution (cross-correlation, as in PyTorch) of ``(N, C_in, L)`` inputs.

    Arguments as :func:`conv2d`.
    """
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups,
                 padding_mode)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
           padding_mode="zeros"):
    """2-D convolution (cross-correlation, as in PyTorch) of ``(N, C_in, H, W)`` inputs.

    Args:
      input: ``(N, C_in, H, W)`` or unbatched ``(C_in, H, W)``.
      weight: ``(C_out, C_in // groups, kH, kW)``.
      bias: ``(C_out,)`` or None.
      stride, dilation: an int or a pair.
      padding: an int, a pair, ``'valid'`` (none) or ``'same'`` (output size = input
        size; stride must be 1; odd totals put the extra element at the end).
      groups: split the channels into this many independent convolutions.
      padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'`` (an
        extension of PyTorch's functional conv2d, matching the Conv2d layer).

    Raises FuncgradValueError naming the shapes on a rank or channel mismatch.

    Example:
        >>> import numpy as np
        >>> conv2d(np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3)), padding=1).shape
        (1, 3, 5, 5)
    """
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups,
                 padding_mode)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
           padding_mode="zeros"):
    """3-D convolution of ``(N, C_in, D, H, W)`` inputs; arguments as :func:`conv2d`."""
    return _conv("conv3d", 3, input, weight, bias, stride, padding, dilation, groups,
                 padding_mode)


def _conv_transpose(op, nd, input, weight, bias, stride, padding, output_padding, groups,
                    dilation):
    x, w = _arr(input), _arr(weight)
    x, unbatched = _batched(x, nd, op)
    stride = _ntuple(stride, nd, "stride", op)
    padding = _ntuple(padding, nd, "padding", op)
    output_padding = _ntuple(output_padding, nd, "output_padding", op)
    dilation = _ntuple(dilation, nd, "dilation", op)
    groups = int(groups)
    if w.ndim != nd + 2 or x.shape[1] != w.shape[0] or w.shape[0] % groups:
        raise FuncgradValueError(
            f"{op}: input of shape {tuple(x.shape)} does not match weight of shape "
            f"{tuple(w.shape)} (expected (C_in, C_out // groups, *kernel) with C_in = "
            f"input.shape[1] divisible by groups={groups})")
    for op_, s, d in zip(output_padding, stride, dilation):
        if op_ >= max(s, d):
            raise FuncgradValueError(
                f"{op}: output_padding {output_padding} must be smaller than stride "
                f"{stride} or dilation {dilation}")
    c_in, c_out_g, k = w.shape[0], w.shape[1], tuple(w.shape[2:])
    # The transpose of a strided convolution is a convolution of the input dilated by
    # the stride, with the kernel flipped and its in/out roles swapped within each group.
    wt = fnp.reshape(w, (groups, c_in // groups, c_out_g) + k)
    wt = fnp.swapaxes(wt, 1, 2)
    wt = fnp.reshape(wt, (groups * c_out_g, c_in // groups) + k)
    wt = wt[(slice(None), slice(None)) + (slice(None, None, -1),) * nd]
    pads, crops = [], []
    for kk, s, p, op_, d in zip(k, stride, padding, output_padding, dilation):
        lo, hi = d * (kk - 1) - p, d * (kk - 1) - p + op_
        pads.append((max(lo, 0), max(hi, 0)))
        crops.append((max(-lo, 0), max(-hi, 0)))
    y = _lax().conv_general_dilated(
        x, wt, window_strides=(1,) * nd, padding=tuple(pads), lhs_dilation=stride,
        rhs_dilation=dilation, dimension_numbers=_DN[nd], feature_group_count=groups)
    if any(c != (0, 0) for c in crops):
        y = y[(slice(None), slice(None)) + tuple(
            slice(lo, y.shape[2 + i] - hi) for i, (lo, hi) in enumerate(crops))]
    if bias is not None:
        y = y + _bcast_channel(bias, y.ndim)
    return y[0] if unbatched else y


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
    """1-D transposed convolution; arguments as :func:`conv_transpose2d`."""
    return _conv_transpose("conv_transpose1d", 1, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
    """2-D transposed convolution ("deconvolution"), the gradient of :func:`conv2d`.

    Args (PyTorch's, in PyTorch's order):
      input: ``(N, C_in, H, W)`` or ``(C_in, H, W)``.
      weight: ``(C_in, C_out // groups, kH, kW)``.
      stride, padding, output_padding, dilation: ints or pairs. The output size is
        ``(H - 1) * stride - 2 * padding + dilation * (kH - 1) + output_padding + 1``.

    Example:
        >>> import numpy as np
        >>> conv_transpose2d(np.ones((1, 2, 4, 4)), np.ones((2, 3, 3, 3)), stride=2).shape
        (1, 3, 9, 9)
    """
    return _conv_transpose("conv_transpose2d", 2, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)


# --------------------------------------------------------------------------------------
# pooling


def _pool_geometry(op, shape, kernel, stride, padding, dilation, ceil_mode):
    """Per spatial axis: (output size, low pad, high pad) with PyTorch's size rule."""
    out = []
    for n, k, s, p, d in zip(shape, kernel, stride, padding, dilation):
        if p > k // 2:
            raise FuncgradValueError(
                f"{op}: padding {padding} must be at most half the kernel size {kernel}")
        span = n + 2 * p - d * (k - 1) - 1
        if span < 0:
            raise FuncgradValueError(
                f"{op}: the input's spatial shape {tuple(shape)} (padding {padding}) is "
                f"smaller than the kernel {kernel} (dilation {dilation})")
        o = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (o - 1) * s >= n + p:   # the last window must start inside
            o -= 1
        hi = max(0, (o - 1) * s + d * (k - 1) + 1 - (n + p))
        out.append((o, p, hi))
    return out


def _pool_args(op, nd, x, kernel_size, stride, padding, dilation):
    kernel = _ntuple(kernel_size, nd, "kernel_size", op)
    stride = kernel if stride is None or stride == () or stride == [] else _ntuple(
        stride, nd, "stride", op)
    padding = _ntuple(padding, nd, "padding", op)
    dilation = _ntuple(dilation, nd, "dilation", op)
    return kernel, stride, padding, dilation


def _max_pool(op, nd, input, kernel_size, stride, padding, dilation, ceil_mode,
              return_indices):
    x = _arr(input)
    x, unbatched = _batched(x, nd, op)
    kernel, stride, padding, dilation = _pool_args(op, nd, x, kernel_size, stride, padding,
                                                   dilation)
    geo = _pool_geometry(op, x.shape[2:], kernel, stride, padding, dilation, ceil_mode)
    dt = np.dtype(x.dtype)
    init = -math.inf if dt.kind == "f" else int(np.iinfo(dt).min)
    lax = _lax()
    kwargs = {}
    if any(d != 1 for d in dilation):
        kwargs["window_dilation"] = (1, 1) + dilation
    y = lax.reduce_window(x, init, lax.max, (1, 1) + kernel,
                          (1, 1) + stride, ((0, 0), (0, 0)) + tuple((lo, hi) for _, lo, hi in geo),
                          **kwargs)
    if not return_indices:
        return y[0] if unbatched else y
    idx = _max_pool_indices(funcgrad.stop_gradient(x), geo, kernel, stride, dilation)
    return (y[0], idx[0]) if unbatched else (y, idx)


def _max_pool_indices(x, geo, kernel, stride, dilation):
    """PyTorch's ``return_indices``: the flat spatial index of each window's maximum (the
    first one in row-major window order; NaN counts as the maximum). Computed with array
    operations on ``x``'s own device: one strided slice per window offset."""
    nd = len(kernel)
    if x.dtype.kind != "f":
        x = fnp.astype(x, np.float64)
    pads = tuple((lo, hi) for _, lo, hi in geo)
    padded = fnp.pad(x, ((0, 0), (0, 0)) + pads, constant_values=-np.inf)
    spatial = tuple(x.shape[2:])
    # the flat index of every position (made on x's device), -1 in the padding
    ones = fnp.ones_like(x, dtype=np.int64, shape=(math.prod(spatial),))
    where = fnp.pad(fnp.reshape(fnp.cumsum(ones) - 1, spatial), pads, constant_values=-1)
    vals, poss = [], []
    for offs in itertools.product(*[range(k) for k in kernel]):
        sl = tuple(slice(o * d, o * d + (n - 1) * s + 1, s)
                   for o, d, (n, _, _), s in zip(offs, dilation, geo, stride))
        vals.append(padded[(slice(None), slice(None)) + sl])
        poss.append(where[sl])
    arg = fnp.argmax(fnp.stack(vals), axis=0)                    # (N, C, out...)
    poss = fnp.broadcast_to(fnp.reshape(fnp.stack(poss), (len(poss), 1, 1) + arg.shape[2:]),
                            (len(poss),) + arg.shape)
    return fnp.take_along_axis(poss, arg[None], axis=0)[0]


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """1-D max pooling; arguments as :func:`max_pool2d`."""
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation,
                     ceil_mode, return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """2-D max pooling over ``(N, C, H, W)`` (or ``(C, H, W)``) inputs.

    ``stride`` defaults to ``kernel_size``; ``padding`` (implicit ``-inf``, at most half
    the kernel), ``dilation`` and ``ceil_mode`` as in PyTorch. With
    ``return_indices=True`` also returns the flat ``h * W + w`` index of each maximum
    (an int64 array, not differentiable; computed from concrete NumPy values, so not
    under ``jit`` nor for device arrays). On ties the gradient goes to the first
    maximum of the window, as in PyTorch.

    Example:
        >>> import numpy as np
        >>> max_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2)
        array([[[[ 5.,  7.],
                 [13., 15.]]]])
    """
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation,
                     ceil_mode, return_indices)


def _avg_pool(op, nd, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    x = _arr(input)
    x, unbatched = _batched(x, nd, op)
    kernel, stride, padding, _ = _pool_args(op, nd, x, kernel_size, stride, padding, 1)
    geo = _pool_geometry(op, x.shape[2:], kernel, stride, padding, (1,) * nd, ceil_mode)
    lax = _lax()
    dt = _float_dtype(x)
    if np.dtype(x.dtype) != dt:
        x = fnp.astype(x, dt)
    s = lax.reduce_window(x, 0.0, lax.add, (1, 1) + kernel,
                          (1, 1) + stride,
                          ((0, 0), (0, 0)) + tuple((lo, hi) for _, lo, hi in geo))
    if divisor_override:
        y = s / float(divisor_override)
    else:
        # The divisors are built in x's array module (no host constant meets a device x).
        div = None
        for i, ((o, p, _), k, st) in enumerate(zip(geo, kernel, stride)):
            n = x.shape[2 + i]
            start = _arange_like(x, o) * st - p
            end = fnp.minimum(start + k, n + p)
            if count_include_pad:
                size = end - start
            else:
                size = fnp.minimum(end, n) - fnp.maximum(start, 0)
            div = fnp.expand_dims(div, -1) * size if i else size
        y = s / fnp.astype(div, dt)
    return y[0] if unbatched else y


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """1-D average pooling; arguments as :func:`avg_pool2d`."""
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, None)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """2-D average pooling over ``(N, C, H, W)`` inputs.

    ``stride`` defaults to ``kernel_size``; zero ``padding`` is counted in the average
    when ``count_include_pad`` (PyTorch's default); ``divisor_override`` replaces the
    divisor. Integer inputs give float64.

    Example:
        >>> import numpy as np
        >>> avg_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2)
        array([[[[ 2.5,  4.5],
                 [10.5, 12.5]]]])
    """
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


def _adaptive_matrix(n, o, dtype, like):
    """``(o, n)`` averaging matrix of PyTorch's adaptive pooling bins
    ``[floor(i*n/o), ceil((i+1)*n/o))``, built in ``like``'s array module."""
    i = fnp.expand_dims(_arange_like(like, o), 1)
    j = fnp.expand_dims(_arange_like(like, n), 0)
    a, b = (i * n) // o, -((-(i + 1) * n) // o)
    inside = fnp.logical_and(j >= a, j < b)
    return fnp.where(inside, 1.0 / fnp.astype(b - a, dtype), 0.0)


def _adaptive_avg(op, nd, input, output_size):
    x = _arr(input)
    x, unbatched = _batched(x, nd, op)
    if isinstance(output_size, numbers.Integral) or output_size is None:
        output_size = (output_size,) * nd
    output_size = tuple(output_size)
    if len(output_size) != nd:
        raise FuncgradValueError(f"{op}: output_size must have {nd} entries, got {output_size}")
    dt = _float_dtype(x)
    letters = "abc"[:nd]
    outs = "xyz"[:nd]
    mats = []
    for i, o in enumerate(output_size):
        n = x.shape[2 + i]
        o = n if o is None else int(o)
        if o <= 0:
            raise FuncgradValueError(
                f"{op}: output_size entries must be positive, got {output_size}")
        mats.append(_adaptive_matrix(n, o, dt, x))
    spec = ("nc" + letters + "," + ",".join(f"{outs[i]}{letters[i]}" for i in range(nd))
            + "->nc" + outs)
    y = fnp.einsum(spec, x, *mats)
    return y[0] if unbatched else y


def adaptive_avg_pool1d(input, output_size):
    """1-D adaptive average pooling to ``output_size`` bins (PyTorch's bin edges)."""
    return _adaptive_avg("adaptive_avg_pool1d", 1, input, output_size)


def adaptive_avg_pool2d(input, output_size):
    """2-D adaptive average pooling: bins ``[floor(i*H/oh), ceil((i+1)*H/oh))``.

    ``output_size``: an int, or a pair whose entries may be None (keep that size).

    Example:
        >>> import numpy as np
        >>> adaptive_avg_pool2d(np.ones((2, 3, 7, 5)), (3, None)).shape
        (2, 3, 3, 5)
    """
    return _adaptive_avg("adaptive_avg_pool2d", 2, input, output_size)


# --------------------------------------------------------------------------------------
# normalization


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalization over every axis but the channel axis 1.

    Unlike PyTorch (which updates ``running_mean``/``running_var`` in place), this returns
    ``(output, new_running_mean, new_running_var)``:

    * ``training=True``: normalizes with the batch statistics; the new running
      statistics are ``(1 - momentum) * running + momentum * batch`` (the batch variance
      unbiased, as in PyTorch), computed without derivative. Running statistics may be
      None (then None is returned for them).
    * ``training=False``: normalizes with the running statistics, returned unchanged.

    Args:
      input: ``(N, C, *spatial)`` (or ``(N, C)``).
      running_mean, running_var: ``(C,)`` or None.
      weight, bias: the affine ``(C,)`` parameters, or None.
      momentum: the weight of the batch statistics in the update: a float, or a 0-d
        array (the BatchNorm layers pass ``1 / num_batches_tracked`` for PyTorch's
        ``momentum=None``); None means 0.1.

    Example:
        >>> import numpy as np
        >>> y, m, v = batch_norm(np.array([[1.0], [3.0]]), np.zeros(1), np.ones(1),
        ...                      training=True)
        >>> y.ravel(), m, v
        (array([-0.99999, 0.99999]), array([0.2]), array([1.1]))
    """
    x = _arr(input)
    if x.ndim < 2:
        raise FuncgradValueError(
            f"batch_norm: expected an input of shape (N, C, ...), got {tuple(x.shape)}")
    c = x.shape[1]
    for name, v in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if v is not None and tuple(v.shape) != (c,):
            raise FuncgradValueError(
                f"batch_norm: {name} of shape {tuple(v.shape)} does not match the {c} "
                f"channels of the input of shape {tuple(x.shape)}")
    axes = (0,) + tuple(range(2, x.ndim))
    if training:
        n = x.size // c
        if n <= 1:
            raise FuncgradValueError(
                f"batch_norm: expected more than 1 value per channel when training, got "
                f"input of shape {tuple(x.shape)}")
        mean = fnp.mean(x, axis=axes)
        var = fnp.mean(fnp.square(x - _bcast_channel(mean, x.ndim)), axis=axes)
        mom = 0.1 if momentum is None else momentum
        if isinstance(mom, numbers.Real):
            mom = float(mom)
        new_mean, new_var = running_mean, running_var
        if running_mean is not None:
            new_mean = (1 - mom) * running_mean + mom * funcgrad.stop_gradient(mean)
        if running_var is not None:
            new_var = (1 - mom) * running_var + mom * funcgrad.stop_gradient(var) * (n / (n - 1))
    else:
        if running_mean is None or running_var is None:
            raise FuncgradValueError(
                "batch_norm: training=False needs running_mean and running_var")
        mean, var = running_mean, running_var
        new_mean, new_var = running_mean, running_var
    y = (x - _bcast_channel(mean, x.ndim)) / fnp.sqrt(_bcast_channel(var, x.ndim) + eps)
    if weight is not None:
        y = y * _bcast_channel(weight, x.ndim)
    if bias is not None:
        y = y + _bcast_channel(bias, x.ndim)
    return y, new_mean, new_var


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalize over the last ``len(normalized_shape)`` axes (biased variance), then
    scale by ``weight`` and shift by ``bias`` (both of shape ``normalized_shape``).

    Example:
        >>> import numpy as np
        >>> layer_norm(np.array([[1.0, 3.0]]), (2,))
        array([[-0.99999,  0.99999]])
    """
    x = _arr(input)
    if isinstance(normalized_shape, numbers.Integral):
        normalized_shape = (int(normalized_shape),)
    normalized_shape = tuple(normalized_shape)
    k = len(normalized_shape)
    if tuple(x.shape[x.ndim - k:]) != normalized_shape or k > x.ndim:
        raise FuncgradValueError(
            f"layer_norm: normalized_shape {normalized_shape} does not match the trailing "
            f"axes of the input of shape {tuple(x.shape)}")
    axes = tuple(range(x.ndim - k, x.ndim))
    mean = fnp.mean(x, axis=axes, keepdims=True)
    xc = x - mean
    var = fnp.mean(fnp.square(xc), axis=axes, keepdims=True)
    y = xc / fnp.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalize ``(N, C, *spatial)`` inputs over groups of ``C // num_groups`` channels
    (and all spatial axes), then apply the per-channel ``weight``/``bias``.

    Raises FuncgradValueError when ``C`` is not divisible by ``num_groups``.
    """
    x = _arr(input)
    if x.ndim < 2 or x.shape[1] % num_groups:
        raise FuncgradValueError(
            f"group_norm: input of shape {tuple(x.shape)} must be (N, C, ...) with C "
            f"divisible by num_groups={num_groups}")
    n, c = x.shape[0], x.shape[1]
    g = fnp.reshape(x, (n, num_groups, -1))
    mean = fnp.mean(g, axis=2, keepdims=True)
    gc = g - mean
    var = fnp.mean(fnp.square(gc), axis=2, keepdims=True)
    y = fnp.reshape(gc / fnp.sqrt(var + eps), x.shape)
    if weight is not None:
        y = y * _bcast_channel(weight, x.ndim)
    if bias is not None:
        y = y + _bcast_channel(bias, x.ndim)
    return y


# --------------------------------------------------------------------------------------
# dropout and embedding


def dropout(input, p=0.5, training=True, *, key=None, train=None):
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    Args:
      input: any array.
      p: the drop probability, in ``[0, 1]``.
      training: apply dropout (PyTorch's flag); ``train=`` is accepted as an alias.
        When False (or ``p == 0``) the input is returned unchanged and no key is needed.
      key: a ``funcgrad.random`` key; the same key gives the same mask. The mask is
        drawn in the key's array module, so for a device (CuPy) input move the key to
        the device too (a NumPy key there raises a TypeError on mixing arrays).

    Raises FuncgradValueError if ``training`` and ``p > 0`` but no key is given.

    Example:
        >>> import numpy as np, funcgrad.random as fr
        >>> y = dropout(np.ones(1000), 0.25, key=fr.key(0))
        >>> sorted(set(y.tolist()))
        [0.0, 1.3333333333333333]
    """
    if train is not None:
        training = train
    x = _arr(input)
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise FuncgradValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if key is None:
        raise FuncgradValueError(
            "dropout: training=True needs a random key, e.g. key=funcgrad.random.key(0) "
            "(split it with funcgrad.random.split for each call); pass training=False for "
            "evaluation")
    if p == 1.0:
        return x * 0.0
    import funcgrad.random as fr
    keep = fr.bernoulli(key, 1.0 - p, tuple(x.shape))
    return fnp.where(keep, x / (1.0 - p), 0.0)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0):
    """Look up rows of ``weight`` ``(num_embeddings, dim)`` at the integer ``input``.

    ``padding_idx``: that row gets no gradient (its value is used as is).
    ``max_norm``: looked-up rows whose ``norm_type``-norm exceeds it are rescaled to it,
    giving PyTorch's output. PyTorch renormalizes ``weight`` in place and differentiates
    with respect to the renormalized rows; here ``weight`` is left unchanged and the
    gradient is that of the rescaled lookup with respect to the given ``weight`` (the
    scale is treated as a constant).

    Raises FuncgradValueError for out-of-range indices (checked on concrete indices).
    """
    idx = _arr(input)
    w = _arr(weight)
    if np.dtype(idx.dtype).kind not in "iu":
        raise FuncgradTypeError(
            f"embedding: indices must be integers, got dtype {idx.dtype}")
    if w.ndim != 2:
        raise FuncgradValueError(
            f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got {tuple(w.shape)}")
    n = w.shape[0]
    if _is_concrete(idx) and idx.size and (np.max(idx) >= n or np.min(idx) < -n):
        raise FuncgradValueError(
            f"embedding: indices must be in [0, {n}) for a weight of shape {tuple(w.shape)}; "
            f"got values in [{np.min(idx)}, {np.max(idx)}]")
    out = w[idx]
    if padding_idx is not None:
        pi = padding_idx + n if padding_idx < 0 else padding_idx
        out = fnp.where(fnp.expand_dims(idx == pi, -1), funcgrad.stop_gradient(out), out)
    if max_norm is not None:
        norms = fnp.sum(fnp.abs(funcgrad.stop_gradient(out)) ** float(norm_type), axis=-1,
                        keepdims=True) ** (1.0 / float(norm_type))
        scale = fnp.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
        out = out * scale
    return out


# --------------------------------------------------------------------------------------
# activations


def relu(input):
    """``max(x, 0)``; its derivative at 0 is 0 (as in PyTorch).

    Computed as ``x * (x > 0)``: NumPy's ``where`` is about ten times slower on the random
    masks ReLU sees. The one difference from PyTorch: ``relu(-inf)`` is NaN here, not 0.
    """
    x = _arr(input)
    return x * (x > 0)


def relu6(input):
    """``min(max(x, 0), 6)``."""
    x = _arr(input)
    return fnp.where(x > 0, fnp.where(x < 6, x, 6.0), 0.0)


def leaky_relu(input, negative_slope=0.01):
    """``x`` where ``x > 0``, else ``negative_slope * x``."""
    x = _arr(input)
    return fnp.where(x > 0, x, x * float(negative_slope))


def elu(input, alpha=1.0):
    """``x`` where ``x > 0``, else ``alpha * (exp(x) - 1)``; no overflow for large x."""
    x = _arr(input)
    neg = fnp.where(x > 0, 0.0, x)
    return fnp.where(x > 0, x, float(alpha) * fnp.expm1(neg))


_SQRT_PI = math.sqrt(math.pi)


def _erf_own(x):
    # |x| <= 2: erf(x) = 2/sqrt(pi) exp(-x^2) sum_k (2x^2)^k x / (2k+1)!!, all terms
    # positive (no cancellation); 30 terms reach double precision on [0, 2].
    # |x| > 2: erfc from its continued fraction (40 terms). Each branch sees clamped
    # inputs so the unused one stays finite and gradients never turn into NaN.
    small = fnp.abs(x) <= 2.0
    xs = fnp.where(small, x, 0.0)
    x2 = xs * xs
    term = xs
    s = xs
    for k in range(1, 30):
        term = term * x2 * (2.0 / (2 * k + 1))
        s = s + term
    erf_small = (2.0 / _SQRT_PI) * fnp.exp(-x2) * s
    a = fnp.where(small, 2.0, fnp.abs(x))
    f = a
    for k in range(40, 0, -1):
        f = a + (k / 2.0) / f
    erfc_large = fnp.exp(-a * a) / (_SQRT_PI * f)
    erf_large = fnp.where(x > 0, 1.0 - erfc_large, erfc_large - 1.0)
    return fnp.where(small, erf_small, erf_large)


def erf(input):
    """The error function, accurate to double precision, differentiable to any order.

    Uses ``funcgrad.scipy.special.erf`` when funcgrad provides it, else a series
    (``|x| <= 2``) / continued fraction (``|x| > 2``) evaluation in ``funcgrad.numpy``.
    """
    x = _arr(input)
    if np.dtype(x.dtype).kind not in "f":
        x = fnp.astype(x, np.float64)
    try:
        from funcgrad.scipy.special import erf as _erf
    except ImportError:
        _erf = None
    return _erf(x) if _erf is not None else _erf_own(x)


def gelu(input, approximate="none"):
    """Gaussian error linear unit ``x * Phi(x)``.

    ``approximate='none'`` uses the exact ``erf``; ``'tanh'`` uses
    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` (as in PyTorch).
    """
    x = _arr(input)
    if approximate == "none":
        return 0.5 * x * (1.0 + erf(x * (1.0 / math.sqrt(2.0))))
    if approximate == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1.0 + fnp.tanh(inner))
    raise FuncgradValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def sigmoid(input):
    """``1 / (1 + exp(-x))``, computed without overflow for any x."""
    x = _arr(input)
    pos = x >= 0
    e = fnp.exp(fnp.where(pos, -x, x))       # exp(-|x|) <= 1, with the right derivative
    return fnp.where(pos, 1.0 / (1.0 + e), e / (1.0 + e))


def silu(input):
    """``x * sigmoid(x)`` (also called swish)."""
    x = _arr(input)
    return x * sigmoid(x)


def tanh(input):
    """Hyperbolic tangent."""
    return fnp.tanh(_arr(input))


def softplus(input, beta=1.0, threshold=20.0):
    """``log(1 + exp(beta x)) / beta``, linear above ``beta x > threshold`` (PyTorch)."""
    x = _arr(input)
    bx = x * float(beta)
    pos = bx > 0
    sp = fnp.where(pos, bx, 0.0) + fnp.log1p(fnp.exp(fnp.where(pos, -bx, bx)))
    return fnp.where(bx > threshold, x, sp / float(beta))


def logsigmoid(input):
    """``log(sigmoid(x)) = -softplus(-x)``, stable for large ``|x|``."""
    x = _arr(input)
    pos = x > 0
    return fnp.where(pos, 0.0, x) - fnp.log1p(fnp.exp(fnp.where(pos, -x, x)))


def log_softmax(input, axis=None, *, dim=None):
    """``x - logsumexp(x, axis)`` computed stably (max subtracted first).

    ``axis`` (PyTorch: ``dim``) defaults to the last axis.
    """
    x = _arr(input)
    axis = _axis(axis, dim, -1, "log_softmax")
    m = funcgrad.stop_gradient(fnp.max(x, axis=axis, keepdims=True))
    m = fnp.where(fnp.isfinite(m), m, 0.0)
    shifted = x - m
    return shifted - fnp.log(fnp.sum(fnp.exp(shifted), axis=axis, keepdims=True))


def softmax(input, axis=None, *, dim=None):
    """``exp(x) / sum(exp(x), axis)`` computed stably; ``axis`` defaults to the last.

    Example:
        >>> import numpy as np
        >>> softmax(np.array([1000.0, 1000.0]))
        array([0.5, 0.5])
    """
    x = _arr(input)
    axis = _axis(axis, dim, -1, "softmax")
    m = funcgrad.stop_gradient(fnp.max(x, axis=axis, keepdims=True))
    m = fnp.where(fnp.isfinite(m), m, 0.0)
    e = fnp.exp(x - m)
    return e / fnp.sum(e, axis=axis, keepdims=True)


# --------------------------------------------------------------------------------------
# one_hot and resampling


def one_hot(tensor, num_classes=-1, dtype=np.int64):
    """``(..., num_classes)`` indicator array of integer class indices.

    ``num_classes=-1`` infers ``max + 1`` (concrete indices only). Out-of-range indices
    raise FuncgradValueError (checked when the indices are concrete: reads back their
    min and max, two scalars). ``dtype`` defaults to int64 (PyTorch's); pass a float
    dtype to use the result in arithmetic directly. The result is in the indices' array
    module (NumPy or CuPy).
    """
    t = _arr(tensor)
    if np.dtype(t.dtype).kind not in "iu":
        raise FuncgradTypeError(f"one_hot: class indices must be integers, got {t.dtype}")
    concrete = _is_concrete(t)
    if num_classes == -1:
        if not concrete:
            raise FuncgradValueError("one_hot: pass num_classes when the indices are traced")
        num_classes = int(fnp.max(t)) + 1 if t.size else 0
    if concrete and t.size:
        lo, hi = int(fnp.min(t)), int(fnp.max(t))     # two scalars read back, not t
        if lo < 0 or hi >= num_classes:
            raise FuncgradValueError(
                f"one_hot: class indices must be in [0, {num_classes}), got values in "
                f"[{lo}, {hi}]")
    return fnp.astype(fnp.expand_dims(t, -1) == _arange_like(t, num_classes, t.dtype), dtype)


def _source_index(n_in, n_out, scale_factor, align_corners, cubic=False):
    """PyTorch's area_pixel_compute_source_index for linear/cubic modes."""
    dst = np.arange(n_out, dtype=np.float64)
    if align_corners:
        scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        return dst * scale
    scale = 1.0 / scale_factor if scale_factor else n_in / n_out
    src = scale * (dst + 0.5) - 0.5
    return src if cubic else np.maximum(src, 0.0)


def _linear_matrix(n_in, n_out, scale_factor, align_corners):
    src = _source_index(n_in, n_out, scale_factor, align_corners)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = src - i0
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), i0), 1.0 - lam)
    np.add.at(m, (np.arange(n_out), i1), lam)
    return m


def _cubic_matrix(n_in, n_out, scale_factor, align_corners, A=-0.75):
    src = _source_index(n_in, n_out, scale_factor, align_corners, cubic=True)
    i = np.floor(src).astype(np.int64)
    t = src - i

    def near(z):       # |z| <= 1
        return ((A + 2) * z - (A + 3)) * z * z + 1

    def far(z):        # 1 < |z| < 2
        return ((A * z - 5 * A) * z + 8 * A) * z - 4 * A

    ws = [far(t + 1), near(t), near(1 - t), far(2 - t)]
    m = np.zeros((n_out, n_in))
    for off, w in zip((-1, 0, 1, 2), ws):
        np.add.at(m, (np.arange(n_out), np.clip(i + off, 0, n_in - 1)), w)
    return m


def _nearest_index(n_in, n_out, scale_factor, exact):
    scale = 1.0 / scale_factor if scale_factor else n_in / n_out
    dst = np.arange(n_out, dtype=np.float64)
    src = np.floor((dst + 0.5) * scale) if exact else np.floor(dst * scale)
    return np.minimum(src.astype(np.int64), n_in - 1)


_MODE_RANK = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resample the spatial axes of ``(N, C, *spatial)`` inputs, as PyTorch does.

    Args:
      size: output spatial size (int or tuple); or
      scale_factor: float or tuple; the output size is ``floor(in * scale_factor)`` and,
        unless ``recompute_scale_factor=True``, ``1 / scale_factor`` is the sampling step.
      mode: ``'nearest'``, ``'nearest-exact'``, ``'linear'`` (3-D input),
        ``'bilinear'``/``'bicubic'`` (4-D), ``'trilinear'`` (5-D), ``'area'``.
      align_corners: for the linear and cubic modes (default False).

    ``antialias=True`` is not supported. Linear, cubic and area modes are separable
    matrix products; nearest modes gather.

    Example:
        >>> import numpy as np
        >>> interpolate(np.array([[[0.0, 1.0]]]), scale_factor=2, mode="linear")
        array([[[0.  , 0.25, 0.75, 1.  ]]])
    """
    x = _arr(input)
    nd = x.ndim - 2
    if nd < 1:
        raise FuncgradValueError(
            f"interpolate: expected an input of shape (N, C, *spatial), got {tuple(x.shape)}")
    if antialias:
        raise FuncgradValueError("interpolate: antialias=True is not supported")
    if mode in _MODE_RANK and _MODE_RANK[mode] != nd:
        raise FuncgradValueError(
            f"interpolate: mode {mode!r} needs a {_MODE_RANK[mode] + 2}-D input, got shape "
            f"{tuple(x.shape)}")
    if mode not in ("nearest", "nearest-exact", "area") and mode not in _MODE_RANK:
        raise FuncgradValueError(f"interpolate: unsupported mode {mode!r}")
    if align_corners is not None and mode not in _MODE_RANK:
        raise FuncgradValueError(
            f"interpolate: align_corners only applies to linear/cubic modes, not {mode!r}")
    if (size is None) == (scale_factor is None):
        raise FuncgradValueError("interpolate: give exactly one of size and scale_factor")
    spatial = tuple(x.shape[2:])
    if size is not None:
        out = _ntuple(size, nd, "size", "interpolate")
        scales = (None,) * nd
    else:
        sf = (float(scale_factor),) * nd if isinstance(scale_factor, numbers.Real) else tuple(
            float(s) for s in scale_factor)
        if len(sf) != nd:
            raise FuncgradValueError(f"interpolate: scale_factor must have {nd} entries")
        out = tuple(int(math.floor(n * s)) for n, s in zip(spatial, sf))
        scales = (None,) * nd if recompute_scale_factor else sf
    if mode == "area":
        return _adaptive_avg("interpolate", nd, x, out)
    dt = _float_dtype(x)
    if mode in ("nearest", "nearest-exact"):
        y = x
        for i in range(nd):
            idx = _nearest_index(spatial[i], out[i], scales[i], mode == "nearest-exact")
            y = _gather_axis(y, idx, 2 + i)
        return y
    if np.dtype(x.dtype) != dt:
        x = fnp.astype(x, dt)
    y = x
    for i in range(nd):
        if mode == "bicubic":
            m = _cubic_matrix(spatial[i], out[i], scales[i], bool(align_corners))
        else:
            m = _linear_matrix(spatial[i], out[i], scales[i], bool(align_corners))
        y = fnp.moveaxis(fnp.tensordot(y, m.astype(dt), axes=([2 + i], [1])), -1, 2 + i)
    return y


# --------------------------------------------------------------------------------------
# attention


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, *, dropout_key=None):
    """``softmax(q @ k^T * scale + mask) @ v`` over the last two axes.

    ``attn_mask``: boolean (True = may attend) or additive float, broadcast to
    ``(..., L, S)``. ``is_causal`` masks out future positions. ``scale`` defaults to
    ``1 / sqrt(E)``. ``dropout_p > 0`` drops attention weights with ``dropout_key``
    (the keyword is not ``key``, which is the keys array, as in PyTorch).
    """
    q, k, v = _arr(query), _arr(key), _arr(value)
    L, S, E = q.shape[-2], k.shape[-2], q.shape[-1]
    scale = 1.0 / math.sqrt(E) if scale is None else float(scale)
    scores = fnp.matmul(q * scale, fnp.swapaxes(k, -1, -2))
    if is_causal:
        causal = (fnp.expand_dims(_arange_like(scores, L), 1)      # j <= i, in the
                  >= fnp.expand_dims(_arange_like(scores, S), 0))  # inputs' module
        scores = fnp.where(causal, scores, -math.inf)
    if attn_mask is not None:
        m = _arr(attn_mask)
        if np.dtype(m.dtype) == np.bool_:
            scores = fnp.where(m, scores, -math.inf)
        else:
            scores = scores + m
    w = softmax(scores, axis=-1)
    if dropout_p > 0.0:
        w = dropout(w, dropout_p, True, key=dropout_key)
    return fnp.matmul(w, v)


# --------------------------------------------------------------------------------------
# losses


def mse_loss(input, target, reduction="mean"):
    """Mean squared error ``(input - target) ** 2``, reduced."""
    d = _arr(input) - _arr(target)
    return _reduce(d * d, reduction, "mse_loss")


def l1_loss(input, target, reduction="mean"):
    """Mean absolute error ``|input - target|``, reduced (derivative 0 at equality)."""
    return _reduce(fnp.abs(_arr(input) - _arr(target)), reduction, "l1_loss")


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """``0.5 d^2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (``beta=0``: L1)."""
    d = fnp.abs(_arr(input) - _arr(target))
    if beta == 0:
        return _reduce(d, reduction, "smooth_l1_loss")
    loss = fnp.where(d < beta, (0.5 / beta) * d * d, d - 0.5 * beta)
    return _reduce(loss, reduction, "smooth_l1_loss")


def huber_loss(input, target, reduction="mean", delta=1.0):
    """``0.5 d^2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``."""
    d = fnp.abs(_arr(input) - _arr(target))
    loss = fnp.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta))
    return _reduce(loss, reduction, "huber_loss")


def _class_targets(op, logp, target, cax, ignore_index):
    """Boolean mask (input's shape) of each element's target class; validates targets."""
    c = logp.shape[cax]
    t = _arr(target)
    expected = tuple(logp.shape[:cax]) + tuple(logp.shape[cax + 1:])
    if tuple(t.shape) != expected:
        raise FuncgradValueError(
            f"{op}: target of shape {tuple(t.shape)} does not match input of shape "
            f"{tuple(logp.shape)}; class-index targets have the input's shape without the "
            f"class axis, i.e. {expected}")
    if _is_concrete(t) and t.size:
        # Computed in t's module; only one boolean is read back (and the offending values
        # on the error path), so device targets are not copied to the host. Traced
        # targets (under jit, grad of the targets...) are not validated.
        bad = fnp.logical_and(t != ignore_index, fnp.logical_or(t < 0, t >= c))
        if bool(fnp.any(bad)):
            vals = funcgrad.device_put(t[bad], "cpu")
            raise FuncgradValueError(
                f"{op}: target values must be class indices in [0, {c}) or ignore_index="
                f"{ignore_index}; got {np.ravel(vals)[:5].tolist()}")
    classes = fnp.reshape(_arange_like(t, c, t.dtype),
                          tuple(c if i == cax else 1 for i in range(logp.ndim)))
    valid = t != ignore_index
    return (fnp.expand_dims(t, cax) == classes) & fnp.expand_dims(valid, cax), valid


def _nll(op, logp, target, weight, ignore_index, reduction, label_smoothing=0.0):
    cax = 1 if logp.ndim >= 2 else 0
    c = logp.shape[cax]
    if weight is not None:
        weight = _arr(weight)
        if tuple(weight.shape) != (c,):
            raise FuncgradValueError(
                f"{op}: weight of shape {tuple(weight.shape)} must be ({c},), one per class")
    mask, valid = _class_targets(op, logp, target, cax, ignore_index)
    picked = fnp.sum(fnp.where(mask, logp, 0.0), axis=cax)
    if weight is not None:
        wb = _bcast_channel(weight, logp.ndim, cax)
        wt = fnp.sum(fnp.where(mask, wb, 0.0), axis=cax)      # weight of each target
    else:
        wt = fnp.astype(valid, logp.dtype)
    loss = -picked * wt
    if label_smoothing:
        smooth = -fnp.sum(logp * wb if weight is not None else logp, axis=cax)
        smooth = fnp.where(valid, smooth, 0.0)
        loss = (1.0 - label_smoothing) * loss + (label_smoothing / c) * smooth
    if reduction == "mean":
        return fnp.sum(loss) / fnp.sum(wt)
    return _reduce(loss, reduction, op)


def _check_reduction(op, reduction):
    if reduction not in ("mean", "sum", "none"):
        raise FuncgradValueError(
            f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of log-probabilities ``input`` ``(N, C, ...)`` or ``(C,)``
    at integer ``target`` ``(N, ...)``.

    ``weight`` ``(C,)`` rescales each class; ``reduction='mean'`` divides by the summed
    weights of the non-ignored targets (PyTorch's rule); targets equal to
    ``ignore_index`` contribute nothing.
    """
    _check_reduction("nll_loss", reduction)
    return _nll("nll_loss", _arr(input), target, weight, ignore_index, reduction)


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """Cross-entropy of logits ``input`` ``(N, C, ...)`` or ``(C,)`` (the class axis is 1,
    or 0 when unbatched) against ``target``:

    * class indices (integers, shape ``(N, ...)``): ``weight``, ``ignore_index`` and
      ``label_smoothing`` as in PyTorch; ``reduction='mean'`` divides by the summed
      weights of the non-ignored targets;
    * class probabilities (floats, the input's shape): ``label_smoothing`` mixes them
      with the uniform distribution; ``'mean'`` averages over the batch elements.

    Stable for extreme logits (log-sum-exp with the max subtracted; gradients stay
    finite). Raises FuncgradValueError for mismatched shapes or out-of-range targets.
    Targets are checked when concrete: on a device (CuPy) array the check runs there and
    reads back one boolean; traced targets (under ``jit``) are not checked.

    Example:
        >>> import numpy as np
        >>> x = np.array([[1e4, 0.0], [0.0, 0.0]])
        >>> cross_entropy(x, np.array([1, 0]), reduction="none")
        array([1.00000000e+04, 6.93147181e-01])
    """
    _check_reduction("cross_entropy", reduction)
    x = _arr(input)
    if x.ndim < 1:
        raise FuncgradValueError("cross_entropy: input must have a class axis")
    ls = float(label_smoothing)
    if not 0.0 <= ls <= 1.0:
        raise FuncgradValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {ls}")
    cax = 1 if x.ndim >= 2 else 0
    logp = log_softmax(x, axis=cax)
    t = _arr(target)
    if np.dtype(t.dtype).kind in "iu":
        return _nll("cross_entropy", logp, t, weight, ignore_index, reduction, ls)
    if tuple(t.shape) != tuple(x.shape):
        raise FuncgradValueError(
            f"cross_entropy: probability targets must have the input's shape "
            f"{tuple(x.shape)}, got {tuple(t.shape)} (integer targets are class indices)")
    c = x.shape[cax]
    if ls:
        t = t * (1.0 - ls) + ls / c
    prod = logp * t
    if weight is not None:
        weight = _arr(weight)
        if tuple(weight.shape) != (c,):
            raise FuncgradValueError(
                f"cross_entropy: weight of shape {tuple(weight.shape)} must be ({c},)")
        prod = prod * _bcast_channel(weight, x.ndim, cax)
    # where(t == 0) keeps -inf logits of zero-probability classes from giving NaN
    loss = -fnp.sum(fnp.where(t == 0, 0.0, prod), axis=cax)
    return _reduce(loss, reduction, "cross_entropy")


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """``-(t log p + (1 - t) log(1 - p))`` of probabilities ``p`` in ``[0, 1]``, with the
    logarithms clamped at -100 (as in PyTorch), optionally weighted.

    Prefer :func:`binary_cross_entropy_with_logits` for numerical stability.
    Raises FuncgradValueError for (concrete) probabilities outside ``[0, 1]``.
    """
    p, t = _arr(input), _arr(target)
    if tuple(p.shape) != tuple(t.shape):
        raise FuncgradValueError(
            f"binary_cross_entropy: target of shape {tuple(t.shape)} must have the input's "
            f"shape {tuple(p.shape)}")
    if _is_concrete(p) and p.size and (np.min(p) < 0 or np.max(p) > 1):
        raise FuncgradValueError(
            "binary_cross_entropy: input probabilities must be in [0, 1] (pass logits to "
            "binary_cross_entropy_with_logits instead)")

    def clamped_log(z):
        ok = z > 0
        return fnp.where(ok, fnp.maximum(fnp.log(fnp.where(ok, z, 1.0)), -100.0), -100.0)

    loss = -(t * clamped_log(p) + (1.0 - t) * clamped_log(1.0 - p))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean",
                                     pos_weight=None):
    """Sigmoid + binary cross-entropy in one stable expression:
    ``(1 - t) x + (1 + (pos_weight - 1) t) softplus(-x)``.

    ``weight`` rescales each element; ``pos_weight`` (broadcast along the last axis, as
    in PyTorch) rescales the positive term.

    Example:
        >>> import numpy as np
        >>> binary_cross_entropy_with_logits(np.array([-800.0, 800.0]), np.array([1.0, 1.0]),
        ...                                  reduction="none")
        array([800.,   0.])
    """
    x, t = _arr(input), _arr(target)
    if tuple(x.shape) != tuple(t.shape):
        raise FuncgradValueError(
            f"binary_cross_entropy_with_logits: target of shape {tuple(t.shape)} must have "
            f"the input's shape {tuple(x.shape)}")
    sp_neg = -logsigmoid(x)            # softplus(-x) = -log(sigmoid(x))
    if pos_weight is not None:
        loss = (1.0 - t) * x + (1.0 + (pos_weight - 1.0) * t) * sp_neg
    else:
        loss = (1.0 - t) * x + sp_neg
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


def kl_div(input, target, reduction="mean", log_target=False):
    """Kullback-Leibler divergence pointwise ``target * (log target - input)`` where
    ``input`` holds log-probabilities (PyTorch's convention; ``log_target=True``: the
    target is given as log-probabilities too). Zero targets contribute 0.

    ``reduction``: ``'mean'`` (over all elements, PyTorch's default), ``'batchmean'``
    (sum / batch size: the true KL divergence), ``'sum'``, ``'none'``.
    """
    x, t = _arr(input), _arr(target)
    if log_target:
        loss = fnp.exp(t) * (t - x)
    else:
        pos = t > 0
        loss = fnp.where(pos, t * (fnp.log(fnp.where(pos, t, 1.0)) - x), 0.0 * x)
    if reduction == "batchmean":
        return fnp.sum(loss) / (x.shape[0] if x.ndim else 1)
    return _reduce(loss, reduction, "kl_div")


def cosine_similarity(x1, x2, axis=None, eps=1e-8, *, dim=None):
    """``sum(x1 * x2) / (max(|x1|, eps) * max(|x2|, eps))`` along ``axis`` (PyTorch's
    ``dim``, default 1), broadcasting ``x1`` and ``x2``.

    Values equal PyTorch's. Where a norm is below ``eps`` the gradient is that of the
    clamped function (PyTorch's also differentiates the unclamped norm there); a zero
    vector gets a finite gradient.
    """
    a, b = _arr(x1), _arr(x2)
    axis = _axis(axis, dim, 1, "cosine_similarity")
    a, b = fnp.broadcast_arrays(a, b)
    return fnp.sum((a / _clamped_norm(a, axis, eps)) * (b / _clamped_norm(b, axis, eps)),
                   axis=axis)


def _clamped_norm(a, axis, eps):
    s = fnp.sum(a * a, axis=axis, keepdims=True)
    pos = s > 0      # sqrt's derivative is infinite at 0: keep it out of the gradient
    return fnp.maximum(fnp.where(pos, fnp.sqrt(fnp.where(pos, s, 1.0)), 0.0), eps)
