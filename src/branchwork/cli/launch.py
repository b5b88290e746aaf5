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
`socket`, `select`, `resource`), nothing of ours but the package.
"""

from __future__ import annotations

import binascii
import contextlib
import importlib
import os
import resource
import select
import signal
import socket
import stat
import sys
from typing import BinaryIO, NoReturn

PROTOCOL = b"branchwork-warm/2"
# What imports read from the environment once: a warm process serves only callers that agree
# on these (and on the interpreter and its import path); others get a warm process of their own.
KEYED_ENV = (
    "PYTHON", "LANG", "LC_", "TYPER", "_TYPER", "TERMINAL_WIDTH", "FORCE_COLOR", "NO_COLOR",
    "PY_COLORS", "GITHUB_ACTIONS", "COVERAGE_", "SQLALCHEMY", "PYDANTIC",
)  # fmt: skip
# Signals the caller passes on to the child running its command.
FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH")
OFF = ("0", "false", "no", "off")
STDIO = ("stdin", "stdout", "stderr")
# How long a warm process may take to answer: it reads requests without waiting on anyone, so
# only a stopped or broken one takes this long.
ANSWER_SECONDS = 10.0
MAY_HAVE_RUN = (
    "the command may have started there: check before running it again "
    "(BRANCHWORK_WARM=0 runs commands without a warm process)"
)
LINE = 64  # the longest answer line read
PID_MAX = 1 << 22  # the kernel's ceiling for a pid
EXIT_INFRA = 3  # as `cli/_common.py`
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
        except NoAnswer as exc:
            os.write(2, f"error: {exc}; {MAY_HAVE_RUN}\n".encode())
            raise SystemExit(EXIT_INFRA) from None
        if status is not None:
            _exit_as(status)
        _start_warm(path)
    # The in-process CLI, imported only when this process runs the command itself.
    importlib.import_module("branchwork.cli.entry").main()


def warm_wanted() -> bool:
    """Unless turned off (`BRANCHWORK_WARM=0`), on Linux (it needs `SO_PEERCRED` and
    `pidfd_open`), for a plain interpreter (`-W`, `-X` and `-O` would not reach it)."""
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


class NoAnswer(Exception):
    """The warm process took the command but did not answer: it is stopped or broken. The
    command is not run here (it may have started there)."""


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
    name = f"cli-{binascii.crc32(os.fsencode(identity())):08x}.sock"
    return os.path.join(folder, name)


def request(closed: list[int]) -> bytes:
    """The command as the warm process reads it: NUL-separated fields, length first."""
    umask = os.umask(0o022)
    os.umask(umask)
    env = [f"{k}={v}" for k, v in os.environ.items()]
    shut = ",".join(map(str, closed))
    head = [identity(), os.getcwd(), str(umask), limits(), ignored(), shut, str(len(sys.argv))]
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


def ignored() -> str:
    """The forwarded signals we ignore (`nohup`, `&` in a script): the child ignores them too."""
    signals = [getattr(signal, name) for name in FORWARDED]
    return ",".join(str(int(s)) for s in signals if signal.getsignal(s) == signal.SIG_IGN)


def _run_warm(path: str) -> int | None:
    """The child's wait status, or None when no warm process took the command."""
    if not os.path.exists(os.path.dirname(path)):
        return None
    closed = _stand_ins()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(ANSWER_SECONDS)
            with sock.makefile("rb") as replies:
                try:
                    child = _hand_over(sock, replies, path, closed)
                except (OSError, ValueError):
                    return None  # not listening, gone, declined (an install changed …): run here
                return _wait(sock, replies, child)
    finally:
        for fd in closed:
            os.close(fd)


def _stand_ins() -> list[int]:
    """Which of our stdin, stdout and stderr are closed (`<&-`), now /dev/null: the socket must
    not take their number, and the child closes them again."""
    closed = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free number: `fd`
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            closed.append(fd)
    return closed


def _hand_over(sock: socket.socket, replies: BinaryIO, path: str, closed: list[int]) -> int | None:
    """Send the command; the warm process answers with the pid of the child running it. A
    pidfd for that child, or None when it cannot be checked (gone already, or not one of the
    warm process's children: then it is never signalled)."""
    sock.connect(path)
    server = _peer(sock)
    _send(sock, request(closed))
    try:
        first = replies.readline(LINE).split()
    except TimeoutError:
        raise NoAnswer(f"the warm process (pid {server}) did not answer") from None
    # ConnectionResetError (an OSError): it went away with our request unread, so nothing ran.
    if first == [b"declined"]:
        raise ValueError("declined")  # an install changed, too busy …: we run it ourselves
    if len(first) != 2 or first[0] != b"pid" or not first[1].isdigit() or len(first[1]) > 7:
        # It read our request and closed without a word: the command may have started.
        raise NoAnswer(f"the warm process (pid {server}) closed without answering")
    pid = int(first[1])
    if not 1 < pid < PID_MAX:
        raise ValueError("not a pid")
    return _pidfd(pid, server)


def _send(sock: socket.socket, data: bytes) -> None:
    """The whole request, our stdin, stdout and stderr with its first bytes. No call follows
    the last byte: from then on the warm process may run the command, end it and close before
    we are scheduled again, and a send (even of nothing) on a closed socket fails with EPIPE,
    which would read as "not taken" and run the command a second time here."""
    sent = socket.send_fds(sock, [data], [0, 1, 2])
    if sent < len(data):
        sock.sendall(data[sent:])


def _peer(sock: socket.socket) -> int:
    """The pid of the warm process, if it runs as us (`SO_PEERCRED`: pid, uid, gid)."""
    cred = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    if int.from_bytes(cred[4:8], sys.byteorder) != os.getuid():
        raise ValueError("not ours")
    return int.from_bytes(cred[0:4], sys.byteorder)


def _pidfd(pid: int, server: int) -> int | None:
    """A pidfd for `pid` if it is a child of `server` (opened first: the pid cannot be reused
    under us once it is held)."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return None  # it ended and was reaped already: its status is on its way
    if _parent(pid) == server:
        return pidfd
    os.close(pidfd)
    return None


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return int(stat.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _wait(sock: socket.socket, replies: BinaryIO, child: int | None) -> int:
    """Forward signals to the child until its wait status comes. From here on the command
    runs or ran: it is never run a second time, whatever happens to the connection."""
    if child is not None:  # else the status comes at once, or never
        sock.settimeout(None)
        _forward_signals(child)
    try:
        status = _status(replies.readline(LINE).split())
    except OSError:
        status = None
    return _lost(child) if status is None else status


def _status(words: list[bytes]) -> int | None:
    """The wait status in `exit STATUS`, if it is one of a process that ended."""
    if len(words) != 2 or words[0] != b"exit" or not words[1].isdigit() or len(words[1]) > 5:
        return None
    status = int(words[1])
    ended = status < 1 << 16 and (os.WIFEXITED(status) or os.WIFSIGNALED(status))
    return status if ended else None


def _forward_signals(child: int) -> None:
    """Our signals go to the child, but those we ignore (`nohup`): they would not end us."""
    for name in FORWARDED:
        sig = getattr(signal, name)
        if signal.getsignal(sig) != signal.SIG_IGN:
            signal.signal(sig, lambda sig, _frame: _pass_on(child, sig))
    signal.signal(signal.SIGTSTP, lambda _sig, _frame: _suspend(child))


def _pass_on(child: int, sig: int) -> None:
    with contextlib.suppress(OSError):
        signal.pidfd_send_signal(child, sig)


def _suspend(child: int) -> None:
    """Ctrl-Z: stop the child, then ourselves; on `fg`, continue it."""
    _pass_on(child, signal.SIGSTOP)
    signal.signal(signal.SIGTSTP, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTSTP)
    signal.signal(signal.SIGTSTP, lambda _sig, _frame: _suspend(child))
    _pass_on(child, signal.SIGCONT)


def _lost(child: int | None) -> int:
    """The warm process went away while the child ran (or answered nonsense): wait for the
    child to end, then say so."""
    if child is not None:
        select.select([child], [], [])  # a pidfd is readable once its process ended
    os.write(2, b"error: the warm process stopped during this command; its outcome is unknown\n")
    return 1 << 8


def _exit_as(status: int) -> NoReturn:
    """Exit as the child did: with its code, or killed by its signal."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        with contextlib.suppress(OSError, ValueError):  # SIGKILL's cannot be set, nor changed
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
