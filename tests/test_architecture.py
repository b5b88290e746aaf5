"""The shape of DESIGN.md, enforced on the source tree: imports point inwards, no package has a
cycle among its modules, front-ends see only the facade, and one recorder appends events."""

from __future__ import annotations

import ast
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest

import branchwork
from branchwork import Workspace

SRC = Path(branchwork.__file__).parent

# Lower layers never import higher ones. Same-layer packages may not import each other
# unless listed in ALLOWED_SIDEWAYS.
LAYERS: dict[str, int] = {
    "domain": 0,
    "settings": 1,
    "store": 2,
    "gitops": 2,
    "sandbox": 2,
    "providers": 2,
    "index": 3,
    "agent": 4,
    "service": 5,
    "cli": 6,
    "api": 6,
    "web": 6,
}
ALLOWED_SIDEWAYS = {("api", "web"), ("web", "api"), ("cli", "api")}  # `serve` starts the API
FRONT_END_ONLY = {"typer": {"cli"}, "fastapi": {"api", "web"}, "starlette": {"api", "web"}}
FRONT_ENDS = {"cli", "api", "web"}
# What a front-end may import of ours: the public facade, its own package, the lazy loader;
# and the front-ends they start or serve (`branchwork serve` starts the API, the API serves the
# web UI).
FRONT_END_MAY_IMPORT = {"branchwork", "branchwork._lazy"}
FRONT_END_MAY_START = {"cli": {"branchwork.api"}, "api": {"branchwork.web"}}
# Event-log writes of the store: only the recorder calls them.
LOG_WRITES = {"append", "add_session", "set_status"}
RECORDER = SRC / "service" / "recorder.py"


def _package_of(path: Path) -> str | None:
    rel = path.relative_to(SRC)
    if len(rel.parts) == 1:
        return None if rel.stem == "__init__" else rel.stem
    return rel.parts[0]


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = ["branchwork", *rel.parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str) -> set[str]:
    """Modules a source imports: import statements (at any depth) and `lazy_module("…")`."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif _is_lazy_call(node):
            names.update(_lazy_names(node))
    return names


def _is_lazy_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "lazy_module"
    )


def _lazy_names(node: ast.AST) -> Iterator[str]:
    """`lazy_module("a.b")`, or `lazy_module(f"a.{name}") for name in ("x", "y")`."""
    assert isinstance(node, ast.Call)
    arg = node.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        yield arg.value
    elif isinstance(arg, ast.JoinedStr):
        prefix = "".join(v.value for v in arg.values if isinstance(v, ast.Constant))
        yield prefix + "*"


def _sources() -> Iterator[tuple[Path, str]]:
    for path in sorted(SRC.rglob("*.py")):
        yield path, path.read_text()


def _violations() -> list[str]:
    found = []
    for path, source in _sources():
        package = _package_of(path)
        if package is None or package not in LAYERS:
            continue
        for name in imports_of(source):
            found += _check(path, package, name)
    return found


def _check(path: Path, package: str, name: str) -> list[str]:
    top = name.split(".")[0]
    if top in FRONT_END_ONLY and package not in FRONT_END_ONLY[top]:
        return [f"{path.relative_to(SRC)} imports {top} (front-ends only)"]
    parts = name.split(".")
    if parts[0] != "branchwork" or len(parts) < 2:
        return []
    target = parts[1]
    if target not in LAYERS or target == package:
        return []
    if (package, target) in ALLOWED_SIDEWAYS:
        return []
    if LAYERS[target] >= LAYERS[package]:
        return [f"{path.relative_to(SRC)} ({package}) imports branchwork.{target}"]
    return []


def module_graph(sources: dict[str, str]) -> dict[str, set[str]]:
    """Module → the modules of ours it imports (a package's `__init__` counts as the package;
    `pkg.*` from a lazy f-string stands for every module of `pkg`)."""
    graph: dict[str, set[str]] = {}
    for module, source in sources.items():
        targets: set[str] = set()
        for name in imports_of(source):
            if name.endswith(".*"):
                prefix = name[:-1]
                targets.update(m for m in sources if m.startswith(prefix))
            elif name in sources:
                targets.add(name)
        graph[module] = targets - {module}
    return graph


def cycles_within_packages(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles among the modules of one package (a package's `__init__` re-exporting its
    own modules is not a cycle: it is the package's face, not one of its rooms)."""
    found: list[list[str]] = []
    for start in sorted(graph):
        package = start.rsplit(".", 1)[0]
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt.rsplit(".", 1)[0] != package or nxt == package:
                    continue
                if nxt == start:
                    found.append([*path, start])
                elif nxt not in path and len(path) < 12:
                    stack.append((nxt, [*path, nxt]))
    return found


def _our_sources() -> dict[str, str]:
    return {_module_name(path): source for path, source in _sources()}


def test_imports_point_inwards_only() -> None:
    assert _violations() == []


def test_no_package_has_an_import_cycle_among_its_modules() -> None:
    assert cycles_within_packages(module_graph(_our_sources())) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    sources = {
        "branchwork.service.a": "from branchwork.service import b\n",
        "branchwork.service.b": "def f():\n    from branchwork.service.c import x\n",
        "branchwork.service.c": "x = lazy_module('branchwork.service.a')\n",
        "branchwork.service.d": "import branchwork.service.a\n",
    }
    cycles = cycles_within_packages(module_graph(sources))
    assert ["branchwork.service.a", "branchwork.service.b", "branchwork.service.c"] in [
        c[:3] for c in cycles
    ]
    assert not any("branchwork.service.d" in c for c in cycles)


def test_front_ends_import_only_the_public_facade() -> None:
    for path, source in _sources():
        if _package_of(path) not in FRONT_ENDS:
            continue
        for name in imports_of(source):
            ours = name.startswith("branchwork.") or name == "branchwork"
            own = name.startswith(f"branchwork.{_package_of(path)}")
            parent = name.rsplit(".", 1)[0] if "." in name else ""
            allowed = name in FRONT_END_MAY_IMPORT or parent in FRONT_END_MAY_IMPORT
            started = FRONT_END_MAY_START.get(str(_package_of(path)), set())
            allowed = allowed or any(name.startswith(s) for s in started)
            assert not ours or own or allowed, f"{path.relative_to(SRC)} imports {name}"


def test_only_the_recorder_writes_the_event_log() -> None:
    for path, source in _sources():
        if path == RECORDER or _package_of(path) == "store":
            continue
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Attribute) and node.attr in LOG_WRITES:
                base = ast.unparse(node.value)
                assert "store" not in base, f"{path.relative_to(SRC)} calls {base}.{node.attr}"


def test_our_modules_are_imported_at_the_top_never_inside_a_function() -> None:
    """An import inside a function hides a dependency (and so, a cycle); a module needed late
    for start-up time is declared at the top with `lazy_module`."""
    for path, source in _sources():
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith(
                    "branchwork"
                ):
                    raise AssertionError(f"{path.relative_to(SRC)}:{inner.lineno} {inner.module}")


def test_domain_does_no_io() -> None:
    forbidden = {"subprocess", "sqlalchemy", "socket", "httpx", "os"}
    for path in (SRC / "domain").rglob("*.py"):
        assert not (imports_of(path.read_text()) & forbidden), path


def test_public_facade_exports_what_it_lists() -> None:
    for name in branchwork.__all__:
        assert hasattr(branchwork, name), name
    assert "Workspace" in branchwork.__all__


def _public_types(hint: object) -> Iterator[type]:
    origin = typing.get_origin(hint)
    if origin is not None:
        for arg in typing.get_args(hint):
            yield from _public_types(arg)
        return
    if isinstance(hint, type) and hint.__module__.startswith("branchwork"):
        yield hint


@pytest.mark.parametrize(
    "method",
    [m for m in dir(Workspace) if not m.startswith("_") and callable(getattr(Workspace, m))],
)
def test_every_type_in_the_facade_is_exported(method: str) -> None:
    namespace = {name: getattr(branchwork, name) for name in branchwork.__all__}
    hints = typing.get_type_hints(getattr(Workspace, method), localns=namespace)
    for hint in hints.values():
        for used in _public_types(hint):
            assert getattr(branchwork, used.__name__, None) is used, (method, used)
