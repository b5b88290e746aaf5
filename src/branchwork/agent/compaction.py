"""Compaction: when a session's conversation no longer fits the model's window, the older
exchanges are summarised by the model into a `compacted` event (what was done, decisions, files
touched, open items). The agent's context is then rebuilt from the newest compaction onwards
(`rebuild`); the log keeps everything, and a resumed session starts from the summary too.
"""

from __future__ import annotations

import threading

from branchwork.agent.approvals import NON_INTERACTIVE_REFUSAL
from branchwork.agent.calls import model_call_event, stream, usage_of
from branchwork.agent.context import Conversation, Entry, history_since, summary_turn
from branchwork.agent.ports import SessionPort
from branchwork.agent.turn import TurnHooks, TurnRun, TurnSettings
from branchwork.domain.errors import Cancelled, ProviderError
from branchwork.domain.events import Actor, Compacted, Payload
from branchwork.domain.messages import Message, ModelRequest, UserTurn
from branchwork.providers.base import Model

KEEP_EXCHANGES = 2  # the newest user exchanges are kept whole
SYSTEM = "You summarise a coding session so that it can go on from your summary alone."
PROMPT = (
    "Summarise the conversation above for yourself, to continue the work from it: what the "
    "user asked, what was done and found, the decisions taken, the files created or changed, "
    "and what is still open. Be specific (names, paths, commands) and brief. Do not call tools."
)


def needs_compaction(run: TurnRun) -> bool:
    window = run.settings.context_tokens - run.settings.context_tokens // 4
    return run.conversation.total > run.settings.compact_at * window


def compact(run: TurnRun, history: list[Entry]) -> bool:
    """Summarise `history` (the conversation before the turn's message) but its newest
    exchanges; True when a compaction was recorded and `run.conversation` rebuilt from it."""
    window = run.settings.context_tokens - run.settings.context_tokens // 4
    cut = _cut(history, window // 2)
    if cut <= 0:
        return False
    older: list[Message] = [message for _, message in history[:cut]]
    request = ModelRequest(
        system=SYSTEM,
        messages=[*Conversation(older).fitted(window), UserTurn(text=PROMPT)],
        max_tokens=run.settings.max_output_tokens,
    )
    try:
        timed = stream(run, request, live=False)
    except (ProviderError, Cancelled):
        return False  # the turn goes on with the conversation cut to the window instead
    summary = timed.response.text.strip()
    if not summary:
        return False
    compacted = Compacted(
        summary=summary,
        through_seq=history[cut][0] - 1,
        messages=cut,
        turn_id=run.turn_id,
        model=run.model.name,
    )
    call = model_call_event(run, timed, usage_of(request, timed.response), "compaction")
    items: list[tuple[Payload, Actor]] = [(compacted, "agent"), (call, "system")]
    run.port.record_many(items)
    kept = [message for _, message in history[cut:]]
    run.conversation = Conversation([summary_turn(summary), *kept, UserTurn(text=run.message)])
    return True


def _cut(history: list[Entry], room: int) -> int:
    """The index of the first entry kept whole: the start of the newest user exchanges, at
    most `KEEP_EXCHANGES` of them and as many as fit in `room` tokens, at least the newest one
    (0: nothing older to summarise)."""
    starts = [i for i, (_, message) in enumerate(history) if isinstance(message, UserTurn)]
    if len(starts) < 2:
        return 0
    cut = starts[-1]
    for start in reversed(starts[-KEEP_EXCHANGES:-1]):
        kept = Conversation([message for _, message in history[start:]])
        if kept.total > room:
            break
        cut = start
    if cut > 0 and history[cut - 1][0] == history[cut][0]:
        # Entries of one seq (a fork's inherited conversation) are kept or summarised whole:
        # all of them are, when an exchange of the session's own follows.
        block = history[cut][0]
        cut = next((i for i in starts if i > cut and history[i][0] != block), 0)
    return cut


def compact_now(port: SessionPort, model: Model, settings: TurnSettings) -> Compacted | None:
    """Compact the session's conversation now (`/compact`), outside a turn: everything but the
    newest exchanges is summarised; None when there is too little to summarise."""
    run = TurnRun(port, model, settings, NON_INTERACTIVE_REFUSAL, TurnHooks(), threading.Event())
    state = port.state()
    history = history_since(port, state.compacted_through)
    if not compact(run, history):
        return None
    found = port.recent_events(["compacted"], 1)
    payload = found[0].payload if found else None
    return payload if isinstance(payload, Compacted) else None
