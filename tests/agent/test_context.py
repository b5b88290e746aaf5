"""Context building: budgets, elision of old tool outputs, and the system prompt."""

from __future__ import annotations

from pathlib import Path

from branchwork import Session, Workspace
from branchwork.agent import ProjectBrief
from branchwork.agent.context import Conversation, system_prompt
from branchwork.domain.messages import (
    AssistantTurn,
    Message,
    ToolCallPart,
    ToolResultTurn,
    UserTurn,
)
from branchwork.providers import ScriptedModel, ScriptedReply


def _exchange(n: int, size: int) -> list[Message]:
    call = ToolCallPart(call_id=f"c{n}", name="read_file", arguments={"path": "a"})
    return [
        UserTurn(text=f"q{n}"),
        AssistantTurn(tool_calls=[call]),
        ToolResultTurn(call_id=f"c{n}", name="read_file", content=f"{n}:" + "x" * size),
    ]


def test_old_tool_outputs_are_elided_first_and_recent_ones_kept_whole() -> None:
    messages = [m for n in range(10) for m in _exchange(n, 4000)]
    fitted = Conversation(messages).fitted(budget_tokens=5000)
    results = [m for m in fitted if isinstance(m, ToolResultTurn)]
    assert len(results) == 10
    assert all("output elided" in r.content for r in results[:-4])
    assert all(r.content.startswith(f"{i}:") for i, r in enumerate(results))
    assert all(len(r.content) == 4002 for r in results[-4:])


def test_when_elision_is_not_enough_oldest_exchanges_are_dropped_at_a_user_turn() -> None:
    messages = [m for n in range(50) for m in _exchange(n, 400)]
    fitted = Conversation(messages).fitted(budget_tokens=1500)
    assert isinstance(fitted[0], UserTurn)
    assert fitted[-1] == messages[-1]
    assert len(fitted) < len(messages)


def test_system_prompt_fits_its_budget_and_names_documents() -> None:
    brief = ProjectBrief(
        name="demo",
        readme_excerpt="R" * 50_000,
        file_tree="a.py\nb.py",
        repo_map="a.py: def main",
        documents=["Design (design.md)"],
    )
    prompt = system_prompt(brief, budget_tokens=600)
    assert "demo" in prompt and "Design (design.md)" in prompt and "def main" in prompt
    assert len(prompt) <= 600 * 4 + 200


def test_full_output_stays_in_the_log_when_the_model_sees_it_elided(
    ws: Workspace, session: Session
) -> None:
    big = "\n".join(f"line {i}" for i in range(3000))
    (Path(session.worktree) / "big.txt").write_text(big)
    model = ScriptedModel([ScriptedReply.call("run_command", command="cat big.txt"), "seen"])
    ws.send_message(session, "show it", model=model, mode="autopilot")
    result = ws.events(session, kinds=["tool_result"])[0].payload.model_dump()["output"]
    assert "characters elided" in result
    finished = ws.events(session, kinds=["command_finished"])[0].payload
    assert ws.command_output(finished).count("\n") == 2999  # type: ignore[arg-type]
