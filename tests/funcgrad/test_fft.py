"""funcgrad.numpy.fft: values against numpy.fft for every function, ``n``/``s``, axes and
norm; derivatives to order 2 (complex input checked through real and imaginary parts);
the transposes of rfft/irfft (Hermitian weighting) against dense matrices; float32;
batching and dispatch."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import funcgrad
import funcgrad.numpy as fnp
from funcgrad._src.errors import FuncgradTypeError, FuncgradValueError
from funcgrad.test_util import check_grads

F = fnp.fft
NORMS = [None, "backward", "ortho", "forward"]
seeds = st.integers(0, 2**32 - 1)
norms = st.sampled_from(NORMS)
shapes = st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple)


def _ri(z):
    return fnp.stack([fnp.real(z), fnp.imag(z)])


def _complex(rng, shape):
    return rng.normal(size=shape) + 1j * rng.normal(size=shape)


def check_complex_input(f, z, order=2):
    """check_grads of ``f`` at complex ``z``, through its real and imaginary parts."""
    def g(re, im):
        out = f(re + 1j * im)
        return _ri(out) if out.dtype.kind == "c" else out
    check_grads(g, (np.ascontiguousarray(z.real), np.ascontiguousarray(z.imag)), order=order)


# ---- one-dimensional transforms ------------------------------------------------------------
@given(shapes, st.data(), norms, seeds)
def test_fft_ifft(shape, data, norm, seed):
    rng = np.random.default_rng(seed)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    n = data.draw(st.one_of(st.none(), st.integers(1, 7)))
    z = _complex(rng, shape)
    for name in ("fft", "ifft"):
        f = getattr(F, name)
        np.testing.assert_allclose(f(z, n, axis, norm), getattr(np.fft, name)(z, n, axis, norm),
                                   rtol=1e-10, atol=1e-12)
        check_complex_input(lambda v: f(v, n, axis, norm), z)
    x = rng.normal(size=shape)                       # real input, complex output
    np.testing.assert_allclose(F.fft(x, n, axis, norm), np.fft.fft(x, n, axis, norm),
                               atol=1e-12)
    check_grads(lambda v: _ri(F.fft(v, n, axis, norm)), (x,), order=2)


@given(shapes, st.data(), norms, seeds)
def test_rfft_irfft(shape, data, norm, seed):
    rng = np.random.default_rng(seed)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    n = data.draw(st.one_of(st.none(), st.integers(1, 8)))
    x = rng.normal(size=shape)
    np.testing.assert_allclose(F.rfft(x, n, axis, norm), np.fft.rfft(x, n, axis, norm),
                               atol=1e-12)
    check_grads(lambda v: _ri(F.rfft(v, n, axis, norm)), (x,), order=2)
    m = shape[axis]
    n_out = n if n is not None else (2 * (m - 1) if m > 1 else 2)
    z = _complex(rng, shape)
    np.testing.assert_allclose(F.irfft(z, n_out, axis, norm),
                               np.fft.irfft(z, n_out, axis, norm), atol=1e-12)
    check_complex_input(lambda v: F.irfft(v, n_out, axis, norm), z)


@given(st.integers(1, 6), norms, seeds)
def test_hfft_ihfft(m, norm, seed):
    rng = np.random.default_rng(seed)
    z = _complex(rng, (2, m + 1))
    np.testing.assert_allclose(F.hfft(z, norm=norm), np.fft.hfft(z, norm=norm), atol=1e-12)
    check_complex_input(lambda v: F.hfft(v, norm=norm), z)
    x = rng.normal(size=(m, 3))
    np.testing.assert_allclose(F.ihfft(x, axis=0, norm=norm),
                               np.fft.ihfft(x, axis=0, norm=norm), atol=1e-12)
    check_grads(lambda v: _ri(F.ihfft(v, axis=0, norm=norm)), (x,), order=2)


# ---- N-dimensional transforms ----------------------------------------------------------------
def _axes_and_s(data, shape):
    nd = len(shape)
    k = data.draw(st.integers(1, nd))
    axes = data.draw(st.permutations(list(range(nd))))[:k]
    s = data.draw(st.one_of(st.none(), st.lists(st.integers(1, 6), min_size=k, max_size=k)))
    return tuple(axes), s


@given(shapes, st.data(), norms, seeds)
def test_fftn_ifftn(shape, data, norm, seed):
    rng = np.random.default_rng(seed)
    axes, s = _axes_and_s(data, shape)
    z = _complex(rng, shape)
    for name in ("fftn", "ifftn"):
        f = getattr(F, name)
        np.testing.assert_allclose(f(z, s, axes, norm), getattr(np.fft, name)(z, s, axes, norm),
                                   rtol=1e-10, atol=1e-12)
        check_complex_input(lambda v: f(v, s, axes, norm), z)


@given(shapes, st.data(), norms, seeds)
def test_rfftn_irfftn(shape, data, norm, seed):
    rng = np.random.default_rng(seed)
    axes, s = _axes_and_s(data, shape)
    x = rng.normal(size=shape)
    np.testing.assert_allclose(F.rfftn(x, s, axes, norm), np.fft.rfftn(x, s, axes, norm),
                               atol=1e-12)
    check_grads(lambda v: _ri(F.rfftn(v, s, axes, norm)), (x,), order=2)
    if s is None:
        s = [shape[ax] for ax in axes]
    z = _complex(rng, shape)
    np.testing.assert_allclose(F.irfftn(z, s, axes, norm), np.fft.irfftn(z, s, axes, norm),
                               atol=1e-12)
    check_complex_input(lambda v: F.irfftn(v, s, axes, norm), z)


def test_2d_variants_and_defaults():
    rng = np.random.default_rng(0)
    z = _complex(rng, (2, 3, 4))
    x = z.real.copy()
    for name in ("fft2", "ifft2"):
        np.testing.assert_allclose(getattr(F, name)(z), getattr(np.fft, name)(z), atol=1e-12)
        np.testing.assert_allclose(getattr(F, name)(z, s=(2, 5), axes=(0, 2)),
                                   getattr(np.fft, name)(z, s=(2, 5), axes=(0, 2)), atol=1e-12)
    np.testing.assert_allclose(F.rfft2(x), np.fft.rfft2(x), atol=1e-12)
    np.testing.assert_allclose(F.irfft2(z), np.fft.irfft2(z), atol=1e-12)
    np.testing.assert_allclose(F.irfft2(z, s=(3, 5)), np.fft.irfft2(z, s=(3, 5)), atol=1e-12)
    np.testing.assert_allclose(F.fftn(z), np.fft.fftn(z), atol=1e-12)
    np.testing.assert_allclose(F.irfftn(z), np.fft.irfftn(z), atol=1e-12)
    np.testing.assert_allclose(F.fftfreq(5, 0.1), np.fft.fftfreq(5, 0.1))
    np.testing.assert_allclose(F.rfftfreq(6), np.fft.rfftfreq(6))


# ---- the transposes, against dense matrices --------------------------------------------------
def _dense(f, n_in, complex_in):
    """The real matrix of the real-linear map ``f`` on R^n or C^n (as R^2n)."""
    cols = []
    for k in range(n_in * (2 if complex_in else 1)):
        e = np.zeros(n_in, complex if complex_in else float)
        e[k % n_in] = 1j if k >= n_in else 1
        y = np.asarray(f(e))
        cols.append(np.concatenate([y.real, y.imag]) if y.dtype.kind == "c" else y)
    return np.stack(cols, axis=1)


@pytest.mark.parametrize("n", [1, 2, 5, 6])
@pytest.mark.parametrize("norm", ["backward", "ortho", "forward"])
def test_rfft_irfft_reverse_rules_are_exact_transposes(n, norm):
    """The reverse rules equal the transpose of the dense real matrix of each map under
    the pairing real(sum(ct * t)): this is where the Hermitian weighting of the zero,
    Nyquist and interior bins must come out right."""
    rng = np.random.default_rng(n)
    h = n // 2 + 1
    # rfft: R^n -> C^h
    jac = _dense(lambda v: F.rfft(v, norm=norm), n, False)           # (2h, n)
    ct = _complex(rng, (h,))
    _, f_vjp = funcgrad.vjp(lambda v: F.rfft(v, norm=norm), rng.normal(size=n))
    (got,) = f_vjp(ct)
    want = jac.T @ np.concatenate([ct.real, -ct.imag])     # real(ct * t) pairing
    np.testing.assert_allclose(got, want, atol=1e-12)
    # irfft: C^h -> R^n
    jac = _dense(lambda v: F.irfft(v, n, norm=norm), h, True)          # (n, 2h)
    ct = rng.normal(size=n)
    _, f_vjp = funcgrad.vjp(lambda v: F.irfft(v, n, norm=norm), _complex(rng, (h,)))
    (got,) = f_vjp(ct)
    flat = jac.T @ ct                                      # gradient w.r.t. (re, im)
    np.testing.assert_allclose(got, flat[:h] - 1j * flat[h:], atol=1e-12)


def test_gradient_of_power_spectrum_matches_jax_convention():
    x = np.array([0.3, -1.2, 2.0, 0.7, -0.1, 1.1])
    # Parseval: sum |fft(x)|^2 = n sum x^2, so the gradient is 2 n x; with rfft, the
    # interior bins count twice (weights 1, 2, 2, 1 for n = 6)
    g = funcgrad.grad(lambda v: fnp.sum(fnp.abs(F.fft(v)) ** 2))(x)
    np.testing.assert_allclose(g, 2 * len(x) * x, rtol=1e-12)
    w = np.array([1, 2, 2, 1.0])
    g = funcgrad.grad(lambda v: fnp.sum(w * fnp.abs(F.rfft(v)) ** 2))(x)
    np.testing.assert_allclose(g, 2 * len(x) * x, rtol=1e-12)


# ---- shifts -----------------------------------------------------------------------------------
@given(shapes, st.data(), seeds)
def test_fftshift_ifftshift(shape, data, seed):
    x = np.random.default_rng(seed).normal(size=shape)
    axes = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1),
                               st.permutations(list(range(len(shape))))))
    for name in ("fftshift", "ifftshift"):
        np.testing.assert_array_equal(getattr(F, name)(x, axes), getattr(np.fft, name)(x, axes))
        check_grads(lambda v: getattr(F, name)(v, axes), (x,), order=1)
    np.testing.assert_array_equal(F.ifftshift(F.fftshift(x, axes), axes), x)


# ---- dtypes, batching, dispatch, errors ------------------------------------------------------
@pytest.mark.parametrize("name,kind", [("fft", "r"), ("fft", "c"), ("ifft", "c"), ("rfft", "r"),
                                       ("irfft", "c"), ("fftn", "c"), ("rfftn", "r"),
                                       ("irfftn", "c"), ("hfft", "c"), ("ihfft", "r")])
def test_float32_stays_single_precision(name, kind):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 4)).astype(np.float32)
    if kind == "c":
        x = (x + 1j * x[::-1]).astype(np.complex64)
    f = getattr(F, name)
    out = f(x)
    want = getattr(np.fft, name)(x)
    assert out.dtype.itemsize == want.dtype.itemsize and out.dtype.kind == want.dtype.kind
    assert out.dtype in (np.float32, np.complex64)
    loss = (lambda v: fnp.sum(fnp.real(f(v) * fnp.conj(f(v))))) if out.dtype.kind == "c" \
        else (lambda v: fnp.sum(f(v) ** 2))
    g = funcgrad.grad(loss)(x)
    assert g.dtype == x.dtype
    _, t = funcgrad.jvp(f, (x,), (np.ones_like(x),))
    assert t.dtype == out.dtype


def test_integer_input_becomes_float64():
    assert F.fft(np.arange(4)).dtype == np.complex128
    assert F.rfft(np.arange(4)).dtype == np.complex128


def test_vmap_uses_batching_rules():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 6))
    z = _complex(rng, (3, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(funcgrad.vmap(F.rfft, in_axes=1)(x), np.fft.rfft(x.T),
                                   atol=1e-12)
        np.testing.assert_allclose(funcgrad.vmap(lambda v: F.irfft(v, 5))(z),
                                   np.fft.irfft(z, 5), atol=1e-12)
        np.testing.assert_allclose(funcgrad.vmap(F.fft2, in_axes=0)(x.reshape(2, 3, 4)),
                                   np.fft.fft2(x.reshape(2, 3, 4)), atol=1e-12)


def test_plain_numpy_fft_dispatches():
    x = np.random.default_rng(3).normal(size=8)
    g = funcgrad.grad(lambda v: np.sum(np.abs(np.fft.rfft(v)) ** 2)
                      + np.sum(np.fft.irfft(np.fft.rfft(v) * 2.0)))(x)
    g_ref = funcgrad.grad(lambda v: fnp.sum(fnp.abs(F.rfft(v)) ** 2)
                          + fnp.sum(F.irfft(F.rfft(v) * 2.0)))(x)
    np.testing.assert_allclose(g, g_ref)


def test_errors():
    with pytest.raises(FuncgradValueError, match="norm"):
        F.fft(np.ones(4), norm="bogus")
    with pytest.raises(FuncgradValueError, match="at least 1"):
        F.fft(np.ones(4), n=0)
    with pytest.raises(FuncgradTypeError, match="complex"):
        F.rfft(np.ones(4) + 1j)
    with pytest.raises(FuncgradValueError, match="differ in length"):
        F.fftn(np.ones((2, 2)), s=(2,), axes=(0, 1))
    with pytest.raises(FuncgradValueError, match="out of bounds"):
        F.fft(np.ones(3), axis=1)
    with pytest.raises(FuncgradTypeError, match="out="):
        F.fft(np.ones(3), out=np.ones(3, complex))
