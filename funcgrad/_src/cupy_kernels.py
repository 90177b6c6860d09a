"""jit's GPU kernels: each group of consecutive elementwise equations on a device module
with ``ElementwiseKernel`` (CuPy) becomes one generated CUDA C kernel.

The groups are the ones the Numba backend compiles (:func:`fusion.elementwise_runs` over
the equations :func:`numba_backend.fusible` accepts: elementwise ufuncs, ``where``,
``relu``, casts, on float32/float64/bool), cut where the output shape changes, from two
equations up, whose inputs broadcast to the group's shape. Each operation computes in the
dtype NumPy's ufunc would (the same ``resolve_dtypes`` typing as the Numba backend) and
is cast to the recorded dtype, so float32 stays float32. Exactness, as on the CPU:

* products are written ``__fmul_rn``/``__dmul_rn``, which the CUDA compiler never
  contracts into a fused multiply-add, so ``a * b + c`` rounds twice, as in NumPy;
* ``maximum``/``minimum`` let a NaN operand win and ``sign`` keeps NaN, as NumPy does;
* transcendental functions (and ``power``) on float32 are computed in double and
  rounded, like the Numba backend; CUDA's double functions are within 1-2 ulp of glibc.

A ``sum`` over every axis of the one value a group leaves (W1's closing sum) joins the
group as one ``ReductionKernel`` (where the module has it): the group is a device
function mapped over the elements and summed in the value's dtype, in CuPy's order of
additions (not NumPy's pairwise one: equal within rounding, not to the bit).

``kernel_source`` (and ``reduction_source``) is the generator (tests compare its source and run it on the CPU
stand-in, whose ``ElementwiseKernel`` interprets the generated C); ``fuse`` is the graph
rewrite that ``compiler.fuse_elementwise`` applies before its ``xp.fuse`` fallback.

    >>> import numpy as np, funcgrad, funcgrad.numpy as fnp
    >>> g = funcgrad.make_graph(lambda x: fnp.sin(x) * 2.0 + x)(np.ones(3, np.float32))
    >>> src = kernel_source(g.eqns, g.invars, g.outvars)
    >>> src.in_params, src.out_params
    ('float32 a0', 'float32 r0')
    >>> print(src.operation)
    float t0 = (float)(sin((double)(a0)));
    float t1 = __fmul_rn(t0, (float)(2.0));
    float t2 = t1 + a0;
    r0 = t2;
"""
from __future__ import annotations

import collections
import warnings

import numpy as np

from . import fusion
from . import numba_backend as _nb
from .ir import Eqn, Graph, Var

MIN_GROUP = 2

_C = {np.dtype(np.float32): "float", np.dtype(np.float64): "double", np.dtype(bool): "bool"}
_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)

# ufunc name -> C expression over operands {0}, {1} already in the loop dtype; {T} is the
# loop's C type, {f} the suffix of float functions ("f" for float32, "" for double), {m}
# the letter of the product that is never contracted into an FMA (__fmul_rn, __dmul_rn)
_EXPR = {
    "add": "{0} + {1}", "subtract": "{0} - {1}", "multiply": "__{m}mul_rn({0}, {1})",
    "true_divide": "{0} / {1}", "negative": "-{0}", "square": "__{m}mul_rn({0}, {0})",
    "reciprocal": "({T})(1) / {0}", "absolute": "fabs{f}({0})", "sqrt": "sqrt{f}({0})",
    # a NaN operand wins; of two equal values (+0 and -0) the second (as NumPy)
    "maximum": "(({0} > {1} || {0} != {0}) ? {0} : {1})",
    "minimum": "(({0} < {1} || {0} != {0}) ? {0} : {1})",
    # NumPy's sign of +-0 is +0 and of NaN is NaN
    "sign": "(({0} > ({T})(0)) ? ({T})(1) : (({0} < ({T})(0)) ? ({T})(-1) : {0} * ({T})(0)"
            " + ({T})(0)))",
    "floor": "floor{f}({0})", "ceil": "ceil{f}({0})", "trunc": "trunc{f}({0})",
    "rint": "rint{f}({0})", "copysign": "copysign{f}({0}, {1})",
    "greater": "({0} > {1})", "greater_equal": "({0} >= {1})", "less": "({0} < {1})",
    "less_equal": "({0} <= {1})", "equal": "({0} == {1})", "not_equal": "({0} != {1})",
    "isnan": "isnan({0})", "isinf": "isinf({0})", "isfinite": "isfinite({0})",
    "logical_not": "!{0}",
}
# transcendental functions (double only: float32 goes through double and is rounded)
_MATH = {"sin": "sin", "cos": "cos", "tan": "tan", "arcsin": "asin", "arccos": "acos",
         "arctan": "atan", "sinh": "sinh", "cosh": "cosh", "tanh": "tanh",
         "arcsinh": "asinh", "arccosh": "acosh", "arctanh": "atanh", "exp": "exp",
         "exp2": "exp2", "expm1": "expm1", "log": "log", "log2": "log2", "log10": "log10",
         "log1p": "log1p", "cbrt": "cbrt", "arctan2": "atan2", "hypot": "hypot",
         "power": "pow"}
_BINARY = ("arctan2", "hypot", "power")


def fusible(e):
    """Whether equation ``e`` has a C form here (the Numba backend's typing, less the
    functions with no one-line C form)."""
    name = e.prim.name
    return (name in _EXPR or name in _MATH or name in ("where", "relu",
                                                         "convert_element_type")) \
        and _nb.fusible(e)


def groups(graph):
    """``(start, end)`` of the groups to compile: runs of fusible equations with one
    output shape, at least :data:`MIN_GROUP` long, whose inputs broadcast to it."""
    return fusion.shape_groups(graph, fusible, lambda run, shape: len(run) >= MIN_GROUP
                               and _covers(run, shape))


def _covers(run, shape):
    made = {o.name for e in run for o in e.outvars}
    shapes = [v.shape for e in run for v in e.invars
              if isinstance(v, Var) and v.name not in made]
    return bool(shapes) and np.broadcast_shapes(*shapes) == tuple(shape)


def _cast(x, dt):
    return f"({_C[dt]})({x})"


def _literal(value, dt):
    """A literal operand in the C type ``dt`` (a dtype or a Python type)."""
    if isinstance(value, (bool, np.bool_)):
        c = "true" if value else "false"
    else:
        c = repr(float(value)) if isinstance(value, (float, np.floating)) else repr(int(value))
    return _cast(c, dt) if isinstance(dt, np.dtype) else c


def _element_c(e, operand):
    """The C expression of equation ``e`` from its operands' expressions."""
    ins, out = _nb._typing(e)
    name = e.prim.name
    ops = []
    for v, dt in zip(e.invars, ins):
        if isinstance(v, Var):
            x = operand(v)
            if dt is not None and v.dtype != dt:
                x = _cast(x, dt)
        else:
            x = _literal(v.value, dt if dt is not None else type(v.value))
        ops.append(x)
    if name == "convert_element_type":
        return _cast(ops[0], out)
    T = _C[out]
    if name == "relu":
        return f"(({ops[0]} > ({T})(0) || {ops[0]} != {ops[0]}) ? {ops[0]} : ({T})(0))"
    if name == "where":
        c = e.invars[0]
        if isinstance(c, Var) and c.dtype != np.dtype(bool):
            cond = f"({ops[0]} != ({_C[c.dtype]})(0))"
        elif isinstance(c, Var):
            cond = ops[0]
        else:
            cond = "true" if bool(c.value) else "false"
        return f"({cond} ? {ops[1]} : {ops[2]})"
    if name in _MATH:
        if ins[0] == _F32:
            ops = [_cast(x, _F64) for x in ops]
        call = f"{_MATH[name]}({', '.join(ops)})"
        return _cast(call, out) if ins[0] == _F32 else call
    loop = ins[0]
    expr = _EXPR[name].format(*ops, T=_C[loop], f="f" if loop == _F32 else "",
                              m="f" if loop == _F32 else "d")
    return expr


Source = collections.namedtuple("Source", "in_params out_params operation")


def kernel_source(run, ins, outs):
    """The ``ElementwiseKernel`` arguments computing the equations ``run`` from the
    variables ``ins`` (``a0, a1, ...``) into ``outs`` (``r0, r1, ...``): a
    :class:`Source` of ``in_params``, ``out_params`` and the ``operation``, one
    statement per equation (temporaries ``t0, t1, ...``)."""
    names = {v.name: f"a{i}" for i, v in enumerate(ins)}
    lines = []
    for j, e in enumerate(run):
        o = e.outvars[0]
        lines.append(f"{_C[o.dtype]} t{j} = {_element_c(e, lambda v: names[v.name])};")
        names[o.name] = f"t{j}"
    lines.extend(f"r{j} = {names[o.name]};" for j, o in enumerate(outs))
    return Source(", ".join(f"{v.dtype.name} a{i}" for i, v in enumerate(ins)),
                  ", ".join(f"{o.dtype.name} r{j}" for j, o in enumerate(outs)),
                  "\n".join(lines))


Reduction = collections.namedtuple(
    "Reduction", "in_params out_params map_expr reduce_expr post_map_expr identity name "
                 "reduce_type preamble")


def _closing_sum(graph, start, end, uses_after, final):
    """Whether equation ``end`` sums, over every axis, the one value of the group
    ``start:end`` read after it (so one ``ReductionKernel`` can compute both)."""
    if end >= len(graph.eqns):
        return False
    e = graph.eqns[end]
    if e.prim.name != "sum" or e.params.get("keepdims") or not isinstance(e.invars[0], Var):
        return False
    v, o = e.invars[0], e.outvars[0]
    axis = e.params.get("axis")
    every = axis is None or sorted(a % max(len(v.shape), 1) for a in
                                   (axis if isinstance(axis, tuple) else (axis,))) \
        == list(range(len(v.shape)))
    run = graph.eqns[start:end]
    _, outs = fusion.group_io(run, end, uses_after, final)
    return (every and len(outs) == 1 and outs[0].name == v.name and v.name not in final
            and uses_after.get(v.name) == end and o.dtype == v.dtype and not o.weak
            and v.dtype in (_F32, _F64) and len(v.shape) > 0)


def reduction_source(run, ins, name):
    """The ``ReductionKernel`` arguments summing, over every element, the last value of
    ``run`` (a group, then the ``sum`` closing it): the group is a device function in
    the ``preamble``, mapped over the elements; the sum is in the value's dtype."""
    body, total = run[:-1], run[-1].outvars[0]
    value = body[-1].outvars[0]
    src = kernel_source(body, ins, [value])
    lines = src.operation.splitlines()[:-1]           # (less "r0 = ...;")
    T = _C[value.dtype]
    args = ", ".join(f"const {_C[v.dtype]} a{i}" for i, v in enumerate(ins))
    preamble = (f"__device__ {T} {name}_map({args}) {{\n"
                + "".join(f"    {ln}\n" for ln in lines)
                + f"    return t{len(body) - 1};\n}}\n")
    return Reduction(src.in_params, f"{total.dtype.name} r0",
                     f"{name}_map({', '.join(f'a{i}' for i in range(len(ins)))})",
                     "a + b", "r0 = a", "0", name, T, preamble)


def _kernel_eqn(run, end, uses_after, final, xp, number):
    ins, outs = fusion.group_io(run, end, uses_after, final)
    name = f"funcgrad_kernel_{number}"
    if run[-1].prim.name == "sum":
        src = reduction_source(run, ins, name)
        kernel = xp.ReductionKernel(
            src.in_params, src.out_params, src.map_expr, src.reduce_expr,
            src.post_map_expr, src.identity, src.name, reduce_type=src.reduce_type,
            preamble=src.preamble)
    else:
        src = kernel_source(run, ins, outs)
        kernel = xp.ElementwiseKernel(src.in_params, src.out_params, src.operation, name)
    # CuPy compiles at the first call: should that fail (a CUDA toolkit without some
    # function), the group runs op by op from then on, with a warning, instead of failing
    # every call of the jitted function
    state = {"first": True, "fallback": None}
    dtypes = [v.dtype for v in ins]

    def impl(*args):
        if state["fallback"] is not None:
            return state["fallback"](*args)
        # the module's own promotion may have given an input another dtype than the
        # graph recorded (as compiler._fused_eqn allows for): the kernel's are fixed
        args = [a if getattr(a, "dtype", None) == dt else xp.asarray(a, dt)
                for a, dt in zip(args, dtypes)]
        try:
            res = kernel(*args)
        except Exception as err:        # noqa: BLE001 - only at the first call
            if not state["first"]:
                raise
            state["fallback"] = _nb._compile_graph(Graph(ins, [], run, outs), False)
            warnings.warn(f"funcgrad.jit: the generated kernel {name} failed "
                          f"({type(err).__name__}: {err}); its group runs op by op",
                          RuntimeWarning, stacklevel=2)
            return state["fallback"](*args)
        state["first"] = False
        return list(res) if isinstance(res, tuple) else [res]
    impl.source = src
    return Eqn(fusion.Kernel(f"kernel[{'+'.join(e.prim.name for e in run)}]", impl),
               ins, {}, outs)


def fuse(graph, xp):
    """``graph`` with each group of :func:`groups` replaced by one equation running an
    ``xp.ElementwiseKernel`` generated for it, or, with the ``sum`` over every axis that
    closes it (:func:`_closing_sum`), an ``xp.ReductionKernel`` where ``xp`` has one."""
    found = groups(graph)
    if not found:
        return graph
    if hasattr(xp, "ReductionKernel"):
        uses_after = fusion.last_uses(graph)
        final = {v.name for v in graph.outvars if isinstance(v, Var)}
        found = [(a, b + 1) if _closing_sum(graph, a, b, uses_after, final) else (a, b)
                 for a, b in found]
    return fusion.replace_groups(
        graph, found, lambda run, end, uses_after, final, n:
        _kernel_eqn(run, end, uses_after, final, xp, n))
