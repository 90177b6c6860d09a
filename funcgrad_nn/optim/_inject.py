"""Hyperparameters held in the optimizer state, where they can be read and changed."""
import functools
import inspect
from typing import NamedTuple

import numpy as np

import funcgrad
import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradTypeError, FuncgradValueError
from funcgrad.tree_util import tree_leaves

from . import _tree
from ._base import GradientTransformation


class InjectHyperparamsState(NamedTuple):
    count: object        # int32 number of updates done
    hyperparams: dict    # name -> 0-d array: the values the last update used
    inner_state: object


def _float_dtype(tree):
    """The widest floating dtype among the leaves of ``tree`` (None if there is none)."""
    dtypes = [_tree.dtype_of(x) for x in tree_leaves(tree)]
    dtypes = [d for d in dtypes if fnp.issubdtype(d, fnp.floating)]
    return np.result_type(*dtypes) if dtypes else None


def _convert(value, dtype):
    """A 0-d array for a hyperparameter; floating values take ``dtype``."""
    if dtype is not None and fnp.issubdtype(_tree.dtype_of(value), fnp.floating):
        return fnp.asarray(value, dtype=dtype)
    return fnp.asarray(value)


def inject_hyperparams(inner_factory, static_args=(), hyperparam_dtype=None):
    """Wrap an optimizer factory so that its numeric hyperparameters live in the state.

    ``inject_hyperparams(adam)(learning_rate=1e-3)`` builds the same optimizer as
    ``adam(learning_rate=1e-3)`` but its state is an :class:`InjectHyperparamsState`
    whose ``hyperparams`` dict holds every numeric argument (``learning_rate``, ``b1``,
    ...) as a 0-d array. Each update rebuilds the inner transformation from those values,
    so changing one between steps changes the optimizer::

        state = state._replace(hyperparams={**state.hyperparams, "learning_rate": 0.01})
        # or, as in optax: state.hyperparams["learning_rate"] = 0.01

    Arguments that are callables (schedules) are evaluated at the step count before each
    update, as :func:`scale_by_schedule` does (the first update uses ``schedule(0)``), and
    the value used is stored in ``hyperparams``. Booleans, ``None``, strings and the names
    in ``static_args`` stay fixed. Floating hyperparameters take ``hyperparam_dtype``, or
    by default the widest floating dtype of the params (so float32 params keep float32
    arithmetic).

        >>> import numpy as np
        >>> from funcgrad_nn import optim
        >>> tx = optim.inject_hyperparams(optim.sgd)(learning_rate=0.1)
        >>> p = np.array([1.0]); state = tx.init(p)
        >>> state.hyperparams["learning_rate"]
        array(0.1)
        >>> state.hyperparams["learning_rate"] = 1.0
        >>> tx.update(np.array([2.0]), state)[0]
        array([-2.])
    """
    static_args = {static_args} if isinstance(static_args, str) else set(static_args)
    signature = inspect.signature(inner_factory)
    unknown = static_args - set(signature.parameters)
    if unknown:
        raise FuncgradValueError(
            f"inject_hyperparams: static_args {sorted(unknown)} are not parameters of "
            f"{getattr(inner_factory, '__name__', inner_factory)}{signature}")

    @functools.wraps(inner_factory)
    def wrapped(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = {}
        for name, value in bound.arguments.items():
            kind = signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                arguments.update(value)
            elif kind is inspect.Parameter.VAR_POSITIONAL:
                if value:
                    raise FuncgradTypeError(
                        f"inject_hyperparams: {inner_factory.__name__} takes *{name}; "
                        "pass its hyperparameters by keyword")
            else:
                arguments[name] = value
        schedules, numeric, static = {}, {}, {}
        for name, value in arguments.items():
            if name in static_args or isinstance(value, (bool, np.bool_)):
                static[name] = value
            elif callable(value):
                schedules[name] = value
            elif isinstance(value, (int, float, np.ndarray, np.generic, funcgrad.Tracer)):
                numeric[name] = value
            else:
                static[name] = value

        def current(values, count, dtype):
            hp = {k: _convert(v, dtype) for k, v in values.items()}
            hp.update({k: _convert(f(count), dtype) for k, f in schedules.items()})
            return hp

        def init_fn(params):
            dtype = _float_dtype(params) if hyperparam_dtype is None else hyperparam_dtype
            count = _tree.zero_count(params)
            hp = current(numeric, count, dtype)
            return InjectHyperparamsState(count, hp, inner_factory(**static, **hp).init(params))

        def update_fn(updates, state, params=None):
            dtype = hyperparam_dtype
            if dtype is None:
                dtype = _float_dtype(updates if params is None else params)
            hp = current(state.hyperparams, state.count, dtype)
            updates, inner_state = inner_factory(**static, **hp).update(
                updates, state.inner_state, params)
            return updates, InjectHyperparamsState(_tree.safe_increment(state.count), hp,
                                                   inner_state)
        return GradientTransformation(init_fn, update_fn)
    return wrapped
