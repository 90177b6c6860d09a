"""Tests for funcgrad_nn.optim: each transformation against its formula, optimizers
against torch.optim step for step, composition, hyperparameter injection, schedules,
dtype preservation and use inside funcgrad.grad."""
import importlib.util
import math
import pathlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import funcgrad
import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradValueError
from funcgrad.tree_util import keystr, tree_leaves, tree_map, tree_map_with_path
from funcgrad_nn import optim

ROOT = pathlib.Path(__file__).resolve().parents[2]


# ---- the lecture's model: MyLayer(5, 3), y = sqrt(x**2 + bias) @ weight ---------------
def make_problem(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    params = {"weight": rng.standard_normal((5, 3)).astype(dtype),
              "bias": rng.uniform(1.0, 2.0, 5).astype(dtype)}
    x = rng.standard_normal((10, 5)).astype(dtype)
    y = rng.standard_normal((10, 3)).astype(dtype)
    return params, x, y


def loss_fn(params, x, y):
    pred = fnp.sqrt(x ** 2 + params["bias"]) @ params["weight"]
    return fnp.sum((pred - y) ** 2)


def fg_trajectory(tx, steps, params, x, y):
    vg = funcgrad.value_and_grad(loss_fn)
    state = tx.init(params)
    losses, traj = [], []
    for _ in range(steps):
        loss, grads = vg(params, x, y)
        updates, state = tx.update(grads, state, params)
        params = optim.apply_updates(params, updates)
        losses.append(float(loss))
        traj.append(np.concatenate([params["weight"].ravel(), params["bias"]]))
    return np.array(losses), np.array(traj)


def torch_trajectory(make_opt, steps, params, x, y):
    torch = pytest.importorskip("torch")
    w = torch.tensor(params["weight"], dtype=torch.float64, requires_grad=True)
    b = torch.tensor(params["bias"], dtype=torch.float64, requires_grad=True)
    xt, yt = torch.tensor(x), torch.tensor(y)
    opt = make_opt(w, b)
    mse = torch.nn.MSELoss(reduction="sum")
    losses, traj = [], []
    for _ in range(steps):
        opt.zero_grad()
        loss = mse(torch.sqrt(xt ** 2 + b) @ w, yt)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        traj.append(np.concatenate([w.detach().numpy().ravel(), b.detach().numpy()]))
    return np.array(losses), np.array(traj)


def _t(name, **kw):
    def make(w, b):
        import torch
        return getattr(torch.optim, name)([w, b], **kw)
    return make


TORCH_CASES = {
    "sgd": (lambda: optim.sgd(1e-3), _t("SGD", lr=1e-3)),
    "sgd_momentum": (lambda: optim.sgd(1e-3, momentum=0.9),
                     _t("SGD", lr=1e-3, momentum=0.9)),
    "sgd_nesterov": (lambda: optim.sgd(1e-3, momentum=0.9, nesterov=True),
                     _t("SGD", lr=1e-3, momentum=0.9, nesterov=True)),
    "adam": (lambda: optim.adam(0.01), _t("Adam", lr=0.01)),
    "adam_betas": (lambda: optim.adam(0.02, b1=0.8, b2=0.99, eps=1e-6),
                   _t("Adam", lr=0.02, betas=(0.8, 0.99), eps=1e-6)),
    "adamw": (lambda: optim.adamw(0.01, weight_decay=0.1),
              _t("AdamW", lr=0.01, weight_decay=0.1)),
    "rmsprop": (lambda: optim.rmsprop(1e-3, decay=0.99, eps_in_sqrt=False),
                _t("RMSprop", lr=1e-3)),
    "rmsprop_centered_momentum": (
        lambda: optim.rmsprop(1e-3, decay=0.99, eps_in_sqrt=False, centered=True,
                              momentum=0.9),
        _t("RMSprop", lr=1e-3, centered=True, momentum=0.9)),
    "adagrad": (lambda: optim.adagrad(0.05, initial_accumulator_value=0.0, eps=0.0),
                _t("Adagrad", lr=0.05, eps=0.0)),
    "adadelta": (lambda: optim.adadelta(1.0, weight_decay=0.01),
                 _t("Adadelta", lr=1.0, weight_decay=0.01)),
    "adamax": (lambda: optim.adamax(0.01), _t("Adamax", lr=0.01)),
}


@pytest.mark.parametrize("name", sorted(TORCH_CASES))
def test_matches_torch_trajectory(name):
    pytest.importorskip("torch")
    make_fg, make_torch = TORCH_CASES[name]
    params, x, y = make_problem()
    steps = 40
    l_fg, p_fg = fg_trajectory(make_fg(), steps, params, x, y)
    l_t, p_t = torch_trajectory(make_torch, steps, params, x, y)
    assert np.isfinite(p_t).all() and l_t[-1] < l_t[0]  # a trajectory that moves
    np.testing.assert_allclose(l_fg, l_t, rtol=1e-9, atol=0)
    np.testing.assert_allclose(p_fg, p_t, rtol=1e-9, atol=1e-12)


def test_param_groups_match_torch():
    """The lecture's two parameter groups: weight at lr 1e-5, bias at lr 0.05."""
    pytest.importorskip("torch")
    import torch
    params, x, y = make_problem()
    tx = optim.multi_transform({"slow": optim.adam(1e-5), "fast": optim.adam(0.05)},
                               {"weight": "slow", "bias": "fast"})

    def make(w, b):
        return torch.optim.Adam([{"params": [w], "lr": 1e-5}, {"params": [b], "lr": 0.05}])
    l_fg, p_fg = fg_trajectory(tx, 20, params, x, y)
    l_t, p_t = torch_trajectory(make, 20, params, x, y)
    assert np.isfinite(p_t).all() and l_t[-1] < l_t[0]
    np.testing.assert_allclose(l_fg, l_t, rtol=1e-9)
    np.testing.assert_allclose(p_fg, p_t, rtol=1e-9, atol=1e-12)
    # the weight barely moves, the bias moves a lot
    w_move = np.abs(p_fg[-1, :15] - params["weight"].ravel()).max()
    b_move = np.abs(p_fg[-1, 15:] - params["bias"]).max()
    assert w_move < 20 * 1e-5 * 1.01 and b_move > 100 * w_move


# ---- each transformation against its formula ---------------------------------------
def grads_seq(n=6, shape=(4,), seed=3):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for _ in range(n)]


def run_tx(tx, gs, params=None):
    state = tx.init(np.zeros_like(gs[0]) if params is None else params)
    out = []
    for g in gs:
        u, state = tx.update(g, state, params)
        out.append(u)
    return out, state


def check(tx, reference, params=None, gs=None):
    gs = grads_seq() if gs is None else gs
    got, _ = run_tx(tx, gs, params)
    want = reference(gs)
    for t, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15, err_msg=f"step {t + 1}")


def ref_adam(gs, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, nesterov=False):
    m = v = 0.0
    out = []
    for t, g in enumerate(gs, 1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        if nesterov:
            mh = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1 ** t)
        else:
            mh = m / (1 - b1 ** t)
        out.append(mh / (np.sqrt(v / (1 - b2 ** t) + eps_root) + eps))
    return out


def ref_amsgrad(gs, b1=0.9, b2=0.999, eps=1e-8):
    m = v = vmax = 0.0
    out = []
    for t, g in enumerate(gs, 1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = np.maximum(vmax, v / (1 - b2 ** t))
        out.append(m / (1 - b1 ** t) / (np.sqrt(vmax) + eps))
    return out


def ref_adamax(gs, b1=0.9, b2=0.999, eps=1e-8):
    m = u = 0.0
    out = []
    for t, g in enumerate(gs, 1):
        m = b1 * m + (1 - b1) * g
        u = np.maximum(b2 * u, np.abs(g) + eps)
        out.append(m / (1 - b1 ** t) / u)
    return out


def ref_rms(gs, decay, eps, eps_in_sqrt, initial=0.0, bias_correction=False,
            centered=False):
    v = initial
    m = 0.0
    out = []
    for t, g in enumerate(gs, 1):
        v = decay * v + (1 - decay) * g * g
        m = decay * m + (1 - decay) * g
        vh, mh = v, m
        if bias_correction:
            vh, mh = v / (1 - decay ** t), m / (1 - decay ** t)
        var = vh - mh * mh if centered else vh
        out.append(g / (np.sqrt(var + eps) if eps_in_sqrt else np.sqrt(var) + eps))
    return out


def ref_rss(gs, initial, eps):
    s = initial
    out = []
    for g in gs:
        s = s + g * g
        out.append(g / np.sqrt(s + eps))
    return out


def ref_adadelta(gs, rho=0.9, eps=1e-6):
    eg = ex = 0.0
    out = []
    for g in gs:
        eg = rho * eg + (1 - rho) * g * g
        d = np.sqrt(ex + eps) / np.sqrt(eg + eps) * g
        ex = rho * ex + (1 - rho) * d * d
        out.append(d)
    return out


def ref_lion(gs, b1=0.9, b2=0.99):
    m = 0.0
    out = []
    for g in gs:
        out.append(np.sign((1 - b1) * g + b1 * m))
        m = b2 * m + (1 - b2) * g
    return out


def ref_trace(gs, decay, nesterov):
    tr = 0.0
    out = []
    for g in gs:
        tr = g + decay * tr
        out.append(g + decay * tr if nesterov else tr)
    return out


def ref_ema(gs, decay, debias):
    e = 0.0
    out = []
    for t, g in enumerate(gs, 1):
        e = decay * e + (1 - decay) * g
        out.append(e / (1 - decay ** t) if debias else e)
    return out


FORMULAS = {
    "scale_by_adam": (optim.scale_by_adam(), ref_adam),
    "scale_by_adam_args": (optim.scale_by_adam(0.8, 0.95, 1e-3, 1e-4),
                           lambda gs: ref_adam(gs, 0.8, 0.95, 1e-3, 1e-4)),
    "scale_by_adam_nesterov": (optim.scale_by_adam(nesterov=True),
                               lambda gs: ref_adam(gs, nesterov=True)),
    "scale_by_amsgrad": (optim.scale_by_amsgrad(), ref_amsgrad),
    "scale_by_adamax": (optim.scale_by_adamax(), ref_adamax),
    "scale_by_rms": (optim.scale_by_rms(), lambda gs: ref_rms(gs, 0.9, 1e-8, True)),
    "scale_by_rms_eps_outside": (optim.scale_by_rms(0.99, 1e-3, 0.5, eps_in_sqrt=False),
                                 lambda gs: ref_rms(gs, 0.99, 1e-3, False, initial=0.5)),
    "scale_by_rms_debiased": (optim.scale_by_rms(bias_correction=True),
                              lambda gs: ref_rms(gs, 0.9, 1e-8, True, bias_correction=True)),
    "scale_by_stddev": (optim.scale_by_stddev(0.8, 1e-3),
                        lambda gs: ref_rms(gs, 0.8, 1e-3, True, centered=True)),
    "scale_by_rss": (optim.scale_by_rss(), lambda gs: ref_rss(gs, 0.1, 1e-7)),
    "scale_by_adadelta": (optim.scale_by_adadelta(), ref_adadelta),
    "scale_by_lion": (optim.scale_by_lion(), ref_lion),
    "trace": (optim.trace(0.9), lambda gs: ref_trace(gs, 0.9, False)),
    "trace_nesterov": (optim.trace(0.5, nesterov=True), lambda gs: ref_trace(gs, 0.5, True)),
    "scale": (optim.scale(-0.3), lambda gs: [-0.3 * g for g in gs]),
    "scale_by_schedule": (optim.scale_by_schedule(lambda c: 0.5 ** c),
                          lambda gs: [0.5 ** t * g for t, g in enumerate(gs)]),
    "identity": (optim.identity(), lambda gs: gs),
    "set_to_zero": (optim.set_to_zero(), lambda gs: [0 * g for g in gs]),
    "clip": (optim.clip(0.5), lambda gs: [np.clip(g, -0.5, 0.5) for g in gs]),
    "ema": (optim.ema(0.7), lambda gs: ref_ema(gs, 0.7, True)),
    "ema_biased": (optim.ema(0.7, debias=False), lambda gs: ref_ema(gs, 0.7, False)),
}


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_transformation_formula(name):
    tx, reference = FORMULAS[name]
    check(tx, reference)


def test_state_types_are_named_after_their_transformation():
    p = np.zeros(3)
    assert type(optim.scale_by_adam().init(p)) is optim.ScaleByAdamState
    assert type(optim.trace(0.9).init(p)) is optim.TraceState
    assert type(optim.scale_by_rms().init(p)) is optim.ScaleByRmsState
    assert type(optim.scale_by_schedule(lambda c: 1.0).init(p)) is optim.ScaleByScheduleState
    assert type(optim.ema(0.9).init(p)) is optim.EmaState
    assert type(optim.masked(optim.identity(), True).init(p)) is optim.MaskedState
    assert type(optim.scale(2.0).init(p)) is optim.EmptyState
    state = optim.adam(0.1).init(p)
    assert isinstance(state, tuple) and type(state[0]) is optim.ScaleByAdamState
    assert state[0].count.dtype == np.int32 and state[0].count.shape == ()


def test_trust_ratio_and_lamb_formula():
    gs = grads_seq(4, (3, 2))
    rng = np.random.default_rng(7)
    p = rng.standard_normal((3, 2))
    got, _ = run_tx(optim.lamb(0.1, weight_decay=0.01), gs, params=p)
    for g, a, adam_dir in zip(gs, got, ref_adam(gs, eps=1e-6)):
        u = adam_dir + 0.01 * p
        ratio = np.linalg.norm(p) / np.linalg.norm(u)
        np.testing.assert_allclose(a, -0.1 * ratio * u, rtol=1e-12)
    # a zero parameter leaf keeps ratio 1 (it would never move otherwise)
    u, _ = optim.scale_by_trust_ratio().update(np.ones(2), optim.EmptyState(), np.zeros(2))
    np.testing.assert_array_equal(u, np.ones(2))


def test_lion_with_weight_decay():
    gs = grads_seq(4)
    p = np.linspace(-1, 1, 4)
    got, _ = run_tx(optim.lion(0.01, weight_decay=0.1), gs, params=p)
    for a, d in zip(got, ref_lion(gs)):
        np.testing.assert_allclose(a, -0.01 * (d + 0.1 * p), rtol=1e-14)


def test_add_decayed_weights_formula_mask_and_schedule():
    p = {"w": np.array([1.0, -2.0]), "b": np.array([3.0])}
    g = {"w": np.array([0.5, 0.5]), "b": np.array([0.5])}
    tx = optim.add_decayed_weights(0.1)
    u, _ = tx.update(g, tx.init(p), p)
    np.testing.assert_allclose(u["w"], [0.6, 0.3])
    np.testing.assert_allclose(u["b"], [0.8])
    tx = optim.add_decayed_weights(0.1, mask={"w": True, "b": False})
    u, _ = tx.update(g, tx.init(p), p)
    np.testing.assert_allclose(u["b"], [0.5])
    np.testing.assert_allclose(u["w"], [0.6, 0.3])
    tx = optim.add_decayed_weights(lambda count: 0.1 * (count + 1))
    s = tx.init(p)
    assert type(s) is optim.AddDecayedWeightsState
    u1, s = tx.update(g, s, p)
    u2, s = tx.update(g, s, p)
    np.testing.assert_allclose(u1["b"], [0.5 + 0.3])
    np.testing.assert_allclose(u2["b"], [0.5 + 0.6])


def test_clip_by_global_norm_both_branches():
    g = {"a": np.array([3.0]), "b": np.array([[4.0]])}
    tx = optim.clip_by_global_norm(10.0)
    u, _ = tx.update(g, tx.init(g))
    np.testing.assert_array_equal(u["a"], g["a"])
    tx = optim.clip_by_global_norm(1.0)
    u, _ = tx.update(g, tx.init(g))
    np.testing.assert_allclose(u["a"], [0.6])
    np.testing.assert_allclose(u["b"], [[0.8]])
    np.testing.assert_allclose(float(optim.global_norm(u)), 1.0)


@given(hnp.arrays(np.float64, st.integers(1, 6),
                  elements=st.floats(-1e3, 1e3, allow_nan=False)),
       st.floats(0.01, 100.0))
def test_clip_by_global_norm_property(g, max_norm):
    tx = optim.clip_by_global_norm(max_norm)
    u, _ = tx.update(g, tx.init(g))
    norm = float(np.linalg.norm(g))
    assert float(optim.global_norm(u)) <= max(max_norm, 0) * (1 + 1e-12) or norm < max_norm
    assert np.allclose(u * norm, g * float(np.linalg.norm(u)))  # direction kept


def test_apply_every_sums_and_emits_every_k():
    gs = grads_seq(7)
    got, _ = run_tx(optim.apply_every(3), gs)
    for t, u in enumerate(got):
        if t % 3 == 2:
            np.testing.assert_allclose(u, gs[t - 2] + gs[t - 1] + gs[t])
        else:
            np.testing.assert_array_equal(u, 0 * u)


def test_multisteps_equals_adam_on_mean_gradients():
    gs = grads_seq(9)
    ms = optim.MultiSteps(optim.adam(0.1), every_k_schedule=3)
    state = ms.init(np.zeros(4))
    means = [np.mean(gs[i:i + 3], axis=0) for i in (0, 3, 6)]
    want = ref_adam(means)
    for t, g in enumerate(gs):
        u, state = ms.update(g, state)
        if t % 3 == 2:
            assert bool(ms.has_updated(state))
            np.testing.assert_allclose(u, -0.1 * want[t // 3], rtol=1e-12)
        else:
            assert not bool(ms.has_updated(state))
            np.testing.assert_array_equal(u, 0 * u)
    assert int(state.gradient_step) == 3
    assert int(state.inner_opt_state[0].count) == 3
    # the sum instead of the mean
    ms = optim.MultiSteps(optim.sgd(1.0), 2, use_grad_mean=False).gradient_transformation()
    out, _ = run_tx(ms, gs[:4])
    np.testing.assert_allclose(out[1], -(gs[0] + gs[1]))
    np.testing.assert_allclose(out[3], -(gs[2] + gs[3]))


# ---- composition ----------------------------------------------------------------------
def test_chain_is_composition():
    gs = grads_seq()
    got, state = run_tx(optim.chain(optim.clip(0.5), optim.scale(-2.0)), gs)
    for a, g in zip(got, gs):
        np.testing.assert_allclose(a, -2.0 * np.clip(g, -0.5, 0.5))
    assert isinstance(state, tuple) and len(state) == 2
    with pytest.raises(FuncgradValueError, match="chain"):
        optim.chain(optim.identity()).update(gs[0], (), None)


def test_masked_hides_leaves_from_inner():
    params = {"w": np.ones((2, 2)), "b": np.ones(2), "sub": {"c": np.ones(3)}}
    g = tree_map(lambda p: 2 * p, params)
    mask = {"w": True, "b": False, "sub": True}     # a prefix: "sub" covers its subtree
    tx = optim.masked(optim.trace(0.5), mask)
    state = tx.init(params)
    assert isinstance(state.inner_state.trace["b"], optim.MaskedNode)
    assert len(tree_leaves(state)) == 2
    u, state = tx.update(g, state)
    u, state = tx.update(g, state)
    np.testing.assert_allclose(u["w"], 3.0)       # 2 + 0.5 * 2
    np.testing.assert_allclose(u["sub"]["c"], 3.0)
    np.testing.assert_array_equal(u["b"], g["b"])  # untouched
    # a callable mask gives the same result
    tx2 = optim.masked(optim.trace(0.5), lambda tree: {k: k != "b" for k in tree})
    u2, _ = run_tx_tree(tx2, params, [g, g])
    assert all(np.array_equal(a, b) for a, b in zip(tree_leaves(u), tree_leaves(u2)))
    with pytest.raises(FuncgradValueError, match="masked"):
        optim.masked(optim.identity(), {"w": True}).init(params)


def run_tx_tree(tx, params, gs):
    state = tx.init(params)
    for g in gs:
        u, state = tx.update(g, state, params)
    return u, state


def test_freeze():
    params = {"w": np.ones(2), "b": np.ones(2)}
    tx = optim.chain(optim.freeze({"w": True, "b": False}), optim.sgd(0.1))
    u, _ = run_tx_tree(tx, params, [params])
    np.testing.assert_array_equal(u["w"], [0.0, 0.0])
    np.testing.assert_allclose(u["b"], [-0.1, -0.1])


def test_multi_transform_groups_by_key_path():
    params, x, y = make_problem()

    def labels(tree):
        return tree_map_with_path(
            lambda path, _: "fast" if keystr(path) == "['bias']" else "slow", tree)
    tx = optim.multi_transform({"slow": optim.sgd(1e-5), "fast": optim.sgd(0.05)}, labels)
    g = funcgrad.grad(loss_fn)(params, x, y)
    u, state = tx.update(g, tx.init(params), params)
    np.testing.assert_allclose(u["weight"], -1e-5 * g["weight"])
    np.testing.assert_allclose(u["bias"], -0.05 * g["bias"])
    assert set(state.inner_states) == {"slow", "fast"}
    with pytest.raises(FuncgradValueError, match="'fast'"):
        optim.multi_transform({"slow": optim.sgd(1.0)}, labels).init(params)


# ---- inject_hyperparams ----------------------------------------------------------------
def test_inject_hyperparams_change_between_steps():
    gs = grads_seq(4)
    tx = optim.inject_hyperparams(optim.sgd)(learning_rate=0.1, momentum=0.5)
    state = tx.init(np.zeros(4))
    assert set(state.hyperparams) == {"learning_rate", "momentum"}
    np.testing.assert_allclose(state.hyperparams["learning_rate"], 0.1)
    u1, state = tx.update(gs[0], state)
    np.testing.assert_allclose(u1, -0.1 * gs[0])
    state = state._replace(hyperparams={**state.hyperparams, "learning_rate": 0.01})
    u2, state = tx.update(gs[1], state)
    np.testing.assert_allclose(u2, -0.01 * (gs[1] + 0.5 * gs[0]))
    state.hyperparams["momentum"] = 0.0              # optax's in-place style also works
    u3, state = tx.update(gs[2], state)
    np.testing.assert_allclose(u3, -0.01 * gs[2])
    assert int(state.count) == 3


def test_inject_hyperparams_matches_plain_and_records_schedule():
    gs = grads_seq(5)
    sched = optim.linear_schedule(0.1, 0.0, 4)
    plain, _ = run_tx(optim.adam(sched, b1=0.8), gs)
    tx = optim.inject_hyperparams(optim.adam)(learning_rate=sched, b1=0.8)
    state = tx.init(np.zeros(4))
    np.testing.assert_allclose(state.hyperparams["learning_rate"], 0.1)
    for t, (g, want) in enumerate(zip(gs, plain)):
        u, state = tx.update(g, state)
        np.testing.assert_allclose(u, want, rtol=1e-13)
        # the state holds the value this update used: schedule(t)
        np.testing.assert_allclose(state.hyperparams["learning_rate"], float(sched(t)))
    with pytest.raises(FuncgradValueError, match="static_args"):
        optim.inject_hyperparams(optim.adam, static_args="nope")
    state = optim.inject_hyperparams(optim.sgd, hyperparam_dtype=np.float32)(0.1).init(
        np.zeros(2))
    assert state.hyperparams["learning_rate"].dtype == np.float32


# ---- schedules at their boundaries -----------------------------------------------------
def values(schedule, steps):
    return [float(schedule(np.int32(s))) for s in steps]


def test_schedule_boundaries():
    s = optim.linear_schedule(1.0, 0.2, transition_steps=4, transition_begin=2)
    assert values(s, [0, 2, 4, 6, 100]) == pytest.approx([1.0, 1.0, 0.6, 0.2, 0.2])
    s = optim.polynomial_schedule(1.0, 0.0, power=3, transition_steps=2)
    assert values(s, [0, 1, 2, 5]) == pytest.approx([1.0, 0.125, 0.0, 0.0])
    s = optim.piecewise_constant_schedule(0.1, {3: 0.5, 5: 0.2})
    assert values(s, [0, 2, 3, 4, 5, 9]) == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.01, 0.01])
    s = optim.exponential_decay(1.0, 10, 0.5, transition_begin=5)
    assert values(s, [0, 5, 15, 25]) == pytest.approx([1.0, 1.0, 0.5, 0.25])
    s = optim.exponential_decay(1.0, 10, 0.5, end_value=0.4)
    assert values(s, [10, 100]) == pytest.approx([0.5, 0.4])
    s = optim.cosine_decay_schedule(2.0, decay_steps=10, alpha=0.1)
    assert values(s, [0, 5, 10, 50]) == pytest.approx([2.0, 1.1, 0.2, 0.2])
    s = optim.warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=5, decay_steps=15,
                                           end_value=0.1)
    assert values(s, [0, 5, 10, 15, 30]) == pytest.approx([0.0, 1.0, 0.55, 0.1, 0.1])
    s = optim.join_schedules([optim.constant_schedule(1.0), optim.constant_schedule(2.0)],
                             [3])
    assert values(s, [2, 3]) == [1.0, 2.0]
    s = optim.cosine_onecycle_schedule(100, 1.0, pct_start=0.25, div_factor=10.0,
                                       final_div_factor=1e3)
    assert values(s, [0, 25, 100, 200]) == pytest.approx([0.1, 1.0, 1e-4, 1e-4])
    assert 0.1 < values(s, [12])[0] < 1.0 and 1e-4 < values(s, [60])[0] < 1.0
    assert optim.one_cycle is optim.cosine_onecycle_schedule
    assert float(optim.constant_schedule(0.3)(7)) == 0.3


def test_schedule_errors():
    with pytest.raises(ValueError):
        optim.cosine_decay_schedule(1.0, 0)
    with pytest.raises(ValueError):
        optim.piecewise_constant_schedule(1.0, {2: -1.0})
    with pytest.raises(ValueError):
        optim.join_schedules([optim.constant_schedule(1.0)], [3])


def test_first_update_uses_schedule_at_step_zero():
    sched = optim.piecewise_constant_schedule(1.0, {1: 0.5, 2: 0.5})
    got, state = run_tx(optim.sgd(sched), [np.ones(2)] * 4)
    assert [float(u[0]) for u in got] == [-1.0, -0.5, -0.25, -0.25]
    assert int(state[1].count) == 4


# ---- dtypes ---------------------------------------------------------------------------
OPTIMIZERS = {
    "sgd": lambda: optim.sgd(1e-3, momentum=0.9, nesterov=True),
    "adam": lambda: optim.adam(0.1),
    "adamw": lambda: optim.adamw(optim.cosine_decay_schedule(0.1, 10), weight_decay=0.01),
    "nadam": lambda: optim.nadam(0.1),
    "amsgrad": lambda: optim.amsgrad(0.1),
    "rmsprop": lambda: optim.rmsprop(0.1, centered=True, momentum=0.9),
    "adagrad": lambda: optim.adagrad(0.1),
    "adadelta": lambda: optim.adadelta(),
    "adamax": lambda: optim.adamax(0.1),
    "lamb": lambda: optim.lamb(0.1, weight_decay=0.1),
    "lion": lambda: optim.lion(0.1),
    "inject_adam": lambda: optim.inject_hyperparams(optim.adam)(
        learning_rate=np.float64(0.1), b1=np.array(0.9)),
    "clip_chain": lambda: optim.chain(optim.clip_by_global_norm(np.float64(1.0)),
                                      optim.clip(np.float64(0.5)),
                                      optim.sgd(optim.exponential_decay(0.1, 2, 0.5))),
    "multisteps": lambda: optim.MultiSteps(optim.adam(0.1), 2).gradient_transformation(),
    "multi_transform": lambda: optim.multi_transform(
        {"a": optim.adam(1e-5), "b": optim.sgd(np.float64(1e-3))},
        {"weight": "a", "bias": "b"}),
    "ema": lambda: optim.chain(optim.ema(np.float64(0.9)), optim.sgd(1e-3)),
    "apply_every": lambda: optim.chain(optim.sgd(1e-3), optim.apply_every(2)),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_float32_stays_float32(name):
    params, x, y = make_problem(np.float32)
    tx = OPTIMIZERS[name]()
    state = tx.init(params)
    for _ in range(3):
        grads = funcgrad.grad(loss_fn)(params, x, y)
        updates, state = tx.update(grads, state, params)
        assert all(u.dtype == np.float32 for u in tree_leaves(updates)), name
        params = optim.apply_updates(params, updates)
        assert all(p.dtype == np.float32 for p in tree_leaves(params))
        for leaf in tree_leaves(state):
            dtype = np.asarray(leaf).dtype
            assert dtype in (np.float32, np.int32, np.bool_), (name, dtype)
    assert all(np.isfinite(p).all() for p in tree_leaves(params))


def test_apply_updates_keeps_dtype_and_none():
    params = {"a": np.ones(2, np.float32), "b": None}
    new = optim.apply_updates(params, {"a": np.full(2, 0.5), "b": None})
    assert new["b"] is None and new["a"].dtype == np.float32
    np.testing.assert_array_equal(new["a"], [1.5, 1.5])


# ---- inside funcgrad.grad -------------------------------------------------------------
def test_training_loop_with_grad_decreases_loss():
    params, x, y = make_problem()
    for make in (lambda: optim.adam(0.05), lambda: optim.lamb(0.05),
                 lambda: optim.lion(0.01), lambda: optim.amsgrad(0.05)):
        losses, _ = fg_trajectory(make(), 25, params, x, y)
        assert losses[-1] < 0.8 * losses[0]


def test_hypergradient_through_an_update():
    """d/d(lr) of the loss after one step of sgd(lr): -<g0, grad L(p - lr g0)>."""
    params, x, y = make_problem()
    g0 = funcgrad.grad(loss_fn)(params, x, y)

    def loss_after_step(lr):
        tx = optim.sgd(lr)
        updates, _ = tx.update(g0, tx.init(params))
        return loss_fn(optim.apply_updates(params, updates), x, y)
    lr = 1e-3
    got = funcgrad.grad(loss_after_step)(lr)
    moved = optim.apply_updates(params, tree_map(lambda g: -lr * g, g0))
    g1 = funcgrad.grad(loss_fn)(moved, x, y)
    want = -sum(np.sum(a * b) for a, b in zip(tree_leaves(g0), tree_leaves(g1)))
    np.testing.assert_allclose(got, want, rtol=1e-10)

    # through adam, with the learning rate held in an injected state
    def loss_after_adam(lr):
        tx = optim.inject_hyperparams(optim.adam)(learning_rate=lr)
        updates, _ = tx.update(g0, tx.init(params), params)
        return loss_fn(optim.apply_updates(params, updates), x, y)
    eps = 1e-6
    fd = (loss_after_adam(lr + eps) - loss_after_adam(lr - eps)) / (2 * eps)
    np.testing.assert_allclose(funcgrad.grad(loss_after_adam)(lr), fd, rtol=1e-6)


@pytest.mark.parametrize("make", [
    lambda: optim.adam(0.01),
    lambda: optim.sgd(1e-3, momentum=0.9, nesterov=True),
    lambda: optim.rmsprop(1e-3, centered=True, momentum=0.5),
    lambda: optim.chain(optim.clip_by_global_norm(1.0), optim.adamw(0.01, weight_decay=0.1)),
], ids=["adam", "sgd_nesterov", "rmsprop_centered", "clip_adamw"])
def test_differentiate_through_unrolled_steps(make):
    """Three optimizer steps (each with funcgrad.grad inside) differentiated with respect
    to the initial parameters, checked against finite differences."""
    from funcgrad.test_util import check_grads
    params, x, y = make_problem()

    def unrolled(p):
        tx = make()
        state = tx.init(p)
        for _ in range(3):
            updates, state = tx.update(funcgrad.grad(loss_fn)(p, x, y), state, p)
            p = optim.apply_updates(p, updates)
        return loss_fn(p, x, y)
    check_grads(unrolled, (params,), order=1, modes=("fwd", "rev"))


JIT_CASES = {
    "adam": lambda: optim.adam(0.01),
    "adamw_warmup_cosine": lambda: optim.adamw(
        optim.warmup_cosine_decay_schedule(0.0, 0.01, 3, 10), weight_decay=0.1),
    "inject_sgd": lambda: optim.inject_hyperparams(optim.sgd)(learning_rate=1e-3,
                                                              momentum=0.9),
    "multisteps": lambda: optim.MultiSteps(optim.adam(0.01), 2).gradient_transformation(),
    "multi_transform": lambda: optim.multi_transform(
        {"a": optim.adam(1e-5), "b": optim.sgd(1e-3)}, {"weight": "a", "bias": "b"}),
    "piecewise": lambda: optim.sgd(optim.piecewise_constant_schedule(1e-3, {2: 0.5, 3: 0.5})),
    "one_cycle": lambda: optim.sgd(optim.one_cycle(6, 1e-3)),
    "lamb": lambda: optim.lamb(0.01),
}


@pytest.mark.parametrize("name", sorted(JIT_CASES))
def test_jitted_step_matches_eager(name):
    params, x, y = make_problem()
    tx = JIT_CASES[name]()

    def step(p, s):
        updates, s = tx.update(funcgrad.grad(loss_fn)(p, x, y), s, p)
        return optim.apply_updates(p, updates), s
    jitted = funcgrad.jit(step)
    p1 = p2 = params
    s1 = s2 = tx.init(params)
    for _ in range(5):   # several calls: the cached graph is replayed
        p1, s1 = step(p1, s1)
        p2, s2 = jitted(p2, s2)
    for a, b in zip(tree_leaves((p1, s1)), tree_leaves((p2, s2))):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_jitted_float32_step(name):
    """float32 training steps under jit, with numpy float64 hyperparameters in places."""
    params, x, y = make_problem(np.float32)
    tx = OPTIMIZERS[name]()

    def step(p, s):
        updates, s = tx.update(funcgrad.grad(loss_fn)(p, x, y), s, p)
        return optim.apply_updates(p, updates), s
    jitted = funcgrad.jit(step)
    p1 = p2 = params
    s1 = s2 = tx.init(params)
    for _ in range(3):
        p1, s1 = step(p1, s1)
        p2, s2 = jitted(p2, s2)
    for a, b in zip(tree_leaves((p1, s1)), tree_leaves((p2, s2))):
        assert np.asarray(b).dtype == np.asarray(a).dtype
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-7)


# ---- TrainState ------------------------------------------------------------------------
def test_train_state_is_a_pure_pytree():
    params, x, y = make_problem()
    ts = optim.TrainState.create(params=params, tx=optim.adam(0.01))
    leaves, treedef = funcgrad.tree_util.tree_flatten(ts)
    assert treedef.unflatten(leaves).tx is ts.tx
    grads = funcgrad.grad(loss_fn)(params, x, y)
    ts1 = ts.apply_gradients(grads)
    assert int(ts.step) == 0 and int(ts1.step) == 1
    assert ts.params is params and ts1.params is not params
    tx = optim.adam(0.01)
    u, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(ts1.params["bias"],
                               optim.apply_updates(params, u)["bias"], rtol=1e-15)
    with pytest.raises(Exception):
        ts.step = 5


def test_missing_params_error_names_the_fix():
    tx = optim.adamw(0.1)
    p = np.ones(2)
    with pytest.raises(FuncgradValueError, match=r"tx.update\(grads, state, params\)"):
        tx.update(p, tx.init(p))


# ---- the example -----------------------------------------------------------------------
def test_custom_layer_example_loss_decreases(capsys):
    spec = importlib.util.spec_from_file_location(
        "custom_layer_example", ROOT / "examples" / "custom_layer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    losses = module.main()
    assert len(losses) == 10
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert capsys.readouterr().out.count("loss") == 10
    assert all(math.isfinite(v) for v in losses)
