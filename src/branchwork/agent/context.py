"""The model's context: a system prompt about the project, and the conversation rebuilt from
the event log, with old tool outputs elided to fit a token budget (the log keeps them whole)."""

from __future__ import annotations

from collections.abc import Iterable

from branchwork.agent.ports import ProjectBrief
from branchwork.domain.events import (
    AgentMessage,
    Event,
    Reasoning,
    ToolCall,
    ToolResult,
    UserMessage,
)
from branchwork.domain.messages import (
    AssistantTurn,
    Message,
    ToolCallPart,
    ToolResultTurn,
    UserTurn,
)

CHARS_PER_TOKEN = 4
KEEP_RECENT_RESULTS = 4
ELIDED_RESULT_CHARS = 400

SYSTEM_TEMPLATE = """You are a coding agent working in a git worktree of the project {name}.
Use the tools to inspect and change files and to run commands; paths are relative to the
project root. Make small, correct changes, check them (run the tests when there are some),
keep a todo list for multi-step work, and call `finish` with a short summary when done."""


def estimate_tokens(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN + 1


def system_prompt(brief: ProjectBrief, *, budget_tokens: int) -> str:
    """The instructions, then as much project context as fits the budget."""
    parts = [SYSTEM_TEMPLATE.format(name=brief.name)]
    sections = [
        ("Context documents", "\n".join(f"- {d}" for d in brief.documents)),
        ("Repository map", brief.repo_map),
        ("README (excerpt)", brief.readme_excerpt),
        ("Files", brief.file_tree),
    ]
    used = estimate_tokens(parts[0])
    for title, body in sections:
        if not body.strip():
            continue
        section = f"\n\n## {title}\n{body.strip()}"
        cost = estimate_tokens(section)
        if used + cost > budget_tokens:
            section = section[: max(0, (budget_tokens - used) * CHARS_PER_TOKEN)]
            cost = estimate_tokens(section)
        if section:
            parts.append(section)
            used += cost
    return "".join(parts)


def conversation(events: Iterable[Event]) -> list[Message]:
    """User messages, the assistant's answers and tool calls, and tool results, in order."""
    messages: list[Message] = []
    pending: AssistantTurn | None = None
    for event in events:
        p = event.payload
        if isinstance(p, Reasoning | AgentMessage | ToolCall):
            pending = _extend(pending or AssistantTurn(), p)
            continue
        if isinstance(p, UserMessage | ToolResult) and pending is not None:
            messages.append(pending)
            pending = None
        if isinstance(p, UserMessage):
            messages.append(UserTurn(text=p.text))
        elif isinstance(p, ToolResult):
            messages.append(
                ToolResultTurn(
                    call_id=p.call_id, name=p.name, content=p.output, is_error=p.is_error
                )
            )
    if pending is not None:
        messages.append(pending)
    return messages


def _extend(turn: AssistantTurn, p: Reasoning | AgentMessage | ToolCall) -> AssistantTurn:
    if isinstance(p, Reasoning):
        details = {**turn.provider_details, **p.provider_details}
        return turn.model_copy(
            update={"reasoning": turn.reasoning + p.text, "provider_details": details}
        )
    if isinstance(p, AgentMessage):
        return turn.model_copy(update={"text": turn.text + p.text})
    call = ToolCallPart(call_id=p.call_id, name=p.name, arguments=p.arguments)
    return turn.model_copy(update={"tool_calls": [*turn.tool_calls, call]})


def fit_budget(messages: list[Message], budget_tokens: int) -> list[Message]:
    """Elide the outputs of old tool results (head/tail plus a note) until the conversation
    fits; the newest results stay whole. If it still does not fit, drop the oldest exchanges."""
    total = sum(_cost(m) for m in messages)
    if total <= budget_tokens:
        return messages
    fitted = list(messages)
    result_positions = [i for i, m in enumerate(fitted) if isinstance(m, ToolResultTurn)]
    for index in result_positions[:-KEEP_RECENT_RESULTS] or result_positions[:-1]:
        if total <= budget_tokens:
            break
        old = fitted[index]
        assert isinstance(old, ToolResultTurn)
        short = old.model_copy(update={"content": _elide(old.content)})
        total -= _cost(old) - _cost(short)
        fitted[index] = short
    return _drop_oldest(fitted, total, budget_tokens)


def _elide(content: str) -> str:
    if len(content) <= ELIDED_RESULT_CHARS:
        return content
    half = ELIDED_RESULT_CHARS // 2
    return (
        f"{content[:half]}\n[... output elided to save context; {len(content)} characters in "
        f"all, kept in the session log ...]\n{content[-half:]}"
    )


def _drop_oldest(messages: list[Message], total: int, budget_tokens: int) -> list[Message]:
    """Drop whole exchanges from the start (never splitting a call from its result)."""
    start = 0
    while total > budget_tokens and start < len(messages) - 1:
        total -= _cost(messages[start])
        start += 1
        while start < len(messages) and isinstance(messages[start], ToolResultTurn):
            total -= _cost(messages[start])
            start += 1
    kept = messages[start:]
    return kept if kept else messages[-1:]


def _cost(message: Message) -> int:
    if isinstance(message, UserTurn):
        return estimate_tokens(message.text)
    if isinstance(message, ToolResultTurn):
        return estimate_tokens(message.content) + 4
    calls = sum(estimate_tokens(str(c.arguments)) + 4 for c in message.tool_calls)
    return estimate_tokens(message.text) + estimate_tokens(message.reasoning) + calls
