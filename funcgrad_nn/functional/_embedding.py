"""Integer class indices: ``embedding`` lookups and ``one_hot``."""
from __future__ import annotations

import numpy as np

import funcgrad
import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradTypeError, FuncgradValueError

from ._util import _arange_like, _arr, _is_concrete


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """Look up rows of ``weight`` ``(num_embeddings, dim)`` at the integer ``input``.

    ``padding_idx``: that row gets no gradient (its value is used as is).
    ``max_norm``: looked-up rows whose ``norm_type``-norm exceeds it are rescaled to it,
    giving PyTorch's output. PyTorch renormalizes ``weight`` in place and differentiates
    with respect to the renormalized rows; here ``weight`` is left unchanged and the
    gradient is that of the rescaled lookup with respect to the given ``weight`` (the
    scale is treated as a constant).

    ``sparse``: accepted for PyTorch's signature; the gradient of ``weight`` is a dense
    array either way (same values). ``scale_grad_by_freq=True`` raises
    FuncgradValueError (not supported).

    Raises FuncgradValueError for out-of-range indices (checked on concrete indices).
    """
    if scale_grad_by_freq:
        raise FuncgradValueError("embedding: scale_grad_by_freq=True is not supported")
    idx = _arr(input)
    w = _arr(weight)
    if np.dtype(idx.dtype).kind not in "iu":
        raise FuncgradTypeError(
            f"embedding: indices must be integers, got dtype {idx.dtype}")
    if w.ndim != 2:
        raise FuncgradValueError(
            f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got {tuple(w.shape)}")
    n = w.shape[0]
    if _is_concrete(idx) and idx.size and (np.max(idx) >= n or np.min(idx) < -n):
        raise FuncgradValueError(
            f"embedding: indices must be in [0, {n}) for a weight of shape {tuple(w.shape)}; "
            f"got values in [{np.min(idx)}, {np.max(idx)}]")
    out = w[idx]
    if padding_idx is not None:
        pi = padding_idx + n if padding_idx < 0 else padding_idx
        out = fnp.where(fnp.expand_dims(idx == pi, -1), funcgrad.stop_gradient(out), out)
    if max_norm is not None:
        norms = fnp.sum(fnp.abs(funcgrad.stop_gradient(out)) ** float(norm_type), axis=-1,
                        keepdims=True) ** (1.0 / float(norm_type))
        scale = fnp.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
        out = out * scale
    return out


def one_hot(tensor, num_classes=-1, dtype=np.int64):
    """``(..., num_classes)`` indicator array of integer class indices.

    ``num_classes=-1`` infers ``max + 1`` (concrete indices only). Out-of-range indices
    raise FuncgradValueError (checked when the indices are concrete: reads back their
    min and max, two scalars). ``dtype`` defaults to int64 (PyTorch's); pass a float
    dtype to use the result in arithmetic directly. The result is in the indices' array
    module (NumPy or CuPy).
    """
    t = _arr(tensor)
    if np.dtype(t.dtype).kind not in "iu":
        raise FuncgradTypeError(f"one_hot: class indices must be integers, got {t.dtype}")
    concrete = _is_concrete(t)
    if num_classes == -1:
        if not concrete:
            raise FuncgradValueError("one_hot: pass num_classes when the indices are traced")
        num_classes = int(fnp.max(t)) + 1 if t.size else 0
    if concrete and t.size:
        lo, hi = int(fnp.min(t)), int(fnp.max(t))     # two scalars read back, not t
        if lo < 0 or hi >= num_classes:
            raise FuncgradValueError(
                f"one_hot: class indices must be in [0, {num_classes}), got values in "
                f"[{lo}, {hi}]")
    return fnp.astype(fnp.expand_dims(t, -1) == _arange_like(t, num_classes, t.dtype), dtype)
