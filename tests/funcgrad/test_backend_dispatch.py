"""funcgrad on a foreign array module, without a GPU.

``StandInArray`` (funcgrad/_src/testing_backend.py) wraps a NumPy array but is treated by
funcgrad as a foreign (CuPy-like) array: NumPy calls on it return stand-ins, and its
``__array__`` raises, so any place in funcgrad that converts an input with
``np.asarray`` or creates an array with ``np.zeros``/``np.eye``/... and mixes it with the
input fails these tests. Each transformation's result on stand-ins must be stand-ins equal
to the NumPy result.
"""
import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp
from funcgrad._src.backend import array_module
from funcgrad._src.testing_backend import StandInArray, standin_xp
from funcgrad.tree_util import tree_flatten, tree_map

RNG = np.random.default_rng(0)
X = RNG.normal(size=3)
XB = RNG.normal(size=(2, 3))
A = RNG.normal(size=(3, 3)) * 0.3 + 2.0 * np.eye(3)
SPD = A @ A.T + np.eye(3)


def _to_standin(tree):
    return tree_map(lambda a: StandInArray(a) if isinstance(a, np.ndarray) else a, tree)


# ---- functions of (x: (3,), m: (3, 3) constant), each a scalar ----------------------------
def f_elementwise(x, m):
    return fnp.sum(fnp.sin(x) * fnp.exp(x) + fnp.tanh(x) ** 2 - 0.5 * fnp.abs(x))


def f_reductions(x, m):
    return fnp.mean(x) + fnp.max(x) * fnp.min(x) + fnp.var(x) + fnp.prod(x)


def f_matmul(x, m):
    return fnp.sum(fnp.tanh(m @ x)) + x @ (m @ x)


def f_einsum(x, m):
    return fnp.einsum("ij,j,i->", m, x, x) + fnp.einsum("i,i->", x, x) * fnp.einsum("ii->", m)


def f_indexing(x, m):
    return x[1] * x[0] + fnp.sum(x[::2] ** 2) + fnp.sum(x[np.array([0, 0, 2])] * x[1])


def f_at_updates(x, m):
    y = x.at[1].set(x[0] * 2.0)                    # x is a tracer under every transform
    z = fnp.at(x)[np.array([0, 0])].add(x[2])
    w = fnp.at(x)[np.array([2, 2])].set(x[1])       # repeated indices in a set
    return fnp.sum(y * x) + fnp.sum(z ** 2) + fnp.sum(w * x)


def f_concat_stack(x, m):
    c = fnp.concatenate([x, x ** 2])
    s = fnp.stack([x, fnp.sin(x)])
    return fnp.sum(c ** 2) + fnp.sum(s[1] * s[0])


def f_where(x, m):
    return fnp.sum(fnp.where(x > 0, x ** 2, -x)) + fnp.sum(fnp.maximum(x, 0.1) * fnp.clip(x, -1, 1))


def f_solve(x, m):
    return fnp.sum(fnp.linalg.solve(m, x) * x)


def f_linalg(x, m):
    b = m + fnp.outer(x, x)
    spd = b @ b.T
    return (fnp.linalg.slogdet(b)[1] + fnp.sum(fnp.linalg.inv(b)) + fnp.sum(fnp.linalg.cholesky(spd))
            + fnp.sum(fnp.linalg.eigh(spd)[0] ** 2) + fnp.linalg.norm(x))


def f_structure(x, m):
    return (fnp.sum(fnp.tril(m * x) ** 2) + fnp.sum(fnp.diag(x) * m) + fnp.sum(fnp.pad(x, 1) ** 2)
            + fnp.sort(x)[0] + fnp.sum(fnp.cumsum(x) ** 2) + fnp.trace(m * x))


def f_fft(x, m):
    return fnp.sum(fnp.abs(fnp.fft.fft(x)) ** 2)


FUNCS = [f_elementwise, f_reductions, f_matmul, f_einsum, f_indexing, f_at_updates,
         f_concat_stack, f_where, f_solve, f_linalg, f_structure, f_fft]


def _tx_grad(f, x, m):
    return funcgrad.grad(f)(x, m)


def _tx_value_and_grad(f, x, m):
    return funcgrad.value_and_grad(f)(x, m)


def _tx_jvp(f, x, m):
    t = x * 0.5 + 1.0                       # a tangent of x's module
    return funcgrad.jvp(lambda v: f(v, m), (x,), (t,))


def _tx_vjp(f, x, m):
    out, pull = funcgrad.vjp(lambda v: f(v, m), x)
    return out, pull(out * 0.0 + 2.0)        # a cotangent of out's module


def _tx_vmap_grad(f, x, m):
    xb = x[None] * fnp.asarray([[1.0], [0.5]]) if isinstance(x, np.ndarray) else \
        x[None] * standin_xp.asarray([[1.0], [0.5]])
    return funcgrad.vmap(funcgrad.grad(f), in_axes=(0, None))(xb, m)


def _tx_jit(f, x, m):
    g = funcgrad.jit(funcgrad.value_and_grad(f))
    first = g(x, m)
    return first, g(x * 1.5, m)              # the second call replays the compiled graph


def _tx_hessian(f, x, m):
    return funcgrad.hessian(f)(x, m)


TRANSFORMS = [_tx_grad, _tx_value_and_grad, _tx_jvp, _tx_vjp, _tx_vmap_grad, _tx_jit,
              _tx_hessian]


def _check_same(ours, ref):
    o_leaves, o_tree = tree_flatten(ours)
    r_leaves, r_tree = tree_flatten(ref)
    assert o_tree == r_tree
    for o, r in zip(o_leaves, r_leaves):
        assert isinstance(o, StandInArray), f"got {type(o).__name__}, not a stand-in"
        assert o.dtype == np.asarray(r).dtype and o.shape == np.shape(r)
        np.testing.assert_allclose(o.get(), r, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("tx", TRANSFORMS, ids=lambda t: t.__name__[4:])
@pytest.mark.parametrize("f", FUNCS, ids=lambda f: f.__name__[2:])
def test_transform_on_standin_matches_numpy(f, tx):
    m = SPD if f is f_solve else A
    ref = tx(f, X, m)
    ours = tx(f, StandInArray(X), StandInArray(m))
    _check_same(ours, ref)


def test_float32_stays_float32_on_standin():
    x32, m32 = X.astype(np.float32), A.astype(np.float32)
    g = funcgrad.grad(f_matmul)(StandInArray(x32), StandInArray(m32))
    assert isinstance(g, StandInArray) and g.dtype == np.float32
    np.testing.assert_allclose(g.get(), funcgrad.grad(f_matmul)(x32, m32), rtol=1e-5)


def test_jacobians_and_vmap_of_vector_functions():
    s, sm = StandInArray(X), StandInArray(A)
    for jac in (funcgrad.jacfwd, funcgrad.jacrev):
        _check_same(jac(lambda v: fnp.tanh(sm @ v))(s), jac(lambda v: fnp.tanh(A @ v))(X))
    _check_same(funcgrad.vmap(lambda v: fnp.sin(v) @ sm)(StandInArray(XB)),
                funcgrad.vmap(lambda v: fnp.sin(v) @ A)(XB))


def test_conv_and_pooling_on_standin():
    x = RNG.normal(size=(1, 2, 5))
    w = RNG.normal(size=(3, 2, 2))

    def f(x, w):
        y = funcgrad.lax.conv_general_dilated(x, w, (1,), "SAME")
        return (fnp.sum(funcgrad.lax.max_pool(y, (2,)) ** 2)
                + fnp.sum(funcgrad.lax.max_pool(y, (3,), (2,), "SAME") ** 2)      # padded
                + fnp.sum(funcgrad.lax.avg_pool(y, (2,), (1,), "SAME") ** 2))
    g = funcgrad.grad(f, argnums=(0, 1))
    _check_same(g(StandInArray(x), StandInArray(w)), g(x, w))


def test_eager_creation_follows_the_input_module():
    s = StandInArray(X)
    for r in (fnp.zeros_like(s), fnp.ones_like(s), fnp.full_like(s, 2.0), fnp.sin(s),
              fnp.sum(s), s[np.array([0, 2])]):
        assert isinstance(r, StandInArray)
    assert isinstance(fnp.zeros(3), np.ndarray)      # no input: NumPy


def test_array_module_dispatch_and_mixing_error():
    s = StandInArray(X)
    assert array_module(X) is np
    assert array_module(1.0, X) is np
    assert array_module(s) is standin_xp
    # NumPy scalars and 0-d arrays are scalars: they mix with any module.
    assert array_module(s, np.float64(2.0), np.zeros(()), 3) is standin_xp
    for args in ((s, X), (X, s), (X, 1.0, s)):
        with pytest.raises(TypeError, match="cannot mix a NumPy array .* standin_xp"):
            array_module(*args)


def test_standin_never_converts_implicitly():
    s = StandInArray(X)
    for convert in (np.asarray, np.array, np.ascontiguousarray):
        with pytest.raises(TypeError, match="implicit conversion"):
            convert(s)
    out = funcgrad.device_put(s, "cpu")              # the explicit way, like CuPy's .get()
    assert type(out) is np.ndarray and np.array_equal(out, X)


def test_known_unsupported_mixing_numpy_constants():
    """A NumPy constant of one or more dimensions closed over by a function of a foreign
    array cannot be combined with it (CuPy refuses too): a TypeError, never a silent
    host round trip. The fix is to create constants with the input's module."""
    s = StandInArray(X)
    with pytest.raises(TypeError, match="NumPy array of shape \\(3,\\)"):
        funcgrad.grad(lambda v: fnp.sum(v * fnp.arange(3.0)))(s)
    with pytest.raises(TypeError, match="NumPy array of shape \\(3,\\)"):
        fnp.add(s, X)
    g = funcgrad.grad(lambda v: fnp.sum(v * standin_xp.arange(3.0)))(s)
    assert isinstance(g, StandInArray)


def test_known_unsupported_float0_gradients_are_numpy():
    """Gradients of integer inputs (allow_int=True) have dtype float0, which only NumPy
    has (CuPy has no void dtypes): they are NumPy arrays whatever the input's module."""
    g = funcgrad.grad(lambda v, y: fnp.sum(y), argnums=(0, 1), allow_int=True)(
        StandInArray(np.arange(3)), StandInArray(X))
    assert type(g[0]) is np.ndarray and g[0].dtype == funcgrad.float0
    assert isinstance(g[1], StandInArray)


def test_training_step_makes_no_host_transfers_but_the_loss_readout(monkeypatch):
    """On a foreign (device) array module a whole value_and_grad + SGD step stays on the
    device: the only copy to the host is the one the user asks for."""
    from funcgrad._src.testing_backend import StandInArray
    transfers = []
    real_get = StandInArray.get

    def counting_get(self):
        transfers.append(self.shape)
        return real_get(self)
    monkeypatch.setattr(StandInArray, "get", counting_get)
    rng = np.random.default_rng(0)
    params = [(StandInArray(rng.normal(size=(4, 8)).astype(np.float32)),
               StandInArray(np.zeros(8, np.float32))),
              (StandInArray(rng.normal(size=(8, 3)).astype(np.float32)),
               StandInArray(np.zeros(3, np.float32)))]
    x = StandInArray(rng.normal(size=(16, 4)).astype(np.float32))
    onehot = StandInArray(np.eye(3, dtype=np.float32)[rng.integers(0, 3, 16)])

    def loss_fn(params):
        h = x
        for i, (w, b) in enumerate(params):
            h = h @ w + b
            if i == 0:
                h = fnp.maximum(h, 0.0)
        logp = h - fnp.log(fnp.sum(fnp.exp(h - fnp.max(h, axis=1, keepdims=True)), axis=1,
                                   keepdims=True)) - fnp.max(h, axis=1, keepdims=True)
        return -fnp.mean(fnp.sum(logp * onehot, axis=1))

    @funcgrad.jit
    def step(params):
        loss, grads = funcgrad.value_and_grad(loss_fn)(params)
        return [(w - 0.1 * gw, b - 0.1 * gb) for (w, b), (gw, gb) in zip(params, grads)], loss

    losses = []
    for _ in range(3):                       # trace, then two replays
        params, loss = step(params)
        assert isinstance(loss, StandInArray) and isinstance(params[0][0], StandInArray)
        assert transfers == []                # nothing left the device during the step
        losses.append(float(loss.get()))      # the one readout
        assert len(transfers) == 1
        transfers.clear()
    assert losses[2] < losses[0]


def test_random_bits_on_the_stand_in_equal_numpy_bits():
    import funcgrad.random as fr
    from funcgrad._src.testing_backend import StandInArray
    key = fr.key(1)
    np.testing.assert_array_equal(fr.bits(StandInArray(key), (6,)).get(), fr.bits(key, (6,)))
    assert isinstance(funcgrad.numpy.asarray(StandInArray(np.zeros(3))), StandInArray)
