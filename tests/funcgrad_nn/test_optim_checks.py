"""Optimizers check the gradients' structure and shapes against the parameters (naming
the key path), and optim.tree_get / optim.tree_set read and change hyperparameters by
name anywhere in an optimizer state."""
import re

import numpy as np
import pytest

import funcgrad
from funcgrad.tree_util import keystr
from funcgrad_nn import optim


def params():
    return {"layer": {"weight": np.ones((2, 2)), "bias": np.zeros(2)}}


ALL = [lambda: optim.sgd(0.1), lambda: optim.sgd(0.1, momentum=0.9),
       lambda: optim.adam(0.1), lambda: optim.adamw(0.1), lambda: optim.rmsprop(0.1),
       lambda: optim.adagrad(0.1), lambda: optim.adadelta(0.1), lambda: optim.lion(0.1),
       lambda: optim.lamb(0.1), lambda: optim.amsgrad(0.1), lambda: optim.adamax(0.1),
       lambda: optim.MultiSteps(optim.adam(0.1), 2)]


def step(tx, grads):
    p = params()
    updates, _ = tx.update(grads, tx.init(p), p)
    return optim.apply_updates(p, updates)


@pytest.mark.parametrize("make", ALL)
@pytest.mark.parametrize("bad", [(1, 2, 2), (3, 2)])
def test_wrong_gradient_shape_names_the_key_path(make, bad):
    g = params()
    g["layer"]["weight"] = np.ones(bad)
    with pytest.raises(ValueError, match=r"shape mismatch at key path \['layer'\]\['weight'\]: "
                                         + re.escape(f"updates {tuple(bad)!r}")):
        step(make(), g)


@pytest.mark.parametrize("make", ALL)
def test_wrong_gradient_structure(make):
    g = {"layer": {"weight": np.ones((2, 2))}}
    with pytest.raises(ValueError, match="structure"):
        step(make(), g)


def test_parameter_groups_check_too():
    labels = {"layer": {"weight": "slow", "bias": "fast"}}
    tx = optim.multi_transform({"slow": optim.sgd(0.1), "fast": optim.adam(0.1)}, labels)
    with pytest.raises(ValueError, match=r"updates do not match the mask"):
        step(tx, {"layer": {"weight": np.ones((2, 2))}})
    g = params()
    g["layer"]["bias"] = np.ones((1, 2))
    with pytest.raises(ValueError, match=r"scale_by_adam: shape mismatch.*\['bias'\]"):
        step(tx, g)
    g = params()
    g["layer"]["weight"] = np.ones((1, 2, 2))
    with pytest.raises(ValueError, match=r"apply_updates: shape mismatch.*\['weight'\]"):
        step(tx, g)


def test_apply_updates_checks_shapes_and_structure():
    p = params()
    u = {"layer": {"weight": np.ones((1, 2, 2)), "bias": np.zeros(2)}}
    with pytest.raises(ValueError, match=r"apply_updates.*\['layer'\]\['weight'\]"):
        optim.apply_updates(p, u)
    with pytest.raises(ValueError, match="apply_updates.*structure"):
        optim.apply_updates(p, {"layer": {"weight": np.ones((2, 2))}})
    with pytest.raises(ValueError, match="apply_updates.*structure"):
        optim.apply_updates(p, [p["layer"]["weight"], p["layer"]["bias"]])


def test_checks_pass_for_correct_trees_and_under_jit():
    p = params()
    tx = optim.adamw(0.1)
    state = tx.init(p)

    @funcgrad.jit
    def train_step(p, state, g):
        u, state = tx.update(g, state, p)
        return optim.apply_updates(p, u), state

    new_p, state = train_step(p, state, params())
    assert new_p["layer"]["weight"].shape == (2, 2)
    bad = params()
    bad["layer"]["bias"] = np.zeros((1, 2))
    with pytest.raises(ValueError, match=r"\['layer'\]\['bias'\]"):
        train_step(p, state, bad)


def test_scalar_parameters_and_none_leaves_pass():
    p = {"s": np.float64(1.0), "n": None, "w": np.ones(3, np.float32)}
    g = {"s": np.float64(0.5), "n": None, "w": np.ones(3, np.float32)}
    tx = optim.adam(0.1)
    u, _ = tx.update(g, tx.init(p), p)
    out = optim.apply_updates(p, u)
    assert out["n"] is None and out["w"].dtype == np.float32


# ---- tree_get / tree_set ---------------------------------------------------------------
def grouped():
    labels = {"layer": {"weight": "slow", "bias": "fast"}}
    return optim.multi_transform(
        {"slow": optim.inject_hyperparams(optim.sgd)(learning_rate=0.01),
         "fast": optim.inject_hyperparams(optim.adam)(learning_rate=0.1)}, labels)


def test_tree_get_reads_a_hyperparameter_by_name():
    tx = optim.inject_hyperparams(optim.adam)(learning_rate=0.1)
    state = tx.init(params())
    assert float(optim.tree_get(state, "learning_rate")) == pytest.approx(0.1)
    assert optim.tree_get(state, "no_such_name") is None
    assert optim.tree_get(state, "no_such_name", default=3) == 3


def test_tree_get_ambiguous_needs_a_filter():
    state = grouped().init(params())
    with pytest.raises(KeyError, match="learning_rate"):
        optim.tree_get(state, "learning_rate")
    lr = optim.tree_get(state, "learning_rate",
                        filtering=lambda path, value: "fast" in keystr(path))
    assert float(lr) == pytest.approx(0.1)


def test_tree_set_changes_one_param_groups_learning_rate():
    tx = grouped()
    p = params()
    state = tx.init(p)
    state = optim.tree_set(state, lambda path, v: "'slow'" in keystr(path),
                           learning_rate=0.0)
    g = {"layer": {"weight": np.ones((2, 2)), "bias": np.ones(2)}}
    u, state = tx.update(g, state, p)
    np.testing.assert_array_equal(u["layer"]["weight"], 0.0)
    assert np.all(u["layer"]["bias"] < 0)
    # the value keeps its dtype and kind (a 0-d array), so a jitted step is not retraced
    lr = optim.tree_get(state, "learning_rate",
                        filtering=lambda path, v: "'slow'" in keystr(path))
    assert isinstance(lr, np.ndarray) and lr.shape == () and float(lr) == 0.0


def test_tree_set_all_matches_and_unknown_names():
    tx = grouped()
    state = optim.tree_set(tx.init(params()), learning_rate=0.5)
    fast = optim.tree_get(state, "learning_rate", filtering=lambda p, v: "fast" in
                          keystr(p))
    slow = optim.tree_get(state, "learning_rate", filtering=lambda p, v: "slow" in
                          keystr(p))
    assert float(fast) == float(slow) == 0.5
    with pytest.raises(KeyError, match="lerning_rate"):
        optim.tree_set(state, lerning_rate=0.5)


def test_tree_set_does_not_mutate():
    tx = optim.inject_hyperparams(optim.sgd)(learning_rate=0.1)
    state = tx.init(params())
    new = optim.tree_set(state, learning_rate=0.2)
    assert float(state.hyperparams["learning_rate"]) == pytest.approx(0.1)
    assert float(new.hyperparams["learning_rate"]) == pytest.approx(0.2)


def test_pytorch_recipe_runs():
    """docs/pytorch-optimizers.md's code blocks run, in order, in one namespace."""
    import pathlib
    import re
    text = (pathlib.Path(__file__).resolve().parents[2] / "docs" /
            "pytorch-optimizers.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 5
    namespace = {}
    for block in blocks:
        exec(compile(block, "docs/pytorch-optimizers.md", "exec"), namespace)
