"""The agent's view of one session: the `SessionPort` the agent loop is given."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from branchwork.agent.ports import ProjectBrief
from branchwork.domain.events import Actor, Checkpoint, CommandFinished, Event, FileWritten, Payload
from branchwork.domain.models import Session
from branchwork.service import commands, files, history, search
from branchwork.service.context import ServiceContext
from branchwork.service.projects import get_project

README_NAMES = ("README.md", "README.rst", "README.txt", "README")
README_EXCERPT_CHARS = 2000


class ServiceSessionPort:
    """Implements `branchwork.agent.ports.SessionPort` with the service's use-cases."""

    def __init__(self, ctx: ServiceContext, session: Session) -> None:
        self._ctx = ctx
        self._session = session
        self._history: list[Event] | None = None

    @property
    def session_id(self) -> str:
        return self._session.id

    @property
    def worktree(self) -> Path:
        return Path(self._session.worktree)

    def record(self, payload: Payload, actor: Actor) -> Event:
        return self._ctx.record(self._session, payload, actor)

    def observe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        return self._ctx.observe(self._session.id, callback)

    def history(self) -> list[Event]:
        """The whole log, read once; later events are appended as they are recorded here."""
        if self._history is None:
            self._history = self._ctx.store.events(self._session.id)
        else:
            fresh = self._ctx.store.events(self._session.id, after_seq=self._last_seq())
            self._history.extend(fresh)
        return list(self._history)

    def _last_seq(self) -> int:
        return self._history[-1].seq if self._history else 0

    def brief(self) -> ProjectBrief:
        project = get_project(self._ctx, self._session.project_id)
        names = files.list_files(self._ctx, self._session)
        return ProjectBrief(
            name=project.name,
            readme_excerpt=self._readme(),
            file_tree=file_tree_summary(names),
            repo_map=search.repo_map(self._ctx, self._session),
            documents=search.document_titles(self._ctx, project),
        )

    def _readme(self) -> str:
        for name in README_NAMES:
            path = self.worktree / name
            if path.is_file():
                return path.read_text(encoding="utf-8", errors="replace")[:README_EXCERPT_CHARS]
        return ""

    def list_files(self, path: str, pattern: str | None) -> list[str]:
        return files.list_files(self._ctx, self._session, path, pattern)

    def read_file(self, path: str, start_line: int | None, end_line: int | None) -> str:
        return files.read_file(
            self._ctx, self._session, path, start_line=start_line, end_line=end_line, actor="agent"
        )

    def preview_write(self, path: str, content: str) -> str:
        return files.preview_write(self._ctx, self._session, path, content)

    def preview_edit(self, path: str, old: str, new: str) -> str:
        return files.preview_edit(self._ctx, self._session, path, old, new)

    def write_file(self, path: str, content: str) -> FileWritten:
        outcome = files.write_file(
            self._ctx, self._session, path, content, actor="agent", checkpoint=False
        )
        return outcome.written

    def edit_file(self, path: str, old: str, new: str) -> FileWritten:
        outcome = files.edit_file(
            self._ctx, self._session, path, old, new, actor="agent", checkpoint=False
        )
        return outcome.written

    def search(
        self, query: str, *, regex: bool, path_glob: str | None, limit: int
    ) -> list[dict[str, Any]]:
        return search.search_session(
            self._ctx,
            self._session,
            query,
            regex=regex,
            path_glob=path_glob,
            limit=limit,
            actor="agent",
        )

    def find_definition(self, name: str) -> list[dict[str, Any]]:
        return search.find_definitions(self._ctx, self._session, name, actor="agent")

    def run_command(
        self,
        command: str,
        *,
        timeout: float | None,
        cancel: threading.Event | None,
        on_output: Callable[[str], None] | None,
    ) -> CommandFinished:
        outcome = commands.run_command(
            self._ctx,
            self._session,
            command,
            timeout=timeout,
            on_output=on_output,
            cancel=cancel,
            purpose="agent",
            checkpoint=False,
        )
        return outcome.finished

    def command_output(self, finished: CommandFinished) -> str:
        return commands.command_output(self._ctx, finished)

    def diff(self) -> str:
        return history.session_diff(self._ctx, self._session, "base")

    def checkpoint(self, message: str) -> Checkpoint | None:
        return history.take_checkpoint(self._ctx, self._session, message, automatic=True)


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
