"""Event schema: golden logs of released writers load; replay is a pure fold."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from branchwork import EVENT_KINDS, Event, StoreError, parse_event, replay
from branchwork.domain.events import (
    SCHEMA_VERSIONS,
    Checkpoint,
    Payload,
    TodoUpdated,
    ToolCall,
    ToolResult,
    TurnFinished,
    TurnStarted,
)

GOLDEN = Path(__file__).parent / "fixtures" / "event_logs"


def test_every_golden_log_loads_and_covers_all_kinds_of_its_version() -> None:
    logs = sorted(GOLDEN.glob("*.jsonl"))
    assert logs, "golden logs missing"
    seen: set[str] = set()
    for log in logs:
        for line in log.read_text().splitlines():
            event = parse_event(json.loads(line))
            seen.add(event.kind)
            assert event.schema_version in SCHEMA_VERSIONS
    assert seen == set(EVENT_KINDS)


def test_unknown_schema_version_fails_fast() -> None:
    line = json.loads((GOLDEN / "v1.jsonl").read_text().splitlines()[0])
    line["schema_version"] = 99
    with pytest.raises(StoreError, match="unknown event schema version 99"):
        parse_event(line)


def test_unknown_kind_fails_fast() -> None:
    line = json.loads((GOLDEN / "v1.jsonl").read_text().splitlines()[0])
    line["payload"]["kind"] = "teleported"
    with pytest.raises(StoreError):
        parse_event(line)


_payloads = st.one_of(
    st.builds(
        Checkpoint,
        commit=st.text("abcdef0123456789", min_size=4),
        parent=st.just("p"),
        message=st.text(max_size=10),
    ),
    st.builds(
        TodoUpdated,
        item_id=st.sampled_from(["1", "2", "3"]),
        text=st.text(max_size=5),
        done=st.booleans(),
    ),
    st.builds(ToolCall, call_id=st.sampled_from(["a", "b"]), name=st.just("read_file")),
    st.builds(
        ToolResult,
        call_id=st.sampled_from(["a", "b"]),
        name=st.just("read_file"),
        output=st.just(""),
    ),
    st.builds(TurnStarted, turn_id=st.just("t"), model=st.just("m"), mode=st.just("ask")),
    st.builds(TurnFinished, turn_id=st.just("t"), status=st.just("completed"), steps=st.just(1)),
)


def _events(payloads: list[Payload]) -> list[Event]:
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        Event(id=f"E{i}", session_id="S", seq=i + 1, ts=ts, actor="system", payload=p)
        for i, p in enumerate(payloads)
    ]


@given(st.lists(_payloads, max_size=30))
def test_replaying_a_log_twice_gives_the_same_state(payloads: list[Payload]) -> None:
    events = _events(payloads)
    assert replay(events) == replay(events)
    half = len(events) // 2
    assert replay(events[half:], replay(events[:half])) == replay(events)


@given(st.lists(_payloads, max_size=30))
def test_last_seq_and_todos_follow_the_log(payloads: list[Payload]) -> None:
    state = replay(_events(payloads))
    assert state.last_seq == len(payloads)
    todo_ids = [p.item_id for p in payloads if isinstance(p, TodoUpdated)]
    assert [t.id for t in state.todos] == list(dict.fromkeys(todo_ids))


# The JSON schema of the payload union of each version. A change to any payload (a field added,
# even with a default) needs a new SCHEMA_VERSION, with its summary: `log --json` streams the
# payloads of the current version as stored, relying on them being complete.
PAYLOAD_SCHEMA_SHA256 = {
    1: "69ac3e2af40fde1411aef55df5957c89f79ead44873c5b5c134c9a4f2870ba27",
    2: "6d2c7f6d6001851701bb10bba8156f3a35d7691e1bd8afe0eb680c1a0cf4ede5",
    3: "58691c4559fd7214e51dc13e2f85ed03c6b0071cca1cc42971f0035fc4428437",
}


def test_a_payload_change_comes_with_a_new_schema_version() -> None:
    import hashlib

    from pydantic import TypeAdapter

    from branchwork.domain.events import SCHEMA_VERSION

    schema = json.dumps(TypeAdapter(Payload).json_schema(), sort_keys=True)
    digest = hashlib.sha256(schema.encode()).hexdigest()
    assert PAYLOAD_SCHEMA_SHA256.get(SCHEMA_VERSION) == digest, (
        "the payloads changed: add SCHEMA_VERSION + 1 with its summary, a golden log of it, "
        "and its schema digest here"
    )
