"""Conversion of params and state to and from PyTorch state dicts."""
from __future__ import annotations

import numpy as np

import funcgrad
import funcgrad.random as fr
from funcgrad.errors import FuncgradTypeError, FuncgradValueError

from ._base import _shape


def _flatten_named(tree, prefix, out):
    if isinstance(tree, dict):
        for k, v in tree.items():
            _flatten_named(v, f"{prefix}{k}.", out)
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            _flatten_named(v, f"{prefix}{i}.", out)
    elif tree is not None:
        out[prefix[:-1]] = tree


def _to_numpy(v):
    if hasattr(v, "detach"):          # a torch tensor
        return v.detach().cpu().numpy()
    if isinstance(v, funcgrad.Tracer):
        raise FuncgradTypeError("to_torch_state_dict: got a traced value; convert concrete "
                                "parameters outside of transformations")
    if hasattr(v, "get") and not isinstance(v, np.ndarray) and not isinstance(v, dict):
        v = v.get()                   # a CuPy array
    return np.asarray(v)


def to_torch_state_dict(params, state=None, as_torch=False):
    """A flat ``{"0.weight": array, "bn.running_mean": array, ...}`` dict with PyTorch's
    key names, from ``params`` and (optionally) ``state``.

    Values are NumPy arrays (``as_torch=True``: torch tensors, needs torch), ready for
    ``torch_module.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})``.
    """
    out = {}
    _flatten_named(params, "", out)
    if state is not None:
        _flatten_named(state, "", out)
    out = {k: _to_numpy(v) for k, v in out.items()}
    if as_torch:
        import torch  # optional: needed only for as_torch=True
        out = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in out.items()}
    return out


def from_torch_state_dict(model, state_dict, dtype=None):
    """``(params, state)`` for ``model`` from a PyTorch-style state dict (values: torch
    tensors or NumPy arrays; keys as in ``torch_module.state_dict()``).

    The arrays keep their dtype (float32 stays float32) unless ``dtype`` is given
    (integer buffers such as ``num_batches_tracked`` are kept as they are).
    Raises FuncgradValueError naming missing or unexpected keys, or mismatched shapes.
    """
    template_p = model.init(fr.key(0))
    template_s = model.init_state()
    given = {k: _to_numpy(v) for k, v in dict(state_dict).items()}
    used = set()

    def fill(tree, prefix):
        if isinstance(tree, dict):
            return {k: fill(v, f"{prefix}{k}.") for k, v in tree.items()}
        if isinstance(tree, (list, tuple)):
            return type(tree)(fill(v, f"{prefix}{i}.") for i, v in enumerate(tree))
        name = prefix[:-1]
        if name not in given:
            raise FuncgradValueError(
                f"from_torch_state_dict: {type(model).__name__} needs {name!r}, which the "
                f"state dict lacks (it has {sorted(given)[:8]}{'...' if len(given) > 8 else ''})")
        v = given[name]
        used.add(name)
        if v.shape != _shape(tree):
            raise FuncgradValueError(
                f"from_torch_state_dict: {name!r} has shape {v.shape}, but "
                f"{type(model).__name__} expects {_shape(tree)}")
        if dtype is not None and v.dtype.kind == "f":
            v = v.astype(dtype)
        return np.array(v)

    params = fill(template_p, "")
    state = fill(template_s, "")
    extra = sorted(set(given) - used)
    if extra:
        raise FuncgradValueError(
            f"from_torch_state_dict: unexpected keys for {type(model).__name__}: {extra}")
    return params, state
