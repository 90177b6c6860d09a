"""SciPy-like functions over funcgrad.numpy (SciPy itself stays optional)."""
from . import integrate, linalg, signal, special, stats
