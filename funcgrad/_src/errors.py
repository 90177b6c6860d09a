"""funcgrad's exception types: subclasses of the built-in ones users already catch."""


class FuncgradError(Exception):
    """Base class of every error funcgrad raises on purpose."""


class FuncgradTypeError(FuncgradError, TypeError):
    """A value of the wrong kind: a dtype, a structure, a non-scalar output, ..."""


class FuncgradValueError(FuncgradError, ValueError):
    """A value of the right kind but wrong content: a shape, an axis, an argnum, ..."""


class UnexpectedTracerError(FuncgradTypeError):
    """A tracer was used after the transformation that made it had finished."""


class ConcretizationTypeError(FuncgradTypeError):
    """A concrete value was needed (Python control flow, float()) but only a traced,
    abstract one exists, or converting would drop the derivative."""


class TracerArrayConversionError(FuncgradTypeError):
    """``numpy.asarray`` was called on a tracer."""


class UnsupportedFunctionError(FuncgradTypeError, NotImplementedError):
    """A NumPy function funcgrad does not implement was called on a traced value. Both a
    TypeError (NumPy's protocol for unsupported types) and a NotImplementedError."""


class IndexOutOfBoundsError(FuncgradValueError, IndexError):
    """An index out of range (an IndexError, as NumPy raises, and a ValueError, as the
    rest of funcgrad's indexing errors)."""


# Tracebacks print ``module.ClassName``: name the public module users import them from,
# not this private one (pickling finds them there too).
for _cls in (FuncgradError, FuncgradTypeError, FuncgradValueError, UnexpectedTracerError,
             ConcretizationTypeError, TracerArrayConversionError, UnsupportedFunctionError,
             IndexOutOfBoundsError):
    _cls.__module__ = "funcgrad.errors"
del _cls
