"""jit's cache is bounded (least recently used entries dropped beyond config
``jit_cache_size``) and its constants do not pin the arrays they were sliced from."""
import gc
import weakref

import numpy as np
import pytest

import funcgrad
from funcgrad.errors import FuncgradValueError


def _counting():
    traces = []

    def f(x):
        traces.append(x.shape)
        return x * 2
    return f, traces


def test_the_option_exists_and_is_checked():
    assert funcgrad.config.read("jit_cache_size") == 64
    for bad in (0, -1, 2.5, "3", True):
        with pytest.raises(FuncgradValueError, match="jit_cache_size"):
            funcgrad.config.update("jit_cache_size", bad)
    with funcgrad.config.override(jit_cache_size=None):
        assert funcgrad.config.read("jit_cache_size") is None


def test_the_least_recently_used_entry_is_dropped():
    f, traces = _counting()
    g = funcgrad.jit(f)
    with funcgrad.config.override(jit_cache_size=3):
        for n in (1, 2, 3):
            g(np.ones(n))
        g(np.ones(1))                  # 1 is now the most recently used
        g(np.ones(4))                  # drops 2 (the least recently used)
        assert g.cache_size() == 3
        assert len(traces) == 4
        for n in (1, 3, 4):
            np.testing.assert_array_equal(g(np.ones(n)), 2 * np.ones(n))
        assert len(traces) == 4        # still cached
        g(np.ones(2))                  # dropped: traced again
        assert len(traces) == 5 and g.cache_size() == 3


def test_bound_applies_to_static_arguments_and_keyword_calls():
    calls = []

    def f(x, n):
        calls.append(n)
        return x * n
    g = funcgrad.jit(f, static_argnums=1)
    with funcgrad.config.override(jit_cache_size=2):
        for n in range(10):
            assert g(1.0, n) == n
        assert g.cache_size() == 2
        assert g(x=1.0, n=9) == 9


def test_unbounded_when_none():
    f, _ = _counting()
    g = funcgrad.jit(f)
    with funcgrad.config.override(jit_cache_size=None):
        for n in range(1, 80):
            g(np.ones(n))
    assert g.cache_size() == 79


def test_default_bound_keeps_memory_flat():
    f, _ = _counting()
    g = funcgrad.jit(f)
    for n in range(1, 100):
        g(np.ones(n))
    assert g.cache_size() == 64


def test_constants_sliced_from_a_big_array_do_not_pin_it():
    big = np.ones(1_000_000)
    ref = weakref.ref(big)
    holder = {"w": big[:10]}
    g = funcgrad.jit(lambda x: x + holder["w"])
    np.testing.assert_array_equal(g(np.ones(10)), 2 * np.ones(10))
    holder.clear()
    del big
    gc.collect()
    assert ref() is None, "the cached graph keeps the whole base array alive"
    np.testing.assert_array_equal(g(np.ones(10)), 2 * np.ones(10))   # still replays


def test_whole_array_constants_are_not_copied():
    w = np.arange(10.0)
    g = funcgrad.jit(lambda x: x + w)
    g(np.ones(10))
    consts = [x for _, x in g.lower(np.ones(10)).consts]
    assert any(c is w for c in consts)
