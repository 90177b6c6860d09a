"""funcgrad.lax convolution and pooling: values against PyTorch (and JAX), derivatives
to second order against finite differences, dtypes and error messages."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import funcgrad
import funcgrad.lax as lax
import funcgrad.numpy as fnp
from funcgrad._src.errors import FuncgradTypeError, FuncgradValueError
from funcgrad.test_util import check_grads

torch = pytest.importorskip("torch", reason="torch is the reference for values")
F = torch.nn.functional


def rand(*shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def t(x):
    return torch.tensor(x)


def close(a, b, tol=1e-10):
    a = np.asarray(a)
    b = b.detach().numpy() if hasattr(b, "detach") else np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


# ---- values against PyTorch -----------------------------------------------------------
@pytest.mark.parametrize("stride,pad,dil,groups", [
    (1, (0, 0), 1, 1), (2, (1, 2), 1, 1), (1, (2, 2), 2, 2), (3, (0, 1), 1, 4),
    (2, (3, 0), 3, 1)])
def test_conv1d_matches_torch(stride, pad, dil, groups):
    x, w = rand(3, 4, 11), rand(8, 4 // groups, 3, seed=1)
    y = lax.conv_general_dilated(x, w, (stride,), (pad,), rhs_dilation=(dil,),
                                 dimension_numbers=("NCH", "OIH", "NCH"),
                                 feature_group_count=groups)
    ref = F.conv1d(F.pad(t(x), pad), t(w), stride=stride, dilation=dil, groups=groups)
    close(y, ref)


@pytest.mark.parametrize("stride,pad,dil,groups", [
    ((1, 1), ((1, 1), (1, 1)), (1, 1), 1), ((2, 1), ((0, 1), (2, 0)), (1, 2), 2),
    ((1, 2), ((2, 2), (1, 1)), (2, 1), 6), ((3, 3), ((1, 1), (1, 1)), (1, 1), 3),
    ((1, 1), ((0, 0), (0, 0)), (2, 2), 1)])
def test_conv2d_matches_torch(stride, pad, dil, groups):
    x, w = rand(2, 6, 9, 8), rand(12, 6 // groups, 3, 2, seed=1)
    y = lax.conv_general_dilated(x, w, stride, pad, rhs_dilation=dil,
                                 feature_group_count=groups)
    xt = F.pad(t(x), (pad[1][0], pad[1][1], pad[0][0], pad[0][1]))
    close(y, F.conv2d(xt, t(w), stride=stride, dilation=dil, groups=groups))


def test_conv2d_same_and_float32_match_torch():
    x, w = rand(4, 3, 10, 7, dtype=np.float32), rand(5, 3, 3, 3, seed=1, dtype=np.float32)
    y = lax.conv(x, w, (1, 1), "SAME")
    assert y.dtype == np.float32
    close(y, F.conv2d(t(x), t(w), padding="same"), tol=1e-5)


def test_depthwise_conv_matches_torch():
    x, w = rand(2, 4, 6, 6), rand(8, 1, 3, 3, seed=1)
    y = lax.conv_general_dilated(x, w, (1, 1), "VALID", feature_group_count=4)
    close(y, F.conv2d(t(x), t(w), groups=4))


def test_conv3d_matches_torch():
    x, w = rand(2, 2, 5, 6, 4), rand(3, 2, 2, 3, 2, seed=1)
    y = lax.conv_general_dilated(x, w, (1, 2, 1), ((1, 0), (1, 1), (0, 1)))
    xt = F.pad(t(x), (0, 1, 1, 1, 1, 0))
    close(y, F.conv3d(xt, t(w), stride=(1, 2, 1)))


def test_nhwc_layout_is_a_permutation_of_nchw():
    x, w = rand(2, 3, 7, 5), rand(4, 3, 3, 2, seed=1)
    ref = lax.conv_general_dilated(x, w, (2, 1), "SAME")
    y = lax.conv_general_dilated(x.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0), (2, 1),
                                 "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    close(y, ref.transpose(0, 2, 3, 1))
    dn = lax.conv_dimension_numbers(x.shape, w.shape, ("NCHW", "OIHW", "NHWC"))
    close(lax.conv_general_dilated(x, w, (2, 1), "SAME", dimension_numbers=dn),
          ref.transpose(0, 2, 3, 1))


@pytest.mark.parametrize("stride,pad,out_pad,dil", [(2, 1, 1, 1), (1, 0, 0, 1),
                                                    (3, 2, 1, 2), (2, 0, 0, 1)])
def test_conv_transpose_matches_torch(stride, pad, out_pad, dil):
    x, w = rand(2, 4, 5, 6), rand(4, 3, 3, 2, seed=1)     # torch layout (C_in, C_out, kh, kw)
    ref = F.conv_transpose2d(t(x), t(w), stride=stride, padding=pad,
                             output_padding=out_pad, dilation=dil)
    pads = [(dil * (k - 1) - pad, dil * (k - 1) - pad + out_pad) for k in w.shape[2:]]
    y = lax.conv_transpose(x, w, (stride, stride), pads, rhs_dilation=(dil, dil),
                           dimension_numbers=("NCHW", "OIHW", "NCHW"), transpose_kernel=True)
    close(y, ref)


def test_conv_transpose_is_the_gradient_of_conv():
    x, w = rand(2, 3, 8, 8), rand(5, 3, 3, 3, seed=1)
    g = rand(2, 5, 4, 4, seed=2)

    def f(x):
        return lax.conv_general_dilated(x, w, (2, 2), "SAME")
    _, pullback = funcgrad.vjp(f, x)
    y = lax.conv_transpose(g, w, (2, 2), "SAME", dimension_numbers=("NCHW", "OIHW", "NCHW"),
                           transpose_kernel=True)
    close(y, pullback(g)[0])


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 1, 1), (2, 1, 0)])
def test_pools_and_max_pool_gradient_match_torch(k, s, p):
    x = rand(2, 3, 7, 8)
    pads = ((p, p), (p, p))
    y = lax.max_pool(x, (k, k), (s, s), pads)
    xt = t(x).requires_grad_()
    ref = F.max_pool2d(xt, k, s, p)
    close(y, ref)
    g = rand(*y.shape, seed=3)
    gx = funcgrad.vjp(lambda x: lax.max_pool(x, (k, k), (s, s), pads), x)[1](g)[0]
    ref.backward(t(g))
    close(gx, xt.grad)    # overlapping windows (s < k) accumulate
    close(lax.avg_pool(x, (k, k), (s, s), pads), F.avg_pool2d(t(x), k, s, p))
    close(lax.avg_pool(x, (k, k), (s, s), pads, count_include_pad=False),
          F.avg_pool2d(t(x), k, s, p, count_include_pad=False))


def test_reduce_window_nchw_with_lax_names():
    x = rand(2, 3, 6, 6)
    y = lax.reduce_window(x, -np.inf, lax.max, (1, 1, 3, 3), (1, 1, 2, 2), "SAME")
    close(y, F.max_pool2d(F.pad(t(x), (0, 1, 0, 1), value=-np.inf), 3, 2))
    y = lax.reduce_window(x, 0.0, lax.add, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    close(y, 4 * F.avg_pool2d(t(x), 2))
    y = lax.reduce_window(x, np.inf, lax.min, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    close(y, -F.max_pool2d(-t(x), 2))
    y = lax.reduce_window(x, -np.inf, lax.max, (1, 1, 2, 1), (1, 1, 1, 2), "VALID")
    close(y, F.max_pool2d(t(x), (2, 1), (1, 2)))
    y = lax.reduce_window(x, -np.inf, lax.max, (1, 1, 1, 1), (1, 1, 2, 3), "VALID")
    close(y, x[:, :, ::2, ::3])
    # a non-identity init value takes part in every window
    y = lax.reduce_window(x, 0.0, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    close(y, F.relu(F.max_pool2d(t(x), 2)))


def test_max_pool_ties_go_to_the_first_element():
    x = np.zeros((1, 1, 2, 4))
    x[0, 0, 1, 3] = -1.0
    g = funcgrad.grad(lambda x: fnp.sum(lax.max_pool(x, (2, 2))))(x)
    np.testing.assert_array_equal(g[0, 0], [[1, 0, 1, 0], [0, 0, 0, 0]])
    xt = t(x).requires_grad_()
    F.max_pool2d(xt, 2).sum().backward()
    close(g, xt.grad)


def test_conv_gradients_match_torch_float32():
    x = rand(3, 4, 9, 9, dtype=np.float32)
    w, b = rand(6, 2, 3, 3, seed=1, dtype=np.float32), rand(6, seed=2, dtype=np.float32)

    def loss(x, w, b):
        y = lax.conv_general_dilated(x, w, (2, 2), ((1, 1), (1, 1)), rhs_dilation=(1, 2),
                                     feature_group_count=2)
        y = y + fnp.reshape(b, (1, -1, 1, 1))
        return fnp.sum(lax.max_pool(fnp.tanh(y), (2, 2)) ** 2)

    val, grads = funcgrad.value_and_grad(loss, argnums=(0, 1, 2))(x, w, b)
    xt, wt, bt = (t(a).requires_grad_() for a in (x, w, b))
    y = F.conv2d(xt, wt, bt, stride=2, padding=1, dilation=(1, 2), groups=2)
    ref = (F.max_pool2d(torch.tanh(y), 2) ** 2).sum()
    ref.backward()
    assert val.dtype == np.float32
    close(val, ref, tol=1e-4)
    for g, r in zip(grads, (xt, wt, bt)):
        assert g.dtype == np.float32
        close(g, r.grad, tol=1e-4)


@pytest.mark.parametrize("c,o,stride,pad,dil,groups", [
    (2, 4, 1, 1, 1, 1), (4, 2, 1, 1, 1, 1), (4, 2, 2, 1, 1, 2), (3, 6, 1, 2, 2, 3),
    (6, 3, 1, 0, 2, 3), (2, 4, 2, 0, 1, 1)])
def test_conv_vjp_matches_torch_autograd(c, o, stride, pad, dil, groups):
    # covers both ways of computing the input cotangent (col2im, and the convolution of
    # the cotangent with the flipped kernel when there are fewer outputs than inputs)
    x, w = rand(2, c, 9, 8), rand(o, c // groups, 3, 3, seed=1)

    def f(x, w):
        return lax.conv_general_dilated(x, w, (stride, stride), ((pad, pad), (pad, pad)),
                                        rhs_dilation=(dil, dil), feature_group_count=groups)
    y, pullback = funcgrad.vjp(f, x, w)
    g = rand(*y.shape, seed=2)
    xt, wt = t(x).requires_grad_(), t(w).requires_grad_()
    F.conv2d(xt, wt, stride=stride, padding=pad, dilation=dil, groups=groups).backward(t(g))
    gx, gw = pullback(g)
    close(gx, xt.grad)
    close(gw, wt.grad)


@pytest.mark.parametrize("shape,kernel,pad,dil,groups", [
    ((3, 1, 28, 28), (3, 3), ((1, 1), (1, 1)), (1, 1), 1),      # the MNIST layers
    ((3, 4, 7, 6), (3, 3), ((1, 1), (1, 1)), (1, 1), 2),
    ((2, 2, 5, 7), (3, 5), ((0, 3), (1, 3)), (2, 1), 1),        # any rows, lopsided columns
    ((2, 3, 6, 4), (2, 3), ((2, 0), (2, 0)), (1, 1), 1),        # padding only before
    ((2, 2, 3, 5), (1, 3), ((0, 0), (4, 0)), (1, 2), 2),
    ((2, 3, 1, 9), (1, 5), ((0, 0), (2, 2)), (1, 1), 1)])
def test_same_width_convolutions_match_torch(shape, kernel, pad, dil, groups):
    # Stride 1 and rows padded to their own width: the windows are read as shifted runs of
    # the unpadded input (windows_kernels._Shift), with zeros written where they wrap or
    # leave the image; a batch of 40 also runs in blocks and on threads.
    from funcgrad._src.prims import windows_kernels as wk
    assert wk._shift_layout(shape, kernel, (1, 1), pad, (1, 1), dil) is not None
    o = 2 * groups
    for n in (shape[0], 40):
        x, w = rand(n, *shape[1:]), rand(o, shape[1] // groups, *kernel, seed=1)

        def f(x, w):
            return lax.conv_general_dilated(x, w, (1, 1), pad, rhs_dilation=dil,
                                            feature_group_count=groups)
        y, pullback = funcgrad.vjp(f, x, w)
        g = rand(*y.shape, seed=2)
        xt, wt = t(x).requires_grad_(), t(w).requires_grad_()
        flat = (pad[1][0], pad[1][1], pad[0][0], pad[0][1])
        yt = F.conv2d(F.pad(xt, flat), wt, dilation=dil, groups=groups)
        yt.backward(t(g))
        close(y, yt)
        gx, gw = pullback(g)
        close(gx, xt.grad)
        close(gw, wt.grad)
    # 1-D convolutions take the same path
    x, w = rand(3, 2, 9), rand(4, 2, 3, seed=1)
    close(lax.conv_general_dilated(x, w, (1,), ((2, 0),)),
          F.conv1d(F.pad(t(x), (2, 0)), t(w)))


@pytest.mark.parametrize("c,o,groups,stride,pad,dil", [
    (16, 16, 1, 1, ((1, 1), (1, 1)), 1), (64, 32, 2, 1, ((1, 1), (1, 1)), 1),
    (16, 16, 1, 2, ((1, 1), (1, 1)), 1), (16, 32, 1, 1, ((0, 0), (0, 0)), 1),
    (16, 16, 1, 1, ((3, 0), (0, 4)), 2)])
def test_kernel_cotangent_of_long_windows_matches_torch(c, o, groups, stride, pad, dil):
    # windows of 128 elements or more: the kernel cotangent multiplies them by a
    # transposed copy of g (windows_kernels._kernel_ct_transposed), here with the
    # same-width layout (lopsided and dilated too), strides, groups and no padding
    from funcgrad._src.prims import windows_kernels as wk
    assert wk._kernel_ct_transposed(c // groups * 9, o // groups)
    x, w = rand(3, c, 6, 5), rand(o, c // groups, 3, 3, seed=1)

    def f(x, w):
        return lax.conv_general_dilated(x, w, (stride, stride), pad, rhs_dilation=(dil, dil),
                                        feature_group_count=groups)
    y, pullback = funcgrad.vjp(f, x, w)
    g = rand(*y.shape, seed=2)
    xt, wt = t(x).requires_grad_(), t(w).requires_grad_()
    flat = (pad[1][0], pad[1][1], pad[0][0], pad[0][1])
    F.conv2d(F.pad(xt, flat), wt, stride=stride, dilation=dil, groups=groups).backward(t(g))
    gx, gw = pullback(g)
    close(gx, xt.grad)
    close(gw, wt.grad)
    # float32 too (the product's other order rounds differently, within float32's rounding)
    _, pullback32 = funcgrad.vjp(f, x.astype(np.float32), w.astype(np.float32))
    close(pullback32(g.astype(np.float32))[1], wt.grad, tol=1e-4)
    check_grads(f, (x[:1, :, :4, :4], w), order=2)


def test_same_width_layout_applies_only_where_rows_keep_their_width():
    from funcgrad._src.prims import windows_kernels as wk
    layout = wk._shift_layout
    assert layout((1, 1, 8, 8), (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1))
    assert not layout((1, 1, 8, 8), (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), (1, 1))
    assert not layout((1, 1, 8, 8), (3, 3), (1, 1), ((1, 1), (0, 0)), (1, 1), (1, 1))
    assert not layout((1, 1, 8, 8), (3, 3), (1, 1), ((1, 1), (-1, 3)), (1, 1), (1, 1))
    assert not layout((1, 1, 8, 8), (3, 3), (1, 1), ((1, 1), (1, 1)), (2, 1), (1, 1))
    assert not layout((1, 1, 4, 4, 4), (3, 3, 3), (1, 1, 1), ((1, 1),) * 3, (1,) * 3,
                      (1,) * 3)


# ---- values against JAX (semantics of lhs_dilation, negative padding, defaults) -------
def test_against_jax_lax():
    jax = pytest.importorskip("jax", reason="jax is the reference for lax semantics")
    jax.config.update("jax_enable_x64", True)
    x, w = rand(2, 3, 7, 6), rand(4, 3, 3, 2, seed=1)
    kw = dict(window_strides=(2, 1), padding=((-1, 2), (2, 0)), lhs_dilation=(2, 1),
              rhs_dilation=(1, 2))
    close(lax.conv_general_dilated(x, w, **kw),
          np.asarray(jax.lax.conv_general_dilated(x, w, **kw)))
    xh, wh = x.transpose(0, 2, 3, 1), rand(3, 2, 3, 4, seed=2)    # NHWC, HWIO
    for pad in ("SAME", "VALID"):
        close(lax.conv_transpose(xh, wh, (2, 2), pad),
              np.asarray(jax.lax.conv_transpose(xh, wh, (2, 2), pad)))
    close(lax.conv_transpose(xh, wh, (2, 3), "SAME", transpose_kernel=True,
                             dimension_numbers=("NHWC", "HWOI", "NHWC")),
          np.asarray(jax.lax.conv_transpose(xh, wh, (2, 3), "SAME", transpose_kernel=True,
                                            dimension_numbers=("NHWC", "HWOI", "NHWC"))))
    args = (x, -np.inf, jax.lax.max, (1, 2, 2, 3), (1, 1, 2, 2), "SAME")
    close(lax.reduce_window(x, -np.inf, lax.max, *args[3:], window_dilation=(1, 1, 2, 1)),
          np.asarray(jax.lax.reduce_window(*args, window_dilation=(1, 1, 2, 1))))
    close(lax.reduce_window(x, 0.0, lax.add, (1, 1, 2, 2), (1, 1, 1, 1), "VALID",
                            base_dilation=(1, 1, 2, 1)),
          np.asarray(jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 1, 2, 2), (1, 1, 1, 1),
                                           "VALID", base_dilation=(1, 1, 2, 1))))


# ---- derivatives to second order ------------------------------------------------------
@given(st.integers(1, 2), st.integers(1, 2), st.integers(-1, 2), st.integers(0, 2),
       st.integers(1, 2), st.sampled_from([1, 2]), st.integers(0, 2**31))
def test_conv2d_check_grads_order2(s1, s2, lo, hi, dil, groups, seed):
    x, w = rand(2, 2, 5, 4, seed=seed), rand(4, 2 // groups, 2, 3, seed=seed + 1)

    def f(x, w):
        return lax.conv_general_dilated(x, w, (s1, s2), ((lo, hi), (hi, lo + 1)),
                                        rhs_dilation=(dil, 1), feature_group_count=groups)
    check_grads(f, (x, w), order=2)


@given(st.integers(1, 3), st.integers(1, 2), st.sampled_from(["SAME", "VALID", "SAME_LOWER"]),
       st.integers(1, 2), st.integers(0, 2**31))
def test_conv1d_check_grads_order2(stride, lhs_dil, padding, rhs_dil, seed):
    x, w = rand(2, 3, 7, seed=seed), rand(2, 3, 3, seed=seed + 1)

    def f(x, w):
        return lax.conv_general_dilated(x, w, (stride,), padding, lhs_dilation=(lhs_dil,),
                                        rhs_dilation=(rhs_dil,))
    check_grads(f, (x, w), order=2)


def test_conv_transpose_check_grads_order2():
    x, w = rand(1, 3, 4, 2), rand(2, 2, 3, 2, seed=1)
    check_grads(lambda x, w: lax.conv_transpose(x, w, (2, 1), "SAME", transpose_kernel=True),
                (x, w), order=2)


@given(st.sampled_from([lax.max, lax.add, lax.min]), st.integers(1, 3), st.integers(1, 2),
       st.integers(0, 1), st.integers(0, 2**31))
def test_reduce_window_check_grads_order2(computation, k, s, p, seed):
    x = rand(2, 2, 5, 4, seed=seed)
    init = {lax.max: -np.inf, lax.add: 0.0, lax.min: np.inf}[computation]
    p = min(p, k - 1)          # no window entirely in the padding (an infinite max)

    def f(x):
        return lax.reduce_window(x, init, computation, (1, 1, k, 2), (1, 1, s, s),
                                 ((0, 0), (0, 0), (p, p), (0, p)))
    check_grads(f, (x,), order=2)


def test_pools_check_grads_order2_through_a_network():
    x, w = rand(2, 1, 6, 6), rand(3, 1, 3, 3, seed=1)

    def f(x, w):
        h = fnp.tanh(lax.conv(x, w, (1, 1), "SAME"))
        return fnp.sum(lax.max_pool(h, (2, 2)) * lax.avg_pool(h, (3, 3), (2, 2), "SAME"))
    check_grads(f, (x, w), order=2)


# ---- dtypes and errors -----------------------------------------------------------------
def test_float32_stays_float32_through_every_rule():
    x, w = rand(2, 2, 5, 5, dtype=np.float32), rand(3, 2, 3, 3, seed=1, dtype=np.float32)

    def f(x, w):
        y = lax.conv_general_dilated(x, w, (2, 2), "SAME", rhs_dilation=(1, 1))
        return fnp.sum(lax.max_pool(y, (2, 2), (1, 1)) ** 2)
    gx, gw = funcgrad.grad(f, argnums=(0, 1))(x, w)
    assert gx.dtype == gw.dtype == np.float32
    h = funcgrad.hessian(lambda w: f(x, w))(w)
    assert h.dtype == np.float32 and h.shape == w.shape * 2
    _, tan = funcgrad.jvp(lambda x: lax.avg_pool(x, (2, 2)), (x,), (x,))
    assert tan.dtype == np.float32


def test_mismatched_channels_error_names_shapes_and_fix():
    x, w = np.zeros((2, 3, 8, 8)), np.zeros((4, 2, 3, 3))
    with pytest.raises(FuncgradValueError) as e:
        lax.conv_general_dilated(x, w, (1, 1), "SAME")
    msg = str(e.value)
    assert "float64[2,3,8,8]" in msg and "float64[4,2,3,3]" in msg
    assert "feature_group_count" in msg and "kernel shape" in msg


def test_other_errors_are_clear():
    x, w = np.zeros((1, 2, 4, 4)), np.zeros((2, 2, 3, 3))
    with pytest.raises(FuncgradValueError, match="padding must be"):
        lax.conv(x, w, (1, 1), "FULL")
    with pytest.raises(FuncgradValueError, match="window_strides has 1 entries"):
        lax.conv(x, w, (1,), "SAME")
    with pytest.raises(FuncgradValueError, match="does not fit"):
        lax.conv(x, np.zeros((2, 2, 5, 5)), (1, 1), "VALID")
    with pytest.raises(FuncgradValueError, match="batch_group_count"):
        lax.conv_general_dilated(x, w, (1, 1), "SAME", batch_group_count=2)
    with pytest.raises(FuncgradValueError, match="same number of dimensions"):
        lax.conv(x, np.zeros((2, 2, 3)), (1, 1), "SAME")
    with pytest.raises(FuncgradTypeError, match="lax.max, funcgrad.lax.min or funcgrad.lax.add"):
        lax.reduce_window(x, 1.0, fnp.multiply, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    with pytest.raises(FuncgradValueError, match="spatial dimensions"):
        lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NCHW", "OIHD", "NCHW"))


def test_padtype_to_pads():
    assert lax.padtype_to_pads((5, 6), (3, 3), (2, 2), "SAME") == ((1, 1), (0, 1))
    assert lax.padtype_to_pads((4,), (2,), (1,), "SAME") == ((0, 1),)
    assert lax.padtype_to_pads((4,), (2,), (1,), "SAME_LOWER") == ((1, 0),)
    assert lax.padtype_to_pads((4,), (2,), (1,), "VALID") == ((0, 0),)


# ---- vmap ----------------------------------------------------------------------------------
@pytest.mark.parametrize("in_axes", [(0, None), (None, 0), (1, 0)])
def test_vmap_of_conv_and_its_gradient_matches_a_loop(in_axes):
    vmap = funcgrad.vmap
    x, w = rand(3, 2, 4, 6, 5), rand(3, 6, 2, 3, 2, seed=1)
    if in_axes[0] is None:
        x = x[0]
    elif in_axes[0] == 1:
        x = x.swapaxes(0, 1)
    if in_axes[1] is None:
        w = w[0]

    def f(x, w):
        y = lax.conv_general_dilated(x, w, (2, 1), "SAME", rhs_dilation=(1, 2),
                                     feature_group_count=2)
        return fnp.sum(lax.max_pool(y, (2, 2), (1, 1)) * lax.avg_pool(y, (2, 2), (1, 1)))

    def pick(a, ax, i):
        return a if ax is None else np.take(a, i, axis=ax)

    g = funcgrad.grad(f, argnums=(0, 1))
    got = vmap(g, in_axes=in_axes)(x, w)
    for i in range(3):
        ref = g(pick(x, in_axes[0], i), pick(w, in_axes[1], i))
        for a, r in zip(got, ref):
            close(a[i], r)


# ---- threads ---------------------------------------------------------------------------
def test_batch_split_over_threads_gives_the_serial_results():
    x, w = rand(16, 8, 16, 16), rand(12, 4, 3, 3, seed=1)

    def f(x, w):
        y = lax.conv_general_dilated(x, w, (1, 1), "SAME", feature_group_count=2)
        y = lax.conv_general_dilated(y, rand(40, 12, 3, 3, seed=2), (2, 2), "SAME")
        return fnp.sum(lax.max_pool(y, (3, 3), (2, 2), "SAME") *
                       lax.avg_pool(y, (3, 3), (2, 2), "SAME"))

    with funcgrad.config.override(num_threads=1):
        ref = funcgrad.value_and_grad(f, argnums=(0, 1))(x, w)
    with funcgrad.config.override(num_threads=3):
        got = funcgrad.value_and_grad(f, argnums=(0, 1))(x, w)
    for a, b in zip(funcgrad.tree_util.tree_leaves(got), funcgrad.tree_util.tree_leaves(ref)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_jit_of_value_and_grad_matches_eager():
    jit = funcgrad.jit
    x, w = rand(4, 2, 9, 9, dtype=np.float32), rand(3, 2, 3, 3, seed=1, dtype=np.float32)

    def f(x, w):
        y = lax.conv_general_dilated(x, w, (1, 1), "SAME")
        return (fnp.sum(lax.max_pool(y, (2, 2)) ** 2) +
                fnp.sum(lax.avg_pool(y, (3, 3), (2, 2), "SAME")))

    vg = funcgrad.value_and_grad(f, argnums=(0, 1))
    ref, got = vg(x, w), jit(vg)(x, w)
    for a, b in zip(funcgrad.tree_util.tree_leaves(got), funcgrad.tree_util.tree_leaves(ref)):
        assert a.dtype == b.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-6)
