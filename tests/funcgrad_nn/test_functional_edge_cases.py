"""funcgrad_nn.functional edge cases: padding at the limits of its widths, ReLU family at
infinities and NaN, area interpolation of volumes. Each case is checked against the
expected values written out (and against PyTorch when it is installed)."""
import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp
import funcgrad.random as fr
import funcgrad_nn as nn
import funcgrad_nn.functional as F
from funcgrad.test_util import check_grads

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # pragma: no cover - torch is optional
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")


# ---------------------------------------------------------------- pad: reflect at size-1

def test_reflect_pad_of_width_size_minus_one_on_the_right():
    x = np.array([[0.0, 1.0, 2.0]])
    np.testing.assert_array_equal(F.pad(x, (1, 2), "reflect"), [[1, 0, 1, 2, 1, 0]])
    np.testing.assert_array_equal(F.pad(x, (2, 2), "reflect"), [[2, 1, 0, 1, 2, 1, 0]])
    np.testing.assert_array_equal(F.pad(x, (0, 2), "reflect"), [[0, 1, 2, 1, 0]])


def test_reflect_pad_gradient_counts_every_reflected_copy():
    x = np.array([[0.0, 1.0, 2.0]])
    g = funcgrad.grad(lambda v: fnp.sum(F.pad(v, (2, 2), "reflect")))(x)
    np.testing.assert_array_equal(g, [[2.0, 3.0, 2.0]])
    check_grads(lambda v: F.pad(v, (1, 2), "reflect"), (x,), order=2)


def test_conv2d_reflect_padding_one_on_a_two_by_two_map_keeps_its_size():
    x = np.arange(4.0).reshape(1, 1, 2, 2)
    w = np.ones((1, 1, 3, 3))
    y = F.conv2d(x, w, padding=1, padding_mode="reflect")
    # reflect-padded: [[3,2,3,2],[1,0,1,0],[3,2,3,2],[1,0,1,0]]
    np.testing.assert_allclose(y, [[[[18.0, 15.0], [12.0, 9.0]]]])
    conv = nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect")
    p = conv.init(fr.key(0))
    assert conv(p, x.astype(np.float32)).shape == (1, 1, 2, 2)


@needs_torch
@pytest.mark.parametrize("pads", [(1, 2), (2, 1), (2, 2), (0, 2), (2, 0), (1, 1, 2, 2),
                                  (2, 2, 1, 0)])
def test_reflect_pad_matches_torch(pads):
    x = np.random.default_rng(0).normal(size=(2, 2, 3, 3))
    if len(pads) == 2:       # torch pads one axis of 2-D or 3-D inputs only
        x = x[0]
    ours = F.pad(x, pads, "reflect")
    theirs = TF.pad(torch.tensor(x), pads, mode="reflect").numpy()
    np.testing.assert_allclose(ours, theirs)


@needs_torch
def test_conv2d_layer_reflect_matches_torch_on_small_maps():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 2, 2, 2))
    tc = torch.nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect").double()
    conv = nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect", dtype=np.float64)
    p = {"weight": tc.weight.detach().numpy(), "bias": tc.bias.detach().numpy()}
    np.testing.assert_allclose(conv(p, x), tc(torch.tensor(x)).detach().numpy(), atol=1e-12)


# ---------------------------------------------------------------- pad: negative circular

def test_circular_pad_crops_before_wrapping():
    x = np.arange(4.0)
    np.testing.assert_array_equal(F.pad(x, (-1, 1), "circular"), [1, 2, 3, 1])
    np.testing.assert_array_equal(F.pad(x, (1, -1), "circular"), [2, 0, 1, 2])
    np.testing.assert_array_equal(F.pad(x, (-2, 2), "circular"), [2, 3, 2, 3])


@needs_torch
@pytest.mark.parametrize("pads", [(-1, 1), (1, -1), (-1, 2), (2, -1), (-1, -1), (-2, 2)])
def test_negative_circular_pad_matches_torch(pads):
    x = np.random.default_rng(2).normal(size=(1, 2, 5))
    ours = F.pad(x, pads, "circular")
    theirs = TF.pad(torch.tensor(x), pads, mode="circular").numpy()
    np.testing.assert_allclose(ours, theirs)


def test_negative_circular_pad_gradient():
    x = np.arange(4.0)
    g = funcgrad.grad(lambda v: fnp.sum(F.pad(v, (-1, 1), "circular") * fnp.arange(4.0)))(x)
    np.testing.assert_array_equal(g, [0.0, 3.0, 1.0, 2.0])


# ---------------------------------------------------------------- relu family

def test_relu_of_minus_infinity_is_zero_and_nan_propagates():
    x = np.array([-np.inf, -1.0, 0.0, 2.0, np.inf, np.nan])
    y = F.relu(x)
    np.testing.assert_array_equal(y[:5], [0.0, 0.0, 0.0, 2.0, np.inf])
    assert np.isnan(y[5])
    g = funcgrad.grad(lambda v: fnp.sum(F.relu(v)))(x)
    np.testing.assert_array_equal(g[:5], [0.0, 0.0, 0.0, 1.0, 1.0])


def test_relu_traced_paths_agree_with_pytorch():
    x = np.array([-np.inf, -1.0, 0.0, 2.0, np.inf, np.nan])
    expect = np.array([0.0, 0.0, 0.0, 2.0, np.inf, np.nan])
    np.testing.assert_array_equal(funcgrad.jit(F.relu)(x), expect)
    np.testing.assert_array_equal(funcgrad.vmap(F.relu)(np.stack([x, x]))[1], expect)
    y, t = funcgrad.jvp(F.relu, (x,), (np.ones(6),))
    np.testing.assert_array_equal(y, expect)
    np.testing.assert_array_equal(t[:5], [0.0, 0.0, 0.0, 1.0, 1.0])
    g = funcgrad.jit(funcgrad.grad(lambda v: fnp.sum(F.relu(v))))(x)
    np.testing.assert_array_equal(g[:5], [0.0, 0.0, 0.0, 1.0, 1.0])
    # the derivative at NaN is 0 (JAX's convention; PyTorch's is 1), eager and jit alike
    nan = np.array([np.nan, -1.0, 0.0, 3.0])
    for grad in (funcgrad.grad, lambda f: funcgrad.jit(funcgrad.grad(f))):
        np.testing.assert_array_equal(grad(lambda v: fnp.sum(F.relu(v)))(nan),
                                      [0.0, 0.0, 0.0, 1.0])


def test_relu_keeps_dtype_and_second_order():
    x = np.array([-1.5, 0.5, 3.0], np.float32)
    assert F.relu(x).dtype == np.float32
    check_grads(F.relu, (np.array([-1.5, 0.5, 3.0]),), order=2)


def test_relu6_propagates_nan():
    x = np.array([np.nan, -np.inf, -1.0, 3.0, 7.0, np.inf])
    y = F.relu6(x)
    assert np.isnan(y[0])
    np.testing.assert_array_equal(y[1:], [0.0, 0.0, 3.0, 6.0, 6.0])


@needs_torch
@pytest.mark.parametrize("name", ["relu", "relu6"])
def test_relu_family_specials_match_torch(name):
    x = np.array([-np.inf, -3.0, -0.0, 0.0, 0.5, 6.0, 7.0, np.inf, np.nan])
    ours = getattr(F, name)(x)
    tx = torch.tensor(x, requires_grad=True)
    ty = getattr(TF, name)(tx)
    np.testing.assert_array_equal(ours, ty.detach().numpy())
    ty.sum().backward()
    g = funcgrad.grad(lambda v: fnp.sum(getattr(F, name)(v)))(x)
    finite = np.isfinite(x)
    np.testing.assert_array_equal(g[finite], tx.grad.numpy()[finite])


# ---------------------------------------------------------------- interpolate area 5-D

@pytest.mark.parametrize("shape", [(1, 4, 3, 5, 4), (2, 3, 4, 4, 6)])
def test_area_interpolate_of_a_volume(shape):
    x = np.random.default_rng(3).normal(size=shape)
    out = (2, 3, 2)
    y = F.interpolate(x, size=out, mode="area")
    # area to a size is adaptive average pooling: compute it directly
    expect = np.empty(shape[:2] + out)
    for i in range(out[0]):
        for j in range(out[1]):
            for k in range(out[2]):
                sl = []
                for a, (n, o) in enumerate(zip(shape[2:], out)):
                    idx = (i, j, k)[a]
                    sl.append(slice(idx * n // o, -(-(idx + 1) * n // o)))
                expect[:, :, i, j, k] = x[(slice(None), slice(None)) + tuple(sl)].mean(
                    axis=(2, 3, 4))
    np.testing.assert_allclose(y, expect, atol=1e-12)


@needs_torch
def test_area_interpolate_volume_matches_torch():
    x = np.random.default_rng(4).normal(size=(1, 4, 3, 5, 4))
    y = F.interpolate(x, size=(2, 3, 2), mode="area")
    t = TF.interpolate(torch.tensor(x), size=(2, 3, 2), mode="area").numpy()
    np.testing.assert_allclose(y, t, atol=1e-12)


@needs_torch
@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("pads", [(-1, 2), (2, -1), (-1, -1), (0, -2), (-2, 4), (-4, 4)])
def test_negative_pads_of_every_mode_match_torch(mode, pads):
    x = np.arange(5.0).reshape(1, 1, 5)
    try:
        theirs = TF.pad(torch.tensor(x), pads, mode=mode).numpy()
    except Exception:
        with pytest.raises(ValueError):
            F.pad(x, pads, mode)
        return
    np.testing.assert_array_equal(F.pad(x, pads, mode), theirs)
