"""Random bits: the Threefry-2x32 counter-based hash and the primitives that turn a key
into arrays of random numbers.

A key is a ``uint32[2]`` array. Every random array is a pure function of a key: the key
and a counter (0, 1, 2, ...) go through Threefry-2x32 with 20 rounds (Salmon et al.,
"Parallel random numbers: as easy as 1, 2, 3", SC'11), checked against the Random123
known-answer vectors. Keys, counters and the conventions for ``split``, ``fold_in`` and
``bits`` are JAX's (its non-"partitionable" Threefry scheme), so a key, its splits and
its uniform floats equal JAX's bit for bit.

The hash is written with whole-array ``uint32`` operations only (add, shift, or, xor,
all in place), so it runs unchanged on NumPy and CuPy arrays and never builds ``int64``
temporaries; the array module comes from the key (``array_module``).

Each primitive here is a function of the key (and of non-differentiable arguments such
as integer bounds or probabilities) with no derivative rules: random numbers do not
depend differentiably on their key. The user-facing functions in ``funcgrad.random``
apply location/scale parameters with funcgrad operations, so those stay differentiable.

Batching: the implementations of seed, split, fold_in, bits, uniform, normal, randint,
truncated_normal and permutation accept a batch of keys, ``uint32[*B, 2]``, and return
``B + shape`` (their other array arguments broadcast against that, aligned on the
right), so ``vmap`` over keys runs one vectorised Threefry call. Choice with ``p``,
gamma and beta take one key and are batched by vmap's loop fallback.

Float conversion: a uniform float in ``[1, 2)`` is built by putting random bits in the
mantissa of ``1.0`` and subtracting 1 (exact, so uniforms are identical on every
platform). Normals use Box-Muller on pairs of uniforms: one ``log``, one ``sqrt``, one
``sin`` and one ``cos`` per two normals, several times cheaper in NumPy than an
inverse-CDF polynomial. Results that go through ``log``/``sin``/``cos`` are identical
from run to run on one platform; across platforms they may differ in the last unit of
the last place, as the math libraries do.
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import array_module
from ..batching import move_to_front
from ..core import Primitive, bind, def_rules
from .shape import reshape

# Rotation amounts of Threefry-2x32 (Random123's R_32x2_{0..7}_0) and the Skein key
# schedule parity constant.
ROTATIONS = (13, 15, 26, 6, 17, 29, 16, 24)
KS_PARITY = 0x1BD11BDA

_MAX_COUNT = 2 ** 32


def _threefry_inplace(xp, k0, k1, x0, x1, rounds):
    """Threefry-2x32 of the counters ``(x0, x1)`` under the key ``(k0, k1)``, in place.

    ``x0`` and ``x1`` are ``uint32`` arrays of one shape that are overwritten with the
    result; ``k0``/``k1`` are ``uint32`` scalars or arrays broadcastable to that shape.
    """
    ks = (k0, k1, xp.bitwise_xor(xp.bitwise_xor(k0, k1), np.uint32(KS_PARITY)))
    x0 += ks[0]
    x1 += ks[1]
    tmp = xp.empty_like(x1)
    for r in range(rounds):
        rot = ROTATIONS[r % 8]
        x0 += x1
        xp.left_shift(x1, rot, out=tmp)      # rotate x1 left by `rot` bits...
        x1 >>= 32 - rot
        x1 |= tmp
        x1 ^= x0                             # ...and mix it with x0
        if r % 4 == 3:                       # key injection every four rounds
            s = (r + 1) // 4
            x0 += ks[s % 3]
            x1 += ks[(s + 1) % 3]
            x1 += s
    return x0, x1


def threefry2x32(key0, key1, x0, x1, rounds=20):
    """The Threefry-2x32 block function: ``(y0, y1)`` for counters ``(x0, x1)``.

    Args:
      key0, key1: the two key words (``uint32`` scalars, or arrays broadcastable to the
        counters' shape).
      x0, x1: ``uint32`` arrays of one shape (NumPy or CuPy); they are not modified.
      rounds: number of rounds; 20 is the standard Threefry-2x32-20 (13 and 32 appear in
        the Random123 test vectors too).

    Example (Random123 known answer for a zero key and counter):
        >>> import numpy as np
        >>> z = np.zeros(1, np.uint32)
        >>> [hex(int(y[0])) for y in threefry2x32(np.uint32(0), np.uint32(0), z, z)]
        ['0x6b200159', '0x99ba4efe']
    """
    xp = array_module(x0, x1)
    x0 = xp.array(x0, dtype=np.uint32, copy=True)
    x1 = xp.array(x1, dtype=np.uint32, copy=True)
    if x0.shape != x1.shape:
        x0, x1 = (xp.array(a, copy=True) for a in xp.broadcast_arrays(x0, x1))
    return _threefry_inplace(xp, key0, key1, x0, x1, rounds)


def hash_counts(keys, n):
    """JAX's ``threefry_2x32(key, arange(n))``: ``n`` random ``uint32`` words per key.

    ``keys`` is ``uint32[*B, 2]``; the result is ``uint32[*B, n]``. The counters
    ``0..n-1`` are split into two halves that form the two lanes of each Threefry block,
    and the two output lanes are concatenated. An odd ``n`` pads the counters with a 0
    (it shares a block with counter ``h - 1``, so it matters) and drops the last word.
    """
    xp = array_module(keys)
    if n >= _MAX_COUNT:
        raise ValueError(f"random: {n} random words requested; at most 2**32 - 1 are "
                         "supported per key; split the key and draw in pieces")
    batch = tuple(keys.shape[:-1])
    h = (n + 1) // 2
    buf = xp.arange(2 * h, dtype=np.uint32)
    if batch:
        buf = xp.broadcast_to(buf, batch + (2 * h,)).copy()
    if n != 2 * h:
        buf[..., n] = 0
    # Key words as arrays of shape (*B, 1): they broadcast against the counters and keep
    # all arithmetic in array operations (no scalar overflow warnings, any device).
    _threefry_inplace(xp, keys[..., 0:1], keys[..., 1:2], buf[..., :h], buf[..., h:], 20)
    return buf[..., :n] if n != 2 * h else buf


def _bits32(keys, n):
    return hash_counts(keys, n)


def _bits64(keys, n):
    # As JAX: 2n words, the first n are the high halves and the last n the low halves.
    w = hash_counts(keys, 2 * n)
    out = w[..., :n].astype(np.uint64)
    out <<= 32
    out |= w[..., n:]
    return out


def _size(shape):
    return math.prod(shape)


# --------------------------------------------------------------------------------------
# Keys


def _batch(keys):
    return tuple(keys.shape[:-1])


def _seed_impl(seed):
    """Keys from integer seeds: the high and low 32 bits of the seed modulo 2**64."""
    xp = array_module(seed)
    s = xp.asarray(seed)
    s = s.astype(np.int64).astype(np.uint64) if s.dtype.kind == "i" else s.astype(np.uint64)
    return xp.stack([(s >> 32).astype(np.uint32), (s & 0xFFFFFFFF).astype(np.uint32)],
                    axis=-1)


def _split_impl(keys, *, shape):
    return hash_counts(keys, 2 * _size(shape)).reshape(_batch(keys) + shape + (2,))


def _fold_in_impl(keys, data):
    xp = array_module(keys)
    data = xp.asarray(data, dtype=np.uint32)
    batch = tuple(np.broadcast_shapes(_batch(keys), data.shape))
    x0 = xp.zeros(batch + (1,), dtype=np.uint32)
    x1 = xp.broadcast_to(data[..., None], batch + (1,)).copy()
    _threefry_inplace(xp, keys[..., 0:1], keys[..., 1:2], x0, x1, 20)
    return xp.concatenate([x0, x1], axis=-1)


def _keys_batch(prim):
    """The batching rule of a sampler: batch axes go in front of the keys' batch
    dimensions; the other array arguments are aligned so that they broadcast (on the
    right) against ``B + shape``."""
    takes_shape = prim.name != "random_fold_in"

    def rule(vals, dims, shape=(), **params):
        key_rank = len(vals[0].shape) - (dims[0] is not None)       # includes the 2
        ranks = [len(np.shape(v)) - (d is not None) for v, d in zip(vals[1:], dims[1:])]
        out_rank = max([key_rank - 1 + len(shape)] + ranks)
        moved = []
        for i, (v, d) in enumerate(zip(vals, dims)):
            if d is not None:
                v = move_to_front(v, d)
                target = out_rank - len(shape) + 1 if i == 0 else out_rank
                pe = tuple(v.shape[1:])
                v = reshape(v, (v.shape[0],) + (1,) * (target - len(pe)) + pe)
            moved.append(v)
        if takes_shape:
            params["shape"] = shape
        return bind(prim, *moved, **params), 0
    return rule


random_seed_p = Primitive("random_seed", _seed_impl)


def _seed_batch(vals, dims):
    return bind(random_seed_p, move_to_front(vals[0], dims[0])), 0


def_rules(random_seed_p, batch=_seed_batch)

random_split_p = Primitive("random_split", _split_impl)
def_rules(random_split_p, batch=_keys_batch(random_split_p))

random_fold_in_p = Primitive("random_fold_in", _fold_in_impl)
def_rules(random_fold_in_p, batch=_keys_batch(random_fold_in_p))


# --------------------------------------------------------------------------------------
# Bits and floats


def _bits_impl(keys, *, shape, dtype):
    n = _size(shape)
    bits = _bits64(keys, n) if np.dtype(dtype).itemsize == 8 else _bits32(keys, n)
    return bits.reshape(_batch(keys) + shape)


random_bits_p = Primitive("random_bits", _bits_impl)
def_rules(random_bits_p, batch=_keys_batch(random_bits_p))


# (integer type, shift that keeps the mantissa bits, bit pattern of 1.0, 1 - ulp/2)
_FLOAT_LAYOUT = {
    np.dtype(np.float32): (np.uint32, 9, 0x3F800000, 1.0 - 2.0 ** -24),
    np.dtype(np.float64): (np.uint64, 12, 0x3FF0000000000000, 1.0 - 2.0 ** -53),
}


def unit_uniform(keys, n, dtype, open=False):
    """``n`` uniform floats per key (``[*B, n]``) in ``[0, 1)``, or in ``(0, 1)`` with
    ``open=True``.

    Random mantissa bits under the exponent of 1.0 give a float in ``[1, 2)``; subtracting
    1 gives ``[0, 1 - ulp]``, subtracting ``1 - ulp/2`` gives ``[ulp/2, 1 - ulp/2]``. Both
    subtractions are exact (Sterbenz), so the result does not depend on the platform.
    """
    dtype = np.dtype(dtype)
    utype, shift, one, half_open = _FLOAT_LAYOUT[dtype]
    bits = _bits64(keys, n) if utype is np.uint64 else _bits32(keys, n)
    bits >>= shift
    bits |= utype(one)
    f = bits.view(dtype)
    f -= half_open if open else 1.0
    return f


def _uniform_impl(keys, *, shape, dtype, open):
    return unit_uniform(keys, _size(shape), dtype, open).reshape(_batch(keys) + shape)


random_uniform_p = Primitive("random_uniform", _uniform_impl)
def_rules(random_uniform_p, batch=_keys_batch(random_uniform_p))


def unit_normal(keys, n, dtype):
    """``n`` standard normal floats per key (``[*B, n]``) by Box-Muller.

    The ``2m`` uniforms (``m = ceil(n/2)``) pair up as ``(u[i], u[m+i])``: the first,
    in ``(0, 1)``, gives the radius ``sqrt(-2 log u)``; the second the angle. The cosines
    fill the first half of the result and the sines the second. The largest magnitude is
    about 5.8 (float32) or 8.6 (float64), set by the smallest uniform.
    """
    xp = array_module(keys)
    m = (n + 1) // 2
    dtype = np.dtype(dtype)
    utype, shift, one, half_open = _FLOAT_LAYOUT[dtype]
    bits = _bits64(keys, 2 * m) if utype is np.uint64 else _bits32(keys, 2 * m)
    bits >>= shift
    bits |= utype(one)
    f = bits.view(dtype)
    r = f[..., :m]
    theta = f[..., m:]
    r -= half_open                       # (0, 1)
    xp.log(r, out=r)
    r *= -2.0
    xp.sqrt(r, out=r)
    theta -= 1.5                         # [-1/2, 1/2)
    theta *= 2.0 * math.pi
    out = xp.empty(_batch(keys) + (2 * m,), dtype=dtype)
    lo, hi = out[..., :m], out[..., m:]
    xp.cos(theta, out=lo)
    xp.sin(theta, out=hi)
    lo *= r
    hi *= r
    return out[..., :n] if n != 2 * m else out


def _normal_impl(keys, *, shape, dtype):
    return unit_normal(keys, _size(shape), dtype).reshape(_batch(keys) + shape)


random_normal_p = Primitive("random_normal", _normal_impl)
def_rules(random_normal_p, batch=_keys_batch(random_normal_p))


# --------------------------------------------------------------------------------------
# The standard normal CDF and its inverse, for truncated normals.

# Wichura's algorithm AS 241 (PPND16), Applied Statistics 37 (1988): rational
# approximations of the normal quantile, relative accuracy about 1e-16. Coefficients
# from the paper, highest degree first.
_AS241_CENTRAL = (
    (2.5090809287301226727e3, 3.3430575583588128105e4, 6.7265770927008700853e4,
     4.5921953931549871457e4, 1.3731693765509461125e4, 1.9715909503065514427e3,
     1.3314166789178437745e2, 3.3871328727963666080e0),
    (5.2264952788528545610e3, 2.8729085735721942674e4, 3.9307895800092710610e4,
     2.1213794301586595867e4, 5.3941960214247511077e3, 6.8718700749205790830e2,
     4.2313330701600911252e1, 1.0),
)
_AS241_INTERMEDIATE = (
    (7.74545014278341407640e-4, 2.27238449892691845833e-2, 2.41780725177450611770e-1,
     1.27045825245236838258e0, 3.64784832476320460504e0, 5.76949722146069140550e0,
     4.63033784615654529590e0, 1.42343711074968357734e0),
    (1.05075007164441684324e-9, 5.47593808499534494600e-4, 1.51986665636164571966e-2,
     1.48103976427480074590e-1, 6.89767334985100004550e-1, 1.67638483018380384940e0,
     2.05319162663775882187e0, 1.0),
)
_AS241_TAIL = (
    (2.01033439929228813265e-7, 2.71155556874348757815e-5, 1.24266094738807843860e-3,
     2.65321895265761230930e-2, 2.96560571828504891230e-1, 1.78482653991729133580e0,
     5.46378491116411436990e0, 6.65790464350110377720e0),
    (2.04426310338993978564e-15, 1.42151175831644588870e-7, 1.84631831751005468180e-5,
     7.86869131145613259100e-4, 1.48753612908506148525e-2, 1.36929880922735805310e-1,
     5.99832206555887937690e-1, 1.0),
)


def _ratio(coefs, r):
    num, den = coefs
    p = num[0] * r + num[1]
    q = den[0] * r + den[1]
    for a, b in zip(num[2:], den[2:]):
        p = p * r + a
        q = q * r + b
    return p / q


def ndtri(p):
    """The standard normal quantile of ``p`` (float64 array), by AS 241.

    ``ndtri(0) = -inf`` and ``ndtri(1) = inf``. Used only for truncated normals.
    """
    xp = array_module(p)
    p = xp.asarray(p, dtype=np.float64)
    q = p - 0.5
    central = q * _ratio(_AS241_CENTRAL, 0.180625 - q * q)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = xp.sqrt(-xp.log(xp.minimum(p, 1.0 - p)))
        tail = xp.where(r <= 5.0, _ratio(_AS241_INTERMEDIATE, r - 1.6),
                        _ratio(_AS241_TAIL, r - 5.0))
        tail = xp.where(xp.isinf(r), xp.inf, tail)
    tail = xp.where(q < 0, -tail, tail)
    return xp.where(xp.abs(q) <= 0.425, central, tail)


def _ndtr_host(x):
    """Standard normal CDF of a small float64 array of bounds, with ``math.erfc``."""
    xp = array_module(x)
    host = x if xp is np else xp.asnumpy(x)
    out = np.frompyfunc(lambda v: 0.5 * math.erfc(-v / math.sqrt(2.0)), 1, 1)(host)
    out = np.asarray(out, dtype=np.float64)
    return out if xp is np else xp.asarray(out)


def _truncated_normal_impl(keys, lower, upper, *, shape, dtype):
    """Inverse-CDF sampling between ``lower`` and ``upper`` in float64.

    Intervals that lie right of zero are reflected to the left, where the CDF is small
    and has full relative precision, so that far-tail intervals are sampled accurately.
    """
    xp = array_module(keys)
    lo = xp.asarray(lower, dtype=np.float64)
    hi = xp.asarray(upper, dtype=np.float64)
    flip = lo > 0
    a = xp.where(flip, -hi, lo)
    b = xp.where(flip, -lo, hi)
    pa, pb = _ndtr_host(a), _ndtr_host(b)
    u = unit_uniform(keys, _size(shape), np.float64).reshape(_batch(keys) + shape)
    x = ndtri(pa + (pb - pa) * u)
    x = xp.where(flip, -x, x)
    x = x.astype(dtype)
    lo_d = xp.asarray(lower).astype(dtype)
    hi_d = xp.asarray(upper).astype(dtype)
    return xp.minimum(xp.maximum(x, lo_d), hi_d)


random_truncated_normal_p = Primitive("random_truncated_normal", _truncated_normal_impl)
def_rules(random_truncated_normal_p, batch=_keys_batch(random_truncated_normal_p))


# --------------------------------------------------------------------------------------
# Integers, permutations and choices


def _to_wide(xp, v, wide):
    """Integer bounds as ``wide`` (int64, or uint64 for uint64 draws), saturating."""
    v = xp.asarray(v)
    if v.dtype == wide:
        return v
    if wide == np.int64 and v.dtype == np.uint64:
        return xp.minimum(v, np.uint64(2 ** 63 - 1)).astype(wide)
    if wide == np.uint64 and v.dtype.kind == "i":
        return xp.maximum(v, 0).astype(wide)
    return v.astype(wide)


def _randint_impl(keys, minval, maxval, *, shape, dtype):
    """Integers in ``[minval, maxval)``: a 64-bit random word modulo the span.

    The bounds are first clipped into the dtype's range. The bias of the modulo is at
    most ``span / 2**64`` (below ``2**-32`` for spans that fit in 32 bits). Where
    ``maxval <= minval`` the result is ``minval``.
    """
    xp = array_module(keys)
    dtype = np.dtype(dtype)
    info = np.iinfo(dtype)
    wide = np.dtype(np.uint64 if dtype == np.uint64 else np.int64)
    top = min(info.max + 1, np.iinfo(wide).max)       # maxval is exclusive
    lo = xp.clip(_to_wide(xp, minval, wide), wide.type(info.min), wide.type(info.max))
    hi = xp.clip(_to_wide(xp, maxval, wide), wide.type(info.min), wide.type(top))
    lo, hi = xp.broadcast_arrays(lo, hi)
    lo_u = lo.astype(np.uint64)
    span = hi.astype(np.uint64) - lo_u                   # exact, modulo 2**64
    empty = hi <= lo
    span = xp.where(empty, np.uint64(1), span)
    off = _bits64(keys, _size(shape)).reshape(_batch(keys) + shape) % span
    off = xp.where(empty, np.uint64(0), off)
    return (lo_u + off).astype(wide).astype(dtype)       # wraps back exactly


random_randint_p = Primitive("random_randint", _randint_impl)
def_rules(random_randint_p, batch=_keys_batch(random_randint_p))


def _stable_argsort(xp, a, axis):
    # NumPy's default sort is not stable; CuPy's sorts are always stable.
    if xp is np:
        return np.argsort(a, axis=axis, kind="stable")
    return xp.argsort(a, axis=axis)


def _permutation_impl(keys, *, shape, axis, independent):
    """Indices that shuffle an array of ``shape`` along ``axis``: sorting by 64-bit random
    words (ties, about ``n**2 / 2**65`` likely, keep their order). Returns ``int32[*B, n]``,
    or with ``independent=True`` an index array of shape ``B + shape``."""
    xp = array_module(keys)
    batch = _batch(keys)
    if independent:
        words = _bits64(keys, _size(shape)).reshape(batch + shape)
        return _stable_argsort(xp, words, len(batch) + axis).astype(np.int32)
    return _stable_argsort(xp, _bits64(keys, shape[axis]), -1).astype(np.int32)


random_permutation_p = Primitive("random_permutation", _permutation_impl)
def_rules(random_permutation_p, batch=_keys_batch(random_permutation_p))


def _choice_impl(key, p, *, shape, replace):
    """Indices into ``p`` drawn with probabilities ``p`` (float64 internally).

    With replacement: inverse CDF, a binary search of ``u * total`` in ``cumsum(p)``.
    Without: the Gumbel top-k trick, the ``k`` largest ``log p + Gumbel`` values.
    """
    xp = array_module(key)
    p = xp.asarray(p, dtype=np.float64)
    n = p.shape[0]
    k = _size(shape)
    if replace:
        cdf = xp.cumsum(p)
        u = unit_uniform(key, k, np.float64) * cdf[-1]
        idx = xp.searchsorted(cdf, u, side="right")
        idx = xp.minimum(idx, n - 1)
    else:
        g = unit_uniform(key, n, np.float64, open=True)
        with np.errstate(divide="ignore"):
            g = xp.log(p) - xp.log(-xp.log(g))
        idx = _stable_argsort(xp, -g, 0)[:k]
    return idx.astype(np.int32).reshape(shape)


random_choice_p = Primitive("random_choice", _choice_impl)


# --------------------------------------------------------------------------------------
# Gamma (and through it beta): Marsaglia-Tsang rejection, vectorised.


def _log_gamma_samples(key, a, shape, xp):
    """``log`` of Gamma(a, 1) samples of ``shape`` (float64), for ``a`` broadcast to it.

    Marsaglia and Tsang (2000): for ``a >= 1``, ``d = a - 1/3``, ``c = 1/sqrt(9d)``;
    propose ``v = (1 + c z)**3`` with ``z`` normal, accept when
    ``log u < z**2/2 + d - d v + d log v``. For ``a < 1`` sample ``a + 1`` and add
    ``log(u) / a``. Rejected entries are redrawn, round after round, from keys folded
    from ``key`` with the round number, so the result is a pure function of the key.
    """
    a = xp.broadcast_to(xp.asarray(a, dtype=np.float64), shape).reshape(-1)
    n = a.shape[0]
    boost = a < 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        d = xp.where(boost, a + 1.0, a) - 1.0 / 3.0
        c = 1.0 / xp.sqrt(9.0 * d)
    # a <= 0, nan or inf has no gamma distribution: those entries are nan (and must not
    # enter the loop, which would never accept them).
    valid = (a > 0) & (a < np.inf)
    out = xp.where(valid, 0.0, np.nan)
    todo = xp.arange(n)[valid]
    rnd = 0
    while todo.shape[0]:
        sub = _fold_in_impl(key, rnd)
        m = todo.shape[0]
        z = unit_normal(_fold_in_impl(sub, 0), m, np.float64)
        u = unit_uniform(_fold_in_impl(sub, 1), m, np.float64, open=True)
        dd, cc = d[todo], c[todo]
        v = 1.0 + cc * z
        ok = v > 0
        v = xp.where(ok, v, 1.0)
        v = v * v * v
        logv = xp.log(v)
        ok &= xp.log(u) < 0.5 * z * z + dd - dd * v + dd * logv
        out[todo[ok]] = xp.log(dd[ok]) + logv[ok]
        todo = todo[~ok]
        rnd += 1
    if bool(xp.any(boost)):
        u = unit_uniform(_fold_in_impl(key, 0xFFFFFFFF), n, np.float64, open=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = xp.where(boost, out + xp.log(u) / a, out)
    return out.reshape(shape)


def _gamma_impl(key, a, *, shape, dtype):
    xp = array_module(key)
    return xp.exp(_log_gamma_samples(key, a, shape, xp)).astype(dtype)


def _beta_impl(key, a, b, *, shape, dtype):
    # X / (X + Y) = 1 / (1 + exp(log Y - log X)), stable even when both underflow.
    xp = array_module(key)
    lx = _log_gamma_samples(_fold_in_impl(key, 0), a, shape, xp)
    ly = _log_gamma_samples(_fold_in_impl(key, 1), b, shape, xp)
    with np.errstate(over="ignore"):
        return (1.0 / (1.0 + xp.exp(ly - lx))).astype(dtype)


random_gamma_p = Primitive("random_gamma", _gamma_impl)
random_beta_p = Primitive("random_beta", _beta_impl)
