"""The store's schema: migrations to head, upgrade in place, WAL, blobs, the migrations chain."""

from __future__ import annotations

import itertools
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import inspect

from branchwork.domain.errors import StoreError
from branchwork.store import Store
from branchwork.store.engine import make_engine
from branchwork.store.migrate import HEAD_REVISION, current_revision, script_head, upgrade

URL_FORMS = ["sqlite:///{}", "sqlite+pysqlite:///{}"]


def test_head_revision_constant_matches_the_migration_scripts() -> None:
    assert script_head() == HEAD_REVISION


@pytest.mark.parametrize("form", URL_FORMS)
def test_fresh_database_is_migrated_to_head_and_reopens(tmp_path: Path, form: str) -> None:
    url = form.format(tmp_path / "db.sqlite")
    store = Store.open(url)
    assert store.url == url
    assert store.executor.revision() == HEAD_REVISION
    store.close()
    engine = make_engine(url)
    assert current_revision(engine) == HEAD_REVISION
    tables = set(inspect(engine).get_table_names())
    assert {"projects", "sessions", "events", "blobs", "leases", "state", "snapshots"} <= tables
    engine.dispose()
    again = Store.open(url)
    assert again.executor.revision() == HEAD_REVISION
    again.close()


def test_migrations_create_exactly_the_tables_module(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from branchwork.store.tables import metadata

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    Store.open(url).close()
    engine = make_engine(url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    engine.dispose()


def test_blobs_are_content_addressed_and_stored_once(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    first = store.put_blob(b"output" * 1000)
    second = store.put_blob(b"output" * 1000)
    assert first == second and len(first) == 64
    assert store.get_blob(first) == b"output" * 1000
    with store.executor.read() as tx:
        assert tx.rows("SELECT count(*) FROM blobs") == [(1,)]
    store.close()


def test_sqlite_runs_in_wal_with_normal_sync_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    store = Store.open(f"sqlite:///{path}")
    with store.executor.read() as tx:
        assert tx.rows("PRAGMA journal_mode") == [("wal",)]
        assert tx.rows("PRAGMA synchronous") == [(1,)]  # NORMAL
        assert tx.rows("PRAGMA foreign_keys") == [(1,)]
        assert tx.rows("PRAGMA busy_timeout") == [(30000,)]
    store.close()
    with closing(sqlite3.connect(path)) as conn:  # WAL is a property of the file
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_migrations_are_an_ordered_named_chain() -> None:
    from branchwork.store import migrations

    versions = Path(migrations.__file__).parent / "versions"
    names = sorted(p.stem for p in versions.glob("[0-9][0-9][0-9][0-9]_*.py"))
    assert names[-1] == HEAD_REVISION
    for earlier, later in itertools.pairwise(names):
        text = (versions / f"{later}.py").read_text()
        assert f'down_revision = "{earlier}"' in text


def test_a_database_at_an_older_revision_is_upgraded_in_place(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    upgrade(url, "0001_initial")
    engine = make_engine(url)
    assert current_revision(engine) == "0001_initial"
    engine.dispose()
    store = Store.open(url)
    assert store.executor.revision() == HEAD_REVISION
    store.close()
    engine = make_engine(url)
    columns = {c["name"] for c in inspect(engine).get_columns("leases")}
    assert "cancel_requested" in columns
    assert "snapshots" in inspect(engine).get_table_names()
    engine.dispose()


def test_a_database_from_a_newer_branchwork_is_refused_with_the_remedy(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    store = Store.open(url)
    with store.executor.write() as tx:
        tx.run("UPDATE alembic_version SET version_num = '9999_future'")
    store.close()
    with pytest.raises(StoreError, match="upgrade Branchwork"):
        Store.open(url)


def test_a_file_that_is_no_database_is_refused_with_the_remedy(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    path.write_bytes(b"this is not a database, just text " * 100)
    with pytest.raises(StoreError, match="not a Branchwork database"):
        Store.open(f"sqlite:///{path}")


def test_rows_written_through_sqlalchemy_types_read_back_the_same(tmp_path: Path) -> None:
    """Databases written by earlier versions (SQLAlchemy `UTCDateTime` columns) stay readable."""
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from branchwork.store.tables import events, projects, sessions

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    upgrade(url, "0002_lease_cancel")
    when = datetime(2025, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            insert(projects).values(
                id="P1",
                name="p",
                path="/p",
                main_branch="main",
                created_at=when,
                config="{}",
                env="{}",
                secret_names="[]",
            )
        )
        conn.execute(
            insert(sessions).values(
                id="S1",
                project_id="P1",
                title="t",
                branch="b",
                base_commit="c",
                worktree="/w",
                status="active",
                created_at=when,
                last_activity=when,
                port=4000,
                last_seq=1,
            )
        )
        conn.execute(
            insert(events).values(
                id="E1",
                session_id="S1",
                seq=1,
                kind="note",
                ts=when,
                actor="user",
                schema_version=1,
                payload='{"kind":"note","text":"hi","level":"info"}',
            )
        )
    engine.dispose()
    store = Store.open(url)
    assert store.get_session("S1").created_at == when
    assert store.find_project("p").created_at == when  # type: ignore[union-attr]
    (event,) = store.events("S1")
    assert event.ts == when and event.payload.kind == "note"
    assert list(store.iter_event_dicts("S1")) == [event.to_json_dict()]
    store.close()
