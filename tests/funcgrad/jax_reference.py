"""JAX as the reference: its values for the same program, and a tree comparison.

Tests that use these skip where JAX is not installed (``pip install -e ".[oracles]"``).
"""
import numpy as np
import pytest

from funcgrad.tree_util import tree_flatten


def _jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return jax


def _jax_ref(thunk):
    """JAX's value for a zero-argument thunk, compiled as one program (JAX's op-by-op
    dispatch is ten times slower here); falls back to eager JAX if it does not jit."""
    jax = _jax()
    try:
        return jax.jit(thunk)()
    except Exception:      # noqa: BLE001 - e.g. float0 outputs; the eager run decides
        return thunk()


def _assert_trees_close(got, want, rtol=1e-7, atol=1e-9, check_dtype=True):
    g_leaves, _ = tree_flatten(got)
    w_leaves = _jax().tree_util.tree_leaves(want)
    assert len(g_leaves) == len(w_leaves), (got, want)
    for g, w in zip(g_leaves, w_leaves):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape, (g.shape, w.shape)
        if check_dtype:
            assert g.dtype == w.dtype, (g.dtype, w.dtype)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
