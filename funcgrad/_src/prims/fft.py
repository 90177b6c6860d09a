"""Discrete Fourier transforms: three primitives (complex-to-complex, real-to-complex,
complex-to-real) with their rules, and the ``funcgrad.numpy.fft`` functions built on them.

Every transform is linear, so its forward rule is the transform of the tangent. Reverse
rules are plain transposes (JAX's convention: the pairing ``real(sum(a * b))``, no
conjugation):

* the complex DFT matrix is symmetric, so ``fft``'s transpose is ``fft`` itself (same
  ``norm``), and ``ifft``'s is ``ifft``;
* ``rfft`` keeps half of the spectrum of a real signal; its transpose is a Hermitian
  ``irfft`` of the conjugated cotangent with the interior bins weighted by 1/2 (each of
  them stands for two bins of the full spectrum), at the scale of the swapped ``norm``;
* ``irfft`` counts each interior bin twice and ignores the imaginary part of the zero
  (and, for even lengths, the Nyquist) bin; its transpose is the conjugated ``rfft`` of
  the cotangent with the interior bins weighted by 2.

Zero-padding and cropping (the ``n``/``s`` arguments) happen before the primitives, as
differentiable slicing and concatenation, so the primitives never change lengths.
"""
from __future__ import annotations

import numpy as np

from ..backend import dtype_name
from ..core import Primitive, bind, def_rules
from ..errors import FuncgradTypeError, FuncgradValueError
from . import shape as _shape
from .creation import zeros_like
from .elementwise import conj

__all__ = ["fft", "fft2", "fftfreq", "fftn", "fftshift", "hfft", "ifft", "ifft2", "ifftn",
           "ifftshift", "ihfft", "irfft", "irfft2", "irfftn", "rfft", "rfft2", "rfftfreq",
           "rfftn"]

_NORMS = ("backward", "ortho", "forward")
_SWAP = {"backward": "forward", "ortho": "ortho", "forward": "backward"}


# ---- the primitives ------------------------------------------------------------------------
# (the one-axis case calls NumPy's 1-D functions: same result, less overhead)
def _c2c_impl(x, axes, inverse, norm):
    if len(axes) == 1:
        return (np.fft.ifft if inverse else np.fft.fft)(x, axis=axes[0], norm=norm)
    return (np.fft.ifftn if inverse else np.fft.fftn)(x, axes=axes, norm=norm)


def _r2c_impl(x, axes, norm):
    if len(axes) == 1:
        return np.fft.rfft(x, axis=axes[0], norm=norm)
    return np.fft.rfftn(x, axes=axes, norm=norm)


def _c2r_impl(y, axes, n, norm):
    if len(axes) == 1:
        return np.fft.irfft(y, n, axis=axes[0], norm=norm)
    s = [y.shape[ax] for ax in axes[:-1]] + [n]
    return np.fft.irfftn(y, s=s, axes=axes, norm=norm)


# ---- batching (vmap): batch axis first, transform axes shifted by one --------------------
def _fft_batch(prim):
    def rule(vals, dims, axes, **params):
        (v,), (d,) = vals, dims
        if d != 0:
            v = _shape.moveaxis(v, d, 0)
        return bind(prim, v, axes=tuple(a + 1 for a in axes), **params), 0
    return rule


c2c_p = Primitive("fft", _c2c_impl)
def_rules(c2c_p,
          jvp=(lambda t, ans, x, axes, inverse, norm:
                   bind(c2c_p, t, axes=axes, inverse=inverse, norm=norm),),
          vjp=(lambda g, ans, x, axes, inverse, norm: _shape.unbroadcast(
                   bind(c2c_p, g, axes=axes, inverse=inverse, norm=norm), x),),
          batch=_fft_batch(c2c_p))

r2c_p = Primitive("rfft", _r2c_impl)


def _r2c_vjp(g, ans, x, axes, norm):
    n = x.shape[axes[-1]]
    w = _half_weights(n, axes[-1], x.ndim, _real_dtype(g.dtype), 0.5)
    return bind(c2r_p, conj(g) * w, axes=axes, n=n, norm=_SWAP[norm])


def_rules(r2c_p,
          jvp=(lambda t, ans, x, axes, norm: bind(r2c_p, t, axes=axes, norm=norm),),
          vjp=(_r2c_vjp,),
          batch=_fft_batch(r2c_p))

c2r_p = Primitive("irfft", _c2r_impl)


def _c2r_vjp(g, ans, y, axes, n, norm):
    w = _half_weights(n, axes[-1], y.ndim, g.dtype, 2)
    return conj(bind(r2c_p, g, axes=axes, norm=_SWAP[norm])) * w


def_rules(c2r_p,
          jvp=(lambda t, ans, y, axes, n, norm: bind(c2r_p, t, axes=axes, n=n, norm=norm),),
          vjp=(_c2r_vjp,),
          batch=_fft_batch(c2r_p))


def _half_weights(n, axis, ndim, dtype, interior):
    """Weights along ``axis`` for the ``n // 2 + 1`` bins of a length-``n`` real signal:
    1 for the zero bin and (even ``n``) the Nyquist bin, ``interior`` for the others."""
    w = np.full(n // 2 + 1, interior, dtype=dtype)
    w[0] = 1
    if n % 2 == 0:
        w[-1] = 1
    shape = [1] * ndim
    shape[axis] = w.shape[0]
    return w.reshape(shape)


def _real_dtype(dtype):
    return np.empty(0, dtype).real.dtype


# ---- argument handling -----------------------------------------------------------------
def _norm(norm, op):
    if norm is None:
        return "backward"
    if norm not in _NORMS:
        raise FuncgradValueError(
            f"fft.{op}: norm must be one of {_NORMS} (or None), got {norm!r}")
    return norm


def _no_out(out, op):
    if out is not None:
        raise FuncgradTypeError(f"fft.{op}: out= is not supported (arrays are immutable); "
                                "use the result")


def _input(a, op, real=False):
    a = _shape._as_array(a)
    kind = a.dtype.kind
    if real:
        if kind == "c":
            raise FuncgradTypeError(
                f"fft.{op}: input {dtype_name(a)} is complex; {op} takes a real signal (use "
                "fft/fftn for complex input, or pass x.real)")
        if kind != "f" or a.dtype.itemsize not in (4, 8):
            a = _shape.astype(a, np.float32 if a.dtype == np.float16 else np.float64)
    else:
        if kind not in "fc":
            a = _shape.astype(a, np.float64)
        elif a.dtype.itemsize == 2:
            a = _shape.astype(a, np.float32)
    return a


def _complex(a):
    """``a`` as complex of the same precision (``irfft`` and friends take a spectrum)."""
    if a.dtype.kind == "c":
        return a
    return _shape.astype(a, np.complex64 if a.dtype == np.float32 else np.complex128)


def _resize(x, axes, sizes):
    """Crop or zero-pad ``x`` to ``sizes`` along ``axes`` (at the end), differentiably."""
    for ax, n in zip(axes, sizes):
        have = x.shape[ax]
        if have > n:
            x = x[(slice(None),) * ax + (slice(0, n),)]
        elif have < n:
            pad_shape = list(x.shape)
            pad_shape[ax] = n - have
            x = _shape.concatenate([x, zeros_like(x, shape=tuple(pad_shape))], axis=ax)
    return x


def _check_len(n, op):
    if n < 1:
        raise FuncgradValueError(f"fft.{op}: invalid number of data points ({n}); it must "
                                 "be at least 1")


def _axes_sizes(a, s, axes, op, c2r=False):
    """NumPy's rules for ``s`` and ``axes``: normalized axes, and the length per axis."""
    nd = a.ndim
    if axes is None:
        axes = list(range(nd)) if s is None else list(range(nd - len(s), nd))
    else:
        axes = [axes] if isinstance(axes, (int, np.integer)) else list(axes)
    axes = [_shape.normalize_axis(ax, nd, f"fft.{op}") for ax in axes]
    if len(set(axes)) != len(axes):
        raise FuncgradValueError(f"fft.{op}: repeated axes {axes} are not supported")
    if s is None:
        sizes = [a.shape[ax] for ax in axes]
        if c2r and axes:
            sizes[-1] = 2 * (sizes[-1] - 1)
    else:
        s = list(s)
        if len(s) != len(axes):
            raise FuncgradValueError(f"fft.{op}: s {tuple(s)} and axes {tuple(axes)} differ "
                                     "in length")
        sizes = []
        for i, (ax, n) in enumerate(zip(axes, s)):
            if n is None or n == -1:
                n = a.shape[ax]
                if c2r and i == len(axes) - 1:
                    n = 2 * (n - 1)
            sizes.append(int(n))
    for n in sizes:
        _check_len(n, op)
    if not axes:
        raise FuncgradValueError(f"fft.{op}: needs at least one axis")
    return tuple(axes), sizes


# ---- complex transforms ----------------------------------------------------------------
def _c2c(a, s, axes, norm, inverse, op):
    a = _input(a, op)
    axes, sizes = _axes_sizes(a, s, axes, op)
    a = _resize(a, axes, sizes)
    return bind(c2c_p, a, axes=axes, inverse=inverse, norm=_norm(norm, op))


def fft(a, n=None, axis=-1, norm=None, out=None):
    """One-dimensional discrete Fourier transform along ``axis``.

    ``n`` crops or zero-pads the input first; ``norm`` is ``"backward"`` (default, no
    scaling), ``"ortho"`` or ``"forward"``. Real input gives a complex result (float32 ->
    complex64); differentiable to any order, complex input included.

    Example:
        >>> import numpy as np, funcgrad.numpy as fnp
        >>> fnp.fft.fft(np.array([1., 0., 0., 0.]))
        array([1.+0.j, 1.+0.j, 1.+0.j, 1.+0.j])
    """
    _no_out(out, "fft")
    return _c2c(a, None if n is None else [n], [axis], norm, False, "fft")


def ifft(a, n=None, axis=-1, norm=None, out=None):
    """Inverse of :func:`fft` (``norm="backward"`` scales by ``1/n``)."""
    _no_out(out, "ifft")
    return _c2c(a, None if n is None else [n], [axis], norm, True, "ifft")


def fftn(a, s=None, axes=None, norm=None, out=None):
    """N-dimensional DFT over ``axes`` (all axes, or the last ``len(s)``, by default);
    ``s`` gives the length per axis (crop or zero-pad)."""
    _no_out(out, "fftn")
    return _c2c(a, s, axes, norm, False, "fftn")


def ifftn(a, s=None, axes=None, norm=None, out=None):
    """Inverse of :func:`fftn`."""
    _no_out(out, "ifftn")
    return _c2c(a, s, axes, norm, True, "ifftn")


def fft2(a, s=None, axes=(-2, -1), norm=None, out=None):
    """Two-dimensional DFT (:func:`fftn` over the last two axes by default)."""
    _no_out(out, "fft2")
    return _c2c(a, s, axes, norm, False, "fft2")


def ifft2(a, s=None, axes=(-2, -1), norm=None, out=None):
    """Inverse of :func:`fft2`."""
    _no_out(out, "ifft2")
    return _c2c(a, s, axes, norm, True, "ifft2")


# ---- real transforms -------------------------------------------------------------------
def _r2c(a, s, axes, norm, op):
    a = _input(a, op, real=True)
    axes, sizes = _axes_sizes(a, s, axes, op)
    a = _resize(a, axes, sizes)
    return bind(r2c_p, a, axes=axes, norm=_norm(norm, op))


def _c2r(a, s, axes, norm, op):
    a = _complex(_input(a, op))
    axes, sizes = _axes_sizes(a, s, axes, op, c2r=True)
    n = sizes[-1]
    a = _resize(a, axes, sizes[:-1] + [n // 2 + 1])
    return bind(c2r_p, a, axes=axes, n=n, norm=_norm(norm, op))


def rfft(a, n=None, axis=-1, norm=None, out=None):
    """DFT of a real signal: the ``n // 2 + 1`` non-negative frequency bins.

    Complex input raises ``FuncgradTypeError`` (use :func:`fft`). The reverse rule is the
    exact transpose (a Hermitian-weighted :func:`irfft`), so gradients of real losses of
    the spectrum are right, including the zero and Nyquist bins.

    Example:
        >>> import numpy as np, funcgrad.numpy as fnp
        >>> fnp.fft.rfft(np.array([1., 1., 1., 1.]))
        array([4.+0.j, 0.+0.j, 0.+0.j])
    """
    _no_out(out, "rfft")
    return _r2c(a, None if n is None else [n], [axis], norm, "rfft")


def irfft(a, n=None, axis=-1, norm=None, out=None):
    """Inverse of :func:`rfft`: a real signal of length ``n`` (default ``2 * (m - 1)`` for
    ``m`` input bins) from its non-negative frequency bins. As in NumPy, the imaginary
    parts of the zero bin (and, for even ``n``, of the Nyquist bin) are ignored, and so
    they get zero gradient."""
    _no_out(out, "irfft")
    return _c2r(a, None if n is None else [n], [axis], norm, "irfft")


def rfftn(a, s=None, axes=None, norm=None, out=None):
    """N-dimensional DFT of a real array; the last axis keeps ``s[-1] // 2 + 1`` bins."""
    _no_out(out, "rfftn")
    return _r2c(a, s, axes, norm, "rfftn")


def irfftn(a, s=None, axes=None, norm=None, out=None):
    """Inverse of :func:`rfftn`; ``s`` gives the output lengths (the last defaults to
    ``2 * (m - 1)``)."""
    _no_out(out, "irfftn")
    return _c2r(a, s, axes, norm, "irfftn")


def rfft2(a, s=None, axes=(-2, -1), norm=None, out=None):
    """:func:`rfftn` over the last two axes."""
    _no_out(out, "rfft2")
    return _r2c(a, s, axes, norm, "rfft2")


def irfft2(a, s=None, axes=(-2, -1), norm=None, out=None):
    """:func:`irfftn` over the last two axes."""
    _no_out(out, "irfft2")
    return _c2r(a, s, axes, norm, "irfft2")


def hfft(a, n=None, axis=-1, norm=None, out=None):
    """DFT of a Hermitian-symmetric signal given by its first half: a real spectrum of
    length ``n``. Equals ``irfft(conj(a), n, norm=<swapped>)``."""
    _no_out(out, "hfft")
    norm = _norm(norm, "hfft")
    return _c2r(conj(_complex(_input(a, "hfft"))), None if n is None else [n], [axis],
                _SWAP[norm], "hfft")


def ihfft(a, n=None, axis=-1, norm=None, out=None):
    """Inverse of :func:`hfft` for a real signal: ``conj(rfft(a, n, norm=<swapped>))``."""
    _no_out(out, "ihfft")
    norm = _norm(norm, "ihfft")
    return conj(_r2c(a, None if n is None else [n], [axis], _SWAP[norm], "ihfft"))


# ---- shifts and frequencies --------------------------------------------------------------
def _roll(x, shift, axis):
    n = x.shape[axis]
    shift %= n if n else 1
    if not shift:
        return x
    lead = (slice(None),) * axis
    return _shape.concatenate([x[lead + (slice(n - shift, n),)], x[lead + (slice(0, n - shift),)]],
                              axis=axis)


def _shift(x, axes, op, sign):
    x = _shape._as_array(x)
    if axes is None:
        axes = range(x.ndim)
    elif isinstance(axes, (int, np.integer)):
        axes = [axes]
    for ax in axes:
        ax = _shape.normalize_axis(ax, x.ndim, f"fft.{op}")
        x = _roll(x, sign * (x.shape[ax] // 2), ax)
    return x


def fftshift(x, axes=None):
    """Move the zero-frequency bin to the centre (all axes by default)."""
    return _shift(x, axes, "fftshift", 1)


def ifftshift(x, axes=None):
    """Inverse of :func:`fftshift` (differs from it for odd lengths)."""
    return _shift(x, axes, "ifftshift", -1)


def fftfreq(n, d=1.0, device=None):
    """Sample frequencies of :func:`fft` (a constant; NumPy's function)."""
    return np.fft.fftfreq(n, d)


def rfftfreq(n, d=1.0, device=None):
    """Sample frequencies of :func:`rfft` (a constant; NumPy's function)."""
    return np.fft.rfftfreq(n, d)
