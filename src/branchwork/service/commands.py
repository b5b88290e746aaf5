"""Running commands in a session's worktree: streamed, recorded, redacted, checkpointed."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from branchwork.domain.errors import InvalidInput
from branchwork.domain.events import (
    Actor,
    Checkpoint,
    CommandFinished,
    CommandOutput,
    CommandStarted,
    Note,
)
from branchwork.domain.ids import new_id
from branchwork.domain.models import Project
from branchwork.domain.text import require_utf8
from branchwork.sandbox import (
    CommandResult,
    CommandSpec,
    Limits,
    Runner,
    RunnerChoice,
    choose_runner,
)
from branchwork.sandbox.liveness import this_host
from branchwork.service.base import Services
from branchwork.service.recorder import MODEL_KEY_VARS
from branchwork.service.scope import SessionScope, output_dir, pidfile, take_checkpoint
from branchwork.settings import Settings

Purpose = Literal["user", "agent", "setup", "check"]
SANDBOX_CACHE = "/tmp/.cache"  # noqa: S108 (the sandbox's own private tmpfs)
_FLUSH_BYTES = 4096
_NOT_UTF8 = (
    "Branchwork records commands as UTF-8 text: write it in UTF-8 (a shell can glob an odd name)"
)
_FLUSH_SECONDS = 0.25


@dataclass(frozen=True)
class CommandOutcome:
    """A finished command, and the checkpoint taken after it (None when nothing changed)."""

    finished: CommandFinished
    checkpoint: Checkpoint | None = None


@dataclass
class _OutputRecorder:
    """Turns streamed output into `command_output` events, up to the cap (head of the output)."""

    scope: SessionScope
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
            self.scope.record(CommandOutput(command_id=self.command_id, text=text))


def project_env(services: Services, project: Project) -> dict[str, str]:
    """This process's environment (without Branchwork's own settings and model keys), with the
    project's variables and secrets."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("BRANCHWORK_") and k not in MODEL_KEY_VARS
    }
    env.update(project.env)
    env.update(services.secrets.load(project.id))
    return env


def session_env(scope: SessionScope) -> dict[str, str]:
    """The environment of every command of a session: this process's (without Branchwork's
    own settings and model keys), the project's variables and secrets, the session's port."""
    services, session = scope.services, scope.session
    env = project_env(services, scope.project)
    last_port = session.port + services.settings.port_block - 1
    env.update(
        BRANCHWORK_SESSION_ID=session.id,
        BRANCHWORK_BRANCH=session.branch,
        BRANCHWORK_WORKTREE=session.worktree,
        PORT=str(session.port),
        BRANCHWORK_PORT_RANGE=f"{session.port}-{last_port}",
    )
    return env


def run_command(
    scope: SessionScope,
    command: str | Sequence[str],
    *,
    timeout: float | None = None,
    on_output: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
    purpose: Purpose = "user",
    checkpoint: bool = True,
) -> CommandOutcome:
    """Run a shell line (str) or an argv (list) in the session's worktree and record it all."""
    services = scope.services
    runner, choice = _runner(scope)
    spec = _spec(scope, command, timeout, confined=choice.confined)
    command_id = new_id()
    actor: Actor = "agent" if purpose == "agent" else "user" if purpose == "user" else "system"
    scope.record(_started(spec, command_id, purpose), actor)
    recorder = _OutputRecorder(scope, command_id, services.settings.output_cap // 2, on_output)
    running = pidfile(services, command_id)
    try:
        result = runner.run(
            spec,
            redactor=scope.redactor,
            on_output=recorder,
            cancel=cancel,
            on_start=lambda pgid: _note_pid(running, pgid),
        )
    finally:
        running.unlink(missing_ok=True)
    recorder.flush()
    finished = _finish(scope, command_id, result)
    saved = None
    if checkpoint:
        saved = take_checkpoint(scope, f"run: {spec.display}"[:200], automatic=True)
    return CommandOutcome(finished=finished, checkpoint=saved)


def _runner(scope: SessionScope) -> tuple[Runner, RunnerChoice]:
    """Bubblewrap wherever it works (or as the project asks); running unconfined is recorded
    once per session, with the reason."""
    runner, choice = runner_for(scope.services, scope.project, scope.worktree)
    if not choice.confined:
        _note_unconfined(scope, choice)
    return runner, choice


def runner_for(services: Services, project: Project, worktree: Path) -> tuple[Runner, RunnerChoice]:
    """How the project's commands run in `worktree`: confined to it where the sandbox works."""
    config = project.config
    return choose_runner(
        config.sandbox or services.settings.sandbox,
        network=config.network == "on",
        worktree=worktree,
        git_dirs=[Path(project.path) / ".git"],  # from the registration, not the worktree
        hide=[services.home],
        limits=limits_of(services.settings),
        output_dir=output_dir(services),
        probe_cache=services.home / "sandbox-probe.json",
    )


def _note_unconfined(scope: SessionScope, choice: RunnerChoice) -> None:
    key = f"unconfined_noted:{scope.session.id}"
    store = scope.services.store
    if store.get_state(key) is None:
        scope.record(Note(level="warning", text=f"commands run unconfined: {choice.reason}"))
        store.set_state(key, choice.reason)


def limits_of(settings: Settings) -> Limits:
    mib = 1024 * 1024
    return Limits(
        cpu_seconds=settings.limit_cpu_seconds,
        memory_bytes=settings.limit_memory_mb * mib if settings.limit_memory_mb else None,
        processes=settings.limit_processes,
        file_bytes=settings.limit_file_mb * mib if settings.limit_file_mb else None,
    )


def _spec(
    scope: SessionScope, command: str | Sequence[str], timeout: float | None, *, confined: bool
) -> CommandSpec:
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise InvalidInput(f"timeout {timeout} is not a number of seconds; give seconds > 0")
    for part in [command] if isinstance(command, str) else command:
        require_utf8(part, "the command", _NOT_UTF8)
    settings = scope.services.settings
    env = session_env(scope)
    if confined:  # $HOME is read-only in the sandbox: caches go to its private /tmp
        env.setdefault("XDG_CACHE_HOME", SANDBOX_CACHE)
    return CommandSpec(
        shell=command if isinstance(command, str) else None,
        argv=None if isinstance(command, str) else list(command),
        cwd=scope.worktree,
        env=env,
        timeout_s=timeout or settings.command_timeout,
        output_cap=settings.output_cap,
    )


def _started(spec: CommandSpec, command_id: str, purpose: Purpose) -> CommandStarted:
    return CommandStarted(
        command_id=command_id,
        command=spec.display,
        argv=list(spec.argv) if spec.argv else None,
        cwd=str(spec.cwd),
        timeout_s=spec.timeout_s,
        purpose=purpose,
        pid=os.getpid(),
        host=this_host(),
    )


def _note_pid(path: Path, pgid: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(pgid))


def _finish(scope: SessionScope, command_id: str, result: CommandResult) -> CommandFinished:
    blob = None
    try:
        if result.output_bytes:
            blob = scope.services.store.put_blob(result.output_path.read_bytes())
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
    event = scope.record(finished)
    assert isinstance(event.payload, CommandFinished)
    return event.payload


def command_output(services: Services, finished: CommandFinished) -> str:
    """The full (redacted) output of a finished command, from the blob store."""
    if finished.output_blob is None:
        return finished.output_head + finished.output_tail
    return services.store.get_blob(finished.output_blob).decode("utf-8", errors="replace")


def session_runner(scope: SessionScope) -> tuple[Runner, RunnerChoice]:
    """The runner of the session's commands and why it was chosen (the browser terminal runs
    under the same one)."""
    return _runner(scope)


def command_spec(
    scope: SessionScope, command: str | Sequence[str], timeout: float | None, *, confined: bool
) -> CommandSpec:
    """What a command of the session runs with: its worktree, its environment, its limits."""
    return _spec(scope, command, timeout, confined=confined)
