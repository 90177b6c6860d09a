"""funcgrad_nn's training path on a foreign (CuPy-like) array module, without a GPU.

``StandInArray`` (funcgrad/_src/testing_backend.py) behaves like a CuPy array: its
``__array__`` raises and it refuses to mix with NumPy arrays of one or more dimensions.
Parameters, optimizer state, data, targets and random keys are moved to it; a jitted
Adam step must then keep everything on the stand-in, give the NumPy results, and never
copy to the host (``StandInArray.get`` is counted) but for the explicit loss readout.
"""
import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp
import funcgrad.random as fr
import funcgrad_nn as nn
import funcgrad_nn.functional as F
from funcgrad.errors import FuncgradValueError
from funcgrad.tree_util import tree_leaves, tree_leaves_with_path, tree_map
from funcgrad_nn import optim
from funcgrad._src.testing_backend import StandInArray

RNG = np.random.default_rng(0)
X = RNG.normal(size=(6, 1, 6, 6)).astype(np.float32)
Y = RNG.integers(0, 3, size=6)                      # int64 class targets


def _to_standin(tree):
    return tree_map(lambda a: StandInArray(a) if isinstance(a, np.ndarray) else a, tree)


@pytest.fixture
def gets(monkeypatch):
    """Counts host copies (``StandInArray.get``)."""
    calls = []
    real_get = StandInArray.get

    def counting_get(self):
        calls.append(self.shape)
        return real_get(self)
    monkeypatch.setattr(StandInArray, "get", counting_get)
    return calls


def _all_standin(tree):
    leaves = tree_leaves(tree)
    return bool(leaves) and all(isinstance(a, StandInArray) for a in leaves)


def _host(tree):
    return tree_map(lambda a: a.data if isinstance(a, StandInArray) else a, tree)


def _cnn():
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(27, 3))


def _bn_dropout_net():
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.25), nn.Linear(27, 3))


def _train_cnn(model, params, x, y, steps, after_step):
    tx = optim.adam(0.05)
    opt_state = tx.init(params)

    @funcgrad.jit
    def step(params, opt_state, x, y):
        loss, grads = funcgrad.value_and_grad(
            lambda p: F.cross_entropy(model(p, x), y))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, loss

    losses = []
    for _ in range(steps):
        params, opt_state, loss = step(params, opt_state, x, y)
        losses.append(after_step(params, opt_state, loss))
    return params, opt_state, losses


def test_cnn_adam_step_stays_on_device_and_matches_numpy(gets):
    model = _cnn()
    p0 = model.init(fr.key(0))

    ref_params, ref_state, ref_losses = _train_cnn(
        model, p0, X, Y, 4, lambda p, s, loss: float(loss))

    def check(params, opt_state, loss):
        assert _all_standin(params) and _all_standin(opt_state)
        assert isinstance(loss, StandInArray) and loss.dtype == np.float32
        assert gets == []                    # nothing left the device during the step
        value = float(loss.get())            # the one readout
        assert len(gets) == 1
        gets.clear()
        return value

    params, opt_state, losses = _train_cnn(model, _to_standin(p0), _to_standin(X),
                                           _to_standin(Y), 4, check)
    assert losses[-1] < losses[0]
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
    for a, b in zip(tree_leaves(_host(params)), tree_leaves(ref_params)):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    for a, b in zip(tree_leaves(_host(opt_state)), tree_leaves(ref_state)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-8)


def _train_bn(model, params, state, x, y, key, steps, after_step):
    tx = optim.adam(0.05)
    opt_state = tx.init(params)

    def loss_fn(params, state, key):
        out, state = model.apply(params, state, x, train=True, key=key)
        return F.cross_entropy(out, y), state

    @funcgrad.jit
    def step(params, state, opt_state, key):
        key, sub = fr.split(key)
        (loss, state), grads = funcgrad.value_and_grad(loss_fn, has_aux=True)(
            params, state, sub)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), state, opt_state, key, loss

    losses = []
    for _ in range(steps):
        params, state, opt_state, key, loss = step(params, state, opt_state, key)
        losses.append(after_step((params, state, opt_state, key), loss))
    return params, state, losses


def test_batchnorm_dropout_apply_step_stays_on_device_and_matches_numpy(gets):
    model = _bn_dropout_net()
    p0, s0, k0 = model.init(fr.key(1)), model.init_state(), fr.key(2)
    ref_params, ref_state, ref_losses = _train_bn(model, p0, s0, X, Y, k0, 4,
                                                  lambda trees, loss: float(loss))

    def check(trees, loss):
        assert all(_all_standin(t) for t in trees)
        assert isinstance(loss, StandInArray)
        assert gets == []
        value = float(loss.get())
        assert len(gets) == 1
        gets.clear()
        return value

    params, state, losses = _train_bn(model, _to_standin(p0), _to_standin(s0),
                                      _to_standin(X), _to_standin(Y), _to_standin(k0), 4,
                                      check)
    assert losses[-1] < losses[0]
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
    # The convolution's bias feeds a BatchNorm, which subtracts it again: its gradient is
    # 0 up to rounding, and Adam scales that rounding up to steps of the learning rate,
    # so how each CPU rounds decides it. It and the running mean (which adds it in) are
    # only checked to stay within those steps; everything else is compared.
    bound = 0.05 * 4
    for (path, a), b in zip(tree_leaves_with_path(_host((params, state))),
                            tree_leaves((ref_params, ref_state))):
        assert a.dtype == b.dtype
        name = str(path)
        if "SequenceKey(idx=0), DictKey(key='bias')" in name or "running_mean" in name:
            assert np.all(np.abs(a - b) <= 2 * bound), name
        else:
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=name)
    assert int(state[1]["num_batches_tracked"].get()) == 4


def test_eager_step_without_jit_makes_no_host_copies(gets):
    model = _cnn()
    params = _to_standin(model.init(fr.key(0)))
    x, y = _to_standin(X), _to_standin(Y)
    tx = optim.sgd(0.1, momentum=0.9)
    opt_state = tx.init(params)
    loss, grads = funcgrad.value_and_grad(lambda p: F.cross_entropy(model(p, x), y))(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optim.apply_updates(params, updates)
    assert _all_standin((params, opt_state, loss)) and gets == []


def test_losses_and_helpers_on_standin_match_numpy(gets):
    logits = RNG.normal(size=(5, 4))
    t = np.array([0, 3, -100, 2, 1])
    w = np.array([1.0, 2.0, 0.5, 1.5])
    x = RNG.normal(size=(2, 3, 5, 7))
    q = RNG.normal(size=(2, 4, 3))
    cases = [
        lambda lg, t, w, x, q: F.cross_entropy(lg, t, weight=w, label_smoothing=0.1),
        lambda lg, t, w, x, q: F.nll_loss(F.log_softmax(lg, axis=1), t, reduction="none"),
        lambda lg, t, w, x, q: F.one_hot(t[t >= 0], 4),
        lambda lg, t, w, x, q: F.avg_pool2d(x, 3, 2, padding=1, count_include_pad=False),
        lambda lg, t, w, x, q: F.avg_pool2d(x, 2, ceil_mode=True),
        lambda lg, t, w, x, q: F.adaptive_avg_pool2d(x, (2, 3)),
        lambda lg, t, w, x, q: F.scaled_dot_product_attention(q, q, q, is_causal=True),
        lambda lg, t, w, x, q: F.layer_norm(x, (5, 7)),
        lambda lg, t, w, x, q: F.group_norm(x, 3),
    ]
    args = (logits, t, w, x, q)
    for f in cases:
        ref = f(*args)
        out = f(*_to_standin(args))
        assert isinstance(out, StandInArray)
        np.testing.assert_allclose(out.data, ref, rtol=1e-12, atol=1e-12)
    assert gets == []


def test_target_validation_on_standin_reads_back_only_on_error(gets):
    logits = _to_standin(RNG.normal(size=(3, 4)))
    F.cross_entropy(logits, _to_standin(np.array([0, 3, 1])))
    assert gets == []
    with pytest.raises(FuncgradValueError, match=r"class indices in \[0, 4\).*got \[7\]"):
        F.cross_entropy(logits, _to_standin(np.array([0, 7, 1])))
    with pytest.raises(FuncgradValueError, match=r"one_hot: class indices must be in \[0, 2\)"):
        F.one_hot(_to_standin(np.array([0, 3])), 2)


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                dict(kernel_size=(2, 3), dilation=2, ceil_mode=True)])
def test_max_pool_indices_and_padding_modes_stay_on_device(gets, kw):
    x = np.random.default_rng(0).normal(size=(2, 3, 7, 6))
    y, idx = F.max_pool2d(x, return_indices=True, **kw)
    ys, idxs = F.max_pool2d(_to_standin(x), return_indices=True, **kw)
    assert isinstance(idxs, StandInArray) and isinstance(ys, StandInArray)
    w = np.random.default_rng(1).normal(size=(4, 3, 3, 3))
    outs = {m: F.conv2d(_to_standin(x), _to_standin(w), padding=2, padding_mode=m)
            for m in ("reflect", "replicate", "circular")}
    assert gets == []                       # nothing came back to the host
    np.testing.assert_array_equal(idxs.get(), idx)
    np.testing.assert_array_equal(ys.get(), y)
    for m, o in outs.items():
        np.testing.assert_allclose(o.get(), F.conv2d(x, w, padding=2, padding_mode=m),
                                   rtol=1e-12)


def test_max_pool_indices_under_jit_and_vmap():
    x = np.random.default_rng(0).normal(size=(2, 3, 6, 6))
    ref = F.max_pool2d(x, 2, return_indices=True)[1]
    f = funcgrad.jit(lambda x: F.max_pool2d(x, 2, return_indices=True)[1])
    f(x)
    np.testing.assert_array_equal(f(x), ref)
    v = funcgrad.vmap(lambda x: F.max_pool2d(x, 2, return_indices=True)[1])(x[None])
    np.testing.assert_array_equal(v[0], ref)


def test_known_unsupported_on_standin():
    """What does not work on a foreign array module, and the error it raises."""
    x = _to_standin(X)
    # A NumPy key draws a NumPy mask, which cannot meet a device input: the key must be
    # moved with the data.
    with pytest.raises(TypeError, match="numpy.where was given a NumPy array of shape"):
        F.dropout(x, 0.5, key=fr.key(0))
    assert isinstance(F.dropout(x, 0.5, key=_to_standin(fr.key(0))), StandInArray)
