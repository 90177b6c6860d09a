"""Batching (``vmap``) as an interpreter of primitives.

A ``BatchTracer`` holds a value with one extra dimension, ``bdim``, the batch axis (or
``None`` when the value is the same for every example). A primitive's batching rule
``batch(vals, dims, **params) -> (out, out_dim)`` computes the whole batch at once; a
primitive without one falls back to a loop over the examples and a stack (correct but
slow), with a warning once per primitive. ``fallback_primitives()`` lists those seen.

The generic rules below (broadcasting ops, reductions, ...) are attached to primitives in
the modules that define them, next to their other rules (``core.def_rules``).
"""
from __future__ import annotations

import warnings

import numpy as np

from .core import Trace, Tracer, bind, new_trace
from .core import _np
from .errors import ConcretizationTypeError, FuncgradTypeError, FuncgradValueError
from .tree_util import tree_flatten, tree_map, tree_unflatten


class BatchTracer(Tracer):
    __slots__ = ("val", "bdim")

    def __init__(self, trace, val, bdim):
        self._trace = trace
        self.val = val
        self.bdim = bdim

    @property
    def shape(self):
        s = tuple(self.val.shape)
        return s[:self.bdim] + s[self.bdim + 1:] if self.bdim is not None else s

    @property
    def dtype(self):
        return self.val.dtype

    def _value(self, what):
        raise ConcretizationTypeError(
            f"{what} needs a single concrete value, but under vmap this value differs per "
            "example (a batched tracer). Use funcgrad.numpy.where instead of Python "
            "control flow on batched values.")


# Rules of named-axis primitives (lax.psum, ...) for the vmap that bound their axis name:
# ``rule(val, bdim) -> (out, out_dim)``; filled by the module that defines them.
named_axis_rules = {}


class BatchTrace(Trace):
    transformation = "vmap"
    __slots__ = ("axis_size", "axis_name")

    def __init__(self, level, axis_size, axis_name=None):
        super().__init__(level)
        self.axis_size = axis_size
        self.axis_name = axis_name

    def process(self, prim, args, params):
        vals = []
        dims = []
        batched = False
        for a in args:
            if isinstance(a, BatchTracer) and a._trace is self:
                vals.append(a.val)
                dims.append(a.bdim)
                batched = batched or a.bdim is not None
            else:
                vals.append(a)
                dims.append(None)
        if not batched:
            return bind(prim, *vals, **params)
        if self.axis_name is not None and prim in named_axis_rules and \
                params.get("axis_name") == self.axis_name:
            out, out_dim = named_axis_rules[prim](vals[0], dims[0])
            return BatchTracer(self, out, out_dim)
        rule = prim.batch
        if rule is None:
            out, out_dim = _fallback(prim, vals, dims, params, self.axis_size)
        else:
            out, out_dim = rule(vals, dims, **params)
        if prim.multiple_results:
            return [BatchTracer(self, o, d) for o, d in zip(out, out_dim)]
        return BatchTracer(self, out, out_dim)

    def process_custom_jvp(self, obj, args):
        return self._process_custom(obj, args)

    def process_custom_vjp(self, obj, args):
        return self._process_custom(obj, args)

    def _process_custom(self, obj, args):
        """Pass a batched version of the custom function (rules included, built by
        ``obj.batched``) to the transformations below."""
        in_axes = []
        vals = []
        for a in args:
            leaves, tree = tree_flatten(a)
            v = [x.val if isinstance(x, BatchTracer) and x._trace is self else x for x in leaves]
            d = [x.bdim if isinstance(x, BatchTracer) and x._trace is self else None
                 for x in leaves]
            vals.append(tree_unflatten(tree, v))
            in_axes.append(tree_unflatten(tree, d) if leaves else None)
        in_axes = tuple(in_axes)
        if any(tree_flatten(in_axes[i], is_leaf=lambda x: x is None)[0]
               != [None] * len(tree_flatten(args[i])[0]) for i in obj.nondiff_argnums):
            raise FuncgradTypeError(
                f"vmap of {obj.__name__}: nondiff_argnums arguments cannot be batched")
        out = obj.batched(in_axes, self.axis_size)(*vals)
        return tree_map(lambda o: BatchTracer(self, o, 0), out)


_warned = set()


def fallback_primitives():
    """Names of the primitives that vmap has run by looping (no batching rule)."""
    return sorted(_warned)


def _fallback(prim, vals, dims, params, size):
    if prim.name not in _warned:
        _warned.add(prim.name)
        warnings.warn(
            f"vmap: primitive '{prim.name}' has no batching rule; falling back to a loop "
            f"over the {size} examples (correct but slow)", RuntimeWarning, stacklevel=4)
    fnp = _np()
    outs = []
    for i in range(size):
        sl = [index_along(v, d, i) for v, d in zip(vals, dims)]
        outs.append(bind(prim, *sl, **params))
    if prim.multiple_results:
        return [fnp.stack([o[k] for o in outs]) for k in range(len(outs[0]))], [0] * len(outs[0])
    return fnp.stack(outs), 0


def index_along(v, d, i):
    if d is None:
        return v
    return _np()._getitem(v, (slice(None),) * d + (i,))


def move_to_front(v, d):
    """The value with its batch axis first (unbatched values are returned unchanged)."""
    if d is None or d == 0:
        return v
    return _np().moveaxis(v, d, 0)


def bdim_size(vals, dims):
    for v, d in zip(vals, dims):
        if d is not None:
            return v.shape[d]
    raise AssertionError("no batched argument")


# ---- generic rules ------------------------------------------------------------------------
def broadcasting_batch(prim):
    """Rule for elementwise (broadcasting) primitives: batch axis first, and per-example
    ranks aligned by inserting length-1 axes after it."""
    def rule(vals, dims, **params):
        rank = 0
        for v, d in zip(vals, dims):
            if hasattr(v, "shape"):
                rank = max(rank, len(v.shape) - (d is not None))
        moved = []
        for v, d in zip(vals, dims):
            if d is None:
                moved.append(v)
                continue
            v = move_to_front(v, d)
            extra = rank - (len(v.shape) - 1)
            if extra:
                v = _np().reshape(v, (v.shape[0],) + (1,) * extra + tuple(v.shape[1:]))
            moved.append(v)
        return bind(prim, *moved, **params), 0
    return rule


def reduction_batch(prim):
    """Rule for reductions with an ``axis`` tuple (or int/None) and ``keepdims``."""
    def rule(vals, dims, axis, **params):
        (v,), (d,) = vals, dims
        v = move_to_front(v, d)
        if axis is None:
            v = _np().reshape(v, (v.shape[0], -1))
            new_axis = 1
        elif isinstance(axis, tuple):
            new_axis = tuple(a + 1 for a in axis)
        else:
            new_axis = axis + 1
        return bind(prim, v, axis=new_axis, **params), 0
    return rule


def unary_batch(prim):
    """Rule for primitives that act on each example independently of its shape."""
    def rule(vals, dims, **params):
        (v,), (d,) = vals, dims
        return bind(prim, v, **params), d
    return rule


# ---- vmap ---------------------------------------------------------------------------------
def vmap_flat(fun, args, in_dims, axis_size, axis_name=None):
    """Run ``fun`` on flat ``args`` batched along ``in_dims``; returns flat outputs with
    the trace, so the caller can read each output's batch axis."""
    with new_trace(BatchTrace, axis_size, axis_name) as trace:
        ins = [BatchTracer(trace, a, d) if d is not None else a for a, d in zip(args, in_dims)]
        outs = fun(*ins)
        return outs, trace


def check_sizes(args, in_dims, axis_size, what):
    sizes = {}
    for i, (a, d) in enumerate(zip(args, in_dims)):
        if d is None:
            continue
        shape = np.shape(a) if not hasattr(a, "shape") else a.shape
        if not -len(shape) <= d < len(shape):
            raise FuncgradValueError(
                f"{what}: in_axes {d} is out of range for argument leaf {i} of shape "
                f"{tuple(shape)}")
        sizes.setdefault(shape[d], []).append(i)
    if axis_size is not None:
        sizes.setdefault(axis_size, [])
    if len(sizes) > 1:
        desc = "; ".join(f"size {s} for leaves {v}" for s, v in sizes.items())
        raise FuncgradValueError(f"{what}: mapped axes have different sizes: {desc}")
    if not sizes:
        raise FuncgradValueError(
            f"{what}: no argument is mapped (all in_axes are None); pass axis_size=")
    return next(iter(sizes))
