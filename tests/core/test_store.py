"""The store: migrations, blobs, state."""

from __future__ import annotations

import itertools
from pathlib import Path

from sqlalchemy import inspect

from branchwork.store import Store
from branchwork.store.migrate import HEAD_REVISION, current_revision, script_head


def test_head_revision_constant_matches_the_migration_scripts() -> None:
    assert script_head() == HEAD_REVISION


def test_fresh_database_is_migrated_to_head_and_reopens(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    store = Store.open(url)
    assert current_revision(store.engine) == HEAD_REVISION
    tables = set(inspect(store.engine).get_table_names())
    assert {"projects", "sessions", "events", "blobs", "leases", "state"} <= tables
    store.close()
    again = Store.open(url)
    assert current_revision(again.engine) == HEAD_REVISION
    again.close()


def test_blobs_are_content_addressed_and_stored_once(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    first = store.put_blob(b"output" * 1000)
    second = store.put_blob(b"output" * 1000)
    assert first == second and len(first) == 64
    assert store.get_blob(first) == b"output" * 1000
    with store.engine.connect() as conn:
        count = conn.exec_driver_sql("select count(*) from blobs").scalar()
    assert count == 1
    store.close()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("pragma journal_mode").scalar() == "wal"
    store.close()


def test_migrations_are_an_ordered_named_chain() -> None:
    from branchwork.store import migrations

    versions = Path(migrations.__file__).parent / "versions"
    names = sorted(p.stem for p in versions.glob("[0-9][0-9][0-9][0-9]_*.py"))
    assert names[-1] == HEAD_REVISION
    for earlier, later in itertools.pairwise(names):
        text = (versions / f"{later}.py").read_text()
        assert f'down_revision = "{earlier}"' in text


def test_a_database_at_an_older_revision_is_upgraded_in_place(tmp_path: Path) -> None:
    from alembic import command

    from branchwork.store.engine import make_engine
    from branchwork.store.migrate import _config

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = make_engine(url)
    config = _config()
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001_initial")
        conn.commit()
    assert current_revision(engine) == "0001_initial"
    engine.dispose()
    store = Store.open(url)
    assert current_revision(store.engine) == HEAD_REVISION
    columns = {c["name"] for c in inspect(store.engine).get_columns("leases")}
    assert "cancel_requested" in columns
    store.close()
