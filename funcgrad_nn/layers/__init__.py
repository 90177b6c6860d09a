"""Layers with PyTorch's names: configuration objects whose parameters you own.

A layer holds only its configuration (sizes, strides, ...). Its parameters are a pytree
of plain dicts and lists of arrays, made by ``layer.init(key)`` and passed in at every
call, so that ``funcgrad.grad`` differentiates with respect to them like any other input.
Parameter names are PyTorch's (``weight``, ``bias``, ``weight_ih_l0``, ...), so a
PyTorch state dict converts both ways (:func:`to_torch_state_dict`,
:func:`from_torch_state_dict`).

The calling convention
----------------------
* ``params = layer.init(key)``: PyTorch's default initialization from a
  ``funcgrad.random`` key. ``state = layer.init_state()``: buffers such as BatchNorm's
  running statistics (an empty dict for layers without any). State never lives in
  ``params``.
* ``y = layer(params, x)``: pure, for layers and models with neither state nor
  randomness (Linear, Conv2d, ReLU, an MLP, ...). Calling it on a model with state
  (BatchNorm) or randomness (Dropout) raises an error pointing to ``apply``.
* ``y, new_state = layer.apply(params, state, x, train=False, key=None)``: works for
  every layer. ``train=True`` selects training behaviour (batch statistics and running
  statistics updates in BatchNorm, dropout on); ``key`` is a ``funcgrad.random`` key,
  needed when ``train=True`` and the model uses dropout.

    >>> import numpy as np, funcgrad, funcgrad.random as fr
    >>> import funcgrad_nn as nn, funcgrad_nn.functional as F
    >>> mlp = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> params = mlp.init(fr.key(0))
    >>> x = np.ones((5, 4), np.float32)
    >>> mlp(params, x).shape
    (5, 3)
    >>> loss = lambda p: F.cross_entropy(mlp(p, x), np.zeros(5, np.int64))
    >>> grads = funcgrad.grad(loss)(params)
    >>> grads[0]["weight"].shape, grads[1]
    ((8, 4), {})

With state and randomness, ``apply`` threads them::

    >>> net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Dropout(0.5))
    >>> params, state = net.init(fr.key(1)), net.init_state()
    >>> y, state = net.apply(params, state, x, train=True, key=fr.key(2))
    >>> int(state[1]["num_batches_tracked"])
    1
    >>> y, _ = net.apply(params, state, x)            # evaluation: train=False, no key
    >>> y.shape
    (5, 8)

Models of your own
------------------
Subclass :class:`Module`, assign child layers as attributes (lists of layers are
allowed) and write ``forward(self, params, *inputs)``. ``params`` is a dict keyed by the
child names, built by the default ``init``. Inside ``apply``, a child called from
``forward`` as ``self.child(params["child"], x)`` receives its own state, the train flag
and (if it is random) a fresh key split off in call order, so the same ``forward``
serves training and evaluation::

    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         self.conv = nn.Conv2d(1, 4, 3, padding=1)
    ...         self.bn = nn.BatchNorm2d(4)
    ...         self.fc = nn.Linear(4, 10)
    ...     def forward(self, params, x):
    ...         x = F.relu(self.bn(params["bn"], self.conv(params["conv"], x)))
    ...         return self.fc(params["fc"], x.mean(axis=(2, 3)))
    >>> net = Net()
    >>> params, state = net.init(fr.key(0)), net.init_state()
    >>> y, state = net.apply(params, state, np.ones((2, 1, 8, 8), np.float32), train=True)
    >>> y.shape, sorted(to_torch_state_dict(params, state))[:3]
    ((2, 10), ['bn.bias', 'bn.num_batches_tracked', 'bn.running_mean'])

A layer with its own parameters overrides ``init`` (and ``init_state`` for buffers).
The lecture's ``MyLayer``, ``y = sqrt(x**2 + bias) @ weight``::

    >>> import funcgrad.numpy as fnp
    >>> from funcgrad_nn import init
    >>> class MyLayer(nn.Module):
    ...     def __init__(self, in_features, out_features):
    ...         self.in_features, self.out_features = in_features, out_features
    ...     def init(self, key):
    ...         kw, kb = fr.split(key)
    ...         return {"weight": init.normal(kw, (self.in_features, self.out_features)),
    ...                 "bias": init.uniform(kb, (self.in_features,), 0.0, 1.0)}
    ...     def forward(self, params, x):
    ...         return fnp.sqrt(x ** 2 + params["bias"]) @ params["weight"]
    >>> layer = MyLayer(3, 2)
    >>> p = layer.init(fr.key(0))
    >>> layer(p, np.ones((4, 3), np.float32)).shape
    (4, 2)

A stateful or random layer of your own overrides ``apply(self, params, state, *inputs,
train=False, key=None)`` returning ``(output, new_state)`` and sets the class attributes
``has_state = True`` / ``is_random = True`` (they make ``__call__`` refuse it).
"""
from ._activation import (CELU, ELU, GELU, GLU, SELU, Hardshrink, Hardsigmoid, Hardswish,
                          Hardtanh, LeakyReLU, LogSoftmax, Mish, ReLU, ReLU6, Sigmoid, SiLU,
                          Softmax, Softmin, Softshrink, Softsign, Tanh, Tanhshrink, Threshold)
from ._attention import MultiheadAttention
from ._base import Module, ModuleList, Sequential
from ._conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d
from ._dropout import Dropout
from ._embedding import Embedding
from ._flatten import Flatten
from ._linear import Identity, Linear
from ._loss import (CosineEmbeddingLoss, GaussianNLLLoss, HingeEmbeddingLoss,
                    MarginRankingLoss, MultiLabelMarginLoss, MultiMarginLoss, PoissonNLLLoss,
                    TripletMarginLoss)
from ._normalization import (BatchNorm1d, BatchNorm2d, GroupNorm, InstanceNorm1d,
                             InstanceNorm2d, InstanceNorm3d, LayerNorm, LocalResponseNorm)
from ._pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d,
                       AdaptiveMaxPool1d, AdaptiveMaxPool2d, AdaptiveMaxPool3d, AvgPool1d,
                       AvgPool2d, AvgPool3d, Fold, MaxPool1d, MaxPool2d, MaxPool3d, Unfold)
from ._recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from ._shuffle import PixelShuffle, PixelUnshuffle
from ._state_dict import from_torch_state_dict, to_torch_state_dict
from ._summary import count_params, summary

__all__ = [
    "Module", "Sequential", "ModuleList",
    "Linear", "Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d",
    "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "Unfold", "Fold",
    "BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm", "InstanceNorm1d",
    "InstanceNorm2d", "InstanceNorm3d", "LocalResponseNorm", "Dropout", "Embedding",
    "Flatten", "Identity", "PixelShuffle", "PixelUnshuffle",
    "ReLU", "ReLU6", "Hardtanh", "LeakyReLU", "ELU", "SELU", "CELU", "GELU", "SiLU",
    "Sigmoid", "Tanh", "Softsign", "Tanhshrink", "Threshold", "GLU", "Softmax", "Softmin",
    "LogSoftmax", "Hardshrink", "Softshrink", "Hardsigmoid", "Hardswish", "Mish",
    "CosineEmbeddingLoss", "MarginRankingLoss", "HingeEmbeddingLoss", "MultiMarginLoss",
    "MultiLabelMarginLoss", "TripletMarginLoss", "PoissonNLLLoss", "GaussianNLLLoss",
    "RNNCell", "LSTMCell", "GRUCell", "RNN", "LSTM", "GRU", "MultiheadAttention",
    "summary", "to_torch_state_dict", "from_torch_state_dict", "count_params",
]
