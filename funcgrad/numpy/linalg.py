"""funcgrad.numpy.linalg: differentiable linear algebra, like ``numpy.linalg``.

Every function works on stacks of matrices (the last two axes), differentiates in forward
and reverse mode to any order, keeps float32 as float32 and accepts complex input. Plain
``numpy.linalg.xxx(traced_value)`` calls are routed here. See each function for where a
derivative does not exist (singular matrices, repeated eigenvalues or singular values)
and what is returned there.

``eig``/``eigvals`` (general, non-Hermitian) always return complex arrays and have
derivatives for distinct eigenvalues (eigenvectors: phase-invariant functions only).
"""
from .._src.prims.contractions import matmul, tensordot
from .._src.prims.linalg_decomp import (EigResult, cholesky, eig, eigh, eigvals, eigvalsh, qr,
                                        svd, svdvals)
from .._src.prims.linalg_norms import (cond, diagonal, lstsq, matrix_norm, matrix_power,
                                       matrix_rank, matrix_transpose, multi_dot, norm, outer,
                                       tensorinv, tensorsolve, trace, vecdot, vector_norm)
from .._src.prims.linalg_solve import (EighResult, QRResult, SlogdetResult, SVDResult, det,
                                       inv, pinv, slogdet, solve)
from ._numpy2 import linalg_cross as cross
from numpy.linalg import LinAlgError

__all__ = ["LinAlgError", "cholesky", "cond", "cross", "det", "diagonal", "eig", "eigh",
           "eigvals", "eigvalsh", "inv",
           "lstsq", "matmul", "matrix_norm", "matrix_power", "matrix_rank",
           "matrix_transpose", "multi_dot", "norm", "outer", "pinv", "qr", "slogdet",
           "solve", "svd", "svdvals", "tensordot", "tensorinv", "tensorsolve", "trace",
           "vecdot", "vector_norm"]

_ = (EigResult, EighResult, QRResult, SlogdetResult, SVDResult)
