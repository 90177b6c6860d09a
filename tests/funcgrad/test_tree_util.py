"""Pytrees: flatten/unflatten, tree_map over several trees, key paths, registration."""
import collections
import dataclasses
from typing import NamedTuple

import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp
from funcgrad import tree_util as tu
from funcgrad.flatten_util import ravel_pytree


class Point(NamedTuple):
    x: object
    y: object


def test_flatten_unflatten_round_trip():
    tree = {"b": [1, (2, None, Point(3, 4))], "a": collections.OrderedDict(z=5, y=6)}
    leaves, td = tu.tree_flatten(tree)
    assert leaves == [5, 6, 1, 2, 3, 4]           # dict keys sorted; OrderedDict in order
    assert tu.tree_unflatten(td, leaves) == tree
    assert td.num_leaves == 6
    assert tu.tree_structure(tree) == td
    assert hash(td) == hash(tu.tree_structure(tree))
    assert tu.tree_leaves(None) == []
    assert "Point" in repr(td)


def test_tree_map_several_trees_and_is_leaf():
    a = {"w": np.ones(2), "b": (1.0, 2.0)}
    b = {"w": np.full(2, 3.0), "b": (10.0, 20.0)}
    s = tu.tree_map(lambda x, y: x + y, a, b)
    np.testing.assert_array_equal(s["w"], [4, 4])
    assert s["b"] == (11.0, 22.0)
    # is_leaf stops at tuples
    counts = tu.tree_map(lambda t: len(t) if isinstance(t, tuple) else 0, a,
                         is_leaf=lambda t: isinstance(t, tuple))
    assert counts == {"w": 0, "b": 2}
    assert tu.tree_reduce(lambda x, y: x + y, [1, (2, 3)], 10) == 16



@pytest.mark.parametrize("kind", [dict, lambda items: collections.defaultdict(list, items)],
                         ids=["dict", "defaultdict"])
def test_dicts_with_keys_of_mixed_types(kind):
    """{1: a, "b": c}: JAX raises (its keys must sort); here the order depends on the set
    of keys only (by type, then value), so insertion order never changes the structure."""
    items = [(1, 10), ("b", 20), (0, 30), (None, 40), (2.5, 50), ((1, "x"), 60),
             (("y", 2), 70)]
    tree = kind(items)
    leaves, td = tu.tree_flatten(tree)
    assert sorted(leaves) == [10, 20, 30, 40, 50, 60, 70]
    assert tu.tree_unflatten(td, leaves) == tree
    assert type(tu.tree_unflatten(td, leaves)) is type(tree)
    backwards = kind(items[::-1])
    assert tu.tree_flatten(backwards) == (leaves, td)
    # tree_map over two trees with the same keys inserted in different orders
    out = tu.tree_map(lambda a, b: a + b, tree, backwards)
    assert out == kind([(k, 2 * v) for k, v in items])
    pairs = tu.tree_flatten_with_path(tree)[0]
    assert [v for _, v in pairs] == leaves
    assert [p[0].key for p, _ in pairs] == list(td.node_data[1] if kind is not dict
                                                  else td.node_data)
    # keys that sort keep JAX's order
    assert tu.tree_leaves(kind([(2, "two"), (1.5, "x"), (1, "one")])) == ["one", "x", "two"]


def test_mixed_key_dicts_go_through_grad_and_jit():
    f = lambda p: p[1] * p["b"] ** 2                       # noqa: E731
    g = funcgrad.grad(f)({1: 2.0, "b": 3.0})
    assert g == {1: 9.0, "b": 12.0}
    assert funcgrad.jit(f)({"b": 3.0, 1: 2.0}) == 18.0


def test_structure_mismatch_names_the_key_path():
    a = {"layers": [{"w": 1, "b": 2}, {"w": 3, "b": 4}]}
    b = {"layers": [{"w": 1, "b": 2}, {"w": 3, "c": 4}]}
    with pytest.raises(ValueError, match=r"\['layers'\]\[1\]"):
        tu.tree_map(lambda x, y: x, a, b)
    with pytest.raises(ValueError, match=r"length 2 vs 3"):
        tu.tree_map(lambda x, y: x, [1, 2], [1, 2, 3])


def test_key_paths():
    tree = {"a": [10, Point(x=1, y=2)]}
    paths = [tu.keystr(p) for p, _ in tu.tree_flatten_with_path(tree)[0]]
    assert paths == ["['a'][0]", "['a'][1].x", "['a'][1].y"]
    out = tu.tree_map_with_path(lambda p, v: tu.keystr(p), tree)
    assert out["a"][1].y == "['a'][1].y"


def test_register_pytree_node_and_grad():
    class Box:
        def __init__(self, v, name):
            self.v, self.name = v, name

    tu.register_pytree_node(Box, lambda b: ((b.v,), b.name), lambda name, c: Box(c[0], name))
    g = funcgrad.grad(lambda b: fnp.sum(b.v ** 2))(Box(np.array([1.0, 2.0]), "n"))
    assert isinstance(g, Box) and g.name == "n"
    np.testing.assert_array_equal(g.v, [2.0, 4.0])


def test_register_dataclass_with_static_fields():
    @tu.register_dataclass
    @dataclasses.dataclass
    class Layer:
        w: np.ndarray
        act: str = dataclasses.field(default="tanh", metadata={"static": True})

    leaves, td = tu.tree_flatten(Layer(np.ones(2)))
    assert len(leaves) == 1
    g = funcgrad.grad(lambda l: fnp.sum(getattr(fnp, l.act)(l.w)))(Layer(np.zeros(2)))
    assert g.act == "tanh"
    np.testing.assert_allclose(g.w, [1.0, 1.0])
    # explicit field lists
    @dataclasses.dataclass
    class P:
        a: float
        b: int
    tu.register_dataclass(P, data_fields=["a"], meta_fields=["b"])
    assert tu.tree_leaves(P(1.5, 2)) == [1.5]


def test_tree_transpose_and_all():
    outer = tu.tree_structure([0, 0])
    inner = tu.tree_structure((0, 0))
    assert tu.tree_transpose(outer, inner, [(1, 2), (3, 4)]) == ([1, 3], [2, 4])
    assert tu.tree_all([True, (True,)]) and not tu.tree_all([True, False])


def test_ravel_pytree_round_trip_and_grad():
    tree = {"a": np.arange(3.0), "b": [np.ones((2, 2), np.float32)]}
    flat, unravel = ravel_pytree(tree)
    assert flat.shape == (7,) and flat.dtype == np.float64
    back = unravel(flat)
    assert back["b"][0].dtype == np.float32 and back["b"][0].shape == (2, 2)
    g = funcgrad.grad(lambda f: fnp.sum(unravel(f)["a"] ** 2))(flat)
    np.testing.assert_array_equal(g, [0, 2, 4, 0, 0, 0, 0])


def test_partial_is_a_pytree():
    p = tu.Partial(lambda a, b: a * b, np.ones(2))
    leaves = tu.tree_leaves(p)
    assert len(leaves) == 1
    assert tu.tree_map(lambda x: x * 3, p)(2.0).tolist() == [6.0, 6.0]
