"""funcgrad.numpy.fft: differentiable discrete Fourier transforms, like ``numpy.fft``.

``n``/``s`` (crop or zero-pad), ``axis``/``axes`` and ``norm`` (``"backward"``,
``"ortho"``, ``"forward"``) follow NumPy. Complex values flow through every
transformation (JAX's convention: reverse rules are transposes, no conjugation); float32
input gives complex64. Plain ``numpy.fft.xxx(traced_value)`` calls are routed here.
"""
from .._src.prims.fft import (fft, fft2, fftfreq, fftn, fftshift, hfft, ifft, ifft2, ifftn,
                              ifftshift, ihfft, irfft, irfft2, irfftn, rfft, rfft2,
                              rfftfreq, rfftn)

__all__ = ["fft", "fft2", "fftfreq", "fftn", "fftshift", "hfft", "ifft", "ifft2", "ifftn",
           "ifftshift", "ihfft", "irfft", "irfft2", "irfftn", "rfft", "rfft2", "rfftfreq",
           "rfftn"]
