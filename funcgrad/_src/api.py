"""The user-facing transformations, built from the forward and reverse interpreters.

Pytrees are flattened here, at the boundary, once; the interpreters see flat lists.
"""
from __future__ import annotations

import functools
import inspect
import operator

import numpy as np

from . import ad
from . import batching
from . import threads as _threads
from .backend import dtype_name, float0
from .core import Tracer, new_trace, xp_of
from .core import _np
from .errors import FuncgradTypeError, FuncgradValueError, UnexpectedTracerError
from .tree_util import (flatten_up_to, tree_flatten, tree_map, tree_structure, tree_unflatten,
                        treedef_is_leaf)


def _fname(f):
    return getattr(f, "__name__", None) or type(f).__name__


def _as_inputs(leaves, what, context=()):
    """The differentiated input leaves as arrays.

    A Python ``float``/``complex`` is weakly typed in NumPy 2 (it never promotes an
    array). As an *input* it must become an array, so it takes the floating dtype that
    every floating array among the arguments shares (float32 next to float32 arrays, as
    JAX's weak types resolve), and NumPy's default (float64) otherwise.
    """
    if not any(type(x) in (float, complex) for x in leaves):
        return [_as_array(x, what) for x in leaves]
    dtypes = set()
    for x in list(leaves) + list(context):
        dt = getattr(x, "dtype", None)
        if dt is not None and not isinstance(x, np.generic) and np.dtype(dt).kind in "fc":
            dtypes.add(np.dtype(dt))
    weak = None
    if len({d if d.kind == "f" else np.finfo(d).dtype for d in dtypes}) == 1:
        base = next(iter(dtypes))
        weak = base if base.kind == "f" else np.finfo(base).dtype
    out = []
    for x in leaves:
        if weak is not None and type(x) in (float, complex):
            dt = weak if type(x) is float else np.result_type(weak, np.complex64)
            out.append(np.asarray(x, dtype=dt))
        else:
            out.append(_as_array(x, what))
    return out


def _as_array(x, what):
    """A differentiable input as an array (Python scalars -> NumPy's default dtypes)."""
    if isinstance(x, Tracer) or (hasattr(x, "shape") and hasattr(x, "dtype")):
        return x
    if isinstance(x, (bool, int, float, complex, list, tuple)) or isinstance(x, np.generic):
        return np.asarray(x)
    raise FuncgradTypeError(
        f"{what}: argument of type {type(x).__name__} is not an array; pass a NumPy array, "
        "a Python number, or a pytree (tuple/list/dict) of them")


# --------------------------------------------------------------------------------------
# jvp / linearize


def jvp(fun, primals, tangents, has_aux=False):
    """Forward mode: ``(fun(*primals), J @ tangents)``.

    ``primals`` and ``tangents`` are tuples (or lists) of pytrees of one structure; each
    tangent has its primal's shape and dtype (integer primals take ``float0`` tangents).
    With ``has_aux=True``, ``fun`` returns ``(out, aux)`` and the result is
    ``(out, tangent_out, aux)``.

    Example (the lecture's forward derivative trace):
        >>> import funcgrad, funcgrad.numpy as fnp
        >>> f = lambda x1, x2: fnp.log(x1) + x1 * x2 - fnp.sin(x2)
        >>> y, dy = funcgrad.jvp(f, (2.0, 5.0), (1.0, 0.0))
        >>> round(float(y), 3), float(dy)
        (11.652, 5.5)
    """
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise FuncgradTypeError(
            "jvp: primals and tangents must be tuples or lists of arguments, e.g. "
            "jvp(f, (x,), (v,)); got "
            f"{type(primals).__name__} and {type(tangents).__name__}")
    if len(primals) != len(tangents):
        raise FuncgradValueError(
            f"jvp: {len(primals)} primal argument(s) but {len(tangents)} tangent(s)")
    p_flat, p_tree = tree_flatten(tuple(primals))
    t_flat, t_tree = tree_flatten(tuple(tangents))
    if t_tree != p_tree:
        raise FuncgradValueError(
            f"jvp: primal and tangent structures differ: {p_tree} vs {t_tree}")
    p_flat = _as_inputs(p_flat, "jvp")
    with new_trace(ad.JVPTrace) as trace:
        ins = []
        for i, (p, t) in enumerate(zip(p_flat, t_flat)):
            if p.dtype.kind in "fc":
                ins.append(ad.JVPTracer(trace, p, ad.check_tangent(t, p, f"jvp (leaf {i})")))
            else:
                t_dtype = getattr(t, "dtype", None)
                if t_dtype is None or not (t_dtype == float0 or t_dtype == p.dtype):
                    raise FuncgradTypeError(
                        f"jvp: primal leaf {i} has integer/boolean dtype {p.dtype}, which "
                        "has no derivative. To differentiate, pass floats (e.g. jvp(f, "
                        "(2.0,), (5.0,)), not (2,), (5,)); to keep it an integer, give it "
                        "the tangent numpy.zeros(shape, dtype=funcgrad.float0)")
                ins.append(p)
        out = fun(*tree_unflatten(p_tree, ins))
        if has_aux:
            out, aux = _split_aux(out, "jvp")
        out_flat, out_tree = tree_flatten(out)
        primal_out, tangent_out = [], []
        for o in out_flat:
            if isinstance(o, ad.JVPTracer) and o._trace is trace:
                primal_out.append(o.primal)
                tangent_out.append(o.tangent)
            else:
                _check_not_leaked(o)
                o = _as_array(o, "jvp output")
                primal_out.append(o)
                tangent_out.append(_np().zeros_like(o) if o.dtype.kind in "fc"
                                   else np.zeros(o.shape, float0))
    res = (tree_unflatten(out_tree, primal_out), tree_unflatten(out_tree, tangent_out))
    if has_aux:
        return res + (_strip_aux(aux, trace),)
    return res


def _split_aux(out, what):
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise FuncgradTypeError(
            f"{what} with has_aux=True: the function must return a pair (output, aux), "
            f"but it returned {type(out).__name__}"
            + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else ""))
    return out[0], out[1]


def _strip_aux(aux, trace):
    """Auxiliary outputs come back without this transformation's derivative."""
    def strip(x):
        while isinstance(x, (ad.JVPTracer, ad.VJPTracer)) and x._trace is trace:
            x = x.primal
        return x
    return tree_map(strip, aux)


def linearize(fun, *primals):
    """``(fun(*primals), f_jvp)`` where ``f_jvp(*tangents)`` is the Jacobian-vector
    product at ``primals``.

    Each call of ``f_jvp`` re-runs ``fun`` in forward mode (funcgrad evaluates eagerly and
    keeps no partial evaluation of the linear part).
    """
    out = fun(*primals)

    def f_jvp(*tangents):
        return jvp(fun, primals, tangents)[1]

    return out, f_jvp


# --------------------------------------------------------------------------------------
# vjp / grad


def _trace_reverse(fun, primals, what, has_aux=False, allow_int=True, argnames=None,
                   context=()):
    """Run ``fun`` under a new reverse trace; returns what the callers need. ``context``:
    the other (not differentiated) argument leaves, which decide the dtype of Python
    scalars among the inputs."""
    _threads.num_threads()       # (the BLAS thread count follows the machine's load)
    p_flat, p_tree = tree_flatten(tuple(primals))
    p_flat = _as_inputs(p_flat, what, context)
    with new_trace(ad.VJPTrace) as trace:
        ins = []
        for i, p in enumerate(p_flat):
            if p.dtype.kind in "fc":
                ins.append(trace.new_input(p))
            else:
                if not allow_int:
                    raise FuncgradTypeError(
                        f"{what}: {argnames(i) if argnames else f'input leaf {i}'} has dtype "
                        f"{p.dtype} (shape {tuple(p.shape)}); gradients are only defined for "
                        "floating or complex inputs. Pass floats (e.g. x.astype(float)), "
                        "exclude it with argnums, or use allow_int=True to get a float0 "
                        "zero gradient")
                ins.append(p)
        out = fun(*tree_unflatten(p_tree, ins))
        aux = None
        if has_aux:
            out, aux = _split_aux(out, what)
            aux = _strip_aux(aux, trace)
    return trace, p_flat, p_tree, ins, out, aux


def _out_primal(o, trace):
    if isinstance(o, ad.VJPTracer) and o._trace is trace:
        return o.primal
    _check_not_leaked(o)
    return o


def _check_not_leaked(o):
    if isinstance(o, Tracer) and not o._trace.alive:
        raise UnexpectedTracerError(
            f"the function returned a tracer of a transformation that had already finished "
            f"({o._trace!r}): a traced value leaked out of an earlier transformation, e.g. "
            "through a global or a closure. Return values computed in this call instead.")


def _input_cts(trace, ins, p_flat, cts):
    res = []
    for t, p in zip(ins, p_flat):
        if isinstance(t, ad.VJPTracer):
            g = cts[t.index]
            res.append(_np().zeros_like(p) if g is None else g)
        else:
            res.append(np.zeros(np.shape(p), float0))
    return res


def vjp(fun, *primals, has_aux=False):
    """Reverse mode: ``(fun(*primals), vjp_fn)`` where ``vjp_fn(cotangent)`` returns a
    tuple with one cotangent per primal (``cotangent @ J``).

    ``cotangent`` has the structure, shapes and dtypes of the output. ``vjp_fn`` may be
    called many times. With ``has_aux=True`` returns ``(out, vjp_fn, aux)``.

    Example:
        >>> import funcgrad, funcgrad.numpy as fnp
        >>> y, f_vjp = funcgrad.vjp(fnp.sin, 0.0)
        >>> print(f_vjp(1.0)[0])
        1.0
    """
    trace, p_flat, p_tree, ins, out, aux = _trace_reverse(fun, primals, "vjp", has_aux)
    out_flat, out_tree = tree_flatten(out)
    primal_out = [_as_array(_out_primal(o, trace), "vjp output") for o in out_flat]
    tape = trace.tape

    def vjp_fn(cotangent):
        ct_flat, ct_tree = tree_flatten(cotangent)
        if ct_tree != out_tree:
            if treedef_is_leaf(out_tree) and len(ct_flat) == 1:
                pass
            else:
                raise FuncgradValueError(
                    f"vjp_fn: the cotangent's structure {ct_tree} differs from the "
                    f"output's structure {out_tree}")
        seeds = []
        for k, (o, po, ct) in enumerate(zip(out_flat, primal_out, ct_flat)):
            if isinstance(ct, (int, float, complex)) and not isinstance(ct, bool) and po.dtype.kind in "fc":
                ct = _np().full_like(po, ct)
            elif getattr(ct, "dtype", None) == float0:
                continue
            else:
                ct = ad.check_cotangent(ct, po, f"vjp_fn (output leaf {k})")
            if isinstance(o, ad.VJPTracer) and o._trace is trace:
                seeds.append((o, ct))
        cts = ad.backward(tape, seeds)
        return tree_unflatten(p_tree, _input_cts(trace, ins, p_flat, cts))

    out_val = tree_unflatten(out_tree, primal_out)
    if has_aux:
        return out_val, vjp_fn, aux
    return out_val, vjp_fn


def _normalize_argnums(argnums, nargs, what, fun):
    single = isinstance(argnums, (int, np.integer)) and not isinstance(argnums, bool)
    if not single and not isinstance(argnums, (tuple, list)):
        raise FuncgradTypeError(
            f"{what}: argnums must be an int or a tuple of ints, got {argnums!r}")
    nums = (argnums,) if single else tuple(argnums)
    if not nums:
        raise FuncgradValueError(f"{what}: argnums is empty; give at least one argument index")
    out = []
    for a in nums:
        try:
            a = operator.index(a)
        except TypeError:
            raise FuncgradTypeError(f"{what}: argnums must be ints, got {a!r}") from None
        if not -nargs <= a < nargs:
            raise FuncgradValueError(
                f"{what} of {_fname(fun)}: argnums={argnums} but the function was called "
                f"with {nargs} positional argument(s); valid argnums are "
                f"{-nargs}..{nargs - 1}" if nargs else
                f"{what} of {_fname(fun)}: argnums={argnums} but the function was called "
                "with no positional arguments (keyword arguments are not differentiated)")
        out.append(a % nargs)
    if len(set(out)) != len(out):
        raise FuncgradValueError(f"{what}: repeated argnums {argnums}")
    return single, tuple(out)


def _check_scalar_output(o, what, fun, holomorphic):
    shape = getattr(o, "shape", None)
    dtype = getattr(o, "dtype", None)
    if shape is None:
        raise FuncgradTypeError(
            f"{what} of {_fname(fun)}: the function must return a scalar array, but it "
            f"returned {type(o).__name__}. With has_aux=True return (loss, aux)")
    if tuple(shape) != ():
        raise FuncgradTypeError(
            f"{what} of {_fname(fun)}: the function must return a scalar (shape ()), but it "
            f"returned {dtype_name(o)}. For a non-scalar output use jacrev, or vjp with a "
            "cotangent; to return extra values use has_aux=True; to reduce it, "
            "e.g. .sum() or .mean()")
    kind = np.dtype(dtype).kind
    if kind == "c" and not holomorphic:
        raise FuncgradTypeError(
            f"{what} of {_fname(fun)}: the output is complex ({dtype_name(o)}); use "
            "holomorphic=True for a holomorphic function, or return a real value "
            "(e.g. abs(z)**2 or z.real)")
    if kind not in "fc":
        raise FuncgradTypeError(
            f"{what} of {_fname(fun)}: the output has dtype {np.dtype(dtype).name}; "
            "gradients need a floating-point output")


def _with_args_at(fun, args, kwargs, nums):
    """``fun`` as a function of only the arguments at positions ``nums``."""
    def f_dyn(*dyn_args):
        full = list(args)
        for i, a in zip(nums, dyn_args):
            full[i] = a
        return fun(*full, **kwargs)
    return f_dyn


def value_and_grad(fun, argnums=0, has_aux=False, holomorphic=False, allow_int=False):
    """Like :func:`grad`, but returns ``(value, gradient)`` (``((value, aux), gradient)``
    with ``has_aux=True``)."""
    @functools.wraps(fun)
    def value_and_grad_f(*args, **kwargs):
        single, nums = _normalize_argnums(argnums, len(args), "grad", fun)
        dyn = tuple(args[i] for i in nums)

        f_dyn = _with_args_at(fun, args, kwargs, nums)

        def name_leaf(i):
            return _leaf_name(fun, nums, dyn, i)

        context = tree_flatten(([a for i, a in enumerate(args) if i not in nums], kwargs))[0]
        trace, p_flat, p_tree, ins, out, aux = _trace_reverse(
            f_dyn, dyn, "grad", has_aux, allow_int, name_leaf, context)
        if holomorphic:
            for p in p_flat:
                if p.dtype.kind != "c":
                    raise FuncgradTypeError(
                        f"grad with holomorphic=True of {_fname(fun)}: inputs must be complex, "
                        f"got {dtype_name(p)}")
        o = out
        if isinstance(o, (int, float, complex)) and not isinstance(o, bool):
            o = np.asarray(o)            # a constant function: its gradient is zero
        if not (isinstance(o, ad.VJPTracer) and o._trace is trace):
            _check_not_leaked(o)
        _check_scalar_output(o, "grad", fun, holomorphic)
        if isinstance(o, ad.VJPTracer) and o._trace is trace:
            value = o.primal
            cts = ad.backward(trace.tape, [(o, _np().ones_like(value))], free=True)
        else:
            value = o
            cts = [None] * len(trace.tape)
        grads = tree_unflatten(p_tree, _input_cts(trace, ins, p_flat, cts))
        g = grads[0] if single else grads
        return ((value, aux), g) if has_aux else (value, g)

    return value_and_grad_f


def _leaf_name(fun, nums, dyn, i):
    """'argument x (argnums 0)' for flat leaf ``i`` of the differentiated arguments."""
    try:
        params = list(inspect.signature(fun).parameters)
    except (TypeError, ValueError):
        params = []
    count = 0
    for k, (n, a) in enumerate(zip(nums, dyn)):
        leaves = tree_flatten(a)[0]
        if i < count + len(leaves):
            label = f"argument {params[n]!r}" if n < len(params) else f"argument {n}"
            return label + (f" (leaf {i - count})" if len(leaves) > 1 else "")
        count += len(leaves)
    return f"input leaf {i}"


def grad(fun, argnums=0, has_aux=False, holomorphic=False, allow_int=False):
    """The gradient of a scalar-valued ``fun`` with respect to argument(s) ``argnums``.

    ``argnums`` is an int (the gradient has that argument's structure) or a tuple (a
    tuple of gradients). The output must be a real scalar (complex needs
    ``holomorphic=True``). Integer/boolean arguments raise a ``TypeError`` unless
    ``allow_int=True`` (their gradient is a ``float0`` zero array). With ``has_aux=True``,
    ``fun`` returns ``(loss, aux)`` and ``grad`` returns ``(gradient, aux)``.

    Example (the lecture's example: grad of mean(x + temp + 2) w.r.t. temp):
        >>> import numpy as np, funcgrad, funcgrad.numpy as fnp
        >>> f = lambda temp, x: fnp.mean(x + temp + 2)
        >>> funcgrad.grad(f)(np.ones((2, 2)), np.zeros((2, 2)))
        array([[0.25, 0.25],
               [0.25, 0.25]])
    """
    vg = value_and_grad(fun, argnums, has_aux, holomorphic, allow_int)

    @functools.wraps(fun)
    def grad_f(*args, **kwargs):
        if has_aux:
            (_, aux), g = vg(*args, **kwargs)
            return g, aux
        return vg(*args, **kwargs)[1]

    return grad_f


# --------------------------------------------------------------------------------------
# Jacobians and Hessians


def _basis(x):
    """The identity for the flattened ``x``, shaped ``(x.size,) + x.shape``."""
    n = int(np.prod(x.shape))
    return xp_of(x).eye(n, dtype=x.dtype).reshape((n,) + tuple(x.shape))


def _jac_layout(rows, out_shape, in_shape):
    """Batched results ``(out.size,) + in_shape`` (or ``(in.size,) + out_shape`` when
    ``transposed``) reshaped to ``out_shape + in_shape``."""
    return _np().reshape(rows, tuple(out_shape) + tuple(in_shape))


def _check_holomorphic(what, fun, side, leaves):
    """With ``holomorphic=True`` every input and output leaf must be complex (as in JAX)."""
    for j, x in enumerate(leaves):
        dt = getattr(x, "dtype", None)
        dt = np.asarray(x).dtype if dt is None else np.dtype(dt)
        if dt.kind != "c":
            raise FuncgradTypeError(
                f"{what} with holomorphic=True of {_fname(fun)}: {side} leaf {j} has dtype "
                f"{dt.name}, but holomorphic differentiation needs complex {side}s; "
                + ("cast them, e.g. x.astype(complex)" if side == "input" else
                   "return complex values, or drop holomorphic=True"))


def jacfwd(fun, argnums=0, has_aux=False, holomorphic=False):
    """The Jacobian of ``fun`` by forward mode: one batched (vmapped) jvp over the
    standard basis of the inputs.

    The result for an output leaf of shape ``o`` and an input leaf of shape ``i`` has
    shape ``o + i``; pytrees nest as (output structure, then input structure).
    ``holomorphic=True`` (as in JAX): inputs and outputs must be complex, and the result
    is the complex Jacobian ``df/dz`` of a holomorphic ``fun``.
    """
    @functools.wraps(fun)
    def jacfun(*args, **kwargs):
        single, nums = _normalize_argnums(argnums, len(args), "jacfwd", fun)
        dyn = tuple(args[i] for i in nums)
        d_flat, d_tree = tree_flatten(dyn)
        d_flat = _as_inputs(d_flat, "jacfwd", tree_flatten((args, kwargs))[0])
        for j, x in enumerate(d_flat):
            if x.dtype.kind not in "fc":
                raise FuncgradTypeError(
                    f"jacfwd of {_fname(fun)}: input leaf {j} has dtype {x.dtype}; "
                    "Jacobians need floating or complex inputs")
        if holomorphic:
            _check_holomorphic("jacfwd", fun, "input", d_flat)

        def f_flat(*leaves):
            full = list(args)
            for i, a in zip(nums, tree_unflatten(d_tree, leaves)):
                full[i] = a
            return fun(*full, **kwargs)

        fnp = _np()
        aux = None
        if has_aux or all(x.size == 0 for x in d_flat):
            # the output's structure (and aux) from one plain evaluation
            out = f_flat(*d_flat)
            if has_aux:
                out, aux = _split_aux(out, "jacfwd")
            o_flat, out_tree = tree_flatten(out)
            o_shapes = [tuple(_as_array(o, "jacfwd output").shape) for o in o_flat]
            if holomorphic:
                _check_holomorphic("jacfwd", fun, "output", o_flat)
        else:
            out_tree = o_shapes = None      # learnt from the batched pass below
        columns = []     # per input leaf: flat outputs batched over that leaf's basis
        for j, x in enumerate(d_flat):
            if x.size == 0:
                columns.append(None)
                continue

            def push(t, j=j):
                nonlocal out_tree
                tangents = [t if k == j else fnp.zeros_like(d) for k, d in enumerate(d_flat)]
                res = jvp(f_flat, d_flat, tangents, has_aux=has_aux)
                if holomorphic:
                    _check_holomorphic("jacfwd", fun, "output", tree_flatten(res[0])[0])
                flat, out_tree = tree_flatten(res[1])
                return flat

            col = vmap(push)(_basis(x))
            if o_shapes is None:
                o_shapes = [tuple(c.shape[1:]) for c in col]
            columns.append(col)
        columns = [[xp_of(x).zeros((0,) + s, x.dtype) for s in o_shapes] if c is None else c
                   for c, x in zip(columns, d_flat)]
        jac_rows = []
        for oi, oshape in enumerate(o_shapes):
            entry = []
            for j, x in enumerate(d_flat):
                col = columns[j][oi]                       # (x.size,) + oshape
                col = fnp.moveaxis(col, 0, -1) if len(oshape) else col
                entry.append(_jac_layout(col, oshape, x.shape))
            in_vals = tree_unflatten(d_tree, entry)
            jac_rows.append(in_vals[0] if single else in_vals)
        jac = tree_unflatten(out_tree, jac_rows)
        return (jac, aux) if has_aux else jac

    return jacfun


def jacrev(fun, argnums=0, has_aux=False, holomorphic=False, allow_int=False):
    """The Jacobian of ``fun`` by reverse mode: one forward pass, then one batched
    (vmapped) backward pass over the standard basis of the outputs. Same result layout
    and the same ``holomorphic=True`` checks and result as :func:`jacfwd`."""
    @functools.wraps(fun)
    def jacfun(*args, **kwargs):
        single, nums = _normalize_argnums(argnums, len(args), "jacrev", fun)
        dyn = tuple(args[i] for i in nums)

        f_dyn = _with_args_at(fun, args, kwargs, nums)

        for k, leaf in enumerate(tree_flatten(dyn)[0]):
            dt = leaf.dtype if hasattr(leaf, "dtype") else np.asarray(leaf).dtype
            kind = dt.kind
            if kind not in "fc" and not allow_int:
                raise FuncgradTypeError(
                    f"jacrev of {_fname(fun)}: input leaf {k} has dtype "
                    f"{dt}; "
                    "Jacobians need floating or complex inputs (or allow_int=True)")
        res = vjp(f_dyn, *dyn, has_aux=has_aux)
        out, vjp_fn = res[0], res[1]
        o_flat, out_tree = tree_flatten(out)
        d_flat, d_tree = tree_flatten(dyn)
        d_flat = _as_inputs(d_flat, "jacrev", tree_flatten((args, kwargs))[0])
        if holomorphic:
            _check_holomorphic("jacrev", fun, "input", d_flat)
            _check_holomorphic("jacrev", fun, "output", o_flat)
        fnp = _np()
        jac_rows = []
        for oi, o in enumerate(o_flat):
            n = int(np.prod(o.shape))
            if n == 0:
                rows = [xp_of(x).zeros((0,) + tuple(x.shape), x.dtype) for x in d_flat]
            else:
                def pull(ct, oi=oi):
                    cts = [ct if k == oi else fnp.zeros_like(p) for k, p in enumerate(o_flat)]
                    return tree_flatten(vjp_fn(tree_unflatten(out_tree, cts)))[0]
                basis = _basis(o)
                # one output element (a scalar function, as inside hessian): no batching
                rows = pull(basis[0]) if n == 1 else vmap(pull)(basis)
            entry = [_jac_layout(r, o.shape, x.shape) for r, x in zip(rows, d_flat)]
            in_vals = tree_unflatten(d_tree, entry)
            jac_rows.append(in_vals[0] if single else in_vals)
        jac = tree_unflatten(out_tree, jac_rows)
        return (jac, res[2]) if has_aux else jac

    return jacfun


def hessian(fun, argnums=0, has_aux=False, holomorphic=False):
    """The Hessian of scalar ``fun``: ``jacfwd(jacrev(fun))`` (forward over reverse)."""
    return jacfwd(jacrev(fun, argnums, has_aux=has_aux, holomorphic=holomorphic),
                  argnums, has_aux=has_aux, holomorphic=holomorphic)


# --------------------------------------------------------------------------------------
# vmap


def _broadcast_prefix(prefix, tree, what):
    """Leaves of ``prefix`` repeated over the leaves of the matching subtrees of ``tree``."""
    td = tree_structure(prefix, is_leaf=lambda x: x is None)
    subtrees = flatten_up_to(td, tree, what)
    leaves = tree_flatten(prefix, is_leaf=lambda x: x is None)[0]
    out = []
    for p, sub in zip(leaves, subtrees):
        out.extend([p] * len(tree_flatten(sub)[0]))
    return out


def vmap(fun, in_axes=0, out_axes=0, axis_size=None, axis_name=None):
    """Vectorise ``fun`` over an axis of its arguments: ``vmap(f)(xs)`` stacks ``f(x)``
    for each ``x`` along axis 0 of ``xs``, computed as one batched call.

    ``in_axes``: an int, ``None`` (not mapped), or a tuple with one entry per positional
    argument, each an int/None or a pytree prefix of that argument. Negative axes count
    from the end. ``out_axes`` likewise for the output. ``axis_size`` is needed only when
    no argument is mapped. ``axis_name`` names the mapped axis for the collectives of
    ``funcgrad.lax`` (``psum``, ``pmean``, ``pmax``, ``pmin``, ``all_gather``,
    ``axis_index``) called inside ``fun``.

    Example (per-example gradients):
        >>> import numpy as np, funcgrad, funcgrad.numpy as fnp
        >>> loss = lambda w, x: fnp.sum((x @ w) ** 2)
        >>> funcgrad.vmap(funcgrad.grad(loss), in_axes=(None, 0))(np.ones(2), np.eye(2))
        array([[2., 0.],
               [0., 2.]])
    """
    if not (in_axes is None or isinstance(in_axes, (int, tuple, list, dict))):
        raise FuncgradTypeError(f"vmap: in_axes must be an int, None or a tuple, got {in_axes!r}")

    for ax in tree_flatten(in_axes, is_leaf=lambda x: x is None)[0]:
        if ax is not None and not isinstance(ax, (int, np.integer)):
            raise FuncgradTypeError(
                f"vmap: in_axes entries must be ints or None, got {ax!r} in {in_axes!r}")

    @functools.wraps(fun)
    def vmapped(*args, **kwargs):
        if isinstance(in_axes, (tuple, list)) and len(in_axes) != len(args):
            raise FuncgradValueError(
                f"vmap of {_fname(fun)}: in_axes has {len(in_axes)} entries but the function "
                f"was called with {len(args)} positional arguments")
        prefix = tuple(in_axes) if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
        # keyword arguments are mapped over their leading axis (as in JAX)
        prefix = (prefix, 0)
        all_args = (args, kwargs)
        flat, tree = tree_flatten(all_args)
        dims = _broadcast_prefix(prefix, all_args, "vmap in_axes")
        flat = [_as_array(a, "vmap") if d is not None else a for a, d in zip(flat, dims)]
        for k, (a, d) in enumerate(zip(flat, dims)):
            if d is not None and not -max(len(a.shape), 1) <= d < max(len(a.shape), 1):
                raise FuncgradValueError(
                    f"vmap of {_fname(fun)}: in_axes {d} is out of range for an argument of "
                    f"shape {tuple(a.shape)} (leaf {k})")
        dims = [None if d is None else d % len(a.shape) if len(a.shape) else d
                for a, d in zip(flat, dims)]
        size = batching.check_sizes(flat, dims, axis_size, f"vmap of {_fname(fun)}")

        def flat_fun(*leaves):
            a, kw = tree_unflatten(tree, leaves)
            return fun(*a, **kw)

        out, trace = batching.vmap_flat(flat_fun, flat, dims, size, axis_name)
        out_flat, out_tree = tree_flatten(out)
        odims = _broadcast_prefix(out_axes, out, "vmap out_axes") if out_flat else []
        res = []
        fnp = _np()
        for o, od in zip(out_flat, odims):
            if isinstance(o, batching.BatchTracer) and o._trace is trace and o.bdim is not None:
                if od is None:
                    raise FuncgradValueError(
                        f"vmap of {_fname(fun)}: out_axes=None for an output that depends on "
                        "the mapped axis")
                v = o.val
                if not -len(v.shape) <= od < len(v.shape):
                    raise FuncgradValueError(
                        f"vmap of {_fname(fun)}: out_axes {od} is out of range for an output "
                        f"with {len(v.shape) - 1} dimension(s) per example")
                od = od % len(v.shape)
                res.append(fnp.moveaxis(v, o.bdim, od) if o.bdim != od else v)
            else:
                if isinstance(o, batching.BatchTracer) and o._trace is trace:
                    o = o.val
                if od is None:
                    res.append(o)
                    continue
                o = fnp.asarray(o)
                od = od % (len(o.shape) + 1)
                res.append(fnp.moveaxis(fnp.broadcast_to(o, (size,) + tuple(o.shape)), 0, od))
        return tree_unflatten(out_tree, res)

    return vmapped
