"""Reviewing a proposal: the diff with how each change came about, line comments that reach the
agent (the scripted model) and become outdated when their lines change, auto-propose, and a
description written by the configured model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from branchwork import Conflict, InvalidInput, NotFound, Project, Workspace
from branchwork.domain.messages import UserTurn
from branchwork.providers import ScriptedModel, ScriptedReply
from tests.proposals.conftest import APP, SessionMaker

call = ScriptedReply.call
NEW_APP = APP.replace('"hello"', '"howdy"')


def test_review_shows_each_hunk_with_the_prompt_and_tool_call_that_wrote_it(
    ws: Workspace, make_session: SessionMaker
) -> None:
    session = make_session("greeting")
    model = ScriptedModel(
        [call("edit_file", path="app.py", old_text='"hello"', new_text='"howdy"'), "Done."]
    )
    ws.send_message(session, "make the greeting friendlier", model=model, mode="autopilot")
    ws.write_file(session, "notes.md", "by hand\n")
    ws.run(session, "echo made > made.txt")
    ws.propose(session)
    view = ws.review(1)
    files = {f.path: f for f in view.files}
    assert sorted(files) == ["app.py", "made.txt", "notes.md"]
    (hunk,) = files["app.py"].hunks
    assert '+    greeting = "howdy"' in hunk.text
    (origin,) = hunk.origins
    assert origin.source == "agent" and origin.prompt == "make the greeting friendlier"
    assert origin.tool_calls[0].startswith("edit_file(app.py) [")
    assert files["notes.md"].hunks[0].origins[0].source == "person"
    made = files["made.txt"].hunks[0].origins[0]
    assert made.source == "command" and "echo made > made.txt" in made.what


def test_comments_reach_the_agent_with_their_code_and_become_outdated_when_their_lines_change(
    ws: Workspace, make_session: SessionMaker
) -> None:
    session = make_session("greeting", {"app.py": NEW_APP})
    ws.propose(session)
    first = ws.comment(1, "app.py", 2, 'say "hi" instead', reviewer="alice")
    second = ws.comment(1, "./app.py", 6, "keep this print", reviewer="alice")
    assert second.path == "app.py" and first.head == ws.proposal(1).proposal.head
    model = ScriptedModel(
        [call("edit_file", path="app.py", old_text='"howdy"', new_text='"hi"'), "Said hi."]
    )
    result = ws.address(1, model=model, mode="autopilot")
    assert result.status == "completed"
    sent = model.requests[0].messages[-1]
    assert isinstance(sent, UserTurn)
    assert 'say "hi" instead' in sent.text and "keep this print" in sent.text
    assert '>    2 |     greeting = "howdy"' in sent.text  # the code, line marked
    assert '>    6 | print(greet("world"))' in sent.text
    comments = {c.id: c for c in ws.proposal(1).comments}
    assert comments[first.id].outdated and not comments[second.id].outdated
    assert comments[second.id].current_line == 6
    prompts = [e.payload.text for e in ws.events(session, kinds=["user_message"])]  # type: ignore[union-attr]
    assert 'say "hi" instead' in prompts[-1]  # the comments are in the history
    request = ws.address_request(1)
    assert "keep this print" in request.message and 'say "hi"' not in request.message


def test_a_comment_follows_its_line_and_is_outdated_when_its_file_goes(
    ws: Workspace, make_session: SessionMaker
) -> None:
    session = make_session("greeting", {"app.py": NEW_APP})
    ws.propose(session)
    comment = ws.comment(1, "app.py", 6, "this print", reviewer="bob")
    ws.write_file(session, "app.py", "# header\n# more\n" + NEW_APP)
    (moved,) = ws.proposal(1).comments
    assert moved.id == comment.id and moved.current_line == 8 and not moved.outdated
    ws.run(session, "rm app.py")
    (gone,) = ws.proposal(1).comments
    assert gone.outdated


def test_comments_on_paths_or_lines_outside_the_proposal_are_refused(
    ws: Workspace, make_session: SessionMaker
) -> None:
    session = make_session("greeting", {"app.py": NEW_APP})
    ws.propose(session)
    for path in ("../etc/passwd", "/etc/passwd", ".git/config", ""):
        with pytest.raises(InvalidInput):
            ws.comment(1, path, 1, "x", reviewer="bob")
    with pytest.raises(NotFound, match="not a file"):
        ws.comment(1, "missing.py", 1, "x", reviewer="bob")
    with pytest.raises(InvalidInput, match="has 6 line"):
        ws.comment(1, "app.py", 99, "x", reviewer="bob")
    with pytest.raises(InvalidInput, match="empty"):
        ws.comment(1, "app.py", 1, " ", reviewer="bob")
    with pytest.raises(Conflict, match="no open review comment"):
        ws.address(1, model=ScriptedModel([]))


def test_auto_propose_opens_a_proposal_after_a_turn_that_changed_code(
    ws: Workspace, make_session: SessionMaker
) -> None:
    ws.set_policy(auto_propose=True)
    session = make_session("greeting")
    ws.send_message(session, "just look", model=ScriptedModel(["Nothing to change."]))
    assert ws.proposals() == []
    model = ScriptedModel(
        [
            call("edit_file", path="app.py", old_text='"hello"', new_text='"howdy"'),
            "Done.",
            call("write_file", path="b.txt", content="b\n"),
            "Done again.",
        ]
    )
    ws.send_message(session, "be friendlier", model=model, mode="autopilot")
    (proposal,) = ws.proposals()
    assert proposal.title == "greeting"
    ws.approve(proposal.number, reviewer="alice")
    ws.send_message(session, "add b", model=model, mode="autopilot")
    kinds = [e.kind for e in ws.events(session)]
    assert kinds.count("proposal_opened") == 1 and kinds[-1] == "proposal_updated"
    updated = ws.events(session, kinds=["proposal_updated"])[-1].payload
    assert updated.stale_approvals == 1  # type: ignore[union-attr]


def test_the_configured_model_writes_the_description(
    ws: Workspace, project: Project, make_session: SessionMaker, tmp_path: Path
) -> None:
    script = tmp_path / "describe.json"
    script.write_text(json.dumps(["Makes the greeting friendlier.\n\n- app.py: howdy"]))
    session = make_session("greeting", {"app.py": NEW_APP})
    ws.set_session_defaults(session, model=f"scripted:{script}")
    proposal = ws.propose(session)
    assert proposal.description == "Makes the greeting friendlier.\n\n- app.py: howdy"
    (call_event,) = ws.events(session, kinds=["model_call"])
    assert call_event.payload.purpose == "description"  # type: ignore[union-attr]
    assert call_event.payload.turn_id == proposal.id  # type: ignore[union-attr]
