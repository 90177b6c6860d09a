"""The lecture's automatic-differentiation examples, run with funcgrad.

    python examples/quickstart.py
"""
import numpy as np

import funcgrad
import funcgrad.numpy as fnp


def lecture_function(x1, x2):
    """f(x1, x2) = ln(x1) + x1*x2 - sin(x2)."""
    return fnp.log(x1) + x1 * x2 - fnp.sin(x2)


def main():
    # Forward evaluation trace and forward derivative trace at (2, 5) with x1' = 1, x2' = 0.
    y, dy = funcgrad.jvp(lecture_function, (2.0, 5.0), (1.0, 0.0))
    print(f"forward mode:  f(2, 5) = {float(y):.3f}, df/dx1 = {float(dy):.3f}")

    # Reverse mode gives both partial derivatives in one backward pass.
    g1, g2 = funcgrad.grad(lecture_function, argnums=(0, 1))(2.0, 5.0)
    print(f"reverse mode:  df/dx1 = {float(g1):.3f}, df/dx2 = {float(g2):.3f}")

    # The dynamic graph: Python control flow and print work under grad.
    def f(x):
        for _ in range(3):
            if fnp.sum(x) > 0:
                x = fnp.sin(x) * 2.0
            else:
                x = x ** 2
        print("  (inside grad) x =", x)
        return fnp.sum(x)

    print("grad with control flow:", funcgrad.grad(f)(np.array([0.5, -0.25])))

    # grad of mean(x + temp + 2) with respect to temp is 0.25 everywhere (2x2 input).
    temp = np.ones((2, 2))
    x = np.zeros((2, 2))
    print("grad of mean(x + temp + 2):\n", funcgrad.grad(lambda t: fnp.mean(x + t + 2))(temp))

    # The RNN cell: next_h = tanh(W_h @ prev_h.T + W_x @ x.T), loss = next_h.sum().
    rng = np.random.default_rng(0)
    W_h, W_x = rng.normal(size=(20, 20)), rng.normal(size=(20, 10))
    prev_h, xi = rng.normal(size=(1, 20)), rng.normal(size=(1, 10))

    def rnn_loss(W_h, W_x):
        next_h = fnp.tanh(W_h @ prev_h.T + W_x @ xi.T)
        return next_h.sum()

    gW_h, gW_x = funcgrad.grad(rnn_loss, argnums=(0, 1))(W_h, W_x)
    print("RNN cell gradient shapes:", gW_h.shape, gW_x.shape)

    # Derivatives of any order: d^4/dx^4 sin(x) = sin(x).
    d4 = funcgrad.grad(funcgrad.grad(funcgrad.grad(funcgrad.grad(fnp.sin))))
    print(f"4th derivative of sin at 1.0: {float(d4(1.0)):.6f} (sin(1) = {np.sin(1.0):.6f})")

    # Hessian-vector product by forward-over-reverse.
    def loss(w):
        return fnp.sum(fnp.tanh(w) ** 2)

    w, v = rng.normal(size=5), rng.normal(size=5)
    hvp = funcgrad.jvp(funcgrad.grad(loss), (w,), (v,))[1]
    print("Hessian-vector product:", np.round(hvp, 4))
    assert np.allclose(hvp, funcgrad.hessian(loss)(w) @ v)


if __name__ == "__main__":
    main()
