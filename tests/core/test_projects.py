"""Projects: registration, errors that say what to do, env vars and secrets, removal."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from branchwork import AlreadyExists, Conflict, NotAGitRepository, NotFound, Workspace
from branchwork.domain.errors import InvalidInput
from tests.conftest import RepoFactory, git, make_repo


def test_local_project_is_used_in_place_with_detected_main(
    ws: Workspace, repo_factory: RepoFactory
) -> None:
    repo = repo_factory(branch="master")
    project = ws.add_project(repo)
    assert project.path == str(repo.resolve())
    assert project.main_branch == "master"
    assert project.name == repo.name
    assert [p.name for p in ws.projects()] == [repo.name]


def test_url_is_cloned_into_the_data_dir(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(f"file://{repo}", name="cloned")
    assert Path(project.path).is_relative_to(ws.settings.home)
    assert (Path(project.path) / "app.py").exists()
    assert project.origin == f"file://{repo}"


def test_not_a_repository_is_refused_with_remedy(ws: Workspace, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(NotAGitRepository, match="git init"):
        ws.add_project(plain)


def test_empty_repository_is_refused_with_remedy(ws: Workspace, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    with pytest.raises(NotAGitRepository, match="no commits"):
        ws.add_project(empty)


def test_unknown_path_is_refused(ws: Workspace, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        ws.add_project(tmp_path / "missing")


def test_dubious_ownership_says_how_to_trust(ws: Workspace, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the repository to another user")
    repo = make_repo(tmp_path / "foreign", {"a.txt": "a"})
    for path in [repo, *repo.rglob("*")]:
        os.chown(path, 4242, 4242, follow_symlinks=False)
    with pytest.raises(NotAGitRepository, match=r"safe\.directory"):
        ws.add_project(repo)


def test_unknown_project_name_lists_known_ones(ws: Workspace, repo: Path) -> None:
    ws.add_project(repo, name="demo")
    with pytest.raises(NotFound, match="known: demo"):
        ws.project("nope")


def test_same_repository_or_name_twice_is_refused(
    ws: Workspace, repo: Path, repo_factory: RepoFactory
) -> None:
    ws.add_project(repo, name="one")
    with pytest.raises(AlreadyExists, match="already registered"):
        ws.add_project(repo, name="two")
    with pytest.raises(AlreadyExists, match="another name"):
        ws.add_project(repo_factory(), name="one")


def test_remove_refuses_active_sessions_unless_forced(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project)
    with pytest.raises(Conflict, match="force the removal"):
        ws.remove_project(project.name)
    ws.remove_project(project.name, force=True)
    assert ws.projects() == []
    assert (repo / "app.py").exists() and (repo / ".git").is_dir()
    assert not Path(session.worktree).exists()
    assert git(repo, "rev-parse", "--verify", session.branch)


def test_env_vars_reach_commands_and_secrets_are_masked(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)
    ws.set_env(project, "MODE", "dev")
    ws.set_env(project, "TOKEN", "s3cr3t-value", secret=True)
    entries = {e.key: e for e in ws.env(project)}
    assert entries["MODE"].value == "dev" and not entries["MODE"].secret
    assert entries["TOKEN"].value == "********" and entries["TOKEN"].secret
    session = ws.new_session(project)
    out = ws.run(session, "echo $MODE ${#TOKEN}")
    assert ws.command_output(out.finished).split() == ["dev", "12"]
    with pytest.raises(InvalidInput, match="valid variable name"):
        ws.set_env(project, "BAD-NAME", "x")


def test_secrets_file_is_private(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)
    ws.set_env(project, "TOKEN", "abcdef", secret=True)
    secret_file = ws.settings.home / "secrets" / f"{project.id}.json"
    assert secret_file.stat().st_mode & 0o777 == 0o600


def test_repo_config_file_seeds_project_config(ws: Workspace, repo_factory: RepoFactory) -> None:
    toml = 'mode = "ask"\n[session]\ncopy = [".env"]\nsetup = "true"\n[env]\nDEBUG = "1"\n'
    project = ws.add_project(repo_factory({".branchwork.toml": toml}))
    assert project.config.mode == "ask"
    assert project.config.copy_files == [".env"]
    assert project.config.setup == "true"
    assert project.env == {"DEBUG": "1"}


def test_invalid_repo_config_names_the_file(ws: Workspace, repo_factory: RepoFactory) -> None:
    with pytest.raises(InvalidInput, match=r"\.branchwork\.toml is invalid"):
        ws.add_project(repo_factory({".branchwork.toml": "mode = 'yolo'\n"}))


def test_a_moved_repository_is_reported_with_what_to_do(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)
    repo.rename(repo.with_name("moved"))
    with pytest.raises(NotFound, match="no longer at"):
        ws.new_session(project)
    ws.remove_project(project.name, force=True)
    assert ws.projects() == []


@pytest.mark.parametrize("pattern", ["/etc/passwd", "../outside/*", ".git/config"])
def test_copy_patterns_must_stay_inside_the_repository(
    ws: Workspace, repo: Path, pattern: str
) -> None:
    project = ws.add_project(repo)
    with pytest.raises(InvalidInput, match="relative glob"):
        ws.configure_project(project, copy_files=[pattern])


def test_detached_head_and_bare_repositories_get_the_right_explanation(
    ws: Workspace, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "detached", {"a.txt": "a"}, branch="feature")
    git(repo, "checkout", "-q", "--detach")
    git(repo, "branch", "-q", "-D", "feature")
    with pytest.raises(NotAGitRepository, match="detached HEAD"):
        ws.add_project(repo)
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(make_repo(tmp_path / "src", {"a": "a"})), str(bare))
    with pytest.raises(NotAGitRepository, match="bare repository"):
        ws.add_project(bare)


def test_an_empty_copy_pattern_clears_the_list(repo: Path) -> None:
    from tests.conftest import bw

    bw("project", "add", ".", cwd=repo)
    bw("project", "config", "--copy", ".env", "--copy", "config/*.local", cwd=repo)
    cleared = bw("project", "config", "--copy", "", "--json", cwd=repo)
    assert json.loads(cleared.stdout)["copy_files"] == []
