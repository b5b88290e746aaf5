"""Proposals attacked as a demanding user and as an attacker would: forged trailers, terminal
escapes in titles, a proposal with nothing left to merge. Real repositories and the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from branchwork import Conflict, GitError, InvalidInput, NotFound, Workspace
from branchwork.gitops import run_git as git_run
from tests.conftest import bw, git, make_repo
from tests.proposals.conftest import APP, SessionMaker, commit_on_main, main_log, tip

NEW_APP = APP.replace('"hello"', '"howdy"')
ROOT = Path(__file__).resolve().parents[2]
ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[31m"


def test_a_forged_trailer_in_a_title_does_not_mark_another_proposal_merged(
    ws: Workspace, make_session: SessionMaker, checkout: Path
) -> None:
    victim = make_session("victim", {"app.py": NEW_APP})
    target = ws.propose(victim)
    attacker = make_session("attacker", {"other.txt": "x\n"})
    forged = f"harmless\n\nBranchwork-Proposal: {target.id}\nBranchwork-Session: {victim.id}"
    ws.propose(attacker, title=forged)
    ws.approve(2, reviewer="alice")
    ws.merge(2)
    details = ws.proposal(1)
    assert details.proposal.status == "open"  # its work is not in main
    assert ws.session(victim.id).status == "active" and Path(victim.worktree).is_dir()
    assert git(checkout, "show", "main:app.py") == APP


def test_a_forged_trailer_in_the_body_of_a_commit_by_hand_is_not_taken_for_a_merge(
    ws: Workspace, make_session: SessionMaker, checkout: Path
) -> None:
    victim = make_session("victim", {"app.py": NEW_APP})
    target = ws.propose(victim)
    (checkout / "x.txt").write_text("x\n")
    git(checkout, "add", "x.txt")
    body = f"unrelated\n\nmentions Branchwork-Proposal: {target.id} in passing\n\nSigned-off-by: m"
    git(checkout, "commit", "-q", "-m", body)
    assert ws.proposal(1).proposal.status == "open"


def test_a_title_is_one_line_without_control_characters(
    ws: Workspace, make_session: SessionMaker, checkout: Path
) -> None:
    session = make_session("greeting", {"app.py": NEW_APP})
    proposal = ws.propose(session, title=f"friendlier{ESCAPES}\n  greeting\r\n")
    assert proposal.title == "friendlier]0;pwned[2J[31m greeting"
    ws.approve(1, reviewer="alice")
    ws.merge(1)
    subject = git(checkout, "log", "-1", "--format=%s", "main").strip()
    assert subject == proposal.title


def test_a_reviewer_name_with_control_characters_is_refused(
    ws: Workspace, make_session: SessionMaker
) -> None:
    ws.propose(make_session("greeting", {"app.py": NEW_APP}))
    with pytest.raises(InvalidInput, match="reviewer name"):
        ws.approve(1, reviewer="alice\rBranchwork-Proposal: x")


def test_terminal_escapes_never_reach_the_terminal_through_the_proposal_commands(
    checkout: Path,
) -> None:
    bw("project", "add", ".", cwd=checkout)
    bw("session", "new", "--title", "greeting", cwd=checkout)
    bw("write", "app.py", cwd=checkout, stdin=NEW_APP + f"# {ESCAPES}\n")  # shown in the diff
    bw("propose", "--title", f"greeting{ESCAPES}", cwd=checkout)
    bw("comment", "1", "app.py:2", "-m", f"why{ESCAPES}?", cwd=checkout)
    bw("request-changes", "1", "-m", f"fix{ESCAPES}", "--by", "bob", cwd=checkout)
    for args in (("proposal", "list"), ("proposal", "show", "1"), ("review", "1")):
        shown = bw(*args, cwd=checkout)
        assert "\x1b" not in shown.stdout + shown.stderr and "\x07" not in shown.stdout
        assert "why]0;pwned" in shown.stdout or args == ("proposal", "list")


def test_a_proposal_whose_changes_main_has_already_is_not_merged_as_an_empty_commit(
    ws: Workspace, make_session: SessionMaker, checkout: Path
) -> None:
    first = make_session("greeting", {"app.py": NEW_APP})
    second = make_session("the same greeting", {"app.py": NEW_APP})
    ws.propose(first)
    ws.propose(second)
    ws.approve(1, reviewer="alice")
    ws.merge(1)
    ws.approve(2, reviewer="alice")
    before = tip(checkout)
    for strategy in ("squash", "rebase"):
        with pytest.raises(Conflict, match=r"main has every change of proposal #2.*close 2"):
            ws.merge(2, strategy=strategy)
    assert tip(checkout) == before and main_log(checkout) == ["greeting", "initial"]
    assert ws.session(second.id).status == "active"


def test_proposal_json_keeps_the_title_as_stored(checkout: Path) -> None:
    bw("project", "add", ".", cwd=checkout)
    bw("session", "new", "--title", "greeting", cwd=checkout)
    bw("write", "app.py", cwd=checkout, stdin=NEW_APP)
    opened = json.loads(bw("propose", "--json", "--title", f"a{ESCAPES}b", cwd=checkout).stdout)
    assert opened["title"] == "a]0;pwned[2J[31mb"


def test_a_deleted_target_branch_breaks_neither_the_list_nor_the_other_proposals(
    ws: Workspace, make_session: SessionMaker, checkout: Path
) -> None:
    git(checkout, "branch", "staging")
    ws.propose(make_session("into staging", {"app.py": NEW_APP}), target="staging")
    ws.propose(make_session("into main", {"notes.md": "n\n"}))
    git(checkout, "branch", "-D", "staging")
    assert [p.number for p in ws.proposals()] == [2, 1]
    assert ws.proposal(1).proposal.status == "open"
    with pytest.raises(Conflict, match=r"staging is no longer a branch.*close 1"):
        ws.merge(1)
    ws.approve(2, reviewer="alice")
    assert ws.merge(2).proposal.status == "merged"
    assert ws.close_proposal(1).status == "closed"


def test_promoting_a_trial_closes_the_proposals_of_the_trials_it_discards(
    ws: Workspace, project: object, checkout: Path
) -> None:
    task = ws.new_task("friendlier greeting")
    first = ws.start_task(task)
    ws.write_file(first.session_id, "app.py", NEW_APP)
    second = ws.start_task(task)
    ws.write_file(second.session_id, "app.py", APP.replace('"hello"', '"hi"'))
    ws.propose(second.session_id)  # as auto_propose does after a turn
    done = ws.promote(first)
    assert done.proposal is not None and done.proposal.number == 2
    assert [p.number for p in ws.proposals()] == [2]  # the discarded trial's is closed
    details = ws.proposal(1)
    assert details.proposal.status == "closed"
    (closed,) = ws.events(second.session_id, kinds=["proposal_closed"])
    assert "trial 1 was promoted" in closed.payload.reason  # type: ignore[union-attr]


def test_a_rebase_onto_a_moved_main_names_the_proposal_so_a_stopped_merge_is_completed(
    ws: Workspace, make_session: SessionMaker, checkout: Path
) -> None:
    ws.set_policy(merge_strategy="rebase", required_approvals=0)
    session = make_session("greeting", {"app.py": NEW_APP})
    ws.write_file(session, "notes.md", "why\n")
    proposal = ws.propose(session)
    commit_on_main(checkout, "README.md", "# demo, moved on\n")
    outcome = ws.merge(1)
    trailers = "%(trailers:key=Branchwork-Proposal,valueonly)"
    assert git(checkout, "log", "-1", f"--format={trailers}", outcome.commit).strip() == (
        proposal.id
    )
    assert git(checkout, "log", "-1", "--format=%s", outcome.commit).strip() == "write notes.md"
    # what a merge process killed right after moving main leaves (for another proposal): the
    # rebased commits on main, nothing recorded; the next look records the merge
    other = make_session("farewell", {"bye.md": "bye\n"})
    second = ws.propose(other)
    commit_on_main(checkout, "README.md", "# demo, moved again\n")
    target = tip(checkout)
    rebased = git(checkout, "rev-parse", f"{second.head}^{{tree}}").strip()
    merged_tree = git(checkout, "merge-tree", "--write-tree", target, second.head).strip()
    assert merged_tree != rebased
    message = f"write bye.md\n\nBranchwork-Proposal: {second.id}\n"
    landed = git(checkout, "commit-tree", merged_tree, "-p", target, "-m", message).strip()
    git(checkout, "merge", "-q", "--ff-only", landed)
    assert ws.proposal(2).proposal.status == "merged"
    assert ws.session(other.id).status == "merged"


def test_a_proposal_cannot_target_another_sessions_branch(
    ws: Workspace, make_session: SessionMaker, checkout: Path
) -> None:
    other = make_session("other")
    before = tip(checkout, other.branch)
    session = make_session("sneaky", {"app.py": NEW_APP})
    # unprotected, it would need no approval, and move the other session's branch and files
    # under it, without its turn lease and without a word in its history
    with pytest.raises(InvalidInput, match=f"{other.branch} is the branch of session"):
        ws.propose(session, target=other.branch)
    assert tip(checkout, other.branch) == before and ws.proposals() == []


def test_a_branch_that_could_not_be_deleted_is_not_reported_deleted(
    ws: Workspace, make_session: SessionMaker, checkout: Path, tmp_path: Path
) -> None:
    ws.set_policy(required_approvals=0, delete_branch=True)
    session = make_session("greeting", {"app.py": NEW_APP})
    ws.archive_session(session)
    # the person looks at the branch in a worktree of their own: git refuses to delete it
    git(checkout, "worktree", "add", "--quiet", str(tmp_path / "look"), session.branch)
    ws.propose(session)
    outcome = ws.merge(1)
    assert git(checkout, "branch", "--list", session.branch).strip()
    assert not outcome.branch_deleted
    (merged,) = ws.events(session, kinds=["merged"])
    assert merged.payload.branch_deleted is False  # type: ignore[union-attr]


def test_a_repository_moved_away_is_named_not_taken_for_a_missing_git(
    ws: Workspace, make_session: SessionMaker, checkout: Path
) -> None:
    ws.propose(make_session("greeting", {"app.py": NEW_APP}))
    checkout.rename(checkout.with_name("moved"))
    with pytest.raises(NotFound, match=r"no longer at .*project remove"):
        ws.proposals()
    with pytest.raises(GitError, match="does not exist any more"):
        git_run(["status"], checkout)


def test_no_checks_and_a_check_together_are_refused_not_taken_for_no_checks(
    checkout: Path,
) -> None:
    bw("project", "add", ".", cwd=checkout)
    bw("policy", "--check", "true", cwd=checkout)
    refused = bw("policy", "--no-checks", "--check", "make test", cwd=checkout, check=False)
    assert refused.returncode == 2 and "contradict" in refused.stderr
    shown = json.loads(bw("policy", "--json", cwd=checkout).stdout)
    assert shown["required_checks"] == ["true"]


@pytest.mark.parametrize("path", ["notes/a b.md", "notes/tab\there.md", "notes/café.md"])
def test_comments_follow_their_line_in_files_whose_names_git_quotes_or_pads(
    ws: Workspace, make_session: SessionMaker, path: str
) -> None:
    session = make_session("notes", {path: "one\ntwo\nthree\n"})
    ws.propose(session)
    ws.comment(1, path, 2, "why two?", reviewer="alice")
    ws.comment(1, path, 3, "and three?", reviewer="alice")
    ws.write_file(session, path, "zero\none\ntwo\nTHREE\n")
    moved, changed = ws.proposal(1).comments
    assert (moved.current_line, moved.outdated) == (3, False)
    assert changed.outdated
    (shown,) = ws.review(1).files
    assert shown.path == path and all(hunk.origins for hunk in shown.hunks)


def test_a_merge_keeps_the_worktree_a_process_works_in(
    ws: Workspace, make_session: SessionMaker, checkout: Path
) -> None:
    ws.set_policy(required_approvals=0)
    session = make_session("greeting", {"app.py": NEW_APP})
    ws.propose(session)
    shell = subprocess.Popen(["sleep", "60"], cwd=session.worktree)  # a person's shell there
    try:
        outcome = ws.merge(1)
        assert outcome.proposal.status == "merged" and outcome.worktree_kept
        assert Path(session.worktree).is_dir()
        note = ws.events(session, kinds=["note"])[-1].payload.model_dump()["text"]
        assert f"process {shell.pid}" in note
    finally:
        shell.kill()
        shell.wait()


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv"
)
def test_a_user_unknown_to_the_system_is_asked_for_a_name_not_shown_a_traceback() -> None:
    # a container's random uid has no passwd entry, and no USER or LOGNAME is set
    code = (
        "from branchwork import InvalidInput\n"
        "from branchwork.service.proposals import reviewer_name\n"
        "try:\n    reviewer_name(None)\nexcept InvalidInput as exc:\n    print(exc.message)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "src")}
    as_nobody = ["setpriv", "--reuid=54321", "--regid=54321", "--clear-groups"]
    ran = subprocess.run(
        [*as_nobody, sys.executable, "-c", code], env=env, capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr
    assert "--by NAME" in ran.stdout


def test_a_merge_keeps_a_worktree_holding_a_git_repository_of_its_own(
    ws: Workspace, make_session: SessionMaker
) -> None:
    ws.set_policy(required_approvals=0)
    session = make_session("greeting", {"app.py": NEW_APP})
    nested = make_repo(Path(session.worktree) / "vendor" / "lib", {"lib.py": "precious = 1\n"})
    (nested / "wip.py").write_text("not committed anywhere\n")
    ws.propose(session)
    outcome = ws.merge(1)
    assert outcome.worktree_kept and (nested / "wip.py").exists()
    note = ws.events(session, kinds=["note"])[-1].payload.model_dump()["text"]
    assert "vendor/lib is a git repository" in note


def test_a_session_reset_to_main_is_not_taken_for_merged_when_main_moves(
    ws: Workspace, make_session: SessionMaker, checkout: Path
) -> None:
    session = make_session("greeting", {"app.py": NEW_APP})
    ws.propose(session)
    # the agent (or a person) throws the work away: the branch is back at main's tip
    git(Path(session.worktree), "reset", "-q", "--hard", "main")
    assert ws.proposal(1).proposal.head == tip(checkout)  # the proposal followed
    commit_on_main(checkout, "README.md", "# demo, moved on\n")
    details = ws.proposal(1)
    assert details.proposal.status == "open"  # nothing of it is in main: not merged
    assert ws.session(session.id).status == "active" and Path(session.worktree).is_dir()


def test_the_log_shows_conflicting_paths_without_their_escape_sequences(
    ws: Workspace, make_session: SessionMaker, checkout: Path
) -> None:
    name = "odd\x1b[2Jname.txt"
    session = make_session("odd", {name: "session\n"})
    ws.propose(session)
    commit_on_main(checkout, name, "main\n")  # the same new file, other content: a conflict
    assert ws.proposal(1).proposal.conflicts == [name]  # `proposal_updated` names it
    shown = bw("log", session.short_id, cwd=checkout).stdout
    assert "conflicts in odd[2Jname.txt" in shown and "\x1b" not in shown
