"""Which models a caller over the network may choose: named ones, never a file of the server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Server, start_server, stop_server


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server as `branchwork serve` runs by default: `api_file_models` off."""
    started = start_server(tmp_path_factory.mktemp("strict"), file_models=False)
    yield started
    stop_server(started)


def test_a_model_that_reads_a_file_of_the_server_is_refused(strict: Server, tmp_path: Path) -> None:
    project = strict.project("models")
    session = strict.session("models")
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps(["the content of a file the caller should never see"]))
    member = strict.user("member")
    with strict.client(member) as client:
        for spec in (f"scripted:{replies}", "local:/etc/passwd", "local:../x.gguf"):
            answer = client.post(
                f"/api/sessions/{session.id}/messages", json={"text": "hi", "model": spec}
            )
            assert answer.status_code == 422, answer.text
            assert "names a file on the server" in answer.json()["detail"]
            created = client.post(
                f"/api/projects/{project.id}/sessions", json={"title": "t", "model": spec}
            )
            assert created.status_code == 422, created.text
        named = client.post(
            f"/api/projects/{project.id}/sessions", json={"title": "t", "model": "local:smollm2"}
        )
        assert named.status_code == 201, named.text
    events = httpx.get(
        f"{strict.url}/api/sessions/{session.id}/events",
        headers={"Authorization": f"Bearer {member}"},
    ).json()
    assert "never see" not in json.dumps(events)  # no turn ran on the refused models
