"""funcgrad_nn.functional: values and gradients against PyTorch (when installed), finite
differences (always), dtypes, numerical stability, keys and errors."""
import math

import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp
import funcgrad.random as fr
import funcgrad_nn.functional as F
from funcgrad.errors import FuncgradTypeError, FuncgradValueError
from funcgrad.test_util import check_grads

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # pragma: no cover - torch is optional
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

TOL = {np.float64: 1e-10, np.float32: 1e-5}


def _rng(seed=0):
    return np.random.default_rng(seed)


def _t(a, grad=False):
    if isinstance(a, np.ndarray):
        return torch.tensor(a, requires_grad=grad and a.dtype.kind == "f")
    return a


def compare(ours, theirs, args, diff=(0,), dtype=np.float64, tol=None, seed=1):
    """Compare ``ours(*args)`` with ``theirs(*torch args)``: values and the gradients of
    ``sum(out * ct)`` with respect to the arguments listed in ``diff``."""
    tol = tol or TOL[dtype]
    y = ours(*args)
    targs = [_t(a, i in diff) for i, a in enumerate(args)]
    ty = theirs(*targs)
    np.testing.assert_allclose(np.asarray(y), ty.detach().numpy(), rtol=tol, atol=tol)
    assert np.asarray(y).dtype == ty.detach().numpy().dtype
    ct = _rng(seed).normal(size=np.shape(y)).astype(np.asarray(y).dtype)
    (ty * torch.tensor(ct)).sum().backward()

    def loss(*dargs):
        full = list(args)
        for i, a in zip(diff, dargs):
            full[i] = a
        return fnp.sum(ours(*full) * ct)

    grads = funcgrad.grad(loss, argnums=tuple(range(len(diff))))(*[args[i] for i in diff])
    for i, g in zip(diff, grads):
        np.testing.assert_allclose(g, targs[i].grad.numpy(), rtol=tol, atol=tol,
                                   err_msg=f"gradient of argument {i}")


# --------------------------------------------------------------------------------------
# activations


ACTS = [("relu", {}), ("relu6", {}), ("leaky_relu", {"negative_slope": 0.2}),
        ("elu", {"alpha": 0.7}), ("gelu", {}), ("gelu", {"approximate": "tanh"}),
        ("silu", {}), ("sigmoid", {}), ("tanh", {}), ("softplus", {"beta": 2.0}),
        ("logsigmoid", {})]


@needs_torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,kw", ACTS)
def test_activations_match_torch(name, kw, dtype):
    x = (_rng().normal(size=(4, 7)) * 4).astype(dtype)
    compare(lambda a: getattr(F, name)(a, **kw), lambda a: getattr(TF, name)(a, **kw), (x,),
            dtype=dtype)


@needs_torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_log_softmax_match_torch(dtype):
    x = (_rng().normal(size=(3, 5, 4)) * 5).astype(dtype)
    compare(lambda a: F.softmax(a, dim=1), lambda a: TF.softmax(a, dim=1), (x,), dtype=dtype)
    compare(lambda a: F.log_softmax(a, axis=-1), lambda a: TF.log_softmax(a, dim=-1), (x,),
            dtype=dtype)


def test_erf_matches_math_erf_and_its_derivative():
    xs = np.linspace(-7, 7, 2001)
    np.testing.assert_allclose(F._erf_own(xs), [math.erf(v) for v in xs], rtol=0, atol=2e-15)
    g = funcgrad.grad(lambda z: fnp.sum(F._erf_own(z)))(xs)
    np.testing.assert_allclose(g, 2 / math.sqrt(math.pi) * np.exp(-xs ** 2), atol=1e-14)
    check_grads(F._erf_own, (np.array([-3.0, -1.2, 0.3, 1.9, 2.5]),), order=2)
    assert F.erf(np.float32(0.5)).dtype == np.float32


def test_relu_gradient_at_zero_is_zero_like_torch():
    assert funcgrad.grad(lambda x: F.relu(x))(0.0) == 0.0


def test_activations_have_finite_gradients_at_extremes():
    x = np.array([-1e4, -800.0, -50.0, 0.0, 50.0, 800.0, 1e4])
    for f in (F.sigmoid, F.silu, F.softplus, F.logsigmoid, F.elu, F.gelu, F.tanh):
        y = f(x)
        g = funcgrad.grad(lambda z: fnp.sum(f(z)))(x)
        assert np.all(np.isfinite(y)) and np.all(np.isfinite(g)), f.__name__
    np.testing.assert_allclose(F.sigmoid(np.array([-800.0, 800.0])), [0.0, 1.0])
    np.testing.assert_allclose(F.logsigmoid(np.array([-800.0])), [-800.0])


def test_softmax_is_stable_and_accepts_dim():
    x = np.array([[1000.0, 1000.0, -np.inf]])
    np.testing.assert_allclose(F.softmax(x, dim=1), [[0.5, 0.5, 0.0]])
    g = funcgrad.grad(lambda z: F.log_softmax(z)[0, 0])(np.array([[1e4, 0.0, -1e4]]))
    assert np.all(np.isfinite(g))
    with pytest.raises(FuncgradTypeError, match="both axis"):
        F.softmax(x, axis=0, dim=1)


def test_activation_check_grads_float64():
    x = np.array([[-2.1, -0.4, 0.3, 1.7], [0.9, -1.3, 2.2, -0.05]])
    for f in (F.gelu, F.silu, F.sigmoid, F.softplus, F.logsigmoid, F.elu,
              lambda a: F.gelu(a, approximate="tanh"), lambda a: F.softmax(a, axis=0),
              lambda a: F.log_softmax(a, axis=1)):
        check_grads(f, (x,), order=2)


# --------------------------------------------------------------------------------------
# linear, convolution, pooling


@needs_torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_linear_matches_torch(dtype):
    r = _rng()
    x, w, b = (r.normal(size=s).astype(dtype) for s in [(2, 3, 5), (4, 5), (4,)])
    compare(F.linear, TF.linear, (x, w, b), diff=(0, 1, 2), dtype=dtype)
    x2, wb = r.normal(size=(2, 3, 2)).astype(dtype), r.normal(size=(4, 5, 2)).astype(dtype)
    compare(F.bilinear, TF.bilinear, (x, x2, wb, b), diff=(0, 1, 2, 3), dtype=dtype)


CONV2D = [dict(), dict(stride=2, padding=1), dict(stride=(1, 2), padding=(2, 0), dilation=2),
          dict(padding="same", dilation=(2, 1)), dict(padding="valid", groups=2),
          dict(groups=4, padding=1)]


@needs_torch
@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("kw", CONV2D)
def test_conv2d_matches_torch(kw):
    r = _rng()
    g = kw.get("groups", 1)
    x = r.normal(size=(2, 4, 7, 6))
    w = r.normal(size=(8, 4 // g, 3, 2))
    b = r.normal(size=(8,))
    compare(lambda *a: F.conv2d(*a, **kw), lambda *a: TF.conv2d(*a, **kw), (x, w, b),
            diff=(0, 1, 2))


@needs_torch
@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_conv2d_padding_modes_match_torch_layer(mode):
    r = _rng()
    conv = torch.nn.Conv2d(4, 6, 3, padding=(1, 2), groups=2, padding_mode=mode).double()
    x = r.normal(size=(2, 4, 5, 6))
    w, b = conv.weight.detach().numpy(), conv.bias.detach().numpy()
    y = F.conv2d(x, w, b, padding=(1, 2), groups=2, padding_mode=mode)
    np.testing.assert_allclose(y, conv(torch.tensor(x)).detach().numpy(), atol=1e-12)


@needs_torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv1d_and_unbatched_match_torch(dtype):
    r = _rng()
    x, w = r.normal(size=(3, 9)).astype(dtype), r.normal(size=(5, 3, 3)).astype(dtype)
    kw = dict(stride=2, padding=2, dilation=2)
    compare(lambda *a: F.conv1d(*a, **kw), lambda *a: TF.conv1d(*a, **kw), (x, w),
            diff=(0, 1), dtype=dtype)


@needs_torch
@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1, output_padding=1),
                                dict(stride=(2, 3), padding=(3, 0), dilation=2),
                                dict(groups=2, stride=2), dict(padding=2)])
def test_conv_transpose2d_matches_torch(kw):
    r = _rng()
    x, w, b = r.normal(size=(2, 4, 4, 5)), r.normal(size=(4, 3, 3, 2)), r.normal(size=(3 * kw.get("groups", 1),))
    compare(lambda *a: F.conv_transpose2d(*a, **kw), lambda *a: TF.conv_transpose2d(*a, **kw),
            (x, w, b), diff=(0, 1, 2))


@needs_torch
@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                dict(kernel_size=3, stride=2, ceil_mode=True),
                                dict(kernel_size=(2, 3), dilation=2, stride=1)])
def test_max_pool2d_matches_torch(kw):
    x = _rng().normal(size=(2, 3, 7, 8))
    compare(lambda a: F.max_pool2d(a, **kw), lambda a: TF.max_pool2d(a, **kw), (x,))
    _, idx = F.max_pool2d(x, return_indices=True, **kw)
    _, tidx = TF.max_pool2d(torch.tensor(x), return_indices=True, **kw)
    np.testing.assert_array_equal(idx, tidx.numpy())


@needs_torch
@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                dict(kernel_size=3, stride=2, padding=1,
                                     count_include_pad=False),
                                dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
                                dict(kernel_size=(3, 2), divisor_override=5)])
def test_avg_pool2d_matches_torch(kw):
    x = _rng().normal(size=(2, 3, 7, 8))
    compare(lambda a: F.avg_pool2d(a, **kw), lambda a: TF.avg_pool2d(a, **kw), (x,))


@needs_torch
def test_pool1d_and_adaptive_match_torch():
    x = _rng().normal(size=(2, 3, 9))
    compare(lambda a: F.max_pool1d(a, 3, 2, 1), lambda a: TF.max_pool1d(a, 3, 2, 1), (x,))
    compare(lambda a: F.avg_pool1d(a, 2), lambda a: TF.avg_pool1d(a, 2), (x,))
    compare(lambda a: F.adaptive_avg_pool1d(a, 4), lambda a: TF.adaptive_avg_pool1d(a, 4), (x,))
    x2 = _rng().normal(size=(2, 3, 7, 5))
    for o in [3, (2, 4), (5, None), 1]:
        compare(lambda a: F.adaptive_avg_pool2d(a, o), lambda a: TF.adaptive_avg_pool2d(a, o),
                (x2,))


def test_conv_and_pool_check_grads_float64():
    r = _rng()
    x, w, b = r.normal(size=(1, 2, 4, 4)), r.normal(size=(2, 1, 2, 2)), r.normal(size=(2,))
    check_grads(lambda *a: F.conv2d(*a, stride=2, padding=1, groups=2), (x, w, b), order=2)
    check_grads(lambda *a: F.conv_transpose2d(*a, stride=2, padding=1), (x, w, b[:1]), order=1)
    check_grads(lambda a: F.max_pool2d(a, 2, 1, padding=1), (x,), order=1)
    check_grads(lambda a: F.avg_pool2d(a, 3, 2, 1, count_include_pad=False), (x,), order=2)
    check_grads(lambda a: F.adaptive_avg_pool2d(a, 3), (x,), order=1)


def test_conv_pool_preserve_float32():
    x = np.ones((1, 2, 5, 5), np.float32)
    w = np.ones((3, 2, 3, 3), np.float32)
    assert F.conv2d(x, w, padding=1).dtype == np.float32
    assert F.conv_transpose2d(x, w.transpose(1, 0, 2, 3), stride=2).dtype == np.float32
    assert F.max_pool2d(x, 2).dtype == np.float32
    assert F.avg_pool2d(x, 2, padding=1).dtype == np.float32
    assert F.adaptive_avg_pool2d(x, 3).dtype == np.float32
    assert F.interpolate(x, scale_factor=2, mode="bilinear").dtype == np.float32
    g = funcgrad.grad(lambda a: fnp.sum(F.conv2d(a, w)))(x)
    assert g.dtype == np.float32


def test_conv_errors_name_the_shapes():
    x = np.ones((1, 3, 5, 5))
    with pytest.raises(FuncgradValueError, match=r"conv2d.*\(1, 3, 5, 5\).*3 channels.*\(4, 2, 3, 3\)"):
        F.conv2d(x, np.ones((4, 2, 3, 3)))
    with pytest.raises(FuncgradValueError, match="4-D .*or 3-D.*got shape \\(5, 5\\)"):
        F.conv2d(np.ones((5, 5)), np.ones((4, 3, 3, 3)))
    with pytest.raises(FuncgradValueError, match="smaller than the dilated kernel"):
        F.conv2d(x, np.ones((2, 3, 7, 7)))
    with pytest.raises(FuncgradValueError, match="'same' needs stride 1"):
        F.conv2d(x, np.ones((2, 3, 3, 3)), stride=2, padding="same")
    with pytest.raises(FuncgradValueError, match="linear: input of shape \\(2, 3\\)"):
        F.linear(np.ones((2, 3)), np.ones((4, 5)))
    with pytest.raises(FuncgradValueError, match="max_pool2d: padding"):
        F.max_pool2d(x, 2, padding=2)


# --------------------------------------------------------------------------------------
# padding and resampling


@needs_torch
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_matches_torch(mode):
    x = _rng().normal(size=(2, 3, 5, 4))
    compare(lambda a: F.pad(a, (2, 1, 1, 3), mode=mode), lambda a: TF.pad(a, (2, 1, 1, 3), mode=mode),
            (x,))


@needs_torch
def test_pad_constant_value_and_cropping_match_torch():
    x = _rng().normal(size=(3, 5))
    compare(lambda a: F.pad(a, (-1, 2, 1, 0), value=2.5),
            lambda a: TF.pad(a, (-1, 2, 1, 0), value=2.5), (x,))


@needs_torch
@pytest.mark.parametrize("kw", [dict(size=(9, 13), mode="nearest"),
                                dict(scale_factor=1.7, mode="nearest"),
                                dict(size=(9, 13), mode="nearest-exact"),
                                dict(scale_factor=2.3, mode="bilinear"),
                                dict(size=(3, 11), mode="bilinear", align_corners=True),
                                dict(scale_factor=0.6, mode="bilinear",
                                     recompute_scale_factor=True),
                                dict(scale_factor=1.5, mode="bicubic"),
                                dict(size=(9, 3), mode="bicubic", align_corners=True),
                                dict(size=(3, 2), mode="area")])
def test_interpolate_matches_torch(kw):
    x = _rng().normal(size=(2, 3, 5, 6))
    compare(lambda a: F.interpolate(a, **kw), lambda a: TF.interpolate(a, **kw), (x,))


@needs_torch
def test_interpolate_linear_1d_matches_torch():
    x = _rng().normal(size=(2, 3, 7)).astype(np.float32)
    compare(lambda a: F.interpolate(a, scale_factor=1.3, mode="linear"),
            lambda a: TF.interpolate(a, scale_factor=1.3, mode="linear"), (x,),
            dtype=np.float32)


def test_pad_and_interpolate_errors():
    with pytest.raises(FuncgradValueError, match="reflect padding"):
        F.pad(np.ones((2, 3)), (3, 0), mode="reflect")
    with pytest.raises(FuncgradValueError, match="mode"):
        F.pad(np.ones((2, 3)), (1, 1), mode="wrap")
    with pytest.raises(FuncgradValueError, match="bilinear.*4-D"):
        F.interpolate(np.ones((1, 1, 4)), size=8, mode="bilinear")
    with pytest.raises(FuncgradValueError, match="exactly one"):
        F.interpolate(np.ones((1, 1, 4)), mode="nearest")


# --------------------------------------------------------------------------------------
# normalization, dropout, embedding, one_hot


@needs_torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batch_norm_matches_torch_in_both_modes(dtype):
    r = _rng()
    x = r.normal(size=(4, 3, 5)).astype(dtype)
    w, b = r.normal(size=3).astype(dtype), r.normal(size=3).astype(dtype)
    rm, rv = r.normal(size=3).astype(dtype), r.uniform(0.5, 2, size=3).astype(dtype)
    for training in (True, False):
        trm, trv = torch.tensor(rm), torch.tensor(rv)
        compare(lambda a, ww, bb: F.batch_norm(a, rm, rv, ww, bb, training, 0.3)[0],
                lambda a, ww, bb: TF.batch_norm(a, trm, trv, ww, bb, training, 0.3),
                (x, w, b), diff=(0, 1, 2), dtype=dtype)
        _, m, v = F.batch_norm(x, rm, rv, w, b, training, 0.3)
        tol = TOL[dtype]
        np.testing.assert_allclose(m, trm.numpy(), rtol=tol, atol=tol)
        np.testing.assert_allclose(v, trv.numpy(), rtol=tol, atol=tol)
        assert m.dtype == dtype


@needs_torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_layer_norm_and_group_norm_match_torch(dtype):
    r = _rng()
    x = r.normal(size=(2, 4, 3, 5)).astype(dtype)
    w, b = r.normal(size=(3, 5)).astype(dtype), r.normal(size=(3, 5)).astype(dtype)
    compare(lambda *a: F.layer_norm(a[0], (3, 5), a[1], a[2]),
            lambda *a: TF.layer_norm(a[0], (3, 5), a[1], a[2]), (x, w, b), diff=(0, 1, 2),
            dtype=dtype)
    gw, gb = r.normal(size=4).astype(dtype), r.normal(size=4).astype(dtype)
    compare(lambda *a: F.group_norm(a[0], 2, a[1], a[2]),
            lambda *a: TF.group_norm(a[0], 2, a[1], a[2]), (x, gw, gb), diff=(0, 1, 2),
            dtype=dtype)


def test_norms_check_grads_float64():
    r = _rng()
    x = r.normal(size=(3, 4, 2))
    check_grads(lambda a: F.layer_norm(a, (4, 2)), (x,), order=2)
    check_grads(lambda a, w: F.group_norm(a, 2, w), (x, r.normal(size=4)), order=1)
    check_grads(lambda a: F.batch_norm(a, None, None, training=True)[0], (x,), order=1)


def test_batch_norm_running_stats_have_no_gradient_and_need_batch():
    x = _rng().normal(size=(4, 2))
    g = funcgrad.grad(lambda a: fnp.sum(F.batch_norm(a, np.zeros(2), np.ones(2),
                                                     training=True)[1]))(x)
    np.testing.assert_array_equal(g, 0.0)
    with pytest.raises(FuncgradValueError, match="more than 1 value per channel"):
        F.batch_norm(np.ones((1, 2)), np.zeros(2), np.ones(2), training=True)
    with pytest.raises(FuncgradValueError, match="running_mean of shape \\(3,\\)"):
        F.batch_norm(np.ones((4, 2)), np.zeros(3), np.ones(2))


def test_dropout_keys_scaling_and_modes():
    x = np.ones((200, 50), np.float32)
    y1 = F.dropout(x, 0.3, key=fr.key(0))
    y2 = F.dropout(x, 0.3, key=fr.key(0))
    y3 = F.dropout(x, 0.3, key=fr.key(1))
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(y1, y3)
    assert y1.dtype == np.float32
    assert set(np.unique(y1)) == {0.0, np.float32(1 / 0.7)}
    assert abs((y1 == 0).mean() - 0.3) < 0.02
    assert F.dropout(x, 0.3, training=False) is x
    assert F.dropout(x, 0.3, train=False) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0, key=fr.key(0)), 0.0)
    with pytest.raises(FuncgradValueError, match="needs a random key"):
        F.dropout(x, 0.3)
    with pytest.raises(FuncgradValueError, match="p must be in"):
        F.dropout(x, 1.5, key=fr.key(0))
    # gradient flows through the kept entries only, with the same mask as the value
    g = funcgrad.grad(lambda a: fnp.sum(F.dropout(a, 0.3, key=fr.key(0))))(x)
    np.testing.assert_allclose(g, y1)


@needs_torch
def test_embedding_matches_torch_with_padding_idx_and_max_norm():
    r = _rng()
    w = r.normal(size=(10, 4))
    idx = np.array([[1, 2, 2], [0, 9, 2]])
    for kw in [dict(), dict(padding_idx=2), dict(max_norm=1.0)]:
        tw = torch.tensor(w.copy(), requires_grad=True)
        ty = TF.embedding(torch.tensor(idx), tw, **kw)
        ct = r.normal(size=ty.shape)
        (ty * torch.tensor(ct)).sum().backward()
        y = F.embedding(idx, w, **kw)
        np.testing.assert_allclose(y, ty.detach().numpy(), atol=1e-7 if "max_norm" in kw else 1e-12)
        if "max_norm" in kw:   # PyTorch differentiates w.r.t. the rows renormalized in place
            continue
        g = funcgrad.grad(lambda ww: fnp.sum(F.embedding(idx, ww, **kw) * ct))(w)
        np.testing.assert_allclose(g, tw.grad.numpy(), atol=1e-12)
        if "padding_idx" in kw:
            np.testing.assert_array_equal(g[2], 0.0)
    with pytest.raises(FuncgradValueError, match="indices must be in \\[0, 10\\)"):
        F.embedding(np.array([10]), w)
    with pytest.raises(FuncgradTypeError, match="integers"):
        F.embedding(np.array([1.0]), w)


def test_one_hot():
    y = F.one_hot(np.array([0, 2, 1]))
    np.testing.assert_array_equal(y, np.eye(3, dtype=np.int64)[[0, 2, 1]])
    assert y.dtype == np.int64
    assert F.one_hot(np.array([[1]]), 4, dtype=np.float32).shape == (1, 1, 4)
    with pytest.raises(FuncgradValueError, match="\\[0, 3\\)"):
        F.one_hot(np.array([3]), 3)


# --------------------------------------------------------------------------------------
# losses


@needs_torch
@pytest.mark.parametrize("kw", [dict(), dict(weight=True), dict(ignore_index=3),
                                dict(label_smoothing=0.2),
                                dict(weight=True, label_smoothing=0.3, ignore_index=3),
                                dict(weight=True, reduction="sum", label_smoothing=0.1),
                                dict(weight=True, reduction="none", ignore_index=0)])
def test_cross_entropy_and_nll_with_class_indices_match_torch(kw):
    r = _rng()
    x = r.normal(size=(6, 5, 3)) * 3
    t = r.integers(0, 5, size=(6, 3))
    t[0, 1] = 3
    kw = dict(kw)
    if kw.pop("weight", None):
        kw["weight"] = r.uniform(0.5, 2, size=5)
    tkw = {k: _t(v) for k, v in kw.items()}
    compare(lambda a: F.cross_entropy(a, t, **kw), lambda a: TF.cross_entropy(a, _t(t), **tkw),
            (x,))
    if "label_smoothing" not in kw:
        lp = np.asarray(F.log_softmax(x, axis=1))
        compare(lambda a: F.nll_loss(a, t, **kw), lambda a: TF.nll_loss(a, _t(t), **tkw), (lp,))


@needs_torch
@pytest.mark.parametrize("kw", [dict(), dict(weight=True), dict(label_smoothing=0.2, weight=True),
                                dict(reduction="none")])
def test_cross_entropy_with_probabilities_matches_torch(kw):
    r = _rng()
    x = r.normal(size=(4, 5))
    p = r.dirichlet(np.ones(5), size=4)
    kw = dict(kw)
    if kw.pop("weight", None):
        kw["weight"] = r.uniform(0.5, 2, size=5)
    tkw = {k: _t(v) for k, v in kw.items()}
    compare(lambda a: F.cross_entropy(a, p, **kw), lambda a: TF.cross_entropy(a, _t(p), **tkw),
            (x,))


@needs_torch
def test_cross_entropy_float32_unbatched_and_extreme_logits_match_torch():
    x = _rng().normal(size=(3, 7)).astype(np.float32)
    compare(lambda a: F.cross_entropy(a, np.array([1, 0, 6])),
            lambda a: TF.cross_entropy(a, torch.tensor([1, 0, 6])), (x,), dtype=np.float32)
    compare(lambda a: F.cross_entropy(a, np.array(3)),
            lambda a: TF.cross_entropy(a, torch.tensor(3)), (x[0].astype(np.float64),))
    xe = np.array([[1e4, 0.0, -1e4], [-1e30, 1e30, 0.0]])
    compare(lambda a: F.cross_entropy(a, np.array([2, 0]), label_smoothing=0.1),
            lambda a: TF.cross_entropy(a, torch.tensor([2, 0]), label_smoothing=0.1), (xe,))


def test_cross_entropy_is_stable_without_torch():
    x = np.array([[1e4, 0.0, -np.inf], [-1e30, 1e30, 0.0]])
    t = np.array([1, 1])
    loss = F.cross_entropy(x, t, reduction="none")
    np.testing.assert_allclose(loss, [1e4, 0.0])
    g = funcgrad.grad(lambda a: F.cross_entropy(a, t))(x)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, [[0.5, -0.5, 0.0], [0.0, 0.0, 0.0]])
    x32 = np.array([[80.0, -80.0]], np.float32)
    assert F.cross_entropy(x32, np.array([1])).dtype == np.float32


def test_losses_check_grads_float64():
    r = _rng()
    x = r.normal(size=(3, 4))
    t = np.array([0, 3, 1])
    p = r.dirichlet(np.ones(4), size=3)
    w = r.uniform(0.5, 2, size=4)
    check_grads(lambda a: F.cross_entropy(a, t, weight=w, label_smoothing=0.1), (x,), order=2)
    check_grads(lambda a: F.cross_entropy(a, p), (x,), order=2)
    check_grads(lambda a: F.binary_cross_entropy_with_logits(a, p, pos_weight=w), (x,), order=2)
    check_grads(lambda a: F.binary_cross_entropy(F.sigmoid(a), p), (x,), order=1)
    check_grads(lambda a: F.kl_div(F.log_softmax(a), p, reduction="batchmean"), (x,), order=2)
    check_grads(lambda a: F.smooth_l1_loss(a, p, beta=0.5), (x,), order=1)
    check_grads(lambda a, b: F.cosine_similarity(a, b), (x, p), order=1)


@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_regression_and_binary_losses_match_torch(reduction):
    r = _rng()
    x, t = r.normal(size=(4, 6)) * 3, r.uniform(size=(4, 6))
    w, pw = r.uniform(size=(4, 6)), r.uniform(0.5, 3, size=6)
    cases = [(F.mse_loss, TF.mse_loss, {}), (F.l1_loss, TF.l1_loss, {}),
             (F.smooth_l1_loss, TF.smooth_l1_loss, {"beta": 0.7}),
             (F.huber_loss, TF.huber_loss, {"delta": 2.5}),
             (F.binary_cross_entropy_with_logits, TF.binary_cross_entropy_with_logits,
              {"weight": w, "pos_weight": pw})]
    for f, tf, kw in cases:
        tkw = {k: _t(v) for k, v in kw.items()}
        compare(lambda a: f(a, t, reduction=reduction, **kw),
                lambda a: tf(a, _t(t), reduction=reduction, **tkw), (x,))
    probs = 1 / (1 + np.exp(-x / 3))
    compare(lambda a: F.binary_cross_entropy(a, t, w, reduction=reduction),
            lambda a: TF.binary_cross_entropy(a, _t(t), _t(w), reduction=reduction), (probs,))


@needs_torch
@pytest.mark.parametrize("kw", [dict(reduction="batchmean"), dict(reduction="sum"),
                                dict(reduction="none"),
                                dict(log_target=True, reduction="batchmean")])
def test_kl_div_matches_torch(kw):
    r = _rng()
    lp = np.log(r.dirichlet(np.ones(6), size=4))
    q = r.dirichlet(np.ones(6), size=4)
    q[0, 2] = 0.0
    t = np.log(q + 1e-3) if kw.get("log_target") else q
    compare(lambda a: F.kl_div(a, t, **kw), lambda a: TF.kl_div(a, _t(t), **kw), (lp,))


@needs_torch
def test_cosine_similarity_matches_torch():
    r = _rng()
    a, b = r.normal(size=(4, 6, 2)), r.normal(size=(1, 6, 2))
    compare(F.cosine_similarity, TF.cosine_similarity, (a, b), diff=(0, 1))
    compare(lambda u, v: F.cosine_similarity(u, v, dim=-1),
            lambda u, v: TF.cosine_similarity(u, v, dim=-1), (a, a[::-1].copy()), diff=(0, 1))
    z = np.zeros((2, 3))
    g = funcgrad.grad(lambda u: fnp.sum(F.cosine_similarity(u, r.normal(size=(2, 3)))))(z)
    assert np.all(np.isfinite(g))


def test_loss_errors():
    x = np.zeros((3, 4))
    with pytest.raises(FuncgradValueError, match="class indices in \\[0, 4\\).*\\[7\\]"):
        F.cross_entropy(x, np.array([0, 7, 1]))
    with pytest.raises(FuncgradValueError, match="target of shape \\(2,\\)"):
        F.cross_entropy(x, np.array([0, 1]))
    with pytest.raises(FuncgradValueError, match="reduction"):
        F.mse_loss(x, x, reduction="avg")
    with pytest.raises(FuncgradValueError, match="weight of shape \\(3,\\)"):
        F.nll_loss(x, np.array([0, 1, 2]), weight=np.ones(3))
    with pytest.raises(FuncgradValueError, match="in \\[0, 1\\]"):
        F.binary_cross_entropy(np.array([1.5]), np.array([1.0]))


@needs_torch
def test_scaled_dot_product_attention_matches_torch():
    r = _rng()
    q, k, v = r.normal(size=(2, 3, 4, 8)), r.normal(size=(2, 3, 5, 8)), r.normal(size=(2, 3, 5, 6))
    mask = r.uniform(size=(4, 5)) > 0.3
    mask[:, 0] = True
    compare(lambda *a: F.scaled_dot_product_attention(*a, attn_mask=mask),
            lambda *a: TF.scaled_dot_product_attention(*a, attn_mask=torch.tensor(mask)),
            (q, k, v), diff=(0, 1, 2))
    compare(lambda *a: F.scaled_dot_product_attention(*a, is_causal=True),
            lambda *a: TF.scaled_dot_product_attention(*a, is_causal=True),
            (q, k[:, :, :4], v[:, :, :4]), diff=(0, 1, 2))
