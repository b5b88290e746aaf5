"""A real Branchwork server (`branchwork serve`, a subprocess) on loopback, per test module,
with its own data directory; tests reach it with httpx and set it up with the CLI or a
Workspace on the same data directory (as another process would)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from branchwork import Project, Session, Workspace
from tests.conftest import BIN, make_repo


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    home: Path
    proc: subprocess.Popen[str]
    admin_token: str = ""
    counter: list[int] = field(default_factory=lambda: [0])
    file_models: bool = True  # the tests' scripted models are files (BRANCHWORK_API_FILE_MODELS)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BRANCHWORK_")}
        files = {"BRANCHWORK_API_FILE_MODELS": "1"} if self.file_models else {}
        return {**env, **files, "BRANCHWORK_HOME": str(self.home), "COLUMNS": "200"}

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [str(BIN / "branchwork"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def user(self, role: str = "member", project: str | None = None) -> str:
        """A new user's token (named uniquely)."""
        self.counter[0] += 1
        args = ["user", "add", f"user{self.counter[0]}", "--role", role]
        return (
            self.cli(*args, *(["--project", project] if project else [])).strip().splitlines()[-1]
        )

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def workspace(self) -> Workspace:
        return Workspace(home=self.home)

    def project(self, name: str, files: dict[str, str] | None = None) -> Project:
        repo = make_repo(self.home.parent / name, files or {"README.md": "# demo\n"})
        with self.workspace() as ws:
            return ws.add_project(repo, name=name)

    def session(self, project: str, title: str = "work") -> Session:
        with self.workspace() as ws:
            return ws.new_session(project, title=title)


def start_server(root: Path, *extra: str, file_models: bool = True) -> Server:
    home = root / "home"
    home.mkdir(parents=True)
    port = free_port()
    server = Server(f"http://127.0.0.1:{port}", home, None)  # type: ignore[arg-type]
    server.file_models = file_models
    server.admin_token = server.user("admin")
    server.proc = subprocess.Popen(
        [str(BIN / "branchwork"), "serve", "--port", str(port), *extra],
        env=server.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    _wait_until_up(server)
    return server


def _wait_until_up(server: Server) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{server.url}/openapi.json", timeout=1)
            return
        except httpx.TransportError:
            if server.proc.poll() is not None:
                output = server.proc.stdout.read() if server.proc.stdout else ""
                raise AssertionError(f"the server exited: {output}") from None
            time.sleep(0.1)
    raise AssertionError("the server did not start within 30 s")


def stop_server(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait(5)
    if server.proc.stdout:
        server.proc.stdout.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    started = start_server(tmp_path_factory.mktemp("server"))
    yield started
    stop_server(started)


@pytest.fixture
def admin(server: Server) -> Iterator[httpx.Client]:
    with server.client(server.admin_token) as client:
        yield client
