"""Broken data directories, with real files and real processes: each is one `StoreError` line
naming the file, the problem and the remedy, and nothing already stored is lost.

- the database path: a directory, under a file, not a SQLite file, truncated, zero-length;
- writes with no room: SQLite's own limit (SQLITE_FULL), a process whose file size limit
  (`RLIMIT_FSIZE`, SIGXFSZ ignored) makes every write fail with EFBIG, a real full file system
  (a tiny tmpfs in a user + mount namespace, skipped where those are not allowed);
- a data directory the process cannot write (as root: a subprocess that drops to `nobody` on a
  directory owned by root; otherwise: the directory and its files made read-only).
After each failure the database is reopened by a healthy process and compared, row for row, with
what was stored before.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from branchwork.domain.errors import StoreError
from branchwork.domain.events import Note
from branchwork.store import (
    DamagedDatabase,
    DatabaseFileError,
    EmptyDatabase,
    OutOfSpace,
    ReadOnlyDataDir,
    Store,
    file_write_error,
)
from branchwork.store.migrate import HEAD_REVISION
from tests.conftest import make_repo
from tests.core.test_store_api import make_project, make_session

URL_FORMS = ["sqlite:///{}", "sqlite+pysqlite:///{}"]
TABLES = ("projects", "sessions", "events", "blobs", "state", "leases", "snapshots")


def _one_line(error: BaseException, *mentions: object) -> str:
    message = str(error)
    assert "\n" not in message and len(message) < 500, message
    for mention in mentions:
        assert str(mention) in message, message
    return message


def _seed(url: str, *, big: int = 0) -> dict[str, str]:
    """A database with two projects, two sessions (one holding a lease), events, a blob, a
    snapshot and a state value; returns their ids."""
    store = Store.open(url)
    project = make_project(store)
    spare = make_project(store, name="spare", path="/src/spare")
    session = make_session(store, project)
    other = make_session(store, project, branch="bw/y", worktree="/wt/y")
    store.append(session.id, [(Note(text=f"note {i} " + "x" * big), "agent") for i in range(30)])
    digest = store.put_blob(b"output " * 1000)
    store.put_snapshot(session.id, "state", 5, '{"n": 5}')
    store.set_state("current", session.id)
    store.acquire_lease(session.id, "held", pid=1, host="h", ttl=timedelta(hours=1))
    store.close()
    return {
        "project": project.id,
        "spare": spare.id,
        "session": session.id,
        "other": other.id,
        "blob": digest,
    }


def _contents(url: str) -> dict[str, list[list[Any]]]:
    """Every row of every table, opened by this (healthy) process."""
    store = Store.open(url)
    try:
        with store.executor.read() as tx:
            return {
                table: [list(row) for row in tx.rows(f"SELECT * FROM {table} ORDER BY 1, 2")]
                for table in TABLES
            }
    finally:
        store.close()


def _note_texts(url: str, session_id: str) -> list[str]:
    store = Store.open(url)
    try:
        return [e.payload.text for e in store.events(session_id) if isinstance(e.payload, Note)]
    finally:
        store.close()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# -- the database path -------------------------------------------------------------------------


@pytest.mark.parametrize("form", URL_FORMS)
def test_a_directory_in_place_of_the_file_is_refused(tmp_path: Path, form: str) -> None:
    path = tmp_path / "db.sqlite"
    path.mkdir()
    with pytest.raises(DatabaseFileError) as caught:
        Store.open(form.format(path))
    message = _one_line(caught.value, path, "is a directory", "BRANCHWORK_DATABASE_URL")
    assert "move the directory out of the way" in message
    assert _listing(tmp_path) == ["db.sqlite"] and _listing(path) == []


@pytest.mark.parametrize("form", URL_FORMS)
def test_a_data_dir_that_cannot_be_created_names_the_file_in_the_way(
    tmp_path: Path, form: str
) -> None:
    (tmp_path / "home").write_text("a file, not a directory")
    path = tmp_path / "home" / "data" / "db.sqlite"
    with pytest.raises(StoreError) as caught:
        Store.open(form.format(path))
    _one_line(caught.value, path, f"{tmp_path / 'home'} is a file where a directory should be")
    assert (tmp_path / "home").read_text() == "a file, not a directory"


def _damaged(kind: str, good: bytes) -> bytes:
    if kind == "random bytes":
        return hashlib.sha512(b"seed").digest() * 128
    if kind == "overwritten header":
        return b"\0" * 100 + good[100:]
    if kind == "first half":
        return good[: len(good) // 2]
    assert kind == "first page only"
    return good[:4096]


@pytest.mark.parametrize("form", URL_FORMS)
@pytest.mark.parametrize(
    "kind", ["random bytes", "overwritten header", "first half", "first page only"]
)
def test_a_damaged_file_is_refused_with_the_remedy_and_left_untouched(
    tmp_path: Path, form: str, kind: str
) -> None:
    good = tmp_path / "good.sqlite"
    _seed(f"sqlite:///{good}", big=2000)  # ~60 pages: a truncation loses most of them
    path = tmp_path / "db.sqlite"
    path.write_bytes(_damaged(kind, good.read_bytes()))
    before = _sha256(path)
    with pytest.raises(DamagedDatabase) as caught:
        Store.open(form.format(path))
    message = _one_line(caught.value, path, "backup", "`branchwork doctor --rebuild`")
    if kind in ("random bytes", "overwritten header"):
        assert "is not a Branchwork database" in message
    else:
        assert "is damaged" in message and "truncated" in message
    assert caught.value.path == path
    assert _sha256(path) == before and _listing(tmp_path) == ["db.sqlite", "good.sqlite"]


@pytest.mark.parametrize("form", URL_FORMS)
def test_a_zero_length_file_is_refused_and_left_as_it_is(tmp_path: Path, form: str) -> None:
    path = tmp_path / "db.sqlite"
    path.touch()
    with pytest.raises(EmptyDatabase) as caught:
        Store.open(form.format(path))
    message = _one_line(caught.value, path, "empty file (0 bytes)")
    assert "run `branchwork doctor --rebuild` to recover them" in message
    assert "delete the file to start from scratch" in message
    assert path.stat().st_size == 0 and _listing(tmp_path) == ["db.sqlite"]


@pytest.mark.parametrize("form", URL_FORMS)
def test_allow_empty_initialises_a_zero_length_file_for_the_rebuild(
    tmp_path: Path, form: str
) -> None:
    path = tmp_path / "db.sqlite"
    path.touch()
    url = form.format(path)
    store = Store.open(url, allow_empty=True)
    assert store.executor.revision() == HEAD_REVISION and store.list_projects() == []
    make_project(store)
    store.close()
    again = Store.open(url)  # an ordinary open from now on
    assert [p.name for p in again.list_projects()] == ["demo"]
    again.close()


def test_allow_empty_changes_nothing_for_a_database_with_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    _seed(url)
    before = _contents(url)
    Store.open(url, allow_empty=True).close()
    assert _contents(url) == before


_OPEN_MANY = """
import sys, time
from pathlib import Path
from branchwork.store import Store
gate = Path(sys.argv[1])
(gate / sys.argv[2]).touch()
while not (gate / "go").exists():
    time.sleep(0.001)
for url in sys.argv[3:]:
    Store.open(url).close()
"""


def test_processes_creating_the_same_databases_at_once_never_find_one_empty(
    tmp_path: Path,
) -> None:
    """The creator holds a lock on the directory until the new file has its header; the others
    wait for it instead of refusing the file they found empty."""
    gate = tmp_path / "gate"
    gate.mkdir()
    urls = [f"sqlite:///{tmp_path / 'dbs' / f'db{n}.sqlite'}" for n in range(8)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_MANY, str(gate), f"p{n}", *urls],
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    while len(list(gate.iterdir())) < len(procs) and all(p.poll() is None for p in procs):
        time.sleep(0.005)
    (gate / "go").touch()
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), errors
    for url in urls:
        store = Store.open(url)
        assert store.executor.revision() == HEAD_REVISION
        store.close()


# -- no room to write --------------------------------------------------------------------------


def test_a_full_database_rolls_the_write_back_and_keeps_what_was_stored(tmp_path: Path) -> None:
    """SQLITE_FULL, from SQLite's own page limit: the same result code as a full disk."""
    path = tmp_path / "db.sqlite"
    url = f"sqlite:///{path}"
    ids = _seed(url)
    before = _contents(url)
    store = Store.open(url)
    with store.executor.read() as tx:
        (pages,) = tx.rows("PRAGMA page_count")[0]
        tx.rows(f"PRAGMA max_page_count = {pages}")  # this connection may not grow the file
    big = "y" * 200_000
    attempts: dict[str, Callable[[], object]] = {
        "append": lambda: store.append(ids["session"], [(Note(text=big), "agent")]),
        "put_blob": lambda: store.put_blob(big.encode()),
        "put_snapshot": lambda: store.put_snapshot(ids["session"], "state", 9, big),
        "set_state": lambda: store.set_state("big", big),
    }
    for name, attempt in attempts.items():
        with pytest.raises(OutOfSpace) as caught:
            attempt()
        message = _one_line(caught.value, path, f"free disk space in {tmp_path}")
        assert "the disk is full" in message, name
        assert "everything saved before it is intact" in message
    store.close()
    assert _note_texts(url, ids["session"])[-1] == "note 29 "
    assert _contents(url) == before


_FILE_SIZE_LIMIT = """
import json, resource, signal, sys
from datetime import timedelta
from branchwork.domain.events import Note, SessionCreated
from branchwork.domain.ids import new_id
from branchwork.domain.models import Project, Session
from branchwork.domain.events import utc_now
from branchwork.store import Store
from branchwork.store.errors import OutOfSpace

url, ids = sys.argv[1], json.loads(sys.argv[2])
store = Store.open(url)
project = store.find_project(ids["project"])
session = store.get_session(ids["session"])
now = utc_now()
new_session = session.model_copy(update={"id": new_id(), "branch": "bw/z", "worktree": "/wt/z"})
first = SessionCreated(project_id=project.id, title="t", branch="bw/z", base_commit="c0ffee",
                       from_ref="main", worktree="/wt/z")
writes = {
    "add_project": lambda: store.add_project(
        Project(id=new_id(), name="new", path="/src/new", main_branch="main", created_at=now)),
    "save_project": lambda: store.save_project(project.model_copy(update={"name": "renamed"})),
    "remove_project": lambda: store.remove_project(ids["spare"]),
    "add_session": lambda: store.add_session(new_session, first, port_block=10),
    "update_session": lambda: store.update_session(session.id, title="renamed"),
    "set_status": lambda: store.set_status(session.id, "archived", Note(text="archived")),
    "append": lambda: store.append(session.id, [(Note(text="lost"), "agent")]),
    "put_snapshot": lambda: store.put_snapshot(session.id, "state", 9, "{}"),
    "put_blob": lambda: store.put_blob(b"new blob"),
    "set_state": lambda: store.set_state("current", None),
    "acquire_lease": lambda: store.acquire_lease(
        ids["other"], "me", pid=2, host="h", ttl=timedelta(minutes=1)),
    "renew_lease": lambda: store.renew_lease(session.id, "held", timedelta(days=9)),
    "request_cancel": lambda: store.request_cancel(session.id),
    "release_lease": lambda: store.release_lease(session.id),
}
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (1, hard))  # no file may grow past its first byte
results = {}
for name, write in writes.items():
    try:
        write()
        results[name] = ["written", ""]
    except OutOfSpace as exc:
        results[name] = [type(exc).__name__, str(exc)]
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
store.set_state("recovered", "after the limit was raised")
store.close()
print(json.dumps(results))
"""


def test_every_write_fails_in_one_line_past_the_file_size_limit_and_loses_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db.sqlite"
    url = f"sqlite:///{path}"
    ids = _seed(url)
    before = _contents(url)
    out = subprocess.run(
        [sys.executable, "-c", _FILE_SIZE_LIMIT, url, json.dumps(ids)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    assert len(results) == 14
    for name, (kind, message) in results.items():
        assert kind == "OutOfSpace", (name, kind)
        assert "\n" not in message and str(path) in message, message
        assert "file size limit (1 bytes, `ulimit -f`)" in message
        assert f"free disk space in {tmp_path}" in message
    after = _contents(url)
    assert after.pop("state") == [*before.pop("state"), ["recovered", "after the limit was raised"]]
    assert after == before


_FULL_DISK = """
import json, os, shutil, sys
from branchwork.domain.events import Note
from branchwork.store import Store
from branchwork.store.errors import OutOfSpace

mount, source, out, session_id = sys.argv[1:5]
shutil.copy(source, mount)
path = os.path.join(mount, os.path.basename(source))
store = Store.open("sqlite:///" + path)
store.events(session_id)
filler = os.path.join(mount, "filler")


def fill():  # take every free block of the file system
    with open(filler, "ab", buffering=0) as f:
        try:
            while True:
                f.write(b"\\0" * 4096)
        except OSError:
            pass


def attempt(results, prefix, store):
    for name, write in {
        "append": lambda: store.append(session_id, [(Note(text="z" * 50000), "agent")]),
        "put_blob": lambda: store.put_blob(os.urandom(50000)),
        "set_state": lambda: store.set_state("big", "z" * 50000),
    }.items():
        try:
            write()
            results[prefix + name] = ["written", ""]
        except OutOfSpace as exc:
            results[prefix + name] = [type(exc).__name__, str(exc)]


results = {}
fill()
attempt(results, "", store)
store.close()  # its -wal and -shm go: a new process has none to read through
fill()
fresh = Store.open("sqlite:///" + path)
reads = {"mode": fresh.executor.mode, "events": len(fresh.events(session_id))}
attempt(results, "fresh ", fresh)
fresh.close()
os.remove(filler)
store = Store.open("sqlite:///" + path)
store.set_state("recovered", "after space was freed")
store.close()
for name in os.listdir(mount):
    if name.startswith(os.path.basename(source)):
        shutil.copy(os.path.join(mount, name), out)
print(json.dumps({"results": results, "reads": reads, "path": path}))
"""


def test_a_full_file_system_fails_writes_in_one_line_and_loses_nothing(tmp_path: Path) -> None:
    """A real ENOSPC: a 1 MiB tmpfs mounted in a private user + mount namespace."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("no `unshare`: cannot mount a small file system without privileges")
    source = tmp_path / "db.sqlite"
    ids = _seed(f"sqlite:///{source}")
    before = _contents(f"sqlite:///{source}")
    mount, out_dir = tmp_path / "mnt", tmp_path / "out"
    mount.mkdir()
    out_dir.mkdir()
    script = 'mount -t tmpfs -o size=1m tmpfs "$1" || exit 77; shift; exec "$@"'
    argv = [unshare, "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh"]
    argv += [str(mount), sys.executable, "-c", _FULL_DISK, str(mount), str(source)]
    out = subprocess.run(
        [*argv, str(out_dir), ids["session"]], capture_output=True, text=True, timeout=120
    )
    if out.returncode == 77 or "unshare failed" in out.stderr:
        pytest.skip(f"no user + mount namespaces here: {out.stderr.strip()}")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["reads"] == {"mode": "immutable", "events": 31}  # reading needs no room
    assert len(report["results"]) == 6
    for name, (kind, message) in report["results"].items():
        assert kind == "OutOfSpace", (name, kind, message)
        assert "\n" not in message and report["path"] in message
        assert f"the disk is full; free disk space in {mount}" in message
    after = _contents(f"sqlite:///{out_dir / 'db.sqlite'}")
    assert after.pop("state") == [*before.pop("state"), ["recovered", "after space was freed"]]
    assert after == before


_FULL_DISK_FILE_WRITE = """
import json, sys
from pathlib import Path
from branchwork import Workspace
home, repo = Path(sys.argv[1]) / "home", Path(sys.argv[2])
with Workspace(home=home) as ws:
    session = ws.new_session(ws.add_project(repo))
    try:
        ws.write_file(session, "big.txt", "z" * 12_000_000)
        said = ["written", ""]
    except Exception as exc:
        said = [type(exc).__name__, str(exc)]
    print(json.dumps({
        "said": said,
        "exists": (Path(session.worktree) / "big.txt").exists(),
        "written": len(ws.events(session, kinds=["file_written"])),
        "tmp": sorted(p.name for p in (home / "tmp").iterdir()),
    }))
"""


def test_a_file_write_on_a_full_file_system_names_the_disk_and_writes_nothing(
    tmp_path: Path,
) -> None:
    """A real ENOSPC for a file a session writes: the data dir on an 8 MiB tmpfs (in a private
    user + mount namespace), a 12 MB write. Before: "No space left on device; check the path"
    (exit code 2)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("no `unshare`: cannot mount a small file system without privileges")
    repo = make_repo(tmp_path / "repo", {"README.md": "# demo\n"})
    mount = tmp_path / "mnt"
    mount.mkdir()
    script = 'mount -t tmpfs -o size=8m tmpfs "$1" || exit 77; exec "$2" -c "$3" "$1" "$4"'
    argv = [unshare, "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh"]
    argv += [str(mount), sys.executable, _FULL_DISK_FILE_WRITE, str(repo)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if out.returncode == 77 or "unshare failed" in out.stderr:
        pytest.skip(f"no user + mount namespaces here: {out.stderr.strip()}")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    kind, message = report["said"]
    assert kind == "OutOfSpace", report
    _one_line(Exception(message), "cannot write big.txt: the disk is full", "free disk space")
    assert "check the path" not in message
    assert report == {"said": report["said"], "exists": False, "written": 0, "tmp": []}


def test_each_cause_of_a_failed_file_write_is_named_with_its_remedy(tmp_path: Path) -> None:
    """The causes a test cannot make for real here (a disk quota, a read-only mount), and a
    permission problem that is not the data directory's (left to the caller: the path's)."""
    home, scratch = tmp_path / "home", tmp_path / "home" / "tmp"
    scratch.mkdir(parents=True)
    causes = {
        errno.EDQUOT: (OutOfSpace, "your disk quota is used up"),
        errno.ENOSPC: (OutOfSpace, "the disk is full"),
        errno.EFBIG: (OutOfSpace, "file size limit"),
        errno.EROFS: (ReadOnlyDataDir, "read-only file system; remount it read-write"),
    }
    for code, (kind, said) in causes.items():
        error = file_write_error(
            OSError(code, os.strerror(code)), "a.txt", data_dir=home, scratch=scratch
        )
        assert isinstance(error, kind), (code, error)
        _one_line(error, "cannot write a.txt", said, "nothing was written")
    denied = PermissionError(errno.EACCES, "Permission denied")
    assert file_write_error(denied, "a.txt", data_dir=home, scratch=scratch) is None


# -- a data directory this process cannot write ------------------------------------------------

# Prepended to each read-only script: `become_reader(directory)` turns the process into one that
# cannot write `directory` (as root: `nobody`), or ends it with a reason to skip.
_READER = """
import json, os, sys

def become_reader(directory):
    if os.geteuid() == 0:
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
        except OSError as exc:
            print(json.dumps({"skip": f"cannot drop privileges: {exc}"}))
            sys.exit(0)
    if os.access(directory, os.W_OK):
        print(json.dumps({"skip": "the data directory is still writable for this process"}))
        sys.exit(0)
"""

_READ_ONLY = """
# Everything is imported before privileges are dropped: `nobody` may not read the interpreter's
# own library (under /root), only the data directory.
import contextlib, errno, fcntl, resource, sqlite3, stat, urllib.parse
from datetime import timedelta
from branchwork.domain.events import Note, SessionCreated, utc_now
from branchwork.domain.ids import new_id
from branchwork.domain.models import Project
from branchwork.store import Store
from branchwork.store.errors import ReadOnlyDatabase

directory, url, ids = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
become_reader(directory)
store = Store.open(url)
session = store.get_session(ids["session"])
project = store.find_project(ids["project"])
seen = {
    "mode": store.executor.mode,
    "projects": sorted(p.name for p in store.list_projects()),
    "events": [e.payload.text for e in store.events(session.id) if e.kind == "note"],
    "blob": len(store.get_blob(ids["blob"])),
    "state": store.get_state("current"),
    "lease": store.get_lease(session.id)["holder"],
}
now = utc_now()
new_session = session.model_copy(update={"id": new_id(), "branch": "bw/z", "worktree": "/wt/z"})
first = SessionCreated(project_id=project.id, title="t", branch="bw/z", base_commit="c0ffee",
                       from_ref="main", worktree="/wt/z")
writes = {
    "add_project": lambda: store.add_project(
        Project(id=new_id(), name="new", path="/src/new", main_branch="main", created_at=now)),
    "save_project": lambda: store.save_project(project.model_copy(update={"name": "renamed"})),
    "remove_project": lambda: store.remove_project(ids["spare"]),
    "add_session": lambda: store.add_session(new_session, first, port_block=10),
    "update_session": lambda: store.update_session(session.id, title="renamed"),
    "set_status": lambda: store.set_status(session.id, "archived", Note(text="archived")),
    "append": lambda: store.append(session.id, [(Note(text="lost"), "agent")]),
    "put_snapshot": lambda: store.put_snapshot(session.id, "state", 9, "{}"),
    "put_blob": lambda: store.put_blob(b"new blob"),
    "set_state": lambda: store.set_state("current", None),
    "acquire_lease": lambda: store.acquire_lease(
        ids["other"], "me", pid=2, host="h", ttl=timedelta(minutes=1)),
    "renew_lease": lambda: store.renew_lease(session.id, "held", timedelta(days=9)),
    "request_cancel": lambda: store.request_cancel(session.id),
    "release_lease": lambda: store.release_lease(session.id),
}
results = {}
for name, write in writes.items():
    try:
        write()
        results[name] = ["written", ""]
    except ReadOnlyDatabase as exc:
        results[name] = [type(exc).__name__, str(exc)]
store.close()
for name, new in [("create", "new.sqlite"), ("create in a new directory", "sub/new.sqlite")]:
    try:
        Store.open("sqlite:///" + os.path.join(directory, new)).close()
        results[name] = ["written", ""]
    except ReadOnlyDatabase as exc:
        results[name] = [type(exc).__name__, str(exc)]
print(json.dumps({"seen": seen, "results": results}))
"""


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory the read-only subprocess can reach. As root that subprocess becomes
    `nobody`, who cannot enter pytest's private tmp dir: the directory is made in the system
    temp dir instead, owned by root, mode 0755."""
    if os.geteuid() != 0:
        yield tmp_path
        return
    made = Path(tempfile.mkdtemp(prefix="bw-store-faults-"))
    made.chmod(0o755)
    for parent in made.parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            shutil.rmtree(made)
            pytest.skip(f"{parent} cannot be entered by other users")
    yield made
    shutil.rmtree(made)


def _run_read_only(directory: Path, script: str, *args: str) -> dict[str, Any]:
    """Run `script` as a process that may not write `directory`: `nobody` when we are root (the
    directory and its files stay root's), else ourselves with everything made read-only."""
    restore: list[tuple[Path, int]] = []
    if os.geteuid() != 0:
        for path in [directory, *directory.iterdir()]:
            restore.append((path, path.stat().st_mode))
            path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        out = subprocess.run(
            [sys.executable, "-c", _READER + script, str(directory), *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd="/",
        )
    finally:
        for path, mode in restore:
            path.chmod(mode)
    assert out.returncode == 0, out.stderr
    report: dict[str, Any] = json.loads(out.stdout)
    if "skip" in report:
        pytest.skip(report["skip"])
    return report


def _assert_read_only_report(report: dict[str, Any], directory: Path, newest: str) -> None:
    seen = report["seen"]
    assert seen["projects"] == ["demo", "spare"]
    assert seen["events"][:30] == [f"note {i} " for i in range(30)]
    assert seen["events"][-1] == newest
    assert seen["blob"] == len(b"output " * 1000)
    assert seen["lease"] == "held"
    results = report["results"]
    create = results.pop("create")
    assert create[0] == "ReadOnlyDatabase", create
    assert f"cannot create the database {directory / 'new.sqlite'}" in create[1]
    assert f"the data directory {directory} is not writable" in create[1]
    kind, message = results.pop("create in a new directory")
    assert kind == "ReadOnlyDatabase", message
    assert f"cannot create or reach the database {directory / 'sub' / 'new.sqlite'}" in message
    assert f"make {directory} accessible and writable for this user" in message
    assert len(results) == 14
    for name, (kind, message) in results.items():
        assert kind == "ReadOnlyDatabase", (name, kind)
        assert "\n" not in message and str(directory / "db.sqlite") in message, message
        assert f"the data directory {directory} is read-only for this user" in message
        assert f"make {directory} and the database files in it writable" in message


def test_a_read_only_data_dir_is_read_and_every_write_fails_in_one_line(data_dir: Path) -> None:
    path = data_dir / "db.sqlite"
    url = f"sqlite:///{path}"
    ids = _seed(url)
    before, listing = _contents(url), _listing(data_dir)
    assert listing == ["db.sqlite"]  # closed cleanly: no -wal, no -shm to read through
    report = _run_read_only(data_dir, _READ_ONLY, url, json.dumps(ids))
    assert report["seen"]["mode"] == "immutable"
    _assert_read_only_report(report, data_dir, newest="note 29 ")
    assert _listing(data_dir) == listing
    assert _contents(url) == before


def test_a_read_only_data_dir_in_use_by_a_writer_is_read_up_to_date(data_dir: Path) -> None:
    """With the `-wal` and `-shm` files of a live writer there, the reader sees its newest
    commit (read through the WAL, not an immutable view of the main file)."""
    path = data_dir / "db.sqlite"
    url = f"sqlite:///{path}"
    ids = _seed(url)
    writer = Store.open(url)
    try:
        writer.append(ids["session"], [(Note(text="in the WAL only"), "agent")])
        assert (data_dir / "db.sqlite-wal").stat().st_size > 0
        before = _contents(url)
        report = _run_read_only(data_dir, _READ_ONLY, url, json.dumps(ids))
        assert report["seen"]["mode"] != "immutable"
        _assert_read_only_report(report, data_dir, newest="in the WAL only")
    finally:
        writer.close()
    assert _contents(url) == before


_UPGRADE_READ_ONLY = """
import shutil, tempfile
import contextlib, errno, fcntl, resource, sqlite3, stat, urllib.parse
from branchwork.store import Store
from branchwork.store.errors import ReadOnlyDatabase
from branchwork.store.migrate import upgrade

directory, url, old = sys.argv[1:4]
scratch = tempfile.mkdtemp()  # the same upgrade once as ourselves: imports all it needs
upgrade("sqlite:///" + scratch + "/db.sqlite", old)
Store.open("sqlite:///" + scratch + "/db.sqlite").close()
shutil.rmtree(scratch)
become_reader(directory)
try:
    Store.open(url).close()
    print(json.dumps({"result": ["opened", ""]}))
except ReadOnlyDatabase as exc:
    print(json.dumps({"result": [type(exc).__name__, str(exc)]}))
"""


def test_a_database_to_upgrade_in_a_read_only_data_dir_is_refused_unchanged(
    data_dir: Path,
) -> None:
    from branchwork.store.migrate import upgrade

    path = data_dir / "db.sqlite"
    url = f"sqlite:///{path}"
    upgrade(url, "0002_lease_cancel")
    before = _sha256(path)
    report = _run_read_only(data_dir, _UPGRADE_READ_ONLY, url, "0002_lease_cancel")
    kind, message = report["result"]
    assert kind == "ReadOnlyDatabase", message
    assert "\n" not in message
    assert f"cannot upgrade the schema of the database {path}" in message
    assert f"the data directory {data_dir} is read-only for this user" in message
    assert _sha256(path) == before and _listing(data_dir) == ["db.sqlite"]
