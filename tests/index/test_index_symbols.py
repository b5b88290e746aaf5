"""Symbols of the eight languages, go to definition, outlines and the repo map."""

from __future__ import annotations

from pathlib import Path

import pytest

from branchwork.domain.errors import InvalidInput
from branchwork.index import CodeIndex
from tests.index.conftest import commit, new_repo

SAMPLES: dict[str, str | bytes] = {
    "py/shapes.py": (
        "class Shape:\n"
        "    def area(self):\n"
        "        return 0\n"
        "\n"
        "\n"
        "def make_shape():\n"
        "    return Shape()\n"
    ),
    "js/widget.js": (
        "class Widget {\n"
        "  render() { return 1; }\n"
        "}\n"
        "function mount(el) {}\n"
        "const unmount = (el) => null;\n"
    ),
    "ts/store.ts": (
        "export interface Item { id: number }\n"
        "export type ItemId = number;\n"
        "export enum Color { Red }\n"
        "export class Store {\n"
        "  add(item: Item): void {}\n"
        "}\n"
        "export function createStore(): Store { return new Store(); }\n"
    ),
    "ts/view.tsx": (
        "export class Panel {\n"
        "  draw() { return <div />; }\n"
        "}\n"
        "export const Button = () => <button />;\n"
    ),
    "go/server.go": (
        "package server\n"
        "\n"
        "type Server struct{ port int }\n"
        "\n"
        "type Handler interface{ Serve() }\n"
        "\n"
        "func (s *Server) Start() error { return nil }\n"
        "\n"
        "func NewServer() *Server { return &Server{} }\n"
    ),
    "rs/lib.rs": (
        "pub struct Point { x: i32 }\n"
        "pub trait Draw { fn draw(&self); }\n"
        "impl Point {\n"
        "    pub fn norm(&self) -> i32 { self.x }\n"
        "}\n"
        "pub enum Shape { Dot }\n"
        "pub fn origin() -> Point { Point { x: 0 } }\n"
    ),
    "java/App.java": (
        "public class App {\n"
        "    public App() {}\n"
        "    public void run() {}\n"
        "}\n"
        "interface Runner { void go(); }\n"
        "enum Mode { FAST }\n"
    ),
    "c/list.c": (
        "struct node { int value; };\n"
        "typedef struct node node_t;\n"
        "#define MAX_NODES 64\n"
        "static int *list_head(void) { return 0; }\n"
        "int list_len(struct node *n) { return 0; }\n"
    ),
    "cpp/engine.cpp": (
        "namespace game {\n"
        "class Engine {\n"
        " public:\n"
        "  void tick();\n"
        "  int speed() const { return 1; }\n"
        "};\n"
        "}\n"
        "void game::Engine::tick() {}\n"
        "struct Vec2 { float x; };\n"
    ),
}

EXPECTED = {
    "python": {("Shape", "class", None, 1), ("area", "method", "Shape", 2),
               ("make_shape", "function", None, 6)},
    "javascript": {("Widget", "class", None, 1), ("render", "method", "Widget", 2),
                   ("mount", "function", None, 4), ("unmount", "function", None, 5)},
    "typescript": {("Item", "interface", None, 1), ("ItemId", "type", None, 2),
                   ("Color", "enum", None, 3), ("Store", "class", None, 4),
                   ("add", "method", "Store", 5), ("createStore", "function", None, 7)},
    "tsx": {("Panel", "class", None, 1), ("draw", "method", "Panel", 2),
            ("Button", "function", None, 4)},
    "go": {("Server", "struct", None, 3), ("Handler", "interface", None, 5),
           ("Start", "method", "Server", 7), ("NewServer", "function", None, 9)},
    "rust": {("Point", "struct", None, 1), ("Draw", "trait", None, 2),
             ("draw", "method", "Draw", 2), ("norm", "method", "Point", 4),
             ("Shape", "enum", None, 6), ("origin", "function", None, 7)},
    "java": {("App", "class", None, 1), ("App", "method", "App", 2), ("run", "method", "App", 3),
             ("Runner", "interface", None, 5), ("go", "method", "Runner", 5),
             ("Mode", "enum", None, 6)},
    "c": {("node", "struct", None, 1), ("node_t", "type", None, 2),
          ("MAX_NODES", "macro", None, 3), ("list_head", "function", None, 4),
          ("list_len", "function", None, 5)},
    "cpp": {("game", "module", None, 1), ("Engine", "class", "game", 2),
            ("tick", "method", "Engine", 4), ("speed", "method", "Engine", 5),
            ("tick", "method", "Engine", 8), ("Vec2", "struct", None, 9)},
}  # fmt: skip


@pytest.fixture
def tree(tmp_path: Path, index: CodeIndex) -> str:
    files = {**SAMPLES, "README.md": "# samples\n", "main.py": "from py.shapes import Shape\n"}
    return index.index_view(new_repo(tmp_path / "repo", files), "HEAD").tree


@pytest.mark.parametrize("language", sorted(EXPECTED))
def test_symbols_are_found_in_every_language(index: CodeIndex, tree: str, language: str) -> None:
    path = next(p for p in SAMPLES if _language_of(p) == language)

    symbols = index.outline(tree, path)

    assert {(s.name, s.kind, s.container, s.line) for s in symbols} == EXPECTED[language]
    assert all(s.language == language and s.path == path for s in symbols)


def _language_of(path: str) -> str:
    suffix = path.rsplit(".", 1)[1]
    return {"py": "python", "js": "javascript", "ts": "typescript", "tsx": "tsx", "go": "go",
            "rs": "rust", "java": "java", "c": "c", "cpp": "cpp"}[suffix]  # fmt: skip


def test_go_to_definition_with_and_without_container(index: CodeIndex, tree: str) -> None:
    [shape] = [s for s in index.definitions("Shape", tree) if s.language == "python"]
    assert (shape.path, shape.start_line, shape.end_line, shape.kind) == (
        "py/shapes.py", 1, 3, "class"
    )  # fmt: skip
    assert {s.path for s in index.definitions("Shape", tree)} == {"py/shapes.py", "rs/lib.rs"}
    assert [s.path for s in index.definitions("Shape", tree, language="rust")] == ["rs/lib.rs"]
    ticks = index.definitions("Engine::tick", tree, kind="method")
    assert [(s.line, s.container) for s in ticks] == [(4, "Engine"), (8, "Engine")]
    assert [s.line for s in index.definitions("Engine.tick", tree)] == [4, 8]
    assert index.definitions("Engine.tick", tree, kind="class") == []
    assert index.definitions("nothing_like_this", tree) == []
    with pytest.raises(InvalidInput, match="one identifier"):
        index.definitions("two words", tree)


def test_the_same_content_under_another_language_gets_its_own_symbols(
    tmp_path: Path, index: CodeIndex
) -> None:
    source = "class Twin:\n    pass\n"
    repo = new_repo(tmp_path / "repo", {"a.txt": source})
    first = index.index_view(repo, "HEAD").tree
    (repo / "a.txt").rename(repo / "a.py")
    second = commit(repo, {})

    assert index.index_view(repo, second).indexed == 0  # same blob: parsed, not re-chunked
    assert index.definitions("Twin", first) == []
    assert [s.path for s in index.definitions("Twin", second)] == ["a.py"]


def test_the_repo_map_starts_with_the_readme_and_fits_the_budget(
    index: CodeIndex, tree: str
) -> None:
    text = index.repo_map(tree, token_budget=200)

    lines = text.splitlines()
    files = [line for line in lines if not line.startswith(" ")]
    assert files[:3] == ["README.md", "rs/lib.rs", "main.py"]  # README, then entry points
    assert len(text) <= 200 * 4
    assert "py/shapes.py" in lines and "  class Shape: area" in lines
    assert index.repo_map(tree, token_budget=200) == text
    small = index.repo_map(tree, token_budget=5)
    assert len(small) <= 20


def test_the_repo_map_ranks_the_most_used_definitions_first(
    tmp_path: Path, index: CodeIndex
) -> None:
    users = {f"app/use{i}.py": "from core.models import OrderBook\nOrderBook()\n" for i in range(5)}
    files = {
        **users,
        "core/models.py": "class OrderBook:\n    def add(self):\n        pass\n",
        "core/unused.py": "def lonely_helper_function():\n    pass\n",
    }
    tree = index.index_view(new_repo(tmp_path / "repo", files), "HEAD").tree

    paths = [line for line in index.repo_map(tree).splitlines() if not line.startswith(" ")]

    assert paths.index("core/models.py") < paths.index("core/unused.py")
    assert paths[0] == "core/models.py"
