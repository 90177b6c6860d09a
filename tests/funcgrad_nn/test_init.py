"""funcgrad_nn.init: PyTorch's fans and gains, the distributions' ranges and spreads,
dtypes, and reproducibility per key."""
import math

import numpy as np
import pytest

import funcgrad.random as fr
from funcgrad.errors import FuncgradValueError
from funcgrad_nn import init

try:
    import torch
except ImportError:  # pragma: no cover - torch is optional
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

SHAPES = [(3, 4), (16, 3, 5, 5), (8, 2, 3), (7, 1)]


@needs_torch
@pytest.mark.parametrize("shape", SHAPES)
def test_fans_match_torch(shape):
    expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert init.fan_in_and_fan_out(shape) == tuple(expected)


@needs_torch
@pytest.mark.parametrize("nl,param", [("linear", None), ("conv2d", None), ("sigmoid", None),
                                      ("tanh", None), ("relu", None), ("leaky_relu", None),
                                      ("leaky_relu", 0.2), ("leaky_relu", math.sqrt(5)),
                                      ("selu", None)])
def test_gains_match_torch(nl, param):
    assert init.calculate_gain(nl, param) == pytest.approx(torch.nn.init.calculate_gain(nl, param))


def test_fans_without_torch():
    assert init.fan_in_and_fan_out((16, 3, 5, 5)) == (75, 400)
    with pytest.raises(FuncgradValueError, match="at least 2 dimensions"):
        init.fan_in_and_fan_out((5,))
    with pytest.raises(FuncgradValueError, match="unsupported nonlinearity"):
        init.calculate_gain("swish")


KEY = fr.key(42)
BIG = (300, 200)      # fan_in 200, fan_out 300


@pytest.mark.parametrize("name,kw,bound,std", [
    ("uniform", dict(a=-2.0, b=3.0), (-2.0, 3.0), 5 / math.sqrt(12)),
    ("normal", dict(mean=1.0, std=0.5), None, 0.5),
    ("xavier_uniform", dict(gain=2.0), (-2 * math.sqrt(6 / 500), 2 * math.sqrt(6 / 500)),
     2 * math.sqrt(2 / 500)),
    ("xavier_normal", {}, None, math.sqrt(2 / 500)),
    ("kaiming_uniform", dict(a=math.sqrt(5)), (-1 / math.sqrt(200), 1 / math.sqrt(200)),
     1 / math.sqrt(600)),
    ("kaiming_uniform", dict(mode="fan_out", nonlinearity="relu"),
     (-math.sqrt(6 / 300), math.sqrt(6 / 300)), math.sqrt(2 / 300)),
    ("kaiming_normal", dict(nonlinearity="relu"), None, math.sqrt(2 / 200)),
    ("kaiming_normal", dict(mode="fan_out", a=0.1), None,
     math.sqrt(2 / 1.01) / math.sqrt(300)),
])
def test_distributions_have_pytorch_ranges_and_spreads(name, kw, bound, std):
    w = getattr(init, name)(KEY, BIG, **kw)
    assert w.shape == BIG and w.dtype == np.float32
    if bound is not None:
        lo, hi = bound
        assert w.min() >= lo - 1e-6 and w.max() <= hi + 1e-6
        assert w.min() < lo + 0.02 * (hi - lo) and w.max() > hi - 0.02 * (hi - lo)
    assert abs(w.std() / std - 1) < 0.03
    np.testing.assert_array_equal(w, getattr(init, name)(KEY, BIG, **kw))
    assert not np.array_equal(w, getattr(init, name)(fr.key(43), BIG, **kw))


def test_trunc_normal_respects_absolute_bounds():
    w = init.trunc_normal(KEY, (100, 100), mean=1.0, std=2.0, a=-1.0, b=2.0, dtype=np.float64)
    assert w.dtype == np.float64
    assert w.min() >= -1.0 and w.max() <= 2.0
    assert w.min() < -0.98 and w.max() > 1.98
    # the mean of N(1, 4) truncated to [-1, 2] (closed form)
    from math import erf, exp, pi, sqrt
    alpha, beta = -1.0, 0.5
    phi = lambda z: exp(-z * z / 2) / sqrt(2 * pi)
    Phi = lambda z: 0.5 * (1 + erf(z / sqrt(2)))
    mean = 1.0 + 2.0 * (phi(alpha) - phi(beta)) / (Phi(beta) - Phi(alpha))
    assert abs(w.mean() - mean) < 0.02
    with pytest.raises(FuncgradValueError, match="a < b"):
        init.trunc_normal(KEY, (3,), a=1.0, b=0.0)


@pytest.mark.parametrize("shape", [(5, 7), (7, 5), (6, 2, 2)])
def test_orthogonal(shape):
    w = init.orthogonal(KEY, shape, gain=2.0, dtype=np.float64)
    assert w.shape == shape
    m = w.reshape(shape[0], -1)
    small = min(m.shape)
    gram = m @ m.T if m.shape[0] == small else m.T @ m
    np.testing.assert_allclose(gram, 4.0 * np.eye(small), atol=1e-12)
    assert init.orthogonal(KEY, shape).dtype == np.float32
    with pytest.raises(FuncgradValueError, match="at least 2 dimensions"):
        init.orthogonal(KEY, (4,))


def test_constants_and_errors():
    np.testing.assert_array_equal(init.zeros(None, (2, 3)), np.zeros((2, 3), np.float32))
    np.testing.assert_array_equal(init.ones(KEY, 3), np.ones(3, np.float32))
    c = init.constant(KEY, (2,), 0.25, dtype=np.float64)
    assert c.dtype == np.float64 and c.tolist() == [0.25, 0.25]
    assert init.kaiming_uniform(KEY, (4, 3), dtype=np.float64).dtype == np.float64
    with pytest.raises(FuncgradValueError, match="needs a random key"):
        init.normal(None, (2,))
    with pytest.raises(FuncgradValueError, match="mode must be"):
        init.kaiming_uniform(KEY, (3, 4), mode="fan_avg")
    with pytest.raises(FuncgradValueError, match="at least 2 dimensions"):
        init.xavier_uniform(KEY, (3,))
