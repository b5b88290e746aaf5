"""Session history: immutable, typed, versioned events.

An `Event` is an envelope (`id`, `session_id`, `seq`, `ts`, `actor`, `schema_version`) around one
payload of the `Payload` union, discriminated by its literal `kind`. The store creates the envelope
when it appends, inside the transaction that assigns the gap-free `seq`; nothing sets an id, a seq
or a timestamp afterwards.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from branchwork.domain.errors import StoreError

# A new version for every change of a payload, a field added with a default included: events of
# the current version are then complete as stored, which `log --json` relies on to stream them.
SCHEMA_VERSION = 3
SCHEMA_VERSIONS: dict[int, str] = {
    1: "initial event set: session lifecycle, messages, tools, files, commands, checkpoints",
    2: "file_written: a large diff is cut to a preview (diff_truncated, diff_bytes, diff_blob); "
    "model_call (tokens, time, cost of each model request), compacted, budget_set; "
    "turn_finished: statuses stuck and budget, cached tokens, cost, duration",
    3: "tasks and trials (trial_started, trial_updated, promoted), forks (forked), checks "
    "(check_run), proposals (proposal_opened, proposal_updated, review, comment, merged, "
    "proposal_closed), the browser terminal (terminal_opened, terminal_closed)",
}

Actor = Literal["user", "agent", "system"]
CommandStatus = Literal["ok", "failed", "timeout", "cancelled", "error"]
TrialStatus = Literal["queued", "running", "done", "failed", "stuck", "promoted", "discarded"]
TurnStatus = Literal[
    "completed", "cancelled", "step_limit", "stuck", "budget", "failed", "interrupted"
]
UsageSource = Literal["reported", "counted", "estimated"]


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    # The fields that hold free text (what people and models wrote, what commands printed):
    # the only ones secret redaction touches. Ids, shas, kinds, paths and numbers never are.
    free_text: ClassVar[tuple[str, ...]] = ()


class SessionCreated(_Payload):
    kind: Literal["session_created"] = "session_created"
    free_text: ClassVar[tuple[str, ...]] = ("title",)
    project_id: str
    title: str
    branch: str
    base_commit: str
    from_ref: str
    worktree: str


class UserMessage(_Payload):
    kind: Literal["user_message"] = "user_message"
    free_text: ClassVar[tuple[str, ...]] = ("text",)
    text: str
    turn_id: str | None = None


class AgentMessage(_Payload):
    kind: Literal["agent_message"] = "agent_message"
    free_text: ClassVar[tuple[str, ...]] = ("text",)
    text: str
    turn_id: str | None = None
    model: str | None = None


class Reasoning(_Payload):
    """The model's reasoning. `provider_details` keeps what a provider needs sent back
    verbatim on resume (such as Anthropic's signed thinking blocks)."""

    kind: Literal["reasoning"] = "reasoning"
    free_text: ClassVar[tuple[str, ...]] = ("text",)
    text: str
    turn_id: str | None = None
    provider_details: dict[str, Any] = Field(default_factory=dict)


class ToolCall(_Payload):
    kind: Literal["tool_call"] = "tool_call"
    free_text: ClassVar[tuple[str, ...]] = ("name", "arguments")
    call_id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    turn_id: str | None = None


class ToolResult(_Payload):
    kind: Literal["tool_result"] = "tool_result"
    free_text: ClassVar[tuple[str, ...]] = ("name", "output")
    call_id: str
    name: str
    output: str
    is_error: bool = False
    turn_id: str | None = None


class FileRead(_Payload):
    kind: Literal["file_read"] = "file_read"
    path: str
    size: int
    start_line: int | None = None
    end_line: int | None = None


class FileWritten(_Payload):
    """`diff` is the whole diff, or its head when `diff_truncated` (then `diff_blob` holds the
    whole redacted diff, unless it was too large to keep)."""

    kind: Literal["file_written"] = "file_written"
    free_text: ClassVar[tuple[str, ...]] = ("diff",)
    path: str
    operation: Literal["write", "edit", "delete"]
    created: bool
    diff: str
    diff_truncated: bool = False
    diff_bytes: int = 0
    diff_blob: str | None = None


class CommandStarted(_Payload):
    kind: Literal["command_started"] = "command_started"
    free_text: ClassVar[tuple[str, ...]] = ("command", "argv")
    command_id: str
    command: str
    argv: list[str] | None = None
    cwd: str
    timeout_s: float = Field(gt=0, allow_inf_nan=False)
    purpose: Literal["user", "agent", "setup", "check"] = "user"
    pid: int | None = Field(default=None, description="The Branchwork process running it.")
    host: str | None = None


class CommandOutput(_Payload):
    kind: Literal["command_output"] = "command_output"
    free_text: ClassVar[tuple[str, ...]] = ("text",)
    command_id: str
    text: str


class CommandFinished(_Payload):
    kind: Literal["command_finished"] = "command_finished"
    free_text: ClassVar[tuple[str, ...]] = ("output_head", "output_tail")
    command_id: str
    status: CommandStatus
    exit_code: int | None
    duration_ms: int
    output_bytes: int
    output_head: str
    output_tail: str
    truncated: bool
    output_blob: str | None = None


class Checkpoint(_Payload):
    kind: Literal["checkpoint"] = "checkpoint"
    free_text: ClassVar[tuple[str, ...]] = ("message",)
    commit: str
    parent: str
    message: str
    files: list[str] = Field(default_factory=list)
    automatic: bool = False


class Reverted(_Payload):
    kind: Literal["reverted"] = "reverted"
    to_checkpoint: str
    commit: str
    files: list[str] = Field(default_factory=list)


class Archived(_Payload):
    kind: Literal["archived"] = "archived"
    head: str
    worktree: str


class Restored(_Payload):
    kind: Literal["restored"] = "restored"
    head: str
    worktree: str


class Interrupted(_Payload):
    kind: Literal["interrupted"] = "interrupted"
    free_text: ClassVar[tuple[str, ...]] = ("reason",)
    reason: str
    turn_id: str | None = None
    call_id: str | None = None


class TurnStarted(_Payload):
    kind: Literal["turn_started"] = "turn_started"
    turn_id: str
    model: str
    mode: str


class TurnFinished(_Payload):
    """How a turn ended, with its sums: tokens and cost of its model calls, its wall time."""

    kind: Literal["turn_finished"] = "turn_finished"
    free_text: ClassVar[tuple[str, ...]] = ("detail",)
    turn_id: str
    status: TurnStatus
    steps: int
    input_tokens: int = 0
    output_tokens: int = 0
    detail: str = ""
    cached_tokens: int = 0
    cost_usd: float | None = None
    duration_ms: int = 0


class ModelCall(_Payload):
    """One request to a model: its tokens (as the provider reported them, counted with the
    model's tokenizer, or estimated), its latency and time to first token, its cost when the
    model's prices are known. `purpose`: a step of the turn, the closing summary, a
    compaction, or a proposal's description (then `turn_id` is the proposal's id)."""

    kind: Literal["model_call"] = "model_call"
    turn_id: str
    model: str
    purpose: Literal["step", "summary", "compaction", "description"] = "step"
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    cached_tokens: int = Field(default=0, ge=0)
    usage_source: UsageSource
    latency_ms: int = Field(ge=0)
    ttft_ms: int | None = None
    cost_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)


class Compacted(_Payload):
    """The conversation up to `through_seq` summarised: the agent's context is rebuilt from this
    summary and what follows it (the log keeps everything)."""

    kind: Literal["compacted"] = "compacted"
    free_text: ClassVar[tuple[str, ...]] = ("summary",)
    summary: str
    through_seq: int = Field(ge=0)
    messages: int = Field(ge=0, description="How many conversation entries it replaces.")
    turn_id: str | None = None
    model: str = ""


class BudgetSet(_Payload):
    """The session's budget from now on; None lifts that limit. Tokens and cost count model
    calls, seconds the wall time of turns, all since the session began."""

    kind: Literal["budget_set"] = "budget_set"
    tokens: int | None = Field(default=None, gt=0)
    cost_usd: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    seconds: float | None = Field(default=None, gt=0, allow_inf_nan=False)


class ApprovalRequested(_Payload):
    kind: Literal["approval_requested"] = "approval_requested"
    free_text: ClassVar[tuple[str, ...]] = ("summary", "detail")
    request_id: str
    action: Literal["write_file", "edit_file", "run_command"]
    summary: str
    detail: str
    turn_id: str | None = None
    call_id: str | None = None


class ApprovalDecided(_Payload):
    kind: Literal["approval_decided"] = "approval_decided"
    free_text: ClassVar[tuple[str, ...]] = ("reason",)
    request_id: str
    approved: bool
    reason: str = ""


class TodoUpdated(_Payload):
    kind: Literal["todo_updated"] = "todo_updated"
    free_text: ClassVar[tuple[str, ...]] = ("text",)
    item_id: str
    text: str
    done: bool


class ContextRef(_Payload):
    kind: Literal["context_ref"] = "context_ref"
    free_text: ClassVar[tuple[str, ...]] = ("query",)
    query: str
    lookup: Literal["search", "definition", "references", "document"]
    results: list[dict[str, Any]] = Field(default_factory=list)


class Note(_Payload):
    """A free-form system note (setup skipped, copy failed, worktree evicted …)."""

    kind: Literal["note"] = "note"
    free_text: ClassVar[tuple[str, ...]] = ("text",)
    text: str
    level: Literal["info", "warning", "error"] = "info"


class TrialStarted(_Payload):
    """This session is trial `trial_number` of task `task_number`: its objective, and the model
    and prompt variant it was given."""

    kind: Literal["trial_started"] = "trial_started"
    free_text: ClassVar[tuple[str, ...]] = ("objective", "prompt_variant")
    task_id: str
    task_number: int = Field(ge=1)
    trial_id: str
    trial_number: int = Field(ge=1)
    objective: str
    model: str | None = None
    prompt_variant: str | None = None


class TrialUpdated(_Payload):
    """The trial's status changed (queued, running, done, failed, stuck, discarded …)."""

    kind: Literal["trial_updated"] = "trial_updated"
    free_text: ClassVar[tuple[str, ...]] = ("detail",)
    trial_id: str
    status: TrialStatus
    detail: str = ""


class Promoted(_Payload):
    """This session's trial was chosen as the task's result; the others were discarded."""

    kind: Literal["promoted"] = "promoted"
    trial_id: str
    task_id: str
    head: str
    discarded: list[str] = Field(default_factory=list, description="Trial ids discarded.")


class Forked(_Payload):
    """This session began as a fork of `parent_id` at its event `parent_seq` and commit `commit`:
    its conversation up to there is the parent's (linked, not copied)."""

    kind: Literal["forked"] = "forked"
    parent_id: str
    parent_seq: int = Field(ge=0)
    commit: str


class CheckRun(_Payload):
    """A check command run on `head`: for a comparison of trials, a proposal, or a merge result
    (then `proposal_id` says which). Its full output is in `output_blob`."""

    kind: Literal["check_run"] = "check_run"
    free_text: ClassVar[tuple[str, ...]] = ("check", "output_tail")
    check: str
    head: str
    purpose: Literal["compare", "proposal", "merge"] = "compare"
    passed: bool
    exit_code: int | None
    duration_ms: int = Field(ge=0)
    output_tail: str = ""
    output_blob: str | None = None
    command_id: str | None = None
    proposal_id: str | None = None


class ProposalOpened(_Payload):
    """A proposal to merge the session's branch into `target`, with the description written
    from the session's history."""

    kind: Literal["proposal_opened"] = "proposal_opened"
    free_text: ClassVar[tuple[str, ...]] = ("title", "description")
    proposal_id: str
    number: int = Field(ge=1)
    title: str
    target: str
    base_commit: str
    head: str
    description: str = ""


class ProposalUpdated(_Payload):
    """The proposal now points at a newer head; `stale_approvals` approvals no longer count."""

    kind: Literal["proposal_updated"] = "proposal_updated"
    proposal_id: str
    head: str
    stale_approvals: int = Field(default=0, ge=0)
    conflicts: list[str] = Field(default_factory=list)


class Review(_Payload):
    kind: Literal["review"] = "review"
    free_text: ClassVar[tuple[str, ...]] = ("message",)
    proposal_id: str
    reviewer: str
    verdict: Literal["approved", "changes_requested", "commented"]
    head: str
    message: str = ""


class Comment(_Payload):
    """A review comment on a line of `path` as of revision `head`."""

    kind: Literal["comment"] = "comment"
    free_text: ClassVar[tuple[str, ...]] = ("text",)
    proposal_id: str
    comment_id: str
    reviewer: str
    path: str
    line: int = Field(ge=1)
    head: str
    text: str


class Merged(_Payload):
    kind: Literal["merged"] = "merged"
    proposal_id: str
    strategy: Literal["merge", "squash", "rebase"]
    target: str
    commit: str
    branch_deleted: bool = False


class ProposalClosed(_Payload):
    kind: Literal["proposal_closed"] = "proposal_closed"
    free_text: ClassVar[tuple[str, ...]] = ("reason",)
    proposal_id: str
    reason: str = ""


class TerminalOpened(_Payload):
    """A person opened a terminal in the session's sandbox (the browser's)."""

    kind: Literal["terminal_opened"] = "terminal_opened"
    terminal_id: str
    user: str
    shell: str


class TerminalClosed(_Payload):
    """The terminal's transcript: its tail here, the whole of it in `transcript_blob`."""

    kind: Literal["terminal_closed"] = "terminal_closed"
    free_text: ClassVar[tuple[str, ...]] = ("transcript_tail",)
    terminal_id: str
    transcript_tail: str
    transcript_bytes: int = Field(ge=0)
    transcript_blob: str | None = None
    exit_code: int | None = None


Payload = Annotated[
    SessionCreated
    | UserMessage
    | AgentMessage
    | Reasoning
    | ToolCall
    | ToolResult
    | FileRead
    | FileWritten
    | CommandStarted
    | CommandOutput
    | CommandFinished
    | Checkpoint
    | Reverted
    | Archived
    | Restored
    | Interrupted
    | TurnStarted
    | TurnFinished
    | ModelCall
    | Compacted
    | BudgetSet
    | ApprovalRequested
    | ApprovalDecided
    | TodoUpdated
    | ContextRef
    | Note
    | TrialStarted
    | TrialUpdated
    | Promoted
    | Forked
    | CheckRun
    | ProposalOpened
    | ProposalUpdated
    | Review
    | Comment
    | Merged
    | ProposalClosed
    | TerminalOpened
    | TerminalClosed,
    Field(discriminator="kind"),
]

EVENT_KINDS: tuple[str, ...] = tuple(
    m.model_fields["kind"].default
    for m in _Payload.__subclasses__()  # every payload class above
)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """One immutable record of a session's history."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    id: str
    session_id: str
    seq: int = Field(ge=1)
    ts: datetime
    actor: Actor
    schema_version: int = SCHEMA_VERSION
    payload: Payload

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value not in SCHEMA_VERSIONS:
            raise ValueError(
                f"unknown event schema version {value}; upgrade Branchwork to read this history"
            )
        return value

    @field_validator("ts")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @property
    def kind(self) -> str:
        return self.payload.kind

    def to_json_dict(self) -> dict[str, Any]:
        """The flat JSON shape used by `--json`, the API and golden logs."""
        data = self.model_dump(mode="json")
        data["kind"] = self.kind
        return data


@cache
def _payload_adapter() -> TypeAdapter[Payload]:
    return TypeAdapter(Payload)


@cache
def _event_adapter() -> TypeAdapter[Event]:
    return TypeAdapter(Event)


@cache
def _events_adapter() -> TypeAdapter[list[Event]]:
    return TypeAdapter(list[Event])


def make_events(fields: list[dict[str, Any]]) -> list[Event]:
    """Events from their fields, validated as one list: half the cost of one call each."""
    return _events_adapter().validate_python(fields)


def parse_payload(data: dict[str, Any]) -> Payload:
    return _payload_adapter().validate_python(data)


def parse_event(data: dict[str, Any]) -> Event:
    """Load an event from its JSON shape; fails fast on an unknown kind or schema version."""
    body = {k: v for k, v in data.items() if k != "kind"}
    try:
        return _event_adapter().validate_python(body)
    except ValueError as exc:
        raise StoreError(f"unreadable event {data.get('id', '?')}: {exc}") from exc
