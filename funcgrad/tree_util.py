"""Pytree utilities: nested tuples, lists, dicts, namedtuples, None and registered classes."""
from ._src.tree_util import (DictKey, FlattenedIndexKey, GetAttrKey, Partial, PyTreeDef,
                             SequenceKey, keystr, register_dataclass, register_pytree_node,
                             register_pytree_with_keys, tree_all, tree_flatten,
                             tree_flatten_with_path, tree_leaves, tree_leaves_with_path,
                             tree_map, tree_map_with_path, tree_reduce, tree_structure,
                             tree_transpose, tree_unflatten, treedef_is_leaf)

__all__ = ["DictKey", "FlattenedIndexKey", "GetAttrKey", "Partial", "PyTreeDef",
           "SequenceKey", "keystr", "register_dataclass", "register_pytree_node",
           "register_pytree_with_keys", "tree_all", "tree_flatten", "tree_flatten_with_path",
           "tree_leaves", "tree_leaves_with_path", "tree_map", "tree_map_with_path",
           "tree_reduce", "tree_structure", "tree_transpose", "tree_unflatten",
           "treedef_is_leaf"]
