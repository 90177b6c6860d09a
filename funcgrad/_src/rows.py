"""Row splitting: jit runs a graph on slices of its batch, one slice per thread.

A training step computes, for each example of a batch, the same thing, and sums the
examples' contributions into the loss and the gradients. Such a graph can run on the
first half of the batch in one thread and on the second half in another, with the partial
sums added at the end: one hand-off per step, where splitting each convolution or
pooling separately costs one per operation (about 60 µs each on a 2-core VM), and the
elementwise work between them gets both cores too.

Each primitive says how it splits with a *row rule* (``prim.rows``, defined next to its
other rules). A value of the graph is of one of three kinds:

* ``U`` - whole: a graph input, a constant, or computed from whole values only, serially
  on this thread (before the first phase on slices, or between phases).
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
scaling one by a finite constant, reshaping, summing, widening casts...). Everything
else that needs whole values waits for a join: the graph runs in phases (see "The
analysis" below), and between two phases the partial sums needed whole are added and the
rows needed whole concatenated. Which inputs start as rows: each distinct leading length
of the inputs is tried as the batch (see ``analyze``).

Results can differ from the serial replay in the last bits, because partial sums are
added in a different order (as with any reassociation, see jit's docstring), so they
depend on the thread count; ``funcgrad.config`` option ``jit_row_splitting`` turns the
splitting off.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from . import config as _config
from . import threads as _threads

U = ("U",)
S = ("S",)


def R(d):
    return ("R", d)


# Splitting pays off only with this much row work per phase run on slices (elements
# written by the equations that run there), and only when the rows concatenated for
# whole-value equations are a small part of it.
MIN_ROW_WORK = 1 << 20
MAX_JOIN_FRACTION = 0.25
# Matrix products big enough for BLAS to thread them itself (OpenBLAS: m * n * k over
# 65536 * 4) gain nothing from slices: two threads each calling a threaded BLAS measured
# 2-2.5x slower per call, and a 784-512-512-10 MLP step 2.5x slower split. A graph whose
# such products (multiply-adds) outweigh GEMM_WORK_RATIO times its other row work is not
# split (a multiply-add costs BLAS about 1/30 of an elementwise write, measured).
BLAS_THREADED_MNK = 1 << 18
GEMM_WORK_RATIO = 10


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
            return _linear_elementwise(name, kinds, invars, len(outvars))
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


def _linear_elementwise(name, kinds, invars, nout):
    n_s = sum(k is S for k in kinds)
    if any(k[0] == "R" for k in kinds):
        return None
    # scaling is linear for finite factors only (a partial 0 times inf, or a partial
    # 0 / 0, would make NaN where the whole sum gives inf): literals, checked here
    factor = [v for v, k in zip(invars, kinds) if k is not S]
    finite = all(_is_finite_literal(v, name in _DIVIDING) for v in factor)
    ok = ((name in _ADDITIVE and n_s == len(kinds))
          or (name in _SCALING and n_s == 1 and finite)
          or (name in _DIVIDING and kinds[0] is S and n_s == 1 and finite)
          or (name in _LINEAR_UNARY))
    return ([S] * nout, None, {}) if ok else None


def _is_finite_literal(v, nonzero):
    value = getattr(v, "value", None)
    if hasattr(v, "shape") or type(value) not in (bool, int, float, complex):
        return False
    return math.isfinite(abs(value)) and (value != 0 or not nonzero)


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
# The analysis: phases
#
# The graph runs as a sequence of phases. Phase p is: the whole-value equations of level p
# (serially, on this thread), then the row equations of phase p (on slices, on all the
# threads at once), then the joins that later phases need (rows concatenated, partial
# sums added). Slices keep their values from one phase to the next, so a training step
# whose loss divides by a sum over the batch (PyTorch's mean over non-ignored targets,
# batch norm's statistics) joins only those sums and goes on with its rows in the next
# phase. A value joined after phase p is whole from level p + 1 on.


class Plan:
    """How to run a graph split over rows (see above)."""

    def __init__(self, batch, kinds, where, reads, chunk_params, joins, phases, work,
                 join_work):
        self.batch = batch
        self.kinds = kinds              # var name -> kind as made (U, R(d) or S)
        self.where = where              # eqn index -> ("serial", level) or ("rows", phase)
        self.reads = reads              # row eqn index -> per input: ("whole",),
                                        # ("slice", axis) of a whole value, or ("local",)
        self.chunk_params = chunk_params  # row eqn index -> function of c, or None
        self.joins = joins              # phase -> the values joined after it
        self.phases = phases            # number of phases
        self.work = work                # row elements written on slices
        self.join_work = join_work      # row elements concatenated


def analyze(graph):
    """A :class:`Plan` for ``graph``, or None when splitting it over rows does not apply
    or would not pay off.

    Each distinct leading length of the inputs is tried as the batch, with every input of
    that length in rows, and with each such input alone in rows (a parameter can be as
    long as the batch: read in rows, it would split a product the wrong way and cost
    joins). The plan that puts the most work on slices, in the fewest phases, wins."""
    best = None
    for batch in sorted({v.shape[0] for v in graph.invars if len(v.shape) and v.shape[0] >= 2}):
        cands = [v.name for v in graph.invars if len(v.shape) and v.shape[0] == batch]
        for rows_in in [set(cands)] + ([{c} for c in cands] if len(cands) > 1 else []):
            plan = _analyze(graph, batch, rows_in)
            if plan is not None and (best is None or (plan.work, -plan.phases, -plan.join_work)
                                     > (best.work, -best.phases, -best.join_work)):
                best = plan
    return best


def _is_var(v):
    """A graph variable (not None, not a Literal: those have no shape)."""
    return v is not None and hasattr(v, "shape")


def _analyze(graph, batch, rows_in):
    kinds, made_at, whole_at = {}, {}, {}
    inputs = set()
    for v in graph.invars:
        # the inputs in ``rows_in`` start as rows; they are whole from the start too
        kinds[v.name] = R(0) if v.name in rows_in else U
        made_at[v.name] = whole_at[v.name] = 0
        inputs.add(v.name)
    for v, _ in graph.consts:
        kinds[v.name] = U
        made_at[v.name] = whole_at[v.name] = 0
    where, reads, chunk_params, joins = {}, {}, {}, {}
    work = big_gemm = 0

    def need_whole(v):
        """The level from which ``v`` is whole; marks the join that makes it so."""
        if v.name not in whole_at:
            p = made_at[v.name]
            joins.setdefault(p, {})[v.name] = v
            whole_at[v.name] = p + 1
        return whole_at[v.name]

    for j, e in enumerate(graph.eqns):
        if e.prim.effectful:
            return None                     # effects keep their order: no split
        natural = [kinds[v.name] if _is_var(v) else U for v in e.invars]
        rule = getattr(e.prim, "rows", None)
        res = None
        if rule is not None and any(k is not U for k in natural):
            # the kinds as made; failing that, graph inputs read whole (a parameter whose
            # length happens to be the batch's), partial sums joined (used non-linearly
            # with rows), or both
            as_input = [U if _is_var(v) and v.name in inputs else k
                        for v, k in zip(e.invars, natural)]
            for ins in (natural, as_input, [U if k is S else k for k in natural],
                        [U if k is S else k for k in as_input]):
                if any(k[0] == "R" for k in ins) or ins is natural:
                    res = rule(ins, e.invars, e.outvars, e.params, batch)
                    if res is not None and _exact_partials(ins, e.invars, e.outvars, res[0]):
                        break
                    res = None
        if res is None:
            level = max([need_whole(v) for v in e.invars if _is_var(v)], default=0)
            for v in e.outvars:
                kinds[v.name] = U
                made_at[v.name] = whole_at[v.name] = level
            where[j] = ("serial", level)
            continue
        outs, params_fn, cut = res
        phase, how = 0, []
        for i, (v, k) in enumerate(zip(e.invars, ins)):
            if not _is_var(v):
                how.append(None)
            elif i in cut:
                phase = max(phase, need_whole(v))
                how.append(("slice", cut[i]))
            elif k is U:
                phase = max(phase, need_whole(v))
                how.append(("whole",))
            elif v.name in inputs:                 # a graph input read in rows
                how.append(("slice", k[1]))
            else:                                  # made on the slices before
                phase = max(phase, made_at[v.name])
                how.append(("local",))
        gemm = _gemm_size(e)
        if gemm and gemm // _threads.budget() > BLAS_THREADED_MNK:
            big_gemm += gemm
            gemm = True
        for v, k in zip(e.outvars, outs):
            if k[0] == "R":
                if v.shape[k[1]] != batch:        # a rule's promise, checked
                    return None
                if gemm is not True:
                    work += math.prod(v.shape)
            kinds[v.name] = k
            made_at[v.name] = phase
        where[j] = ("rows", phase)
        reads[j] = how
        chunk_params[j] = params_fn
    for v in graph.outvars:
        if _is_var(v):
            need_whole(v)
    levels = [p for _, p in where.values()] + [p + 1 for p in joins]
    phases = 1 + max(levels, default=0)
    n_rows = len({p for kind, p in where.values() if kind == "rows"})
    if n_rows == 0 or work < MIN_ROW_WORK * n_rows or big_gemm > GEMM_WORK_RATIO * work:
        return None
    join_work = sum(math.prod(v.shape) for vs in joins.values() for v in vs.values()
                    if kinds[v.name][0] == "R" and v.name not in inputs)
    if join_work > MAX_JOIN_FRACTION * work:
        return None
    return Plan(batch, kinds, where, reads, chunk_params,
                {p: list(vs.values()) for p, vs in joins.items()}, phases, work, join_work)


def _exact(src, dst):
    """Whether converting ``src`` values to ``dst`` is exact (and so commutes with
    adding partial sums): the same dtype, or a widening between floating dtypes."""
    src, dst = np.dtype(src), np.dtype(dst)
    return src == dst or (src.kind in "fc" and dst.kind in "fc"
                          and np.can_cast(src, dst, "safe"))


def _exact_partials(ins, invars, outvars, outs):
    """Partial sums may pass into a partial-sum result only through exact conversions:
    an int partial turned float, or a float64 one rounded to float32, one slice at a
    time would not add up to the whole sum converted."""
    dsts = [v.dtype for v, k in zip(outvars, outs) if k is S]
    return all(_exact(v.dtype, d) for v, k in zip(invars, ins) if k is S for d in dsts)


def _gemm_size(e):
    """Multiply-adds of a matrix product equation (0 for anything else)."""
    if e.prim.name != "matmul":
        return 0
    a = e.invars[0]
    return math.prod(e.outvars[0].shape) * (a.shape[-1] if len(a.shape) else 1)


# --------------------------------------------------------------------------------------
# Building the programs


def build(graph, plan, serial, compile_graph, Var, Graph):
    """``f(*flat_inputs) -> outputs`` running ``graph`` by ``plan``, phase by phase (see
    above). ``compile_graph`` compiles each part (host code); ``serial`` (the whole graph
    compiled) runs instead where no split is possible (one thread, or a call made from
    inside a worker)."""
    kinds, eqns = plan.kinds, graph.eqns
    consts = list(graph.consts)
    const_names = {v.name for v, _ in consts}
    readers = {}
    for j, e in enumerate(eqns):
        for v in e.invars:
            if _is_var(v):
                readers.setdefault(v.name, set()).add(j)
    kept = {v.name for v in graph.outvars if _is_var(v)}
    kept |= {v.name for vs in plan.joins.values() for v in vs}

    def wanted(v, part):
        """Whether a value made in ``part`` (equation indices) is read outside it."""
        return v.name in kept or not readers.get(v.name, set()) <= part

    def serial_program(idx):
        made = {v.name for j in idx for v in eqns[j].outvars}
        ins, seen = [], set()
        for j in idx:
            for v in eqns[j].invars:
                if (_is_var(v) and v.name not in made and v.name not in seen
                        and v.name not in const_names):
                    seen.add(v.name)
                    ins.append(v)
        outs = [v for j in idx for v in eqns[j].outvars if wanted(v, set(idx))]
        fn = compile_graph(Graph(ins, consts, [eqns[j] for j in idx], outs), True)
        return fn, [v.name for v in ins], [v.name for v in outs]

    def rows_program(idx):
        keys = {}       # (name, how) -> var: the program's inputs
        made = set()
        for j in idx:
            for v, how in zip(eqns[j].invars, plan.reads[j]):
                if how is not None and not (how[0] == "local" and v.name in made):
                    keys[(v.name, how)] = v
            made.update(v.name for v in eqns[j].outvars)
        keys = list(keys.items())
        outs = [v for j in idx for v in eqns[j].outvars if wanted(v, set(idx))]

        @functools.lru_cache(maxsize=8)
        def program(c):
            # (a value can be read here both as made on this slice and whole, or sliced
            # from whole: each way gets its own name)
            def resized(v, axis, name):
                shape = list(v.shape)
                shape[axis] = c
                return Var(name, shape, v.dtype, v.deps, v.weak)

            def local_var(v):
                k = kinds[v.name]
                return resized(v, k[1], v.name) if k[0] == "R" else v

            env = {}
            invars = []
            for (name, how), v in keys:
                if how[0] == "whole":
                    nv = v if kinds[name] is U else Var(f"{name}_w", v.shape, v.dtype,
                                                        v.deps, v.weak)
                elif how[0] == "slice":
                    nv = resized(v, how[1], f"{name}_r{how[1]}")
                else:
                    nv = local_var(v)
                env[(name, how)] = nv
                invars.append(nv)
            new = []
            for j in idx:
                e = eqns[j]
                ins = []
                for v, how in zip(e.invars, plan.reads[j]):
                    if how is None:
                        ins.append(v)
                    elif how[0] == "local" and (v.name, "made") in env:
                        ins.append(env[(v.name, "made")])
                    else:
                        ins.append(env[(v.name, how)])
                outs_ = []
                for v in e.outvars:
                    nv = local_var(v)
                    env[(v.name, "made")] = nv
                    outs_.append(nv)
                fn = plan.chunk_params[j]
                new.append(type(e)(e.prim, ins, fn(c) if fn else e.params, outs_))
            return compile_graph(Graph(invars, [], new,
                                       [env[(v.name, "made")] for v in outs]), True)
        return program, [(name, how) for (name, how), _ in keys], [v.name for v in outs]

    parts = []
    for p in range(plan.phases):
        s_idx = [j for j in range(len(eqns)) if plan.where[j] == ("serial", p)]
        r_idx = [j for j in range(len(eqns)) if plan.where[j] == ("rows", p)]
        parts.append((serial_program(s_idx) if s_idx else None,
                      rows_program(r_idx) if r_idx else None,
                      [(v.name, kinds[v.name]) for v in plan.joins.get(p, [])]))
    batch = plan.batch
    flat_names = [v.name for v in graph.invars]
    out_refs = [(True, v.name) if _is_var(v) else (False, getattr(v, "value", None))
                for v in graph.outvars]
    const_env = {v.name: x for v, x in consts}
    const_copy = {v.name for v, x in consts if isinstance(x, np.ndarray)}

    def run(*flat):
        k = _threads.chunks(batch, _threads.MIN_CHUNK_WORK)
        if k <= 1 or not _config._OPTIONS["jit_row_splitting"]:
            return serial(*flat)
        bounds = [(j * batch // k, (j + 1) * batch // k) for j in range(k)]
        env = dict(zip(flat_names, flat))
        env.update(const_env)
        local = {a: {} for a, _ in bounds}
        for serial_part, rows_part, to_join in parts:
            if serial_part is not None:
                fn, names_in, names_out = serial_part
                env.update(zip(names_out, fn(*[env[n] for n in names_in])))
            if rows_part is not None:
                program, keys, names_out = rows_part

                def part(a, b, program=program, keys=keys, names_out=names_out):
                    loc = local[a]
                    args = []
                    for name, how in keys:
                        if how[0] == "whole":
                            args.append(env[name])
                        elif how[0] == "slice":
                            args.append(env[name][(slice(None),) * how[1] + (slice(a, b),)])
                        else:
                            args.append(loc[name])
                    loc.update(zip(names_out, program(b - a)(*args)))
                _threads.map_bounds(part, bounds)
            for name, kind in to_join:
                pieces = [local[a][name] for a, _ in bounds]
                if kind[0] == "R":
                    env[name] = np.concatenate(pieces, axis=kind[1])
                else:
                    total = pieces[0]
                    for x in pieces[1:]:
                        total = total + x
                    if isinstance(pieces[0], np.ndarray) and not isinstance(total, np.ndarray):
                        total = np.asarray(total)        # (0-d arrays add to a scalar)
                    env[name] = total
        return [(env[val].copy() if val in const_copy else env[val]) if is_var else val
                for is_var, val in out_refs]

    return run
