"""The model's context: a system prompt about the project, and the conversation rebuilt from
the event log, with old tool outputs elided to fit a token budget (the log keeps them whole)."""

from __future__ import annotations

from collections.abc import Iterable

from branchwork.agent.ports import ProjectBrief, SessionPort
from branchwork.domain.events import (
    AgentMessage,
    Compacted,
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
# What a conversation is rebuilt from: at most the newest CONTEXT_EVENTS of these kinds (the
# model's window holds far less; older exchanges would be cut by `Conversation.fitted` anyway).
CONVERSATION_KINDS = ("user_message", "agent_message", "reasoning", "tool_call", "tool_result")
CONTEXT_EVENTS = 2000
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


Entry = tuple[int, Message]  # a message of the conversation and the seq where it begins


def conversation(events: Iterable[Event]) -> list[Message]:
    """User messages, the assistant's answers and tool calls, and tool results, in order,
    starting at the first user message (a tail of a long log may begin mid-exchange)."""
    return [message for _, message in conversation_entries(events)]


def conversation_entries(events: Iterable[Event]) -> list[Entry]:
    """`conversation`, each message with the seq of the event it begins at."""
    entries: list[Entry] = []
    pending: tuple[int, AssistantTurn] | None = None
    started = False
    for event in events:
        p = event.payload
        if isinstance(p, Compacted):  # a forked parent's compaction, read with its tail
            entries.append((event.seq, summary_turn(p.summary)))
            started = True
            continue
        started = started or isinstance(p, UserMessage)
        if not started:
            continue
        if isinstance(p, Reasoning | AgentMessage | ToolCall):
            seq, turn = pending or (event.seq, AssistantTurn())
            pending = (seq, _extend(turn, p))
            continue
        if isinstance(p, UserMessage | ToolResult) and pending is not None:
            entries.append(pending)
            pending = None
        if isinstance(p, UserMessage):
            entries.append((event.seq, UserTurn(text=p.text)))
        elif isinstance(p, ToolResult):
            result = ToolResultTurn(
                call_id=p.call_id, name=p.name, content=p.output, is_error=p.is_error
            )
            entries.append((event.seq, result))
    if pending is not None:
        entries.append(pending)
    return entries


SUMMARY_HEADER = "[A summary of the earlier part of this session, which was compacted]"


def summary_turn(summary: str) -> UserTurn:
    """How a compaction's summary opens the conversation rebuilt after it."""
    return UserTurn(text=f"{SUMMARY_HEADER}\n{summary}")


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


class Conversation:
    """The messages of a turn with their estimated token costs, kept fitted to a budget.

    Elision is applied in place and is permanent for the turn (an old tool result, once
    shortened, stays short), so each step only pays for what is new. A compaction's summary at
    the start is pinned: it is never left out.
    """

    def __init__(self, messages: list[Message]) -> None:
        self.messages: list[Message] = []
        self._costs: list[int] = []
        self._total = 0
        self._elided_up_to = 0
        for message in messages:
            self.append(message)
        first = self.messages[0] if self.messages else None
        self._pinned = int(isinstance(first, UserTurn) and first.text.startswith(SUMMARY_HEADER))

    @property
    def total(self) -> int:
        """The estimated tokens of the whole conversation, as it stands."""
        return self._total

    def append(self, message: Message) -> None:
        cost = message_tokens(message)
        self.messages.append(message)
        self._costs.append(cost)
        self._total += cost

    def fitted(self, budget_tokens: int) -> list[Message]:
        """Elide old tool outputs (head/tail plus a note; the newest results stay whole) until
        the conversation fits; if it still does not, leave out the oldest exchanges."""
        if self._total > budget_tokens:
            self._elide_old_results(budget_tokens)
        if self._total <= budget_tokens:
            return list(self.messages)
        pinned = self.messages[: self._pinned]
        return pinned + self.messages[self._first_kept(budget_tokens) :]

    def _elide_old_results(self, budget_tokens: int) -> None:
        results = [i for i, m in enumerate(self.messages) if isinstance(m, ToolResultTurn)]
        for index in results[:-KEEP_RECENT_RESULTS] or results[:-1]:
            if self._total <= budget_tokens:
                return
            if index < self._elided_up_to:
                continue
            old = self.messages[index]
            assert isinstance(old, ToolResultTurn)
            self._elided_up_to = index + 1
            if len(old.content) > ELIDED_RESULT_CHARS:
                self._replace(index, old.model_copy(update={"content": _elide(old.content)}))

    def _replace(self, index: int, message: Message) -> None:
        cost = message_tokens(message)
        self._total += cost - self._costs[index]
        self._costs[index] = cost
        self.messages[index] = message

    def _first_kept(self, budget_tokens: int) -> int:
        """The first message to send after the pinned ones: at a user message, never between a
        call and its result."""
        total, start = self._total, self._pinned
        last = len(self.messages) - 1
        while start < last and (
            total > budget_tokens or not _starts_exchange(self.messages[start])
        ):
            total -= self._costs[start]
            start += 1
        return start


def _starts_exchange(message: Message) -> bool:
    return isinstance(message, UserTurn)


def fit_budget(messages: list[Message], budget_tokens: int) -> list[Message]:
    """`messages` fitted to `budget_tokens` (see `Conversation.fitted`)."""
    return Conversation(messages).fitted(budget_tokens)


def _elide(content: str) -> str:
    if len(content) <= ELIDED_RESULT_CHARS:
        return content
    half = ELIDED_RESULT_CHARS // 2
    return (
        f"{content[:half]}\n[... output elided to save context; {len(content)} characters in "
        f"all, kept in the session log ...]\n{content[-half:]}"
    )


def message_tokens(message: Message) -> int:
    """A message's estimated tokens (its texts, arguments and outputs; no wire overhead)."""
    if isinstance(message, UserTurn):
        return estimate_tokens(message.text)
    if isinstance(message, ToolResultTurn):
        return estimate_tokens(message.content) + 4
    calls = sum(estimate_tokens(str(c.arguments)) + 4 for c in message.tool_calls)
    return estimate_tokens(message.text) + estimate_tokens(message.reasoning) + calls


def history_since(port: SessionPort, after_seq: int) -> list[Entry]:
    """The conversation since the newest compaction (at most the newest events that fit)."""
    events = port.recent_events(CONVERSATION_KINDS, CONTEXT_EVENTS)
    return conversation_entries(e for e in events if e.seq > after_seq)


def compaction_opening(port: SessionPort, compacted_through: int) -> list[Message]:
    """The newest compaction's summary, which the rebuilt conversation starts from."""
    if not compacted_through:
        return []
    found = port.recent_events(["compacted"], 1)
    summary = found[0].payload if found else None
    return [summary_turn(summary.summary)] if isinstance(summary, Compacted) else []
