"""The harness behaves whatever the model does: it stops a stuck model, ends every turn with an
answer, accounts for every token and second, keeps to budgets, and compacts long sessions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from branchwork import Budget, Conflict, ModelCall, Session, Workspace
from branchwork.agent.context import SUMMARY_HEADER
from branchwork.domain.messages import Usage, UserTurn
from branchwork.providers import ScriptedModel, ScriptedReply
from branchwork.providers.prices import Price, PriceTable, load_prices
from tests.conftest import bw


def call(name: str, **arguments: object) -> ScriptedReply:
    return ScriptedReply.model_validate({"tool_calls": [{"name": name, "arguments": arguments}]})


def _payloads(ws: Workspace, session: Session, kind: str) -> list[dict[str, object]]:
    return [e.payload.model_dump() for e in ws.events(session, kinds=[kind])]


def test_a_repeated_call_is_answered_with_a_note_then_the_turn_ends_stuck_with_an_answer(
    ws: Workspace, session: Session
) -> None:
    model = ScriptedModel([call("read_file", path="app.py")] * 3 + ["I read app.py three times."])
    result = ws.send_message(session, "what is in app.py?", model=model)
    assert result.status == "stuck" and "read_file called 3 times" in result.detail
    assert result.text == "I read app.py three times."
    results = _payloads(ws, session, "tool_result")
    assert "hello" in str(results[0]["output"])  # run once
    assert "Not run again" in str(results[1]["output"]) and results[1]["is_error"]
    assert "not run" in str(results[2]["output"])
    assert len(_payloads(ws, session, "file_read")) == 1  # the repeats did not read again
    finished = _payloads(ws, session, "turn_finished")[-1]
    assert finished["status"] == "stuck"
    model.assert_complete()


def test_the_stuck_threshold_comes_from_the_settings(repo: Path, tmp_path: Path) -> None:
    with Workspace(home=tmp_path / "home", stuck_repeats=1) as ws:
        session = ws.new_session(ws.add_project(repo))
        model = ScriptedModel([call("list_files")] * 2 + ["done"])
        assert ws.send_message(session, "go", model=model).status == "stuck"


def test_every_model_request_is_recorded_with_tokens_time_and_cost(
    ws: Workspace, session: Session
) -> None:
    usage = Usage(input_tokens=1000, output_tokens=50, cached_tokens=400, source="reported")
    model = ScriptedModel(
        [
            ScriptedReply(tool_calls=call("list_files").tool_calls, usage=usage),
            ScriptedReply(text="two files", usage=usage),
        ]
    )
    result = ws.send_message(session, "list", model=model)
    calls = [e.payload for e in ws.events(session, kinds=["model_call"])]
    assert len(calls) == 2 and all(isinstance(c, ModelCall) for c in calls)
    first = calls[0]
    assert isinstance(first, ModelCall)
    assert (first.input_tokens, first.output_tokens, first.cached_tokens) == (1000, 50, 400)
    assert first.usage_source == "reported" and first.latency_ms >= 0 and first.cost_usd == 0.0
    assert result.usage.input_tokens == 2000 and result.cost_usd == 0.0
    finished = _payloads(ws, session, "turn_finished")[-1]
    assert finished["input_tokens"] == 2000 and finished["cached_tokens"] == 800
    assert int(str(finished["duration_ms"])) >= 0
    spent = ws.session_details(session).state.usage
    assert spent.model_calls == 2 and spent.tokens == 2100 and spent.priced


def test_usage_is_estimated_never_zero_when_the_provider_reports_none(
    ws: Workspace, session: Session
) -> None:
    ws.send_message(session, "hello there", model=ScriptedModel(["a reply of some words"]))
    (model_call,) = [e.payload for e in ws.events(session, kinds=["model_call"])]
    assert isinstance(model_call, ModelCall)
    assert model_call.usage_source == "estimated"
    assert model_call.input_tokens > 0 and model_call.output_tokens > 0
    assert ws.session_details(session).state.usage.estimated


def test_prices_come_from_the_packaged_table_and_an_override(tmp_path: Path) -> None:
    table = load_prices()
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cached_tokens=0)
    assert table.cost("openai:gpt-4o-mini-2024-07-18", usage) == pytest.approx(0.75)
    assert table.cost("openai:some-new-model", usage) is None
    override = tmp_path / "prices.toml"
    override.write_text('["openai:some-new-model"]\ninput = 1.0\noutput = 2.0\n')
    assert load_prices(override).cost("openai:some-new-model", usage) == pytest.approx(3.0)
    cached = Usage(input_tokens=1_000_000, output_tokens=0, cached_tokens=500_000)
    price = PriceTable({"m": Price(input=2.0, output=0.0, cached_input=0.5)})
    assert price.cost("m", cached) == pytest.approx(1.25)


def test_a_budget_ends_the_turn_and_the_next_is_refused_until_raised(
    ws: Workspace, session: Session
) -> None:
    ws.set_budget(session, tokens=150)
    usage = Usage(input_tokens=100, output_tokens=100, source="reported")
    model = ScriptedModel(
        [
            ScriptedReply(tool_calls=call("list_files").tool_calls, usage=usage),
            ScriptedReply(text="I listed the files; reading them is left.", usage=usage),
        ]
    )
    result = ws.send_message(session, "read everything", model=model)
    assert result.status == "budget" and "200 tokens used of a budget of 150" in result.detail
    assert result.text == "I listed the files; reading them is left."
    with pytest.raises(Conflict, match=r"budget .* is reached"):
        ws.send_message(session, "go on", model=ScriptedModel(["never asked"]))
    ws.set_budget(session, tokens=10_000)
    assert ws.send_message(session, "go on", model=ScriptedModel(["ok"])).status == "completed"
    ws.configure_session(session, budget=Budget())
    assert ws.session_details(session).state.budget == Budget()


def test_a_project_budget_counts_all_its_sessions(ws: Workspace, session: Session) -> None:
    ws.configure_project(session.project_id, budget=Budget(tokens=10))
    ws.send_message(session, "first", model=ScriptedModel(["a long enough answer"]))
    other = ws.new_session(session.project_id)
    with pytest.raises(Conflict, match="budget of project"):
        ws.send_message(other, "second", model=ScriptedModel(["never asked"]))


def _long_history(ws: Workspace, session: Session, exchanges: int) -> None:
    big = "x" * 3000
    for n in range(exchanges):
        model = ScriptedModel([call("list_files", path=f"dir{n}"), f"answer {n} {big}"])
        ws.send_message(session, f"question {n} {big}", model=model)


def test_compaction_triggers_near_the_window_and_the_context_starts_from_the_summary(
    ws: Workspace, session: Session
) -> None:
    _long_history(ws, session, 5)
    model = ScriptedModel(["SUMMARY: five questions answered, files listed.", "the answer"])
    model.context_tokens = 4000  # type: ignore[attr-defined]  # a small window
    result = ws.send_message(session, "next question", model=model)
    assert result.status == "completed"
    compaction, turn = model.requests
    assert compaction.tools == [] and "Summarise the conversation" in compaction.messages[-1].text
    (compacted,) = _payloads(ws, session, "compacted")
    assert compacted["summary"] == "SUMMARY: five questions answered, files listed."
    first = turn.messages[0]
    assert isinstance(first, UserTurn) and first.text.startswith(SUMMARY_HEADER)
    assert "SUMMARY: five questions" in first.text
    texts = [m.text for m in turn.messages if isinstance(m, UserTurn)]
    assert not any(t.startswith("question 0") for t in texts)  # summarised away
    assert any(t.startswith("question 4") for t in texts)  # the recent exchanges kept
    assert texts[-1] == "next question"
    purposes = [e.payload.model_dump()["purpose"] for e in ws.events(session, kinds=["model_call"])]
    assert purposes[-2:] == ["compaction", "step"]


def test_a_resumed_session_continues_from_its_compaction(repo: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Workspace(home=home) as ws:
        session = ws.new_session(ws.add_project(repo))
        _long_history(ws, session, 4)
        compacted = ws.compact(session, model=ScriptedModel(["SUMMARY: the story so far."]))
        assert compacted is not None and compacted.messages > 0
    with Workspace(home=home) as again:  # as a new process would
        model = ScriptedModel(["resumed"])
        again.send_message(session.id, "where were we?", model=model)
    messages = model.requests[0].messages
    assert isinstance(messages[0], UserTurn) and "SUMMARY: the story so far." in messages[0].text
    assert sum(isinstance(m, UserTurn) for m in messages) <= 4


def test_compact_says_when_there_is_too_little(ws: Workspace, session: Session) -> None:
    ws.send_message(session, "hi", model=ScriptedModel(["hello"]))
    assert ws.compact(session, model=ScriptedModel([])) is None


def test_a_turn_after_a_crash_tells_the_model(ws: Workspace, session: Session) -> None:
    from branchwork.domain.events import TurnStarted, UserMessage
    from branchwork.store import Store

    store = Store.open(ws.settings.resolved_database_url)
    started = TurnStarted(turn_id="T0", model="scripted", mode="auto-edit")
    store.append(session.id, [(started, "system"), (UserMessage(text="old", turn_id="T0"), "user")])
    store.close()
    model = ScriptedModel(["ok"])
    ws.send_message(session, "continue", model=model)
    said = model.requests[0].messages[-1]
    assert isinstance(said, UserTurn) and said.text.startswith("[Your previous turn")
    assert said.text.endswith("continue")
    assert _payloads(ws, session, "user_message")[-1]["text"] == "continue"  # as typed


def test_ask_exits_with_a_code_per_outcome(repo: Path, tmp_path: Path) -> None:
    bw("project", "add", ".", cwd=repo)
    bw("session", "new", cwd=repo)
    script = tmp_path / "stuck.json"
    replies = [{"tool_calls": [{"name": "list_files", "arguments": {}}]}] * 3 + ["stopped"]
    script.write_text(json.dumps(replies))
    stuck = bw("ask", "--model", f"scripted:{script}", "--json", "go", cwd=repo, check=False)
    assert stuck.returncode == 5
    events = [json.loads(line) for line in stuck.stdout.splitlines()]
    assert events[-1]["kind"] == "turn_finished" and events[-1]["payload"]["status"] == "stuck"
    script.write_text(json.dumps([{"tool_calls": [{"name": "list_files", "arguments": {}}]}, "x"]))
    limit = bw(
        "ask", "--model", f"scripted:{script}", "--max-steps", "1", "go", cwd=repo, check=False
    )
    assert limit.returncode == 4 and "step_limit" in limit.stdout


def test_chat_keeps_one_scripted_model_across_turns(repo: Path, tmp_path: Path) -> None:
    bw("project", "add", ".", cwd=repo)
    script = tmp_path / "replies.json"
    script.write_text(json.dumps(["first answer", "second answer"]))
    chat = bw("chat", "--new", "--model", f"scripted:{script}", cwd=repo, stdin="one\ntwo\n/exit\n")
    assert "first answer" in chat.stdout and "second answer" in chat.stdout
    answers = [
        json.loads(line)["payload"]["text"]
        for line in bw("log", "--json", "--kind", "agent_message", cwd=repo).stdout.splitlines()
    ]
    assert answers == ["first answer", "second answer"]
