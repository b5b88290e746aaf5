"""Conversations: send a message to the session's agent, one turn at a time per session."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from branchwork.agent import (
    NON_INTERACTIVE_REFUSAL,
    Approver,
    TurnHooks,
    TurnResult,
    TurnSettings,
    run_turn,
)
from branchwork.domain.errors import TurnInProgress
from branchwork.domain.ids import new_id
from branchwork.domain.models import ActionMode, Project, Session
from branchwork.providers import Model, resolve_model
from branchwork.sandbox.liveness import process_is_gone, this_host
from branchwork.service.agent_port import ServiceSessionPort
from branchwork.service.commands import close_dead_commands
from branchwork.service.context import ServiceContext
from branchwork.service.projects import get_project, resolve_project
from branchwork.service.sessions import (
    CURRENT_KEY,
    ensure_worktree,
    find_session,
    new_session,
    switch_session,
)

LEASE_TTL = timedelta(seconds=30)
CANCEL_POLL_S = 0.5
DEFAULT_CONTEXT_TOKENS = 24_000


def choose_model(
    ctx: ServiceContext, session: Session, project: Project, spec: str | None
) -> Model:
    """`--model`, else the session's, else the project's, else BRANCHWORK_MODEL / settings,
    else the embedded local model."""
    chosen = spec or session.model or project.config.model or ctx.settings.model
    return resolve_model(chosen)


def send_message(
    ctx: ServiceContext,
    session: Session,
    text: str,
    *,
    model: str | Model | None = None,
    mode: ActionMode | None = None,
    approver: Approver | None = None,
    hooks: TurnHooks | None = None,
    cancel: threading.Event | None = None,
    max_steps: int | None = None,
) -> TurnResult:
    """Run one agent turn on `text` in the session; refused while another turn runs."""
    session = ensure_worktree(ctx, session)
    project = get_project(ctx, session.project_id)
    cancel = cancel or threading.Event()
    with turn_lease(ctx, session, cancel):
        close_dead_commands(ctx, session)
        chosen = (
            model
            if model is not None and not isinstance(model, str)
            else choose_model(ctx, session, project, model)
        )
        settings = TurnSettings(
            mode=mode or session.mode or project.config.mode,
            max_steps=max_steps or TurnSettings.max_steps,
            context_tokens=int(getattr(chosen, "context_tokens", DEFAULT_CONTEXT_TOKENS)),
            dangerous_patterns=tuple(project.config.dangerous_patterns),
        )
        return run_turn(
            ServiceSessionPort(ctx, session),
            chosen,
            text,
            settings=settings,
            approver=approver or NON_INTERACTIVE_REFUSAL,
            hooks=hooks,
            cancel=cancel,
        )


@contextmanager
def turn_lease(ctx: ServiceContext, session: Session, cancel: threading.Event) -> Iterator[None]:
    """Hold the session's turn lease for the duration. In the background the lease is renewed
    and a cancel requested from any process (`cancel_turn`) sets `cancel`."""
    holder = new_id()
    _acquire(ctx, session, holder)
    stop = threading.Event()
    args = (ctx, session.id, holder, stop, cancel)
    beat = threading.Thread(target=_heartbeat, args=args, daemon=True)
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join(timeout=5)
        ctx.store.release_lease(session.id, holder)


def _acquire(ctx: ServiceContext, session: Session, holder: str) -> None:
    current = _try_acquire(ctx, session, holder)
    if current is not None and process_is_gone(int(current["pid"]), current["host"]):
        ctx.store.release_lease(session.id, current["holder"])
        current = _try_acquire(ctx, session, holder)
    if current is not None:
        raise TurnInProgress(
            f"session {session.short_id} is busy with another turn (process {current['pid']} on "
            f"{current['host']}); wait for it, or stop it with `branchwork cancel "
            f"{session.short_id}`"
        )


def _try_acquire(ctx: ServiceContext, session: Session, holder: str) -> dict[str, Any] | None:
    return ctx.store.acquire_lease(
        session.id, holder, pid=os.getpid(), host=this_host(), ttl=LEASE_TTL
    )


def _heartbeat(
    ctx: ServiceContext,
    session_id: str,
    holder: str,
    stop: threading.Event,
    cancel: threading.Event,
) -> None:
    renew_every = LEASE_TTL.total_seconds() / 3
    last_renewal = time.monotonic()
    while not stop.wait(CANCEL_POLL_S):
        if not cancel.is_set() and ctx.store.cancel_requested(session_id, holder):
            cancel.set()
        if time.monotonic() - last_renewal >= renew_every:
            ctx.store.renew_lease(session_id, holder, LEASE_TTL)
            last_renewal = time.monotonic()


def cancel_turn(ctx: ServiceContext, session: Session) -> bool:
    """Ask the turn running in the session (in any process) to stop; False if none runs."""
    return ctx.store.request_cancel(session.id)


def session_for_chat(
    ctx: ServiceContext,
    key: str | None,
    *,
    project_key: str | None,
    cwd: Path,
    first_message: str | None,
    new: bool = False,
) -> Session:
    """The named session, else the current one, else a new session titled from the message."""
    if key and not new:
        return find_session(ctx, key)
    current = ctx.store.get_state(CURRENT_KEY)
    if current and not new and not project_key:
        return ctx.store.get_session(current)
    project = resolve_project(ctx, project_key, cwd)
    session = new_session(ctx, project, title=title_from(first_message or "chat"))
    return switch_session(ctx, session)


def title_from(message: str) -> str:
    first = message.strip().splitlines()[0] if message.strip() else "chat"
    return first[:60].rstrip() or "chat"
