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
