"""Row splitting: jit runs a graph on slices of its batch, one slice per thread.

A training step computes, for each example of a batch, the same thing, and sums the
examples' contributions into the loss and the gradients. Such a graph can run on the
first half of the batch in one thread and on the second half in another, with the partial
sums added at the end: one hand-off per step, where splitting each convolution or
pooling separately costs one per operation (about 60 µs each on a 2-core VM), and the
elementwise work between them gets both cores too.

Each primitive says how it splits with a *row rule* (``prim.rows``, defined next to its
other rules). A value of the graph is of one of three kinds:

* ``WHOLE`` (:class:`Whole`) - a graph input, a constant, or computed from whole values
  only, serially on this thread (before the first phase on slices, or between phases).
* ``Rows(axis)`` - each slice holds the rows ``a:b`` of ``axis``; the whole value would
  be the concatenation of the slices along it.
* ``PARTIAL`` (:class:`PartialSum`) - each slice holds a partial value; the whole value
  is their sum.

``rule(kinds, invars, outvars, params, batch)`` gets the kinds of the inputs (whole
inputs also show their shapes through ``invars``) and returns ``None`` when the equation
cannot run on slices, else ``(out_kinds, chunk_params, sliced)``: the kinds of the
outputs, a function of the slice length giving the parameters for a slice (``None`` when
they do not change) and ``{input index: axis}`` for whole inputs that must be sliced along
an axis for this equation (a full-batch constant added to rows, say); ``PARTIAL`` instead of
an axis reads a whole input as a partial sum: the whole value on the first slice and zeros
on the others (the start of an accumulator the slices add their parts to). A rule may add a
fourth item: the row work (elements written) the equation does besides its outputs, a
loop's steps.

Partial sums only flow through operations linear in them (adding two partial sums,
scaling one by a finite constant, reshaping, summing, widening casts...: elementwise
primitives say so by their ``linear_in`` and ``scalar_multiple`` properties). Everything
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

import dataclasses
import functools
import math

import numpy as np

from . import config as _config
from . import threads as _threads
from .ir import Graph, Var


class Whole:
    """Row kind: the whole value, on this thread (the one instance is ``WHOLE``)."""
    __slots__ = ()

    def __repr__(self):
        return "WHOLE"


class PartialSum:
    """Row kind: a partial sum per slice (the one instance is ``PARTIAL``)."""
    __slots__ = ()

    def __repr__(self):
        return "PARTIAL"


@dataclasses.dataclass(frozen=True, slots=True)
class Rows:
    """Row kind: each slice holds rows ``a:b`` of ``axis``."""
    axis: int


WHOLE = Whole()
PARTIAL = PartialSum()


# How a row program reads one of its inputs (Plan.reads)
@dataclasses.dataclass(frozen=True, slots=True)
class ReadWhole:
    """The whole value (made serially, or joined after an earlier phase)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ReadSlice:
    """Rows ``a:b`` along ``axis`` of a whole value (a graph input read in rows, or a
    whole value that a rule asked to slice)."""
    axis: int


@dataclasses.dataclass(frozen=True, slots=True)
class ReadShare:
    """A whole value as a partial sum: the value on the first slice, zeros on the others
    (a rule's ``PARTIAL`` in place of an axis)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ReadLocal:
    """The value as made on this slice, in this phase or an earlier one."""


# Where an equation runs (Plan.where)
@dataclasses.dataclass(frozen=True, slots=True)
class Serial:
    """Serially on whole values, before the row work of phase ``phase``."""
    phase: int


@dataclasses.dataclass(frozen=True, slots=True)
class OnRows:
    """On every slice at once, in phase ``phase``."""
    phase: int


_generate = None     # graph -> host code: compiler.compile_graph, registered at import


def register_code_generator(fn):
    """Called once by the compiler: how each part of a split graph becomes code."""
    global _generate
    _generate = fn


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
# A loop runs on slices only when the values in rows of its step are this big on average
# (elements, whole batch): each step's many small operations hold the GIL while NumPy
# starts them, so two slices of a small step contend instead of running side by side.
# Measured (2 cores, char-LM LSTM step, hidden 128): batch 64 (8-32 Ki elements a value)
# 0.93x, batch 256 1.55x faster on slices; an LSTM-like loop alone 1.16x at 4 Ki elements
# a slice, 1.53x at 16 Ki, 1.89x at 64 Ki.
MIN_LOOP_ROW_SIZE = 1 << 15
# A value needed whole by later row work that comes from little row work and no join
# (the count of a batch's non-ignored labels, by which a mean loss divides) is computed
# again, whole, before the first phase instead of joined from the slices, when its
# equations write at most MAX_RECOMPUTE elements and 1/RECOMPUTE_RATIO of the row work,
# and that saves a phase on slices: each phase boundary costs the slices a hand-off and
# waits for the slower one. Measured: the Fashion-MNIST CNN's Adam step (batch 64, 2
# threads) goes from two phases on slices to one, 1.05x faster.
MAX_RECOMPUTE = 1 << 16
RECOMPUTE_RATIO = 16


# --------------------------------------------------------------------------------------
# Rule factories shared by primitive families


def _shape(v):
    return tuple(getattr(v, "shape", ()))


def broadcasting_rows(prim):
    """Row rule of an elementwise primitive with NumPy broadcasting."""
    def rule(kinds, invars, outvars, params, batch):
        if PARTIAL in kinds:
            return _linear_elementwise(prim, kinds, invars, len(outvars))
        axis = _common_row_axis(kinds, invars, len(outvars[0].shape))
        if axis is None:
            return None
        sliced = _whole_operands_to_slice(kinds, invars, axis, len(outvars[0].shape), batch)
        if sliced is None:
            return None
        return [Rows(axis)] * len(outvars), None, sliced
    return rule


def _common_row_axis(kinds, invars, nd):
    """The output axis that the rows operands of a broadcasting equation share (None when
    they disagree)."""
    axis = None
    for k, v in zip(kinds, invars):
        if isinstance(k, Rows):
            a = k.axis + nd - len(_shape(v))
            if axis is None:
                axis = a
            elif a != axis:
                return None
    return axis


def _whole_operands_to_slice(kinds, invars, axis, nd, batch):
    """``{index: axis}`` of the whole operands that run along the rows' axis (sliced with
    them); None when one has another length there (it cannot broadcast)."""
    sliced = {}
    for i, (k, v) in enumerate(zip(kinds, invars)):
        if k is WHOLE:
            shp = _shape(v)
            a = axis - (nd - len(shp))
            if a >= 0:
                if shp[a] == batch:
                    sliced[i] = a
                elif shp[a] != 1:
                    return None
    return sliced


def _linear_elementwise(prim, kinds, invars, nout):
    """Partial sums through an elementwise equation: allowed when the primitive is
    ``linear_in`` exactly the partial-sum operands, all of its operands (a sum of two
    partial sums, a negation), or is a ``scalar_multiple`` of the one partial-sum operand
    by a finite number (a product with a literal: a partial 0 times inf, or a partial
    0 / 0, would make NaN where the whole sum gives inf, so array factors are refused)."""
    if any(isinstance(k, Rows) for k in kinds):
        return None
    partial = tuple(i for i, k in enumerate(kinds) if k is PARTIAL)
    ok = len(partial) == len(kinds) and partial in prim.linear_in
    if not ok and prim.scalar_multiple is not None:
        hit = prim.scalar_multiple(invars)
        ok = (hit is not None and partial == (hit[0],)
              and math.isfinite(abs(hit[1])))
    return ([PARTIAL] * nout, None, {}) if ok else None


def identity_rows(kinds, invars, outvars, params, batch):
    """Row rule of a primitive that returns its operand's values unchanged (per element)."""
    return [kinds[0]] * len(outvars), None, {}


def reduction_rows(prim):
    """Row rule of a reduction with ``axis`` (tuple or None) and ``keepdims`` parameters:
    reducing the batch axis is allowed only for a reduction ``linear_in`` its operand (a
    sum), which gives a partial sum."""
    linear = ((0,),) == prim.linear_in

    def rule(kinds, invars, outvars, params, batch):
        k = kinds[0]
        nd = len(_shape(invars[0]))
        axis = params.get("axis")
        axes = range(nd) if axis is None else [a % nd for a in (
            axis if isinstance(axis, tuple) else (axis,))]
        if k is PARTIAL:
            return ([PARTIAL], None, {}) if linear else None
        d = k.axis
        if d in axes:
            return ([PARTIAL], None, {}) if linear else None
        if not params.get("keepdims"):
            d -= sum(a < d for a in axes)
        return [Rows(d)] * len(outvars), None, {}
    return rule


def with_length(params, key, axis, c):
    """``params`` with ``params[key][axis]`` (a shape) set to the slice length ``c``."""
    shape = list(params[key])
    shape[axis] = c
    return {**params, key: tuple(shape)}


# --------------------------------------------------------------------------------------
# Sub-graphs: a loop whose body runs on slices (the scan primitive's row rule)


def body_kinds(graph, in_kinds, batch, shareable=()):
    """The kinds of a sub-graph's values (a loop's body) with inputs of ``in_kinds``, every
    equation running on each slice: ``(kinds, chunk_params, requests)``, or None when
    some equation cannot. An equation of whole values only runs whole on every slice
    (the same small work on each). ``requests`` (non-empty: the analysis stopped there)
    maps an input index to the kind it must have for an equation to split: ``Rows(axis)``
    for a whole input a rule slices, ``PARTIAL`` for an input of ``shareable`` (a carry,
    read as a share of its start) that is added to partial sums; the key None when the
    value to slice was made in the body from whole inputs (a carry's product with a
    weight, say: the caller decides which input to put in rows)."""
    kinds, chunk, pos = {}, {}, {}
    for i, (v, k) in enumerate(zip(graph.invars, in_kinds)):
        kinds[v.name] = k
        pos[v.name] = i
    for v, _ in graph.consts:
        kinds[v.name] = WHOLE
    for j, e in enumerate(graph.eqns):
        if e.prim.effectful:
            return None
        ins = [kinds[v.name] if _is_var(v) else WHOLE for v in e.invars]
        if all(k is WHOLE for k in ins):
            for v in e.outvars:
                kinds[v.name] = WHOLE
            continue
        rule = getattr(e.prim, "rows", None)
        if rule is None:
            return None
        res = rule(ins, e.invars, e.outvars, e.params, batch)
        if res is None or not _exact_partials(ins, e.invars, e.outvars, res[0]):
            # a carry's start added to partial sums: the carry becomes one
            share = {pos[v.name] for v, k in zip(e.invars, ins)
                     if k is WHOLE and _is_var(v) and pos.get(v.name) in shareable}
            if PARTIAL in ins and share:
                ins2 = [PARTIAL if _is_var(v) and pos.get(v.name) in share else k
                        for v, k in zip(e.invars, ins)]
                res = rule(ins2, e.invars, e.outvars, e.params, batch)
                if res is not None and _exact_partials(ins2, e.invars, e.outvars, res[0]):
                    return kinds, chunk, {i: PARTIAL for i in share}
            return None
        outs, params_fn, cut = res[:3]
        if cut:
            req = {}
            for i, axis in cut.items():
                name = e.invars[i].name
                if axis is PARTIAL:
                    return None
                # (a whole value made inside the body, from whole inputs: key None)
                req[pos.get(name)] = Rows(axis)
            return kinds, chunk, req
        for v, k in zip(e.outvars, outs):
            if isinstance(k, Rows) and v.shape[k.axis] != batch:
                return None                # a rule's promise, checked
            kinds[v.name] = k
        chunk[j] = params_fn
    return kinds, chunk, {}


def resized_graph(graph, kinds, chunk, c):
    """``graph`` (analysed by :func:`body_kinds`) for slices of length ``c``: its values
    in rows resized along their axis, its equations' parameters made for ``c``."""
    def nv(v):
        k = kinds.get(v.name) if _is_var(v) else None
        return _resized(v, k.axis, c, v.name) if isinstance(k, Rows) else v

    eqns = [type(e)(e.prim, [nv(v) for v in e.invars],
                    chunk[j](c) if chunk.get(j) else e.params, [nv(v) for v in e.outvars])
            for j, e in enumerate(graph.eqns)]
    return Graph([nv(v) for v in graph.invars], list(graph.consts), eqns,
                 [nv(v) for v in graph.outvars], graph.in_tree, graph.out_tree,
                 graph.arg_names)


# --------------------------------------------------------------------------------------
# The analysis: phases
#
# The graph runs as a sequence of phases. Phase p is: the whole-value equations of level p
# (serially, on this thread), then the row equations of phase p (on slices, on all the
# threads at once), then the joins that later phases need (rows concatenated, partial
# sums added). Slices keep their values from one phase to the next, so a training step
# whose loss divides by a sum over the batch (PyTorch's mean over non-ignored targets,
# batch norm's statistics) joins only those sums and goes on with its rows in the next
# phase. A value joined after phase p is whole from level p + 1 on. A second try
# (``_with_recompute``) keeps from joining the values that later row work reads whole
# and that come cheaply from the inputs (``MAX_RECOMPUTE``): their equations run a
# second time, whole, before phase 0 (``Plan.recompute``), so that the mean loss's count
# of labels does not cut the step into two phases on slices.


class Plan:
    """How to run a graph split over rows (see above)."""

    def __init__(self, batch, kinds, where, reads, chunk_params, joins, phases, work,
                 join_work, recompute=frozenset(), recompute_size=0):
        self.batch = batch
        self.kinds = kinds              # var name -> kind as made (WHOLE, Rows or PARTIAL)
        self.where = where              # eqn index -> Serial(phase) or OnRows(phase)
        self.reads = reads              # row eqn index -> per input: ReadWhole(),
                                        # ReadSlice(axis) of a whole value, ReadLocal(),
                                        # or None (a literal)
        self.chunk_params = chunk_params  # row eqn index -> function of c, or None
        self.joins = joins              # phase -> the values joined after it
        self.phases = phases            # number of phases
        self.work = work                # row elements written on slices
        self.join_work = join_work      # row elements concatenated
        self.recompute = recompute      # row eqn indices also run whole, before phase 0
        self.recompute_size = recompute_size  # elements they write


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
            plan = _Analysis(graph, batch, rows_in).plan()
            if plan is not None:
                plan = _with_recompute(graph, batch, rows_in, plan)
            if plan is not None and (best is None or (plan.work, -plan.phases, -plan.join_work)
                                     > (best.work, -best.phases, -best.join_work)):
                best = plan
    return best


def _with_recompute(graph, batch, rows_in, plan):
    """``plan``, or a plan with fewer phases on slices where the values joined before the
    last of them can be made whole again before phase 0 (``MAX_RECOMPUTE``)."""
    last = max(row_phases(plan))
    early = {v.name for p, vs in plan.joins.items() if p < last for v in vs
             if _feeds_rows(graph, plan, v.name)}
    if not early:
        return plan
    other = _Analysis(graph, batch, rows_in, early).plan()
    if other is None or other.recompute_size * RECOMPUTE_RATIO > other.work:
        return plan
    return other if len(row_phases(other)) < len(row_phases(plan)) else plan


def row_phases(plan):
    """The phases of ``plan`` (or of an analysis under way) that run equations on
    slices."""
    return {w.phase for w in plan.where.values() if isinstance(w, OnRows)}


def _feeds_rows(graph, plan, name):
    """Whether equations on slices read the whole value ``name``, directly or through
    serial equations (the mean loss's count of labels does; the loss itself does not)."""
    marked = {name}
    for j, e in enumerate(graph.eqns):
        if any(_is_var(v) and v.name in marked for v in e.invars):
            if isinstance(plan.where[j], OnRows):
                return True
            marked.update(v.name for v in e.outvars)
    return False


def _is_var(v):
    """A graph variable (not None, not a Literal: those have no shape)."""
    return v is not None and hasattr(v, "shape")


class _Analysis:
    """One try of :func:`analyze`: ``batch`` as the batch length, the inputs named in
    ``rows_in`` read in rows. Walks the equations once, giving each its place."""

    def __init__(self, graph, batch, rows_in, recompute=frozenset()):
        self.graph, self.batch = graph, batch
        self.may_recompute = recompute     # names of values that may be made whole again
        self.kinds, self.made_at, self.whole_at = {}, {}, {}
        self.inputs = set()
        for v in graph.invars:
            # the inputs in ``rows_in`` start as rows; they are whole from the start too
            self.kinds[v.name] = Rows(0) if v.name in rows_in else WHOLE
            self.made_at[v.name] = self.whole_at[v.name] = 0
            self.inputs.add(v.name)
        for v, _ in graph.consts:
            self.kinds[v.name] = WHOLE
            self.made_at[v.name] = self.whole_at[v.name] = 0
        self.where, self.reads, self.chunk_params, self.joins = {}, {}, {}, {}
        self.work = self.big_gemm = 0
        # name -> index of the equation making it (None for an input or a constant);
        # the equations to run again whole (Plan.recompute), and the elements they write
        self.made_by = dict.fromkeys(self.made_at)
        self.recompute, self.recompute_size = set(), 0

    def plan(self):
        for j, e in enumerate(self.graph.eqns):
            if e.prim.effectful:
                return None                     # effects keep their order: no split
            self.made_by.update((v.name, j) for v in e.outvars)
            found = self.row_rule(e)
            if found is None:
                self.place_serial(j, e)
            elif not self.place_on_rows(j, e, *found):
                return None
        for v in self.graph.outvars:
            if _is_var(v):
                self.need_whole(v, recompute=False)    # (joined at the end anyway)
        return self.finish()

    def need_whole(self, v, recompute=True):
        """The level from which ``v`` is whole; marks the join that makes it so (or,
        with ``recompute``, its equations' second run, see :meth:`recomputed`)."""
        if v.name not in self.whole_at and not (
                recompute and v.name in self.may_recompute and self.recomputed(v)):
            p = self.made_at[v.name]
            self.joins.setdefault(p, {})[v.name] = v
            self.whole_at[v.name] = p + 1
        return self.whole_at[v.name]

    def recomputed(self, v):
        """Whether ``v`` (made on slices) can be made whole before phase 0 instead: when
        the row equations it comes from write at most ``MAX_RECOMPUTE`` elements (with
        those already marked) and read whole values only from level 0. If so, marks them
        to run again whole (``Plan.recompute``) and their results as whole from level 0."""
        todo, eqns, size = [v.name], set(), self.recompute_size
        while todo:
            name = todo.pop()
            if name in self.whole_at:
                if self.whole_at[name] > 0:      # joined: not there before phase 0
                    return False
                continue
            j = self.made_by[name]
            if j in eqns:
                continue
            eqns.add(j)
            size += sum(math.prod(u.shape) for u in self.graph.eqns[j].outvars)
            if size > MAX_RECOMPUTE:
                return False
            todo.extend(u.name for u in self.graph.eqns[j].invars if _is_var(u))
        self.recompute_size = size
        self.recompute |= eqns
        for j in eqns:
            for u in self.graph.eqns[j].outvars:
                self.whole_at.setdefault(u.name, 0)
        return True

    def row_rule(self, e):
        """``(input kinds, rule result)`` for running ``e`` on slices, or None. Tries the
        kinds as made; failing that, graph inputs read whole (a parameter whose length
        happens to be the batch's), partial sums joined (used non-linearly with rows), or
        both."""
        rule = getattr(e.prim, "rows", None)
        natural = [self.kinds[v.name] if _is_var(v) else WHOLE for v in e.invars]
        if rule is None or all(k is WHOLE for k in natural):
            return None
        as_input = [WHOLE if _is_var(v) and v.name in self.inputs else k
                    for v, k in zip(e.invars, natural)]
        for ins in (natural, as_input, _joined(natural), _joined(as_input)):
            if any(isinstance(k, Rows) for k in ins) or ins is natural:
                res = rule(ins, e.invars, e.outvars, e.params, self.batch)
                if res is not None and _exact_partials(ins, e.invars, e.outvars, res[0]):
                    return ins, res
        return None

    def place_serial(self, j, e):
        level = max([self.need_whole(v) for v in e.invars if _is_var(v)], default=0)
        for v in e.outvars:
            self.kinds[v.name] = WHOLE
            self.made_at[v.name] = self.whole_at[v.name] = level
        self.where[j] = Serial(level)

    def place_on_rows(self, j, e, ins, res):
        """Record ``e`` as row work; False when a rule's promise does not hold."""
        outs, params_fn, cut = res[:3]
        if len(res) > 3:
            self.work += res[3]                  # the row work inside (a loop's steps)
        phase, how = self.reads_of(e, ins, cut)
        gemm = _gemm_size(e)
        big = bool(gemm) and gemm // _threads.budget() > BLAS_THREADED_MNK
        if big:
            self.big_gemm += gemm
        for v, k in zip(e.outvars, outs):
            if isinstance(k, Rows):
                if v.shape[k.axis] != self.batch:        # a rule's promise, checked
                    return False
                if not big:
                    self.work += math.prod(v.shape)
            self.kinds[v.name] = k
            self.made_at[v.name] = phase
        self.where[j] = OnRows(phase)
        self.reads[j] = how
        self.chunk_params[j] = params_fn
        return True

    def reads_of(self, e, ins, cut):
        """The phase in which ``e`` can run on slices, and how it reads each input."""
        phase, how = 0, []
        for i, (v, k) in enumerate(zip(e.invars, ins)):
            if not _is_var(v):
                how.append(None)
            elif i in cut:
                phase = max(phase, self.need_whole(v))
                how.append(ReadShare() if cut[i] is PARTIAL else ReadSlice(cut[i]))
            elif k is WHOLE:
                phase = max(phase, self.need_whole(v))
                how.append(ReadWhole())
            elif v.name in self.inputs:            # a graph input read in rows
                how.append(ReadSlice(k.axis))
            else:                                  # made on the slices before
                phase = max(phase, self.made_at[v.name])
                how.append(ReadLocal())
        return phase, how

    def finish(self):
        """The plan, if it pays: enough row work, little to concatenate, and not mostly
        big matrix products."""
        levels = [w.phase for w in self.where.values()] + [p + 1 for p in self.joins]
        phases = 1 + max(levels, default=0)
        n_rows = len(row_phases(self))
        work = self.work
        if n_rows == 0 or work < MIN_ROW_WORK * n_rows or self.big_gemm > GEMM_WORK_RATIO * work:
            return None
        join_work = sum(math.prod(v.shape) for vs in self.joins.values() for v in vs.values()
                        if isinstance(self.kinds[v.name], Rows) and v.name not in self.inputs)
        if join_work > MAX_JOIN_FRACTION * work:
            return None
        return Plan(self.batch, self.kinds, self.where, self.reads, self.chunk_params,
                    {p: list(vs.values()) for p, vs in self.joins.items()}, phases, work,
                    join_work, frozenset(self.recompute), self.recompute_size)


def _joined(kinds):
    """The kinds with partial sums read whole (joined first)."""
    return [WHOLE if k is PARTIAL else k for k in kinds]


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
    dsts = [v.dtype for v, k in zip(outvars, outs) if k is PARTIAL]
    return all(_exact(v.dtype, d) for v, k in zip(invars, ins) if k is PARTIAL for d in dsts)


def _gemm_size(e):
    """Multiply-adds of a matrix product equation (its primitive's ``multiply_adds``
    property; 0 for anything else)."""
    rule = getattr(e.prim, "multiply_adds", None)
    return 0 if rule is None else rule(e.invars, e.outvars)


# --------------------------------------------------------------------------------------
# Building the programs
#
# Each phase becomes up to two programs, compiled by the registered code generator: the
# serial one (its whole-value equations) and the row one (its row equations, compiled
# once per slice length). The runner walks the phases, keeping each slice's values.


def build(graph, plan, serial, generate=None):
    """``f(*flat_inputs) -> outputs`` running ``graph`` by ``plan``, phase by phase (see
    above). ``serial`` (the whole graph compiled) runs instead where no split is
    possible (one thread, or a call made from inside a worker). ``generate(graph, host)``
    makes each part's code (default: the code generator the compiler registered; the
    Numba backend passes its own)."""
    generate = generate or _generate
    wanted = _Wanted(graph, plan)
    parts = []
    for p in range(plan.phases):
        s_idx = [j for j in range(len(graph.eqns))
                 if plan.where[j] == Serial(p) or p == 0 and j in plan.recompute]
        r_idx = [j for j in range(len(graph.eqns)) if plan.where[j] == OnRows(p)]
        parts.append((_serial_program(graph, s_idx, wanted, generate) if s_idx else None,
                      _rows_program(graph, plan, r_idx, wanted, generate) if r_idx else None,
                      [(v.name, plan.kinds[v.name]) for v in plan.joins.get(p, [])]))
    return _runner(graph, plan, parts, serial)


class _Wanted:
    """Which values a part of the graph must hand out: those read outside it, the
    graph's outputs, and the values joined between phases."""

    def __init__(self, graph, plan):
        self.readers = {}
        for j, e in enumerate(graph.eqns):
            for v in e.invars:
                if _is_var(v):
                    self.readers.setdefault(v.name, set()).add(j)
        self.kept = {v.name for v in graph.outvars if _is_var(v)}
        self.kept |= {v.name for vs in plan.joins.values() for v in vs}
        self.recompute = plan.recompute

    def outputs(self, eqns, idx):
        part = set(idx) - self.recompute     # (those also read their inputs on slices)
        return [v for j in idx for v in eqns[j].outvars
                if v.name in self.kept or not self.readers.get(v.name, set()) <= part]


def _serial_program(graph, idx, wanted, generate):
    """``(fn, input names, output names)`` for the serial equations ``idx``."""
    eqns = graph.eqns
    const_names = {v.name for v, _ in graph.consts}
    made = {v.name for j in idx for v in eqns[j].outvars}
    ins, seen = [], set()
    for j in idx:
        for v in eqns[j].invars:
            if (_is_var(v) and v.name not in made and v.name not in seen
                    and v.name not in const_names):
                seen.add(v.name)
                ins.append(v)
    outs = wanted.outputs(eqns, idx)
    fn = generate(Graph(ins, list(graph.consts), [eqns[j] for j in idx], outs), True)
    return fn, [v.name for v in ins], [v.name for v in outs]


def _rows_program(graph, plan, idx, wanted, generate):
    """``(program, input keys, output names)`` for the row equations ``idx``:
    ``program(c)`` is their code for a slice of length ``c`` (compiled once per length);
    its inputs are ``(name, read)`` pairs."""
    eqns = graph.eqns
    keys = {}       # (name, read) -> var: the program's inputs
    made = set()
    for j in idx:
        for v, how in zip(eqns[j].invars, plan.reads[j]):
            if how is not None and not (isinstance(how, ReadLocal) and v.name in made):
                keys[(v.name, how)] = v
        made.update(v.name for v in eqns[j].outvars)
    keys = list(keys.items())
    outs = wanted.outputs(eqns, idx)

    @functools.lru_cache(maxsize=8)
    def program(c):
        return generate(_slice_graph(eqns, plan, idx, keys, outs, c), True)
    return program, [key for key, _ in keys], [v.name for v in outs]


def _slice_graph(eqns, plan, idx, keys, outs, c):
    """The graph of the row equations ``idx`` on a slice of length ``c``. A value can be
    read here both as made on this slice and whole, or sliced from whole: each way gets
    its own variable."""
    kinds = plan.kinds

    def local_var(v):
        k = kinds[v.name]
        return _resized(v, k.axis, c, v.name) if isinstance(k, Rows) else v

    env = {}
    invars = []
    for (name, how), v in keys:
        if isinstance(how, ReadWhole):
            nv = v if kinds[name] is WHOLE else Var(f"{name}_w", v.shape, v.dtype, v.deps,
                                                     v.weak)
        elif isinstance(how, ReadSlice):
            nv = _resized(v, how.axis, c, f"{name}_r{how.axis}")
        elif isinstance(how, ReadShare):
            nv = Var(f"{name}_p", v.shape, v.dtype, v.deps, v.weak)
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
            elif isinstance(how, ReadLocal) and (v.name, "made") in env:
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
    return Graph(invars, [], new, [env[(v.name, "made")] for v in outs])


def _resized(v, axis, c, name):
    """Variable ``name`` like ``v`` with length ``c`` along ``axis`` (a slice's value)."""
    shape = list(v.shape)
    shape[axis] = c
    return Var(name, shape, v.dtype, v.deps, v.weak)


def _join(pieces, kind):
    """The whole value from its slices: rows concatenated, partial sums added."""
    if isinstance(kind, Rows):
        return np.concatenate(pieces, axis=kind.axis)
    total = pieces[0]
    for x in pieces[1:]:
        total = total + x
    if isinstance(pieces[0], np.ndarray) and not isinstance(total, np.ndarray):
        total = np.asarray(total)        # (0-d arrays add to a scalar)
    return total


def _slice_args(keys, env, loc, a, b):
    """A row program's arguments on slice ``a:b``."""
    args = []
    for name, how in keys:
        if isinstance(how, ReadWhole):
            args.append(env[name])
        elif isinstance(how, ReadSlice):
            args.append(env[name][(slice(None),) * how.axis + (slice(a, b),)])
        elif isinstance(how, ReadShare):
            x = env[name]
            args.append(x if a == 0 else np.zeros_like(x))
        else:
            args.append(loc[name])
    return args


def _runner(graph, plan, parts, serial):
    """The callable running the phases ``parts`` (see :func:`build`)."""
    batch = plan.batch
    flat_names = [v.name for v in graph.invars]
    out_refs = [(True, v.name) if _is_var(v) else (False, getattr(v, "value", None))
                for v in graph.outvars]
    const_env = {v.name: x for v, x in graph.consts}
    const_copy = {v.name for v, x in graph.consts if isinstance(x, np.ndarray)}

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
                    loc.update(zip(names_out, program(b - a)(*_slice_args(keys, env, loc, a, b))))
                _threads.map_bounds(part, bounds)
            for name, kind in to_join:
                env[name] = _join([local[a][name] for a, _ in bounds], kind)
        return [(env[val].copy() if val in const_copy else env[val]) if is_var else val
                for is_var, val in out_refs]

    return run
