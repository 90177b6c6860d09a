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
"""
from .._src.prims.special import (digamma, erf, erfc, expit, gammaln, log_expit,
                                  log_softmax, logit, logsumexp, polygamma, psi, softmax,
                                  xlog1py, xlogy)

__all__ = ["digamma", "erf", "erfc", "expit", "gammaln", "log_expit", "log_softmax",
           "logit", "logsumexp", "polygamma", "psi", "softmax", "xlog1py", "xlogy"]
