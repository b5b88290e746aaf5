"""The import direction of DESIGN.md, enforced on the source tree."""

from __future__ import annotations

import ast
from pathlib import Path

import branchwork

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
ALLOWED_SIDEWAYS = {("api", "web"), ("web", "api")}
FRONT_END_ONLY = {"typer": {"cli"}, "fastapi": {"api", "web"}, "starlette": {"api", "web"}}


def _package_of(path: Path) -> str | None:
    rel = path.relative_to(SRC)
    if len(rel.parts) == 1:
        return None if rel.stem == "__init__" else rel.stem
    return rel.parts[0]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _violations() -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        package = _package_of(path)
        if package is None or package not in LAYERS:
            continue
        for name in _imports(path):
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


def test_imports_point_inwards_only() -> None:
    assert _violations() == []


def test_domain_does_no_io() -> None:
    forbidden = {"subprocess", "sqlalchemy", "socket", "httpx", "os"}
    for path in (SRC / "domain").rglob("*.py"):
        assert not (_imports(path) & forbidden), path


def test_public_facade_exports_what_it_lists() -> None:
    for name in branchwork.__all__:
        assert hasattr(branchwork, name), name
    assert "Workspace" in branchwork.__all__
