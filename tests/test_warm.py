"""The warm process (`cli/launch.py`, `cli/warm.py`): commands it runs behave as commands run
on their own, a caller's terminal, directory, umask, environment and signals reach its command,
a caller that dies takes its command along, and nothing is served across users, edits or
unsafe directories. Real processes, a real socket; the runtime dir is private to each test."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BIN, bw, stop_warm_processes


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private runtime dir (short: socket paths are limited to 108 bytes); every warm
    process started there is stopped afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="bw-rt-"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    monkeypatch.setenv("BRANCHWORK_WARM", "1")
    yield folder / "branchwork"
    stop_warm_processes(folder / "branchwork")
    shutil.rmtree(folder, ignore_errors=True)


def _server_pids(folder: Path) -> list[int]:
    pids = []
    for lock in folder.glob("*.lock"):
        text = lock.read_text().strip()
        if text.isdigit() and _alive(int(text)):
            pids.append(int(text))
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _until(ready: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def _served(folder: Path) -> int:
    """How many commands warm processes in `folder` have run to their end."""
    return sum(log.read_text().count("warm: served pid") for log in folder.glob("*.log"))


def _warm_up(folder: Path, cwd: Path) -> int:
    """Run a first command (it starts a warm process); the warm process's pid."""
    bw("--version", cwd=cwd)
    _until(lambda: list(folder.glob("*.sock")) and _server_pids(folder))
    return _server_pids(folder)[0]


def _warm_project(folder: Path, repo: Path) -> int:
    """A warm process (its pid), and a project `demo` on `repo` with a session `first`."""
    pid = _warm_up(folder, repo)
    bw("project", "add", ".", "--name", "demo", cwd=repo)
    bw("session", "new", "--title", "first", cwd=repo)
    return pid


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def test_commands_behave_alike_warm_and_on_their_own(
    runtime: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _warm_project(runtime, repo)
    commands = [
        ("--version",),
        ("session", "list", "--json"),
        ("session", "show", "no-such-session"),
        ("search", "hello"),
        ("session", "new", "--mode", "bogus"),
    ]
    failing = ("run", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    served = _served(runtime)
    for command in commands:  # each one warm, then on its own
        monkeypatch.setenv("BRANCHWORK_WARM", "1")
        w = bw(*command, cwd=repo, check=False)
        monkeypatch.setenv("BRANCHWORK_WARM", "0")
        c = bw(*command, cwd=repo, check=False)
        assert (w.returncode, w.stdout, w.stderr) == (c.returncode, c.stdout, c.stderr), command
    cold_run = bw(*failing, cwd=repo, check=False)
    monkeypatch.setenv("BRANCHWORK_WARM", "1")
    warm_run = bw(*failing, cwd=repo, check=False)
    assert _served(runtime) == served + len(commands) + 1
    assert [p.returncode for p in (warm_run, cold_run)] == [3, 3]
    for proc in (warm_run, cold_run):
        assert "out" in proc.stdout and "err" in proc.stdout + proc.stderr


def test_the_caller_s_stdin_directory_environment_and_umask_reach_the_command(
    runtime: Path, repo: Path, tmp_path: Path
) -> None:
    _warm_project(runtime, repo)
    served = _served(runtime)
    written = bw("write", "notes.txt", cwd=repo, stdin="from stdin\n")
    assert "notes.txt" in written.stdout
    assert bw("read", "notes.txt", cwd=repo).stdout == "from stdin\n"
    umask = subprocess.run(
        [str(BIN / "branchwork"), "run", "--", "sh", "-c", "umask; pwd"],
        cwd=repo,
        capture_output=True,
        text=True,
        preexec_fn=lambda: os.umask(0o027),
        timeout=60,
    )
    assert umask.returncode == 0, umask.stderr
    assert "0027" in umask.stdout
    other = {**os.environ, "BRANCHWORK_HOME": str(tmp_path / "other-home")}
    listed = subprocess.run(
        [str(BIN / "branchwork"), "session", "list", "--all", "--json"],
        cwd=repo,
        env=other,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "first" not in listed.stdout + listed.stderr
    assert "first" in bw("session", "list", "--all", "--json", cwd=repo).stdout
    assert _served(runtime) == served + 5


def test_the_caller_s_resource_limits_reach_the_command(
    runtime: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _warm_project(runtime, repo)
    limited = f"ulimit -S -s 4096; exec {BIN / 'branchwork'} run -- sh -c 'ulimit -s'"
    shown = {}
    for warm in ("1", "0"):
        monkeypatch.setenv("BRANCHWORK_WARM", warm)
        served = _served(runtime)
        proc = subprocess.run(["bash", "-c", limited], cwd=repo, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert _served(runtime) == served + (warm == "1")
        shown[warm] = proc.stdout.split()
    assert shown["1"] == shown["0"] == ["4096"]


def test_signals_are_passed_on_and_a_dead_caller_takes_its_command_along(
    runtime: Path, repo: Path
) -> None:
    server = _warm_project(runtime, repo)
    argv = [str(BIN / "branchwork"), "run", "--", "sleep", "60"]
    interrupted = subprocess.Popen(argv, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _until(lambda: _children(server))
    time.sleep(0.5)  # the command is running
    interrupted.send_signal(signal.SIGINT)
    _, err = interrupted.communicate(timeout=30)
    assert interrupted.returncode == 130, err
    assert b"cancel" in err.lower() or b"interrupt" in err.lower(), err
    _until(lambda: not _children(server))

    killed = subprocess.Popen(argv, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _until(lambda: _children(server))
    child = _children(server)[0]
    killed.kill()
    killed.communicate(timeout=30)
    _until(lambda: not _alive(child), timeout=10)
    assert bw("session", "list", cwd=repo).returncode == 0  # still serving


def test_an_edit_or_an_install_retires_the_warm_process(
    runtime: Path, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = tmp_path / "extra"  # a directory on the import path, as site-packages is
    extra.mkdir()
    monkeypatch.setenv("PYTHONPATH", str(extra))
    first = _warm_up(runtime, repo)
    served = _served(runtime)
    assert bw("--version", cwd=repo).returncode == 0
    assert _served(runtime) == served + 1, [p.read_text() for p in runtime.glob("*.log")]
    (extra / "installed.py").write_text("")
    assert bw("--version", cwd=repo).stdout.startswith("branchwork")
    assert _served(runtime) == served + 1  # declined: it ran on its own
    _until(lambda: [p for p in _server_pids(runtime) if p != first])
    _until(lambda: not _alive(first))
    assert bw("--version", cwd=repo).returncode == 0
    _until(lambda: _served(runtime) == served + 2)


def test_a_runtime_dir_others_can_enter_is_never_used(runtime: Path, repo: Path) -> None:
    runtime.mkdir(mode=0o755)
    runtime.chmod(0o755)
    assert bw("--version", cwd=repo).returncode == 0
    assert bw("--version", cwd=repo).returncode == 0
    time.sleep(1)
    assert list(runtime.iterdir()) == []


def test_turned_off_nothing_starts(
    runtime: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRANCHWORK_WARM", "0")
    assert bw("--version", cwd=repo).returncode == 0
    time.sleep(1)
    assert not runtime.exists()


def test_on_by_default(runtime: Path, repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BRANCHWORK_WARM")
    _warm_up(runtime, repo)
    served = _served(runtime)
    assert bw("--version", cwd=repo).returncode == 0
    _until(lambda: _served(runtime) == served + 1)


def test_garbage_and_other_users_are_refused_and_serving_goes_on(runtime: Path, repo: Path) -> None:
    _warm_up(runtime, repo)
    sock_path = str(next(runtime.glob("*.sock")))
    for garbage in (b"", b"\x00\x00\x00\x05hello", b"\xff\xff\xff\xff", b"\x00" * 9):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(sock_path)
            sock.sendall(garbage)
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(10)
            assert sock.recv(100) in (b"", b"declined\n")
    if os.getuid() == 0:  # as root the test can be someone else: the server must refuse them
        for folder in (runtime.parent, runtime):
            folder.chmod(0o711)
        Path(sock_path).chmod(0o777)
        try:
            assert _as_nobody(sock_path) == b""
        finally:
            runtime.chmod(0o700)
    assert "warm: refused a caller" in "".join(p.read_text() for p in runtime.glob("*.log"))
    served = _served(runtime)
    assert bw("--version", cwd=repo).returncode == 0
    assert _served(runtime) == served + 1


def _as_nobody(sock_path: str) -> bytes:
    """What the warm process answers a well-formed request from another user."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.setgid(65534)
            os.setuid(65534)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(sock_path)
                payload = b"\0".join([b"branchwork-warm/1", b"x", b"/", b"18", b"", b"1", b"bw"])
                sock.settimeout(10)
                try:
                    socket.send_fds(sock, [len(payload).to_bytes(4, "big") + payload], [0, 1, 2])
                    answer = sock.recv(100)
                except ConnectionError:  # closed on us, our request unread
                    answer = b""
                os.write(write, b"answer:" + answer)
        except BaseException as exc:
            os.write(write, repr(exc).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as answer:
        got = answer.read()
    os.waitpid(pid, 0)
    assert got.startswith(b"answer:"), got
    return got.removeprefix(b"answer:")
