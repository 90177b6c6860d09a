"""Module, the base class of layers and models, and the containers Sequential and
ModuleList.

Also here: the call frames that thread state and keys through ``apply``, and the bases
of the built-in layers (``_Leaf``, ``_Parameterless``). The containers live with Module
because ``Module.__setattr__`` turns a list of Modules into a ModuleList.
"""
from __future__ import annotations

import inspect
import threading

import numpy as np

import funcgrad.random as fr
import funcgrad.tree_util as tu
from funcgrad.errors import FuncgradTypeError, FuncgradValueError


def _split(key, n):
    if n == 0:
        return []
    if key is None:
        raise FuncgradValueError("init: needs a random key, e.g. funcgrad.random.key(0)")
    return list(fr.split(key, n))


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
            self.key, sub = fr.split(self.key)
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
    * ``__call__(params, *inputs)``: ``forward`` for models without state/randomness
      (parameter-free layers such as ``ReLU()`` or ``Flatten()`` also take ``layer(x)``).
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
        if not inputs:
            params, inputs = self._one_argument(params, kwargs)
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

    def _one_argument(self, arg, kwargs):
        """``model(x)``: a layer called with one argument. ``(params, inputs)`` for a
        parameter-free layer (``nn.ReLU()(x)``, as in PyTorch); otherwise a TypeError
        that says how layers are called, unless ``forward`` takes params alone."""
        if isinstance(self, _Parameterless) and not (arg is None or isinstance(arg, dict)):
            return {}, (arg,)
        try:
            inspect.signature(self.forward).bind(arg, **kwargs)
        except TypeError:
            raise FuncgradTypeError(
                f"{self._short()} was called with one argument; layers hold no parameters, "
                "so they are called as layer(params, x), with params = layer.init(key) "
                "(e.g. funcgrad.random.key(0)); models with state or dropout as "
                "y, state = model.apply(params, state, x, train=..., key=...). "
                "Parameter-free layers (ReLU, Flatten, pooling...) also take layer(x).") \
                from None
        return arg, ()

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


# --------------------------------------------------------------------------------------
# Containers


class Sequential(Module):
    """Layers applied in order; params and state are lists with one entry per layer
    (PyTorch's state-dict names ``"0.weight"``, ``"1.running_mean"``...). A ReLU written
    just before a max pooling runs after it, and a convolution's bias before a max pooling
    (a ReLU between or not) is added after it: the same values, computed on fewer elements
    (gradients: a pooling window holding NaN gets 0, as in PyTorch; where adding the bias
    rounds two of a window's values to the same maximum, the larger one gets it; an
    infinite bias meeting an opposite infinity in a window gives inf, not NaN).

    Example:
        >>> import funcgrad.random as fr
        >>> from funcgrad_nn import Linear, ReLU
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
        pair = isinstance(params, tuple) and len(params) == 2 and all(
            isinstance(p, list) and len(p) == len(kids) for p in params)
        if not isinstance(params, (list, tuple)) or len(params) != len(kids) or pair:
            n = len(params) if hasattr(params, "__len__") else "?"
            raise FuncgradValueError(
                f"Sequential of {len(kids)} layers: params must be a list of {len(kids)} "
                f"entries (from model.init(key)), got {type(params).__name__} of length {n}"
                f"{_pair_hint(params)}")
        i = 0
        while i < len(kids):
            end = _bias_after_pooling(kids, i)
            if end:
                # a convolution's bias, then max pooling (a ReLU between): the bias is
                # added to the pooled values instead, a quarter of them (2x2 windows),
                # and its gradient sums a quarter of the values too. The values are the
                # written order's bit for bit; a gradient can differ only where adding the
                # bias rounds two values of a window to the same maximum (the written
                # order's arg-max is then the first of them, here the larger one)
                y, add = kids[i]._without_bias(params[i], x)
                x = add(kids[end - 1](params[end - 1], y))
                if end - i == 3:
                    x = kids[i + 1](params[i + 1], x)
                i = end
                continue
            if i + 1 < len(kids) and _pool_first(kids[i], kids[i + 1]):
                # ReLU then max pooling, run as pooling then ReLU: the two commute exactly
                # (the maximum of max(x, 0) is max(maximum, 0), and the gradient reaches
                # the same element: the window's maximum where it is positive, nothing
                # otherwise), and the activation and its gradient's mask then see a
                # quarter of the values (2x2 windows). Same results bit for bit, but for
                # the gradient in a window holding NaN: 0, as in PyTorch, where the
                # written order gives it to the window's last element.
                x = kids[i](params[i], kids[i + 1](params[i + 1], x))
                i += 2
                continue
            x = kids[i](params[i], x)
            i += 1
        return x


def _pool_first(act, pool):
    """Whether ``act`` then ``pool`` may run as ``pool`` then ``act`` (Sequential): a ReLU
    (its class says so, subclasses not) before a max pooling that returns no indices
    (``_runs_before_relu``), outside nn.summary's recording (which shows each layer's own
    output shape)."""
    before = getattr(pool, "_runs_before_relu", None)
    return (type(act).__dict__.get("_max_pool_commutes", False) and before is not None
            and before() and _frames.recorder is None)


def _bias_after_pooling(kids, i):
    """Where Sequential may add the bias of convolution ``kids[i]`` after the max pooling
    that follows it (directly, or after a ReLU, see :func:`_pool_first`): the index after
    the pooling, else 0. The pooling must have the convolution's dimensions (its windows
    then hold one channel) and run before a ReLU (a plain max pooling without indices)."""
    movable = getattr(kids[i], "_bias_movable", None)
    if movable is None or not movable():
        return 0
    j = i + 2 if i + 2 < len(kids) and _pool_first(kids[i + 1], kids[i + 2]) else i + 1
    pool = kids[j] if j < len(kids) else None
    before = getattr(pool, "_runs_before_relu", None)
    if before is None or not before() or pool._nd != kids[i]._nd or _frames.recorder is not None:
        return 0
    return j + 1


class ModuleList(Sequential):
    """A list of layers without a forward of its own; params/state are lists."""

    def forward(self, params, *inputs):
        raise NotImplementedError("ModuleList has no forward; call its layers in yours")


# --------------------------------------------------------------------------------------
# Bases of the built-in layers


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


def _pair_hint(params):
    """A hint when ``params`` looks like the ``(params, state)`` pair that
    ``from_torch_state_dict`` and ``load_state_dict``-style helpers return."""
    if isinstance(params, tuple) and len(params) == 2 and all(
            isinstance(p, (dict, list)) for p in params):
        return (" — a pair of trees, like the (params, state) pair that "
                "from_torch_state_dict returns: unpack it, `params, state = "
                "nn.from_torch_state_dict(model, sd)`, and pass params (and state to "
                "model.apply)")
    return ""


def _check_params(layer, params, expected, where):
    if not isinstance(params, dict):
        raise FuncgradTypeError(
            f"{layer._short()}: {where} must be a dict with keys {sorted(expected)}, got "
            f"{type(params).__name__}{_pair_hint(params)}")
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


class _Parameterless(_Leaf):
    """A layer with no parameters: ``params`` must be ``{}`` (or None)."""

    def _check(self, params):
        if params not in (None, {}) and not (isinstance(params, dict) and not params):
            raise FuncgradValueError(
                f"{self._short()}: has no parameters; pass {{}} (what init returns), got "
                f"{type(params).__name__}")
