"""jit: a small compiler over the graphs of staging.py.

``jit`` traces a function to a ``Graph`` (once per input shapes, dtypes and static
arguments), runs the passes of :data:`PASSES` on it (calls inlined, no-op reshapes and
casts, common subexpressions, scalar factors folded into neighbouring products, dead
code), then the backend stages of :data:`LOWERING` (on CuPy, runs of elementwise
equations fused into single kernels; on the host, a graph over a batch split to run on
slices of the batch, one per thread: rows.py), and generates straight-line Python code
for the result, reusing dead temporaries as ``out=`` buffers of elementwise ufuncs.
Passes recognise primitives by their properties (``core.Primitive``), never by name.
"""
from __future__ import annotations

import collections
import functools
import inspect
import itertools
import math

import numpy as np

from . import backend as _backend
from . import config as _config
from . import core as _core
from . import rows as _rows
from . import threads as _threads
from .core import Tracer, bind
from .prims import control_flow as _cf
from .errors import FuncgradTypeError, FuncgradValueError
from . import ir as _ir
from . import numba_backend as _numba
from . import numba_loops as _numba_loops  # noqa: F401 - registers its hooks
from . import cupy_kernels as _cupy_kernels
from .fusion import Kernel as _Kernel, elementwise_runs, group_io, last_uses as _last_uses
from .fusion import replace_groups
from . import staging as _staging
from .staging import Eqn, Graph, Literal, Var, _norm_static, trace_to_graph
from .tree_util import tree_flatten, tree_unflatten


# --------------------------------------------------------------------------------------
# Simplification


def _rebuilt(graph, eqns, outvars, consts=None):
    return Graph(graph.invars, graph.consts if consts is None else consts, eqns, outvars,
                 graph.in_tree, graph.out_tree, graph.arg_names)


def _aliasing(alias):
    def res(v):
        while isinstance(v, Var) and v.name in alias:
            v = alias[v.name]
        return v
    return res


def inline_calls(graph):
    """Pass: the body of each call equation (a primitive with the ``inline`` property:
    a jitted function called inside this one) written in place, so the later passes see
    across the call."""
    if not any(e.prim.inline is not None for e in graph.eqns):
        return graph
    counter = itertools.count()
    alias = {}
    res = _aliasing(alias)
    consts = list(graph.consts)
    eqns = []
    work = list(graph.eqns)
    work.reverse()
    while work:
        e = work.pop()
        invars = [res(v) for v in e.invars]
        if e.prim.inline is None:
            eqns.append(Eqn(e.prim, invars, e.params, e.outvars))
            continue
        sub = e.prim.inline(e.params)
        n = next(counter)
        env = {v.name: x for v, x in zip(sub.invars, invars)}

        def fresh(v):
            w = Var(f"{v.name}_i{n}", v.shape, v.dtype, v.deps, v.weak)
            env[v.name] = w
            return w
        for v, x in sub.consts:
            consts.append((fresh(v), x))

        def get(v):
            return env[v.name] if isinstance(v, Var) else v
        inner = [Eqn(f.prim, [get(v) for v in f.invars], f.params,
                     [fresh(o) for o in f.outvars]) for f in sub.eqns]
        for o, v in zip(e.outvars, sub.outvars):
            alias[o.name] = get(v)
        work.extend(reversed(inner))
    return _rebuilt(graph, eqns, [res(v) for v in graph.outvars], consts)


def remove_noops(graph):
    """Pass: drop equations that return their operand unchanged (the primitive's
    ``is_noop`` property says when: a reshape, broadcast, cast or transpose that changes
    nothing); their uses read the operand."""
    alias = {}
    res = _aliasing(alias)
    eqns = []
    for e in graph.eqns:
        invars = [res(v) for v in e.invars]
        noop = e.prim.is_noop
        if (noop is not None and not e.prim.multiple_results and invars
                and isinstance(invars[0], Var) and noop(invars, e.outvars, e.params)):
            alias[e.outvars[0].name] = invars[0]
            continue
        eqns.append(Eqn(e.prim, invars, e.params, e.outvars))
    return _rebuilt(graph, eqns, [res(v) for v in graph.outvars])


def cse(graph):
    """Pass: common subexpressions: an equation equal to an earlier one (same primitive,
    inputs and parameters, the two inputs in either order for a ``commutative`` one;
    effects excepted) is replaced by the earlier one's results."""
    alias = {}
    res = _aliasing(alias)
    seen = {}
    eqns = []
    for e in graph.eqns:
        invars = [res(v) for v in e.invars]
        key = None
        if not e.prim.effectful:
            try:
                ins = tuple(_operand_key(v) for v in invars)
                if e.prim.commutative and len(ins) == 2:
                    ins = tuple(sorted(ins, key=repr))
                key = (e.prim, ins, tuple(sorted(e.params.items())))
                hash(key)
            except TypeError:
                key = None
        if key is not None and key in seen:
            for o, prev in zip(e.outvars, seen[key].outvars):
                alias[o.name] = prev
            continue
        ne = Eqn(e.prim, invars, e.params, e.outvars)
        if key is not None:
            seen[key] = ne
        eqns.append(ne)
    return _rebuilt(graph, eqns, [res(v) for v in graph.outvars])


def _operand_key(v):
    """An operand as part of a CSE key: a variable by name, a literal by type and value."""
    if v is None:
        return None
    if isinstance(v, Var):
        return v.name
    return ("lit", type(v.value), repr(v.value))


def scalar_consts(graph):
    """Pass: a constant that is one number broadcast (a stride-0 NumPy view: the
    cotangent seed of a ``mean`` or a ``sum`` under ``grad``) read by an ``elementwise``
    equation whose other operand already has the output's shape and dtype becomes that
    number, a literal: one array read less, and :func:`fold_scales` can fold it (the
    gradient of ``mean(x**2)`` is then one product, ``x * (2/n)``, not two passes)."""
    uniform = {}
    for v, x in graph.consts:
        if (type(x) is np.ndarray and x.size > 1 and x.dtype.kind == "f"
                and not any(x.strides)):
            val = x.reshape(-1)[0].item()
            if math.isfinite(val):
                uniform[v.name] = val
    if not uniform:
        return graph
    eqns = []
    for e in graph.eqns:
        if e.prim.elementwise and len(e.invars) == 2 and len(e.outvars) == 1:
            o, ins = e.outvars[0], list(e.invars)
            for k in (0, 1):
                x, other = ins[k], ins[1 - k]
                if (isinstance(x, Var) and x.name in uniform and isinstance(other, Var)
                        and not other.weak and other.shape == o.shape
                        and other.dtype == o.dtype):
                    ins[k] = Literal(uniform[x.name])
                    e = Eqn(e.prim, ins, e.params, e.outvars)
                    break
        eqns.append(e)
    return _rebuilt(graph, eqns, graph.outvars)


def fold_scales(graph):
    """Pass: negations and scalar factors folded into neighbouring products (see
    :func:`_fold_scales`)."""
    eqns, outvars = _fold_scales(graph.eqns, graph.outvars)
    return _rebuilt(graph, eqns, outvars)


def dead_code(graph):
    """Pass: equations no output needs are removed (effects are kept); so are the unused
    outputs of equations that have a rule for it (a scan's unused ys and history), and
    unused constants."""
    live = {v.name for v in graph.outvars if isinstance(v, Var)}
    kept = []
    for e in reversed(graph.eqns):
        if e.prim.effectful or any(o.name in live for o in e.outvars):
            rule = _staging.dead_output_rules.get(e.prim)
            if rule is not None and not all(o.name in live for o in e.outvars):
                e = rule(e, [o.name in live for o in e.outvars])
            kept.append(e)
            live.update(v.name for v in e.invars if isinstance(v, Var))
    kept.reverse()
    consts = [(v, x) for v, x in graph.consts if v.name in live]
    return _rebuilt(graph, kept, graph.outvars, consts)


# The passes of jit, in order: each a function Graph -> Graph. ``jit(f).lower(x)
# .graph(after=name)`` shows the graph after any of them.
PASSES = [
    ("inline_calls", inline_calls),
    ("remove_noops", remove_noops),
    ("cse", cse),
    ("scalar_consts", scalar_consts),
    ("fold_scales", fold_scales),
    ("dead_code", dead_code),
]

check_passes = False     # True (the test suite): check_graph after every pass


def simplify(graph, upto=None):
    """Run :data:`PASSES` in order (through the pass named ``upto`` when given); a new
    Graph. With ``check_passes`` on, each pass's output goes through ``check_graph``."""
    for name, run in PASSES:
        graph = run(graph)
        if check_passes:
            _ir.check_graph(graph, f"the graph after pass {name!r}")
        if name == upto:
            break
    return graph


@functools.lru_cache(maxsize=None)
def _scale_limit(dtype):
    """Constants are folded while 1/limit <= |c| <= limit: the deferred base then stays
    within a factor ``limit`` of the true value, far from overflow (max ** 0.25, about
    4e9 for float32 and 1e77 for float64)."""
    return float(np.finfo(dtype).max) ** 0.25


def _fold_scales(eqns, outvars):
    """Fold negations and multiplications by Python scalars into the operations that can
    carry them, so that a chain such as ``-(g * e) * (2 * x) * 1.0001`` becomes one
    product and, once, one multiplication by the accumulated constant, applied where the
    array is smallest. Returns ``(equations, outputs)``.

    Each variable may be known as ``c * base`` (``c`` a Python number, not yet applied).
    Primitive properties (``core.Primitive``) say what carries ``c``: an equation that
    is a ``scalar_multiple`` of its operand (a negation, a product with a number) only
    changes ``c``; one ``linear_in`` its operands (a product, a sum, a reshape, a matrix
    product; a division's divisor is ``inverse_in``) runs on the bases and multiplies
    their constants, where the operands of one linear group (the two terms of a sum)
    carry the same constant. Any other use materialises ``c * base`` once, under the
    variable's own name; when the base is the result of a contraction used nowhere else,
    the constant goes onto its smaller operand instead (``(a @ b) * c = a @ (b * c)``).
    Only floating and complex arrays of one dtype take part, only where no input of an
    elementwise equation is broadcast to a larger shape, and only while the constant
    stays within :func:`_scale_limit`. Results may differ from step-by-step evaluation in
    the last bit, as with any reassociation."""
    return _ScaleFolder(eqns, outvars).run(eqns, outvars)


def _foldable(v):
    """A variable that may carry a deferred constant: a floating or complex array."""
    return isinstance(v, Var) and not v.weak and v.dtype.kind in "fc"


def _usable_factor(f):
    return type(f) in (int, float) and math.isfinite(f) and f != 0


def _size(v):
    return math.prod(v.shape)


class _ScaleFolder:
    """The state of one :func:`_fold_scales` walk over a list of equations."""

    def __init__(self, eqns, outvars):
        self.multiply_p, self.negate_p = _core.scaling_primitives()
        self.scaled = {}      # name -> (c, base Var): the variable is c * base
        self.done = set()     # names already materialised
        self.made_by = {}     # name of a contraction's result -> its equation (in out)
        self.final = {v.name for v in outvars if isinstance(v, Var)}
        self.uses = collections.Counter(v.name for e in eqns for v in e.invars
                                        if isinstance(v, Var))
        self.left = collections.Counter(self.uses)   # uses not yet reached in the walk
        self.out = []
        self.count = itertools.count()

    def run(self, eqns, outvars):
        for e in eqns:
            self.left.subtract(v.name for v in e.invars if isinstance(v, Var))
            o = e.outvars[0] if len(e.outvars) == 1 else None
            if (o is not None and _foldable(o) and not e.prim.multiple_results
                    and (self.fold_scalar_multiple(e, o) or self.fold_linear(e, o))):
                continue
            self.copy(e, o)
        return self.out, [self.get(v) for v in outvars]

    # -- what a variable is

    def parts(self, v):
        """``(c, base)`` with ``v = c * base``."""
        return self.scaled.get(v.name, (1, v)) if v.name not in self.done else (1, v)

    def fresh(self, like):
        return Var(f"{like.name}_{next(self.count)}", like.shape, like.dtype, like.deps)

    def keep(self, o, c, base):
        """Record ``o = c * base`` if ``c`` is within limits; whether it was."""
        if self.in_range(o, c):
            self.scaled[o.name] = (c, base)
            return True
        return False

    @staticmethod
    def in_range(o, c):
        limit = _scale_limit(o.dtype)
        return c != 0 and np.isfinite(c) and 1 / limit <= abs(c) <= limit

    # -- equations that carry the constant

    def fold_scalar_multiple(self, e, o):
        """``o = factor * x``: ``o`` is known as ``c * factor * base`` (no equation)."""
        rule = e.prim.scalar_multiple
        hit = rule(e.invars) if rule is not None else None
        if hit is None:
            return False
        pos, factor = hit
        x = e.invars[pos]
        if not (_foldable(x) and x.dtype == o.dtype and _usable_factor(factor)):
            return False
        c, b = self.parts(x)
        return self.keep(o, c * factor, b)

    def fold_linear(self, e, o):
        """An equation linear in its operands (by groups) run on their bases: ``o`` is
        known as the product of the groups' constants (over the divisors') times it."""
        prim, ins = e.prim, e.invars
        groups, inverse = prim.linear_in, prim.inverse_in
        if not groups:
            return False
        linear = {i for g in groups for i in g} | set(inverse)
        if not all(i < len(ins) and _foldable(ins[i]) and ins[i].dtype == o.dtype
                   for i in linear):
            return False
        if not any(ins[i].name in self.scaled for i in linear):
            return False
        if prim.elementwise and any(ins[i].shape != o.shape for i in linear):
            return False          # broadcast: the constant would apply to more elements
        c = 1
        for g in groups:
            cs = {self.parts(ins[i])[0] for i in g}
            if len(cs) != 1:      # c1 * a + c2 * b has no common factor
                return False
            c *= cs.pop()
        for i in inverse:
            c /= self.parts(ins[i])[0]
        if not self.in_range(o, c):
            return False
        new_ins = [self.parts(v)[1] if i in linear else self.get(v) for i, v in enumerate(ins)]
        base = self.fresh(o)
        self.scaled[o.name] = (c, base)
        ne = Eqn(prim, new_ins, e.params, [base])
        self.out.append(ne)
        if prim.multiply_adds is not None:
            self.made_by[base.name] = ne
        return True

    def copy(self, e, o):
        """Any other equation: its operands with their constants applied."""
        ne = Eqn(e.prim, [self.get(v) for v in e.invars], e.params, e.outvars)
        self.out.append(ne)
        if e.prim.multiply_adds is not None and o is not None:
            self.made_by[o.name] = ne

    # -- applying the constant

    def get(self, v):
        """The variable with its constant applied (materialised on first use)."""
        if isinstance(v, Var) and v.name in self.scaled and v.name not in self.done:
            c, base = self.scaled[v.name]
            if c == 1:
                return base
            self.done.add(v.name)
            if not self.pull_back(v, c, base):
                self.out.append(Eqn(self.negate_p, [base], {}, [v]) if c == -1 else
                                Eqn(self.multiply_p, [base, Literal(c)], {}, [v]))
        return v

    def pull_back(self, v, c, base):
        """``v = c * (a @ b)`` written ``a @ (b * c)`` (or ``(a * c) @ b``): True if done."""
        e = self.made_by.get(base.name)
        if e is None or base.name in self.final or self.uses[base.name] > 1:
            return False           # the product itself is needed elsewhere
        if any(w != v.name and w not in self.done and b is base
               and (self.left[w] or w in self.final) for w, (_, b) in self.scaled.items()):
            return False           # another scaled view of the same product, still needed
        i = next(k for k in range(len(self.out) - 1, -1, -1) if self.out[k] is e)
        if any(base in f.invars for f in self.out[i + 1:]):
            return False
        j = min((0, 1), key=lambda j: _size(e.invars[j]))
        small = e.invars[j]
        if ((j,) not in e.prim.linear_in or _size(small) >= _size(v) or not _foldable(small)
                or small.dtype != v.dtype):
            return False
        s2 = self.fresh(small)
        ins = list(e.invars)
        ins[j] = s2
        self.out[i:i + 1] = [Eqn(self.multiply_p, [small, Literal(c)], {}, [s2]),
                             Eqn(e.prim, ins, e.params, [v])]
        return True


# --------------------------------------------------------------------------------------
# Code generation


_FRESH = (np.ufunc,)
_REUSE_MIN_SIZE = 4096       # elements
_REUSE_WINDOW = 3            # a buffer is reused only within this many equations of its
                             # making, while it is still in cache: writing over a
                             # long-lived residual (e.g. a forward activation in the
                             # backward pass) was measured slower than a fresh array


def _product_sum(a, b):
    """``(a @ b).sum(leading axes)`` for ``a (..., k, m)``, ``b (..., m, n)`` with the same
    leading axes: one ``(k, M) @ (M, n)`` product over the leading axes merged (a copy of
    an operand whose leading axes do not merge), not one product per leading index and
    then a sum."""
    k = a.shape[-2]
    x = np.swapaxes(a, -1, -2).reshape(-1, k)
    return [np.matmul(x.T, b.reshape(-1, b.shape[-1]))]


def _is_sum(e):
    """A sum over axes: the linear reduction (its ``axis``/``keepdims`` parameters)."""
    return e.prim.reduction and tuple(e.prim.linear_in) == ((0,),) and "axis" in e.params


def _is_stacked_product(e):
    """A matrix product of two operands of equal rank with the same leading axes, with
    ``(..., k, m) @ (..., m, n) -> (..., k, n)`` shapes (``matmul``, by its properties)."""
    if e.prim.multiply_adds is None or e.params or len(e.invars) != 2 or len(e.outvars) != 1:
        return False
    a, b = e.invars
    if not isinstance(a, Var) or not isinstance(b, Var):
        return False
    sa, sb, so = tuple(a.shape), tuple(b.shape), tuple(e.outvars[0].shape)
    return (len(sa) == len(sb) == len(so) >= 3 and sa[:-2] == sb[:-2]
            and sa[-1] == sb[-2] and so == sa[:-1] + sb[-1:] and all(sa) and all(sb))


def product_sums(graph):
    """Code generation's rewrite of a host graph: ``sum(a @ b)`` over every leading axis,
    the product read by nothing else, becomes one equation running :func:`_product_sum`.
    The reverse pass of an ``(..., m, k) @ (k, n)`` product (a layer applied to every
    position of a sequence) gives the weight's cotangent in this form; as one product it
    ran 1.2-2.1x faster (the char LM's head and input weights, measured). It runs after
    the row analysis (on each program of a split graph), which sees the two equations."""
    if not any(_is_sum(e) for e in graph.eqns):
        return graph
    reads = collections.Counter(v.name for e in graph.eqns for v in e.invars
                                if isinstance(v, Var))
    reads.update(v.name for v in graph.outvars if isinstance(v, Var))
    made = {e.outvars[0].name: k for k, e in enumerate(graph.eqns) if _is_stacked_product(e)}
    drop, new = set(), {}
    for j, e in enumerate(graph.eqns):
        if not _is_sum(e) or not isinstance(e.invars[0], Var):
            continue
        k = made.get(e.invars[0].name)
        if k is None or reads[e.invars[0].name] != 1 or e.params.get("keepdims"):
            continue
        nd = len(e.invars[0].shape)
        axis = e.params["axis"]
        axes = axis if isinstance(axis, (tuple, list)) else (axis,)
        if (axis is None or sorted(int(x) % nd for x in axes) != list(range(nd - 2))
                or e.outvars[0].dtype != e.invars[0].dtype):
            continue
        drop.add(k)
        new[j] = Eqn(_Kernel("matmul+sum", _product_sum), list(graph.eqns[k].invars), {},
                     list(e.outvars))
    if not new:
        return graph
    eqns = [new.get(j, e) for j, e in enumerate(graph.eqns) if j not in drop]
    return Graph(graph.invars, graph.consts, eqns, graph.outvars, graph.in_tree,
                 graph.out_tree, graph.arg_names)


def compile_graph(graph, host=False, copies=()):
    """Straight-line Python for ``graph``: returns ``f(*flat_inputs) -> list of outputs``,
    those at positions ``copies`` copied (see :func:`_new_aliases`).

    ``host=True`` promises that every value is a NumPy array or scalar (no CuPy or other
    device arrays), which allows host-only speed-ups such as 0-d array literals and the
    rewrite of :func:`product_sums`."""
    if host:
        graph = product_sums(graph)
    ns = {}
    lines = []
    names = {}

    def ref(v):
        if v is None:
            return "None"
        if isinstance(v, Literal):
            if v.value is None or type(v.value) in (bool, int) or (
                    type(v.value) in (float, complex) and np.isfinite(v.value)):
                return repr(v.value)
            k = f"l{len(ns)}"           # NumPy scalars keep their exact type (and dtype)
            ns[k] = v.value
            return k
        return names[v.name]

    for v in graph.invars:
        names[v.name] = "i_" + v.name
    for k, (v, x) in enumerate(graph.consts):
        names[v.name] = f"c{k}"
        ns[f"c{k}"] = x
    # last use of each variable, to free temporaries and to reuse their buffers
    last_use = _last_uses(graph)
    outputs = {v.name for v in graph.outvars if isinstance(v, Var)}
    # Values read by anything but a ufunc may live on in a view (getitem, reshape,
    # transpose, real, ...): their buffers are never reused.
    viewed = {v.name for e in graph.eqns if not isinstance(e.prim.impl, np.ufunc)
              for v in e.invars if isinstance(v, Var)}
    owned = {}           # temporaries made by ufuncs (fresh, writable): name -> eqn index
    for k, e in enumerate(graph.eqns):
        fname = f"f{k}"
        impl = e.prim.impl
        ns[fname] = impl
        args = ", ".join((host and _ufunc_literal(impl, v, e.invars, ns)) or ref(v)
                         for v in e.invars)
        # parameters as keywords in the call (a functools.partial costs 0.3 µs more)
        for j, (pk, pv) in enumerate(e.params.items()):
            ns[f"p{k}_{j}"] = pv
            args += f"{', ' if args else ''}{pk}=p{k}_{j}"
        outs = e.outvars
        for v in outs:
            names[v.name] = "v_" + v.name
        target = ", ".join(names[v.name] for v in outs)
        if e.prim.multiple_results:
            lines.append(f"    {target}, = {fname}({args})" if len(outs) == 1 else
                         f"    {target} = {fname}({args})")
        else:
            out_kw = ""
            o = outs[0]
            # out= costs keyword parsing on every call: worth it only for arrays big
            # enough that the saved allocation (and page faults) outweigh it.
            if (isinstance(impl, _FRESH) and not e.params
                    and len(o.shape) and int(np.prod(o.shape)) >= _REUSE_MIN_SIZE):
                for v in e.invars:
                    if (isinstance(v, Var) and k - owned.get(v.name, -_REUSE_WINDOW) < _REUSE_WINDOW
                            and last_use.get(v.name) == k
                            and v.name not in outputs and v.name not in viewed
                            and v.shape == o.shape and v.dtype == o.dtype):
                        out_kw = f", out={ref(v)}"
                        del owned[v.name]
                        break
            call = f"{fname}({args}{out_kw})"
            if o.weak:          # a Python number: a ufunc's NumPy scalar made one
                call = f"{call}.item()" if isinstance(impl, np.ufunc) else f"_python({call})"
                ns["_python"] = _python_number
            lines.append(f"    {target} = {call}")
            # (a matmul result, its impl not a ufunc, is never written over: BLAS's
            # threads have just written it from other cores, and an in-place update was
            # measured 10-20% slower on the W2 step than a fresh array)
            if isinstance(impl, _FRESH) and len(o.shape):
                owned[o.name] = k
        dead = [ref(v) for v in {v.name: v for v in e.invars if isinstance(v, Var)}.values()
                if last_use.get(v.name) == k and v.name not in outputs
                and not names[v.name].startswith(("c", "i_"))]
        if dead:
            lines.append(f"    del {', '.join(dead)}")
    params = ", ".join(names[v.name] for v in graph.invars)
    const_names = {v.name for v, x in graph.consts if isinstance(x, np.ndarray)}
    # constants handed out are copied, so that changing a result never changes the cache
    ret = ", ".join(ref(v) + (".copy()" if isinstance(v, Var) and (
        v.name in const_names or j in copies) else "") for j, v in enumerate(graph.outvars))
    src = f"def compiled({params}):\n" + "\n".join(lines) + f"\n    return [{ret}]\n"
    code = compile(src, "<funcgrad.jit>", "exec")
    exec(code, ns)
    fn = ns["compiled"]
    fn.source = src
    return fn


def _python_number(x):
    """A weakly typed result as a Python number (``np.real`` of one already is)."""
    return x.item() if isinstance(x, np.generic) else x


def _compile_subgraph(graph, host=False):
    """Code for a sub-graph of a control-flow equation (a scan's body, a cond's branch):
    simplified and generated like a jitted function's, run by the primitive's loop.
    An output the passes made share memory with an input or another output is copied,
    as by jit (:func:`_new_aliases`): a scan carry ``c * 1.0`` folded to ``c`` would
    otherwise hand the scan's argument back as its result, a nested jit of ``x * 1.0``
    its argument. (No dearer than the unsimplified graph: the copy replaces the
    equation the pass removed.)"""
    simple = simplify(graph)
    return compile_graph(simple, host, _new_aliases(graph, simple))


_staging.register_graph_compiler(_compile_subgraph)
_rows.register_code_generator(compile_graph)
_numba.register_graph_compiler(compile_graph)


def _ufunc_literal(impl, v, invars, ns):
    """A Python scalar operand of a NumPy ufunc, as a 0-d array of the dtype NumPy would
    convert it to (the name it is stored under in ``ns``), or None to keep it as it is.

    NumPy's weak-scalar path costs 0.15-0.5 µs per call, as much as the whole operation on
    a small array; a 0-d array of the promoted dtype gives the same result and dtype. Only
    floating or complex results are converted: with integer results NumPy checks the
    scalar's range on every call (an out-of-range scalar may compare, but not convert)."""
    if not (isinstance(impl, np.ufunc) and isinstance(v, Literal)
            and type(v.value) in (bool, int, float, complex)):
        return None
    arrays = [u for u in invars if isinstance(u, Var) and not u.weak]
    if not arrays:
        return None
    try:
        rt = np.result_type(*(u.dtype for u in arrays), v.value)
    except (TypeError, OverflowError, ValueError):
        return None
    if rt.kind not in "fc":
        return None
    z = np.asarray(v.value, dtype=rt)
    # the ufunc must accept it and give the same dtype (e.g. not an integer-only operand)
    def sample(u, lit):
        if isinstance(u, Var):
            return np.ones((), u.dtype).item() if u.weak else np.ones(1, u.dtype)
        return lit if u is v else getattr(u, "value", None)
    try:
        with np.errstate(all="ignore"):
            same = (np.asarray(impl(*[sample(u, z) for u in invars])).dtype
                    == np.asarray(impl(*[sample(u, v.value) for u in invars])).dtype)
    except Exception:        # noqa: BLE001 - any refusal means: keep the Python scalar
        return None
    if not same:
        return None
    k = f"l{len(ns)}"
    ns[k] = z
    return k


# --------------------------------------------------------------------------------------
# jit


def _signature(x):
    if type(x) in (bool, int, float, complex):     # not np.float64, a float subclass
        return ("weak", type(x))
    shape = getattr(x, "shape", None)
    if shape is None:
        x = np.asarray(x)
        shape = x.shape
    # NumPy scalars and 0-d arrays share compiled code (a step that turns one into the
    # other must not be retraced)
    return (tuple(shape), np.dtype(x.dtype), np.ndarray if isinstance(x, np.generic) else type(x))


_HOST_TYPES = (np.ndarray, bool, int, float, complex)


def _traceable(x):
    """Whether jit can make ``x`` an abstract input: a number or an array of numbers."""
    if type(x) in _HOST_TYPES or isinstance(x, Tracer):
        return type(x) is not np.ndarray or x.dtype.kind not in "OSUV"
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        try:
            dtype = np.asarray(x).dtype
        except Exception:
            return False
    try:
        return np.dtype(dtype).kind not in "OSUV"
    except TypeError:            # another library's dtype: let the usual path judge it
        return True


def _not_traceable(fname, x, args, kwargs, nums, names):
    """Raise: ``x``, a leaf of a dynamic argument, is not an array (a string, a function,
    an object); name the argument and the fix."""
    where = "an argument"
    for i, a in enumerate(args):
        if i not in nums and any(leaf is x for leaf in tree_flatten(a)[0]):
            where = f"positional argument {i}"
            break
    else:
        for k, a in kwargs.items():
            if k not in names and any(leaf is x for leaf in tree_flatten(a)[0]):
                where = f"argument {k!r}"
                break
    raise FuncgradTypeError(
        f"jit of {fname}: {where} is a {type(x).__name__} ({x!r:.60}), not an array: jit "
        "can only trace arrays and numbers. Mark it static with static_argnums= or "
        "static_argnames= (jit then compiles once per value; it must be hashable), or "
        "close over it (functools.partial)")


# --------------------------------------------------------------------------------------
# Kernel fusion for device array modules (CuPy): runs of elementwise operations become one
# function compiled by the module's ``fuse`` (one GPU kernel instead of one per operation)


def _fusible(e, xp):
    impl = e.prim.impl
    return (isinstance(impl, np.ufunc) and impl.signature is None   # not matmul & co.
            and impl.nout == 1 and not e.params
            and not e.prim.multiple_results and hasattr(xp, impl.__name__)
            and not e.outvars[0].weak
            and all(isinstance(v, Var) and not v.weak or isinstance(v, Literal)
                    and type(v.value) in (bool, int, float) and math.isfinite(v.value)
                    for v in e.invars))


def fuse_elementwise(graph, xp):
    """A graph in which each run of two or more consecutive elementwise equations is one
    equation: on a module with ``ElementwiseKernel`` (CuPy), first the groups that
    ``cupy_kernels`` writes CUDA C for (float32/float64/bool, NumPy's typing); then, on
    a module with ``fuse``, the remaining runs run ``xp.fuse`` of generated code calling
    ``xp``'s ufuncs, results cast back to the dtypes the graph recorded (the module's
    scalar promotion may differ from NumPy's). Everything else is left as it is."""
    if hasattr(xp, "ElementwiseKernel"):
        graph = _cupy_kernels.fuse(graph, xp)
    if not hasattr(xp, "fuse"):
        return graph
    groups = [(a, b) for a, b in elementwise_runs(graph, lambda e: _fusible(e, xp))
              if b - a >= 2]
    return replace_groups(graph, groups,
                          lambda run, end, uses_after, final, n:
                          _fused_eqn(run, end, uses_after, final, xp, n))


def _fused_eqn(run, end, uses_after, final, xp, number):
    ins, outs = group_io(run, end, uses_after, final)
    names = {v.name: f"a{k}" for k, v in enumerate(ins)}
    ns = {}
    lines = []
    for j, e in enumerate(run):
        args = []
        for v in e.invars:
            args.append(names[v.name] if isinstance(v, Var) else repr(v.value))
        fname = e.prim.impl.__name__
        ns[fname] = getattr(xp, fname)
        names[e.outvars[0].name] = f"t{j}"
        lines.append(f"    t{j} = {fname}({', '.join(args)})")
    ret = ", ".join(names[o.name] for o in outs)
    kernel = f"funcgrad_fused_{number}"
    src = (f"def {kernel}({', '.join(names[v.name] for v in ins)}):\n" + "\n".join(lines)
           + f"\n    return {ret}\n")
    exec(compile(src, f"<funcgrad.jit fused {number}>", "exec"), ns)
    fused = xp.fuse(kernel_name=kernel)(ns[kernel])
    dtypes = [o.dtype for o in outs]

    def impl(*args):
        res = fused(*args)
        res = res if isinstance(res, tuple) else (res,)
        return [r if r.dtype == dt else r.astype(dt) for r, dt in zip(res, dtypes)]
    impl.source = src
    return Eqn(_Kernel(f"fused[{'+'.join(e.prim.name for e in run)}]", impl), ins, {}, outs)


def _unpin(x):
    """``x``, or a copy of it when it is a view of a much larger array: a cached constant
    such as ``big[:10]`` must not keep all of ``big`` alive."""
    base = getattr(x, "base", None)
    if base is None or not hasattr(x, "nbytes"):
        return x
    while getattr(base, "base", None) is not None:
        base = base.base
    size = getattr(base, "nbytes", None)
    if size is None:
        try:
            size = memoryview(base).nbytes
        except TypeError:
            return x
    return x.copy() if size > 2 * x.nbytes else x


# --------------------------------------------------------------------------------------
# Lowering: the backend stages after PASSES


class Target(collections.namedtuple("Target", "host xp backend", defaults=("numpy",))):
    """What a graph is lowered for: ``host`` (every value a NumPy array or scalar),
    ``xp``, the device array module (None on the host), and ``backend``, how host graphs
    run (``"numpy"``: the replay; ``"numba"``: with kernels compiled in the background)."""


def fuse_kernels(graph, target):
    """Stage: on a device module with kernel fusion (CuPy), each run of elementwise
    equations becomes one equation running one kernel (:func:`fuse_elementwise`)."""
    if target.xp is None or not (hasattr(target.xp, "fuse")
                                 or hasattr(target.xp, "ElementwiseKernel")):
        return graph
    return fuse_elementwise(graph, target.xp)


def split_rows(graph, target):
    """Stage: on the host, a graph over a batch that pays to split (``rows.analyze``)
    becomes one equation that runs it on slices of the batch on all threads, phase by
    phase (``rows.build``; the plan is the equation's ``plan``); other graphs are left
    as they are."""
    if not target.host:
        return graph
    plan = _rows.analyze(graph)
    if plan is None:
        return graph
    inner = Graph(graph.invars, graph.consts, graph.eqns,
                  [v for v in graph.outvars if isinstance(v, Var)])
    if target.backend == "numba":
        # every part compiled with kernels that swap in when ready
        run = _rows.build(inner, plan, _numba.swapping(inner, True), _numba.swapping)
    else:
        run = _rows.build(inner, plan, compile_graph(inner, True))
    count = itertools.count()
    outs = [Var(f"{v.name}_s{next(count)}", v.shape, v.dtype, v.deps, v.weak)
            if isinstance(v, Var) else v for v in graph.outvars]
    kernel = _Kernel(f"split_rows[batch {plan.batch}, {plan.phases} phases]", run)
    kernel.plan = plan
    eqn = Eqn(kernel, list(graph.invars), {}, [v for v in outs if isinstance(v, Var)])
    return Graph(graph.invars, [], [eqn], outs, graph.in_tree, graph.out_tree,
                 graph.arg_names)


# The backend stages, in order, after PASSES: each ``stage(graph, target) -> Graph``,
# applying only where the target calls for it. ``jit(f).lower(x).graph(after=name)``
# shows the graph after any of them; the last graph is what code generation compiles.
LOWERING = [
    ("fuse_elementwise", fuse_kernels),
    ("split_rows", split_rows),
]


def lower_graph(graph, target, upto=None):
    """Run :data:`LOWERING` on ``graph`` (already through :data:`PASSES`) in order,
    through the stage named ``upto`` when given."""
    for name, stage in LOWERING:
        graph = stage(graph, target)
        if check_passes:
            _ir.check_graph(graph, f"the graph after stage {name!r}")
        if name == upto:
            break
    return graph


def _fresh(e):
    """Whether equation ``e``'s results are new arrays, never views of its operands (a
    ufunc, a reduction, an implementation marked ``fresh_result``)."""
    return (isinstance(e.prim.impl, np.ufunc) or e.prim.reduction
            or getattr(e.prim.impl, "fresh_result", False))


def _memory_of(graph, cap=64):
    """For each output position of ``graph``, ``(names, inputs)``: the names of the
    variables (inputs and results) whose memory it may share, walking back through
    every equation that may return a view of its operands (all but :func:`_fresh`
    ones), None where that set passes ``cap`` names (it may share anything: a long
    chain of views), which keeps this linear in the graph's size; and the graph inputs
    among them, kept exactly whatever the chain's length (at most one set per input
    combination: a one-operand view passes its operand's set on, not a copy)."""
    may = {v.name: frozenset((v.name,))
           for v in list(graph.invars) + [c for c, _ in graph.consts]}
    empty = frozenset()
    ins = {v.name: frozenset((v.name,)) for v in graph.invars}
    for e in graph.eqns:
        base = frozenset()
        roots = empty
        if not _fresh(e):
            for v in e.invars:
                if isinstance(v, Var):
                    r = ins.get(v.name, empty)
                    if r and not r <= roots:
                        roots = r if not roots else roots | r
                    if base is None:
                        continue
                    m = may.get(v.name, frozenset())
                    base = None if m is None else base | m
                    if base is not None and len(base) > cap:
                        base = None
        for o in e.outvars:
            may[o.name] = None if base is None else base | {o.name}
            if roots:
                ins[o.name] = roots
    return [(may.get(v.name, frozenset((v.name,))), ins.get(v.name, empty))
            if isinstance(v, Var) else (frozenset(), empty) for v in graph.outvars]


def _new_aliases(traced, simplified):
    """Output positions whose buffer the passes made shared with an input or with an
    earlier output although the traced function's was not: ``x * 1.0`` folded to ``x``,
    two equal products merged into one. Those outputs are copied on the way out, so that
    writing into a result of a jitted function changes nothing else, as without jit.
    (Sharing with an input is known exactly; where the traced sharing with other
    results is unknown, :func:`_memory_of`'s None, no copy is made for it; where only
    the simplified one is, the output is copied.)"""
    # (a nested jit's call, as if it may view all its operands, would hide the sharing
    # its body's passes create once inlined: the traced body is read instead)
    before, after = _memory_of(inline_calls(traced)), _memory_of(simplified)
    copies = []
    owners = {}       # name -> the kept outputs that may share its memory after the passes
    unshared = {}     # name -> those of them that may not share it in the traced graph
    for j, ((b, b_in), (a, a_in)) in enumerate(zip(before, after)):
        o = simplified.outvars[j]
        if not isinstance(o, Var) or o.weak:
            continue
        new = not a_in <= b_in
        if not new and b is not None:
            new = a is None
            if not new:
                for name in a:
                    # an earlier output sharing ``name`` whose traced memory also held
                    # it shares with this one in the traced graph too, when this one
                    # holds it
                    for i in (unshared.get(name, ()) if name in b else owners.get(name, ())):
                        if not b & before[i][0]:
                            new = True
                            break
                    if new:
                        break
        if new:
            copies.append(j)
            continue
        if b is None or a is None:
            continue
        for name in a:
            owners.setdefault(name, []).append(j)
            if name not in b:
                unshared.setdefault(name, []).append(j)
    return tuple(copies)


def _copying(copies, wrap=None):
    """A wrapper of a compiled function that copies its outputs at positions
    ``copies`` (see :func:`_new_aliases`), inside ``wrap`` when given."""
    def outer(fn):
        def run(*args):
            out = fn(*args)
            for j in copies:
                out[j] = out[j].copy()
            return out
        return run if wrap is None else wrap(run)
    return outer


class _Compiled:
    __slots__ = ("traced", "graph", "fn", "out_tree", "out_leaf", "fused", "used", "target",
                 "pending")

    def __init__(self, graph, host, xp=None, backend="numpy"):
        graph = Graph(graph.invars, [(v, _unpin(x)) for v, x in graph.consts], graph.eqns,
                      graph.outvars, graph.in_tree, graph.out_tree, graph.arg_names)
        self.traced = graph
        self.used = False       # set by jit's fast path (second chance before eviction)
        self.graph = simplify(graph)
        self.target = Target(host, xp, backend)
        # the backend stages: on CuPy, runs of elementwise operations become single
        # kernels; on the host, a training step over a batch runs on slices of it
        lowered = lower_graph(self.graph, self.target)
        self.fused = lowered if lowered is not self.graph else None
        self.fn = compile_graph(lowered, host)
        self.pending = None     # Future of the compiled kernels (numba backend)
        wrap = None
        if host and lowered is self.graph and any(
                _rows._gemm_size(e) > _rows.BLAS_THREADED_MNK for e in self.graph.eqns):
            # the time goes to BLAS products: its thread count follows the load
            wrap = _threads.following_load
        copies = _new_aliases(graph, self.graph)
        if copies:
            wrap = _copying(copies, wrap)
        if wrap is not None:
            self.fn = wrap(self.fn)
        if host and lowered is self.graph:
            if backend == "numba":
                # the replay runs until the kernels are compiled (in the background)
                # and the graph calling them takes over (numba_backend.py)
                self.pending = _numba.start(self, self.graph, wrap)
        elif host and backend == "numba":
            # a split graph: its parts swap their kernels in themselves; this Future is
            # done once the jobs submitted so far are (they run in order)
            self.pending = _numba.submit(lambda: True)
        self.out_tree = graph.out_tree
        self.out_leaf = graph.out_tree.node_type is None


class Lowered:
    """What ``jit(f).lower(*args)`` returns: the graph of ``f`` at those arguments after
    the passes, each stage of it, and the compiled callable.

    ``as_text()`` is the readable IR; ``graph(after=name)`` the graph after the pass
    ``name`` of :data:`PASSES` or the backend stage ``name`` of :data:`LOWERING`
    (``"trace"``: as traced; no name: after all the passes, before the stages);
    ``compile()`` the callable (for arguments of the same shapes, dtypes and static
    values). Attributes it does not define are the final graph's (``.eqns``,
    ``.invars``...), so it reads as that :class:`Graph`.

    Example:
        >>> import numpy as np, funcgrad, funcgrad.numpy as fnp
        >>> low = funcgrad.jit(lambda x: fnp.sin(x) * 2.0 * 3.0).lower(np.ones(2))
        >>> print(low.as_text())
        graph(a:float64[2]):
          b:float64[2] = sin a
          d:float64[2] = multiply b 6.0
          return (d)
        >>> len(low.graph(after="trace").eqns), len(low.eqns)
        (3, 2)
        >>> low.compile()(np.zeros(2))
        array([0., 0.])
    """

    def __init__(self, entry, call):
        self._entry = entry
        self._call = call

    def graph(self, after=None):
        if after is None:
            return self._entry.graph
        if after == "trace":
            return self._entry.traced
        names = [n for n, _ in PASSES]
        stages = [n for n, _ in LOWERING]
        if after in stages:
            return lower_graph(self._entry.graph, self._entry.target, upto=after)
        if after not in names:
            raise FuncgradValueError(
                f"Lowered.graph: no pass named {after!r}; the stages are "
                f"{['trace'] + names + stages}")
        return simplify(self._entry.traced, upto=after)

    def as_text(self, after=None):
        return str(self.graph(after))

    def compile(self, wait=False):
        """The compiled callable. With a compiling backend (``backend="numba"``) the
        kernels compile in the background and the callable runs the NumPy replay until
        they are ready; ``wait=True`` waits for them first."""
        if wait and self._entry.pending is not None:
            self._entry.pending.result()
            _numba.drain()      # and parts compiled since (row splitting's slices)
        return self._call

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._entry.graph, name)

    def __str__(self):
        return self.as_text()

    __repr__ = __str__


def jit(fun, static_argnums=(), static_argnames=(), backend=None):
    """Compile ``fun``: trace it once per input signature (pytree structure, shapes,
    dtypes and the values of static arguments), simplify the graph, and replay it as
    generated straight-line code on later calls.

    The replayed code folds negations and scalar factors into neighbouring operations,
    so results can differ from eager evaluation in the last bit (as XLA's can in JAX).
    On CuPy arrays each run of elementwise operations is compiled into one kernel
    (``cupy.fuse``); on NumPy arrays, big temporaries are reused (``out=``), and a graph
    that does the same for every row of a batch (a training step whose loss sums or
    averages over examples) runs on slices of the batch on worker threads at once, its
    partial sums added at the end (row splitting: rules and threshold in
    ``funcgrad/_src/rows.py``; threads: ``funcgrad.config`` option ``num_threads``). Partial sums make results differ from eager in the last bits too, by
    thread count; ``funcgrad.config.update("jit_row_splitting", False)`` turns it off.

    Composes with every transformation in both orders: under ``grad``/``jvp``/``vmap``
    the function is traced by them directly. ``.cache_size()`` tells how many signatures
    are compiled: at most ``funcgrad.config`` option ``jit_cache_size`` (default 64), the
    least recently used dropped first; ``.lower(*args)`` returns a :class:`Lowered`:
    ``.as_text()``, ``.graph(after=pass_name)``, ``.compile()``. Arguments that are not
    arrays or numbers (strings, functions, objects) must be static; constants that are
    small slices of big arrays are copied, so the cache does not keep the big arrays
    alive.

    ``backend`` says how graphs on NumPy arrays run: ``"numpy"``, the replay above, or
    ``"numba"`` (``pip install "funcgrad[compile]"``), where each run of two or more
    elementwise operations of one shape becomes one native loop (no temporaries, no
    Python between its operations). Kernels compile on a background thread while the
    first calls run the replay, and are cached on disk (``$FUNCGRAD_CACHE_DIR``, default
    ``~/.cache/funcgrad/numba``) so that the next process starts warm;
    ``.lower(*args).compile(wait=True)`` waits for them. Results equal the replay's
    bit for bit for arithmetic, comparisons and float64 ``sin``/``cos``/``exp``/``log``,
    and differ by a few ulp for functions NumPy computes with its own SIMD code
    (float64 ``tanh``, float32 transcendental functions); see
    ``funcgrad/_src/numba_backend.py``. None (the default) takes ``funcgrad.config``
    option ``jit_backend`` (``"numpy"`` unless set) when each signature is compiled.

    Example:
        >>> import numpy as np, funcgrad, funcgrad.numpy as fnp
        >>> f = funcgrad.jit(lambda x, n: x ** n, static_argnums=1)
        >>> f(np.arange(3.0), 2)
        array([0., 1., 4.])
        >>> f.cache_size()
        1
    """
    static_argnums = _norm_static(static_argnums)
    static_argnames = (static_argnames,) if isinstance(static_argnames, str) else tuple(static_argnames)
    fname = getattr(fun, "__name__", fun)
    if backend is not None:
        _numba.check_backend(backend, f"jit of {fname}")
    cache = collections.OrderedDict()   # key -> _Compiled, least recently used first
    try:
        sig = inspect.signature(fun).parameters.values()
    except (TypeError, ValueError):
        sig = ()
    params = [p.name for p in sig if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if sig and not any(p.kind is p.VAR_KEYWORD for p in sig):
        known = {p.name for p in sig if p.kind is not p.POSITIONAL_ONLY}
        unknown = [a for a in static_argnames if a not in known]
        if unknown:
            # a typo here would otherwise trace the argument instead of keeping it static
            raise FuncgradValueError(
                f"jit of {fname}: static_argnames {unknown} are not parameters of the "
                f"function (its parameters: {[p.name for p in sig]})")

    def statics_for(nargs):
        """Static positions and names for a call with ``nargs`` positional arguments:
        static_argnums also covers those arguments passed by keyword and static_argnames
        those passed positionally (through the signature, as JAX does)."""
        n = len(params) if params else nargs
        nums = set()
        for i in static_argnums:
            if not -n <= i < max(n, nargs):
                raise FuncgradValueError(
                    f"jit of {fname}: static_argnums={static_argnums} is out of range for a "
                    f"function of {n} positional parameter(s)")
            nums.add(i % n if i < 0 else i)
        names = set(static_argnames) | {params[i] for i in nums if i < len(params)}
        nums |= {params.index(a) for a in static_argnames if a in params}
        return tuple(sorted(i for i in nums if i < nargs)), tuple(sorted(names))

    def key_of(args, kwargs):
        nums, names = statics_for(len(args))
        statics = tuple((i, args[i]) for i in nums) + tuple(
            (k, kwargs[k]) for k in names if k in kwargs)
        dyn = ([a for i, a in enumerate(args) if i not in nums],
               {k: v for k, v in kwargs.items() if k not in names})
        flat, tree = tree_flatten(dyn)
        for x in flat:
            if not _traceable(x):
                _not_traceable(fname, x, args, kwargs, nums, names)
        try:
            # (the default device too: constants made inside follow it)
            key = (tree, tuple(_signature(x) for x in flat), statics,
                   _backend._default_device.get())
            hash(key)
        except TypeError:
            raise FuncgradTypeError(
                f"jit of {fname}: static arguments must be hashable, got "
                f"{[type(v).__name__ for _, v in statics]}") from None
        return key, flat, nums, names

    calls = {}    # key -> (graph, out_tree) of calls under other transformations

    def under_transformation(key, flat, nums, names, args, kwargs):
        """Bind ``jit_call`` with ``fun``'s graph (traced once per signature): grad, jvp,
        vmap and an enclosing jit interpret that one equation, by rules that run
        compiled graphs. A function that closes over the transformation's values is
        traced by it instead."""
        hit = calls.get(key)
        if hit is None:
            box = []
            static_kw = {k: v for k, v in kwargs.items() if k in names}

            def flat_fun(*leaves):
                d_args, d_kwargs = tree_unflatten(key[0], list(leaves))
                it = iter(d_args)
                full = [a if i in nums else next(it) for i, a in enumerate(args)]
                o_flat, o_tree = tree_flatten(fun(*full, **static_kw, **d_kwargs))
                box.append(o_tree)
                return o_flat
            try:
                graph, lifted = _cf.call_graph(flat_fun, flat)
            except _staging.NotStageable:     # custom rules inside: traced by the caller
                return fun(*args, **kwargs)
            if lifted:
                return fun(*args, **kwargs)
            hit = calls[key] = (graph, box[0])     # (simplified when compiled)
        graph, out_tree = hit
        return tree_unflatten(out_tree, bind(_cf.call_p, *flat, graph=graph))

    fast = {}     # positional array arguments only: (type, shape, dtype) per argument -> entry
    no_statics = not static_argnums and not static_argnames

    @functools.wraps(fun)
    def jitted(*args, **kwargs):
        if (no_statics and not kwargs and _core.nan_check is None
                and _backend._default_device.get() is None):
            try:
                entry = fast.get(tuple([(type(a), a.shape, a.dtype) for a in args]))
            except AttributeError:
                entry = None
            if entry is not None:
                entry.used = True
                out = entry.fn(*args)
                return out[0] if entry.out_leaf else tree_unflatten(entry.out_tree, out)
        key, flat, nums, names = key_of(args, kwargs)
        if _core.nan_check is not None:
            return fun(*args, **kwargs)      # debug_nans: run uncompiled, checked op by op
        for x in flat:
            if isinstance(x, Tracer):
                # Under another transformation: one jit_call equation for it to interpret
                return under_transformation(key, flat, nums, names, args, kwargs)
        entry = cache.get(key)
        if entry is not None:
            cache.move_to_end(key)
        else:
            graph, out = trace_to_graph(fun, args, kwargs, nums, names)
            if not graph.uses_outer_values:   # closures over traced values: not replayable
                host = all(type(x) in _HOST_TYPES or isinstance(x, np.generic) for x in flat) and all(
                    type(x) in _HOST_TYPES or isinstance(x, np.generic) for _, x in graph.consts)
                xp = None
                if not host:
                    try:
                        xp = _backend.array_module(*[x for x in flat if hasattr(x, "shape")])
                    except TypeError:        # mixed modules: the first call raised already
                        xp = None
                cache[key] = entry = _Compiled(graph, host, None if xp is np else xp,
                                               backend or _config.read("jit_backend"))
                if no_statics and not kwargs and key[3] is None and all(
                        type(a) is np.ndarray or _backend.is_device_array(a) for a in args):
                    fast[tuple([(type(a), a.shape, a.dtype) for a in args])] = entry
                evict()
            return out
        return tree_unflatten(entry.out_tree, entry.fn(*flat))

    def evict():
        """Keep at most config ``jit_cache_size`` entries: drop the least recently used
        (an entry the fast path used since the last eviction round gets a second chance,
        since fast-path calls do not reorder the cache)."""
        size = _config.read("jit_cache_size")
        newest = next(reversed(cache))
        while size is not None and len(cache) > size:
            key, old = cache.popitem(last=False)
            if old.used or key is newest:
                old.used = False
                cache[key] = old
                continue
            for k in [k for k, e in fast.items() if e is old]:
                del fast[k]

    def lower(*args, **kwargs):
        key = key_of(args, kwargs)[0]
        if key not in cache:
            jitted(*args, **kwargs)
        if key not in cache:
            raise FuncgradValueError(
                f"jit of {fname}: cannot lower a function that closes over values of an "
                "enclosing transformation (pass them as arguments)")

        def call(*a, **kw):
            k, flat, _, _ = key_of(a, kw)
            if k != key:
                raise FuncgradTypeError(
                    f"jit of {fname}: the compiled function was lowered for other "
                    "argument shapes, dtypes or static values; lower it again for these")
            entry = cache[key]
            return tree_unflatten(entry.out_tree, entry.fn(*flat))
        call.__name__ = getattr(fun, "__name__", "compiled")
        return Lowered(cache[key], call)

    jitted.cache_size = lambda: len(cache)

    def clear_cache():
        cache.clear()
        fast.clear()
        calls.clear()

    jitted.clear_cache = clear_cache
    jitted.lower = lower
    return jitted
