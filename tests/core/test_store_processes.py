"""The store across real processes: gap-free concurrent appends, concurrent first opens, and no
SQLAlchemy import on the everyday SQLite path."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

from branchwork.domain.events import Event, Note
from branchwork.store import Store
from branchwork.store.migrate import HEAD_REVISION, upgrade
from tests.core.test_store_api import make_project, make_session

_APPEND_BATCHES = """
import sys, time
from pathlib import Path
from branchwork.domain.events import Note
from branchwork.store import Store
url, session_id, name, batches = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
gate = Path(sys.argv[5])
store = Store.open(url)
(gate / name).touch()
while not (gate / "go").exists():  # all processes start appending at the same time
    time.sleep(0.001)
for b in range(batches):
    size = 1 + b % 4
    store.append(session_id, [(Note(text=f"{name} {b} {i}"), "agent") for i in range(size)])
    time.sleep(0.002)  # lets the others in: SQLite's busy handler is not fair
store.close()
"""

_OPEN_AND_LIST = """
import sys
from branchwork.store import Store
store = Store.open(sys.argv[1])
print(len(store.list_projects()))
store.close()
"""

_EVERYDAY_USE = """
import json, sys
from datetime import timedelta
from pathlib import Path
from branchwork.domain.events import Note
from branchwork.store import Store

url, session_id, project_id = sys.argv[1:4]
store = Store.open(url)
session = store.get_session(session_id)
store.find_project(project_id)
store.list_projects()
store.project_containing(Path("/src/demo/sub"))
store.find_sessions(session.short_id[:5])
store.session_containing(Path(session.worktree))
store.list_sessions(include_archived=True)
store.append(session_id, [(Note(text="one"), "user"), (Note(text="two"), "agent")])
store.events(session_id, kinds=["note"], limit=5)
list(store.iter_events(session_id))
list(store.iter_event_dicts(session_id))
store.tail_events(session_id, limit=2)
store.last_seq(session_id)
store.get_snapshot(session_id, "state")
store.get_blob(sys.argv[4])
store.get_state("key")
store.get_lease(session_id)
store.cancel_requested(session_id, "me")
store.close()
print(json.dumps({m: m in sys.modules for m in ("sqlalchemy", "alembic")}))
"""


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )


def test_concurrent_appends_from_several_processes_stay_gap_free(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    store = Store.open(url)
    session = make_session(store, make_project(store))
    names = [f"proc{n}" for n in range(4)]
    gate = tmp_path / "gate"
    gate.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _APPEND_BATCHES, url, session.id, name, "40", str(gate)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    deadline = time.monotonic() + 60
    while len(list(gate.iterdir())) < len(names) and time.monotonic() < deadline:
        time.sleep(0.005)
    (gate / "go").touch()
    for b in range(40):
        store.append(session.id, [(Note(text=f"main {b} 0"), "user")])
        time.sleep(0.002)
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    assert not any("locked" in e for e in errors)
    events = store.events(session.id)
    expected = 1 + 40 + 4 * sum(1 + b % 4 for b in range(40))
    assert [e.seq for e in events] == list(range(1, expected + 1))
    _assert_each_batch_is_contiguous(events[1:])
    store.close()


def _assert_each_batch_is_contiguous(events: list[Event]) -> None:
    batches: dict[tuple[str, str], list[int]] = defaultdict(list)
    for event in events:
        assert isinstance(event.payload, Note)
        name, batch, _ = event.payload.text.split()
        batches[name, batch].append(event.seq)
    for seqs in batches.values():
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def test_processes_opening_a_new_database_at_once_migrate_it_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'db.sqlite'}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_AND_LIST, url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in outputs]
    assert [out.strip() for out, _ in outputs] == ["0"] * 4
    store = Store.open(url)
    assert store.executor.revision() == HEAD_REVISION
    store.close()


def test_everyday_use_of_an_up_to_date_sqlite_database_imports_no_sqlalchemy(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    store = Store.open(url)
    project = make_project(store)
    session = make_session(store, project)
    store.put_snapshot(session.id, "state", 1, "{}")
    digest = store.put_blob(b"output")
    store.acquire_lease(session.id, "me", pid=1, host="h", ttl=timedelta(minutes=1))
    store.close()
    out = _run(_EVERYDAY_USE, url, session.id, project.id, digest)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"sqlalchemy": False, "alembic": False}


def test_a_database_that_needs_a_migration_is_migrated_with_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url, "0002_lease_cancel")
    out = _run(_OPEN_AND_LIST + "print('alembic' in sys.modules)", url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "True"]
