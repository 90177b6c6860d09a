"""Loss modules: configuration wrappers of the functional losses, called as
``loss(params, input, target)`` (``params`` is ``{}``: losses have no parameters)."""
from __future__ import annotations

from funcgrad.errors import FuncgradValueError

from .. import functional as F
from ..functional._loss import _legacy_reduction
from ._base import _Parameterless


class _Loss(_Parameterless):
    _fn = None
    _args = ()

    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        self.reduction = _legacy_reduction(size_average, reduce, reduction)

    def extra_repr(self):
        return ", ".join(f"{a}={getattr(self, a)!r}" for a in self._args + ("reduction",))

    def forward(self, params, *inputs):
        self._check(params)
        kw = {a: getattr(self, a) for a in self._args}
        return type(self)._fn(*inputs, reduction=self.reduction, **kw)


class CosineEmbeddingLoss(_Loss):
    """``loss(params, input1, input2, target)``; see
    :func:`funcgrad_nn.functional.cosine_embedding_loss`."""
    _fn = staticmethod(F.cosine_embedding_loss)
    _args = ("margin",)

    def __init__(self, margin=0.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin


class MarginRankingLoss(_Loss):
    """``loss(params, input1, input2, target)``; see
    :func:`funcgrad_nn.functional.margin_ranking_loss`."""
    _fn = staticmethod(F.margin_ranking_loss)
    _args = ("margin",)

    def __init__(self, margin=0.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin


class HingeEmbeddingLoss(_Loss):
    """``loss(params, input, target)``; see
    :func:`funcgrad_nn.functional.hinge_embedding_loss`."""
    _fn = staticmethod(F.hinge_embedding_loss)
    _args = ("margin",)

    def __init__(self, margin=1.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin


class MultiMarginLoss(_Loss):
    """``loss(params, input, target)``; see :func:`funcgrad_nn.functional.multi_margin_loss`.
    ``weight`` (a ``(C,)`` array or None) is configuration, as PyTorch's buffer is."""
    _fn = staticmethod(F.multi_margin_loss)
    _args = ("p", "margin", "weight")

    def __init__(self, p=1, margin=1.0, weight=None, size_average=None, reduce=None,
                 reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        if p not in (1, 2):
            raise FuncgradValueError(f"MultiMarginLoss: only p == 1 and p == 2 are supported, "
                                     f"got {p}")
        self.p, self.margin, self.weight = p, margin, weight


class MultiLabelMarginLoss(_Loss):
    """``loss(params, input, target)``; see
    :func:`funcgrad_nn.functional.multilabel_margin_loss`."""
    _fn = staticmethod(F.multilabel_margin_loss)


class TripletMarginLoss(_Loss):
    """``loss(params, anchor, positive, negative)``; see
    :func:`funcgrad_nn.functional.triplet_margin_loss`."""
    _fn = staticmethod(F.triplet_margin_loss)
    _args = ("margin", "p", "eps", "swap")

    def __init__(self, margin=1.0, p=2.0, eps=1e-6, swap=False, size_average=None,
                 reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin, self.p, self.eps, self.swap = margin, p, eps, swap


class PoissonNLLLoss(_Loss):
    """``loss(params, log_input_or_rate, target)``; see
    :func:`funcgrad_nn.functional.poisson_nll_loss`."""
    _fn = staticmethod(F.poisson_nll_loss)
    _args = ("log_input", "full", "eps")

    def __init__(self, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
                 reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.log_input, self.full, self.eps = log_input, full, eps


class GaussianNLLLoss(_Loss):
    """``loss(params, input, target, var)``; see
    :func:`funcgrad_nn.functional.gaussian_nll_loss`."""
    _fn = staticmethod(F.gaussian_nll_loss)
    _args = ("full", "eps")

    def __init__(self, *, full=False, eps=1e-6, reduction="mean"):
        super().__init__(None, None, reduction)
        self.full, self.eps = full, eps
