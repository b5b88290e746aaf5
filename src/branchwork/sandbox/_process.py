"""Supervising one child process group: pumping its output, watching it, stopping it.

Internal to the sandbox package; `runner.py` holds the template that uses these pieces.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from branchwork.domain.errors import SandboxError
from branchwork.sandbox.redact import RedactingStream

POLL_S = 0.05
_KILL_WAIT_S = 5.0
READ_SIZE = 65536
_PROC = Path("/proc")


class HeadTail:
    """Keeps the first and last bytes of a text stream, within `cap` bytes in all."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.total = 0
        self._head = bytearray()
        self._tail = bytearray()
        self._tail_size = cap - cap // 2

    def add(self, data: bytes) -> None:
        self.total += len(data)
        if len(self._head) < self.cap:
            self._head += data[: self.cap - len(self._head)]
        self._tail += data
        if len(self._tail) > 2 * self._tail_size + READ_SIZE:
            del self._tail[: len(self._tail) - self._tail_size]

    @property
    def truncated(self) -> bool:
        return self.total > self.cap

    def head(self) -> str:
        data = self._head[: self.cap // 2] if self.truncated else self._head
        return bytes(data).decode("utf-8", errors="ignore")  # drops a character cut in two

    def tail(self) -> str:
        if not self.truncated or self._tail_size == 0:
            return ""
        return bytes(self._tail[-self._tail_size :]).decode("utf-8", errors="ignore")


class OutputSink:
    """Decodes raw output, redacts it and hands it to the file, the head/tail and the callback."""

    def __init__(
        self,
        stream: RedactingStream,
        file: IO[str],
        capture: HeadTail,
        on_output: Callable[[str], None] | None,
    ) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stream = stream
        self._file = file
        self._capture = capture
        self._on_output = on_output
        self._line_start = True  # the raw output so far ends a line (or is empty)

    def feed(self, data: bytes) -> None:
        if data:
            self._line_start = data.endswith(b"\n")
        self._emit(self._stream.feed(self._decoder.decode(data)))

    def note(self, line: str) -> None:
        """Append a line of our own after the command's output, on a line of its own."""
        rest = self._decoder.decode(b"", final=True)
        lead = "" if self._line_start else "\n"
        self._line_start = True
        self._emit(self._stream.feed(rest + lead + line))

    def close(self) -> None:
        rest = self._stream.feed(self._decoder.decode(b"", final=True))
        self._emit(rest + self._stream.flush())

    def _emit(self, text: str) -> None:
        if not text:
            return
        try:
            self._file.write(text)
        except OSError as exc:
            raise SandboxError(
                f"Could not write the command's output file ({exc}); "
                "free disk space, then run the command again."
            ) from exc
        self._capture.add(text.encode("utf-8"))
        if self._on_output is not None:
            self._on_output(text)


class Child:
    """A started process that leads its own process group, with its merged output pipe."""

    def __init__(self, proc: subprocess.Popen[bytes], sink: OutputSink) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self.pgid = proc.pid  # start_new_session=True: the child leads its group
        self.eof = False
        self._sink = sink
        self._pipe = proc.stdout
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._pipe, selectors.EVENT_READ)

    @property
    def exited(self) -> bool:
        return self.proc.poll() is not None

    def pump(self, *, until: float, stop: Callable[[], bool]) -> None:
        """Forward output until `stop()` holds or the monotonic clock reaches `until`."""
        while not stop():
            remaining = until - time.monotonic()
            if remaining <= 0:
                return
            self._wait(min(POLL_S, remaining))

    def group_alive(self) -> bool:
        """True while a process of the group still runs (zombies do not count)."""
        self.proc.poll()
        self._reap_adopted()
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return _has_running_member(self.pgid)

    def stop_group(self, grace_s: float) -> None:
        """SIGTERM every process of the group, SIGKILL what is left after `grace_s`."""
        if not self.group_alive():
            return
        self.signal_group(signal.SIGTERM)
        self.pump(until=time.monotonic() + grace_s, stop=lambda: not self.group_alive())
        if self.group_alive():
            self.signal_group(signal.SIGKILL)
        try:
            self.proc.wait(_KILL_WAIT_S)
        except subprocess.TimeoutExpired as exc:
            raise SandboxError(
                f"Process {self.pgid} did not stop after SIGKILL; "
                "check it with `ps` and stop it by hand."
            ) from exc

    def kill_now(self) -> None:
        """SIGKILL the group without a grace period (we are failing and must not leave it)."""
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(_KILL_WAIT_S)

    def signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, sig)

    def close(self) -> None:
        self._selector.close()
        self._pipe.close()

    def _wait(self, timeout: float) -> None:
        if self.eof and self.proc.returncode is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
            return
        if self.eof:
            time.sleep(timeout)
            return
        if self._selector.select(timeout):
            data = os.read(self._pipe.fileno(), READ_SIZE)
            if data:
                self._sink.feed(data)
            else:
                self.eof = True

    def _reap_adopted(self) -> None:
        """Reap group members that became our children (when we are a subreaper or PID 1)."""
        if self.proc.returncode is None:
            return  # the leader itself is reaped by Popen, never here
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-self.pgid, os.WNOHANG)[0] > 0:
                pass


def _has_running_member(pgid: int) -> bool:
    """Whether a non-zombie process has group `pgid`; without /proc, assume one has."""
    if not _PROC.is_dir():
        return True
    for entry in _PROC.iterdir():
        if entry.name.isdigit() and _running_in_group(entry / "stat", pgid):
            return True
    return False


def _running_in_group(stat_path: Path, pgid: int) -> bool:
    try:
        stat = stat_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp ...
    return len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X")
