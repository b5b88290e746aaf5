"""The one door to the event log: redact → seq → commit → notify.

Every event of every session is appended here, session creation and status changes included, so
that no front-end, use case or new event kind can forget a step:

1. redact: the project's secret values (and secret-looking values of this process's
   environment) are removed from the payload's free-text fields (`Payload.free_text`); ids,
   shas, kinds, paths and numbers are never touched;
2. seq + commit: the store assigns the next gap-free `seq` and commits, in one transaction;
3. notify: observers of the session in this process get the committed event (the CLI's live
   view, the API's streams). Other processes see it in the store.

Text streamed to a front-end before it is recorded (a model's answer, token by token) goes
through `stream(...)`, a redacting stream over the same secrets.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from branchwork.domain.events import Actor, Event, Payload
from branchwork.domain.models import Session, SessionStatus
from branchwork.sandbox.redact import RedactingStream, Redactor
from branchwork.store import SecretStore, Store

_log = logging.getLogger(__name__)
Observer = Callable[[Event], None]
ALL_SESSIONS = "*"

# Branchwork's own model keys: never handed to a project's commands, always redacted.
MODEL_KEY_VARS = frozenset({"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENROUTER_API_KEY"})
_SECRET_NAME = re.compile(r"(?i)(api_?key|token|secret|passw(or)?d|credential|private_?key)")
AMBIENT_MIN_LENGTH = 8


def ambient_secrets(environ: Mapping[str, str]) -> dict[str, str]:
    """Values of this process's environment whose names say they are secret: redacted from
    everything recorded, as project secrets are."""
    return {
        name: value
        for name, value in environ.items()
        if _SECRET_NAME.search(name) and len(value) >= AMBIENT_MIN_LENGTH
    }


class Redactors:
    """One redactor per project, rebuilt only when the project's secrets file changes."""

    def __init__(self, secrets: SecretStore) -> None:
        self._secrets = secrets
        self._cache: dict[str, tuple[tuple[int, int, int], Redactor]] = {}

    def for_project(self, project_id: str) -> Redactor:
        stamp = self._secrets.stamp(project_id)
        cached = self._cache.get(project_id)
        if cached is None or cached[0] != stamp:
            values = {**ambient_secrets(os.environ), **self._secrets.load(project_id)}
            cached = (stamp, Redactor(values))
            self._cache[project_id] = cached
        return cached[1]


def scrub(payload: Payload, redactor: Redactor) -> Payload:
    """The payload with secret values removed from its free-text fields only (the same object
    when there was nothing to remove)."""
    if redactor.empty:
        return payload
    changes = {}
    for name in payload.free_text:
        value = getattr(payload, name)
        clean = _redact_value(value, redactor)
        if clean != value:
            changes[name] = clean
    return payload.model_copy(update=changes) if changes else payload


def _redact_value(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, str):
        return redactor.redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v, redactor) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_value(v, redactor) for v in value]
    return value


class Recorder:
    """Appends events (redacted, sequenced, committed) and tells this process's observers."""

    def __init__(self, store: Store, redactors: Redactors) -> None:
        self._store = store
        self._redactors = redactors
        self._observers: dict[str, list[Observer]] = {}

    def observe(self, session_id: str | None, callback: Observer) -> Callable[[], None]:
        """Call `callback` with every event this process records in the session (in every
        session when `session_id` is None), until the returned function is called."""
        key = session_id or ALL_SESSIONS
        self._observers.setdefault(key, []).append(callback)

        def stop() -> None:
            self._observers.get(key, []).remove(callback)

        return stop

    def redactor(self, project_id: str) -> Redactor:
        return self._redactors.for_project(project_id)

    def stream(self, project_id: str) -> RedactingStream:
        """A redacting stream for text shown live before it is recorded."""
        return self.redactor(project_id).stream()

    def record(self, session: Session, payload: Payload, actor: Actor = "system") -> Event:
        return self.record_many(session, [(payload, actor)])[0]

    def record_many(self, session: Session, items: Sequence[tuple[Payload, Actor]]) -> list[Event]:
        """Append several events in one transaction (consecutive seqs), then notify."""
        redactor = self.redactor(session.project_id)
        clean = [(scrub(payload, redactor), actor) for payload, actor in items]
        events = self._store.append(session.id, clean)
        self._notify(session.id, events)
        return events

    def create_session(self, draft: Session, first: Payload, *, port_block: int) -> Session:
        """Insert a session and its first event; the title is redacted like the event."""
        redactor = self.redactor(draft.project_id)
        draft = draft.model_copy(update={"title": redactor.redact(draft.title)})
        session, event = self._store.add_session(
            draft, scrub(first, redactor), port_block=port_block
        )
        self._notify(session.id, [event])
        return session

    def set_status(
        self,
        session: Session,
        status: SessionStatus,
        payload: Payload,
        *,
        ports: tuple[int, int] | None = None,
    ) -> Session:
        """Change the session's status and record why, in one transaction."""
        clean = scrub(payload, self.redactor(session.project_id))
        updated, event = self._store.set_status(session.id, status, clean, ports=ports)
        self._notify(session.id, [event])
        return updated

    def _notify(self, session_id: str, events: list[Event]) -> None:
        """Tell the observers. The events are committed already: an observer that fails is
        logged and skipped, never allowed to make the use case look failed."""
        callbacks = [*self._observers.get(session_id, ()), *self._observers.get(ALL_SESSIONS, ())]
        for callback in callbacks:
            for event in events:
                try:
                    callback(event)
                except Exception:
                    _log.exception("an observer of session %s failed", session_id)
