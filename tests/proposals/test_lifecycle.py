"""A session's way to main: propose, review, approve, merge; on real repositories."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from branchwork import Conflict, InvalidInput, PolicyRefused, Project, TurnInProgress, Workspace
from branchwork.sandbox.liveness import this_host
from branchwork.store import Store
from tests.conftest import git
from tests.proposals.conftest import APP, SessionMaker, commit_on_main, main_log, tip

NEW_APP = APP.replace('"hello"', '"howdy"')


def test_propose_opens_a_proposal_described_from_the_sessions_history(
    ws: Workspace, make_session: SessionMaker, checkout: Path
) -> None:
    session = make_session("friendlier greeting", {"app.py": NEW_APP, "notes.md": "why\n"})
    proposal = ws.propose(session)
    assert proposal.number == 1 and proposal.status == "open"
    assert proposal.title == "friendlier greeting" and proposal.target == "main"
    assert proposal.head == git(checkout, "rev-parse", session.branch).strip()
    assert proposal.base_commit == tip(checkout) and proposal.conflicts == []
    assert "app.py (+1 -1)" in proposal.description and "notes.md (+1 -0)" in proposal.description
    assert ws.propose(session).id == proposal.id  # one open proposal per session
    opened = ws.events(session, kinds=["proposal_opened"])
    assert len(opened) == 1 and opened[0].payload.description == proposal.description  # type: ignore[union-attr]
    again = ws.proposals()
    assert [p.id for p in again] == [proposal.id]


def test_a_session_with_nothing_new_cannot_be_proposed(
    ws: Workspace, make_session: SessionMaker
) -> None:
    with pytest.raises(Conflict, match="nothing that main lacks"):
        ws.propose(make_session("idle"))


def test_merge_needs_an_approval_then_squashes_with_a_message_from_the_history(
    ws: Workspace, make_session: SessionMaker, checkout: Path
) -> None:
    session = make_session("friendlier greeting", {"app.py": NEW_APP})
    ws.write_file(session, "app.py", NEW_APP + "# done\n")  # a second checkpoint
    proposal = ws.propose(session)
    before = tip(checkout)
    with pytest.raises(PolicyRefused, match=r"0 of 1 required approval.*approve 1"):
        ws.merge(proposal.number)
    assert tip(checkout) == before
    details = ws.approve(1, reviewer="alice", message="looks right")
    assert details.proposal.status == "approved" and details.gate.reasons == []
    outcome = ws.merge(1)
    assert outcome.strategy == "squash" and outcome.proposal.status == "merged"
    assert main_log(checkout) == ["friendlier greeting", "initial"]  # one commit, no checkpoints
    message = git(checkout, "log", "-1", "--format=%B", "main")
    assert "app.py (+2 -1)" in message and "Reviewed-by: alice" in message
    assert f"Branchwork-Session: {session.id}" in message and "write app.py" not in message
    # the person's checkout had main checked out, clean: fast-forwarded, files and all
    assert outcome.checkout_updated == str(checkout)
    assert (checkout / "app.py").read_text() == NEW_APP + "# done\n"
    assert git(checkout, "status", "--porcelain") == ""
    merged = ws.session(session.id)
    assert merged.status == "merged" and not Path(merged.worktree).exists()
    assert git(checkout, "branch", "--list", session.branch).strip()  # kept by default
    kinds = [e.kind for e in ws.events(session)]
    assert kinds[-1] == "merged" and "review" in kinds


def test_a_new_checkpoint_makes_an_approval_stale(
    ws: Workspace, make_session: SessionMaker
) -> None:
    session = make_session("greeting", {"app.py": NEW_APP})
    ws.propose(session)
    assert ws.approve(1, reviewer="alice").proposal.status == "approved"
    ws.write_file(session, "app.py", NEW_APP + "# unreviewed\n")
    details = ws.proposal(1)
    assert details.proposal.status == "open" and details.gate.stale_approvals == 1
    assert details.gate.reasons == [
        "0 of 1 required approval(s) on the current head; 1 on an older head"
    ]
    updated = ws.events(session, kinds=["proposal_updated"])
    assert updated[-1].payload.stale_approvals == 1  # type: ignore[union-attr]
    assert updated[-1].payload.head == details.proposal.head  # type: ignore[union-attr]
    with pytest.raises(PolicyRefused, match="older head"):
        ws.merge(1)
    ws.approve(1, reviewer="alice")
    assert ws.merge(1).proposal.status == "merged"


def test_uncommitted_edits_in_the_session_are_checkpointed_and_need_review_before_a_merge(
    ws: Workspace, make_session: SessionMaker, checkout: Path
) -> None:
    session = make_session("greeting", {"app.py": NEW_APP})
    ws.propose(session)
    ws.approve(1, reviewer="alice")
    (Path(session.worktree) / "app.py").write_text(NEW_APP + "# sneaked in\n")
    with pytest.raises(PolicyRefused, match="older head"):
        ws.merge(1)
    assert "sneaked in" not in (checkout / "app.py").read_text()
    assert ws.events(session, kinds=["checkpoint"])[-1].payload.message == "before merge"  # type: ignore[union-attr]


def test_changes_requested_stand_until_that_reviewer_approves(
    ws: Workspace, make_session: SessionMaker
) -> None:
    ws.set_policy(required_approvals=1)
    session = make_session("greeting", {"app.py": NEW_APP})
    ws.propose(session)
    with pytest.raises(InvalidInput, match="needs a message"):
        ws.request_changes(1, "  ", reviewer="bob")
    assert ws.request_changes(1, "rename it", reviewer="bob").proposal.status == "changes_requested"
    ws.approve(1, reviewer="alice")
    with pytest.raises(PolicyRefused, match=r"changes requested by bob.*address 1"):
        ws.merge(1)
    ws.write_file(session, "app.py", NEW_APP.replace("greeting", "salute"))
    assert ws.proposal(1).proposal.status == "changes_requested"  # stands across heads
    ws.approve(1, reviewer="bob")
    assert ws.merge(1).proposal.status == "merged"


def test_merge_strategy_merge_keeps_the_checkpoints_under_a_merge_commit(
    ws: Workspace, make_session: SessionMaker, checkout: Path
) -> None:
    ws.set_policy(required_approvals=0, merge_strategy="merge")
    session = make_session("greeting", {"app.py": NEW_APP, "b.txt": "b\n"})
    head = ws.propose(session).head
    main_before = commit_on_main(checkout, "c.txt", "c\n")
    outcome = ws.merge(1)
    parents = git(checkout, "log", "-1", "--format=%P", "main").split()
    assert parents == [main_before, head]
    assert (
        git(checkout, "log", "-1", "--format=%s", "main").strip() == "Merge proposal #1: greeting"
    )
    assert (checkout / "b.txt").exists() and (checkout / "c.txt").exists()
    assert outcome.commit == tip(checkout)


def test_rebase_replays_each_checkpoint_on_the_new_main(
    ws: Workspace, make_session: SessionMaker, checkout: Path
) -> None:
    ws.set_policy(required_approvals=0, merge_strategy="squash")
    session = make_session("greeting", {"app.py": NEW_APP, "b.txt": "b\n"})
    ws.propose(session)
    moved = commit_on_main(checkout, "c.txt", "c\n", "person's change")
    outcome = ws.merge(1, strategy="rebase")
    assert main_log(checkout) == ["write b.txt", "write app.py", "person's change", "initial"]
    assert git(checkout, "rev-parse", "main~2").strip() == moved
    assert git(checkout, "show", "main:app.py") == NEW_APP
    assert outcome.strategy == "rebase"


def test_rebase_onto_an_unmoved_main_fast_forwards_to_the_sessions_commits(
    ws: Workspace, make_session: SessionMaker, checkout: Path
) -> None:
    ws.set_policy(required_approvals=0)
    session = make_session("greeting", {"app.py": NEW_APP})
    head = ws.propose(session).head
    assert ws.merge(1, strategy="rebase").commit == head == tip(checkout)


def test_a_conflict_is_reported_with_files_and_hunks_and_changes_nothing(
    ws: Workspace, make_session: SessionMaker, checkout: Path
) -> None:
    session = make_session("greeting", {"app.py": NEW_APP})
    ws.propose(session)
    ws.approve(1, reviewer="alice")
    main_before = commit_on_main(checkout, "app.py", APP.replace('"hello"', '"hi there"'))
    branch_before = tip(checkout, session.branch)
    details = ws.proposal(1)
    assert details.proposal.conflicts == ["app.py"]
    with pytest.raises(Conflict, match=r"conflicts with main in app\.py \(content: line 2\)"):
        ws.merge(1)
    assert tip(checkout) == main_before and tip(checkout, session.branch) == branch_before
    assert git(checkout, "status", "--porcelain") == ""
    assert '"hi there"' in (checkout / "app.py").read_text()
    assert ws.session(session.id).status == "active" and Path(session.worktree).exists()
    assert (Path(session.worktree) / "app.py").read_text() == NEW_APP
    assert ws.events(session, kinds=["proposal_updated"])[-1].payload.conflicts == ["app.py"]  # type: ignore[union-attr]


def test_a_dirty_checkout_of_main_is_never_overwritten(
    ws: Workspace, make_session: SessionMaker, checkout: Path
) -> None:
    ws.set_policy(required_approvals=0)
    session = make_session("greeting", {"app.py": NEW_APP})
    ws.propose(session)
    (checkout / "README.md").write_text("# my own edit\n")
    before = tip(checkout)
    with pytest.raises(Conflict, match=r"uncommitted changes \(README\.md\).*git stash"):
        ws.merge(1)
    assert tip(checkout) == before
    assert (checkout / "README.md").read_text() == "# my own edit\n"
    assert (checkout / "app.py").read_text() == APP
    git(checkout, "stash")
    ws.merge(1)
    git(checkout, "stash", "pop")
    assert (checkout / "README.md").read_text() == "# my own edit\n"
    assert (checkout / "app.py").read_text() == NEW_APP


def test_main_not_checked_out_moves_without_touching_the_checkout(
    ws: Workspace, make_session: SessionMaker, checkout: Path
) -> None:
    ws.set_policy(required_approvals=0)
    session = make_session("greeting", {"app.py": NEW_APP})
    ws.propose(session)
    git(checkout, "switch", "-q", "-c", "mine")
    (checkout / "README.md").write_text("# dirty on my branch\n")
    outcome = ws.merge(1)
    assert outcome.checkout_updated is None
    assert git(checkout, "show", "main:app.py") == NEW_APP
    assert (checkout / "app.py").read_text() == APP  # still the person's branch's file
    assert (checkout / "README.md").read_text() == "# dirty on my branch\n"


def test_required_checks_run_on_the_merge_result_and_a_failure_blocks_with_its_output(
    ws: Workspace, project: Project, make_session: SessionMaker, checkout: Path
) -> None:
    check = (
        "test -f from_main.txt && python app.py | grep -q howdy || (echo GREETING-BROKEN; exit 3)"
    )
    ws.set_policy(required_approvals=0, required_checks=[check])
    session = make_session("greeting", {"app.py": APP.replace('"hello"', '"bye"')})
    ws.propose(session)
    commit_on_main(checkout, "from_main.txt", "x\n")
    before = tip(checkout)
    with pytest.raises(PolicyRefused, match=r"(?s)exit code 3.*GREETING-BROKEN"):
        ws.merge(1)
    assert tip(checkout) == before and ws.session(session.id).status == "active"
    failed = ws.events(session, kinds=["check_run"])[-1].payload
    assert failed.purpose == "merge" and not failed.passed and failed.output_blob  # type: ignore[union-attr]
    ws.write_file(session, "app.py", NEW_APP)
    outcome = ws.merge(1)
    assert [c.passed for c in outcome.checks] == [True]
    assert outcome.checks[0].head == outcome.commit  # run on the merge result itself
    assert not list((ws.settings.home / "scratch").rglob("app.py"))  # scratch removed


def test_policy_from_branchwork_toml_and_branch_deleted_after_merge(
    ws: Workspace, repo_factory: object
) -> None:
    toml = '[policy]\nrequired_approvals = 0\nmerge_strategy = "merge"\ndelete_branch = true\n'
    checkout = repo_factory({"app.py": APP, ".branchwork.toml": toml})  # type: ignore[operator]
    project = ws.add_project(checkout)
    assert ws.policy(project).merge_strategy == "merge" and ws.policy(project).delete_branch
    session = ws.new_session(project, title="greeting")
    ws.write_file(session, "app.py", NEW_APP)
    ws.propose(session)
    outcome = ws.merge(1, project=project)
    assert outcome.branch_deleted and outcome.strategy == "merge"
    assert git(checkout, "branch", "--list", session.branch).strip() == ""
    assert ws.events(session, kinds=["merged"])[-1].payload.branch_deleted  # type: ignore[union-attr]


def test_an_unprotected_target_needs_no_approval_but_a_protected_one_does(
    ws: Workspace, make_session: SessionMaker, checkout: Path
) -> None:
    git(checkout, "branch", "staging")
    git(checkout, "branch", "release/1")
    ws.set_policy(protected_branches=["release/*"])
    first = make_session("to staging", {"a.txt": "a\n"})
    ws.propose(first, target="staging")
    assert ws.merge(1).target == "staging"
    second = make_session("to release", {"b.txt": "b\n"})
    ws.propose(second, target="release/1")
    with pytest.raises(PolicyRefused, match="approval"):
        ws.merge(2)
    with pytest.raises(InvalidInput, match="not a branch"):
        ws.propose(make_session("x", {"c.txt": "c\n"}), target="nope")


def test_a_closed_proposal_cannot_be_merged_and_a_new_one_can_be_opened(
    ws: Workspace, make_session: SessionMaker
) -> None:
    session = make_session("greeting", {"app.py": NEW_APP})
    ws.propose(session)
    closed = ws.close_proposal(1, reason="not now")
    assert closed.status == "closed"
    with pytest.raises(Conflict, match="closed"):
        ws.merge(1)
    assert ws.propose(session).number == 2
    assert [p.number for p in ws.proposals(include_finished=True)] == [2, 1]
    assert [p.number for p in ws.proposals()] == [2]


def test_a_proposal_whose_work_reached_main_by_other_means_is_recorded_merged(
    ws: Workspace, make_session: SessionMaker, checkout: Path
) -> None:
    session = make_session("greeting", {"app.py": NEW_APP})
    ws.propose(session)
    git(checkout, "merge", "-q", "--no-ff", "-m", "by hand", session.branch)
    details = ws.proposal(1)
    assert details.proposal.status == "merged"
    assert details.proposal.merged_commit == tip(checkout)
    assert ws.session(session.id).status == "merged" and not Path(session.worktree).exists()
    notes = [e.payload.text for e in ws.events(session, kinds=["note"])]  # type: ignore[union-attr]
    assert any("already holds proposal #1" in n for n in notes)


def test_a_merge_that_stopped_after_moving_main_is_completed_not_repeated(
    ws: Workspace, make_session: SessionMaker, checkout: Path
) -> None:
    session = make_session("greeting", {"app.py": NEW_APP})
    proposal = ws.propose(session)
    # what a merge process killed right after moving main leaves: main holds the squash
    # commit (its trailer names the proposal), nothing is recorded yet
    tree = git(checkout, "rev-parse", f"{proposal.head}^{{tree}}").strip()
    message = f"greeting\n\nBranchwork-Proposal: {proposal.id}\n"
    squash = git(checkout, "commit-tree", tree, "-p", "main", "-m", message).strip()
    git(checkout, "merge", "-q", "--ff-only", squash)
    with pytest.raises(Conflict, match="merged"):
        ws.merge(1)
    assert main_log(checkout) == ["greeting", "initial"]  # not merged twice
    (merged,) = ws.events(session, kinds=["merged"])
    assert merged.payload.commit == squash and merged.payload.strategy == "squash"  # type: ignore[union-attr]


def test_an_archived_sessions_proposal_is_merged_from_its_branch(
    ws: Workspace, make_session: SessionMaker, checkout: Path
) -> None:
    ws.set_policy(required_approvals=0)
    session = make_session("greeting", {"app.py": NEW_APP})
    ws.archive_session(session)
    ws.propose(session)
    outcome = ws.merge(1)
    assert git(checkout, "show", "main:app.py") == NEW_APP
    assert ws.session(session.id).status == "merged" and not outcome.worktree_kept


def test_proposal_check_runs_the_required_checks_without_merging(
    ws: Workspace, make_session: SessionMaker, checkout: Path
) -> None:
    with pytest.raises(InvalidInput, match="empty command"):
        ws.set_policy(required_checks=[" "])
    ws.set_policy(required_checks=["grep -q howdy app.py"])
    session = make_session("greeting", {"app.py": NEW_APP})
    ws.propose(session)
    before = tip(checkout)
    (run,) = ws.check_proposal(1)
    assert run.passed and run.purpose == "proposal" and tip(checkout) == before
    assert [c.check for c in ws.proposal(1).checks] == ["grep -q howdy app.py"]


def test_untracked_files_in_the_way_of_the_merge_refuse_it(
    ws: Workspace, make_session: SessionMaker, checkout: Path
) -> None:
    ws.set_policy(required_approvals=0)
    session = make_session("new file", {"new.txt": "from the session\n"})
    ws.propose(session)
    (checkout / "new.txt").write_text("mine, not committed\n")
    with pytest.raises(Conflict, match=r"untracked files .* \(new\.txt\)"):
        ws.merge(1)
    assert (checkout / "new.txt").read_text() == "mine, not committed\n"
    assert git(checkout, "ls-tree", "--name-only", "main").split() == ["README.md", "app.py"]


def test_no_merge_while_a_turn_runs_in_the_session(
    ws: Workspace, make_session: SessionMaker, checkout: Path, store: Store
) -> None:
    ws.set_policy(required_approvals=0)
    session = make_session("greeting", {"app.py": NEW_APP})
    ws.propose(session)
    lease = {"pid": os.getpid(), "host": this_host(), "ttl": timedelta(seconds=30)}
    assert store.acquire_lease(session.id, "a-turn", **lease) is None  # type: ignore[arg-type]
    before = tip(checkout)
    with pytest.raises(TurnInProgress):
        ws.merge(1)
    assert tip(checkout) == before
    store.release_lease(session.id, "a-turn")
    assert ws.merge(1).proposal.status == "merged"


def test_secrets_never_reach_the_proposal_or_main(
    ws: Workspace, project: Project, make_session: SessionMaker, checkout: Path, store: Store
) -> None:
    ws.set_policy(required_approvals=0)
    ws.set_env(project, "DEPLOY_KEY", "s3cr3t-value-42", secret=True)
    session = make_session("greeting", {"app.py": NEW_APP})
    proposal = ws.propose(session, title="ship it with s3cr3t-value-42")
    assert "s3cr3t-value-42" not in proposal.title and "[secret:DEPLOY_KEY]" in proposal.title
    ws.comment(1, "app.py", 1, "key s3cr3t-value-42 here?", reviewer="alice")
    ws.merge(1)
    assert "s3cr3t-value-42" not in git(checkout, "log", "-1", "--format=%B", "main")
    with store.executor.read() as tx:
        rows = tx.rows("SELECT title, description FROM proposals") + tx.rows(
            "SELECT text, '' FROM proposal_comments"
        )
    assert rows and not any("s3cr3t-value-42" in str(r) for r in rows)
