"""The functional names added for PyTorch parity under every transformation: jit gives
the eager values, vmap the per-example values, and check_grads passes at order 2 (no
torch needed)."""
import numpy as np
import pytest

import funcgrad
import funcgrad_nn.functional as F
from funcgrad.test_util import check_grads

_rng = np.random.default_rng(0)
A, B, C = _rng.normal(size=(3, 4, 3))
X4 = _rng.normal(size=(2, 4, 3, 3))
T_PM = np.array([1, -1, 1, -1])
CLS = np.array([0, 2, 1, 1])
ML = np.array([[0, 2, -1], [1, -1, 0], [2, 1, 0], [-1, 0, 0]])

CASES = [
    ("cosine_embedding_loss", lambda a, b: F.cosine_embedding_loss(a, b, T_PM, 0.1), (A, B)),
    ("margin_ranking_loss", lambda a, b: F.margin_ranking_loss(a, b, np.sign(C), 0.3), (A, B)),
    ("hinge_embedding_loss", lambda a: F.hinge_embedding_loss(a, np.sign(B)), (A,)),
    ("multi_margin_loss", lambda a: F.multi_margin_loss(a, CLS, 2, weight=np.ones(3)), (A,)),
    ("multilabel_margin_loss", lambda a: F.multilabel_margin_loss(a, ML), (A,)),
    ("triplet_margin_loss", lambda a, b, c: F.triplet_margin_loss(a, b, c, swap=True),
     (A, B, C)),
    ("poisson_nll_loss", lambda a: F.poisson_nll_loss(a, np.abs(B) * 3, full=True), (A,)),
    ("gaussian_nll_loss", lambda a, b: F.gaussian_nll_loss(a, b, np.full(4, 0.5)), (A, B)),
    ("local_response_norm", lambda x: F.local_response_norm(x, 3), (X4,)),
    ("instance_norm", lambda x: F.instance_norm(x)[0], (X4,)),
    ("pixel_shuffle", lambda x: F.pixel_shuffle(x, 2), (X4,)),
    ("pixel_unshuffle", lambda x: F.pixel_unshuffle(x[..., :2, :2], 2), (X4,)),
    ("normalize", lambda x: F.normalize(x, 3.0), (X4,)),
    ("glu", lambda x: F.glu(x, 1), (X4,)),
    ("selu", F.selu, (X4,)),
    ("celu", lambda x: F.celu(x, 0.5), (X4,)),
    ("softmin", lambda x: F.softmin(x, 1), (X4,)),
    ("softsign", F.softsign, (X4,)),
    ("tanhshrink", F.tanhshrink, (X4,)),
    ("hardtanh", lambda x: F.hardtanh(x, -0.5, 0.5), (X4,)),
    ("threshold", lambda x: F.threshold(x, 0.1, 2.0), (X4,)),
]


@pytest.mark.parametrize("name, f, args", CASES, ids=[c[0] for c in CASES])
def test_jit_vmap_and_second_order(name, f, args):
    y = f(*args)
    np.testing.assert_allclose(funcgrad.jit(f)(*args), y, atol=1e-12)
    v = funcgrad.vmap(f)(*[np.stack([z, z]) for z in args])
    np.testing.assert_allclose(v[0], y, atol=1e-12)
    np.testing.assert_allclose(v[1], y, atol=1e-12)
    check_grads(f, args, order=2)
