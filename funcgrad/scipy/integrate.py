"""funcgrad.scipy.integrate: ``odeint`` (JAX's signature and adjoint derivative)."""
from ._odeint import odeint

__all__ = ["odeint"]
