"""Bodies of the task, trial and comparison routes (what /docs shows).

The answers are the CLI's `--json` shapes: the domain object's own fields at the top, and what
the use case adds next to them (a task's `status`, a trial's `spent` …), so that a script can
move between `branchwork … --json` and the API without translating.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

import branchwork as bw

Priority = Literal["low", "normal", "high", "urgent"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskIn(_In):
    title: str = Field(min_length=1, max_length=500)
    description: str = Field(default="", max_length=100_000)
    check: str | None = Field(
        default=None, max_length=20_000, description="A shell line that passes when it is done."
    )
    labels: list[str] = Field(default_factory=list, max_length=50)
    priority: Priority = "normal"


class TaskEditIn(_In):
    """What to change (what is left out stays; `check: ""` removes the check)."""

    title: str | None = Field(default=None, min_length=1, max_length=500)
    description: str | None = Field(default=None, max_length=100_000)
    check: str | None = Field(default=None, max_length=20_000)
    labels: list[str] | None = Field(default=None, max_length=50)
    priority: Priority | None = None
    closed: bool | None = Field(default=None, description="Close (true) or reopen (false).")


class CommentIn(_In):
    text: str = Field(min_length=1, max_length=20_000)


class TrialsIn(_In):
    """How many attempts, and with which models and prompt variants: one for all, or one per
    trial (then `n` may be left out)."""

    n: int | None = Field(default=None, ge=1, le=20)
    models: list[str] = Field(default_factory=list, max_length=20)
    prompt_variants: list[str] = Field(default_factory=list, max_length=20)


class ForkIn(_In):
    at: str | None = Field(
        default=None, max_length=100, description="A checkpoint (sha prefix, -N, base) or a seq."
    )
    title: str | None = Field(default=None, max_length=500)
    as_trial: bool = Field(default=False, description="A new trial of the parent's task.")


class SuggestIn(_In):
    model: str | None = Field(
        default=None, max_length=300, description="Also ask this model (provider:name)."
    )


class SuggestionsOut(BaseModel):
    suggestions: list[bw.Suggestion]
    notes: list[str]


class AcceptedOut(BaseModel):
    task: bw.Task
    trial: bw.Trial


class TaskOut(bw.Task):
    status: bw.TaskStatus
    trials: int = Field(default=0, description="How many trials it has.")


class SpentOut(BaseModel):
    """`Spent` with its `tokens` (input + output) written out."""

    input_tokens: int
    output_tokens: int
    cached_tokens: int
    estimated: bool = Field(description="Some tokens were estimated.")
    cost_usd: float
    priced: bool = Field(description="Every call had a known price.")
    model_calls: int
    model_ms: int
    turn_ms: int
    tokens: int


class TrialOut(bw.Trial):
    session_short_id: str = ""
    branch: str = ""
    turns: int | None = None
    spent: SpentOut | None = None


class TaskDetailsOut(bw.Task):
    status: bw.TaskStatus
    trials: list[TrialOut]
    comments: list[bw.TaskComment]
    total: SpentOut


class ProgressOut(bw.Trial):
    steps: int
    tokens: int
    cost_usd: float
    elapsed_s: float
    last_action: str


class ComparedOut(bw.Trial):
    """One trial as the comparison shows it: its diffstat, its check, what it spent, its
    approach (built from its history)."""

    session_short_id: str
    branch: str
    head: str
    files: list[bw.FileChange]
    added: int
    removed: int
    check: bw.CheckResult | None
    check_note: str
    turns: int
    spent: SpentOut
    approach: str


class ComparisonOut(BaseModel):
    task: bw.Task
    trials: list[ComparedOut]


class TrialsDiffOut(BaseModel):
    one: int
    other: int
    diff: str


class PromotionOut(BaseModel):
    task: bw.Task
    promoted: bw.Trial
    discarded: list[bw.Trial]
    head: str
    proposal: bw.Proposal | None
    proposal_error: str


def spent_out(spent: bw.Spent) -> SpentOut:
    return SpentOut(**spent.model_dump(), tokens=spent.tokens)


def task_out(summary: bw.TaskSummary) -> TaskOut:
    return TaskOut(**summary.task.model_dump(), status=summary.status, trials=summary.trials)


def details_out(details: bw.TaskDetails, sessions: dict[str, bw.Session]) -> TaskDetailsOut:
    trials = [
        _trial(f.trial, sessions, turns=f.turns, spent=spent_out(f.spent)) for f in details.trials
    ]
    return TaskDetailsOut(
        **details.task.model_dump(),
        status=details.status,
        trials=trials,
        comments=details.comments,
        total=spent_out(details.total),
    )


def _trial(
    trial: bw.Trial, sessions: dict[str, bw.Session], *, turns: int, spent: SpentOut
) -> TrialOut:
    session = sessions.get(trial.session_id)
    return TrialOut(
        **trial.model_dump(),
        session_short_id=session.short_id if session else "",
        branch=session.branch if session else "",
        turns=turns,
        spent=spent,
    )


def progress_out(progress: bw.TrialProgress) -> ProgressOut:
    return ProgressOut(
        **progress.trial.model_dump(),
        steps=progress.steps,
        tokens=progress.tokens,
        cost_usd=progress.cost_usd,
        elapsed_s=progress.elapsed_s,
        last_action=progress.last_action,
    )


def comparison_out(comparison: bw.Comparison) -> ComparisonOut:
    return ComparisonOut(task=comparison.task, trials=[_compared(c) for c in comparison.trials])


def _compared(c: bw.TrialComparison) -> ComparedOut:
    return ComparedOut(
        **c.trial.model_dump(),
        session_short_id=c.session.short_id,
        branch=c.session.branch,
        head=c.head,
        files=c.files,
        added=c.added,
        removed=c.removed,
        check=c.check,
        check_note=c.check_note,
        turns=c.turns,
        spent=spent_out(c.spent),
        approach=c.approach,
    )


def promotion_out(done: bw.Promotion) -> PromotionOut:
    return PromotionOut(
        task=done.task,
        promoted=done.promoted,
        discarded=done.discarded,
        head=done.head,
        proposal=done.proposal,
        proposal_error=done.proposal_error,
    )
