"""The import graph of `syncd` points down: no layer imports one above it, no package cycle.

The layers are DESIGN.md's: `protocol` is pure; `room` and `storage` build on it (and on
the pure helpers); `bus` connects rooms to storage; `auth` and the generic `jobs` use the
bus's key layout and storage; `services` are the use cases over all of them; `api` and
`transport` are the edges; `wiring`, `app` and `cli` assemble the process. Imports under
`if TYPE_CHECKING:` count too: a type from a higher layer is a dependency all the same.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import syncd

ROOT = Path(syncd.__file__).parent

#: rank of each component; an import must go to a strictly lower rank (or stay inside
#: its own component). Components of one rank may not import each other.
RANKS: dict[str, int] = {
    # the pure wire format
    "protocol": 0,
    # pure helpers, no I/O
    "updates": 1,
    "ids": 1,
    "metrics": 1,
    "settings": 1,
    "backoff": 1,
    "content": 2,
    # the core, per DESIGN.md
    "room": 3,
    "storage": 3,
    "bus": 4,
    "auth": 5,
    "jobs": 5,
    # the middle
    "services": 6,
    # the edges
    "api": 7,
    "transport": 7,
    # assembly
    "wiring": 8,
    "app": 9,
    "cli": 10,
    "__main__": 11,
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = ROOT.parent.joinpath(*name.split("."))
    return path.is_dir() or path.with_suffix(".py").is_file()


def _imports(path: Path) -> set[str]:
    """The syncd modules `path` imports (absolute, as this code base writes them); for
    `from package import name`, the submodule `name` when it is one."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("syncd."))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module != "syncd" and not node.module.startswith("syncd."):
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if _is_module(sub) else node.module)
    return found - {"syncd"}


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        graph[_module_name(path)] = _imports(path)
    return graph


def _component(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def _package(module: str) -> str:
    """The package a module belongs to: `syncd.X`, or `syncd.services.X` in the middle."""
    parts = module.split(".")
    return ".".join(parts[:3] if parts[1:2] == ["services"] else parts[:2])


def test_every_component_has_a_rank() -> None:
    components = {_component(module) for module in _graph()} - {""}
    assert components <= set(RANKS), f"give these a rank: {sorted(components - set(RANKS))}"


def test_no_import_points_up() -> None:
    violations = []
    for module, imported in sorted(_graph().items()):
        source = _component(module)
        for target in sorted(imported):
            dest = _component(target)
            if not source or dest == source or dest == "":
                continue
            if RANKS[dest] >= RANKS[source]:
                violations.append(f"{module} ({source}) imports {target} ({dest})")
    assert violations == []


def test_protocol_imports_nothing_of_syncd() -> None:
    for module, imported in _graph().items():
        if _component(module) == "protocol":
            assert {_component(target) for target in imported} <= {"protocol"}, module


def test_the_core_never_imports_the_web_stack() -> None:
    web = ("starlette", "socketio", "uvicorn")
    for path in ROOT.rglob("*.py"):
        component = _component(_module_name(path))
        if component not in {"protocol", "room", "bus", "storage"}:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not [n for n in names if n.split(".")[0] in web], path


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph, or None (depth-first search, colouring the nodes)."""
    state: dict[str, int] = defaultdict(int)  # 0 new, 1 on the path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state[nxt] == 1:
                return [*path[path.index(nxt) :], nxt]
            if state[nxt] == 0 and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if state[node] == 0 and (found := visit(node)) is not None:
            return found
    return None


def test_no_package_cycle() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for module, imported in _graph().items():
        for target in imported:
            if _package(target) != _package(module):
                edges[_package(module)].add(_package(target))
    assert _cycle(edges) is None


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
