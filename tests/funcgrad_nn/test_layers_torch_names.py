"""The layers added with PyTorch's names (activations, InstanceNorm, LocalResponseNorm,
PixelShuffle/Unshuffle, margin/embedding/NLL loss modules) against torch.nn's."""
import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp
import funcgrad.random as fr
import funcgrad_nn as nn
from funcgrad.errors import FuncgradTypeError, FuncgradValueError

torch = pytest.importorskip("torch")


def _rng(seed=0):
    return np.random.default_rng(seed)


ACT_LAYERS = [
    ("Hardtanh", (), {}), ("Hardtanh", (-0.5, 2.0), {}), ("ReLU6", (), {}), ("SELU", (), {}),
    ("CELU", (0.7,), {}), ("GLU", (), {}), ("GLU", (0,), {}), ("Softmin", (1,), {}),
    ("Softsign", (), {}), ("Tanhshrink", (), {}), ("Threshold", (0.1, -3.0), {}),
]


@pytest.mark.parametrize("name, args, kw", ACT_LAYERS)
def test_activation_layers_match_torch(name, args, kw):
    x = _rng(1).normal(size=(4, 6)) * 3
    ours = getattr(nn, name)(*args, **kw)
    theirs = getattr(torch.nn, name)(*args, **kw)
    np.testing.assert_allclose(ours({}, x), theirs(torch.tensor(x)).numpy(), atol=1e-12)
    assert ours.init(fr.key(0)) == {} and ours.init_state() == {}
    assert name in repr(ours)


def test_activation_layer_in_a_sequential_is_differentiable():
    model = nn.Sequential(nn.Linear(3, 4, dtype=np.float64), nn.SELU(), nn.Linear(4, 4, dtype=np.float64),
                          nn.GLU(), nn.Softsign())
    params = model.init(fr.key(0))
    g = funcgrad.grad(lambda p: fnp.sum(model(p, np.ones((2, 3)))))(params)
    assert g[0]["weight"].shape == (4, 3)


@pytest.mark.parametrize("cls, shape", [("InstanceNorm1d", (2, 3, 5)), ("InstanceNorm1d", (3, 5)),
                                        ("InstanceNorm2d", (2, 3, 4, 4)),
                                        ("InstanceNorm2d", (3, 2, 4)),
                                        ("InstanceNorm3d", (2, 3, 2, 3, 2))])
@pytest.mark.parametrize("affine, track", [(False, False), (True, False), (False, True),
                                           (True, True)])
def test_instance_norm_layers_match_torch(cls, shape, affine, track):
    rng = _rng(2)
    tm = getattr(torch.nn, cls)(3, affine=affine, track_running_stats=track,
                                momentum=0.2).double()
    ours = getattr(nn, cls)(3, affine=affine, track_running_stats=track, momentum=0.2,
                            dtype=np.float64)
    params, state = ours.init(fr.key(0)), ours.init_state()
    if affine:
        w, b = rng.normal(size=3), rng.normal(size=3)
        params = {"weight": w, "bias": b}
        with torch.no_grad():
            tm.weight.copy_(torch.tensor(w))
            tm.bias.copy_(torch.tensor(b))
    sd = nn.to_torch_state_dict(params, state)
    assert sorted(sd) == sorted(tm.state_dict())
    for step in range(2):
        x = rng.normal(size=shape) * 2 + 1
        tm.train()
        ty = tm(torch.tensor(x))
        y, state = ours.apply(params, state, x, train=True)
        np.testing.assert_allclose(y, ty.detach().numpy(), atol=1e-10)
    for k, v in nn.to_torch_state_dict(params, state).items():
        np.testing.assert_allclose(v, tm.state_dict()[k].numpy(), atol=1e-12, err_msg=k)
    tm.eval()
    x = rng.normal(size=shape)
    y, state2 = ours.apply(params, state, x, train=False)
    np.testing.assert_allclose(y, tm(torch.tensor(x)).detach().numpy(), atol=1e-10)
    if not track:
        np.testing.assert_allclose(ours(params, x), y)
    else:
        with pytest.raises(FuncgradTypeError, match="apply"):
            ours(params, x)


def test_instance_norm_momentum_none_keeps_running_statistics():
    tm = torch.nn.InstanceNorm1d(2, track_running_stats=True, momentum=None).double()
    ours = nn.InstanceNorm1d(2, track_running_stats=True, momentum=None, dtype=np.float64)
    x = _rng(3).normal(size=(2, 2, 4))
    tm(torch.tensor(x))
    _, state = ours.apply({}, ours.init_state(), x, train=True)
    np.testing.assert_allclose(state["running_mean"], tm.running_mean.numpy())
    np.testing.assert_allclose(state["running_var"], tm.running_var.numpy())


def test_instance_norm_rejects_wrong_rank_and_channels():
    layer = nn.InstanceNorm2d(3, affine=True)
    p = layer.init(fr.key(0))
    with pytest.raises(FuncgradValueError):
        layer(p, np.ones((2, 3, 4)))
    with pytest.raises(FuncgradValueError):
        layer(p, np.ones((2, 4, 4, 4)))


@pytest.mark.parametrize("shape", [(2, 5, 4), (1, 6, 3, 3)])
def test_local_response_norm_layer_matches_torch(shape):
    x = _rng(4).normal(size=shape)
    ours = nn.LocalResponseNorm(3, alpha=0.2, beta=0.5, k=2.0)
    theirs = torch.nn.LocalResponseNorm(3, alpha=0.2, beta=0.5, k=2.0)
    np.testing.assert_allclose(ours({}, x), theirs(torch.tensor(x)).numpy(), atol=1e-12)


def test_pixel_shuffle_layers_match_torch():
    x = _rng(5).normal(size=(2, 8, 3, 2))
    y = nn.PixelShuffle(2)({}, x)
    np.testing.assert_array_equal(y, torch.nn.PixelShuffle(2)(torch.tensor(x)).numpy())
    np.testing.assert_array_equal(nn.PixelUnshuffle(2)({}, y), x)
    assert repr(nn.PixelShuffle(2)) == "PixelShuffle(upscale_factor=2)"


def _loss_cases():
    rng = _rng(6)
    a, b = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    t_pm = np.array([1, -1, 1, -1, 1])
    x1, x2 = rng.normal(size=5), rng.normal(size=5)
    cls = np.array([0, 2, 1, 1, 0])
    ml = np.array([[0, 2, -1], [1, -1, 0], [2, 1, 0], [-1, 0, 0], [1, 1, -1]])
    rate, counts = rng.normal(size=(5, 3)), rng.poisson(1.5, size=(5, 3)).astype(float)
    var = rng.uniform(0.2, 2.0, size=(5, 3))
    w = rng.uniform(0.5, 2.0, size=3)
    return [
        ("CosineEmbeddingLoss", {"margin": 0.2}, (a, b, t_pm)),
        ("MarginRankingLoss", {"margin": 0.1, "reduction": "sum"}, (x1, x2, t_pm * 1.0)),
        ("HingeEmbeddingLoss", {"margin": 0.5, "reduction": "none"}, (a, np.sign(b))),
        ("MultiMarginLoss", {"p": 2, "margin": 0.5, "weight": w}, (a, cls)),
        ("MultiLabelMarginLoss", {}, (a, ml)),
        ("TripletMarginLoss", {"margin": 0.3, "p": 1.0, "swap": True}, (a, b, a[::-1].copy())),
        ("PoissonNLLLoss", {"full": True}, (rate, counts)),
        ("GaussianNLLLoss", {"full": True, "reduction": "sum"}, (a, b, var)),
        ("MarginRankingLoss", {"size_average": False}, (x1, x2, t_pm * 1.0)),
    ]


@pytest.mark.filterwarnings("ignore:size_average and reduce")
@pytest.mark.parametrize("name, kw, args", _loss_cases())
def test_loss_modules_match_torch(name, kw, args):
    tkw = {k: (torch.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    ours = getattr(nn, name)(**kw)
    theirs = getattr(torch.nn, name)(**tkw)
    np.testing.assert_allclose(ours({}, *args),
                               theirs(*[torch.tensor(v) for v in args]).numpy(), atol=1e-12)
    assert ours.init_state() == {}


def test_loss_module_gradient_and_bad_p():
    loss = nn.TripletMarginLoss()
    a = _rng(7).normal(size=(3, 2))
    g = funcgrad.grad(lambda a: loss({}, a, a + 1.0, a - 0.5))(a)
    assert g.shape == (3, 2)
    with pytest.raises(FuncgradValueError):
        nn.MultiMarginLoss(p=3)
    with pytest.raises(FuncgradValueError):
        nn.Hardtanh(1.0, 0.0)
