"""funcgrad.scipy.linalg: differentiable functions of ``scipy.linalg`` (SciPy is not
needed; see each function for the derivatives and dtypes it supports)."""
from .._src.prims.linalg_scipy import (cho_factor, cho_solve, cholesky, expm, lu, lu_factor,
                                       lu_solve, solve_banded, solve_sylvester,
                                       solve_triangular, sqrtm)

__all__ = ["cho_factor", "cho_solve", "cholesky", "expm", "lu", "lu_factor", "lu_solve",
           "solve_banded", "solve_sylvester", "solve_triangular", "sqrtm"]
