"""funcgrad_nn: stateless layers, losses, optimizers, data loading and checkpoints,
built on funcgrad's public API only.

Layers hold configuration; parameters are pytrees the user owns and passes in.
"""
from . import data, datasets, functional, init, optim, training, transforms
from .layers import *  # noqa: F401,F403
from .serialization import *  # noqa: F401,F403
