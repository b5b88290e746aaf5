"""`Workspace`: the facade every front-end (CLI, HTTP API, UI) and Python user calls.

A method resolves what it is asked about once (`resolve`: the session or project named, else
the one the working directory means), opens one scope on it, and hands it to one use case.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from branchwork._lazy import lazy_module
from branchwork.domain.errors import InvalidInput, NotFound
from branchwork.domain.events import EVENT_KINDS
from branchwork.domain.models import Project, Session
from branchwork.domain.proposals import Proposal
from branchwork.domain.replay import Budget
from branchwork.service import resolve
from branchwork.service.base import Services
from branchwork.service.refs import ProjectRef, SessionRef
from branchwork.service.results import SessionDetails, SessionListing
from branchwork.service.server import ServerUseCases
from branchwork.service.state import session_state
from branchwork.service.workspace_tasks import TaskMethods
from branchwork.settings import Settings, load_settings

if TYPE_CHECKING:
    from branchwork.agent import Approver, TurnHooks, TurnResult
    from branchwork.domain.events import (
        Checkpoint,
        CheckRun,
        CommandFinished,
        Compacted,
        Event,
        FileWritten,
        Reverted,
    )
    from branchwork.domain.models import ActionMode, CheckpointInfo
    from branchwork.domain.proposals import ApprovalPolicy, ReviewComment
    from branchwork.domain.replay import SessionState
    from branchwork.index import (
        Document,
        IndexReport,
        ReferenceResults,
        SearchResults,
        Symbol,
    )
    from branchwork.providers import Model
    from branchwork.service import (
        address,
        budgets,
        chat,
        commands,
        doctor,
        files,
        history,
        lifecycle,
        merge as merging,
        policy as policies,
        pool,
        projects,
        proposals as proposing,
        radar,
        rebuild,
        review as reviewing,
        scope,
        search,
        sessions,
    )
    from branchwork.service.address import AddressRequest
    from branchwork.service.commands import CommandOutcome
    from branchwork.service.doctor import Check
    from branchwork.service.files import WriteOutcome
    from branchwork.service.lifecycle import DiskUsage, GcReport
    from branchwork.service.merge import MergeOutcome
    from branchwork.service.pool import PoolSlot
    from branchwork.service.projects import EnvEntry
    from branchwork.service.proposals import ProposalDetails
    from branchwork.service.radar import RadarReport
    from branchwork.service.rebuild import RebuildReport
    from branchwork.service.review import ReviewView
else:
    # Use cases load on first use: a command pays only for those it calls (the agent loop and
    # the model providers alone cost ~100 ms of start-up).
    (
        budgets,
        chat,
        commands,
        doctor,
        files,
        history,
        lifecycle,
        pool,
        projects,
        rebuild,
        scope,
        search,
        sessions,
    ) = (
        lazy_module(f"branchwork.service.{name}")
        for name in (
            "budgets",
            "chat",
            "commands",
            "doctor",
            "files",
            "history",
            "lifecycle",
            "pool",
            "projects",
            "rebuild",
            "scope",
            "search",
            "sessions",
        )
    )

    # proposals, review and merge
    address = lazy_module("branchwork.service.address")
    merging = lazy_module("branchwork.service.merge")
    policies = lazy_module("branchwork.service.policy")
    proposing = lazy_module("branchwork.service.proposals")
    radar = lazy_module("branchwork.service.radar")
    reviewing = lazy_module("branchwork.service.review")

ProposalRef = Proposal | str | int  # a proposal, its number in the project (3, "#3"), its id
Progress = Callable[[int, int], None]


class Workspace(TaskMethods, ServerUseCases):
    """Projects, their sessions and everything recorded in them, in one data directory.

    ```python
    with Workspace() as ws:                       # settings from BRANCHWORK_* / branchwork.toml
        project = ws.add_project("~/src/app")
        session = ws.new_session(project, title="fix login")
        ws.write_file(session, "notes.md", "hello\\n")
        ws.run(session, "pytest -q")
        print(ws.diff(session))
    ```
    Sessions and projects can be passed as objects, as ids/names, or as None: then the one the
    working directory means (`cwd`, default: the process's) is used, never another project's
    (see `branchwork.service.resolve` for the rule).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        cwd: str | Path | None = None,
        **overrides: Any,
    ) -> None:
        self.settings = settings or load_settings(**overrides)
        self._services = Services.open(self.settings)
        self._cwd = Path(cwd).expanduser().resolve() if cwd is not None else None

    @classmethod
    def diagnose(
        cls, settings: Settings | None = None, *, refresh: bool = False, **overrides: Any
    ) -> list[Check]:
        """What this installation runs with (git, data directory, database, the command
        runner in force and why, the default model), each with the remedy when wrong.
        `refresh` probes the sandbox again instead of using the cached answer."""
        return doctor.diagnose(settings or load_settings(**overrides), refresh=refresh)

    @classmethod
    def rebuild(cls, settings: Settings | None = None, **overrides: Any) -> RebuildReport:
        """Register again the projects and sessions whose branches and worktrees are in the
        data directory, after the database was lost (emptied, damaged and moved aside).
        Histories cannot be recovered from git: each rebuilt session says so."""
        chosen = settings or load_settings(**overrides)
        services = Services.open(chosen, allow_empty=True)
        try:
            return rebuild.rebuild(services)
        finally:
            services.close()

    def close(self) -> None:
        self._close_server()
        self._services.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def observe(
        self, callback: Callable[[Event], None], *, session: SessionRef = None
    ) -> Callable[[], None]:
        """Call `callback` with every event this workspace records (only the named session's
        when `session` is given), redacted and committed; returns the function that stops it.
        Events recorded by other processes are read with `iter_events(..., follow=True)`."""
        session_id = self.session(session).id if session is not None else None
        return self._services.recorder.observe(session_id, callback)

    # -- resolution -------------------------------------------------------------------------

    def _where(self) -> Path:
        if self._cwd is not None:
            return self._cwd
        try:
            return Path.cwd()
        except FileNotFoundError:
            raise NotFound(
                "the working directory no longer exists (was it an archived session's "
                "worktree?); change to another directory, or name the session or project"
            ) from None

    def project(self, ref: ProjectRef = None) -> Project:
        """The project named (or given), else the project of the working directory."""
        if isinstance(ref, Project):
            return resolve.get_project(self._services, ref.id)
        if ref is not None:
            return resolve.get_project(self._services, _named(ref, "project"))
        return resolve.resolve_project(self._services, None, self._where())

    def session(self, ref: SessionRef = None) -> Session:
        """The session named (or given, re-read), else the one the working directory means."""
        if isinstance(ref, Session):
            return self._services.store.get_session(ref.id)
        if ref is not None:
            return resolve.find_session(self._services, _named(ref, "session"))
        return resolve.resolve_session(self._services, None, self._where())

    def _looked_at(self, ref: SessionRef) -> Session:
        """The session, once what a dead process left open in it is closed (`recover`)."""
        session = self.session(ref)
        scope.recover(self._services, session)
        return session

    def _scope(self, ref: SessionRef, *, worktree: bool = True) -> scope.SessionScope:
        return scope.open_scope(self._services, self.session(ref), worktree=worktree)

    # -- projects ---------------------------------------------------------------------------

    def add_project(self, source: str | Path, *, name: str | None = None) -> Project:
        """Register a local repository (used in place) or clone a URL into the data dir."""
        return projects.add_project(self._services, str(source), name)

    def projects(self) -> list[Project]:
        return self._services.store.list_projects()

    def remove_project(self, ref: ProjectRef, *, force: bool = False) -> Project:
        """Forget a project (its repository and session branches are kept)."""
        project = self.project(ref)
        projects.remove_project(self._services, project, force=force)
        return project

    def configure_project(
        self,
        ref: ProjectRef = None,
        *,
        setup: str | None = None,
        copy_files: list[str] | None = None,
        mode: str | None = None,
        model: str | None = None,
        sandbox: str | None = None,
        network: str | None = None,
        concurrent_turns: int | None = None,
        budget: Budget | None = None,
        pool_size: int | None = None,
        pool_setup: bool | None = None,
        disk_quota_mb: int | None = None,
        reload: bool = False,
    ) -> Project:
        """Change the project's configuration (None leaves a setting as it is; a quota of 0
        removes it); `reload` re-reads `.branchwork.toml` from the main branch first."""
        changes = projects.ConfigChanges(
            setup=setup,
            copy_files=copy_files,
            mode=mode,
            model=model,
            sandbox=sandbox,
            network=network,
            concurrent_turns=concurrent_turns,
            budget=budget,
            pool_size=pool_size,
            pool_setup=pool_setup,
            disk_quota_mb=disk_quota_mb,
        )
        return projects.configure_project(self._services, self.project(ref), changes, reload=reload)

    def set_env(self, ref: ProjectRef, key: str, value: str, *, secret: bool = False) -> Project:
        return projects.set_env(self._services, self.project(ref), key, value, secret=secret)

    def unset_env(self, ref: ProjectRef, key: str) -> Project:
        return projects.unset_env(self._services, self.project(ref), key)

    def env(self, ref: ProjectRef = None) -> list[EnvEntry]:
        return projects.list_env(self.project(ref))

    # -- sessions ---------------------------------------------------------------------------

    def new_session(
        self,
        project: ProjectRef = None,
        *,
        title: str | None = None,
        from_ref: str | None = None,
        mode: str | None = None,
        model: str | None = None,
        current: bool = True,
    ) -> Session:
        """A new session: its own branch from main (or `from_ref`) and its own worktree. It
        becomes its project's current session unless `current=False`."""
        return sessions.new_session(
            self._services,
            self.project(project),
            title=title,
            from_ref=from_ref,
            mode=mode,
            model=model,
            current=current,
        )

    def sessions(
        self,
        project: ProjectRef = None,
        *,
        include_archived: bool = False,
        all_projects: bool = False,
    ) -> list[Session]:
        project_id = None if all_projects else self.project(project).id
        return self._services.store.list_sessions(project_id, include_archived=include_archived)

    def session_listing(
        self,
        project: ProjectRef = None,
        *,
        include_archived: bool = False,
        all_projects: bool = False,
    ) -> SessionListing:
        """Sessions, with their projects' names and which ones are current."""
        found = self.sessions(project, include_archived=include_archived, all_projects=all_projects)
        known = self._services.store.list_projects()
        current = {resolve.current_session(self._services, p) for p in known}
        return SessionListing(
            sessions=found,
            project_names={p.id: p.name for p in known},
            current_ids=frozenset(s.id for s in current if s is not None),
        )

    def session_details(self, ref: SessionRef = None) -> SessionDetails:
        session = self._looked_at(ref)
        project = resolve.project_of(self._services, session)
        state = session_state(self._services.store, session.id)
        return SessionDetails(session=session, project=project, state=state)

    def switch_session(self, ref: SessionRef) -> Session:
        """Make the session the current one of its project."""
        return resolve.make_current(self._services, self.session(ref))

    def current_session(self, project: ProjectRef = None) -> Session | None:
        """The current session of the project (named, else the working directory's)."""
        return resolve.current_session(self._services, self.project(project))

    def set_session_defaults(
        self, ref: SessionRef = None, *, mode: str | None = None, model: str | None = None
    ) -> Session:
        """Set the session's own mode and model (they override the project's)."""
        return sessions.set_defaults(self._services, self.session(ref), mode=mode, model=model)

    def archive_session(self, ref: SessionRef = None, *, force: bool = False) -> Session:
        return sessions.archive_session(self._services, self.session(ref), force=force)

    def restore_session(self, ref: SessionRef = None) -> Session:
        return sessions.restore_session(self._services, self.session(ref))

    def session_state(self, ref: SessionRef = None) -> SessionState:
        return session_state(self._services.store, self.session(ref).id)

    # -- files ------------------------------------------------------------------------------

    def read_file(
        self,
        ref: SessionRef,
        path: str,
        *,
        start_line: int | None = None,
        end_line: int | None = None,
    ) -> str:
        return files.read_file(self._scope(ref), path, start_line=start_line, end_line=end_line)

    def write_file(self, ref: SessionRef, path: str, content: str) -> WriteOutcome:
        return files.write_file(self._scope(ref), path, content)

    def edit_file(self, ref: SessionRef, path: str, old: str, new: str) -> WriteOutcome:
        return files.edit_file(self._scope(ref), path, old, new)

    def list_files(self, ref: SessionRef = None, path: str = ".") -> list[str]:
        return files.list_files(self._scope(ref), path)

    # -- commands ---------------------------------------------------------------------------

    def run(
        self,
        ref: SessionRef,
        command: str | Sequence[str],
        *,
        timeout: float | None = None,
        on_output: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> CommandOutcome:
        """Run a shell line (str) or an argv (list) in the session's worktree."""
        return commands.run_command(
            self._scope(ref), command, timeout=timeout, on_output=on_output, cancel=cancel
        )

    def command_output(self, finished: CommandFinished) -> str:
        """The whole (redacted) output of a command, however long."""
        return commands.command_output(self._services, finished)

    def file_diff(self, written: FileWritten) -> str:
        """The whole (redacted) diff of a write, when the event carries only its head and the
        diff was kept; else the event's diff."""
        if written.diff_blob is None:
            return written.diff
        return self._services.store.get_blob(written.diff_blob).decode("utf-8", "replace")

    # -- the agent ----------------------------------------------------------------------------

    def send_message(
        self,
        ref: SessionRef,
        text: str,
        *,
        model: str | Model | None = None,
        mode: str | None = None,
        approver: Approver | None = None,
        hooks: TurnHooks | None = None,
        cancel: threading.Event | None = None,
        max_steps: int | None = None,
    ) -> TurnResult:
        """Run one agent turn on `text`. Without an `approver`, actions the policy would ask
        about are refused (non-interactive); set `cancel` from another thread to stop it.
        Streamed text reaches `hooks` already redacted."""
        return chat.send_message(
            self._services,
            self.session(ref),
            text,
            model=model,
            mode=mode,
            approver=approver,
            hooks=hooks,
            cancel=cancel,
            max_steps=max_steps,
        )

    def check_mode(self, mode: str) -> ActionMode:
        """`mode` if it is an action mode; else an error naming the modes."""
        checked, _ = sessions.check_defaults(mode, None)
        assert checked is not None
        return checked

    def check_model(self, model: str) -> str:
        """`model` normalised, once it is known to be usable here (built, not loaded)."""
        _, checked = sessions.check_defaults(None, model)
        assert checked is not None
        return checked

    def compact(
        self, ref: SessionRef = None, *, model: str | Model | None = None
    ) -> Compacted | None:
        """Summarise the session's older exchanges into a `compacted` event now (turns do it
        by themselves near the model's window); None when there is too little to summarise."""
        return chat.compact(self._services, self.session(ref), model=model)

    def model(self, spec: str | None = None, *, session: SessionRef = None) -> Model:
        """The model a turn would use: `spec`, else the session's (named or the working
        directory's), its project's, the settings'; else the embedded one. Pass it to
        `send_message` to keep one model across turns (a scripted one goes on with its
        replies)."""
        if session is None and spec is not None:
            return chat.model_named(spec)
        return chat.choose_model(self._scope(session, worktree=False), spec)

    def configure_session(
        self,
        ref: SessionRef = None,
        *,
        mode: str | None = None,
        model: str | None = None,
        budget: Budget | None = None,
    ) -> SessionDetails:
        """Set the session's own mode and model (None leaves them) and, when given, its budget
        (`Budget()`: none); returns the session as it now is."""
        session = self.set_session_defaults(ref, mode=mode, model=model)
        if budget is not None:
            budgets.set_budget(self._scope(session, worktree=False), budget)
        return self.session_details(session)

    def set_budget(
        self,
        ref: SessionRef = None,
        *,
        tokens: int | None = None,
        cost_usd: float | None = None,
        seconds: float | None = None,
    ) -> Budget:
        """The session's budget from now on (all None: no budget). Spending counts from the
        session's start; a turn that reaches it ends as `budget`, the next is refused."""
        budget = Budget(tokens=tokens, cost_usd=cost_usd, seconds=seconds)
        return budgets.set_budget(self._scope(ref, worktree=False), budget)

    def cancel_turn(self, ref: SessionRef = None) -> bool:
        """Ask the turn running in the session, in this process or another, to stop (within
        about half a second); False when no turn is running."""
        return chat.cancel_turn(self._services, self.session(ref))

    def chat_session(
        self,
        ref: str | None = None,
        *,
        project: str | None = None,
        first_message: str | None = None,
        new: bool = False,
        mode: str | None = None,
        model: str | None = None,
    ) -> Session:
        """The session a chat continues: the one named, else the one the working directory
        means, else a new one in that project (always a new one with `new`). The `mode` and
        `model` the chat will use are checked first: a bad one creates nothing."""
        _, checked = sessions.check_defaults(mode, model)
        return sessions.session_for_chat(
            self._services,
            self._where(),
            key=ref,
            project_key=project,
            first_message=first_message,
            new=new,
            model=checked,
        )

    # -- indexed repository context ---------------------------------------------------------

    def index(
        self,
        *,
        session: SessionRef = None,
        project: ProjectRef = None,
        progress: Progress | None = None,
        count_ignored: bool = False,
    ) -> IndexReport:
        """Index the main branch of the project (named, else the working directory's), or the
        working state of `session` when one is named (`count_ignored`: also count the files
        `.gitignore` keeps out, which walks the worktree). Searching indexes what it needs by
        itself; `gc` collects what no view uses."""
        if session is None:
            found = self.project(project)
            return search.project_view(self._services, found, progress=progress)
        target = self._scope(session)
        return search.session_view(target, progress=progress, count_ignored=count_ignored)

    def collect_index_garbage(self) -> int:
        """Remove indexed contents no view or document uses; returns how many."""
        return search.collect_garbage(self._services)

    def _target(self, session: SessionRef, project: ProjectRef) -> scope.SessionScope | Project:
        """A query's target: the project's main branch when only a project is named, else the
        session the working directory means, else (its project has none) that project's main."""
        if project is not None and session is None:
            return self.project(project)
        if session is not None:
            return self._scope(session)
        found = resolve.session_in(self._services, self._where())
        if found is None:
            return self.project(None)
        return scope.open_scope(self._services, found)

    def search(
        self,
        query: str,
        *,
        session: SessionRef = None,
        project: ProjectRef = None,
        regex: bool = False,
        path_glob: str | None = None,
        language: str | None = None,
        limit: int | None = 20,
    ) -> SearchResults:
        """Search a session's files (recorded as a context reference) or a project's main.
        At most `limit` hits (None: all); `capped` on the result says whether there are more."""
        options: dict[str, Any] = {
            "regex": regex,
            "path_glob": path_glob,
            "language": language,
            "limit": limit,
        }
        target = self._target(session, project)
        if isinstance(target, Project):
            return search.search_main(self._services, target, query, **options)
        return search.search_session(target, query, **options)

    def definitions(
        self, name: str, *, session: SessionRef = None, project: ProjectRef = None
    ) -> list[Symbol]:
        """Where `name` is defined: in a session (recorded), or on a project's main."""
        target = self._target(session, project)
        if isinstance(target, Project):
            return search.main_definitions(self._services, target, name)
        return search.session_definitions(target, name)

    def references(
        self,
        name: str,
        *,
        session: SessionRef = None,
        project: ProjectRef = None,
        limit: int | None = 200,
    ) -> ReferenceResults:
        """Uses of `name` by name, in a session (recorded) or on a project's main; at most
        `limit` (None: all), `capped` on the result says whether there are more."""
        target = self._target(session, project)
        if isinstance(target, Project):
            return search.main_references(self._services, target, name, limit=limit)
        return search.session_references(target, name, limit=limit)

    def add_document(self, path: str | Path, *, project: ProjectRef = None) -> Document:
        return search.add_document(self._services, self.project(project), Path(path))

    def documents(self, project: ProjectRef = None) -> list[Document]:
        return search.list_documents(self._services, self.project(project))

    def remove_document(self, key: str, *, project: ProjectRef = None) -> Document:
        return search.remove_document(self._services, self.project(project), key)

    # -- lifecycle: the pool, disk, gc -------------------------------------------------------

    def pool(self, project: ProjectRef = None) -> list[PoolSlot]:
        """The project's ready worktrees (at the tip of main when current)."""
        return pool.slots(self._services, self.project(project))

    def refill_pool(self, project: ProjectRef = None) -> list[PoolSlot]:
        """Bring the project's pool to its size at the tip of main now, in this process (it is
        otherwise done in the background); returns the ready worktrees."""
        found = self.project(project)
        pool.refill(self._services, found)
        return pool.slots(self._services, found)

    def disk_usage(self, project: ProjectRef = None) -> DiskUsage:
        """Disk used by each project's worktrees (sessions and pool), the index and the
        database, measured now; all projects unless one is named."""
        chosen = self.project(project) if project is not None else None
        return lifecycle.disk_usage(self._services, chosen)

    def gc(
        self,
        *,
        idle: str | timedelta = "7d",
        dry_run: bool = False,
        project: ProjectRef = None,
    ) -> GcReport:
        """Evict the worktrees of sessions idle for `idle` (restored on next use), remove
        those of archived and merged sessions and stale pooled ones, collect the index;
        nothing outside the data directory, no branch. `dry_run` changes nothing."""
        span = idle if isinstance(idle, timedelta) else lifecycle.parse_idle(idle)
        chosen = self.project(project) if project is not None else None
        return lifecycle.collect(self._services, idle=span, dry_run=dry_run, project=chosen)

    # -- checkpoints and history ------------------------------------------------------------

    def checkpoint(self, ref: SessionRef = None, message: str = "checkpoint") -> Checkpoint | None:
        return scope.take_checkpoint(self._scope(ref), message)

    def checkpoints(self, ref: SessionRef = None) -> list[CheckpointInfo]:
        return history.list_checkpoints(self._services, self.session(ref))

    def diff(self, ref: SessionRef = None, *, against: str = "base") -> str:
        return history.session_diff(self._scope(ref), against)

    def revert(self, ref: SessionRef = None, *, to: str) -> Reverted:
        return history.revert(self._scope(ref), to)

    def events(
        self, ref: SessionRef = None, *, kinds: Sequence[str] | None = None, after_seq: int = 0
    ) -> list[Event]:
        return list(self.iter_events(ref, kinds=kinds, after_seq=after_seq))

    def iter_events(
        self,
        ref: SessionRef = None,
        *,
        kinds: Sequence[str] | None = None,
        after_seq: int = 0,
        follow: bool = False,
        stop_after: float | None = None,
    ) -> Iterator[Event]:
        """The session's events, streamed (memory stays bounded on long sessions); with
        `follow`, then those any process appends later, until `stop_after` seconds pass."""
        query = history.LogQuery(_kinds(kinds), after_seq, follow, stop_after)
        return history.stream_events(self._services, self._looked_at(ref), query)

    def event_dicts(
        self,
        ref: SessionRef = None,
        *,
        kinds: Sequence[str] | None = None,
        after_seq: int = 0,
        follow: bool = False,
        stop_after: float | None = None,
    ) -> Iterator[dict[str, Any]]:
        """`iter_events` as JSON-ready dicts (`Event.to_json_dict()`), built without models."""
        query = history.LogQuery(_kinds(kinds), after_seq, follow, stop_after)
        return history.stream_event_dicts(self._services, self._looked_at(ref), query)

    def recent_events(self, ref: SessionRef = None, limit: int = 30) -> list[Event]:
        """The newest `limit` events of the session, oldest first."""
        return self._services.store.tail_events(self.session(ref).id, limit=limit)

    def event_lines(
        self,
        ref: SessionRef = None,
        *,
        kinds: Sequence[str] | None = None,
        after_seq: int = 0,
        follow: bool = False,
        stop_after: float | None = None,
    ) -> Iterator[str]:
        """`iter_events` as lines of JSON (each `Event.to_json_dict()` once parsed), streamed
        with the stored payloads passed through unparsed: the fast way to export a log."""
        query = history.LogQuery(_kinds(kinds), after_seq, follow, stop_after)
        return history.stream_event_lines(self._services, self._looked_at(ref), query)

    def follow(
        self,
        ref: SessionRef = None,
        *,
        kinds: Sequence[str] | None = None,
        after_seq: int | None = None,
        stop_after: float | None = None,
    ) -> Iterator[Event]:
        """Only the events appended from now (or after `after_seq`), by any process."""
        session = self.session(ref)
        start = self._services.store.last_seq(session.id) if after_seq is None else after_seq
        return self.iter_events(
            session, kinds=kinds, after_seq=start, follow=True, stop_after=stop_after
        )

    # -- proposals, review and merge --------------------------------------------------------

    def propose(
        self,
        session: SessionRef = None,
        *,
        title: str | None = None,
        target: str | None = None,
        push: bool = False,
        host: str | None = None,
    ) -> Proposal:
        """Propose the session's work for merging into main (or `target`): its open proposal
        brought up to date, else a new one with a description written from its history. With
        `push` its branch goes to the project's remote; with `host` (`github`, `gitlab`) a
        pull request is opened there too (token from GITHUB_TOKEN / GITLAB_TOKEN)."""
        return proposing.propose(
            self._services, self.session(session), title=title, target=target, push=push, host=host
        )

    def proposals(
        self,
        project: ProjectRef = None,
        *,
        include_finished: bool = False,
        all_projects: bool = False,
    ) -> list[Proposal]:
        """The project's proposals (open ones only unless `include_finished`), newest first."""
        chosen = None if all_projects else self.project(project)
        return proposing.list_proposals(self._services, chosen, include_finished=include_finished)

    def proposal(self, ref: ProposalRef, *, project: ProjectRef = None) -> ProposalDetails:
        """A proposal, up to date with its session, with its reviews, comments, check runs and
        what its merge still lacks."""
        return proposing.details(self._proposal_scope(ref, project))

    def review(self, ref: ProposalRef, *, project: ProjectRef = None) -> ReviewView:
        """The proposal's diff, each hunk with the turn, prompt and tool call that wrote it."""
        return reviewing.review(self._proposal_scope(ref, project))

    def approve(
        self,
        ref: ProposalRef,
        *,
        message: str = "",
        reviewer: str | None = None,
        project: ProjectRef = None,
    ) -> ProposalDetails:
        """Approve the proposal's current head (a later checkpoint makes it stale)."""
        chosen = self._proposal_scope(ref, project)
        return proposing.add_review(chosen, "approved", message, reviewer)

    def request_changes(
        self,
        ref: ProposalRef,
        message: str,
        *,
        reviewer: str | None = None,
        project: ProjectRef = None,
    ) -> ProposalDetails:
        """Request changes: the merge is refused until this reviewer approves."""
        chosen = self._proposal_scope(ref, project)
        return proposing.add_review(chosen, "changes_requested", message, reviewer)

    def comment(
        self,
        ref: ProposalRef,
        path: str,
        line: int,
        text: str,
        *,
        reviewer: str | None = None,
        project: ProjectRef = None,
    ) -> ReviewComment:
        """Comment on line `line` of `path` as the proposal's head has it."""
        chosen = self._proposal_scope(ref, project)
        return proposing.add_comment(chosen, path, line, text, reviewer)

    def address_request(self, ref: ProposalRef, *, project: ProjectRef = None) -> AddressRequest:
        """The message `address` sends to the session's agent (for a front-end that runs the
        turn itself with `send_message`)."""
        return address.address_request(self._proposal_scope(ref, project))

    def address(
        self,
        ref: ProposalRef,
        *,
        model: str | Model | None = None,
        mode: str | None = None,
        approver: Approver | None = None,
        hooks: TurnHooks | None = None,
        cancel: threading.Event | None = None,
        max_steps: int | None = None,
        project: ProjectRef = None,
    ) -> TurnResult:
        """One agent turn on the proposal's open review comments, each with its code."""
        return address.address(
            self._proposal_scope(ref, project),
            model=model,
            mode=mode,
            approver=approver,
            hooks=hooks,
            cancel=cancel,
            max_steps=max_steps,
        )

    def check_proposal(self, ref: ProposalRef, *, project: ProjectRef = None) -> list[CheckRun]:
        """Run the policy's required checks now on what merging the proposal would give."""
        return merging.check(self._services, self._proposal_scope(ref, project).proposal)

    def merge(
        self, ref: ProposalRef, *, strategy: str | None = None, project: ProjectRef = None
    ) -> MergeOutcome:
        """Merge the proposal into its target under the project's policy (strategy: the
        policy's unless given). Refused with the reason, changing nothing, when the policy is
        not met, a check fails, it conflicts, or the target's checkout has uncommitted
        changes."""
        chosen = self._proposal_scope(ref, project).proposal
        return merging.merge(self._services, chosen, strategy)

    def close_proposal(
        self, ref: ProposalRef, *, reason: str = "", project: ProjectRef = None
    ) -> Proposal:
        return proposing.close(self._proposal_scope(ref, project), reason)

    def conflicts(self, project: ProjectRef = None) -> RadarReport:
        """The conflict radar: live sessions touching the same files, definitions or lines as
        each other and as main now, with a suggested merge order."""
        return radar.radar(self._services, self.project(project))

    def policy(self, project: ProjectRef = None) -> ApprovalPolicy:
        return self.project(project).config.policy

    def set_policy(
        self,
        project: ProjectRef = None,
        *,
        required_approvals: int | None = None,
        required_checks: list[str] | None = None,
        merge_strategy: str | None = None,
        protected_branches: list[str] | None = None,
        delete_branch: bool | None = None,
        auto_propose: bool | None = None,
    ) -> ApprovalPolicy:
        """Change the project's approval policy (None leaves a setting as it is)."""
        changes = policies.PolicyChanges(
            required_approvals=required_approvals,
            required_checks=required_checks,
            merge_strategy=merge_strategy,
            protected_branches=protected_branches,
            delete_branch=delete_branch,
            auto_propose=auto_propose,
        )
        return policies.set_policy(self._services, self.project(project), changes)

    def _proposal_scope(self, ref: ProposalRef, project: ProjectRef) -> proposing.ProposalScope:
        if isinstance(ref, Proposal):
            found = self._services.store.proposals.get(ref.id)
            if found is None:
                raise NotFound(f"no proposal {ref.id}; `proposal list` shows them")
        else:
            found = proposing.find_proposal(self._services, str(ref), lambda: self.project(project))
        return proposing.open_proposal_scope(self._services, found)


def _named(key: str, what: str) -> str:
    if not key.strip():
        raise InvalidInput(f"the {what} name is empty; give its name or id, or leave it out")
    return key


def _kinds(kinds: Sequence[str] | None) -> Sequence[str] | None:
    unknown = [k for k in kinds or () if k not in EVENT_KINDS]
    if unknown:
        raise InvalidInput(f"unknown kind(s) {unknown}; known: {', '.join(EVENT_KINDS)}")
    return kinds
