"""The use cases a server needs beyond the CLI's, as part of the `Workspace` facade: turns in
the background with approvals answered by later requests, live views, watching every session's
log, pages of events, export, the browser terminal, and users with their tokens.

`Workspace` inherits them (one facade for every front-end); they live here so that the core
facade stays one screen of use cases. The parts that hold threads (background turns, the
watcher) start on first use and stop with `Workspace.close`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from typing import TYPE_CHECKING

from branchwork._lazy import lazy_module
from branchwork.domain.access import IssuedToken, Principal, User
from branchwork.domain.errors import InvalidInput, NotFound
from branchwork.domain.events import EVENT_KINDS, ApprovalRequested
from branchwork.domain.models import Session
from branchwork.service.base import Services
from branchwork.service.resolve import project_of
from branchwork.service.results import SessionSummary
from branchwork.service.scope import open_scope
from branchwork.service.state import session_state

if TYPE_CHECKING:
    from branchwork.providers import Model
    from branchwork.service import access, export, notify, terminal, turns, watch as watching
else:  # loaded on first use: a CLI command that never serves pays nothing for them
    access = lazy_module("branchwork.service.access")
    export = lazy_module("branchwork.service.export")
    notify = lazy_module("branchwork.service.notify")
    terminal = lazy_module("branchwork.service.terminal")
    turns = lazy_module("branchwork.service.turns")
    watching = lazy_module("branchwork.service.watch")

PAGE_LIMIT = 1000


class ServerUseCases:
    """Mixed into `Workspace`; see the module docstring."""

    _services: Services
    _turns: turns.BackgroundTurns | None = None
    _hub: turns.LiveHub | None = None
    _broker: turns.ApprovalBroker | None = None
    _watcher: watching.Watcher | None = None
    _access: access.Access | None = None

    def session(self, ref: Session | str | None = None) -> Session:
        raise NotImplementedError  # Workspace's

    # -- turns in the background --------------------------------------------------------------

    def _background(self) -> turns.BackgroundTurns:
        if self._turns is None:
            self._hub, self._broker = self._live_hub(), turns.ApprovalBroker()
            self._turns = turns.BackgroundTurns(self._services, self._hub, self._broker)
        return self._turns

    def _live_hub(self) -> turns.LiveHub:
        if self._hub is None:
            self._hub = turns.LiveHub()
        return self._hub

    def start_turn(
        self,
        ref: Session | str | None,
        text: str,
        *,
        model: str | Model | None = None,
        mode: str | None = None,
        max_steps: int | None = None,
    ) -> turns.TurnTicket:
        """Start an agent turn on `text` on a thread of this process and return once it has
        begun. Actions the policy asks about wait for `answer_approval` (an hour at most)."""
        if not text.strip():
            raise InvalidInput("the message is empty; write what the agent should do")
        return self._background().start(
            self.session(ref), text, model=model, mode=mode, max_steps=max_steps
        )

    def network_model(self, spec: str | None) -> str | None:
        """`spec` when a caller over the network may choose it: a named model, never one whose
        provider would read a file of the server (`scripted:PATH`, `local:/path.gguf`: a member
        could make the server read any file it can) unless `api_file_models` allows it."""
        return turns.network_model(self._services.settings, spec)

    def network_models(self, specs: Sequence[str]) -> list[str]:
        """`specs` once each is checked by `network_model` (which raises; it never drops one)."""
        for spec in specs:
            self.network_model(spec)
        return list(specs)

    def answer_approval(
        self, ref: Session | str | None, request_id: str, *, approved: bool, reason: str = ""
    ) -> None:
        """Answer an approval request a background turn of this process waits on."""
        self._background()
        assert self._broker is not None
        session = self.session(ref)
        self._broker.answer(session.id, request_id, approved=approved, reason=reason)

    def waiting_approvals(self, ref: Session | str | None = None) -> list[ApprovalRequested]:
        """The approval requests of the session that this process can answer now."""
        session = self.session(ref)
        return [] if self._broker is None else self._broker.waiting(session.id)

    def observe_live(
        self, callback: Callable[[turns.LiveUpdate], None], *, session: str | None = None
    ) -> Callable[[], None]:
        """Call `callback` with the live text of this process's background turns (a session's,
        or every session's); returns the function that stops it."""
        return self._live_hub().subscribe(session, callback)

    def watch(self, callback: Callable[[watching.SessionMark], None]) -> Callable[[], None]:
        """Call `callback` whenever a session's log grows or its status changes, whichever
        process records it (within `watching.POLL_S`); returns the function that stops it."""
        return self._session_watcher().subscribe(callback)

    def notify_webhook(self, url: str) -> Callable[[], None]:
        """POST a JSON message to `url` when a turn ends, waits for an approval, or a check
        fails, in any session (see `service/notify.py`); returns the function that stops it."""
        return notify.start_webhook(self._services, url, self._session_watcher())

    def _session_watcher(self) -> watching.Watcher:
        if self._watcher is None:
            self._watcher = watching.Watcher(self._services)
        return self._watcher

    # -- reading ------------------------------------------------------------------------------

    def session_summary(self, ref: Session | str | None = None) -> SessionSummary:
        """The session as a list shows it while it works (see `SessionSummary`)."""
        session = self.session(ref)
        state = session_state(self._services.store, session.id)
        busy = state.open_turn is not None or bool(state.open_commands)
        activity = "needs_approval" if state.pending_approvals else "running" if busy else "idle"
        return SessionSummary(
            session=session,
            activity=activity,
            last_turn_status=state.last_turn_status,
            pending_approvals=len(state.pending_approvals),
            last_seq=state.last_seq,
            turns=state.turns,
        )

    def event_page(
        self,
        ref: Session | str | None,
        *,
        after_seq: int = 0,
        limit: int = PAGE_LIMIT,
        kinds: Sequence[str] | None = None,
    ) -> list[tuple[int, str]]:
        """Up to `limit` events after `after_seq`, each as (seq, one line of JSON): the page
        a client reads, resuming from the last seq it has."""
        if not 0 < limit <= PAGE_LIMIT:
            raise InvalidInput(f"limit {limit} is out of range; give 1 to {PAGE_LIMIT}")
        unknown = [k for k in kinds or () if k not in EVENT_KINDS]
        if unknown:
            raise InvalidInput(f"unknown kind(s) {unknown}; known: {', '.join(EVENT_KINDS)}")
        session_id = self.session(ref).id
        lines = self._services.store.iter_event_lines(
            session_id, after_seq=max(0, after_seq), kinds=kinds
        )
        return list(islice(lines, limit))

    def export(self, ref: Session | str | None = None, *, fmt: str = "jsonl") -> Iterator[str]:
        """The session's whole history as JSON lines or one self-contained HTML page, in
        pieces to write one after the other."""
        checked = export.check_format(fmt)
        session = self.session(ref)
        project = project_of(self._services, session)
        return export.export_session(self._services, session, project, checked)

    # -- the browser terminal -----------------------------------------------------------------

    def open_terminal(
        self, ref: Session | str | None, *, user: str, rows: int = 24, cols: int = 80
    ) -> terminal.Terminal:
        """An interactive shell in the session's worktree, confined like its commands; close
        it to record its transcript."""
        scope = open_scope(self._services, self.session(ref))
        return terminal.open_terminal(scope, user, rows=rows, cols=cols)

    # -- users and tokens -----------------------------------------------------------------------

    def _users(self) -> access.Access:
        if self._access is None:
            self._access = access.Access(self._services)
        return self._access

    def add_user(
        self, name: str, *, role: str = "member", project: str | None = None
    ) -> tuple[User, IssuedToken]:
        """A new user with `role` in `project` (every project when None) and their token,
        whose secret is shown only here (the store keeps its hash)."""
        project_id = self._project_id(project)
        return self._users().add_user(name, role, project_id)

    def users(self) -> list[User]:
        return self._users().users()

    def grant(self, user: str, *, role: str | None, project: str | None = None) -> User:
        """Give `user` `role` in `project` (every project when None); `role=None` takes it
        away."""
        return self._users().grant(user, self._project_id(project), role)

    def new_token(self, user: str) -> IssuedToken:
        return self._users().new_token(user)

    def revoke_tokens(self, user: str) -> int:
        return self._users().revoke_tokens(user)

    def authenticate(self, token: str) -> Principal:
        """Who a bearer token acts as; `Unauthenticated` when it cannot be used."""
        return self._users().authenticate(token)

    def exchange_login(self, token: str) -> IssuedToken:
        """A browser token for a one-time login token, which is then used up."""
        return self._users().exchange_login(token)

    def login_token(self, user: str | None = None) -> IssuedToken:
        """A one-time login token (15 minutes) for `user`; None: the single local admin,
        created on first use (`serve --local`)."""
        if user is None:
            return self._users().local_admin()
        return self._users().login_link_token(user)

    def share_session(self, ref: Session | str | None, principal: Principal) -> IssuedToken:
        """A read-only token for this one session, made by someone who may read it."""
        return self._users().share(principal, self.session(ref))

    def revoke_token(self, principal: Principal, token_id: str) -> None:
        self._users().revoke(principal, token_id)

    def _project_id(self, project: str | None) -> str | None:
        if project is None:
            return None
        found = self._services.store.find_project(project)
        if found is None:
            raise NotFound(f"no project {project!r}; `branchwork project list` shows them")
        return found.id

    def _close_server(self) -> None:
        if self._turns is not None:
            self._turns.shutdown()
        if self._watcher is not None:
            self._watcher.close()
