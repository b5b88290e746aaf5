"""What every use-case needs: settings, the store, secrets, and event recording with redaction."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from branchwork.domain.errors import Conflict
from branchwork.domain.events import Actor, Event, Payload, parse_payload
from branchwork.domain.models import Project, Session
from branchwork.sandbox import Redactor
from branchwork.settings import Settings
from branchwork.store import SecretStore, Store

if TYPE_CHECKING:
    from branchwork.index import CodeIndex


# Branchwork's own model keys: never handed to a project's commands.
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


@dataclass
class ServiceContext:
    settings: Settings
    store: Store
    secrets: SecretStore
    _index: CodeIndex | None = None
    _redactors: dict[str, tuple[tuple[int, int, int], Redactor]] = field(default_factory=dict)
    _observers: dict[str, list[Callable[[Event], None]]] = field(default_factory=dict)

    def observe(self, session_id: str, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call `callback` with every event this process records in the session, until the
        returned function is called."""
        self._observers.setdefault(session_id, []).append(callback)

        def stop() -> None:
            self._observers.get(session_id, []).remove(callback)

        return stop

    def code_index(self) -> CodeIndex:
        """The code index of this data directory (opened, and imported, on first use)."""
        if self._index is None:
            from branchwork.index import CodeIndex

            self._index = CodeIndex(self.home / "index.sqlite")
        return self._index

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None
        self.store.close()

    @property
    def home(self) -> Path:
        return self.settings.home

    @property
    def lock_dir(self) -> Path:
        return self.home / "locks"

    def project(self, project_id: str) -> Project:
        from branchwork.service.projects import get_project

        return get_project(self, project_id)

    def redactor(self, project_id: str) -> Redactor:
        """The project's redactor, rebuilt only when its secrets file changed."""
        stamp = self.secrets.stamp(project_id)
        cached = self._redactors.get(project_id)
        if cached is None or cached[0] != stamp:
            values = {**ambient_secrets(os.environ), **self.secrets.load(project_id)}
            cached = (stamp, Redactor(values))
            self._redactors[project_id] = cached
        return cached[1]

    def record(self, session: Session, payload: Payload, actor: Actor = "system") -> Event:
        """Append an event after removing the project's secret values from every string in it."""
        clean = scrub(payload, self.redactor(session.project_id))
        event = self.store.append(session.id, clean, actor)
        for callback in list(self._observers.get(session.id, ())):
            callback(event)
        return event


def scrub(payload: Payload, redactor: Redactor) -> Payload:
    data = payload.model_dump(mode="json")
    return parse_payload(_redact_value(data, redactor))


def _redact_value(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, str):
        return redactor.redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v, redactor) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_value(v, redactor) for v in value]
    return value


def require_active(session: Session) -> None:
    if session.status != "active":
        raise Conflict(
            f"session {session.short_id} is {session.status}; run "
            f"`branchwork session restore {session.short_id}` first"
        )
