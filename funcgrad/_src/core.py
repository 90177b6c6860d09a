"""The tracing core: primitives, the trace stack, ``bind`` and the ``Tracer`` array type.

A transformation runs a user's function with tracers in place of arrays. Every array
operation reaches :func:`bind`, which hands it to the innermost transformation among the
arguments' tracers (the one with the highest level). Without any tracer, ``bind`` calls the
implementation directly: that is the whole eager path.
"""
from __future__ import annotations

import itertools
import operator
import threading

import numpy as np

from . import config as _config
from . import errors
from .backend import array_module, dtype_name


class Primitive:
    """A named operation and all its rules.

    Attributes (set with :func:`def_rules`, next to where the primitive is made):
      impl:  ``impl(*args, **params)`` on concrete arrays (NumPy or CuPy).
      jvp_rules: a tuple with one rule per positional argument,
        ``rule(tangent, ans, *args, **params) -> tangent contribution``, ``None`` meaning
        the argument has no derivative; or ``None`` for a primitive with no derivative.
      jvp:   optional whole rule ``jvp(primals, tangents, **params) -> (ans, tangent)``
        where a tangent may be ``None`` (a symbolic zero); used instead of ``jvp_rules``.
      vjp_rules: a tuple with one rule per positional argument,
        ``rule(cotangent, ans, *args, **params) -> cotangent for that argument``.
      vjp:   optional whole rule ``vjp(cotangent, ans, args, wanted, **params) -> list``
        giving the cotangent of each argument whose index is in ``wanted``.
      vjp_fwd: optional ``vjp_fwd(primals, **params) -> (ans, residuals)`` that reverse
        mode calls instead of binding the primitive; its ``vjp`` rule then also gets
        ``residuals=`` (a primitive whose reverse rule would otherwise recompute its
        forward: ``jit_call``).
      batch: optional batching rule (see the batching transformation).
      rows:  optional row rule: how jit may run it on slices of a batch (see rows.py).

    Properties (keywords of the constructor, declared where the primitive is made): what
    jit's passes know about it. Passes read these, never the primitive's name.
      multiple_results: it returns a list of outputs.
      effectful: it has an effect (a collective, a print): never removed, merged or
        reordered, and a graph holding one is not split over rows.
      elementwise: it applies per element, with NumPy broadcasting of its arguments.
      reduction: it reduces its operand over ``axis`` (``keepdims`` kept or not).
      commutative: swapping its two arguments gives the same result, bit for bit.
      linear_in: groups of argument positions: scaling every argument of one group by
        the same ``c`` (the others fixed) scales the result by ``c``. ``add``:
        ``((0, 1),)``; ``multiply``: ``((0,), (1,))``; ``sum``: ``((0,),)``.
      inverse_in: argument positions whose scaling by ``c`` scales the result by
        ``1 / c`` (the divisor of a division).
      scalar_multiple: ``f(invars) -> (position, factor)`` when the equation computes
        ``factor * invars[position]`` for a Python number ``factor`` (negation: -1; a
        product with a number literal), else None.
      is_noop: ``f(invars, outvars, params) -> bool``: whether the equation returns its
        operand unchanged (a reshape to the same shape), so its uses may read the operand.
      multiply_adds: ``f(invars, outvars) -> int``: the multiply-adds of a matrix-product
        equation (a contraction: BLAS work).
      inline: ``f(params) -> Graph``: a call whose body a caller may write in place
        (``jit_call``).
      python_operator: it is what Python itself computes on numbers (an operator: ``+``,
        ``*``, ``<``, unary ``-``...; ``.real``, ``.imag``): on Python numbers traced by
        jit (weakly typed) its result stays a Python number, as in Python. Any other
        primitive gives a NumPy scalar there, as NumPy's functions do (``sin(2.0)`` is a
        float64 that promotes a float32 array).
      bools_as_ints: a ``python_operator`` that Python computes on bools as on ints
        (``True + True`` is 2, ``-True`` is -1, ``~True`` is -2; not ``&``, ``|``, ``^``
        or the comparisons), where its ufunc keeps bools (``np.add(True, True)`` is
        True) or refuses them: jit casts weak bools (Python bools, comparisons of Python
        numbers it traces) to Python ints for it (the primitive of
        :func:`register_int_cast`).
    """

    __slots__ = ("name", "impl", "jvp_rules", "jvp", "vjp_rules", "vjp", "vjp_fwd", "batch",
                 "rows", "multiple_results", "effectful", "elementwise", "reduction",
                 "commutative", "linear_in", "inverse_in", "scalar_multiple", "is_noop",
                 "multiply_adds", "inline", "python_operator", "bools_as_ints",
                 "__weakref__")

    def __init__(self, name, impl, *, multiple_results=False, effectful=False,
                 elementwise=False, reduction=False, commutative=False, linear_in=(),
                 inverse_in=(), scalar_multiple=None, is_noop=None, multiply_adds=None,
                 inline=None, python_operator=False, bools_as_ints=False):
        _BY_NAME.setdefault(name, self)
        self.name = name
        self.impl = impl
        self.multiple_results = multiple_results
        self.jvp_rules = self.jvp = self.vjp_rules = self.vjp = self.vjp_fwd = None
        self.batch = None
        self.rows = None           # row rule: how jit splits it over a batch (rows.py)
        self.effectful = effectful     # True: never removed by dead-code elimination
        self.elementwise = elementwise
        self.reduction = reduction
        self.commutative = commutative
        self.linear_in = tuple(tuple(g) for g in linear_in)
        self.inverse_in = tuple(inverse_in)
        self.scalar_multiple = scalar_multiple
        self.is_noop = is_noop
        self.multiply_adds = multiply_adds
        self.inline = inline
        self.python_operator = python_operator
        self.bools_as_ints = bools_as_ints

    def bind(self, *args, **params):
        return bind(self, *args, **params)

    def __repr__(self):
        return self.name


_BY_NAME = {}        # name -> the primitive first defined with it


def primitive_named(name):
    """The primitive called ``name`` (tests build graphs by hand with it; the passes
    read primitive properties instead, never names)."""
    return _BY_NAME[name]


_SCALING = {}        # how the passes write ``c * x``: set by the elementwise family


def register_scaling(*, multiply, negate):
    """Called once by the elementwise primitives: the primitives with which jit's passes
    write ``x * c`` (``c`` a Python number) and ``-x``."""
    _SCALING["multiply"], _SCALING["negate"] = multiply, negate


_INT_CAST = []         # how jit casts a weak bool to a Python int: set by the shape family


def register_int_cast(cast):
    """Called once by the shape primitives: the cast (``cast(x, dtype=...)``) with which
    jit reads a weak bool as a Python int for a ``bools_as_ints`` primitive."""
    _INT_CAST[:] = [cast]


def int_cast_primitive():
    """The primitive of :func:`register_int_cast`."""
    return _INT_CAST[0]


def scaling_primitives():
    """``(multiply, negate)``: see :func:`register_scaling`."""
    return _SCALING["multiply"], _SCALING["negate"]


def def_rules(prim, *, jvp=None, vjp=None, batch=None, rows=None, vjp_fwd=None):
    """Attach ``prim``'s rules, side by side: the one way a primitive gets its rules.

    jvp, vjp: a tuple with one rule per positional argument (``None`` in it: that
      argument has no derivative), or a single function, the whole rule (see
      ``Primitive``). A primitive given neither has no derivative.
    batch: its batching rule (vmap; the generic ones are in batching.py).
    rows: its row rule (how jit runs it on slices of a batch; see rows.py).
    vjp_fwd: a forward pass for reverse mode that also returns residuals (``Primitive``).
    Arguments left as None leave that rule as it was. Returns ``prim``.

    Example (a primitive whose derivative is its value):
        >>> import numpy as np, funcgrad
        >>> from funcgrad._src.core import Primitive, bind, def_rules
        >>> exp_p = def_rules(Primitive("my_exp", np.exp),
        ...                   jvp=(lambda t, ans, x: t * ans,),
        ...                   vjp=(lambda g, ans, x: g * ans,))
        >>> print(funcgrad.grad(lambda x: bind(exp_p, x))(0.0))
        1.0
    """
    if jvp is not None:
        if callable(jvp):
            prim.jvp, prim.jvp_rules = jvp, None
        else:
            prim.jvp, prim.jvp_rules = None, tuple(jvp)
    if vjp is not None:
        if callable(vjp):
            prim.vjp, prim.vjp_rules = vjp, None
        else:
            prim.vjp, prim.vjp_rules = None, tuple(vjp)
    if batch is not None:
        prim.batch = batch
    if rows is not None:
        prim.rows = rows
    if vjp_fwd is not None:
        prim.vjp_fwd = vjp_fwd
    return prim


# --------------------------------------------------------------------------------------
# The trace stack


class _TraceState(threading.local):
    def __init__(self):
        self.stack = []


_state = _TraceState()
_levels = itertools.count()      # global: nesting is ordered by start time, across threads


class Trace:
    """One active transformation. Its ``level`` orders it among the active ones: a trace
    started later is nested inside the ones still alive, in this thread or another (a
    thread may take a derivative of a closure over another thread's traced value).
    ``bottom`` is True when no other transformation was active here when it started, so
    the values below its tracers are concrete arrays."""

    __slots__ = ("level", "alive", "bottom")

    def __init__(self, level):
        self.level = level
        self.alive = True
        self.bottom = not _state.stack

    def process(self, prim, args, params):  # pragma: no cover - abstract
        raise NotImplementedError

    # custom_jvp / custom_vjp functions: by default a transformation just traces them.
    def process_custom_jvp(self, obj, args):
        return obj.fun(*args)

    def process_custom_vjp(self, obj, args):
        return obj.fun(*args)

    # what users called, for error messages (the class and its level mean nothing to them)
    transformation = "a transformation"

    def __repr__(self):
        return self.transformation


class new_trace:
    """Context manager that pushes a new trace of class ``cls`` on this thread's stack."""

    __slots__ = ("trace",)

    def __init__(self, cls, *args):
        self.trace = cls(next(_levels), *args)

    def __enter__(self):
        _state.stack.append(self.trace)
        return self.trace

    def __exit__(self, *exc):
        trace = _state.stack.pop()
        trace.alive = False
        return False


nan_check = None     # the debug_nans check while that option is on (see config.on_update)


def trace_depth() -> int:
    """How many transformations are active on this thread (0 outside all of them)."""
    return len(_state.stack)


def find_top_trace(values):
    """The innermost live transformation among ``values``' tracers, or None."""
    top = None
    for a in values:
        if isinstance(a, Tracer) and (top is None or a._trace.level > top.level):
            top = a._trace
    if top is not None and not top.alive:
        raise errors.UnexpectedTracerError(
            f"a tracer of a finished transformation ({top!r}) was used: a traced value "
            "leaked out of the function being transformed. Return it instead.")
    return top


def bind(prim, *args, **params):
    """The single door through which every operation passes."""
    for a in args:
        if isinstance(a, Tracer):
            break
    else:                       # the eager path: no transformation involved
        if nan_check is None:
            return prim.impl(*args, **params)
        out = prim.impl(*args, **params)
        nan_check(prim, args, out)
        return out
    top = None
    level = -1
    for a in args:
        if isinstance(a, Tracer):
            t = a._trace
            if t.level > level:
                top = t
                level = t.level
    if not top.alive:
        raise errors.UnexpectedTracerError(
            f"{prim.name}: an argument is a tracer of a transformation that has already "
            f"finished ({top!r}). A traced value leaked out of the function being "
            "transformed, e.g. through a global variable, a list or a closure that "
            "outlived the call. Return the value from the function instead."
        )
    return top.process(prim, args, params)


# --------------------------------------------------------------------------------------
# The Tracer: the array-like object a transformed function sees


class Tracer:
    """An array-like value seen by a function under a transformation.

    Subclasses say how to get the value underneath (``_value``) when one exists.
    Everything else (operators, methods, indexing) routes through ``funcgrad.numpy``.
    """

    __slots__ = ("_trace",)
    __array_priority__ = 1000
    __hash__ = None

    # Subclasses provide `shape` and `dtype`.
    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def T(self):
        return _np().transpose(self)

    @property
    def mT(self):
        return _np().swapaxes(self, -1, -2)

    @property
    def real(self):
        return _np().real(self)

    @property
    def imag(self):
        return _np().imag(self)

    # Whether the value is a Python number traced by jit (weakly typed: it stays a Python
    # number through arithmetic); staging's GraphTracer says so of its own values.
    weak = False

    def _concrete(self, what):
        """The concrete value below all transformations, or a ConcretizationTypeError."""
        v = self
        while isinstance(v, Tracer):
            v = v._value(what)
        return v

    def _value(self, what):  # overridden by tracers that hold a concrete value
        raise errors.ConcretizationTypeError(
            f"{what} needs a concrete value, but this is an abstract tracer "
            f"{dtype_name(self)} under {self._trace!r}. Inside jit, mark the argument "
            "it depends on static with static_argnums/static_argnames, or use "
            "funcgrad.numpy.where instead of Python control flow."
        )

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of unsized object (a 0-d tracer)")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d tracer")
        return (self[i] for i in range(self.shape[0]))

    def __bool__(self):
        return bool(self._concrete("bool() of a traced value (an `if` or `while` on it)"))

    # Conversions to plain Python/NumPy values. Under grad/jvp/vjp the value is concrete,
    # so a conversion whose result is an integer or a boolean (int(x), np.int64(x),
    # operator.index(x), or any conversion of an integer/boolean tracer) returns it: an
    # integer result has no derivative to lose (int() of a float is piecewise constant,
    # its derivative 0, as for floor), just as bool() drives Python control flow. A
    # conversion that would turn a differentiable float into a plain float (float(x),
    # np.float64(x), x.item(), np.asarray(x)) raises instead: a tracer never silently
    # drops its derivative (stop_gradient(x).item() says so explicitly). Under jit and
    # make_graph values are abstract and every conversion raises the error that explains
    # static arguments; under vmap, the one that explains per-example values.
    def _loses_nothing(self, result_kind):
        return self.dtype.kind in "biu" or result_kind in "biu"

    def _to_python(self, kind, result_kind, convert):
        v = self._concrete(f"{kind}()")      # abstract (jit, vmap): raises, explaining why
        if self._loses_nothing(result_kind):
            return convert(v)
        self._scalar_conversion(kind)

    def _scalar_conversion(self, kind):
        raise errors.ConcretizationTypeError(
            f"{kind}() of a traced {dtype_name(self)} would drop its derivative silently. "
            "Keep it an array (funcgrad.numpy works on 0-d arrays), or if you really want a "
            "plain Python number that does not track derivatives, call .item() on "
            "funcgrad.stop_gradient(x). Writing a traced value into a NumPy array "
            "(`buf[i] = x`, which NumPy then reports as 'setting an array element with a "
            "sequence') does the same: build the array with funcgrad.numpy instead "
            "(fnp.stack([...]), fnp.zeros(n).at[i].set(x))."
        )

    def __float__(self):
        return self._to_python("float", "f", float)

    def __int__(self):
        return self._to_python("int", "i", int)

    def __complex__(self):
        return self._to_python("complex", "c", complex)

    def __index__(self):
        if self.dtype.kind in "biu":
            # an integer has no derivative to lose: only an abstract one (jit) is a problem
            return operator.index(self._concrete(
                "using it as a Python integer (a size, an index, range())"))
        self._scalar_conversion("operator.index")

    def item(self):
        """The value as a Python scalar: allowed where values are concrete (grad, jvp, vjp)
        for integer and boolean values, and for others once their derivative is blocked
        (``funcgrad.stop_gradient(x).item()``)."""
        return self._to_python("item", self.dtype.kind, lambda v: v.item())

    def __array__(self, dtype=None, copy=None):
        # np.int64(x), np.bool_(x), np.asarray(x, np.int32) ask for an integer array; with
        # a concrete value nothing is lost (see _to_python)
        result_kind = np.dtype(dtype).kind if dtype is not None else self.dtype.kind
        if self._loses_nothing(result_kind) and result_kind in "biu":
            try:
                v = self._concrete(f"np.{np.dtype(dtype or self.dtype).name}() or "
                                   "np.asarray()")
            except errors.ConcretizationTypeError as e:
                if dtype is not None:
                    raise
                raise errors.TracerArrayConversionError(
                    f"NumPy needed a concrete array but got a traced {dtype_name(self)} "
                    f"under {self._trace!r} — typically a traced index into a plain NumPy "
                    "array (np_array[traced_idx]). Index through funcgrad instead: "
                    "funcgrad.numpy.at(np_array)[idx].get() or funcgrad.numpy.take("
                    f"np_array, idx, axis), or convert the array first with a funcgrad "
                    f"operation. ({e})") from None
            return _host_array(v, dtype)
        if self._loses_nothing(result_kind):     # np.float32(x) of an integer tracer
            return _host_array(self._concrete(f"np.{np.dtype(dtype).name}()"), dtype)
        if dtype is not None:                    # np.float32(x): a scalar conversion
            self._concrete(f"np.{np.dtype(dtype).name}()")   # abstract: static arguments
        raise errors.TracerArrayConversionError(
            f"numpy.asarray/np.array was called on a traced {dtype_name(self)} under "
            f"{self._trace!r}; converting it to a plain array would silently drop its "
            "derivative. Use funcgrad.numpy (import funcgrad.numpy as fnp) for this "
            "operation, or wrap the value in funcgrad.stop_gradient(...) first if you "
            "want no derivative."
        )

    def __setitem__(self, idx, value):
        raise errors.FuncgradTypeError(
            "funcgrad arrays are immutable under transformations: `x[idx] = v` is not "
            "allowed on a tracer. Use the functional update `x = x.at[idx].set(v)` "
            "(or .add/.multiply/.min/.max)."
        )

    def __repr__(self):
        try:
            v = self._concrete("repr")
        except errors.ConcretizationTypeError:
            return f"{type(self).__name__}<{dtype_name(self)}>"
        return f"{type(self).__name__}({v!r})"

    def __str__(self):
        try:
            return str(self._concrete("str"))
        except errors.ConcretizationTypeError:
            return repr(self)

    def __format__(self, spec):
        try:
            return format(self._concrete("format"), spec)
        except errors.ConcretizationTypeError:
            return repr(self)

    # NumPy interop: route plain `np.sin(tracer)` and `np.sum(tracer)` to funcgrad.numpy.
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return _array_function(func, args, kwargs)


def xp_of(a):
    """The array module of ``a``, or for a tracer of the value under it: its concrete
    value, or for jit and vmap tracers (abstract) the value they carry (``aval``: the
    value on the tracing inputs; ``val``: the batched value); NumPy when none is found."""
    if not isinstance(a, Tracer):
        return array_module(a)
    v = a
    while isinstance(v, Tracer):
        inner = getattr(v, "aval", None)
        if inner is None:
            inner = getattr(v, "val", None)
        if inner is not None:
            v = inner
            continue
        try:
            v = v._value("creation")
        except errors.FuncgradTypeError:
            return np
    return array_module(v)


# --------------------------------------------------------------------------------------
# Hooks registered by the layers above (the core imports none of them)

_fnp = None          # the funcgrad.numpy namespace (register_namespace)
_array_ufunc = _array_function = None


def register_namespace(namespace, array_ufunc, array_function):
    """Called once by ``funcgrad.numpy`` when it is imported: the namespace that
    ``Tracer``'s methods, the interpreters and the rules reach array operations through,
    and the routing of plain ``numpy.sin(tracer)`` / ``numpy.sum(tracer)`` to it."""
    global _fnp, _array_ufunc, _array_function
    _fnp = namespace
    _array_ufunc = array_ufunc
    _array_function = array_function


def _np():
    """The ``funcgrad.numpy`` namespace (registered by it at import)."""
    return _fnp


def _set_nan_check(check):
    global nan_check
    nan_check = check


_config.on_update("debug_nans", lambda on: _set_nan_check(_config.check_nans if on else None))


# The arithmetic and comparison operators go straight to their primitives: the elementwise
# family installs them on ``Tracer`` (``install_operators``). The rest go through the
# namespace.
def install_operators(table):
    """Set ``Tracer.__name__`` for each ``name: function`` of ``table``."""
    for name, fn in table.items():
        setattr(Tracer, f"__{name}__", fn)


def _binop(name, reflected=False):
    def op(self, other):
        f = getattr(_fnp, name)
        return f(other, self) if reflected else f(self, other)
    op.__name__ = f"__{'r' if reflected else ''}{name}__"
    return op


Tracer.__matmul__ = _binop("matmul")
Tracer.__rmatmul__ = _binop("matmul", reflected=True)


def _divmod(self, other):
    # (the operators: on Python numbers traced by jit, Python's divmod gives Python numbers)
    return self // other, self % other


Tracer.__divmod__ = _divmod
Tracer.__pos__ = lambda self: self
# arrays are immutable under a transformation: a copy is the value itself
Tracer.copy = lambda self, order="C": self
Tracer.__copy__ = lambda self: self
Tracer.__deepcopy__ = lambda self, memo: self
Tracer.__invert__ = lambda self: _np().invert(self)
Tracer.__getitem__ = lambda self, idx: _np()._getitem(self, idx)


def _method(fname, doc=None):
    def method(self, *args, **kwargs):
        return getattr(_np(), fname)(self, *args, **kwargs)
    method.__name__ = fname
    method.__doc__ = doc or f"Same as ``funcgrad.numpy.{fname}(self, ...)``."
    return method


for _m in ["sum", "mean", "prod", "max", "min", "var", "std", "all", "any", "argmax",
           "argmin", "transpose", "swapaxes", "astype", "dot", "clip", "ravel",
           "squeeze", "round", "conj", "conjugate", "cumsum", "cumprod", "flatten",
           "repeat", "take", "nonzero", "sort", "argsort", "trace", "diagonal"]:
    setattr(Tracer, _m, _method("ravel" if _m == "flatten" else _m))


def _reshape(self, *shape, **kwargs):
    if len(shape) == 1 and not isinstance(shape[0], int):
        shape = shape[0]
    return _np().reshape(self, shape, **kwargs)


def _transpose(self, *axes):
    if len(axes) == 1 and not isinstance(axes[0], int):
        axes = axes[0]
    return _np().transpose(self, axes or None)


Tracer.reshape = _reshape
Tracer.transpose = _transpose


class _IndexUpdateHelper:
    """``x.at[idx]`` — the functional replacement for in-place assignment."""

    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array

    def __getitem__(self, idx):
        return _IndexUpdateRef(self.array, idx)


class _IndexUpdateRef:
    __slots__ = ("array", "idx")

    def __init__(self, array, idx):
        self.array = array
        self.idx = idx

    def get(self):
        """``x[idx]``."""
        return _np()._getitem(self.array, self.idx)

    def set(self, values):
        """A copy of ``x`` with ``x[idx] = values``."""
        return _np()._scatter(self.array, self.idx, values, "set")

    def add(self, values):
        """A copy of ``x`` with ``values`` added at ``idx``; repeated indices accumulate
        (like ``numpy.add.at``)."""
        return _np()._scatter(self.array, self.idx, values, "add")

    def multiply(self, values):
        """A copy of ``x`` with ``x[idx] *= values`` (NumPy assignment semantics: with
        repeated indices the last write wins)."""
        return self.set(self.get() * values)

    mul = multiply

    def divide(self, values):
        """A copy of ``x`` with ``x[idx] /= values`` (see ``multiply`` on repeats)."""
        return self.set(self.get() / values)

    def power(self, values):
        """A copy of ``x`` with ``x[idx] **= values`` (see ``multiply`` on repeats)."""
        return self.set(self.get() ** values)

    def min(self, values):
        """A copy of ``x`` with ``x[idx] = minimum(x[idx], values)``."""
        return self.set(_np().minimum(self.get(), values))

    def max(self, values):
        """A copy of ``x`` with ``x[idx] = maximum(x[idx], values)``."""
        return self.set(_np().maximum(self.get(), values))


Tracer.at = property(_IndexUpdateHelper, doc="Functional index updates: x.at[idx].set(v).")


def _host_array(v, dtype):
    """``v`` (NumPy or CuPy) as a NumPy array of ``dtype`` (None: its own)."""
    if not isinstance(v, (np.ndarray, np.generic)) and hasattr(v, "get"):
        v = v.get()                       # a device array: NumPy asked for host memory
    return np.asarray(v, dtype=dtype)
