"""The policy's required checks, run on a merge result in a scratch worktree.

The result of a merge is a commit nobody has checked out (see `gitops/merges.py`); it is
checked out, detached, in a scratch worktree of the data directory, the project's untracked
files (`.env` …) are copied in and its setup command is run, as for a new session, then each
check runs there like any command of the session (sandboxed, streamed, redacted, its whole
output kept as a blob) and is summed up in a `check_run` event. The scratch worktree is removed
whatever happens.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from branchwork import gitops
from branchwork.domain.events import CheckRun, CommandFinished
from branchwork.domain.ids import new_id
from branchwork.gitops import merges
from branchwork.service.commands import run_command
from branchwork.service.scope import SessionScope, copy_untracked

TAIL_CHARS = 4000  # of a check's output, in its event and in a refusal


def run_checks(
    scope: SessionScope,
    commit: str,
    checks: list[str],
    *,
    purpose: Literal["proposal", "merge"],
    proposal_id: str,
) -> list[CheckRun]:
    """Run every check on `commit` (all of them, so a failure shows with the others); each is
    recorded as a `check_run`. A failed setup command fails the checks unrun."""
    if not checks:
        return []
    results = []
    with scratch_worktree(scope, commit) as checkout:
        setup = scope.project.config.setup
        if setup:
            ran = run_command(checkout, setup, purpose="setup", checkpoint=False).finished
            if ran.status != "ok":
                return [_record(checkout, f"setup: {setup}", commit, ran, purpose, proposal_id)]
        for check in checks:
            ran = run_command(checkout, check, purpose="check", checkpoint=False).finished
            results.append(_record(checkout, check, commit, ran, purpose, proposal_id))
    return results


@contextmanager
def scratch_worktree(scope: SessionScope, commit: str) -> Iterator[SessionScope]:
    """The session's scope with its commands running in a scratch worktree at `commit`."""
    services, repo = scope.services, Path(scope.project.path)
    path = services.home / "scratch" / scope.project.name / f"{new_id()[-10:].lower()}"
    with gitops.repo_lock(services.lock_dir, repo):
        merges.add_scratch_worktree(repo, path, commit)
    try:
        copy_untracked(repo, path, scope.project.config.copy_files)
        yield scope.with_session(scope.session.model_copy(update={"worktree": str(path)}))
    finally:
        with gitops.repo_lock(services.lock_dir, repo):
            gitops.remove_worktree(repo, path)


def _record(
    scope: SessionScope,
    check: str,
    commit: str,
    finished: CommandFinished,
    purpose: Literal["proposal", "merge"],
    proposal_id: str,
) -> CheckRun:
    output = finished.output_head + finished.output_tail
    event = scope.record(
        CheckRun(
            check=check,
            head=commit,
            purpose=purpose,
            passed=finished.status == "ok",
            exit_code=finished.exit_code,
            duration_ms=finished.duration_ms,
            output_tail=output[-TAIL_CHARS:],
            output_blob=finished.output_blob,
            command_id=finished.command_id,
            proposal_id=proposal_id,
        )
    )
    assert isinstance(event.payload, CheckRun)
    return event.payload
