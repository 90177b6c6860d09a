"""The optional Numba kernels (windows_numba.py) give the NumPy path's results: exactly
for pooling, to rounding for the direct 3x3 convolutions; skipped where Numba is not
installed."""
import contextlib

import numpy as np
import pytest

import funcgrad
import funcgrad.lax as lax
from funcgrad.test_util import check_grads
from funcgrad._src.prims import windows_kernels as K
from funcgrad._src.prims import windows_numba as nb

pytest.importorskip("numba")


@pytest.fixture(scope="module", autouse=True)
def compiled():
    old = nb.set_enabled(True)
    assert nb.kernels(wait=True) is not None
    yield
    nb.set_enabled(old)


@contextlib.contextmanager
def numpy_path():
    old = nb.set_enabled(False)
    try:
        yield
    finally:
        nb.set_enabled(old)


def pool_params(nd):
    return dict(window_dimensions=(1,) * (nd - 2) + (2, 2),
                window_strides=(1,) * (nd - 2) + (2, 2), padding=((0, 0),) * nd,
                base_dilation=(1,) * nd, window_dilation=(1,) * nd)


def same(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.array_equal(a, b, equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(4, 3, 8, 8), (2, 5, 7, 9), (3, 6, 6), (5, 4),
                                   (1, 1, 2, 3), (2, 2, 2, 3, 4)])
def test_max_and_scatter_equal_the_numpy_path(dtype, shape):
    rng = np.random.default_rng(sum(shape))
    # small integers: many ties, which must go to the first element in row-major order
    x = rng.integers(-3, 4, shape).astype(dtype)
    flat = x.reshape(-1)
    flat[rng.integers(0, flat.size, 3)] = np.nan
    flat[rng.integers(0, flat.size, 2)] = -np.inf
    p = pool_params(len(shape))
    assert K._numba_pool(x, p) is not None
    m, idx = K._window_max_impl(x, **p)
    g = rng.standard_normal(m.shape).astype(dtype)
    g.reshape(-1)[0] = np.inf                     # non-finite cotangents behave the same
    out = K._window_scatter_impl(g, idx, operand_shape=x.shape, **p)
    with numpy_path(), np.errstate(invalid="ignore"):     # (inf * 0 in the products)
        assert K._numba_pool(x, p) is None
        m0, idx0 = K._window_max_impl(x, **p)
        out0 = K._window_scatter_impl(g, idx0, operand_shape=x.shape, **p)
    same(m, m0)
    same(idx, idx0)
    same(out, out0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_of_every_window_of_ties_nans_and_infinities_equals_the_numpy_path(dtype):
    # each of the 5**4 windows over {nan, -inf, 0, 1, inf}: the kernel compares pairwise
    # without branches, so every order of ties and NaNs is checked, not sampled
    import itertools
    vals = np.array([np.nan, -np.inf, 0.0, 1.0, np.inf], dtype)
    combos = np.array(list(itertools.product(range(5), repeat=4)))
    x = vals[combos].reshape(25, 25, 2, 2).transpose(0, 2, 1, 3).reshape(1, 50, 50)
    p = pool_params(3)
    assert K._numba_pool(x, p) is not None
    m, idx = K._window_max_impl(x, **p)
    with numpy_path():
        m0, idx0 = K._window_max_impl(x, **p)
    same(m, m0)
    same(idx, idx0)
    assert np.isnan(m).sum() == 5 ** 4 - 4 ** 4 and (idx[np.isnan(m)] == 3).all()


def test_other_windows_take_the_numpy_path():
    x = np.ones((2, 3, 6, 6), np.float32)
    for p in [dict(pool_params(4), window_dimensions=(1, 1, 3, 3),
                   window_strides=(1, 1, 3, 3)),
              dict(pool_params(4), window_strides=(1, 1, 1, 1)),
              dict(pool_params(4), padding=((0, 0), (0, 0), (1, 1), (0, 0)))]:
        assert K._numba_pool(x, p) is None
    assert K._numba_pool(x.astype(np.int32), pool_params(4)) is None
    assert K._numba_pool(np.ones((2, 3, 6, 6), np.float32)[:, :, ::-1], pool_params(4)) is None
    frozen = np.ones((2, 3, 6, 6), np.float32)
    frozen.flags.writeable = False           # (would need a signature not compiled ahead)
    assert K._numba_pool(frozen, pool_params(4)) is None
    m, idx = K._window_max_impl(frozen, **pool_params(4))
    assert m.shape == (2, 3, 3, 3) and not idx.any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_through_max_pool_equals_the_numpy_path(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 9, 10)).astype(dtype)
    w = rng.standard_normal((3, 2, 4, 5)).astype(dtype)

    def f(x):
        return funcgrad.numpy.sum(lax.max_pool(x, (2, 2)) * w)

    val, grad = funcgrad.value_and_grad(f)(x)
    jval, jgrad = funcgrad.jit(funcgrad.value_and_grad(f))(x)
    with numpy_path():
        val0, grad0 = funcgrad.value_and_grad(f)(x)
    same(np.asarray(grad), np.asarray(grad0))
    same(np.asarray(jgrad), np.asarray(grad0))
    assert float(val) == float(val0) == float(jval)


# ---- direct 3x3 convolutions over few input features ----------------------------------
def conv_params(pad, dil):
    return dict(window_strides=(1, 1), padding=pad, lhs_dilation=(1, 1), rhs_dilation=dil,
                feature_group_count=1)


def conv_both_paths(x, w, g, p):
    """(forward, kernel cotangent) on the direct kernels, then on the NumPy path."""
    assert K._numba_conv(x, w, (3, 3), **p) is not None
    direct = K._conv_impl(x, w, **p), K._conv_kernel_ct_impl(x, g, kernel_shape=(3, 3), **p)
    with numpy_path():
        assert K._numba_conv(x, w, (3, 3), **p) is None
        ref = K._conv_impl(x, w, **p), K._conv_kernel_ct_impl(x, g, kernel_shape=(3, 3), **p)
    return direct, ref


CONV_CASES = [  # (N, C, O, H, W), padding, kernel dilation
    ((4, 1, 16, 28, 28), ((1, 1), (1, 1)), (1, 1)),        # the MNIST first layer
    ((3, 2, 5, 7, 9), ((0, 2), (1, 0)), (1, 1)),           # lopsided, odd output count
    ((2, 3, 7, 10, 8), ((2, 2), (2, 2)), (2, 1)),          # dilated rows
    ((2, 1, 6, 5, 11), ((3, 1), (0, 4)), (1, 2)),          # dilated columns
    ((2, 1, 1, 3, 3), ((0, 0), (0, 0)), (1, 1)),           # one output position
    ((3, 2, 4, 1, 2), ((1, 1), (2, 0)), (1, 1)),           # images smaller than the kernel
    ((40, 1, 9, 12, 6), ((1, 1), (1, 1)), (1, 1)),         # a batch split over threads
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,pad,dil", CONV_CASES)
def test_direct_conv_and_kernel_cotangent_equal_the_numpy_path(dtype, shape, pad, dil):
    n, c, o, h, w_ = shape
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal((n, c, h, w_)).astype(dtype)
    w = rng.standard_normal((o, c, 3, 3)).astype(dtype)
    p = conv_params(pad, dil)
    ho = h + sum(pad[0]) - 2 * dil[0]
    wo = w_ + sum(pad[1]) - 2 * dil[1]
    g = rng.standard_normal((n, o, ho, wo)).astype(dtype)
    (y, dw), (y0, dw0) = conv_both_paths(x, w, g, p)
    tol = 2e-6 if dtype == np.float32 else 1e-13
    for a, b in ((y, y0), (dw, dw0)):
        assert a.dtype == b.dtype == dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.abs(b).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_direct_conv_propagates_nan_and_inf_as_the_numpy_path(dtype):
    # each output (and kernel cotangent) is a sum of the same products on both paths, so
    # the same ones are NaN or infinite: padding zeros meet infinite weights and
    # cotangents as 0 * inf = NaN on both; positions outside the image meet nothing
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 2, 8, 7)).astype(dtype)
    w = rng.standard_normal((5, 2, 3, 3)).astype(dtype)
    g = rng.standard_normal((3, 5, 8, 7)).astype(dtype)
    x[0, 0, 2, 3] = np.nan
    x[1, 1, 0, 6] = np.inf          # last column: the direct kernels' row-end positions
    x[2, 0, 7, 0] = -np.inf         # read it beside the first column of the next row
    w[3, 1, 0, 0] = np.inf
    g[1, 2, 4, 4] = np.inf
    g[2, 4, 0, 0] = np.nan
    with np.errstate(invalid="ignore"):
        (y, dw), (y0, dw0) = conv_both_paths(x, w, g, conv_params(((1, 1), (1, 1)), (1, 1)))
    for a, b in ((y, y0), (dw, dw0)):
        assert (np.isnan(a) == np.isnan(b)).all()
        assert (np.isinf(a) == np.isinf(b)).all() and (a[np.isinf(a)] == b[np.isinf(b)]).all()
        fin = np.isfinite(b)
        assert fin.any() and not fin.all()
        np.testing.assert_allclose(a[fin], b[fin], rtol=1e-5, atol=1e-5)


def test_other_convolutions_take_the_numpy_path():
    x = np.ones((2, 1, 6, 6), np.float32)
    w = np.ones((4, 1, 3, 3), np.float32)
    base = conv_params(((1, 1), (1, 1)), (1, 1))
    assert K._numba_conv(x, w, (3, 3), **base) is not None
    for p in [dict(base, window_strides=(2, 1)), dict(base, lhs_dilation=(1, 2)),
              dict(base, padding=((-1, 1), (1, 1)))]:
        assert K._numba_conv(x, w, (3, 3), **p) is None
    assert K._numba_conv(x, w[:, :, :2], (2, 3), **base) is None        # not 3x3
    wide = np.ones((2, nb.CONV_MAX_FEATURES + 1, 6, 6), np.float32)
    assert K._numba_conv(wide, w, (3, 3), **base) is None                # many features
    g2 = np.ones((2, 2, 6, 6), np.float32)
    assert K._numba_conv(g2, w, (3, 3), **dict(base, feature_group_count=2)) is None
    assert K._numba_conv(x, w.astype(np.float64), (3, 3), **base) is None   # mixed dtypes
    assert K._numba_conv(x.astype(np.int32), w, (3, 3), **base) is None
    assert K._numba_conv(np.ones((2, 1, 6, 12), np.float32)[..., ::2], w, (3, 3),
                         **base) is None
    frozen = x.copy()
    frozen.flags.writeable = False           # (would need a signature not compiled ahead)
    assert K._numba_conv(frozen, w, (3, 3), **base) is None
    np.testing.assert_array_equal(K._conv_impl(frozen, w, **base), K._conv_impl(x, w, **base))
    # a read-only or flipped kernel is copied, not refused
    wf = np.ones((4, 1, 3, 3), np.float32)[:, :, ::-1, ::-1]
    assert K._conv_impl(x, wf, **base).dtype == np.float32


def test_direct_conv_matches_torch_and_its_gradients_check_to_order_2():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 2, 9, 8))
    w = rng.standard_normal((5, 2, 3, 3))

    def f(x, w):
        return lax.conv_general_dilated(x, w, (1, 1), ((2, 1), (1, 3)), rhs_dilation=(2, 1))
    assert K._numba_conv(x, w, (3, 3), **conv_params(((2, 1), (1, 3)), (2, 1))) is not None
    y, pullback = funcgrad.vjp(f, x, w)
    g = rng.standard_normal(y.shape)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    yt = F.conv2d(F.pad(xt, (1, 3, 2, 1)), wt, dilation=(2, 1))
    yt.backward(torch.tensor(g))
    gx, gw = pullback(g)
    for a, b in ((y, yt), (gx, xt.grad), (gw, wt.grad)):
        np.testing.assert_allclose(np.asarray(a), b.detach().numpy(), rtol=1e-10, atol=1e-10)
    # float32 in, float32 out, to float32 rounding
    y32, pb32 = funcgrad.vjp(f, x.astype(np.float32), w.astype(np.float32))
    gw32 = pb32(g.astype(np.float32))[1]
    assert y32.dtype == gw32.dtype == np.float32
    np.testing.assert_allclose(np.asarray(gw32), wt.grad.numpy(), rtol=1e-4, atol=1e-4)
    # second order: the input cotangent of a one-output convolution is a direct
    # convolution of g too (one input feature), and so are its derivatives
    check_grads(f, (x[:2], w), order=2)
    check_grads(lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME"),
                (x[:2, :1], w[:1, :1]), order=2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_of_a_small_cnn_under_jit_equals_the_numpy_path(dtype):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((6, 1, 12, 12)).astype(dtype)
    w1 = rng.standard_normal((4, 1, 3, 3)).astype(dtype)
    w2 = rng.standard_normal((3, 4, 3, 3)).astype(dtype)

    def f(w1, w2):
        h = funcgrad.nn.relu(lax.conv_general_dilated(x, w1, (1, 1), "SAME"))
        h = lax.max_pool(h, (2, 2))
        return funcgrad.numpy.sum(lax.conv_general_dilated(h, w2, (1, 1), "SAME") ** 2)

    val, grads = funcgrad.jit(funcgrad.value_and_grad(f, argnums=(0, 1)))(w1, w2)
    with numpy_path():
        val0, grads0 = funcgrad.value_and_grad(f, argnums=(0, 1))(w1, w2)
    tol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(float(val), float(val0), rtol=tol)
    for a, b in zip(grads, grads0):
        assert np.asarray(a).dtype == dtype
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol,
                                   atol=tol * np.abs(np.asarray(b)).max())
