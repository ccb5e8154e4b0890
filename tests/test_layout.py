"""The package's shape: no import cycle between vidiff's modules, no module importing a layer above
its own (docs/architecture.md, "Layers"), and no file over 600 lines.

The import graph is read from the source with ``ast`` (nothing is imported): every ``import vidiff...``
and ``from vidiff... import`` (or relative import) anywhere in a module, at top level or inside a
function, is an edge to the module it names (to a submodule when the imported name is one).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "vidiff"
MAX_LINES = 600
# docs/architecture.md's layers, lowest first: a module may import from its own layer and those below.
LAYERS = [
    {"vidiff", "errors"},
    {"files"},
    {"config"},
    {"registry", "runtime", "data"},
    {"nn", "interop"},
    {"models"},
    {"diffusion", "sampling"},
    {"pipeline", "pipeline_edit", "adapters"},
    {"families"},
    {"eval"},
    {"train"},
    {"distill"},
    {"app"},
    {"commands"},
    {"cli"},
]
# Imports up a layer that the architecture page names as deliberate, with its reason.
UPWARD_ALLOWED = {
    (
        "vidiff.models.inflate",
        "vidiff.pipeline",
    ): "inflation builds and writes a whole VideoPipeline",
}


def _modules() -> dict[str, Path]:
    mods = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = path
    return mods


def _imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in mods else target)
    return {m for m in found if m in mods and m != name}


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: _imports(name, path, mods) for name, path in mods.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle ``[a, b, ..., a]`` of ``graph`` (depth-first search), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_graph_sees_function_level_and_relative_imports():
    graph = import_graph()
    assert "vidiff.eval.judges" in graph["vidiff.eval.probes"]  # imported inside score_shapes
    assert "vidiff.data.sheet" in graph["vidiff.data"]  # ``from .sheet import make_sheet``


def test_no_import_cycle_between_vidiff_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def layer_of(module: str) -> int:
    """The index in :data:`LAYERS` of ``module``'s part of vidiff (``vidiff.models.dit``: models)."""
    part = module.split(".")[1] if "." in module else module
    (index,) = [i for i, layer in enumerate(LAYERS) if part in layer]
    return index


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return [
        f"{a} (layer {layer_of(a)}) imports {b} (layer {layer_of(b)})"
        for a, targets in sorted(graph.items())
        for b in sorted(targets)
        if layer_of(b) > layer_of(a) and (a, b) not in UPWARD_ALLOWED
    ]


def test_the_layer_check_sees_an_upward_import():
    graph = {"vidiff.nn.attention": {"vidiff.models.dit"}, "vidiff.models.dit": {"vidiff.nn"}}
    assert upward_imports(graph) == [
        "vidiff.nn.attention (layer 4) imports vidiff.models.dit (layer 5)"
    ]


def test_every_part_of_vidiff_has_a_layer():
    parts = {m.split(".")[1] if "." in m else m for m in import_graph()}
    assert parts == set().union(*LAYERS), "name each new package or module in LAYERS (and the docs)"


def test_no_module_imports_a_layer_above_it():
    graph = import_graph()
    assert not upward_imports(graph), "imports up a layer:\n" + "\n".join(upward_imports(graph))
    for a, b in UPWARD_ALLOWED:
        assert b in graph[a], f"{a} no longer imports {b}: drop it from UPWARD_ALLOWED"


def test_no_file_over_600_lines():
    lengths = {
        p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines()) for p in ROOT.rglob("*.py")
    }
    over = {name: n for name, n in sorted(lengths.items()) if n > MAX_LINES}
    assert not over, f"files over {MAX_LINES} lines (split them): {over}"
