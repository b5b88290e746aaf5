"""The warm process: the CLI imported once, one forked child per command (see `launch.py`).

    python -P -m branchwork.cli.warm SOCKET

`launch.py` starts it beside a command that found none. It takes `SOCKET.lock` (a second one
gives up at once), imports the CLI and the service layer, and listens on `SOCKET`. For each
caller (same user, same interpreter, import path and keyed environment) it forks a child: the
child drops everything of the server's, takes the caller's stdin/stdout/stderr, directory,
umask, environment and arguments, and runs the command (`entry.main`); the server sends the
caller the child's pid, then its wait status. A caller that goes away takes its child with it.

It declines callers once an imported file of ours or a directory of the import path changed
(an edit, an install): they run the command themselves and start a fresh warm process. It ends
after `BRANCHWORK_WARM_IDLE` seconds (default 900) with nothing to do, or once its socket is
no longer its own (the runtime dir removed). It opens no database and starts no thread before
forking: each child starts from imports only.

It never waits on one caller: requests are read as they come, in the one loop (a slow or
silent caller is dropped after `REQUEST_SECONDS`, the oldest of too many after
`MAX_PENDING`). Its log holds pids, statuses and reasons, never a request's contents.
"""

from __future__ import annotations

import atexit
import fcntl
import importlib
import os
import resource
import selectors
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import IO, NoReturn

import branchwork
from branchwork.cli import entry, launch, render

IDLE_SECONDS = 900.0
# Loaded by most commands: every child finds them imported.
PRELOAD = ("rich.progress", "rich.syntax", "rich.table", "typer.rich_utils", "sqlalchemy")
MAX_REQUEST = 1 << 22  # 4 MiB of arguments and environment
REQUEST_SECONDS = 5.0  # a caller sends its request at once: one that takes longer is dropped
MAX_PENDING = 32  # requests being read at once (each holds four descriptors)
CHECK_SECONDS = 5.0  # how often an idle warm process checks its socket is still its own
LOG_LIMIT = 1 << 20
RUN_ALONE = "BRANCHWORK_WARM=0 runs commands without a warm process"


@dataclass(frozen=True)
class Command:
    """One caller's command, as the child runs it."""

    identity: str
    cwd: str
    umask: int
    limits: dict[int, tuple[int, int]]  # resource → (soft, hard), as `ulimit` set them
    ignored: set[int]  # forwarded signals the caller ignores
    closed: list[int]  # which of its stdin, stdout and stderr the caller had closed
    argv: list[str]
    env: dict[str, str]
    stdio: list[int]

    def run(self) -> NoReturn:
        """In the child: become the caller's process, then run the command as it would."""
        self._take_stdio()
        self._take_signals()
        os.environ.clear()
        os.environ.update(self.env)
        time.tzset()  # the caller's TZ: Python read the warm process's once, at its start
        os.umask(self.umask)
        try:
            for which, values in self.limits.items():
                resource.setrlimit(which, values)
        except (OSError, ValueError) as exc:
            print(f"error: cannot take this shell's limits ({exc}); {RUN_ALONE}", file=sys.stderr)
            finish(1)
        sys.argv = self.argv
        render.open_consoles()
        try:
            os.chdir(self.cwd)
        except OSError as exc:
            print(f"error: cannot enter {self.cwd}: {exc.strerror}; {RUN_ALONE}", file=sys.stderr)
            finish(1)
        try:
            entry.main()
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc.code)
        except BaseException:
            sys.excepthook(*sys.exc_info())
            code = 1
        finish(code)

    def _take_stdio(self) -> None:
        """The caller's stdio; one it had closed is closed, and None, as Python starts so."""
        for target, fd in enumerate(self.stdio):
            os.dup2(fd, target)
            os.close(fd)
        for fd in self.closed:
            os.close(fd)
            setattr(sys, launch.STDIO[fd], None)
            setattr(sys, f"__{launch.STDIO[fd]}__", None)
        if sys.stdout is not None:
            sys.stdout.reconfigure(line_buffering=os.isatty(1))  # type: ignore[union-attr]

    def _take_signals(self) -> None:
        """The caller's ignored signals stay ignored; the others act as in a new process."""
        for name in launch.FORWARDED:
            sig = getattr(signal, name)
            default = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
            signal.signal(sig, signal.SIG_IGN if sig in self.ignored else default)


def _exit_code(code: object) -> int:
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=sys.stderr)
    return 1


def finish(code: int) -> NoReturn:
    """End a child as the interpreter ends a process (threads joined, `atexit` run, output
    flushed) but without tearing its modules down: they are the warm process's, and freeing
    them touches every shared page (~0.2 s). `multiprocessing` ends its forked children so."""
    _flush()  # first: a process forked while it ends must not inherit output to write again
    shutdown = getattr(threading, "_shutdown", None)  # what Py_Finalize calls first
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()
    _flush()
    os._exit(code)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError, AttributeError):  # AttributeError: closed (None)
            stream.flush()


class Refused(ValueError):
    """A request that is not one; its text says why, never what the request held."""


def parse(payload: bytes, stdio: list[int]) -> Command:
    """A request as `launch.request` wrote it (ValueError when it is not one)."""
    fields = [os.fsdecode(f) for f in payload.split(b"\0")]
    if len(fields) < 8 or fields[0] != launch.PROTOCOL.decode() or len(stdio) != 3:
        raise Refused("not a branchwork-warm/2 request")
    identity, cwd, umask, limits, ignored, closed, argc = fields[1:8]
    count = int(argc)
    argv = fields[8 : 8 + count]
    env = dict(item.partition("=")[::2] for item in fields[8 + count :])
    sigs, shut = set(_numbers(ignored)), _numbers(closed)
    if len(argv) != count or not set(shut) <= {0, 1, 2}:
        raise Refused("a malformed request")
    return Command(identity, cwd, int(umask, 0), _limits(limits), sigs, shut, argv, env, stdio)


def _numbers(text: str) -> list[int]:
    return [int(n) for n in text.split(",") if n]


def _limits(text: str) -> dict[int, tuple[int, int]]:
    found = {}
    for item in filter(None, text.split(";")):
        name, _, values = item.partition("=")
        soft, _, hard = values.partition(",")
        if name in launch.RLIMITS and hasattr(resource, name):
            found[getattr(resource, name)] = (int(soft), int(hard))
    return found


def _above(limit: int, ceiling: int) -> bool:
    infinity = resource.RLIM_INFINITY
    return ceiling != infinity and (limit == infinity or limit > ceiling)


def takes_limits(command: Command) -> bool:
    """A child can take the caller's limits: none above ours (only root raises a hard one)."""
    if os.geteuid() == 0:
        return True
    return not any(
        _above(hard, resource.getrlimit(which)[1]) for which, (_, hard) in command.limits.items()
    )


def main() -> None:
    # Descriptors the starting command inherited (a caller's pipe among them) would be held
    # open for as long as this process lives.
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    os.umask(0o077)  # its socket, lock and log are for us alone, whatever the first caller's
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with suppress(OSError, ValueError):  # room for many callers; each child takes its own limits
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    command = serve(sys.argv[1])
    if command is not None:
        command.run()  # a child: the command ends the process as it would have on its own


def serve(path: str) -> Command | None:
    """Serve until idle; returns only in the server (None) or in a child (its command)."""
    folder = os.path.dirname(path)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    if not launch.private_dir(folder):
        return None
    os.chdir("/")
    with open(f"{path}.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # another one is up or starting
        _log_to(f"{path}.log")
        preload()
        if not _pidfds_work():
            print("warm: this kernel has no pidfd_open; not serving", file=sys.stderr)
            return None
        if threading.active_count() != 1:
            print("warm: an import started a thread; forking is not safe", file=sys.stderr)
            return None
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        return Server(path, lock).loop()


def preload() -> None:
    """Import what commands use, so that each child finds it loaded."""
    for name in PRELOAD:
        importlib.import_module(name)
    for name in branchwork.__all__:
        getattr(branchwork, name)
    entry.command()


def _pidfds_work() -> bool:
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


def _log_to(path: str) -> None:
    """stderr goes to the log, kept across warm processes (cut once it passes 1 MiB)."""
    long = os.path.exists(path) and os.path.getsize(path) > LOG_LIMIT
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if long else 0), 0o600)
    os.dup2(fd, 2)
    os.close(fd)


@dataclass
class Request:
    """A request being read, as much of it as has come (the caller's descriptors come with
    its first bytes; any sent later are dropped by the kernel)."""

    deadline: float
    data: bytearray = field(default_factory=bytearray)
    fds: list[int] = field(default_factory=list)

    def take(self, conn: socket.socket) -> bool:
        """Read what has come; True once the whole request is here."""
        if self.data:
            more = conn.recv(1 << 16)
        else:
            more, self.fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
        if not more:
            raise Refused("the caller left before the end of its request")
        self.data += more
        size = int.from_bytes(self.data[:4], "big") if len(self.data) >= 4 else 0
        if len(self.data) >= 4 and not 0 < size <= MAX_REQUEST:
            raise Refused("a bad length")
        if len(self.data) > size + 4 >= 4:
            raise Refused("more than announced")
        return len(self.data) == size + 4 > 4


class Server:
    """The accept loop: reads requests, forks children, reports their ends, kills those whose
    caller left. Nothing in it waits on one caller."""

    def __init__(self, path: str, lock: IO[str]) -> None:
        self.path = path
        self.lock = lock
        self.identity = launch.identity()
        self.stamp = stamp()
        self.idle = _idle_seconds()
        self.listening = True
        self.last = time.monotonic()
        self.pending: dict[socket.socket, Request] = {}  # oldest first
        self.children: dict[int, tuple[socket.socket, int]] = {}  # pid → caller, pidfd

    def loop(self) -> Command | None:
        with _listener(self.path) as listener, selectors.DefaultSelector() as selector:
            self.listener, self.selector, self.inode = listener, selector, _inode(self.path)
            selector.register(listener, selectors.EVENT_READ, ("listener", 0))
            while self.listening or self.children:
                ready = selector.select(self._timeout())
                for key, _ in ready:
                    if selector.get_map().get(key.fd) is not key:
                        continue  # closed by an earlier key of this round
                    command = self._ready(key)
                    if command is not None:
                        return command
                self._expire(ready)
            self._stop_listening()
        return None

    def _timeout(self) -> float | None:
        if self.pending:
            return max(0.0, min(r.deadline for r in self.pending.values()) - time.monotonic())
        return None if self.children else min(self.idle, CHECK_SECONDS)

    def _expire(self, ready: list[tuple[selectors.SelectorKey, int]]) -> None:
        """Drop requests past their time; stop when idle long enough or no longer reachable."""
        now = time.monotonic()
        for conn, request in list(self.pending.items()):
            if request.deadline <= now:
                self._drop(conn, "too slow")
        if ready or self.pending or self.children:
            self.last = now
        elif now - self.last >= self.idle or _inode(self.path) != self.inode:
            self._stop_listening()

    def _ready(self, key: selectors.SelectorKey) -> Command | None:
        kind, pid = key.data
        if kind == "listener":
            self._accept()
        elif kind == "request":
            return self._read(key.fileobj)  # type: ignore[arg-type]
        elif kind == "ended":
            self._ended(pid)
        else:  # the caller closed (or wrote): it is gone, and its command goes with it
            self.selector.unregister(key.fileobj)
            _kill(pid)
        return None

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError as exc:  # out of descriptors: pending requests free some in time
            print(f"warm: cannot accept: {exc}", file=sys.stderr, flush=True)
            return
        if not _same_user(conn):
            print("warm: refused a caller: another user", file=sys.stderr, flush=True)
            conn.close()
            return
        conn.setblocking(False)
        self.pending[conn] = Request(time.monotonic() + REQUEST_SECONDS)
        self.selector.register(conn, selectors.EVENT_READ, ("request", 0))
        if len(self.pending) > MAX_PENDING:
            self._drop(next(iter(self.pending)), "too many at once")

    def _read(self, conn: socket.socket) -> Command | None:
        request = self.pending[conn]
        try:
            if not request.take(conn):
                return None
            command = parse(bytes(request.data[4:]), request.fds)
        except BlockingIOError:
            return None
        except (OSError, ValueError) as exc:
            self._drop(conn, _why(exc))
            return None
        if _gone(conn):  # it gave up waiting (a stopped warm process), or was killed: not run
            self._drop(conn, "the caller left before its command started")
            return None
        del self.pending[conn]
        self.selector.unregister(conn)
        conn.setblocking(True)
        return self._serve(conn, command)

    def _drop(self, conn: socket.socket, why: str) -> None:
        print(f"warm: refused a caller: {why}", file=sys.stderr, flush=True)
        _close_fds(self.pending.pop(conn).fds)
        self.selector.unregister(conn)
        with suppress(OSError):  # a caller of ours runs the command itself on this answer
            conn.setblocking(False)
            conn.send(b"declined\n")
        conn.close()

    def _serve(self, conn: socket.socket, command: Command) -> Command | None:
        changed = self.changed()
        if command.identity != self.identity or changed or not takes_limits(command):
            _close_fds(command.stdio)
            _reply(conn, b"declined\n")
            conn.close()
            if changed:  # an edit or an install: the next caller starts a fresh process
                self._stop_listening()
            return None
        return self._fork(conn, command)

    def _fork(self, conn: socket.socket, command: Command) -> Command | None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self._leave(conn)
            return command
        _close_fds(command.stdio)
        # The caller hears of the child first: whatever fails next, it never runs the command
        # a second time itself (it waits for this child instead).
        _reply(conn, f"pid {pid}\n".encode())
        try:
            pidfd = os.pidfd_open(pid)
            self.children[pid] = (conn, pidfd)
            self.selector.register(pidfd, selectors.EVENT_READ, ("ended", pid))
            self.selector.register(conn, selectors.EVENT_READ, ("caller", pid))
        except (OSError, ValueError, KeyError) as exc:
            print(f"warm: lost track of pid {pid}: {exc}", file=sys.stderr, flush=True)
            self.children.pop(pid, None)
            conn.close()  # its caller waits for the child itself, then says so
        return None

    def _leave(self, conn: socket.socket) -> None:
        """In a new child: let go of every file of the server's (the with-blocks close the
        listener, the selector and the lock on the way out)."""
        for caller, pidfd in self.children.values():
            caller.close()
            os.close(pidfd)
        for other, request in self.pending.items():
            other.close()
            _close_fds(request.fds)
        conn.close()

    def _ended(self, pid: int) -> None:
        conn, pidfd = self.children.pop(pid)
        _, status = os.waitpid(pid, 0)
        self.selector.unregister(pidfd)
        os.close(pidfd)
        if conn.fileno() in self.selector.get_map():
            self.selector.unregister(conn)
        _reply(conn, f"exit {status}\n".encode())
        conn.close()
        print(f"warm: served pid {pid}, wait status {status}", file=sys.stderr, flush=True)

    def changed(self) -> bool:
        return stamp() != self.stamp

    def _stop_listening(self) -> None:
        """No new callers: the socket closes at once (a caller waiting in its queue runs the
        command itself), its file goes if it is still ours, the lock goes, and so do the
        requests not read yet."""
        if not self.listening:
            return
        self.listening = False
        self.selector.unregister(self.listener)
        if _inode(self.path) == self.inode:
            with suppress(OSError):
                os.unlink(self.path)
        self.listener.close()
        self.lock.close()
        for conn in list(self.pending):
            self._drop(conn, "no longer listening")


@contextmanager
def _listener(path: str) -> Iterator[socket.socket]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        if os.path.lexists(path):
            os.unlink(path)  # a server that died; we hold the lock
        sock.bind(path)
        sock.listen(64)
        yield sock


def _inode(path: str) -> int:
    try:
        return os.lstat(path).st_ino
    except OSError:
        return -1


def _gone(conn: socket.socket) -> bool:
    """The caller closed its end: nothing follows a request but the caller's close."""
    try:
        return conn.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _same_user(conn: socket.socket) -> bool:
    """The caller is us (`SO_PEERCRED`: pid, uid, gid)."""
    cred = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    return int.from_bytes(cred[4:8], sys.byteorder) == os.getuid()


def _why(exc: BaseException) -> str:
    """What the log says of a refused request: our reason or the system's, never the text of
    a field (`int()`'s message quotes it, and a field may hold a secret)."""
    return str(exc) if isinstance(exc, Refused | OSError) else type(exc).__name__


def stamp() -> dict[str, int]:
    """Modification times of our imported files, their folders and the import path: an edit
    or an install changes one of them."""
    ours = os.path.dirname(branchwork.__file__) + os.sep  # this module too: it is __main__
    files: set[str] = {
        file
        for module in list(sys.modules.values())
        if (file := getattr(module, "__file__", None)) and file.startswith(ours)
    }
    paths = files | {os.path.dirname(f) for f in files} | set(sys.path)
    return {p: _mtime(p) for p in paths if p}


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _idle_seconds() -> float:
    try:
        return max(1.0, float(os.environ.get("BRANCHWORK_WARM_IDLE", IDLE_SECONDS)))
    except ValueError:
        return IDLE_SECONDS


def _reply(conn: socket.socket, line: bytes) -> None:
    with suppress(OSError):  # the caller left; its child is (or will be) killed
        conn.sendall(line)


def _kill(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _close_fds(fds: list[int]) -> None:
    for fd in fds:
        with suppress(OSError):
            os.close(fd)


if __name__ == "__main__":
    main()
