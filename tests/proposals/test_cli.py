"""The proposal commands as a user runs them: real subprocesses, the README's five commands,
--json, refusals as one line with an exit code."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.conftest import BIN, bw, git
from tests.proposals.conftest import APP

ROOT = Path(__file__).resolve().parents[2]
NEW_APP = APP.replace('"hello"', '"howdy"')


def _readme_block(marker: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split(marker, 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.strip().splitlines() if line.strip()]


def _script(tmp_path: Path, replies: list[object]) -> str:
    path = tmp_path / "script.json"
    path.write_text(json.dumps(replies))
    return f"scripted:{path}"


def _edit(old: str, new: str) -> dict[str, object]:
    arguments = {"path": "app.py", "old_text": old, "new_text": new}
    return {"tool_calls": [{"name": "edit_file", "arguments": arguments}]}


def test_readme_five_commands_take_a_session_to_main(checkout: Path, tmp_path: Path) -> None:
    lines = _readme_block("<!-- proposals -->")
    assert len(lines) == 5
    model = _script(tmp_path, [_edit('"hello"', '"howdy"'), "Made it friendlier."])
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "BRANCHWORK_MODEL": model}
    bw("project", "add", ".", cwd=checkout)
    for line in lines:
        proc = subprocess.run(
            ["bash", "-c", line], cwd=checkout, env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, f"{line}\n{proc.stdout}\n{proc.stderr}"
    assert git(checkout, "log", "--format=%s", "main").splitlines() == [
        "make the greeting friendlier",
        "initial",
    ]
    assert (checkout / "app.py").read_text() == NEW_APP
    assert git(checkout, "status", "--porcelain") == ""
    listed = json.loads(bw("session", "list", "--all", "--json", cwd=checkout).stdout)
    assert [s["status"] for s in listed] == ["merged"]


def test_comment_address_and_show_through_the_cli(checkout: Path, tmp_path: Path) -> None:
    bw("project", "add", ".", cwd=checkout)
    bw("session", "new", "--title", "greeting", cwd=checkout)
    bw("write", "app.py", cwd=checkout, stdin=NEW_APP)
    opened = json.loads(bw("propose", "--json", cwd=checkout).stdout)
    assert opened["id"] and opened["number"] == 1 and opened["status"] == "open"
    comment = json.loads(
        bw(
            "comment", "1", "app.py:2", "-m", "say hi", "--by", "alice", "--json", cwd=checkout
        ).stdout
    )
    assert comment["path"] == "app.py" and comment["line"] == 2
    model = _script(tmp_path, [_edit('"howdy"', '"hi"'), "Said hi."])
    proc = bw("address", "1", "--model", model, "--json", cwd=checkout)
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert "say hi" in next(e for e in events if e["kind"] == "user_message")["payload"]["text"]
    shown = json.loads(bw("proposal", "show", "1", "--json", cwd=checkout).stdout)
    assert shown["comments"][0]["outdated"] is True
    assert shown["head"] != opened["head"] and shown["gate"]["approvals"] == 0
    review = json.loads(bw("review", "#1", "--json", cwd=checkout).stdout)
    (hunk,) = review["files"][0]["hunks"]
    assert {o["source"] for o in hunk["origins"]} == {"agent"}
    text = bw("review", "1", cwd=checkout).stdout
    assert "↳ agent turn: Address the review of proposal #1" in text


def test_refusals_are_one_line_with_the_remedy_and_exit_code_2(checkout: Path) -> None:
    bw("project", "add", ".", cwd=checkout)
    bw("session", "new", "--title", "greeting", cwd=checkout)
    bw("write", "app.py", cwd=checkout, stdin=NEW_APP)
    bw("propose", cwd=checkout)
    refused = bw("merge", "1", cwd=checkout, check=False)
    assert refused.returncode == 2 and refused.stderr.startswith("error: ")
    assert "approve 1" in refused.stderr and "Traceback" not in refused.stderr
    bad = bw("comment", "1", "app.py", "-m", "x", cwd=checkout, check=False)
    assert bad.returncode == 2 and "PATH:LINE" in bad.stderr
    missing = bw("approve", "7", cwd=checkout, check=False)
    assert missing.returncode == 2 and "no proposal #7" in missing.stderr
    bw("request-changes", "1", "-m", "not yet", "--by", "bob", cwd=checkout)
    listed = json.loads(bw("proposal", "list", "--json", cwd=checkout).stdout)
    assert [p["status"] for p in listed] == ["changes_requested"]
    closed = json.loads(bw("close", "1", "-m", "later", "--json", cwd=checkout).stdout)
    assert closed["status"] == "closed"
    assert json.loads(bw("proposal", "list", "--json", cwd=checkout).stdout) == []


def test_policy_merge_with_checks_and_the_radar_through_the_cli(checkout: Path) -> None:
    bw("project", "add", ".", cwd=checkout)
    policy = json.loads(
        bw(
            "policy", "--approvals", "0", "--strategy", "merge", "--check", "python app.py",
            "--delete-branch", "--json", cwd=checkout,
        ).stdout
    )  # fmt: skip
    assert policy["required_checks"] == ["python app.py"] and policy["delete_branch"] is True
    one = json.loads(bw("session", "new", "--title", "one", "--json", cwd=checkout).stdout)
    bw("write", "app.py", cwd=checkout, stdin=NEW_APP)
    two = json.loads(bw("session", "new", "--title", "two", "--json", cwd=checkout).stdout)
    bw("write", "app.py", cwd=checkout, stdin=APP.replace("print(", "print('>', "))
    radar = json.loads(bw("conflicts", "--json", cwd=checkout).stdout)
    assert {s["id"] for s in radar["sessions"]} == {one["id"], two["id"]}
    assert radar["overlaps"][0]["files"] == ["app.py"] and len(radar["order"]) == 2
    bw("propose", one["id"], cwd=checkout)
    merged = json.loads(bw("merge", "1", "--json", cwd=checkout).stdout)
    assert merged["strategy"] == "merge" and merged["branch_deleted"] is True
    assert [c["passed"] for c in merged["checks"]] == [True]
    assert merged["checkout_updated"] == str(checkout)
    text = bw("conflicts", cwd=checkout).stdout
    assert "suggested merge order" in text and two["id"][-8:].lower() in text
