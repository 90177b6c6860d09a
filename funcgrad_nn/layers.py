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
from __future__ import annotations

import math
import numbers
import threading

import numpy as np

import funcgrad
import funcgrad.numpy as fnp
import funcgrad.tree_util as tu
from funcgrad.errors import FuncgradTypeError, FuncgradValueError

from . import functional as F
from . import init as _init

__all__ = [
    "Module", "Sequential", "ModuleList",
    "Linear", "Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d",
    "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm", "Dropout", "Embedding",
    "Flatten", "Identity", "ReLU", "LeakyReLU", "ELU", "GELU", "SiLU", "Sigmoid", "Tanh",
    "Softmax", "LogSoftmax",
    "RNNCell", "LSTMCell", "GRUCell", "RNN", "LSTM", "GRU", "MultiheadAttention",
    "summary", "to_torch_state_dict", "from_torch_state_dict", "count_params",
]


def _fr():
    import funcgrad.random as fr
    return fr


def _split(key, n):
    if n == 0:
        return []
    if key is None:
        raise FuncgradValueError("init: needs a random key, e.g. funcgrad.random.key(0)")
    return list(_fr().split(key, n))


def _shape(x):
    return tuple(getattr(x, "shape", np.shape(x)))


# --------------------------------------------------------------------------------------
# The call frames that give children their state and keys inside `apply`


class _Frames(threading.local):
    def __init__(self):
        self.stack = []
        self.recorder = None


_frames = _Frames()


class _Frame:
    """One ``Module.apply`` in progress: the state it was given, the state its children
    produced so far, the train flag and the key to split for each child call."""

    __slots__ = ("owner", "names", "state", "new_state", "train", "key")

    def __init__(self, owner, state, train, key):
        self.owner = owner
        self.names = {id(m): name for name, m in owner.named_children()}
        self.state = state
        self.new_state = {}
        self.train = train
        self.key = key

    def call_child(self, name, child, params, args, kwargs):
        if name in self.new_state:
            s = self.new_state[name]
        else:
            s = _child_of(self.state, name, self.owner)
            if s is None:
                if child._stateful:
                    raise FuncgradValueError(
                        f"{type(self.owner).__name__}.apply: the state has no entry for the "
                        f"stateful child {name!r} ({child._short()}); pass the state from "
                        "model.init_state() (or from the previous apply)")
                s = {}
        sub = None
        if self.key is not None and child._random:
            self.key, sub = _fr().split(self.key)
        y, s = child.apply(params, s, *args, train=self.train, key=sub, **kwargs)
        self.new_state[name] = s
        return y


def _child_of(tree, name, owner):
    """``tree[name]`` for a dict or ``tree[int(name)]`` for a list; None when absent."""
    if tree is None:
        return None
    if isinstance(tree, (list, tuple)):
        i = int(name)
        return tree[i] if i < len(tree) else None
    if isinstance(tree, dict):
        return tree.get(name)
    raise FuncgradTypeError(
        f"{type(owner).__name__}: expected a dict or list of the children's entries, got "
        f"{type(tree).__name__}")


def _record(module, y):
    rec = _frames.recorder
    if rec is not None and id(module) not in rec:
        rec[id(module)] = tu.tree_map(lambda a: _shape(a), y)


# --------------------------------------------------------------------------------------
# Module


class Module:
    """Base class of layers and of your own models (see the module docstring).

    Attributes that are Modules (or lists/tuples of Modules, stored as a
    :class:`ModuleList`) are children, in assignment order. The defaults:

    * ``init(key)``: ``{name: child.init(subkey)}`` (a list for Sequential/ModuleList);
    * ``init_state()``: ``{name: child.init_state()}``;
    * ``apply(params, state, *inputs, train=False, key=None)``: runs ``forward`` with the
      children's state and keys threaded, returns ``(output, new_state)``;
    * ``__call__(params, *inputs)``: ``forward`` for models without state/randomness.
    """

    #: class-level flags for leaf layers; composites derive them from their children.
    has_state = False
    is_random = False

    def __setattr__(self, name, value):
        if (isinstance(value, (list, tuple)) and value
                and all(isinstance(v, Module) for v in value)):
            value = ModuleList(value)
        object.__setattr__(self, name, value)

    # ---- structure
    def named_children(self):
        """``[(name, child), ...]`` in assignment order."""
        return [(k, v) for k, v in vars(self).items()
                if isinstance(v, Module) and not k.startswith("_")]

    def children(self):
        return [m for _, m in self.named_children()]

    def named_modules(self, prefix=""):
        """``[(dotted_name, module), ...]``, this module first (name ``prefix``)."""
        out = [(prefix, self)]
        for name, child in self.named_children():
            out.extend(child.named_modules(f"{prefix}.{name}" if prefix else name))
        return out

    @property
    def _stateful(self):
        return type(self).has_state or any(c._stateful for c in self.children())

    @property
    def _random(self):
        return type(self).is_random or any(c._random for c in self.children())

    def _container(self, items):
        """The params/state container for this module's children."""
        return dict(items)

    # ---- parameters and state
    def init(self, key):
        """PyTorch's default initialization of the parameters (a pytree)."""
        kids = self.named_children()
        keys = _split(key, len(kids))
        return self._container([(n, c.init(k)) for (n, c), k in zip(kids, keys)])

    def init_state(self):
        """The initial state (buffers) pytree; empty for modules without state."""
        return self._container([(n, c.init_state()) for n, c in self.named_children()])

    # ---- calling
    def forward(self, params, *inputs, **kwargs):
        """The computation; override it in your own models."""
        raise NotImplementedError(
            f"{type(self).__name__} defines no forward(self, params, x); override it (or "
            "apply, for a layer with state or randomness)")

    def __call__(self, params, *inputs, **kwargs):
        frame = _frames.stack[-1] if _frames.stack else None
        if frame is not None:
            name = frame.names.get(id(self))
            if name is not None:
                return frame.call_child(name, self, params, inputs, kwargs)
        if self._stateful or self._random:
            what = " and ".join(w for w, f in (("state (e.g. BatchNorm running statistics)",
                                                self._stateful),
                                               ("randomness (e.g. Dropout)", self._random))
                                if f)
            raise FuncgradTypeError(
                f"{self._short()} has {what}, so it cannot be called as a pure function "
                "model(params, x). Use `y, state = model.apply(params, state, x, train=..., "
                "key=...)` with `state = model.init_state()`.")
        y = self.forward(params, *inputs, **kwargs)
        _record(self, y)
        return y

    def apply(self, params, state, *inputs, train=False, key=None, **kwargs):
        """``(output, new_state)``: run the model with explicit state and randomness.

        Args:
          params: the parameters pytree from ``init``.
          state: the state pytree from ``init_state`` (or a previous ``apply``); ``None``
            or ``{}`` for models without state.
          inputs: the inputs, passed to ``forward``.
          train: training mode (batch statistics and their running update, dropout).
          key: a ``funcgrad.random`` key, split among the random children (Dropout...)
            in call order; needed when ``train`` and the model uses dropout.
        """
        frame = _Frame(self, state, bool(train), key)
        _frames.stack.append(frame)
        try:
            y = self.forward(params, *inputs, **kwargs)
        finally:
            _frames.stack.pop()
        new = []
        for name, child in self.named_children():
            if name in frame.new_state:
                new.append((name, frame.new_state[name]))
            else:
                s = _child_of(state, name, self)
                new.append((name, child.init_state() if s is None else s))
        _record(self, y)
        return y, self._container(new)

    # ---- printing
    def extra_repr(self):
        return ""

    def _short(self):
        return f"{type(self).__name__}({self.extra_repr()})"

    def __repr__(self):
        kids = self.named_children()
        if not kids:
            return self._short()
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in kids:
            sub = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {sub}")
        return "\n".join(lines) + "\n)"


class _Leaf(Module):
    """A built-in layer: no children, own parameters checked at every call."""

    def _expected(self):
        """``{name: shape}`` of the parameters (nested dicts allowed)."""
        return {}

    def init(self, key):
        return {}

    def init_state(self):
        return {}

    def _check(self, params):
        _check_params(self, params, self._expected(), "params")

    def _bad_input(self, x, wanted):
        raise FuncgradValueError(f"{self._short()}: expected {wanted}, got shape {_shape(x)}")


def _check_params(layer, params, expected, where):
    if not isinstance(params, dict):
        raise FuncgradTypeError(
            f"{layer._short()}: {where} must be a dict with keys {sorted(expected)}, got "
            f"{type(params).__name__}")
    if set(params) != set(expected):
        raise FuncgradValueError(
            f"{layer._short()}: {where} has keys {sorted(params)}, expected "
            f"{sorted(expected)} (make them with layer.init(key))")
    for k, shp in expected.items():
        if isinstance(shp, dict):
            _check_params(layer, params[k], shp, f"{where}[{k!r}]")
        elif _shape(params[k]) != tuple(shp):
            raise FuncgradValueError(
                f"{layer._short()}: {where}[{k!r}] has shape {_shape(params[k])}, expected "
                f"{tuple(shp)}")


# --------------------------------------------------------------------------------------
# Containers


class Sequential(Module):
    """Layers applied in order; params and state are lists with one entry per layer
    (PyTorch's state-dict names ``"0.weight"``, ``"1.running_mean"``...).

    Example:
        >>> import funcgrad.random as fr
        >>> model = Sequential(Linear(2, 3), ReLU())
        >>> [sorted(p) for p in model.init(fr.key(0))]
        [['bias', 'weight'], []]
    """

    def __init__(self, *layers):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, m in enumerate(layers):
            if not isinstance(m, Module):
                raise FuncgradTypeError(
                    f"Sequential: entry {i} is a {type(m).__name__}, not a Module")
            object.__setattr__(self, str(i), m)

    def _container(self, items):
        return [v for _, v in items]

    def __len__(self):
        return len(self.named_children())

    def __getitem__(self, i):
        kids = self.children()
        return Sequential(*kids[i]) if isinstance(i, slice) else kids[i]

    def __iter__(self):
        return iter(self.children())

    def forward(self, params, x):
        kids = self.children()
        if not isinstance(params, (list, tuple)) or len(params) != len(kids):
            n = len(params) if hasattr(params, "__len__") else "?"
            raise FuncgradValueError(
                f"Sequential of {len(kids)} layers: params must be a list of {len(kids)} "
                f"entries (from model.init(key)), got {type(params).__name__} of length {n}")
        for layer, p in zip(kids, params):
            x = layer(p, x)
        return x


class ModuleList(Sequential):
    """A list of layers without a forward of its own; params/state are lists."""

    def forward(self, params, *inputs):
        raise NotImplementedError("ModuleList has no forward; call its layers in yours")


# --------------------------------------------------------------------------------------
# Linear and convolutions


def _default_bias(key, fan_in, shape, dtype):
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return _init.uniform(key, shape, -bound, bound, dtype)


class Linear(_Leaf):
    """``y = x @ weight.T + bias``; params ``{"weight": (out, in), "bias": (out,)}``,
    initialized as in PyTorch (``U(-1/sqrt(in), 1/sqrt(in))``)."""

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32):
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.bias, self.dtype = bool(bias), dtype

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias}"

    def _expected(self):
        e = {"weight": (self.out_features, self.in_features)}
        if self.bias:
            e["bias"] = (self.out_features,)
        return e

    def init(self, key):
        kw, kb = _split(key, 2)
        shape = (self.out_features, self.in_features)
        p = {"weight": _init.kaiming_uniform(kw, shape, a=math.sqrt(5), dtype=self.dtype)}
        if self.bias:
            p["bias"] = _default_bias(kb, self.in_features, (self.out_features,), self.dtype)
        return p

    def forward(self, params, x):
        self._check(params)
        if len(_shape(x)) < 1 or _shape(x)[-1] != self.in_features:
            self._bad_input(x, f"an input whose last axis has size {self.in_features}")
        return F.linear(x, params["weight"], params.get("bias"))


class _ConvNd(_Leaf):
    _nd = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", dtype=np.float32,
                 output_padding=0):
        nd = self._nd
        name = type(self).__name__
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = F._ntuple(kernel_size, nd, "kernel_size", name)
        self.stride = F._ntuple(stride, nd, "stride", name)
        self.padding = padding if isinstance(padding, str) else F._ntuple(
            padding, nd, "padding", name)
        self.dilation = F._ntuple(dilation, nd, "dilation", name)
        self.output_padding = F._ntuple(output_padding, nd, "output_padding", name)
        self.groups = int(groups)
        self.bias, self.padding_mode, self.dtype = bool(bias), padding_mode, dtype
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise FuncgradValueError(
                f"{name}: in_channels={in_channels} and out_channels={out_channels} must be "
                f"divisible by groups={groups}")
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise FuncgradValueError(
                f"{name}: padding_mode must be 'zeros', 'reflect', 'replicate' or "
                f"'circular', got {padding_mode!r}")
        if isinstance(padding, str) and padding not in ("same", "valid"):
            raise FuncgradValueError(f"{name}: padding must be 'same', 'valid' or ints")
        if padding == "same" and any(s != 1 for s in self.stride):
            raise FuncgradValueError(f"{name}: padding='same' needs stride 1, got {stride}")

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * self._nd:
            s += f", padding={self.padding!r}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if self._transposed and self.output_padding != (0,) * self._nd:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if not self.bias:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode!r}"
        return s

    def _weight_shape(self):
        if self._transposed:
            return (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        return (self.out_channels, self.in_channels // self.groups) + self.kernel_size

    def _expected(self):
        e = {"weight": self._weight_shape()}
        if self.bias:
            e["bias"] = (self.out_channels,)
        return e

    def init(self, key):
        kw, kb = _split(key, 2)
        shape = self._weight_shape()
        p = {"weight": _init.kaiming_uniform(kw, shape, a=math.sqrt(5), dtype=self.dtype)}
        if self.bias:
            fan_in = _init.fan_in_and_fan_out(shape)[0]
            p["bias"] = _default_bias(kb, fan_in, (self.out_channels,), self.dtype)
        return p

    def _check_input(self, x):
        shp, nd, c = _shape(x), self._nd, self.in_channels
        if len(shp) not in (nd + 1, nd + 2) or shp[-nd - 1] != c:
            self._bad_input(x, f"a {nd + 2}-D (N, {c}, ...) or {nd + 1}-D ({c}, ...) input "
                               f"with {c} channels")


class Conv1d(_ConvNd):
    """1-D convolution layer; arguments as :class:`Conv2d`."""

    _nd = 1

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", dtype=np.float32):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype)

    def forward(self, params, x):
        self._check(params)
        self._check_input(x)
        return F.conv1d(x, params["weight"], params.get("bias"), self.stride, self.padding,
                        self.dilation, self.groups, self.padding_mode)


class Conv2d(_ConvNd):
    """2-D convolution layer over ``(N, C, H, W)`` (or ``(C, H, W)``) inputs.

    Args (PyTorch's): in_channels, out_channels, kernel_size, stride=1, padding=0 (an int,
    a pair, ``'same'`` or ``'valid'``), dilation=1, groups=1, bias=True,
    padding_mode ``'zeros' | 'reflect' | 'replicate' | 'circular'``, dtype=float32.

    Params: ``weight (out_channels, in_channels // groups, kH, kW)``, ``bias
    (out_channels,)``, initialized as in PyTorch.
    """

    _nd = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", dtype=np.float32):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype)

    def forward(self, params, x):
        self._check(params)
        self._check_input(x)
        return F.conv2d(x, params["weight"], params.get("bias"), self.stride, self.padding,
                        self.dilation, self.groups, self.padding_mode)


class ConvTranspose1d(_ConvNd):
    """1-D transposed convolution layer; arguments as :class:`ConvTranspose2d`."""

    _nd = 1
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 dtype=np.float32):
        if padding_mode != "zeros":
            raise FuncgradValueError("ConvTranspose1d: only padding_mode='zeros' is supported")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype, output_padding)

    def forward(self, params, x):
        self._check(params)
        self._check_input(x)
        return F.conv_transpose1d(x, params["weight"], params.get("bias"), self.stride,
                                  self.padding, self.output_padding, self.groups,
                                  self.dilation)


class ConvTranspose2d(_ConvNd):
    """2-D transposed convolution layer (PyTorch's argument order: in_channels,
    out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
    bias=True, dilation=1).

    Params: ``weight (in_channels, out_channels // groups, kH, kW)``, ``bias
    (out_channels,)``.
    """

    _nd = 2
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 dtype=np.float32):
        if padding_mode != "zeros":
            raise FuncgradValueError("ConvTranspose2d: only padding_mode='zeros' is supported")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype, output_padding)

    def forward(self, params, x):
        self._check(params)
        self._check_input(x)
        return F.conv_transpose2d(x, params["weight"], params.get("bias"), self.stride,
                                  self.padding, self.output_padding, self.groups,
                                  self.dilation)


# --------------------------------------------------------------------------------------
# Pooling


class _Parameterless(_Leaf):
    """A layer with no parameters: ``params`` must be ``{}`` (or None)."""

    def _check(self, params):
        if params not in (None, {}) and not (isinstance(params, dict) and not params):
            raise FuncgradValueError(
                f"{self._short()}: has no parameters; pass {{}} (what init returns), got "
                f"{type(params).__name__}")


class _PoolNd(_Parameterless):
    _nd = 2
    _max = True

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                 count_include_pad=True, return_indices=False, divisor_override=None):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode = dilation, ceil_mode
        self.count_include_pad, self.return_indices = count_include_pad, return_indices
        self.divisor_override = divisor_override

    def extra_repr(self):
        s = f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, " \
            f"padding={self.padding}"
        if self._max:
            s += f", dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        return s

    def forward(self, params, x):
        self._check(params)
        nd = self._nd
        if len(_shape(x)) not in (nd + 1, nd + 2):
            self._bad_input(x, f"a {nd + 2}-D batched or {nd + 1}-D unbatched input")
        if self._max:
            f = F.max_pool1d if nd == 1 else F.max_pool2d
            return f(x, self.kernel_size, self.stride, self.padding, self.dilation,
                     self.ceil_mode, self.return_indices)
        if nd == 1:
            return F.avg_pool1d(x, self.kernel_size, self.stride, self.padding,
                                self.ceil_mode, self.count_include_pad)
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


class MaxPool1d(_PoolNd):
    """1-D max pooling (kernel_size, stride=None, padding=0, dilation=1,
    return_indices=False, ceil_mode=False)."""

    _nd = 1

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices=False, ceil_mode=False):
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode,
                         return_indices=return_indices)


class MaxPool2d(_PoolNd):
    """2-D max pooling (kernel_size, stride=None, padding=0, dilation=1,
    return_indices=False, ceil_mode=False), see :func:`functional.max_pool2d`."""

    _nd = 2

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices=False, ceil_mode=False):
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode,
                         return_indices=return_indices)


class AvgPool1d(_PoolNd):
    """1-D average pooling (kernel_size, stride=None, padding=0, ceil_mode=False,
    count_include_pad=True)."""

    _nd = 1
    _max = False

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__(kernel_size, stride, padding, 1, ceil_mode, count_include_pad)


class AvgPool2d(_PoolNd):
    """2-D average pooling (kernel_size, stride=None, padding=0, ceil_mode=False,
    count_include_pad=True, divisor_override=None)."""

    _nd = 2
    _max = False

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__(kernel_size, stride, padding, 1, ceil_mode, count_include_pad,
                         divisor_override=divisor_override)


class AdaptiveAvgPool1d(_Parameterless):
    """1-D adaptive average pooling to ``output_size`` bins."""

    def __init__(self, output_size):
        self.output_size = output_size

    def extra_repr(self):
        return f"output_size={self.output_size}"

    def forward(self, params, x):
        self._check(params)
        return F.adaptive_avg_pool1d(x, self.output_size)


class AdaptiveAvgPool2d(_Parameterless):
    """2-D adaptive average pooling to ``output_size`` (an int or a pair; None keeps)."""

    def __init__(self, output_size):
        self.output_size = output_size

    def extra_repr(self):
        return f"output_size={self.output_size}"

    def forward(self, params, x):
        self._check(params)
        return F.adaptive_avg_pool2d(x, self.output_size)


# --------------------------------------------------------------------------------------
# Normalization


class _BatchNorm(_Leaf):
    _ranks = (2, 3)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=np.float32):
        self.num_features, self.eps, self.momentum = int(num_features), eps, momentum
        self.affine, self.track_running_stats, self.dtype = affine, track_running_stats, dtype

    @property
    def _stateful(self):
        return self.track_running_stats

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")

    def _expected(self):
        c = (self.num_features,)
        return {"weight": c, "bias": c} if self.affine else {}

    def init(self, key):
        if not self.affine:
            return {}
        return {"weight": np.ones(self.num_features, self.dtype),
                "bias": np.zeros(self.num_features, self.dtype)}

    def init_state(self):
        """``running_mean`` (zeros), ``running_var`` (ones), ``num_batches_tracked``
        (an int64 0), PyTorch's buffers; empty if ``track_running_stats=False``."""
        if not self.track_running_stats:
            return {}
        return {"running_mean": np.zeros(self.num_features, self.dtype),
                "running_var": np.ones(self.num_features, self.dtype),
                "num_batches_tracked": np.zeros((), np.int64)}

    def forward(self, params, x):
        """Evaluation with running statistics; only reachable without state."""
        y, _ = self.apply(params, self.init_state(), x)
        return y

    def apply(self, params, state, x, *, train=False, key=None):
        self._check(params)
        shp = _shape(x)
        if len(shp) not in self._ranks or shp[1] != self.num_features:
            self._bad_input(x, f"a {' or '.join(map(str, self._ranks))}-D input of shape "
                               f"(N, {self.num_features}, ...)")
        if self.track_running_stats:
            _check_params(self, state, {"running_mean": (self.num_features,),
                                        "running_var": (self.num_features,),
                                        "num_batches_tracked": ()}, "state")
        w, b = params.get("weight"), params.get("bias")
        if not self.track_running_stats:
            y, _, _ = F.batch_norm(x, None, None, w, b, True, 0.0, self.eps)
            _record(self, y)
            return y, state if state is not None else {}
        if not train:
            y, _, _ = F.batch_norm(x, state["running_mean"], state["running_var"], w, b,
                                   False, 0.0, self.eps)
            _record(self, y)
            return y, state
        n = state["num_batches_tracked"] + 1
        if not hasattr(n, "shape") or isinstance(n, np.generic):   # a scalar: make it a
            n = np.asarray(n)            # 0-d array (device counts already are, keep them)
        mom = self.momentum
        if mom is None:      # cumulative moving average: the factor is 1 / batches seen
            mom = fnp.astype(1.0 / n, np.dtype(state["running_mean"].dtype))
        y, rm, rv = F.batch_norm(x, state["running_mean"], state["running_var"], w, b,
                                 True, mom, self.eps)
        _record(self, y)
        return y, {"running_mean": rm, "running_var": rv, "num_batches_tracked": n}


class BatchNorm1d(_BatchNorm):
    """Batch normalization of ``(N, C)`` or ``(N, C, L)`` inputs (PyTorch's arguments:
    num_features, eps=1e-5, momentum=0.1 (None: cumulative average), affine=True,
    track_running_stats=True). Running statistics live in the state; they are used and
    kept when ``train=False``, updated when ``train=True``."""

    _ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalization of ``(N, C, H, W)`` inputs; see :class:`BatchNorm1d`."""

    _ranks = (4,)


class LayerNorm(_Leaf):
    """Normalization over the trailing ``normalized_shape`` axes, with elementwise affine
    ``weight`` (ones) and ``bias`` (zeros) of that shape."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 dtype=np.float32):
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (int(normalized_shape),)
        self.normalized_shape = tuple(int(s) for s in normalized_shape)
        self.eps, self.elementwise_affine, self.bias = eps, elementwise_affine, bias
        self.dtype = dtype

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")

    def _expected(self):
        e = {}
        if self.elementwise_affine:
            e["weight"] = self.normalized_shape
            if self.bias:
                e["bias"] = self.normalized_shape
        return e

    def init(self, key):
        return {k: (np.ones if k == "weight" else np.zeros)(s, self.dtype)
                for k, s in self._expected().items()}

    def forward(self, params, x):
        self._check(params)
        k = len(self.normalized_shape)
        if _shape(x)[len(_shape(x)) - k:] != self.normalized_shape:
            self._bad_input(x, f"an input ending in {self.normalized_shape}")
        return F.layer_norm(x, self.normalized_shape, params.get("weight"),
                            params.get("bias"), self.eps)


class GroupNorm(_Leaf):
    """Group normalization (num_groups, num_channels, eps=1e-5, affine=True) of
    ``(N, C, *)`` inputs."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, dtype=np.float32):
        if num_channels % num_groups:
            raise FuncgradValueError(
                f"GroupNorm: num_channels={num_channels} must be divisible by "
                f"num_groups={num_groups}")
        self.num_groups, self.num_channels = int(num_groups), int(num_channels)
        self.eps, self.affine, self.dtype = eps, affine, dtype

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"

    def _expected(self):
        c = (self.num_channels,)
        return {"weight": c, "bias": c} if self.affine else {}

    def init(self, key):
        if not self.affine:
            return {}
        return {"weight": np.ones(self.num_channels, self.dtype),
                "bias": np.zeros(self.num_channels, self.dtype)}

    def forward(self, params, x):
        self._check(params)
        shp = _shape(x)
        if len(shp) < 2 or shp[1] != self.num_channels:
            self._bad_input(x, f"an input of shape (N, {self.num_channels}, ...)")
        return F.group_norm(x, self.num_groups, params.get("weight"), params.get("bias"),
                            self.eps)


# --------------------------------------------------------------------------------------
# Dropout, Embedding, shape layers and activations


class Dropout(_Parameterless):
    """Dropout with probability ``p`` in training (``apply(..., train=True, key=k)``);
    the identity in evaluation."""

    def __init__(self, p=0.5):
        if not 0.0 <= p <= 1.0:
            raise FuncgradValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = float(p)

    @property
    def _random(self):
        return self.p > 0

    def extra_repr(self):
        return f"p={self.p}"

    def forward(self, params, x):
        self._check(params)
        return x

    def apply(self, params, state, x, *, train=False, key=None):
        self._check(params)
        if train and self.p > 0 and key is None:
            raise FuncgradValueError(
                f"{self._short()}: train=True needs a random key: "
                "model.apply(params, state, x, train=True, key=funcgrad.random.key(...))")
        y = F.dropout(x, self.p, bool(train), key=key)
        _record(self, y)
        return y, state if state is not None else {}


class Embedding(_Leaf):
    """A lookup table ``weight (num_embeddings, embedding_dim)``, initialized ``N(0, 1)``
    with the ``padding_idx`` row zero (and never updated: it gets no gradient)."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None,
                 norm_type=2.0, dtype=np.float32):
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise FuncgradValueError(
                    f"Embedding: padding_idx={padding_idx} must be within num_embeddings="
                    f"{num_embeddings}")
            padding_idx = padding_idx % num_embeddings
        self.padding_idx, self.max_norm, self.norm_type = padding_idx, max_norm, norm_type
        self.dtype = dtype

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s

    def _expected(self):
        return {"weight": (self.num_embeddings, self.embedding_dim)}

    def init(self, key):
        w = _init.normal(key, (self.num_embeddings, self.embedding_dim), dtype=self.dtype)
        if self.padding_idx is not None:
            w = np.array(w)
            w[self.padding_idx] = 0
        return {"weight": w}

    def forward(self, params, x):
        self._check(params)
        dt = np.dtype(getattr(x, "dtype", None) or np.asarray(x).dtype)
        if dt.kind not in "iu":
            raise FuncgradTypeError(
                f"{self._short()}: expected integer indices, got dtype {dt}")
        return F.embedding(x, params["weight"], self.padding_idx, self.max_norm,
                           self.norm_type)


class Flatten(_Parameterless):
    """Flatten axes ``start_dim..end_dim`` (default 1..-1) into one."""

    def __init__(self, start_dim=1, end_dim=-1):
        self.start_dim, self.end_dim = start_dim, end_dim

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"

    def forward(self, params, x):
        self._check(params)
        shp = _shape(x)
        nd = len(shp)
        s, e = self.start_dim % max(nd, 1), self.end_dim % max(nd, 1)
        if nd == 0 or s > e:
            self._bad_input(x, f"an input with axes {self.start_dim}..{self.end_dim}")
        return fnp.reshape(x, shp[:s] + (-1,) + shp[e + 1:])


class Identity(_Parameterless):
    """Returns its input."""

    def __init__(self, *args, **kwargs):
        pass

    def forward(self, params, x):
        return x


class _Activation(_Parameterless):
    _fn = None
    _args = ()

    def extra_repr(self):
        return ", ".join(f"{a}={getattr(self, a)!r}" for a in self._args)

    def forward(self, params, x):
        self._check(params)
        return type(self)._fn(x, **{a: getattr(self, a) for a in self._args})


class ReLU(_Activation):
    """``max(x, 0)``."""
    _fn = staticmethod(F.relu)

    def __init__(self, inplace=False):
        pass


class LeakyReLU(_Activation):
    """``x`` if ``x > 0`` else ``negative_slope * x``."""
    _fn = staticmethod(F.leaky_relu)
    _args = ("negative_slope",)

    def __init__(self, negative_slope=0.01, inplace=False):
        self.negative_slope = negative_slope


class ELU(_Activation):
    """``x`` if ``x > 0`` else ``alpha * (exp(x) - 1)``."""
    _fn = staticmethod(F.elu)
    _args = ("alpha",)

    def __init__(self, alpha=1.0, inplace=False):
        self.alpha = alpha


class GELU(_Activation):
    """``x * Phi(x)`` (``approximate='none'`` or ``'tanh'``)."""
    _fn = staticmethod(F.gelu)
    _args = ("approximate",)

    def __init__(self, approximate="none"):
        self.approximate = approximate


class SiLU(_Activation):
    """``x * sigmoid(x)``."""
    _fn = staticmethod(F.silu)

    def __init__(self, inplace=False):
        pass


class Sigmoid(_Activation):
    """``1 / (1 + exp(-x))``."""
    _fn = staticmethod(F.sigmoid)


class Tanh(_Activation):
    """Hyperbolic tangent."""
    _fn = staticmethod(F.tanh)


class Softmax(_Activation):
    """Softmax along ``dim`` (alias ``axis``; default -1, the last axis)."""
    _fn = staticmethod(F.softmax)
    _args = ("axis",)

    def __init__(self, dim=None, *, axis=None):
        self.axis = F._axis(axis, dim, -1, "Softmax")


class LogSoftmax(_Activation):
    """Log-softmax along ``dim`` (alias ``axis``; default -1)."""
    _fn = staticmethod(F.log_softmax)
    _args = ("axis",)

    def __init__(self, dim=None, *, axis=None):
        self.axis = F._axis(axis, dim, -1, "LogSoftmax")


# --------------------------------------------------------------------------------------
# Recurrent layers


def _rnn_init(key, shapes, hidden_size, dtype):
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    keys = _split(key, len(shapes))
    return {name: _init.uniform(k, shp, -bound, bound, dtype)
            for (name, shp), k in zip(shapes.items(), keys)}


def _gates(x_proj, h, w_hh, b_hh):
    """``x_proj + h @ w_hh.T + b_hh`` (x_proj already holds ``x @ w_ih.T + b_ih``)."""
    g = x_proj + fnp.matmul(h, fnp.transpose(w_hh))
    return g if b_hh is None else g + b_hh


def _rnn_step(mode, nonlinearity, x_proj, h, c, w_hh, b_hh, hs):
    """One recurrent step; returns (h, c). Gate orders are PyTorch's."""
    if mode == "LSTM":
        g = _gates(x_proj, h, w_hh, b_hh)
        i = F.sigmoid(g[..., 0:hs])
        f = F.sigmoid(g[..., hs:2 * hs])
        gg = fnp.tanh(g[..., 2 * hs:3 * hs])
        o = F.sigmoid(g[..., 3 * hs:4 * hs])
        c = f * c + i * gg
        return o * fnp.tanh(c), c
    if mode == "GRU":
        gh = fnp.matmul(h, fnp.transpose(w_hh))
        if b_hh is not None:
            gh = gh + b_hh
        r = F.sigmoid(x_proj[..., 0:hs] + gh[..., 0:hs])
        z = F.sigmoid(x_proj[..., hs:2 * hs] + gh[..., hs:2 * hs])
        n = fnp.tanh(x_proj[..., 2 * hs:] + r * gh[..., 2 * hs:])
        return (1.0 - z) * n + z * h, None
    g = _gates(x_proj, h, w_hh, b_hh)
    return (fnp.tanh(g) if nonlinearity == "tanh" else F.relu(g)), None


_GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


class _CellBase(_Leaf):
    _mode = "RNN"

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh",
                 dtype=np.float32):
        if nonlinearity not in ("tanh", "relu"):
            raise FuncgradValueError(
                f"{type(self).__name__}: nonlinearity must be 'tanh' or 'relu', got "
                f"{nonlinearity!r}")
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.bias, self.nonlinearity, self.dtype = bias, nonlinearity, dtype

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if self._mode == "RNN" and self.nonlinearity != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        return s

    def _expected(self):
        g = _GATES[self._mode] * self.hidden_size
        e = {"weight_ih": (g, self.input_size), "weight_hh": (g, self.hidden_size)}
        if self.bias:
            e.update(bias_ih=(g,), bias_hh=(g,))
        return e

    def init(self, key):
        return _rnn_init(key, self._expected(), self.hidden_size, self.dtype)

    def forward(self, params, input, hx=None):
        self._check(params)
        shp = _shape(input)
        if len(shp) not in (1, 2) or shp[-1] != self.input_size:
            self._bad_input(input, f"a (N, {self.input_size}) or ({self.input_size},) input")
        hs = self.hidden_size
        batch = shp[:-1]
        zeros = fnp.zeros(batch + (hs,), dtype=input.dtype)
        if self._mode == "LSTM":
            h, c = (zeros, zeros) if hx is None else hx
        else:
            h, c = (zeros if hx is None else hx), None
        if _shape(h) != batch + (hs,):
            raise FuncgradValueError(
                f"{self._short()}: hidden state of shape {_shape(h)}, expected {batch + (hs,)}")
        xp = F.linear(input, params["weight_ih"], params.get("bias_ih"))
        h, c = _rnn_step(self._mode, self.nonlinearity, xp, h, c, params["weight_hh"],
                         params.get("bias_hh"), hs)
        return (h, c) if self._mode == "LSTM" else h


class RNNCell(_CellBase):
    """One Elman RNN step ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)``;
    ``cell(params, x, h=None) -> h'``."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh",
                 dtype=np.float32):
        super().__init__(input_size, hidden_size, bias, nonlinearity, dtype)


class LSTMCell(_CellBase):
    """One LSTM step (gates i, f, g, o, PyTorch's order);
    ``cell(params, x, (h, c)=None) -> (h', c')``."""

    _mode = "LSTM"

    def __init__(self, input_size, hidden_size, bias=True, dtype=np.float32):
        super().__init__(input_size, hidden_size, bias, "tanh", dtype)


class GRUCell(_CellBase):
    """One GRU step (gates r, z, n, PyTorch's order); ``cell(params, x, h=None) -> h'``."""

    _mode = "GRU"

    def __init__(self, input_size, hidden_size, bias=True, dtype=np.float32):
        super().__init__(input_size, hidden_size, bias, "tanh", dtype)


class _RNNBase(_Leaf):
    _mode = "RNN"

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh",
                 bias=True, batch_first=False, dropout=0.0, bidirectional=False,
                 dtype=np.float32):
        if nonlinearity not in ("tanh", "relu"):
            raise FuncgradValueError(
                f"{type(self).__name__}: nonlinearity must be 'tanh' or 'relu', got "
                f"{nonlinearity!r}")
        if not 0.0 <= dropout <= 1.0:
            raise FuncgradValueError(f"{type(self).__name__}: dropout must be in [0, 1]")
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.num_layers, self.nonlinearity, self.bias = int(num_layers), nonlinearity, bias
        self.batch_first, self.dropout = batch_first, float(dropout)
        self.bidirectional, self.dtype = bidirectional, dtype

    @property
    def _random(self):
        return self.dropout > 0 and self.num_layers > 1

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s

    def _expected(self):
        g = _GATES[self._mode] * self.hidden_size
        d = 2 if self.bidirectional else 1
        e = {}
        for layer in range(self.num_layers):
            in_size = self.input_size if layer == 0 else self.hidden_size * d
            for direction in range(d):
                sfx = f"_l{layer}" + ("_reverse" if direction else "")
                e["weight_ih" + sfx] = (g, in_size)
                e["weight_hh" + sfx] = (g, self.hidden_size)
                if self.bias:
                    e["bias_ih" + sfx] = (g,)
                    e["bias_hh" + sfx] = (g,)
        return e

    def init(self, key):
        return _rnn_init(key, self._expected(), self.hidden_size, self.dtype)

    def forward(self, params, input, hx=None):
        return self._run(params, input, hx, False, None)

    def apply(self, params, state, input, hx=None, *, train=False, key=None):
        y = self._run(params, input, hx, train, key)
        _record(self, y)
        return y, state if state is not None else {}

    def _run(self, params, x, hx, train, key):
        self._check(params)
        shp = _shape(x)
        if len(shp) not in (2, 3) or shp[-1] != self.input_size:
            self._bad_input(x, f"a 3-D ({'N, L' if self.batch_first else 'L, N'}, "
                               f"{self.input_size}) or 2-D (L, {self.input_size}) input")
        unbatched = len(shp) == 2
        if unbatched:
            x = x[:, None]
        elif self.batch_first:
            x = fnp.swapaxes(x, 0, 1)
        L, N = _shape(x)[:2]
        d = 2 if self.bidirectional else 1
        hs = self.hidden_size
        lstm = self._mode == "LSTM"
        want = (self.num_layers * d, N, hs)
        if hx is None:
            z = fnp.zeros(want, dtype=x.dtype)
            h0, c0 = z, (z if lstm else None)
        else:
            h0, c0 = hx if lstm else (hx, None)
            if unbatched:
                h0 = h0[:, None]
                c0 = c0[:, None] if lstm else None
            for name, v in (("h0", h0), ("c0", c0)):
                if v is not None and _shape(v) != want:
                    raise FuncgradValueError(
                        f"{self._short()}: initial {name} of shape {_shape(v)}, expected "
                        f"{want if not unbatched else want[:1] + want[2:]}")
        if train and self._random and key is None:
            raise FuncgradValueError(
                f"{self._short()}: train=True with dropout needs a random key")
        use_dropout = train and self._random
        keys = _split(key, self.num_layers) if use_dropout else [None] * self.num_layers
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for direction in range(d):
                sfx = f"_l{layer}" + ("_reverse" if direction else "")
                xp = F.linear(x, params["weight_ih" + sfx], params.get("bias_ih" + sfx))
                h = h0[layer * d + direction]
                c = c0[layer * d + direction] if lstm else None
                steps = range(L - 1, -1, -1) if direction else range(L)
                seq = [None] * L
                for t in steps:
                    h, c = _rnn_step(self._mode, self.nonlinearity, xp[t], h, c,
                                     params["weight_hh" + sfx], params.get("bias_hh" + sfx), hs)
                    seq[t] = h
                outs.append(fnp.stack(seq, axis=0))
                h_n.append(h)
                c_n.append(c)
            x = outs[0] if d == 1 else fnp.concatenate(outs, axis=-1)
            if use_dropout and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True, key=keys[layer])
        h_n = fnp.stack(h_n, axis=0)
        c_n = fnp.stack(c_n, axis=0) if lstm else None
        if unbatched:
            x, h_n = x[:, 0], h_n[:, 0]
            c_n = c_n[:, 0] if lstm else None
        elif self.batch_first:
            x = fnp.swapaxes(x, 0, 1)
        return (x, (h_n, c_n)) if lstm else (x, h_n)


class RNN(_RNNBase):
    """Multi-layer Elman RNN (PyTorch's arguments: input_size, hidden_size, num_layers=1,
    nonlinearity='tanh', bias=True, batch_first=False, dropout=0.0, bidirectional=False).

    ``rnn(params, x, h0=None) -> (output, h_n)``; ``x`` is ``(L, N, H_in)`` (or
    ``(N, L, H_in)`` with ``batch_first``, or unbatched ``(L, H_in)``). Params
    ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` (and
    ``*_reverse``), initialized ``U(-1/sqrt(hidden), 1/sqrt(hidden))``. With
    ``dropout > 0`` (between layers) use ``apply(..., train=True, key=k)`` to train.
    """


class LSTM(_RNNBase):
    """Multi-layer LSTM (gates i, f, g, o); ``lstm(params, x, (h0, c0)=None) ->
    (output, (h_n, c_n))``. Arguments and params as :class:`RNN` (4x the gate rows)."""

    _mode = "LSTM"

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, dtype=np.float32):
        if proj_size:
            raise FuncgradValueError("LSTM: proj_size is not supported")
        super().__init__(input_size, hidden_size, num_layers, "tanh", bias, batch_first,
                         dropout, bidirectional, dtype)


class GRU(_RNNBase):
    """Multi-layer GRU (gates r, z, n); ``gru(params, x, h0=None) -> (output, h_n)``.
    Arguments and params as :class:`RNN` (3x the gate rows)."""

    _mode = "GRU"

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=np.float32):
        super().__init__(input_size, hidden_size, num_layers, "tanh", bias, batch_first,
                         dropout, bidirectional, dtype)


# --------------------------------------------------------------------------------------
# Attention


class MultiheadAttention(_Leaf):
    """Multi-head attention (embed_dim, num_heads, dropout=0.0, bias=True,
    batch_first=False), PyTorch's parameters ``in_proj_weight (3E, E)``,
    ``in_proj_bias (3E,)``, ``out_proj.weight``, ``out_proj.bias``.

    ``mha(params, query, key, value, key_padding_mask=None, need_weights=True,
    attn_mask=None, average_attn_weights=True, is_causal=False) -> (output, weights)``
    with inputs ``(L, N, E)`` (``(N, L, E)`` if ``batch_first``; or unbatched
    ``(L, E)``). Masks as in PyTorch: boolean True = masked out, or additive floats.
    Pass query, key and value positionally (``key=`` in ``apply`` is the random key).
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, batch_first=False,
                 dtype=np.float32):
        if embed_dim % num_heads:
            raise FuncgradValueError(
                f"MultiheadAttention: embed_dim={embed_dim} must be divisible by "
                f"num_heads={num_heads}")
        self.embed_dim, self.num_heads = int(embed_dim), int(num_heads)
        self.dropout, self.bias, self.batch_first, self.dtype = (float(dropout), bias,
                                                                 batch_first, dtype)

    @property
    def _random(self):
        return self.dropout > 0

    def extra_repr(self):
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"

    def _expected(self):
        E = self.embed_dim
        e = {"in_proj_weight": (3 * E, E), "out_proj": {"weight": (E, E)}}
        if self.bias:
            e["in_proj_bias"] = (3 * E,)
            e["out_proj"]["bias"] = (E,)
        return e

    def init(self, key):
        E = self.embed_dim
        k1, k2 = _split(key, 2)
        p = {"in_proj_weight": _init.xavier_uniform(k1, (3 * E, E), dtype=self.dtype),
             "out_proj": {"weight": _init.kaiming_uniform(k2, (E, E), a=math.sqrt(5),
                                                          dtype=self.dtype)}}
        if self.bias:
            p["in_proj_bias"] = np.zeros(3 * E, self.dtype)
            p["out_proj"]["bias"] = np.zeros(E, self.dtype)
        return p

    def forward(self, params, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        return self._run(params, query, key, value, key_padding_mask, need_weights,
                         attn_mask, average_attn_weights, is_causal, False, None)

    def apply(self, params, state, query, key_, value, key_padding_mask=None,
              need_weights=True, attn_mask=None, average_attn_weights=True,
              is_causal=False, *, train=False, key=None):
        y = self._run(params, query, key_, value, key_padding_mask, need_weights, attn_mask,
                      average_attn_weights, is_causal, train, key)
        _record(self, y)
        return y, state if state is not None else {}

    def _run(self, params, q, k, v, key_padding_mask, need_weights, attn_mask,
             average_attn_weights, is_causal, train, rng):
        self._check(params)
        E, H = self.embed_dim, self.num_heads
        for name, t in (("query", q), ("key", k), ("value", v)):
            if len(_shape(t)) not in (2, 3) or _shape(t)[-1] != E:
                self._bad_input(t, f"a 3-D or 2-D {name} whose last axis is {E}")
        unbatched = len(_shape(q)) == 2
        if unbatched:
            q, k, v = q[:, None], k[:, None], v[:, None]
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask[None]
        elif self.batch_first:
            q, k, v = (fnp.swapaxes(t, 0, 1) for t in (q, k, v))
        L, N = _shape(q)[:2]
        S = _shape(k)[0]
        hd = E // H
        w, b = params["in_proj_weight"], params.get("in_proj_bias")
        bq = bk = bv = None
        if b is not None:
            bq, bk, bv = b[:E], b[E:2 * E], b[2 * E:]
        qp = F.linear(q, w[:E], bq)
        kp = F.linear(k, w[E:2 * E], bk)
        vp = F.linear(v, w[2 * E:], bv)

        def heads(t, n):       # (len, N, E) -> (N, H, len, hd)
            return fnp.transpose(fnp.reshape(t, (n, N, H, hd)), (1, 2, 0, 3))

        qh, kh, vh = heads(qp, L), heads(kp, S), heads(vp, S)
        scores = fnp.matmul(qh * (1.0 / math.sqrt(hd)), fnp.swapaxes(kh, -1, -2))
        neg = -math.inf
        if is_causal and attn_mask is None:
            attn_mask = (fnp.expand_dims(F._arange_like(scores, S), 0)   # j > i, in the
                         > fnp.expand_dims(F._arange_like(scores, L), 1))  # inputs' module
        if attn_mask is not None:
            m = attn_mask
            if len(_shape(m)) == 3:          # (N * H, L, S)
                m = fnp.reshape(m, (N, H, L, S))
            if np.dtype(m.dtype) == np.bool_:
                scores = fnp.where(m, neg, scores)
            else:
                scores = scores + m
        if key_padding_mask is not None:
            kpm = key_padding_mask[:, None, None, :]
            if np.dtype(kpm.dtype) == np.bool_:
                scores = fnp.where(kpm, neg, scores)
            else:
                scores = scores + kpm
        attn = F.softmax(scores, axis=-1)
        if train and self.dropout > 0:
            if rng is None:
                raise FuncgradValueError(
                    f"{self._short()}: train=True with dropout needs a random key")
            attn = F.dropout(attn, self.dropout, True, key=rng)
        out = fnp.matmul(attn, vh)                                  # (N, H, L, hd)
        out = fnp.reshape(fnp.transpose(out, (2, 0, 1, 3)), (L, N, E))
        op = params["out_proj"]
        out = F.linear(out, op["weight"], op.get("bias"))
        if unbatched:
            out = out[:, 0]
        elif self.batch_first:
            out = fnp.swapaxes(out, 0, 1)
        weights = None
        if need_weights:
            weights = fnp.mean(attn, axis=1) if average_attn_weights else attn
            if unbatched:
                weights = weights[0]
        return out, weights


# --------------------------------------------------------------------------------------
# Summary and PyTorch state dicts


def count_params(params):
    """The number of scalars in a parameters pytree."""
    return int(sum(int(np.prod(_shape(x))) for x in tu.tree_leaves(params)))


def _subtree(tree, path):
    for name in path:
        tree = _child_of(tree, name, None) if tree is not None else None
    return tree


def summary(model, params, input_shape, dtype=np.float32, state=None, print_fn=print):
    """Print a table of ``model``'s layers with their output shapes and parameter counts.

    Args:
      model: a Module.
      params: its parameters (from ``init``).
      input_shape: the input's shape including the batch axis; or an example input array.
      dtype: the dtype of the zeros input made from ``input_shape``.
      state: the state (default ``model.init_state()``).
      print_fn: where each line goes (default ``print``).

    The model runs once in evaluation mode (``apply(..., train=False)``). Rows are
    indented by depth; a layer's count includes its children's. Returns None.

    Example:
        >>> import funcgrad.random as fr
        >>> m = Sequential(Linear(4, 8), ReLU(), Linear(8, 2))
        >>> summary(m, m.init(fr.key(0)), (5, 4))
        Layer (type)            Output shape      Param #
        =================================================
        Sequential              (5, 2)                 58
          0 (Linear)            (5, 8)                 40
          1 (ReLU)              (5, 8)                  0
          2 (Linear)            (5, 2)                 18
        =================================================
        Total params: 58
    """
    if hasattr(input_shape, "shape") and hasattr(input_shape, "dtype"):
        x = input_shape
    else:
        x = np.zeros(tuple(input_shape), dtype=dtype)
    rec = {}
    _frames.recorder = rec
    try:
        model.apply(params, model.init_state() if state is None else state, x)
    finally:
        _frames.recorder = None
    rows = []
    for name, m in model.named_modules():
        path = name.split(".") if name else []
        depth = len(path)
        label = type(m).__name__ if not name else f"{path[-1]} ({type(m).__name__})"
        shape = rec.get(id(m), "-")
        rows.append(("  " * depth + label, str(shape), count_params(_subtree(params, path))))
    w0 = max(24, max(len(r[0]) for r in rows) + 2)
    w1 = max(14, max(len(r[1]) for r in rows) + 2)
    width = w0 + w1 + 11
    print_fn(f"{'Layer (type)':<{w0}}{'Output shape':<{w1}}{'Param #':>11}")
    print_fn("=" * width)
    for label, shape, n in rows:
        print_fn(f"{label:<{w0}}{shape:<{w1}}{n:>11,}")
    print_fn("=" * width)
    print_fn(f"Total params: {count_params(params):,}")


def _flatten_named(tree, prefix, out):
    if isinstance(tree, dict):
        for k, v in tree.items():
            _flatten_named(v, f"{prefix}{k}.", out)
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            _flatten_named(v, f"{prefix}{i}.", out)
    elif tree is not None:
        out[prefix[:-1]] = tree


def _to_numpy(v):
    if hasattr(v, "detach"):          # a torch tensor
        return v.detach().cpu().numpy()
    if isinstance(v, funcgrad.Tracer):
        raise FuncgradTypeError("to_torch_state_dict: got a traced value; convert concrete "
                                "parameters outside of transformations")
    if hasattr(v, "get") and not isinstance(v, np.ndarray) and not isinstance(v, dict):
        v = v.get()                   # a CuPy array
    return np.asarray(v)


def to_torch_state_dict(params, state=None, as_torch=False):
    """A flat ``{"0.weight": array, "bn.running_mean": array, ...}`` dict with PyTorch's
    key names, from ``params`` and (optionally) ``state``.

    Values are NumPy arrays (``as_torch=True``: torch tensors, needs torch), ready for
    ``torch_module.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})``.
    """
    out = {}
    _flatten_named(params, "", out)
    if state is not None:
        _flatten_named(state, "", out)
    out = {k: _to_numpy(v) for k, v in out.items()}
    if as_torch:
        import torch
        out = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in out.items()}
    return out


def from_torch_state_dict(model, state_dict, dtype=None):
    """``(params, state)`` for ``model`` from a PyTorch-style state dict (values: torch
    tensors or NumPy arrays; keys as in ``torch_module.state_dict()``).

    The arrays keep their dtype (float32 stays float32) unless ``dtype`` is given
    (integer buffers such as ``num_batches_tracked`` are kept as they are).
    Raises FuncgradValueError naming missing or unexpected keys, or mismatched shapes.
    """
    template_p = model.init(_fr().key(0))
    template_s = model.init_state()
    given = {k: _to_numpy(v) for k, v in dict(state_dict).items()}
    used = set()

    def fill(tree, prefix):
        if isinstance(tree, dict):
            return {k: fill(v, f"{prefix}{k}.") for k, v in tree.items()}
        if isinstance(tree, (list, tuple)):
            return type(tree)(fill(v, f"{prefix}{i}.") for i, v in enumerate(tree))
        name = prefix[:-1]
        if name not in given:
            raise FuncgradValueError(
                f"from_torch_state_dict: {type(model).__name__} needs {name!r}, which the "
                f"state dict lacks (it has {sorted(given)[:8]}{'...' if len(given) > 8 else ''})")
        v = given[name]
        used.add(name)
        if v.shape != _shape(tree):
            raise FuncgradValueError(
                f"from_torch_state_dict: {name!r} has shape {v.shape}, but "
                f"{type(model).__name__} expects {_shape(tree)}")
        if dtype is not None and v.dtype.kind == "f":
            v = v.astype(dtype)
        return np.array(v)

    params = fill(template_p, "")
    state = fill(template_s, "")
    extra = sorted(set(given) - used)
    if extra:
        raise FuncgradValueError(
            f"from_torch_state_dict: unexpected keys for {type(model).__name__}: {extra}")
    return params, state
