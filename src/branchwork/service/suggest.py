"""Suggested tasks, each with its evidence: TODO/FIXME comments on main, check commands that
fail on main, and (with a model) what the model proposes from the repository map.

The last suggestions of a project are kept (in the store's state) so that `suggest accept N`
refers to what the person saw; accepting one creates its task and its first trial's session.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from branchwork import gitops
from branchwork.domain.errors import NotFound, ProviderError
from branchwork.domain.messages import ModelRequest, UserTurn
from branchwork.domain.models import Project
from branchwork.domain.tasks import Task, Trial
from branchwork.providers import complete, resolve_model
from branchwork.service import main_checks, search, tasks, trials
from branchwork.service.base import Services
from branchwork.service.scope import repo_path

STATE_PREFIX = "suggestions:"
MAX_TODOS = 20
MAX_FROM_MODEL = 5
_MARKER = re.compile(r"\b(TODO|FIXME)\b(?:\([^)]*\))?[:\s-]*(.*)")


class Suggestion(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    number: int
    source: Literal["todo", "check", "model"]
    title: str
    description: str = ""
    check: str | None = None
    evidence: str


_LIST = TypeAdapter(list[Suggestion])


@dataclass(frozen=True)
class Suggestions:
    """What `suggest` found, and what it could not look at (`notes`)."""

    suggestions: list[Suggestion]
    notes: list[str]


def suggest(
    services: Services,
    project: Project,
    *,
    checks_to_run: Sequence[str] = (),
    model: str | None = None,
) -> Suggestions:
    """Find suggestions now (and keep them for `accept`). The checks run are those given and
    those of the project's tasks, on main's tip."""
    found = [*_todos(project), *_failing_checks(services, project, checks_to_run)]
    notes = []
    if model is not None:
        try:
            found.extend(_from_model(services, project, model))
        except ProviderError as exc:
            notes.append(f"the model {model} could not suggest tasks: {exc.message}")
    numbered = [s.model_copy(update={"number": i}) for i, s in enumerate(found, start=1)]
    services.store.set_state(STATE_PREFIX + project.id, _LIST.dump_json(numbered).decode())
    return Suggestions(suggestions=numbered, notes=notes)


def last_suggestions(services: Services, project: Project) -> list[Suggestion]:
    raw = services.store.get_state(STATE_PREFIX + project.id)
    return _LIST.validate_json(raw) if raw else []


def accept(services: Services, project: Project, number: int) -> tuple[Task, Trial]:
    """Create suggestion `number`'s task and its first trial (with its session, current)."""
    chosen = next((s for s in last_suggestions(services, project) if s.number == number), None)
    if chosen is None:
        raise NotFound(f"no suggestion {number}; run `suggest` to list them")
    task = tasks.new_task(
        services,
        project,
        chosen.title,
        description=f"{chosen.description}\n\nEvidence: {chosen.evidence}".strip(),
        check=chosen.check,
        labels=["suggested"],
    )
    trial = trials.create_trial(services, task, current=True)
    return task, trial


def _todos(project: Project) -> list[Suggestion]:
    repo = repo_path(project)
    args = ["grep", "-n", "-I", "-z", "-E", r"\b(TODO|FIXME)\b", project.main_branch, "--"]
    hits = list(_grep_hits(gitops.run_git(args, repo, check=False)))
    found = [_todo(path, line, text) for path, line, text in hits[:MAX_TODOS]]
    if len(hits) > MAX_TODOS:
        found.append(
            Suggestion(
                number=0,
                source="todo",
                title=f"{len(hits) - MAX_TODOS} more TODO/FIXME comments",
                description="Review the rest with `git grep -n -E '\\b(TODO|FIXME)\\b'`.",
                evidence=f"{len(hits)} TODO/FIXME comments on {project.main_branch}",
            )
        )
    return found


def _grep_hits(out: str) -> Iterator[tuple[str, str, str]]:
    """(path, line, text) of `git grep -n -z REF` output: `REF:path NUL line NUL text LF`, where
    only the path may hold a line feed (so each text ends at the first one after it)."""
    parts = out.split("\0")
    name = parts[0]
    for i in range(1, len(parts) - 1, 2):
        text, _, following = parts[i + 1].partition("\n")
        yield name.split(":", 1)[-1], parts[i], text.strip()
        name = following


def _todo(path: str, line: str, text: str) -> Suggestion:
    match = _MARKER.search(text)
    what = (match.group(2).strip() if match else "") or text
    return Suggestion(
        number=0,
        source="todo",
        title=f"{what[:70]} ({path})",
        description=f"Resolve the {match.group(1) if match else 'TODO'} comment at {path}:{line}.",
        evidence=f"{path}:{line}: {text[:200]}",
    )


def _failing_checks(services: Services, project: Project, given: Sequence[str]) -> list[Suggestion]:
    known = [t.check_command for t in services.store.tasks.tasks(project.id) if t.check_command]
    commands = list(dict.fromkeys([*given, *known]))
    if not commands:
        return []
    tip = gitops.resolve_commit(repo_path(project), project.main_branch)
    found = []
    for command in commands:
        result = main_checks.run_on_commit(services, project, tip, command)
        if not result.passed:
            tail = result.output_tail.strip().splitlines()[-3:]
            found.append(
                Suggestion(
                    number=0,
                    source="check",
                    title=f"Make `{command}` pass on {project.main_branch}",
                    description=f"`{command}` fails on {project.main_branch} ({tip[:10]}).",
                    check=command,
                    evidence=f"exit {result.exit_code} in {result.duration_ms} ms: "
                    + " / ".join(tail)[-300:],
                )
            )
    return found


_ASK = (
    "Here is a map of a code repository (files and their main symbols). Propose at most {n} "
    "small, concrete tasks that would improve it (missing tests, unclear code, bugs you can "
    "see). Answer with JSON only: a list of objects with keys title, description and "
    "evidence (the file or symbol that shows the need).\n\n{map}"
)


class _Proposed(BaseModel):
    title: str
    description: str = ""
    evidence: str = ""


def _from_model(services: Services, project: Project, spec: str) -> list[Suggestion]:
    tree = search.main_tree(services, project)
    repo_map = services.code_index().repo_map(tree, token_budget=1500)
    prompt = _ASK.format(n=MAX_FROM_MODEL, map=repo_map)
    model = resolve_model(spec)
    reply = complete(model, ModelRequest(messages=[UserTurn(text=prompt)], max_tokens=800))
    return [
        Suggestion(
            number=0,
            source="model",
            title=p.title[:100],
            description=p.description,
            evidence=f"{model.name} on the repository map: {p.evidence or 'no evidence given'}",
        )
        for p in _parse(reply.text)[:MAX_FROM_MODEL]
        if p.title.strip()
    ]


def _parse(text: str) -> list[_Proposed]:
    """The proposals in the model's answer: the first JSON list in it (fenced or among prose);
    items that are not proposals are skipped."""
    decoder = json.JSONDecoder()
    start = text.find("[")
    while start >= 0:
        try:
            items, _ = decoder.raw_decode(text, start)
        except ValueError:
            start = text.find("[", start + 1)
            continue
        if isinstance(items, list):
            return [p for p in (_proposal(i) for i in items) if p is not None]
        start = text.find("[", start + 1)
    return []


def _proposal(item: object) -> _Proposed | None:
    try:
        return _Proposed.model_validate(item)
    except ValidationError:
        return None
