"""Whole scan loops as one native function, on jit's Numba backend
(``jit(f, backend="numba")``; numba_backend.py compiles the elementwise groups).

A ``scan`` under jit runs its body's recurrence step by step (``_LoopSplit`` in
prims/control_flow.py batches what does not depend on the carry before and after the
loop). On the NumPy replay every step still costs a few NumPy calls from Python. Here,
when every equation of that step is one this module can write in Numba, the loop
itself becomes one ``@numba.njit`` function: ``loop(*consts, *invariants, *carries,
*per_step_arrays, n, reverse) -> (*carries, *per_step_outputs)``, with no Python
between the steps or between the operations of a step. An RNN step (a product, an add,
a tanh) then costs what its arithmetic costs.

What a step may hold (anything else keeps the step-by-step replay):

* runs of elementwise equations (those numba_backend.py fuses, plus ``broadcast_to``),
  one loop nest per run of one output shape, values kept in registers;
* ``matmul`` of 1-d and 2-d float operands (mixed float32/float64 promoted as NumPy
  does): NumPy's own BLAS with NumPy's matmul's choices (numba_blas.py: transposed and
  sliced operands passed as they are, with the BLAS's transposition flags), so on NumPy's
  thread pool and thread count; Numba's ``np.dot`` (SciPy's BLAS, C-ordered copies)
  where NumPy's BLAS cannot be called (MKL, Accelerate, a system BLAS);
* ``transpose`` (a view), ``reshape``, ``concatenate``;
* ``x[idx]`` (a view) and ``x.at[idx].add/set(v)`` for indices of integers and slices,
  ``split`` (views: an LSTM's gates);
* ``sum`` of floats over any axes (a plain loop);
* integer and bool arithmetic, comparisons, bitwise operations and casts (counters, a
  ``while_loop``'s condition);
* ``cond``/``switch`` whose branches are made of the same (each branch under its ``if``).

``while_loop`` (and ``fori_loop`` with traced bounds) runs as one native ``while``
when its condition and body are made of the same.

Exactness: the elementwise operations are those of numba_backend.py, with its bounds.
Products are NumPy's, bit for bit (with the ``np.dot`` fallback another BLAS's kernels
may sum in another order: a few ulp), and ``sum`` adds in index order where NumPy sums
pairwise (the order of a reduction: a few ulp on the sum). The tests compare with the
replay to ``rtol=1e-12`` in float64.

The loop compiles on numba_backend's background thread from the split body's second run
on; the replay loop runs until it is ready. Loops are cached on disk like kernels.
"""
from __future__ import annotations

import functools

import numpy as np

from . import numba_backend as _nb
from . import numba_blas as _nblas
from .fusion import Kernel
from .ir import Eqn, Literal, Var
from .prims import control_flow as _cf

_F = (np.dtype(np.float32), np.dtype(np.float64))
# native loop runs in this process (tests read it to see a loop ran natively)
stats = {"runs": 0}


class Unsupported(Exception):
    """A step holds an equation this module does not write."""


def _rshape(v):
    """The shape a value has in the generated code: 0-d values are 1-element arrays."""
    return tuple(v.shape) if v.shape else (1,)


def _dt(dt):
    return "np.bool_" if dt == np.dtype(bool) else f"np.{np.dtype(dt).name}"


_I = (np.dtype(np.int32), np.dtype(np.int64))
_BOOL = np.dtype(bool)
# integer and bool arithmetic written here (a loop counter, a loop's condition); integers
# wrap around in both NumPy and Numba
_INT_EXPR = {"add": "{0} + {1}", "subtract": "{0} - {1}", "multiply": "{0} * {1}",
             "negative": "-{0}", "greater": "{0} > {1}", "greater_equal": "{0} >= {1}",
             "less": "{0} < {1}", "less_equal": "{0} <= {1}", "equal": "{0} == {1}",
             "not_equal": "{0} != {1}", "bitwise_and": "({0} & {1})",
             "bitwise_or": "({0} | {1})", "bitwise_xor": "({0} ^ {1})",
             "logical_and": "({0} and {1})", "logical_or": "({0} or {1})"}
_SAME = ("add", "subtract", "multiply", "negative", "bitwise_and", "bitwise_or",
         "bitwise_xor")            # (the others give bool)
_ON_BOOL = ("bitwise_and", "bitwise_or", "bitwise_xor", "logical_and", "logical_or",
            "equal", "not_equal")


def _int_typing(e):
    """The operand dtype of an integer or bool equation written here, or None."""
    name = e.prim.name
    if name not in _INT_EXPR or e.params or len(e.outvars) != 1 or e.outvars[0].weak:
        return None
    dts = set()
    for v in e.invars:
        if isinstance(v, Var):
            if v.weak or v.dtype not in _I + (_BOOL,):
                return None
            dts.add(v.dtype)
        elif not (type(v.value) is int and abs(v.value) < 2 ** 31):
            return None
    if len(dts) != 1:
        return None
    dt, = dts
    # (Python's and/or return an operand: on integers they are not NumPy's logical ops)
    if name not in _ON_BOOL if dt == _BOOL else name in ("logical_and", "logical_or"):
        return None
    want = dt if name in _SAME else _BOOL
    return dt if e.outvars[0].dtype == want else None


def _int_cast(e):
    """A ``convert_element_type`` from an integer or bool to an integer, or None."""
    if e.prim.name != "convert_element_type" or len(e.invars) != 1 or e.outvars[0].weak:
        return None
    x, o = e.invars[0], e.outvars[0]
    if isinstance(x, Var) and not x.weak and x.dtype in _I + (_BOOL,) and o.dtype in _I:
        return o.dtype
    return None


def _element_code(e, operand):
    if _int_cast(e) is not None:
        return f"np.{e.outvars[0].dtype.name}({operand(e.invars[0])})"
    dt = _int_typing(e)
    if dt is not None:
        expr = _INT_EXPR[e.prim.name].format(*[operand(v) for v in e.invars])
        # (Numba computes int32 arithmetic in int64: rounded back at once, as NumPy wraps)
        return f"np.{dt.name}({expr})" if e.prim.name in _SAME and dt != _BOOL else expr
    return _nb._element_code(e, operand)


def _elementwise(e):
    return _nb.fusible(e) or _int_typing(e) is not None or _int_cast(e) is not None or (
        e.prim.name == "broadcast_to" and len(e.invars) == 1
        and isinstance(e.invars[0], Var) and e.invars[0].dtype == e.outvars[0].dtype
        and e.outvars[0].dtype in _nb._KINDS + _I)


class _Writer:
    """The source of one loop, written equation by equation."""

    def __init__(self, graph, nk, nc, nx, prefix=""):
        self.graph = graph
        self.p = prefix          # of every name this writer makes (two graphs in one loop)
        self.names = {}          # Var name -> code name
        self.fresh = set()       # code names of arrays made in the step (mutable, C order)
        self.layout = {}         # code name -> "C", "F" or "A"
        self.pre = []            # lines before the loop
        self.body = []           # lines of one step
        self.count = 0
        self.consts = {}
        ins = graph.invars
        p = prefix
        params = []
        for i, (v, _) in enumerate(graph.consts):
            self._bind(v, f"{p}q{i}", "C")
            params.append(f"{p}q{i}")
        for i, v in enumerate(ins[:nk]):
            self._bind(v, f"{p}k{i}", "C")
            params.append(f"{p}k{i}")
        self.own = []            # the carries' first values, copied (shared by writers)
        for i, v in enumerate(ins[nk:nk + nc]):
            self.own.append(f"    c{i} = ci{i}.copy()")
            self._bind(v, f"c{i}", "C")
        self.const_params = params       # the graph's constants, then invariants
        for i, v in enumerate(ins[nk + nc:nk + nc + nx]):
            at = "t:t + 1" if not v.shape else "t"
            self.body.append(f"s{i} = x{i}[{at}]")
            self._bind(v, f"s{i}", "C")
        self.uses_after = {}
        for k, e in enumerate(graph.eqns):
            for v in e.invars:
                if isinstance(v, Var):
                    self.uses_after[v.name] = k
        self.final = {v.name for v in graph.outvars if isinstance(v, Var)}

    def _bind(self, v, name, layout, fresh=False):
        self.names[v.name] = name
        self.layout[name] = layout
        if fresh:
            self.fresh.add(name)

    def _new(self, v, layout="C", fresh=True):
        name = f"{self.p}t{self.count}"
        self.count += 1
        self._bind(v, name, layout, fresh)
        return name

    def _ref(self, v):
        if not isinstance(v, Var):
            raise Unsupported("a literal operand outside an elementwise run")
        return self.names[v.name]

    def _contiguous(self, v):
        name = self._ref(v)
        return name if self.layout[name] in ("C", "F") else f"np.ascontiguousarray({name})"

    def _literal(self, v):
        key = (type(v.value), repr(v.value))
        if key not in self.consts:
            name = f"{self.p}l{len(self.consts)}"
            self.consts[key] = name
            self.pre.append(f"    {name} = {v.value!r}")
        return self.consts[key]

    # ---- the equations

    def run_group(self, run, end):
        """One loop nest computing the elementwise equations ``run`` (one output shape)."""
        shape = _rshape(run[-1].outvars[0])
        nd = len(shape)
        outs = [o for e in run for o in e.outvars
                if o.name in self.final or self.uses_after.get(o.name, -1) >= end]
        code = {}
        reads = []
        lines = []

        def operand(v):
            if not isinstance(v, Var):
                return self._literal(v)
            if v.name in code:
                return code[v.name]
            src = self._ref(v)
            s = _rshape(v)
            if len(s) > nd or any(a not in (1, b) for a, b in zip(s[::-1], shape[::-1])):
                raise Unsupported("an operand larger than its run's output")
            at = ", ".join(f"i{nd - len(s) + j}" if s[j] == shape[nd - len(s) + j] else "0"
                           for j in range(len(s)))
            name = f"{self.p}u{len(reads)}"
            reads.append(f"{name} = {src}[{at}]")
            code[v.name] = name
            return name

        for j, e in enumerate(run):
            if e.prim.name == "broadcast_to":
                expr = operand(e.invars[0])
            else:
                expr = _element_code(e, operand)
            lines.append(f"{self.p}w{self.count}_{j} = {expr}")
            code[e.outvars[0].name] = f"{self.p}w{self.count}_{j}"
        targets = []
        for o in outs:
            src = code[o.name]
            name = self._new(o)
            self.body.append(f"{name} = np.empty({shape!r}, {_dt(o.dtype)})")
            targets.append((name, src))
        indent = ""
        for k in range(nd):
            self.body.append(f"{indent}for i{k} in range({shape[k]}):")
            indent += "    "
        at = ", ".join(f"i{k}" for k in range(nd))
        self.body.extend(indent + ln for ln in reads + lines)
        self.body.extend(f"{indent}{name}[{at}] = {src}" for name, src in targets)

    def eqn(self, e):
        name = e.prim.name
        if name == "cond":
            self._cond(e)
            return
        if name == "split" and set(e.params) == {"bounds", "axis"}:
            x, = e.invars
            src, axis = self._ref(x), e.params["axis"]
            if not isinstance(x, Var) or not x.shape:
                raise Unsupported("a split of this operand")
            for (a, b), o in zip(e.params["bounds"], e.outvars):
                t = self._new(o, "A", fresh=False)
                self.body.append(f"{t} = {src}[{':, ' * axis}{a}:{b}]")
            return
        if e.prim.multiple_results or len(e.outvars) != 1:
            raise Unsupported(name)
        o = e.outvars[0]
        if o.weak:
            raise Unsupported("a weak-typed value")
        if name == "matmul":
            a, b = e.invars
            if (e.params or not all(isinstance(v, Var) for v in (a, b))
                    or a.dtype not in _F or b.dtype not in _F or o.dtype not in _F
                    or o.dtype != np.promote_types(a.dtype, b.dtype)
                    or not 1 <= len(a.shape) <= 2 or not 1 <= len(b.shape) <= 2):
                raise Unsupported("matmul of these operands")
            # (mixed float32/float64: the float32 one cast first, as NumPy does)
            cast = [f"{self._ref(v)}.astype({_dt(o.dtype)})" if v.dtype != o.dtype else None
                    for v in (a, b)]
            t = self._new(o)
            if _nblas.available():
                # NumPy's BLAS, its route through matmul: views as they are
                ops = [c or self._ref(v) for c, v in zip(cast, (a, b))]
                self.body.append(f"{t} = _fg_matmul_{o.dtype.name}({ops[0]}, {ops[1]})"
                                 f".reshape({_rshape(o)!r})")
            else:
                ops = [c or self._contiguous(v) for c, v in zip(cast, (a, b))]
                prod = f"np.dot({ops[0]}, {ops[1]})"
                if o.shape:
                    self.body.append(f"{t} = {prod}")
                else:
                    self.body.append(f"{t} = np.empty(1, {_dt(o.dtype)})")
                    self.body.append(f"{t}[0] = {prod}")
        elif name == "transpose":
            x, = e.invars
            src = self._ref(x)
            axes = tuple(int(i) for i in e.params["axes"])
            if len(axes) <= 1 or axes == tuple(range(len(axes))):
                self.names[o.name] = src
            elif len(axes) == 2:
                lay = {"C": "F", "F": "C"}.get(self.layout[src], "A")
                t = self._new(o, lay, fresh=False)
                self.body.append(f"{t} = {src}.T")
            else:
                t = self._new(o, "A", fresh=False)
                self.body.append(f"{t} = np.transpose({src}, {axes!r})")
        elif name == "reshape":
            x, = e.invars
            src = self._ref(x)
            lay = self.layout[src]
            t = self._new(o, "C", fresh=src in self.fresh and lay == "C")
            expr = src if lay == "C" else f"np.ascontiguousarray({src})"
            self.body.append(f"{t} = {expr}.reshape({_rshape(o)!r})")
        elif name == "concatenate":
            axis = e.params.get("axis")
            if (not o.shape or not isinstance(axis, int) or len(e.params) != 1
                    or any(not isinstance(v, Var) or v.dtype != o.dtype for v in e.invars)):
                raise Unsupported("concatenate of these operands")
            parts = ", ".join(self._ref(v) for v in e.invars)
            t = self._new(o)
            self.body.append(f"{t} = np.concatenate(({parts},), axis={axis % len(o.shape)})")
        elif name == "sum":
            self._sum(e)
        elif name in ("getitem", "scatter"):
            self._index(e)
        else:
            raise Unsupported(name)

    def _cond(self, e):
        """``cond``/``switch``: each branch's code under its ``if``, the index clamped to
        the branches as the replay does; every branch leaves its results in the same
        names (arrays of one type: copies where a result is not made in the branch)."""
        branches = e.params["branches"]
        idx, ops = e.invars[0], e.invars[1:]
        if (set(e.params) != {"branches"} or not isinstance(idx, Var) or idx.shape
                or idx.dtype not in _I or any(g.consts for g in branches)
                or any(not isinstance(v, Var) for v in ops)):
            raise Unsupported("a cond of this form")
        k = self.count
        self.count += 1
        index = f"{self.p}ix{k}"
        self.body.append(f"{index} = {self._ref(idx)}[0]")
        names = [self._new(o) for o in e.outvars]
        last = len(branches) - 1
        for j, g in enumerate(branches):
            sub = _Writer(g, 0, 0, 0, prefix=f"{self.p}c{k}_{j}")
            for v, x in zip(g.invars, ops):
                src = self._ref(x)
                sub._bind(v, src, self.layout[src], src in self.fresh)
            sub.write()
            head = ("if True:" if last == 0 else f"if {index} <= 0:" if j == 0
                    else "else:" if j == last else f"elif {index} == {j}:")
            self.body.append(head)
            self.pre.extend(sub.pre)
            self.body.extend("    " + ln for ln in sub.body)
            for name, o in zip(names, g.outvars):
                src = sub.names[o.name]
                self.body.append(f"    {name} = {src if src in sub.fresh else src + '.copy()'}")

    def _index(self, e):
        """``x[idx]`` (a view) and ``x.at[idx].add/set(v)`` (a copy updated in place)
        for indices of integers and slices only."""
        index = e.params["index"]
        x = e.invars[0]
        o = e.outvars[0]
        n_in = 1 if e.prim.name == "getitem" else 2
        if (not isinstance(x, Var) or not x.shape or len(e.invars) != n_in
                or any(not (isinstance(i, int) or (isinstance(i, tuple) and i[:1] == ("slice",)))
                       for i in index)):
            raise Unsupported("an index of arrays, None or Ellipsis")
        at = ", ".join(str(i) if isinstance(i, int) else ":".join(
            "" if b is None else str(b) for b in i[1:]) for i in index)
        src = self._ref(x)
        region = np.empty(x.shape, np.bool_)[tuple(
            i if isinstance(i, int) else slice(*i[1:]) for i in index)].shape
        if e.prim.name == "getitem":
            if o.shape:
                self._new(o, "A", fresh=False)
                self.body.append(f"{self.names[o.name]} = {src}[{at}]")
            else:
                t = self._new(o)
                self.body.append(f"{t} = np.empty(1, {_dt(o.dtype)})")
                self.body.append(f"{t}[0] = {src}[{at}]")
            return
        v = e.invars[1]
        mode = e.params.get("mode")
        if (mode not in ("add", "set") or not isinstance(v, Var) or v.dtype != x.dtype
                or o.dtype != x.dtype or (v.shape and tuple(v.shape) != region)):
            raise Unsupported("a scatter of this form")
        t = self._new(o)
        self.body.append(f"{t} = {src}.copy()")
        val = self._ref(v) + ("[0]" if not v.shape else "")
        self.body.append(f"{t}[{at}] {'+=' if mode == 'add' else '='} {val}")

    def _sum(self, e):
        x, = e.invars
        o = e.outvars[0]
        if (not isinstance(x, Var) or x.dtype not in _F or o.dtype != x.dtype
                or set(e.params) != {"axis", "keepdims"}):
            raise Unsupported("sum of these operands")
        nd = len(x.shape)
        axis = e.params["axis"]
        axes = set(range(nd)) if axis is None else {
            a % nd for a in (axis if isinstance(axis, tuple) else (axis,))} if nd else set()
        keep = e.params["keepdims"]
        src = self._ref(x)
        t = self._new(o)
        self.body.append(f"{t} = np.zeros({_rshape(o)!r}, {_dt(o.dtype)})")
        shape = _rshape(x)
        indent = ""
        for k in range(len(shape)):
            self.body.append(f"{indent}for i{k} in range({shape[k]}):")
            indent += "    "
        if not nd:
            out_at = "0"
        else:
            kept = [f"i{k}" if k not in axes else "0" for k in range(nd)
                    if keep or k not in axes]
            out_at = ", ".join(kept) if kept else "0"
        at = ", ".join(f"i{k}" for k in range(len(shape)))
        self.body.append(f"{indent}{t}[{out_at}] += {src}[{at}]")

    def write(self):
        """The lines of every equation (in :attr:`body`); raises :class:`Unsupported`."""
        eqns = self.graph.eqns
        k = 0
        while k < len(eqns):
            e = eqns[k]
            if _elementwise(e):
                shape = e.outvars[0].shape
                j = k
                while j < len(eqns) and _elementwise(eqns[j]) and \
                        eqns[j].outvars[0].shape == shape:
                    j += 1
                self.run_group(eqns[k:j], j)
                k = j
            else:
                self.eqn(e)
                k += 1
        if any(not isinstance(v, Var) for v in self.graph.outvars):
            raise Unsupported("a literal output")

    def new_carries(self, outs):
        """The carries' next values: arrays of the same type at every step (mutable,
        C-ordered: a copy where the value is not one made in the step)."""
        news = []
        for v in outs:
            src = self.names[v.name]
            news.append(src if src in self.fresh else f"{src}.copy()")
        return f"{', '.join(f'c{i}' for i in range(len(outs)))}, = ({', '.join(news)},)"

    def source(self, nc, nx, ne):
        self.write()
        outs = self.graph.outvars
        if any(not isinstance(v, Var) for v in outs):
            raise Unsupported("a literal output")
        lines = ["    n = np.int64(n)"] + self.own + self.pre
        for j, v in enumerate(outs[nc:nc + ne]):
            lines.append(f"    e{j} = np.empty((n,) + {tuple(v.shape)!r}, {_dt(v.dtype)})")
        lines.append("    for step in range(n):")
        lines.append("        t = n - 1 - step if rev else step")
        lines.extend("        " + ln for ln in self.body)
        for j, v in enumerate(outs[nc:nc + ne]):
            src = self.names[v.name]
            lines.append(f"        e{j}[t] = {src}{'[0]' if not v.shape else ''}")
        if nc:
            lines.append("        " + self.new_carries(outs[:nc]))
        ret = [f"c{i}" for i in range(nc)] + [f"e{j}" for j in range(ne)]
        params = (self.const_params + [f"ci{i}" for i in range(nc)]
                  + [f"x{i}" for i in range(nx)] + ["n", "rev"])
        return _nb.module_source(
            "@numba.njit(cache=True, nogil=True, error_model=\"numpy\")\n"
            f"def kernel({', '.join(params)}):\n" + "\n".join(lines)
            + f"\n    return ({''.join(r + ', ' for r in ret)})\n")


def loop_source(graph, nk, nc, nx, ne):
    """The source of the native loop running the step ``graph`` (inputs: ``nk``
    invariants, ``nc`` carries, ``nx`` per-step values; outputs: the ``nc`` next carries,
    then ``ne`` per-step values); raises :class:`Unsupported`."""
    for v in graph.invars:
        if v.weak or v.dtype not in _nb._KINDS + _I:
            raise Unsupported(f"an input of dtype {v.dtype}")
    return _Writer(graph, nk, nc, nx).source(nc, nx, ne)


def while_source(cond, body, cn, bn):
    """The source of a native ``while`` loop: ``kernel(*cond constants, *cond
    invariants, *body constants, *body invariants, *values) -> values``, the graphs
    ``cond`` (``cn`` invariants, then the values; one bool output) and ``body`` (``bn``
    invariants, then the values; the next values); raises :class:`Unsupported`."""
    nv = len(body.invars) - bn
    if len(cond.invars) - cn != nv or len(cond.outvars) != 1 or len(body.outvars) != nv:
        raise Unsupported("a while loop of this form")
    for v in list(cond.invars) + list(body.invars):
        if v.weak or v.dtype not in _nb._KINDS + _I:
            raise Unsupported(f"an input of dtype {v.dtype}")
    if cond.outvars[0].dtype != np.dtype(bool) or cond.outvars[0].shape:
        raise Unsupported("a condition that is not one bool")
    wc = _Writer(cond, cn, nv, 0, prefix="a")
    wb = _Writer(body, bn, nv, 0, prefix="b")
    wc.write()
    wb.write()
    lines = wc.own + wc.pre + wb.pre + ["    while True:"]
    lines += ["        " + ln for ln in wc.body]
    lines += [f"        if not {wc.names[cond.outvars[0].name]}[0]:", "            break"]
    lines += ["        " + ln for ln in wb.body]
    if nv:
        lines.append("        " + wb.new_carries(body.outvars))
    params = wc.const_params + wb.const_params + [f"ci{i}" for i in range(nv)]
    ret = "".join(f"c{i}, " for i in range(nv))
    return _nb.module_source(
        "@numba.njit(cache=True, nogil=True, error_model=\"numpy\")\n"
        f"def kernel({', '.join(params)}):\n" + "\n".join(lines) + f"\n    return ({ret})\n")


def _as_arg(x, v):
    x = np.ascontiguousarray(x, v.dtype)
    return x if v.shape else x.reshape(1)


class NativeWhile:
    """The compiled ``while`` loop of a condition and a body graph:
    ``loop(cond_invariants, body_invariants, values) -> values``."""

    def __init__(self, cond, body, cn, bn, source=None):
        self.source = source or while_source(cond, body, cn, bn)
        self.cond_vars, self.body_vars = cond.invars[:cn], body.invars[:bn]
        self.vars = body.invars[bn:]
        self.consts = [[np.ascontiguousarray(x, v.dtype).reshape(_rshape(v))
                        for v, x in g.consts] for g in (cond, body)]
        shapes, dtypes = [], []
        for cs, vs in zip(self.consts, (self.cond_vars, self.body_vars)):
            shapes += [x.shape for x in cs] + [_rshape(v) for v in vs]
            dtypes += [x.dtype for x in cs] + [v.dtype for v in vs]
        shapes += [_rshape(v) for v in self.vars]
        dtypes += [v.dtype for v in self.vars]
        self.kernel = _nb.load_kernel(self.source, shapes, dtypes)

    def __call__(self, cc, bc, vals):
        args = (self.consts[0] + [_as_arg(x, v) for x, v in zip(cc, self.cond_vars)]
                + self.consts[1] + [_as_arg(x, v) for x, v in zip(bc, self.body_vars)]
                + [_as_arg(x, v) for x, v in zip(vals, self.vars)])
        out = self.kernel(*args)
        stats["runs"] += 1
        return [o if v.shape else o.reshape(()) for o, v in zip(out, self.vars)]


class NativeLoop:
    """The compiled loop of one step graph: ``loop(invariants, carries, seqs, n,
    reverse) -> (carries, stacked per-step outputs)``, NumPy values in and out."""

    def __init__(self, graph, nk, nc, nx, ne, source=None):
        self.graph, self.nc = graph, nc
        self.source = source or loop_source(graph, nk, nc, nx, ne)
        ins = graph.invars
        self.consts = [np.ascontiguousarray(x, v.dtype).reshape(_rshape(v))
                       for v, x in graph.consts]
        self.in_vars = ins[:nk + nc]
        self.x_vars = ins[nk + nc:nk + nc + nx]
        shapes = ([x.shape for x in self.consts] + [_rshape(v) for v in self.in_vars]
                  + [(0,) + tuple(v.shape) for v in self.x_vars])
        dtypes = ([x.dtype for x in self.consts] + [v.dtype for v in self.in_vars]
                  + [v.dtype for v in self.x_vars])
        self.kernel = _nb.load_kernel(self.source, shapes, dtypes,
                                      scalars=("int64", "boolean"))

    def __call__(self, kl, lc, seqs, n, reverse):
        args = list(self.consts)
        for x, v in zip(list(kl) + list(lc), self.in_vars):
            x = np.ascontiguousarray(x, v.dtype)
            args.append(x if v.shape else x.reshape(1))
        for x, v in zip(seqs, self.x_vars):
            args.append(np.ascontiguousarray(x, v.dtype))
        out = self.kernel(*args, n, bool(reverse))
        stats["runs"] += 1
        carries = [c if v.shape else c.reshape(())
                   for c, v in zip(out[:self.nc], self.graph.outvars[:self.nc])]
        return carries, list(out[self.nc:])


class _Pending:
    """A loop compiling in the background: ``fn`` is the compiled loop once ready, None
    until then (and for good when it failed)."""

    def __init__(self):
        self.fn = None


def _start(source, make):
    """The :class:`_Pending` of ``make(src)`` compiled on the background thread, ``src``
    being ``source()``; None when ``source`` raises :class:`Unsupported`."""
    try:
        src = source()
    except Unsupported:
        return None
    pending = _Pending()

    def job():
        pending.fn = make(src)
        return True
    _nb.submit(job)
    return pending


def start(graph, nk, nc, nx, ne):
    """Begin compiling the native loop of a scan step ``graph`` in the background; a
    :class:`_Pending`, or None when the step holds an equation not written here."""
    return _start(lambda: loop_source(graph, nk, nc, nx, ne),
                  lambda src: NativeLoop(graph, nk, nc, nx, ne, src))


def start_while(cond, body, cn, bn):
    """Begin compiling a native ``while`` loop in the background; a :class:`_Pending`,
    or None when a graph holds an equation not written here."""
    return _start(lambda: while_source(cond, body, cn, bn),
                  lambda src: NativeWhile(cond, body, cn, bn, src))


def _rewrite(e):
    """A scan equation of a graph compiled on the Numba backend, as one that runs the
    scan with native loops."""
    if e.prim is not _cf.scan_p:
        return None
    impl = functools.partial(_cf.scan_native, **e.params)
    return Eqn(Kernel(f"scan[numba, length {e.params['length']}]", impl),
               list(e.invars), {}, list(e.outvars))


def _rewrite_while(e):
    if e.prim is not _cf.while_p:
        return None
    impl = functools.partial(_cf.while_native, **e.params)
    return Eqn(Kernel("while[numba]", impl), list(e.invars), {}, list(e.outvars))


_nb.register_rewrite(_rewrite)
_nb.register_rewrite(_rewrite_while)
for _dtype in _F:
    _nb.register_helper(f"_fg_matmul_{_dtype.name}",
                        functools.partial(_nblas.matmul_source, _dtype))
_cf.register_native_loops(start, start_while)
