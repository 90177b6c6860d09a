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
from . import core as _core
from .core import _np
from .core import Trace, Tracer, bind, xp_of
from .errors import FuncgradTypeError, FuncgradValueError
from .tree_util import tree_flatten, tree_structure, tree_unflatten


# --------------------------------------------------------------------------------------
# Forward mode


class PrimalTracer(Tracer):
    """A tracer that carries the value it stands for (``primal``): forward and reverse
    mode both compute on concrete values."""

    __slots__ = ("primal",)

    @property
    def shape(self):
        return self.primal.shape

    @property
    def dtype(self):
        return self.primal.dtype

    def _value(self, what):
        return self.primal


class JVPTracer(PrimalTracer):
    __slots__ = ("tangent",)

    def __init__(self, trace, primal, tangent):
        self._trace = trace
        self.primal = primal
        self.tangent = tangent


def _fit(t, ref):
    """Broadcast/cast a tangent contribution to the output's shape and dtype."""
    if not hasattr(t, "shape"):       # a Python scalar from scalar arithmetic in a rule
        t = np.asarray(t)
    if t.shape != ref.shape:
        t = _np().broadcast_to(t, ref.shape)
    if t.dtype != ref.dtype:
        t = _np().astype(t, ref.dtype)
    return t


class JVPTrace(Trace):
    transformation = "jvp (forward mode)"
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
        if _core.nan_check is not None:
            _core.nan_check(prim, tangents, tout, "forward rule of ")
        if prim.multiple_results:
            return [o if t is None or not _inexact(o) else JVPTracer(self, o, _fit(t, o))
                    for o, t in zip(out, tout)]
        if tout is None or not _inexact(out):
            return out
        return JVPTracer(self, out, _fit(tout, out))

    def process_custom_jvp(self, obj, args):
        """Apply the user's forward rule to the primals and tangents (zeros where a
        differentiable argument has no tangent)."""
        primals = []
        tangents = []
        fnp = _np()
        nd = obj.nondiff_argnums
        for i, a in enumerate(args):
            if i in nd:
                primals.append(a)
                continue
            leaves, tree = tree_flatten(a)
            p = [x.primal if isinstance(x, JVPTracer) and x._trace is self else x
                 for x in leaves]
            t = [x.tangent if isinstance(x, JVPTracer) and x._trace is self
                 else fnp.zeros_like(x) for x in leaves]
            primals.append(tree_unflatten(tree, p))
            tangents.append(tree_unflatten(tree, t))
        out, tout = obj.rule(primals, tangents)
        _check_same_structure("custom_jvp rule", obj.__name__, out, tout)
        o_flat, o_tree = tree_flatten(out)
        t_flat = tree_flatten(tout)[0]
        res = [JVPTracer(self, o, _fit(t, o))
               if getattr(o, "dtype", np.dtype(float)).kind in "fc" else o
               for o, t in zip(o_flat, t_flat)]
        return tree_unflatten(o_tree, res)

    def process_custom_vjp(self, obj, args):
        if obj.inline_jvp:           # checkpoint: forward mode traces the function
            return obj.fun(*args)
        raise FuncgradTypeError(
            f"can't apply forward-mode autodiff (jvp) to the custom_vjp function "
            f"{obj.__name__}: it only defines a reverse-mode rule. Define it with "
            "custom_jvp instead (reverse mode is then derived automatically), or use "
            "grad/vjp.")


def _check_same_structure(what, name, expected, got):
    e_leaves, e_tree = tree_flatten(expected)
    g_leaves, g_tree = tree_flatten(got)
    if e_tree != g_tree:
        raise FuncgradTypeError(
            f"{what} of {name}: the rule returned a structure {g_tree} but the primal "
            f"output has structure {e_tree}; return one entry per output leaf")
    for k, (e, g) in enumerate(zip(e_leaves, g_leaves)):
        if g is None:
            continue
        es, gs = np.shape(e), np.shape(g)
        if tuple(es) != tuple(gs):
            raise FuncgradValueError(
                f"{what} of {name}: output leaf {k} has shape {tuple(es)} but the rule "
                f"returned shape {tuple(gs)}")


def _inexact(x):
    return x.dtype.kind in "fc"


# --------------------------------------------------------------------------------------
# Reverse mode


class VJPTracer(PrimalTracer):
    """A value recorded on a reverse-mode tape: ``index`` is its entry in the tape (and
    ``idx`` its position among the outputs of a multiple-result primitive)."""

    __slots__ = ("index", "idx")

    def __init__(self, trace, primal, index, idx=None):
        self._trace = trace
        self.primal = primal
        self.index = index
        self.idx = idx


class VJPTrace(Trace):
    """Records a tape in creation order (a topological order).

    A tape entry is a tuple ``(prim, params, args, out, parents)``, with ``parents`` a
    tuple of ``(argument position, parent entry index, parent output index)``; an input's
    entry is ``None``. Tuples rather than objects: this is the hot path of reverse mode.
    """
    transformation = "grad/vjp (reverse mode)"

    __slots__ = ("tape",)

    def __init__(self, level):
        super().__init__(level)
        self.tape = []

    def new_input(self, x):
        if isinstance(x, Tracer):
            self.bottom = False
        tape = self.tape
        tape.append(None)
        return VJPTracer(self, x, len(tape) - 1)

    def process(self, prim, args, params):
        rules = prim.vjp_rules
        primals = list(args)
        parents = ()
        lower = False
        i = 0
        for a in args:
            if isinstance(a, Tracer):
                if a._trace is self:
                    primals[i] = a.primal
                    if rules is None or rules[i] is not None:
                        parents += ((i, a.index, a.idx),)
                else:
                    lower = True
            i += 1
        if prim.vjp_fwd is not None and parents:
            # a forward pass that keeps what the reverse rule needs (passed to it)
            out, res = prim.vjp_fwd(primals, **params)
            params = {**params, "residuals": res}
        # At the bottom the unwrapped values are concrete: skip a second dispatch.
        elif lower or not self.bottom or _core.nan_check:
            out = bind(prim, *primals, **params)
        else:
            out = prim.impl(*primals, **params)
        if not parents or (rules is None and prim.vjp is None):
            return out
        tape = self.tape
        k = len(tape)
        if prim.multiple_results:
            tape.append((prim, params, primals, out, parents))
            return [VJPTracer(self, o, k, j) if o.dtype.kind in "fc" else o
                    for j, o in enumerate(out)]
        if out.dtype.kind not in "fc":
            return out
        tape.append((prim, params, primals, out, parents))
        return VJPTracer(self, out, k)

    def process_custom_jvp(self, obj, args):
        """One tape entry for the whole call; its reverse rule transposes the user's
        forward rule (the primitive ``obj.call_primitive`` says how)."""
        primals, parents = self._custom_unwrap(obj, args)
        out = obj(*primals)          # lower transformations apply the custom rule too
        if not parents:
            return out
        params = {"obj": obj, "out_tree": tree_structure(out)}
        return self._custom_record(obj.call_primitive, params, primals, out, parents)

    def process_custom_vjp(self, obj, args):
        """One tape entry whose reverse rule is the user's ``bwd``."""
        primals, parents = self._custom_unwrap(obj, args)
        if not parents:
            return obj(*primals)
        out, res = obj.run_fwd(primals)
        params = {"obj": obj, "res": res, "out_tree": tree_structure(out)}
        return self._custom_record(obj.call_primitive, params, primals, out, parents)

    def _custom_unwrap(self, obj, args):
        """Primal arguments, and the tape parents of the flattened differentiable leaves."""
        nd = obj.nondiff_argnums
        primals = []
        parents = ()
        k = 0
        for i, a in enumerate(args):
            if i in nd:
                primals.append(a)
                continue
            leaves, tree = tree_flatten(a)
            p = []
            for x in leaves:
                if isinstance(x, VJPTracer) and x._trace is self:
                    p.append(x.primal)
                    parents += ((k, x.index, x.idx),)
                else:
                    p.append(x)
                k += 1
            primals.append(tree_unflatten(tree, p))
        return primals, parents

    def _custom_record(self, prim, params, primals, out, parents):
        o_flat, o_tree = tree_flatten(out)
        tape = self.tape
        k = len(tape)
        tape.append((prim, params, primals, o_flat, parents))
        res = [VJPTracer(self, o, k, j) if getattr(o, "dtype", None) is not None
               and o.dtype.kind in "fc" else o for j, o in enumerate(o_flat)]
        return tree_unflatten(o_tree, res)


def _accumulate(cts, tape, k, idx, g):
    if idx is None:
        old = cts[k]
        cts[k] = g if old is None else old + g
    else:
        slot = cts[k]
        if slot is None:
            slot = cts[k] = [None] * len(tape[k][3])
        old = slot[idx]
        slot[idx] = g if old is None else old + g


def backward(tape, seeds, free=False):
    """Walk the tape backwards from ``seeds`` (a list of ``(tracer, cotangent)``).

    Returns the list of cotangents indexed like the tape (entries for the inputs are the
    results). With ``free=True`` each entry is dropped as soon as it has been used, so
    residuals are released during the walk.
    """
    cts = [None] * len(tape)
    for tracer, g in seeds:
        _accumulate(cts, tape, tracer.index, tracer.idx, g)
    check = _core.nan_check
    for k in range(len(tape) - 1, -1, -1):
        g = cts[k]
        if g is None:
            continue
        entry = tape[k]
        if entry is None:      # an input: keep its cotangent
            continue
        prim, params, args, out, parents = entry
        cts[k] = None
        if free:
            tape[k] = None
        rules = prim.vjp_rules
        if rules is not None and not params and check is None:
            # The common case, one rule per argument and no parameters, stays a plain
            # loop: collecting the results in a list first (as below) makes the walk a
            # quarter slower.
            for pos, j, idx in parents:
                c = rules[pos](g, out, *args)
                if c is not None:
                    if idx is None:
                        old = cts[j]
                        cts[j] = c if old is None else old + c
                    else:
                        _accumulate(cts, tape, j, idx, c)
            continue
        for (_, j, idx), c in zip(parents, _reverse(prim, params, args, out, parents, g, check)):
            if c is not None:
                _accumulate(cts, tape, j, idx, c)
    return cts


def _reverse(prim, params, args, out, parents, g, check):
    """The cotangents of the ``parents``' arguments by ``prim``'s reverse rule (whole or
    per argument), each checked for NaNs when ``check`` (debug_nans) is on."""
    if prim.multiple_results:
        g = [_np().zeros_like(o) if c is None else c for o, c in zip(out, g)]
    if prim.vjp is not None:
        results = prim.vjp(g, out, args, [p[0] for p in parents], **params)
    else:
        rules = prim.vjp_rules
        results = [rules[pos](g, out, *args, **params) for pos, _, _ in parents]
    if check is not None:
        gs = g if prim.multiple_results else [g]
        for c in results:
            if c is not None:
                check(prim, gs, c, "reverse rule of ")
    return results


# --------------------------------------------------------------------------------------
# Checks shared by the API functions


def check_cotangent(ct, primal, what):
    shape = getattr(ct, "shape", None)
    if shape is None:
        ct = xp_of(primal).asarray(ct, dtype=primal.dtype)
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
        return xp_of(primal).full(primal.shape, t, dtype=primal.dtype)
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
