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
after `BRANCHWORK_WARM_IDLE` seconds (default 900) with nothing to do. It opens no database
and starts no thread before forking: each child starts from imports only.
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
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import IO, NoReturn

import branchwork
from branchwork.cli import entry, launch, render

IDLE_SECONDS = 900.0
# Loaded by most commands: every child finds them imported.
PRELOAD = ("rich.progress", "rich.syntax", "rich.table", "typer.rich_utils", "sqlalchemy")
MAX_REQUEST = 1 << 22  # 4 MiB of arguments and environment
LOG_LIMIT = 1 << 20
RUN_ALONE = "BRANCHWORK_WARM=0 runs commands without a warm process"


@dataclass(frozen=True)
class Command:
    """One caller's command, as the child runs it."""

    identity: str
    cwd: str
    umask: int
    limits: dict[int, tuple[int, int]]  # resource → (soft, hard), as `ulimit` set them
    argv: list[str]
    env: dict[str, str]
    stdio: list[int]

    def run(self) -> NoReturn:
        """In the child: become the caller's process, then run the command as it would."""
        for target, fd in enumerate(self.stdio):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdout.reconfigure(line_buffering=os.isatty(1))  # type: ignore[union-attr]
        os.environ.clear()
        os.environ.update(self.env)
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


def _exit_code(code: object) -> int:
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=sys.stderr)
    return 1


def finish(code: int) -> NoReturn:
    """End a child as the interpreter ends a process (threads joined, `atexit` run, output
    flushed) but without tearing its modules down: they are the warm process's, and freeing
    them touches every shared page (~0.2 s). `multiprocessing` ends its forked children so."""
    shutdown = getattr(threading, "_shutdown", None)  # what Py_Finalize calls first
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def parse(payload: bytes, stdio: list[int]) -> Command:
    """A request as `launch.request` wrote it (ValueError when it is not one)."""
    fields = [os.fsdecode(f) for f in payload.split(b"\0")]
    if len(fields) < 6 or fields[0] != launch.PROTOCOL.decode() or len(stdio) != 3:
        raise ValueError("not a branchwork-warm request")
    identity, cwd, umask, limits, argc = fields[1:6]
    argv = fields[6 : 6 + int(argc)]
    env = dict(item.partition("=")[::2] for item in fields[6 + int(argc) :])
    return Command(identity, cwd, int(umask, 0), _limits(limits), argv, env, stdio)


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


class Server:
    """The accept loop: forks children, reports their ends, kills those whose caller left."""

    def __init__(self, path: str, lock: IO[str]) -> None:
        self.path = path
        self.lock = lock
        self.identity = launch.identity()
        self.stamp = stamp()
        self.idle = _idle_seconds()
        self.listening = True
        self.children: dict[int, tuple[socket.socket, int]] = {}  # pid → caller, pidfd

    def loop(self) -> Command | None:
        with _listener(self.path) as listener, selectors.DefaultSelector() as selector:
            self.selector = selector
            selector.register(listener, selectors.EVENT_READ, "listener")
            while self.listening or self.children:
                timeout = None if self.children else self.idle
                ready = selector.select(timeout)
                if not ready and not self.children:
                    break
                for key, _ in ready:
                    command = self._ready(key, listener)
                    if command is not None:
                        return command
            self._stop_listening(listener)
        return None

    def _ready(self, key: selectors.SelectorKey, listener: socket.socket) -> Command | None:
        kind, pid = key.data if isinstance(key.data, tuple) else (key.data, 0)
        if kind == "listener":
            return self._accept(listener)
        if kind == "ended":
            self._ended(pid)
        else:  # the caller closed (or wrote): it is gone, and its command goes with it
            self.selector.unregister(key.fileobj)
            _kill(pid)
        return None

    def _accept(self, listener: socket.socket) -> Command | None:
        conn, _ = listener.accept()
        command = _receive(conn)
        if command is None:
            conn.close()
            return None
        changed = self.changed()
        if command.identity != self.identity or changed or not takes_limits(command):
            _close_fds(command.stdio)
            _reply(conn, b"declined\n")
            conn.close()
            if changed:  # an edit or an install: the next caller starts a fresh process
                self._stop_listening(listener)
            return None
        return self._fork(conn, command, listener)

    def _fork(
        self, conn: socket.socket, command: Command, listener: socket.socket
    ) -> Command | None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self._leave(conn, listener)
            return command
        _close_fds(command.stdio)
        pidfd = os.pidfd_open(pid)
        self.children[pid] = (conn, pidfd)
        self.selector.register(pidfd, selectors.EVENT_READ, ("ended", pid))
        self.selector.register(conn, selectors.EVENT_READ, ("caller", pid))
        _reply(conn, f"pid {pid}\n".encode())
        return None

    def _leave(self, conn: socket.socket, listener: socket.socket) -> None:
        """In a new child: let go of every file of the server's (the with-blocks close the
        listener, the selector and the lock on the way out)."""
        for caller, pidfd in self.children.values():
            caller.close()
            os.close(pidfd)
        conn.close()
        signal.signal(signal.SIGINT, signal.default_int_handler)

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

    def _stop_listening(self, listener: socket.socket) -> None:
        """No new callers: the socket goes (if it is still ours) and so does the lock."""
        if not self.listening:
            return
        self.listening = False
        self.selector.unregister(listener)
        try:
            if os.stat(self.path).st_ino == os.fstat(listener.fileno()).st_ino:
                os.unlink(self.path)
        except OSError:
            pass
        self.lock.close()


@contextmanager
def _listener(path: str) -> Iterator[socket.socket]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        if os.path.lexists(path):
            os.unlink(path)  # a server that died; we hold the lock
        sock.bind(path)
        sock.listen(64)
        yield sock


def _receive(conn: socket.socket) -> Command | None:
    """The caller's command, if the caller is us and speaks the protocol."""
    stdio: list[int] = []
    try:
        conn.settimeout(5)
        cred = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        if int.from_bytes(cred[4:8], sys.byteorder) != os.getuid():
            return None
        data, stdio, _, _ = socket.recv_fds(conn, 65536, 3)
        size = int.from_bytes(data[:4], "big") if len(data) >= 4 else -1
        if not 0 < size <= MAX_REQUEST:
            raise ValueError("bad length")
        while len(data) < size + 4:
            more = conn.recv(size + 4 - len(data))
            if not more:
                raise ValueError("short request")
            data += more
        conn.settimeout(None)
        return parse(data[4:], stdio)
    except (OSError, ValueError) as exc:
        print(f"warm: refused a caller: {exc}", file=sys.stderr)
        _close_fds(stdio)
        return None


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
