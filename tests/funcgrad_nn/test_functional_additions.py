"""PyTorch's behaviour on empty batches, and keywords of its signatures we accept."""
import numpy as np
import pytest

import funcgrad
import funcgrad_nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def test_group_norm_empty_batch():
    x = np.zeros((0, 4, 3))
    y = F.group_norm(x, 2, weight=np.ones(4), bias=np.zeros(4))
    assert y.shape == tuple(TF.group_norm(torch.zeros(0, 4, 3), 2).shape) == (0, 4, 3)
    assert funcgrad.grad(lambda v: F.group_norm(v, 2).sum())(x).shape == (0, 4, 3)


@pytest.mark.parametrize("pool", ["avg_pool1d", "max_pool1d"])
def test_pool1d_empty_batch(pool):
    y = getattr(F, pool)(np.zeros((0, 2, 6)), 2)
    assert y.shape == tuple(getattr(TF, pool)(torch.zeros(0, 2, 6), 2).shape) == (0, 2, 3)


def test_avg_pool2d_empty_batch():
    y = F.avg_pool2d(np.zeros((0, 1, 4, 4)), 2)
    assert y.shape == tuple(TF.avg_pool2d(torch.zeros(0, 1, 4, 4), 2).shape)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_empty_1d(training):
    rm, rv = np.zeros(0), np.ones(0)
    y, m, v = F.batch_norm(np.zeros((0,)), rm, rv, training=training)
    assert y.shape == tuple(TF.batch_norm(torch.zeros(0), torch.zeros(0), torch.ones(0),
                                          training=training).shape) == (0,)
    assert m is rm and v is rv


def test_batch_norm_empty_batch_training_keeps_running_stats():
    rm, rv = np.zeros(3), np.ones(3)
    y, m, v = F.batch_norm(np.zeros((0, 3)), rm, rv, training=True)
    assert y.shape == (0, 3)
    np.testing.assert_array_equal(m, rm)
    np.testing.assert_array_equal(v, rv)


def test_batch_norm_1d_nonempty_still_raises():
    with pytest.raises(ValueError):
        F.batch_norm(np.zeros((3,)), np.zeros(3), np.ones(3), training=True)


@pytest.mark.parametrize("sparse", [False, True])
def test_embedding_accepts_sparse(sparse):
    w = np.arange(6.0).reshape(3, 2)
    idx = np.array([0, 2, 2])
    got = F.embedding(idx, w, sparse=sparse)
    want = TF.embedding(torch.tensor(idx), torch.tensor(w), sparse=sparse)
    np.testing.assert_array_equal(got, want.numpy())
    g = funcgrad.grad(lambda w: F.embedding(idx, w, sparse=sparse).sum())(w)
    np.testing.assert_array_equal(g, [[1, 1], [0, 0], [2, 2]])


def test_embedding_scale_grad_by_freq_raises():
    with pytest.raises(ValueError, match="scale_grad_by_freq"):
        F.embedding(np.array([0]), np.ones((2, 2)), scale_grad_by_freq=True)
