"""Linear maps: ``linear`` and ``bilinear``."""
from __future__ import annotations

import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradValueError

from ._util import _arr


def linear(input, weight, bias=None):
    """``input @ weight.T + bias``: weight ``(out_features, in_features)``, bias ``(out,)``.

    Raises FuncgradValueError when ``input.shape[-1] != weight.shape[1]``.

    Example:
        >>> import numpy as np
        >>> linear(np.ones((2, 3)), np.ones((4, 3)), np.zeros(4)).shape
        (2, 4)
    """
    x, w = _arr(input), _arr(weight)
    if w.ndim != 2 or x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise FuncgradValueError(
            f"linear: input of shape {tuple(x.shape)} does not match weight of shape "
            f"{tuple(w.shape)}; the input's last axis must equal weight.shape[1] "
            "(weight is (out_features, in_features), as in PyTorch)")
    y = fnp.matmul(x, fnp.transpose(w))
    return y if bias is None else y + bias


def bilinear(input1, input2, weight, bias=None):
    """``y_k = x1 @ weight[k] @ x2 + bias_k``; weight ``(out, in1, in2)``."""
    y = fnp.einsum("...i,kij,...j->...k", _arr(input1), _arr(weight), _arr(input2))
    return y if bias is None else y + bias
