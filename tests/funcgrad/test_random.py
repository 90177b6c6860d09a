"""Tests of funcgrad.random: Threefry known answers, JAX agreement, determinism, shapes and
dtypes, bounds, distribution sanity checks, derivatives through parameters, and errors."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import funcgrad
import funcgrad.numpy as fnp
import funcgrad.random as fr
from funcgrad._src.errors import FuncgradTypeError, FuncgradValueError
from funcgrad._src.prims import random_bits as rb
from funcgrad.test_util import check_grads

N = 100_000
K = fr.key(0)

# Random123 known-answer vectors (examples/kat_vectors): rounds, counter, key, output.
PI_CTR = (0x243F6A88, 0x85A308D3)
PI_KEY = (0x13198A2E, 0x03707344)
ONES = (0xFFFFFFFF, 0xFFFFFFFF)
KAT = [
    (13, (0, 0), (0, 0), (0x9D1C5EC6, 0x8BD50731)),
    (13, ONES, ONES, (0xFD36D048, 0x2D17272C)),
    (13, PI_CTR, PI_KEY, (0xBA3E4725, 0xF27D669E)),
    (20, (0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
    (20, ONES, ONES, (0x1CB996FC, 0xBB002BE7)),
    (20, PI_CTR, PI_KEY, (0xC4923A9C, 0x483DF7A0)),
    (32, (0, 0), (0, 0), (0xCEE3D47E, 0xA23DFD5C)),
    (32, ONES, ONES, (0x6E2FE0D0, 0xB1B76F82)),
    (32, PI_CTR, PI_KEY, (0xE2827716, 0xC3C05CDF)),
]


# ---- the generator -------------------------------------------------------------------

@pytest.mark.parametrize("rounds,ctr,key,expected", KAT)
def test_threefry_known_answers(rounds, ctr, key, expected):
    x0 = np.array([ctr[0]], np.uint32)
    x1 = np.array([ctr[1]], np.uint32)
    y0, y1 = rb.threefry2x32(np.uint32(key[0]), np.uint32(key[1]), x0, x1, rounds)
    assert (int(y0[0]), int(y1[0])) == expected
    assert x0[0] == ctr[0] and x1[0] == ctr[1]          # inputs untouched


def test_threefry_vectorised_matches_one_by_one():
    # Every lane of a vector call equals the scalar call (the KAT counter in lane 3).
    x0 = np.array([0, 0xFFFFFFFF, 7, PI_CTR[0]], np.uint32)
    x1 = np.array([0, 0xFFFFFFFF, 9, PI_CTR[1]], np.uint32)
    k0, k1 = np.uint32(PI_KEY[0]), np.uint32(PI_KEY[1])
    y0, y1 = rb.threefry2x32(k0, k1, x0, x1)
    for i in range(4):
        a, b = rb.threefry2x32(k0, k1, x0[i:i + 1], x1[i:i + 1])
        assert (y0[i], y1[i]) == (a[0], b[0])
    assert (int(y0[3]), int(y1[3])) == (0xC4923A9C, 0x483DF7A0)


def test_golden_values():
    # Fixed outputs: the same on every run and platform (bits and uniforms are exact).
    assert fr.key(42).tolist() == [0, 42]
    assert fr.split(fr.key(42), 3).tolist() == [[3134548294, 3733159049],
                                                 [3746501087, 894150801],
                                                 [801545058, 2363201431]]
    assert fr.bits(fr.key(42), (5,)).tolist() == [3134548294, 3733159049, 843694964,
                                                   894150801, 801545058]
    # A float32 uniform is the top 23 bits of a word, scaled: exact, as JAX's.
    words = np.array([3134548294, 3733159049, 843694964, 894150801, 801545058], np.uint64)
    np.testing.assert_array_equal(fr.uniform(fr.key(42), (5,)),
                                  ((words >> 9) * 2.0 ** -23).astype(np.float32))
    assert fr.uniform(fr.key(42), (3,)).tolist() == [0.5741443634033203, 0.1001582145690918,
                                                     0.059461116790771484]


def _jax_config():
    jax = pytest.importorskip("jax")
    try:
        from jax._src import config
        config.threefry_partitionable, config.enable_x64  # noqa: B018
    except (ImportError, AttributeError):
        pytest.skip("this jax has no threefry_partitionable/enable_x64 context managers")
    return jax, config


@pytest.mark.parametrize("seed", [42, 2 ** 40 + 5, -1])
def test_agrees_with_jax(seed):
    jax, config = _jax_config()
    k = fr.key(seed)
    with config.threefry_partitionable(False), config.enable_x64(True):
        jk = jax.random.PRNGKey(seed)
        np.testing.assert_array_equal(np.asarray(jk), k)
        np.testing.assert_array_equal(np.asarray(jax.random.split(jk, 5)), fr.split(k, 5))
        np.testing.assert_array_equal(np.asarray(jax.random.fold_in(jk, 12345)),
                                      fr.fold_in(k, 12345))
        for shape in [(), (7,), (4, 3)]:
            np.testing.assert_array_equal(
                np.asarray(jax.random.bits(jk, shape, dtype=np.uint32)), fr.bits(k, shape))
            np.testing.assert_array_equal(
                np.asarray(jax.random.bits(jk, shape, dtype=np.uint64)),
                fr.bits(k, shape, np.uint64))
            for dt in (np.float32, np.float64):
                np.testing.assert_array_equal(
                    np.asarray(jax.random.uniform(jk, shape, dtype=dt)),
                    fr.uniform(k, shape, dt))


# ---- keys ----------------------------------------------------------------------------

def test_key_forms():
    assert fr.PRNGKey is fr.key
    assert fr.key(np.int64(7)).tolist() == fr.key(7).tolist() == [0, 7]
    assert fr.key(np.array(7, np.uint8)).tolist() == [0, 7]
    assert fr.key(2 ** 32 + 3).tolist() == [1, 3]
    assert fr.key(-1).tolist() == [2 ** 32 - 1, 2 ** 32 - 1]
    assert fr.key(0).dtype == np.uint32


def test_split_and_fold_in_shapes_and_distinctness():
    ks = fr.split(K, 4)
    assert ks.shape == (4, 2) and ks.dtype == np.uint32
    assert fr.split(K).shape == (2, 2)
    assert fr.split(K, (2, 3)).shape == (2, 3, 2)
    assert fr.split(K, 0).shape == (0, 2)
    rows = {tuple(r) for r in fr.split(K, 1000).tolist()}
    assert len(rows) == 1000 and tuple(K.tolist()) not in rows
    folded = {tuple(fr.fold_in(K, i).tolist()) for i in range(200)}
    assert len(folded) == 200
    assert fr.fold_in(K, -1).tolist() == fr.fold_in(K, 2 ** 32 - 1).tolist()
    assert fr.fold_in(K, np.int32(5)).tolist() == fr.fold_in(K, 5).tolist()
    # Splitting is deterministic and does not depend on how many keys are asked for
    # beyond the counters it uses.
    np.testing.assert_array_equal(fr.split(K, 3), fr.split(K, 3))


def test_split_streams_look_independent():
    k1, k2 = fr.split(K)
    a = fr.normal(k1, (N,))
    b = fr.normal(k2, (N,))
    c = fr.normal(fr.fold_in(K, 1), (N,))
    assert not np.array_equal(a, b)
    for x, y in [(a, b), (a, c), (b, c)]:
        assert abs(np.corrcoef(x, y)[0, 1]) < 0.015
    # Neighbouring counters are uncorrelated too.
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < 0.015
    # Related keys (seeds 0 and 1) give unrelated streams.
    u0 = fr.uniform(fr.key(0), (N,))
    u1 = fr.uniform(fr.key(1), (N,))
    assert abs(np.corrcoef(u0, u1)[0, 1]) < 0.015
    assert np.mean(u0 == u1) < 1e-3


# ---- determinism, shapes, dtypes -----------------------------------------------------

SAMPLERS = {
    "uniform": lambda k, s, d: fr.uniform(k, s, d),
    "normal": lambda k, s, d: fr.normal(k, s, d),
    "truncated_normal": lambda k, s, d: fr.truncated_normal(k, -1.0, 2.0, s, d),
    "gumbel": lambda k, s, d: fr.gumbel(k, s, d),
    "exponential": lambda k, s, d: fr.exponential(k, s, d),
    "laplace": lambda k, s, d: fr.laplace(k, s, d),
    "logistic": lambda k, s, d: fr.logistic(k, s, d),
    "gamma": lambda k, s, d: fr.gamma(k, 2.5, s, d),
    "beta": lambda k, s, d: fr.beta(k, 2.0, 3.0, s, d),
}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_float_samplers_shapes_dtypes_determinism(name):
    f = SAMPLERS[name]
    x = f(K, (3, 5), np.float32)
    assert x.shape == (3, 5) and x.dtype == np.float32
    np.testing.assert_array_equal(x, f(K, (3, 5), np.float32))
    assert not np.array_equal(x, f(fr.key(1), (3, 5), np.float32))
    y = f(K, (4,), np.float64)
    assert y.shape == (4,) and y.dtype == np.float64
    assert f(K, (), np.float32).shape == ()
    assert f(K, (0, 3), np.float32).shape == (0, 3)
    assert np.all(np.isfinite(f(K, (1000,), np.float32)))


def test_default_dtypes_and_int_shape():
    assert fr.uniform(K).dtype == np.float32 and fr.uniform(K).shape == ()
    assert fr.normal(K, 7).shape == (7,)
    assert fr.randint(K, (2,), 0, 5).dtype == np.int32
    assert fr.permutation(K, 5).dtype == np.int32
    assert fr.choice(K, 5, (2,)).dtype == np.int32
    assert fr.categorical(K, np.zeros(3)).dtype == np.int32
    assert fr.bernoulli(K, 0.5, (3,)).dtype == np.bool_
    assert fr.bits(K, (2,)).dtype == np.uint32


@given(st.lists(st.integers(0, 5), max_size=3), st.integers(0, 2 ** 32 - 1))
def test_shape_is_a_reshape_of_the_flat_stream(shape, seed):
    shape = tuple(shape)
    k = fr.key(seed)
    n = math.prod(shape)
    u = fr.uniform(k, shape)
    assert u.shape == shape
    np.testing.assert_array_equal(u.reshape(-1), fr.uniform(k, (n,)))
    assert np.all((u >= 0) & (u < 1))
    z = fr.normal(k, shape, np.float64)
    np.testing.assert_array_equal(z.reshape(-1), fr.normal(k, (n,), np.float64))


# ---- bounds --------------------------------------------------------------------------

def test_uniform_bounds_and_open_interval():
    u = fr.uniform(K, (N,))
    assert u.min() >= 0 and u.max() < 1
    x = fr.uniform(K, (N,), minval=-3.0, maxval=-2.0)
    assert x.min() >= -3 and x.max() <= -2
    lo = np.array([0.0, 10.0, -5.0], np.float32)
    hi = np.array([1.0, 20.0, -4.0], np.float32)
    y = fr.uniform(K, (1000, 3), minval=lo, maxval=hi)
    assert y.dtype == np.float32
    assert np.all((y >= lo) & (y <= hi))
    assert fr.uniform(K, (3,), np.float64, minval=np.float32(1), maxval=2).dtype == np.float64
    # The open-interval uniforms used for logarithms never hit 0 or 1.
    for dt in (np.float32, np.float64):
        v = rb.unit_uniform(K, N, dt, open=True)
        assert v.min() > 0 and v.max() < 1


def test_randint_bounds():
    x = fr.randint(K, (N,), -3, 4)
    assert x.min() == -3 and x.max() == 3
    counts = np.bincount(x + 3, minlength=7)
    assert np.all(np.abs(counts / N - 1 / 7) < 0.01)
    lo = np.array([0, 100, -50])
    hi = np.array([1, 200, -40])
    y = fr.randint(K, (500, 3), lo, hi)
    assert np.all((y >= lo) & (y < hi)) and np.all(y[:, 0] == 0)
    # Bounds outside the dtype are clipped; an empty range gives minval.
    z = fr.randint(K, (1000,), -1000, 1000, np.int8)
    assert z.dtype == np.int8 and z.min() == -128 and z.max() == 127
    assert np.all(fr.randint(K, (5,), 5, 5) == 5)
    assert np.all(fr.randint(K, (5,), 5, 2) == 5)
    w = fr.randint(K, (1000,), 0, 2 ** 40, np.int64)
    assert w.dtype == np.int64 and w.max() > 2 ** 35 and w.min() >= 0
    v = fr.randint(K, (1000,), 0, 2 ** 32, np.uint32)
    assert v.dtype == np.uint32 and v.max() > 2 ** 31


def test_truncated_normal_bounds_and_moments():
    x = fr.truncated_normal(K, -1.0, 2.0, (N,))
    assert x.dtype == np.float32 and x.min() >= -1 and x.max() <= 2
    # [0, inf): the half-normal, mean sqrt(2/pi).
    h = fr.truncated_normal(K, 0.0, np.inf, (N,), np.float64)
    assert h.min() >= 0 and abs(h.mean() - math.sqrt(2 / math.pi)) < 0.01
    # Far tails keep precision: the mean of N(0,1) given X > 6 is about 6.158.
    t = fr.truncated_normal(K, 6.0, np.inf, (N,), np.float64)
    assert t.min() >= 6 and abs(t.mean() - 6.1584) < 0.01
    s = fr.truncated_normal(K, -np.inf, -6.0, (N,), np.float64)
    assert s.max() <= -6 and abs(s.mean() + 6.1584) < 0.01
    # Array bounds broadcast; shape=None uses their broadcast shape.
    lo = np.array([[-1.0], [3.0]])
    hi = np.array([0.0, 4.0, 5.0])
    b = fr.truncated_normal(K, lo, hi)
    assert b.shape == (2, 3)
    assert np.all((b >= np.minimum(lo, hi)) & (b <= hi))


def test_ndtri_against_scipy():
    special = pytest.importorskip("scipy.special")
    p = np.concatenate([np.linspace(1e-6, 1 - 1e-6, 2001),
                        np.logspace(-300, -1, 300), 1 - np.logspace(-15, -1, 50)])
    np.testing.assert_allclose(rb.ndtri(p), special.ndtri(p), rtol=1e-13, atol=0)
    assert rb.ndtri(np.array([0.0]))[0] == -np.inf and rb.ndtri(np.array([1.0]))[0] == np.inf


# ---- distributions -------------------------------------------------------------------

def _ecdf_distance(x, cdf):
    x = np.sort(x)
    n = len(x)
    c = cdf(x)
    return max(np.max(np.arange(1, n + 1) / n - c), np.max(c - np.arange(n) / n))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_uniform_and_normal_moments(dtype):
    u = fr.uniform(K, (N,), dtype).astype(np.float64)
    assert abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002
    z = fr.normal(K, (N,), dtype).astype(np.float64)
    assert abs(z.mean()) < 0.015 and abs(z.var() - 1) < 0.015
    assert abs(np.mean(np.abs(z) < 1) - 0.682689) < 0.006
    phi = np.vectorize(lambda v: 0.5 * math.erfc(-v / math.sqrt(2)))
    assert _ecdf_distance(z[:20000], phi) < 0.012


@pytest.mark.parametrize("name,mean,var", [
    ("gumbel", 0.5772157, math.pi ** 2 / 6),
    ("exponential", 1.0, 1.0),
    ("laplace", 0.0, 2.0),
    ("logistic", 0.0, math.pi ** 2 / 3),
    ("gamma", 2.5, 2.5),
    ("beta", 0.4, 0.04),
])
def test_distribution_moments(name, mean, var):
    x = SAMPLERS[name](K, (N,), np.float32).astype(np.float64)
    assert abs(x.mean() - mean) < 0.03 * max(1.0, math.sqrt(var))
    assert abs(x.var() / var - 1) < 0.05


def test_gamma_small_and_large_shape_and_invalid():
    a = np.array([0.2, 1.0, 50.0])
    g = fr.gamma(K, a, (20000, 3), np.float64)
    assert np.all(g >= 0)
    np.testing.assert_allclose(g.mean(0), a, rtol=0.05)
    np.testing.assert_allclose(g.var(0), a, rtol=0.1)
    bad = fr.gamma(K, np.array([-1.0, 0.0, np.nan, 2.0]))
    assert np.all(np.isnan(bad[:3])) and np.isfinite(bad[3])
    b = fr.beta(K, 1e-3, 1e-3, (1000,))
    assert np.all(np.isfinite(b)) and np.all((b >= 0) & (b <= 1))


def test_bernoulli_frequencies():
    assert abs(fr.bernoulli(K, 0.3, (N,)).mean() - 0.3) < 0.005
    assert fr.bernoulli(K, 0.5, (N,)).mean() == pytest.approx(0.5, abs=0.005)
    p = np.array([0.0, 0.25, 1.0])
    b = fr.bernoulli(K, p, (20000, 3))
    assert b.shape == (20000, 3) and not b[:, 0].any() and b[:, 2].all()
    assert abs(b[:, 1].mean() - 0.25) < 0.01
    assert fr.bernoulli(K, p).shape == (3,)


def test_permutation_is_a_permutation():
    p = fr.permutation(K, 1000)
    assert sorted(p.tolist()) == list(range(1000)) and not np.array_equal(p, np.arange(1000))
    assert fr.permutation(K, 0).shape == (0,)
    x = np.arange(24).reshape(4, 6)
    y = fr.permutation(K, x, axis=1)
    assert y.shape == x.shape
    assert sorted(y[0].tolist()) == list(range(6))
    np.testing.assert_array_equal(y, x[:, y[0]])       # whole columns move together
    z = fr.permutation(K, x, axis=-1, independent=True)
    for row_x, row_z in zip(x, z):
        assert sorted(row_z.tolist()) == row_x.tolist()
    assert any(not np.array_equal(z[i] - z[i, 0], z[0] - z[0, 0]) for i in range(1, 4))
    w = fr.permutation(K, np.arange(10.0))
    assert sorted(w.tolist()) == list(range(10))
    # Every position receives every element about equally often.
    firsts = [int(fr.permutation(fr.key(s), 4)[0]) for s in range(400)]
    assert all(60 < firsts.count(i) < 140 for i in range(4))


def test_choice_without_replacement_has_no_repeats():
    s = fr.choice(K, 100, (10, 10), replace=False)
    assert s.shape == (10, 10) and len(set(s.ravel().tolist())) == 100
    a = np.arange(30.0).reshape(3, 10)
    t = fr.choice(K, a, (4,), replace=False, axis=1)
    assert t.shape == (3, 4)
    assert len(set(t[0].tolist())) == 4
    np.testing.assert_array_equal(t[1] - t[0], 10.0)
    p = np.array([0.0, 0.5, 0.2, 0.3, 0.0])
    for seed in range(20):
        u = fr.choice(fr.key(seed), 5, (3,), replace=False, p=p)
        assert sorted(u.tolist()) == [1, 2, 3]


def test_choice_with_replacement_frequencies():
    p = np.array([0.1, 0.0, 0.6, 0.3])
    c = fr.choice(K, 4, (N,), p=p)
    freq = np.bincount(c, minlength=4) / N
    np.testing.assert_allclose(freq, p, atol=0.006)
    assert freq[1] == 0
    u = fr.choice(K, np.array([10, 20, 30]), (2, 3))
    assert u.shape == (2, 3) and set(u.ravel().tolist()) <= {10, 20, 30}
    freq = np.bincount(fr.choice(K, 5, (N,)), minlength=5) / N
    np.testing.assert_allclose(freq, 0.2, atol=0.006)
    # Unnormalised p is normalised.
    c2 = fr.choice(K, 4, (1000,), p=p * 7)
    np.testing.assert_array_equal(c2, fr.choice(K, 4, (1000,), p=p))


def test_categorical_frequencies_match_softmax():
    logits = np.array([1.0, -0.5, 2.0, 0.0], np.float32)
    c = fr.categorical(K, logits, shape=(N,))
    freq = np.bincount(c, minlength=4) / N
    soft = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(freq, soft, atol=0.006)
    # Batched logits along axis 0, with a leading sample dimension.
    batch = np.stack([logits, logits[::-1]], axis=1)       # (4, 2): categories on axis 0
    d = fr.categorical(K, batch, axis=0, shape=(20000, 2))
    assert d.shape == (20000, 2)
    np.testing.assert_allclose(np.bincount(d[:, 1], minlength=4) / 20000, soft[::-1],
                               atol=0.015)
    assert fr.categorical(K, np.zeros((3, 5))).shape == (3,)
    with np.errstate(divide="ignore"):
        assert np.all(fr.categorical(K, np.log(np.array([0.0, 1.0, 0.0])), shape=(100,)) == 1)


# ---- derivatives ---------------------------------------------------------------------

def test_grad_through_uniform_bounds():
    u = fr.uniform(K, (5,))
    g = funcgrad.grad(lambda m: fnp.sum(fr.uniform(K, (5,), minval=0.0, maxval=m)))(3.0)
    np.testing.assert_allclose(g, u.sum(), rtol=1e-6)
    gmin, gmax = funcgrad.grad(
        lambda lo, hi: fnp.sum(fr.uniform(K, (5,), minval=lo, maxval=hi) ** 2),
        argnums=(0, 1))(np.float32(-1.0), np.float32(2.0))
    x = -1 + 3 * u
    np.testing.assert_allclose(gmin, np.sum(2 * x * (1 - u)), rtol=1e-5)
    np.testing.assert_allclose(gmax, np.sum(2 * x * u), rtol=1e-5)
    check_grads(lambda lo, hi: fr.uniform(K, (4,), np.float64, minval=lo, maxval=hi) ** 2,
                (np.array([-1.0, 0.0, 1.0, 2.0]), 3.5), order=2)


def test_grad_through_gathers_and_parameters():
    x = np.arange(6.0)
    g = funcgrad.grad(lambda x: fnp.sum(fr.permutation(K, x) * np.arange(6.0)))(x)
    perm = fr.permutation(K, 6)
    expected = np.zeros(6)
    expected[perm] = np.arange(6.0)
    np.testing.assert_allclose(g, expected)
    gc = funcgrad.grad(lambda a: fnp.sum(fr.choice(K, a, (20,))))(x)
    np.testing.assert_allclose(gc, np.bincount(fr.choice(K, 6, (20,)), minlength=6))
    gi = funcgrad.grad(lambda a: fnp.sum(fr.permutation(K, a.reshape(2, 3), 1, True)))(x)
    np.testing.assert_allclose(gi, np.ones(6))
    # Sampling with traced probabilities/logits works (the draws themselves carry no
    # derivative), so it can sit inside a differentiated function.
    def f(logits):
        c = fr.categorical(K, logits, shape=(8,))
        b = fr.bernoulli(K, fnp.exp(logits[0]) / 4, (8,))
        return fnp.sum(logits[c]) + fnp.sum(fnp.where(b, logits[1], 0.0))
    gl = funcgrad.grad(f)(np.array([0.1, 0.2, 0.3]))
    assert gl.shape == (3,) and np.all(np.isfinite(gl))
    check_grads(lambda a: fr.choice(K, a, (3,), p=np.array([0.2, 0.3, 0.5]), replace=False),
                (np.array([1.0, 2.0, 3.0]),), order=1)


def test_samples_do_not_differentiate_through_the_key():
    # Keys are integers: gradients are asked only of float parameters.
    val, g = funcgrad.value_and_grad(lambda s: s * fnp.sum(fr.normal(K, (3,))))(2.0)
    np.testing.assert_allclose(g, np.sum(fr.normal(K, (3,))), rtol=1e-6)


# ---- vmap and jit --------------------------------------------------------------------

def _loop(f, *args):
    return np.stack([f(*[a[i] for a in args]) for i in range(len(args[0]))])


VMAPPED = {
    "normal": lambda k: fr.normal(k, (3,)),
    "normal_odd_f64": lambda k: fr.normal(k, (5,), np.float64),
    "uniform": lambda k: fr.uniform(k, (2, 3), minval=-1.0, maxval=2.0),
    "bits": lambda k: fr.bits(k, (5,)),
    "bits64": lambda k: fr.bits(k, (5,), np.uint64),
    "split": lambda k: fr.split(k, 3),
    "fold_in": lambda k: fr.fold_in(k, 7),
    "randint": lambda k: fr.randint(k, (6,), 0, 10),
    "truncated_normal": lambda k: fr.truncated_normal(k, -1.0, 1.0, (3,)),
    "bernoulli": lambda k: fr.bernoulli(k, 0.3, (5,)),
    "gumbel": lambda k: fr.gumbel(k, (3,)),
    "permutation": lambda k: fr.permutation(k, 6),
    "shuffle_rows": lambda k: fr.permutation(k, np.arange(6.0).reshape(2, 3), 1, True),
    "choice": lambda k: fr.choice(k, 5, (3,), replace=False),
    "categorical": lambda k: fr.categorical(k, np.zeros((2, 3))),
}


# Gathering with a batched index array (shuffle_rows) uses vmap's loop for `getitem`.
@pytest.mark.filterwarnings("ignore:vmap. primitive 'getitem'")
@pytest.mark.parametrize("name", sorted(VMAPPED))
def test_vmap_over_keys_and_jit_match_eager(name):
    f = VMAPPED[name]
    keys = fr.split(K, 4)
    out = funcgrad.vmap(f)(keys)
    expected = _loop(f, keys)
    assert out.dtype == expected.dtype
    np.testing.assert_array_equal(out, expected)
    jf = funcgrad.jit(f)
    for k in keys[:2]:                       # replayed with a new key, not constant-folded
        np.testing.assert_array_equal(jf(k), f(k))


def test_vmap_batches_keys_without_loop_fallback():
    from funcgrad._src import batching
    keys = fr.split(K, 3)
    before = set(batching.fallback_primitives())
    for name in ("normal", "uniform", "bits64", "split", "fold_in", "randint",
                 "truncated_normal", "permutation", "shuffle_rows"):
        funcgrad.vmap(VMAPPED[name])(keys)
    assert not {n for n in set(batching.fallback_primitives()) - before
                if n.startswith("random")}


def test_vmap_over_seeds_data_and_bounds():
    seeds = np.array([0, 1, -1, 2 ** 40], np.int64)
    np.testing.assert_array_equal(funcgrad.vmap(fr.key)(seeds), _loop(fr.key, seeds))
    d = np.arange(4, dtype=np.int32)
    keys = fr.split(K, 4)
    np.testing.assert_array_equal(funcgrad.vmap(lambda x: fr.fold_in(K, x))(d),
                                  _loop(lambda x: fr.fold_in(K, x), d))
    np.testing.assert_array_equal(funcgrad.vmap(fr.fold_in)(keys, d), _loop(fr.fold_in, keys, d))
    hi = np.array([2, 5, 100, 1000])
    f = lambda k, h: fr.randint(k, (3,), 0, h)            # noqa: E731
    np.testing.assert_array_equal(funcgrad.vmap(f)(keys, hi), _loop(f, keys, hi))
    g = lambda h: fr.randint(K, (3,), 0, h)               # noqa: E731
    np.testing.assert_array_equal(funcgrad.vmap(g)(hi), _loop(g, hi))
    lo = np.array([[-1.0, 0.0, 1.0]] * 4)
    t = lambda k, l: fr.truncated_normal(k, l, 5.0, (2, 3))  # noqa: E731,E741
    np.testing.assert_array_equal(funcgrad.vmap(t)(keys, lo), _loop(t, keys, lo))
    # Nested: a (3, 4) grid of keys, and keys x bounds.
    grid = fr.split(K, (3, 4))
    n = lambda k: fr.normal(k, (2,))                      # noqa: E731
    np.testing.assert_array_equal(funcgrad.vmap(funcgrad.vmap(n))(grid),
                                  np.stack([_loop(n, grid[i]) for i in range(3)]))
    both = funcgrad.vmap(funcgrad.vmap(f, in_axes=(0, None)), in_axes=(None, 0))(keys, hi)
    np.testing.assert_array_equal(both, np.stack([_loop(lambda k: f(k, h), keys) for h in hi]))


@pytest.mark.filterwarnings("ignore:vmap. primitive")
def test_vmap_loop_fallback_primitives_are_correct():
    keys = fr.split(K, 3)
    for f in (lambda k: fr.choice(k, 5, (3,), p=np.array([0.1, 0.2, 0.3, 0.2, 0.2])),
              lambda k: fr.gamma(k, 2.0, (3,)), lambda k: fr.beta(k, 2.0, 3.0, (3,))):
        np.testing.assert_array_equal(funcgrad.vmap(f)(keys), _loop(f, keys))
    a = np.array([0.5, 1.0, 2.0])
    np.testing.assert_array_equal(funcgrad.vmap(lambda a: fr.gamma(K, a, (3,)))(a),
                                  _loop(lambda a: fr.gamma(K, a, (3,)), a))


def test_per_example_noise_under_vmap_of_grad_and_jit_of_grad():
    keys = fr.split(K, 4)
    loss = lambda w, k: fnp.sum(w * fr.bernoulli(k, 0.5, (3,)))    # noqa: E731
    g = funcgrad.vmap(funcgrad.grad(loss), in_axes=(None, 0))(np.ones(3), keys)
    np.testing.assert_array_equal(g, _loop(lambda k: fr.bernoulli(k, 0.5, (3,)), keys))
    gm = funcgrad.jit(funcgrad.grad(
        lambda m, k: fnp.sum(fr.uniform(k, (4,), maxval=m))))(np.float32(2.0), K)
    np.testing.assert_allclose(gm, fr.uniform(K, (4,)).sum(), rtol=1e-6)


# ---- errors --------------------------------------------------------------------------

@pytest.mark.parametrize("bad,exc,match", [
    ([0, 0], FuncgradTypeError, "expected a PRNG key"),
    (0, FuncgradTypeError, "expected a PRNG key"),
    (np.zeros(2, np.float32), FuncgradTypeError, "uint32"),
    (np.zeros(2, np.int64), FuncgradTypeError, "uint32"),
    (np.zeros(3, np.uint32), FuncgradValueError, "shape \\(2,\\)"),
    (np.zeros((4, 2), np.uint32), FuncgradValueError, "batch of keys"),
])
def test_bad_keys(bad, exc, match):
    for f in (lambda k: fr.uniform(k, (2,)), lambda k: fr.normal(k), lambda k: fr.split(k),
              lambda k: fr.fold_in(k, 1), lambda k: fr.randint(k, (2,), 0, 3),
              lambda k: fr.permutation(k, 3), lambda k: fr.choice(k, 3),
              lambda k: fr.categorical(k, np.zeros(3))):
        with pytest.raises(exc, match=match):
            f(bad)


def test_bad_seeds_and_data():
    with pytest.raises(FuncgradTypeError, match="integer"):
        fr.key(1.5)
    with pytest.raises(FuncgradTypeError, match="integer"):
        fr.key(True)
    with pytest.raises(FuncgradTypeError, match="scalar"):
        fr.key(np.array([1, 2]))
    with pytest.raises(FuncgradValueError, match="outside"):
        fr.key(2 ** 64)
    with pytest.raises(FuncgradTypeError, match="integer"):
        fr.fold_in(K, 1.0)
    with pytest.raises(FuncgradValueError, match="outside"):
        fr.fold_in(K, 2 ** 32)
    with pytest.raises(FuncgradTypeError, match="scalar"):
        fr.fold_in(K, np.array([1, 2]))


def test_bad_shapes_dtypes_and_arguments():
    with pytest.raises(FuncgradValueError, match="negative"):
        fr.uniform(K, (-1, 2))
    with pytest.raises(FuncgradTypeError, match="tuple of non-negative ints"):
        fr.normal(K, (2.5,))
    with pytest.raises(FuncgradTypeError, match="float32 or float64"):
        fr.uniform(K, (2,), np.int32)
    with pytest.raises(FuncgradTypeError, match="float32 or float64"):
        fr.normal(K, (2,), np.float16)
    with pytest.raises(FuncgradTypeError, match="integer dtype"):
        fr.randint(K, (2,), 0, 3, np.float32)
    with pytest.raises(FuncgradTypeError, match="minval must be an integer"):
        fr.randint(K, (2,), 0.5, 3)
    with pytest.raises(FuncgradValueError, match="does not broadcast"):
        fr.uniform(K, (3,), minval=np.zeros(4))
    with pytest.raises(FuncgradValueError, match="does not broadcast"):
        fr.randint(K, (3,), np.zeros((2, 3), int), 5)
    with pytest.raises(FuncgradValueError, match="do not broadcast"):
        fr.truncated_normal(K, np.zeros(2), np.ones(3))
    with pytest.raises(FuncgradValueError, match="without replacement"):
        fr.choice(K, 3, (4,), replace=False)
    with pytest.raises(FuncgradValueError, match="p must have shape"):
        fr.choice(K, 3, (2,), p=np.ones(4) / 4)
    with pytest.raises(FuncgradValueError, match="empty population"):
        fr.choice(K, 0, (2,))
    with pytest.raises(FuncgradValueError, match="0-d"):
        fr.permutation(K, np.float64(3.0))
    with pytest.raises(FuncgradValueError, match="out of bounds"):
        fr.permutation(K, np.zeros((2, 3)), axis=2)
    with pytest.raises(FuncgradValueError, match="batch shape"):
        fr.categorical(K, np.zeros((3, 4)), shape=(2,))
    with pytest.raises(FuncgradValueError, match="at least one dimension"):
        fr.categorical(K, np.float32(1.0))
    with pytest.raises(FuncgradTypeError, match="uint32 or uint64"):
        fr.bits(K, (2,), np.int32)
    with pytest.raises(ValueError, match="at most 2\\*\\*32"):
        rb.hash_counts(K, 2 ** 32)


# ---- GPU -----------------------------------------------------------------------------

@pytest.mark.gpu
def test_cupy_matches_numpy():
    cupy = pytest.importorskip("cupy")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no CUDA device")
    except Exception:                                   # noqa: BLE001 - no driver
        pytest.skip("no CUDA device")
    kg = cupy.asarray(K)
    np.testing.assert_array_equal(fr.split(kg, 3).get(), fr.split(K, 3))
    np.testing.assert_array_equal(fr.fold_in(kg, 9).get(), fr.fold_in(K, 9))
    for shape in [(7,), (3, 4)]:
        np.testing.assert_array_equal(fr.bits(kg, shape).get(), fr.bits(K, shape))
        np.testing.assert_array_equal(fr.bits(kg, shape, np.uint64).get(),
                                      fr.bits(K, shape, np.uint64))
        np.testing.assert_array_equal(fr.uniform(kg, shape).get(), fr.uniform(K, shape))
        np.testing.assert_allclose(fr.normal(kg, shape).get(), fr.normal(K, shape),
                                   rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(fr.randint(kg, (9,), 0, 7).get(), fr.randint(K, (9,), 0, 7))
    np.testing.assert_array_equal(fr.permutation(kg, 50).get(), fr.permutation(K, 50))
