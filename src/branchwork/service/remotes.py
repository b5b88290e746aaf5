"""Remote pull requests: push a session's branch, and open a pull request (GitHub) or a merge
request (GitLab) through their REST APIs.

The token comes from the environment (`GITHUB_TOKEN`, `GITLAB_TOKEN`) and is never recorded
(values of variables named like tokens are redacted from everything recorded). The API's base
URL is `GITHUB_API_URL` (default `https://api.github.com`, as GitHub Actions sets it) or
`GITLAB_API_URL` (else GitLab CI's `CI_API_V4_URL`, else `https://gitlab.com/api/v4`). The
repository is read from the remote's URL (`github.com:owner/name.git`,
`https://gitlab.example.com/group/name.git`); for a remote whose URL names none (a path, a
mirror), `GITHUB_REPOSITORY` / `CI_PROJECT_PATH` name it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import httpx

from branchwork.domain.errors import InfrastructureError, InvalidInput
from branchwork.gitops import merges

Host = Literal["github", "gitlab"]
HOSTS: tuple[Host, ...] = ("github", "gitlab")
TIMEOUT_S = 30.0
_URL_PATH = re.compile(r"^(?:[a-z+]+://[^/]+/|[^@/]+@[^:]+:)(?P<path>.+?)(?:\.git)?/?$")


@dataclass(frozen=True)
class PullRequest:
    """What a pull request is opened with: the branch (pushed already) into the target."""

    branch: str
    target: str
    title: str
    body: str


def push(repo: Path, branch: str, main_branch: str) -> str:
    """Push `branch` to the project's remote (the one main tracks, else `origin`); its name."""
    remote = merges.default_remote(repo, main_branch)
    if remote is None:
        raise InvalidInput(
            f"{repo} has no remote to push to; add one (`git remote add origin URL`), "
            "then propose with --push again"
        )
    merges.push_branch(repo, remote, branch)
    return remote


def open_pull_request(
    host: Host, repo: Path, remote: str, request: PullRequest, env: Mapping[str, str] | None = None
) -> str:
    """Open the pull (merge) request; returns its web URL."""
    env = os.environ if env is None else env
    url = merges.remote_url(repo, remote)
    if host == "github":
        return _github(url, request, env)
    return _gitlab(url, request, env)


def _github(remote_url: str, request: PullRequest, env: Mapping[str, str]) -> str:
    token = _token(env, "GITHUB_TOKEN", "GitHub")
    slug = _repo_path(remote_url) or env.get("GITHUB_REPOSITORY", "")
    if slug.count("/") != 1:
        raise InvalidInput(
            f"cannot tell the GitHub repository from the remote {remote_url!r}; set "
            "GITHUB_REPOSITORY=owner/name"
        )
    base = env.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
    body = {"title": request.title, "head": request.branch, "base": request.target}
    body["body"] = request.body
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    answer = _post(f"{base}/repos/{slug}/pulls", body, headers, "GitHub", "GITHUB_TOKEN")
    return str(answer.get("html_url") or answer.get("url") or "")


def _gitlab(remote_url: str, request: PullRequest, env: Mapping[str, str]) -> str:
    token = _token(env, "GITLAB_TOKEN", "GitLab")
    path = _repo_path(remote_url) or env.get("CI_PROJECT_PATH", "")
    if "/" not in path:
        raise InvalidInput(
            f"cannot tell the GitLab project from the remote {remote_url!r}; set "
            "CI_PROJECT_PATH=group/name"
        )
    base = (
        env.get("GITLAB_API_URL") or env.get("CI_API_V4_URL") or "https://gitlab.com/api/v4"
    ).rstrip("/")
    body = {
        "source_branch": request.branch,
        "target_branch": request.target,
        "title": request.title,
        "description": request.body,
    }
    url = f"{base}/projects/{quote(path, safe='')}/merge_requests"
    answer = _post(url, body, {"PRIVATE-TOKEN": token}, "GitLab", "GITLAB_TOKEN")
    return str(answer.get("web_url") or "")


def _token(env: Mapping[str, str], name: str, what: str) -> str:
    token = env.get(name, "").strip()
    if not token:
        raise InvalidInput(f"set {name} to a {what} token allowed to open pull requests")
    return token


def _repo_path(remote_url: str) -> str:
    """`owner/name` (or `group/sub/name`) of a remote URL; empty for a local path."""
    match = _URL_PATH.match(remote_url.strip())
    return match.group("path") if match and not remote_url.startswith("file://") else ""


def _post(
    url: str, body: dict[str, Any], headers: dict[str, str], what: str, token_name: str
) -> dict[str, Any]:
    try:
        response = httpx.post(url, json=body, headers=headers, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise InfrastructureError(
            f"{what} could not be reached at {url} ({exc}); check the network (or the API "
            "URL), then propose again"
        ) from exc
    if response.status_code in (200, 201):
        data = response.json()
        return data if isinstance(data, dict) else {}
    detail = " ".join(response.text.split())[:300]
    if response.status_code in (401, 403):
        raise InvalidInput(
            f"{what} refused the token ({response.status_code}: {detail}); check {token_name}"
        )
    if response.status_code < 500:
        raise InvalidInput(
            f"{what} did not open the pull request ({response.status_code}: {detail}); "
            "check the branch, the target and the repository"
        )
    raise InfrastructureError(f"{what} failed ({response.status_code}: {detail}); retry later")
