"""Forward mode (JVPTrace) and reverse mode (VJPTrace) as interpreters of primitives.

Both run the function on concrete values (the primal computation is always done), so
Python control flow and ``print`` work under them. Every rule is written with funcgrad
operations, so an outer transformation traces the rules of an inner one: that is what
makes derivatives of derivatives work.

A missing tangent or cotangent is ``None`` (a symbolic zero) and costs nothing.
"""
from __future__ import annotations

import numpy as np

from .backend import dtype_name
from .core import Trace, Tracer, bind
from .errors import FuncgradTypeError, FuncgradValueError


def _np():
    from .. import numpy as fnp
    return fnp


# --------------------------------------------------------------------------------------
# Forward mode


class JVPTracer(Tracer):
    __slots__ = ("primal", "tangent")

    def __init__(self, trace, primal, tangent):
        self._trace = trace
        self.primal = primal
        self.tangent = tangent

    @property
    def shape(self):
        return self.primal.shape

    @property
    def dtype(self):
        return self.primal.dtype

    def _value(self, what):
        return self.primal


def _fit(t, ref):
    """Broadcast/cast a tangent contribution to the output's shape and dtype."""
    if t.shape != ref.shape:
        t = _np().broadcast_to(t, ref.shape)
    if t.dtype != ref.dtype:
        t = _np().astype(t, ref.dtype)
    return t


class JVPTrace(Trace):
    __slots__ = ()

    def process(self, prim, args, params):
        primals = []
        tangents = []
        any_tangent = False
        for a in args:
            if isinstance(a, JVPTracer) and a._trace is self:
                primals.append(a.primal)
                tangents.append(a.tangent)
                any_tangent = True
            else:
                primals.append(a)
                tangents.append(None)
        if prim.jvp is not None:
            out, tout = prim.jvp(primals, tangents, **params)
        else:
            out = bind(prim, *primals, **params)
            rules = prim.jvp_rules
            if rules is None or not any_tangent:
                return out
            tout = None
            for i, t in enumerate(tangents):
                if t is not None:
                    rule = rules[i]
                    if rule is not None:
                        c = rule(t, out, *primals, **params)
                        if c is not None:
                            tout = c if tout is None else tout + c
        if prim.multiple_results:
            return [o if t is None or not _inexact(o) else JVPTracer(self, o, _fit(t, o))
                    for o, t in zip(out, tout)]
        if tout is None or not _inexact(out):
            return out
        return JVPTracer(self, out, _fit(tout, out))


def _inexact(x):
    return x.dtype.kind in "fc"


# --------------------------------------------------------------------------------------
# Reverse mode


class Node:
    """One recorded operation: the rule's inputs, and which arguments get cotangents."""

    __slots__ = ("prim", "params", "args", "out", "parents", "index")

    def __init__(self, prim, params, args, out, parents, index):
        self.prim = prim
        self.params = params
        self.args = args
        self.out = out
        self.parents = parents   # tuple of (argument position, parent node, output index)
        self.index = index


class VJPTracer(Tracer):
    __slots__ = ("primal", "node", "idx")

    def __init__(self, trace, primal, node, idx=None):
        self._trace = trace
        self.primal = primal
        self.node = node
        self.idx = idx

    @property
    def shape(self):
        return self.primal.shape

    @property
    def dtype(self):
        return self.primal.dtype

    def _value(self, what):
        return self.primal


class VJPTrace(Trace):
    """Records a tape of nodes in creation order (a topological order)."""

    __slots__ = ("tape",)

    def __init__(self, level):
        super().__init__(level)
        self.tape = []

    def new_input(self, x):
        node = Node(None, None, None, x, (), len(self.tape))
        self.tape.append(node)
        return VJPTracer(self, x, node)

    def process(self, prim, args, params):
        primals = list(args)
        parents = []
        for i, a in enumerate(args):
            if isinstance(a, VJPTracer) and a._trace is self:
                primals[i] = a.primal
                parents.append((i, a.node, a.idx))
        out = bind(prim, *primals, **params)
        rules = prim.vjp_rules
        if rules is not None:
            parents = [p for p in parents if rules[p[0]] is not None]
        elif prim.vjp is None:
            return out
        if not parents:
            return out
        tape = self.tape
        node = Node(prim, params, primals, out, parents, len(tape))
        if prim.multiple_results:
            outs = [VJPTracer(self, o, node, k) if _inexact(o) else o
                    for k, o in enumerate(out)]
            tape.append(node)
            return outs
        if not _inexact(out):
            return out
        tape.append(node)
        return VJPTracer(self, out, node)


def _accumulate(cts, node, idx, g):
    k = node.index
    if idx is None:
        old = cts[k]
        cts[k] = g if old is None else old + g
    else:
        slot = cts[k]
        if slot is None:
            slot = cts[k] = [None] * len(node.out)
        old = slot[idx]
        slot[idx] = g if old is None else old + g


def backward(tape, seeds, free=False):
    """Walk the tape backwards from ``seeds`` (a list of ``(tracer, cotangent)``).

    Returns the list of cotangents indexed like the tape (entries for the input nodes are
    the results). With ``free=True`` each node is dropped as soon as it has been used.
    """
    cts = [None] * len(tape)
    for tracer, g in seeds:
        _accumulate(cts, tracer.node, tracer.idx, g)
    for k in range(len(tape) - 1, -1, -1):
        g = cts[k]
        if g is None:
            continue
        node = tape[k]
        prim = node.prim
        if prim is None:      # an input: keep its cotangent
            continue
        cts[k] = None
        if prim.multiple_results:
            g = [_np().zeros_like(o) if c is None else c for o, c in zip(node.out, g)]
        args = node.args
        if prim.vjp is not None:
            wanted = [p[0] for p in node.parents]
            results = prim.vjp(g, node.out, args, wanted, **node.params)
            for (pos, parent, idx), c in zip(node.parents, results):
                if c is not None:
                    _accumulate(cts, parent, idx, c)
        else:
            rules = prim.vjp_rules
            params = node.params
            for pos, parent, idx in node.parents:
                c = rules[pos](g, node.out, *args, **params)
                if c is not None:
                    _accumulate(cts, parent, idx, c)
        if free:    # nothing later in the walk reads this node
            tape[k] = None
            node.args = node.out = node.parents = None
    return cts


# --------------------------------------------------------------------------------------
# Checks shared by the API functions


def check_cotangent(ct, primal, what):
    shape = getattr(ct, "shape", None)
    if shape is None:
        ct = np.asarray(ct, dtype=primal.dtype)
        shape = ct.shape
    if tuple(shape) != tuple(primal.shape):
        raise FuncgradValueError(
            f"{what}: cotangent has shape {dtype_name(ct)} but the output it belongs to has "
            f"shape {dtype_name(primal)}; pass a cotangent of the output's shape and dtype")
    if ct.dtype != primal.dtype:
        raise FuncgradTypeError(
            f"{what}: cotangent dtype {np.dtype(ct.dtype).name} differs from the output's "
            f"dtype {np.dtype(primal.dtype).name}; cast it with .astype({np.dtype(primal.dtype).name})")
    return ct


def check_tangent(t, primal, what):
    if isinstance(t, (int, float, complex)) and not isinstance(t, bool):
        return np.full(primal.shape, t, dtype=primal.dtype)
    shape = getattr(t, "shape", None)
    if shape is None:
        t = np.asarray(t)
        shape = t.shape
    if tuple(shape) != tuple(primal.shape):
        raise FuncgradValueError(
            f"{what}: tangent {dtype_name(t)} does not match its primal {dtype_name(primal)}; "
            "a tangent must have its primal's shape and dtype")
    if t.dtype != primal.dtype:
        raise FuncgradTypeError(
            f"{what}: tangent dtype {np.dtype(t.dtype).name} does not match the primal's "
            f"dtype {np.dtype(primal.dtype).name} (shape {tuple(primal.shape)}); cast the "
            f"tangent with .astype({np.dtype(primal.dtype).name})")
    return t
