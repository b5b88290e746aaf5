"""Schemathesis over the server's OpenAPI schema: generated requests never get a 500.

Bounded: a few examples per operation, with real ids for the path (a project and a session
that exist) so that requests reach the use cases, not only the 404 of an unknown id. Left out:
the streams and the terminal (they do not end), starting turns (the embedded model), running
commands (arbitrary shell lines), adding projects (cloning arbitrary URLs), the calls that
revoke the token the test uses, and those that start agent turns in the background (starting
or retrying trials, addressing a review: up to 20 workers of the embedded model each).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.api.conftest import Server, start_server, stop_server

pytestmark = pytest.mark.filterwarnings("ignore")  # schemathesis' own warnings
EXCLUDED = r"(/stream|/terminal|/messages|/commands|/logout|/tokens/\{token_id\})$"
STARTS_TURNS = r"(/trials|/retry|/address)$"


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    server = start_server(tmp_path_factory.mktemp("fuzz"), "--rate", "0")
    server.project("fuzz", {"README.md": "# fuzz\n", "app.py": "print('hi')\n"})
    session = server.session("fuzz")
    with server.workspace() as ws:
        ws.new_task("fuzz me", project="fuzz")
        ws.write_file(session.id, "app.py", "print('hello')\n")
        ws.propose(session.id)
    server.cli("user", "add", "fuzzer", "--role", "viewer")
    ids = {"project": "fuzz", "session_id": session.id, "name": "fuzzer", "task": "1"}
    yield server, {**ids, "number": "1", "trial": "1"}
    stop_server(server)


@pytest.fixture(scope="module")
def api_schema(fuzzed: tuple[Server, dict[str, str]]) -> Any:
    server, _ = fuzzed
    document = httpx.get(f"{server.url}/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    schema.config.base_url = server.url
    kept = schema.exclude(path_regex=EXCLUDED).exclude(method="POST", path="/api/projects")
    return kept.exclude(method="POST", path_regex=STARTS_TURNS)


def test_no_generated_request_gets_a_server_error(
    api_schema: Any, fuzzed: tuple[Server, dict[str, str]]
) -> None:
    server, ids = fuzzed
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    tested = 0
    statuses: dict[int, int] = {}
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: Any) -> None:
            for name in case.path_parameters or {}:
                if name in ids:
                    case.path_parameters[name] = ids[name]
            response = case.call_and_validate(
                headers=headers, checks=[not_a_server_error], timeout=30
            )
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        check()
        tested += 1
    assert tested >= 25
    assert sum(n for code, n in statuses.items() if code < 300) >= 50, statuses  # use cases reached
