"""Layer constructors validate their size arguments (naming the layer, the argument
and the value), and calling a layer without its params says how layers are called;
parameter-free layers can be called as ``layer(x)``."""
import numpy as np
import pytest

import funcgrad.random as fr
import funcgrad_nn as nn

BAD = [
    (lambda v: nn.Linear(v, 3), "in_features"),
    (lambda v: nn.Linear(3, v), "out_features"),
    (lambda v: nn.Conv1d(v, 8, 3), "in_channels"),
    (lambda v: nn.Conv2d(3, v, 3), "out_channels"),
    (lambda v: nn.Conv2d(3, 8, v), "kernel_size"),
    (lambda v: nn.Conv2d(3, 8, 3, stride=v), "stride"),
    (lambda v: nn.Conv2d(3, 8, 3, dilation=v), "dilation"),
    (lambda v: nn.Conv2d(4, 8, 3, groups=v), "groups"),
    (lambda v: nn.ConvTranspose1d(3, 8, v), "kernel_size"),
    (lambda v: nn.ConvTranspose2d(v, 8, 3), "in_channels"),
    (lambda v: nn.MaxPool2d(v), "kernel_size"),
    (lambda v: nn.MaxPool1d(2, stride=v), "stride"),
    (lambda v: nn.AvgPool2d(v), "kernel_size"),
    (lambda v: nn.AvgPool1d(2, stride=v), "stride"),
    (lambda v: nn.Embedding(v, 4), "num_embeddings"),
    (lambda v: nn.Embedding(10, v), "embedding_dim"),
    (lambda v: nn.BatchNorm1d(v), "num_features"),
    (lambda v: nn.BatchNorm2d(v), "num_features"),
    (lambda v: nn.LayerNorm(v), "normalized_shape"),
    (lambda v: nn.GroupNorm(v, 4), "num_groups"),
    (lambda v: nn.GroupNorm(2, v), "num_channels"),
    (lambda v: nn.RNN(v, 4), "input_size"),
    (lambda v: nn.LSTM(4, v), "hidden_size"),
    (lambda v: nn.GRU(4, 4, num_layers=v), "num_layers"),
    (lambda v: nn.RNNCell(v, 4), "input_size"),
    (lambda v: nn.LSTMCell(4, v), "hidden_size"),
    (lambda v: nn.GRUCell(v, 4), "input_size"),
    (lambda v: nn.MultiheadAttention(v, 2), "embed_dim"),
    (lambda v: nn.MultiheadAttention(8, v), "num_heads"),
    (lambda v: nn.InstanceNorm1d(v), "num_features"),
    (lambda v: nn.InstanceNorm2d(v, affine=True), "num_features"),
    (lambda v: nn.InstanceNorm3d(v, track_running_stats=True), "num_features"),
    (lambda v: nn.PixelShuffle(v), "upscale_factor"),
    (lambda v: nn.PixelUnshuffle(v), "downscale_factor"),
    (lambda v: nn.LocalResponseNorm(v), "size"),
]


@pytest.mark.parametrize("make,arg", BAD)
@pytest.mark.parametrize("value", [2.5, "4", None, True])
def test_non_integer_sizes_are_type_errors(make, arg, value):
    if value is None and arg == "stride" and "Pool" in type(make(2)).__name__:
        make(value)     # pooling: stride=None means stride = kernel_size
        return
    with pytest.raises(TypeError, match=rf"{arg}.*{value!r}"):
        make(value)


@pytest.mark.parametrize("make,arg", BAD)
@pytest.mark.parametrize("value", [0, -1])
def test_non_positive_sizes_are_value_errors(make, arg, value):
    if value == 0 and arg in ("in_features", "out_features"):
        make(value)     # Linear(0, 3), Linear(3, 0): zero-size layers, as in PyTorch
        return
    with pytest.raises(ValueError, match=rf"{arg}.*{value}"):
        make(value)


def test_error_names_the_layer():
    with pytest.raises(TypeError, match=r"^Linear: in_features must be an int, got 2.5"):
        nn.Linear(2.5, 3)
    with pytest.raises(ValueError, match=r"^Conv2d: kernel_size must be positive, got 0"):
        nn.Conv2d(3, 8, 0)
    with pytest.raises(TypeError, match=r"Conv2d: kernel_size"):
        nn.Conv2d(3, 8, (3, 2.0))
    with pytest.raises(TypeError, match=r"Conv2d: kernel_size must be an int or a tuple"):
        nn.Conv2d(3, 8, (3, 3, 3))


def test_padding_may_be_zero_but_not_negative():
    nn.Conv2d(3, 8, 3, padding=0)
    nn.MaxPool2d(2, padding=0)
    with pytest.raises(ValueError, match="Conv2d: padding must be >= 0, got -1"):
        nn.Conv2d(3, 8, 3, padding=-1)
    with pytest.raises(ValueError, match="MaxPool2d: padding"):
        nn.MaxPool2d(2, padding=-1)
    with pytest.raises(ValueError, match="ConvTranspose2d: output_padding"):
        nn.ConvTranspose2d(3, 8, 3, output_padding=-1)


def test_numpy_integers_are_accepted_and_become_python_ints():
    i = np.int64
    layers = [nn.Linear(i(4), np.int32(3)), nn.Conv2d(i(3), i(8), i(3), stride=i(2)),
              nn.Conv2d(3, 8, (i(3), i(1))), nn.MaxPool2d(i(2)), nn.Embedding(i(10), i(4)),
              nn.BatchNorm2d(i(4)), nn.LayerNorm(i(4)), nn.LayerNorm((i(2), 4)),
              nn.GroupNorm(i(2), i(4)), nn.LSTM(i(4), i(5), num_layers=i(2)),
              nn.MultiheadAttention(i(8), i(2))]
    assert type(layers[0].in_features) is int
    assert layers[1].kernel_size == (3, 3) and type(layers[1].stride[0]) is int
    for layer in layers:
        layer.init(fr.key(0))
    y = nn.Linear(i(4), i(3))(nn.Linear(4, 3).init(fr.key(0)), np.ones((2, 4), np.float32))
    assert y.shape == (2, 3)


def test_other_checked_arguments():
    with pytest.raises(TypeError, match=r"Embedding: padding_idx must be an int, got 2.5"):
        nn.Embedding(10, 3, padding_idx=2.5)
    assert nn.Embedding(10, 3, padding_idx=np.int64(-1)).padding_idx == 9
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(10, 3, padding_idx=10)
    with pytest.raises(TypeError, match=r"Dropout: p must be a number, got 'x'"):
        nn.Dropout("x")
    with pytest.raises(ValueError, match=r"Dropout: p must be in \[0, 1\], got 1.5"):
        nn.Dropout(1.5)
    with pytest.raises(TypeError, match=r"MultiheadAttention: dropout"):
        nn.MultiheadAttention(8, 2, dropout="0.1")


def test_valid_layers_still_build():
    nn.Conv2d(3, 8, 3, padding="same")
    nn.Conv1d(4, 8, [3])
    nn.MaxPool2d(2, stride=None)
    nn.RNN(4, 4, dropout=0.5, num_layers=2)
    with pytest.raises(ValueError, match="dropout"):
        nn.RNN(4, 4, dropout=1.5)


# ---- calling a layer without its params -------------------------------------------------
def test_forgetting_params_says_how_layers_are_called():
    model = nn.Linear(4, 3)
    x = np.ones((2, 4), np.float32)
    with pytest.raises(TypeError, match=r"layer\(params, x\).*init\(key\)") as e:
        model(x)
    assert "missing 1 required positional argument" not in str(e.value)
    seq = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    with pytest.raises(TypeError, match=r"Sequential.*\(params, x\)"):
        seq(x)


class Net(nn.Module):
    def __init__(self):
        self.fc = nn.Linear(4, 3)
        self.act = nn.ReLU()
        self.flat = nn.Flatten()

    def forward(self, params, x):
        return self.act(self.fc(params["fc"], self.flat(x)))


def test_parameter_free_layers_take_x_alone():
    x = np.array([[-1.0, 2.0]], np.float32)
    np.testing.assert_array_equal(nn.ReLU()(x), [[0.0, 2.0]])
    np.testing.assert_array_equal(nn.ReLU()({}, x), [[0.0, 2.0]])
    np.testing.assert_array_equal(nn.ReLU()(None, x), [[0.0, 2.0]])
    assert nn.Flatten()(np.ones((2, 3, 4))).shape == (2, 12)
    assert nn.MaxPool2d(2)(np.ones((1, 1, 4, 4))).shape == (1, 1, 2, 2)
    assert nn.Tanh()(np.zeros(3)).shape == (3,)
    # inside a model's forward, as children (plain call and apply)
    net = Net()
    params = net.init(fr.key(0))
    y = net(params, np.ones((2, 2, 2), np.float32))
    assert y.shape == (2, 3)
    y2, _ = net.apply(params, net.init_state(), np.ones((2, 2, 2), np.float32))
    np.testing.assert_array_equal(y, y2)


@pytest.mark.parametrize("cls, defaults", [
    (nn.BatchNorm1d, dict(affine=True, track_running_stats=True)),
    (nn.BatchNorm2d, dict(affine=True, track_running_stats=True)),
    (nn.InstanceNorm1d, dict(affine=False, track_running_stats=False)),
    (nn.InstanceNorm2d, dict(affine=False, track_running_stats=False)),
    (nn.InstanceNorm3d, dict(affine=False, track_running_stats=False)),
])
def test_batch_and_instance_norm_keep_their_defaults_and_buffers(cls, defaults):
    layer = cls(np.int64(3))
    assert type(layer.num_features) is int and layer.num_features == 3
    assert (layer.eps, layer.momentum) == (1e-5, 0.1)
    assert {k: getattr(layer, k) for k in defaults} == defaults
    assert repr(layer) == (f"{cls.__name__}(3, eps=1e-05, momentum=0.1, "
                           f"affine={defaults['affine']}, "
                           f"track_running_stats={defaults['track_running_stats']})")
    full = cls(3, affine=True, track_running_stats=True, dtype=np.float64)
    params, state = full.init(None), full.init_state()
    assert {k: (v.shape, v.dtype) for k, v in params.items()} == {
        "weight": ((3,), np.float64), "bias": ((3,), np.float64)}
    np.testing.assert_array_equal(params["weight"], 1.0)
    np.testing.assert_array_equal(state["running_var"], 1.0)
    assert state["num_batches_tracked"].dtype == np.int64
    assert cls(3, affine=False).init(None) == {}
    assert cls(3, track_running_stats=False).init_state() == {}
