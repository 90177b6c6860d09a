"""Contractions: ``matmul`` (BLAS directly) and ``einsum`` (opt_einsum's path optimizer,
the path cached per subscripts and shapes), and the NumPy functions built on them: ``dot
vdot inner outer tensordot``.

Reverse rules are contractions too: the cotangent of an einsum operand is another einsum.
"""
from __future__ import annotations

import math
import operator
import string

import numpy as np

from .. import rows as _rows
from ..backend import dtype_name
from ..batching import move_to_front
from ..core import Primitive, bind, def_rules, xp_of
from ..errors import FuncgradValueError
from . import reductions as _red
from .elementwise import conj
from . import shape as _shape

# ---- matmul ----------------------------------------------------------------------------


def _swap(x):
    return _shape.swapaxes(x, -1, -2)


def _matmul_vjp_a(g, ans, a, b):
    if b.ndim == 1:
        if a.ndim == 1:                       # (k,)·(k,) -> ()
            return _shape._cast_cotangent(g * b, a.dtype)
        ga = _shape.expand_dims(g, -1) * b    # (..., m) x (k,) -> (..., m, k)
    elif a.ndim == 1 and b.ndim == 2:         # (k,) @ (k, n) -> (n,)
        ga = matmul(b, g)
        return _shape._cast_cotangent(ga, a.dtype) if ga.dtype != a.dtype else ga
    elif a.ndim == 1:                         # (k,) @ (..., k, n) -> (..., n)
        ga = matmul(b, _shape.expand_dims(g, -1))[..., 0]
    elif b.ndim == 2 and g.ndim == 2:
        ga = bind(matmul_p, g, bind(_shape.transpose_p, b, axes=(1, 0)))
        return _shape._cast_cotangent(ga, a.dtype) if ga.dtype != a.dtype else ga
    else:
        ga = matmul(g, _swap(b))
    return _shape.unbroadcast(ga, a)


def _matmul_vjp_b(g, ans, a, b):
    if a.ndim == 1:
        if b.ndim == 1:
            return _shape._cast_cotangent(g * a, b.dtype)
        gb = _shape.expand_dims(a, -1) * _shape.expand_dims(g, -2)   # (k, 1) * (..., 1, n)
    elif b.ndim == 1 and a.ndim == 2:          # (m, k) @ (k,) -> (m,)
        gb = matmul(g, a)
        return _shape._cast_cotangent(gb, b.dtype) if gb.dtype != b.dtype else gb
    elif b.ndim == 1:                          # (..., m, k) @ (k,) -> (..., m)
        gb = matmul(_swap(a), _shape.expand_dims(g, -1))[..., 0]
    elif a.ndim == 2 and g.ndim == 2:
        gb = bind(matmul_p, bind(_shape.transpose_p, a, axes=(1, 0)), g)
        return _shape._cast_cotangent(gb, b.dtype) if gb.dtype != b.dtype else gb
    else:
        gb = matmul(_swap(a), g)
    return _shape.unbroadcast(gb, b)


def _matmul_multiply_adds(invars, outvars):
    a = invars[0]
    return math.prod(outvars[0].shape) * (a.shape[-1] if len(a.shape) else 1)


def _matmul_impl(a, b):
    """``np.matmul(a, b)``; an ``(..., m, k) @ (k, n)`` product runs as one ``(M, k) @
    (k, n)`` BLAS product over the leading axes merged, where NumPy runs one per leading
    index (1.7-2.5x slower for a sequence model's projections, measured: (24, 64, 32) @
    (32, 512) 660 vs 350 µs, (24, 64, 512) @ (512, 32) 770 vs 310 µs). Leading axes that
    do not lie in C order (a time-major view of a batch-major array) merge in their memory
    order when ``k > n``, the result then a view in ``a``'s axis order; when ``k <= n``,
    ``a`` is copied in C order first (fewer elements than the result), so that the result
    is C-ordered: a scan reading it step by step then reads contiguous rows (2x faster
    per step's add than strided ones, measured)."""
    if b.ndim == 2 and a.ndim > 2 and a.size and b.size:
        lead = sorted(range(a.ndim - 1), key=lambda i: -a.strides[i])
        if lead != sorted(lead) and a.shape[-1] <= b.shape[1]:
            a, lead = a.copy(order="C"), sorted(lead)
        x = a.transpose(lead + [a.ndim - 1])
        if x.flags.c_contiguous:
            out = np.matmul(x.reshape(-1, a.shape[-1]), b)
            out = out.reshape(x.shape[:-1] + (b.shape[1],))
            if lead != sorted(lead):            # back to a's axis order (a view)
                out = out.transpose(np.argsort(lead).tolist() + [len(lead)])
            return out
    return np.matmul(a, b)


_matmul_impl.fresh_result = True   # never a view of an operand (a scan may write into it)


matmul_p = Primitive("matmul", _matmul_impl, linear_in=((0,), (1,)),
                     multiply_adds=_matmul_multiply_adds)


def _matmul_batch(vals, dims):
    (a, b), (da, db) = vals, dims
    ra = len(a.shape) - (da is not None)
    rb = len(b.shape) - (db is not None)
    # One operand unbatched: most cases are a single BLAS call on a stacked operand (NumPy
    # would otherwise loop over the batch of matrix-vector products).
    if db is None and rb <= 2 and ra <= 2:
        a = move_to_front(a, da)
        if ra == 2:                 # (B, m, k) @ (k, [n]) = ((B*m, k) @ (k, [n])) reshaped
            B, m, k = a.shape
            out = bind(matmul_p, _shape.reshape(a, (B * m, k)), b)
            return _shape.reshape(out, (B, m) + tuple(b.shape[1:])), 0
        return bind(matmul_p, a, b), 0          # (B, k) @ (k, [n])
    if da is None and ra <= 2 and rb == 1:
        b = move_to_front(b, db)    # (m, k) @ (B, k) -> (B, m) = (B, k) @ (k, m); k @ (B, k)
        return bind(matmul_p, b, a if ra == 1 else bind(_shape.transpose_p, a, axes=(1, 0))), 0
    if da is None and ra == 2 and rb == 2:
        b = move_to_front(b, db)    # (m, k) @ (B, k, n) = (m, k) @ (k, B*n), batch axis 1
        B, k, n = b.shape
        b = _shape.reshape(bind(_shape.transpose_p, b, axes=(1, 0, 2)), (k, B * n))
        return _shape.reshape(bind(matmul_p, a, b), (a.shape[0], B, n)), 1
    if ra == 1 and rb == 1:
        return _einsum_batch(vals, dims, subscripts="i,i->")
    rank = max(ra, rb, 2)
    squeeze = None
    if da is not None:
        a = move_to_front(a, da)
        if ra == 1:                 # (B, k) -> (B, 1, k); the 1 is removed from the result
            a = _shape.expand_dims(a, 1)
            squeeze = -2
        a = _shape.reshape(a, (a.shape[0],) + (1,) * (rank - (len(a.shape) - 1)) + tuple(a.shape[1:]))
    if db is not None:
        b = move_to_front(b, db)
        if rb == 1:                 # (B, k) -> (B, k, 1)
            b = _shape.expand_dims(b, -1)
            squeeze = -1
        b = _shape.reshape(b, (b.shape[0],) + (1,) * (rank - (len(b.shape) - 1)) + tuple(b.shape[1:]))
    out = bind(matmul_p, a, b)
    if squeeze is not None:
        out = _shape.squeeze(out, squeeze)
    return out, 0


def _matmul_rows(kinds, invars, outvars, params, batch):
    ka, kb = kinds
    a, b = invars
    na, nb, no = len(a.shape), len(b.shape), len(outvars[0].shape)
    if na < 2 or nb < 2:
        return None
    if ka is _rows.PARTIAL or kb is _rows.PARTIAL:      # linear in each operand
        return ([_rows.PARTIAL], None, {}) if _rows.WHOLE in (ka, kb) else None
    if kb is _rows.WHOLE:
        d = ka.axis
        if d == na - 1:                 # the batch is contracted: slice b's rows with it
            return ([_rows.PARTIAL], None, {1: nb - 2}) if b.shape[-2] == batch else None
        if d == na - 2:
            return [_rows.Rows(no - 2)], None, {}
        return _stacked_rows(d, na, b, 1, no, batch)
    if ka is _rows.WHOLE:
        d = kb.axis
        if d == nb - 2:
            return ([_rows.PARTIAL], None, {0: na - 1}) if a.shape[-1] == batch else None
        if d == nb - 1:
            return [_rows.Rows(no - 1)], None, {}
        return _stacked_rows(d, nb, a, 0, no, batch)
    da, db = ka.axis, kb.axis
    if da == na - 1 and db == nb - 2:            # x.T @ g over the batch: a partial sum
        return [_rows.PARTIAL], None, {}
    if da < na - 2 and db < nb - 2 and da - na == db - nb:
        return [_rows.Rows(no + da - na)], None, {}
    return None


def_rules(matmul_p,
          jvp=(lambda t, ans, a, b: matmul(t, b),
               lambda t, ans, a, b: matmul(a, t)),
          vjp=(_matmul_vjp_a,
               _matmul_vjp_b),
          batch=_matmul_batch,
          rows=_matmul_rows)


def matmul(x1, x2, /):
    """Matrix product with NumPy's rules: 1-D operands are promoted and the added axis
    removed; leading (batch) dimensions broadcast."""
    x1 = _shape._as_array(x1)
    x2 = _shape._as_array(x2)
    s1, s2 = x1.shape, x2.shape
    if len(s1) == 2 and len(s2) == 2 and s1[1] == s2[0]:      # the common case
        return bind(matmul_p, x1, x2)
    if x1.ndim == 0 or x2.ndim == 0:
        raise FuncgradValueError(
            f"matmul: operands must be at least 1-D, got {dtype_name(x1)} and "
            f"{dtype_name(x2)}; use multiply for scalars")
    k1 = x1.shape[-1]
    k2 = x2.shape[-2] if x2.ndim > 1 else x2.shape[0]
    if k1 != k2:
        raise FuncgradValueError(
            f"matmul: contracted dimensions differ: {dtype_name(x1)} @ {dtype_name(x2)} "
            f"({k1} != {k2})")
    return bind(matmul_p, x1, x2)


# ---- einsum ----------------------------------------------------------------------------
_expr_cache: dict = {}


def _contract(*operands, subscripts):
    key = (subscripts, tuple(o.shape for o in operands))
    expr = _expr_cache.get(key)
    if expr is None:
        if len(_expr_cache) > 4096:
            _expr_cache.clear()
        import opt_einsum      # imported on first use: keeps `import funcgrad` quick
        expr = _expr_cache[key] = opt_einsum.contract_expression(
            subscripts, *key[1], optimize="auto")
    return expr(*operands)


def _split_subs(subscripts):
    ins, out = subscripts.split("->")
    return ins.split(","), out


def _einsum_jvp(primals, tangents, subscripts):
    out = bind(einsum_p, *primals, subscripts=subscripts)
    tout = None
    for i, t in enumerate(tangents):
        if t is not None:
            ops = list(primals)
            ops[i] = t
            c = bind(einsum_p, *ops, subscripts=subscripts)
            tout = c if tout is None else tout + c
    return out, tout


def _einsum_operand_ct(g, args, i, ins, out):
    """The cotangent of operand ``i``: an einsum of ``g`` with the other operands,
    broadcast over letters only operand ``i`` has, and embedded on repeated letters."""
    target = ins[i]
    x = args[i]
    sizes = dict(zip(target, x.shape))
    uniq = "".join(dict.fromkeys(target))
    others = [j for j in range(len(args)) if j != i]
    avail = set(out).union(*[ins[j] for j in others])
    keep = "".join(c for c in uniq if c in avail)
    ct = einsum(",".join([out] + [ins[j] for j in others]) + "->" + keep,
                g, *[args[j] for j in others])
    # Letters where x has length 1 but the other operands (or g) are longer were broadcast
    # (e.g. '...i,...i' on shapes (2,1,3), (4,3)): sum them back to length 1, else the
    # cotangent came out with the broadcast shape instead of x's.
    summed = tuple(k for k, c in enumerate(keep) if sizes[c] == 1 and ct.shape[k] != 1)
    if summed:
        ct = _red.sum(ct, axis=summed, keepdims=True)
    if keep != uniq:
        ct = _shape.reshape(ct, tuple(ct.shape[keep.index(c)] if c in keep else 1 for c in uniq))
    if ct.shape != tuple(sizes[c] for c in uniq):
        # x's letters missing from every other operand, or broadcast there from length 1
        # (einsum('i,i', ones(1), x)): the cotangent is constant along them.
        ct = _shape.broadcast_to(ct, tuple(sizes[c] for c in uniq))
    if uniq != target:
        free = iter(c for c in string.ascii_letters if c not in target and c not in uniq)
        renamed = []
        eyes = []
        seen = set()
        for c in target:
            if c in seen:
                f = next(free)
                renamed.append(f)
                eyes.append((c + f, xp_of(ct).eye(sizes[c], dtype=ct.dtype)))
            else:
                seen.add(c)
                renamed.append(c)
        ct = einsum(",".join([uniq] + [s for s, _ in eyes]) + "->" + "".join(renamed),
                    ct, *[e for _, e in eyes])
    return _shape._cast_cotangent(ct, x.dtype) if ct.dtype != x.dtype else ct


def _einsum_vjp(g, ans, args, wanted, subscripts):
    ins, out = _split_subs(subscripts)
    return [_einsum_operand_ct(g, args, i, ins, out) for i in wanted]


einsum_p = Primitive("einsum", _contract)


def _einsum_batch(vals, dims, subscripts):
    ins, out = _split_subs(subscripts)
    used = set(subscripts)
    letter = next(c for c in string.ascii_letters if c not in used)
    new_ins = [letter + s if d is not None else s for s, d in zip(ins, dims)]
    moved = [move_to_front(v, d) for v, d in zip(vals, dims)]
    return bind(einsum_p, *moved, subscripts=",".join(new_ins) + "->" + letter + out), 0


def_rules(einsum_p, jvp=_einsum_jvp, vjp=_einsum_vjp, batch=_einsum_batch)


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _sublist_letters(sub):
    out = []
    for k in sub:
        if k is Ellipsis:
            out.append("...")
            continue
        try:
            k = operator.index(k)
        except TypeError:
            k = -1
        if not 0 <= k < len(_LETTERS):
            raise FuncgradValueError(
                f"einsum: sublist entries must be integers in [0, 52) or ..., got {sub!r}")
        out.append(_LETTERS[k])
    return "".join(out)


def _sublist_subscripts(first, rest):
    """NumPy's interleaved form ``(op, sublist, op, sublist, ..., [output])`` as a
    subscripts string and the operands."""
    args = (first,) + tuple(rest)
    ops, subs = list(args[0::2]), list(args[1::2])
    out = None
    if len(ops) > len(subs):                   # an odd count: the last is the output
        out = ops.pop()
    if not ops or len(ops) != len(subs) or out is not None and not isinstance(out, (list, tuple)):
        raise FuncgradValueError(
            "einsum: give the subscripts as a string ('ij,jk->ik') or interleave operands "
            "and sublists: einsum(a, [0, 1], b, [1, 2], [0, 2])")
    spec = ",".join(_sublist_letters(s) for s in subs)
    if out is not None:
        spec += "->" + _sublist_letters(out)
    return spec, ops


def einsum(subscripts, *operands, optimize="auto", dtype=None):
    """Einstein summation, NumPy's notation (implicit and explicit output, ``...``).

    Contractions run through opt_einsum with the path cached per (subscripts, shapes).
    Differentiable in every operand, to any order. The interleaved form ``einsum(a,
    [0, 1], b, [1, 2], [0, 2])`` (integers 0-51 and ``...`` in the sublists, the output
    sublist optional) is read as the string it stands for.

    Example:
        >>> import numpy as np, funcgrad.numpy as fnp
        >>> fnp.einsum(np.ones((2, 3)), [0, 1], np.ones((3, 4)), [1, 2]).shape
        (2, 4)
    """
    if not isinstance(subscripts, str):
        subscripts, operands = _sublist_subscripts(subscripts, operands)
    operands = [_shape._as_array(o) for o in operands]
    if dtype is not None:
        operands = [_shape.astype(o, dtype) for o in operands]
    import opt_einsum.parser     # imported on first use: keeps `import funcgrad` quick
    try:
        ins, out, _ = opt_einsum.parser.parse_einsum_input(
            [subscripts.replace(" ", "")] + [o.shape for o in operands], shapes=True)
    except ValueError as e:
        raise FuncgradValueError(
            f"einsum {subscripts!r} with operands "
            f"{', '.join(dtype_name(o) for o in operands)}: {e}") from None
    ins_list = ins.split(",")
    sizes = {}
    for sub, o in zip(ins_list, operands):
        for c, d in zip(sub, o.shape):
            if sizes.setdefault(c, d) != d and d != 1 and sizes[c] != 1:
                raise FuncgradValueError(
                    f"einsum {subscripts!r}: index {c!r} has sizes {sizes[c]} and {d} in "
                    f"operands {', '.join(dtype_name(o) for o in operands)}")
    return bind(einsum_p, *operands, subscripts=ins + "->" + out)


# ---- built on the two above ------------------------------------------------------------
def tensordot(a, b, axes=2):
    """Sum products over the given axes (an int N: the last N of ``a`` with the first N of
    ``b``; or a pair of axis sequences)."""
    a = _shape._as_array(a)
    b = _shape._as_array(b)
    if isinstance(axes, (int, np.integer)):
        ax_a = list(range(a.ndim - axes, a.ndim))
        ax_b = list(range(axes))
    else:
        ax_a, ax_b = axes
        ax_a = [ax_a] if isinstance(ax_a, (int, np.integer)) else list(ax_a)
        ax_b = [ax_b] if isinstance(ax_b, (int, np.integer)) else list(ax_b)
    ax_a = [_shape.normalize_axis(i, a.ndim, "tensordot") for i in ax_a]
    ax_b = [_shape.normalize_axis(i, b.ndim, "tensordot") for i in ax_b]
    if len(ax_a) != len(ax_b):
        raise FuncgradValueError("tensordot: axes of a and b must have the same length")
    letters = iter(string.ascii_letters)
    sa = [next(letters) for _ in range(a.ndim)]
    sb = [next(letters) for _ in range(b.ndim)]
    for i, j in zip(ax_a, ax_b):
        if a.shape[i] != b.shape[j]:
            raise FuncgradValueError(
                f"tensordot: shape mismatch for sum: {dtype_name(a)} axis {i} vs "
                f"{dtype_name(b)} axis {j}")
        sb[j] = sa[i]
    out = [c for k, c in enumerate(sa) if k not in ax_a] + [c for k, c in enumerate(sb) if k not in ax_b]
    return einsum("".join(sa) + "," + "".join(sb) + "->" + "".join(out), a, b)


def dot(a, b):
    """NumPy's ``dot``: scalars multiply, 1-D/2-D use matmul, N-D contracts the last axis of
    ``a`` with the second-to-last of ``b``."""
    a = _shape._as_array(a)
    b = _shape._as_array(b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    if a.ndim <= 2 and b.ndim <= 2:
        return matmul(a, b)
    return tensordot(a, b, axes=([-1], [-2 if b.ndim > 1 else -1]))


def vdot(a, b):
    """Dot product of the flattened arrays, conjugating the first (complex) argument."""
    a = _shape.ravel(_shape._as_array(a))
    b = _shape.ravel(_shape._as_array(b))
    if a.dtype.kind == "c":
        a = conj(a)
    return matmul(a, b)


def inner(a, b):
    """Inner product over the last axes."""
    a = _shape._as_array(a)
    b = _shape._as_array(b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    return tensordot(a, b, axes=([-1], [-1]))


def outer(a, b):
    """Outer product of the flattened inputs."""
    a = _shape.ravel(_shape._as_array(a))
    b = _shape.ravel(_shape._as_array(b))
    return _shape.expand_dims(a, 1) * _shape.expand_dims(b, 0)


# ---- shared by the row rules of matmul and einsum (jit's batch splitting, see rows.py) ---
def _stacked_rows(d, n, other, other_index, no, batch):
    """Rows along a stacking axis of one operand; the other operand's matching stacking
    axis is broadcast (length 1 or absent) or sliced along with it."""
    out = no + d - n
    a = out - (no - len(other.shape))
    if 0 <= a < len(other.shape) - 2:
        if other.shape[a] == batch:
            return [_rows.Rows(out)], None, {other_index: a}
        if other.shape[a] != 1:
            return None
    return [_rows.Rows(out)], None, {}
