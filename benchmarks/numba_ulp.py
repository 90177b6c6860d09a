"""How far jit's Numba kernels are from NumPy's own ufuncs, in ulp, per operation and dtype.

    python benchmarks/numba_ulp.py [N]

For float32 and float64, one jitted function applies every ufunc the Numba backend
fuses (``numba_backend._EXPR``: arithmetic, comparisons, the transcendental functions
of ``_MATH``) to a deterministic sample of about N values (default 10^6): every
magnitude from the subnormals to the largest float, both signs, dense moderate ranges,
the floats next to domain boundaries and overflow thresholds (0, +-1, log(max), ...),
and the edge values 0, -0, +-inf, NaN, the smallest subnormal, the smallest normal and
the largest float; binary ufuncs get a second sample drawn alike, plus every pair of
edge values. Every fusible equation is compiled (``MIN_GROUP`` set to 1) and its result
compared with NumPy's ufunc on the same arrays. Prints, per operation: the maximum ulp
distance (NaN against NaN counts 0, NaN against a number as ``nan≠``), how many results
are not bit-identical (signed zeros and ulps), and ``numpy`` for the operations the
backend leaves to NumPy for that dtype (not fused: nothing to compare).

The figures depend on the CPU: NumPy picks SIMD versions of its functions at run time
(``np.show_runtime()`` lists the extensions found), while Numba calls the C library.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(HERE))

import funcgrad  # noqa: E402
import funcgrad.numpy as fnp  # noqa: E402
from funcgrad._src import numba_backend as nb  # noqa: E402

DTYPES = (np.float32, np.float64)


def ops():
    """``(name, number of operands)`` of every ufunc the backend has code for."""
    return [(n, getattr(np, n).nin) for n in nb._EXPR]


def edges(dtype):
    """0, -0, +-inf, NaN, the smallest subnormal, the smallest normal, the largest float,
    and small integers and halves."""
    fi = np.finfo(dtype)
    v = [0.0, np.inf, np.nan, fi.smallest_subnormal, fi.tiny, fi.max, 1.0, 0.5, 2.0, 3.0,
         1.5, 10.0]
    return np.array(v + [-x for x in v], dtype)


def _anchors(dtype):
    """Values where functions change behaviour: domain boundaries, overflow and
    underflow thresholds, where tanh/erf-like functions saturate."""
    fi = np.finfo(dtype)
    lmax, ltiny = float(np.log(fi.max)), float(np.log(fi.tiny))
    l2max = float(np.log2(fi.max))
    a = [0.0, 1.0, 0.5, 2.0, np.pi / 4, np.pi / 2, np.pi, lmax, lmax + np.log(2.0),
         ltiny, l2max, float(np.log2(fi.tiny)), float(np.log10(fi.max)), 0.625, 0.55,
         9.0, 19.0, 22.0, 2.0 ** 12, 1e-4]
    return np.array(a + [-x for x in a], np.float64)


def sample(dtype, n, seed=0):
    """About ``n`` deterministic values of ``dtype`` across magnitudes and near the
    anchors, then the edge values."""
    rng = np.random.default_rng(seed)
    fi = np.finfo(dtype)
    lo = np.log2(float(fi.smallest_subnormal))
    hi = np.log2(float(fi.max))
    k = n // 7
    sign = rng.choice([-1.0, 1.0], 3 * k)
    with np.errstate(over="ignore"):
        parts = [
            (sign * 2.0 ** rng.uniform(lo, hi, 3 * k)).astype(dtype),   # every magnitude
            rng.uniform(-30, 30, 2 * k).astype(dtype),
            rng.uniform(-1, 1, k).astype(dtype),
        ]
    anchors = _anchors(dtype)
    m = k // len(anchors)
    near = []
    for a in anchors:       # relative neighbourhood, and the floats next to the anchor
        near.append((a * (1 + rng.uniform(-1e-2, 1e-2, m // 2))).astype(dtype))
        c = dtype(a)
        steps = np.arange(-(m // 4), m // 4 + 1)
        base = np.array(c, dtype).view(np.int32 if dtype == np.float32 else np.int64)
        bits = base + steps.astype(base.dtype)
        if c == 0:
            bits = np.abs(steps).astype(base.dtype)      # the subnormals around 0
        near.append(bits.view(dtype))
    parts.append(np.concatenate(near))
    out = np.concatenate(parts).astype(dtype)
    return out[np.isfinite(out)]


def inputs(dtype, n, seed=0):
    """``(x, y)``: two samples drawn alike, then every pair of edge values."""
    x = sample(dtype, n, seed)
    y = np.resize(np.random.default_rng(seed + 1).permutation(sample(dtype, n, seed + 2)),
                  x.size)
    e = edges(dtype)
    ex, ey = np.meshgrid(e, e)
    return np.concatenate([x, ex.ravel()]), np.concatenate([y, ey.ravel()])


def ulps(a, b):
    """Per element, how many floats apart ``a`` and ``b`` are (as int64; +0 and -0 are
    0 apart; NaN and NaN 0; NaN and a number 2**62)."""
    a, b = np.asarray(a), np.asarray(b)
    it = np.int64 if a.itemsize == 8 else np.int32
    ia, ib = a.view(it).astype(np.int64), b.view(it).astype(np.int64)
    # as a monotonic integer line (negative floats counted downwards)
    ia = np.where(ia < 0, np.iinfo(it).min - ia, ia)
    ib = np.where(ib < 0, np.iinfo(it).min - ib, ib)
    d = np.abs(ia - ib)
    na, nb_ = np.isnan(a), np.isnan(b)
    return np.where(na & nb_, 0, np.where(na | nb_, 2 ** 62, d))


def _bit_diffs(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind != "f":
        return int(np.count_nonzero(a != b))
    it = np.int64 if a.itemsize == 8 else np.int32
    same = (a.view(it) == b.view(it)) | (np.isnan(a) & np.isnan(b))
    return int(np.count_nonzero(~same))


def _operands(name, m, x, y):
    """The operands of ufunc ``name``, made with ``m`` (funcgrad.numpy or numpy):
    ``logical_not`` gets a bool array."""
    if name == "logical_not":
        return (m.isnan(x),)
    return (x, y)[:getattr(np, name).nin]


def measure(dtype, x, y, names=None):
    """``{name: (max ulp, bit differences, fused)}`` for the ufuncs ``names`` (default:
    all) on ``x``, ``y`` of ``dtype``, compiled as one Numba kernel per run of fused
    ones; for bool results the max ulp is the number of mismatches."""
    names = [n for n, _ in ops()] if names is None else list(names)

    def f(x, y):
        return tuple(getattr(fnp, n)(*_operands(n, fnp, x, y)) for n in names)

    x, y = np.asarray(x, dtype), np.asarray(y, dtype)
    graph = funcgrad.make_graph(f)(x, y)
    fused = {}
    for e in graph.eqns:
        if e.prim.name in names:
            fused[e.prim.name] = nb.fusible(e)
    saved = nb.MIN_GROUP, nb.MIN_GROUP_SMALL, nb.synchronous, nb.strict
    nb.MIN_GROUP = nb.MIN_GROUP_SMALL = 1
    nb.synchronous = nb.strict = True
    try:
        low = funcgrad.jit(f, backend="numba").lower(x, y)
        if low._entry.pending is not None:
            assert low._entry.pending.result() is True
        with np.errstate(all="ignore"):
            got = low.compile(wait=True)(x, y)
    finally:
        nb.MIN_GROUP, nb.MIN_GROUP_SMALL, nb.synchronous, nb.strict = saved
    res = {}
    with np.errstate(all="ignore"):
        for n, g in zip(names, got):
            want = getattr(np, n)(*_operands(n, np, x, y))
            assert g.dtype == want.dtype, (n, g.dtype, want.dtype)
            if g.dtype.kind == "f":
                worst = int(ulps(g, want).max())
            else:
                worst = _bit_diffs(g, want)
            res[n] = (worst, _bit_diffs(g, want), fused.get(n, False))
    return res


def _fmt(worst):
    return "nan≠" if worst >= 2 ** 62 else str(worst)


def main(n=10 ** 6):
    import numba
    feats = np._core._multiarray_umath.__cpu_features__
    simd = " ".join(k for k, v in feats.items() if v and k.startswith(("AVX", "FMA", "SSE4")))
    print(f"NumPy {np.__version__}, Numba {numba.__version__}; SIMD found: {simd}")
    table = {}
    for dt in DTYPES:
        x, y = inputs(dt, n)
        t = time.perf_counter()
        table[dt] = measure(dt, x, y)
        print(f"{np.dtype(dt).name}: {x.size} values, {time.perf_counter() - t:.1f} s",
              file=sys.stderr)
    print(f"{'op':<14}" + "".join(f"{np.dtype(d).name + ' ulp/diffs':>24}" for d in DTYPES))
    for name, _ in ops():
        cells = []
        for dt in DTYPES:
            worst, diffs, fused = table[dt][name]
            cells.append("numpy" if not fused else f"{_fmt(worst)} / {diffs}")
        print(f"{name:<14}" + "".join(f"{c:>24}" for c in cells))
    return table


if __name__ == "__main__":
    main(int(float(sys.argv[1])) if len(sys.argv) > 1 else 10 ** 6)
