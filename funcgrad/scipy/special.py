"""funcgrad.scipy.special: differentiable special functions, like ``scipy.special``.

SciPy is not needed: ``erf``, ``erfc``, ``gammaln``, ``digamma`` and ``polygamma`` are
computed here (series, continued fractions and asymptotic expansions evaluated with
NumPy, in float64; relative error about 1e-15, except next to the zeros of ``gammaln``
and ``digamma``, where the absolute error is about 1e-16). float32 input is computed in
float64 and returned as float32. Derivatives, to any order:
``erf' = 2/sqrt(pi) exp(-x**2)``, ``gammaln' = digamma``, ``digamma' = polygamma(1, .)``,
``polygamma(n, .)' = polygamma(n + 1, .)``.

``logsumexp``, ``softmax`` and ``log_softmax`` subtract the maximum first, so huge inputs
do not overflow, and their gradients are finite for ``-inf`` entries and huge logits.

Also, computed here without SciPy: ``ndtr``, ``log_ndtr``, ``ndtri``, ``erfinv``,
``erfcinv``, ``i0e``, ``i1``, ``i1e``, ``entr``, ``xlogy``, ``xlog1py``, ``gamma``,
``gammasgn``, ``rgamma``, ``beta``, ``betaln``, ``multigammaln`` (differentiable in every
argument), and ``gammainc``, ``gammaincc``, ``betainc`` (differentiable in ``x``, their
last argument, only; a derivative in ``a`` or ``b`` raises FuncgradValueError).

With SciPy's kernels for the values (SciPy needed for these only) and funcgrad's
derivatives in ``x`` to any order: the Bessel functions ``j0, j1, jn, jv, y0, y1, yn, yv,
iv, ive`` and the Hurwitz ``zeta(x, q)`` (differentiable in ``q``); and ``erf``/``erfc`` of
complex input (holomorphic derivative; real input needs no SciPy).
"""
from .._src.prims.special import (beta, betainc, betaln, digamma, entr, erf, erfc,
                                  erfcinv, erfinv, expit, gamma, gammainc, gammaincc,
                                  gammaln, gammasgn, i0e, i1, i1e, iv, ive, j0, j1, jn, jv,
                                  log_expit, log_ndtr, log_softmax, logit, logsumexp,
                                  multigammaln, ndtr, ndtri, polygamma, psi, rgamma,
                                  softmax, xlog1py, xlogy, y0, y1, yn, yv, zeta)

__all__ = ["beta", "betainc", "betaln", "digamma", "entr", "erf", "erfc", "erfcinv",
           "erfinv", "expit", "gamma", "gammainc", "gammaincc", "gammaln", "gammasgn",
           "i0e", "i1", "i1e", "log_expit", "log_ndtr", "log_softmax", "logit",
           "logsumexp", "multigammaln", "ndtr", "ndtri", "polygamma", "psi", "rgamma",
           "softmax", "xlog1py", "xlogy", "j0", "j1", "jn", "jv", "y0", "y1", "yn", "yv",
           "iv", "ive", "zeta"]
