"""A CPU-only stand-in for a foreign array module (private; for tests).

``StandInArray`` wraps a NumPy array and behaves like a CuPy array as far as funcgrad can
tell: NumPy functions and ufuncs called on it go through ``__array_ufunc__`` /
``__array_function__`` and return stand-ins, ``.get()`` returns the NumPy data, and
``__array__`` RAISES, so any accidental ``numpy.asarray(stand_in)`` inside funcgrad fails
loudly (as it does for CuPy). ``standin_xp`` is the matching array module, which
``backend.array_module`` returns for stand-in inputs.

Like CuPy, stand-ins refuse to mix with NumPy arrays of one or more dimensions in
arithmetic (NumPy scalars and 0-d arrays are accepted as scalars); NumPy integer/boolean
arrays ARE accepted as indices (CuPy copies those to the device).

    >>> from funcgrad._src.testing_backend import standin_xp
    >>> s = standin_xp.arange(3.0)
    >>> type(np.sin(s)).__name__
    'StandInArray'
    >>> np.sin(s).get()
    array([0.        , 0.84147098, 0.90929743])
"""
from __future__ import annotations

import re
import types

import numpy as np

from .backend import _register_array_type

__all__ = ["StandInArray", "standin_xp"]


def _unwrap(obj, what, index=False):
    if isinstance(obj, StandInArray):
        return obj.data
    if isinstance(obj, np.ndarray) and obj.ndim > 0 and not index:
        raise TypeError(
            f"StandInArray: {what} was given a NumPy array of shape {obj.shape} together "
            "with a stand-in array; move it first (as CuPy requires)")
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unwrap(o, what, index) for o in obj)
    if isinstance(obj, dict):
        return {k: _unwrap(v, what) for k, v in obj.items()}
    return obj


def _foreign(objs):
    """True if some operand is another array-like with its own protocol (a funcgrad
    tracer): then we defer to it, as CuPy does, by returning NotImplemented."""
    for o in objs:
        if isinstance(o, (list, tuple)):
            if _foreign(o):
                return True
        elif (not isinstance(o, (StandInArray, np.ndarray, np.generic))
              and hasattr(type(o), "__array_ufunc__")):
            return True
    return False


def _wrap(obj):
    if isinstance(obj, np.ndarray):
        return StandInArray(obj)
    if isinstance(obj, np.generic):       # reductions give 0-d arrays, as in CuPy
        return StandInArray(np.asarray(obj))
    if isinstance(obj, tuple):
        return tuple(_wrap(o) for o in obj)
    if isinstance(obj, list):
        return [_wrap(o) for o in obj]
    return obj


class StandInArray:
    """A NumPy array in disguise, treated by funcgrad as a foreign (CuPy-like) array."""

    __slots__ = ("data",)
    __array_priority__ = 100

    def __init__(self, data):
        if isinstance(data, StandInArray):
            data = data.data
        if not isinstance(data, np.ndarray):
            data = np.asarray(data)
        self.data = data

    # ---- the NumPy protocols -----------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            "StandInArray: implicit conversion to a NumPy array is not allowed (as for "
            "CuPy); use .get() to copy it to the host explicitly")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if _foreign(inputs) or _foreign(kwargs.get("out", ())):
            return NotImplemented
        what = f"numpy.{ufunc.__name__}.{method}" if method != "__call__" else f"numpy.{ufunc.__name__}"
        out = getattr(ufunc, method)(*_unwrap(inputs, what), **_unwrap(kwargs, what))
        if "out" in kwargs:              # written in place: hand back the given stand-ins
            given = kwargs["out"]
            return given[0] if isinstance(given, tuple) and len(given) == 1 else given
        return _wrap(out)

    def __array_function__(self, func, types_, args, kwargs):
        if not all(issubclass(t, (StandInArray, np.ndarray)) for t in types_):
            return NotImplemented
        what = f"numpy.{func.__name__}"
        return _wrap(func(*_unwrap(args, what), **_unwrap(kwargs, what)))

    def get(self):
        """The NumPy data (a host copy, as with CuPy)."""
        return self.data.copy()

    # ---- attributes ----------------------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    itemsize = property(lambda self: self.data.itemsize)
    nbytes = property(lambda self: self.data.nbytes)
    strides = property(lambda self: self.data.strides)
    T = property(lambda self: StandInArray(self.data.T))
    real = property(lambda self: StandInArray(self.data.real))
    imag = property(lambda self: StandInArray(self.data.imag))
    flags = property(lambda self: self.data.flags)

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        return f"StandInArray({self.data!r})"

    def __iter__(self):
        return (_wrap(x) if isinstance(x, np.ndarray) else StandInArray(np.asarray(x))
                for x in self.data)

    def __getitem__(self, idx):
        r = self.data[_unwrap(idx, "indexing", True)]
        return StandInArray(np.asarray(r))

    def __setitem__(self, idx, value):
        self.data[_unwrap(idx, "indexing", True)] = _unwrap(value, "item assignment")

    def __bool__(self):
        return bool(self.data)

    def __float__(self):
        return float(self.data)

    def __int__(self):
        return int(self.data)

    def __complex__(self):
        return complex(self.data)

    def __index__(self):
        return self.data.__index__()

    def item(self, *args):
        return self.data.item(*args)

    def tolist(self):
        return self.data.tolist()

    # ---- methods -------------------------------------------------------------------------
    def astype(self, dtype, copy=True, **kw):
        return StandInArray(self.data.astype(dtype, copy=copy, **kw))

    def copy(self, order="C"):
        return StandInArray(self.data.copy(order))

    def view(self, *args, **kw):
        return StandInArray(self.data.view(*args, **kw))

    def fill(self, value):
        self.data.fill(value)

    def _method(name):
        def method(self, *args, **kwargs):
            r = getattr(self.data, name)(*_unwrap(args, name), **_unwrap(kwargs, name))
            return _wrap(r) if isinstance(r, (np.ndarray, tuple)) else StandInArray(np.asarray(r))
        method.__name__ = name
        return method

    for _n in ("reshape", "transpose", "ravel", "flatten", "squeeze", "swapaxes", "sum",
               "prod", "mean", "max", "min", "argmax", "argmin", "any", "all", "conj",
               "conjugate", "cumsum", "dot", "clip", "round", "nonzero", "repeat", "take",
               "diagonal", "trace", "std", "var", "sort", "argsort"):
        locals()[_n] = _method(_n)
    del _n, _method

    # ---- operators -----------------------------------------------------------------------
    def _binary(ufunc, reflected=False):
        if reflected:
            return lambda self, other: self.__array_ufunc__(ufunc, "__call__", other, self)
        return lambda self, other: self.__array_ufunc__(ufunc, "__call__", self, other)

    __add__, __radd__ = _binary(np.add), _binary(np.add, True)
    __sub__, __rsub__ = _binary(np.subtract), _binary(np.subtract, True)
    __mul__, __rmul__ = _binary(np.multiply), _binary(np.multiply, True)
    __truediv__, __rtruediv__ = _binary(np.true_divide), _binary(np.true_divide, True)
    __floordiv__, __rfloordiv__ = _binary(np.floor_divide), _binary(np.floor_divide, True)
    __mod__, __rmod__ = _binary(np.remainder), _binary(np.remainder, True)
    __pow__, __rpow__ = _binary(np.power), _binary(np.power, True)
    __matmul__, __rmatmul__ = _binary(np.matmul), _binary(np.matmul, True)
    __and__, __rand__ = _binary(np.bitwise_and), _binary(np.bitwise_and, True)
    __or__, __ror__ = _binary(np.bitwise_or), _binary(np.bitwise_or, True)
    __xor__, __rxor__ = _binary(np.bitwise_xor), _binary(np.bitwise_xor, True)
    __lshift__, __rshift__ = _binary(np.left_shift), _binary(np.right_shift)
    __lt__, __le__ = _binary(np.less), _binary(np.less_equal)
    __gt__, __ge__ = _binary(np.greater), _binary(np.greater_equal)
    __eq__, __ne__ = _binary(np.equal), _binary(np.not_equal)
    def _inplace(ufunc):
        def op(self, other):
            ufunc(self, other, out=self)
            return self
        return op

    __iadd__, __isub__ = _inplace(np.add), _inplace(np.subtract)
    __imul__, __itruediv__ = _inplace(np.multiply), _inplace(np.true_divide)
    __ifloordiv__, __imod__ = _inplace(np.floor_divide), _inplace(np.remainder)
    __ipow__, __iand__ = _inplace(np.power), _inplace(np.bitwise_and)
    __ior__, __ixor__ = _inplace(np.bitwise_or), _inplace(np.bitwise_xor)
    __ilshift__, __irshift__ = _inplace(np.left_shift), _inplace(np.right_shift)
    __imatmul__ = _inplace(np.matmul)
    del _binary, _inplace
    __hash__ = None

    def __neg__(self):
        return StandInArray(-self.data)

    def __pos__(self):
        return StandInArray(+self.data)

    def __abs__(self):
        return StandInArray(abs(self.data))

    def __invert__(self):
        return StandInArray(~self.data)


# ---- the module -------------------------------------------------------------------------
def _host(obj):
    """Unwrap for creation functions: stand-ins and plain Python/NumPy data are fine."""
    if isinstance(obj, StandInArray):
        return obj.data
    if isinstance(obj, (list, tuple)):
        return type(obj)(_host(o) for o in obj)
    return obj


def _creator(name):
    fn = getattr(np, name)

    def create(*args, **kwargs):
        return _wrap(fn(*_host(args), **{k: _host(v) for k, v in kwargs.items()}))
    create.__name__ = name
    create.__doc__ = f"``numpy.{name}``, returning a StandInArray."
    return create


standin_xp = types.ModuleType("standin_xp", "A NumPy-backed stand-in for a foreign array module.")
for _name in ("zeros", "ones", "full", "empty", "eye", "identity", "tri", "arange", "linspace",
              "asarray", "array", "ascontiguousarray", "zeros_like", "ones_like", "empty_like",
              "full_like", "copyto", "broadcast_to", "where", "concatenate", "stack"):
    setattr(standin_xp, _name, _creator(_name))
del _name
standin_xp.ndarray = StandInArray
standin_xp.float32, standin_xp.float64 = np.float32, np.float64
standin_xp.int32, standin_xp.int64 = np.int32, np.int64


def _add_at(out, idx, values):
    np.add.at(out.data, _unwrap(idx, "scatter_add", True), _unwrap(values, "scatter_add"))


standin_xp.scatter_add = _add_at


def _fuse(fun=None, *, kernel_name=None):
    """CuPy's ``fuse`` decorator, run as plain calls on stand-ins; each call is recorded
    in ``standin_xp.fused_calls`` (kernel name, number of arguments) for tests."""
    def deco(f):
        name = kernel_name or f.__name__

        def run(*args):
            standin_xp.fused_calls.append((name, len(args)))
            return f(*args)
        run.__name__ = name
        return run
    return deco(fun) if fun is not None else deco


standin_xp.fuse = _fuse
standin_xp.fused_calls = []


def _as_strided(x, shape=None, strides=None, **kwargs):
    return StandInArray(np.lib.stride_tricks.as_strided(x.data, shape, strides, **kwargs))


standin_xp.lib = types.SimpleNamespace(stride_tricks=types.SimpleNamespace(as_strided=_as_strided))


def _module_getattr(name):
    """Any other NumPy function (as CuPy covers most of NumPy's namespace): stand-ins in,
    stand-ins out, NumPy arrays of one or more dimensions refused."""
    fn = getattr(np, name, None)
    if not callable(fn) or name.startswith("_"):
        raise AttributeError(f"module 'standin_xp' has no attribute {name!r}")

    def call(*args, **kwargs):
        what = f"standin_xp.{name}"
        r = fn(*_unwrap(args, what), **_unwrap(kwargs, what))
        return kwargs["out"] if "out" in kwargs else _wrap(r)
    call.__name__ = name
    return call


standin_xp.__getattr__ = _module_getattr

_register_array_type(StandInArray, standin_xp)


# --------------------------------------------------------------------------------------
# ElementwiseKernel on the CPU: runs the C that cupy_kernels.py generates


_C_TYPES = {"float": np.float32, "double": np.float64, "bool": np.bool_}
_C_FUNCS = {   # C name -> (NumPy function, the dtype it requires or None for any float)
    "fabs": (np.absolute, np.float64), "fabsf": (np.absolute, np.float32),
    "__dmul_rn": (np.multiply, np.float64), "__fmul_rn": (np.multiply, np.float32),
    "isnan": (np.isnan, None), "isinf": (np.isinf, None), "isfinite": (np.isfinite, None),
}
for _c, _n in (("sqrt", "sqrt"), ("floor", "floor"), ("ceil", "ceil"), ("trunc", "trunc"),
               ("rint", "rint"), ("copysign", "copysign")):
    _C_FUNCS[_c] = (getattr(np, _n), np.float64)
    _C_FUNCS[_c + "f"] = (getattr(np, _n), np.float32)
for _c, _n in (("sin", "sin"), ("cos", "cos"), ("tan", "tan"), ("asin", "arcsin"),
               ("acos", "arccos"), ("atan", "arctan"), ("sinh", "sinh"), ("cosh", "cosh"),
               ("tanh", "tanh"), ("asinh", "arcsinh"), ("acosh", "arccosh"),
               ("atanh", "arctanh"), ("exp", "exp"), ("exp2", "exp2"), ("expm1", "expm1"),
               ("log", "log"), ("log2", "log2"), ("log10", "log10"), ("log1p", "log1p"),
               ("cbrt", "cbrt"), ("atan2", "arctan2"), ("hypot", "hypot"), ("pow", "power")):
    _C_FUNCS[_c] = (getattr(np, _n), np.float64)
del _c, _n

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.\d*(?:e[+-]?\d+)?|\d+e[+-]?\d+|\d+)|(?P<id>[A-Za-z_]\w*)"
    r"|(?P<op>\|\||&&|==|!=|<=|>=|[-+*/<>!?:(),]))")


class _CExpr:
    """A recursive-descent evaluator of the C expressions the generator writes, on NumPy
    arrays: strict about types (no implicit conversions between different C types), so
    a missing cast in the generated code fails here instead of on the GPU."""

    def __init__(self, text, env):
        self.toks, pos = [], 0
        text = text.strip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                raise SyntaxError(f"ElementwiseKernel stand-in: cannot read {text[pos:]!r}")
            self.toks.append((m.lastgroup, m.group(m.lastgroup)))
            pos = m.end()
        self.k, self.env = 0, env

    def peek(self, *values):
        return self.k < len(self.toks) and self.toks[self.k][1] in values

    def take(self, value=None):
        kind, v = self.toks[self.k]
        if value is not None and v != value:
            raise SyntaxError(f"ElementwiseKernel stand-in: expected {value!r}, got {v!r}")
        self.k += 1
        return kind, v

    def run(self):
        x = self.ternary()
        if self.k != len(self.toks):
            raise SyntaxError(f"ElementwiseKernel stand-in: left over {self.toks[self.k:]}")
        return x

    @staticmethod
    def same(a, b, op):
        if np.asarray(a).dtype != np.asarray(b).dtype:
            raise TypeError(f"ElementwiseKernel stand-in: {op} of {np.asarray(a).dtype} and "
                            f"{np.asarray(b).dtype} (the generator must cast)")

    def ternary(self):
        c = self.binary(0)
        if self.peek("?"):
            self.take()
            a = self.ternary()
            self.take(":")
            b = self.ternary()
            if np.asarray(c).dtype != np.bool_:
                raise TypeError("ElementwiseKernel stand-in: a condition that is not bool")
            self.same(a, b, "?:")
            return np.where(c, a, b)[()]
        return c

    _LEVELS = (("||",), ("&&",), ("==", "!="), ("<", "<=", ">", ">="), ("+", "-"),
               ("*", "/"))
    _BIN = {"||": np.logical_or, "&&": np.logical_and, "==": np.equal, "!=": np.not_equal,
            "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
            "+": np.add, "-": np.subtract, "*": np.multiply, "/": np.true_divide}

    def binary(self, level):
        if level == len(self._LEVELS):
            return self.unary()
        x = self.binary(level + 1)
        while self.peek(*self._LEVELS[level]):
            op = self.take()[1]
            y = self.binary(level + 1)
            self.same(x, y, op)
            x = self._BIN[op](x, y)
        return x

    def unary(self):
        if self.peek("-"):
            self.take()
            return np.negative(self.unary())
        if self.peek("!"):
            self.take()
            x = self.unary()
            if np.asarray(x).dtype != np.bool_:
                raise TypeError("ElementwiseKernel stand-in: ! of a non-bool")
            return np.logical_not(x)
        if (self.peek("(") and self.k + 2 < len(self.toks)
                and self.toks[self.k + 1][1] in _C_TYPES and self.toks[self.k + 2][1] == ")"):
            self.take()
            t = _C_TYPES[self.take()[1]]
            self.take(")")
            return np.asarray(self.unary()).astype(t)[()]
        return self.primary()

    def primary(self):
        kind, v = self.take()
        if v == "(":
            x = self.ternary()
            self.take(")")
            return x
        if kind == "num":
            return np.float64(v) if ("." in v or "e" in v) else np.int64(v)
        if v in ("true", "false"):
            return np.bool_(v == "true")
        if kind == "id" and self.peek("("):
            fn, want = _C_FUNCS[v]
            self.take("(")
            args = [self.ternary()]
            while self.peek(","):
                self.take()
                args.append(self.ternary())
            self.take(")")
            for a in args:
                d = np.asarray(a).dtype
                if (want is not None and d != want) or (want is None and d.kind != "f"):
                    raise TypeError(f"ElementwiseKernel stand-in: {v} of {d}")
            return fn(*args)
        if kind == "id":
            return self.env[v]
        raise SyntaxError(f"ElementwiseKernel stand-in: unexpected {v!r}")


def _kernel_inputs(name, params, args):
    """The arguments of a kernel by parameter name, broadcast, after the dtype check."""
    if len(args) != len(params):
        raise TypeError(f"{name}: {len(params)} arguments expected")
    data = [np.asarray(_unwrap(a, name)) for a in args]
    for (t, n), d in zip(params, data):
        if d.dtype != np.dtype(t):
            raise TypeError(f"{name}: {n} is {d.dtype}, declared {t}")
    shape = np.broadcast_shapes(*(d.shape for d in data))
    return {n: np.broadcast_to(d, shape) for (_, n), d in zip(params, data)}, shape


def _run_c(name, statements, env):
    """Run C statements (``T t = expr;``, ``r = expr;``, ``return expr;``) on ``env``;
    the value of a ``return``, else None."""
    with np.errstate(all="ignore"):
        for stmt in statements.split(";"):
            stmt = stmt.strip()
            if not stmt:
                continue
            if stmt.startswith("return "):
                return _CExpr(stmt[len("return "):], env).run()
            lhs, rhs = stmt.split("=", 1)
            lhs = lhs.split()
            value = _CExpr(rhs, env).run()
            if len(lhs) == 2:            # a declaration: must match its type
                if np.asarray(value).dtype != _C_TYPES[lhs[0]]:
                    raise TypeError(f"{name}: {lhs[1]} declared {lhs[0]}, "
                                    f"given {np.asarray(value).dtype}")
            env[lhs[-1]] = value
    return None


class StandInElementwiseKernel:
    """CuPy's ``ElementwiseKernel(in_params, out_params, operation, name)`` run on the
    CPU for stand-in arrays: inputs are broadcast, must have the declared dtypes, and the
    ``operation`` (declarations ``T t = expr;`` and assignments ``r = expr;`` in the C
    subset ``cupy_kernels`` writes) is evaluated on whole arrays. Not set on
    ``standin_xp`` by default (its ``fuse`` path is tested too); tests add it."""

    calls = []      # kernel names, one per call

    def __init__(self, in_params, out_params, operation, name="kernel"):
        def params(text):
            return [p.split() for p in text.split(",") if p.strip()]
        self.ins, self.outs = params(in_params), params(out_params)
        self.operation, self.name = operation, name

    def __call__(self, *args):
        env, shape = _kernel_inputs(self.name, self.ins, args)
        _run_c(self.name, self.operation, env)
        StandInElementwiseKernel.calls.append(self.name)
        res = []
        for t, n in self.outs:
            r = np.empty(shape, np.dtype(t))
            r[...] = env[n]        # (an assignment converts, as in C)
            res.append(StandInArray(r))
        return res[0] if len(res) == 1 else tuple(res)


class StandInReductionKernel:
    """CuPy's ``ReductionKernel`` on the CPU, for the form ``cupy_kernels`` writes: a
    ``map_expr`` calling the one ``__device__`` function of the ``preamble``,
    ``reduce_expr`` ``a + b`` with identity ``0``, ``post_map_expr`` ``r0 = a``, over
    every axis (NumPy's sum in ``reduce_type``: the order of the additions differs from
    CuPy's)."""

    calls = []

    def __init__(self, in_params, out_params, map_expr, reduce_expr, post_map_expr,
                 identity, name="reduce_kernel", reduce_type=None, preamble=""):
        m = re.fullmatch(r"\s*__device__ (\w+) (\w+)\(([^)]*)\) \{(.*)\}\s*", preamble,
                         re.S)
        if (m is None or (reduce_expr, post_map_expr, identity) != ("a + b", "r0 = a", "0")
                or not map_expr.startswith(m.group(2) + "(")):
            raise NotImplementedError(f"{name}: not a reduction the stand-in runs")
        self.params = [p.split() for p in in_params.split(",") if p.strip()]
        self.fn_params = [p.split()[-1] for p in m.group(3).split(",") if p.strip()]
        self.body, self.ret = m.group(4), _C_TYPES[m.group(1)]
        self.out = np.dtype(out_params.split()[0])
        self.reduce_type = _C_TYPES[reduce_type]
        self.name = name

    def __call__(self, *args):
        env, _ = _kernel_inputs(self.name, self.params, args)
        env = {fp: env[n] for fp, (_, n) in zip(self.fn_params, self.params)}
        value = np.asarray(_run_c(self.name, self.body, env))
        if value.dtype != self.ret:
            raise TypeError(f"{self.name}: returns {value.dtype}, declared {self.ret}")
        StandInReductionKernel.calls.append(self.name)
        with np.errstate(all="ignore"):
            total = np.sum(value, dtype=self.reduce_type)
        return StandInArray(np.asarray(total, self.out))
