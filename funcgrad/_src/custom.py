"""User-defined derivatives: ``custom_jvp``, ``custom_vjp``, ``custom_gradient`` and
``checkpoint`` (rematerialisation), with JAX's API.

A call finds the innermost transformation among its arguments and hands itself to that
trace's ``process_custom_jvp`` / ``process_custom_vjp`` (in the interpreters): forward
mode applies the rule, reverse mode records one tape entry (``call_primitive``) whose
reverse rule asks this object, batching calls :meth:`batched` and passes the result to
the transformations below it, and the others (staging) simply trace the function.
This module is public API built on ``api.vjp`` and ``api.vmap``.
"""
from __future__ import annotations

import functools
import inspect

import numpy as np

from .api import vjp, vmap
from .core import find_top_trace
from .core import _np
from .errors import FuncgradTypeError, FuncgradValueError
from .prims.custom import custom_jvp_call_p, custom_vjp_call_p
from .tree_util import tree_flatten, tree_map, tree_structure, tree_unflatten


def _resolve_kwargs(fun, args, kwargs):
    """Keyword arguments turned positional through ``fun``'s signature (defaults filled)."""
    try:
        bound = inspect.signature(fun).bind(*args, **kwargs)
    except TypeError as e:
        raise FuncgradTypeError(f"{getattr(fun, '__name__', fun)}: {e}") from None
    bound.apply_defaults()
    if bound.kwargs:
        raise FuncgradTypeError(
            f"{getattr(fun, '__name__', fun)}: keyword-only arguments "
            f"{sorted(bound.kwargs)} are not supported by custom_jvp/custom_vjp functions")
    return bound.args


def _call_custom(obj, args, kwargs, method):
    """Hand a custom_jvp/custom_vjp call to the innermost transformation among its
    differentiable arguments (``method`` names that trace's handler), or run it plainly."""
    if kwargs:
        args = _resolve_kwargs(obj.fun, args, kwargs)
    _, diff = _split_nondiff(args, obj.nondiff_argnums)
    top = find_top_trace(tree_flatten(diff)[0])
    if top is None:
        return obj.fun(*args)
    return getattr(top, method)(obj, args)


def _split_nondiff(args, nondiff_argnums):
    nondiff = tuple(args[i] for i in nondiff_argnums)
    diff = tuple(a for i, a in enumerate(args) if i not in nondiff_argnums)
    return nondiff, diff


def _merge(nondiff, diff, nondiff_argnums, n):
    it_n = iter(nondiff)
    it_d = iter(diff)
    return [next(it_n) if i in nondiff_argnums else next(it_d) for i in range(n)]


# --------------------------------------------------------------------------------------
# custom_jvp


class custom_jvp:
    """A function with a user-defined forward-mode derivative (JAX's API).

    Define the rule with ``@f.defjvp`` as ``jvp(primals, tangents) -> (primal_out,
    tangent_out)``, or per argument with ``f.defjvps(*fns)`` where ``fn(t, ans, *args)``
    gives that argument's contribution. Reverse mode is derived by transposing the rule
    (the rule must be linear in the tangents). ``nondiff_argnums`` arguments are passed
    first to the rule and get no derivative.

    Example (log1p(exp(x)) with a stable derivative):
        >>> import funcgrad, funcgrad.numpy as fnp
        >>> @funcgrad.custom_jvp
        ... def softplus(x):
        ...     return fnp.logaddexp(x, 0.0)
        >>> @softplus.defjvp
        ... def softplus_jvp(primals, tangents):
        ...     (x,), (t,) = primals, tangents
        ...     return softplus(x), t / (1 + fnp.exp(-x))
        >>> print(funcgrad.grad(softplus)(1000.0))
        1.0
    """

    call_primitive = custom_jvp_call_p     # what reverse mode records for a call

    def __init__(self, fun, nondiff_argnums=()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.jvp = None

    def defjvp(self, jvp):
        self.jvp = jvp
        return jvp

    def defjvps(self, *tangent_fns):
        if len(tangent_fns) + len(self.nondiff_argnums) == 0:
            raise FuncgradValueError("defjvps: give one function (or None) per argument")

        def jvp(primals, tangents):
            nd = len(self.nondiff_argnums)
            diff_primals = primals[nd:]
            out = self(*primals)
            tout = None
            for fn, t in zip(tangent_fns, tangents):
                if fn is None:
                    continue
                c = fn(t, out, *diff_primals)
                tout = c if tout is None else tree_map(lambda a, b: a + b, tout, c)
            if tout is None:
                tout = tree_map(_np().zeros_like, out)
            return out, tout
        self.jvp = jvp
        return jvp

    def __call__(self, *args, **kwargs):
        if self.jvp is None:
            raise FuncgradTypeError(
                f"custom_jvp function {self.__name__} has no rule: define it with "
                f"@{self.__name__}.defjvp")
        return _call_custom(self, args, kwargs, "process_custom_jvp")

    def rule(self, args, tangents):
        """Apply the user's rule: ``args`` all arguments, ``tangents`` for the
        differentiable ones (zeros where absent)."""
        nondiff, diff = _split_nondiff(args, self.nondiff_argnums)
        res = self.jvp(*nondiff, tuple(diff), tuple(tangents))
        if not (isinstance(res, (tuple, list)) and len(res) == 2):
            raise FuncgradTypeError(
                f"custom_jvp rule of {self.__name__} must return (primal_out, tangent_out)")
        return res

    def transpose_rule(self, args, g, out_tree):
        """Reverse rule of a call: the flat cotangents of the differentiable arguments'
        leaves, by reverse mode through the (linear) user rule at zero tangents."""
        nondiff, diff = _split_nondiff(args, self.nondiff_argnums)
        zeros = [tree_map(_np().zeros_like, d) for d in diff]

        def tangent_map(*ts):
            return self.rule(args, ts)[1]

        _, pull = vjp(tangent_map, *zeros)
        cts = pull(tree_unflatten(out_tree, list(g)))
        return tree_flatten(cts)[0]

    def batched(self, in_axes, size):
        """This function and its rule vmapped over ``in_axes`` (one entry per argument;
        results batched along axis 0)."""
        nd = self.nondiff_argnums
        batched = custom_jvp(vmap(self.fun, in_axes=in_axes, axis_size=size),
                             nondiff_argnums=nd)
        diff_axes = tuple(ax for i, ax in enumerate(in_axes) if i not in nd)

        def rule(*rargs):
            if nd:
                *nondiff, prim, tang = rargs
            else:
                prim, tang = rargs
                nondiff = []

            def one(*flat):
                k = len(prim)
                return self.rule(_merge(nondiff, flat[:k], nd, len(in_axes)), flat[k:])
            return vmap(one, in_axes=diff_axes + diff_axes, axis_size=size)(*prim, *tang)
        batched.defjvp(rule)
        return batched


# --------------------------------------------------------------------------------------
# custom_vjp


class custom_vjp:
    """A function with a user-defined reverse-mode derivative (JAX's API).

    ``f.defvjp(fwd, bwd)``: ``fwd(*args) -> (out, residuals)`` and ``bwd(*nondiff,
    residuals, cotangent_out) -> tuple of cotangents`` (one per differentiable argument,
    ``None`` for zero). Forward mode (jvp) of a custom_vjp function raises a TypeError,
    as in JAX; use ``custom_jvp`` when you need both.

    Example (gradient clipping in the backward pass):
        >>> import numpy as np, funcgrad, funcgrad.numpy as fnp
        >>> @funcgrad.custom_vjp
        ... def clip_gradient(x):
        ...     return x
        >>> clip_gradient.defvjp(lambda x: (x, None),
        ...                      lambda res, g: (fnp.clip(g, -1.0, 1.0),))
        >>> print(funcgrad.grad(lambda x: 10 * clip_gradient(x))(2.0))
        1.0
    """

    call_primitive = custom_vjp_call_p     # what reverse mode records for a call

    def __init__(self, fun, nondiff_argnums=()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.fwd = self.bwd = None
        self.inline_jvp = False      # checkpoint: forward mode traces `fun` instead

    def defvjp(self, fwd, bwd):
        self.fwd = fwd
        self.bwd = bwd

    def __call__(self, *args, **kwargs):
        if self.fwd is None:
            raise FuncgradTypeError(
                f"custom_vjp function {self.__name__} has no rules: call "
                f"{self.__name__}.defvjp(fwd, bwd)")
        return _call_custom(self, args, kwargs, "process_custom_vjp")

    def run_fwd(self, args):
        res = self.fwd(*args)
        if not (isinstance(res, (tuple, list)) and len(res) == 2):
            raise FuncgradTypeError(
                f"custom_vjp fwd of {self.__name__} must return (output, residuals)")
        return res

    def run_bwd(self, args, res, g, out_tree):
        nondiff, diff = _split_nondiff(args, self.nondiff_argnums)
        ct = tree_unflatten(out_tree, list(g))
        cts = self.bwd(*nondiff, res, ct)
        if not isinstance(cts, (tuple, list)) or len(cts) != len(diff):
            raise FuncgradTypeError(
                f"custom_vjp bwd of {self.__name__} must return a tuple with one cotangent "
                f"per differentiable argument ({len(diff)}), got "
                f"{type(cts).__name__}" + (f" of length {len(cts)}" if isinstance(cts, (tuple, list)) else ""))
        flat = []
        for d, c in zip(diff, cts):
            d_leaves, d_tree = tree_flatten(d)
            if c is None:
                flat.extend([None] * len(d_leaves))
                continue
            c_leaves, c_tree = tree_flatten(c, is_leaf=lambda x: x is None)
            if c_tree != tree_structure(d, is_leaf=lambda x: x is None) and len(c_leaves) != len(d_leaves):
                raise FuncgradTypeError(
                    f"custom_vjp bwd of {self.__name__}: cotangent structure {c_tree} does "
                    f"not match its argument's structure {d_tree}")
            for dl, cl in zip(d_leaves, c_leaves):
                if cl is not None and tuple(np.shape(cl)) != tuple(np.shape(dl)):
                    raise FuncgradValueError(
                        f"custom_vjp bwd of {self.__name__}: a cotangent has shape "
                        f"{tuple(np.shape(cl))} but its argument has shape "
                        f"{tuple(np.shape(dl))}")
            flat.extend(c_leaves)
        return flat

    def batched(self, in_axes, size):
        """This function and its rules vmapped over ``in_axes`` (one entry per argument;
        results batched along axis 0)."""
        nd = self.nondiff_argnums
        batched = custom_vjp(vmap(self.fun, in_axes=in_axes, axis_size=size),
                             nondiff_argnums=nd)
        batched.inline_jvp = self.inline_jvp
        diff_axes = tuple(ax for i, ax in enumerate(in_axes) if i not in nd)

        def fwd(*fargs):
            nondiff, diff = _split_nondiff(fargs, nd)
            return vmap(lambda *d: self.run_fwd(_merge(nondiff, d, nd, len(in_axes))),
                        in_axes=diff_axes, axis_size=size)(*diff)

        def bwd(*bargs):
            *nondiff, res, g = bargs
            cts = vmap(lambda r, gg: tuple(self.bwd(*nondiff, r, gg)), axis_size=size)(res, g)
            # an argument that was not batched gets the sum over the batch
            return tuple(
                c if c is None else tree_map(
                    lambda ci, ax: ci if ax is not None else _np().sum(ci, axis=0), c, axes,
                    is_leaf=lambda x: x is None)
                for c, axes in zip(cts, diff_axes))
        batched.defvjp(fwd, bwd)
        return batched


def custom_gradient(fun):
    """``fun(*args) -> (value, vjp_fn)`` turned into a function whose gradient is given by
    ``vjp_fn(cotangent) -> tuple of cotangents`` (TensorFlow/JAX's custom_gradient).

    Example:
        >>> import funcgrad, funcgrad.numpy as fnp
        >>> @funcgrad.custom_gradient
        ... def f(x):
        ...     return fnp.sin(x), lambda g: (g * 100.0,)
        >>> print(funcgrad.grad(f)(0.5))
        100.0
    """
    @custom_vjp
    def wrapped(*args):
        return fun(*args)[0]

    def fwd(*args):
        value, vjp_fn = fun(*args)
        return value, vjp_fn

    def bwd(vjp_fn, g):
        cts = vjp_fn(g)
        return tuple(cts) if isinstance(cts, (tuple, list)) else (cts,)

    wrapped.defvjp(fwd, bwd)
    functools.update_wrapper(wrapped, fun)
    return wrapped


# --------------------------------------------------------------------------------------
# checkpoint


def checkpoint(fun, policy=None, prevent_cse=True, static_argnums=()):
    """Rematerialisation: under reverse mode, ``fun``'s intermediate values are not kept;
    its forward pass is recomputed during the backward pass. Alias: ``remat``.

    Trades compute for memory: a backward pass through ``checkpoint(f)`` stores only
    ``f``'s inputs. ``policy`` must be None (save nothing but the inputs).

    Example:
        >>> import numpy as np, funcgrad, funcgrad.numpy as fnp
        >>> layer = funcgrad.checkpoint(lambda x: fnp.tanh(x) ** 2)
        >>> print(funcgrad.grad(lambda x: fnp.sum(layer(x)))(np.zeros(2)))
        [0. 0.]
    """
    if policy is not None:
        raise FuncgradTypeError(
            "checkpoint: only policy=None (recompute everything but the inputs) is "
            "supported")
    static_argnums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)

    remat = custom_vjp(fun, nondiff_argnums=static_argnums)

    def fwd(*args):
        return fun(*args), args

    def bwd(*rest):
        *nondiff, saved, g = rest
        diff_idx = [i for i in range(len(saved)) if i not in static_argnums]

        def f_diff(*diff_args):
            full = list(saved)
            for i, a in zip(diff_idx, diff_args):
                full[i] = a
            return fun(*full)

        _, pull = vjp(f_diff, *[saved[i] for i in diff_idx])
        return tuple(pull(g))

    remat.defvjp(fwd, bwd)
    remat.inline_jvp = True
    return remat


remat = checkpoint
