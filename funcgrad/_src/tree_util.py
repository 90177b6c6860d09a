"""Pytrees: nested containers of arrays, flattened once at the API boundary.

Containers are tuples, lists, dicts and ``defaultdict`` (keys sorted, as JAX does; keys
of mixed types sorted by type, then value, where JAX raises), ``OrderedDict`` (insertion
order), namedtuples, ``None`` (an empty subtree) and any class
registered with :func:`register_pytree_node` or :func:`register_dataclass`. Everything
else is a leaf.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
from typing import Any, Callable, NamedTuple

from .errors import FuncgradTypeError, FuncgradValueError


class _NodeType(NamedTuple):
    flatten: Callable       # node -> (children, aux_data)
    unflatten: Callable     # (aux_data, children) -> node
    flatten_with_keys: Callable  # node -> (list of (key, child), aux_data)


_registry: dict[type, _NodeType] = {}


# ---- keys for key paths (same names as JAX's) ---------------------------------------
@dataclasses.dataclass(frozen=True)
class SequenceKey:
    idx: int

    def __str__(self):
        return f"[{self.idx}]"


@dataclasses.dataclass(frozen=True)
class DictKey:
    key: Any

    def __str__(self):
        return f"[{self.key!r}]"


@dataclasses.dataclass(frozen=True)
class GetAttrKey:
    name: str

    def __str__(self):
        return f".{self.name}"


@dataclasses.dataclass(frozen=True)
class FlattenedIndexKey:
    key: int

    def __str__(self):
        return f"[<flat index {self.key}>]"


def keystr(path) -> str:
    """A readable string for a key path, e.g. ``['params'][0].weight``."""
    return "".join(str(k) for k in path)


def register_pytree_node(nodetype, flatten_func, unflatten_func, flatten_with_keys_func=None):
    """Register ``nodetype`` as a container.

    ``flatten_func(node) -> (children, aux_data)``;
    ``unflatten_func(aux_data, children) -> node``; aux_data must be hashable and
    comparable. ``flatten_with_keys_func`` optionally gives ``((key, child), ...)``.
    """
    if flatten_with_keys_func is None:
        def flatten_with_keys_func(node):
            children, aux = flatten_func(node)
            return [(FlattenedIndexKey(i), c) for i, c in enumerate(children)], aux
    _registry[nodetype] = _NodeType(flatten_func, unflatten_func, flatten_with_keys_func)
    return nodetype


def register_pytree_with_keys(nodetype, flatten_with_keys, unflatten_func, flatten_func=None):
    if flatten_func is None:
        def flatten_func(node):
            kc, aux = flatten_with_keys(node)
            return [c for _, c in kc], aux
    return register_pytree_node(nodetype, flatten_func, unflatten_func, flatten_with_keys)


def register_dataclass(nodetype, data_fields=None, meta_fields=None, drop_fields=()):
    """Register a dataclass as a pytree node.

    ``data_fields`` are children (arrays, subtrees); ``meta_fields`` are static and part of
    the tree structure (they must be hashable). When both are omitted, fields declared
    with ``dataclasses.field(metadata={"static": True})`` are meta, the rest data.
    Usable as a decorator.
    """
    if data_fields is None and meta_fields is None:
        if not dataclasses.is_dataclass(nodetype):
            raise FuncgradTypeError(
                f"register_dataclass({nodetype.__name__}): not a dataclass; pass "
                "data_fields= and meta_fields= explicitly")
        data_fields, meta_fields = [], []
        for f in dataclasses.fields(nodetype):
            if f.name in drop_fields or not f.init:
                continue
            (meta_fields if f.metadata.get("static", False) else data_fields).append(f.name)
    data_fields = tuple(data_fields or ())
    meta_fields = tuple(meta_fields or ())

    def flatten_with_keys(x):
        return ([(GetAttrKey(n), getattr(x, n)) for n in data_fields],
                tuple(getattr(x, n) for n in meta_fields))

    def flatten(x):
        return [getattr(x, n) for n in data_fields], tuple(getattr(x, n) for n in meta_fields)

    def unflatten(meta, children):
        kwargs = dict(zip(meta_fields, meta))
        kwargs.update(zip(data_fields, children))
        return nodetype(**kwargs)

    register_pytree_node(nodetype, flatten, unflatten, flatten_with_keys)
    return nodetype


def _is_namedtuple(x):
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def _node_kind(x):
    """The registry entry describing container ``x``, or None for a leaf."""
    t = type(x)
    nt = _registry.get(t)
    if nt is not None:
        return t, nt
    if _is_namedtuple(x):
        return "namedtuple", _namedtuple_node
    return None, None


# Builtin containers.
def _type_name(k):
    t = type(k)
    return t.__module__, t.__qualname__


def _sorted_keys(d):
    """``d``'s keys in an order that depends on the set of keys only, never on insertion
    order, so that two dicts with the same keys always flatten alike (and match in
    tree_map, jit's cache, the distributed structure check). Keys that compare with each
    other are sorted as JAX sorts them. JAX raises for keys that do not (``{1: a, "b":
    c}``); here they are grouped by type (module and name) and sorted within each type,
    and keys that do not even compare with their own type by their repr."""
    try:
        return sorted(d)
    except TypeError:
        pass
    try:
        return sorted(d, key=lambda k: (_type_name(k), k))
    except TypeError:
        return sorted(d, key=lambda k: (_type_name(k), repr(k)))


def _dict_flatten(d):
    keys = _sorted_keys(d)
    return [d[k] for k in keys], tuple(keys)


def _dict_unflatten(keys, children):
    return dict(zip(keys, children))


def _dict_flatten_keys(d):
    keys = _sorted_keys(d)
    return [(DictKey(k), d[k]) for k in keys], tuple(keys)


def _defaultdict_flatten(d):
    keys = _sorted_keys(d)
    return [d[k] for k in keys], (d.default_factory, tuple(keys))


def _defaultdict_flatten_keys(d):
    keys = _sorted_keys(d)
    return [(DictKey(k), d[k]) for k in keys], (d.default_factory, tuple(keys))


register_pytree_node(tuple, lambda t: (t, None), lambda _, c: tuple(c),
                     lambda t: ([(SequenceKey(i), v) for i, v in enumerate(t)], None))
register_pytree_node(list, lambda t: (t, None), lambda _, c: list(c),
                     lambda t: ([(SequenceKey(i), v) for i, v in enumerate(t)], None))
register_pytree_node(dict, _dict_flatten, _dict_unflatten, _dict_flatten_keys)
register_pytree_node(type(None), lambda _: ((), None), lambda _, c: None,
                     lambda _: ((), None))
register_pytree_node(
    collections.OrderedDict,
    lambda d: (list(d.values()), tuple(d)),
    lambda keys, c: collections.OrderedDict(zip(keys, c)),
    lambda d: ([(DictKey(k), v) for k, v in d.items()], tuple(d)))
register_pytree_node(
    collections.defaultdict, _defaultdict_flatten,
    lambda aux, c: collections.defaultdict(aux[0], zip(aux[1], c)), _defaultdict_flatten_keys)

_namedtuple_node = _NodeType(
    lambda t: (tuple(t), type(t)),
    lambda cls, c: cls(*c),
    lambda t: ([(GetAttrKey(n), v) for n, v in zip(t._fields, t)], type(t)))


class PyTreeDef:
    """The structure of a pytree, without its leaves. Hashable and comparable."""

    __slots__ = ("node_type", "node_data", "children", "num_leaves", "num_nodes", "_hash")

    def __init__(self, node_type, node_data, children):
        self.node_type = node_type   # None for a leaf
        self.node_data = node_data
        self.children = children
        if node_type is None:
            self.num_leaves, self.num_nodes = 1, 1
        else:
            leaves, nodes = 0, 1
            for c in children:
                leaves += c.num_leaves
                nodes += c.num_nodes
            self.num_leaves, self.num_nodes = leaves, nodes
        self._hash = None

    def _key(self):
        return (self.node_type, self.node_data, self.children)

    def __eq__(self, other):
        return isinstance(other, PyTreeDef) and (
            self is other or self._key() == other._key())

    def __hash__(self):
        if self._hash is None:
            self._hash = hash(self._key())
        return self._hash

    def unflatten(self, leaves):
        return tree_unflatten(self, leaves)

    @property
    def num_children(self):
        return len(self.children)

    def __repr__(self):
        return f"PyTreeDef({self._repr()})"

    def _repr(self):
        if self.node_type is None:
            return "*"
        kids = [c._repr() for c in self.children]
        t = self.node_type
        if t is tuple:
            return "(" + ", ".join(kids) + ("," if len(kids) == 1 else "") + ")"
        if t is list:
            return "[" + ", ".join(kids) + "]"
        if t is dict:
            return "{" + ", ".join(f"{k!r}: {v}" for k, v in zip(self.node_data, kids)) + "}"
        if t is type(None):
            return "None"
        name = self.node_data.__name__ if t == "namedtuple" else t.__name__
        return f"{name}(" + ", ".join(kids) + ")"


_LEAF = PyTreeDef(None, None, ())


def tree_flatten(tree, is_leaf=None):
    """Return ``(leaves, treedef)``; ``is_leaf(x) -> bool`` stops the descent early."""
    leaves = []
    treedef = _flatten(tree, is_leaf, leaves)
    return leaves, treedef


def _flatten(x, is_leaf, leaves):
    if is_leaf is not None and is_leaf(x):
        leaves.append(x)
        return _LEAF
    kind = type(x)                      # _node_kind, inlined: this is a hot path
    nt = _registry.get(kind)
    if nt is None:
        if not _is_namedtuple(x):
            leaves.append(x)
            return _LEAF
        kind, nt = "namedtuple", _namedtuple_node
    children, aux = nt.flatten(x)
    return PyTreeDef(kind, aux, tuple([_flatten(c, is_leaf, leaves) for c in children]))


def tree_unflatten(treedef, leaves):
    """Rebuild a tree of structure ``treedef`` from an iterable of leaves."""
    leaves = list(leaves)
    if len(leaves) != treedef.num_leaves:
        raise FuncgradValueError(
            f"tree_unflatten: the structure {treedef} has {treedef.num_leaves} leaves but "
            f"{len(leaves)} were given")
    it = iter(leaves)
    return _unflatten(treedef, it)


def _unflatten(td, it):
    if td.node_type is None:
        return next(it)
    children = [_unflatten(c, it) for c in td.children]
    if td.node_type == "namedtuple":
        return _namedtuple_node.unflatten(td.node_data, children)
    return _registry[td.node_type].unflatten(td.node_data, children)


def tree_leaves(tree, is_leaf=None):
    return tree_flatten(tree, is_leaf)[0]


def tree_structure(tree, is_leaf=None):
    return tree_flatten(tree, is_leaf)[1]


def treedef_is_leaf(treedef):
    return treedef.node_type is None


def tree_flatten_with_path(tree, is_leaf=None):
    """Return ``([(key_path, leaf), ...], treedef)``."""
    out = []
    _flatten_with_path(tree, is_leaf, (), out)
    return out, tree_structure(tree, is_leaf)


def _flatten_with_path(x, is_leaf, path, out):
    if is_leaf is not None and is_leaf(x):
        out.append((path, x))
        return
    kind, nt = _node_kind(x)
    if nt is None:
        out.append((path, x))
        return
    keyed, _ = nt.flatten_with_keys(x)
    for k, c in keyed:
        _flatten_with_path(c, is_leaf, path + (k,), out)


def tree_leaves_with_path(tree, is_leaf=None):
    return tree_flatten_with_path(tree, is_leaf)[0]


def _describe(kind, aux):
    if kind is None:
        return "a leaf"
    if kind == "namedtuple":
        return f"namedtuple {aux.__name__}"
    if kind in (dict, collections.OrderedDict):
        return f"{kind.__name__} with keys {list(aux)}"
    return getattr(kind, "__name__", str(kind))


def _flatten_up_to(td, x, path, what):
    """Leaves of ``x`` cut at the leaves of ``td``: subtrees become leaves."""
    if td.node_type is None:
        return [x]
    kind, nt = _node_kind(x)
    if nt is None or kind != td.node_type:
        raise FuncgradValueError(
            f"{what}: tree structures differ at key path {keystr(path) or '<root>'}: "
            f"expected {_describe(td.node_type, td.node_data)} but got "
            f"{_describe(kind, None) if nt is None else type(x).__name__}")
    keyed, aux = nt.flatten_with_keys(x)
    if aux != td.node_data or len(keyed) != len(td.children):
        if kind == "namedtuple" or kind is tuple or kind is list:
            detail = f"length {len(td.children)} vs {len(keyed)}"
        else:
            detail = f"{_describe(td.node_type, td.node_data)} vs {_describe(kind, aux)}"
        raise FuncgradValueError(
            f"{what}: tree structures differ at key path {keystr(path) or '<root>'}: {detail}")
    out = []
    for (k, c), ctd in zip(keyed, td.children):
        out.extend(_flatten_up_to(ctd, c, path + (k,), what))
    return out


def tree_map(f, tree, *rest, is_leaf=None):
    """Apply ``f`` leafwise; ``rest`` are trees with ``tree``'s structure (or one with
    ``tree`` as a prefix: their subtrees at ``tree``'s leaves are passed whole)."""
    leaves, td = tree_flatten(tree, is_leaf)
    if not rest:
        return td.unflatten([f(x) for x in leaves])
    others = [_flatten_up_to(td, r, (), "tree_map") for r in rest]
    return td.unflatten([f(*xs) for xs in zip(leaves, *others)])


def tree_map_with_path(f, tree, *rest, is_leaf=None):
    """Like :func:`tree_map` but ``f(key_path, leaf, *others)``."""
    pairs, td = tree_flatten_with_path(tree, is_leaf)
    others = [_flatten_up_to(td, r, (), "tree_map_with_path") for r in rest]
    return td.unflatten([f(p, x, *xs) for (p, x), *xs in zip(pairs, *others)])


_no_initial = object()


def tree_reduce(function, tree, initializer=_no_initial, is_leaf=None):
    """``functools.reduce`` over the leaves of ``tree``."""
    leaves = tree_leaves(tree, is_leaf)
    if initializer is _no_initial:
        return functools.reduce(function, leaves)
    return functools.reduce(function, leaves, initializer)


def tree_all(tree, is_leaf=None):
    return all(tree_leaves(tree, is_leaf))


def tree_transpose(outer_treedef, inner_treedef, pytree_to_transpose):
    """Turn a tree of trees (outer of inner) into inner of outer."""
    flat = _flatten_up_to(outer_treedef, pytree_to_transpose, (), "tree_transpose")
    inner = [_flatten_up_to(inner_treedef, x, (), "tree_transpose") for x in flat]
    cols = [outer_treedef.unflatten(col) for col in zip(*inner)] if inner else []
    return inner_treedef.unflatten(cols)


def flatten_up_to(treedef, tree, what="tree"):
    return _flatten_up_to(treedef, tree, (), what)


class Partial(functools.partial):
    """A ``functools.partial`` that is a pytree: its arguments are children, the function
    static. Lets a function with array arguments cross a transformation boundary."""


register_pytree_node(
    Partial,
    lambda p: ((p.args, p.keywords), p.func),
    lambda func, c: Partial(func, *c[0], **c[1]))
