"""Row splitting: jit runs a graph on slices of its batch, one slice per thread.

A training step computes, for each example of a batch, the same thing, and sums the
examples' contributions into the loss and the gradients. Such a graph can run on the
first half of the batch in one thread and on the second half in another, with the partial
sums added at the end: one hand-off per step, where splitting each convolution or
pooling separately costs one per operation (about 60 µs each on a 2-core VM), and the
elementwise work between them gets both cores too.

Each primitive says how it splits with a *row rule* (``prim.rows``, defined next to its
other rules). A value of the graph is of one of three kinds:

* ``U`` - whole: a graph input, a constant, or computed from such only. It is available
  before the split (computed once, serially).
* ``R(d)`` - rows: each slice holds the rows ``a:b`` of axis ``d``; the whole value would
  be the concatenation of the slices along ``d``.
* ``S`` - partial sum: each slice holds a partial value; the whole value is their sum.

``rule(kinds, invars, outvars, params, batch)`` gets the kinds of the inputs (whole
inputs also show their shapes through ``invars``) and returns ``None`` when the equation
cannot run on slices, else ``(out_kinds, chunk_params, sliced)``: the kinds of the
outputs, a function of the slice length giving the parameters for a slice (``None`` when
they do not change) and ``{input index: axis}`` for whole inputs that must be sliced along
an axis for this equation (a full-batch constant added to rows, say).

Partial sums only flow through operations linear in them (adding two partial sums,
scaling one by a whole value, reshaping, summing...). An equation that cannot run on
slices - or that depends on one that cannot - runs after the split, on whole values: row
values are concatenated and partial sums added first. The graph inputs whose leading
axis has the batch's length (the largest input's leading length) are the row values the
split starts from.

Results can differ from the serial replay in the last bits, because partial sums are
added in a different order (as with any reassociation, see jit's docstring).
"""
from __future__ import annotations

import functools
import math

import numpy as np

from . import threads as _threads

U = ("U",)
S = ("S",)


def R(d):
    return ("R", d)


# Splitting pays off only with this much row work in all (elements written by the
# equations that run on slices), and only when what must be joined afterwards (rows
# concatenated for equations that cannot run on slices) is a small part of it.
MIN_ROW_WORK = 1 << 20
MAX_JOIN_FRACTION = 0.25


# --------------------------------------------------------------------------------------
# Rule factories shared by primitive families


def _shape(v):
    return tuple(getattr(v, "shape", ()))


_ADDITIVE = {"add", "subtract"}                   # S op S -> S
_SCALING = {"multiply"}                           # S * U -> S (either side)
_DIVIDING = {"true_divide"}                       # S / U -> S
_LINEAR_UNARY = {"negative", "positive", "conjugate", "real", "imag"}


def broadcasting_rows(prim):
    """Row rule of an elementwise primitive with NumPy broadcasting."""
    name = prim.name

    def rule(kinds, invars, outvars, params, batch):
        if S in kinds:
            return _linear_elementwise(name, kinds, len(outvars))
        nd = len(outvars[0].shape)
        axis = None
        for k, v in zip(kinds, invars):
            if k[0] == "R":
                a = k[1] + nd - len(_shape(v))
                if axis is None:
                    axis = a
                elif a != axis:
                    return None
        sliced = {}
        for i, (k, v) in enumerate(zip(kinds, invars)):
            if k is U:
                shp = _shape(v)
                a = axis - (nd - len(shp))
                if a >= 0:
                    if shp[a] == batch:
                        sliced[i] = a
                    elif shp[a] != 1:
                        return None
        return [R(axis)] * len(outvars), None, sliced
    return rule


def _linear_elementwise(name, kinds, nout):
    n_s = sum(k is S for k in kinds)
    if any(k[0] == "R" for k in kinds):
        return None
    ok = ((name in _ADDITIVE and n_s == len(kinds))
          or (name in _SCALING and n_s == 1)
          or (name in _DIVIDING and kinds[0] is S and n_s == 1)
          or (name in _LINEAR_UNARY))
    return ([S] * nout, None, {}) if ok else None


def identity_rows(kinds, invars, outvars, params, batch):
    """Row rule of a primitive that returns its operand's values unchanged (per element)."""
    return [kinds[0]] * len(outvars), None, {}


def reduction_rows(prim, linear=False):
    """Row rule of a reduction with ``axis`` (tuple or None) and ``keepdims`` parameters:
    reducing the batch axis is allowed only for a sum (``linear``), which gives a partial
    sum."""
    def rule(kinds, invars, outvars, params, batch):
        k = kinds[0]
        nd = len(_shape(invars[0]))
        axis = params.get("axis")
        axes = range(nd) if axis is None else [a % nd for a in (
            axis if isinstance(axis, tuple) else (axis,))]
        if k is S:
            return ([S], None, {}) if linear else None
        d = k[1]
        if d in axes:
            return ([S], None, {}) if linear else None
        if not params.get("keepdims"):
            d -= sum(a < d for a in axes)
        return [R(d)] * len(outvars), None, {}
    return rule


def with_length(params, key, axis, c):
    """``params`` with ``params[key][axis]`` (a shape) set to the slice length ``c``."""
    shape = list(params[key])
    shape[axis] = c
    return {**params, key: tuple(shape)}


# --------------------------------------------------------------------------------------
# The analysis


class Plan:
    """How to run a graph split over rows (see the module docstring)."""

    def __init__(self, batch, kinds, phase, sliced, chunk_params, work, join):
        self.batch = batch
        self.kinds = kinds              # var name -> kind
        self.phase = phase              # eqn index -> "U" (before), "P" (on slices), "Q" (after)
        self.sliced = sliced            # eqn index -> {input index: axis}
        self.chunk_params = chunk_params  # eqn index -> function of c, or None
        self.work = work                # row elements written on slices
        self.join = join                # row elements concatenated for after the split


def analyze(graph):
    """A :class:`Plan` for ``graph``, or None when splitting it over rows does not apply
    or would not pay off. Each distinct leading length of the inputs is tried as the
    batch; the plan that puts the most work on slices wins."""
    best = None
    for batch in sorted({v.shape[0] for v in graph.invars if len(v.shape) and v.shape[0] >= 2}):
        plan = _analyze(graph, batch)
        if plan is not None and (best is None or plan.work > best.work):
            best = plan
    return best


def _analyze(graph, batch):
    kinds = {}
    for v in graph.invars:
        kinds[v.name] = R(0) if len(v.shape) and v.shape[0] == batch else U
    for v, _ in graph.consts:
        kinds[v.name] = U
    phase, sliced, chunk_params = {}, {}, {}
    work = 0
    for j, e in enumerate(graph.eqns):
        if e.prim.effectful:
            return None                     # effects keep their order: no split
        ins = [kinds.get(v.name, U) if v is not None and not _is_literal(v) else U
               for v in e.invars]
        if any(k[0] == "Q" for k in ins):
            res = None
        elif all(k is U for k in ins):
            for v in e.outvars:
                kinds[v.name] = U
            phase[j] = "U"
            continue
        else:
            rule = getattr(e.prim, "rows", None)
            res = rule(ins, e.invars, e.outvars, e.params, batch) if rule else None
        if res is None:
            for v in e.outvars:
                kinds[v.name] = ("Q",)
            phase[j] = "Q"
            continue
        outs, params_fn, cut = res
        for v, k in zip(e.outvars, outs):
            kinds[v.name] = k
            if k[0] == "R":
                if v.shape[k[1]] != batch:        # a rule's promise, checked
                    return None
                work += math.prod(v.shape)
        phase[j] = "P"
        sliced[j] = cut
        chunk_params[j] = params_fn
    if work < MIN_ROW_WORK:
        return None
    # rows made on slices that are needed whole afterwards are concatenated
    made = {v.name for j, e in enumerate(graph.eqns) if phase[j] == "P" for v in e.outvars}
    need = _needed_after(graph, phase, made)
    join = sum(math.prod(graph_var.shape) for graph_var in need
               if kinds[graph_var.name][0] == "R")
    if join > MAX_JOIN_FRACTION * work:
        return None
    return Plan(batch, kinds, phase, sliced, chunk_params, work, join)


def _is_literal(v):
    return not hasattr(v, "shape") or type(v).__name__ == "Literal"


def _needed_after(graph, phase, made):
    """The variables made on slices that equations after the split or the outputs read."""
    need = {}
    for j, e in enumerate(graph.eqns):
        if phase[j] == "Q":
            for v in e.invars:
                if v is not None and not _is_literal(v) and v.name in made:
                    need[v.name] = v
    for v in graph.outvars:
        if v is not None and not _is_literal(v) and v.name in made:
            need[v.name] = v
    return list(need.values())


# --------------------------------------------------------------------------------------
# Building the three programs


def build(graph, plan, serial, compile_graph, Var, Graph):
    """``f(*flat_inputs) -> outputs`` running ``graph`` by ``plan``: the whole-value
    equations first, then the row equations on ``num_threads()`` slices at once, then the
    rest on joined values. ``compile_graph`` compiles each part (host code); ``serial``
    (the whole graph compiled) runs instead where no split is possible (one thread, or a
    call made from inside a worker)."""
    kinds, phase = plan.kinds, plan.phase
    eqns = graph.eqns
    const_vals = {v.name: x for v, x in graph.consts}
    made_p = {v.name: v for j, e in enumerate(eqns) if phase[j] == "P" for v in e.outvars}
    need_after = _needed_after(graph, phase, set(made_p))

    # 1. whole values, before the split
    u_eqns = [e for j, e in enumerate(eqns) if phase[j] == "U"]
    u_made = {v.name: v for e in u_eqns for v in e.outvars}
    used_later = set()
    for j, e in enumerate(eqns):
        if phase[j] != "U":
            used_later.update(v.name for v in e.invars
                              if v is not None and not _is_literal(v))
    used_later.update(v.name for v in graph.outvars if v is not None and not _is_literal(v))
    u_out = [v for n, v in u_made.items() if n in used_later]
    g0 = compile_graph(Graph(list(graph.invars), list(graph.consts), u_eqns, u_out), True)
    u_names = [v.name for v in u_out]

    # 2. the row equations, one program per slice length
    p_idx = [j for j in range(len(eqns)) if phase[j] == "P"]
    ext = {}        # (name, axis or None) -> the value each slice program reads
    for j in p_idx:
        for i, v in enumerate(eqns[j].invars):
            if v is None or _is_literal(v) or v.name in made_p:
                continue
            k = kinds[v.name]
            axis = plan.sliced[j].get(i, k[1] if k[0] == "R" else None)
            ext[(v.name, axis)] = v
    ext_keys = list(ext)
    p_out = list(need_after)

    @functools.lru_cache(maxsize=8)
    def slice_program(c):
        def resized(v, axis):
            shape = list(v.shape)
            shape[axis] = c
            return Var(v.name + (f"_r{axis}" if v.name not in made_p else ""), shape,
                       v.dtype, v.deps, v.weak)
        local = {}
        invars = []
        for name, axis in ext_keys:
            v = ext[(name, axis)]
            nv = v if axis is None else resized(v, axis)
            invars.append(nv)
            local[(name, axis)] = nv
        new_eqns = []
        for j in p_idx:
            e = eqns[j]
            ins = []
            for i, v in enumerate(e.invars):
                if v is None or _is_literal(v):
                    ins.append(v)
                elif v.name in made_p:
                    ins.append(local[(v.name, "made")])
                else:
                    k = kinds[v.name]
                    ins.append(local[(v.name, plan.sliced[j].get(
                        i, k[1] if k[0] == "R" else None))])
            outs = []
            for v in e.outvars:
                k = kinds[v.name]
                nv = resized(v, k[1]) if k[0] == "R" else v
                local[(v.name, "made")] = nv
                outs.append(nv)
            fn = plan.chunk_params[j]
            new_eqns.append(type(e)(e.prim, ins, fn(c) if fn else e.params, outs))
        return compile_graph(Graph(invars, [], new_eqns,
                                   [local[(v.name, "made")] for v in p_out]), True)

    # 3. the rest, on whole values
    q_eqns = [e for j, e in enumerate(eqns) if phase[j] == "Q"]
    q_in = list(graph.invars) + u_out + p_out
    g2 = compile_graph(Graph(q_in, list(graph.consts), q_eqns, list(graph.outvars)), True)

    in_names = [v.name for v in graph.invars]
    batch = plan.batch
    out_kinds = [kinds[v.name] for v in p_out]
    work_per_row = _threads.MIN_CHUNK_WORK    # (the plan was judged worth splitting)

    def run(*flat):
        if _threads.chunks(batch, work_per_row) <= 1:
            return serial(*flat)
        env = dict(zip(in_names, flat))
        env.update(const_vals)
        env.update(zip(u_names, g0(*flat)))
        vals = [env[name] for name, _ in ext_keys]
        axes = [axis for _, axis in ext_keys]

        def part(a, b):
            args = [x if ax is None else x[(slice(None),) * ax + (slice(a, b),)]
                    for x, ax in zip(vals, axes)]
            return slice_program(b - a)(*args)

        parts = _threads.map_batch(part, batch, work_per_row, blocks=False)
        joined = []
        for i, k in enumerate(out_kinds):
            pieces = [p[i] for p in parts]
            if k[0] == "R":
                joined.append(np.concatenate(pieces, axis=k[1]) if len(pieces) > 1
                              else pieces[0])
            else:
                total = pieces[0]
                for x in pieces[1:]:
                    total = total + x
                joined.append(total)
        return g2(*flat, *[env[n] for n in u_names], *joined)

    return run
