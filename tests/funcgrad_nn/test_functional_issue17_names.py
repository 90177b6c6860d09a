"""PyTorch nn.functional names added for issue 17 (item 11): 3-D pooling, adaptive max
pooling, conv_transpose3d, unfold/fold, affine_grid/grid_sample, ctc_loss, rrelu --
values and gradients against PyTorch, float32 kept, errors naming the op."""
import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp
import funcgrad.random as fr
import funcgrad_nn.functional as F
from funcgrad.errors import FuncgradValueError
from funcgrad.test_util import check_grads

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _vs_torch(ours, theirs, *args, rtol=1e-10, atol=1e-12, grad_args=(0,), weight_seed=0):
    """Values of ``ours(*args)`` and ``theirs(*torch args)`` agree, and so do the gradients
    of ``sum(out * w)`` (w fixed random) with respect to ``args[i]`` for i in
    ``grad_args``."""
    got = ours(*args)
    targs = [torch.tensor(a, requires_grad=i in grad_args) if isinstance(a, np.ndarray)
             else a for i, a in enumerate(args)]
    want = theirs(*targs)
    np.testing.assert_allclose(np.asarray(got), want.detach().numpy(), rtol=rtol, atol=atol)
    w = np.random.default_rng(weight_seed).standard_normal(np.shape(got))
    (want * torch.tensor(w, dtype=want.dtype)).sum().backward()

    def loss(*d):
        full = list(args)
        for i, v in zip(grad_args, d):
            full[i] = v
        return fnp.sum(ours(*full) * w.astype(np.asarray(got).dtype))
    grads = funcgrad.grad(loss, argnums=tuple(range(len(grad_args))))(
        *[args[i] for i in grad_args])
    for i, g in zip(grad_args, grads):
        assert g.dtype == args[i].dtype and g.shape == args[i].shape
        np.testing.assert_allclose(g, targs[i].grad.numpy(), rtol=rtol * 100, atol=atol * 100)
    return got


RNG = np.random.default_rng(0)


# ---- 3-D pooling --------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=(2, 3, 2), stride=1),
                                dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
                                dict(kernel_size=2, dilation=2)])
def test_max_pool3d_as_torch(kw):
    x = RNG.standard_normal((2, 3, 5, 6, 5))
    _vs_torch(lambda v: F.max_pool3d(v, **kw), lambda v: TF.max_pool3d(v, **kw), x)
    y, idx = F.max_pool3d(x, return_indices=True, **kw)
    _, tidx = TF.max_pool3d(torch.tensor(x), return_indices=True, **kw)
    np.testing.assert_array_equal(idx, tidx.numpy())


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                dict(kernel_size=3, stride=2, padding=1,
                                     count_include_pad=False, ceil_mode=True),
                                dict(kernel_size=2, divisor_override=3)])
def test_avg_pool3d_as_torch(kw):
    x = RNG.standard_normal((2, 2, 5, 4, 6))
    _vs_torch(lambda v: F.avg_pool3d(v, **kw), lambda v: TF.avg_pool3d(v, **kw), x)


@pytest.mark.parametrize("out", [2, (3, None, 2), (1, 4, 5)])
def test_adaptive_avg_pool3d_as_torch(out):
    x = RNG.standard_normal((2, 3, 5, 4, 7))
    _vs_torch(lambda v: F.adaptive_avg_pool3d(v, out), lambda v: TF.adaptive_avg_pool3d(v, out),
              x)


@pytest.mark.parametrize("nd, shape, out", [(1, (2, 3, 7), 3), (1, (3, 5), 5),
                                            (2, (2, 3, 5, 7), (3, 4)), (2, (2, 3, 5, 7), 1),
                                            (2, (3, 4, 4), (None, 3)),
                                            (3, (1, 2, 5, 4, 7), (2, 3, 3))])
def test_adaptive_max_pool_as_torch(nd, shape, out):
    x = RNG.standard_normal(shape)
    f = getattr(F, f"adaptive_max_pool{nd}d")
    tf = getattr(TF, f"adaptive_max_pool{nd}d")
    _vs_torch(lambda v: f(v, out), lambda v: tf(v, out), x)
    _, idx = f(x, out, return_indices=True)
    _, tidx = tf(torch.tensor(x), out, return_indices=True)
    np.testing.assert_array_equal(idx, tidx.numpy())


def test_adaptive_max_pool_ties_nan_and_float32():
    x = np.zeros((1, 1, 4, 4), np.float32)
    x[0, 0, 1, 2] = np.nan
    y = F.adaptive_max_pool2d(x, 2)
    ty = TF.adaptive_max_pool2d(torch.tensor(x), 2)
    np.testing.assert_array_equal(y, ty.numpy())
    assert y.dtype == np.float32
    g = funcgrad.grad(lambda v: fnp.sum(F.adaptive_max_pool2d(v, 2)))(np.zeros((1, 1, 4, 4),
                                                                                np.float32))
    assert g.dtype == np.float32
    np.testing.assert_array_equal(g[0, 0], [[1, 0, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0],
                                            [0, 0, 0, 0]])   # the first of each tie
    assert F.adaptive_max_pool2d(np.zeros((0, 2, 4, 4)), 2).shape == (0, 2, 2, 2)
    with pytest.raises(FuncgradValueError, match="adaptive_max_pool2d"):
        F.adaptive_max_pool2d(np.zeros((1, 1, 4, 4)), (2, 2, 2))


def test_pool3d_grads_and_float32():
    x = RNG.standard_normal((1, 2, 4, 4, 4))
    for f in (lambda v: F.max_pool3d(v, 2), lambda v: F.avg_pool3d(v, 3, 1, 1),
              lambda v: F.adaptive_max_pool3d(v, 3), lambda v: F.adaptive_avg_pool3d(v, 3)):
        check_grads(f, (x,), order=2, modes=("rev",))
        assert f(x.astype(np.float32)).dtype == np.float32


# ---- conv_transpose3d ---------------------------------------------------------------------
@pytest.mark.parametrize("kw", [dict(), dict(stride=2), dict(stride=2, padding=1,
                                                             output_padding=1),
                                dict(groups=2, dilation=(1, 2, 1))])
def test_conv_transpose3d_as_torch(kw):
    x = RNG.standard_normal((2, 4, 3, 4, 3))
    w = RNG.standard_normal((4, 3 if kw.get("groups", 1) == 1 else 2, 2, 3, 2))
    b = RNG.standard_normal(w.shape[1] * kw.get("groups", 1))
    _vs_torch(lambda v, u, c: F.conv_transpose3d(v, u, c, **kw),
              lambda v, u, c: TF.conv_transpose3d(v, u, c, **kw), x, w, b,
              grad_args=(0, 1, 2))
    assert F.conv_transpose3d(x.astype(np.float32), w.astype(np.float32), **kw).dtype == \
        np.float32


# ---- unfold / fold ------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=(2, 3), stride=2),
                                dict(kernel_size=3, padding=1, dilation=2),
                                dict(kernel_size=(3, 2), padding=(1, 0), stride=(1, 2))])
def test_unfold_fold_as_torch(kw):
    x = RNG.standard_normal((2, 3, 7, 6))
    cols = _vs_torch(lambda v: F.unfold(v, **kw), lambda v: TF.unfold(v, **kw), x)
    c = RNG.standard_normal(cols.shape)
    _vs_torch(lambda v: F.fold(v, (7, 6), **kw), lambda v: TF.fold(v, (7, 6), **kw), c)
    # unbatched
    np.testing.assert_allclose(F.unfold(x[0], **kw), TF.unfold(torch.tensor(x[0]), **kw))
    np.testing.assert_allclose(F.fold(c[0], (7, 6), **kw),
                               TF.fold(torch.tensor(c[0]), (7, 6), **kw))
    assert F.fold(c.astype(np.float32), (7, 6), **kw).dtype == np.float32


def test_fold_unfold_errors_name_the_op():
    with pytest.raises(FuncgradValueError, match="fold.*multiple of"):
        F.fold(np.zeros((1, 5, 4)), (3, 3), 2)
    with pytest.raises(FuncgradValueError, match="fold.*blocks"):
        F.fold(np.zeros((1, 4, 5)), (3, 3), 2)
    with pytest.raises(FuncgradValueError, match="unfold.*smaller than the dilated kernel"):
        F.unfold(np.zeros((1, 1, 2, 2)), 3)
    with pytest.raises(FuncgradValueError, match="unfold: expected a 4-D"):
        F.unfold(np.zeros((2, 2)), 1)


# ---- affine_grid / grid_sample ------------------------------------------------------------
@pytest.mark.parametrize("align", [False, True])
@pytest.mark.parametrize("size", [(2, 3, 4, 5), (2, 1, 3, 4, 5), (1, 1, 1, 3)])
def test_affine_grid_as_torch(size, align):
    nd = len(size) - 2
    theta = RNG.standard_normal((size[0], nd, nd + 1))
    _vs_torch(lambda t: F.affine_grid(t, size, align_corners=align),
              lambda t: TF.affine_grid(t, size, align_corners=align), theta)
    assert F.affine_grid(theta.astype(np.float32), size).dtype == np.float32


@pytest.mark.parametrize("align", [False, True])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_grid_sample_2d_as_torch(mode, padding_mode, align):
    x = RNG.standard_normal((2, 3, 5, 6))
    # locations inside, outside (up to 2.6x the range) and off the pixel grid
    g = RNG.uniform(-2.6, 2.6, (2, 4, 7, 2))
    if mode == "nearest":       # away from rounding ties
        g = g + 1e-3
    kw = dict(mode=mode, padding_mode=padding_mode, align_corners=align)
    _vs_torch(lambda v, u: F.grid_sample(v, u, **kw), lambda v, u: TF.grid_sample(v, u, **kw),
              x, g, grad_args=(0, 1) if mode == "bilinear" else (0,))


@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
def test_grid_sample_3d_as_torch(padding_mode):
    x = RNG.standard_normal((2, 2, 4, 5, 3))
    g = RNG.uniform(-1.4, 1.4, (2, 3, 2, 4, 3))
    for align in (False, True):
        kw = dict(mode="bilinear", padding_mode=padding_mode, align_corners=align)
        _vs_torch(lambda v, u: F.grid_sample(v, u, **kw),
                  lambda v, u: TF.grid_sample(v, u, **kw), x, g, grad_args=(0, 1))


def test_grid_sample_identity_float32_and_errors():
    x = RNG.standard_normal((1, 2, 4, 5)).astype(np.float32)
    theta = np.array([[[1.0, 0, 0], [0, 1, 0]]], np.float32)
    y = F.grid_sample(x, F.affine_grid(theta, x.shape))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, x, rtol=1e-6, atol=1e-6)
    check_grads(lambda v, g: F.grid_sample(v, g, padding_mode="border"),
                (RNG.standard_normal((1, 1, 3, 4)), RNG.uniform(-0.9, 0.9, (1, 2, 2, 2))),
                order=1)
    with pytest.raises(FuncgradValueError, match="grid_sample: mode.*bicubic"):
        F.grid_sample(x, np.zeros((1, 1, 1, 2), np.float32), mode="bicubic")
    with pytest.raises(FuncgradValueError, match="grid_sample: for input of shape"):
        F.grid_sample(x, np.zeros((1, 1, 1, 3), np.float32))
    with pytest.raises(FuncgradValueError, match="affine_grid: for size"):
        F.affine_grid(np.zeros((1, 3, 4)), (1, 1, 2, 2))


# ---- ctc_loss -----------------------------------------------------------------------------
def _ctc_case(seed, T=6, N=3, C=5, S=3):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((T, N, C))
    targets = rng.integers(1, C, (N, S))
    targets[0, 1] = targets[0, 0]           # a repeated label (needs a blank between)
    in_len = np.array([T, T - 1, T - 2])[:N]
    tg_len = np.array([S, 2, 1])[:N]
    return logits, targets, in_len, tg_len


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_ctc_loss_as_torch(reduction):
    logits, targets, in_len, tg_len = _ctc_case(0)
    kw = dict(reduction=reduction)
    ours = lambda z: F.ctc_loss(F.log_softmax(z, axis=2), targets, in_len, tg_len, **kw)  # noqa
    theirs = lambda z: TF.ctc_loss(TF.log_softmax(z, dim=2), torch.tensor(targets),    # noqa
                                   torch.tensor(in_len), torch.tensor(tg_len), **kw)
    _vs_torch(ours, theirs, logits, rtol=1e-9)


def test_ctc_loss_concatenated_targets_blank_unbatched_and_float32():
    logits, targets, in_len, tg_len = _ctc_case(1)
    flat = np.concatenate([targets[i, :tg_len[i]] for i in range(3)])
    lp = np.asarray(F.log_softmax(logits, axis=2))
    np.testing.assert_allclose(
        F.ctc_loss(lp, flat, in_len, tg_len),
        TF.ctc_loss(torch.tensor(lp), torch.tensor(flat), torch.tensor(in_len),
                    torch.tensor(tg_len)).item(), rtol=1e-10)
    # blank = C - 1: shift the labels down
    np.testing.assert_allclose(
        F.ctc_loss(lp, targets - 1, in_len, tg_len, blank=4, reduction="sum"),
        TF.ctc_loss(torch.tensor(lp), torch.tensor(targets - 1), torch.tensor(in_len),
                    torch.tensor(tg_len), blank=4, reduction="sum").item(), rtol=1e-10)
    np.testing.assert_allclose(
        F.ctc_loss(lp[:, 0], targets[0], in_len[0], tg_len[0], reduction="none"),
        TF.ctc_loss(torch.tensor(lp[:, 0]), torch.tensor(targets[0]), torch.tensor(in_len[0]),
                    torch.tensor(tg_len[0]), reduction="none").item(), rtol=1e-10)
    l32 = F.ctc_loss(lp.astype(np.float32), targets, in_len, tg_len)
    assert l32.dtype == np.float32
    g = funcgrad.grad(lambda v: F.ctc_loss(v, targets, in_len, tg_len))(lp.astype(np.float32))
    assert g.dtype == np.float32 and np.all(np.isfinite(g))


def test_ctc_loss_impossible_alignment_and_zero_infinity():
    # 2 frames cannot emit the target [1, 1] (it needs a blank between: 3 frames)
    lp = np.log(np.full((2, 1, 3), 1 / 3))
    tg = np.array([[1, 1]])
    kw = dict(reduction="none")
    assert np.isinf(F.ctc_loss(lp, tg, [2], [2], **kw)[0])
    assert TF.ctc_loss(torch.tensor(lp), torch.tensor(tg), torch.tensor([2]), torch.tensor([2]),
                       **kw).isinf().all()
    z = F.ctc_loss(lp, tg, [2], [2], zero_infinity=True, **kw)
    assert z[0] == 0
    g = funcgrad.grad(lambda v: fnp.sum(F.ctc_loss(v, tg, [2], [2], zero_infinity=True)))(lp)
    np.testing.assert_array_equal(g, 0.0)
    # an empty target: the all-blank path
    lp2 = np.asarray(F.log_softmax(RNG.standard_normal((4, 2, 3)), axis=2))
    np.testing.assert_allclose(
        F.ctc_loss(lp2, np.zeros((2, 1), int), [4, 3], [0, 0], reduction="none"),
        TF.ctc_loss(torch.tensor(lp2), torch.zeros((2, 1), dtype=torch.long),
                    torch.tensor([4, 3]), torch.tensor([0, 0]), reduction="none").numpy(),
        rtol=1e-10)
    check_grads(lambda v: F.ctc_loss(v, np.array([[1, 2]]), [4], [2]),
                (lp2[:, :1],), order=2, modes=("rev",))
    with pytest.raises(FuncgradValueError, match="ctc_loss.*input_lengths"):
        F.ctc_loss(lp2, np.zeros((2, 1), int), [5, 3], [0, 0])


# ---- rrelu -------------------------------------------------------------------------------
def test_rrelu_eval_as_torch_and_training_draws_slopes():
    x = np.array([-3.0, -0.5, 0.0, 2.0, -np.inf, np.nan])
    _vs_torch(lambda v: F.rrelu(v, 0.1, 0.3), lambda v: TF.rrelu(v, 0.1, 0.3), x[:4])
    np.testing.assert_array_equal(F.rrelu(x), TF.rrelu(torch.tensor(x)).numpy())
    y = F.rrelu(-np.ones(1000), 0.1, 0.3, training=True, key=fr.key(0))
    assert np.all((-y >= 0.1) & (-y < 0.3)) and np.std(y) > 0.03
    np.testing.assert_array_equal(
        y, F.rrelu(-np.ones(1000), 0.1, 0.3, training=True, key=fr.key(0)))
    g = funcgrad.grad(lambda v: fnp.sum(F.rrelu(v, 0.1, 0.3, training=True,
                                                key=fr.key(0))))(-np.ones(1000))
    np.testing.assert_allclose(g, y / -1.0)
    assert F.rrelu(np.ones(3, np.float32), training=True, key=fr.key(1)).dtype == np.float32
    with pytest.raises(FuncgradValueError, match="rrelu: training=True needs a random key"):
        F.rrelu(x, training=True)


# ---- smaller names: activations, norms, distances, losses, lp pooling, channel ops --------
def test_prelu_as_torch():
    x = RNG.standard_normal((2, 3, 4))
    w = np.array([0.1, -0.2, 0.3])
    _vs_torch(F.prelu, TF.prelu, x, w, grad_args=(0, 1))
    _vs_torch(F.prelu, TF.prelu, x, np.array([0.25]), grad_args=(0, 1))
    with pytest.raises(FuncgradValueError, match="prelu: weight of shape"):
        F.prelu(x, np.ones(2))


def test_rms_norm_as_torch():
    x = RNG.standard_normal((3, 4, 5))
    w = RNG.standard_normal((4, 5))
    _vs_torch(lambda v, u: F.rms_norm(v, (4, 5), u), lambda v, u: TF.rms_norm(v, [4, 5], u),
              x, w, grad_args=(0, 1))
    _vs_torch(lambda v: F.rms_norm(v, 5, eps=1e-3), lambda v: TF.rms_norm(v, [5], eps=1e-3), x)
    assert F.rms_norm(x.astype(np.float32), 5).dtype == np.float32
    with pytest.raises(FuncgradValueError, match="rms_norm: normalized_shape"):
        F.rms_norm(x, (3,))


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, np.inf])
def test_pairwise_distance_and_pdist_as_torch(p):
    a, b = RNG.standard_normal((4, 5)), RNG.standard_normal((4, 5))
    _vs_torch(lambda u, v: F.pairwise_distance(u, v, p), lambda u, v: TF.pairwise_distance(
        u, v, p), a, b, grad_args=(0, 1))
    _vs_torch(lambda u, v: F.pairwise_distance(u, v, p, keepdim=True),
              lambda u, v: TF.pairwise_distance(u, v, p, keepdim=True), a, b)
    _vs_torch(lambda u: F.pdist(u, p), lambda u: TF.pdist(u, p), a)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_soft_margin_losses_as_torch(reduction):
    x = RNG.standard_normal((4, 3)) * 30
    y = RNG.choice([-1.0, 1.0], (4, 3))
    _vs_torch(lambda v: F.soft_margin_loss(v, y, reduction=reduction),
              lambda v: TF.soft_margin_loss(v, torch.tensor(y), reduction=reduction), x)
    y01 = (y > 0).astype(np.float64)
    w = np.array([0.5, 1.0, 2.0])
    _vs_torch(lambda v: F.multilabel_soft_margin_loss(v, y01, w, reduction=reduction),
              lambda v: TF.multilabel_soft_margin_loss(v, torch.tensor(y01), torch.tensor(w),
                                                       reduction=reduction), x)


@pytest.mark.parametrize("nd, shape, kw", [(1, (2, 3, 8), dict(kernel_size=3, stride=2)),
                                           (2, (2, 3, 6, 5), dict(kernel_size=2)),
                                           (2, (1, 2, 5, 5), dict(kernel_size=(2, 3),
                                                                  ceil_mode=True)),
                                           (3, (1, 2, 4, 4, 4), dict(kernel_size=2))])
@pytest.mark.parametrize("p", [2.0, 3.0, 1.5, np.inf])
def test_lp_pool_as_torch(nd, shape, kw, p):
    x = RNG.uniform(0.1, 2.0, shape)    # positive: fractional powers are defined
    f, tf = getattr(F, f"lp_pool{nd}d"), getattr(TF, f"lp_pool{nd}d")
    _vs_torch(lambda v: f(v, p, **kw), lambda v: tf(v, p, **kw), x, rtol=1e-9)


def test_channel_shuffle_and_channel_dropout():
    x = RNG.standard_normal((2, 6, 3, 2))
    np.testing.assert_array_equal(F.channel_shuffle(x, 3),
                                  TF.channel_shuffle(torch.tensor(x), 3).numpy())
    with pytest.raises(FuncgradValueError, match="channel_shuffle"):
        F.channel_shuffle(x, 4)
    for nd, f in ((1, F.dropout1d), (2, F.dropout2d), (3, F.dropout3d)):
        v = np.ones((4, 50) + (3,) * nd)
        y = f(v, 0.4, key=fr.key(nd))
        per_channel = y.reshape(4, 50, -1)
        # whole channels are kept (scaled) or zeroed
        assert np.all((per_channel == 0).all(-1) | (per_channel == 1 / 0.6).all(-1))
        assert 0.2 < (per_channel[..., 0] == 0).mean() < 0.6
        np.testing.assert_array_equal(f(v, 0.4, training=False), v)
        with pytest.raises(FuncgradValueError, match=f"dropout{nd}d: training=True needs"):
            f(v, 0.4)


# ---- the matching layers ------------------------------------------------------------------
@pytest.mark.parametrize("name, args, shape", [
    ("MaxPool3d", (2,), (1, 2, 4, 4, 4)), ("AvgPool3d", (2, 1, 1), (2, 2, 3, 4, 5)),
    ("AdaptiveAvgPool3d", ((2, 3, 1),), (1, 2, 4, 5, 3)),
    ("AdaptiveMaxPool1d", (3,), (2, 3, 7)), ("AdaptiveMaxPool2d", ((2, 3),), (2, 3, 5, 7)),
    ("AdaptiveMaxPool3d", (2,), (1, 2, 4, 5, 3)), ("Unfold", (2,), (2, 3, 4, 5)),
    ("Fold", ((4, 5), 2), (2, 12, 12)), ("Hardshrink", (), (3, 4)),
    ("Softshrink", (0.3,), (3, 4)), ("Hardsigmoid", (), (3, 4)), ("Hardswish", (), (3, 4)),
    ("Mish", (), (3, 4))])
def test_layers_as_torch(name, args, shape):
    import funcgrad_nn as nn
    x = RNG.standard_normal(shape) * 3
    ours = getattr(nn, name)(*args) if hasattr(nn, name) else getattr(nn.layers, name)(*args)
    theirs = getattr(torch.nn, name)(*args)
    np.testing.assert_allclose(ours({}, x), theirs(torch.tensor(x)).numpy(), rtol=1e-10,
                               atol=1e-12)
