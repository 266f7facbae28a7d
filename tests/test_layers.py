"""The package's imports point down the layers written in docs/DESIGN.md, and form no cycle.

Every ``import`` / ``from … import`` of every module of ``ibntrack`` is read with ``ast`` (imports inside
functions and ``TYPE_CHECKING`` blocks included). A module's *room* is the first name under
``ibntrack`` (``ibntrack.nn.fold`` → ``nn``, ``ibntrack/cli.py`` → ``cli``, the package itself →
``(root)``). A room may import itself and rooms of lower layers only.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ibntrack"
DESIGN = ROOT / "docs" / "DESIGN.md"

_ROW = re.compile(r"^\s*(\d+)\s*\|\s*([^|]+?)\s*\|")
_ALLOWED = re.compile(r"^\s*allowed\s*\|\s*(\S+)\s*->\s*(\S+)\s*\|")


def read_layers(text: str) -> tuple[dict[str, int], set[tuple[str, str]]]:
    """``({room: layer}, {(from room, to room) allowed upward})`` from the first ```text block after
    the "## Layers" heading."""
    section = text.split("## Layers", 1)[1]
    block = section.split("```text", 1)[1].split("```", 1)[0]
    layers: dict[str, int] = {}
    allowed: set[tuple[str, str]] = set()
    for line in block.splitlines():
        if m := _ALLOWED.match(line):
            allowed.add((m.group(1), m.group(2)))
        elif m := _ROW.match(line):
            for room in m.group(2).split():
                assert room not in layers, f"room {room} is listed twice in docs/DESIGN.md"
                layers[room] = int(m.group(1))
    return layers, allowed


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def room_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "(root)"


def imports_of(path: Path, module: str, modules: set[str]) -> set[str]:
    """The ``ibntrack`` modules that ``path`` (module ``module``) imports, resolved to ``modules``."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            targets = [name] + [f"{name}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        for name in targets:
            if name != "ibntrack" and not name.startswith("ibntrack."):
                continue
            while name not in modules and "." in name:
                name = name.rpartition(".")[0]
            if name in modules and name != module:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports_of(p, module_name(p), modules) for p in paths}


LAYERS, ALLOWED = read_layers(DESIGN.read_text(encoding="utf-8"))
GRAPH = import_graph()


def test_the_layer_table_is_read_and_names_every_room() -> None:
    assert len(LAYERS) >= 10 and LAYERS["cli"] > LAYERS["engine"] > LAYERS["runtime"] > LAYERS["nn"]
    rooms = {room_of(m) for m in GRAPH}
    missing = sorted(rooms - set(LAYERS))
    assert not missing, f"rooms without a layer in docs/DESIGN.md: {missing}"


def test_no_import_points_up_or_sideways() -> None:
    bad = []
    for module, targets in sorted(GRAPH.items()):
        src = room_of(module)
        for target in sorted(targets):
            dst = room_of(target)
            if dst == src or (src, dst) in ALLOWED:
                continue
            if LAYERS[dst] >= LAYERS[src]:
                bad.append(f"{module} (layer {LAYERS[src]}) imports {target} (layer {LAYERS[dst]})")
    assert not bad, "imports against docs/DESIGN.md's layers:\n" + "\n".join(bad)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_no_import_cycles() -> None:
    graph = {
        m: {t for t in targets if (room_of(m), room_of(t)) not in ALLOWED} for m, targets in GRAPH.items()
    }
    assert _cycles(graph) == []


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": set()}, []),
    ],
)
def test_the_cycle_finder_finds_cycles(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert _cycles(graph) == expected


def test_the_checks_catch_an_upward_import(tmp_path: Path) -> None:
    """A leaf module importing the engine is reported (the walk sees function-level imports)."""
    fake = tmp_path / "sizes.py"
    fake.write_text("def f():\n    from ibntrack.engine.infer import Tracker\n", encoding="utf-8")
    modules = {"ibntrack.sizes", "ibntrack.engine.infer", "ibntrack.engine"}
    assert imports_of(fake, "ibntrack.sizes", modules) == {"ibntrack.engine.infer"}
    assert LAYERS[room_of("ibntrack.engine.infer")] > LAYERS[room_of("ibntrack.sizes")]
