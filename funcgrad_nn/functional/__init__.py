"""Functional neural-network operations with PyTorch's names and arguments.

Everything here is a pure function of arrays, differentiable with every funcgrad
transformation, built on funcgrad's public API (``funcgrad.numpy``, ``funcgrad.lax``,
``funcgrad.random``). Conventions:

* Layouts are PyTorch's: ``(N, C, *spatial)`` images, ``(out, in)`` linear weights,
  ``(out, in // groups, *kernel)`` convolution weights. Unbatched inputs (no ``N``) are
  accepted where PyTorch accepts them.
* Where PyTorch says ``dim=``, we say ``axis=`` (NumPy's word); ``dim=`` is accepted too.
* Losses take ``reduction='mean' | 'sum' | 'none'``.
* dtypes are preserved: float32 in, float32 out (constants are Python scalars).
* Randomness is explicit: :func:`dropout` takes a ``key`` from ``funcgrad.random``.
* What PyTorch updates in place (BatchNorm's running statistics) is returned instead.

Example:
    >>> import numpy as np
    >>> import funcgrad_nn.functional as F
    >>> logits = np.array([[2.0, 0.5, -1.0]])
    >>> round(float(F.cross_entropy(logits, np.array([0]))), 6)
    0.241311
"""
from ._activation import (celu, elu, erf, gelu, glu, hardshrink, hardsigmoid, hardswish,
                          hardtanh, leaky_relu, log_softmax, logsigmoid, mish, prelu, relu,
                          relu6, rrelu, selu, sigmoid, silu, softmax, softmin, softplus,
                          softshrink, softsign, tanh, tanhshrink, threshold)
from ._attention import scaled_dot_product_attention
from ._convolution import (conv1d, conv2d, conv3d, conv_transpose1d, conv_transpose2d,
                           conv_transpose3d)
from ._dropout import dropout, dropout1d, dropout2d, dropout3d
from ._embedding import embedding, one_hot
from ._fold import fold, unfold
from ._interpolate import channel_shuffle, interpolate, pixel_shuffle, pixel_unshuffle
from ._linear import bilinear, linear
from ._loss import (binary_cross_entropy, binary_cross_entropy_with_logits,
                    cosine_embedding_loss, cosine_similarity, cross_entropy, ctc_loss,
                    gaussian_nll_loss, hinge_embedding_loss, huber_loss, kl_div, l1_loss,
                    margin_ranking_loss, mse_loss, multi_margin_loss, multilabel_margin_loss,
                    multilabel_soft_margin_loss, nll_loss, pairwise_distance, pdist,
                    poisson_nll_loss, smooth_l1_loss, soft_margin_loss, triplet_margin_loss)
from ._normalization import (batch_norm, group_norm, instance_norm, layer_norm,
                             local_response_norm, normalize, rms_norm)
from ._padding import pad
from ._pooling import (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d,
                       adaptive_max_pool1d, adaptive_max_pool2d, adaptive_max_pool3d,
                       avg_pool1d, avg_pool2d, avg_pool3d, lp_pool1d, lp_pool2d, lp_pool3d,
                       max_pool1d, max_pool2d, max_pool3d)
from ._sampling import affine_grid, grid_sample
# Private helpers other modules reach through this namespace (funcgrad_nn.layers uses
# F._ntuple, F._axis, F._arange_like; the tests check F._erf_own).
from ._activation import _erf_own
from ._util import _arange_like, _axis, _ntuple

__all__ = [
    # linear, convolution, pooling
    "linear", "bilinear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
    "conv_transpose2d", "conv_transpose3d", "max_pool1d", "max_pool2d", "max_pool3d",
    "avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
    "adaptive_avg_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d",
    "adaptive_max_pool3d", "lp_pool1d", "lp_pool2d", "lp_pool3d", "unfold", "fold",
    # normalization, dropout, embedding
    "batch_norm", "layer_norm", "group_norm", "instance_norm", "local_response_norm",
    "normalize", "rms_norm", "dropout", "dropout1d", "dropout2d", "dropout3d", "embedding",
    # activations
    "relu", "relu6", "rrelu", "hardtanh", "leaky_relu", "elu", "selu", "celu", "gelu", "silu",
    "sigmoid", "tanh", "softplus", "softsign", "tanhshrink", "threshold", "glu",
    "logsigmoid", "softmax", "softmin", "log_softmax", "erf", "hardshrink", "softshrink",
    "hardsigmoid", "hardswish", "mish", "prelu",
    # shape and resampling
    "one_hot", "pad", "interpolate", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle",
    "affine_grid", "grid_sample",
    # attention
    "scaled_dot_product_attention",
    # losses and similarities
    "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "cross_entropy", "nll_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div",
    "poisson_nll_loss", "gaussian_nll_loss", "cosine_embedding_loss",
    "margin_ranking_loss", "hinge_embedding_loss", "multi_margin_loss",
    "multilabel_margin_loss", "triplet_margin_loss", "ctc_loss", "soft_margin_loss",
    "multilabel_soft_margin_loss", "cosine_similarity", "pairwise_distance", "pdist",
]
