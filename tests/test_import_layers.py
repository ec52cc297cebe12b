"""The package's import graph: no module imports another that imports it back (directly or through others), and
no import runs from a lower layer up to a higher one. Function-level imports count too: a lazy import is still
a dependency. The layers are the architecture the README draws."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import anycost

ROOT = Path(anycost.__file__).parent

#: Bottom to top. A module may import its own layer and the ones below; the root (the public API) and the
#: command line sit on top of everything.
LAYERS = (
    ("anycost._version", "anycost.checks", "anycost.fileio", "anycost.images", "anycost.jsonrecord", "anycost.memory",
     "anycost.subnet", "anycost.assets", "anycost.cli_args"),
    ("anycost.ops",),
    ("anycost.models",),
    ("anycost.data", "anycost.metrics"),
    ("anycost.benchmark", "anycost.training", "anycost.editing", "anycost.projection", "anycost.search",
     "anycost.preview", "anycost.gan_compression", "anycost.compression"),
    ("anycost.app",),
    ("anycost", "anycost.cli"),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> set[str]:
    """The anycost modules `path` imports anywhere in its body (`from anycost import x` of a submodule is x)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("anycost")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("anycost"):
            subs = {f"{node.module}.{a.name}" for a in node.names} & known
            out |= subs or {node.module}
            if len(subs) < len(node.names):
                out.add(node.module)
    return out & known


def layer_of(name: str) -> int:
    best = max((p for layer in LAYERS for p in layer if name == p or name.startswith(p + ".")), key=len)
    return next(i for i, layer in enumerate(LAYERS) if best in layer)


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(path, set(found)) - {name} for name, path in found.items()}


def test_every_module_has_a_layer(graph):
    for name in graph:
        layer_of(name)  # raises when no prefix matches


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} (layer {layer_of(a)}) -> {b} (layer {layer_of(b)})"
                  for a, targets in graph.items() for b in targets
                  if layer_of(b) > layer_of(a) and not b.startswith(a + "."))  # a package may re-export its modules


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of imports by depth-first search, or None. A module "importing" its own package (which runs that
    package's __init__) is not an edge back."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name)):
            return cycle
    return None


def test_no_import_runs_up_a_layer(graph):
    upward = upward_imports(graph)
    assert not upward, "imports that run up a layer:\n" + "\n".join(upward)


def test_no_import_cycle(graph):
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_checks_catch_a_cycle_and_an_upward_import(graph):
    """The checks can fail: the real graph plus one made-up import back from the ops to a model is caught twice."""
    bad = {**graph, "anycost.ops.ref": graph["anycost.ops.ref"] | {"anycost.models.stylegan2.layers"}}
    assert upward_imports(bad) == ["anycost.ops.ref (layer 1) -> anycost.models.stylegan2.layers (layer 2)"]
    cycle = find_cycle(bad)
    assert cycle is not None and "anycost.ops.ref" in cycle and "anycost.models.stylegan2.layers" in cycle
    assert "anycost.ops" in graph["anycost.models.stylegan2.layers"]  # the edge the cycle closes with
