"""Recurrent layers: RNN, LSTM and GRU cells and their multi-layer, optionally
bidirectional sequence versions."""
from __future__ import annotations

import math

import numpy as np

import funcgrad.lax as lax
import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradValueError

from .. import functional as F
from .. import init as _init
from . import _args
from ._base import _Leaf, _record, _shape, _split


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
        # one split, not four slices: the gates' cotangent is then one concatenate
        i, f, gg, o = fnp.split(_gates(x_proj, h, w_hh, b_hh), 4, axis=-1)
        i, f, gg, o = F.sigmoid(i), F.sigmoid(f), fnp.tanh(gg), F.sigmoid(o)
        c = f * c + i * gg
        return o * fnp.tanh(c), c
    if mode == "GRU":
        gh = fnp.matmul(h, fnp.transpose(w_hh))
        if b_hh is not None:
            gh = gh + b_hh
        xr, xz, xn = fnp.split(x_proj, 3, axis=-1)
        hr, hz, hn = fnp.split(gh, 3, axis=-1)
        r = F.sigmoid(xr + hr)
        z = F.sigmoid(xz + hz)
        n = fnp.tanh(xn + r * hn)
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
        name = type(self).__name__
        self.input_size = _args.size(name, "input_size", input_size)
        self.hidden_size = _args.size(name, "hidden_size", hidden_size)
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
        name = type(self).__name__
        self.input_size = _args.size(name, "input_size", input_size)
        self.hidden_size = _args.size(name, "hidden_size", hidden_size)
        self.num_layers = _args.size(name, "num_layers", num_layers)
        self.nonlinearity, self.bias = nonlinearity, bias
        self.batch_first, self.dropout = batch_first, _args.probability(name, "dropout", dropout)
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

    def _step(self, w_hh, b_hh):
        """The body of the time loop (a ``lax.scan``: one equation under ``jit``)."""
        mode, nonlinearity, hs = self._mode, self.nonlinearity, self.hidden_size

        def step(carry, x_proj):
            h, c = _rnn_step(mode, nonlinearity, x_proj, *carry, w_hh, b_hh, hs)
            return (h, c), h
        return step

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
                b_ih, b_hh = params.get("bias_ih" + sfx), params.get("bias_hh" + sfx)
                if b_ih is not None and b_hh is not None and self._mode != "GRU":
                    # b_hh joins b_ih in the input projection, made for every step at
                    # once: one addition of a (hidden,) vector, not one per step of the
                    # whole gate array (GRU's b_hn is inside r * (...): it stays)
                    b_ih, b_hh = b_ih + b_hh, None
                xp = F.linear(x, params["weight_ih" + sfx], b_ih)
                h = h0[layer * d + direction]
                c = c0[layer * d + direction] if lstm else None
                (h, c), seq = lax.scan(self._step(params["weight_hh" + sfx], b_hh),
                                       (h, c), xp, reverse=bool(direction))
                outs.append(seq)
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
