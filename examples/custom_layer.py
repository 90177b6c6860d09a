"""The lecture's custom layer, trained with Adam: MyLayer computes
y = sqrt(x**2 + bias) @ weight, with weight of shape (in, out) and bias of shape (in,).

The model is a plain function of a params dict, the optimizer a pair of pure functions
from funcgrad_nn.optim; nothing holds state but the variables of the loop.

    python examples/custom_layer.py
"""
import numpy as np

import funcgrad
import funcgrad.numpy as fnp
from funcgrad_nn import optim

IN_FEATURES, OUT_FEATURES, N_SAMPLES = 5, 3, 10


def init_params(seed=0, in_features=IN_FEATURES, out_features=OUT_FEATURES):
    """MyNet's parameters: one MyLayer(in_features, out_features), in float32 as torch's
    default. The bias starts positive so that x**2 + bias > 0 (sqrt stays real)."""
    rng = np.random.default_rng(seed)
    return {"mylayer": {
        "weight": rng.standard_normal((in_features, out_features)).astype(np.float32),
        "bias": rng.uniform(0.5, 1.5, in_features).astype(np.float32),
    }}


def my_layer(layer_params, x):
    """MyLayer.forward: sqrt(x**2 + bias) @ weight."""
    return fnp.sqrt(x ** 2 + layer_params["bias"]) @ layer_params["weight"]


def forward(params, x):
    """MyNet.forward: a single MyLayer."""
    return my_layer(params["mylayer"], x)


def mse_sum(pred, target):
    """torch.nn.MSELoss(reduction='sum')."""
    return fnp.sum((pred - target) ** 2)


def make_data(seed=1, n=N_SAMPLES):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, IN_FEATURES)).astype(np.float32)
    y = rng.standard_normal((n, OUT_FEATURES)).astype(np.float32)
    return x, y


def main(epochs=10, learning_rate=1e-4, seed=0):
    """Train for ``epochs`` full-batch steps; print and return the loss of each epoch."""
    params = init_params(seed)
    x, y = make_data(seed + 1)
    tx = optim.adam(learning_rate)
    opt_state = tx.init(params)
    loss_and_grads = funcgrad.value_and_grad(lambda p: mse_sum(forward(p, x), y))
    losses = []
    for epoch in range(epochs):
        loss, grads = loss_and_grads(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optim.apply_updates(params, updates)
        losses.append(float(loss))
        print(f"epoch {epoch:2d}  loss {float(loss):.6f}")
    return losses


if __name__ == "__main__":
    main()
