"""The IR (funcgrad/_src/ir.py) and jit's passes (compiler.PASSES), one by one on
hand-built graphs: each pass's output is well formed (check_graph) and computes what its
input computes (eval_graph, the reference evaluator)."""
import numpy as np
import pytest

import funcgrad
import funcgrad.lax as lax
import funcgrad.numpy as fnp
from funcgrad._src import compiler
from funcgrad._src.core import primitive_named
from funcgrad._src.ir import Eqn, Graph, GraphError, Literal, Var, check_graph, eval_graph

F = np.float64


def v(name, shape=(3,), dtype=F):
    return Var(name, shape, dtype)


def eq(prim, ins, outs, **params):
    return Eqn(primitive_named(prim), ins, params, outs)


def _same(graph, new, *args):
    check_graph(new)
    want = eval_graph(graph, *args)
    got = eval_graph(new, *args)
    assert len(want) == len(got)
    for w, g in zip(want, got):
        np.testing.assert_allclose(g, w, rtol=1e-13)


X = np.array([0.5, -1.0, 2.0])


def test_check_graph_catches_what_it_should():
    a, b, c = v("a"), v("b"), v("c")
    good = Graph([a], [], [eq("sin", [a], [b]), eq("multiply", [b, Literal(2.0)], [c])], [c])
    assert check_graph(good) is good
    with pytest.raises(GraphError, match="assigned twice"):
        check_graph(Graph([a], [], [eq("sin", [a], [a])], [a]))
    with pytest.raises(GraphError, match="not defined before"):
        check_graph(Graph([a], [], [eq("sin", [b], [c])], [c]))
    with pytest.raises(GraphError, match="defined as float64"):
        check_graph(Graph([a], [], [eq("sin", [Var("a", (4,), F)], [c])], [c]))
    with pytest.raises(GraphError, match="outputs uses"):
        check_graph(Graph([a], [], [], [b]))
    with pytest.raises(GraphError, match="constant"):
        check_graph(Graph([a], [(b, np.ones(2))], [], [a]))


def test_check_graph_checks_sub_graph_signatures():
    g = funcgrad.make_graph(lambda h, xs: lax.scan(lambda c, x: (c * x, c), h, xs))(
        np.ones(3), np.ones((4, 3)))
    check_graph(g)
    e = g.eqns[0]
    body = e.params["body"]
    bad_body = Graph(body.invars, body.consts, body.eqns, body.outvars[:1] + body.outvars[:1])
    bad = Graph(g.invars, g.consts, [Eqn(e.prim, e.invars, {**e.params, "body": bad_body},
                                         e.outvars)], g.outvars)
    check_graph(bad)    # same types: fine
    wrong = Graph([Var("zz", (2,), F)] + body.invars[1:], body.consts, body.eqns, body.outvars)
    with pytest.raises(GraphError, match="body input"):
        check_graph(Graph(g.invars, g.consts, [Eqn(e.prim, e.invars,
                                                   {**e.params, "body": wrong}, e.outvars)],
                          g.outvars))


def test_remove_noops():
    a, b, c, d = v("a"), v("b"), v("c"), v("d")
    g = Graph([a], [], [eq("reshape", [a], [b], shape=(3,)),
                        eq("transpose", [b], [c], axes=(0,)),
                        eq("sin", [c], [d])], [d])
    new = compiler.remove_noops(g)
    assert [e.prim.name for e in new.eqns] == ["sin"]
    _same(g, new, X)


def test_cse():
    a, b, c, d = v("a"), v("b"), v("c"), v("d")
    g = Graph([a], [], [eq("sin", [a], [b]), eq("sin", [a], [c]), eq("add", [b, c], [d])], [d])
    new = compiler.cse(g)
    assert [e.prim.name for e in new.eqns] == ["sin", "add"]
    _same(g, new, X)


def test_fold_scales():
    a, b, c, d, e_ = v("a"), v("b"), v("c"), v("d"), v("e")
    g = Graph([a], [], [eq("negative", [a], [b]), eq("multiply", [b, Literal(2.0)], [c]),
                        eq("sin", [a], [d]), eq("multiply", [c, d], [e_])], [e_])
    new = compiler.fold_scales(g)
    assert len(new.eqns) < len(g.eqns)
    _same(g, new, X)


def test_dead_code_and_unused_scan_outputs():
    a, b, c = v("a"), v("b"), v("c")
    g = Graph([a], [(Var("k", (3,), F), np.ones(3))], [eq("sin", [a], [b]),
                                                          eq("cos", [a], [c])], [c])
    new = compiler.dead_code(g)
    assert [e.prim.name for e in new.eqns] == ["cos"] and not new.consts
    _same(g, new, X)
    # a scan whose ys nobody reads loses them, and its history is not stacked
    sg = funcgrad.make_graph(
        lambda h, xs: lax.scan(lambda c, x: (c * x, fnp.sin(c)), h, xs)[0])(X, np.ones((4, 3)))
    new = compiler.dead_code(sg)
    scan = new.eqns[0]
    assert len(scan.outvars) == 1 and scan.params["history"] == (False,)
    assert "sin" not in [e.prim.name for e in scan.params["body"].eqns]
    _same(sg, new, X, np.full((4, 3), 1.5))


def test_every_pass_in_order_keeps_programs_whole():
    def f(x, xs):
        y = -(x * 2.0) * fnp.reshape(x, (3,))
        h, ys = lax.scan(lambda c, t: (fnp.tanh(c * t + y), c.sum()), x, xs)
        return h + fnp.sin(x) - fnp.sin(x), ys
    args = (X, np.full((5, 3), 0.3))
    g = funcgrad.make_graph(f)(*args)
    for name, run in compiler.PASSES:
        new = run(g)
        _same(g, new, *args)
        g = new


def test_lowered_stages_text_and_compile():
    jf = funcgrad.jit(lambda x: fnp.sin(x) * 2.0 * 3.0)
    low = jf.lower(X)
    assert "sin" in low.as_text() and "6.0" in low.as_text()
    assert len(low.graph(after="trace").eqns) == 3
    for name, _ in compiler.PASSES:
        check_graph(low.graph(after=name))
    np.testing.assert_allclose(low.compile()(X), np.sin(X) * 6.0)
    with pytest.raises(ValueError, match="no pass named"):
        low.graph(after="nope")
    with pytest.raises(TypeError, match="lowered for other"):
        low.compile()(np.ones(4))
    assert [e.prim.name for e in low.eqns] == ["sin", "multiply"]   # reads as a Graph


# ---- each pass and stage on hand-built graphs ----------------------------------------------


def test_inline_calls():
    from funcgrad._src.prims.control_flow import call_p
    x, y, z = v("x"), v("y"), v("z")
    body = Graph([x], [(Var("k", (3,), F), np.full(3, 2.0))],
                 [eq("multiply", [x, Var("k", (3,), F)], [y]), eq("sin", [y], [z])], [z])
    a, b, c = v("a"), v("b"), v("c")
    g = Graph([a], [], [Eqn(call_p, [a], {"graph": body}, [b]), eq("cos", [b], [c])], [c])
    new = compiler.inline_calls(g)
    assert [e.prim.name for e in new.eqns] == ["multiply", "sin", "cos"]
    assert len(new.consts) == 1
    _same(g, new, X)
    # two calls of one body get distinct names
    d = v("d")
    g2 = Graph([a], [], [Eqn(call_p, [a], {"graph": body}, [b]),
                         Eqn(call_p, [b], {"graph": body}, [d])], [d])
    _same(g2, compiler.inline_calls(g2), X)


def test_remove_noops_keeps_what_changes_something():
    a, b, c, d = v("a"), Var("b", (3, 1), F), v("c"), Var("d", (3,), np.float32)
    g = Graph([a], [], [eq("reshape", [a], [b], shape=(3, 1)),
                        eq("reshape", [b], [c], shape=(3,)),
                        eq("convert_element_type", [c], [d], dtype=np.dtype(np.float32))], [d])
    new = compiler.remove_noops(g)
    assert [e.prim.name for e in new.eqns] == ["reshape", "reshape", "convert_element_type"]
    _same(g, new, X)
    m, t = Var("m", (2, 3), F), Var("t", (3, 2), F)
    g = Graph([m], [], [eq("transpose", [m], [t], axes=(1, 0))], [t])
    assert len(compiler.remove_noops(g).eqns) == 1


def test_cse_merges_commutative_operands_in_either_order():
    a, b, c, d, e_ = v("a"), v("b"), v("c"), v("d"), v("e")
    g = Graph([a, b], [], [eq("multiply", [a, b], [c]), eq("multiply", [b, a], [d]),
                           eq("subtract", [c, d], [e_])], [e_])
    new = compiler.cse(g)
    assert [e.prim.name for e in new.eqns] == ["multiply", "subtract"]
    _same(g, new, X, X[::-1].copy())
    # not for a primitive that is not commutative
    g = Graph([a, b], [], [eq("subtract", [a, b], [c]), eq("subtract", [b, a], [d]),
                           eq("add", [c, d], [e_])], [e_])
    assert len(compiler.cse(g).eqns) == 3


def test_fold_scales_carries_constants_through_linear_operations():
    a, b, c, d, e_, f = (v(n) for n in "abcdef")
    s = Var("s", (), F)
    # -(a * 2) + -(b * 2) = -2 * (a + b); summed, then used by sin: one multiply left
    g = Graph([a, b], [], [eq("multiply", [a, Literal(2.0)], [c]), eq("negative", [c], [d]),
                           eq("multiply", [Literal(2.0), b], [e_]), eq("negative", [e_], [f]),
                           eq("add", [d, f], [Var("g", (3,), F)]),
                           eq("sum", [Var("g", (3,), F)], [s], axis=None, keepdims=False),
                           eq("sin", [s], [Var("h", (), F)])], [Var("h", (), F)])
    new = compiler.fold_scales(g)
    assert [e.prim.name for e in new.eqns] == ["add", "sum", "multiply", "sin"]
    _same(g, new, X, X ** 2)
    # different constants on the two terms of a sum: materialised before the add
    g = Graph([a, b], [], [eq("multiply", [a, Literal(2.0)], [c]),
                           eq("multiply", [b, Literal(3.0)], [d]), eq("add", [c, d], [e_])], [e_])
    new = compiler.fold_scales(g)
    assert [e.prim.name for e in new.eqns] == ["multiply", "multiply", "add"]
    _same(g, new, X, X ** 2)


def test_fold_scales_divides_and_multiplies_constants():
    a, b, c, d, e_ = v("a"), v("b"), v("c"), v("d"), v("e")
    g = Graph([a, b], [], [eq("true_divide", [a, Literal(4.0)], [c]),
                           eq("multiply", [b, Literal(8.0)], [d]),
                           eq("true_divide", [c, d], [e_])], [e_])
    new = compiler.fold_scales(g)
    assert [e.prim.name for e in new.eqns] == ["true_divide", "multiply"]
    assert new.eqns[1].invars[1].value == 1 / 32
    _same(g, new, X, X + 3)


def test_fold_scales_puts_a_constant_on_the_smaller_operand_of_a_product():
    m, w = Var("m", (50, 4), F), Var("w", (4, 3), F)
    p, q, r = Var("p", (50, 3), F), Var("q", (50, 3), F), Var("r", (50, 3), F)
    g = Graph([m, w], [], [eq("matmul", [m, w], [p]), eq("multiply", [p, Literal(3.0)], [q]),
                           eq("sin", [q], [r])], [r])
    new = compiler.fold_scales(g)
    assert [e.prim.name for e in new.eqns] == ["multiply", "matmul", "sin"]
    assert new.eqns[0].invars[0] is w          # w * 3.0, then m @ (w * 3.0)
    rng = np.random.default_rng(0)
    _same(g, new, rng.normal(size=(50, 4)), rng.normal(size=(4, 3)))


def test_fold_scales_leaves_broadcasts_and_integers_alone():
    a, b, c, d = v("a"), Var("b", (2, 3), F), Var("c", (2, 3), F), Var("d", (3,), F)
    g = Graph([a, b], [], [eq("multiply", [a, Literal(2.0)], [d]),
                           eq("add", [d, b], [c])], [c])
    new = compiler.fold_scales(g)
    assert [e.prim.name for e in new.eqns] == ["multiply", "add"]
    _same(g, new, X, np.ones((2, 3)))
    i, j = Var("i", (3,), np.int64), Var("j", (3,), np.int64)
    g = Graph([i], [], [eq("negative", [i], [j])], [j])
    assert [e.prim.name for e in compiler.fold_scales(g).eqns] == ["negative"]


def test_dead_code():
    a, b, c, d = v("a"), v("b"), v("c"), v("d")
    g = Graph([a], [], [eq("sin", [a], [b]), eq("cos", [b], [c]), eq("exp", [a], [d])], [d])
    new = compiler.dead_code(g)
    assert [e.prim.name for e in new.eqns] == ["exp"]
    _same(g, new, X)


def test_fuse_elementwise():
    from funcgrad._src.testing_backend import standin_xp
    a, b, c, d, e_ = v("a"), v("b"), v("c"), v("d"), v("e")
    g = Graph([a], [], [eq("sin", [a], [b]), eq("multiply", [b, Literal(2.0)], [c]),
                        eq("sum", [c], [Var("s", (), F)], axis=None, keepdims=False),
                        eq("exp", [c], [d]), eq("add", [d, a], [e_])], [Var("s", (), F), e_])
    target = compiler.Target(False, standin_xp)
    new = check_graph(compiler.fuse_kernels(g, target))
    assert len(new.eqns) == 3 and new.eqns[0].prim.name == "fused[sin+multiply]"
    assert compiler.fuse_kernels(g, compiler.Target(True, None)) is g     # host: nothing
    want = eval_graph(g, X)
    got = compiler.compile_graph(new)(funcgrad.device_put(X, standin_xp))
    for w_, g_ in zip(want, got):
        np.testing.assert_allclose(g_.get(), w_, rtol=1e-13)


def test_split_rows(monkeypatch):
    from funcgrad._src import rows
    monkeypatch.setattr(rows, "MIN_ROW_WORK", 0)
    x, w = Var("x", (64, 5), F), Var("w", (1, 5), F)
    y, z, s = Var("y", (64, 5), F), Var("z", (64, 5), F), Var("s", (), F)
    g = Graph([x, w], [], [eq("multiply", [x, w], [y]), eq("tanh", [y], [z]),
                           eq("sum", [z], [s], axis=None, keepdims=False)], [s, Literal(1.0)])
    target = compiler.Target(True, None)
    new = check_graph(compiler.split_rows(g, target))
    (e,) = new.eqns
    assert e.prim.plan is not None and e.prim.plan.batch == 64
    assert compiler.split_rows(g, compiler.Target(False, None)) is g       # device: nothing
    args = (np.random.default_rng(1).normal(size=(64, 5)), np.arange(5.0)[None])
    want = eval_graph(g, *args)
    got = compiler.compile_graph(new, True)(*args)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    assert got[1] == 1.0


def test_every_pass_and_stage_has_a_unit_test():
    names = [n for n, _ in compiler.PASSES] + [n for n, _ in compiler.LOWERING]
    missing = [n for n in names if f"test_{n}" not in globals()]
    assert not missing, f"passes without a unit test here: {missing}"


def test_every_stage_is_checked_and_seen_through_lowered():
    jf = funcgrad.jit(lambda x: fnp.tanh(x * 2.0).sum())
    low = jf.lower(np.ones((8, 3)))
    for name, _ in compiler.LOWERING:
        check_graph(low.graph(after=name))


# ---- passes read primitive properties, never names -----------------------------------------


def test_passes_recognise_primitives_by_properties_not_names():
    import ast
    import pathlib
    from funcgrad._src import core
    names = set(core._BY_NAME)
    root = pathlib.Path(compiler.__file__).parent
    found = []
    for f in ["compiler.py", "rows.py", "ir.py", "staging.py"]:
        tree = ast.parse((root / f).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and node.value in names:
                found.append(f"{f}:{node.lineno} {node.value!r}")
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(
                    node.func, "id", None)) == "primitive_named":
                found.append(f"{f}:{node.lineno} primitive_named")
    assert not found, found


def _linear_check(prim, make_args, group, rng):
    args = make_args(rng)
    c = 1.7
    scaled = [a * c if i in group else a for i, a in enumerate(args)]
    np.testing.assert_allclose(prim.impl(*scaled), c * prim.impl(*args), rtol=1e-12)
    more = make_args(rng)
    summed = [a + b if i in group else a for i, (a, b) in enumerate(zip(args, more))]
    other = [b if i in group else a for i, (a, b) in enumerate(zip(args, more))]
    np.testing.assert_allclose(prim.impl(*summed), prim.impl(*args) + prim.impl(*other),
                               rtol=1e-12, atol=1e-12)


def test_declared_properties_hold():
    from funcgrad._src import core
    rng = np.random.default_rng(0)
    for p in set(core._BY_NAME.values()):
        if p.elementwise and p.linear_in:
            n = getattr(p.impl, "nin", 1)
            for group in p.linear_in:
                _linear_check(p, lambda r: [r.normal(size=4) for _ in range(n)], group, rng)
        if p.commutative:
            x, y = rng.normal(size=4), rng.normal(size=4)
            np.testing.assert_array_equal(p.impl(x, y), p.impl(y, x))
        if p.scalar_multiple is not None:
            ins = [v("a"), Literal(2.5)][:1 if p.impl is np.negative else 2]
            pos, factor = p.scalar_multiple(ins)
            np.testing.assert_allclose(p.impl(*[X if isinstance(w, Var) else w.value
                                                for w in ins]), factor * X)
    matmul = primitive_named("matmul")
    _linear_check(matmul, lambda r: [r.normal(size=(3, 4)), r.normal(size=(4, 2))], (0,), rng)
    _linear_check(matmul, lambda r: [r.normal(size=(3, 4)), r.normal(size=(4, 2))], (1,), rng)
    s = primitive_named("sum")
    assert s.reduction and s.linear_in == ((0,),)
    a = primitive_named("true_divide")
    np.testing.assert_allclose(a.impl(X, 2.0 * (X + 3)), a.impl(X, X + 3) / 2.0)
    # python_operator: what one of Python's operators (or .real/.imag) computes on numbers
    import operator
    python = {"add": operator.add, "subtract": operator.sub, "multiply": operator.mul,
              "true_divide": operator.truediv, "floor_divide": operator.floordiv,
              "remainder": operator.mod, "power": operator.pow, "bitwise_and": operator.and_,
              "bitwise_or": operator.or_, "bitwise_xor": operator.xor,
              "left_shift": operator.lshift, "right_shift": operator.rshift,
              "equal": operator.eq, "not_equal": operator.ne, "less": operator.lt,
              "less_equal": operator.le, "greater": operator.gt,
              "greater_equal": operator.ge, "negative": operator.neg,
              "absolute": operator.abs, "invert": operator.invert,
              "real": lambda x: x.real, "imag": lambda x: x.imag}
    declared = {p.name for p in set(core._BY_NAME.values()) if p.python_operator}
    assert declared <= set(python), declared - set(python)
    for name in declared:
        p = primitive_named(name)
        for args in [(7, 3), (-7, 2), (2.5, -1.5)][:3 if name not in (
                "bitwise_and", "bitwise_or", "bitwise_xor", "left_shift", "right_shift",
                "invert") else 2]:
            args = args[:1] if getattr(p.impl, "nin", 2) == 1 or name in ("real", "imag") \
                else args
            assert p.impl(*args) == python[name](*args), (name, args)
    # bools_as_ints: a python_operator whose Python operator reads bools as ints, where
    # its ufunc gives something else on bools (a bool, or an error); the others agree
    for name in declared - {"real", "imag"}:
        p = primitive_named(name)
        unary = getattr(p.impl, "nin", 2) == 1
        for args in [(True,), (False,)] if unary else [(True, True), (True, False)]:
            if name in ("true_divide", "floor_divide", "remainder") and not args[-1]:
                continue
            want = python[name](*args)
            assert p.impl(*[int(a) for a in args]) == want, (name, args)
            if not p.bools_as_ints:
                assert type(want) is bool and p.impl(*args) == want, (name, args)
            elif type(want) is bool:
                pytest.fail(f"{name} keeps bools in Python: no bools_as_ints")


def test_scalar_consts():
    a, b, c, d = v("a"), v("b"), v("c"), v("d")
    k = Var("k", (3,), F)
    seed = np.broadcast_to(np.float64(0.25), (3,))            # one number, stride 0
    g = Graph([a], [(k, seed)], [eq("multiply", [k, a], [b]), eq("multiply", [b, Literal(2.0)], [c]),
                                 eq("add", [c, k], [d])], [d])
    new = compiler.scalar_consts(g)
    assert [type(x).__name__ for x in new.eqns[0].invars] == ["Literal", "Var"]
    assert isinstance(new.eqns[2].invars[1], Literal)
    _same(g, new, X)
    # not an array of several values, not where the constant sets the output's shape or
    # dtype
    k2 = Var("k2", (2, 3), F)
    g2 = Graph([a], [(k, np.arange(3.0)), (k2, np.broadcast_to(0.5, (2, 3)))],
               [eq("multiply", [k, a], [b]), eq("multiply", [k2, b], [Var("e", (2, 3), F)])],
               [Var("e", (2, 3), F)])
    new = compiler.scalar_consts(g2)
    assert all(isinstance(x, Var) for e in new.eqns for x in e.invars)
    # the gradient of a mean is one product
    low = funcgrad.jit(funcgrad.grad(lambda x: fnp.mean(x ** 2))).lower(np.ones((4, 5)))
    assert [e.prim.name for e in low.eqns] == ["multiply"] and not low.consts
    np.testing.assert_allclose(low.compile()(np.arange(20.0).reshape(4, 5)),
                               np.arange(20.0).reshape(4, 5) * 2 / 20)


# ---- product_sums: code generation's rewrite of sum(a @ b) over the leading axes ------
def _product_graph(a_shape, b_shape, axis, keepdims=False, also_out=False):
    a, b = v("a", a_shape), v("b", b_shape)
    out = np.matmul(np.ones(a_shape), np.ones(b_shape)).shape
    p = v("p", out)
    red = tuple(d for i, d in enumerate(out) if i not in axis or keepdims)
    if keepdims:
        red = tuple(1 if i in axis else d for i, d in enumerate(out))
    s = v("s", red)
    return Graph([a, b], [], [eq("matmul", [a, b], [p]),
                              eq("sum", [p], [s], axis=axis, keepdims=keepdims)],
                 [s, p] if also_out else [s])


def _fused(graph):
    return [e.prim.name for e in compiler.product_sums(graph).eqns]


@pytest.mark.parametrize("a_shape,b_shape,axis", [
    ((4, 3, 2), (4, 2, 5), (0,)),
    ((2, 3, 4, 2), (2, 3, 2, 5), (0, 1)),
    ((2, 3, 4, 2), (2, 3, 2, 5), (1, 0)),
])
def test_product_sums_fuses_the_sum_over_every_leading_axis(a_shape, b_shape, axis):
    g = _product_graph(a_shape, b_shape, axis)
    assert _fused(g) == ["matmul+sum"]
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    for args in ((x, y), (np.swapaxes(x.swapaxes(-1, -2).copy(), -1, -2), y),   # strided a
                 (x, np.asfortranarray(y))):
        got = compiler.compile_graph(g, True)(*args)[0]
        np.testing.assert_allclose(got, np.matmul(*args).sum(axis=axis), rtol=1e-12)


@pytest.mark.parametrize("a_shape,b_shape,axis,keepdims,also_out", [
    ((4, 3, 2), (4, 2, 5), (1,), False, False),        # not the leading axes
    ((2, 3, 4, 2), (2, 3, 2, 5), (0,), False, False),   # only some of them
    ((4, 3, 2), (4, 2, 5), (0,), True, False),          # keepdims
    ((4, 3, 2), (4, 2, 5), (0,), False, True),          # the product is read elsewhere
    ((1, 3, 2), (4, 2, 5), (0,), False, False),         # broadcast leading axes
    ((4, 3, 2), (2, 5), (0,), False, False),            # a 2-D operand
    ((0, 3, 2), (0, 2, 5), (0,), False, False),         # empty
])
def test_product_sums_leaves_other_sums(a_shape, b_shape, axis, keepdims, also_out):
    g = _product_graph(a_shape, b_shape, axis, keepdims, also_out)
    assert "matmul+sum" not in _fused(g)
    rng = np.random.default_rng(1)
    args = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    got = compiler.compile_graph(g, True)(*args)
    want = eval_graph(g, *args)
    for w, x in zip(want, got):
        np.testing.assert_allclose(x, w, rtol=1e-12)


# ---- the passes never make a result share memory it did not share without jit --------
_NO_NEW_SHARING = {
    "a product by one folded away": (lambda x: x * 1.0, []),
    "two equal products merged": (lambda x: (x * 2.0, x * 2.0), []),
    "a product and the transpose of an equal one": (lambda x: (x * 2.0, (x * 2.0).T), []),
    "a product kept, another folded": (lambda x: (x + 1.0, (x * 1.0) * 3.0, x * 3.0), []),
    # sharing the function itself asks for is kept
    "the same value twice": (lambda x: (lambda y: (y, y))(x * 2.0), [(0, 1)]),
    "a value and its transpose": (lambda x: (lambda y: (y, y.T))(x * 2.0), [(0, 1)]),
    "the input and its reshape": (lambda x: (x, fnp.reshape(x, (6,))), [(0, 1), ("x", 0),
                                                                        ("x", 1)]),
}


@pytest.mark.parametrize("name", sorted(_NO_NEW_SHARING))
def test_jit_results_share_memory_only_where_the_function_does(name):
    fn, shared = _NO_NEW_SHARING[name]
    x = np.arange(6.0).reshape(2, 3)
    f = funcgrad.jit(fn)
    for call in range(3):                  # the first call traces; later ones replay
        out = f(x)
        out = out if isinstance(out, tuple) else (out,)
        pairs = [(i, j) for i in range(len(out)) for j in range(i + 1, len(out))]
        got = [(i, j) for i, j in pairs if np.shares_memory(out[i], out[j])]
        got += [("x", j) for j in range(len(out)) if np.shares_memory(x, out[j])]
        assert sorted(got, key=str) == sorted(shared, key=str), (name, call)
    # writing into a result changes neither the input nor the other results
    before = [np.array(o) for o in out]
    x_before = x.copy()
    free = [j for j in range(len(out)) if not any(j in p for p in shared)]
    for j in free:
        out[j][...] = -7.0
        np.testing.assert_array_equal(x, x_before)
        for k in range(len(out)):
            if k != j:
                np.testing.assert_array_equal(out[k], before[k])
        out[j][...] = before[j]


def test_copied_results_keep_values_and_the_step_graph_untouched():
    # the copies are only on the way out: the graph after the passes is unchanged
    f = funcgrad.jit(lambda x: (x * 2.0, x * 2.0))
    x = np.arange(3.0)
    low = f.lower(x)
    assert len(low.eqns) == 1
    a, b = f(x)
    np.testing.assert_array_equal(a, 2 * x)
    np.testing.assert_array_equal(b, 2 * x)
    assert compiler._new_aliases(low.graph(after="trace"), low.graph()) == (1,)


def test_result_sharing_check_stays_linear_on_long_view_chains():
    """A chain of 2000 equations that may return views (concatenate, getitem), each
    link an output: the sharing analysis caps what it tracks per value (None: may share
    anything) instead of growing a set per link, which was quadratic (seconds at 600
    links), and the results stay right."""
    def f(x):
        outs = []
        for _ in range(2000):
            x = fnp.concatenate([x[1:], x[:1]])
            outs.append(x[0])
        return outs
    x = np.arange(10.0)
    low = funcgrad.jit(f).lower(x)
    traced, simplified = low.graph(after="trace"), low.graph()
    sets = [names for names, _ in compiler._memory_of(traced)]
    assert sets[-1] is None                                # past the cap
    assert all(s is None or len(s) <= 65 for s in sets)    # the cap, plus the value itself
    assert compiler._new_aliases(traced, simplified) == ()
    got = funcgrad.jit(f)(x)
    np.testing.assert_array_equal(np.array(got), np.array(f(x)))


def _shares_x(f, x, calls=3):
    return [np.shares_memory(f(x), x) for _ in range(calls)]


def test_a_result_past_the_cap_is_still_copied_when_the_passes_make_it_the_input():
    """A chain of more views than _memory_of tracks by name (70 reshapes) after
    ``x * 1.0``: the traced sharing, past the cap, was 'unknown' and nothing was copied,
    so the replay returned a view of the argument (fold_scales makes ``x * 1.0`` x).
    The inputs a value may share are tracked exactly, whatever the chain's length."""
    def f(x):
        y = x * 1.0
        for i in range(70):
            y = y.reshape(3, 2) if i % 2 == 0 else y.reshape(2, 3)
        return y
    x = np.arange(6.0).reshape(2, 3)
    assert _shares_x(funcgrad.jit(f), x) == [False] * 3
    out = funcgrad.jit(f)(x)
    np.testing.assert_array_equal(out, x)


@pytest.mark.parametrize("name", ["scan carry", "scan last x as carry", "scan ys",
                                  "nested jit", "nested jit, two equal results"])
def test_sub_graphs_passes_make_no_sharing(name):
    """A control-flow body or a nested jit is simplified by the same passes
    (compiler._compile_subgraph) and must not make sharing either: a scan whose carry is
    ``c * 1.0`` returned its argument itself, a scan whose ys are ``x * 1.0`` (computed
    after the loop over all steps at once) its xs, a nested jit of ``y * 1.0`` its
    argument (the outer graph's call equation hid it from _new_aliases: it may view its
    operands); eagerly none of them does."""
    fns = {
        "scan carry": lambda x: lax.scan(lambda c, a: (c * 1.0, None), x, None,
                                         length=3)[0],
        "scan last x as carry": lambda x: lax.scan(lambda c, a: (a * 1.0, None),
                                                   x[0] * 0.0, x)[0],
        "scan ys": lambda x: lax.scan(lambda c, a: (c, a * 1.0), x[0], x)[1],
        "nested jit": lambda x: funcgrad.jit(lambda y: y * 1.0)(x),
        "nested jit, two equal results": lambda x: funcgrad.jit(
            lambda y: (y * 2.0, y * 2.0))(x),
    }
    fn = fns[name]
    x = np.arange(6.0).reshape(2, 3)
    f = funcgrad.jit(fn)
    for call in range(3):
        out = f(x)
        out = out if isinstance(out, tuple) else (out,)
        arrays = [o for o in out if isinstance(o, np.ndarray)]
        assert not any(np.shares_memory(o, x) for o in arrays), (name, call)
        assert not any(np.shares_memory(a, b) for i, a in enumerate(arrays)
                       for b in arrays[:i]), (name, call)
        want = fn(x)
        want = want if isinstance(want, tuple) else (want,)
        for o, w in zip(out, want):
            np.testing.assert_array_equal(o, w)
