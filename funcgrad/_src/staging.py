"""Staging: trace a function to a graph (``make_graph``) and replay it fast (``jit``).

The graph is a small typed first-order IR: variables with shape and dtype, and equations
``outs = primitive(ins, **params)``. Tracing runs the function once on the real inputs
with ``GraphTracer``s in place of arrays, so every shape and dtype comes from the
primitive's own implementation (no separate shape rules to drift), operations on
constants are folded on the spot, and the first call's results come straight from the
trace. Values are *abstract* to the user's code: branching on one raises an error that
names the argument it depends on and explains ``static_argnums``.

``jit`` (compiler.py) then simplifies the graph and generates code for it.
"""
from __future__ import annotations

import collections
import functools
import inspect
import itertools
import re

import numpy as np

from .backend import array_module, dtype_name
from .core import Trace, Tracer, bind, int_cast_primitive, new_trace
from .errors import ConcretizationTypeError
from .ir import (Eqn, Graph, Literal, Var, dead_output_rules, eval_graph,  # noqa: F401
                 prune_graph)  # (re-exported: the IR lives in ir.py)
from .tree_util import tree_flatten, tree_unflatten


def render_graph(graph, path, format="svg"):
    """Render ``graph.to_dot()`` to ``path`` (SVG or PNG) with the ``graphviz`` package.

    Raises ImportError naming the package when it is not installed.
    """
    try:
        import graphviz   # optional: only render_graph needs it
    except ImportError:  # pragma: no cover - optional
        raise ImportError(
            "render_graph needs the 'graphviz' Python package and the Graphviz binaries "
            "(pip install graphviz; apt-get install graphviz); graph.to_dot() gives the "
            "source without them") from None
    src = graphviz.Source(graph.to_dot())
    base = path[: -len(format) - 1] if path.endswith("." + format) else path
    return src.render(base, format=format, cleanup=True)


# --------------------------------------------------------------------------------------
# Tracing


class GraphTracer(Tracer):
    # the graph variable is ``graph_var``, not ``var``: a slot of that name would hide
    # the ``var`` method every Tracer has (``x.var(axis=0)`` inside jit)
    __slots__ = ("graph_var", "aval")

    def __init__(self, trace, var, aval):
        self._trace = trace
        self.graph_var = var
        self.aval = aval      # the value on the tracing inputs: used for shapes only

    @property
    def shape(self):
        return self.graph_var.shape

    @property
    def dtype(self):
        return self.graph_var.dtype

    @property
    def weak(self):
        return self.graph_var.weak

    def _value(self, what):
        trace = self._trace
        names = trace.describe_deps(self.graph_var.deps)
        raise ConcretizationTypeError(
            f"{what} on a traced value inside jit: the value {dtype_name(self)} depends on "
            f"{names}, which jit treats as abstract (only its shape and dtype are known "
            "while tracing). Mark that argument static with static_argnums=/"
            "static_argnames= (jit then recompiles for each new value)"
            + (": sizes must be known while tracing." if what.startswith("using it as")
               else ", or express the choice with funcgrad.numpy.where."))


_WEAK = (int, float, complex)
_INT = np.dtype(np.int64)


class GraphTrace(Trace):
    transformation = "jit/make_graph"
    __slots__ = ("eqns", "consts", "const_ids", "counter", "arg_names", "outer")
    stages = True       # records effectful primitives even on constant inputs (bind_effect)

    def __init__(self, level, arg_names=()):
        super().__init__(level)
        self.outer = False
        self.eqns = []
        self.consts = []
        self.const_ids = {}
        self.counter = itertools.count()
        self.arg_names = arg_names

    def new_var(self, shape, dtype, deps=frozenset()):
        return Var(_name(next(self.counter)), shape, dtype, deps)

    def describe_deps(self, deps):
        if not deps:
            return "no argument"
        names = sorted({self.arg_names[i] if i < len(self.arg_names) else f"input {i}"
                        for i in deps})
        return ", ".join(names)

    def new_input(self, value, k):
        v = self.new_var(np.shape(value), _dtype_of(value), frozenset([k]))
        v.weak = type(value) in _WEAK or type(value) is bool
        if isinstance(value, Tracer):
            self.bottom = False
        return GraphTracer(self, v, value)

    def const(self, x):
        if x is None or isinstance(x, (bool, int, float, complex)):
            return Literal(x)
        key = id(x)
        hit = self.const_ids.get(key)
        if hit is not None:
            return hit[0]
        v = self.new_var(np.shape(x), _dtype_of(x))
        self.const_ids[key] = (v, x)      # keeps x alive while tracing
        self.consts.append((v, x))
        return v

    def _python_int(self, a):
        """A weak bool (a Python bool, or one traced by jit: a comparison of Python
        numbers) as the Python int its arithmetic reads it as."""
        if not isinstance(a, GraphTracer):
            return int(a)
        v = a.graph_var
        out = self.new_var((), _INT, v.deps)
        out.weak = True
        self.eqns.append(Eqn(int_cast_primitive(), [v], {"dtype": _INT}, [out]))
        return GraphTracer(self, out, int(a.aval))

    def _python_bools(self, args):
        """Whether ``args`` are weak (Python numbers, traced or not) with a bool among
        them: Python's arithmetic reads the bools as ints."""
        has_bool = False
        for a in args:
            if isinstance(a, GraphTracer) and a._trace is self:
                if not a.graph_var.weak:
                    return False
                has_bool = has_bool or a.graph_var.dtype.kind == "b"
            elif type(a) is bool:
                has_bool = True
            elif type(a) not in _WEAK:
                return False
        return has_bool

    def process(self, prim, args, params):
        if prim.bools_as_ints and self._python_bools(args):
            args = [self._python_int(a) if type(a) is bool or (
                isinstance(a, GraphTracer) and a.graph_var.dtype.kind == "b") else a
                for a in args]
        vals = []
        invars = []
        deps = frozenset()
        weak = True
        for a in args:
            if isinstance(a, GraphTracer) and a._trace is self:
                vals.append(a.aval)
                invars.append(a.graph_var)
                deps = deps | a.graph_var.deps
                weak = weak and a.graph_var.weak
            else:
                if isinstance(a, Tracer):
                    self.outer = True     # a closure over another transformation's value
                vals.append(a)
                invars.append(self.const(a))
                weak = weak and (type(a) in _WEAK or type(a) is bool)
        with np.errstate(all="ignore"):
            out = bind(prim, *vals, **params) if not self.bottom else prim.impl(*vals, **params)
        if (weak and prim.python_operator and not prim.multiple_results
                and (isinstance(out, np.generic) or type(out) in _WEAK)):
            # Python's arithmetic on Python scalars stays a (weakly typed) Python scalar;
            # NumPy's functions of them give NumPy scalars (np.sin(2.0): a float64)
            out = out.item() if isinstance(out, np.generic) else out
            outvar = self.new_var((), _dtype_of(np.asarray(out)), deps)
            outvar.weak = True
            self.eqns.append(Eqn(prim, invars, params, [outvar]))
            return GraphTracer(self, outvar, out)
        if prim.multiple_results:
            outvars = [self.new_var(np.shape(o), _dtype_of(o), deps) for o in out]
            self.eqns.append(Eqn(prim, invars, params, outvars))
            return [GraphTracer(self, v, o) for v, o in zip(outvars, out)]
        outvar = self.new_var(np.shape(out), _dtype_of(out), deps)
        self.eqns.append(Eqn(prim, invars, params, [outvar]))
        return GraphTracer(self, outvar, out)


def _dtype_of(x):
    d = getattr(x, "dtype", None)
    return d if d is not None else np.asarray(x).dtype


def _name(k):
    letters = "abcdefghijklmnopqrstuvwxyz"
    s = ""
    k += 1
    while k:
        k, r = divmod(k - 1, 26)
        s = letters[r] + s
    return s


def _arg_names(fun, n):
    try:
        params = [p.name for p in inspect.signature(fun).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    return [f"argument {params[i]!r}" if i < len(params) else f"argument {i}" for i in range(n)]


def trace_to_graph(fun, args, kwargs, static_argnums=(), static_argnames=()):
    """Trace ``fun(*args, **kwargs)``; returns ``(graph, outputs of the tracing call)``."""
    dyn_args = [a for i, a in enumerate(args) if i not in static_argnums]
    dyn_kwargs = {k: v for k, v in kwargs.items() if k not in static_argnames}
    flat, in_tree = tree_flatten((dyn_args, dyn_kwargs))
    names = _arg_names(fun, len(args))
    dyn_names = [n for i, n in enumerate(names) if i not in static_argnums]
    leaf_names = []
    for (a, n) in zip(dyn_args, dyn_names):
        leaf_names.extend([n] * len(tree_flatten(a)[0]))
    for k, v in sorted(dyn_kwargs.items()):
        leaf_names.extend([f"argument {k!r}"] * len(tree_flatten(v)[0]))
    with new_trace(GraphTrace, leaf_names) as trace:
        ins = [trace.new_input(x, k) for k, x in enumerate(flat)]
        d_args, d_kwargs = tree_unflatten(in_tree, ins)
        it = iter(d_args)
        full = [a if i in static_argnums else next(it) for i, a in enumerate(args)]
        out = fun(*full, **{**kwargs, **d_kwargs})
        out_flat, out_tree = tree_flatten(out)
        outvars = []
        values = []
        for o in out_flat:
            if isinstance(o, GraphTracer) and o._trace is trace:
                outvars.append(o.graph_var)
                values.append(o.aval)
            else:
                if isinstance(o, Tracer):
                    trace.outer = True
                outvars.append(trace.const(o) if o is not None else None)
                values.append(o)
    graph = Graph([t.graph_var for t in ins], trace.consts, trace.eqns, outvars, in_tree,
                  out_tree, leaf_names)
    graph.uses_outer_values = trace.outer
    return graph, tree_unflatten(out_tree, values)


def make_graph(fun, static_argnums=(), static_argnames=()):
    """``make_graph(f)(*args)`` returns the :class:`Graph` of ``f`` at these arguments.

    Example:
        >>> import numpy as np, funcgrad, funcgrad.numpy as fnp
        >>> print(funcgrad.make_graph(lambda x: fnp.sin(x) * 2.0)(np.ones(3)))
        graph(x:float64[3]):
          a:float64[3] = sin x
          b:float64[3] = multiply a 2.0
          return (b)
    """
    static_argnums = _norm_static(static_argnums)

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        return _readable(
            trace_to_graph(fun, args, kwargs, static_argnums, tuple(static_argnames))[0])

    return wrapped


def _readable(graph):
    """The graph as people read it: inputs named after the function's parameters
    (``x1``, ``x2``; ``params_0``, ``params_1``... for the leaves of a pytree argument),
    and without the operations whose results nothing uses (the forward values that a
    gradient does not need)."""
    live = {v.name for v in graph.outvars if isinstance(v, Var)}
    kept = []
    for e in reversed(graph.eqns):
        if getattr(e.prim, "effectful", False) or any(o.name in live for o in e.outvars):
            kept.append(e)
            live.update(v.name for v in e.invars if isinstance(v, Var))
    kept.reverse()
    consts = [(v, x) for v, x in graph.consts if v.name in live]
    bases = []
    for k, n in enumerate(graph.arg_names or ()):
        m = re.fullmatch(r"argument '(\w+)'", n)
        bases.append(m.group(1) if m else f"arg{n.rsplit(' ', 1)[-1]}" if n.startswith(
            "argument ") else f"in{k}")
    bases += [f"in{k}" for k in range(len(bases), len(graph.invars))]
    total = collections.Counter(bases)
    used = collections.Counter()
    for v, b in zip(graph.invars, bases):
        v.name = b if total[b] == 1 else f"{b}_{used[b]}"
        used[b] += 1
    taken = {v.name for v in graph.invars}
    counter = itertools.count()
    for v in [v for v, _ in consts] + [o for e in kept for o in e.outvars]:
        name = _name(next(counter))
        while name in taken:
            name = _name(next(counter))
        v.name = name
    out = Graph(graph.invars, consts, kept, graph.outvars, graph.in_tree, graph.out_tree,
                graph.arg_names)
    out.uses_outer_values = getattr(graph, "uses_outer_values", False)
    return out


def _norm_static(s):
    return (s,) if isinstance(s, int) else tuple(s)


# --------------------------------------------------------------------------------------
# Sub-graphs: the bodies of control-flow primitives (prims/control_flow.py)


def example_value(x):
    """A concrete value with ``x``'s per-example shape and dtype: the value under a
    tracer (a jit tracer's tracing value, a jvp/vjp primal, one example of a vmap batch).
    Sub-graphs are traced on these, like jit traces on the real inputs."""
    while isinstance(x, Tracer):
        if isinstance(x, GraphTracer):
            x = x.aval
        elif hasattr(x, "primal"):
            x = x.primal
        elif hasattr(x, "bdim"):
            d = x.bdim
            x = example_value(x.val)
            if d is not None:
                x = x[(slice(None),) * d + (0,)] if x.shape[d] else \
                    array_module(x).zeros(x.shape[:d] + x.shape[d + 1:], x.dtype)
        else:                                   # pragma: no cover - unknown tracer
            x = x._concrete("tracing a control-flow body")
    return x


class NotStageable(Exception):
    """Raised while tracing a sub-graph that calls a custom_jvp/custom_vjp function: its
    rule cannot be kept in a sub-graph yet, so the caller runs the body another way."""


class SubGraphTrace(GraphTrace):
    """Traces the body of a control-flow primitive. Values of enclosing transformations
    that the body closes over become extra inputs of the sub-graph (``lifted``), passed
    to the primitive explicitly, so that the enclosing transformations see them."""

    __slots__ = ("lifted",)

    def __init__(self, level, arg_names=()):
        super().__init__(level, arg_names)
        self.lifted = {}          # id(tracer) -> (Var, tracer)

    def process_custom_jvp(self, obj, args):
        raise NotStageable(obj)

    def process_custom_vjp(self, obj, args):
        raise NotStageable(obj)

    def lift(self, t):
        hit = self.lifted.get(id(t))
        if hit is None:
            hit = self.lifted[id(t)] = (self.new_var(t.shape, t.dtype), t)
        return hit[0]

    def process(self, prim, args, params):
        vals = []
        invars = []
        deps = frozenset()
        for a in args:
            if isinstance(a, GraphTracer) and a._trace is self:
                vals.append(a.aval)
                invars.append(a.graph_var)
                deps = deps | a.graph_var.deps
            elif isinstance(a, Tracer):
                vals.append(example_value(a))
                invars.append(self.lift(a))
            else:
                vals.append(a)
                invars.append(self.const(a))
        with np.errstate(all="ignore"):
            out = prim.impl(*vals, **params)
        if prim.multiple_results:
            outvars = [self.new_var(np.shape(o), _dtype_of(o), deps) for o in out]
            self.eqns.append(Eqn(prim, invars, params, outvars))
            return [GraphTracer(self, v, o) for v, o in zip(outvars, out)]
        outvar = self.new_var(np.shape(out), _dtype_of(out), deps)
        self.eqns.append(Eqn(prim, invars, params, [outvar]))
        return GraphTracer(self, outvar, out)


def trace_subgraph(fun, examples, names=None):
    """Trace ``fun(*flat_inputs) -> flat list of outputs`` on concrete ``examples``.

    Returns ``(graph, lifted)``: ``graph.invars`` are the lifted values of enclosing
    transformations (``lifted``, tracers to pass in front of the inputs) followed by the
    inputs; every output is a variable (Python scalars become constants)."""
    with new_trace(SubGraphTrace, names or ()) as trace:
        ins = []
        for k, x in enumerate(examples):
            v = trace.new_var(np.shape(x), _dtype_of(x), frozenset([k]))
            ins.append(GraphTracer(trace, v, x))
        outs = fun(*ins)
        outvars = []
        for o in outs:
            if isinstance(o, GraphTracer) and o._trace is trace:
                outvars.append(o.graph_var)
            elif isinstance(o, Tracer):
                outvars.append(trace.lift(o))
            else:
                if type(o) in _WEAK or isinstance(o, (bool, np.generic)):
                    o = np.asarray(o)
                outvars.append(trace.const(o))
    lifted = list(trace.lifted.values())
    graph = Graph([v for v, _ in lifted] + [t.graph_var for t in ins], trace.consts, trace.eqns,
                  outvars)
    return graph, [t for _, t in lifted]


_graph_compiler = None      # set by compiler.py: graph -> fast callable (code generation)


def register_graph_compiler(fn):
    """Called once by the compiler: how sub-graphs of control-flow primitives are run on
    concrete values (generated code instead of :func:`eval_graph`)."""
    global _graph_compiler
    _graph_compiler = fn


def graph_runner(graph, host=False):
    """A callable running ``graph`` on concrete arrays (compiled once per graph).
    ``host=True`` promises NumPy values only (see ``compile_graph``)."""
    attr = "_runner_host" if host else "_runner"
    run = graph.__dict__.get(attr)
    if run is None:
        run = (_graph_compiler(graph, host) if _graph_compiler is not None
               else functools.partial(eval_graph, graph))
        setattr(graph, attr, run)
    return run
