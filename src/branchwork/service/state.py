"""A session's folded state, kept incremental: a snapshot of the fold (a cache in the store,
keyed by the fold's version) plus the events after it. Reopening a session of 100,000 events
folds only what is new since the last snapshot."""

from __future__ import annotations

from branchwork.domain.replay import STATE_VERSION, SessionState, replay
from branchwork.store import Store

SNAPSHOT_NAME = f"state-v{STATE_VERSION}"
SNAPSHOT_EVERY = 200  # events folded since the snapshot before a new one is written


def session_state(store: Store, session_id: str) -> SessionState:
    """The fold of the session's whole log (equal to `replay(all events)`)."""
    snapshot = store.get_snapshot(session_id, SNAPSHOT_NAME)
    state = SessionState.model_validate_json(snapshot[1]) if snapshot else SessionState()
    folded = replay(store.iter_events(session_id, after_seq=state.last_seq), state)
    if folded.last_seq - state.last_seq >= SNAPSHOT_EVERY:
        store.put_snapshot(session_id, SNAPSHOT_NAME, folded.last_seq, folded.model_dump_json())
    return folded
