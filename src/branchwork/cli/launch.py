"""The console script: a command runs in a warm process when one is up, else here.

A warm process (`warm.py`) has the CLI and the service layer imported. For each command it
forks a child that takes the caller's terminal (stdin, stdout and stderr, passed over a Unix
socket), directory, umask, environment and arguments, and runs the command as `entry.py` would
here. The caller waits, passes on the signals it gets, and exits as the child did. A command
then pays for Python's start and this module only, not for importing Typer, Rich, pydantic and
the service layer again (docs/performance.md, docs/cli-warm.md).

No warm process answers (the first command, one that stopped after being idle, an install that
changed): the command runs here, and a warm process is started beside it for the next one.
`BRANCHWORK_WARM=0` turns it off.

This module is on every command's path: it imports only what Python has loaded already (and
`socket`, `resource`), nothing of ours but the package.
"""

from __future__ import annotations

import binascii
import contextlib
import importlib
import os
import resource
import signal
import socket
import stat
import sys
import time
from typing import BinaryIO, NoReturn

PROTOCOL = b"branchwork-warm/1"
# What imports read from the environment once: a warm process serves only callers that agree
# on these (and on the interpreter and its import path); others get a warm process of their own.
KEYED_ENV = (
    "PYTHON", "LANG", "LC_", "TYPER", "_TYPER", "TERMINAL_WIDTH", "FORCE_COLOR", "NO_COLOR",
    "PY_COLORS", "GITHUB_ACTIONS", "COVERAGE_", "SQLALCHEMY", "PYDANTIC",
)  # fmt: skip
# Signals the caller passes on to the child running its command.
FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH")
OFF = ("0", "false", "no", "off")
RLIMITS = (
    "RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_MEMLOCK",
    "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_RSS",
    "RLIMIT_RTPRIO", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK",
)  # fmt: skip


def main() -> None:
    """Entry point of the `branchwork` console script."""
    path = socket_path() if warm_wanted() else None
    if path is not None:
        try:
            status = _run_warm(path)
        except KeyboardInterrupt:
            raise SystemExit(130) from None
        if status is not None:
            _exit_as(status)
        _start_warm(path)
    # The in-process CLI, imported only when this process runs the command itself.
    importlib.import_module("branchwork.cli.entry").main()


def warm_wanted() -> bool:
    """Unless turned off, on Linux (it needs `SO_PEERCRED` and `pidfd_open`), for a plain
    interpreter (`-W`, `-X` and `-O` options would not reach the warm process)."""
    if os.environ.get("BRANCHWORK_WARM", "1").strip().lower() in OFF:
        return False
    plain = not (sys.warnoptions or sys._xoptions or sys.flags.dev_mode or sys.flags.optimize)
    return plain and sys.platform == "linux"


def identity() -> str:
    """What a warm process and its callers must share: interpreter, import path, keyed env."""
    # The console script's own directory (or `-m`'s current one) leads `sys.path`; `-P` drops it.
    path = sys.path if sys.flags.safe_path else sys.path[1:]
    env = sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith(KEYED_ENV))
    return "\n".join([sys.prefix, sys.version, *path, *env])


def runtime_dir() -> str:
    """Where warm processes listen: `$XDG_RUNTIME_DIR/branchwork`, else `/tmp/branchwork-UID`."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(runtime):  # the spec says absolute; a relative one is ignored
        return os.path.join(runtime, "branchwork")
    tmp = os.environ.get("TMPDIR", "")
    return os.path.join(tmp if os.path.isabs(tmp) else "/tmp", f"branchwork-{os.getuid()}")  # noqa: S108


def private_dir(path: str) -> bool:
    """`path` is a directory of ours that no one else can enter (not a link to one)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def socket_path() -> str | None:
    """The warm process's socket for this caller (None: the directory is not safe to use)."""
    folder = runtime_dir()
    if os.path.lexists(folder) and not private_dir(folder):
        return None  # someone else's, or open to others: never talk to what listens there
    name = f"cli-{binascii.crc32(identity().encode()):08x}.sock"
    return os.path.join(folder, name)


def request() -> bytes:
    """The command as the warm process reads it: NUL-separated fields, length first."""
    umask = os.umask(0o022)
    os.umask(umask)
    env = [f"{k}={v}" for k, v in os.environ.items()]
    head = [identity(), os.getcwd(), str(umask), limits(), str(len(sys.argv))]
    payload = b"\0".join([PROTOCOL, *(os.fsencode(f) for f in [*head, *sys.argv, *env])])
    return len(payload).to_bytes(4, "big") + payload


def limits() -> str:
    """Our resource limits (`ulimit`), as `NAME=SOFT,HARD;…`: the child takes them."""
    return ";".join(
        f"{name}={soft},{hard}"
        for name in RLIMITS
        if hasattr(resource, name)
        for soft, hard in [resource.getrlimit(getattr(resource, name))]
    )


def _run_warm(path: str) -> int | None:
    """The child's wait status, or None when no warm process took the command."""
    if not os.path.exists(os.path.dirname(path)):
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            replies, child = _hand_over(sock, path)
        except (OSError, ValueError):
            return None  # not listening, gone, or declined (an install changed …): run it here
        with replies:
            return _wait(replies, child)


def _hand_over(sock: socket.socket, path: str) -> tuple[BinaryIO, int]:
    """Send the command; the warm process answers with the pid of the child running it."""
    sock.connect(path)
    if not _ours(sock):
        raise ValueError("not ours")
    data = request()
    sent = socket.send_fds(sock, [data], _stdio())
    sock.sendall(data[sent:])
    replies = sock.makefile("rb")
    first = replies.readline().split()
    if len(first) != 2 or first[0] != b"pid" or not first[1].isdigit():
        replies.close()
        raise ValueError("declined")
    return replies, int(first[1])


def _ours(sock: socket.socket) -> bool:
    cred = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    return int.from_bytes(cred[4:8], sys.byteorder) == os.getuid()


def _stdio() -> list[int]:
    """Our stdin, stdout and stderr (one that is closed stands in as /dev/null)."""
    fds = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            fd = os.open(os.devnull, os.O_RDWR)
        fds.append(fd)
    return fds


def _wait(replies: BinaryIO, child: int) -> int:
    """Forward signals to the child until its wait status comes. From here on the command
    runs or ran: it is never run a second time, whatever happens to the connection."""
    _forward_signals(child)
    try:
        last = replies.readline().split()
    except OSError:
        last = []
    if last[:1] != [b"exit"]:
        return _lost(child)
    return int(last[1])


def _forward_signals(child: int) -> None:
    for name in FORWARDED:
        signal.signal(getattr(signal, name), lambda sig, _frame: _pass_on(child, sig))
    signal.signal(signal.SIGTSTP, lambda _sig, _frame: _suspend(child))


def _pass_on(child: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(child, sig)


def _suspend(child: int) -> None:
    """Ctrl-Z: stop the child, then ourselves; on `fg`, continue it."""
    _pass_on(child, signal.SIGSTOP)
    signal.signal(signal.SIGTSTP, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTSTP)
    signal.signal(signal.SIGTSTP, lambda _sig, _frame: _suspend(child))
    _pass_on(child, signal.SIGCONT)


def _lost(child: int) -> int:
    """The warm process went away while the child ran: wait for the child, then say so."""
    while _alive(child):
        time.sleep(0.05)
    os.write(2, b"error: the warm process stopped during this command; its outcome is unknown\n")
    return 1 << 8


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _exit_as(status: int) -> NoReturn:
    """Exit as the child did: with its code, or killed by its signal."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        raise SystemExit(128 + sig)
    raise SystemExit(os.waitstatus_to_exitcode(status))


def _start_warm(path: str) -> None:
    """Start a warm process for the next command (it gives up if another one is starting)."""
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:
        return
    if not private_dir(folder):
        return
    null = os.open(os.devnull, os.O_RDWR)
    try:
        os.posix_spawn(
            sys.executable,
            [sys.executable, "-P", "-m", "branchwork.cli.warm", path],
            os.environ,
            file_actions=[(os.POSIX_SPAWN_DUP2, null, fd) for fd in (0, 1, 2)],
            setsid=True,
        )
    except OSError:
        pass  # no warm process then: every command runs in its own process
    finally:
        os.close(null)
