"""Running a command: one exec template, backends behind it.

`ExecTemplate.run` is the whole life of a command: check it can start, start it as the leader of
its own process group (stdin /dev/null, stdout and stderr merged), note it, forward its redacted
output as it arrives, stop it on timeout or cancel (SIGTERM to the group, SIGKILL a second later),
stop whatever it left running once it exits, and return a `CommandResult`. A backend only says how
the command line is wrapped: `LocalRunner` runs it as is, `BubblewrapRunner` inside `bwrap`.

Decisions:
- Resource limits (and no core dumps) are set by a tiny `/bin/sh` prefix that replaces itself
  with the command (`limits.py` says what each limit means), not by `preexec_fn`, which Python
  documents as unsafe in a process with threads (a server is one). `start_new_session=True` is
  done in C by `subprocess`. Under bubblewrap the prefix runs inside the sandbox.
- The command waits at a start gate until `on_start` has noted its process group: the prefix
  reads one line from a pipe on its stdin, then gives the command /dev/null. A caller that dies
  before noting it (a kill between fork and note) closes the pipe, and the prefix exits instead
  of starting a command nobody could find to stop.
- A command that cannot be started (missing working directory or executable) is a result with
  status "error", never an exception. A shell command whose program is missing is the shell's
  own failure (exit 127, status "failed"), as in a terminal.
- `output_bytes`, `head`, `tail` and the output file are all the *redacted* output (UTF-8);
  `exit_code` is negative when the process was killed by a signal (-15 for SIGTERM); under
  bubblewrap it is 128 + the signal, as bwrap reports it (as a shell does).
- A command that a CPU-time or file-size limit ended keeps status "failed"; the result names
  the limit (`limit_exceeded`) and a last line of output says so.
- The local runner confines nothing but the rlimits: the command can write wherever the user
  can, read the data directory (secrets file included), use the network, share `/tmp`, and
  processes that leave the group on purpose (`setsid`, daemons) escape its cleanup (the runner
  stops reading their output shortly after the command ends). The bubblewrap runner
  (`bubblewrap.py`) confines all of these (the data directory once it is named to hide): its
  PID namespace dies with the command.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal, Protocol

from branchwork.domain.errors import InvalidInput, SandboxError
from branchwork.sandbox._process import Child, HeadTail, OutputSink
from branchwork.sandbox.bubblewrap import bwrap_arguments, makes_user_namespace
from branchwork.sandbox.limits import (
    LimitName,
    Limits,
    exceeded_note,
    limit_exceeded,
    limits_prefix,
)
from branchwork.sandbox.outputs import open_output_file
from branchwork.sandbox.redact import Redactor

Status = Literal["ok", "failed", "timeout", "cancelled", "error"]
OutputCallback = Callable[[str], None]

DEFAULT_TIMEOUT_S = 600.0
DEFAULT_OUTPUT_CAP = 64 * 1024
TERM_GRACE_S = 1.0  # between SIGTERM and SIGKILL
SETTLE_S = 0.1  # after the command exits, before what it left running is stopped
DRAIN_S = 0.5  # how long output is still read once every process of the group is gone


@dataclass(frozen=True, kw_only=True)
class CommandSpec:
    """What to run. Exactly one of `shell` (run by `/bin/sh -c`) and `argv`.

    `env` is the complete environment of the command (nothing is inherited). `output_cap` is
    how many bytes of output `CommandResult.head` and `.tail` keep between them; the full output
    is always in the output file.
    """

    cwd: Path
    env: Mapping[str, str]
    shell: str | None = None
    argv: list[str] | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    output_cap: int = DEFAULT_OUTPUT_CAP

    def __post_init__(self) -> None:
        if (self.shell is None) == (self.argv is None):
            raise InvalidInput("Give exactly one of a shell command or an argv list to run.")
        if self.shell is not None and not self.shell.strip():
            raise InvalidInput("The command is empty; give a command to run.")
        if self.argv is not None:
            if not self.argv or not self.argv[0]:
                raise InvalidInput("The argv list is empty; give the program to run first.")
            object.__setattr__(self, "argv", list(self.argv))  # our own copy
        if not self.timeout_s > 0:
            raise InvalidInput(f"Timeout {self.timeout_s} s is not positive; give seconds > 0.")
        if self.output_cap < 0:
            raise InvalidInput(f"Output cap {self.output_cap} is negative; give bytes >= 0.")
        object.__setattr__(self, "env", MappingProxyType(dict(self.env)))

    def command(self) -> list[str]:
        """The command line before any backend wraps it."""
        if self.shell is not None:
            return ["/bin/sh", "-c", self.shell]
        return list(self.argv or ())

    @property
    def display(self) -> str:
        """The command as a person would type it."""
        return self.shell if self.shell is not None else shlex.join(self.argv or ())


@dataclass(frozen=True, kw_only=True)
class CommandResult:
    """How a command ended. The caller deletes `output_path` (the full redacted output).
    `limit_exceeded` names the resource limit that ended the command, if one did."""

    status: Status
    exit_code: int | None
    duration_ms: int
    output_bytes: int
    head: str
    tail: str
    truncated: bool
    output_path: Path
    error: str = ""
    limit_exceeded: LimitName | None = None


class Runner(Protocol):
    """Anything that runs a `CommandSpec` to its end (see `ExecTemplate.run` for the contract)."""

    def run(
        self,
        spec: CommandSpec,
        *,
        redactor: Redactor,
        on_output: OutputCallback | None = None,
        cancel: threading.Event | None = None,
        on_start: Callable[[int], None] | None = None,
    ) -> CommandResult: ...


class ExecTemplate:
    """The one way a command runs; subclasses only override `wrap`."""

    def __init__(self, *, limits: Limits | None = None, output_dir: Path | None = None) -> None:
        self.limits = limits if limits is not None else Limits()
        self.output_dir = output_dir

    def wrap(self, command: list[str], spec: CommandSpec, *, gated: bool = False) -> list[str]:
        """The command line the backend really starts for `command` (here: under the limits;
        the process limit is left alone, see `limits.py`); `gated`: behind the start gate."""
        return [*limits_prefix(self.limits, processes=False, gated=gated), *command]

    def run(
        self,
        spec: CommandSpec,
        *,
        redactor: Redactor,
        on_output: OutputCallback | None = None,
        cancel: threading.Event | None = None,
        on_start: Callable[[int], None] | None = None,
    ) -> CommandResult:
        """Run `spec` to its end; `on_output` gets redacted text as it arrives (caller's thread);
        `on_start` gets the process group id once the command runs."""
        started = time.monotonic()
        output_path, file = open_output_file(self.output_dir)
        try:
            with file:
                proc, problem = self._launch(spec)
                if proc is None:
                    return _error_result(redactor.redact(problem), output_path, started)
                _note_then_open_gate(proc, on_start)
                capture = HeadTail(spec.output_cap)
                sink = OutputSink(redactor.stream(), file, capture, on_output)
                status = _supervise(Child(proc, sink), started + spec.timeout_s, cancel)
                exceeded = self._note_limit(status, proc.returncode, sink)
                sink.close()
        except BaseException:
            output_path.unlink(missing_ok=True)
            raise
        return CommandResult(
            status=status,
            exit_code=proc.returncode,
            duration_ms=_ms_since(started),
            output_bytes=capture.total,
            head=capture.head(),
            tail=capture.tail(),
            truncated=capture.truncated,
            output_path=output_path,
            limit_exceeded=exceeded,
        )

    def _note_limit(
        self, status: Status, exit_code: int | None, sink: OutputSink
    ) -> LimitName | None:
        """Which limit ended the command, said at the end of its output too."""
        name = limit_exceeded(exit_code) if status == "failed" else None
        if name is not None:
            sink.note(exceeded_note(name, self.limits))
        return name

    def _launch(self, spec: CommandSpec) -> tuple[subprocess.Popen[bytes] | None, str]:
        problem = _startup_problem(spec)
        if problem:
            return None, problem
        try:
            return self._start(spec), ""
        except OSError as exc:
            return None, f"`{spec.display}` could not be started ({exc}); check the command."

    def _start(self, spec: CommandSpec) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.wrap(spec.command(), spec, gated=True),
            cwd=spec.cwd,
            env=dict(spec.env),
            stdin=subprocess.PIPE,  # the start gate (see the module docstring)
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _note_then_open_gate(
    proc: subprocess.Popen[bytes], on_start: Callable[[int], None] | None
) -> None:
    """Let the command start (its prefix waits for a line) once `on_start` noted its group; if
    noting fails, the gate closes unopened: the prefix exits without starting the command."""
    assert proc.stdin is not None
    try:
        if on_start is not None:
            on_start(proc.pid)  # its own session: the pid is the group id
    except BaseException:
        with proc:  # closes its pipes, the gate among them, and reaps it
            raise
    with contextlib.suppress(OSError):  # BrokenPipeError: bwrap could not start, say
        proc.stdin.write(b"\n")
    with contextlib.suppress(OSError):
        proc.stdin.close()


class LocalRunner(ExecTemplate):
    """Runs commands directly on this machine, as the current user (no isolation)."""


class BubblewrapRunner(ExecTemplate):
    """Runs commands inside bubblewrap (`bubblewrap.py` draws the sandbox): everything read-only
    but `worktree` (default: the command's `cwd`) and `writable`, the worktree's `.git` entry
    and `git_dirs` read-only, `hide` invisible, no network unless `network`."""

    def __init__(
        self,
        *,
        network: bool = True,
        worktree: Path | None = None,
        git_dirs: Sequence[Path] = (),
        hide: Sequence[Path] = (),
        writable: Sequence[Path] = (),
        limits: Limits | None = None,
        output_dir: Path | None = None,
        bwrap: str | None = None,
    ) -> None:
        super().__init__(limits=limits, output_dir=output_dir)
        found = bwrap if bwrap is not None else shutil.which("bwrap")
        if found is None:
            raise SandboxError(
                "`bwrap` is not installed; install bubblewrap or use the local sandbox backend."
            )
        self.bwrap = found
        self.network = network
        self.worktree = worktree
        self.git_dirs = tuple(git_dirs)
        self.hide = tuple(hide)
        self.writable = tuple(writable)
        self.own_user_namespace = makes_user_namespace(found)

    def wrap(self, command: list[str], spec: CommandSpec, *, gated: bool = False) -> list[str]:
        prefix = bwrap_arguments(
            self.bwrap,
            cwd=spec.cwd,
            network=self.network,
            worktree=self.worktree,
            git_dirs=self.git_dirs,
            hide=self.hide,
            writable=self.writable,
        )
        limits = limits_prefix(self.limits, processes=self.own_user_namespace, gated=gated)
        return [*prefix, *limits, *command]


def _supervise(child: Child, deadline: float, cancel: threading.Event | None) -> Status:
    """Watch `child` until it and its whole group are gone; return how it ended."""
    try:
        status = _wait_for_exit(child, deadline, cancel)
        child.stop_group(TERM_GRACE_S)
        child.pump(until=time.monotonic() + DRAIN_S, stop=lambda: child.eof)
        return status
    except BaseException:
        child.kill_now()
        raise
    finally:
        child.close()


def _wait_for_exit(child: Child, deadline: float, cancel: threading.Event | None) -> Status:
    def cancelled() -> bool:
        return cancel is not None and cancel.is_set()

    child.pump(until=deadline, stop=lambda: child.exited or cancelled())
    if not child.exited:
        return "cancelled" if cancelled() else "timeout"
    child.pump(
        until=time.monotonic() + SETTLE_S, stop=lambda: child.eof and not child.group_alive()
    )
    return "ok" if child.proc.returncode == 0 else "failed"


def _startup_problem(spec: CommandSpec) -> str:
    if not spec.cwd.is_dir():
        return (
            f"The working directory `{spec.cwd}` does not exist; "
            "restore the session's worktree, then run the command again."
        )
    if spec.argv is not None and _find_executable(spec.argv[0], spec) is None:
        return (
            f"Command not found: `{spec.argv[0]}`; check its name or install it, then run it again."
        )
    return ""


def _find_executable(name: str, spec: CommandSpec) -> str | None:
    if "/" in name:
        path = spec.cwd / name
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which(name, path=spec.env.get("PATH", os.defpath))


def _error_result(error: str, output_path: Path, started: float) -> CommandResult:
    return CommandResult(
        status="error",
        exit_code=None,
        duration_ms=_ms_since(started),
        output_bytes=0,
        head="",
        tail="",
        truncated=False,
        output_path=output_path,
        error=error,
    )


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
