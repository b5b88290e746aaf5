"""The store's interface on both executors (stdlib sqlite3 and SQLAlchemy): projects, sessions,
the event log, snapshots, leases and the values that come back."""

from __future__ import annotations

import json
import re
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from branchwork.domain.errors import NotFound, StoreError
from branchwork.domain.events import (
    Actor,
    CommandStarted,
    Note,
    Payload,
    SessionCreated,
    parse_event,
    utc_now,
)
from branchwork.domain.ids import new_id, short_id
from branchwork.domain.models import Project, Session
from branchwork.store import Store

GOLDEN = Path(__file__).parents[1] / "fixtures" / "event_logs" / "v1.jsonl"
STORED_DATETIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")


@pytest.fixture(params=["sqlite:///{}", "sqlite+pysqlite:///{}"], ids=["sqlite3", "sqlalchemy"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(request.param.format(tmp_path / "db.sqlite"))
    yield opened
    opened.close()


def make_project(store: Store, name: str = "demo", path: str = "/src/demo") -> Project:
    project = Project(id=new_id(), name=name, path=path, main_branch="main", created_at=utc_now())
    store.add_project(project)
    return project


def make_session(
    store: Store,
    project: Project,
    *,
    session_id: str | None = None,
    branch: str = "bw/x",
    worktree: str = "/wt/x",
) -> Session:
    now = utc_now()
    session = Session(
        id=session_id or new_id(),
        project_id=project.id,
        title="t",
        branch=branch,
        base_commit="c0ffee",
        worktree=worktree,
        status="active",
        created_at=now,
        last_activity=now,
        port=4000,
    )
    first = SessionCreated(
        project_id=project.id,
        title="t",
        branch=branch,
        base_commit="c0ffee",
        from_ref="main",
        worktree=worktree,
    )
    created, _ = store.add_session(session, first, port_block=10)
    return created


def notes(count: int, prefix: str = "n", actor: Actor = "agent") -> list[tuple[Payload, Actor]]:
    return [(Note(text=f"{prefix}{i}"), actor) for i in range(count)]


def raw(store: Store, statement: str, params: dict[str, object] | None = None) -> None:
    with store.executor.write() as tx:
        tx.run(statement, params)


# -- projects and sessions ---------------------------------------------------------------------


def test_project_round_trips_and_is_found_by_id_or_name(store: Store) -> None:
    project = make_project(store)
    assert store.find_project(project.id) == project
    assert store.find_project("demo") == project
    assert store.find_project("nope") is None
    assert store.list_projects() == [project]


def test_project_containing_a_path_is_the_deepest_registered_ancestor(store: Store) -> None:
    outer = make_project(store, "outer", "/src/outer")
    inner = make_project(store, "inner", "/src/outer/vendor/inner")
    assert store.project_containing(Path("/src/outer")) == outer
    assert store.project_containing(Path("/src/outer/lib/a")) == outer
    assert store.project_containing(Path("/src/outer/vendor/inner/pkg")) == inner
    assert store.project_containing(Path("/src/outerness")) is None
    assert store.project_containing(Path("/")) is None


def test_sessions_are_found_by_id_in_any_case_by_branch_or_by_short_id_prefix(
    store: Store,
) -> None:
    project = make_project(store)
    # Explicit ids: ULIDs made in the same millisecond differ only at their end (monotonic).
    one = make_session(store, project, session_id="01JAAAAAAAAAAAAAAAAAAAAAAA", branch="bw/one")
    two = make_session(store, project, session_id="01JAAAAAAAAAAAAAAAZZZZZZZZ", branch="bw/two")
    assert store.find_sessions(one.id) == [one]
    assert store.find_sessions(one.id.lower()) == [one]
    assert store.find_sessions("bw/two") == [two]
    assert store.find_sessions(one.short_id) == [one]
    assert store.find_sessions(two.short_id[:4].upper()) == [two]
    assert store.find_sessions(one.short_id[:3]) == []  # too short for a prefix
    assert store.find_sessions("yyyyyyyy") == []


def test_an_exact_branch_match_wins_over_short_id_prefixes(store: Store) -> None:
    project = make_project(store)
    ids = ["01AAAAAAAAAAAAAAAAABCD1111", "01AAAAAAAAAAAAAAAAABCD2222"]
    prefixed = [make_session(store, project, session_id=i, branch=f"bw/{i}") for i in ids]
    assert short_id(ids[0]).startswith("abcd")
    assert store.find_sessions("abcd") == prefixed[::-1]  # both, newest first
    named = make_session(store, project, branch="abcd")
    assert store.find_sessions("abcd") == [named]


def test_session_containing_a_path_is_the_deepest_worktree_archived_included(
    store: Store,
) -> None:
    project = make_project(store)
    one = make_session(store, project, branch="bw/one", worktree="/wt/one")
    two = make_session(store, project, branch="bw/two", worktree="/wt/one/nested")
    assert store.session_containing(Path("/wt/one/src/a.py")) == one
    assert store.session_containing(Path("/wt/one/nested/b")) == two
    assert store.session_containing(Path("/wt/other")) is None
    archived, _ = store.set_status(one.id, "archived", Note(text="bye"))
    assert store.session_containing(Path("/wt/one")) == archived


def test_list_sessions_filters_by_project_and_status_newest_first(store: Store) -> None:
    first, second = make_project(store, "a", "/a"), make_project(store, "b", "/b")
    s1 = make_session(store, first, branch="bw/1")
    s2 = make_session(store, first, branch="bw/2")
    s3 = make_session(store, second, branch="bw/3")
    archived, _ = store.set_status(s1.id, "archived", Note(text="done"))
    assert store.list_sessions() == [s3, s2]
    assert store.list_sessions(first.id) == [s2]
    assert store.list_sessions(first.id, include_archived=True) == [s2, archived]


def test_active_sessions_get_distinct_port_blocks(store: Store) -> None:
    project = make_project(store)
    ports = [make_session(store, project, branch=f"bw/{i}").port for i in range(3)]
    assert ports == [4000, 4010, 4020]


def test_set_status_returns_the_updated_session_and_its_event(store: Store) -> None:
    project = make_project(store)
    session = make_session(store, project)
    archived, event = store.set_status(session.id, "archived", Note(text="archived"))
    assert archived.status == "archived" and event.seq == 2 and event.actor == "system"
    assert archived == store.get_session(session.id)
    assert archived.last_activity == event.ts
    make_session(store, project, branch="bw/other")  # takes port 4000 meanwhile
    active, _ = store.set_status(session.id, "active", Note(text="back"), ports=(4000, 10))
    assert active.status == "active" and active.port == 4010


def test_a_refused_write_is_a_store_error_and_changes_nothing(store: Store) -> None:
    project = make_project(store)
    twin = project.model_copy(update={"name": "twin"})
    with pytest.raises(StoreError, match="refused the change"):
        store.add_project(twin)  # same id
    assert store.list_projects() == [project]


def test_update_session_changes_allowed_fields_only(store: Store) -> None:
    session = make_session(store, make_project(store))
    updated = store.update_session(session.id, title="new title", mode="autopilot")
    assert updated.title == "new title" and updated.mode == "autopilot"
    assert store.get_session(session.id) == updated
    with pytest.raises(StoreError, match="cannot update"):
        store.update_session(session.id, branch="bw/evil")
    with pytest.raises(NotFound):
        store.update_session("nope", title="x")


def test_removing_a_project_removes_its_sessions_events_snapshots_and_leases(
    store: Store,
) -> None:
    kept = make_session(store, make_project(store, "kept", "/kept"), branch="bw/kept")
    project = make_project(store)
    session = make_session(store, project)
    store.append(session.id, notes(3))
    store.put_snapshot(session.id, "state", 4, "{}")
    store.acquire_lease(session.id, "h", pid=1, host="x", ttl=timedelta(minutes=1))
    store.remove_project(project.id)
    assert store.find_project(project.id) is None
    assert store.list_sessions(include_archived=True) == [kept]
    with store.executor.read() as tx:
        for table in ("events", "snapshots", "leases"):
            count = tx.rows(
                f"SELECT count(*) FROM {table} WHERE session_id = :s", {"s": session.id}
            )
            assert count == [(0,)], table


# -- the event log -----------------------------------------------------------------------------


def test_append_writes_a_batch_with_consecutive_seqs_in_one_go(store: Store) -> None:
    session = make_session(store, make_project(store))
    assert store.append(session.id, []) == []
    assert store.last_seq(session.id) == 1
    batch = store.append(session.id, notes(5, actor="user"))
    assert [e.seq for e in batch] == [2, 3, 4, 5, 6]
    assert all(e.actor == "user" and e.session_id == session.id for e in batch)
    assert len({e.id for e in batch}) == 5
    assert store.last_seq(session.id) == 6
    assert store.events(session.id, after_seq=1) == batch
    assert store.get_session(session.id).last_activity == batch[-1].ts


def test_append_to_an_unknown_session_writes_nothing(store: Store) -> None:
    with pytest.raises(NotFound):
        store.append("nope", notes(2))
    with store.executor.read() as tx:
        assert tx.rows("SELECT count(*) FROM events") == [(0,)]


def test_appends_from_several_threads_of_one_store_stay_gap_free(store: Store) -> None:
    session = make_session(store, make_project(store))

    def work(name: str) -> None:
        for i in range(20):
            store.append(session.id, notes(3, prefix=f"{name}-{i}-"))

    threads = [threading.Thread(target=work, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [e.seq for e in store.iter_events(session.id)] == list(range(1, 2 + 4 * 20 * 3))


def test_reads_page_through_long_logs_with_limits_kinds_and_after_seq(store: Store) -> None:
    session = make_session(store, make_project(store))
    for start in range(0, 2500, 500):
        store.append(session.id, notes(500, prefix=f"{start}-"))
    assert [e.seq for e in store.iter_events(session.id)] == list(range(1, 2502))
    assert [e.seq for e in store.events(session.id, after_seq=700, limit=1500)] == list(
        range(701, 2201)
    )
    assert len(store.events(session.id, kinds=["note"])) == 2500
    assert [e.seq for e in store.events(session.id, kinds=["session_created"])] == [1]
    assert list(store.iter_events(session.id, after_seq=2501)) == []


def test_a_streamed_read_holds_no_transaction_between_pages(store: Store) -> None:
    session = make_session(store, make_project(store))
    store.append(session.id, notes(1500))
    seen = 0
    for event in store.iter_events(session.id):
        seen += 1
        if event.seq == 10:
            store.append(session.id, notes(2, prefix="late"))  # same thread, mid-stream
    assert seen == 1503


def test_streamed_reads_hold_one_page_in_memory_not_the_whole_log(store: Store) -> None:
    session = make_session(store, make_project(store))
    for start in range(0, 8000, 1000):
        store.append(session.id, notes(1000, prefix=f"{start} {'x' * 1000} "))

    def peak(read: Callable[[], object]) -> int:
        tracemalloc.start()
        try:
            read()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    whole = peak(lambda: store.events(session.id))
    streamed = peak(lambda: sum(1 for _ in store.iter_events(session.id)))
    dicts = peak(lambda: sum(1 for _ in store.iter_event_dicts(session.id)))
    assert streamed < whole / 4 and dicts < whole / 4, (whole, streamed, dicts)


def test_tail_events_are_the_newest_in_ascending_order(store: Store) -> None:
    session = make_session(store, make_project(store))
    store.append(session.id, notes(10))
    assert [e.seq for e in store.tail_events(session.id, limit=3)] == [9, 10, 11]
    assert [e.seq for e in store.tail_events(session.id, limit=3, before_seq=5)] == [2, 3, 4]
    created = store.tail_events(session.id, limit=5, kinds=["session_created"])
    assert [e.seq for e in created] == [1]
    assert store.tail_events(session.id, limit=5, before_seq=1) == []


def test_datetimes_come_back_aware_utc_and_are_stored_as_naive_utc_text(store: Store) -> None:
    project = make_project(store)
    session = make_session(store, project)
    (event,) = store.append(session.id, notes(1))
    assert event.ts.tzinfo is UTC
    read = store.events(session.id, after_seq=1)[0]
    assert read.ts == event.ts and read.ts.utcoffset() == timedelta(0)
    assert store.find_project(project.id).created_at.tzinfo is not None  # type: ignore[union-attr]
    with store.executor.read() as tx:
        texts = [r[0] for r in tx.rows("SELECT ts FROM events")]
        texts += [r[0] for r in tx.rows("SELECT created_at FROM sessions")]
    assert texts and all(STORED_DATETIME.match(t) for t in texts), texts


def test_lease_values_come_back_as_bool_and_aware_datetimes(store: Store) -> None:
    session = make_session(store, make_project(store))
    ttl = timedelta(minutes=1)
    assert store.acquire_lease(session.id, "me", pid=7, host="h", ttl=ttl) is None
    held = store.acquire_lease(session.id, "other", pid=8, host="h", ttl=ttl)
    assert held is not None and held["holder"] == "me" and held["cancel_requested"] is False
    assert held["expires_at"] > datetime.now(UTC)
    assert store.cancel_requested(session.id, "me") is False
    assert store.request_cancel(session.id) is True
    assert store.cancel_requested(session.id, "me") is True
    assert store.get_lease(session.id)["cancel_requested"] is True  # type: ignore[index]
    store.release_lease(session.id, "other")
    assert store.get_lease(session.id) is not None
    store.release_lease(session.id, "me")
    assert store.get_lease(session.id) is None
    assert store.request_cancel(session.id) is False


def test_state_values_are_set_replaced_and_cleared(store: Store) -> None:
    assert store.get_state("k") is None
    store.set_state("k", "one")
    store.set_state("k", "two")
    assert store.get_state("k") == "two"
    store.set_state("k", None)
    assert store.get_state("k") is None


def test_snapshots_are_upserted_and_never_move_back(store: Store) -> None:
    session = make_session(store, make_project(store))
    assert store.get_snapshot(session.id, "state") is None
    store.put_snapshot(session.id, "state", 10, "ten")
    store.put_snapshot(session.id, "state", 4, "four")
    assert store.get_snapshot(session.id, "state") == (10, "ten")
    store.put_snapshot(session.id, "state", 12, "twelve")
    store.put_snapshot(session.id, "other", 1, "one")
    assert store.get_snapshot(session.id, "state") == (12, "twelve")
    assert store.get_snapshot(session.id, "other") == (1, "one")


def test_a_closed_store_opens_new_connections_when_used_again(store: Store) -> None:
    session = make_session(store, make_project(store))
    store.close()
    assert store.last_seq(session.id) == 1


# -- JSON dicts of events ----------------------------------------------------------------------


def golden_session(store: Store) -> Session:
    """A session holding every kind of event of the golden v1 log, with its actors."""
    session = make_session(store, make_project(store))
    lines = [json.loads(line) for line in GOLDEN.read_text().splitlines()]
    events = [parse_event(line) for line in lines]
    store.append(session.id, [(e.payload, e.actor) for e in events])
    return session


def test_event_dicts_equal_to_json_dict_of_every_kind_key_order_included(store: Store) -> None:
    session = golden_session(store)
    expected = [e.to_json_dict() for e in store.iter_events(session.id)]
    got = list(store.iter_event_dicts(session.id))
    assert got == expected
    assert [json.dumps(d) for d in got] == [json.dumps(d) for d in expected]
    kinds = ["note", "tool_call"]
    expected = [e.to_json_dict() for e in store.events(session.id, after_seq=3, kinds=kinds)]
    assert list(store.iter_event_dicts(session.id, after_seq=3, kinds=kinds)) == expected


def test_event_lines_parse_to_the_json_dict_for_current_and_older_versions(store: Store) -> None:
    session = golden_session(store)  # appended now: the current schema version
    raw(store, "UPDATE events SET schema_version = 1 WHERE seq % 2 = 0", {})
    first = parse_event(json.loads(GOLDEN.read_text().splitlines()[0]))
    v1_written = store.events(session.id, kinds=["file_written"])[0]
    trimmed = v1_written.payload.model_dump(mode="json", exclude={"diff_bytes"})
    raw(
        store,
        "UPDATE events SET payload = :p, schema_version = 1 WHERE id = :id",
        {"p": json.dumps(trimmed), "id": v1_written.id},
    )
    expected = [e.to_json_dict() for e in store.iter_events(session.id)]
    lines = list(store.iter_event_lines(session.id))
    assert [json.loads(line) for _, line in lines] == expected
    assert [seq for seq, _ in lines] == [e["seq"] for e in expected]
    assert first.kind == expected[0]["kind"]


def test_event_dicts_render_whole_seconds_and_old_payloads_as_pydantic_does(
    store: Store,
) -> None:
    session = make_session(store, make_project(store))
    started = CommandStarted(command_id="c1", command="ls", cwd="/wt", timeout_s=30.0)
    (event,) = store.append(session.id, [(started, "user")])
    old = started.model_dump(mode="json", exclude={"pid", "host", "argv"})
    ts = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    raw(
        store,
        "UPDATE events SET payload = :p, ts = :ts WHERE id = :id",
        {"p": json.dumps(old), "ts": "2026-01-02 03:04:05.000000", "id": event.id},
    )
    (got,) = store.iter_event_dicts(session.id, after_seq=1)
    (parsed,) = store.events(session.id, after_seq=1)
    assert parsed.ts == ts and got["ts"] == "2026-01-02T03:04:05Z"
    assert json.dumps(got) == json.dumps(parsed.to_json_dict())


def test_event_dicts_fail_like_parsing_on_an_unknown_schema_version(store: Store) -> None:
    session = make_session(store, make_project(store))
    raw(store, "UPDATE events SET schema_version = 99 WHERE session_id = :s", {"s": session.id})
    with pytest.raises(StoreError, match="unknown event schema version 99"):
        list(store.iter_event_dicts(session.id))
    with pytest.raises(StoreError, match="unknown event schema version 99"):
        store.events(session.id)


def test_event_dicts_fail_like_parsing_on_an_unknown_kind_or_field(store: Store) -> None:
    session = make_session(store, make_project(store))
    (event,) = store.append(session.id, notes(1))
    bad = json.dumps({"kind": "note", "text": "x", "level": "info", "colour": "red"})
    raw(store, "UPDATE events SET payload = :p WHERE id = :id", {"p": bad, "id": event.id})
    with pytest.raises(StoreError, match="unreadable event"):
        list(store.iter_event_dicts(session.id))
    raw(store, "UPDATE events SET kind = 'teleported' WHERE id = :id", {"id": event.id})
    with pytest.raises(StoreError, match="unknown event kind"):
        list(store.iter_event_dicts(session.id))


@pytest.mark.parametrize("microsecond", [0, 1, 120000, 999999])
def test_every_dialect_renders_timestamps_as_pydantic_does(microsecond: int) -> None:
    from branchwork.domain.events import Event
    from branchwork.store.rows import NativeCodec, SqliteCodec

    when = datetime(2026, 12, 2, 5, 42, 49, microsecond, tzinfo=UTC)
    event = Event(id="E", session_id="S", seq=1, ts=when, actor="user", payload=Note(text="x"))
    expected = event.to_json_dict()["ts"]
    sqlite, native = SqliteCodec(), NativeCodec()
    assert sqlite.json(sqlite.param(when)) == expected
    assert native.json(native.param(when)) == expected
    assert sqlite.value(sqlite.param(when)) == when == native.value(native.param(when))
