"""examples/mnist.py's CNN and training step against benchmarks/fashion_torch.py's, step by
step (issue 19: the two must train the same way).

Both scripts' own ``make_model`` are used, from the same initial weights, on the same
batches of a small synthetic data set drawn through funcgrad_nn's DataLoader, with Adam.
In float64 any difference of formula (fans, padding, kernel orientation, pooling, Flatten
order, the loss's reduction, Adam's bias corrections or eps) shows at the first step, and
rounding alone keeps the two within ~1e-15 for hundreds of steps; float32 is checked over the
first steps, before rounding differences are amplified (Adam divides by the gradient's
running magnitude, so tiny gradients amplify float32 rounding after some tens of steps).
"""
import importlib.util
import os
import sys

import numpy as np
import pytest

import funcgrad.random as fr
import funcgrad_nn as nn
from funcgrad_nn import optim

torch = pytest.importorskip("torch")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load(relpath, name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, relpath))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def scripts():
    # fashion_torch.py imports examples/mnist.py as "mnist"; put that folder on the path
    # for its import only.
    mnist = _load("examples/mnist.py", "example_mnist")
    old_path, old_mnist = list(sys.path), sys.modules.get("mnist")
    try:
        sys.modules["mnist"] = mnist
        bench = _load("benchmarks/fashion_torch.py", "bench_fashion_torch")
    finally:
        sys.path[:] = old_path
        if old_mnist is None:
            sys.modules.pop("mnist", None)
        else:
            sys.modules["mnist"] = old_mnist
    return mnist, bench


def _synthetic(n=40, seed=0):
    """Fashion-MNIST-like images: a constant background (so max-pooling meets ties, as on
    the real data) with a random bright rectangle, normalised by the example's table."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), np.uint8)
    for img in images:
        r, c = rng.integers(0, 18, 2)
        h, w = rng.integers(4, 11, 2)
        img[r:r + h, c:c + w] = rng.integers(1, 256, (h, w))
    labels = rng.integers(0, 10, n).astype(np.int64)
    x = ((images / 255.0 - 0.1307) / 0.3081).astype(np.float32)[:, None]
    return nn.data.ArrayDataset(x, labels)


def _trajectories(scripts, dtype, steps, batch_size=16):
    """Losses and final params of both scripts' models trained from the same weights on
    the same batches; the funcgrad step is mnist.py's own (``make_train_step``)."""
    mnist, bench = scripts
    torch.manual_seed(0)
    tm = bench.make_model().to(getattr(torch, np.dtype(dtype).name))
    model = mnist.make_model()
    params, _ = nn.from_torch_state_dict(model, tm.state_dict())
    tx = optim.adam(1e-3)
    opt_state = tx.init(params)
    opt = torch.optim.Adam(tm.parameters(), lr=1e-3)

    train_step = mnist.make_train_step(model, tx)
    loader = nn.data.DataLoader(_synthetic(), batch_size=batch_size, shuffle=True, seed=0)
    ours, theirs = [], []
    while len(ours) < steps:
        for x, y in loader:          # 16, 16, 8: the last, partial batch is trained on
            if len(ours) == steps:
                break
            x = x.astype(dtype)
            params, opt_state, loss = train_step(params, opt_state, x, y)
            opt.zero_grad()
            tloss = torch.nn.functional.cross_entropy(tm(torch.from_numpy(x)),
                                                      torch.from_numpy(y))
            tloss.backward()
            opt.step()
            ours.append(float(loss))
            theirs.append(tloss.item())
    return np.array(ours), np.array(theirs), params, tm


def _assert_params_close(params, tm, rtol):
    ref = {k: v.detach().numpy() for k, v in tm.state_dict().items()}
    got = nn.to_torch_state_dict(params)
    assert sorted(got) == sorted(ref)
    for k in ref:
        assert got[k].dtype == ref[k].dtype, k
        scale = np.abs(ref[k]).max()
        np.testing.assert_allclose(got[k], ref[k], rtol=0, atol=rtol * scale, err_msg=k)


def test_float64_training_matches_torch_step_for_step(scripts):
    ours, theirs, params, tm = _trajectories(scripts, np.float64, steps=12)
    assert ours[-1] < ours[0] - 0.25         # it does train
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)
    _assert_params_close(params, tm, rtol=1e-11)


def test_float32_training_matches_torch_over_the_first_steps(scripts):
    ours, theirs, params, tm = _trajectories(scripts, np.float32, steps=6)
    np.testing.assert_allclose(ours, theirs, rtol=2e-6, atol=0)
    _assert_params_close(params, tm, rtol=1e-5)


def test_init_matches_torch_default_init(scripts):
    """Same shapes and parameter names, and PyTorch's default ranges: weights and biases
    uniform in +-1/sqrt(fan_in) (fan_in = in_channels * kernel area, or in_features)."""
    mnist, bench = scripts
    tm = bench.make_model()
    ours = nn.to_torch_state_dict(mnist.make_model().init(fr.key(0)))
    theirs = {k: v.detach().numpy() for k, v in tm.state_dict().items()}
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}
    fan_in = {"0": 1 * 9, "3": 16 * 9, "7": 32 * 7 * 7}
    for k, v in ours.items():
        bound = 1 / np.sqrt(fan_in[k.split(".")[0]])
        assert v.dtype == np.float32 and np.abs(v).max() <= bound, k
        if v.size >= 1000:   # the std of U(-b, b) is b/sqrt(3); ~0.5% sampling error here
            assert abs(v.std() / (bound / np.sqrt(3)) - 1) < 0.05, k
            assert abs(v.mean()) < 0.05 * bound, k


def test_loader_epochs_cover_the_data_as_torch_randperm_split():
    """Each epoch: a new permutation of all samples in batches of 64, the last one partial
    (what fashion_torch.py's ``torch.randperm(n).split(64)`` gives)."""
    n = 1000
    loader = nn.data.DataLoader(nn.data.ArrayDataset(np.arange(n)), batch_size=64,
                                shuffle=True, seed=0)
    orders = []
    for _ in range(2):
        batches = [np.asarray(b) for (b,) in loader]
        assert [len(b) for b in batches] == [len(b) for b in torch.arange(n).split(64)]
        order = np.concatenate(batches)
        assert sorted(order) == list(range(n))
        orders.append(order)
    assert not np.array_equal(orders[0], orders[1])
