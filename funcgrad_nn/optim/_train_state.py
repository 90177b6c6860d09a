"""A training state: parameters, optimizer state and step count in one pytree."""
import dataclasses
from typing import Any

from funcgrad.tree_util import register_dataclass

from . import _tree
from ._base import GradientTransformation, apply_updates


@dataclasses.dataclass(frozen=True)
class TrainState:
    """``params``, ``opt_state`` and ``step`` (an int32 count of applied updates), with
    the optimizer ``tx`` as static metadata. A frozen pytree: the arrays are its leaves,
    ``tx`` is part of its structure, and nothing mutates it.

        >>> import numpy as np
        >>> from funcgrad_nn import optim
        >>> state = optim.TrainState.create(params={"w": np.ones(2)}, tx=optim.sgd(0.5))
        >>> new = state.apply_gradients({"w": np.array([1.0, -1.0])})
        >>> new.params["w"], int(new.step), int(state.step)
        (array([0.5, 1.5]), 1, 0)
    """
    step: Any
    params: Any
    opt_state: Any
    tx: GradientTransformation = dataclasses.field(metadata={"static": True})

    @classmethod
    def create(cls, *, params, tx):
        """A state at step 0 with ``tx.init(params)``."""
        return cls(step=_tree.zero_count(params), params=params, opt_state=tx.init(params), tx=tx)

    def apply_gradients(self, grads):
        """The state after one optimizer step on ``grads`` (a new object; pure)."""
        updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
        return dataclasses.replace(self, step=_tree.safe_increment(self.step),
                                   params=apply_updates(self.params, updates),
                                   opt_state=opt_state)


register_dataclass(TrainState)
