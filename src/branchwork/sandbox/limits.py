"""Resource limits of every command, set by a tiny `/bin/sh` prefix, and how to read a breach.

The prefix (`/bin/sh -c 'ulimit …; exec "$@"'`) sets the limits on itself and replaces itself
with the command, which inherits them. Not `preexec_fn`: Python documents it as unsafe in a
process with threads, and a server is one. Not `prlimit(1)`: one more program to require.
The units are those every POSIX-family `sh` shares (dash, bash as `sh`, busybox ash): `-t`
seconds, `-v` KiB, `-f` 512-byte blocks, so a limit is rounded down to a whole unit (one at
least). A limit above the hard limit this process already has is lowered to it (an
unprivileged process may not raise it), and `None` leaves the inherited limit alone.

What each limit means (every one is per process, inherited by its children, not a total):
- `cpu_seconds` (RLIMIT_CPU): the kernel sends SIGXCPU when a process has used that much CPU
  time, and SIGKILL one CPU second later (a process that handles SIGXCPU gets that second to
  finish). The command's wall-clock time is bounded by the runner's timeout instead.
- `memory_bytes` (RLIMIT_AS): address space, not resident memory. Allocation beyond it fails
  (a `MemoryError`, "Cannot allocate memory", an abort): the program reports it, not us.
  Programs that reserve much more than they use (a JVM on a large machine, AddressSanitizer)
  need a larger value or `None`.
- `file_bytes` (RLIMIT_FSIZE): a write past that size gets SIGXFSZ, which ends the process.
- `processes` (RLIMIT_NPROC): the kernel counts the processes *and threads* of the user, per
  user namespace, and never limits uid 0. Outside a user namespace (the local runner; a setuid
  `bwrap`) that is every process of the person on the whole machine: a cap there would make
  commands fail whenever a desktop runs more threads than the cap, and would cap nothing of the
  command's own. So this limit is set only inside a bubblewrap sandbox with its own user
  namespace (bwrap run as an ordinary user), where the count is the command's own processes: a
  fork-bomb brake. It is set after bwrap made that namespace, never before (set before, the
  kernel would also hold the user's whole machine-wide count against it).

A command ended by SIGXCPU or SIGXFSZ keeps status "failed"; `limit_exceeded` names the limit
from its exit code (-24/-25 when the process itself was killed, 152/153 = 128 + signal when a
shell or bwrap reports a killed child) and the runner appends a line saying so to the output.
A program that exits 152 or 153 of its own accord would be read the same way; none common does.
"""

from __future__ import annotations

import resource
import signal
from dataclasses import dataclass, fields
from typing import Literal

from branchwork.domain.errors import InvalidInput

LimitName = Literal["cpu_seconds", "file_bytes"]

CPU_GRACE_S = 1  # SIGXCPU at the limit, SIGKILL one CPU second later
_FAILURE = 'echo "branchwork: could not set the resource limits of the command" >&2; exit 125'
_GATE = "read -r go || exit 125;"  # EOF: whoever started it is gone before noting it
_SIGNALLED: dict[int, LimitName] = {signal.SIGXCPU: "cpu_seconds", signal.SIGXFSZ: "file_bytes"}


@dataclass(frozen=True)
class Limits:
    """Resource limits of every command; None = no limit (the inherited one stays)."""

    cpu_seconds: int | None = 3600
    memory_bytes: int | None = 8 * 1024**3  # address space
    processes: int | None = 4096  # only inside a bubblewrap user namespace (see the module)
    file_bytes: int | None = 4 * 1024**3  # largest file a command may write

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            whole = isinstance(value, int) and not isinstance(value, bool)
            if value is not None and (not whole or value <= 0):
                raise InvalidInput(
                    f"Resource limit `{field.name}` is {value!r}; give a whole number > 0, "
                    "or None for no limit."
                )


def limits_prefix(limits: Limits, *, processes: bool, gated: bool = False) -> list[str]:
    """The `/bin/sh` prefix that sets `limits` (and no core dumps), then execs the command.
    `processes`: whether to set the process limit too (see the module docstring). `gated`: it
    first waits for a line on stdin (its starter has noted it, see `runner.py`) and exits at
    end of file (its starter died first); the command then gets /dev/null as stdin."""
    steps = ["ulimit -c 0", *_cpu_steps(limits.cpu_seconds)]
    memory_kib = _clamped(resource.RLIMIT_AS, limits.memory_bytes, 1024)
    if memory_kib is not None:
        steps.append(f"ulimit -v {memory_kib}")
    file_blocks = _clamped(resource.RLIMIT_FSIZE, limits.file_bytes, 512)
    if file_blocks is not None:
        steps.append(f"ulimit -f {file_blocks}")
    count = _clamped(resource.RLIMIT_NPROC, limits.processes, 1) if processes else None
    if count is not None:  # bash spells it -u, dash and busybox ash -p
        steps.append(f"{{ ulimit -u {count} || ulimit -p {count}; }} 2>/dev/null")
    script = f'{" && ".join(steps)} || {{ {_FAILURE}; }}; exec "$@"'
    if gated:
        script = f"{_GATE} {script} </dev/null"
    return ["/bin/sh", "-c", script, "branchwork-exec"]


def limit_exceeded(exit_code: int | None) -> LimitName | None:
    """The limit whose signal ended the command, read from its exit code, or None."""
    if exit_code is None:
        return None
    signo = -exit_code if exit_code < 0 else exit_code - 128
    return _SIGNALLED.get(signo)


def exceeded_note(name: LimitName, limits: Limits) -> str:
    """The line the runner appends to the output of a command that a limit ended."""
    value = getattr(limits, name)
    if name == "cpu_seconds":
        what = "CPU time limit exceeded: a process used all the CPU time it may use"
    else:
        what = "File size limit exceeded: a process wrote past the largest file size it may write"
    setting = f"`{name}` = {value}" if value is not None else "a limit inherited from the system"
    return f"[branchwork] {what} ({setting}); it was ended.\n"


def _cpu_steps(seconds: int | None) -> list[str]:
    hard = _clamped(resource.RLIMIT_CPU, None if seconds is None else seconds + CPU_GRACE_S, 1)
    if seconds is None or hard is None:
        return []
    return [f"ulimit -t {hard}", f"ulimit -S -t {min(seconds, hard)}"]


def _clamped(kind: int, value: int | None, unit: int) -> int | None:
    """`value` in whole `unit`s (at least one), lowered to this process's hard limit `kind`
    (children inherit it, and an unprivileged process may not raise it)."""
    if value is None:
        return None
    hard = resource.getrlimit(kind)[1]
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    return max(1, value // unit)
