"""The import graph of funcgrad: layers only point down (docs/design.md), no module
imports another in a circle, and funcgrad modules are imported at the top of a file."""
import ast
import pathlib

import pytest

import funcgrad

ROOT = pathlib.Path(funcgrad.__file__).resolve().parent

# lower number = lower layer; a module may import its own layer or the ones below
_LAYERS = [
    ("funcgrad._src.errors", "funcgrad._src.threads", "funcgrad._src.config",
     "funcgrad._src.tree_util", "funcgrad._src.backend",
     "funcgrad._src.testing_backend", "funcgrad._src"),
    ("funcgrad._src.core",),
    ("funcgrad._src.ad", "funcgrad._src.batching", "funcgrad._src.staging", "funcgrad._src.ir",
     "funcgrad._src.rows", "funcgrad._src.fusion"),
    ("funcgrad._src.prims",),
    ("funcgrad._src.api", "funcgrad._src.custom", "funcgrad._src.compiler",
     "funcgrad._src.numba_backend", "funcgrad._src.numba_loops",
     "funcgrad._src.cupy_kernels"),
]


def _modules():
    mods = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _layer(mod):
    """The layer of the longest entry naming ``mod`` or a package holding it (so that
    ``funcgrad._src`` itself is the base, but ``funcgrad._src.api`` is the api layer)."""
    best = None
    for i, names in enumerate(_LAYERS):
        for n in names:
            if (mod == n or mod.startswith(n + ".")) and (best is None or len(n) > best[1]):
                best = (i, len(n))
    return len(_LAYERS) if best is None else best[0]   # the public namespaces: .numpy, ...


def _imports(mod, path):
    """(imported funcgrad module, line, at the top of the file?) for each import."""
    tree = ast.parse(path.read_text())
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    top = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = package.split(".")
                pkg = pkg[:len(pkg) - node.level + 1]
                base = ".".join(pkg + ([base] if base else []))
            targets = []
            for a in node.names:
                sub = f"{base}.{a.name}"
                targets.append(sub if sub in MODULES else base)
        else:
            continue
        for t in targets:
            if t in MODULES and t != mod:
                out.append((t, node.lineno, id(node) in top))
    return out


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def test_no_import_runs_up_the_layers():
    up = [f"{m}:{line} imports {t}" for m, imps in GRAPH.items() for t, line, _ in imps
          if _layer(t) > _layer(m)]
    assert not up, "\n".join(up)


def test_no_circle_of_imports():
    state = {}

    def visit(m, trail):
        state[m] = "open"
        for t, _, _ in GRAPH[m]:
            if state.get(t) == "open":
                pytest.fail("circle: " + " -> ".join(trail[trail.index(t):] + [t]))
            if t not in state:
                visit(t, trail + [t])
        state[m] = "done"

    for m in sorted(GRAPH):
        if m not in state:
            visit(m, [m])


def test_funcgrad_modules_are_imported_at_the_top():
    local = [f"{m}:{line} imports {t}" for m, imps in GRAPH.items() for t, line, top in imps
             if not top]
    assert not local, "\n".join(local)


def test_primitives_are_made_only_in_prims():
    offenders = [str(p.relative_to(ROOT.parent)) for m, p in MODULES.items()
                 if "Primitive(" in p.read_text() and not m.startswith("funcgrad._src.prims")
                 and m != "funcgrad._src.core"]
    assert not offenders, offenders


def test_each_module_gets_its_own_layer_not_its_packages():
    assert _layer("funcgrad._src.api") == 4 and _layer("funcgrad._src.prims.windows") == 3
    assert _layer("funcgrad._src.staging") == 2 and _layer("funcgrad._src.core") == 1
    assert _layer("funcgrad._src.blas") == 0 and _layer("funcgrad.numpy") == len(_LAYERS)
