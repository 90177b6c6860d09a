"""The examples and tools a newcomer runs first: honest timings, readable plots and
graphs, outputs next to the scripts, check_grads numbers as people write them, and the
benchmarks' README that pyproject.toml points to."""
import importlib.util
import inspect
import os
import re
import time

import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp
from funcgrad.test_util import check_grads

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load(name):
    path = os.path.join(ROOT, "examples", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"example_polish_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_per_example_gradients_times_after_a_warm_up(capsys):
    mod = load("per_example_gradients")
    calls = []

    def slow_first(*args):
        calls.append(args)
        if len(calls) == 1:
            time.sleep(0.3)          # the cold first call
    assert mod.best_time(slow_first, 1, repeat=3) < 0.1
    assert len(calls) == 4           # the warm-up plus three timed calls
    mod.main()
    out = capsys.readouterr().out
    assert "after a warm-up" in out and "gradient of the mean loss: ok" in out


@pytest.mark.parametrize("name", ["train_digits", "mnist", "computation_graph"])
def test_examples_write_next_to_the_script_by_default(name):
    mod = load(name)
    assert mod.OUT == os.path.join(ROOT, "examples", "out")
    src = inspect.getsource(mod)
    assert '"examples", "out"' not in src and '"examples/out"' not in src
    if name == "computation_graph":
        assert inspect.signature(mod.main).parameters["out_dir"].default == mod.OUT
    else:
        assert 'default=OUT' in src


def test_training_curves_are_against_epochs_with_a_legend_on_every_panel(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure
    saved = []
    real = Figure.savefig

    def spy(self, *args, **kwargs):
        saved.append(self)
        return real(self, *args, **kwargs)
    monkeypatch.setattr(Figure, "savefig", spy)
    history = {"train/loss": [(1, 1.0), (2, 0.5)], "test/loss": [(1, 1.1), (2, 0.6)],
               "test/accuracy": [(1, 0.5), (2, 0.8)]}
    import funcgrad_nn as nn
    nn.training.plot_curves(history, tmp_path / "c.png", xlabel="epoch")
    axes = saved[-1].axes
    assert len(axes) == 2
    for ax in axes:
        assert ax.get_xlabel() == "epoch"
        assert ax.get_legend() is not None        # the one-curve panel too
    assert list(axes[1].lines[0].get_xdata()) == [1, 2]
    nn.training.plot_curves({"loss": [3.0, 2.0]}, tmp_path / "d.png")
    assert saved[-1].axes[0].get_xlabel() == "step"   # the default is unchanged
    for name in ("train_digits", "mnist"):
        src = inspect.getsource(load(name))
        assert 'xlabel="epoch"' in src and 'append((epoch,' in src


def test_check_grads_prints_real_numbers_without_plus_0j():
    @funcgrad.custom_jvp
    def f(x):
        return fnp.sin(x)
    f.defjvp(lambda p, t: (fnp.sin(p[0]), 2 * t[0]))      # a wrong rule
    with pytest.raises(AssertionError) as e:
        check_grads(f, (np.array([0.5, 1.0]),), order=1, modes=("fwd",))
    msg = str(e.value)
    assert "+0j" not in msg and "np.int64" not in msg and "at index (1,)" in msg
    assert re.search(r"got -?\d\.\d+ expected -?\d\.\d+", msg), msg


def test_graph_inputs_take_the_argument_names_and_grad_drops_dead_forward_nodes():
    def f(x1, x2):
        return fnp.log(x1) + x1 * x2 - fnp.sin(x2)
    g = funcgrad.make_graph(f)(2.0, 5.0)
    assert str(g).startswith("graph(x1:float64[], x2:float64[]):")
    assert "log x1" in str(g) and "multiply x1 x2" in str(g)
    gg = funcgrad.make_graph(funcgrad.grad(f, argnums=(0, 1)))(2.0, 5.0)
    prims = [e.prim.name for e in gg.eqns]
    assert "log" not in prims and "sin" not in prims and "subtract" not in prims
    assert "cos" in prims                           # d/dx2 of sin: needed
    assert "np.float64" not in str(gg)
    dot = gg.to_dot()
    assert '"x1"' in dot and '"x2"' in dot
    # pytree arguments and names that collide with the generated ones
    p = funcgrad.make_graph(lambda params, a: fnp.sum(params["w"] * a))({"w": np.ones(2)}, np.ones(2))
    assert str(p).startswith("graph(params:float64[2], a:float64[2]):")
    names = [v.name for e in p.eqns for v in e.outvars]
    assert "a" not in names and len(set(names)) == len(names)
    two = funcgrad.make_graph(lambda t: t[0] * t[1])((1.0, 2.0))
    assert str(two).startswith("graph(t_0:float64[], t_1:float64[]):")


def test_graph_of_an_effect_keeps_it():
    def f(x):
        funcgrad.debug.print("x = {}", x)
        return x * 2
    g = funcgrad.make_graph(funcgrad.grad(f))(1.0)
    assert any(e.prim.effectful for e in g.eqns)


def test_benchmarks_readme_exists_and_covers_every_script():
    text = open(os.path.join(ROOT, "pyproject.toml")).read()
    assert "benchmarks/README.md" in text
    readme = open(os.path.join(ROOT, "benchmarks", "README.md")).read()
    for script in sorted(os.listdir(os.path.join(ROOT, "benchmarks"))):
        if script.endswith(".py"):
            assert f"`{script}`" in readme, script
    for must in ("bench_threads.py", "bench_realdata.py", "bench_distributed.py",
                 "bench_conv.py", "run.py"):
        assert f"python benchmarks/{must}" in readme
