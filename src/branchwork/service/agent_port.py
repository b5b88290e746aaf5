"""The agent's view of one session: the `SessionPort` the agent loop is given, over one scope
resolved when the turn starts (no lookup per tool call)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from branchwork.agent.ports import ProjectBrief
from branchwork.domain.events import Actor, Checkpoint, CommandFinished, Event, FileWritten, Payload
from branchwork.domain.replay import SessionState
from branchwork.service import commands, files, forks, history, search
from branchwork.service.scope import SessionScope, take_checkpoint
from branchwork.service.state import session_state

if TYPE_CHECKING:
    from branchwork.index import SearchResults, Symbol

README_NAMES = ("README.md", "README.rst", "README.txt", "README")
README_EXCERPT_CHARS = 2000


class ServiceSessionPort:
    """Implements `branchwork.agent.ports.SessionPort` with the service's use-cases."""

    def __init__(self, scope: SessionScope) -> None:
        self._scope = scope

    @property
    def session_id(self) -> str:
        return self._scope.session.id

    @property
    def worktree(self) -> Path:
        return self._scope.worktree

    def record(self, payload: Payload, actor: Actor) -> Event:
        return self._scope.record(payload, actor)

    def record_many(self, items: Sequence[tuple[Payload, Actor]]) -> list[Event]:
        return self._scope.record_many(items)

    def observe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        return self._scope.services.recorder.observe(self.session_id, callback)

    def state(self) -> SessionState:
        return session_state(self._scope.services.store, self.session_id)

    def recent_events(self, kinds: Sequence[str], limit: int) -> list[Event]:
        """The session's newest events; a fork's include its parent's up to the fork point."""
        scope = self._scope
        return forks.conversation_tail(scope.services, scope.session, kinds, limit)

    def brief(self) -> ProjectBrief:
        scope = self._scope
        return ProjectBrief(
            name=scope.project.name,
            readme_excerpt=self._readme(),
            file_tree=file_tree_summary(files.list_files(scope)),
            repo_map=search.repo_map(scope),
            documents=search.document_titles(scope.services, scope.project),
        )

    def _readme(self) -> str:
        for name in README_NAMES:
            path = self.worktree / name
            if path.is_file():
                return path.read_text(encoding="utf-8", errors="replace")[:README_EXCERPT_CHARS]
        return ""

    def list_files(self, path: str, pattern: str | None) -> list[str]:
        return files.list_files(self._scope, path, pattern)

    def read_file(self, path: str, start_line: int | None, end_line: int | None) -> str:
        return files.read_file(
            self._scope, path, start_line=start_line, end_line=end_line, actor="agent"
        )

    def preview_write(self, path: str, content: str) -> str:
        return files.preview_write(self._scope, path, content)

    def preview_edit(self, path: str, old: str, new: str) -> str:
        return files.preview_edit(self._scope, path, old, new)

    def write_file(self, path: str, content: str) -> FileWritten:
        return files.write_file(self._scope, path, content, actor="agent", checkpoint=False).written

    def edit_file(self, path: str, old: str, new: str) -> FileWritten:
        outcome = files.edit_file(self._scope, path, old, new, actor="agent", checkpoint=False)
        return outcome.written

    def search(
        self, query: str, *, regex: bool, path_glob: str | None, limit: int
    ) -> SearchResults:
        return search.search_session(
            self._scope, query, regex=regex, path_glob=path_glob, limit=limit, actor="agent"
        )

    def find_definition(self, name: str) -> list[Symbol]:
        return search.session_definitions(self._scope, name, actor="agent")

    def run_command(
        self,
        command: str,
        *,
        timeout: float | None,
        cancel: threading.Event | None,
        on_output: Callable[[str], None] | None,
    ) -> CommandFinished:
        outcome = commands.run_command(
            self._scope,
            command,
            timeout=timeout,
            on_output=on_output,
            cancel=cancel,
            purpose="agent",
            checkpoint=False,
        )
        return outcome.finished

    def command_output(self, finished: CommandFinished) -> str:
        return commands.command_output(self._scope.services, finished)

    def diff(self) -> str:
        return history.session_diff(self._scope, "base")

    def checkpoint(self, message: str) -> Checkpoint | None:
        return take_checkpoint(self._scope, message, automatic=True)


def file_tree_summary(names: list[str], *, limit: int = 60) -> str:
    """The first files, then a count per top-level directory for the rest."""
    if len(names) <= limit:
        return "\n".join(names)
    counts: dict[str, int] = {}
    for name in names[limit:]:
        top = name.split("/", 1)[0] + ("/" if "/" in name else "")
        counts[top] = counts.get(top, 0) + 1
    rest = "\n".join(f"{top} (+{n} more files)" for top, n in sorted(counts.items()))
    return "\n".join(names[:limit]) + "\n" + rest
