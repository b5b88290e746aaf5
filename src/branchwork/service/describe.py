"""A proposal's description and its commit messages, written from the session's history.

With a model configured (the session's, the project's or `BRANCHWORK_MODEL`), the model writes
the description from a summary of the history and the diff; otherwise (or when the model
fails) the description is that summary itself, deterministic: the same history gives the same
text. The squash (or merge) commit message is the proposal's title and description, with the
approvers and the session as trailers: what the change is, not a list of checkpoint commits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from branchwork.agent.calls import usage_of
from branchwork.domain.errors import Cancelled, ProviderError
from branchwork.domain.events import AgentMessage, ModelCall, Note, UserMessage
from branchwork.domain.messages import ModelRequest, UserTurn
from branchwork.domain.models import Session
from branchwork.domain.proposals import Proposal, one_line, without_controls
from branchwork.gitops import merges
from branchwork.providers import complete, resolve_model
from branchwork.providers.prices import load_prices
from branchwork.service.scope import SessionScope
from branchwork.service.state import session_state

MOST_PROMPTS = 10
DIFF_FOR_MODEL = 12_000  # characters of the diff a describing model sees
DESCRIPTION_TOKENS = 700
SYSTEM = "You write the description of a pull request for the people who will review it."
PROMPT = (
    "Write the description of a pull request for the work below: a first paragraph saying what "
    "changes and why, then the notable changes as a short list, then how it was checked. Plain "
    "Markdown, no title, at most 200 words; state only what the history and the diff show."
)


@dataclass(frozen=True)
class HistorySummary:
    prompts: list[str]
    last_answer: str
    files: list[tuple[str, int, int]]
    turns: int
    commands: int
    failed_commands: int
    checkpoints: int


def summarize(scope: SessionScope, base: str, head: str) -> HistorySummary:
    """What the session's history says about the change from `base` to `head`."""
    prompts: list[str] = []
    last_answer = ""
    kinds = ["user_message", "agent_message"]
    for event in scope.services.store.iter_events(scope.session.id, kinds=kinds):
        payload = event.payload
        if isinstance(payload, UserMessage):
            first = _first_line(payload.text)
            if first and first not in prompts:
                prompts.append(first)
        elif isinstance(payload, AgentMessage) and payload.text.strip():
            last_answer = payload.text.strip()
    state = session_state(scope.services.store, scope.session.id)
    return HistorySummary(
        prompts=prompts,
        last_answer=last_answer,
        files=merges.numstat(Path(scope.project.path), base, head),
        turns=state.turns,
        commands=state.commands,
        failed_commands=state.failed_commands,
        checkpoints=len(state.checkpoints),
    )


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0].strip()[:200] if lines else ""


def summary_text(summary: HistorySummary, session: Session) -> str:
    """The deterministic description."""
    added = sum(a for _, a, _ in summary.files)
    deleted = sum(d for _, _, d in summary.files)
    failed = f", {summary.failed_commands} failed" if summary.failed_commands else ""
    parts = [
        f"Session {session.short_id} ({session.branch}): {len(summary.files)} file(s) "
        f"changed (+{added} -{deleted}) over "
        f"{summary.turns} agent turn(s), {summary.commands} command(s){failed} and "
        f"{summary.checkpoints} checkpoint(s)."
    ]
    if summary.prompts:
        shown = summary.prompts[:MOST_PROMPTS]
        more = len(summary.prompts) - len(shown)
        asked = [f"- {p}" for p in shown] + ([f"- … and {more} more"] if more > 0 else [])
        parts.append("What was asked:\n" + "\n".join(asked))
    if summary.files:
        parts.append(
            "Files changed:\n" + "\n".join(f"- {p} (+{a} -{d})" for p, a, d in summary.files)
        )
    if summary.last_answer:
        quoted = "\n".join(f"> {line}" for line in summary.last_answer.splitlines()[:12])
        parts.append("The agent's last answer:\n" + quoted)
    return "\n\n".join(parts)


def describe(scope: SessionScope, proposal_id: str, base: str, head: str) -> str:
    """The description of a new proposal: the model's when one is configured, else (or when
    it fails) the summary of the history. The model's call is recorded (`model_call`)."""
    summary = summary_text(summarize(scope, base, head), scope.session)
    spec = scope.session.model or scope.project.config.model or scope.services.settings.model
    if not spec:
        return summary
    try:
        written = _ask_model(scope, spec, proposal_id, summary, base, head)
    except (ProviderError, Cancelled) as exc:
        text = f"the model could not write the description ({exc.message}); the summary is used"
        scope.record(Note(level="warning", text=text))
        return summary
    return written or summary


def _ask_model(
    scope: SessionScope, spec: str, proposal_id: str, summary: str, base: str, head: str
) -> str:
    model = resolve_model(spec)
    diff = merges.diff_text(Path(scope.project.path), base, head)[:DIFF_FOR_MODEL]
    request = ModelRequest(
        system=SYSTEM,
        messages=[UserTurn(text=f"{PROMPT}\n\n{summary}\n\nThe diff:\n```diff\n{diff}\n```")],
        max_tokens=DESCRIPTION_TOKENS,
    )
    started = time.monotonic()
    response = complete(model, request)
    usage = usage_of(request, response)
    prices = load_prices(scope.services.settings.prices_file)
    scope.record(
        ModelCall(
            turn_id=proposal_id,
            model=response.model or model.name,
            purpose="description",
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_tokens=usage.cached_tokens,
            usage_source=usage.source or "estimated",
            latency_ms=int((time.monotonic() - started) * 1000),
            cost_usd=prices.cost(model.name, usage),
        )
    )
    return scope.redactor.redact(response.text.strip())


def commit_message(
    proposal: Proposal, session_id: str, approvers: list[str], *, merge: bool = False
) -> str:
    """The message of the squash (or merge) commit: the title, the description, and trailers
    naming the approvers, the proposal and the session."""
    title = one_line(proposal.title)  # as stored by an older version, it may not be
    subject = f"Merge proposal #{proposal.number}: {title}" if merge else title
    body = without_controls(proposal.description).strip()
    return (
        f"{subject}\n\n"
        + (f"{body}\n\n" if body else "")
        + trailers(proposal, session_id, approvers)
    )


def trailers(proposal: Proposal, session_id: str, approvers: list[str]) -> str:
    """The trailer block of a merged commit: the approvers, the proposal and the session (a
    merge that stopped after moving the target is recognised by it)."""
    lines = [f"Reviewed-by: {one_line(name)}" for name in approvers]
    lines += [f"Branchwork-Proposal: {proposal.id}", f"Branchwork-Session: {session_id}"]
    return "\n".join(lines) + "\n"
