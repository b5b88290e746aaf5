"""The indexed repository context through the Workspace: views per session, context refs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from branchwork import Session, Workspace
from branchwork.providers import ScriptedModel, ScriptedReply
from tests.conftest import RepoFactory, bw

BIN = Path(sys.executable).parent
FILES = {
    "README.md": "# shop\n",
    "shop/cart.py": "class Cart:\n    def total(self):\n        return sum_prices(self.items)\n",
    "shop/prices.py": "def sum_prices(items):\n    return sum(i.price for i in items)\n",
}


def _two_sessions(ws: Workspace, repo: Path) -> tuple[Session, Session]:
    project = ws.add_project(repo)
    return ws.new_session(project, title="a"), ws.new_session(project, title="b")


def test_search_in_one_session_never_returns_anothers_uncommitted_content(
    ws: Workspace, repo_factory: RepoFactory
) -> None:
    a, b = _two_sessions(ws, repo_factory(FILES))
    (Path(b.worktree) / "shop" / "secret_plan.py").write_text("def zebra_discount(): pass\n")
    assert ws.search("zebra_discount", session=a).hits == []
    [hit] = ws.search("zebra_discount", session=b).hits
    assert hit.path == "shop/secret_plan.py" and hit.line == 1


def test_search_and_definitions_are_recorded_as_context_refs(
    ws: Workspace, repo_factory: RepoFactory
) -> None:
    a, _ = _two_sessions(ws, repo_factory(FILES))
    hits = ws.search("sum_prices", session=a).hits
    assert {h.path for h in hits} == {"shop/cart.py", "shop/prices.py"}
    [definition] = ws.definitions("sum_prices", session=a)
    assert (definition.path, definition.start_line) == ("shop/prices.py", 1)
    refs = [e.payload.model_dump() for e in ws.events(a, kinds=["context_ref"])]
    assert [r["lookup"] for r in refs] == ["search", "definition"]
    assert {r["path"] for r in refs[0]["results"]} == {"shop/cart.py", "shop/prices.py"}
    assert all(len(r["blob_sha"]) == 40 for r in refs[0]["results"])


def test_agent_search_and_find_definition_tools_use_the_index(
    ws: Workspace, repo_factory: RepoFactory
) -> None:
    session, _ = _two_sessions(ws, repo_factory(FILES))
    model = ScriptedModel(
        [
            ScriptedReply.call("search", query="sum_prices", path="shop/cart*"),
            ScriptedReply.call("find_definition", name="Cart"),
            "found",
        ]
    )
    ws.send_message(session, "where is the total computed?", model=model)
    results = [e.payload.model_dump()["output"] for e in ws.events(session, kinds=["tool_result"])]
    assert results[0].startswith("shop/cart.py:3:")
    assert "shop/cart.py:1-3: class Cart" in results[1]
    assert len(ws.events(session, kinds=["context_ref"])) == 2
    assert "shop/prices.py" in model.requests[0].system


def test_context_documents_are_searched_and_listed_in_the_prompt(
    ws: Workspace, repo_factory: RepoFactory, tmp_path: Path
) -> None:
    session, _ = _two_sessions(ws, repo_factory(FILES))
    spec = tmp_path / "pricing.md"
    spec.write_text("# Pricing rules\nDiscounts never stack with coupons.\n")
    doc = ws.add_document(spec, project=session.project_id)
    assert [d.title for d in ws.documents(session.project_id)] == ["Pricing rules"]
    hits = ws.search("never stack", session=session).hits
    assert hits and hits[0].source == "document"
    model = ScriptedModel(["ok"])
    ws.send_message(session, "hi", model=model)
    assert "Pricing rules" in model.requests[0].system
    ws.remove_document(doc.id, project=session.project_id)
    assert ws.documents(session.project_id) == []


def test_index_search_symbols_and_context_from_the_cli(
    repo_factory: RepoFactory, tmp_path: Path
) -> None:
    repo = repo_factory(FILES)

    def run(*args: str) -> str:
        return bw(*args, cwd=repo).stdout

    run("project", "add", ".")
    report = json.loads(run("index", "--json"))
    assert report["files_total"] == 3 and report["indexed"] == 3
    again = json.loads(run("index", "--json"))
    assert again["indexed"] == 0
    assert "3 files" in run("index")
    found = json.loads(run("search", "sum_prices", "--json"))
    assert {h["path"] for h in found["hits"]} == {"shop/cart.py", "shop/prices.py"}
    assert found["capped"] is False and found["limit"] == 20
    regex = ["search", "sum_pr[a-z]+", "--regex", "--path", "shop/p*", "--json"]
    assert json.loads(run(*regex))["hits"]
    on_main = json.loads(run("symbols", "sum_prices", "--json"))
    assert [(d["path"], d["line"]) for d in on_main] == [("shop/prices.py", 1)]
    run("session", "new")
    symbols = json.loads(run("symbols", "total", "--json"))
    assert symbols[0]["kind"] == "method" and symbols[0]["container"] == "Cart"
    refs = json.loads(run("symbols", "sum_prices", "--references", "--json"))
    assert {r["path"] for r in refs["references"]} == {"shop/cart.py", "shop/prices.py"}
    (tmp_path / "notes.md").write_text("# Notes\nkeep it simple\n")
    added = json.loads(run("context", "add", str(tmp_path / "notes.md"), "--json"))
    assert json.loads(run("context", "list", "--json"))[0]["id"] == added["id"]
    run("context", "remove", "Notes")
    assert json.loads(run("context", "list", "--json")) == []


def test_session_index_report_counts_ignored_and_binary_files(
    ws: Workspace, repo_factory: RepoFactory
) -> None:
    repo = repo_factory({**FILES, ".gitignore": "build/\n*.log\n", "logo.png": "\0PNG"})
    session, _ = _two_sessions(ws, repo)
    worktree = Path(session.worktree)
    (worktree / "build").mkdir()
    (worktree / "build" / "out.js").write_text("const ignored_marker_text = 1;\n")
    (worktree / "debug.log").write_text("x")
    assert "ignored" not in ws.index(session=session).skipped  # counted only when asked
    report = ws.index(session=session, count_ignored=True)
    assert report.skipped["ignored"] == 2
    assert report.skipped["binary"] == 1
    assert ws.search("ignored_marker_text", session=session).hits == []
    (worktree / "kept.js").write_text("const ignored_marker_text = 2;\n")
    assert [h.path for h in ws.search("ignored_marker_text", session=session).hits] == ["kept.js"]
