"""What every use-case needs: settings, the store, secrets, and event recording with redaction."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from branchwork.domain.errors import Conflict
from branchwork.domain.events import Actor, Event, Payload, parse_payload
from branchwork.domain.models import Project, Session
from branchwork.sandbox import Redactor
from branchwork.settings import Settings
from branchwork.store import SecretStore, Store


@dataclass
class ServiceContext:
    settings: Settings
    store: Store
    secrets: SecretStore

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
        return Redactor(self.secrets.load(project_id))

    def record(self, session: Session, payload: Payload, actor: Actor = "system") -> Event:
        """Append an event after removing the project's secret values from every string in it."""
        clean = scrub(payload, self.redactor(session.project_id))
        return self.store.append(session.id, clean, actor)


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
