"""The PyTorch ``nn.functional`` names added to funcgrad_nn.functional (activations,
normalizations, pixel shuffles, margin/embedding/NLL losses): values and gradients
against PyTorch when it is installed, finite differences always, and their errors."""
import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp
import funcgrad_nn.functional as F
from funcgrad.errors import FuncgradValueError
from funcgrad.test_util import check_grads

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _rng(seed=0):
    return np.random.default_rng(seed)


def _tt(a, grad):
    if isinstance(a, np.ndarray):
        return torch.tensor(a, requires_grad=grad and a.dtype.kind == "f")
    return a


def compare(ours, theirs, args, diff=(0,), tol=1e-10, seed=1):
    """Values of ``ours(*args)`` and ``theirs(*torch args)`` and the gradients of
    ``sum(out * ct)`` with respect to the arguments in ``diff``."""
    y = ours(*args)
    targs = [_tt(a, i in diff) for i, a in enumerate(args)]
    ty = theirs(*targs)
    np.testing.assert_allclose(np.asarray(y), ty.detach().numpy(), rtol=tol, atol=tol)
    ct = _rng(seed).normal(size=np.shape(y))
    (ty * torch.tensor(ct)).sum().backward()

    def loss(*d):
        a = list(args)
        for i, v in zip(diff, d):
            a[i] = v
        return fnp.sum(ours(*a) * ct)
    gs = funcgrad.grad(loss, argnums=tuple(range(len(diff))))(*[args[i] for i in diff])
    for i, g in zip(diff, gs):
        np.testing.assert_allclose(g, targs[i].grad.numpy(), rtol=tol, atol=tol,
                                   err_msg=f"gradient of argument {i}")


# ---------------------------------------------------------------- activations

X = np.array([-3.0, -1.0, -0.25, 0.0, 0.3, 1.0, 2.5, 7.0])

ACTS = [
    ("hardtanh", {}), ("hardtanh", {"min_val": -0.5, "max_val": 2.0}), ("selu", {}),
    ("celu", {}), ("celu", {"alpha": 0.5}), ("softsign", {}), ("tanhshrink", {}),
    ("threshold", {"threshold": 0.3, "value": -2.0}),
]


@pytest.mark.parametrize("name, kw", ACTS)
def test_activations_match_torch(name, kw):
    compare(lambda x: getattr(F, name)(x, **kw), lambda x: getattr(TF, name)(x, **kw), (X,))
    if name not in ("hardtanh", "threshold"):
        check_grads(lambda x: getattr(F, name)(x, **kw), (X[X != 0],), order=2)


@pytest.mark.parametrize("name, kw", ACTS)
def test_activations_keep_float32_and_propagate_nan(name, kw):
    x = np.array([np.nan, -2.0, 0.5], np.float32)
    y = getattr(F, name)(x, **kw)
    assert y.dtype == np.float32
    assert np.isnan(y[0])
    np.testing.assert_allclose(y[1:], getattr(TF, name)(torch.tensor(x[1:]), **kw).numpy(),
                               rtol=1e-6)


@pytest.mark.parametrize("dim", [-1, 0, 1])
def test_glu_matches_torch(dim):
    x = _rng(2).normal(size=(4, 6))
    compare(lambda x: F.glu(x, dim), lambda x: TF.glu(x, dim), (x,))


def test_glu_odd_axis_raises():
    with pytest.raises(FuncgradValueError, match="even"):
        F.glu(np.ones((3, 5)))


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmin_matches_torch(dim):
    x = _rng(3).normal(size=(3, 4, 2)) * 5
    compare(lambda x: F.softmin(x, dim=dim), lambda x: TF.softmin(x, dim=dim), (x,))
    np.testing.assert_allclose(F.softmin(x, dim), F.softmax(-x, axis=dim))


def test_hardtanh_rejects_reversed_bounds_and_celu_zero_alpha():
    with pytest.raises(FuncgradValueError):
        F.hardtanh(X, 1.0, -1.0)
    with pytest.raises(FuncgradValueError):
        F.celu(X, 0.0)


# ---------------------------------------------------------------- normalization

@pytest.mark.parametrize("p, dim", [(2.0, 1), (1.0, 0), (3.0, -1), (float("inf"), 1)])
def test_normalize_matches_torch(p, dim):
    x = _rng(4).normal(size=(3, 4, 2))
    x[0, :, 0] = 0.0         # a zero vector along dim=1
    compare(lambda x: F.normalize(x, p, dim), lambda x: TF.normalize(x, p, dim), (x,))


def test_normalize_of_zero_vector_has_finite_gradient():
    g = funcgrad.grad(lambda x: fnp.sum(F.normalize(x, dim=0)))(np.zeros(3))
    assert np.all(np.isfinite(g))


@pytest.mark.parametrize("shape, size", [((2, 5, 4), 3), ((2, 6, 3, 3), 2), ((1, 4, 2, 2, 3), 5),
                                         ((2, 3, 4), 1)])
def test_local_response_norm_matches_torch(shape, size):
    x = _rng(5).normal(size=shape) * 3
    compare(lambda x: F.local_response_norm(x, size, alpha=0.1, beta=0.6, k=1.5),
            lambda x: TF.local_response_norm(x, size, alpha=0.1, beta=0.6, k=1.5), (x,))


@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3, 4, 3), (1, 2, 3, 2, 2)])
def test_instance_norm_matches_torch(shape):
    rng = _rng(6)
    x = rng.normal(size=shape) * 2 + 1
    c = shape[1]
    w, b = rng.normal(size=c), rng.normal(size=c)
    compare(lambda x, w, b: F.instance_norm(x, weight=w, bias=b)[0],
            lambda x, w, b: TF.instance_norm(x, weight=w, bias=b), (x, w, b), diff=(0, 1, 2))


def test_instance_norm_running_statistics_match_torch():
    rng = _rng(7)
    x = rng.normal(size=(3, 2, 5)) * 2 + 1
    rm, rv = rng.normal(size=2), rng.uniform(0.5, 2.0, size=2)
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    ty = TF.instance_norm(torch.tensor(x), trm, trv, momentum=0.3)
    y, nrm, nrv = F.instance_norm(x, rm, rv, momentum=0.3)
    np.testing.assert_allclose(y, ty.numpy(), atol=1e-12)
    np.testing.assert_allclose(nrm, trm.numpy(), atol=1e-12)
    np.testing.assert_allclose(nrv, trv.numpy(), atol=1e-12)
    # evaluation with the running statistics
    ty = TF.instance_norm(torch.tensor(x), trm, trv, use_input_stats=False)
    y, m2, v2 = F.instance_norm(x, nrm, nrv, use_input_stats=False)
    np.testing.assert_allclose(y, ty.numpy(), atol=1e-12)
    assert m2 is nrm and v2 is nrv


def test_instance_norm_momentum_none_keeps_running_statistics_as_torch():
    """torch's InstanceNorm with momentum=None passes 0.0 to its functional, so training
    leaves the running statistics as they were (no cumulative average, unlike BatchNorm;
    torch's functional itself refuses None)."""
    x = np.random.default_rng(4).normal(2.0, 3.0, (2, 3, 6))
    rm, rv = np.linspace(-1, 1, 3), np.linspace(0.5, 2, 3)
    layer = torch.nn.InstanceNorm1d(3, momentum=None, track_running_stats=True).double()
    layer.running_mean.copy_(torch.tensor(rm))
    layer.running_var.copy_(torch.tensor(rv))
    ty = layer.train()(torch.tensor(x))
    y, nrm, nrv = F.instance_norm(x, rm, rv, momentum=None)
    np.testing.assert_allclose(y, ty.numpy(), atol=1e-12)
    np.testing.assert_allclose(nrm, layer.running_mean.numpy())
    np.testing.assert_allclose(nrv, layer.running_var.numpy())
    np.testing.assert_allclose(nrm, rm)


def test_instance_norm_errors():
    with pytest.raises(FuncgradValueError, match="spatial"):
        F.instance_norm(np.ones((2, 3, 1)))
    with pytest.raises(FuncgradValueError, match="running_mean"):
        F.instance_norm(np.ones((2, 3, 4)), use_input_stats=False)
    with pytest.raises(FuncgradValueError):
        F.instance_norm(np.ones((2, 3)))


# ---------------------------------------------------------------- pixel shuffle

@pytest.mark.parametrize("shape, r", [((2, 8, 3, 4), 2), ((18, 2, 2), 3), ((2, 1, 4, 1, 1), 2)])
def test_pixel_shuffle_matches_torch(shape, r):
    x = _rng(8).normal(size=shape)
    compare(lambda x: F.pixel_shuffle(x, r), lambda x: TF.pixel_shuffle(x, r), (x,))
    y = F.pixel_shuffle(x, r)
    compare(lambda y: F.pixel_unshuffle(y, r), lambda y: TF.pixel_unshuffle(y, r), (y,))
    np.testing.assert_array_equal(F.pixel_unshuffle(y, r), x)


def test_pixel_shuffle_errors():
    with pytest.raises(FuncgradValueError, match="divisible"):
        F.pixel_shuffle(np.ones((1, 3, 2, 2)), 2)
    with pytest.raises(FuncgradValueError, match="divisible"):
        F.pixel_unshuffle(np.ones((1, 1, 3, 2)), 2)
    with pytest.raises(FuncgradValueError):
        F.pixel_shuffle(np.ones((4, 2)), 2)


# ---------------------------------------------------------------- losses

RED = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", RED)
@pytest.mark.parametrize("margin", [0.0, 0.3])
def test_cosine_embedding_loss_matches_torch(reduction, margin):
    rng = _rng(9)
    a, b = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    t = np.array([1, -1, 1, -1, -1])
    compare(lambda a, b: F.cosine_embedding_loss(a, b, t, margin, reduction=reduction),
            lambda a, b: TF.cosine_embedding_loss(a, b, torch.tensor(t), margin,
                                                  reduction=reduction),
            (a, b), diff=(0, 1))
    # unbatched
    compare(lambda a, b: F.cosine_embedding_loss(a, b, np.array(-1), margin),
            lambda a, b: TF.cosine_embedding_loss(a, b, torch.tensor(-1), margin),
            (a[0], b[0]), diff=(0, 1))


@pytest.mark.parametrize("reduction", RED)
def test_margin_ranking_loss_matches_torch(reduction):
    rng = _rng(10)
    a, b = rng.normal(size=6), rng.normal(size=6)
    t = np.array([1.0, -1.0, 1.0, 1.0, -1.0, -1.0])
    compare(lambda a, b: F.margin_ranking_loss(a, b, t, 0.2, reduction=reduction),
            lambda a, b: TF.margin_ranking_loss(a, b, torch.tensor(t), 0.2,
                                                reduction=reduction), (a, b), diff=(0, 1))


@pytest.mark.parametrize("reduction", RED)
def test_hinge_embedding_loss_matches_torch(reduction):
    x = _rng(11).normal(size=(3, 4))
    t = np.where(_rng(12).random((3, 4)) > 0.5, 1.0, -1.0)
    compare(lambda x: F.hinge_embedding_loss(x, t, 0.7, reduction=reduction),
            lambda x: TF.hinge_embedding_loss(x, torch.tensor(t), 0.7, reduction=reduction),
            (x,))


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", RED)
def test_multi_margin_loss_matches_torch(p, weighted, reduction):
    rng = _rng(13)
    x = rng.normal(size=(5, 4))
    t = np.array([0, 3, 1, 1, 2])
    w = rng.uniform(0.5, 2.0, size=4) if weighted else None
    compare(lambda x: F.multi_margin_loss(x, t, p, 0.8, w, reduction=reduction),
            lambda x: TF.multi_margin_loss(x, torch.tensor(t), p, 0.8,
                                           None if w is None else torch.tensor(w),
                                           reduction=reduction), (x,))
    compare(lambda x: F.multi_margin_loss(x, np.array(2), p),
            lambda x: TF.multi_margin_loss(x, torch.tensor(2), p), (x[0],))


def test_multi_margin_loss_errors():
    with pytest.raises(FuncgradValueError, match="p == 1"):
        F.multi_margin_loss(np.ones((2, 3)), np.array([0, 1]), p=3)
    with pytest.raises(FuncgradValueError, match="class indices"):
        F.multi_margin_loss(np.ones((2, 3)), np.array([0, 3]))


@pytest.mark.parametrize("reduction", RED)
def test_multilabel_margin_loss_matches_torch(reduction):
    x = _rng(14).normal(size=(4, 5))
    t = np.array([[3, 0, -1, 1, 2], [1, 2, 4, 0, 3], [-1, 1, 2, 3, 4], [4, 4, -1, -1, -1]])
    compare(lambda x: F.multilabel_margin_loss(x, t, reduction=reduction),
            lambda x: TF.multilabel_margin_loss(x, torch.tensor(t), reduction=reduction),
            (x,))
    compare(lambda x: F.multilabel_margin_loss(x, t[0]),
            lambda x: TF.multilabel_margin_loss(x, torch.tensor(t[0])), (x[0],))


def test_multilabel_margin_loss_errors():
    with pytest.raises(FuncgradValueError):
        F.multilabel_margin_loss(np.ones((2, 3)), np.array([0, 1]))
    with pytest.raises(FuncgradValueError, match=r"\[-1, 3\)"):
        F.multilabel_margin_loss(np.ones((1, 3)), np.array([[0, 3, -1]]))


@pytest.mark.parametrize("p, swap", [(2, False), (2, True), (1, False), (3, True),
                                     (float("inf"), False)])
@pytest.mark.parametrize("reduction", RED)
def test_triplet_margin_loss_matches_torch(p, swap, reduction):
    rng = _rng(15)
    a, pos, neg = (rng.normal(size=(6, 3)) for _ in range(3))
    compare(lambda a, pos, neg: F.triplet_margin_loss(a, pos, neg, 0.5, p, swap=swap,
                                                      reduction=reduction),
            lambda a, pos, neg: TF.triplet_margin_loss(a, pos, neg, 0.5, p, swap=swap,
                                                       reduction=reduction),
            (a, pos, neg), diff=(0, 1, 2))


@pytest.mark.parametrize("log_input, full", [(True, False), (False, False), (True, True),
                                             (False, True)])
@pytest.mark.parametrize("reduction", RED)
def test_poisson_nll_loss_matches_torch(log_input, full, reduction):
    rng = _rng(16)
    x = rng.normal(size=(4, 3)) if log_input else rng.uniform(0.1, 3.0, size=(4, 3))
    t = rng.poisson(2.0, size=(4, 3)).astype(np.float64)
    compare(lambda x, t: F.poisson_nll_loss(x, t, log_input, full, reduction=reduction),
            lambda x, t: TF.poisson_nll_loss(x, t, log_input, full, reduction=reduction),
            (x, t), diff=(0, 1) if not full else (0,))
    if full:
        # PyTorch's target gradient is NaN where target <= 1 (it differentiates the
        # masked-out Stirling term); ours is that of the formula
        t2 = t + 1.5
        check_grads(lambda t: F.poisson_nll_loss(x, t, log_input, full, reduction=reduction),
                    (t2,), order=2)
        g = funcgrad.grad(lambda t: fnp.sum(F.poisson_nll_loss(x, t, log_input, full)))(
            np.array([0.0, 1.0, 0.5] * 4).reshape(4, 3))
        assert np.all(np.isfinite(g))


@pytest.mark.parametrize("vshape", [(4, 3), (4,), (4, 1), (1, 3)])
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("reduction", RED)
def test_gaussian_nll_loss_matches_torch(vshape, full, reduction):
    rng = _rng(17)
    x, t = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    v = rng.uniform(0.0, 2.0, size=vshape)
    v.flat[0] = 1e-9            # below eps: clamped in value, not in derivative
    compare(lambda x, t, v: F.gaussian_nll_loss(x, t, v, full, reduction=reduction),
            lambda x, t, v: TF.gaussian_nll_loss(x, t, v, full, reduction=reduction),
            (x, t, v), diff=(0, 1, 2), tol=1e-9)


def test_gaussian_nll_loss_errors():
    x = np.ones((4, 3))
    with pytest.raises(FuncgradValueError, match="negative"):
        F.gaussian_nll_loss(x, x, -np.ones((4, 3)))
    with pytest.raises(FuncgradValueError, match="does not fit"):
        F.gaussian_nll_loss(x, x, np.ones((2, 3)))


@pytest.mark.filterwarnings("ignore:size_average and reduce")
def test_legacy_size_average_and_reduce():
    rng = _rng(18)
    a, b = rng.normal(size=5), rng.normal(size=5)
    t = np.ones(5)
    for sa, rd in [(None, False), (False, None), (True, True), (False, False)]:
        ours = F.margin_ranking_loss(a, b, t, 0.5, sa, rd)
        theirs = TF.margin_ranking_loss(torch.tensor(a), torch.tensor(b), torch.tensor(t), 0.5,
                                        sa, rd)
        np.testing.assert_allclose(ours, theirs.numpy())


def test_losses_reject_bad_reduction():
    with pytest.raises(FuncgradValueError, match="reduction"):
        F.hinge_embedding_loss(np.ones(3), np.ones(3), reduction="avg")


@pytest.mark.parametrize("fn, args", [
    (F.cosine_embedding_loss, (np.ones((2, 3), np.float32), np.ones((2, 3), np.float32),
                               np.array([1, -1]))),
    (F.triplet_margin_loss, (np.ones((2, 3), np.float32), np.zeros((2, 3), np.float32),
                             np.ones((2, 3), np.float32))),
    (F.poisson_nll_loss, (np.ones(3, np.float32), np.ones(3, np.float32))),
    (F.multi_margin_loss, (np.ones((2, 3), np.float32), np.array([0, 1]))),
    (F.multilabel_margin_loss, (np.ones((2, 3), np.float32), np.array([[0, -1, 1], [2, 1, -1]]))),
    (F.gaussian_nll_loss, (np.ones(3, np.float32), np.zeros(3, np.float32),
                           np.ones(3, np.float32))),
])
def test_losses_keep_float32(fn, args):
    assert fn(*args).dtype == np.float32


def test_new_names_are_exported():
    for name in ["hardtanh", "selu", "celu", "glu", "softmin", "softsign", "tanhshrink",
                 "threshold", "normalize", "local_response_norm", "pixel_shuffle",
                 "pixel_unshuffle", "cosine_embedding_loss", "margin_ranking_loss",
                 "hinge_embedding_loss", "multi_margin_loss", "multilabel_margin_loss",
                 "triplet_margin_loss", "poisson_nll_loss", "gaussian_nll_loss",
                 "instance_norm"]:
        assert name in F.__all__ and callable(getattr(F, name))
