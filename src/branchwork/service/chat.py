"""Conversations: send a message to the session's agent, one turn at a time per session."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

from branchwork.agent import (
    NON_INTERACTIVE_REFUSAL,
    Approver,
    TurnHooks,
    TurnResult,
    TurnSettings,
    compact_now,
    run_turn,
)
from branchwork.domain.errors import TurnInProgress
from branchwork.domain.events import Compacted, Event
from branchwork.domain.ids import new_id
from branchwork.domain.models import ActionMode, Session
from branchwork.domain.text import require_utf8
from branchwork.providers import Model, resolve_model
from branchwork.providers.prices import load_prices
from branchwork.sandbox.liveness import process_is_gone, this_host
from branchwork.service import trials
from branchwork.service.agent_port import ServiceSessionPort
from branchwork.service.base import Services
from branchwork.service.budgets import turn_limits
from branchwork.service.proposals import after_turn
from branchwork.service.scope import SessionScope, open_scope
from branchwork.service.sessions import check_defaults

LEASE_TTL = timedelta(seconds=30)
CANCEL_POLL_S = 0.5
DEFAULT_CONTEXT_TOKENS = 24_000
# What a small model can use to good effect; the rest (edits, commands) it only gets wrong.
SMALL_MODEL_TOOLS = ("list_files", "read_file", "search", "finish")


def choose_model(scope: SessionScope, spec: str | Model | None) -> Model:
    """`spec` (a model or `provider:model`), else the session's, else the project's, else
    BRANCHWORK_MODEL / settings, else the embedded local model."""
    if spec is not None and not isinstance(spec, str):
        return spec
    settings = scope.services.settings
    chosen = spec or scope.session.model or scope.project.config.model or settings.model
    return resolve_model(chosen)


def model_named(spec: str) -> Model:
    """The model `spec` names (built, not loaded)."""
    return resolve_model(spec)


def send_message(
    services: Services,
    session: Session,
    text: str,
    *,
    model: str | Model | None = None,
    mode: str | None = None,
    approver: Approver | None = None,
    hooks: TurnHooks | None = None,
    cancel: threading.Event | None = None,
    max_steps: int | None = None,
) -> TurnResult:
    """Run one agent turn on `text` in the session; refused while another turn runs. Text
    streamed to `hooks` is redacted like everything recorded."""
    checked_mode, _ = check_defaults(mode, None)
    require_utf8(text, "the message", "Branchwork records messages as UTF-8: write it so")
    scope = open_scope(services, session)
    cancel = cancel or threading.Event()
    with turn_lease(services, session, cancel), trial_turn(services, session) as outcome:
        chosen = choose_model(scope, model)
        settings = turn_settings(scope, chosen, checked_mode, max_steps)
        live = RedactedHooks(scope, hooks or TurnHooks())
        try:
            result = run_turn(
                ServiceSessionPort(scope),
                chosen,
                text,
                settings=settings,
                approver=approver or NON_INTERACTIVE_REFUSAL,
                hooks=live.hooks(),
                cancel=cancel,
            )
        finally:
            live.flush()
        outcome.append((result.status, result.detail))
        after_turn(scope, changed=result.checkpoint is not None)  # its proposal follows
    redact = scope.redactor.redact  # what the caller gets is redacted like what is recorded
    return replace(result, text=redact(result.text), detail=redact(result.detail))


@contextmanager
def trial_turn(services: Services, session: Session) -> Iterator[list[tuple[str, str]]]:
    """When the session is a task's trial, its status follows the turn: running, then what the
    turn's outcome (appended to the list yielded) or error says."""
    outcome: list[tuple[str, str]] = []
    trials.before_turn(services, session)
    try:
        yield outcome
    except BaseException as exc:
        trials.after_turn(services, session, "error", str(exc).splitlines()[0] if str(exc) else "")
        raise
    status, detail = outcome[-1] if outcome else ("error", "")
    trials.after_turn(services, session, status, detail)


def turn_settings(
    scope: SessionScope, model: Model, mode: ActionMode | None, max_steps: int | None
) -> TurnSettings:
    """How the turn runs: the session's (or project's) mode, the limits and budgets, the
    thresholds of the settings, the price table. A small model (the embedded one) is offered
    only the tools it can use, and must call one at its first step."""
    settings, config = scope.services.settings, scope.project.config
    small = bool(getattr(model, "small", False))
    return TurnSettings(
        mode=mode or scope.session.mode or config.mode,
        limits=turn_limits(scope, max_steps or settings.max_steps),
        context_tokens=int(getattr(model, "context_tokens", DEFAULT_CONTEXT_TOKENS)),
        dangerous_patterns=tuple(config.dangerous_patterns),
        stuck_repeats=settings.stuck_repeats,
        compact_at=settings.compact_at,
        tools=SMALL_MODEL_TOOLS if small else None,
        first_step_tool=small,
        evidence_in_summary=small,
        prices=load_prices(settings.prices_file),
    )


class RedactedHooks:
    """A turn's live views, with streamed text redacted before a front-end sees it. A secret
    split across chunks is held back until it can be decided; what is held is let out before
    the next event (the model's response has ended by then) and at the end of the turn."""

    def __init__(self, scope: SessionScope, hooks: TurnHooks) -> None:
        self._hooks = hooks
        self._text = scope.redactor.stream()
        self._reasoning = scope.redactor.stream()

    def hooks(self) -> TurnHooks:
        given = self._hooks
        return TurnHooks(
            on_event=self._on_event if given.on_event or given.on_text else None,
            on_text=self._on_text if given.on_text else None,
            on_reasoning=self._on_reasoning if given.on_reasoning else None,
            on_output=given.on_output,  # command output is redacted by the runner
            on_step=given.on_step,
        )

    def _on_text(self, chunk: str) -> None:
        self._emit(self._hooks.on_text, self._text.feed(chunk))

    def _on_reasoning(self, chunk: str) -> None:
        self._emit(self._hooks.on_reasoning, self._reasoning.feed(chunk))

    def _on_event(self, event: Event) -> None:
        self.flush()
        if self._hooks.on_event:
            self._hooks.on_event(event)

    def flush(self) -> None:
        self._emit(self._hooks.on_text, self._text.flush())
        self._emit(self._hooks.on_reasoning, self._reasoning.flush())

    @staticmethod
    def _emit(hook: Callable[[str], None] | None, text: str) -> None:
        if hook is not None and text:
            hook(text)


@contextmanager
def turn_lease(services: Services, session: Session, cancel: threading.Event) -> Iterator[None]:
    """Hold the session's turn lease for the duration. In the background the lease is renewed
    and a cancel requested from any process (`cancel_turn`) sets `cancel`."""
    holder = new_id()
    _acquire(services, session, holder)
    stop = threading.Event()
    args = (services, session.id, holder, stop, cancel)
    beat = threading.Thread(target=_heartbeat, args=args, daemon=True)
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join(timeout=5)
        services.store.release_lease(session.id, holder)


def _acquire(services: Services, session: Session, holder: str) -> None:
    current = _try_acquire(services, session, holder)
    if current is not None and process_is_gone(int(current["pid"]), current["host"]):
        services.store.release_lease(session.id, current["holder"])
        current = _try_acquire(services, session, holder)
    if current is not None:
        raise TurnInProgress(
            f"session {session.short_id} is busy with another turn (process {current['pid']} on "
            f"{current['host']}); wait for it, or cancel it (`cancel {session.short_id}`)"
        )


def _try_acquire(services: Services, session: Session, holder: str) -> dict[str, Any] | None:
    return services.store.acquire_lease(
        session.id, holder, pid=os.getpid(), host=this_host(), ttl=LEASE_TTL
    )


def _heartbeat(
    services: Services,
    session_id: str,
    holder: str,
    stop: threading.Event,
    cancel: threading.Event,
) -> None:
    renew_every = LEASE_TTL.total_seconds() / 3
    last_renewal = time.monotonic()
    while not stop.wait(CANCEL_POLL_S):
        if not cancel.is_set() and services.store.cancel_requested(session_id, holder):
            cancel.set()
        if time.monotonic() - last_renewal >= renew_every:
            services.store.renew_lease(session_id, holder, LEASE_TTL)
            last_renewal = time.monotonic()


def compact(
    services: Services, session: Session, *, model: str | Model | None = None
) -> Compacted | None:
    """Summarise the session's older exchanges now (`/compact`); None when there is too little
    to summarise. Refused while a turn runs."""
    scope = open_scope(services, session)
    with turn_lease(services, session, threading.Event()):
        chosen = choose_model(scope, model)
        settings = turn_settings(scope, chosen, None, None)
        return compact_now(ServiceSessionPort(scope), chosen, settings)


def cancel_turn(services: Services, session: Session) -> bool:
    """Ask the turn running in the session (in any process) to stop; False if none runs."""
    return services.store.request_cancel(session.id)
