"""The edge-input battery (issue 17, item 13): every elementwise function of
funcgrad.numpy and funcgrad.scipy.special, the reductions, and funcgrad_nn.functional's
activations, run on the inputs ordinary tests avoid -- 0-d and empty arrays, size-1 and
negative axes, keepdims, +-0, +-inf, NaN, huge and tiny magnitudes, ties at kinks --
in float64 and float32, against NumPy/SciPy (values, dtypes, signs of zeros) and PyTorch
(derivatives), and checking that forward and reverse mode agree everywhere.

Deterministic (fixed inputs, no hypothesis) and fast: one vectorized call per function
and dtype. Where funcgrad deliberately differs from a peer (a documented convention at a
kink), the difference is listed in ``CONVENTIONS`` with its reason; where it is a known
bug still open, the case is an ``xfail(strict=True)`` naming it.

What it found (fixed, each with a repro below): ``modf`` of +-inf gave NaN and lost the
sign of zero fractions; ``maximum``/``minimum`` gave a NaN gradient at an infinite tie;
``all/any/argmax/argmin/nanmax/nanmin/nanvar/nanstd/nanargmax/nanargmin`` refused axis
0/-1 on a 0-d array; ``special.betaln``/``beta`` lost all precision for a large argument
(``betaln(1, 1e20)`` was 0, not -46.05); ``special.gammainc``/``gammaincc`` were wrong
for large ``a`` (0.40 for 0.50 at ``a = x = 1e5``) and NaN for ``a = inf``;
``special.xlogy``/``xlog1py`` gave 0 for ``x = 0, y = NaN`` (SciPy: NaN); ``expm1``'s
derivative was ``ans + 1``, 0 below x ~ -37 (``elu``/``selu``/``celu`` inherited it: their
slope at -40 was 0, not 4.2e-18).
"""
import warnings

import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp
import funcgrad.scipy.special as fsp

scipy_special = pytest.importorskip("scipy.special")
torch = pytest.importorskip("torch")

EDGE = np.array([0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.5, 3.0, np.inf, -np.inf, np.nan,
                 1e300, -1e300, 1e-300, -1e-300, 1e20, -1e20, 40.0, -40.0, 800.0, -800.0])
# a smaller set for two-argument functions (all pairs)
EDGE2 = np.array([0.0, -0.0, 1.0, -1.0, 0.5, 2.0, -2.5, 3.0, np.inf, -np.inf, np.nan,
                  1e300, -1e300, 1e-300, 1e20, 40.0, -800.0])
PAIRS = [a.ravel() for a in np.meshgrid(EDGE2, EDGE2, indexing="ij")]
DTYPES = [np.float64, np.float32]


def _quiet(f, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            return f(*a, **k)


def _assert_same(got, want, rtol, what, signed_zero=True):
    """Same dtype and shape; values close, NaN where NaN, and (``signed_zero``) the sign
    of every zero as the reference's."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, reference {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape}, reference {want.shape}"
    if got.dtype.kind not in "fc":
        np.testing.assert_array_equal(got, want, err_msg=what)
        return
    g, w = got.astype(np.float64), want.astype(np.float64)
    ok = (g == w) | (np.isnan(g) & np.isnan(w)) | _quiet(np.isclose, g, w, rtol=rtol, atol=0)
    assert ok.all(), f"{what}: at {np.flatnonzero(~ok)}: got {g[~ok]}, reference {w[~ok]}"
    if signed_zero:
        z = (w == 0) & (np.signbit(g) != np.signbit(w))
        assert not z.any(), f"{what}: sign of zero at {np.flatnonzero(z)}: got {g[z]}"


def _modes_agree(f, args, what, rtol):
    """Elementwise ``f``: the forward-mode tangent (ones in) equals the reverse-mode
    gradient of the sum, per argument, NaN where NaN; both in the argument's dtype."""
    for i, x in enumerate(args):
        def fi(v, i=i):
            full = list(args)
            full[i] = v
            return f(*full)
        _, t = _quiet(funcgrad.jvp, fi, (x,), (np.ones_like(x),))
        g = _quiet(funcgrad.grad(lambda v: fnp.sum(fi(v))), x)
        t, g = np.asarray(t), np.asarray(g)
        assert g.dtype == x.dtype, f"{what}: grad of argument {i} is {g.dtype}, input {x.dtype}"
        if t.dtype != g.dtype:          # a promoting function: the tangent is the output's
            t = t.astype(g.dtype)
        # (below 1e-280, resp. 1e-35 in float32, the two orders of rounding underflow
        # differently)
        tiny = 1e-35 if x.dtype == np.float32 else 1e-280
        ok = (t == g) | (np.isnan(t) & np.isnan(g)) | _quiet(np.isclose, t, g, rtol=rtol,
                                                              atol=tiny)
        assert ok.all(), (f"{what}: forward and reverse mode differ in argument {i} at "
                          f"{[a[~ok] for a in args]}: jvp {t[~ok]}, grad {g[~ok]}")
    return g


def _rtol(dt):
    return 1e-5 if dt == np.float32 else 1e-12


# ---- NumPy elementwise: unary ------------------------------------------------------------
UNARY = sorted(n for n in dir(np) if isinstance(getattr(np, n), np.ufunc)
               and getattr(np, n).nin == 1 and hasattr(fnp, n)
               and n not in ("bitwise_invert", "bitwise_not", "invert"))   # integer-only
TORCH_UNARY = {"arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctanh", "ceil", "cos",
               "cosh", "deg2rad", "exp", "exp2", "expm1", "floor", "log", "log10",
               "log1p", "log2", "negative", "positive", "rad2deg", "reciprocal", "sign",
               "sin", "sinh", "sqrt", "square", "tan", "tanh", "trunc", "abs"}
# where our derivative deliberately differs from PyTorch's (point: reason)
CONVENTIONS = {
    "abs": ([np.nan], "abs'(NaN) is NaN (PyTorch: 0)"),
    "expm1": ([-40.0], "expm1'(x) = exp(x) exactly (PyTorch's result + 1 rounds to 0)"),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", UNARY)
def test_unary_values_as_numpy(name, dtype):
    x = EDGE.astype(dtype)
    want = _quiet(getattr(np, name), x)
    got = _quiet(getattr(fnp, name), x)
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
        for i, (g, w) in enumerate(zip(got, want)):
            _assert_same(g, w, _rtol(dtype), f"{name}[{i}]")
    else:
        _assert_same(got, want, _rtol(dtype), name)
    # and a 0-d input gives a 0-d result
    got0 = _quiet(getattr(fnp, name), x[2:3].reshape(()))
    for g in (got0 if isinstance(got0, tuple) else (got0,)):
        assert np.ndim(g) == 0


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", [n for n in UNARY if getattr(np, n).nout == 1
                                  and _quiet(getattr(np, n), EDGE[:1]).dtype.kind == "f"])
def test_unary_modes_agree(name, dtype):
    _modes_agree(getattr(fnp, name), (EDGE.astype(dtype),), name, 1e-6)


@pytest.mark.parametrize("name", sorted(TORCH_UNARY))
def test_unary_derivative_as_torch(name):
    """The derivative on the edge inputs equals PyTorch's wherever PyTorch's is a number
    (PyTorch's NaN at a point where ours is finite -- e.g. ``sqrt'(inf) = 0`` -- is
    allowed; the reverse is not)."""
    x = EDGE.copy()
    if name in CONVENTIONS:
        x = x[~np.isin(x, CONVENTIONS[name][0]) & ~(np.isnan(x) & np.isnan(
            CONVENTIONS[name][0]).any())]
    g = np.asarray(_quiet(funcgrad.grad(lambda v: fnp.sum(getattr(fnp, name)(v))), x))
    xt = torch.tensor(x, requires_grad=True)
    getattr(torch, name)(xt).sum().backward()
    want = xt.grad.numpy()
    both = ~np.isnan(want)
    ok = (g == want) | _quiet(np.isclose, g, want, rtol=1e-12, atol=0) | ~both
    assert ok.all(), f"{name}': at {x[~ok]}: ours {g[~ok]}, torch {want[~ok]}"


# ---- NumPy elementwise: binary -----------------------------------------------------------
BINARY = sorted(n for n in dir(np) if isinstance(getattr(np, n), np.ufunc)
                and getattr(np, n).nin == 2 and hasattr(fnp, n)
                and n not in ("matmul", "vecdot", "matvec", "vecmat")
                and "shift" not in n and not n.startswith("bitwise") and n != "ldexp")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", BINARY)
def test_binary_values_as_numpy(name, dtype):
    x, y = (p.astype(dtype) for p in PAIRS)
    want = _quiet(getattr(np, name), x, y)
    got = _quiet(getattr(fnp, name), x, y)
    _assert_same(got, want, _rtol(dtype), name)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", [n for n in BINARY if _quiet(getattr(np, n), 1.0, 1.0)
                                  .dtype.kind == "f" and n != "nextafter"])
def test_binary_modes_agree(name, dtype):
    x, y = (p.astype(dtype) for p in PAIRS)
    _modes_agree(getattr(fnp, name), (x, y), name, 1e-6)


def test_max_min_infinite_ties_split_the_gradient():
    x = np.array([np.inf, -np.inf, 1.0])
    for f in (fnp.maximum, fnp.minimum):
        gx, gy = funcgrad.grad(lambda a, b: fnp.sum(f(a, b)), argnums=(0, 1))(x, x.copy())
        np.testing.assert_array_equal(gx, [0.5, 0.5, 0.5])
        np.testing.assert_array_equal(gy, [0.5, 0.5, 0.5])
        _, t = funcgrad.jvp(lambda a: f(a, x), (x,), (np.ones(3),))
        np.testing.assert_array_equal(t, [0.5, 0.5, 0.5])


def test_modf_edges_as_numpy():
    x = np.array([np.inf, -np.inf, -0.0, -1.0, -2.5, 3.0, np.nan])
    for g, w in zip(fnp.modf(x), np.modf(x)):
        _assert_same(g, w, 0, "modf")
    _assert_same(fnp.modf(np.arange(3))[0], np.modf(np.arange(3))[0], 0, "modf(int)")
    np.testing.assert_array_equal(
        funcgrad.grad(lambda v: fnp.sum(fnp.modf(v)[0]))(np.array([-1.0, 0.5, 2.0])), 1.0)


# ---- scipy.special -----------------------------------------------------------------------
SP_UNARY = ["digamma", "erf", "erfc", "erfcinv", "erfinv", "expit", "gamma", "gammaln",
            "gammasgn", "i0e", "i1", "i1e", "log_expit", "log_ndtr", "logit", "ndtr",
            "ndtri", "psi", "rgamma", "entr", "j0", "j1", "y0", "y1"]
SP_BINARY = ["beta", "betaln", "gammainc", "gammaincc", "xlog1py", "xlogy"]
# Known differences from SciPy still open, with the reason (strict xfails: fixing one
# makes its test fail until it is removed from here).
SP_KNOWN = {
    "gammaln": "gammaln(-inf) is +inf (SciPy: -inf)",
    "entr": "entr(1) is +0.0 (SciPy: -0.0)",
    "j1": "j1(-0.0) is +0.0 (SciPy: -0.0; computed as jv(1, x))",
    "beta": "poles: beta(0, y), beta(-0, y), beta(a, -1) (SciPy: +-inf or finite limits) "
            "and beta(x, inf) (SciPy: 0) give NaN or the wrong sign",
    "betaln": "poles: betaln(0, y) and betaln(x, inf) give NaN (SciPy: inf, -inf)",
}


# absolute accuracy where the relative one is not reached
SP_ATOL = {"gammaincc": (3e-16, "Q(a, x) for tiny a is 1 - P(a, x): an absolute error of "
                                "one ulp of 1 where the value is ~a")}


def _known(names, known):
    return [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=known[n]))
            if n in known else n for n in names]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", _known(SP_UNARY, SP_KNOWN))
def test_special_unary_values_as_scipy(name, dtype):
    x = EDGE.astype(dtype)
    _assert_same(_quiet(getattr(fsp, name), x), _quiet(getattr(scipy_special, name), x),
                 1e-5 if dtype == np.float32 else 1e-10, name)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", SP_UNARY)
def test_special_unary_modes_agree(name, dtype):
    _modes_agree(getattr(fsp, name), (EDGE.astype(dtype),), name, 1e-6)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", _known(SP_BINARY, SP_KNOWN))
def test_special_binary_values_as_scipy(name, dtype):
    x, y = (p.astype(dtype) for p in PAIRS)
    got, want = _quiet(getattr(fsp, name), x, y), _quiet(getattr(scipy_special, name), x, y)
    if name in SP_ATOL:
        near = np.abs(got.astype(float) - want.astype(float)) <= SP_ATOL[name][0]
        got = np.where(near, want, got)
    _assert_same(got, want, 1e-5 if dtype == np.float32 else 1e-10, name, signed_zero=False)


@pytest.mark.parametrize("name", ["beta", "betaln"])
def test_special_beta_large_argument_as_scipy(name):
    """Away from the poles (the xfails above) beta/betaln now agree with SciPy, also for
    arguments where gammaln's differences cancelled: betaln(1, 1e20) was 0."""
    a = np.array([1.0, 0.5, 3.0, 1e5, 1e20, -2.5, 40.0, 1e4 + 1, 7.0])
    b = np.array([1e20, 1e20, 1e20, 1e20, 1e20, 1e20, 1e20, 3.0, 2e4])
    for x, y in ((a, b), (b, a)):
        _assert_same(getattr(fsp, name)(x, y), getattr(scipy_special, name)(x, y), 1e-10,
                     name, signed_zero=False)
    funcgrad.test_util.check_grads(getattr(fsp, name), (np.array([1.5, 3.0]),
                                                        np.array([2e4, 3e5])), order=2)


def test_gammainc_large_and_infinite_a_as_scipy():
    for a in (1e4, 1e5, 1e20):
        x = np.array([0.9, 1.0, 1.1]) * a
        _assert_same(fsp.gammainc(a, x), scipy_special.gammainc(a, x), 1e-12, "gammainc")
        _assert_same(fsp.gammaincc(a, x), scipy_special.gammaincc(a, x), 1e-12, "gammaincc")
    x = np.array([1.0, 40.0, np.inf])
    _assert_same(_quiet(fsp.gammainc, np.inf, x), _quiet(scipy_special.gammainc, np.inf, x),
                 0, "gammainc(inf, x)")


def test_xlogy_of_zero_and_nan_is_nan():
    for f, g in ((fsp.xlogy, scipy_special.xlogy), (fsp.xlog1py, scipy_special.xlog1py)):
        x, y = np.array([0.0, 0.0, 0.0]), np.array([np.nan, 0.0, 2.0])
        _assert_same(_quiet(f, x, y), _quiet(g, x, y), 0, f.__name__, signed_zero=False)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", ["beta", "betaln", "xlog1py", "xlogy"])
def test_special_binary_modes_agree(name, dtype):
    x, y = (p.astype(dtype) for p in PAIRS)
    if name in ("beta", "betaln"):
        # at 1e+-300 (and 1e20 in float32) the reverse pass's intermediate products
        # (cotangent 1e300 times a 1e20 argument) overflow: both modes are only compared
        # at moderate magnitudes
        lim = 1e19 if dtype == np.float32 else 1e100
        keep = ((np.abs(x) < lim) & (np.abs(y) < lim) & ~((x != 0) & (np.abs(x) < 1 / lim))
                & ~((y != 0) & (np.abs(y) < 1 / lim)))
        x, y = x[keep], y[keep]
    _modes_agree(getattr(fsp, name), (x, y), name, 1e-4 if dtype == np.float32 else 1e-6)


# ---- reductions on edge shapes -----------------------------------------------------------
REDUCTIONS = ["sum", "prod", "mean", "max", "min", "amax", "amin", "ptp", "std", "var",
              "nansum", "nanprod", "nanmean", "nanmax", "nanmin", "nanstd", "nanvar",
              "median", "nanmedian", "cumsum", "cumprod", "nancumsum", "nancumprod",
              "argmax", "argmin", "nanargmax", "nanargmin", "sort", "argsort", "average",
              "all", "any", "count_nonzero", "diff", "flip"]
SHAPED = {"0d": np.array(1.5), "empty": np.zeros(0), "empty_mid": np.zeros((2, 0, 3)),
          "size1": np.array([[2.0, -1.0, 0.5]]),
          "inf_nan": np.array([[1.0, np.inf, -np.inf], [np.nan, 2.0, -0.0]]),
          "ties": np.array([[1.0, 1.0, 0.0], [2.0, 2.0, 2.0]]),
          "huge": np.array([1e300, 1e300, -1e300])}
KWARGS = [{}, {"axis": -1}, {"axis": 0}, {"axis": -1, "keepdims": True},
          {"axis": None, "keepdims": True}]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape_name", list(SHAPED))
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reduction_edges_as_numpy(name, shape_name, dtype):
    """Values, shapes and dtypes as NumPy for every call NumPy accepts; then the gradient
    has the input's shape and dtype and ``<jvp(t), c> == <t, vjp(c)>`` (both modes)."""
    x = SHAPED[shape_name].astype(dtype)
    f_np, f_fg = getattr(np, name), getattr(fnp, name)
    for kw in KWARGS:
        try:
            want = _quiet(f_np, x, **kw)
        except (ValueError, TypeError, IndexError, ZeroDivisionError,
                np.exceptions.AxisError):
            continue
        got = _quiet(f_fg, x, **kw)
        _assert_same(got, want, _rtol(dtype) * 10, f"{name}({shape_name}, {kw})",
                     signed_zero=False)
        if np.asarray(want).dtype.kind != "f" or x.size == 0:
            continue
        f = lambda v: f_fg(v, **kw)     # noqa: E731
        t = np.linspace(-1.0, 1.0, x.size).reshape(x.shape).astype(dtype)
        _, jt = _quiet(funcgrad.jvp, f, (x,), (t,))
        out, f_vjp = _quiet(funcgrad.vjp, f, x)
        c = np.ones(np.shape(out), np.asarray(out).dtype)
        (ct,) = _quiet(f_vjp, c)
        assert ct.shape == x.shape and ct.dtype == x.dtype, f"{name}: cotangent {ct.dtype}"
        lhs, rhs = np.sum(np.asarray(jt) * c), np.sum(t * np.asarray(ct))
        assert (np.isnan(lhs) and np.isnan(rhs)) or _quiet(np.isclose, lhs, rhs, rtol=1e-5,
                                                           atol=1e-6), \
            f"{name}({shape_name}, {kw}): <jvp, c> = {lhs}, <t, vjp> = {rhs}"


# ---- funcgrad_nn.functional activations against PyTorch ---------------------------------
F = pytest.importorskip("funcgrad_nn.functional")
TF = torch.nn.functional
ACTIVATIONS = ["relu", "relu6", "hardtanh", "leaky_relu", "elu", "selu", "celu", "gelu",
               "silu", "sigmoid", "tanh", "softplus", "softsign", "tanhshrink",
               "logsigmoid", "hardshrink", "softshrink", "hardsigmoid", "hardswish", "mish"]
# points where funcgrad's derivative deliberately differs from PyTorch's; and at NaN
# inputs (where the value is NaN) the derivative is not compared
NN_CONVENTIONS = {
    "sigmoid": ([40.0], "sigmoid'(40) = 4.2e-18 exactly (PyTorch's y (1 - y) rounds to 0)"),
}


# PyTorch's float64 hardsigmoid backward multiplies by a float32 1/6
NN_RTOL = {"hardsigmoid": 1e-7}


def _torch_fn(name):
    return getattr(TF, name, None) or getattr(torch, name)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_edges_as_torch(name, dtype):
    x = EDGE.astype(dtype)
    got = _quiet(getattr(F, name), x)
    xt = torch.tensor(x, requires_grad=True)
    yt = _torch_fn(name)(xt)
    want = yt.detach().numpy()
    # PyTorch's float32 kernels vectorised for AVX-512 give gelu(inf) = NaN (its float64
    # and AVX2 ones give inf): where its float32 value is NaN from a number, the reference
    # is its float64 value, rounded
    bad = np.isnan(want) & ~np.isnan(x)
    if bad.any() and dtype == np.float32:
        with torch.no_grad():
            ref64 = _torch_fn(name)(torch.tensor(x.astype(np.float64))).numpy()
        want = np.where(bad, _quiet(ref64.astype, np.float32), want)
    _assert_same(got, want, _rtol(dtype) * 10, name, signed_zero=False)
    yt.sum().backward()
    g = _modes_agree(getattr(F, name), (x,), name, 1e-6)
    want = xt.grad.numpy()
    skip = np.isnan(x) | np.isin(x, NN_CONVENTIONS.get(name, ([],))[0])
    ok = skip | (g == want) | (np.isnan(g) & np.isnan(want)) | _quiet(
        np.isclose, g, want, rtol=max(_rtol(dtype) * 100, NN_RTOL.get(name, 0)), atol=1e-30)
    assert ok.all(), f"{name}': at {x[~ok]}: ours {g[~ok]}, torch {want[~ok]}"


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmin"])
def test_softmax_family_edges_as_torch(name):
    x = np.array([[0.0, -np.inf, 1.0], [1e300, 1e300, -1e300], [-np.inf, 0.0, -np.inf]])
    for dt in DTYPES:
        xd = x.astype(dt)
        got = _quiet(getattr(F, name), xd, axis=-1)
        xt = torch.tensor(xd, requires_grad=True)
        yt = getattr(TF, name)(xt, dim=-1)
        # where PyTorch's shift by the maximum gives inf - inf = NaN, ours is the limit
        want = yt.detach().numpy()
        fin = ~np.isnan(want)
        _assert_same(got[fin], want[fin], _rtol(dt) * 10, name, signed_zero=False)
        assert not (np.isnan(got) & fin).any()      # NaN only where PyTorch has NaN
        w = torch.tensor(np.array([[1.0, 2.0, 3.0]] * 3).astype(dt))
        (yt * w).sum().backward()
        g = _quiet(funcgrad.grad(lambda v: fnp.sum(getattr(F, name)(v, axis=-1) * w.numpy())),
                   xd)
        rows = ~np.isnan(want).any(axis=-1)
        np.testing.assert_allclose(g[rows], xt.grad.numpy()[rows], rtol=_rtol(dt) * 100,
                                   atol=1e-6)
