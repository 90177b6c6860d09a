"""Structured control flow: ``scan``, ``while_loop``, ``cond`` (and ``fori_loop``,
``switch``, ``map`` built on them), with JAX's signatures and semantics.

Outside every transformation they run as plain Python loops and branches over the user's
functions. Under a transformation the body is traced once to a sub-graph
(``staging.trace_subgraph``) and the whole loop is one equation, ``scan``, ``while`` or
``cond``, holding it: under ``jit`` the graph does not grow with the number of steps.
Each primitive has all its rules here. The rules build new sub-graphs by running the
interpreters (jvp, vjp, vmap) over the body with ``staging.eval_graph`` and tracing the
result; so a scan's reverse pass is itself a (reversed) scan, and derivatives of any
order work.

``scan`` has, besides the final carry and the stacked ``ys``, a third group of outputs:
the carry before each step (``history``), which its reverse rule reads. ``lax.scan``
drops it; dead-code elimination removes nothing inside an equation, so under ``jit`` a
scan costs one copy of its carry per step for it.

Running a scan (``_scan_impl``): a body's first run is a plain loop over its compiled
step. From its second run (a jitted function's body persists; an eager ``grad`` traces a
new one each call and never pays for this) the body is split by dependence
(``_LoopSplit``): work on the xs alone runs batched before the loop, work only the ys
need runs batched after it, a carry that only accumulates ``c + term`` is summed once
after the loop (a product of per-step matrices as one contraction: a reverse pass's
weight gradient is one GEMM), a carry the step only reads transposed is carried
transposed, and the remaining recurrence runs as one generated loop.
"""
from __future__ import annotations

import math
import re

import numpy as np

from .. import rows as _rows
from ..ad import JVPTrace, JVPTracer, VJPTrace, VJPTracer, backward
from ..backend import array_module, dtype_name
from ..batching import BatchTracer, bdim_size, move_to_front, vmap_flat
from ..core import Primitive, Tracer, _np, bind, def_rules, new_trace, trace_depth
from ..errors import FuncgradTypeError, FuncgradValueError
from ..ir import signature_problems, subgraph_checks
from ..staging import (Graph, NotStageable, Var, dead_output_rules, eval_graph,
                       example_value, graph_runner, prune_graph, trace_subgraph)
from ..tree_util import keystr, tree_flatten, tree_flatten_with_path, tree_unflatten
from .contractions import matmul_p
from .elementwise import add_p, multiply_p
from .shape import transpose_p


def _is_float(dtype):
    return np.dtype(dtype).kind in "fc"


def _type_str(shape, dtype):
    return f"{np.dtype(dtype).name}[{','.join(str(d) for d in shape)}]"


def _as_array(x):
    """Python scalars in a carry become arrays, as in JAX (their dtype is NumPy's)."""
    if isinstance(x, (bool, int, float, complex, np.generic)):
        return np.asarray(x)
    return x


def _leaf_names(what, tree):
    return [f"{what}{keystr(p)}" for p, _ in tree_flatten_with_path(tree)[0]]


def _check_types(fname, part, names, want, got):
    """Raise naming the first leaf whose (shape, dtype) differs between ``want``/``got``."""
    for n, (ws, wd), (gs, gd) in zip(names, want, got):
        if tuple(ws) != tuple(gs) or np.dtype(wd) != np.dtype(gd):
            raise FuncgradTypeError(
                f"{fname}: {part} must keep the type of each leaf, but {n} is "
                f"{_type_str(ws, wd)} on input and {_type_str(gs, gd)} on output. Cast it "
                "in the body (e.g. .astype(...)) or start the carry with the type the "
                "body returns.")


def _check_tree(fname, part, want, got):
    if want != got:
        raise FuncgradTypeError(
            f"{fname}: {part} must keep its structure, but the input is {want} and the "
            f"body returned {got}")


def _types_of(vals):
    return [(tuple(np.shape(v)), np.dtype(getattr(v, "dtype", None) or np.asarray(v).dtype))
            for v in vals]


def _var_types(vs):
    return [(v.shape, v.dtype) for v in vs]


def _slice0(x):
    if x.shape[0]:
        return x[0]
    return array_module(x).zeros(x.shape[1:], x.dtype)


def _examples(vals):
    return [example_value(v) for v in vals]


def _zeros(x):
    return _np().zeros_like(x)


def _fit_dtype(v, shape, dtype):
    """A body's Python-scalar output as an array of the carry's dtype."""
    if isinstance(v, (bool, int, float, complex)) and not isinstance(v, Tracer):
        return np.asarray(v, dtype=dtype) if np.shape(v) == tuple(shape) else v
    return v


# --------------------------------------------------------------------------------------
# Sub-graph transformations shared by the rules


def _jvp_fun(graph, has_t):
    """``fun(*primals, *tangents of the inputs marked in has_t)`` returning the outputs
    followed by a tangent (zeros where none) for each floating output."""
    n = len(graph.invars)
    float_out = [_is_float(v.dtype) for v in graph.outvars]

    def fun(*a):
        primals, tans = a[:n], iter(a[n:])
        with new_trace(JVPTrace) as trace:
            ins = [JVPTracer(trace, p, next(tans)) if h else p for p, h in zip(primals, has_t)]
            outs = eval_graph(graph, *ins)
        ps, ts = [], []
        for o, f in zip(outs, float_out):
            if isinstance(o, JVPTracer) and o._trace is trace:
                ps.append(o.primal)
                t = o.tangent
            else:
                ps.append(o)
                t = None
            if f:
                ts.append(_zeros(ps[-1]) if t is None else t)
        return ps + ts
    return fun


def _vjp_fun(graph, diff, with_outputs=False):
    """``fun(*primals, *cotangents of the floating outputs)`` returning the cotangent
    (zeros where none) of each input marked in ``diff`` (then the outputs, with
    ``with_outputs``)."""
    n = len(graph.invars)
    float_out = [_is_float(v.dtype) for v in graph.outvars]

    def fun(*a):
        primals, cts = a[:n], iter(a[n:])
        with new_trace(VJPTrace) as trace:
            ins = [trace.new_input(p) if d else p for p, d in zip(primals, diff)]
            outs = eval_graph(graph, *ins)
            seeds = []
            for o, f in zip(outs, float_out):
                if f:
                    c = next(cts)
                    if isinstance(o, VJPTracer) and o._trace is trace:
                        seeds.append((o, c))
        tape_cts = backward(trace.tape, seeds) if seeds else None
        res = []
        for p, d, x in zip(primals, diff, ins):
            if d:
                c = tape_cts[x.index] if tape_cts is not None else None
                res.append(_zeros(p) if c is None else c)
        if with_outputs:
            res += [o.primal if isinstance(o, VJPTracer) and o._trace is trace else o
                    for o in outs]
        return res
    return fun


def _partial_eval(graph, n_known, n_last):
    """Split ``graph`` (inputs: ``n_known`` known ones, then the others) into
    ``fwd(known) -> (its last n_last outputs, residuals)``, the equations that need only
    the known inputs, and ``bwd(residuals, others) -> its other outputs``, the rest.
    Returns ``(fwd, bwd)``."""
    const_names = {v.name for v, _ in graph.consts}
    known = {v.name for v in graph.invars[:n_known]} | const_names
    f_eqns, b_eqns = [], []
    for e in graph.eqns:
        if all(not isinstance(v, Var) or v.name in known for v in e.invars):
            f_eqns.append(e)
            known.update(o.name for o in e.outvars)
        else:
            b_eqns.append(e)
    n_out = len(graph.outvars) - n_last
    res = {}
    for v in [v for e in b_eqns for v in e.invars] + list(graph.outvars[:n_out]):
        if isinstance(v, Var) and v.name in known and v.name not in const_names:
            res.setdefault(v.name, v)
    res = list(res.values())
    fwd = prune_graph(Graph(graph.invars[:n_known], graph.consts, f_eqns,
                            list(graph.outvars[n_out:]) + res))
    bwd = prune_graph(Graph(res + list(graph.invars[n_known:]), graph.consts, b_eqns,
                            list(graph.outvars[:n_out])))
    return fwd, bwd


def _batch_fun(graph, in_dims, size):
    """``fun(*args)`` with the arguments marked in ``in_dims`` (0 or None) batched along
    their first axis, returning every output batched along its first axis."""
    def fun(*args):
        outs, trace = vmap_flat(lambda *a: eval_graph(graph, *a), list(args), in_dims, size)
        res = []
        fnp = _np()
        for o in outs:
            if isinstance(o, BatchTracer) and o._trace is trace and o.bdim is not None:
                res.append(move_to_front(o.val, o.bdim))
            else:
                if isinstance(o, BatchTracer) and o._trace is trace:
                    o = o.val
                res.append(fnp.broadcast_to(o, (size,) + tuple(np.shape(o))))
        return res
    return fun


def _broadcast_batch(v, d, size):
    if d is None:
        return _np().broadcast_to(v, (size,) + tuple(np.shape(v)))
    return move_to_front(v, d)


# --------------------------------------------------------------------------------------
# scan


_HOST = (np.ndarray, float, int, bool, np.generic)


def _host(args, *graphs):
    """Only NumPy values (arguments and the graphs' constants): host-only code applies."""
    return all(isinstance(a, _HOST) for a in args) and all(
        isinstance(x, _HOST) for g in graphs for _, x in g.consts)


def _scan_plan(body, num_consts, host=False):
    """``(prepare, step, n)``: the body split into the equations that depend on the
    constants only, run once per scan by ``prepare(*consts) -> n values``, and the rest,
    ``step(*those values, *carry, *x)``, run at every step (cached on the body)."""
    plan = getattr(body, "_scan_plan", None)
    if plan is not None and plan[0] == (num_consts, host):
        return plan[1]
    invariant = {v.name for v in body.invars[:num_consts]} | {v.name for v, _ in body.consts}
    pre, rest = [], []
    for e in body.eqns:
        if not e.prim.effectful and all(not isinstance(v, Var) or v.name in invariant
                                        for v in e.invars):
            pre.append(e)
            invariant.update(o.name for o in e.outvars)
        else:
            rest.append(e)
    if not pre:
        result = (None, graph_runner(body, host), num_consts)
    else:
        consts = {v.name for v, _ in body.consts}
        needed = {}
        for e in rest:
            for v in e.invars:
                if isinstance(v, Var) and v.name in invariant and v.name not in consts:
                    needed[v.name] = v
        for v in body.outvars:
            if isinstance(v, Var) and v.name in invariant and v.name not in consts:
                needed[v.name] = v
        ins = list(needed.values())
        prepare = Graph(body.invars[:num_consts], body.consts, pre, ins)
        step = Graph(ins + body.invars[num_consts:], body.consts, rest, body.outvars)
        result = (graph_runner(prepare, host), graph_runner(step, host), len(ins))
    body._scan_plan = ((num_consts, host), result)
    return result


def _stacked(vals, var, xp):
    """Per-step values as one array with a leading step axis, of ``var``'s dtype."""
    if not isinstance(vals, list) and vals.dtype == var.dtype:
        return vals                                 # (stacked by the loop itself)
    if xp is np:
        return np.array(vals, dtype=var.dtype)
    return xp.stack([xp.asarray(v) for v in vals]).astype(var.dtype, copy=False)


class _LoopSplit:
    """A scan body split by what each equation depends on, so that only the recurrence
    runs step by step (JAX leaves this to XLA; cuDNN's RNNs do it by hand):

    - ``prepare``: the equations on the constants only, once per scan;
    - ``before``: those on the xs (and constants) but not the carry, batched over every
      step at once before the loop (an RNN's input projection: one product, not L);
    - ``step``: the equations the next carry needs, step by step;
    - ``after``: those only the ys need, batched over every step after the loop (a
      reverse pass's products of per-step values);
    - accumulators: a carry updated as ``c + term`` and read nowhere else (the reverse
      pass's gradient of a weight) is ``c0 + sum over steps of term``, summed after the
      loop, a product of two per-step matrices as one contraction (one GEMM, not L).

    ``before``/``after`` need every equation there to have a batching rule and no
    effect; others stay in ``step``. Built from a body's first run (its values are the
    tracing examples), for the body's later runs."""

    def __init__(self, body, nk, nc, hist_keep, host, args, length):
        eqns = list(body.eqns)
        outs = list(body.outvars)
        if any(not isinstance(v, Var) for v in outs):
            raise NotStageable("literal outputs")
        consts = {v.name for v, _ in body.consts}
        cins = body.invars[nk:nk + nc]
        ny = len(outs) - nc
        uses = {}
        for e in eqns:
            for v in e.invars:
                if isinstance(v, Var):
                    uses[v.name] = uses.get(v.name, 0) + 1
        for v in outs:
            uses[v.name] = uses.get(v.name, 0) + 1
        made_by = {o.name: e for e in eqns for o in e.outvars}
        acc = {}                                    # carry index -> term Var
        for k in range(nc):
            o, c = outs[k], cins[k]
            e = made_by.get(o.name)
            if (hist_keep[k] or e is None or e.prim is not add_p or uses.get(c.name) != 1
                    or uses[o.name] != 1):
                continue
            a, b = e.invars
            term = b if a is c else a if b is c else None
            if (isinstance(term, Var) and term.name in made_by and term.shape == c.shape
                    and term.dtype == c.dtype and o.dtype == c.dtype):
                acc[k] = (term, e)
        kind = {v.name: "k" for v in body.invars[:nk]}
        kind.update((n, "k") for n in consts)
        kind.update((v.name, "c") for v in cins)
        kind.update((v.name, "x") for v in body.invars[nk + nc:])

        def batchable(e):
            return not e.prim.effectful and e.prim.batch is not None

        def classify():
            for e in eqns:
                ks = {kind[v.name] for v in e.invars if isinstance(v, Var)}
                if not e.prim.effectful and ks <= {"k"}:
                    k = "k"
                elif batchable(e) and ks <= {"k", "x"}:
                    k = "x"
                else:
                    k = "r"
                for o in e.outvars:
                    kind[o.name] = k

        # An accumulator's per-step terms are stacked for the sum after the loop: a term
        # that is a product of two per-step factors stacks the factors instead (summed
        # as one contraction); any other term stays summed in the loop when its stack
        # would be big (a weight-sized term over many steps: constant memory instead).
        classify()
        self.acc = []                               # (carry index, n outputs, contraction)
        acc_outs = []
        for k, (term, add_e) in list(acc.items()):
            spec = _sum_of_products(made_by[term.name], kind, length)
            if (spec is None and length * math.prod(term.shape) * np.dtype(term.dtype).itemsize
                    > _STACK_MAX):
                del acc[k]
                continue
            eqns.remove(add_e)
            if spec is None:
                acc_outs.append(term)
                self.acc.append((k, 1, None))
            else:
                acc_outs.extend(made_by[term.name].invars)
                self.acc.append((k, 2, spec))
        acc = {k: t for k, (t, _) in acc.items()}
        loop_carry = [k for k in range(nc) if k not in acc]
        need = {outs[k].name for k in loop_carry}
        in_loop = set()
        for e in reversed(eqns):
            if kind[e.outvars[0].name] != "r":
                continue
            if not batchable(e) or any(o.name in need for o in e.outvars):
                in_loop.add(id(e))
                need.update(v.name for v in e.invars if isinstance(v, Var))
        k_eqns = [e for e in eqns if kind[e.outvars[0].name] == "k"]
        x_eqns = [e for e in eqns if kind[e.outvars[0].name] == "x"]
        l_eqns = [e for e in eqns if id(e) in in_loop]
        a_eqns = [e for e in eqns if kind[e.outvars[0].name] == "r" and id(e) not in in_loop]
        for e in a_eqns:
            for o in e.outvars:
                kind[o.name] = "a"
        # what ``after`` returns: the ys, then per accumulator its term or, for a
        # product of two per-step factors, both factors
        after_outs = outs[nc:] + acc_outs

        def free(eqs, extra):
            """The variables ``eqs`` and ``extra`` read that they do not make."""
            made = {o.name for e in eqs for o in e.outvars}
            seen = {}
            for v in [v for e in eqs for v in e.invars] + list(extra):
                if isinstance(v, Var) and v.name not in made and v.name not in consts:
                    seen.setdefault(v.name, v)
            return list(seen.values())

        a_in = free(a_eqns, after_outs)
        hist_vars = [cins[k] for k in range(nc) if hist_keep[k]]
        emitted = {}
        for v in a_in + hist_vars:
            if kind[v.name] in ("c", "r"):
                emitted.setdefault(v.name, v)
        emitted = list(emitted.values())
        l_outs = [outs[k] for k in loop_carry] + emitted
        l_eqns, l_cins, l_outs, self.flips = _carry_layouts(
            l_eqns, [cins[k] for k in loop_carry], l_outs, uses)
        l_in = free(l_eqns, l_outs)
        l_k = [v for v in l_in if kind[v.name] == "k"]
        l_x = [v for v in l_in if kind[v.name] == "x"]
        a_k = [v for v in a_in if kind[v.name] == "k"]
        a_x = [v for v in a_in if kind[v.name] == "x"]
        x_made = {o.name for e in x_eqns for o in e.outvars}
        x_outs = list({v.name: v for v in l_x + a_x if v.name in x_made}.values())
        x_in = free(x_eqns, x_outs)
        x_k = [v for v in x_in if kind[v.name] == "k"]
        k_all = list({v.name: v for v in l_k + a_k + x_k}.values())
        self.prepare = graph_runner(prune_graph(Graph(body.invars[:nk], body.consts, k_eqns,
                                                      k_all)), host)
        kpos = {v.name: i for i, v in enumerate(k_all)}
        xs_pos = {v.name: i for i, v in enumerate(body.invars[nk + nc:])}
        xo_pos = {v.name: i for i, v in enumerate(x_outs)}
        self.host, self.length, self.nc = host, length, nc
        self.loop_carry = loop_carry
        self.step_graph = Graph(l_k + l_cins + l_x, body.consts, l_eqns, l_outs)
        self.step = graph_runner(self.step_graph, host)
        self.native = None                          # the native loop (numba_loops.py)
        self.l_k = [kpos[v.name] for v in l_k]
        # per-step inputs of ``step``: ("s", i) the i-th xs, ("b", i) before's i-th output
        self.l_x = [("s", xs_pos[v.name]) if v.name in xs_pos else ("b", xo_pos[v.name])
                    for v in l_x]
        self.emitted = emitted
        self.loop_needed = bool(l_eqns) or bool(emitted) or bool(loop_carry)
        self.x_k = [kpos[v.name] for v in x_k]
        self.before = None
        if x_outs:
            xg = Graph(x_k + list(body.invars[nk + nc:]), body.consts, x_eqns, x_outs)
            kv = self.prepare(*args[:nk])
            ex = [kv[i] for i in self.x_k] + list(args[nk + nc:])
            g, lifted = trace_subgraph(
                _batch_fun(prune_graph(xg), [None] * len(x_k) + [0] * (len(xg.invars) - len(x_k)),
                           length), ex)
            assert not lifted
            self.before = graph_runner(g, host)
        # inputs of ``after``: ("k", i) invariant, ("s"/"b", i) as above, ("e", i) emitted
        em_pos = {v.name: i for i, v in enumerate(emitted)}
        self.a_in = []
        for v in a_in:
            if kind[v.name] == "k":
                self.a_in.append(("k", kpos[v.name]))
            elif v.name in xs_pos:
                self.a_in.append(("s", xs_pos[v.name]))
            elif v.name in xo_pos:
                self.a_in.append(("b", xo_pos[v.name]))
            else:
                self.a_in.append(("e", em_pos[v.name]))
        self.a_dims = [None if s == "k" else 0 for s, _ in self.a_in]
        self.after_graph = prune_graph(Graph(a_in, body.consts, a_eqns, after_outs))
        self.after = None                           # traced at the first run
        self.loop = None                            # made at the first run
        self.hist = [em_pos[v.name] for v in hist_vars]
        self.ny = ny
        self.out_vars = outs
        self.emit_vars = emitted

    def _native_loop(self, nk, nx):
        """The compiled native loop when ready (the Numba backend), else None."""
        if self.native is None:
            self.native = (_native_loops(self.step_graph, nk, len(self.loop_carry), nx,
                                         len(self.emit_vars))
                           if _native_loops is not None and self.host else None) or False
        return self.native.fn if self.native else None

    def _python_loop(self, kl, lc, seqs, reverse, xp):
        """The loop on the replay: ``(carries, per-step outputs stacked in step order)``.
        Each step's outputs are written into arrays allocated before the loop, while they
        are still in cache, rather than kept in lists and stacked after it."""
        length = self.length
        rows = [list(a) for a in seqs]              # row views, made at C speed
        if reverse:
            rows = [r[::-1] for r in rows]
        ems = [xp.empty((length,) + tuple(v.shape), v.dtype) for v in self.emit_vars]
        order = range(length - 1, -1, -1) if reverse else range(length)
        if self.loop is None:
            self.loop = _inline_loop(self.step, len(kl), len(lc), len(rows),
                                     [len(v.shape) for v in self.emit_vars]) or False
        if self.loop:
            lc = self.loop(*kl, *lc, rows, order, *ems)
        else:
            step, ncl = self.step, len(lc)
            for t, xt in zip(order, zip(*rows) if rows else ((),) * length):
                out = step(*kl, *lc, *xt)
                lc = out[:ncl]
                for e, o in zip(ems, out[ncl:]):
                    e[t] = o
        return lc, ems

    def run(self, args, nk, nc, reverse, xp, native=False):
        consts, carry, xs = args[:nk], list(args[nk:nk + nc]), args[nk + nc:]
        kv = self.prepare(*consts)
        bx = self.before(*[kv[i] for i in self.x_k], *xs) if self.before is not None else ()
        length = self.length
        ems = []
        lc = [carry[k] for k in self.loop_carry]
        for j, axes, _ in self.flips:
            lc[j] = xp.transpose(lc[j], axes)
        if self.loop_needed:
            kl = [kv[i] for i in self.l_k]
            seqs = [xs[i] if s == "s" else bx[i] for s, i in self.l_x]
            fn = self._native_loop(len(kl), len(seqs)) if native else None
            if fn is not None:
                try:
                    lc, ems = fn(kl, lc, seqs, length, reverse)   # (in step order)
                except TypeError:                   # arrays it was not compiled for
                    self.native = False
                    fn = None
            if fn is None:
                lc, ems = self._python_loop(kl, lc, seqs, reverse, xp)
        for j, _, back in self.flips:
            lc[j] = xp.ascontiguousarray(xp.transpose(lc[j], back))
        em = [_stacked(e, v, xp) for e, v in zip(ems, self.emit_vars)]
        a_args = [kv[i] if s == "k" else xs[i] if s == "s" else bx[i] if s == "b" else em[i]
                  for s, i in self.a_in]
        if self.after is None:
            g, lifted = trace_subgraph(_batch_fun(self.after_graph, self.a_dims, length),
                                       a_args)
            assert not lifted
            self.after = graph_runner(g, self.host)
        aouts = self.after(*a_args)
        final = [None] * nc
        for k, c in zip(self.loop_carry, lc):
            final[k] = c
        pos = self.ny
        for k, n, spec in self.acc:
            if spec is not None:
                a, b = aouts[pos], aouts[pos + 1]
                if spec == "matmul":
                    total = xp.tensordot(a, b, axes=([0, 2], [0, 1]))
                else:
                    drop_a, drop_b, subscripts = spec
                    total = xp.einsum(subscripts, a.reshape(drop_a), b.reshape(drop_b),
                                      optimize=True)
            else:
                total = aouts[pos].sum(axis=0)
            pos += n
            final[k] = (carry[k] + total).astype(self.out_vars[k].dtype, copy=False)
        ys = []
        for o, v in zip(aouts[:self.ny], self.out_vars[nc:]):
            if (getattr(o, "dtype", None) != v.dtype or not getattr(o, "ndim", 0)
                    or not getattr(o.flags, "writeable", True) or 0 in o.strides):
                o = xp.array(o, dtype=v.dtype)      # (a broadcast invariant y: its own copy)
            ys.append(o)
        return final, ys, [em[i] for i in self.hist]


_STACK_MAX = 256 << 20      # bytes: a bigger stack of an accumulator's terms stays in the loop


def _sum_of_products(e, kind, length):
    """How to sum over the steps a term ``e`` that multiplies two per-step factors,
    from the factors stacked over the steps, without stacking the term: ``"matmul"``
    (a product of two matrices: one tensordot over the steps and the inner axis), or
    ``(shape_a, shape_b, subscripts)``, an ``einsum`` over the stacked factors reshaped
    to drop their broadcast axes (an outer product ``u[:, None] * v``: one GEMM, and
    memory for the factors, not for ``length`` outer products); None for other terms."""
    if len(e.invars) != 2 or e.params or not all(
            isinstance(v, Var) and kind.get(v.name) not in (None, "k")
            and v.dtype == e.outvars[0].dtype for v in e.invars):
        return None
    a, b = e.invars
    if e.prim is matmul_p:
        return "matmul" if len(a.shape) == len(b.shape) == 2 else None
    out = e.outvars[0].shape
    if e.prim is not multiply_p or math.prod(out) <= max(math.prod(a.shape), math.prod(b.shape)):
        return None                                 # not an outer product: no saving
    if len(out) > 25:
        return None
    letters = "abcdefghijklmnopqrsuvwxyz"[:len(out)]      # "t": the step axis
    subs, shapes = [], []
    for v in (a, b):
        lead = len(out) - len(v.shape)
        keep = [i for i, d in enumerate(v.shape) if d == out[lead + i]]
        subs.append("t" + "".join(letters[lead + i] for i in keep))
        shapes.append((length,) + tuple(v.shape[i] for i in keep))
    return shapes[0], shapes[1], f"{subs[0]},{subs[1]}->{letters}"


def _inline_loop(step, nk, nc, nx, emit_ndims):
    """The whole loop as one generated function, ``loop(*invariants, *carry, rows, order,
    *outputs) -> carry``, the step's generated code written inside its ``for``, step ``t``
    of ``order`` writing its per-step outputs into row ``t`` of ``outputs``:
    no call, argument list or output list per step. An output of at least one dimension,
    not a carry, that the step makes with a call taking ``out=`` (a NumPy ufunc, or an
    implementation marked ``writes_out``) is written there by that call directly, not
    copied after it (an LSTM step's gates and its cell state's tanh: 5 copies of 8 a step
    forward, and the gates' cotangent backward). None when ``step`` is not code made by
    jit's code generator in the form this expects."""
    ne = len(emit_ndims)
    src = getattr(step, "source", None)
    ns = getattr(step, "__globals__", None)
    if not isinstance(src, str) or ns is None:
        return None
    lines = src.rstrip("\n").split("\n")
    head = re.fullmatch(r"def (\w+)\((.*)\):", lines[0])
    ret = re.fullmatch(r"    return \[(.*)\]", lines[-1])
    if head is None or ret is None or any(not ln.startswith("    ") for ln in lines[1:-1]):
        return None
    params = [p.strip() for p in head.group(2).split(",") if p.strip()]
    outs = [r.strip() for r in ret.group(1).split(", ")] if ret.group(1).strip() else []
    if len(params) != nk + nc + nx or len(outs) != nc + ne:
        return None
    kp, cp, xp_ = params[:nk], params[nk:nk + nc], params[nk + nc:]
    outs_e = [f"e{j}" for j in range(ne)]
    body = lines[1:-1]
    # outputs written in place by the call that makes them (the first time each is named)
    # (not a carry: the final carry would be a view of the last output row)
    made_at = {}
    for i, ln in enumerate(body):
        m = re.fullmatch(r"    (\w+) = (f\d+)\((.*)\)", ln)
        if (m and "out=" not in m.group(3) and not ln.endswith(".item()")
                and m.group(1) not in outs[:nc]):
            made_at[m.group(1)] = (i, m.group(2))
    # nor an output a carry may be a view of (a carry ``y[:, ::-1]``, ``y.T``, ...): the
    # final carry would be a view of the last row of that output. Walking back from the
    # carries, every argument of a call that may return a view of its arguments (any but
    # a ufunc, a ``writes_out`` or ``fresh_result`` implementation) may be viewed.
    def _fresh(fn):
        return (isinstance(fn, np.ufunc) or getattr(fn, "writes_out", False)
                or getattr(fn, "fresh_result", False))
    viewed = set(outs[:nc])
    for ln in reversed(body):
        m = re.fullmatch(r"    ([\w, ]+?),? = (f\d+)\((.*)\)(\.item\(\))?", ln)
        if m is None:
            continue
        targets = {t.strip() for t in m.group(1).split(",") if t.strip()}
        if targets & viewed and not _fresh(ns.get(m.group(2))):
            viewed.update(re.findall(r"\b\w+\b", m.group(3)))
    direct = set()
    for j in range(ne):
        name = outs[nc + j]
        hit = made_at.pop(name, None)
        if hit is None or not emit_ndims[j] or name in viewed:
            continue
        fn = ns.get(hit[1])
        if (isinstance(fn, np.ufunc) and fn.nout == 1) or getattr(fn, "writes_out", False):
            body[hit[0]] = body[hit[0]][:-1] + f", out=e{j}[_t])"
            direct.add(j)
    code = [f"def scan_loop({', '.join(kp + cp + ['rows', 'order'] + outs_e)}):"]
    code.append(f"    for _t, ({', '.join(xp_)},) in zip(order, zip(*rows)):" if nx else
                "    for _t in order:")
    code += ["    " + ln for ln in body]
    # the outputs are read before the carry is replaced (an output may be a carry input)
    code += [f"        e{j}[_t] = {outs[nc + j]}" for j in range(ne) if j not in direct]
    if nc:
        code.append(f"        {', '.join(cp)}, = ({', '.join(outs[:nc])},)")
    code.append(f"    return [{', '.join(cp)}]")
    env = dict(ns)
    try:
        exec(compile("\n".join(code) + "\n", "<funcgrad.scan loop>", "exec"), env)
    except SyntaxError:                             # pragma: no cover - a new code form
        return None
    return env["scan_loop"]


def _carry_layouts(eqns, cins, couts, uses):
    """The loop's carries kept transposed where the step only reads a carry transposed
    (``c.T``) and makes the next one as a transpose (``y.T``): the loop carries ``c.T``,
    and those two transposes per step leave it (W6's RNN reads ``h.T`` and returns
    ``(...).T``, and so does its reverse pass). Returns ``(eqns, cins, couts, flips)``,
    ``flips`` a list of (carry position, axes in, axes out)."""
    made_by = {o.name: e for e in eqns for o in e.outvars}
    readers = {}
    for e in eqns:
        for v in e.invars:
            if isinstance(v, Var):
                readers.setdefault(v.name, []).append(e)
    nc = len(cins)
    out_names = [v.name for v in couts]
    flips, drop, alias = [], set(), {}
    cins, couts = list(cins), list(couts)
    for j in range(nc):
        c, o = cins[j], couts[j]
        rs = readers.get(c.name, [])
        last = made_by.get(o.name)
        if (not rs or last is None or last.prim is not transpose_p or c.name in out_names
                or out_names.count(o.name) != 1 or uses.get(o.name) != 1
                or any(r.prim is not transpose_p or r.params != rs[0].params for r in rs)):
            continue
        axes = tuple(rs[0].params["axes"])
        back = tuple(int(i) for i in np.argsort(axes))
        u = last.invars[0]
        if tuple(last.params["axes"]) != back or not isinstance(u, Var) or u is c:
            continue
        t0 = rs[0].outvars[0]
        for r in rs:
            alias[r.outvars[0].name] = t0
            drop.add(id(r))
        drop.add(id(last))
        cins[j], couts[j] = t0, u
        flips.append((j, axes, back))
    if not flips:
        return eqns, cins, couts, flips

    def res(v):
        return alias.get(v.name, v) if isinstance(v, Var) else v
    eqns = [type(e)(e.prim, [res(v) for v in e.invars], e.params, e.outvars)
            for e in eqns if id(e) not in drop]
    couts = [res(v) for v in couts]
    return eqns, cins, couts, flips


_SPLIT_ERRORS = False      # tests set it: a body that cannot be split raises instead


def _loop_split(body, nk, nc, hist_keep, host, args, length):
    """The body's :class:`_LoopSplit` from its second run on (a body run once, as in an
    eager ``grad`` that traces a new one every call, does not pay for splitting it);
    None while there is none, or where it cannot be made."""
    key = ("loop_split", nk, nc, hist_keep, host, length)
    cache = body.__dict__.setdefault("_derived", {})
    hit = cache.get(key)
    if hit is None:
        cache[key] = 0
        return None
    if hit == 0:
        try:
            hit = _LoopSplit(body, nk, nc, hist_keep, host, args, length)
        except Exception:                           # pragma: no cover - a safety net
            if _SPLIT_ERRORS:
                raise
            hit = False
        cache[key] = hit
        return None if hit is False else hit
    return hit or None


_native_loops = None       # numba_loops.start, registered by numba_loops.py
_native_while = None       # numba_loops.start_while


def register_native_loops(scan_fn, while_fn):
    """Register ``scan_fn(step_graph, n_invariants, n_carries, n_per_step, n_outputs)``,
    which starts compiling a scan step's loop as one native function, and
    ``while_fn(cond, body, cond_nconsts, body_nconsts)``, a while loop's: each returns
    an object whose ``fn`` is the loop once ready, or None when it cannot."""
    global _native_loops, _native_while
    _native_loops, _native_while = scan_fn, while_fn


def scan_native(*args, **params):
    """``scan``'s implementation running its loops natively once compiled (the Numba
    backend's form of a scan equation, numba_loops.py)."""
    return _scan_impl(*args, native=True, **params)


def _scan_impl(*args, body, num_consts, num_carry, length, reverse, history=None,
               native=False):
    nk, nc = num_consts, num_carry
    host = _host(args, body)
    arrays = [a for a in args if hasattr(a, "shape")]
    xp = array_module(*arrays) if arrays else np
    carry_vars = body.invars[nk:nk + nc]
    hist_keep = (True,) * nc if history is None else tuple(history)
    if length == 0:
        return list(args[nk:nk + nc]) + [
            xp.empty((0,) + v.shape, v.dtype)
            for v in list(body.outvars[nc:]) + [v for v, h in zip(carry_vars, hist_keep) if h]]
    split = _loop_split(body, nk, nc, hist_keep, host, args, length)
    if split is not None and split.after is None and not _SPLIT_ERRORS:
        try:                                        # its first run traces ``after``
            carry, stacked, hist = split.run(args, nk, nc, reverse, xp, native)
        except Exception:                           # pragma: no cover - a safety net
            body._derived[("loop_split", nk, nc, hist_keep, host, length)] = False
            split = None
        else:
            return _scan_result(carry, body, nc, xp) + stacked + hist
    if split is not None:
        carry, stacked, hist = split.run(args, nk, nc, reverse, xp, native)
        stacked += hist
    else:
        prepare, run, _ = _scan_plan(body, nk, host)
        consts = args[:nk]
        if prepare is not None:
            consts = prepare(*consts)
        carry = list(args[nk:nk + nc])
        rows = [list(x) for x in args[nk + nc:]]            # row views, made at C speed
        if reverse:
            rows = [r[::-1] for r in rows]
        keep = [k for k in range(nc) if hist_keep[k]]
        ys, hist = [], []
        for xt in zip(*rows) if rows else ((),) * length:
            if keep:
                hist.append([carry[k] for k in keep])
            out = run(*consts, *carry, *xt)
            carry = out[:nc]
            ys.append(out[nc:])
        if reverse:
            ys.reverse()
            hist.reverse()
        stacked = [_stacked([y[j] for y in ys], v, xp)
                   for j, v in enumerate(body.outvars[nc:])]
        stacked += [_stacked([h[j] for h in hist], carry_vars[k], xp)
                    for j, k in enumerate(keep)]
    return _scan_result(carry, body, nc, xp) + stacked


def _scan_result(carry, body, nc, xp):
    return [c if hasattr(c, "shape") and not isinstance(c, np.generic)
            else xp.asarray(c, dtype=v.dtype)
            for c, v in zip(carry, body.outvars[:nc])]


def _scan_jvp(primals, tangents, *, body, num_consts, num_carry, length, reverse):
    params = dict(num_consts=num_consts, num_carry=num_carry, length=length, reverse=reverse)
    if all(t is None for t in tangents):
        out = bind(scan_p, *primals, body=body, **params)
        return out, [None] * len(out)
    nk, nc = num_consts, num_carry
    nx = len(primals) - nk - nc
    ny = len(body.outvars) - nc
    cf = [_is_float(v.dtype) for v in body.invars[nk:nk + nc]]
    yf = [_is_float(v.dtype) for v in body.outvars[nc:]]
    kt = [t is not None for t in tangents[:nk]]
    xt = [t is not None for t in tangents[nk + nc:]]
    jfun = _jvp_fun(body, kt + cf + xt)
    consts, carry, xs = primals[:nk], primals[nk:nk + nc], primals[nk + nc:]
    k_dots = [t for t in tangents[:nk] if t is not None]
    c_dots = [t if t is not None else _zeros(p)
              for p, t, f in zip(carry, tangents[nk:nk + nc], cf) if f]
    x_dots = [t for t in tangents[nk + nc:] if t is not None]
    nkd, ncd = len(k_dots), len(c_dots)

    def step(*a):
        k, kd = a[:nk], a[nk:nk + nkd]
        a = a[nk + nkd:]
        c, cd = a[:nc], a[nc:nc + ncd]
        a = a[nc + ncd:]
        x, xd = a[:nx], a[nx:]
        outs = jfun(*k, *c, *x, *kd, *cd, *xd)
        prim, tans = outs[:nc + ny], outs[nc + ny:]
        return list(prim[:nc]) + tans[:ncd] + list(prim[nc:]) + tans[ncd:]

    ex = _examples(list(consts) + k_dots + list(carry) + c_dots) + \
        [_slice0(e) for e in _examples(list(xs) + x_dots)]
    graph, lifted = trace_subgraph(step, ex)
    outs = bind(scan_p, *lifted, *consts, *k_dots, *carry, *c_dots, *xs, *x_dots, body=graph,
                num_consts=len(lifted) + nk + nkd, num_carry=nc + ncd, length=length,
                reverse=reverse)
    nyd = sum(yf)
    c_out, cd_out = outs[:nc], iter(outs[nc:nc + ncd])
    rest = outs[nc + ncd:]
    y_out, yd_out = rest[:ny], iter(rest[ny:ny + nyd])
    rest = rest[ny + nyd:]
    h_out, hd_out = rest[:nc], iter(rest[nc:])
    tout = ([next(cd_out) if f else None for f in cf] + [next(yd_out) if f else None for f in yf]
            + [next(hd_out) if f else None for f in cf])
    return list(c_out) + list(y_out) + list(h_out), tout


def _scan_split(body, nk, nc, args):
    """The reverse of one step split (once per body) into what the forward scan can
    compute, ``fwd(consts, carry, x) -> (carry, y, per-step residuals)`` and ``prep(consts)
    -> loop-invariant residuals``, and ``bwd(residuals, carry and y cotangents) ->
    cotangents of (consts, carry, x)`` for the floating ones; with the residual
    variables in ``bwd``'s order and which of them are invariant."""
    cache = body.__dict__.setdefault("_derived", {})
    key = ("scan_split", nk, nc)
    hit = cache.get(key)
    if hit is not None:
        return hit
    nx = len(body.invars) - nk - nc
    diff = [_is_float(v.dtype) for v in body.invars]
    ex = _examples(args[:nk + nc]) + [_slice0(e) for e in _examples(args[nk + nc:])]
    xp = array_module(*[e for e in ex if hasattr(e, "shape")]) if ex else np
    cts = [xp.zeros(v.shape, v.dtype) for v in body.outvars if _is_float(v.dtype)]
    joint, lifted = trace_subgraph(_vjp_fun(body, diff, with_outputs=True), ex + cts)
    assert not lifted
    fwd, bwd = _partial_eval(joint, nk + nc + nx, len(body.outvars))
    n_out = len(body.outvars)
    res = fwd.outvars[n_out:]
    known = {v.name for v in fwd.invars[:nk]} | {v.name for v, _ in fwd.consts}
    for e in fwd.eqns:
        if all(not isinstance(v, Var) or v.name in known for v in e.invars):
            known.update(o.name for o in e.outvars)
    invariant = [r.name in known for r in res]
    prep = prune_graph(Graph(fwd.invars[:nk], fwd.consts, fwd.eqns,
                             [r for r, i in zip(res, invariant) if i]))
    step = prune_graph(Graph(fwd.invars, fwd.consts, fwd.eqns,
                             list(fwd.outvars[:n_out])
                             + [r for r, i in zip(res, invariant) if not i]))
    hit = cache[key] = (prep, step, bwd, invariant)
    return hit


def _scan_vjp_fwd(primals, *, body, num_consts, num_carry, length, reverse, history=None):
    nk, nc = num_consts, num_carry
    prep, step, bwd, invariant = _scan_split(body, nk, nc, primals)
    ny = len(body.outvars) - nc
    consts = primals[:nk]
    inv = bind(call_p, *consts, graph=prep) if any(invariant) else []
    outs = bind(scan_p, *primals, body=step, num_consts=nk, num_carry=nc, length=length,
                reverse=reverse)
    nr = len(step.outvars) - nc - ny
    ans = list(outs[:nc + ny]) + list(outs[nc + ny + nr:])
    return ans, (list(inv), list(outs[nc + ny:nc + ny + nr]))


def _scan_vjp_res(g, args, wanted, residuals, body, nk, nc, length, reverse):
    """The reverse scan from the forward's residuals: no step is recomputed."""
    prep, step, bwd, invariant = _scan_split(body, nk, nc, args)
    inv, per_step = residuals
    ny = len(body.outvars) - nc
    kf = [_is_float(v.dtype) for v in body.invars[:nk]]
    cf = [_is_float(v.dtype) for v in body.invars[nk:nk + nc]]
    xf = [_is_float(v.dtype) for v in body.invars[nk + nc:]]
    yf = [_is_float(v.dtype) for v in body.outvars[nc:]]
    consts = args[:nk]
    ct_carry = list(g[:nc])
    ct_ys = [c for c, f in zip(g[nc:nc + ny], yf) if f]
    hf = [f and (isinstance(c, Tracer) or bool(array_module(c).any(c)))
          for c, f in zip(g[nc + ny:], cf)]
    ct_hist = [c for c, f in zip(g[nc + ny:], hf) if f]
    acc0 = [_zeros(c) for c, f in zip(consts, kf) if f]
    na, ni, ns, nyf = len(acc0), len(inv), len(per_step), len(ct_ys)
    n_res = len(invariant)

    def bstep(*a):
        iv, a = a[:ni], a[ni:]
        acc, a = a[:na], a[na:]
        ctc, a = a[:nc], a[nc:]
        st, a = a[:ns], a[ns:]
        cty, cth = a[:nyf], iter(a[nyf:])
        ii, si = iter(iv), iter(st)
        res = [next(ii) if i else next(si) for i in invariant]
        assert len(res) == n_res
        cts = eval_graph(bwd, *res, *[c for c, f in zip(ctc, cf) if f], *cty)
        it = iter(cts)
        ck = [next(it) for f in kf if f]
        cc = [(next(it) + next(cth) if h else next(it)) if f else c
              for c, f, h in zip(ctc, cf, hf)]
        return [s_ + c for s_, c in zip(acc, ck)] + cc + list(it)

    ex = _examples(list(inv) + acc0 + ct_carry) + \
        [_slice0(e) for e in _examples(list(per_step) + ct_ys + ct_hist)]
    graph, lifted = trace_subgraph(bstep, ex)
    operands = [*lifted, *inv, *acc0, *ct_carry, *per_step, *ct_ys, *ct_hist]
    outs = bind(scan_p, *operands, body=graph, num_consts=len(lifted) + ni,
                num_carry=na + nc, length=length, reverse=not reverse,
                **_no_history(operands, na + nc))
    ck, cc = iter(outs[:na]), outs[na:na + nc]
    cx = iter(outs[na + nc:na + nc + sum(xf)])
    full = ([next(ck) if f else None for f in kf] + [c if f else None for c, f in zip(cc, cf)]
            + [next(cx) if f else None for f in xf])
    return [full[i] for i in wanted]


def _no_history(operands, nc):
    """``history=`` for a reverse pass's scan over concrete values: nothing can
    differentiate it, so it keeps no carry history (the gradient of a weight, carried,
    would otherwise be kept at every step). Under a transformation it keeps them (its own
    reverse pass reads them; jit's ``dead_code`` drops unused ones)."""
    if any(isinstance(x, Tracer) for x in operands):
        return {}
    return {"history": (False,) * nc}


def _scan_vjp(g, ans, args, wanted, *, body, num_consts, num_carry, length, reverse,
              residuals=None):
    if residuals is not None:
        return _scan_vjp_res(g, args, wanted, residuals, body, num_consts, num_carry,
                             length, reverse)
    return _scan_vjp_recompute(g, ans, args, wanted, body=body, num_consts=num_consts,
                               num_carry=num_carry, length=length, reverse=reverse)


def _scan_vjp_recompute(g, ans, args, wanted, *, body, num_consts, num_carry, length,
                        reverse):
    """The reverse pass: a scan in the other direction over (carry before each step, xs,
    cotangents of ys), carrying the cotangents of the carry and of the constants; each
    step recomputes its forward step and applies its reverse rule."""
    nk, nc = num_consts, num_carry
    nx = len(args) - nk - nc
    ny = len(body.outvars) - nc
    kf = [_is_float(v.dtype) for v in body.invars[:nk]]
    cf = [_is_float(v.dtype) for v in body.invars[nk:nk + nc]]
    xf = [_is_float(v.dtype) for v in body.invars[nk + nc:]]
    yf = [_is_float(v.dtype) for v in body.outvars[nc:]]
    consts = args[:nk]
    ct_carry = list(g[:nc])
    ct_ys = [c for c, f in zip(g[nc:nc + ny], yf) if f]
    hist = ans[nc + ny:]
    # (the history's cotangents: nonzero when the reverse pass is itself differentiated)
    # (all-zero concrete ones, as in first-order derivatives, are left out)
    hf = [f and (isinstance(c, Tracer) or bool(array_module(c).any(c)))
          for c, f in zip(g[nc + ny:], cf)]
    ct_hist = [c for c, f in zip(g[nc + ny:], hf) if f]
    xs = args[nk + nc:]
    acc0 = [_zeros(c) for c, f in zip(consts, kf) if f]
    na, nyf = len(acc0), len(ct_ys)
    vfun = _vjp_fun(body, kf + cf + xf)

    def step(*a):
        k, acc = a[:nk], a[nk:nk + na]
        a = a[nk + na:]
        ctc, h = a[:nc], a[nc:2 * nc]
        a = a[2 * nc:]
        x, cty, cth = a[:nx], a[nx:nx + nyf], iter(a[nx + nyf:])
        cts = vfun(*k, *h, *x, *[c for c, f in zip(ctc, cf) if f], *cty)
        it = iter(cts)
        ck = [next(it) for f in kf if f]
        cc = [(next(it) + next(cth) if h else next(it)) if f else c
              for c, f, h in zip(ctc, cf, hf)]
        cx = list(it)
        return [s + c for s, c in zip(acc, ck)] + cc + cx

    ex = _examples(list(consts) + acc0 + ct_carry) + \
        [_slice0(e) for e in _examples(list(hist) + list(xs) + ct_ys + ct_hist)]
    graph, lifted = trace_subgraph(step, ex)
    operands = [*lifted, *consts, *acc0, *ct_carry, *hist, *xs, *ct_ys, *ct_hist]
    outs = bind(scan_p, *operands, body=graph, num_consts=len(lifted) + nk,
                num_carry=na + nc, length=length, reverse=not reverse,
                **_no_history(operands, na + nc))
    ck, cc = iter(outs[:na]), outs[na:na + nc]
    cx = iter(outs[na + nc:na + nc + sum(xf)])
    full = ([next(ck) if f else None for f in kf] + [c if f else None for c, f in zip(cc, cf)]
            + [next(cx) if f else None for f in xf])
    return [full[i] for i in wanted]


def _scan_batch(vals, dims, *, body, num_consts, num_carry, length, reverse):
    size = bdim_size(vals, dims)
    nk, nc = num_consts, num_carry
    fnp = _np()
    consts = [move_to_front(v, d) for v, d in zip(vals[:nk], dims[:nk])]
    kd = [None if d is None else 0 for d in dims[:nk]]
    carry = [_broadcast_batch(v, d, size) for v, d in zip(vals[nk:nk + nc], dims[nk:nk + nc])]
    xs = [v if d is None else fnp.moveaxis(v, d, 1) for v, d in zip(vals[nk + nc:], dims[nk + nc:])]
    xd = [None if d is None else 0 for d in dims[nk + nc:]]
    bfun = _batch_fun(body, kd + [0] * nc + xd, size)
    ex = _examples(consts + carry) + [_slice0(e) for e in _examples(xs)]
    graph, lifted = trace_subgraph(bfun, ex)
    outs = bind(scan_p, *lifted, *consts, *carry, *xs, body=graph,
                num_consts=len(lifted) + nk, num_carry=nc, length=length, reverse=reverse)
    ny = len(body.outvars) - nc
    return outs, [0] * nc + [1] * (ny + nc)


def _scan_prune(eqn, used):
    """The scan without the ys and histories nobody reads (jit's dead-code pass): their
    equations leave the body, and the history is not stacked."""
    p = eqn.params
    nc = p["num_carry"]
    body = p["body"]
    ny = len(body.outvars) - nc
    keep_y = used[nc:nc + ny]
    old_hist = p.get("history") or (True,) * nc
    hist_used = iter(used[nc + ny:])
    history = tuple(h and next(hist_used) for h in old_hist)
    new_body = prune_graph(Graph(body.invars, body.consts, body.eqns,
                                 body.outvars[:nc] + [v for v, u in zip(body.outvars[nc:], keep_y)
                                                      if u]))
    outvars = eqn.outvars[:nc] + [v for v, u in zip(eqn.outvars[nc:nc + ny], keep_y) if u]
    outvars += [v for v, u in zip(eqn.outvars[nc + ny:], used[nc + ny:]) if u]
    return type(eqn)(eqn.prim, eqn.invars, {**p, "body": new_body, "history": history},
                     outvars)


def _scan_rows(kinds, invars, outvars, params, batch):
    """Row rule: a loop over values in rows runs as the same loop on each slice when its
    body can (``rows.body_kinds``; a recurrent layer over a batch). A carry in rows stays
    in rows (a whole start of the batch's length is sliced); a carry that adds partial
    sums (a reverse pass's weight gradient) is one, its start read as a share; per-step
    values are in rows one axis further out (axis 0 is the steps: never split)."""
    body, nk, nc = params["body"], params["num_consts"], params["num_carry"]
    hist = params.get("history") or (True,) * nc
    inner = []
    for i, k in enumerate(kinds):
        if i >= nk + nc and isinstance(k, _rows.Rows):
            if k.axis == 0:
                return None
            k = _rows.Rows(k.axis - 1)
        inner.append(k)
    carries = range(nk, nk + nc)
    cut, tried = {}, set()
    for _ in range(2 * len(inner) + 2):
        found = _rows.body_kinds(body, inner, batch, shareable=carries)
        if found is None:
            return None
        vk, chunk, req = found
        if not req:         # a step must return each carry in the kind it starts with
            for k in range(nc):
                o = body.outvars[k]
                ko = vk.get(o.name, _rows.WHOLE) if isinstance(o, Var) else _rows.WHOLE
                if ko != inner[nk + k]:
                    req[nk + k] = ko
        if not req:
            break
        if None in req:
            # a whole value made in the step from whole carries must be in rows: put the
            # carries that run along the batch in rows (each along its first such axis)
            req = {i: _rows.Rows(invars[i].shape.index(batch)) for i in carries
                   if inner[i] is _rows.WHOLE and isinstance(invars[i], Var)
                   and batch in invars[i].shape and i not in tried}
            tried.update(req)
            if not req:
                return None
        for i, k in req.items():
            v = invars[i]
            if inner[i] is not _rows.WHOLE or k is _rows.WHOLE or not isinstance(v, Var):
                return None
            if k is _rows.PARTIAL:
                if i not in carries:
                    return None
                cut[i] = _rows.PARTIAL
            else:
                axis = k.axis + (1 if i >= nk + nc else 0)
                if v.shape[axis] != batch:
                    return None
                cut[i] = axis
            inner[i] = k
    else:
        return None

    def stacked(k):
        return _rows.Rows(k.axis + 1) if isinstance(k, _rows.Rows) else k

    outs = inner[nk:nk + nc]
    outs += [stacked(vk.get(o.name, _rows.WHOLE) if isinstance(o, Var) else _rows.WHOLE)
             for o in body.outvars[nc:]]
    outs += [stacked(inner[nk + k]) for k in range(nc) if hist[k]]
    if any(k is _rows.WHOLE for k in outs):
        return None         # (a value made on every slice cannot be joined as whole)
    sizes = [int(np.prod(v.shape)) for e in body.eqns for v in e.outvars
             if isinstance(vk.get(v.name), _rows.Rows)]
    if not sizes or sum(sizes) < _rows.MIN_LOOP_ROW_SIZE * len(sizes):
        return None         # steps too small to run side by side (rows.MIN_LOOP_ROW_SIZE)

    def params_for(c):
        return {**params, "body": _rows.resized_graph(body, vk, chunk, c)}
    return outs, params_for, cut, params["length"] * sum(sizes)


scan_p = Primitive("scan", _scan_impl, multiple_results=True)
def_rules(scan_p, jvp=_scan_jvp, vjp=_scan_vjp, batch=_scan_batch, vjp_fwd=_scan_vjp_fwd,
          rows=_scan_rows)
dead_output_rules[scan_p] = _scan_prune


def _types(vs):
    return [(v.shape, v.dtype) if isinstance(v, Var) else (np.shape(v.value),
                                                            np.asarray(v.value).dtype)
            for v in vs]


def _check_scan(e):
    p = e.params
    body, nk, nc, n = p["body"], p["num_consts"], p["num_carry"], p["length"]
    ins = _types(e.invars)
    hist = p.get("history") or (True,) * nc
    return (signature_problems("body input", body.invars,
                               ins[:nk + nc] + [(s[1:], d) for s, d in ins[nk + nc:]])
            + signature_problems("body carry output", body.outvars[:nc], ins[nk:nk + nc])
            + signature_problems("output", e.outvars, (
                ins[nk:nk + nc] + [((n,) + v.shape, v.dtype) for v in body.outvars[nc:]]
                + [((n,) + s, d) for (s, d), h in zip(ins[nk:nk + nc], hist) if h])))


def _check_while(e):
    p = e.params
    ncc, nbc = p["cond_nconsts"], p["body_nconsts"]
    ins = _types(e.invars)
    carry = ins[ncc + nbc:]
    probs = (signature_problems("cond input", p["cond"].invars, ins[:ncc] + carry)
             + signature_problems("body input", p["body"].invars, ins[ncc:])
             + signature_problems("body output", p["body"].outvars, carry)
             + signature_problems("output", e.outvars, carry))
    if len(p["cond"].outvars) != 1 or p["cond"].outvars[0].dtype != np.bool_:
        probs.append("cond must return one boolean")
    return probs


def _check_cond(e):
    ins = _types(e.invars[1:])
    out = _types(e.outvars)
    probs = []
    for k, b in enumerate(e.params["branches"]):
        probs += signature_problems(f"branch {k} input", b.invars, ins)
        probs += signature_problems(f"branch {k} output", b.outvars, out)
    return probs


subgraph_checks.update({scan_p: _check_scan})


def _scan_length(xs_flat, xs, length):
    lengths = {}
    for name, x in zip(_leaf_names("xs", xs), xs_flat):
        if not np.shape(x):
            raise FuncgradValueError(
                f"scan: every leaf of xs needs a leading axis to scan over, but {name} is "
                f"a scalar {dtype_name(x)}")
        lengths.setdefault(np.shape(x)[0], []).append(name)
    if length is not None:
        length = int(length)
        if lengths and set(lengths) != {length}:
            raise FuncgradValueError(
                f"scan: length={length} but the leading axes of xs have lengths "
                + "; ".join(f"{k} ({', '.join(v)})" for k, v in lengths.items()))
        return length
    if len(lengths) > 1:
        raise FuncgradValueError(
            "scan: the leaves of xs have different leading lengths: "
            + "; ".join(f"{k} ({', '.join(v)})" for k, v in lengths.items()))
    if not lengths:
        raise FuncgradValueError("scan: xs has no arrays; pass length= to say how many steps")
    return next(iter(lengths))


def _split_body_out(res):
    if not (isinstance(res, (tuple, list)) and len(res) == 2):
        raise FuncgradTypeError(
            "scan: the body must return a pair (new carry, y), got "
            f"{type(res).__name__}")
    return res


def scan(f, init, xs=None, length=None, reverse=False, unroll=1):
    """Loop ``f`` over the leading axis of ``xs``, carrying a state: ``jax.lax.scan``.

    Semantics (``reverse=False``)::

        carry = init
        for i in range(length):
            carry, y = f(carry, xs[i])      # xs[i]: the i-th slice of every leaf
            ys.append(y)
        return carry, stack(ys)

    Args:
      f: ``f(carry, x) -> (carry, y)``; the carry keeps its pytree structure, shapes and
        dtypes.
      init: the initial carry (a pytree of arrays).
      xs: a pytree of arrays with a common leading length, or None (then ``length``).
      length: the number of steps, when ``xs`` has no arrays.
      reverse: scan from the last slice to the first (``ys`` keep ``xs``'s order).
      unroll: accepted for JAX compatibility; the loop is never unrolled.

    Returns ``(final carry, stacked ys)``. Eagerly a Python loop; under a transformation
    one ``scan`` equation over the body's graph (never unrolled under ``jit``).

    Raises FuncgradTypeError naming the carry leaf whose structure, shape or dtype the
    body changes.

    Example:
        >>> import numpy as np, funcgrad.lax as lax
        >>> lax.scan(lambda c, x: (c + x, c), 0.0, np.arange(4.0))
        (array(6.), array([0., 0., 1., 3.]))
    """
    del unroll
    init_flat, init_tree = tree_flatten(init)
    init_flat = [_as_array(x) for x in init_flat]
    xs_flat, xs_tree = tree_flatten(xs)
    length = _scan_length(xs_flat, xs, length)
    names = _leaf_names("carry", init)
    want = _types_of(init_flat)
    if trace_depth() == 0 and length > 0 and not any(
            isinstance(x, Tracer) for x in init_flat + xs_flat):
        return _scan_eager(f, tree_unflatten(init_tree, init_flat), xs_flat, xs_tree, length,
                           reverse, init_tree, names, want)
    nc = len(init_flat)
    y_tree = []

    def body(*flat):
        carry = tree_unflatten(init_tree, flat[:nc])
        x = tree_unflatten(xs_tree, flat[nc:])
        c_out, y = _split_body_out(f(carry, x))
        c_flat, c_tree = tree_flatten(c_out)
        _check_tree("scan", "the carry", init_tree, c_tree)
        c_flat = [_fit_dtype(v, s, d) for v, (s, d) in zip(c_flat, want)]
        _check_types("scan", "the carry", names, want, _types_of(c_flat))
        y_flat, yt = tree_flatten(y)
        y_tree.append(yt)
        return c_flat + y_flat

    ex = _examples(init_flat) + [_slice0(e) for e in _examples(xs_flat)]
    try:
        graph, lifted = trace_subgraph(body, ex)
    except NotStageable:
        # a custom_jvp/custom_vjp function in the body: its rule must reach the
        # transformations, so the loop runs in Python under them (unrolled under jit)
        return _scan_eager(f, tree_unflatten(init_tree, init_flat), xs_flat, xs_tree, length,
                           reverse, init_tree, names, want)
    outs = bind(scan_p, *lifted, *init_flat, *xs_flat, body=graph, num_consts=len(lifted),
                num_carry=nc, length=length, reverse=bool(reverse))
    ny = len(graph.outvars) - nc
    return (tree_unflatten(init_tree, outs[:nc]),
            tree_unflatten(y_tree[0], outs[nc:nc + ny]))


def _scan_eager(f, carry, xs_flat, xs_tree, length, reverse, init_tree, names, want):
    ys = []
    for t in (range(length - 1, -1, -1) if reverse else range(length)):
        carry, y = _split_body_out(f(carry, tree_unflatten(xs_tree, [x[t] for x in xs_flat])))
        c_flat, c_tree = tree_flatten(carry)
        _check_tree("scan", "the carry", init_tree, c_tree)
        c_flat = [_fit_dtype(v, s, d) for v, (s, d) in zip(c_flat, want)]
        _check_types("scan", "the carry", names, want, _types_of(c_flat))
        carry = tree_unflatten(c_tree, c_flat)
        ys.append(tree_flatten(y))
    if reverse:
        ys.reverse()
    y_tree = ys[0][1]
    fnp = _np()
    stacked = [fnp.stack([y[0][k] for y in ys]) for k in range(len(ys[0][0]))]
    return carry, tree_unflatten(y_tree, stacked)


def map(f, xs):  # noqa: A001 - JAX's name
    """``stack([f(x) for x in xs])`` over the leading axis of the pytree ``xs``, as a
    scan (``jax.lax.map``).

    Example:
        >>> import numpy as np, funcgrad.lax as lax
        >>> lax.map(lambda x: x * 2, np.arange(3.0))
        array([0., 2., 4.])
    """
    return scan(lambda c, x: (c, f(x)), (), xs)[1]


def fori_loop(lower, upper, body_fun, init_val, unroll=None):
    """``for i in range(lower, upper): val = body_fun(i, val)``: ``jax.lax.fori_loop``.

    With concrete bounds it is a ``scan`` (reverse-differentiable); with traced bounds a
    ``while_loop`` (forward-mode only).

    Example:
        >>> import funcgrad.lax as lax
        >>> print(lax.fori_loop(0, 5, lambda i, s: s + i, 0))
        10
    """
    del unroll
    if not isinstance(lower, Tracer) and not isinstance(upper, Tracer):
        lo, hi = np.asarray(lower), np.asarray(upper)
        dtype = np.result_type(lo.dtype, hi.dtype)
        n = max(int(hi) - int(lo), 0)

        def step(c, _):
            i, x = c
            return (i + np.asarray(1, dtype), body_fun(i, x)), None
        (_, out), _ = scan(step, (lo.astype(dtype), init_val), None, length=n)
        return out

    def cond_fun(c):
        return c[0] < c[1]

    def body(c):
        i, hi, x = c
        return i + 1, hi, body_fun(i, x)
    return while_loop(cond_fun, body, (lower, upper, init_val))[2]


# --------------------------------------------------------------------------------------
# while_loop


def while_native(*args, **params):
    """``while``'s implementation running its loop natively once compiled (the Numba
    backend's form of a while equation, numba_loops.py)."""
    return _while_impl(*args, native=True, **params)


def _while_impl(*args, cond, body, cond_nconsts, body_nconsts, native=False):
    cc = args[:cond_nconsts]
    bc = args[cond_nconsts:cond_nconsts + body_nconsts]
    val = list(args[cond_nconsts + body_nconsts:])
    host = _host(args, cond, body)
    if native and host and _native_while is not None:
        cache = body.__dict__.setdefault("_derived", {})
        key = ("native_while", cond, cond_nconsts, body_nconsts)
        pending = cache.get(key)
        if pending is None:
            pending = cache[key] = _native_while(cond, body, cond_nconsts,
                                                 body_nconsts) or False
        if pending and pending.fn is not None:
            try:
                return pending.fn(cc, bc, val)
            except TypeError:                       # values it was not compiled for
                cache[key] = False
    crun, brun = graph_runner(cond, host), graph_runner(body, host)
    while crun(*cc, *val)[0]:
        val = brun(*bc, *val)
    return val


def _while_jvp(primals, tangents, *, cond, body, cond_nconsts, body_nconsts):
    params = dict(cond=cond, body=body, cond_nconsts=cond_nconsts, body_nconsts=body_nconsts)
    if all(t is None for t in tangents):
        out = bind(while_p, *primals, **params)
        return out, [None] * len(out)
    ncc, nbc = cond_nconsts, body_nconsts
    cc, bc, carry = primals[:ncc], primals[ncc:ncc + nbc], primals[ncc + nbc:]
    n = len(carry)
    cf = [_is_float(v.dtype) for v in body.invars[nbc:]]
    kt = [t is not None for t in tangents[ncc:ncc + nbc]]
    b_dots = [t for t in tangents[ncc:ncc + nbc] if t is not None]
    c_dots = [t if t is not None else _zeros(p)
              for p, t, f in zip(carry, tangents[ncc + nbc:], cf) if f]
    nbd = len(b_dots)
    jfun = _jvp_fun(body, kt + cf)

    def new_body(*a):
        k, kd, c, cd = a[:nbc], a[nbc:nbc + nbd], a[nbc + nbd:nbc + nbd + n], a[nbc + nbd + n:]
        return jfun(*k, *c, *kd, *cd)

    def new_cond(*a):
        return eval_graph(cond, *a[:ncc + n])

    c_ex = _examples(list(carry) + c_dots)
    bg, bl = trace_subgraph(new_body, _examples(list(bc) + b_dots) + c_ex)
    cg, cl = trace_subgraph(new_cond, _examples(cc) + c_ex)
    outs = bind(while_p, *cl, *cc, *bl, *bc, *b_dots, *carry, *c_dots, cond=cg, body=bg,
                cond_nconsts=len(cl) + ncc, body_nconsts=len(bl) + nbc + nbd)
    dots = iter(outs[n:])
    return outs[:n], [next(dots) if f else None for f in cf]


def _while_vjp(g, ans, args, wanted, **params):
    raise FuncgradTypeError(
        "Reverse-mode differentiation does not work for lax.while_loop (the number of "
        "steps is only known at run time, so its intermediate values cannot be stored). "
        "Use forward mode (funcgrad.jvp, funcgrad.jacfwd), or lax.fori_loop with concrete "
        "bounds / lax.scan, which are reverse-differentiable.")


def _while_batch(vals, dims, *, cond, body, cond_nconsts, body_nconsts):
    size = bdim_size(vals, dims)
    ncc, nbc = cond_nconsts, body_nconsts
    cc = [move_to_front(v, d) for v, d in zip(vals[:ncc], dims[:ncc])]
    ccd = [None if d is None else 0 for d in dims[:ncc]]
    bc = [move_to_front(v, d) for v, d in zip(vals[ncc:ncc + nbc], dims[ncc:ncc + nbc])]
    bcd = [None if d is None else 0 for d in dims[ncc:ncc + nbc]]
    carry = [_broadcast_batch(v, d, size)
             for v, d in zip(vals[ncc + nbc:], dims[ncc + nbc:])]
    n = len(carry)
    pred_b = _batch_fun(cond, ccd + [0] * n, size)
    body_b = _batch_fun(body, bcd + [0] * n, size)
    fnp = _np()

    def new_cond(*a):
        return [fnp.any(pred_b(*a)[0])]

    def new_body(*a):
        k, b, c = a[:ncc], a[ncc:ncc + nbc], a[ncc + nbc:]
        p = pred_b(*k, *c)[0]
        new = body_b(*b, *c)
        return [fnp.where(fnp.reshape(p, (size,) + (1,) * (len(np.shape(o)) - 1)), o, old)
                for o, old in zip(new, c)]

    c_ex = _examples(carry)
    cg, cl = trace_subgraph(new_cond, _examples(cc) + c_ex)
    bg, bl = trace_subgraph(new_body, _examples(cc + bc) + c_ex)
    outs = bind(while_p, *cl, *cc, *bl, *cc, *bc, *carry, cond=cg, body=bg,
                cond_nconsts=len(cl) + ncc, body_nconsts=len(bl) + ncc + nbc)
    return outs, [0] * n


while_p = Primitive("while", _while_impl, multiple_results=True)
def_rules(while_p, jvp=_while_jvp, vjp=_while_vjp, batch=_while_batch)
subgraph_checks[while_p] = _check_while


def while_loop(cond_fun, body_fun, init_val):
    """``while cond_fun(val): val = body_fun(val)``: ``jax.lax.while_loop``.

    ``body_fun`` keeps the structure, shapes and dtypes of ``val``; ``cond_fun`` returns
    a boolean scalar. Differentiable in forward mode (``jvp``, ``jacfwd``); ``grad``
    raises, as in JAX (use ``fori_loop`` with concrete bounds or ``scan``).

    Example:
        >>> import funcgrad.lax as lax
        >>> print(lax.while_loop(lambda x: x < 10, lambda x: x * 2, 1))
        16
    """
    flat, tree = tree_flatten(init_val)
    flat = [_as_array(x) for x in flat]
    names = _leaf_names("val", init_val)
    want = _types_of(flat)

    def checked_body(val):
        out = body_fun(val)
        o_flat, o_tree = tree_flatten(out)
        _check_tree("while_loop", "the loop value", tree, o_tree)
        o_flat = [_fit_dtype(v, s, d) for v, (s, d) in zip(o_flat, want)]
        _check_types("while_loop", "the loop value", names, want, _types_of(o_flat))
        return o_flat

    if trace_depth() == 0 and not any(isinstance(x, Tracer) for x in flat):
        val = tree_unflatten(tree, flat)
        while cond_fun(val):
            val = tree_unflatten(tree, checked_body(val))
        return val

    def cond_flat(*c):
        p = cond_fun(tree_unflatten(tree, list(c)))
        if np.shape(p) != () or np.dtype(getattr(p, "dtype", type(p))) != np.bool_:
            raise FuncgradTypeError(
                f"while_loop: cond_fun must return a boolean scalar, got {dtype_name(p)}")
        return [p]

    ex = _examples(flat)
    try:
        cg, cl = trace_subgraph(cond_flat, ex)
        bg, bl = trace_subgraph(lambda *c: checked_body(tree_unflatten(tree, list(c))), ex)
    except NotStageable:        # custom rules inside: a Python loop (concrete values only)
        val = tree_unflatten(tree, flat)
        while cond_fun(val):
            val = tree_unflatten(tree, checked_body(val))
        return val
    outs = bind(while_p, *cl, *bl, *flat, cond=cg, body=bg, cond_nconsts=len(cl),
                body_nconsts=len(bl))
    return tree_unflatten(tree, outs)


# --------------------------------------------------------------------------------------
# cond / switch


def _cond_impl(index, *args, branches):
    i = min(max(int(index), 0), len(branches) - 1)
    return list(graph_runner(branches[i], _host(args, branches[i]))(*args))


def _trace_branches(funs, examples):
    """Each branch traced on ``examples``; all take the same inputs (the values each
    closes over, then the operands). Returns (graphs, lifted values)."""
    traced = [trace_subgraph(f, examples) for f in funs]
    lifted = [t for _, ls in traced for t in ls]
    graphs = []
    pos = 0
    for k, (g, ls) in enumerate(traced):
        n = len(ls)
        pad = [Var(f"_u{k}_{j}", np.shape(t), t.dtype) for j, t in enumerate(lifted)]
        invars = pad[:pos] + g.invars[:n] + pad[pos + n:] + g.invars[n:]
        graphs.append(Graph(invars, g.consts, g.eqns, g.outvars))
        pos += n
    return tuple(graphs), lifted


def _cond_jvp(primals, tangents, *, branches):
    if all(t is None for t in tangents[1:]):
        out = bind(cond_p, *primals, branches=branches)
        return out, [None] * len(out)
    index, args = primals[0], primals[1:]
    has_t = [t is not None for t in tangents[1:]]
    dots = [t for t in tangents[1:] if t is not None]
    funs = [_jvp_fun(b, has_t) for b in branches]
    graphs, lifted = _trace_branches(funs, _examples(list(args) + dots))
    outs = bind(cond_p, index, *lifted, *args, *dots, branches=graphs)
    of = [_is_float(v.dtype) for v in branches[0].outvars]
    m = len(of)
    it = iter(outs[m:])
    return outs[:m], [next(it) if f else None for f in of]


def _cond_vjp(g, ans, args, wanted, *, branches):
    index, ops = args[0], args[1:]
    diff = [_is_float(v.dtype) for v in branches[0].invars]
    of = [_is_float(v.dtype) for v in branches[0].outvars]
    cts = [c for c, f in zip(g, of) if f]
    funs = [_vjp_fun(b, diff) for b in branches]
    graphs, lifted = _trace_branches(funs, _examples(list(ops) + cts))
    outs = iter(bind(cond_p, index, *lifted, *ops, *cts, branches=graphs))
    full = [None] + [next(outs) if d else None for d in diff]
    return [full[i] for i in wanted]


def _cond_batch(vals, dims, *, branches):
    size = bdim_size(vals, dims)
    index, idim = vals[0], dims[0]
    args = [move_to_front(v, d) for v, d in zip(vals[1:], dims[1:])]
    ad = [None if d is None else 0 for d in dims[1:]]
    funs = [_batch_fun(b, ad, size) for b in branches]
    if idim is None:
        graphs, lifted = _trace_branches(funs, _examples(args))
        outs = bind(cond_p, index, *lifted, *args, branches=graphs)
        return outs, [0] * len(outs)
    # a predicate that differs per example: every branch runs, and a select picks
    fnp = _np()
    idx = fnp.clip(move_to_front(index, idim), 0, len(branches) - 1)
    results = [f(*args) for f in funs]
    outs = list(results[0])
    for k in range(1, len(branches)):
        outs = [fnp.where(fnp.reshape(idx == k, (size,) + (1,) * (len(np.shape(o)) - 1)), o,
                          prev) for o, prev in zip(results[k], outs)]
    return outs, [0] * len(outs)


cond_p = Primitive("cond", _cond_impl, multiple_results=True)
def_rules(cond_p, jvp=_cond_jvp, vjp=_cond_vjp, batch=_cond_batch)
subgraph_checks[cond_p] = _check_cond


def switch(index, branches, *operands):
    """``branches[index](*operands)``, with ``index`` clamped to the valid range:
    ``jax.lax.switch``. Under a transformation every branch is traced and must return
    the same structure, shapes and dtypes; under ``vmap`` with a per-example index all
    branches run and a select picks each example's result.

    Example:
        >>> import funcgrad.lax as lax
        >>> lax.switch(5, [lambda x: x + 1, lambda x: x * 10], 2.0)
        20.0
    """
    branches = list(branches)
    if not branches:
        raise FuncgradValueError("switch: needs at least one branch")
    n = len(branches)
    if not isinstance(index, Tracer):
        return branches[min(max(int(np.asarray(index)), 0), n - 1)](*operands)
    if np.shape(index) != () or np.dtype(index.dtype).kind not in "biu":
        raise FuncgradTypeError(
            f"switch/cond: the index must be an integer or boolean scalar, got "
            f"{dtype_name(index)}")
    flat, tree = tree_flatten(operands)
    flat = [_as_array(x) for x in flat]
    trees = []

    def wrap(fn):
        def fun(*a):
            out = fn(*tree_unflatten(tree, list(a)))
            o_flat, o_tree = tree_flatten(out)
            trees.append((o_tree, out))
            return o_flat
        return fun

    try:
        graphs, lifted = _trace_branches([wrap(b) for b in branches], _examples(flat))
    except NotStageable:
        # custom rules inside: every branch runs under the transformations, and a select
        # picks (the rules reach them; as with vmap's select, both sides are computed)
        fnp = _np()
        idx = fnp.clip(index, 0, n - 1)
        results = [tree_flatten(b(*operands)) for b in branches]
        outs = list(results[0][0])
        for k in range(1, n):
            outs = [fnp.where(idx == k, o, prev) for o, prev in zip(results[k][0], outs)]
        return tree_unflatten(results[0][1], outs)
    for k in range(1, n):
        _check_tree("switch/cond", f"branch {k}'s output (against branch 0's)", trees[0][0],
                    trees[k][0])
        _check_types("switch/cond", f"every branch's output (branch {k} against branch 0)",
                     _leaf_names("output", trees[0][1]), _var_types(graphs[0].outvars),
                     _var_types(graphs[k].outvars))
    fnp = _np()
    index = fnp.astype(index, np.int32) if index.dtype != np.int32 else index
    outs = bind(cond_p, index, *lifted, *flat, branches=graphs)
    return tree_unflatten(trees[0][0], outs)


def cond(pred, true_fun, false_fun, *operands):
    """``true_fun(*operands) if pred else false_fun(*operands)``: ``jax.lax.cond``.

    Under ``jit`` one ``cond`` equation holding both branches; under ``vmap`` with a
    batched predicate both branches run and a select picks (as in JAX).

    Example:
        >>> import funcgrad.lax as lax
        >>> lax.cond(True, lambda x: x + 1, lambda x: x - 1, 1.0)
        2.0
    """
    if isinstance(pred, Tracer) and np.shape(pred) != ():
        raise FuncgradTypeError(f"cond: pred must be a scalar, got {dtype_name(pred)}")
    if not isinstance(pred, Tracer):
        return (true_fun if bool(np.asarray(pred)) else false_fun)(*operands)
    return switch(pred, [false_fun, true_fun], *operands)


# --------------------------------------------------------------------------------------
# jit_call: a jitted function called under another transformation


def _derived(graph, key, make):
    """A graph derived from ``graph`` by a rule (its jvp, reverse or batched version),
    made once per ``key`` and kept on ``graph``: later calls run it without tracing."""
    cache = graph.__dict__.setdefault("_derived", {})
    hit = cache.get(key)
    if hit is None:
        g, lifted = make()
        if lifted:                      # pragma: no cover - rules close over nothing
            return g, lifted
        hit = cache[key] = g
    return hit, []


def _call_impl(*args, graph):
    return list(graph_runner(graph, _host(args, graph))(*args))


def _call_jvp(primals, tangents, *, graph):
    has_t = tuple(t is not None for t in tangents)
    if not any(has_t):
        out = bind(call_p, *primals, graph=graph)
        return out, [None] * len(out)
    dots = [t for t in tangents if t is not None]
    g, lifted = _derived(graph, ("jvp", has_t), lambda: trace_subgraph(
        _jvp_fun(graph, has_t), _examples(list(primals) + dots)))
    outs = bind(call_p, *lifted, *primals, *dots, graph=g)
    of = [_is_float(v.dtype) for v in graph.outvars]
    m = len(of)
    it = iter(outs[m:])
    return outs[:m], [next(it) if f else None for f in of]


def _call_split(graph, args):
    """(forward graph giving the outputs and the residuals, reverse graph from the
    residuals and the cotangents): the call's reverse pass without recomputing it."""
    cache = graph.__dict__.setdefault("_derived", {})
    hit = cache.get("split")
    if hit is None:
        diff = tuple(_is_float(v.dtype) for v in graph.invars)
        ex = _examples(args)
        xp = array_module(*[e for e in ex if hasattr(e, "shape")]) if ex else np
        cts = [xp.zeros(v.shape, v.dtype) for v in graph.outvars if _is_float(v.dtype)]
        joint, lifted = trace_subgraph(_vjp_fun(graph, diff, with_outputs=True), ex + cts)
        assert not lifted
        hit = cache["split"] = _partial_eval(joint, len(args) + len(lifted),
                                             len(graph.outvars))
    return hit


def _call_vjp_fwd(primals, *, graph):
    fwd, _ = _call_split(graph, primals)
    outs = bind(call_p, *primals, graph=fwd)
    m = len(graph.outvars)
    return outs[:m], outs[m:]


def _call_vjp(g, ans, args, wanted, *, graph, residuals=None):
    want = set(wanted)
    diff = tuple(_is_float(v.dtype) and i in want for i, v in enumerate(graph.invars))
    of = [_is_float(v.dtype) for v in graph.outvars]
    cts = [c for c, f in zip(g, of) if f]
    if residuals is not None:
        def pruned():
            bwd = _call_split(graph, args)[1]
            fl = [i for i, v in enumerate(graph.invars) if _is_float(v.dtype)]
            outs = [o for o, i in zip(bwd.outvars, fl) if diff[i]]
            return prune_graph(Graph(bwd.invars, bwd.consts, bwd.eqns, outs)), []
        bg, _ = _derived(graph, ("bwd", diff), pruned)
        outs = iter(bind(call_p, *residuals, *cts, graph=bg))
    else:
        vg, lifted = _derived(graph, ("vjp", diff), lambda: trace_subgraph(
            _vjp_fun(graph, diff), _examples(list(args) + cts)))
        outs = iter(bind(call_p, *lifted, *args, *cts, graph=vg))
    full = [next(outs) if d else None for d in diff]
    return [full[i] for i in wanted]


def _call_batch(vals, dims, *, graph):
    size = bdim_size(vals, dims)
    args = [move_to_front(v, d) for v, d in zip(vals, dims)]
    ad = tuple(None if d is None else 0 for d in dims)
    bg, lifted = _derived(graph, ("batch", ad, size), lambda: trace_subgraph(
        _batch_fun(graph, list(ad), size), _examples(args)))
    outs = bind(call_p, *lifted, *args, graph=bg)
    return outs, [0] * len(outs)


def _check_call(e):
    return (signature_problems("input", e.params["graph"].invars, _types(e.invars))
            + signature_problems("output", e.params["graph"].outvars, _types(e.outvars)))


call_p = Primitive("jit_call", _call_impl, multiple_results=True,
                   inline=lambda params: params["graph"])
def_rules(call_p, jvp=_call_jvp, vjp=_call_vjp, batch=_call_batch, vjp_fwd=_call_vjp_fwd)
subgraph_checks[call_p] = _check_call


def call_graph(fun, flat, kwargs_fn=None):
    """Trace ``fun(*flat) -> flat outputs`` once on the example values of ``flat`` (which
    may be tracers): ``(graph, lifted)``, as for a control-flow body."""
    return trace_subgraph(fun, _examples(flat))
