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
from branchwork.domain.models import Project, ProjectConfig
from branchwork.domain.replay import Budget
from branchwork.domain.text import require_utf8
from branchwork.providers import check_model_spec
from branchwork.sandbox.redact import MIN_SAFE_LENGTH
from branchwork.service import pool, trials
from branchwork.service.base import Services
from branchwork.service.scope import drop_worktree, open_scope

_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
REPO_CONFIG_FILE = ".branchwork.toml"
MIN_SECRET_LENGTH = MIN_SAFE_LENGTH


@dataclass(frozen=True)
class EnvEntry:
    key: str
    value: str
    secret: bool


def add_project(services: Services, source: str, name: str | None = None) -> Project:
    """Register a local repository (used in place) or clone a URL into the data directory."""
    for text, what in ((source, "the repository"), (name or "", "the name")):
        require_utf8(text, what, "Branchwork records paths and names as UTF-8: rename it")
    if gitops.is_url(source):
        return _add_cloned(services, source, name)
    info = gitops.inspect_repo(Path(source).expanduser().resolve())
    if info.root.is_relative_to(services.home.resolve()):
        raise InvalidInput(
            f"{info.root} is inside Branchwork's data directory ({services.home}), where "
            "worktrees come and go; give the path of your own checkout"
        )
    return _register(services, info, name or info.root.name, origin=None)


def _add_cloned(services: Services, url: str, name: str | None) -> Project:
    base = url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    project_name = name or slugify(base or "project")
    _check_name_free(services, project_name)
    dest = services.home / "repos" / project_name
    if dest.exists():
        raise AlreadyExists(f"{dest} already exists; give the project another name")
    gitops.clone(url, dest)
    try:
        info = gitops.inspect_repo(dest)
        return _register(services, info, project_name, origin=url)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def _register(services: Services, info: gitops.RepoInfo, name: str, origin: str | None) -> Project:
    _check_name_free(services, name)
    for other in services.store.list_projects():
        if Path(other.path) == info.root:
            raise AlreadyExists(
                f"{info.root} is already registered as project {other.name!r}; "
                f"use it, or remove it first (`project remove {other.name}`)"
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
    services.store.add_project(project)
    pool.request_refill(services, project)  # ready worktrees for its first sessions
    return project


def _check_name_free(services: Services, name: str) -> None:
    if not name or "/" in name or name.startswith("."):
        raise InvalidInput(f"{name!r} is not a usable project name; give another name")
    if services.store.find_project(name) is not None:
        raise AlreadyExists(f"a project named {name!r} exists; give this one another name")


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
            f"{REPO_CONFIG_FILE} is invalid: {exc}. Fix it on the main branch, then "
            "reload the configuration (`project config --reload`)"
        ) from exc


def remove_project(services: Services, project: Project, *, force: bool) -> None:
    """Forget a project. The user's repository and the session branches in it are kept."""
    active = services.store.list_sessions(project.id)
    if active and not force:
        raise Conflict(
            f"project {project.name!r} has {len(active)} active session(s); archive them "
            "first (`session archive`), or force the removal"
        )
    for trial in services.store.tasks.project_trials(project.id):
        if trials.busy(services, trial):  # its worker would go on in a forgotten session
            trials.stop_trial(services, trial, kill=True)
    for session in active:
        drop_worktree(open_scope(services, session, worktree=False))
    services.store.remove_project(project.id)
    pool.drain(services, project)  # after: a refiller at work then adds no worktree
    services.secrets.drop(project.id)
    if project.origin and Path(project.path).is_relative_to(services.home):
        shutil.rmtree(project.path, ignore_errors=True)


@dataclass(frozen=True)
class ConfigChanges:
    """Changes to a project's configuration; None leaves a setting as it is."""

    setup: str | None = None
    copy_files: list[str] | None = None
    mode: str | None = None
    model: str | None = None
    sandbox: str | None = None
    network: str | None = None
    concurrent_turns: int | None = None
    budget: Budget | None = None  # the projects' sessions together; Budget(): none
    pool_size: int | None = None
    pool_setup: bool | None = None
    disk_quota_mb: int | None = None  # 0: no quota

    def updates(self) -> dict[str, Any]:
        values = {k: v for k, v in self.__dict__.items() if v is not None and k != "budget"}
        if self.budget is not None:
            values.update(
                budget_tokens=self.budget.tokens,
                budget_cost_usd=self.budget.cost_usd,
                budget_seconds=self.budget.seconds,
            )
        if self.model is not None:
            values["model"] = check_model_spec(self.model)
        if self.copy_files is not None:  # one empty pattern (`--copy ''`) clears the list
            values["copy_files"] = [p for p in self.copy_files if p != ""]
        if self.disk_quota_mb == 0:
            values["disk_quota_mb"] = None
        return values


def configure_project(
    services: Services,
    project: Project,
    changes: ConfigChanges,
    *,
    reload: bool = False,
) -> Project:
    """Change the project's configuration; `reload` re-reads `.branchwork.toml` from main."""
    config, env = (project.config, project.env)
    if reload:
        config, repo_env = read_repo_config(Path(project.path), project.main_branch)
        env = {**env, **repo_env}
    try:
        config = ProjectConfig.model_validate({**config.model_dump(), **changes.updates()})
    except ValidationError as exc:
        raise InvalidInput(f"invalid project configuration: {_problems(exc)}") from exc
    updated = project.model_copy(update={"config": config, "env": env})
    services.store.save_project(updated)
    if changes.pool_size is not None or changes.pool_setup is not None:
        pool.request_refill(services, updated)
    return updated


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
    )


def set_env(services: Services, project: Project, key: str, value: str, *, secret: bool) -> Project:
    if not _ENV_KEY.match(key):
        raise InvalidInput(f"{key!r} is not a valid variable name; use letters, digits and _")
    secret = secret or key in project.secret_names  # a secret stays one until it is unset
    if secret and len(value) < MIN_SECRET_LENGTH:
        raise InvalidInput(
            f"the value of {key} has {len(value)} character(s): too short to be kept out of the "
            f"history (every occurrence of those characters in messages and output would be "
            f"replaced). Use a secret of at least {MIN_SECRET_LENGTH} characters, or set it as "
            "a plain variable if it is not secret"
        )
    env = {k: v for k, v in project.env.items() if k != key}
    names = [n for n in project.secret_names if n != key]
    if secret:
        services.secrets.set(project.id, key, value)
        names.append(key)
    else:
        services.secrets.unset(project.id, key)
        env[key] = value
    updated = project.model_copy(update={"env": env, "secret_names": sorted(names)})
    services.store.save_project(updated)
    return updated


def unset_env(services: Services, project: Project, key: str) -> Project:
    if key not in project.env and key not in project.secret_names:
        raise NotFound(f"{key} is not set on {project.name}; the project's env list shows what is")
    services.secrets.unset(project.id, key)
    updated = project.model_copy(
        update={
            "env": {k: v for k, v in project.env.items() if k != key},
            "secret_names": [n for n in project.secret_names if n != key],
        }
    )
    services.store.save_project(updated)
    return updated


def list_env(project: Project) -> list[EnvEntry]:
    plain = [EnvEntry(k, v, False) for k, v in project.env.items()]
    hidden = [EnvEntry(k, "********", True) for k in project.secret_names]
    return sorted(plain + hidden, key=lambda e: e.key)
