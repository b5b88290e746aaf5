"""Running commands in a session's worktree: streamed, recorded, redacted, checkpointed."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from branchwork.domain.events import (
    Actor,
    Checkpoint,
    CommandFinished,
    CommandOutput,
    CommandStarted,
    Interrupted,
)
from branchwork.domain.ids import new_id
from branchwork.domain.models import Project, Session
from branchwork.domain.replay import replay
from branchwork.sandbox import CommandResult, CommandSpec, make_runner
from branchwork.sandbox.liveness import process_is_gone, this_host
from branchwork.service.context import MODEL_KEY_VARS, ServiceContext
from branchwork.service.projects import command_env, get_project
from branchwork.service.sessions import ensure_worktree

Purpose = Literal["user", "agent", "setup", "check"]
_FLUSH_BYTES = 4096
_FLUSH_SECONDS = 0.25


@dataclass(frozen=True)
class CommandOutcome:
    finished: CommandFinished
    checkpoint: Checkpoint | None = None


@dataclass
class _OutputRecorder:
    """Turns streamed output into `command_output` events, up to the cap (head of the output)."""

    ctx: ServiceContext
    session: Session
    command_id: str
    cap: int
    forward: Callable[[str], None] | None
    _buffer: list[str] = field(default_factory=list)
    _pending: int = 0
    _recorded: int = 0
    _last_flush: float = field(default_factory=time.monotonic)

    def __call__(self, text: str) -> None:
        if self.forward:
            self.forward(text)
        if self._recorded >= self.cap:
            return
        self._buffer.append(text)
        self._pending += len(text)
        if self._pending >= _FLUSH_BYTES or time.monotonic() - self._last_flush > _FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        text = "".join(self._buffer)[: max(0, self.cap - self._recorded)]
        self._buffer, self._pending, self._last_flush = [], 0, time.monotonic()
        if text:
            self._recorded += len(text)
            self.ctx.record(self.session, CommandOutput(command_id=self.command_id, text=text))


def session_env(ctx: ServiceContext, project: Project, session: Session) -> dict[str, str]:
    """The environment of every command of a session."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("BRANCHWORK_") and k not in MODEL_KEY_VARS
    }
    env.update(command_env(ctx, project))
    last_port = session.port + ctx.settings.port_block - 1
    env.update(
        BRANCHWORK_SESSION_ID=session.id,
        BRANCHWORK_BRANCH=session.branch,
        BRANCHWORK_WORKTREE=session.worktree,
        PORT=str(session.port),
        BRANCHWORK_PORT_RANGE=f"{session.port}-{last_port}",
    )
    return env


def run_command(
    ctx: ServiceContext,
    session: Session,
    command: str | Sequence[str],
    *,
    timeout: float | None = None,
    on_output: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
    purpose: Purpose = "user",
    checkpoint: bool = True,
) -> CommandOutcome:
    """Run a shell line (str) or an argv (list) in the session's worktree and record it all."""
    session = ensure_worktree(ctx, session)
    project = get_project(ctx, session.project_id)
    close_dead_commands(ctx, session)
    spec = _spec(ctx, project, session, command, timeout)
    command_id = new_id()
    actor: Actor = "agent" if purpose == "agent" else "user" if purpose == "user" else "system"
    ctx.record(session, _started(spec, command, command_id, purpose), actor)
    recorder = _OutputRecorder(ctx, session, command_id, ctx.settings.output_cap // 2, on_output)
    runner = make_runner(ctx.settings.sandbox, hide=[ctx.home])
    pidfile = _pidfile(ctx, command_id)
    try:
        result = runner.run(
            spec,
            redactor=ctx.redactor(project.id),
            on_output=recorder,
            cancel=cancel,
            on_start=lambda pgid: _write_pidfile(pidfile, pgid),
        )
    finally:
        pidfile.unlink(missing_ok=True)
    recorder.flush()
    finished = _finish(ctx, session, command_id, result)
    saved = None
    if checkpoint:
        from branchwork.service.history import take_checkpoint

        saved = take_checkpoint(ctx, session, f"run: {_display(command)}"[:200], automatic=True)
    return CommandOutcome(finished=finished, checkpoint=saved)


def _spec(
    ctx: ServiceContext,
    project: Project,
    session: Session,
    command: str | Sequence[str],
    timeout: float | None,
) -> CommandSpec:
    shell = command if isinstance(command, str) else None
    argv = None if isinstance(command, str) else list(command)
    return CommandSpec(
        shell=shell,
        argv=argv,
        cwd=Path(session.worktree),
        env=session_env(ctx, project, session),
        timeout_s=timeout or ctx.settings.command_timeout,
        output_cap=ctx.settings.output_cap,
    )


def _display(command: str | Sequence[str]) -> str:
    return command if isinstance(command, str) else shlex.join(command)


def _started(
    spec: CommandSpec, command: str | Sequence[str], command_id: str, purpose: Purpose
) -> CommandStarted:
    return CommandStarted(
        command_id=command_id,
        command=_display(command),
        argv=list(spec.argv) if spec.argv else None,
        cwd=str(spec.cwd),
        timeout_s=spec.timeout_s,
        purpose=purpose,
        pid=os.getpid(),
        host=this_host(),
    )


def _open_commands(ctx: ServiceContext, session: Session) -> list[CommandStarted]:
    kinds = ["command_started", "command_finished", "interrupted"]
    events = ctx.store.events(session.id, kinds=kinds)
    open_ids = set(replay(events).open_commands)
    return [
        e.payload
        for e in events
        if isinstance(e.payload, CommandStarted) and e.payload.command_id in open_ids
    ]


def running_commands(ctx: ServiceContext, session: Session) -> list[str]:
    """The command lines still running in the session (their Branchwork process is alive)."""
    return [p.command for p in _open_commands(ctx, session) if not _runner_is_dead(p)]


def close_dead_commands(ctx: ServiceContext, session: Session) -> list[str]:
    """Record as interrupted the commands whose Branchwork process died before they finished
    (a crash, a kill -9); commands still running elsewhere are left alone."""
    closed = []
    for p in _open_commands(ctx, session):
        if _runner_is_dead(p):
            _kill_orphan(ctx, p.command_id)
            reason = f"`{p.command}` did not finish: the process running it stopped"
            ctx.record(session, Interrupted(reason=reason, call_id=p.command_id))
            closed.append(p.command_id)
    return closed


def _pidfile(ctx: ServiceContext, command_id: str) -> Path:
    return ctx.home / "running" / command_id


def _write_pidfile(path: Path, pgid: int) -> None:
    """Where a command's process group is noted while it runs, so that a later process can
    stop what a crashed Branchwork left running."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(pgid))


def _kill_orphan(ctx: ServiceContext, command_id: str) -> None:
    pidfile = _pidfile(ctx, command_id)
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        os.killpg(int(pidfile.read_text()), signal.SIGKILL)
    pidfile.unlink(missing_ok=True)


def _runner_is_dead(started: CommandStarted) -> bool:
    return process_is_gone(started.pid, started.host)
    if started.pid == os.getpid():
        return False
    try:
        os.kill(started.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _finish(
    ctx: ServiceContext, session: Session, command_id: str, result: CommandResult
) -> CommandFinished:
    blob = None
    try:
        if result.output_bytes:
            blob = ctx.store.put_blob(result.output_path.read_bytes())
    finally:
        result.output_path.unlink(missing_ok=True)
    finished = CommandFinished(
        command_id=command_id,
        status=result.status,
        exit_code=result.exit_code,
        duration_ms=result.duration_ms,
        output_bytes=result.output_bytes,
        output_head=result.head if result.status != "error" else result.error,
        output_tail=result.tail,
        truncated=result.truncated,
        output_blob=blob,
    )
    event = ctx.record(session, finished)
    assert isinstance(event.payload, CommandFinished)
    return event.payload


def command_output(ctx: ServiceContext, finished: CommandFinished) -> str:
    """The full (redacted) output of a finished command, from the blob store."""
    if finished.output_blob is None:
        return finished.output_head + finished.output_tail
    return ctx.store.get_blob(finished.output_blob).decode("utf-8", errors="replace")
