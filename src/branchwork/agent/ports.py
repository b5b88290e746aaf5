"""What the agent needs from the rest of the system, as a protocol the service implements.

The agent sits below the service (DESIGN.md: service → agent → infrastructure), so it never
imports the service: the service hands it a `SessionPort` bound to one session.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from branchwork.domain.events import Actor, Checkpoint, CommandFinished, Event, FileWritten, Payload
from branchwork.domain.replay import SessionState

if TYPE_CHECKING:
    from branchwork.index import SearchResults, Symbol


@dataclass(frozen=True)
class ProjectBrief:
    """What the system prompt says about the project."""

    name: str
    readme_excerpt: str = ""
    file_tree: str = ""
    repo_map: str = ""
    documents: list[str] = field(default_factory=list)


class SessionPort(Protocol):
    """One session's effects, each recorded by the implementation as events."""

    @property
    def session_id(self) -> str: ...

    @property
    def worktree(self) -> Path: ...

    def record(self, payload: Payload, actor: Actor) -> Event: ...

    def record_many(self, items: Sequence[tuple[Payload, Actor]]) -> list[Event]:
        """Record several events at once (one transaction, consecutive seqs)."""
        ...

    def observe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Deliver every event recorded in the session (by the agent or by the tools it calls)
        to `callback`, until the returned function is called."""
        ...

    def state(self) -> SessionState:
        """The session's state: the fold of its whole log."""
        ...

    def recent_events(self, kinds: Sequence[str], limit: int) -> list[Event]:
        """The newest `limit` events of these kinds, oldest first."""
        ...

    def brief(self) -> ProjectBrief: ...

    def list_files(self, path: str, pattern: str | None) -> list[str]: ...

    def read_file(self, path: str, start_line: int | None, end_line: int | None) -> str: ...

    def preview_write(self, path: str, content: str) -> str: ...

    def preview_edit(self, path: str, old: str, new: str) -> str: ...

    def write_file(self, path: str, content: str) -> FileWritten: ...

    def edit_file(self, path: str, old: str, new: str) -> FileWritten: ...

    def search(
        self, query: str, *, regex: bool, path_glob: str | None, limit: int
    ) -> SearchResults: ...

    def find_definition(self, name: str) -> list[Symbol]: ...

    def run_command(
        self,
        command: str,
        *,
        timeout: float | None,
        cancel: threading.Event | None,
        on_output: Callable[[str], None] | None,
    ) -> CommandFinished: ...

    def command_output(self, finished: CommandFinished) -> str: ...

    def diff(self) -> str: ...

    def checkpoint(self, message: str) -> Checkpoint | None: ...
