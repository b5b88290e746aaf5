"""`Workspace`: the facade every front-end (CLI, HTTP API, UI) and Python user calls."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from branchwork.agent import Approver, TurnHooks, TurnResult
from branchwork.domain.events import Checkpoint, CommandFinished, Event, Reverted
from branchwork.domain.models import ActionMode, CheckpointInfo, Project, Session
from branchwork.domain.replay import SessionState
from branchwork.providers import Model
from branchwork.service import chat, commands, files, history, projects, search, sessions
from branchwork.service.context import ServiceContext
from branchwork.service.projects import EnvEntry
from branchwork.settings import Settings, load_settings
from branchwork.store import SecretStore, Store

if TYPE_CHECKING:
    from branchwork.index import Document, IndexReport

SessionRef = Session | str | None
ProjectRef = Project | str | None


class Workspace:
    """Projects, their sessions and everything recorded in them, in one data directory.

    ```python
    with Workspace() as ws:                       # settings from BRANCHWORK_* / branchwork.toml
        project = ws.add_project("~/src/app")
        session = ws.new_session(project, title="fix login")
        ws.write_file(session, "notes.md", "hello\\n")
        ws.run(session, "pytest -q")
        print(ws.diff(session))
    ```
    Sessions and projects can be passed as objects, as ids/names, or as None (the current
    session, else the newest session of the project of the current directory).
    """

    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        self.settings = settings or load_settings(**overrides)
        self.settings.home.mkdir(parents=True, exist_ok=True)
        store = Store.open(self.settings.resolved_database_url)
        self._ctx = ServiceContext(
            self.settings, store, SecretStore(self.settings.home / "secrets")
        )

    @property
    def context(self) -> ServiceContext:
        """The use-case context (for the agent and the API, which call the service modules)."""
        return self._ctx

    def close(self) -> None:
        self._ctx.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- resolution -------------------------------------------------------------------------

    def project(self, ref: ProjectRef = None, *, cwd: Path | None = None) -> Project:
        if isinstance(ref, Project):
            return projects.get_project(self._ctx, ref.id)
        return projects.resolve_project(self._ctx, ref, cwd or Path.cwd())

    def session(self, ref: SessionRef = None, *, cwd: Path | None = None) -> Session:
        if isinstance(ref, Session):
            return self._ctx.store.get_session(ref.id)
        return sessions.resolve_session(self._ctx, ref, cwd or Path.cwd())

    # -- projects ---------------------------------------------------------------------------

    def add_project(self, source: str | Path, *, name: str | None = None) -> Project:
        return projects.add_project(self._ctx, str(source), name)

    def projects(self) -> list[Project]:
        return self._ctx.store.list_projects()

    def remove_project(self, ref: ProjectRef, *, force: bool = False) -> None:
        projects.remove_project(self._ctx, self.project(ref), force=force)

    def configure_project(
        self, ref: ProjectRef = None, *, reload: bool = False, **changes: Any
    ) -> Project:
        return projects.configure_project(self._ctx, self.project(ref), reload=reload, **changes)

    def set_env(self, ref: ProjectRef, key: str, value: str, *, secret: bool = False) -> Project:
        return projects.set_env(self._ctx, self.project(ref), key, value, secret=secret)

    def unset_env(self, ref: ProjectRef, key: str) -> Project:
        return projects.unset_env(self._ctx, self.project(ref), key)

    def env(self, ref: ProjectRef = None) -> list[EnvEntry]:
        return projects.list_env(self.project(ref))

    # -- sessions ---------------------------------------------------------------------------

    def new_session(
        self, project: ProjectRef = None, *, title: str | None = None, from_ref: str | None = None
    ) -> Session:
        return sessions.new_session(
            self._ctx, self.project(project), title=title, from_ref=from_ref
        )

    def sessions(
        self,
        project: ProjectRef = None,
        *,
        include_archived: bool = False,
        all_projects: bool = False,
    ) -> list[Session]:
        project_id = None if all_projects else self.project(project).id
        return self._ctx.store.list_sessions(project_id, include_archived=include_archived)

    def switch_session(self, ref: SessionRef) -> Session:
        return sessions.switch_session(self._ctx, self.session(ref))

    def current_session(self) -> Session | None:
        current = self._ctx.store.get_state(sessions.CURRENT_KEY)
        return self._ctx.store.get_session(current) if current else None

    def archive_session(self, ref: SessionRef = None, *, force: bool = False) -> Session:
        return sessions.archive_session(self._ctx, self.session(ref), force=force)

    def restore_session(self, ref: SessionRef = None) -> Session:
        return sessions.restore_session(self._ctx, self.session(ref))

    def session_state(self, ref: SessionRef = None) -> SessionState:
        return history.session_state(self._ctx, self.session(ref))

    # -- files ------------------------------------------------------------------------------

    def read_file(
        self,
        ref: SessionRef,
        path: str,
        *,
        start_line: int | None = None,
        end_line: int | None = None,
    ) -> str:
        return files.read_file(
            self._ctx, self.session(ref), path, start_line=start_line, end_line=end_line
        )

    def write_file(self, ref: SessionRef, path: str, content: str) -> files.WriteOutcome:
        return files.write_file(self._ctx, self.session(ref), path, content)

    def edit_file(self, ref: SessionRef, path: str, old: str, new: str) -> files.WriteOutcome:
        return files.edit_file(self._ctx, self.session(ref), path, old, new)

    # -- commands ---------------------------------------------------------------------------

    def run(
        self,
        ref: SessionRef,
        command: str | Sequence[str],
        *,
        timeout: float | None = None,
        on_output: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> commands.CommandOutcome:
        """Run a shell line (str) or an argv (list) in the session's worktree."""
        return commands.run_command(
            self._ctx,
            self.session(ref),
            command,
            timeout=timeout,
            on_output=on_output,
            cancel=cancel,
        )

    def command_output(self, finished: CommandFinished) -> str:
        return commands.command_output(self._ctx, finished)

    # -- the agent ----------------------------------------------------------------------------

    def send_message(
        self,
        ref: SessionRef,
        text: str,
        *,
        model: str | Model | None = None,
        mode: ActionMode | None = None,
        approver: Approver | None = None,
        hooks: TurnHooks | None = None,
        cancel: threading.Event | None = None,
        max_steps: int | None = None,
    ) -> TurnResult:
        """Run one agent turn on `text`. Without an `approver`, actions the policy would ask
        about are refused (non-interactive); set `cancel` from another thread to stop it."""
        return chat.send_message(
            self._ctx,
            self.session(ref),
            text,
            model=model,
            mode=mode,
            approver=approver,
            hooks=hooks,
            cancel=cancel,
            max_steps=max_steps,
        )

    def cancel_turn(self, ref: SessionRef = None) -> bool:
        """Ask the turn running in the session, in this process or another, to stop (within
        about half a second); False when no turn is running."""
        return chat.cancel_turn(self._ctx, self.session(ref))

    def chat_session(
        self,
        ref: str | None = None,
        *,
        project: str | None = None,
        first_message: str | None = None,
        new: bool = False,
        cwd: Path | None = None,
    ) -> Session:
        """The session a chat continues: the named one, the current one, or a new one."""
        return chat.session_for_chat(
            self._ctx,
            ref,
            project_key=project,
            cwd=cwd or Path.cwd(),
            first_message=first_message,
            new=new,
        )

    def set_session_defaults(
        self, ref: SessionRef, *, mode: ActionMode | None = None, model: str | None = None
    ) -> Session:
        """Set the session's own mode and model (they override the project's); show them."""
        session = self.session(ref)
        values = {k: v for k, v in {"mode": mode, "model": model}.items() if v is not None}
        return self._ctx.store.update_session(session.id, **values) if values else session

    # -- indexed repository context ---------------------------------------------------------

    def index(self, ref: ProjectRef | Session = None, *, progress: Any = None) -> IndexReport:
        """Index a session's working state, or the main branch of a project."""
        if isinstance(ref, Session):
            return search.session_view(self._ctx, ref, progress=progress)
        return search.project_view(self._ctx, self.project(ref), progress=progress)

    def collect_index_garbage(self) -> int:
        """Remove indexed contents no view or document uses; returns how many."""
        return search.collect_garbage(self._ctx)

    def search(
        self,
        query: str,
        *,
        session: SessionRef = None,
        project: ProjectRef = None,
        regex: bool = False,
        path_glob: str | None = None,
        language: str | None = None,
        limit: int = 20,
    ) -> list[dict[str, Any]]:
        """Search a session's view (recorded as a context reference) or a project's main."""
        if project is not None and session is None:
            target = self.project(project)
            tree = search.project_view(self._ctx, target).tree
            hits = search.search_view(
                self._ctx,
                tree,
                query,
                project=target,
                regex=regex,
                path_glob=path_glob,
                language=language,
                limit=limit,
            )
            return [search.hit_json(h) for h in hits]
        return search.search_session(
            self._ctx,
            self.session(session),
            query,
            regex=regex,
            path_glob=path_glob,
            language=language,
            limit=limit,
        )

    def definitions(
        self, name: str, *, session: SessionRef = None, project: ProjectRef = None
    ) -> list[dict[str, Any]]:
        """Where `name` is defined: in a session (recorded as a context reference), or on the
        main branch of `project` when only a project is given."""
        if project is not None and session is None:
            return search.main_definitions(self._ctx, self.project(project), name)
        return search.find_definitions(self._ctx, self.session(session), name)

    def references(
        self, name: str, *, session: SessionRef = None, project: ProjectRef = None
    ) -> list[dict[str, Any]]:
        """Uses of `name` by name, in a session or on the main branch of `project`."""
        if project is not None and session is None:
            return search.main_references(self._ctx, self.project(project), name)
        return search.find_references(self._ctx, self.session(session), name)

    def add_document(self, path: str | Path, *, project: ProjectRef = None) -> Document:
        return search.add_document(self._ctx, self.project(project), Path(path))

    def documents(self, project: ProjectRef = None) -> list[Document]:
        return search.list_documents(self._ctx, self.project(project))

    def remove_document(self, key: str, *, project: ProjectRef = None) -> Document:
        return search.remove_document(self._ctx, self.project(project), key)

    # -- checkpoints and history ------------------------------------------------------------

    def checkpoint(self, ref: SessionRef = None, message: str = "checkpoint") -> Checkpoint | None:
        return history.take_checkpoint(self._ctx, self.session(ref), message)

    def checkpoints(self, ref: SessionRef = None) -> list[CheckpointInfo]:
        return history.list_checkpoints(self._ctx, self.session(ref))

    def diff(self, ref: SessionRef = None, *, against: str = "base") -> str:
        return history.session_diff(self._ctx, self.session(ref), against)

    def revert(self, ref: SessionRef, *, to: str) -> Reverted:
        return history.revert(self._ctx, self.session(ref), to)

    def events(
        self, ref: SessionRef = None, *, kinds: Sequence[str] | None = None, after_seq: int = 0
    ) -> list[Event]:
        return history.read_events(self._ctx, self.session(ref), kinds=kinds, after_seq=after_seq)

    def follow(
        self,
        ref: SessionRef = None,
        *,
        kinds: Sequence[str] | None = None,
        after_seq: int = 0,
        stop_after: float | None = None,
    ) -> Iterator[Event]:
        return history.follow_events(
            self._ctx, self.session(ref), kinds=kinds, after_seq=after_seq, stop_after=stop_after
        )
