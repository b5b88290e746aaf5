"""Turns run in the background (for a server): started by one request, answered by others.

- `BackgroundTurns.start` runs `chat.send_message` on a thread of its own and returns once the
  turn has really begun (its first event is committed), so that a refusal (the session is busy,
  archived, the model unknown) is the caller's error, not a lost thread's.
- `ApprovalBroker` is the approver of those turns: a request the policy asks about waits (the
  `approval_requested` event is recorded first, by the agent) until someone answers it through
  `answer`, the turn is cancelled, or `APPROVAL_WAIT_S` passes (then it is refused, and the
  model is told why).
- `LiveHub` carries what is shown live but never stored as it is: the model's answer and
  reasoning, token by token (already redacted by `chat.RedactedHooks`). The final messages are
  recorded as events; the deltas are only a view of them being written.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from branchwork.agent import Answer, Approver, TurnHooks
from branchwork.domain.errors import BranchworkError, Conflict, InvalidInput, NotFound
from branchwork.domain.events import ApprovalRequested, Event
from branchwork.domain.models import Session
from branchwork.providers import Model, names_a_file
from branchwork.service import chat
from branchwork.service.base import Services
from branchwork.service.sessions import check_defaults
from branchwork.settings import Settings

_log = logging.getLogger(__name__)

APPROVAL_WAIT_S = 3600.0  # an unanswered request is refused after an hour
START_WAIT_S = 60.0  # how long `start` waits for the turn's first event
CANCEL_CHECK_S = 0.2
Channel = Literal["text", "reasoning", "step"]


def network_model(settings: Settings, spec: str | None) -> str | None:
    """`spec` unless its provider would read a file of the server (see `network_model` of the
    facade) and `settings.api_file_models` does not allow it."""
    if spec is None or settings.api_file_models or not names_a_file(spec):
        return spec
    raise InvalidInput(
        f"model {spec!r} names a file on the server; choose a named model "
        "(e.g. local:smollm2, openai:gpt-4o-mini) or leave it to the project's default"
    )


@dataclass(frozen=True)
class LiveUpdate:
    """Text shown live before it is recorded: a model's answer (`text`) or reasoning, a piece
    at a time, or the number of the step the model is being asked for (`step`)."""

    session_id: str
    channel: Channel
    text: str


LiveCallback = Callable[[LiveUpdate], None]


class LiveHub:
    """Subscribers of live updates, per session (or of every session)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str | None, list[LiveCallback]] = {}

    def subscribe(self, session_id: str | None, callback: LiveCallback) -> Callable[[], None]:
        with self._lock:
            self._subscribers.setdefault(session_id, []).append(callback)

        def stop() -> None:
            with self._lock:
                self._subscribers.get(session_id, []).remove(callback)

        return stop

    def publish(self, update: LiveUpdate) -> None:
        with self._lock:
            callbacks = [
                *self._subscribers.get(update.session_id, ()),
                *self._subscribers.get(None, ()),
            ]
        for callback in callbacks:
            try:
                callback(update)
            except Exception:
                _log.exception("a live subscriber of session %s failed", update.session_id)


@dataclass
class _Pending:
    session_id: str
    request: ApprovalRequested
    answered: threading.Event = field(default_factory=threading.Event)
    answer: Answer | None = None


class ApprovalBroker:
    """Approval requests of this process's background turns, waiting for a person."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}

    def approver(self, session_id: str, cancel: threading.Event) -> Approver:
        def ask(request: ApprovalRequested) -> Answer:
            pending = _Pending(session_id, request)
            with self._lock:
                self._pending[request.request_id] = pending
            try:
                return self._wait(pending, cancel)
            finally:
                with self._lock:
                    self._pending.pop(request.request_id, None)

        return ask

    @staticmethod
    def _wait(pending: _Pending, cancel: threading.Event) -> Answer:
        waited = 0.0
        while waited < APPROVAL_WAIT_S:
            if pending.answered.wait(CANCEL_CHECK_S):
                assert pending.answer is not None
                return pending.answer
            if cancel.is_set():
                return Answer(False, "the turn was cancelled", by="system")
            waited += CANCEL_CHECK_S
        return Answer(False, f"no one answered within {APPROVAL_WAIT_S:.0f} s", by="system")

    def answer(self, session_id: str, request_id: str, *, approved: bool, reason: str) -> None:
        """A person's answer to a waiting request of the session; NotFound when none waits
        here."""
        with self._lock:
            pending = self._pending.get(request_id)
            if pending is None or pending.session_id != session_id or pending.answered.is_set():
                raise NotFound(
                    f"no approval request {request_id!r} is waiting in session "
                    f"{session_id[-8:].lower()} on this server; it was answered already, its "
                    "turn ended, or the turn runs in another process (answer it there)"
                )
            pending.answer = Answer(approved, reason, by="user")
            pending.answered.set()

    def waiting(self, session_id: str) -> list[ApprovalRequested]:
        with self._lock:
            return [p.request for p in self._pending.values() if p.session_id == session_id]


@dataclass(frozen=True)
class TurnTicket:
    """A turn started in the background: its session, and the seq of its first event."""

    session_id: str
    first_seq: int


@dataclass
class _Start:
    ready: threading.Event = field(default_factory=threading.Event)
    first_seq: int = 0
    error: BaseException | None = None

    def on_event(self, event: Event) -> None:
        if not self.ready.is_set():
            self.first_seq = event.seq
            self.ready.set()


class BackgroundTurns:
    """The agent turns this process runs on its own threads, one per session at most."""

    def __init__(self, services: Services, hub: LiveHub, broker: ApprovalBroker) -> None:
        self._services = services
        self._hub = hub
        self._broker = broker
        self._lock = threading.Lock()
        self._running: dict[str, tuple[threading.Thread, threading.Event]] = {}

    def start(
        self,
        session: Session,
        text: str,
        *,
        model: str | Model | None = None,
        mode: str | None = None,
        max_steps: int | None = None,
    ) -> TurnTicket:
        """Start a turn on `text`; returns once it has begun, or raises why it could not."""
        check_defaults(mode, None)
        cancel = threading.Event()
        start = _Start()
        args = (session, text, model, mode, max_steps, cancel, start)
        thread = threading.Thread(target=self._run, args=args, daemon=True)
        with self._lock:
            if session.id in self._running:
                raise _busy(session)
            self._running[session.id] = (thread, cancel)
        thread.start()
        if not start.ready.wait(START_WAIT_S):
            raise Conflict(f"the turn in {session.short_id} did not start; see `log` for why")
        if start.error is not None:
            raise start.error
        return TurnTicket(session.id, start.first_seq)

    def _run(
        self,
        session: Session,
        text: str,
        model: str | Model | None,
        mode: str | None,
        max_steps: int | None,
        cancel: threading.Event,
        start: _Start,
    ) -> None:
        hooks = self._hooks(session.id, start)
        try:
            chat.send_message(
                self._services,
                session,
                text,
                model=model,
                mode=mode,
                approver=self._broker.approver(session.id, cancel),
                hooks=hooks,
                cancel=cancel,
                max_steps=max_steps,
            )
        except BranchworkError as exc:
            start.error = exc
        except Exception as exc:
            _log.exception("the background turn in session %s failed", session.id)
            start.error = exc
        finally:
            start.ready.set()
            with self._lock:
                self._running.pop(session.id, None)

    def _hooks(self, session_id: str, start: _Start) -> TurnHooks:
        def live(channel: Channel) -> Callable[[str], None]:
            return lambda text: self._hub.publish(LiveUpdate(session_id, channel, text))

        step = live("step")
        return TurnHooks(
            on_event=start.on_event,
            on_text=live("text"),
            on_reasoning=live("reasoning"),
            on_step=lambda n: step(str(n)),
        )

    def running(self, session_id: str) -> bool:
        with self._lock:
            return session_id in self._running

    def shutdown(self, wait_s: float = 10.0) -> None:
        """Cancel every running turn and wait for them to record how they ended."""
        with self._lock:
            running = list(self._running.values())
        for _, cancel in running:
            cancel.set()
        for thread, _ in running:
            thread.join(wait_s)


def _busy(session: Session) -> Conflict:
    return Conflict(
        f"session {session.short_id} is busy with another turn; wait for it, or cancel it "
        f"(POST /api/sessions/{session.id}/cancel, or `branchwork cancel {session.short_id}`)"
    )
