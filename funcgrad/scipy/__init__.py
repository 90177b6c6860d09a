"""SciPy-like functions over funcgrad.numpy (SciPy itself stays optional)."""
from . import linalg, signal, special, stats
