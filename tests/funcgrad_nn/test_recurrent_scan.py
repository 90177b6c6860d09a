"""The recurrent layers run their time loop through lax.scan: under jit the graph holds
one scan per layer and direction, whatever the sequence length, with the eager values."""
import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp
import funcgrad.random as fr
import funcgrad_nn as nn


@pytest.mark.parametrize("make", [
    lambda: nn.LSTM(3, 4, num_layers=2, bidirectional=True),
    lambda: nn.GRU(3, 4, batch_first=True),
    lambda: nn.RNN(3, 4, nonlinearity="relu"),
], ids=["LSTM", "GRU", "RNN"])
def test_recurrent_layers_scan_under_jit(make):
    layer = make()
    params = layer.init(fr.key(0))
    rng = np.random.default_rng(0)

    def loss(p, x):
        out = layer(p, x)
        return fnp.sum(out[0] ** 2)

    counts = []
    for L in (3, 40):
        x = rng.normal(size=(L, 2, 3)).astype(np.float32)
        graph = funcgrad.make_graph(loss)(params, x)
        names = [e.prim.name for e in graph.eqns]
        assert "scan" in names
        counts.append(len(names))
        np.testing.assert_allclose(funcgrad.jit(loss)(params, x), loss(params, x), rtol=1e-5)
        g_eager = funcgrad.grad(loss)(params, x)
        jg = funcgrad.jit(funcgrad.grad(loss))
        for _ in range(3):      # (from the third call the scans run split: same values)
            g_jit = jg(params, x)
            for k in g_eager:
                assert g_jit[k].dtype == np.float32
                np.testing.assert_allclose(g_jit[k], g_eager[k], rtol=2e-4, atol=1e-5)
    assert counts[0] == counts[1]
