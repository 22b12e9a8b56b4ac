"""The floor plan holds: the package's import graph has no circle, and no module imports from a layer above its own.

The graph is read from the source with ``ast`` (every ``import``, lazy ones inside functions and ``TYPE_CHECKING``
ones included), so it is the graph a reader sees. ``python tests/test_layers.py`` prints it as a Mermaid diagram of
the packages (docs/architecture.md holds one).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from helpers import REPO

PACKAGE = REPO / "harness"
LAYERS: list[tuple[str, ...]] = [
    # 0: the ground floor: errors, the run directory, logging, config schemas
    ("harness", "harness.errors", "harness.store", "harness.console", "harness.config"),
    # 1: the pipeline's inputs and pure statistics
    ("harness.traffic", "harness.analysis.paired", "harness.analysis.margin", "harness.golden.metrics",
     "harness.golden.schema"),
    # 2: policy, engines, plug-in registries, the Ray session
    ("harness.gate", "harness.engines", "harness.signals.registry", "harness.ray_session"),
    # 3: the typed run spec and manifest
    ("harness.spec",),
    # 4-8: the pipeline, in its order: replay -> signals -> analysis -> report -> the recipe
    ("harness.replay",),
    ("harness.signals",),
    ("harness.analysis", "harness.golden"),
    ("harness.report",),
    ("harness.run",),
    # 9: beside the pipeline: live canaries, the fixture models, the labelling kit, the watch
    ("harness.canary", "harness.fixtures", "harness.annotate", "harness.watch"),
    # 10: entry points and benchmarks
    ("harness.cli", "harness.__main__", "harness.bench", "harness.starter"),
]


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package modules it imports (a name imported from a package counts as that package)."""
    edges: dict[str, set[str]] = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    found.add(full if full in mods else base)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        edges[name] = {m for m in found if m in mods and m != name}
    return edges


def layer(module: str) -> int:
    """The layer of a module: the most specific prefix listed in ``LAYERS``."""
    best, depth = -1, -1
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > depth:
                best, depth = i, len(p)
    return best


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_every_module_has_a_layer() -> None:
    assert [m for m in modules() if layer(m) < 0] == []


def test_the_import_graph_has_no_circle() -> None:
    assert cycles(imports(modules())) == []


def test_no_module_imports_from_a_layer_above_its_own() -> None:
    edges = imports(modules())
    upward = sorted(f"{a} (layer {layer(a)}) -> {b} (layer {layer(b)})" for a, bs in edges.items() for b in bs
                    if layer(b) > layer(a))
    assert upward == []


def test_no_private_name_is_imported_across_modules() -> None:
    """``from harness.x import _name`` makes a module's private detail another's contract: make it public or move it."""
    found = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("harness"):
                found += [f"{name} imports {node.module}.{a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
    assert found == []


def mermaid() -> str:
    """The graph between the units ``LAYERS`` names (a module counts as its most specific prefix there),
    transitively reduced (an edge a longer path already implies is left out), bottom to top, as a Mermaid flowchart."""
    def unit(m: str) -> str:
        return max((p for ps in LAYERS for p in ps if m == p or m.startswith(p + ".")), key=len)

    edges: dict[str, set[str]] = {}
    for a, bs in imports(modules()).items():
        for b in bs:
            ua, ub = unit(a), unit(b)
            if ua != ub:
                edges.setdefault(ua, set()).add(ub)

    def reach(u: str, seen: set[str]) -> set[str]:
        for v in edges.get(u, ()):
            if v not in seen:
                seen.add(v)
                reach(v, seen)
        return seen

    kept = sorted((a, b) for a, bs in edges.items() for b in bs
                  if not any(b in reach(c, {c}) for c in bs - {b}))
    lines = ["flowchart BT"]
    lines += [f"  {a.replace('.', '_')}[{a}] --> {b.replace('.', '_')}[{b}]" for a, b in kept]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    print(mermaid())
