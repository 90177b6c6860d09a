"""funcgrad_nn layers: weights loaded from real PyTorch modules give PyTorch's outputs and
gradients; state, keys, composition, state dicts, summary and errors."""
import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp
import funcgrad.random as fr
import funcgrad_nn as nn
import funcgrad_nn.functional as F
from funcgrad.errors import FuncgradTypeError, FuncgradValueError
from funcgrad.test_util import check_grads
from funcgrad_nn import init

try:
    import torch
except ImportError:  # pragma: no cover - torch is optional
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

TOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}


def _first(v):
    return v[0] if isinstance(v, tuple) else v


def _run(layer, params, state, x, train, key=None, call=None):
    """Run through __call__ when the layer allows it, else through apply."""
    if call is not None:
        return call(layer, params, x), state
    if layer._stateful or layer._random or train:
        return layer.apply(params, state, x, train=train, key=key)
    return layer(params, x), state


def check_against_torch(ours, theirs, x, dtype=np.float64, train=False, call=None, tcall=None):
    """Load ``theirs``' weights into ``ours``; compare outputs, input and parameter
    gradients (of sum(out * ct)) and, in training mode, the updated buffers."""
    tol = TOL[np.dtype(dtype)]
    theirs = theirs.to(torch.float64 if dtype == np.float64 else torch.float32)
    theirs.train(train)
    theirs.zero_grad()
    params, state = nn.from_torch_state_dict(ours, theirs.state_dict())
    if x.dtype.kind == "f":
        x = x.astype(dtype)
    tx = torch.tensor(x, requires_grad=x.dtype.kind == "f")
    ty = _first((tcall or (lambda m, a: m(a)))(theirs, tx))
    y, new_state = _run(ours, params, state, x, train, call=call)
    y = _first(y)
    assert y.dtype == ty.detach().numpy().dtype
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=tol, atol=tol)
    ct = np.random.default_rng(3).normal(size=y.shape).astype(y.dtype)
    (ty * torch.tensor(ct)).sum().backward()

    def loss(p, a):
        return fnp.sum(_first(_run(ours, p, state, a, train, call=call)[0]) * ct)

    if x.dtype.kind == "f":
        gp, gx = funcgrad.grad(loss, argnums=(0, 1))(params, x)
        np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=tol, atol=tol)
    else:
        gp = funcgrad.grad(loss)(params, x)
    sd = nn.to_torch_state_dict(gp)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(sd[name], p.grad.numpy(), rtol=tol, atol=tol,
                                   err_msg=f"gradient of {name}")
        assert sd[name].dtype == dtype
    if train:
        got = nn.to_torch_state_dict(params, new_state)
        for name, buf in theirs.state_dict().items():
            np.testing.assert_allclose(got[name], buf.numpy(), rtol=tol, atol=tol,
                                       err_msg=f"buffer {name}")
    return params, state


def _x(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


# --------------------------------------------------------------------------------------
# Each layer against PyTorch


LAYERS = [
    ("Linear", lambda m: m.Linear(7, 5), (3, 4, 7)),
    ("Linear-nobias", lambda m: m.Linear(7, 5, bias=False), (3, 7)),
    ("Conv1d", lambda m: m.Conv1d(4, 6, 3, padding=2, dilation=2, padding_mode="circular"),
     (2, 4, 9)),
    ("Conv2d", lambda m: m.Conv2d(4, 6, 3, stride=2, padding=1, groups=2,
                                  padding_mode="reflect"), (2, 4, 8, 7)),
    ("Conv2d-same", lambda m: m.Conv2d(4, 6, (3, 2), padding="same", dilation=2,
                                       padding_mode="replicate"), (2, 4, 8, 7)),
    ("Conv2d-unbatched", lambda m: m.Conv2d(4, 2, 2, bias=False), (4, 5, 5)),
    ("ConvTranspose2d", lambda m: m.ConvTranspose2d(4, 6, 3, stride=2, padding=1,
                                                    output_padding=1, groups=2), (2, 4, 5, 4)),
    ("ConvTranspose1d", lambda m: m.ConvTranspose1d(4, 3, 3, stride=3, dilation=2), (2, 4, 5)),
    ("MaxPool2d", lambda m: m.MaxPool2d(3, 2, 1, ceil_mode=True), (2, 3, 7, 8)),
    ("AvgPool2d", lambda m: m.AvgPool2d(3, 2, 1, count_include_pad=False), (2, 3, 7, 8)),
    ("AdaptiveAvgPool2d", lambda m: m.AdaptiveAvgPool2d((3, None)), (2, 3, 7, 8)),
    ("MaxPool1d", lambda m: m.MaxPool1d(2), (2, 3, 7)),
    ("AvgPool1d", lambda m: m.AvgPool1d(3, 1, 1), (2, 3, 7)),
    ("AdaptiveAvgPool1d", lambda m: m.AdaptiveAvgPool1d(4), (2, 3, 7)),
    ("LayerNorm", lambda m: m.LayerNorm((4, 5)), (3, 2, 4, 5)),
    ("GroupNorm", lambda m: m.GroupNorm(2, 4), (3, 4, 5)),
    ("BatchNorm2d-eval", lambda m: m.BatchNorm2d(4), (3, 4, 5, 2)),
    ("Flatten", lambda m: m.Flatten(), (3, 4, 5, 2)),
    ("Identity", lambda m: m.Identity(), (3, 4)),
    ("ReLU", lambda m: m.ReLU(), (3, 4)),
    ("LeakyReLU", lambda m: m.LeakyReLU(0.2), (3, 4)),
    ("ELU", lambda m: m.ELU(0.5), (3, 4)),
    ("GELU", lambda m: m.GELU(), (3, 4)),
    ("GELU-tanh", lambda m: m.GELU("tanh"), (3, 4)),
    ("SiLU", lambda m: m.SiLU(), (3, 4)),
    ("Sigmoid", lambda m: m.Sigmoid(), (3, 4)),
    ("Tanh", lambda m: m.Tanh(), (3, 4)),
    ("Softmax", lambda m: m.Softmax(dim=1), (3, 4, 2)),
    ("LogSoftmax", lambda m: m.LogSoftmax(dim=-1), (3, 4)),
    ("Dropout-eval", lambda m: m.Dropout(0.3), (3, 4)),
    ("RNNCell", lambda m: m.RNNCell(4, 6, nonlinearity="relu"), (3, 4)),
    ("LSTMCell", lambda m: m.LSTMCell(4, 6), (3, 4)),
    ("GRUCell", lambda m: m.GRUCell(4, 6, bias=False), (4,)),
    ("RNN", lambda m: m.RNN(4, 6, num_layers=2, bidirectional=True), (5, 3, 4)),
    ("LSTM", lambda m: m.LSTM(4, 6, num_layers=2, batch_first=True), (3, 5, 4)),
    ("LSTM-bidir-unbatched", lambda m: m.LSTM(4, 3, bidirectional=True), (5, 4)),
    ("GRU", lambda m: m.GRU(4, 6, bidirectional=True, bias=False), (5, 3, 4)),
    ("Sequential", lambda m: m.Sequential(m.Conv2d(3, 5, 3), m.BatchNorm2d(5), m.ReLU(),
                                          m.MaxPool2d(2), m.Flatten(), m.Linear(20, 3)),
     (2, 3, 6, 6)),
]


@needs_torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,make,shape", LAYERS, ids=[n for n, _, _ in LAYERS])
def test_layer_matches_torch(name, make, shape, dtype):
    torch.manual_seed(0)
    check_against_torch(make(nn), make(torch.nn), _x(*shape), dtype)


@needs_torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batchnorm_training_matches_torch_including_running_stats(dtype):
    torch.manual_seed(0)
    for ours, theirs, shape in [(nn.BatchNorm2d(4, momentum=0.3), torch.nn.BatchNorm2d(4, momentum=0.3), (3, 4, 5, 2)),
                                (nn.BatchNorm1d(4, momentum=None), torch.nn.BatchNorm1d(4, momentum=None), (6, 4)),
                                (nn.BatchNorm1d(4, affine=False), torch.nn.BatchNorm1d(4, affine=False), (6, 4, 3))]:
        check_against_torch(ours, theirs, _x(*shape), dtype, train=True)


@needs_torch
def test_batchnorm_without_running_stats_matches_torch():
    torch.manual_seed(0)
    ours, theirs = nn.BatchNorm1d(4, track_running_stats=False), torch.nn.BatchNorm1d(4, track_running_stats=False)
    assert ours.init_state() == {}
    check_against_torch(ours, theirs, _x(5, 4), np.float64)   # pure: __call__ works
    check_against_torch(ours, theirs, _x(5, 4), np.float64, train=True)


@needs_torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_embedding_matches_torch(dtype):
    torch.manual_seed(0)
    idx = np.random.default_rng(0).integers(0, 10, size=(4, 5))
    idx[0, 0] = 2
    params, _ = check_against_torch(nn.Embedding(10, 3, padding_idx=2),
                                    torch.nn.Embedding(10, 3, padding_idx=2), idx, dtype)
    g = funcgrad.grad(lambda p: fnp.sum(nn.Embedding(10, 3, padding_idx=2)(p, idx)))(params)
    np.testing.assert_array_equal(g["weight"][2], 0.0)


@needs_torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_multihead_attention_matches_torch(dtype):
    torch.manual_seed(0)
    q = _x(4, 3, 8)
    mask = np.triu(np.ones((4, 4), bool), 1)
    check_against_torch(nn.MultiheadAttention(8, 2), torch.nn.MultiheadAttention(8, 2), q, dtype,
                        call=lambda m, p, a: m(p, a, a, a, attn_mask=mask),
                        tcall=lambda m, a: m(a, a, a, attn_mask=torch.tensor(mask)))
    kv = _x(3, 6, 8, seed=1).astype(dtype)
    kpm = np.zeros((3, 6), bool)
    kpm[1, 4:] = True
    ours, theirs = nn.MultiheadAttention(8, 4, batch_first=True), torch.nn.MultiheadAttention(8, 4, batch_first=True)
    check_against_torch(ours, theirs, q.transpose(1, 0, 2).copy(), dtype,
                        call=lambda m, p, a: m(p, a, kv, kv, key_padding_mask=kpm),
                        tcall=lambda m, a: m(a, torch.tensor(kv), torch.tensor(kv),
                                             key_padding_mask=torch.tensor(kpm)))
    # the averaged attention weights too
    params, _ = nn.from_torch_state_dict(ours, theirs.state_dict())
    theirs.eval()
    _, w = ours(params, q.transpose(1, 0, 2).astype(dtype), kv, kv, key_padding_mask=kpm)
    _, tw = theirs(torch.tensor(q.transpose(1, 0, 2).astype(dtype)), torch.tensor(kv),
                   torch.tensor(kv), key_padding_mask=torch.tensor(kpm))
    np.testing.assert_allclose(w, tw.detach().numpy(), atol=TOL[np.dtype(dtype)])


@needs_torch
def test_rnn_with_initial_state_matches_torch():
    torch.manual_seed(0)
    x, h0, c0 = _x(5, 3, 4), _x(2, 3, 6, seed=1), _x(2, 3, 6, seed=2)
    for name in ("RNN", "GRU", "LSTM"):
        ours, theirs = getattr(nn, name)(4, 6, num_layers=2), getattr(torch.nn, name)(4, 6, num_layers=2).double()
        params, _ = nn.from_torch_state_dict(ours, theirs.state_dict())
        hx = (h0, c0) if name == "LSTM" else h0
        thx = tuple(map(torch.tensor, hx)) if name == "LSTM" else torch.tensor(hx)
        (y, hn), (ty, thn) = ours(params, x, hx), theirs(torch.tensor(x), thx)
        np.testing.assert_allclose(y, ty.detach().numpy(), atol=1e-12)
        for a, b in zip(hn if name == "LSTM" else (hn,), thn if name == "LSTM" else (thn,)):
            np.testing.assert_allclose(a, b.detach().numpy(), atol=1e-12)


# --------------------------------------------------------------------------------------
# State dicts both ways


@needs_torch
def test_state_dict_round_trip_with_real_torch_module():
    class TNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(4)
            self.head = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Linear(8, 3))

        def forward(self, x):
            x = torch.relu(self.bn(self.conv(x)))
            return self.head(x.mean(dim=(2, 3)))

    class Net(nn.Module):
        def __init__(self):
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.head = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 3))

        def forward(self, params, x):
            x = F.relu(self.bn(params["bn"], self.conv(params["conv"], x)))
            return self.head(params["head"], x.mean(axis=(2, 3)))

    torch.manual_seed(0)
    net, tnet = Net(), TNet()
    params, state = net.init(fr.key(0)), net.init_state()
    x = _x(2, 1, 6, 6).astype(np.float32)
    _, state = net.apply(params, state, x, train=True)      # non-trivial running stats
    sd = nn.to_torch_state_dict(params, state)
    assert set(sd) == set(tnet.state_dict())
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    tnet.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    tnet.eval()
    y, _ = net.apply(params, state, x)
    np.testing.assert_allclose(y, tnet(torch.tensor(x)).detach().numpy(), atol=1e-5)
    # and back: PyTorch -> funcgrad_nn gives the same pytrees
    p2, s2 = nn.from_torch_state_dict(net, tnet.state_dict())
    for a, b in zip(funcgrad.tree_util.tree_leaves((p2, s2)),
                    funcgrad.tree_util.tree_leaves((params, state))):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    assert nn.to_torch_state_dict(params, as_torch=True)["conv.weight"].dtype == torch.float32


def test_from_torch_state_dict_errors_name_the_keys():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    sd = nn.to_torch_state_dict(model.init(fr.key(0)))
    assert sorted(sd) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    bad = dict(sd)
    del bad["2.bias"]
    with pytest.raises(FuncgradValueError, match="'2.bias'"):
        nn.from_torch_state_dict(model, bad)
    with pytest.raises(FuncgradValueError, match="unexpected keys.*'3.weight'"):
        nn.from_torch_state_dict(model, {**sd, "3.weight": np.ones(1)})
    with pytest.raises(FuncgradValueError, match=r"'0.weight' has shape \(2, 3\).*\(3, 2\)"):
        nn.from_torch_state_dict(model, {**sd, "0.weight": np.ones((2, 3))})
    p, s = nn.from_torch_state_dict(model, sd, dtype=np.float64)
    assert p[0]["weight"].dtype == np.float64 and s == [{}, {}, {}]


# --------------------------------------------------------------------------------------
# The calling convention: state, keys, train flag


def test_batchnorm_stats_update_only_in_train_mode():
    bn = nn.BatchNorm1d(3)
    params, state = bn.init(fr.key(0)), bn.init_state()
    x = _x(8, 3).astype(np.float32) * 2 + 1
    y_eval, s_eval = bn.apply(params, state, x)
    assert s_eval is state
    np.testing.assert_allclose(y_eval, x / np.sqrt(1 + 1e-5), rtol=1e-6)
    y_train, s_train = bn.apply(params, state, x, train=True)
    np.testing.assert_allclose(s_train["running_mean"], 0.1 * x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(s_train["running_var"], 0.9 + 0.1 * x.var(0, ddof=1), rtol=1e-5)
    assert int(s_train["num_batches_tracked"]) == 1
    assert s_train["running_mean"].dtype == np.float32
    np.testing.assert_allclose(y_train.mean(0), 0.0, atol=1e-5)
    np.testing.assert_array_equal(state["running_mean"], 0.0)     # input state untouched
    with pytest.raises(FuncgradTypeError, match="has state.*apply"):
        bn(params, x)


def test_dropout_layer_and_key_threading():
    model = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.5), nn.ReLU(), nn.Dropout(0.5))
    params, state = model.init(fr.key(0)), model.init_state()
    x = np.ones((3, 4), np.float32)
    y1, _ = model.apply(params, state, x, train=True, key=fr.key(1))
    y2, _ = model.apply(params, state, x, train=True, key=fr.key(1))
    y3, _ = model.apply(params, state, x, train=True, key=fr.key(2))
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(y1, y3)
    y_eval, _ = model.apply(params, state, x)
    np.testing.assert_allclose(y_eval, F.relu(F.linear(x, params[0]["weight"], params[0]["bias"])))
    with pytest.raises(FuncgradValueError, match="Dropout\\(p=0.5\\).*needs a random key"):
        model.apply(params, state, x, train=True)
    with pytest.raises(FuncgradTypeError, match="randomness.*model.apply"):
        model(params, x)
    # the two dropout layers get different keys: their masks differ
    d = nn.Sequential(nn.Dropout(0.5), nn.Dropout(0.5))
    ones = np.ones(1000)
    single, _ = nn.Dropout(0.5).apply({}, {}, ones, train=True, key=fr.key(0))
    double, _ = d.apply(d.init(fr.key(0)), d.init_state(), ones, train=True, key=fr.key(0))
    assert 0.15 < (double != 0).mean() < 0.35 and 0.4 < (single != 0).mean() < 0.6
    assert nn.Dropout(0.0)({}, x) is x      # no randomness: callable


def test_custom_module_threads_state_and_gradients():
    class Net(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(3, 4)
            self.bn = nn.BatchNorm1d(4)
            self.blocks = [nn.Linear(4, 4), nn.Linear(4, 2)]
            self.drop = nn.Dropout(0.2)

        def forward(self, params, x):
            x = self.drop(params["drop"], F.relu(self.bn(params["bn"], self.fc(params["fc"], x))))
            for blk, p in zip(self.blocks, params["blocks"]):
                x = blk(p, x)
            return x

    net = Net()
    assert [n for n, _ in net.named_children()] == ["fc", "bn", "blocks", "drop"]
    params, state = net.init(fr.key(0)), net.init_state()
    assert set(state) == {"fc", "bn", "blocks", "drop"} and state["blocks"] == [{}, {}]
    x = _x(5, 3).astype(np.float32)

    def loss(p, s):
        y, s = net.apply(p, s, x, train=True, key=fr.key(1))
        return fnp.mean(y ** 2), s

    (val, new_state), grads = funcgrad.value_and_grad(loss, has_aux=True)(params, state)
    assert int(new_state["bn"]["num_batches_tracked"]) == 1
    assert grads["blocks"][1]["weight"].shape == (2, 4)
    assert grads["fc"]["weight"].dtype == np.float32
    assert sorted(nn.to_torch_state_dict(params, new_state)) == sorted(
        ["fc.weight", "fc.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var",
         "bn.num_batches_tracked", "blocks.0.weight", "blocks.0.bias", "blocks.1.weight",
         "blocks.1.bias"])
    with pytest.raises(FuncgradTypeError, match="Net\\(\\) has state .* and randomness"):
        net(params, x)
    with pytest.raises(FuncgradValueError, match="no entry for the stateful child 'bn'"):
        net.apply(params, {}, x)
    # a pure custom model is callable, and differentiable to second order
    mlp = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    p = init_float64(mlp.init(fr.key(0)))
    check_grads(lambda p: mlp(p, np.array([[0.3, -0.2]])), (p,), order=2)


def init_float64(tree):
    return funcgrad.tree_util.tree_map(lambda a: np.asarray(a, np.float64), tree)


def test_lecture_mylayer_pattern():
    class MyLayer(nn.Module):
        def __init__(self, in_features, out_features):
            self.in_features, self.out_features = in_features, out_features

        def init(self, key):
            kw, kb = fr.split(key)
            return {"weight": init.normal(kw, (self.in_features, self.out_features)),
                    "bias": init.uniform(kb, (self.in_features,))}

        def forward(self, params, x):
            return fnp.sqrt(x ** 2 + params["bias"]) @ params["weight"]

    layer = MyLayer(3, 2)
    p = layer.init(fr.key(0))
    x = _x(4, 3).astype(np.float32)
    y = layer(p, x)
    np.testing.assert_allclose(y, np.sqrt(x ** 2 + p["bias"]) @ p["weight"], rtol=1e-6)
    assert y.dtype == np.float32
    model = nn.Sequential(layer, nn.ReLU(), nn.Linear(2, 1))
    params = model.init(fr.key(1))
    g = funcgrad.grad(lambda ps: fnp.sum(model(ps, x)))(params)
    assert g[0]["bias"].shape == (3,)
    check_grads(lambda ps: layer(ps, x.astype(np.float64)), (init_float64(p),), order=2)


def test_init_is_reproducible_and_pytorch_like():
    model = nn.Sequential(nn.Linear(50, 40), nn.Conv2d(3, 8, 5), nn.ConvTranspose2d(8, 4, 3),
                          nn.BatchNorm2d(4), nn.Embedding(6, 3, padding_idx=1), nn.LSTM(5, 7),
                          nn.MultiheadAttention(8, 2))
    p1, p2 = model.init(fr.key(0)), model.init(fr.key(0))
    for a, b in zip(funcgrad.tree_util.tree_leaves(p1), funcgrad.tree_util.tree_leaves(p2)):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == np.float32
    assert not np.array_equal(p1[0]["weight"], model.init(fr.key(1))[0]["weight"])
    lin, conv, convt, bn, emb, lstm, mha = p1
    assert np.abs(lin["weight"]).max() <= 1 / np.sqrt(50) and np.abs(lin["bias"]).max() <= 1 / np.sqrt(50)
    assert np.abs(lin["weight"]).max() > 0.9 / np.sqrt(50)
    assert np.abs(conv["weight"]).max() <= 1 / np.sqrt(75)
    assert convt["weight"].shape == (8, 4, 3, 3) and np.abs(convt["bias"]).max() <= 1 / np.sqrt(36)
    np.testing.assert_array_equal(bn["weight"], 1.0)
    np.testing.assert_array_equal(bn["bias"], 0.0)
    np.testing.assert_array_equal(emb["weight"][1], 0.0)
    assert np.abs(lstm["weight_hh_l0"]).max() <= 1 / np.sqrt(7)
    np.testing.assert_array_equal(mha["in_proj_bias"], 0.0)
    assert np.abs(mha["in_proj_weight"]).max() <= np.sqrt(6 / 32)
    assert nn.Linear(2, 2, dtype=np.float64).init(fr.key(0))["weight"].dtype == np.float64


def test_summary_prints_layers_shapes_and_counts():
    lines = []
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    nn.summary(model, model.init(fr.key(0)), (5, 1, 4, 4), print_fn=lines.append)
    text = "\n".join(lines)
    assert "0 (Conv2d)" in text and "(5, 2, 2, 2)" in text and "(5, 3)" in text
    assert lines[-1] == "Total params: 51"
    row = [ln for ln in lines if "3 (Linear)" in ln][0]
    assert row.split()[-1] == "27"


# --------------------------------------------------------------------------------------
# Errors name the layer and the shapes


def test_bad_inputs_name_layer_and_shapes():
    lin = nn.Linear(3, 2)
    p = lin.init(fr.key(0))
    with pytest.raises(FuncgradValueError, match=r"Linear\(in_features=3.*last axis has size 3.*\(4, 5\)"):
        lin(p, np.ones((4, 5)))
    conv = nn.Conv2d(3, 4, 3)
    pc = conv.init(fr.key(0))
    with pytest.raises(FuncgradValueError, match=r"Conv2d\(3, 4.*3 channels, got shape \(2, 2, 8, 8\)"):
        conv(pc, np.ones((2, 2, 8, 8)))
    with pytest.raises(FuncgradValueError, match=r"Conv2d.*got shape \(8, 8\)"):
        conv(pc, np.ones((8, 8)))
    bn = nn.BatchNorm2d(3)
    with pytest.raises(FuncgradValueError, match=r"BatchNorm2d\(3.*4-D.*\(2, 3, 5\)"):
        bn.apply(bn.init(None), bn.init_state(), np.ones((2, 3, 5)), train=True)
    lstm = nn.LSTM(4, 5)
    with pytest.raises(FuncgradValueError, match=r"LSTM\(4, 5\).*\(3, 2, 6\)"):
        lstm(lstm.init(fr.key(0)), np.ones((3, 2, 6)))
    emb = nn.Embedding(4, 2)
    with pytest.raises(FuncgradTypeError, match="integer indices"):
        emb(emb.init(fr.key(0)), np.ones(3))


def test_mismatched_params_raise():
    lin = nn.Linear(3, 2)
    p = lin.init(fr.key(0))
    with pytest.raises(FuncgradValueError, match=r"params\['weight'\] has shape \(3, 2\), expected \(2, 3\)"):
        lin({**p, "weight": p["weight"].T}, np.ones((1, 3)))
    with pytest.raises(FuncgradValueError, match="keys \\['weight'\\], expected \\['bias', 'weight'\\]"):
        lin({"weight": p["weight"]}, np.ones((1, 3)))
    model = nn.Sequential(lin, nn.ReLU())
    with pytest.raises(FuncgradValueError, match="list of 2 entries"):
        model([p], np.ones((1, 3)))
    with pytest.raises(FuncgradValueError, match="ReLU\\(\\): has no parameters"):
        nn.ReLU()({"w": 1}, np.ones(2))
    with pytest.raises(FuncgradValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)


def test_reprs():
    assert repr(nn.Linear(3, 2)) == "Linear(in_features=3, out_features=2, bias=True)"
    assert repr(nn.Sequential(nn.ReLU())) == "Sequential(\n  (0): ReLU()\n)"
    assert "kernel_size=(3, 3)" in repr(nn.Conv2d(1, 2, 3))


def test_apply_under_jit_and_vmap():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Dropout(0.3), nn.Flatten(), nn.Linear(16, 3))
    params, state = model.init(fr.key(0)), model.init_state()
    x = _x(5, 1, 4, 4).astype(np.float32)
    t = np.array([0, 1, 2, 1, 0])

    def loss(p, s, key):
        y, s = model.apply(p, s, x, train=True, key=key)
        return F.cross_entropy(y, t, label_smoothing=0.1), s

    step = funcgrad.value_and_grad(loss, has_aux=True)
    (v, s), g = step(params, state, fr.key(1))
    (vj, sj), gj = funcgrad.jit(step)(params, state, fr.key(1))
    np.testing.assert_allclose(vj, v, rtol=1e-6)
    np.testing.assert_allclose(gj[0]["weight"], g[0]["weight"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sj[1]["running_var"], s[1]["running_var"], rtol=1e-6)
    assert int(sj[1]["num_batches_tracked"]) == 1 and vj.dtype == np.float32
    # per-example gradients of a pure model sum to the batch gradient
    mlp = nn.Sequential(nn.Linear(3, 8), nn.GELU(), nn.LayerNorm(8), nn.Linear(8, 2))
    pm = mlp.init(fr.key(0))
    xs, ts = _x(6, 3).astype(np.float32), np.array([0, 1, 1, 0, 1, 0])
    per = funcgrad.vmap(funcgrad.grad(lambda p, a, b: F.cross_entropy(mlp(p, a[None]), b[None])),
                        in_axes=(None, 0, 0))(pm, xs, ts)
    full = funcgrad.grad(lambda p: F.cross_entropy(mlp(p, xs), ts, reduction="sum"))(pm)
    np.testing.assert_allclose(per[0]["weight"].sum(0), full[0]["weight"], atol=1e-5)


def test_summary_of_a_custom_module():
    class Net(nn.Module):
        def __init__(self):
            self.body = nn.Sequential(nn.Linear(4, 6), nn.ReLU())
            self.head = nn.Linear(6, 2)

        def forward(self, params, x):
            return self.head(params["head"], self.body(params["body"], x))

    lines = []
    net = Net()
    nn.summary(net, net.init(fr.key(0)), (3, 4), print_fn=lines.append)
    names = [ln.split()[0] for ln in lines[2:-2]]
    assert names == ["Net", "body", "0", "1", "head"]
    assert "(3, 6)" in lines[4] and lines[-1] == "Total params: 44"


def test_custom_stateful_leaf_with_its_own_apply():
    class RunningMax(nn.Module):
        has_state = True

        def init_state(self):
            return {"max": np.zeros((), np.float32)}

        def apply(self, params, state, x, *, train=False, key=None):
            if not train:
                return x / state["max"], state
            m = fnp.maximum(state["max"], funcgrad.stop_gradient(fnp.max(x)))
            return x / m, {"max": m}

    model = nn.Sequential(nn.Linear(2, 2), RunningMax())
    params, state = model.init(fr.key(0)), model.init_state()
    x = np.array([[1.0, 2.0]], np.float32)
    y, state = model.apply(params, state, x, train=True)
    h = model[0](params[0], x)
    np.testing.assert_allclose(state[1]["max"], max(np.max(h), 0.0))
    y_eval, state2 = model.apply(params, state, x)
    assert state2[1] is state[1]
    with pytest.raises(FuncgradTypeError, match="has state"):
        model(params, x)


@pytest.mark.parametrize("make,shape", [
    (lambda: nn.Conv2d(2, 2, 2, stride=2, padding=1, padding_mode="reflect"), (1, 2, 3, 3)),
    (lambda: nn.ConvTranspose2d(2, 1, 2, stride=2), (1, 2, 2, 2)),
    (lambda: nn.GroupNorm(1, 2), (2, 2, 3)),
    (lambda: nn.LSTM(2, 2, bidirectional=True), (3, 1, 2)),
    (lambda: nn.GRU(2, 2, num_layers=2), (3, 1, 2)),
    (lambda: nn.RNNCell(2, 3), (2, 2)),
])
def test_layer_check_grads_float64(make, shape):
    layer = make()
    params = init_float64(layer.init(fr.key(0)))
    x = _x(*shape)
    check_grads(lambda p, a: _first(layer(p, a)), (params, x), order=1)


def test_multihead_attention_check_grads_float64():
    mha = nn.MultiheadAttention(4, 2)
    params = init_float64(mha.init(fr.key(0)))
    q = _x(3, 1, 4)
    check_grads(lambda p, a: mha(p, a, a, a)[0], (params, q), order=1)


def test_recurrent_and_attention_dropout_need_keys_in_training():
    x = _x(4, 2, 3).astype(np.float32)
    for layer, args in [(nn.GRU(3, 5, num_layers=2, dropout=0.5), (x,)),
                        (nn.MultiheadAttention(3, 1, dropout=0.5), (x, x, x))]:
        params = layer.init(fr.key(0))
        y_eval = _first(layer.apply(params, {}, *args)[0])
        y1 = _first(layer.apply(params, {}, *args, train=True, key=fr.key(1))[0])
        y2 = _first(layer.apply(params, {}, *args, train=True, key=fr.key(1))[0])
        np.testing.assert_array_equal(y1, y2)
        assert not np.allclose(y1, y_eval)
        with pytest.raises(FuncgradValueError, match="needs a random key"):
            layer.apply(params, {}, *args, train=True)
        with pytest.raises(FuncgradTypeError, match="randomness"):
            layer(params, *args)
    single = nn.GRU(3, 5, dropout=0.5)      # one layer: PyTorch applies no dropout
    assert not single._random
    single(single.init(fr.key(0)), x)


@pytest.mark.parametrize("pool, shape", [
    (lambda: nn.MaxPool2d(2), (3, 2, 6, 6)),
    (lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 2, 7, 5)),
    (lambda: nn.MaxPool2d(2, stride=1, dilation=2), (2, 1, 6, 6)),
    (lambda: nn.MaxPool1d(2), (2, 3, 8)),
    (lambda: nn.MaxPool3d(2), (1, 2, 4, 4, 4)),
])
def test_sequential_relu_then_max_pool_is_exactly_the_written_order(pool, shape):
    # Sequential runs ReLU then max pooling as pooling then ReLU (cheaper); values and
    # gradients must be those of the written order bit for bit, ties, zeros, signed zeros
    # and infinities included (NaN: values only, see below)
    import funcgrad
    import funcgrad_nn.functional as F
    rng = np.random.default_rng(5)
    x = rng.choice([-2.0, -1.0, -0.0, 0.0, 0.5, 1.0, 3.0], size=shape)
    x.flat[::7] = rng.normal(size=x.flat[::7].shape)
    x.flat[3], x.flat[11] = np.inf, -np.inf
    m = nn.Sequential(nn.ReLU(), pool())
    p = m.init(fr.key(0))
    written = [m[0], m[1]]

    def by_hand(x):
        return written[1]({}, F.relu(x))      # (layers called one by one, not swapped)

    relus = [e for e in funcgrad.jit(lambda x: m(p, x)).lower(x).eqns if e.prim.name == "relu"]
    assert [e.invars[0].shape for e in relus] == [by_hand(x).shape]     # pooled first
    for dtype in (np.float64, np.float32):
        xd = x.astype(dtype)
        np.testing.assert_array_equal(m(p, xd), by_hand(xd))
        g = rng.normal(size=by_hand(xd).shape).astype(dtype)
        got = funcgrad.vjp(lambda x: m(p, x), xd)[1](g)[0]
        want = funcgrad.vjp(by_hand, xd)[1](g)[0]
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want)
        jitted = funcgrad.jit(funcgrad.grad(lambda x: funcgrad.numpy.sum(m(p, x) * g)))
        np.testing.assert_array_equal(jitted(xd), want)
    # a window holding NaN: NaN out either way; its gradient is 0 (PyTorch's: the NaN is
    # the window's arg-max and ReLU's derivative there is 0), where the written order
    # sends it to the window's last element
    x.flat[-2] = np.nan
    np.testing.assert_array_equal(m(p, x), by_hand(x))
    got = funcgrad.grad(lambda x: funcgrad.numpy.sum(m(p, x)))(x)
    want = funcgrad.grad(lambda x: funcgrad.numpy.sum(by_hand(x)))(x)
    nan_out = np.isnan(by_hand(x))
    assert nan_out.any()
    differ = got != want
    assert not differ.any() or (got[differ] == 0).all()


@pytest.mark.parametrize("layers, shape", [
    (lambda: [nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)], (3, 2, 6, 6)),
    (lambda: [nn.Conv2d(2, 3, 3, padding=1), nn.MaxPool2d(2), nn.ReLU()], (2, 2, 6, 6)),
    (lambda: [nn.Conv2d(2, 3, 3), nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)],
     (2, 2, 9, 8)),
    (lambda: [nn.Conv2d(2, 4, 3, padding=1, groups=2), nn.ReLU(),
              nn.MaxPool2d(2, stride=1, dilation=2)], (2, 2, 6, 6)),
    (lambda: [nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)], (2, 6, 6)),
    (lambda: [nn.Conv1d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool1d(2)], (2, 2, 8)),
    (lambda: [nn.ConvTranspose2d(2, 3, 3, stride=2), nn.ReLU(), nn.MaxPool2d(2)],
     (2, 2, 3, 3)),
])
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")      # (inf * 0)
def test_sequential_adds_a_convolutions_bias_after_max_pooling_exactly(layers, shape):
    # Sequential adds the bias to the pooled values; values and gradients must be those
    # of the written order bit for bit (values of a few exact levels: ties, zeros,
    # infinities; the bias keeps them apart, so the arg-max is the same)
    import funcgrad
    m = nn.Sequential(*layers())
    p = m.init(fr.key(0))
    p[0]["bias"] = np.array([0.5, -1.0, 2.0, 0.25][:len(p[0]["bias"])], np.float32)
    rng = np.random.default_rng(9)
    x = rng.choice([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0], size=shape)
    x.flat[5] = np.inf

    def by_hand(p, x):
        for layer, q in zip(m, p):                # (layers called one by one)
            x = layer(q, x)
        return x

    eqns = funcgrad.jit(lambda x: m(p, x)).lower(x).eqns
    (add,) = [e for e in eqns if e.prim.name == "add"]         # the bias, on pooled values
    assert tuple(add.invars[0].shape) == by_hand(p, x).shape != shape
    for dtype in (np.float64, np.float32):
        xd = x.astype(dtype)
        pd = funcgrad.tree_util.tree_map(lambda a: np.asarray(a, dtype), p)
        want_y = by_hand(pd, xd)
        np.testing.assert_array_equal(m(pd, xd), want_y)
        g = rng.normal(size=want_y.shape).astype(dtype)
        got = funcgrad.vjp(lambda p, x: m(p, x), pd, xd)[1](g)
        want = funcgrad.vjp(by_hand, pd, xd)[1](g)
        jitted = funcgrad.jit(funcgrad.grad(lambda p: funcgrad.numpy.sum(m(p, xd) * g)))(pd)
        for out in (got, (jitted, want[1])):
            gw, gb, gx = out[0][0]["weight"], out[0][0]["bias"], out[1]
            ww, wb, wx = want[0][0]["weight"], want[0][0]["bias"], want[1]
            assert gw.dtype == gb.dtype == gx.dtype == dtype
            np.testing.assert_array_equal(gw, ww)
            np.testing.assert_array_equal(gx, wx)
            # the bias's gradient sums the same terms without the zeros of the positions
            # pooling dropped, in another order: equal up to rounding
            np.testing.assert_allclose(gb, wb, rtol=4 * np.finfo(dtype).eps)


def test_sequential_keeps_the_bias_where_pooling_would_mix_channels_or_is_not_plain():
    import funcgrad

    class MyConv(nn.Conv2d):
        def forward(self, params, x):
            return super().forward(params, x) * 2.0

    rng = np.random.default_rng(10)
    for layers, shape in [
            ([nn.Conv1d(2, 3, 3, padding=1), nn.MaxPool2d(2)], (2, 2, 6)),   # (C, L) windows
            ([nn.Conv2d(2, 3, 3, padding=1), nn.MaxPool2d(2, return_indices=True)],
             (1, 2, 4, 4)),
            ([nn.Conv2d(2, 3, 3, padding=1), nn.AvgPool2d(2)], (1, 2, 4, 4)),
            ([nn.Conv2d(2, 3, 3, padding=1, bias=False), nn.MaxPool2d(2)], (1, 2, 4, 4)),
            ([MyConv(2, 3, 3, padding=1), nn.MaxPool2d(2)], (1, 2, 4, 4)),
            ([nn.Conv2d(2, 3, 3, padding=1), nn.Tanh(), nn.MaxPool2d(2)], (1, 2, 4, 4))]:
        m = nn.Sequential(*layers)
        p = m.init(fr.key(1))
        x = rng.normal(size=shape)
        eqns = funcgrad.jit(lambda x: m(p, x)).lower(x).eqns
        (first_add,) = [e for e in eqns if e.prim.name == "add"][:1] or [None]
        conv_out = [e for e in eqns if e.prim.name == "conv"][0].outvars[0]
        if first_add is not None:                 # the bias, on the convolution's output
            assert first_add.invars[0] is conv_out
        y = x
        for layer, q in zip(m, p):
            y = layer(q, y)
        for a, b in zip(funcgrad.tree_util.tree_leaves(m(p, x)),
                        funcgrad.tree_util.tree_leaves(y)):
            np.testing.assert_array_equal(a, b)


def test_sequential_keeps_the_bias_of_layers_that_override_apply_call_or_apply_op():
    # the move calls the convolution's _apply without its bias and the pooling on that:
    # a convolution that overrides apply (the documented way to add state), __call__ or
    # _apply, or a pooling that overrides apply or __call__, must run as written (its
    # state updated too)
    class StatefulConv(nn.Conv2d):
        has_state = True

        def init_state(self):
            return {"calls": np.zeros((), np.int64)}

        def apply(self, params, state, x, *, train=False, key=None):
            y = self._apply(x, params["weight"] * 0.5, params["bias"])
            return y, {"calls": state["calls"] + 1}

    class CallConv(nn.Conv2d):
        def __call__(self, params, *inputs, **kwargs):
            return super().__call__(dict(params, bias=params["bias"] * 10), *inputs,
                                    **kwargs)

    class ScaledConv(nn.Conv2d):
        def _apply(self, x, weight, bias):
            return -2.0 * super()._apply(x, weight, bias)

    class ScaledPool(nn.MaxPool2d):
        def __call__(self, params, *inputs, **kwargs):
            return super().__call__(params, *inputs, **kwargs) * 2.0

    rng = np.random.default_rng(11)
    x = rng.normal(size=(2, 2, 4, 4))
    for layers in ([StatefulConv(2, 3, 3, padding=1), nn.MaxPool2d(2)],
                   [CallConv(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)],
                   [ScaledConv(2, 3, 3, padding=1), nn.MaxPool2d(2)],
                   [nn.Conv2d(2, 3, 3, padding=1), ScaledPool(2)]):
        m = nn.Sequential(*layers)
        p, s = m.init(fr.key(1)), m.init_state()
        out, new = m.apply(p, s, x)
        y, want = x, []
        for layer, q, t in zip(m, p, s):
            if layer._stateful:
                y, t = layer.apply(q, t, y)
            else:
                y = layer(q, y)                   # (through __call__, as Sequential)
            want.append(t)
        np.testing.assert_array_equal(out, y)
        assert funcgrad.tree_util.tree_all(funcgrad.tree_util.tree_map(
            lambda a, b: bool(np.array_equal(a, b)), new, want))


def test_sequential_keeps_relu_before_a_pool_that_returns_indices():
    m = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2, return_indices=True))
    x = np.random.default_rng(6).normal(size=(1, 1, 4, 4))
    out, idx = m(m.init(fr.key(0)), x)
    assert out.shape == idx.shape == (1, 1, 2, 2)
    np.testing.assert_array_equal(out, np.maximum(x, 0).reshape(1, 1, 2, 2, 2, 2)
                                  .transpose(0, 1, 2, 4, 3, 5).reshape(1, 1, 2, 2, 4)
                                  .max(-1))
