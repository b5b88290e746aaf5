"""A webhook told when a session needs a person: a turn ended, a turn waits for an approval, a
check failed (in any session, whichever process recorded it).

Each message is one JSON POST:
`{"event": "turn_finished" | "approval_requested" | "check_failed", "session_id", "project_id",
"title", "seq", "detail", "idle"}`. `idle` is true only when nothing runs in the session any
more (no turn, no command): a turn's end is never announced as "done" while work goes on.
Messages are sent in order by one thread; a failed POST is logged and not retried.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

import httpx

from branchwork.domain.errors import InvalidInput
from branchwork.domain.events import ApprovalRequested, CheckRun, Event, TurnFinished
from branchwork.service.base import Services
from branchwork.service.state import session_state
from branchwork.service.watch import SessionMark, Watcher

_log = logging.getLogger(__name__)
KINDS = ("turn_finished", "approval_requested", "check_run")
TIMEOUT_S = 5.0


class Webhook:
    def __init__(self, services: Services, url: str, watcher: Watcher) -> None:
        self._services = services
        self._url = url
        self._seen = {sid: seq for sid, _, seq, _ in services.store.session_marks()}
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="branchwork-webhook", daemon=True)
        self._thread.start()
        self._unwatch = watcher.subscribe(self._on_mark)

    def close(self) -> None:
        self._unwatch()
        self._queue.put(None)
        self._thread.join(TIMEOUT_S * 2)

    def _on_mark(self, mark: SessionMark) -> None:
        self._queue.put(mark.session_id)

    def _loop(self) -> None:
        with httpx.Client(timeout=TIMEOUT_S) as client:
            while (session_id := self._queue.get()) is not None:
                try:
                    for message in self._messages(session_id):
                        client.post(self._url, json=message)
                except Exception as exc:  # a webhook must never take the server down
                    _log.warning("the webhook %s failed: %s", self._url, exc)

    def _messages(self, session_id: str) -> list[dict[str, Any]]:
        store = self._services.store
        after = self._seen.get(session_id, 0)
        # The end of the range first: an event appended while we read is left for its own
        # mark, never skipped (reading `last_seq` after the events lost an approval so).
        last = store.last_seq(session_id)
        found = [e for e in store.events(session_id, after_seq=after, kinds=KINDS) if e.seq <= last]
        self._seen[session_id] = max(after, last)
        if not found:
            return []
        session = store.get_session(session_id)
        state = session_state(store, session_id)
        idle = state.open_turn is None and not state.open_commands
        base = {"session_id": session.id, "project_id": session.project_id, "title": session.title}
        return [m for e in found if (m := _message(e, base, idle)) is not None]


def _message(event: Event, base: dict[str, Any], idle: bool) -> dict[str, Any] | None:
    p = event.payload
    if isinstance(p, TurnFinished):
        return {
            **base,
            "event": "turn_finished",
            "seq": event.seq,
            "detail": p.status,
            "idle": idle,
        }
    if isinstance(p, ApprovalRequested):
        return {
            **base,
            "event": "approval_requested",
            "seq": event.seq,
            "detail": p.summary,
            "idle": False,
        }
    if isinstance(p, CheckRun) and not p.passed:
        return {**base, "event": "check_failed", "seq": event.seq, "detail": p.check, "idle": idle}
    return None


def start_webhook(services: Services, url: str, watcher: Watcher) -> Callable[[], None]:
    """Send the messages to `url` from now on; returns the function that stops them."""
    if not url.startswith(("http://", "https://")):
        raise InvalidInput(f"webhook {url!r} is not an http(s) URL; give one such as https://…")
    hook = Webhook(services, url, watcher)
    return hook.close
