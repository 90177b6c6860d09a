"""The exception types funcgrad raises (all subclasses of TypeError or ValueError)."""
from ._src.errors import (ConcretizationTypeError, FuncgradError, FuncgradTypeError,
                          FuncgradValueError, IndexOutOfBoundsError,
                          TracerArrayConversionError, UnexpectedTracerError,
                          UnsupportedFunctionError)

__all__ = ["ConcretizationTypeError", "FuncgradError", "FuncgradTypeError",
           "FuncgradValueError", "IndexOutOfBoundsError", "TracerArrayConversionError",
           "UnexpectedTracerError", "UnsupportedFunctionError"]
