"""Collectives: primitives that move data between processes, and named-axis reductions.

Two families, each primitive with all its rules side by side:

* **Process collectives** (``all_reduce``, ``broadcast``, ``all_gather``, ``barrier``)
  take a flat list of leaves and return one (``multiple_results``); the engines and the
  bucketing live in ``comm.py``. They are *effectful*: ``jit`` keeps them in program
  order, never removes them as dead code, never merges two of them, and does not split a
  graph holding one over threads (``rows.py``). A collective whose inputs are all
  constants is still recorded by an enclosing ``jit`` (see :func:`bind_effect`), so it
  runs on every call, not only while tracing.

  Derivatives treat the job as one program whose output is the sum of every rank's
  output: the transpose of a sum-all-reduce is a sum-all-reduce, of a mean a mean, of a
  broadcast a sum sent back to the root, of an all-gather each rank's slice of a
  sum-all-reduce. Every rank runs the same rules in the same order, so the collectives
  in a backward pass match up across ranks.

* **Named-axis reductions** (``psum``, ``pmean``, ``pmax``, ``pmin``, ``all_gather``,
  ``axis_index``), JAX's ``lax`` collectives: inside ``vmap(f, axis_name=name)`` they
  reduce over the examples of that vmap; inside ``funcgrad.distributed.spmd(f,
  axis_name=name)`` over the processes. The innermost binding of a name wins.
"""
from __future__ import annotations

import threading

import numpy as np

from .. import batching as _batching
from .. import comm as _comm
from .. import core as _core
from ..core import Primitive, Tracer, bind, def_rules
from ..errors import FuncgradValueError

__all__ = ["all_gather", "all_reduce_leaves", "axis_index", "barrier", "bind_effect",
           "broadcast_leaves", "gather_leaves", "pmax", "pmean", "pmin", "psum"]

_OPS = ("sum", "mean", "max", "min")


def _fnp():
    return _core._np()


def bind_effect(prim, *args, **params):
    """``bind`` for an effectful primitive: with no tracer among the arguments, the
    innermost staging trace (``jit``/``make_graph``) still records it, so it runs on every
    call of the compiled function and keeps its place among the other effects."""
    for a in args:
        if isinstance(a, Tracer):
            return bind(prim, *args, **params)
    for t in reversed(_core._state.stack):
        if getattr(t, "stages", False):
            return t.process(prim, args, params)
    return prim.impl(*args, **params)


def _inexact(x):
    return np.dtype(x.dtype).kind in "fc"


def _scatter_back(n, idx, values):
    out = [None] * n
    for i, v in zip(idx, values):
        out[i] = v
    return out


# ---- all_reduce ------------------------------------------------------------------------------
def _all_reduce_impl(*leaves, op, paths):
    return _comm.reduce_leaves(list(leaves), op, paths)


all_reduce_p = Primitive("all_reduce", _all_reduce_impl, multiple_results=True)
all_reduce_p.effectful = True


def all_reduce_leaves(leaves, op="sum", paths=None):
    """All-reduce a flat list of arrays over the processes (one bucketed call)."""
    if op not in _OPS:
        raise FuncgradValueError(f"all_reduce: op must be one of {_OPS}, got {op!r}")
    paths = tuple(paths) if paths is not None else tuple(f"[{i}]" for i in range(len(leaves)))
    return bind_effect(all_reduce_p, *leaves, op=op, paths=paths)


def _extremum_weights(xs, outs):
    """Where each rank's value equals the reduced one: 1 there, else 0 (ties share)."""
    fnp = _fnp()
    return [fnp.astype(fnp.equal(x, o), x.dtype) for x, o in zip(xs, outs)]


def _all_reduce_jvp(primals, tangents, op, paths):
    out = bind_effect(all_reduce_p, *primals, op=op, paths=paths)
    idx = [i for i, x in enumerate(primals) if _inexact(x)]
    if all(tangents[i] is None for i in idx):
        return out, [None] * len(out)
    fnp = _fnp()
    ts = [tangents[i] if tangents[i] is not None else fnp.zeros_like(primals[i]) for i in idx]
    tp = tuple(paths[i] for i in idx)
    if op in ("sum", "mean"):
        touts = bind_effect(all_reduce_p, *ts, op=op, paths=tp)
    else:
        w = _extremum_weights([primals[i] for i in idx], [out[i] for i in idx])
        r = bind_effect(all_reduce_p, *[t * m for t, m in zip(ts, w)], *w, op="sum",
                        paths=tp + tuple(p + "<count>" for p in tp))
        touts = [r[k] / r[k + len(idx)] for k in range(len(idx))]
    return out, _scatter_back(len(out), idx, touts)


def _all_reduce_vjp(g, ans, args, wanted, op, paths):
    gs = [g[i] for i in wanted]
    wp = tuple(paths[i] for i in wanted)
    if op in ("sum", "mean"):
        return bind_effect(all_reduce_p, *gs, op=op, paths=wp)
    w = _extremum_weights([args[i] for i in wanted], [ans[i] for i in wanted])
    r = bind_effect(all_reduce_p, *gs, *w, op="sum", paths=wp + tuple(p + "<count>" for p in wp))
    n = len(gs)
    return [m * (r[k] / r[n + k]) for k, m in enumerate(w)]


def _same_dims_batch(prim):
    def rule(vals, dims, **params):
        return bind_effect(prim, *vals, **params), list(dims)
    return rule


def_rules(all_reduce_p, jvp=_all_reduce_jvp, vjp=_all_reduce_vjp, batch=_same_dims_batch(all_reduce_p))


# ---- broadcast -------------------------------------------------------------------------------
def _broadcast_impl(*leaves, root, paths):
    return _comm.broadcast_leaves(list(leaves), root, paths)


broadcast_p = Primitive("broadcast", _broadcast_impl, multiple_results=True)
broadcast_p.effectful = True


def broadcast_leaves(leaves, root=0, paths=None):
    """Rank ``root``'s leaves, on every rank."""
    paths = tuple(paths) if paths is not None else tuple(f"[{i}]" for i in range(len(leaves)))
    return bind_effect(broadcast_p, *leaves, root=int(root), paths=paths)


def _broadcast_jvp(primals, tangents, root, paths):
    out = bind_effect(broadcast_p, *primals, root=root, paths=paths)
    idx = [i for i, x in enumerate(primals) if _inexact(x)]
    if all(tangents[i] is None for i in idx):
        return out, [None] * len(out)
    fnp = _fnp()
    ts = [tangents[i] if tangents[i] is not None else fnp.zeros_like(primals[i]) for i in idx]
    touts = bind_effect(broadcast_p, *ts, root=root, paths=tuple(paths[i] for i in idx))
    return out, _scatter_back(len(out), idx, touts)


def _broadcast_vjp(g, ans, args, wanted, root, paths):
    s = bind_effect(all_reduce_p, *[g[i] for i in wanted], op="sum",
                    paths=tuple(paths[i] for i in wanted))
    if _comm.process_index() == root:
        return s
    fnp = _fnp()
    return [fnp.zeros_like(v) for v in s]


def_rules(broadcast_p, jvp=_broadcast_jvp, vjp=_broadcast_vjp, batch=_same_dims_batch(broadcast_p))


# ---- all_gather ------------------------------------------------------------------------------
def _all_gather_impl(*leaves, paths):
    return _comm.gather_leaves(list(leaves), paths)


all_gather_p = Primitive("all_gather", _all_gather_impl, multiple_results=True)
all_gather_p.effectful = True


def gather_leaves(leaves, paths=None):
    """Each leaf stacked over the processes on a new leading axis."""
    paths = tuple(paths) if paths is not None else tuple(f"[{i}]" for i in range(len(leaves)))
    return bind_effect(all_gather_p, *leaves, paths=paths)


def _all_gather_jvp(primals, tangents, paths):
    out = bind_effect(all_gather_p, *primals, paths=paths)
    idx = [i for i, x in enumerate(primals) if _inexact(x)]
    if all(tangents[i] is None for i in idx):
        return out, [None] * len(out)
    fnp = _fnp()
    ts = [tangents[i] if tangents[i] is not None else fnp.zeros_like(primals[i]) for i in idx]
    touts = bind_effect(all_gather_p, *ts, paths=tuple(paths[i] for i in idx))
    return out, _scatter_back(len(out), idx, touts)


def _all_gather_vjp(g, ans, args, wanted, paths):
    s = bind_effect(all_reduce_p, *[g[i] for i in wanted], op="sum",
                    paths=tuple(paths[i] for i in wanted))
    r = _comm.process_index()
    return [v[r] for v in s]


def _all_gather_batch(vals, dims, paths):
    out = bind_effect(all_gather_p, *vals, paths=paths)
    return out, [None if d is None else d + 1 for d in dims]


def_rules(all_gather_p, jvp=_all_gather_jvp, vjp=_all_gather_vjp, batch=_all_gather_batch)


# ---- barrier ---------------------------------------------------------------------------------
def _barrier_impl():
    _comm.barrier()
    return np.zeros((), np.int8)


barrier_p = Primitive("barrier", _barrier_impl)
barrier_p.effectful = True


def barrier():
    """Wait until every process has reached this point (recorded by ``jit`` too)."""
    bind_effect(barrier_p)


# ==============================================================================================
# Named axes: vmap's examples or the processes


class _ProcessAxes(threading.local):
    def __init__(self):
        self.bound = []          # (axis name, trace depth when bound)


_process_axes = _ProcessAxes()


class bind_process_axis:
    """Context manager: inside it, axis name ``name`` means "over the processes"."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        _process_axes.bound.append((self.name, _core.trace_depth()))
        return self

    def __exit__(self, *exc):
        _process_axes.bound.pop()
        return False


def _resolve(name, what):
    """("vmap", trace) or ("processes", None) for the innermost binding of ``name``."""
    stack = _core._state.stack
    for depth in range(len(stack) - 1, -1, -1):
        t = stack[depth]
        if getattr(t, "axis_name", None) == name:
            for pname, pdepth in reversed(_process_axes.bound):
                if pname == name and pdepth > depth:
                    return "processes", None
            return "vmap", t
    for pname, _ in reversed(_process_axes.bound):
        if pname == name:
            return "processes", None
    raise FuncgradValueError(
        f"{what}: unbound axis name {name!r}. Name an axis with "
        f"funcgrad.vmap(f, axis_name={name!r}) or, across processes, "
        f"funcgrad.distributed.spmd(f, axis_name={name!r}), and call {what} inside f")


def _names(axis_name):
    return tuple(axis_name) if isinstance(axis_name, (tuple, list)) else (axis_name,)


def _named_impl(kind):
    def impl(x, *, axis_name, axis_size):
        xp = _comm._backend.array_module(x)
        if kind == "sum":
            return x * x.dtype.type(axis_size) if x.dtype.kind != "b" else x.copy()
        if kind == "gather":
            return xp.ascontiguousarray(xp.broadcast_to(x, (axis_size,) + tuple(x.shape)))
        return x.copy()      # mean, max or min of equal values
    return impl


psum_p = Primitive("psum", _named_impl("sum"))
pmean_p = Primitive("pmean", _named_impl("mean"))
pmax_p = Primitive("pmax", _named_impl("max"))
pmin_p = Primitive("pmin", _named_impl("min"))
named_gather_p = Primitive("all_gather_named", _named_impl("gather"))


def _named_reduce(prim, x, axis_name, what, process_op):
    fnp = _fnp()
    x = fnp.asarray(x) if not isinstance(x, Tracer) else x
    for name in _names(axis_name):
        kind, trace = _resolve(name, what)
        if kind == "processes":
            x = all_reduce_leaves([x], process_op, paths=("",))[0]
        else:
            x = bind(prim, x, axis_name=name, axis_size=trace.axis_size)
    return x


def psum(x, axis_name):
    """The sum of ``x`` over the named axis (or tuple of axes), the same on every member.

    Example:
        >>> import numpy as np, funcgrad, funcgrad.lax as lax
        >>> funcgrad.vmap(lambda x: x / lax.psum(x, "i"), axis_name="i")(np.array([1., 3.]))
        array([0.25, 0.75])
    """
    return _named_reduce(psum_p, x, axis_name, "psum", "sum")


def pmean(x, axis_name):
    """The mean of ``x`` over the named axis (or axes)."""
    return _named_reduce(pmean_p, x, axis_name, "pmean", "mean")


def pmax(x, axis_name):
    """The maximum of ``x`` over the named axis (or axes)."""
    return _named_reduce(pmax_p, x, axis_name, "pmax", "max")


def pmin(x, axis_name):
    """The minimum of ``x`` over the named axis (or axes)."""
    return _named_reduce(pmin_p, x, axis_name, "pmin", "min")


def all_gather(x, axis_name):
    """Every member's ``x`` stacked on a new leading axis of the named axis's size."""
    fnp = _fnp()
    x = fnp.asarray(x) if not isinstance(x, Tracer) else x
    kind, trace = _resolve(axis_name, "all_gather")
    if kind == "processes":
        return gather_leaves([x], paths=("",))[0]
    return bind(named_gather_p, x, axis_name=axis_name, axis_size=trace.axis_size)


def axis_index(axis_name):
    """This member's position along the named axis (an int32 scalar per member)."""
    kind, trace = _resolve(axis_name, "axis_index")
    if kind == "processes":
        return np.asarray(_comm.process_index(), np.int32)
    return _batching.BatchTracer(trace, np.arange(trace.axis_size, dtype=np.int32), 0)


# ---- their rules -----------------------------------------------------------------------------
def _weights(x, ans):
    fnp = _fnp()
    return fnp.astype(fnp.equal(x, ans), x.dtype)


def _ext_jvp(prim):
    def rule(t, ans, x, *, axis_name, axis_size):
        w = _weights(x, ans)
        return (bind(psum_p, t * w, axis_name=axis_name, axis_size=axis_size)
                / bind(psum_p, w, axis_name=axis_name, axis_size=axis_size))
    return rule


def _ext_vjp(prim):
    def rule(g, ans, x, *, axis_name, axis_size):
        w = _weights(x, ans)
        return w * (bind(psum_p, g, axis_name=axis_name, axis_size=axis_size)
                    / bind(psum_p, w, axis_name=axis_name, axis_size=axis_size))
    return rule


def _self_linear(prim):
    return lambda t, ans, x, **p: bind(prim, t, **p)


def _gather_vjp(g, ans, x, *, axis_name, axis_size):
    s = bind(psum_p, g, axis_name=axis_name, axis_size=axis_size)
    return _fnp().take(s, axis_index(axis_name), axis=0)


# Batching: over another axis, a named reduction acts on each example alone; over its own
# axis (the vmap that bound the name), it reduces the batch dimension.
def _other_axis_batch(prim, shift=0):
    def rule(vals, dims, **params):
        (v,), (d,) = vals, dims
        return bind(prim, v, **params), d + shift
    return rule


for _p in (psum_p, pmean_p):
    def_rules(_p, jvp=(_self_linear(_p),), vjp=(_self_linear(_p),),
              batch=_other_axis_batch(_p))
for _p in (pmax_p, pmin_p):
    def_rules(_p, jvp=(_ext_jvp(_p),), vjp=(_ext_vjp(_p),), batch=_other_axis_batch(_p))
def_rules(named_gather_p, jvp=(_self_linear(named_gather_p),), vjp=(_gather_vjp,),
          batch=_other_axis_batch(named_gather_p, shift=1))


def _own_axis(reducer):
    def rule(v, d):
        return reducer(_batching.move_to_front(v, d)), None
    return rule


_batching.named_axis_rules.update({
    psum_p: _own_axis(lambda v: _fnp().sum(v, axis=0)),
    pmean_p: _own_axis(lambda v: _fnp().mean(v, axis=0)),
    pmax_p: _own_axis(lambda v: _fnp().max(v, axis=0)),
    pmin_p: _own_axis(lambda v: _fnp().min(v, axis=0)),
    named_gather_p: _own_axis(lambda v: v),
})
