"""jit: a small compiler over the graphs of staging.py.

``jit`` traces a function to a ``Graph`` (once per input shapes, dtypes and static
arguments), simplifies it (dead code, common subexpressions, no-op reshapes and casts,
scalar factors folded into neighbouring products), on CuPy fuses runs of elementwise
equations into single kernels, and generates straight-line Python code for it, reusing
dead temporaries as ``out=`` buffers of elementwise ufuncs. On the host a graph over a
batch may run on slices of the batch, one per thread (rows.py).
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
from .fusion import Kernel as _Kernel, elementwise_runs, group_io, last_uses as _last_uses
from .fusion import replace_groups
from . import staging as _staging
from .staging import Eqn, Graph, Literal, Var, _norm_static, trace_to_graph
from .tree_util import tree_flatten, tree_unflatten


# --------------------------------------------------------------------------------------
# Simplification


_NOOP = {"reshape", "broadcast_to", "convert_element_type", "transpose"}


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
    """Pass: the body of each ``jit_call`` equation (a jitted function called inside
    this one) written in place, so the later passes see across the call."""
    if not any(e.prim is _cf.call_p for e in graph.eqns):
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
        if e.prim is not _cf.call_p:
            eqns.append(Eqn(e.prim, invars, e.params, e.outvars))
            continue
        sub = e.params["graph"]
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
    """Pass: drop reshapes, broadcasts, casts and transposes that leave their operand's
    shape, dtype and layout unchanged (their uses read the operand)."""
    alias = {}
    res = _aliasing(alias)
    eqns = []
    for e in graph.eqns:
        invars = [res(v) for v in e.invars]
        if e.prim.name in _NOOP and not e.prim.multiple_results:
            src = invars[0]
            out = e.outvars[0]
            if isinstance(src, Var) and src.shape == out.shape and src.dtype == out.dtype and (
                    e.prim.name != "transpose" or e.params.get("axes") == tuple(range(len(out.shape)))):
                alias[out.name] = src
                continue
        eqns.append(Eqn(e.prim, invars, e.params, e.outvars))
    return _rebuilt(graph, eqns, [res(v) for v in graph.outvars])


def cse(graph):
    """Pass: common subexpressions: an equation equal to an earlier one (same primitive,
    inputs and parameters; effects excepted) is replaced by the earlier one's results."""
    alias = {}
    res = _aliasing(alias)
    seen = {}
    eqns = []
    for e in graph.eqns:
        invars = [res(v) for v in e.invars]
        key = None
        if not getattr(e.prim, "effectful", False):
            try:
                key = (e.prim, tuple((v.name if isinstance(v, Var) else ("lit", type(v.value), repr(v.value)))
                                     if v is not None else None for v in invars),
                       tuple(sorted(e.params.items())))
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
        if getattr(e.prim, "effectful", False) or any(o.name in live for o in e.outvars):
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
    array is smallest.

    Each variable may be known as ``c * base``: negative and multiply/divide by a scalar
    only change ``c``; multiply, divide and matmul of two such variables combine their
    bases and their constants; add and subtract of two with the same constant act on the
    bases; sum and reshape carry ``c`` through. Any other use materialises ``c * base`` once, under the variable's own
    name; when the base is a matmul result used nowhere else, the constant goes onto the
    matmul's smaller operand instead (``(a @ b) * c = a @ (b * c)``). Only floating and
    complex arrays take part, only where no input is broadcast to a larger shape, and
    only while the constant stays within :func:`_scale_limit`. Results may differ from
    step-by-step evaluation in the last bit, as with any reassociation."""
    multiply_p = _core.primitive_named("multiply")
    negative_p = _core.primitive_named("negative")
    scaled = {}      # name -> (c, base Var)
    done = set()     # names already materialised
    made_by = {}     # name of a matmul result -> its equation (in ``out``)
    final = {v.name for v in outvars if isinstance(v, Var)}
    uses = collections.Counter(v.name for e in eqns for v in e.invars if isinstance(v, Var))
    left = collections.Counter(uses)    # uses not yet reached in the walk
    out = []
    count = itertools.count()

    def num(v):
        return isinstance(v, Literal) and type(v.value) in (int, float) and \
            np.isfinite(v.value) and v.value != 0

    def ok(v):
        return isinstance(v, Var) and not v.weak and v.dtype.kind in "fc"

    def size(v):
        return math.prod(v.shape)

    def pull_back(v, c, base):
        """``v = c * (a @ b)`` as ``a @ (b * c)`` (or ``(a * c) @ b``): True if done."""
        e = made_by.get(base.name)
        if e is None or base.name in final or uses[base.name] > 1:
            return False           # the product itself is needed elsewhere
        if any(w != v.name and w not in done and b is base and (left[w] or w in final)
               for w, (_, b) in scaled.items()):
            return False           # another scaled view of the same product, still needed
        i = next(k for k in range(len(out) - 1, -1, -1) if out[k] is e)
        if any(base in f.invars for f in out[i + 1:]):
            return False
        j = min((0, 1), key=lambda j: size(e.invars[j]))
        small = e.invars[j]
        if size(small) >= size(v) or not ok(small) or small.dtype != v.dtype:
            return False
        s2 = fresh(small)
        ins = list(e.invars)
        ins[j] = s2
        out[i:i + 1] = [Eqn(multiply_p, [small, Literal(c)], {}, [s2]),
                        Eqn(e.prim, ins, e.params, [v])]
        return True

    def get(v):
        """The variable with its constant applied (materialised on first use)."""
        if isinstance(v, Var) and v.name in scaled and v.name not in done:
            c, base = scaled[v.name]
            if c == 1:
                return base
            done.add(v.name)
            if not pull_back(v, c, base):
                out.append(Eqn(negative_p, [base], {}, [v]) if c == -1 else
                           Eqn(multiply_p, [base, Literal(c)], {}, [v]))
        return v

    def parts(v):
        return scaled.get(v.name, (1, v)) if v.name not in done else (1, v)

    def fresh(like):
        return Var(f"{like.name}_{next(count)}", like.shape, like.dtype, like.deps)

    def keep(o, c, base):
        limit = _scale_limit(o.dtype)
        if c != 0 and np.isfinite(c) and 1 / limit <= abs(c) <= limit:
            scaled[o.name] = (c, base)
            return True
        return False

    def emit(e, o, c, ins):
        """``o = c * prim(*ins)``: the equation on the bases, ``o`` known as scaled."""
        nb = fresh(o)
        if not keep(o, c, nb):
            return False
        ne = Eqn(e.prim, ins, e.params, [nb])
        out.append(ne)
        if e.prim.name == "matmul":
            made_by[nb.name] = ne
        return True

    for e in eqns:
        name, inv = e.prim.name, e.invars
        left.subtract(v.name for v in inv if isinstance(v, Var))
        o = e.outvars[0] if len(e.outvars) == 1 else None
        if o is not None and ok(o) and not e.prim.multiple_results:
            if name == "negative" and ok(inv[0]):
                c, b = parts(inv[0])
                if keep(o, -c, b):
                    continue
            elif name in ("multiply", "true_divide") and len(inv) == 2:
                x, y = inv
                if ok(x) and num(y) and x.dtype == o.dtype:
                    c, b = parts(x)
                    if keep(o, c * y.value if name == "multiply" else c / y.value, b):
                        continue
                elif name == "multiply" and num(x) and ok(y) and y.dtype == o.dtype:
                    c, b = parts(y)
                    if keep(o, x.value * c, b):
                        continue
                elif ok(x) and ok(y) and x.shape == y.shape == o.shape and (
                        x.name in scaled or y.name in scaled):
                    (cx, bx), (cy, by) = parts(x), parts(y)
                    if emit(e, o, cx * cy if name == "multiply" else cx / cy, [bx, by]):
                        continue
            elif name == "matmul" and ok(inv[0]) and ok(inv[1]) and (
                    inv[0].name in scaled or inv[1].name in scaled):
                (cx, bx), (cy, by) = parts(inv[0]), parts(inv[1])
                if emit(e, o, cx * cy, [bx, by]):
                    continue
            elif name in ("add", "subtract") and len(inv) == 2:
                x, y = inv
                if ok(x) and ok(y) and x.shape == y.shape == o.shape and (
                        x.name in scaled or y.name in scaled):
                    (cx, bx), (cy, by) = parts(x), parts(y)
                    if cx == cy and emit(e, o, cx, [bx, by]):
                        continue
            elif name in ("sum", "reshape") and ok(inv[0]) and inv[0].name in scaled and (
                    o.dtype == inv[0].dtype):
                c, b = parts(inv[0])
                if emit(e, o, c, [b] + list(inv[1:])):
                    continue
        ne = Eqn(e.prim, [get(v) for v in inv], e.params, e.outvars)
        out.append(ne)
        if name == "matmul" and o is not None:
            made_by[o.name] = ne
    outvars = [get(v) for v in outvars]
    return out, outvars


# --------------------------------------------------------------------------------------
# Code generation


_FRESH = (np.ufunc,)
_REUSE_MIN_SIZE = 4096       # elements
_REUSE_WINDOW = 3            # a buffer is reused only within this many equations of its
                             # making, while it is still in cache: writing over a
                             # long-lived residual (e.g. a forward activation in the
                             # backward pass) was measured slower than a fresh array


def compile_graph(graph, host=False):
    """Straight-line Python for ``graph``: returns ``f(*flat_inputs) -> list of outputs``.

    ``host=True`` promises that every value is a NumPy array or scalar (no CuPy or other
    device arrays), which allows host-only speed-ups such as 0-d array literals."""
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
            if (isinstance(impl, _FRESH) and impl is not np.matmul and not e.params
                    and len(o.shape) and int(np.prod(o.shape)) >= _REUSE_MIN_SIZE):
                for v in e.invars:
                    if (isinstance(v, Var) and k - owned.get(v.name, -_REUSE_WINDOW) < _REUSE_WINDOW
                            and last_use.get(v.name) == k
                            and v.name not in outputs and v.name not in viewed
                            and v.shape == o.shape and v.dtype == o.dtype):
                        out_kw = f", out={ref(v)}"
                        del owned[v.name]
                        break
            lines.append(f"    {target} = {fname}({args}{out_kw})" + (".item()" if o.weak else ""))
            # (a matmul result is never written over: BLAS's threads have just written
            # it from other cores, and an in-place update was measured 10-20% slower on
            # the W2 step than a fresh array)
            if isinstance(impl, _FRESH) and impl is not np.matmul and len(o.shape):
                owned[o.name] = k
        dead = [ref(v) for v in {v.name: v for v in e.invars if isinstance(v, Var)}.values()
                if last_use.get(v.name) == k and v.name not in outputs
                and not names[v.name].startswith(("c", "i_"))]
        if dead:
            lines.append(f"    del {', '.join(dead)}")
    params = ", ".join(names[v.name] for v in graph.invars)
    const_names = {v.name for v, x in graph.consts if isinstance(x, np.ndarray)}
    # constants handed out are copied, so that changing a result never changes the cache
    ret = ", ".join(ref(v) + (".copy()" if isinstance(v, Var) and v.name in const_names else "")
                    for v in graph.outvars)
    src = f"def compiled({params}):\n" + "\n".join(lines) + f"\n    return [{ret}]\n"
    code = compile(src, "<funcgrad.jit>", "exec")
    exec(code, ns)
    fn = ns["compiled"]
    fn.source = src
    return fn


def _compile_subgraph(graph, host=False):
    """Code for a sub-graph of a control-flow equation (a scan's body, a cond's branch):
    simplified and generated like a jitted function's, run by the primitive's loop."""
    return compile_graph(simplify(graph), host)


_staging.register_graph_compiler(_compile_subgraph)
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
    equation whose implementation is ``xp.fuse`` of generated code calling ``xp``'s
    ufuncs; results are cast back to the dtypes the graph recorded (the module's scalar
    promotion may differ from NumPy's). Everything else is left as it is."""
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


class _Compiled:
    __slots__ = ("traced", "graph", "fn", "out_tree", "out_leaf", "fused", "used", "pending")

    def __init__(self, graph, host, xp=None, backend="numpy"):
        graph = Graph(graph.invars, [(v, _unpin(x)) for v, x in graph.consts], graph.eqns,
                      graph.outvars, graph.in_tree, graph.out_tree, graph.arg_names)
        self.traced = graph
        self.used = False       # set by jit's fast path (second chance before eviction)
        self.graph = simplify(graph)
        # on a device module with kernel fusion (CuPy), runs of elementwise operations
        # are compiled into single kernels
        self.fused = (fuse_elementwise(self.graph, xp)
                      if xp is not None and hasattr(xp, "fuse") else None)
        self.fn = compile_graph(self.fused or self.graph, host)
        self.pending = None     # Future of the compiled kernels (numba backend)
        if host:
            # a training step over a batch: run it on slices of the batch on all threads
            plan = _rows.analyze(self.graph)
            wrap = None
            if plan is not None:
                if backend == "numba":
                    # every part compiled with kernels that swap in when ready
                    self.fn = _rows.build(self.graph, plan, _numba.swapping(self.graph, True, self.fn),
                                          _numba.swapping, Var, Graph)
                    self.pending = _numba.submit(lambda: True)
                else:
                    self.fn = _rows.build(self.graph, plan, self.fn, compile_graph, Var, Graph)
            elif any(_rows._gemm_size(e) > _rows.BLAS_THREADED_MNK for e in self.graph.eqns):
                # the time goes to BLAS products: its thread count follows the load
                wrap = _threads.following_load
                self.fn = wrap(self.fn)
            if backend == "numba" and plan is None:
                # the replay runs until the kernels are compiled (in the background)
                # and the graph calling them takes over (numba_backend.py)
                self.pending = _numba.start(self, self.graph, wrap)
        self.out_tree = graph.out_tree
        self.out_leaf = graph.out_tree.node_type is None


class Lowered:
    """What ``jit(f).lower(*args)`` returns: the graph of ``f`` at those arguments after
    the passes, each stage of it, and the compiled callable.

    ``as_text()`` is the readable IR; ``graph(after=name)`` the graph after the pass
    ``name`` of :data:`PASSES` (``"trace"``: as traced; no name: after them all);
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
        if after not in names:
            raise FuncgradValueError(
                f"Lowered.graph: no pass named {after!r}; the stages are "
                f"{['trace'] + names}")
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
