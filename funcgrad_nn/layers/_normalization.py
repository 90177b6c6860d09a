"""Normalization layers: BatchNorm and InstanceNorm (with running statistics as state),
LayerNorm, GroupNorm, LocalResponseNorm."""
from __future__ import annotations

import numbers

import numpy as np

import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradValueError

from .. import functional as F
from . import _args
from ._base import _check_params, _Leaf, _Parameterless, _record, _shape


class _RunningStatsNorm(_Leaf):
    """What BatchNorm and InstanceNorm share: PyTorch's arguments, the per-channel
    ``weight``/``bias`` (with ``affine``) and the running statistics in the state (with
    ``track_running_stats``). Subclasses give the defaults and the forward pass."""

    def __init__(self, num_features, eps, momentum, affine, track_running_stats, dtype):
        self.num_features = _args.size(type(self).__name__, "num_features", num_features)
        self.eps, self.momentum = eps, momentum
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

    def _check_state(self, state):
        if self.track_running_stats:
            _check_params(self, state, {"running_mean": (self.num_features,),
                                        "running_var": (self.num_features,),
                                        "num_batches_tracked": ()}, "state")


class _BatchNorm(_RunningStatsNorm):
    _ranks = (2, 3)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=np.float32):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype)

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
        self._check_state(state)
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
            normalized_shape = (normalized_shape,)
        if not isinstance(normalized_shape, (tuple, list)):
            normalized_shape = (normalized_shape,)      # refused below, with its value
        self.normalized_shape = tuple(_args.size("LayerNorm", "normalized_shape", s)
                                      for s in normalized_shape)
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
        _args.size("GroupNorm", "num_groups", num_groups)
        _args.size("GroupNorm", "num_channels", num_channels)
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


class _InstanceNorm(_RunningStatsNorm):
    """``init_state``: as BatchNorm's (``num_batches_tracked`` is kept for PyTorch's state
    dict; PyTorch's InstanceNorm never advances it)."""

    _nd = 1

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False,
                 track_running_stats=False, dtype=np.float32):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype)

    def forward(self, params, x):
        y, _ = self.apply(params, self.init_state(), x)
        return y

    def apply(self, params, state, x, *, train=False, key=None):
        self._check(params)
        shp = _shape(x)
        nd = self._nd
        if len(shp) not in (nd + 1, nd + 2):
            self._bad_input(x, f"a {nd + 2}-D (N, C, ...) or {nd + 1}-D (C, ...) input")
        unbatched = len(shp) == nd + 1
        c = shp[0] if unbatched else shp[1]
        if (self.affine or self.track_running_stats) and c != self.num_features:
            self._bad_input(x, f"{self.num_features} channels")
        self._check_state(state)
        if unbatched:
            x = x[None]
        w, b = params.get("weight"), params.get("bias")
        rm = state.get("running_mean") if self.track_running_stats else None
        rv = state.get("running_var") if self.track_running_stats else None
        # PyTorch: input statistics when training or not tracking; momentum None means
        # no update (unlike BatchNorm's cumulative average)
        use_input = bool(train) or not self.track_running_stats
        mom = 0.0 if self.momentum is None else self.momentum
        y, nrm, nrv = F.instance_norm(x, rm, rv, w, b, use_input, mom, self.eps)
        if unbatched:
            y = y[0]
        _record(self, y)
        if not self.track_running_stats:
            return y, state if state is not None else {}
        return y, {"running_mean": nrm, "running_var": nrv,
                   "num_batches_tracked": state["num_batches_tracked"]}


class InstanceNorm1d(_InstanceNorm):
    """Instance normalization of ``(N, C, L)`` or ``(C, L)`` inputs, with PyTorch's
    arguments and defaults: num_features, eps=1e-5, momentum=0.1, affine=False,
    track_running_stats=False. With ``track_running_stats=True`` the running statistics
    live in the state: updated (``train=True``) or used (``train=False``), as in
    PyTorch; without, input statistics are used in both modes."""

    _nd = 1


class InstanceNorm2d(_InstanceNorm):
    """Instance normalization of ``(N, C, H, W)`` or ``(C, H, W)`` inputs; see
    :class:`InstanceNorm1d`."""

    _nd = 2


class InstanceNorm3d(_InstanceNorm):
    """Instance normalization of ``(N, C, D, H, W)`` or ``(C, D, H, W)`` inputs; see
    :class:`InstanceNorm1d`."""

    _nd = 3


class LocalResponseNorm(_Parameterless):
    """Local response normalization across channels (size, alpha=1e-4, beta=0.75, k=1.0);
    see :func:`funcgrad_nn.functional.local_response_norm`."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        self.size = _args.size("LocalResponseNorm", "size", size)
        self.alpha, self.beta, self.k = alpha, beta, k

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"

    def forward(self, params, x):
        self._check(params)
        return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)
