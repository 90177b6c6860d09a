"""Fusion groups: the runs of equations of a graph that a kernel backend computes as one
equation (CUDA C kernels in cupy_kernels.py and CuPy's ``fuse`` in compiler.py, Numba
loops in numba_backend.py), found and replaced by the same helpers here.

Example:
    >>> import numpy as np, funcgrad, funcgrad.numpy as fnp
    >>> g = funcgrad.make_graph(lambda x: fnp.sum(fnp.sin(x) * 2.0) + 1.0)(np.ones(3))
    >>> elementwise_runs(g, lambda e: e.prim.name in ("sin", "multiply", "add"))
    [(0, 2), (3, 4)]
"""
from __future__ import annotations

from .ir import Graph, Var


def last_uses(graph):
    """Variable name -> index of the last equation that reads it."""
    last = {}
    for k, e in enumerate(graph.eqns):
        for v in e.invars:
            if isinstance(v, Var):
                last[v.name] = k
    return last


def elementwise_runs(graph, can_fuse):
    """The runs of consecutive equations of ``graph`` that ``can_fuse(eqn)`` accepts, as
    ``(start, end)`` index pairs (end exclusive), in order: the groups every kernel
    backend starts from (each then keeps the runs worth a kernel to it)."""
    runs, start = [], None
    for k, e in enumerate(graph.eqns):
        if can_fuse(e):
            if start is None:
                start = k
        elif start is not None:
            runs.append((start, k))
            start = None
    if start is not None:
        runs.append((start, len(graph.eqns)))
    return runs


def group_io(run, end, uses_after, final):
    """The inputs (variables made outside ``run``, first use first) and the outputs
    (results read after index ``end`` or returned: names in ``final``) of a group of
    equations; ``uses_after`` is :func:`last_uses` of the graph."""
    made = {o.name for e in run for o in e.outvars}
    ins, seen = [], set()
    for e in run:
        for v in e.invars:
            if isinstance(v, Var) and v.name not in made and v.name not in seen:
                seen.add(v.name)
                ins.append(v)
    outs = [o for e in run for o in e.outvars
            if o.name in final or uses_after.get(o.name, -1) >= end]
    return ins, outs


def replace_groups(graph, groups, make):
    """``graph`` with each group ``(start, end)`` of equations (in order, disjoint)
    replaced by the one equation ``make(run, end, uses_after, final, number)`` returns."""
    uses_after = last_uses(graph)
    final = {v.name for v in graph.outvars if isinstance(v, Var)}
    eqns, k = [], 0
    for n, (start, end) in enumerate(groups):
        eqns.extend(graph.eqns[k:start])
        eqns.append(make(graph.eqns[start:end], end, uses_after, final, n))
        k = end
    eqns.extend(graph.eqns[k:])
    return Graph(graph.invars, graph.consts, eqns, graph.outvars, graph.in_tree,
                 graph.out_tree, graph.arg_names)


class Kernel:
    """The operation of a fused equation: one compiled kernel standing for a group of
    equations. Not a primitive: it is never bound and has no rules; only the compiled
    graph's replay calls it."""

    __slots__ = ("name", "impl", "plan")
    multiple_results = True
    effectful = False
    rows = None
    # (the properties passes read, should a pass ever meet a fused equation)
    elementwise = reduction = commutative = False
    linear_in = inverse_in = ()
    scalar_multiple = is_noop = multiply_adds = inline = None

    def __init__(self, name, impl):
        self.name = name
        self.impl = impl
        self.plan = None        # the row plan of a split graph (compiler.split_rows)

    def __repr__(self):
        return self.name


def shape_groups(graph, fusible, keep):
    """``(start, end)`` of the groups a kernel backend compiles: each run of
    :func:`elementwise_runs` cut where the output shape changes, the pieces for which
    ``keep(eqns, shape)`` holds (a backend's size threshold, its broadcasting limits)."""
    out = []
    for a, b in elementwise_runs(graph, fusible):
        k = a
        while k < b:
            shape = graph.eqns[k].outvars[0].shape
            j = k
            while j < b and graph.eqns[j].outvars[0].shape == shape:
                j += 1
            if keep(graph.eqns[k:j], shape):
                out.append((k, j))
            k = j
    return out
