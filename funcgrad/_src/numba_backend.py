"""jit's CPU backend on Numba (``pip install "funcgrad[compile]"``): each group of
consecutive elementwise equations becomes one native loop.

What it does, for a graph jit compiled on NumPy arrays:

* **Groups**: the runs of :func:`fusion.elementwise_runs` whose equations Numba can
  compute like NumPy (:data:`_EXPR`, ``where``, ``relu``, casts; float32/float64/bool
  values), cut where the output shape changes; groups of at least :data:`MIN_GROUP`
  equations (:data:`MIN_GROUP_SMALL` on arrays under :data:`SMALL` elements) are kept:
  a Numba call costs about as much as a NumPy ufunc call.
* **Kernels**: one generated ``@numba.njit`` function per group, looping over the
  group's shape once and computing every equation per element, in registers; inputs
  are broadcast by index (a dimension an input does not have, or has as 1, reads
  element 0), adjacent dimensions that every input treats alike are merged into one,
  and constants broadcast from a scalar (a cotangent seed) are read as scalars. Every
  operation computes in the dtype NumPy's ufunc would use (``resolve_dtypes``) and
  rounds to the recorded dtype, so float32 stays float32.
* **Exactness** (no ``fastmath``; ``error_model="numpy"``: division by zero gives
  inf/NaN as in NumPy). Max distance from NumPy's own ufunc over 10^6 values of every
  magnitude, near domain boundaries and overflow thresholds, and 0, -0, +-inf, NaN,
  subnormals (``python benchmarks/numba_ulp.py``; NumPy 2.4, Numba 0.68, an AVX2 CPU):

  ==================================================  ========  ========
  operations                                          float64   float32
  ==================================================  ========  ========
  arithmetic, ``sqrt``, ``power``, ``absolute``,       0         0
  ``sign``, rounding, ``copysign``, comparisons,
  ``isnan``/``isinf``/``isfinite``, ``maximum``/
  ``minimum`` (NaN and signed zeros as NumPy)
  ``tan``, inverse trigonometric and hyperbolic        0         0
  functions, ``sinh``, ``cosh``, ``exp2``, ``expm1``,
  ``log2``, ``log10``, ``log1p``, ``arctan2``,
  ``hypot``, ``logaddexp``, ``logaddexp2``
  ``sin``, ``cos``                                     0         1 ulp
  ``cbrt``                                             0         1 ulp
  ``exp``                                              0         2 ulp
  ``log``                                              0         NumPy
  ``sigmoid`` (funcgrad's primitive, same steps)       0         NumPy
  ``tanh`` (our own, :func:`_tanh_source`)            1 ulp     1 ulp
  ==================================================  ========  ========

  0: bit-identical (``where``, ``relu`` and casts select or round: bit-identical in
  the tests too). Each function is Numba's for the loop dtype (float32 ``tanh``: the
  float64 one, rounded), which calls the C library's (``sinf``, ``atan2f``, ``log1pf``
  ...): what NumPy calls where it has no SIMD version of its own, so those agree to the
  bit. Where NumPy uses its own SIMD code (on this CPU float32 ``sin``/``cos``/``exp``/
  ``log``/``tanh``, float64 ``tanh``) or Numba does not call the C library (float32
  ``cbrt``: a float64 ``pow``), results differ by both errors. "NumPy": no method
  tried stayed within 2 ulp, so those equations are not fused (:data:`_UNFAITHFUL`):
  they run on NumPy and cut their group. Float64 ``tanh`` was one (the C library's
  was 3 ulp from NumPy's: 2.06 and 1.18 ulp from long double tanh; ``expm1(2x) /
  (expm1(2x) + 2)`` too) until its own series-and-exp version here (1 ulp); float32
  ``log``: 3 ulp both in float32 and in float64 rounded, so NumPy's
  own is over 2 ulp from the exact value. The figures depend on the CPU (NumPy picks
  its SIMD versions at run time, others on AVX-512): rerun the script on another one.
* **No stall**: kernels compile on one background thread while the first calls run
  the NumPy replay; the compiled graph replaces the replay when all its kernels are
  ready (``jit(f).lower(x).compile(wait=True)`` waits for it). A kernel that meets
  arrays it was not compiled for (a non-contiguous view) runs its group on NumPy
  instead of compiling on the caller's thread.
* **Disk cache**: each kernel's source is written to ``$FUNCGRAD_CACHE_DIR`` (default
  ``~/.cache/funcgrad/numba``) under a name hashed from the source, the argument types
  and the Numba version, and imported from there, so Numba's ``cache=True`` keeps the
  machine code next to it: a second process loads instead of compiling
  (:data:`stats` counts both).

Graphs that jit runs on slices of a batch (row splitting, rows.py) get kernels in
each part rows.py compiles (:func:`swapping`: each part swaps in its kernels when
ready). Graphs on device arrays keep their own path. Under ``debug_nans`` jit runs
uncompiled, so the check still names the primitive.

A ``scan``'s or ``while_loop``'s loop runs as one native function when every equation of
its step can be written in Numba (numba_loops.py: elementwise runs, small matrix
products, transposes, reshapes, slices, sums, ``cond``), through :func:`register_rewrite`.

**Threads**: a kernel writes the rows ``lo:hi`` of its outputs' first (merged)
dimension, so a big group's rows are cut into ranges run at once on the threads of the
process's budget (threads.py: ``num_threads``, adapting to a busy machine; one thread
inside a row split, which already keeps every thread busy), when each range gets at
least ``threads.MIN_CHUNK_WORK`` element-operations. The kernels hold no GIL.

Not done yet: reductions closing a group at the top level (NumPy's pairwise summation
order would have to be reproduced to keep results equal).
"""
from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import queue
import sys
import threading
import warnings
from concurrent.futures import Future

import numpy as np

from . import fusion
from . import threads as _threads
from .errors import FuncgradError, FuncgradValueError
from .ir import Eqn, Graph, Literal, Var

INSTALL_HINT = 'pip install "funcgrad[compile]"'
BACKENDS = ("numpy", "numba")
# Equations per group worth a kernel: a Numba call costs about one NumPy ufunc call, so
# on small arrays (fewer than SMALL elements) two equations gained nothing (a jitted
# x * y + 1.5 took 1.25x the replay's time at 10 elements, 0.75-0.96x from 1000 on;
# three took 0.55-0.92x at every size; noisy 2-core VM)
MIN_GROUP = 2
MIN_GROUP_SMALL = 3
SMALL = 1024
_VERSION = "1"           # of the generated code: part of every cache key

# True: kernels compile on the calling thread at jit's first call (tests: deterministic)
synchronous = False
# True: a kernel that fails to compile raises (tests) instead of warning
strict = False
# kernels loaded from the disk cache and compiled, in this process
stats = {"loaded": 0, "compiled": 0}


class MissingExtraError(FuncgradError, ImportError):
    """An optional dependency is needed for what was asked (an ImportError)."""


_available = None
_compile_graph = None     # compiler.compile_graph, registered by compiler.py
_rewrites = []            # eqn -> its native form or None (numba_loops.py registers one)


def register_graph_compiler(fn):
    """The NumPy code generator (``fn(graph, host) -> f(*inputs)``) of the layer above:
    kernels call into its code and fall back on it."""
    global _compile_graph
    _compile_graph = fn


def register_rewrite(fn):
    """Register ``fn(eqn) -> Eqn or None``: an equation of a compiled graph replaced by
    the one ``fn`` returns (a ``scan`` running its loop natively, numba_loops.py)."""
    _rewrites.append(fn)


def _rewritten(graph):
    """``graph`` with the registered rewrites applied; the same object when none
    applies."""
    eqns, changed = [], False
    for e in graph.eqns:
        for fn in _rewrites:
            new = fn(e)
            if new is not None:
                e, changed = new, True
                break
        eqns.append(e)
    if not changed:
        return graph
    return Graph(graph.invars, graph.consts, eqns, graph.outvars, graph.in_tree,
                 graph.out_tree, graph.arg_names)


def worth_compiling(graph):
    """Whether ``graph`` has a group worth a kernel or an equation a rewrite applies
    to (the cheap check, on the calling thread)."""
    return bool(groups(graph)) or any(fn(e) is not None for e in graph.eqns
                                      for fn in _rewrites)


def available():
    """Whether Numba can be imported (looked up once, without importing it)."""
    global _available
    if _available is None:
        try:
            _available = importlib.util.find_spec("numba") is not None
        except (ImportError, ValueError):      # e.g. sys.modules["numba"] = None
            _available = False
    return _available


def check_backend(name, where):
    """Raise unless ``name`` is a jit backend usable here."""
    if name not in BACKENDS:
        raise FuncgradValueError(
            f"{where}: unknown jit backend {name!r}; the backends are {list(BACKENDS)}")
    if name == "numba" and not available():
        raise MissingExtraError(
            f"{where}: the 'numba' jit backend needs Numba, which is not installed: "
            f"{INSTALL_HINT} (or use backend='numpy', the NumPy replay)")


def cache_dir():
    d = os.environ.get("FUNCGRAD_CACHE_DIR")
    if d:
        return os.path.join(d, "numba")
    return os.path.join(os.path.expanduser("~"), ".cache", "funcgrad", "numba")


# --------------------------------------------------------------------------------------
# Which equations, and the code for one element of each

_F = (np.dtype(np.float32), np.dtype(np.float64))
_B = np.dtype(bool)
_KINDS = _F + (_B,)

# ufunc name -> expression over the operands {0}, {1}, already in the loop dtype
_EXPR = {
    "add": "{0} + {1}", "subtract": "{0} - {1}", "multiply": "{0} * {1}",
    "true_divide": "{0} / {1}", "negative": "-{0}", "square": "{0} * {0}",
    "reciprocal": "np.reciprocal({0})", "absolute": "np.absolute({0})",
    "sqrt": "np.sqrt({0})", "power": "np.power({0}, {1})",
    # NumPy: a NaN operand wins; of two equal values (+0 and -0) the second
    "maximum": "({0} if {0} > {1} or {0} != {0} else {1})",
    "minimum": "({0} if {0} < {1} or {0} != {0} else {1})",
    # NumPy's sign of +-0 is +0 and of NaN is NaN
    "sign": "(1.0 if {0} > 0 else (-1.0 if {0} < 0 else {0} * 0 + 0))",
    "floor": "np.floor({0})", "ceil": "np.ceil({0})", "trunc": "np.trunc({0})",
    "rint": "np.rint({0})", "copysign": "np.copysign({0}, {1})",
    "greater": "{0} > {1}", "greater_equal": "{0} >= {1}", "less": "{0} < {1}",
    "less_equal": "{0} <= {1}", "equal": "{0} == {1}", "not_equal": "{0} != {1}",
    "isnan": "np.isnan({0})", "isinf": "np.isinf({0})", "isfinite": "np.isfinite({0})",
    "logical_not": "not {0}",
}
# transcendental functions, computed by Numba's function of the loop dtype (mostly the C
# library's; see "Exactness" in the docstring)
_MATH = ("sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
         "arcsinh", "arccosh", "arctanh", "exp", "exp2", "expm1", "log", "log2", "log10",
         "log1p", "cbrt", "arctan2", "hypot", "logaddexp", "logaddexp2")
_BINARY_MATH = ("arctan2", "hypot", "logaddexp", "logaddexp2")
for _n in _MATH:
    _EXPR[_n] = f"np.{_n}({{0}}, {{1}})" if _n in _BINARY_MATH else f"np.{_n}({{0}})"
del _n
# float32 loops computed in float64 and rounded: the C library's tanhf was 3 ulp from
# NumPy's float32 tanh, the float64 one rounded 1 ulp
_VIA_FLOAT64 = ("tanh",)
# (ufunc, loop dtype) left to NumPy: no method found here stays within 2 ulp of NumPy's
# own SIMD version (measured with benchmarks/numba_ulp.py; see the docstring)
_UNFAITHFUL = {("log", np.dtype(np.float32)),
               # funcgrad's float32 sigmoid is itself 3 ulp from the correctly rounded
               # value (its float32 exp): nothing accurate comes within 2 ulp of it
               ("sigmoid", np.dtype(np.float32))}
try:
    from numpy._core import _multiarray_umath as _umath
except ImportError:                                 # NumPy 1
    from numpy.core import _multiarray_umath as _umath
# NumPy runs some float ufuncs in AVX-512 code of its own where the CPU has it
NUMPY_AVX512 = bool(getattr(_umath, "__cpu_features__", {}).get("AVX512_SKX"))
# there these are 3 ulp from the C library's result that Numba's code gives
# (benchmarks/numba_ulp.py, 300,000 values, on an AMD EPYC with AVX-512)
if NUMPY_AVX512:
    _UNFAITHFUL |= {("cbrt", np.dtype(np.float64))} | {
        (n, np.dtype(np.float32)) for n in ("tan", "arcsin", "log10", "arctan2")}
# tanh is our own (the C library's was 3 ulp from NumPy's SIMD tanh): see _tanh_source
_EXPR["tanh"] = "_tanh64({0})"


def _tanh_source(terms=26, small=0.7, horner=2):
    """Source of ``_tanh64(x)``, a float64 tanh within 1 ulp of NumPy's (measured over
    3.7e6 values with benchmarks/numba_ulp.py's method; the C library's was 3 ulp):
    for ``|x| < small`` the Maclaurin series ``x + x^3 P(x^2)``, its coefficients
    ``2^2n (2^2n - 1) B_2n / (2n)!`` (Bernoulli numbers, computed exactly here; the terms
    shrink by about 0.2 each at 0.7, so 26 of them leave the truncation far below an
    ulp), ``P``'s first ``horner`` terms by Horner's rule and the rest by Estrin's scheme
    (pairs combined by powers x^4, x^8, ...: a short chain of dependent operations, about
    10 ns per value where Horner's 26 steps took 30), ``x`` itself below 2^-27; beyond,
    ``1 - 2 / (exp(2|x|) + 1)`` with its sign, whose subtracted part is under 1/3
    there, so ``exp``'s error moves the result by under half an ulp. NaN, +-0 and +-inf
    come out as NumPy's. (All of P by Estrin's scheme was 2 ulp from NumPy's.)"""
    from fractions import Fraction
    n = 2 * terms + 2
    bern = [Fraction(1)] + [Fraction(0)] * n
    for m in range(1, n + 1):
        bern[m] = -sum(math.comb(m + 1, k) * bern[k] for k in range(m)) / (m + 1)
    coef = [float(Fraction(4 ** k * (4 ** k - 1)) * bern[2 * k] / math.factorial(2 * k))
            for k in range(2, terms + 2)]
    parts, power, lines = [repr(c) for c in coef[horner:]], "x2", []
    while len(parts) > 1:
        parts = [f"({parts[i]} + ({parts[i + 1]}) * {power})" if i + 1 < len(parts)
                 else parts[i] for i in range(0, len(parts), 2)]
        if len(parts) > 1:
            lines.append(f"        p{len(lines)} = {power} * {power}\n")
            power = f"p{len(lines) - 1}"
    poly = parts[0]
    for c in coef[:horner][::-1]:
        poly = f"({c!r} + x2 * {poly})"
    return ("@numba.njit(cache=True, nogil=True, error_model=\"numpy\")\n"
            "def _tanh64(x):\n"
            "    a = abs(x)\n"
            f"    if a < {small!r}:\n"
            "        if a < 7.450580596923828e-09:\n"
            "            return x\n"
            "        x2 = x * x\n"
            + "".join(lines)
            + f"        return x + x * (x2 * {poly})\n"
            "    y = 1.0 - 2.0 / (np.exp(2.0 * a) + 1.0)\n"
            "    return y if x >= 0 else -y\n")


def _sigmoid_source(dt):
    """Source of ``_sigmoid_<dt>(x)``: funcgrad's sigmoid on NumPy arrays
    (prims/elementwise.py) step for step in ``dt``: ``1 / (1 + exp(-x))`` (float64:
    bit-identical; float32: as its ``exp``, see the table)."""
    return ("@numba.njit(cache=True, nogil=True, error_model=\"numpy\")\n"
            f"def _sigmoid_{dt}(x):\n"
            f"    return np.{dt}(1) / (np.{dt}(1) + np.exp(-x))\n")


# helper functions a kernel may call, written into its module when it does
_HELPERS = {"_tanh64": _tanh_source, "_sigmoid_float64": lambda: _sigmoid_source("float64"),
            "_sigmoid_float32": lambda: _sigmoid_source("float32")}
_helper_source = {}


def register_helper(name, make):
    """Let generated modules hold the helper function ``name`` (its source: ``make()``),
    written into those whose kernel calls it (numba_loops.py's matrix products)."""
    _HELPERS[name] = make


def module_source(body):
    """A generated module: the imports, the helper functions ``body`` calls, then
    ``body`` (the ``kernel`` function's source)."""
    parts = ["import numpy as np\nimport numba\n\n\n"]
    for name, make in _HELPERS.items():
        if name + "(" in body:
            if name not in _helper_source:
                _helper_source[name] = make()
            parts.append(_helper_source[name] + "\n\n")
    return "".join(parts) + body


def _literal_dtype(v):
    """The dtype argument of ``resolve_dtypes`` for a literal: a Python type (weak) or
    the dtype of a NumPy scalar; None when it cannot take part."""
    x = v.value
    if type(x) in (bool, int, float):
        return type(x) if math.isfinite(x) else None
    if isinstance(x, np.generic) and x.dtype in _KINDS and np.isfinite(x):
        return x.dtype
    return None


def _typing(e):
    """``(operand dtypes, output dtype)`` of the loop computing ``e`` per element, or
    None when ``e`` is not one this backend computes."""
    name = e.prim.name
    if e.prim.multiple_results or len(e.outvars) != 1:
        return None
    o = e.outvars[0]
    if o.weak or o.dtype not in _KINDS:
        return None
    args = []
    for v in e.invars:
        if isinstance(v, Var):
            if v.weak or v.dtype not in _KINDS:
                return None
            args.append(v.dtype)
        elif isinstance(v, Literal):
            d = _literal_dtype(v)
            if d is None:
                return None
            args.append(d)
        else:
            return None
    if name == "convert_element_type":
        return ([args[0]], o.dtype) if len(args) == 1 and isinstance(args[0], np.dtype) \
            else None
    if e.params:
        return None
    if name in ("relu", "sigmoid"):
        if len(args) != 1 or args[0] != o.dtype or o.dtype not in _F \
                or (name, o.dtype) in _UNFAITHFUL:
            return None
        return [o.dtype], o.dtype
    if name == "where":
        if len(args) != 3:
            return None
        return [None, o.dtype, o.dtype], o.dtype
    impl = e.prim.impl
    if (name not in _EXPR or not isinstance(impl, np.ufunc)
            or getattr(np, name, None) is not impl or impl.nin != len(args) or impl.nout != 1):
        return None
    try:
        dts = impl.resolve_dtypes(tuple(args) + (None,))
    except (TypeError, ValueError, OverflowError):
        return None
    if any(d not in _KINDS for d in dts) or dts[-1] != o.dtype:
        return None
    if name == "logical_not" and dts[0] != _B:
        return None
    if (name, dts[-1]) in _UNFAITHFUL:
        return None
    return list(dts[:-1]), dts[-1]


def fusible(e):
    return _typing(e) is not None


def _cast(expr, dt):
    return f"np.{dt.name if dt != _B else 'bool_'}({expr})"


def _element_code(e, operand):
    """One line's expression for equation ``e`` from its operands' expressions."""
    ins, out = _typing(e)
    name = e.prim.name
    ops = []
    for v, dt in zip(e.invars, ins):
        x = operand(v)
        if dt is not None and (not isinstance(v, Var) or v.dtype != dt):
            x = _cast(x, dt)
        ops.append(x)
    if name == "convert_element_type":
        return _cast(ops[0], out)
    if name == "relu":
        return _cast(f"({ops[0]} if {ops[0]} > 0 or {ops[0]} != {ops[0]} else 0)", out)
    if name == "sigmoid":
        return f"_sigmoid_{out.name}({ops[0]})"
    if name == "where":
        c = e.invars[0]
        cond = ops[0] if isinstance(c, Var) and c.dtype == _B else f"{ops[0]} != 0"
        return f"({ops[1]} if {cond} else {ops[2]})"
    if name in _VIA_FLOAT64 and out == _F[0]:
        ops = [_cast(x, _F[1]) for x in ops]
    return _cast(_EXPR[name].format(*ops), out)


# --------------------------------------------------------------------------------------
# Groups


def groups(graph):
    """``(start, end)`` of the equation groups this backend compiles: runs of fusible
    equations with one output shape, at least :data:`MIN_GROUP` long
    (:data:`MIN_GROUP_SMALL` under :data:`SMALL` elements)."""
    return fusion.shape_groups(graph, fusible, lambda run, shape: len(run) >= (
        MIN_GROUP if math.prod(shape) >= SMALL else MIN_GROUP_SMALL))


def _layout(shape, in_shapes):
    """Merge the loop's dimensions: drop the dimensions of size 1 and join neighbours
    that every input reads alike (all along, or all broadcast). Returns the merged loop
    shape and, per input, its shape in those dimensions (1 where it is broadcast)."""
    nd = len(shape)
    padded = [(1,) * (nd - len(s)) + tuple(s) for s in in_shapes]
    dims = [k for k in range(nd) if shape[k] != 1]
    full = [[p[k] == shape[k] for k in dims] for p in padded]
    merged, pattern = [], []      # merged sizes; per merged dim, the inputs reading along
    for j, k in enumerate(dims):
        col = tuple(f[j] for f in full)
        if merged and pattern[-1] == col:
            merged[-1] *= shape[k]
        else:
            merged.append(shape[k])
            pattern.append(col)
    if not merged:
        merged, pattern = [1], [tuple(False for _ in in_shapes)]
    per_input = [tuple(n if col[i] else 1 for n, col in zip(merged, pattern))
                 for i in range(len(in_shapes))]
    return tuple(merged), per_input


def _compact_const(x, shape):
    """A constant as the loop reads it: C-contiguous, with the dimensions it is broadcast
    along (stride 0, e.g. a cotangent seed of ones) cut to length 1."""
    x = np.asarray(x)
    x = x.reshape((1,) * (len(shape) - x.ndim) + x.shape)
    cut = tuple(slice(0, 1) if st == 0 and n > 1 else slice(None)
                for st, n in zip(x.strides, x.shape))
    return np.ascontiguousarray(x[cut])


def kernel_source(run, ins, in_shapes, outs):
    """Source of the Numba function computing the group ``run`` over inputs of
    ``in_shapes`` (as the loop reads them), and the merged loop shape and per-input
    shapes. The function, ``kernel(*inputs, *outputs, lo, hi)``, writes the outputs
    ``outs`` (arrays of the merged shape) for the indices ``lo:hi`` of its first
    dimension (so that threads can each take a range)."""
    shape = outs[0].shape if outs else run[-1].outvars[0].shape
    loop, per_input = _layout(shape, in_shapes)
    nd = len(loop)
    idx = [f"i{k}" for k in range(nd)]
    lines = []
    for k in range(nd):
        src = next((i for i, s in enumerate(per_input) if s[k] == loop[k] != 1), None)
        size = f"a{src}.shape[{k}]" if src is not None else str(loop[k])
        lines.append(f"    n{k} = {size}")
    body, pre = [], []
    names = {}
    for i, (v, s) in enumerate(zip(ins, per_input)):
        at = ", ".join(idx[k] if s[k] != 1 else "0" for k in range(nd))
        if all(n == 1 for n in s):
            pre.append(f"    x{i} = a{i}[{', '.join('0' for _ in range(nd))}]")
        else:
            body.append(f"x{i} = a{i}[{at}]")
        names[v.name] = f"x{i}"
    consts = {}

    def operand(v):
        if isinstance(v, Var):
            return names[v.name]
        key = (type(v.value), repr(v.value))
        if key not in consts:
            consts[key] = f"k{len(consts)}"
            pre.append(f"    k{len(consts) - 1} = {v.value!r}")
        return consts[key]
    for j, e in enumerate(run):
        expr = _element_code(e, operand)
        names[e.outvars[0].name] = f"t{j}"
        body.append(f"t{j} = {expr}")
    at = ", ".join(idx)
    for j, o in enumerate(outs):
        body.append(f"r{j}[{at}] = {names[o.name]}")
    lines.extend(pre)
    indent = "    "
    for k in range(nd):
        lines.append(f"{indent}for i{k} in range({'lo, hi' if k == 0 else f'n{k}'}):")
        indent += "    "
    lines.extend(indent + b for b in body)
    params = [f"a{i}" for i in range(len(ins))] + [f"r{j}" for j in range(len(outs))]
    src = module_source(
        "@numba.njit(cache=True, nogil=True, error_model=\"numpy\")\n"
        f"def kernel({', '.join(params + ['lo', 'hi'])}):\n"
        + "\n".join(lines) + "\n    return 0\n")
    return src, loop, per_input


# --------------------------------------------------------------------------------------
# Loading kernels: the disk cache


_loaded = {}          # (path, signature) -> dispatcher
_load_lock = threading.Lock()


def _signature(in_shapes, in_dtypes, scalars=(), outputs=()):
    from numba import from_dtype, types
    return (tuple(types.Array(from_dtype(dt), len(s), "C", readonly=True)
                  for s, dt in zip(in_shapes, in_dtypes))
            + tuple(types.Array(from_dtype(np.dtype(dt)), nd, "C") for nd, dt in outputs)
            + tuple(getattr(types, t) for t in scalars))


def load_kernel(src, in_shapes, in_dtypes, scalars=(), outputs=()):
    """The Numba dispatcher of ``src`` compiled for C-contiguous inputs of those
    dimensions and dtypes (read-only or not), then writable C-contiguous arrays of the
    ``(ndim, dtype)`` in ``outputs``, then arguments of the Numba scalar types named in
    ``scalars`` (``"int64"``...), loaded from the disk cache when it holds it;
    compiling further signatures is disabled (other arguments raise TypeError)."""
    import numba
    sig_key = ";".join([f"{np.dtype(d).name}[{len(s)}]" for s, d in zip(in_shapes, in_dtypes)]
                       + [f"out {np.dtype(d).name}[{nd}]" for nd, d in outputs]
                       + list(scalars))
    h = hashlib.sha256("\n".join((_VERSION, numba.__version__, sig_key, src)).encode())
    name = "fgk_" + h.hexdigest()[:24]
    d = cache_dir()
    path = os.path.join(d, name + ".py")
    with _load_lock:
        got = _loaded.get(path)
        if got is not None:
            return got
        os.makedirs(d, exist_ok=True)
        try:
            with open(path) as f:
                same = f.read() == src
        except OSError:
            same = False
        if not same:
            # rewritten only when missing: a new modification time would make Numba
            # throw away the machine code cached next to it
            tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
            with open(tmp, "w") as f:
                f.write(src)
            os.replace(tmp, path)
        # (registered as a module: Numba's cached code finds its globals by module name)
        modname = "funcgrad_numba_" + name
        module = sys.modules.get(modname)
        if module is None:
            spec = importlib.util.spec_from_file_location(modname, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[modname] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[modname]
                raise
        kern = module.kernel
        sig = _signature(in_shapes, in_dtypes, scalars, outputs)
        kern.compile(sig)
        hits = sum(kern.stats.cache_hits.values())
        stats["loaded" if hits else "compiled"] += 1
        kern.disable_compile()
        _loaded[path] = kern
        return kern


# --------------------------------------------------------------------------------------
# The fused graph


class _NumbaGroup:
    """A group prepared for compiling: its kernel's source, how its inputs are passed,
    and the NumPy code of the group (run when the kernel does not accept the arrays)."""

    def __init__(self, run, end, uses_after, final, consts, number):
        ins, outs = fusion.group_io(run, end, uses_after, final)
        self.run, self.ins, self.outs = run, ins, outs
        self.number = number
        shape = run[-1].outvars[0].shape
        self.args = []          # per kernel input: graph Var, or None (a constant)
        self.const_values = []
        in_shapes = []
        for v in ins:
            if v.name in consts:
                x = _compact_const(consts[v.name], shape)
                self.args.append(None)
                self.const_values.append(x)
                in_shapes.append(x.shape)
            else:
                self.args.append(v)
                self.const_values.append(None)
                in_shapes.append(v.shape)
        self.source, self.loop, self.per_input = kernel_source(run, ins, in_shapes, outs)
        self.in_dtypes = [v.dtype for v in ins]
        const_ins = [v for v in ins if v.name in consts]
        self.fallback = _compile_graph(
            Graph([v for v in ins if v.name not in consts],
                  [(v, consts[v.name]) for v in const_ins], run, outs), True)
        self.kernel = None

    def load(self):
        self.kernel = load_kernel(self.source, self.per_input, self.in_dtypes,
                                  ("int64", "int64"),
                                  [(len(self.loop), o.dtype) for o in self.outs])

    def eqn(self):
        """The equation standing for the group, calling the loaded kernel."""
        ns = {"kernel": self.kernel, "fallback": self.fallback}
        params, args = [], []
        for i, (v, s) in enumerate(zip(self.args, self.per_input)):
            if v is None:
                ns[f"c{i}"] = self.const_values[i]
                args.append(f"c{i}")
                continue
            params.append(f"a{i}")
            args.append(f"a{i}" if v.shape == s else f"a{i}.reshape({s!r})")
        rets, allocs = [], []
        for j, o in enumerate(self.outs):
            ns[f"d{j}"] = o.dtype
            allocs.append(f"    r{j} = empty({self.loop!r}, d{j})\n")
            rets.append(f"r{j}" if o.shape == self.loop else f"r{j}.reshape({o.shape!r})")
        ns["empty"] = np.empty
        ns["run"] = _run_chunks
        rows = self.loop[0]
        work = math.prod(self.loop[1:]) * len(self.run)
        every = "".join(f"{a}, " for a in args + [f"r{j}" for j in range(len(self.outs))])
        src = (f"def group({', '.join(params)}):\n" + "".join(allocs)
               + f"    try:\n        run(kernel, ({every}), {rows}, {work})\n"
               f"    except TypeError:\n        return fallback({', '.join(params)})\n"
               f"    return {'(' + ', '.join(rets) + ',)' if rets else '()'}\n")
        exec(compile(src, f"<funcgrad.jit numba group {self.number}>", "exec"), ns)
        fn = ns["group"]
        fn.source = self.source
        name = f"numba[{'+'.join(e.prim.name for e in self.run)}]"
        return Eqn(fusion.Kernel(name, fn), [v for v in self.args if v is not None],
                   {}, self.outs)


def _run_chunks(kernel, args, rows, work):
    """``kernel(*args, 0, rows)``, its rows cut into ranges run on the threads of the
    process's budget (threads.py) when each gets enough work (``work`` per row: the
    elements of a row times the equations of the group); one thread inside a split."""
    k = _threads.chunks(rows, work)
    if k <= 1:
        kernel(*args, 0, rows)
        return
    _threads.map_bounds(lambda a, b: kernel(*args, a, b),
                        [(j * rows // k, (j + 1) * rows // k) for j in range(k)])


def plan(graph):
    """The groups of ``graph`` to compile (a list of :class:`_NumbaGroup`) and their
    ``(start, end)``, in order; empty lists when there is nothing worth compiling."""
    found = groups(graph)
    if not found:
        return [], []
    consts = {v.name: x for v, x in graph.consts}
    uses_after = fusion.last_uses(graph)
    final = {v.name for v in graph.outvars if isinstance(v, Var)}
    return [_NumbaGroup(graph.eqns[a:b], b, uses_after, final, consts, n)
            for n, (a, b) in enumerate(found)], found


def build(graph, host=True):
    """``f(*flat_inputs)``: ``graph`` compiled with its groups as Numba kernels
    (compiling them now, on this thread); None when no group is worth it."""
    if not available():
        return None
    original, graph = graph, _rewritten(graph)
    prepared, found = plan(graph)
    if not prepared:
        return _compile_graph(graph, host) if graph is not original else None
    ok = {}
    for g in prepared:
        try:
            g.load()
            ok[g.number] = g
        except Exception as err:       # noqa: BLE001 - the replay is always there
            if strict:
                raise
            warnings.warn(f"funcgrad.jit (numba backend): a kernel failed to compile; its "
                          f"group runs on NumPy ({type(err).__name__}: {err})",
                          RuntimeWarning, stacklevel=2)
    if not ok:
        return _compile_graph(graph, host) if graph is not original else None
    kept = [(ab, ok[n]) for n, ab in enumerate(found) if n in ok]
    by_start = {ab: g for ab, g in kept}
    fused = fusion.replace_groups(
        graph, [ab for ab, _ in kept],
        lambda run, end, uses_after, final, n: by_start[(end - len(run), end)].eqn())
    return _compile_graph(fused, host)


# --------------------------------------------------------------------------------------
# The background compiler


_jobs = queue.Queue()
_worker = None
_worker_lock = threading.Lock()


def _after_fork():
    """A forked child starts with no compiler thread and no lock held by one."""
    global _jobs, _worker, _worker_lock, _load_lock
    _jobs = queue.Queue()
    _worker = None
    _worker_lock = threading.Lock()
    _load_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _work():
    while True:
        fut, job = _jobs.get()
        if fut.set_running_or_notify_cancel():
            try:
                fut.set_result(job())
            except BaseException as err:   # noqa: BLE001 - reported through the future
                fut.set_exception(err)


def submit(job):
    """Run ``job()`` on the compiler thread (one daemon thread, jobs in order); a
    Future of its result. With :data:`synchronous` set, run it now."""
    global _worker
    fut = Future()
    if synchronous:
        fut.set_running_or_notify_cancel()
        try:
            fut.set_result(job())
        except BaseException as err:   # noqa: BLE001
            if strict:
                raise
            fut.set_exception(err)
        return fut
    with _worker_lock:
        if _worker is None or not _worker.is_alive():
            _worker = threading.Thread(target=_work, name="funcgrad-numba-compiler",
                                       daemon=True)
            _worker.start()
    _jobs.put((fut, job))
    return fut


def drain():
    """Wait until the jobs submitted so far are done (they run in order)."""
    submit(lambda: True).result()


def swapping(graph, host=True, replay=None):
    """``f(*flat_inputs)`` running ``graph``'s NumPy replay until its kernels are built
    in the background, and them from then on (for the parts of a graph that jit runs
    on slices of a batch: rows.py compiles them, some lazily per slice length); the
    replay itself when there is nothing to compile. ``f.pending`` is the Future of the
    kernels. ``replay``: the graph's NumPy replay when already compiled."""
    if replay is None:
        replay = _compile_graph(graph, host)
    if not available() or not worth_compiling(graph):
        return replay
    cell = [replay]

    def run(*args):
        return cell[0](*args)

    def job():
        fn = build(graph, host)
        if fn is not None:
            cell[0] = fn
        return fn is not None
    run.pending = submit(job)
    return run


def start(entry, graph, wrap=None):
    """Compile ``graph``'s groups in the background and make the result ``entry.fn``
    once ready (``wrap(fn)`` first, when given); a Future, or None when ``graph`` has no
    group worth compiling (the cheap check runs here, the rest on the compiler
    thread)."""
    if not worth_compiling(graph):
        return None

    def job():
        fn = build(graph)
        if fn is not None:
            entry.fn = wrap(fn) if wrap is not None else fn
        return fn is not None
    return submit(job)
