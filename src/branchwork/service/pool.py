"""Pools of ready worktrees: a new session switches a branch instead of checking files out.

Each project keeps `pool_size` worktrees (default 2) checked out, detached, at the tip of its
main branch, in `<data dir>/worktrees/<project>/.pool/`. A new session from main *claims* one
whose commit is exactly the tip it starts from: a branch is created there and the directory is
moved to the session's place (no file is written). With none ready (empty, or made for an older
tip) it falls back to `git worktree add`. A claimed worktree is never given back: a pooled
session holds nothing of any other session.

The pool is refilled by a detached process (`python -m branchwork.service.refiller PROJECT_ID`),
started after a claim, when a session finds the pool empty or stale (main moved), and when a
project is added: stale worktrees are moved to the new tip (only changed files are rewritten),
missing ones are added. One refiller per project at a time (a file lock); claims take their
worktree under another lock, and a worktree is listed as ready only once it is complete, so no
two sessions, in any processes, can get the same one.

With the project's `pool_setup`, the setup command runs in each pooled worktree ahead of time;
the session that claims it gets that run in its history (command events and a note).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from branchwork import gitops
from branchwork.domain.errors import BranchworkError, GitError
from branchwork.domain.ids import new_id
from branchwork.domain.models import Project
from branchwork.sandbox import CommandSpec, choose_runner
from branchwork.service import mirror
from branchwork.service.base import Services
from branchwork.service.commands import limits_of
from branchwork.service.mirror import pool_dir
from branchwork.service.recorder import MODEL_KEY_VARS
from branchwork.service.resolve import get_project
from branchwork.service.scope import output_dir, repo_path
from branchwork.settings import load_settings

SETUP_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class SetupRun:
    """The setup command as it ran in a pooled worktree (its output kept as a blob)."""

    command: str
    status: str
    exit_code: int | None
    duration_ms: int
    output_head: str
    output_tail: str
    output_bytes: int
    truncated: bool
    output_blob: str | None
    ran_at: float


@dataclass(frozen=True)
class PoolSlot:
    """A ready worktree of the pool: where it is, the commit it holds, its setup run."""

    path: str
    commit: str
    setup: SetupRun | None = None

    @classmethod
    def load(cls, data: dict[str, object]) -> PoolSlot:
        setup = data.get("setup")
        return cls(
            path=str(data["path"]),
            commit=str(data["commit"]),
            setup=SetupRun(**setup) if isinstance(setup, dict) else None,
        )


# -- where the pool lives -------------------------------------------------------------------


def _key(project: Project) -> str:
    return f"pool:{project.id}"


def enabled(services: Services, project: Project) -> bool:
    return services.settings.pool and project.config.pool_size > 0


def slots(services: Services, project: Project) -> list[PoolSlot]:
    """The ready worktrees of the project's pool."""
    raw = services.store.get_state(_key(project))
    return [PoolSlot.load(item) for item in json.loads(raw)] if raw else []


def _save(services: Services, project: Project, ready: list[PoolSlot]) -> None:
    services.store.set_state(
        _key(project), json.dumps([asdict(s) for s in ready]) if ready else None
    )


@contextlib.contextmanager
def _listing(services: Services, project: Project) -> Iterator[list[PoolSlot]]:
    """The ready list, changed in place under the pool's lock (across processes)."""
    with gitops.file_lock(services.lock_dir / f"pool-{project.id}.lock"):
        ready = slots(services, project)
        yield ready
        _save(services, project, ready)


# -- claiming -------------------------------------------------------------------------------


def claim(
    services: Services, project: Project, commit: str, dest: Path, branch: str
) -> PoolSlot | None:
    """Take a ready worktree at exactly `commit` and make it `branch`'s worktree at `dest`;
    None when there is none (the caller checks one out)."""
    if not enabled(services, project):
        return None
    with _listing(services, project) as ready:
        slot = next((s for s in ready if s.commit == commit and Path(s.path).is_dir()), None)
        if slot is not None:
            ready.remove(slot)
    if slot is None:
        return None
    repo = repo_path(project)
    try:
        with gitops.repo_lock(services.lock_dir, repo):
            gitops.claim_worktree(repo, Path(slot.path), dest, branch, commit)
    except GitError:
        _discard(repo, Path(slot.path))  # unusable: the caller checks a new one out
        return None
    return slot


def _discard(repo: Path, path: Path) -> None:
    with contextlib.suppress(BranchworkError):
        gitops.remove_worktree(repo, path)
    shutil.rmtree(path, ignore_errors=True)


# -- refilling ------------------------------------------------------------------------------


def request_refill(services: Services, project: Project) -> None:
    """Have the pool refilled in the background (a detached process that outlives us)."""
    if not enabled(services, project):
        return
    marker = services.lock_dir / f"pool-{project.id}.wanted"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(new_id())
    log = pool_dir(services, project).parent / ".pool.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    # `sh` starts the refiller in the background and exits at once: the refiller belongs to
    # no process of ours (nothing to wait for, no zombie), in its own session (Ctrl-C on the
    # command that asked for it does not stop it).
    subprocess.run(
        ["/bin/sh", "-c", '"$@" </dev/null >>"$0" 2>&1 &', str(log), sys.executable, "-m",
         "branchwork.service.refiller", project.id],
        env=_child_env(services),
        start_new_session=True,
        check=True,
    )  # fmt: skip


def _child_env(services: Services) -> dict[str, str]:
    """This process's environment with its settings spelled out (they may come from code)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRANCHWORK_")}
    for name, value in services.settings.model_dump(mode="json").items():
        if value is not None:
            env[f"BRANCHWORK_{name.upper()}"] = str(value)
    return env


def refill(services: Services, project: Project) -> bool:
    """Bring the pool to `pool_size` worktrees at the tip of main, now; False when another
    process is refilling it (that one goes on until the pool is full and current)."""
    lock = services.lock_dir / f"pool-{project.id}.refill"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        marker = services.lock_dir / f"pool-{project.id}.wanted"
        while True:
            wanted = marker.read_text() if marker.exists() else ""
            _fill_once(services, get_project(services, project.id))
            if (marker.read_text() if marker.exists() else "") == wanted:
                return True


def _fill_once(services: Services, project: Project) -> None:
    """One pass: take the stale and surplus worktrees off the ready list, move stale ones to
    the tip (as many as are wanted; the rest are removed), add new ones for the rest."""
    repo = repo_path(project)
    tip = gitops.resolve_commit(repo, project.main_branch)
    size = project.config.pool_size if services.settings.pool else 0
    with _listing(services, project) as ready:
        stale = [s for s in ready if s.commit != tip or not Path(s.path).is_dir()]
        current = [s for s in ready if s not in stale]
        ready[:] = current[:size]
        missing = size - len(ready)
    reusable = [s for s in stale if Path(s.path).is_dir()][:missing]
    for slot in current[size:] + [s for s in stale if s not in reusable]:
        _discard(repo, Path(slot.path))
    for slot in reusable:
        _make_ready(services, project, repo, Path(slot.path), tip, fresh=False)
    for _ in range(missing - len(reusable)):
        path = pool_dir(services, project) / new_id()[-10:].lower()
        _make_ready(services, project, repo, path, tip, fresh=True)
    if size:
        mirror.refresh(services, project, repo, tip)
    if not size or services.store.find_project(project.id) is None:
        mirror.remove(services, project)  # no pool, or the project went meanwhile (`drain`)


def _make_ready(
    services: Services, project: Project, repo: Path, path: Path, tip: str, *, fresh: bool
) -> None:
    """Check `tip` out at `path` (a new worktree, or an old one moved there), run the setup if
    the project allows it, then list it as ready."""
    try:
        if fresh:
            with gitops.repo_lock(services.lock_dir, repo):
                gitops.add_detached_worktree(repo, path, tip)
        else:
            gitops.move_to(path, tip)
    except GitError:
        _discard(repo, path)
        return
    setup = _run_setup(services, project, path) if project.config.pool_setup else None
    with _listing(services, project) as ready:
        if services.store.find_project(project.id) is not None:
            ready.append(PoolSlot(path=str(path), commit=tip, setup=setup))
            return
    # the project was removed meanwhile (its pool drained): nobody would ever remove this one
    _discard(repo, path)


def _run_setup(services: Services, project: Project, path: Path) -> SetupRun | None:
    """The project's setup command in a pooled worktree: sandboxed like any command, with the
    project's variables and secrets (no session's: it has none yet), output redacted."""
    command = project.config.setup
    if not command:
        return None
    runner, _ = choose_runner(
        project.config.sandbox or services.settings.sandbox,
        network=project.config.network == "on",
        worktree=path,
        git_dirs=[Path(project.path) / ".git"],
        hide=[services.home],
        limits=limits_of(services.settings),
        output_dir=output_dir(services),
        probe_cache=services.home / "sandbox-probe.json",
    )
    env = {k: v for k, v in os.environ.items() if k not in MODEL_KEY_VARS}
    env = {k: v for k, v in env.items() if not k.startswith("BRANCHWORK_")}
    env.update(project.env)
    env.update(services.secrets.load(project.id))
    spec = CommandSpec(cwd=path, env=env, shell=command, timeout_s=SETUP_TIMEOUT_S)
    result = runner.run(spec, redactor=services.recorder.redactor(project.id))
    blob = None
    if result.output_bytes:
        blob = services.store.put_blob(result.output_path.read_bytes())
    result.output_path.unlink(missing_ok=True)
    return SetupRun(
        command=command,
        status=result.status,
        exit_code=result.exit_code,
        duration_ms=result.duration_ms,
        output_head=result.head if result.status != "error" else result.error,
        output_tail=result.tail,
        output_bytes=result.output_bytes,
        truncated=result.truncated,
        output_blob=blob,
        ran_at=time.time(),
    )


def remove_slots(services: Services, project: Project, paths: set[str]) -> None:
    """Remove these pooled worktrees (if still ready: a claimed one is a session's now)."""
    with _listing(services, project) as ready:
        taken = [s for s in ready if s.path in paths]
        ready[:] = [s for s in ready if s.path not in paths]
    for slot in taken:
        _discard(Path(project.path), Path(slot.path))


def drain(services: Services, project: Project) -> int:
    """Remove every pooled worktree of the project (gc, project removal); how many. A
    refiller still at work lists nothing once its project is gone (see `_make_ready`): remove
    the project from the store first, then drain its pool."""
    with _listing(services, project) as ready:
        taken = list(ready)
        ready.clear()
    repo = Path(project.path)
    for slot in taken:
        if (repo / ".git").exists():
            _discard(repo, Path(slot.path))
        else:
            shutil.rmtree(slot.path, ignore_errors=True)
    mirror.remove(services, project)
    return len(taken)


def run_refiller(project_id: str) -> int:
    """The detached refiller (`service/refiller.py`): its settings come from the environment
    its parent gave it; what goes wrong goes to the pool's log."""
    services = Services.open(load_settings())
    try:
        refill(services, get_project(services, project_id))
    except BranchworkError as exc:
        print(f"pool refill of {project_id} failed: {exc}", file=sys.stderr)  # the pool's log
        return 1
    finally:
        services.close()
    return 0
