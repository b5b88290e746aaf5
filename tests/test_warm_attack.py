"""The warm process under attack (docs/cli-warm.md, "Attack review"): odd terminals and
environments behave as commands run on their own; a slow, flooding or lying peer never makes a
caller hang, signal a stranger or crash; a stopped or retired warm process never holds callers
up; nothing of a command's arguments or environment reaches the log. Real processes, real
sockets, a private runtime dir per test (the `runtime` fixture stops every warm process)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from branchwork.cli import launch
from branchwork.cli.launch import PROTOCOL
from tests import test_warm
from tests.conftest import BIN, bw
from tests.test_warm import _alive, _children, _served, _until, _warm_up

runtime = test_warm.runtime  # the fixture: a private runtime dir, its warm processes stopped

CLIENT = str(BIN / "branchwork")


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "COLUMNS": "200", **extra}


def _run(
    argv: list[str | bytes], cwd: Path | bytes, warm: str, **extra: str
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        argv, cwd=cwd, env=_env(BRANCHWORK_WARM=warm, **extra), capture_output=True, timeout=60
    )


def _alike(argv: list[str | bytes], cwd: Path | bytes, runtime: Path, **extra: str) -> None:
    """`argv` gives the same code and output warm (and is served warm) as on its own (the
    last line of stderr: a traceback names the warm process's frames too)."""
    served = _served(runtime)
    warm = _run(argv, cwd, "1", **extra)
    cold = _run(argv, cwd, "0", **extra)
    last = [p.stderr.strip().rsplit(b"\n", 1)[-1] for p in (warm, cold)]
    assert (warm.returncode, warm.stdout, last[0]) == (cold.returncode, cold.stdout, last[1])
    assert _served(runtime) == served + 1, argv


@pytest.fixture
def session(runtime: Path, repo: Path) -> Path:
    """A warm process up and a session in `repo` (for `run`)."""
    _warm_up(runtime, repo)
    bw("project", "add", ".", "--name", "demo", cwd=repo)
    bw("session", "new", "--title", "first", cwd=repo)
    return repo


# --- A user's odd terminal and environment ---------------------------------------------------


def test_closed_stdin_stdout_or_stderr_behave_as_on_their_own(session: Path, runtime: Path) -> None:
    for closed in ("<&-", ">&-", "2>&-"):
        script = f'exec "{CLIENT}" run -- sh -c "echo out; cat" {closed}'
        _alike(["bash", "-c", script], session, runtime)


def test_non_utf8_bytes_in_arguments_environment_and_directory(
    runtime: Path, repo: Path, tmp_path: Path
) -> None:
    odd = tmp_path / os.fsdecode(b"dir-\xff")
    odd.mkdir()
    argv: list[str | bytes] = [CLIENT, "--version", b"arg-\xfe"]
    env = {"LC_BW_TEST": os.fsdecode(b"\xfd"), "BW_ODD": os.fsdecode(b"\xfc")}
    _warm_up(runtime, repo)  # the locale variable keys a warm process of its own
    _run([CLIENT, "--version"], repo, "1", **env)
    _until(lambda: len(list(runtime.glob("*.sock"))) == 2)
    _alike(argv, os.fsencode(odd), runtime, **env)


def test_the_callers_time_zone_is_the_one_shown(
    session: Path, runtime: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The warm process started in UTC; times read at import (`time.tzset`) must follow TZ.
    monkeypatch.delenv("TZ", raising=False)
    for zone in ("Asia/Tokyo", "America/New_York"):
        _alike([CLIENT, "log"], session, runtime, TZ=zone)


def test_a_deleted_directory_fails_alike(session: Path, runtime: Path) -> None:
    script = f'mkdir gone && cd gone && rmdir ../gone && exec "{CLIENT}" session list'
    served = _served(runtime)
    warm, cold = (_run(["bash", "-c", script], session, w) for w in ("1", "0"))
    assert (warm.returncode, warm.stdout) == (cold.returncode, cold.stdout)
    assert b"Traceback" not in warm.stderr
    assert _served(runtime) <= served + 1


def test_a_pipe_closed_early_ends_alike(session: Path, runtime: Path) -> None:
    script = f'"{CLIENT}" run -- seq 100000 | head -1; echo "status ${{PIPESTATUS[0]}}" >&2'
    _alike(["bash", "-c", script], session, runtime)


def test_a_command_killed_by_a_signal_kills_its_caller_alike(session: Path, runtime: Path) -> None:
    server = int(next(runtime.glob("*.lock")).read_text())
    for sig in (signal.SIGTERM, signal.SIGKILL):
        client = subprocess.Popen(
            [CLIENT, "run", "--", "sleep", "30"], cwd=session, env=_env(), stderr=subprocess.PIPE
        )
        _until(lambda: _children(server))
        os.kill(_children(server)[0], sig)
        _, err = client.communicate(timeout=30)
        assert client.returncode == -sig, err
        assert b"Traceback" not in err


def test_a_hangup_the_caller_ignores_nohup_does_not_reach_the_command(
    session: Path, runtime: Path
) -> None:
    server = int(next(runtime.glob("*.lock")).read_text())
    client = subprocess.Popen(
        [CLIENT, "run", "--", "sleep", "1.5"],
        cwd=session,
        env=_env(),
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
    )
    _until(lambda: _children(server))
    time.sleep(0.3)
    client.send_signal(signal.SIGHUP)
    _, err = client.communicate(timeout=30)
    assert client.returncode == 0, err


def test_twenty_commands_at_once_are_each_served_once(runtime: Path, repo: Path) -> None:
    _warm_up(runtime, repo)
    served = _served(runtime)
    clients = [
        subprocess.Popen(
            [CLIENT, "--version"], cwd=repo, env=_env(), stdout=subprocess.PIPE, text=True
        )
        for _ in range(20)
    ]
    outputs = [c.communicate(timeout=60)[0] for c in clients]
    assert [c.returncode for c in clients] == [0] * 20
    assert all(o.startswith("branchwork ") for o in outputs)
    assert _served(runtime) == served + 20


# --- Lifecycle -------------------------------------------------------------------------------


def test_a_warm_process_killed_mid_command_leaves_its_caller_waiting_for_the_command_only(
    session: Path, runtime: Path
) -> None:
    server = int(next(runtime.glob("*.lock")).read_text())
    client = subprocess.Popen(
        [CLIENT, "run", "--", "sleep", "1"], cwd=session, env=_env(), stderr=subprocess.PIPE
    )
    _until(lambda: _children(server))
    os.kill(server, signal.SIGKILL)
    _, err = client.communicate(timeout=30)
    assert client.returncode == 1
    assert b"outcome is unknown" in err
    assert bw("--version", cwd=session).returncode == 0  # a stale socket: runs on its own


@pytest.fixture
def import_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory on the import path, as site-packages is (an install changes it)."""
    extra = tmp_path / "extra"
    extra.mkdir()
    monkeypatch.setenv("PYTHONPATH", f"{extra}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    return extra


def test_a_retiring_warm_process_holds_no_caller_up(
    import_dir: Path, session: Path, runtime: Path
) -> None:
    server = int(next(runtime.glob("*.lock")).read_text())
    sleeper = subprocess.Popen([CLIENT, "run", "--", "sleep", "20"], cwd=session, env=_env())
    try:
        _until(lambda: _children(server))
        (import_dir / "installed.py").write_text("")
        started = time.monotonic()
        for _ in range(3):
            assert bw("--version", cwd=session).returncode == 0
        assert time.monotonic() - started < 10
    finally:
        sleeper.kill()
        sleeper.wait()


def test_an_idle_warm_process_ends_and_the_next_command_starts_another(
    runtime: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRANCHWORK_WARM_IDLE", "1")
    first = _warm_up(runtime, repo)
    _until(lambda: not _alive(first), timeout=15)
    assert bw("--version", cwd=repo).returncode == 0
    _until(lambda: _served(runtime) == 0 and [p for p in _pids(runtime) if p != first])


def _pids(folder: Path) -> list[int]:
    return [int(t) for lock in folder.glob("*.lock") if (t := lock.read_text().strip()).isdigit()]


def test_a_removed_runtime_dir_is_made_again_and_the_old_warm_process_goes(
    runtime: Path, repo: Path
) -> None:
    first = _warm_up(runtime, repo)
    for item in runtime.iterdir():
        item.unlink()
    runtime.rmdir()
    assert bw("--version", cwd=repo).returncode == 0
    _until(lambda: [p for p in _pids(runtime) if p != first])
    assert bw("--version", cwd=repo).returncode == 0
    _until(lambda: not _alive(first), timeout=15)


def test_a_runtime_dir_that_is_a_link_is_never_used(runtime: Path, repo: Path) -> None:
    """A link planted where the runtime dir goes (as another user could in /tmp), even to a
    private directory of ours: never listened on, nothing started there."""
    target = runtime.parent / "elsewhere"
    target.mkdir(mode=0o700)
    runtime.symlink_to(target)
    assert bw("--version", cwd=repo).returncode == 0
    time.sleep(1)
    assert list(target.iterdir()) == []


# --- Attackers: slow, flooding or lying peers -------------------------------------------------


def test_a_slow_client_holds_no_one_up(runtime: Path, repo: Path) -> None:
    _warm_up(runtime, repo)
    path = str(next(runtime.glob("*.sock")))
    stop = threading.Event()
    slow = threading.Thread(target=_slowloris, args=(path, stop), daemon=True)
    slow.start()
    try:
        time.sleep(0.5)
        served = _served(runtime)
        started = time.monotonic()
        assert bw("--version", cwd=repo).returncode == 0
        assert time.monotonic() - started < 4
        assert _served(runtime) == served + 1
    finally:
        stop.set()
        slow.join()


def _slowloris(path: str, stop: threading.Event) -> None:
    """A request announced as 1000 bytes, sent one byte a second, with three descriptors."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        socket.send_fds(sock, [(1000).to_bytes(4, "big") + b"b"], [0, 1, 2])
        while not stop.wait(0.5):
            try:
                sock.send(b"x")
            except OSError:
                return


def test_many_idle_connections_exhaust_no_descriptors(runtime: Path, repo: Path) -> None:
    server = _warm_up(runtime, repo)
    path = str(next(runtime.glob("*.sock")))
    conns = []
    try:
        for _ in range(300):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(path)
            socket.send_fds(sock, [(1000).to_bytes(4, "big")], [0, 1, 2])
            conns.append(sock)
        served = _served(runtime)
        assert bw("--version", cwd=repo).returncode == 0
        assert _served(runtime) == served + 1
        assert _alive(server)
        assert len(os.listdir(f"/proc/{server}/fd")) < 600
    finally:
        for sock in conns:
            sock.close()


def test_nothing_of_arguments_or_environment_reaches_the_log(runtime: Path, repo: Path) -> None:
    _warm_up(runtime, repo)
    path = str(next(runtime.glob("*.sock")))
    secret = "hunter2-s3cr3t"
    _run([CLIENT, "--version", f"--{secret}"], repo, "1", API_KEY=secret)
    umask = f"UMASK={secret}".encode()  # `int()` of it quotes it in its message
    fields = [PROTOCOL, b"id", b"/", umask, b"", b"", b"", b"1", b"bw"]
    payload = b"\0".join(fields)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        socket.send_fds(sock, [len(payload).to_bytes(4, "big") + payload], [0, 1, 2])
        sock.settimeout(10)
        sock.recv(100)
    _until(lambda: "refused" in "".join(p.read_text() for p in runtime.glob("*.log")))
    assert secret not in "".join(p.read_text() for p in runtime.glob("*.log"))


FAKE = r"""
import json, os, socket, subprocess, sys, threading, time, fcntl
plan = json.loads(sys.argv[1])
locks = []
def serve(path, answer):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(8)
        open(path + ".ready", "w").close()  # the file exists from bind(); callers wait for this
        conn, _ = listener.accept()
        data, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
        for fd in fds:
            os.close(fd)  # else the caller's pipes stay open as long as this process
        while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "big"):
            more = conn.recv(1 << 20)  # the whole request: read, as a warm process reads it
            if not more:
                break
            data += more
        if answer.startswith("child:"):
            child = subprocess.Popen(["sleep", "0.3"])
            conn.sendall(f"pid {child.pid}\n".encode())
            child.wait()
            answer = answer.removeprefix("child:")
        if answer == "close":  # read the request, then went away without a word
            conn.close()
            open(path + ".answered", "w").close()
            return
        if answer == "flood":
            answer = "x" * (8 << 20)
        conn.sendall(answer.encode())
        open(path + ".answered", "w").close()
        time.sleep(60)
for path, answer in plan.items():
    lock = open(path + ".lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    lock.write(str(os.getpid()))
    lock.flush()
    locks.append(lock)
    threading.Thread(target=serve, args=(path, answer), daemon=True).start()
time.sleep(120)
"""


@pytest.fixture
def victim() -> Iterator[subprocess.Popen[bytes]]:
    """A process of ours that no fake answer may get signalled."""
    proc = subprocess.Popen(["sleep", "300"])
    yield proc
    proc.kill()
    proc.wait()


def test_a_lying_or_silent_warm_process_never_hangs_crashes_or_misleads_its_caller(
    runtime: Path, repo: Path, victim: subprocess.Popen[bytes]
) -> None:
    answers = {
        "silent": "",
        "victim": f"pid {victim.pid}\n",
        "zero": "pid 0\n",
        "init": "pid 1\n",
        "huge-pid": f"pid {10**30}\n",
        "flood": "flood",
        "no-status": "child:exit\n",
        "word-status": "child:exit abc\n",
        "huge-status": f"child:exit {10**30}\n",
        "stopped-status": "child:exit 4991\n",
        "close": "close",
        "declined": "declined\n",
    }
    runtime.mkdir(mode=0o700)
    paths = {name: _socket_path(repo, name) for name in answers}
    fake = subprocess.Popen(
        [sys.executable, "-c", FAKE, json.dumps({paths[n]: a for n, a in answers.items()})]
    )
    try:
        _until(lambda: all(os.path.exists(p + ".ready") for p in paths.values()))
        clients = {
            name: subprocess.Popen(
                [CLIENT, "--version"],
                cwd=repo,
                env=_env(LC_BW_FAKE=name),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            for name in answers
        }
        _until(lambda: os.path.exists(paths["victim"] + ".answered"))
        time.sleep(0.2)
        if clients["victim"].poll() is None:
            clients["victim"].send_signal(signal.SIGINT)
        results = {n: _outcome(c) for n, c in clients.items()}
    finally:
        fake.kill()
        fake.wait()
    assert victim.poll() is None, "a fake pid got a signal"
    for name, (_, err) in results.items():
        assert b"Traceback" not in err, (name, err)
        assert clients[name].returncode in (0, 1, 3, 130), (name, err)
    assert clients["silent"].returncode == 3
    assert b"did not answer" in results["silent"][1]
    for name in ("no-status", "word-status", "huge-status", "stopped-status"):
        assert b"outcome is unknown" in results[name][1], name
    # Gone after reading the request: the command may have started there, so it is not run
    # here a second time; declined: it is run here.
    assert clients["close"].returncode == 3
    assert b"closed without answering" in results["close"][1]
    assert b"check before running it again" in results["close"][1]
    assert results["close"][0] == b""
    assert (clients["declined"].returncode, results["declined"][0][:10]) == (0, b"branchwork")


def _answer_at_once(listener: socket.socket) -> None:
    """A warm process at its fastest: it reads a request, runs it (in no time), answers with
    the child's pid and status, and closes, perhaps before its caller is scheduled again."""
    with contextlib.suppress(OSError):  # the listener closed: the test is over
        while True:
            conn, _ = listener.accept()
            with conn:
                data, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
                for fd in fds:
                    os.close(fd)
                while len(data) < 4 + int.from_bytes(data[:4], "big"):
                    data += conn.recv(1 << 20)
                conn.sendall(b"pid 4194000\nexit 0\n")  # a pid of no one: no signal goes to it


def test_a_command_done_before_its_caller_is_scheduled_again_is_not_run_a_second_time(
    tmp_path: Path,
) -> None:
    """The doubled output the fault suite saw under load: a caller that sent its last byte
    and sent nothing more still failed (EPIPE) once the warm process had closed, and ran the
    command itself. Threads switching every microsecond make that interleaving common: before
    the fix, about one hand-over in six here ran twice."""
    path = str(tmp_path / "warm.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(8)
        server = threading.Thread(target=_answer_at_once, args=(listener,), daemon=True)
        server.start()
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)
        try:
            statuses = [launch._run_warm(path) for _ in range(2000)]
        finally:
            sys.setswitchinterval(interval)
            listener.shutdown(socket.SHUT_RDWR)
    server.join(timeout=10)
    assert statuses.count(None) == 0, "a caller ran a command the warm process had run"
    assert set(statuses) == {0}


def _outcome(client: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    try:
        return client.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        client.kill()
        return client.communicate()[0], b"hung"


def _socket_path(repo: Path, name: str) -> str:
    code = "from branchwork.cli.launch import socket_path; print(socket_path())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=_env(LC_BW_FAKE=name),
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_a_caller_gone_before_a_stopped_warm_process_read_it_is_not_run(
    session: Path, runtime: Path
) -> None:
    # It gave up waiting (`did not answer`) or was killed: the command must not start later.
    server = int(next(runtime.glob("*.lock")).read_text())
    served = _served(runtime)
    os.kill(server, signal.SIGSTOP)
    try:
        client = subprocess.Popen(
            [CLIENT, "run", "--", "touch", "late.txt"],
            cwd=session,
            env=_env(),
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # its request is in the socket's queue
        client.kill()
        client.wait()
    finally:
        os.kill(server, signal.SIGCONT)
    log = next(runtime.glob("*.log"))
    _until(lambda: _served(runtime) > served or "the caller left" in log.read_text())
    assert _served(runtime) == served, "its command started after it had gone"
    assert "command_started" not in bw("log", "--json", cwd=session).stdout
