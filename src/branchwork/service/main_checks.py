"""Check commands run on main outside any session: in a scratch worktree (detached at the
commit, under the data dir, removed afterwards), confined like a session's commands. Used where
no session's worktree holds the code to check (`suggest` on main)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from branchwork import gitops
from branchwork.domain.ids import new_id
from branchwork.domain.models import Project
from branchwork.sandbox import CommandSpec
from branchwork.sandbox.liveness import process_is_gone, this_host
from branchwork.service.base import Services
from branchwork.service.commands import SANDBOX_CACHE, project_env, runner_for
from branchwork.service.scope import repo_path

TAIL_CHARS = 2000


@dataclass(frozen=True)
class ScratchCheck:
    """How a check ended on `commit`; `output_blob` holds its whole (redacted) output."""

    command: str
    commit: str
    passed: bool
    exit_code: int | None
    duration_ms: int
    output_tail: str
    output_blob: str | None


@contextmanager
def scratch_worktree(services: Services, project: Project, commit: str) -> Iterator[Path]:
    """A detached worktree of the project at `commit`, removed when done."""
    repo = repo_path(project)
    scratch = services.home / "tmp" / "scratch"
    _remove_stale(scratch, repo)
    path = scratch / f"{os.getpid()}-{new_id().lower()}"  # the pid says when it is stale
    path.parent.mkdir(parents=True, exist_ok=True)
    gitops.run_git(["worktree", "add", "--quiet", "--detach", str(path), commit], repo)
    try:
        yield path
    finally:
        gitops.remove_worktree(repo, path)
        shutil.rmtree(path, ignore_errors=True)


def _remove_stale(scratch: Path, repo: Path) -> None:
    """Scratch worktrees of processes that died (killed during a check) go, with git's entry."""
    if not scratch.is_dir():
        return
    for entry in scratch.iterdir():
        pid = entry.name.split("-", 1)[0]
        if pid.isdigit() and process_is_gone(int(pid), this_host()):
            shutil.rmtree(entry, ignore_errors=True)
    gitops.run_git(["worktree", "prune"], repo, check=False)


def run_on_commit(services: Services, project: Project, commit: str, command: str) -> ScratchCheck:
    """Run `command` on a scratch checkout of `commit`."""
    with scratch_worktree(services, project, commit) as path:
        runner, choice = runner_for(services, project, path)
        env = project_env(services, project)
        if choice.confined:
            env.setdefault("XDG_CACHE_HOME", SANDBOX_CACHE)
        spec = CommandSpec(
            shell=command,
            argv=None,
            cwd=path,
            env=env,
            timeout_s=services.settings.command_timeout,
            output_cap=services.settings.output_cap,
        )
        result = runner.run(spec, redactor=services.recorder.redactor(project.id))
    try:
        data = result.output_path.read_bytes() if result.output_bytes else b""
    finally:
        result.output_path.unlink(missing_ok=True)
    text = data.decode("utf-8", errors="replace")
    return ScratchCheck(
        command=command,
        commit=commit,
        passed=result.status == "ok" and result.exit_code == 0,
        exit_code=result.exit_code,
        duration_ms=result.duration_ms,
        output_tail=(text or result.error)[-TAIL_CHARS:],
        output_blob=services.store.put_blob(data) if data else None,
    )
