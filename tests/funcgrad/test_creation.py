"""Creation with traced values (funcgrad/_src/prims/creation.py): full, full_like,
asarray/array of nested sequences, linspace, logspace, the *_like constants.

Every case runs through the table checks of ``tests/funcgrad/table.py`` (values against
NumPy, check_grads to order 2, float32, mixed precision, NumPy dispatch).
"""
from __future__ import annotations

import pytest

from . import table
from .table import _real, _unit, fixed, same

# NumPy's own astype(complex -> real) warns; funcgrad's takes the real part on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")

CASES: list[table.Case] = []


def spec(name, fn, domains, shapes, **kw):
    CASES.append(table.spec(name, fn, domains, shapes, **kw))


# ---- creation with traced values ----------------------------------------------------------
spec("full_traced", lambda m, x: m.full((2, 3), x) * 2.0, [_real], fixed(()), dispatch=False)
spec("full_like_traced", lambda m, a, x: m.full_like(a, x), [_real, _real], fixed((2, 3), ()),
     dispatch=False)
spec("asarray_list", lambda m, x, y: m.asarray([x, y, x * y]), [_real] * 2, same(2),
     dispatch=False)
spec("array_ndmin", lambda m, x: m.array(x, ndmin=3), [_real], same(1, 0, 2), dispatch=False)
spec("array_nested", lambda m, x, y: m.array([[x, y], [y, x]]), [_real] * 2, fixed((), ()),
     dispatch=False)
spec("linspace", lambda m, a, b: m.linspace(a, b, 5), [_real, _real], fixed((), ()))
spec("linspace_no_endpoint", lambda m, a, b: m.linspace(a, b, 4, endpoint=False), [_real] * 2,
     fixed((), (2,)))
spec("logspace", lambda m, a, b: m.logspace(a, b, 3), [_unit, _unit], fixed((), ()))
spec("zeros_like_is_constant", lambda m, x: m.zeros_like(x) + m.ones_like(x) * x
     + m.full_like(x, 2.0) * x, [_real], same(1))


(test_values_match_numpy, test_grads, test_float32, test_mixed_precision,
 test_numpy_dispatch) = table.table_tests(CASES)
test_jit_matches = table.jit_table_test(CASES)
