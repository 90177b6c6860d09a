"""funcgrad.scipy.stats: differentiable log-densities, densities and distribution
functions of common distributions, with SciPy's names and arguments
(``stats.norm.logpdf(x, loc=0, scale=1)``...). SciPy is not needed.

Each distribution is a namespace of functions of arrays (broadcasting; float32 stays
float32; integers become float64), differentiable in ``x`` and every parameter unless
noted: the cdf/sf of ``t``, ``gamma``, ``chi2``, ``beta`` and ``poisson`` are built on
``gammainc``/``betainc``, differentiable in ``x`` only (a derivative in a shape
parameter raises FuncgradValueError). Outside the support, ``logpdf`` is ``-inf``,
``pdf``/``cdf`` 0 or 1, as SciPy; invalid parameters (``scale <= 0``...) give NaN.
"""
from __future__ import annotations

import math
import types

import numpy as np

import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradValueError

from . import special as _sp

__all__ = ["norm", "t", "gamma", "chi2", "beta", "expon", "laplace", "logistic", "uniform",
           "cauchy", "poisson", "multivariate_normal", "dirichlet"]

_LOG_2PI = math.log(2 * math.pi)


def _arrs(*vals):
    """Arrays of one floating dtype (Python numbers are weak; ints become float64)."""
    arrs = [v if isinstance(v, (int, float)) and not isinstance(v, bool) else fnp.asarray(v)
            for v in vals]
    probe = [v if isinstance(v, (int, float)) else np.empty((), v.dtype) for v in arrs]
    dt = np.result_type(*probe)
    if dt.kind != "f":
        dt = np.dtype(np.float64)
    return [fnp.asarray(v, dtype=dt) if isinstance(v, (int, float)) else fnp.astype(v, dt)
            for v in arrs]


def _std(x, loc, scale):
    x, loc, scale = _arrs(x, loc, scale)
    return (x - loc) / scale, scale


def _mirror(x, loc):
    """``2 loc - x`` (the sf of a symmetric distribution is its cdf there)."""
    x, loc = _arrs(x, loc)
    return 2 * loc - x


def _bad_scale(scale, out):
    return fnp.where(scale > 0, out, np.nan)


def _ns(name, doc, **fns):
    ns = types.SimpleNamespace(**fns)
    ns.__doc__ = doc
    ns.__name__ = name
    return ns


# ---- norm -------------------------------------------------------------------------------------
def _norm_logpdf(x, loc=0, scale=1):
    z, s = _std(x, loc, scale)
    return _bad_scale(s, -0.5 * z * z - fnp.log(s) - 0.5 * _LOG_2PI)


def _norm_cdf(x, loc=0, scale=1):
    z, s = _std(x, loc, scale)
    return _bad_scale(s, _sp.ndtr(z))


def _norm_logcdf(x, loc=0, scale=1):
    z, s = _std(x, loc, scale)
    return _bad_scale(s, _sp.log_ndtr(z))


def _norm_ppf(q, loc=0, scale=1):
    q, loc, scale = _arrs(q, loc, scale)
    return _bad_scale(scale, loc + scale * _sp.ndtri(q))


norm = _ns("norm", "The normal distribution N(loc, scale^2).",
           logpdf=_norm_logpdf, pdf=lambda x, loc=0, scale=1: fnp.exp(_norm_logpdf(x, loc, scale)),
           cdf=_norm_cdf, logcdf=_norm_logcdf,
           sf=lambda x, loc=0, scale=1: _norm_cdf(_mirror(x, loc), loc, scale),
           logsf=lambda x, loc=0, scale=1: _norm_logcdf(_mirror(x, loc), loc, scale),
           ppf=_norm_ppf,
           isf=lambda q, loc=0, scale=1: _norm_ppf(1 - _arrs(q)[0], loc, scale),
           entropy=lambda loc=0, scale=1: 0.5 * (_LOG_2PI + 1) + fnp.log(_arrs(scale)[0]))


# ---- Student's t ------------------------------------------------------------------------------
def _t_logpdf(x, df, loc=0, scale=1):
    z, s = _std(x, loc, scale)
    df = _arrs(df, z)[0]
    out = (_sp.gammaln((df + 1) / 2) - _sp.gammaln(df / 2) - 0.5 * fnp.log(df * math.pi)
           - (df + 1) / 2 * fnp.log1p(z * z / df) - fnp.log(s))
    return fnp.where((s > 0) & (df > 0), out, np.nan)


def _t_cdf(x, df, loc=0, scale=1):
    z, s = _std(x, loc, scale)
    df = _arrs(df, z)[0]
    # P(T <= z) = 1 - I_{df/(df+z^2)}(df/2, 1/2) / 2 for z > 0 (symmetric below)
    tail = 0.5 * _sp.betainc(df / 2, 0.5, df / (df + z * z))
    out = fnp.where(z > 0, 1 - tail, tail)
    # at z = 0 that form's slope is 0 * inf: there the value 1/2 plus the density's
    # first-order term, exact to second order (the density is flat at 0)
    at0 = 0.5 + z * fnp.exp(_sp.gammaln((df + 1) / 2) - _sp.gammaln(df / 2)
                            - 0.5 * fnp.log(df * math.pi))
    out = fnp.where(z == 0, at0, out)
    return fnp.where((s > 0) & (df > 0), out, np.nan)


t = _ns("t", "Student's t distribution with ``df`` degrees of freedom (cdf/sf "
             "differentiable in x, loc and scale, not in df).",
        logpdf=_t_logpdf, pdf=lambda x, df, loc=0, scale=1: fnp.exp(_t_logpdf(x, df, loc, scale)),
        cdf=_t_cdf,
        sf=lambda x, df, loc=0, scale=1: _t_cdf(_mirror(x, loc), df, loc, scale))


# ---- gamma and chi2 ---------------------------------------------------------------------------
def _gamma_logpdf(x, a, loc=0, scale=1):
    z, s = _std(x, loc, scale)
    a = _arrs(a, z)[0]
    pos = z > 0
    zs = fnp.where(pos, z, 1.0)
    out = _sp.xlogy(a - 1, zs) - zs - _sp.gammaln(a) - fnp.log(s)
    # at z = 0 the density is 1/scale for a = 1, inf below, 0 above
    inf = fnp.full_like(z, np.inf)
    at0 = fnp.where(a == 1, -fnp.log(s), fnp.where(a < 1, inf, -inf))
    out = fnp.where(pos, out, fnp.where(z == 0, at0, -np.inf))
    return fnp.where((s > 0) & (a > 0), out, np.nan)


def _gamma_cdf(x, a, loc=0, scale=1):
    z, s = _std(x, loc, scale)
    a = _arrs(a, z)[0]
    out = _sp.gammainc(a, fnp.maximum(z, 0.0))
    return fnp.where((s > 0) & (a > 0), out, np.nan)


def _gamma_sf(x, a, loc=0, scale=1):
    z, s = _std(x, loc, scale)
    a = _arrs(a, z)[0]
    out = _sp.gammaincc(a, fnp.maximum(z, 0.0))
    return fnp.where((s > 0) & (a > 0), out, np.nan)


gamma = _ns("gamma", "The gamma distribution with shape ``a`` (cdf/sf differentiable in "
                     "x, loc and scale, not in a).",
            logpdf=_gamma_logpdf,
            pdf=lambda x, a, loc=0, scale=1: fnp.exp(_gamma_logpdf(x, a, loc, scale)),
            cdf=_gamma_cdf, sf=_gamma_sf,
            logcdf=lambda x, a, loc=0, scale=1: fnp.log(_gamma_cdf(x, a, loc, scale)),
            logsf=lambda x, a, loc=0, scale=1: fnp.log(_gamma_sf(x, a, loc, scale)))


def _chi2_args(df, loc, scale):
    return df * 0.5, loc, scale * 2     # (Python numbers stay weak: float32 x stays)


chi2 = _ns("chi2", "The chi-squared distribution with ``df`` degrees of freedom (a gamma "
                   "distribution with shape df/2 and scale 2).",
           logpdf=lambda x, df, loc=0, scale=1: _gamma_logpdf(x, *_chi2_args(df, loc, scale)),
           pdf=lambda x, df, loc=0, scale=1: fnp.exp(_gamma_logpdf(x, *_chi2_args(df, loc,
                                                                                  scale))),
           cdf=lambda x, df, loc=0, scale=1: _gamma_cdf(x, *_chi2_args(df, loc, scale)),
           sf=lambda x, df, loc=0, scale=1: _gamma_sf(x, *_chi2_args(df, loc, scale)))


# ---- beta -----------------------------------------------------------------------------------
def _beta_logpdf(x, a, b, loc=0, scale=1):
    z, s = _std(x, loc, scale)
    a, b = _arrs(a, b, z)[:2]
    inside = (z > 0) & (z < 1)
    zs = fnp.where(inside, z, 0.5)
    out = _sp.xlogy(a - 1, zs) + _sp.xlog1py(b - 1, -zs) - _sp.betaln(a, b) - fnp.log(s)
    out = fnp.where(inside, out, -np.inf)
    return fnp.where((s > 0) & (a > 0) & (b > 0), out, np.nan)


def _beta_cdf(x, a, b, loc=0, scale=1):
    z, s = _std(x, loc, scale)
    a, b = _arrs(a, b, z)[:2]
    out = _sp.betainc(a, b, fnp.clip(z, 0.0, 1.0))
    return fnp.where((s > 0) & (a > 0) & (b > 0), out, np.nan)


beta = _ns("beta", "The beta distribution on [loc, loc + scale] (cdf/sf differentiable "
                   "in x, loc and scale, not in a, b).",
           logpdf=_beta_logpdf,
           pdf=lambda x, a, b, loc=0, scale=1: fnp.exp(_beta_logpdf(x, a, b, loc, scale)),
           cdf=_beta_cdf,
           sf=lambda x, a, b, loc=0, scale=1: 1 - _beta_cdf(x, a, b, loc, scale))


# ---- location-scale families with closed forms ----------------------------------------------
def _expon_logpdf(x, loc=0, scale=1):
    z, s = _std(x, loc, scale)
    return _bad_scale(s, fnp.where(z >= 0, -z - fnp.log(s), -np.inf))


def _expon_cdf(x, loc=0, scale=1):
    z, s = _std(x, loc, scale)
    return _bad_scale(s, fnp.where(z > 0, -fnp.expm1(-fnp.maximum(z, 0.0)), 0.0))


expon = _ns("expon", "The exponential distribution (rate 1 / scale) from loc.",
            logpdf=_expon_logpdf,
            pdf=lambda x, loc=0, scale=1: fnp.exp(_expon_logpdf(x, loc, scale)),
            cdf=_expon_cdf,
            sf=lambda x, loc=0, scale=1: 1 - _expon_cdf(x, loc, scale),
            logsf=lambda x, loc=0, scale=1: (lambda z, s: _bad_scale(
                s, fnp.where(z > 0, -z, 0.0)))(*_std(x, loc, scale)))


def _laplace_logpdf(x, loc=0, scale=1):
    z, s = _std(x, loc, scale)
    return _bad_scale(s, -fnp.abs(z) - fnp.log(2 * s))


def _laplace_cdf(x, loc=0, scale=1):
    z, s = _std(x, loc, scale)
    return _bad_scale(s, fnp.where(z < 0, 0.5 * fnp.exp(fnp.minimum(z, 0.0)),
                                   1 - 0.5 * fnp.exp(-fnp.maximum(z, 0.0))))


laplace = _ns("laplace", "The Laplace (double exponential) distribution.",
              logpdf=_laplace_logpdf,
              pdf=lambda x, loc=0, scale=1: fnp.exp(_laplace_logpdf(x, loc, scale)),
              cdf=_laplace_cdf,
              sf=lambda x, loc=0, scale=1: _laplace_cdf(_mirror(x, loc), loc, scale))


def _logistic_logpdf(x, loc=0, scale=1):
    z, s = _std(x, loc, scale)
    return _bad_scale(s, -fnp.abs(z) - 2 * fnp.log1p(fnp.exp(-fnp.abs(z))) - fnp.log(s))


logistic = _ns("logistic", "The logistic distribution.",
               logpdf=_logistic_logpdf,
               pdf=lambda x, loc=0, scale=1: fnp.exp(_logistic_logpdf(x, loc, scale)),
               cdf=lambda x, loc=0, scale=1: (lambda z, s: _bad_scale(s, _sp.expit(z)))(
                   *_std(x, loc, scale)),
               sf=lambda x, loc=0, scale=1: (lambda z, s: _bad_scale(s, _sp.expit(-z)))(
                   *_std(x, loc, scale)))


def _uniform_logpdf(x, loc=0, scale=1):
    z, s = _std(x, loc, scale)
    return _bad_scale(s, fnp.where((z >= 0) & (z <= 1), -fnp.log(s), -np.inf))


uniform = _ns("uniform", "The uniform distribution on [loc, loc + scale].",
              logpdf=_uniform_logpdf,
              pdf=lambda x, loc=0, scale=1: fnp.exp(_uniform_logpdf(x, loc, scale)),
              cdf=lambda x, loc=0, scale=1: (lambda z, s: _bad_scale(s, fnp.clip(z, 0, 1)))(
                  *_std(x, loc, scale)),
              sf=lambda x, loc=0, scale=1: (lambda z, s: _bad_scale(s, 1 - fnp.clip(z, 0, 1)))(
                  *_std(x, loc, scale)))


def _cauchy_logpdf(x, loc=0, scale=1):
    z, s = _std(x, loc, scale)
    return _bad_scale(s, -math.log(math.pi) - fnp.log(s) - fnp.log1p(z * z))


cauchy = _ns("cauchy", "The Cauchy distribution.",
             logpdf=_cauchy_logpdf,
             pdf=lambda x, loc=0, scale=1: fnp.exp(_cauchy_logpdf(x, loc, scale)),
             cdf=lambda x, loc=0, scale=1: (lambda z, s: _bad_scale(
                 s, 0.5 + fnp.arctan(z) / math.pi))(*_std(x, loc, scale)),
             sf=lambda x, loc=0, scale=1: (lambda z, s: _bad_scale(
                 s, 0.5 - fnp.arctan(z) / math.pi))(*_std(x, loc, scale)))


# ---- poisson ----------------------------------------------------------------------------------
def _poisson_logpmf(k, mu, loc=0):
    k, mu, loc = _arrs(k, mu, loc)
    k = k - loc
    ok = (k >= 0) & (k == fnp.floor(k))
    ks = fnp.where(ok, k, 0.0)
    out = _sp.xlogy(ks, mu) - mu - _sp.gammaln(ks + 1)
    return fnp.where(mu >= 0, fnp.where(ok, out, -np.inf), np.nan)


def _poisson_cdf(k, mu, loc=0):
    k, mu, loc = _arrs(k, mu, loc)
    kf = fnp.floor(k - loc)
    out = fnp.where(kf >= 0, _sp.gammaincc(fnp.maximum(kf, 0.0) + 1, mu), 0.0)
    return fnp.where(mu >= 0, out, np.nan)


poisson = _ns("poisson", "",
              logpmf=_poisson_logpmf,
              pmf=lambda k, mu, loc=0: fnp.exp(_poisson_logpmf(k, mu, loc)),
              cdf=_poisson_cdf,
              sf=lambda k, mu, loc=0: 1 - _poisson_cdf(k, mu, loc))
poisson.__doc__ = ("The Poisson distribution: logpmf/pmf differentiable in mu; cdf/sf "
                   "differentiable in mu (through gammaincc's last argument).")


# ---- multivariate ---------------------------------------------------------------------------
def _mvn_parts(mean, cov, allow_singular, d):
    """``(solve(v), log pseudo-determinant, rank)`` of the covariance."""
    cov = fnp.asarray(cov)
    if cov.ndim == 0:
        cov = cov * fnp.eye(d, dtype=cov.dtype)
    elif cov.ndim == 1:
        cov = fnp.diag(cov)
    if not allow_singular:
        lo = fnp.linalg.cholesky(cov)
        logdet = 2 * fnp.sum(fnp.log(fnp.diagonal(lo)))
        return (lambda v: fnp.linalg.solve(cov, v)), logdet, d
    w, u = fnp.linalg.eigh(cov)
    wv = np.asarray(w if not hasattr(w, "_concrete") else w._concrete("multivariate_normal"))
    tol = 1e6 * np.finfo(wv.dtype).eps * np.max(np.abs(wv))
    keep = wv > tol
    if np.any(wv < -tol):
        raise FuncgradValueError("multivariate_normal: the covariance is not positive "
                                 "semidefinite")
    wk = fnp.where(keep, w, 1.0)
    inv_w = fnp.where(keep, 1.0 / wk, 0.0)
    logdet = fnp.sum(fnp.where(keep, fnp.log(wk), 0.0))
    return (lambda v: u @ (inv_w[:, None] * (u.T @ v))), logdet, int(keep.sum())


def _mvn_logpdf(x, mean=None, cov=1, allow_singular=False):
    x = fnp.asarray(x)
    if x.dtype.kind != "f":
        x = fnp.astype(x, np.float64)
    d = x.shape[-1] if x.ndim else 1
    if x.ndim == 0:
        x = x[None]
    mean = fnp.zeros(d, dtype=x.dtype) if mean is None else fnp.asarray(mean)
    sol, logdet, rank = _mvn_parts(mean, cov, allow_singular, d)
    dev = x - mean
    flat = fnp.reshape(dev, (-1, d))
    maha = fnp.sum(flat * fnp.transpose(sol(fnp.transpose(flat))), axis=-1)
    out = -0.5 * (rank * _LOG_2PI + logdet + maha)
    return fnp.reshape(out, dev.shape[:-1])


def _mvn_entropy(mean=None, cov=1, allow_singular=False):
    cov = fnp.asarray(cov)
    d = cov.shape[-1] if cov.ndim else 1
    _, logdet, rank = _mvn_parts(mean, cov, allow_singular, d)
    return 0.5 * (rank * (_LOG_2PI + 1) + logdet)


multivariate_normal = _ns(
    "multivariate_normal",
    "The multivariate normal distribution: ``logpdf(x, mean, cov, allow_singular)`` over "
    "the last axis of x (cov a matrix, a vector of variances or a scalar), ``pdf`` and "
    "``entropy``. With ``allow_singular=True`` a singular covariance uses its "
    "pseudo-inverse and pseudo-determinant (eigenvalues below 1e6 eps times the largest "
    "are dropped, as SciPy); differentiable in x, mean and cov.",
    logpdf=_mvn_logpdf,
    pdf=lambda x, mean=None, cov=1, allow_singular=False: fnp.exp(
        _mvn_logpdf(x, mean, cov, allow_singular)),
    entropy=_mvn_entropy)


def _dirichlet_logpdf(x, alpha):
    x, alpha = _arrs(x, alpha)
    return (fnp.sum(_sp.xlogy(alpha - 1, x), axis=-1) - fnp.sum(_sp.gammaln(alpha), axis=-1)
            + _sp.gammaln(fnp.sum(alpha, axis=-1)))


dirichlet = _ns("dirichlet", "The Dirichlet distribution: ``logpdf(x, alpha)`` and "
                             "``pdf`` over the last axis of x (a point of the simplex).",
                logpdf=_dirichlet_logpdf,
                pdf=lambda x, alpha: fnp.exp(_dirichlet_logpdf(x, alpha)))
