"""Use-cases of projects: register, find, configure, remove; env vars and secrets."""

from __future__ import annotations

import re
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from branchwork import gitops
from branchwork.domain.errors import (
    AlreadyExists,
    Conflict,
    GitError,
    InvalidInput,
    NotFound,
)
from branchwork.domain.events import utc_now
from branchwork.domain.ids import new_id, slugify
from branchwork.domain.models import Project, ProjectConfig, Session
from branchwork.service.context import ServiceContext

_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
REPO_CONFIG_FILE = ".branchwork.toml"


@dataclass(frozen=True)
class EnvEntry:
    key: str
    value: str
    secret: bool


def add_project(ctx: ServiceContext, source: str, name: str | None = None) -> Project:
    """Register a local repository (used in place) or clone a URL into the data directory."""
    if gitops.is_url(source):
        return _add_cloned(ctx, source, name)
    info = gitops.inspect_repo(Path(source).expanduser().resolve())
    return _register(ctx, info, name or info.root.name, origin=None)


def _add_cloned(ctx: ServiceContext, url: str, name: str | None) -> Project:
    base = url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    project_name = name or slugify(base or "project")
    _check_name_free(ctx, project_name)
    dest = ctx.home / "repos" / project_name
    if dest.exists():
        raise AlreadyExists(f"{dest} already exists; pick another name with --name")
    gitops.clone(url, dest)
    try:
        info = gitops.inspect_repo(dest)
        return _register(ctx, info, project_name, origin=url)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def _register(ctx: ServiceContext, info: gitops.RepoInfo, name: str, origin: str | None) -> Project:
    _check_name_free(ctx, name)
    for other in ctx.store.list_projects():
        if Path(other.path) == info.root:
            raise AlreadyExists(
                f"{info.root} is already registered as project {other.name!r}; "
                f"use it, or `branchwork project remove {other.name}` first"
            )
    config, env = read_repo_config(info.root, info.main_branch)
    project = Project(
        id=new_id(),
        name=name,
        path=str(info.root),
        origin=origin,
        main_branch=info.main_branch,
        created_at=utc_now(),
        config=config,
        env=env,
    )
    ctx.store.add_project(project)
    return project


def _check_name_free(ctx: ServiceContext, name: str) -> None:
    if not name or "/" in name or name.startswith("."):
        raise InvalidInput(f"{name!r} is not a usable project name; pass --name NAME")
    if ctx.store.find_project(name) is not None:
        raise AlreadyExists(f"a project named {name!r} exists; pass --name with another name")


def read_repo_config(root: Path, ref: str) -> tuple[ProjectConfig, dict[str, str]]:
    """The `.branchwork.toml` committed at `ref`, as project configuration and env vars."""
    try:
        text = gitops.run_git(["show", f"{ref}:{REPO_CONFIG_FILE}"], root)
    except GitError:
        return ProjectConfig(), {}
    return parse_repo_config(text)


def parse_repo_config(text: str) -> tuple[ProjectConfig, dict[str, str]]:
    try:
        data: dict[str, Any] = tomllib.loads(text)
        env = {str(k): str(v) for k, v in data.pop("env", {}).items()}
        session = data.pop("session", {})
        merged = {**data, **session}
        if "copy" in merged:
            merged["copy_files"] = merged.pop("copy")
        return ProjectConfig.model_validate(merged), env
    except (tomllib.TOMLDecodeError, ValidationError, AttributeError) as exc:
        raise InvalidInput(
            f"{REPO_CONFIG_FILE} is invalid: {exc}. Fix it on the main branch and run "
            "`branchwork project config --reload`"
        ) from exc


def repo_path(project: Project) -> Path:
    """The project's repository, which must still be where it was registered."""
    path = Path(project.path)
    if not (path / ".git").exists():
        raise NotFound(
            f"the repository of project {project.name!r} is no longer at {path}; move it back, "
            f"or `branchwork project remove {project.name} --force` and add it again"
        )
    return path


def get_project(ctx: ServiceContext, key: str) -> Project:
    project = ctx.store.find_project(key)
    if project is None:
        known = ", ".join(p.name for p in ctx.store.list_projects()) or "none yet"
        raise NotFound(
            f"no project {key!r} (known: {known}); run `branchwork project add PATH` first"
        )
    return project


def project_for_path(ctx: ServiceContext, path: Path) -> Project | None:
    """The project whose checkout, clone or session worktree contains `path`."""
    path = path.resolve()
    for project in ctx.store.list_projects():
        if path.is_relative_to(Path(project.path)):
            return project
    session = session_at(ctx, path)
    return get_project(ctx, session.project_id) if session else None


def session_at(ctx: ServiceContext, path: Path) -> Session | None:
    """The session whose worktree contains `path`, if any."""
    path = path.resolve()
    for session in ctx.store.list_sessions(include_archived=True):
        if path.is_relative_to(Path(session.worktree).resolve()):
            return session
    return None


def resolve_project(ctx: ServiceContext, key: str | None, cwd: Path) -> Project:
    """The named project, else the one of the current directory, else the only one."""
    if key:
        return get_project(ctx, key)
    found = project_for_path(ctx, cwd)
    if found:
        return found
    projects = ctx.store.list_projects()
    if len(projects) == 1:
        return projects[0]
    raise NotFound(
        "no project given and the current directory belongs to none; pass --project NAME "
        "(see `branchwork project list`) or `branchwork project add PATH`"
    )


def remove_project(ctx: ServiceContext, project: Project, *, force: bool) -> None:
    """Forget a project. The user's repository and the session branches in it are kept."""
    from branchwork.service.sessions import drop_worktree

    active = ctx.store.list_sessions(project.id)
    if active and not force:
        raise Conflict(
            f"project {project.name!r} has {len(active)} active session(s); archive them "
            "(`branchwork session archive`) or pass --force"
        )
    for session in active:
        drop_worktree(ctx, project, session)
    ctx.store.remove_project(project.id)
    ctx.secrets.drop(project.id)
    if project.origin and Path(project.path).is_relative_to(ctx.home):
        shutil.rmtree(project.path, ignore_errors=True)


def configure_project(
    ctx: ServiceContext, project: Project, *, reload: bool = False, **changes: Any
) -> Project:
    """Change the project's configuration; `reload` re-reads `.branchwork.toml` from main."""
    config, env = (project.config, project.env)
    if reload:
        config, repo_env = read_repo_config(Path(project.path), project.main_branch)
        env = {**env, **repo_env}
    updates = {k: v for k, v in changes.items() if v is not None}
    try:
        config = ProjectConfig.model_validate({**config.model_dump(), **updates})
    except ValidationError as exc:
        raise InvalidInput(f"invalid project configuration: {exc}") from exc
    updated = project.model_copy(update={"config": config, "env": env})
    ctx.store.save_project(updated)
    return updated


def set_env(
    ctx: ServiceContext, project: Project, key: str, value: str, *, secret: bool
) -> Project:
    if not _ENV_KEY.match(key):
        raise InvalidInput(f"{key!r} is not a valid variable name; use letters, digits and _")
    secret = secret or key in project.secret_names  # a secret stays one until it is unset
    env = {k: v for k, v in project.env.items() if k != key}
    names = [n for n in project.secret_names if n != key]
    if secret:
        ctx.secrets.set(project.id, key, value)
        names.append(key)
    else:
        ctx.secrets.unset(project.id, key)
        env[key] = value
    updated = project.model_copy(update={"env": env, "secret_names": sorted(names)})
    ctx.store.save_project(updated)
    return updated


def unset_env(ctx: ServiceContext, project: Project, key: str) -> Project:
    if key not in project.env and key not in project.secret_names:
        raise NotFound(f"{key} is not set on {project.name}; see `branchwork project env list`")
    ctx.secrets.unset(project.id, key)
    updated = project.model_copy(
        update={
            "env": {k: v for k, v in project.env.items() if k != key},
            "secret_names": [n for n in project.secret_names if n != key],
        }
    )
    ctx.store.save_project(updated)
    return updated


def list_env(project: Project) -> list[EnvEntry]:
    plain = [EnvEntry(k, v, False) for k, v in project.env.items()]
    hidden = [EnvEntry(k, "********", True) for k in project.secret_names]
    return sorted(plain + hidden, key=lambda e: e.key)


def command_env(ctx: ServiceContext, project: Project) -> dict[str, str]:
    """The project's variables for a command: plain values, then secrets (real values)."""
    return {**project.env, **ctx.secrets.load(project.id)}
