"""The graph IR of jit: variables, literals, equations and graphs (with sub-graphs in
the parameters of control-flow equations), its checker and its reference evaluator.

A :class:`Graph` is first-order and in single-assignment form: inputs (``invars``),
constants (``consts``: ``(Var, value)`` pairs), equations ``outvars = prim(invars,
**params)`` in an order where every use follows its definition, and outputs. A
control-flow equation (``scan``, ``while``, ``cond``) holds its bodies as Graphs in its
params. :func:`check_graph` checks those invariants; :func:`eval_graph` runs a graph one
equation at a time through ``bind`` (so any transformation can interpret it), the
reference that every pass is tested against.
"""
from __future__ import annotations

import numpy as np

from .core import bind


class Var:
    """A graph variable: a name, a shape and a dtype. ``weak`` marks a Python scalar
    (and arithmetic on Python scalars only), which must not promote arrays."""

    __slots__ = ("name", "shape", "dtype", "deps", "weak")

    def __init__(self, name, shape, dtype, deps=frozenset(), weak=False):
        self.name = name
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.deps = deps   # indices of the graph inputs this variable depends on
        self.weak = weak

    def type_str(self):
        return f"{self.dtype.name}[{','.join(map(str, self.shape))}]"

    def __repr__(self):
        return f"{self.name}:{self.type_str()}"


class Literal:
    """A Python scalar written into the graph."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    @property
    def name(self):
        return repr(self.value)

    def __repr__(self):
        return repr(self.value)


class Eqn:
    __slots__ = ("prim", "invars", "params", "outvars")

    def __init__(self, prim, invars, params, outvars):
        self.prim = prim
        self.invars = invars
        self.params = params
        self.outvars = outvars

    def __repr__(self):
        outs = " ".join(repr(v) for v in self.outvars)
        params = "".join(f" {k}={_short(v)}" for k, v in self.params.items())
        ins = " ".join(_show(v) for v in self.invars)
        return f"{outs} = {self.prim.name}{params} {ins}"


def _show(v):
    """An operand as printed: a variable's name, a literal as a plain number (``-1.0``,
    not ``np.float64(-1.0)``)."""
    if v is None:
        return "None"
    if isinstance(v, Literal) and isinstance(v.value, np.generic):
        return repr(v.value.item())
    return v.name


def _short(v):
    if isinstance(v, np.dtype):
        return v.name
    if isinstance(v, Graph):           # a sub-graph: its own block, indented
        return "{\n" + "\n".join("      " + line for line in str(v).split("\n")) + "\n    }"
    if isinstance(v, tuple) and v and all(isinstance(w, Graph) for w in v):
        return "(" + ", ".join(_short(w) for w in v) + ")"
    return repr(v)


class Graph:
    """A traced function: inputs, constants, equations and outputs.

    ``str(graph)`` pretty-prints it; ``graph.to_dot()`` returns Graphviz source with
    operators as boxes and variables as ellipses (render with :func:`render_graph`).
    """

    def __init__(self, invars, consts, eqns, outvars, in_tree=None, out_tree=None,
                 arg_names=None):
        self.invars = invars
        self.consts = consts          # list of (Var, value)
        self.eqns = eqns
        self.outvars = outvars        # Var, Literal or None entries
        self.in_tree = in_tree
        self.out_tree = out_tree
        self.arg_names = arg_names

    def __str__(self):
        lines = ["graph(" + ", ".join(repr(v) for v in self.invars) + "):"]
        for v, x in self.consts:
            # a one-element constant (a cotangent seed, a scale) shows its value
            value = f" = {np.asarray(x).item()!r}" if np.size(x) == 1 and isinstance(
                x, (np.ndarray, np.generic)) else ""
            lines.append(f"  const {v!r}{value}")
        for e in self.eqns:
            lines.append(f"  {e!r}")
        lines.append("  return (" + ", ".join(
            v.name if v is not None else "None" for v in self.outvars) + ")")
        return "\n".join(lines)

    __repr__ = __str__

    def to_dot(self):
        """Graphviz source: variables are ellipses, operators are boxes."""
        out = ["digraph funcgrad {", "  rankdir=TB;", '  node [fontname="Helvetica"];']
        seen = set()

        def var_node(v, style=""):
            if v is None or v.name in seen:
                return
            seen.add(v.name)
            label = f"{v.name}\\n{v.type_str()}" if isinstance(v, Var) else v.name
            out.append(f'  "{v.name}" [shape=ellipse, label="{label}"{style}];')

        for v in self.invars:
            var_node(v, ", style=filled, fillcolor=lightblue")
        for v, _ in self.consts:
            var_node(v, ", style=filled, fillcolor=lightgrey")
        for k, e in enumerate(self.eqns):
            op = f"op{k}"
            out.append(f'  "{op}" [shape=box, style=filled, fillcolor=khaki, label="{e.prim.name}"];')
            for v in e.invars:
                if v is None:
                    continue
                var_node(v)
                out.append(f'  "{v.name}" -> "{op}";')
            for v in e.outvars:
                var_node(v)
                out.append(f'  "{op}" -> "{v.name}";')
        for v in self.outvars:
            if isinstance(v, Var):
                out.append(f'  "{v.name}" [peripheries=2];')
        out.append("}")
        return "\n".join(out)

    def count(self):
        return len(self.eqns)



# --------------------------------------------------------------------------------------
# The checker

# Per control-flow primitive: ``rule(eqn) -> list of problems`` comparing its sub-graphs'
# signatures with its inputs and outputs. Filled by the primitives (prims/control_flow.py).
subgraph_checks = {}


class GraphError(AssertionError):
    """A graph breaks an invariant of the IR (a bug in a pass or a rule)."""


def _subgraphs(params):
    for v in params.values():
        if isinstance(v, Graph):
            yield v
        elif isinstance(v, tuple):
            for w in v:
                if isinstance(w, Graph):
                    yield w


def check_graph(graph, where="graph"):
    """Raise :class:`GraphError` unless ``graph`` is well formed: every variable is
    assigned once (inputs, constants, equation outputs), every use comes after its
    definition and names a variable of the defined shape and dtype, multiple-result
    primitives and single-result ones have matching output counts, constants have the
    shape and dtype of their variable, and each sub-graph is itself well formed with a
    signature that fits its equation. Returns ``graph``.

    Example:
        >>> import numpy as np, funcgrad, funcgrad.numpy as fnp
        >>> from funcgrad._src.ir import check_graph
        >>> g = check_graph(funcgrad.make_graph(lambda x: fnp.sin(x) * 2)(np.ones(3)))
    """
    problems = []
    defined = {}

    def define(v, what):
        if v.name in defined:
            problems.append(f"{v.name} is assigned twice ({what})")
        defined[v.name] = v

    def use(v, what):
        if v is None or isinstance(v, Literal):
            return
        d = defined.get(v.name)
        if d is None:
            problems.append(f"{what} uses {v.name}, which is not defined before")
        elif d.shape != v.shape or d.dtype != v.dtype:
            problems.append(f"{what} uses {v.name} as {v.type_str()} but it is defined "
                            f"as {d.type_str()}")

    for v in graph.invars:
        define(v, "an input")
    for v, x in graph.consts:
        define(v, "a constant")
        if tuple(np.shape(x)) != v.shape or np.dtype(getattr(x, "dtype", None)
                                                      or np.asarray(x).dtype) != v.dtype:
            problems.append(f"constant {v.name} is declared {v.type_str()} but holds "
                            f"{np.asarray(x).dtype.name}{list(np.shape(x))}")
    for k, e in enumerate(graph.eqns):
        what = f"equation {k} ({e.prim.name})"
        for v in e.invars:
            use(v, what)
        if not e.prim.multiple_results and len(e.outvars) != 1:
            problems.append(f"{what} has {len(e.outvars)} outputs but its primitive has one")
        for v in e.outvars:
            define(v, what)
        for j, sub in enumerate(_subgraphs(e.params)):
            try:
                check_graph(sub, f"{where}: {what}, sub-graph {j}")
            except GraphError as err:
                problems.append(str(err))
        rule = subgraph_checks.get(e.prim)
        if rule is not None:
            problems.extend(f"{what}: {p}" for p in rule(e))
    for v in graph.outvars:
        use(v, "the outputs")
    if problems:
        raise GraphError(f"{where} is malformed:\n  " + "\n  ".join(problems))
    return graph


def signature_problems(what, vars_, types):
    """Problems where the variables ``vars_`` do not have the ``(shape, dtype)`` of
    ``types`` (for the sub-graph checks)."""
    if len(vars_) != len(types):
        return [f"{what}: {len(vars_)} variables for {len(types)} values"]
    return [f"{what} {k}: {v.type_str()} where {np.dtype(d).name}{list(s)} is expected"
            for k, (v, (s, d)) in enumerate(zip(vars_, types))
            if isinstance(v, Var) and (v.shape != tuple(s) or v.dtype != np.dtype(d))]


# --------------------------------------------------------------------------------------
# The reference evaluator and small helpers


def eval_graph(graph, *args):
    """Evaluate ``graph`` on ``args`` one equation at a time through :func:`bind`: the
    reference evaluator, which also lets any transformation interpret a sub-graph."""
    env = {}
    for v, a in zip(graph.invars, args):
        env[v.name] = a
    for v, x in graph.consts:
        env[v.name] = x

    def read(v):
        if v is None:
            return None
        if isinstance(v, Literal):
            return v.value
        return env[v.name]

    for e in graph.eqns:
        out = bind(e.prim, *[read(v) for v in e.invars], **e.params)
        if e.prim.multiple_results:
            for v, o in zip(e.outvars, out):
                env[v.name] = o
        else:
            env[e.outvars[0].name] = out
    return [read(v) for v in graph.outvars]


def prune_graph(graph):
    """``graph`` without the equations whose results no output needs (effects kept)."""
    live = {v.name for v in graph.outvars if isinstance(v, Var)}
    kept = []
    for e in reversed(graph.eqns):
        if e.prim.effectful or any(o.name in live for o in e.outvars):
            kept.append(e)
            live.update(v.name for v in e.invars if isinstance(v, Var))
    kept.reverse()
    return Graph(graph.invars, [(v, x) for v, x in graph.consts if v.name in live], kept,
                 graph.outvars, graph.in_tree, graph.out_tree, graph.arg_names)


# Rules that drop unused outputs of an equation (a scan's unused ys or history), for
# dead-code elimination: ``rule(eqn, used) -> Eqn`` whose outvars are those of ``eqn``
# marked in ``used`` (a list of booleans, one per output). Filled by the primitives.
dead_output_rules = {}


