"""A person's terminal in a session: an interactive shell on a pseudo-terminal, confined like
the session's commands (the same runner: bubblewrap wherever it works), with the session's
environment, its transcript recorded.

`open_terminal` records `terminal_opened`; `Terminal.close` stops the shell's process group,
records `terminal_closed` with the transcript (redacted: its tail in the event, all of it up to
`TRANSCRIPT_CAP` in a blob) and takes a checkpoint of what the person changed. What the shell
prints reaches the caller redacted too, like everything else a session shows.
"""

from __future__ import annotations

import codecs
import contextlib
import fcntl
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import termios
import threading
from pathlib import Path

from branchwork.domain.errors import SandboxError
from branchwork.domain.events import TerminalClosed, TerminalOpened
from branchwork.domain.ids import new_id
from branchwork.sandbox import ExecTemplate, RedactingStream
from branchwork.service.commands import command_spec, session_runner
from branchwork.service.scope import SessionScope, take_checkpoint

TRANSCRIPT_CAP = 1024 * 1024  # bytes of transcript kept (the end is dropped past it)
TAIL_CHARS = 4000
GRACE_S = 1.0
_READ = 65536


class Terminal:
    """One running shell on a pseudo-terminal. `read` and `write` may be called from two
    threads; `close` from either, once."""

    def __init__(self, scope: SessionScope, user: str, rows: int, cols: int) -> None:
        self.id = new_id()
        self._scope = scope
        self._lock = threading.Lock()
        self._closed = False
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stream: RedactingStream = scope.redactor.stream()
        self._transcript: list[str] = []
        self._kept = 0
        self._total = 0
        shell = _shell()
        self._proc, self._fd = _spawn(scope, shell, rows, cols)
        scope.record(TerminalOpened(terminal_id=self.id, user=user, shell=shell), "user")

    def write(self, data: bytes) -> None:
        """Send keystrokes (or pasted text) to the shell."""
        with contextlib.suppress(OSError):
            os.write(self._fd, data)

    def resize(self, rows: int, cols: int) -> None:
        """Tell the shell its new size (bounded as at `open_terminal`: a pseudo-terminal's
        size is four unsigned shorts, so -1 or 70000 would be an error)."""
        with contextlib.suppress(OSError):
            _set_size(self._fd, *_bounded(rows, cols))

    def read(self, timeout: float = 0.5) -> str | None:
        """What the shell printed since the last read (redacted), "" when nothing came within
        `timeout`, None once the shell has exited."""
        try:
            ready, _, _ = select.select([self._fd], [], [], timeout)
            if not ready:
                return ""
            data = os.read(self._fd, _READ)
        except (OSError, ValueError):
            data = b""
        if not data:
            return None
        return self._keep(self._stream.feed(self._decoder.decode(data)))

    def _keep(self, text: str) -> str:
        with self._lock:
            self._total += len(text.encode())
            if self._kept < TRANSCRIPT_CAP:
                self._transcript.append(text)
                self._kept += len(text.encode())
        return text

    def close(self) -> TerminalClosed | None:
        """Stop the shell and record the transcript (None when already closed)."""
        with self._lock:
            if self._closed:
                return None
            self._closed = True
        exit_code = _stop(self._proc)
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._keep(self._stream.feed(self._decoder.decode(b"", final=True)) + self._stream.flush())
        closed = self._record(exit_code)
        take_checkpoint(self._scope, f"terminal {self.id[-8:].lower()}", automatic=True)
        return closed

    def _record(self, exit_code: int | None) -> TerminalClosed:
        transcript = "".join(self._transcript)
        blob = self._scope.services.store.put_blob(transcript.encode()) if transcript else None
        payload = TerminalClosed(
            terminal_id=self.id,
            transcript_tail=transcript[-TAIL_CHARS:],
            transcript_bytes=self._total,
            transcript_blob=blob,
            exit_code=exit_code,
        )
        event = self._scope.record(payload, "user")
        assert isinstance(event.payload, TerminalClosed)
        return event.payload


def open_terminal(scope: SessionScope, user: str, *, rows: int = 24, cols: int = 80) -> Terminal:
    return Terminal(scope, user, *_bounded(rows, cols))


def _bounded(rows: int, cols: int) -> tuple[int, int]:
    return max(2, min(rows, 500)), max(10, min(cols, 1000))


def _shell() -> str:
    return shutil.which("bash") or "/bin/sh"


def _spawn(
    scope: SessionScope, shell: str, rows: int, cols: int
) -> tuple[subprocess.Popen[bytes], int]:
    """The shell under the session's runner, on a new pseudo-terminal it controls
    (`setsid --ctty`: job control works)."""
    runner, choice = session_runner(scope)
    if not isinstance(runner, ExecTemplate):
        raise SandboxError("this runner cannot start a terminal; use the local or bubblewrap one")
    spec = command_spec(scope, [shell, "-i"], None, confined=choice.confined)
    env = {**spec.env, "TERM": "xterm-256color", "COLORTERM": "truecolor"}
    inner = [shell, "-i"]
    if shutil.which("setsid"):
        inner = ["setsid", "--ctty", *inner]
    master, slave = pty.openpty()
    _set_size(slave, rows, cols)
    try:
        proc = subprocess.Popen(
            runner.wrap(inner, spec),
            cwd=Path(spec.cwd),
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
    except OSError as exc:
        os.close(master)
        raise SandboxError(
            f"the terminal could not start ({exc}); check `branchwork doctor`"
        ) from exc
    finally:
        os.close(slave)
    return proc, master


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _stop(proc: subprocess.Popen[bytes]) -> int | None:
    """Hang up on the shell's process group, then kill what is left."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGHUP)
        try:
            proc.wait(GRACE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(GRACE_S)
    return proc.returncode
