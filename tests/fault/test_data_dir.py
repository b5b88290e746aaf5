"""Bad data directories, through the `branchwork` executable as a user runs it.

A data directory is filled through the CLI (two projects' worth of work: sessions, writes,
commands), read back (`project list`, `session list --all`, `log` of every session), and then
broken: the database's header overwritten, the file truncated (to half, to its first page),
emptied, replaced by a directory; a disk with no room (a `ulimit -f` file size limit with
SIGXFSZ ignored: every write past it fails with EFBIG, as on a full disk); a data directory
this user cannot write (the CLI run as `nobody` on a directory owned by root).

Each command must then exit with code 3 (or 2) and say so in one line on stderr that starts
with `error:`, names the problem and a remedy, with no traceback; the database must be left as
it was, and what was there before must read back identically once the damage is undone (the
file restored, the directory moved away, the limit lifted). An emptied database is recovered by
`branchwork doctor --rebuild`: the projects and sessions come back (their histories do not).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from branchwork import Workspace
from tests.conftest import make_repo
from tests.fault._support import BIN, cli_env, report_figures

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
BIG = 2_000_000  # bytes written under the file size limits below


@dataclass
class Filled:
    """A data directory with work in it, and how it reads."""

    home: Path
    repo: Path
    sessions: list[dict[str, Any]]

    @property
    def db(self) -> Path:
        return self.home / "branchwork.db"

    def cli(
        self,
        *args: str,
        stdin: str | None = None,
        wrap: list[str] | None = None,
        cwd: Path = Path(),
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*(wrap or []), str(BIN / "branchwork"), *args],
            cwd=cwd if cwd != Path() else self.repo,
            env=cli_env(self.home, HOME=str(self.home.parent)),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def ok(self, *args: str, stdin: str | None = None) -> str:
        done = self.cli(*args, stdin=stdin)
        assert done.returncode == 0, f"branchwork {' '.join(args)}: {done.stderr}"
        return done.stdout

    def read_all(self, wrap: list[str] | None = None) -> dict[str, Any]:
        """Everything the CLI shows of the data: projects, sessions, every event."""

        def shown(*args: str) -> Any:
            done = self.cli(*args, wrap=wrap, cwd=Path("/"))
            assert done.returncode == 0, f"branchwork {' '.join(args)}: {done.stderr}"
            if args[0] != "log":  # one JSON document; `log --json` prints JSON lines
                return json.loads(done.stdout)
            return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

        read: dict[str, Any] = {
            "projects": shown("project", "list", "--json"),
            "sessions": shown("session", "list", "--all", "--json"),
        }
        for session in self.sessions:
            read[session["id"]] = shown("log", session["id"], "--json")
        return read


def fill(home: Path, root: Path) -> Filled:
    """A project with two sessions, each with a write, a command and an edit (made through the
    Python API: quicker; everything after goes through the CLI)."""
    repo = make_repo(root / "repo", {"README.md": "# demo\n", "app.py": "print('hi')\n"})
    filled = Filled(home, repo, [])
    with Workspace(home=home) as ws:
        project = ws.add_project(repo)
        for title in ("first", "second"):
            session = ws.new_session(project, title=title)
            ws.write_file(session, f"{title}.txt", f"{title}\n")
            assert ws.run(session, f"echo {title} > out.txt").finished.status == "ok"
            ws.edit_file(session, "app.py", "hi", title)
            filled.sessions.append(
                {"id": session.id, "short_id": session.short_id, "branch": session.branch,
                 "title": title, "worktree": session.worktree}
            )  # fmt: skip
    return filled


@pytest.fixture
def filled(tmp_path: Path) -> Filled:
    return fill(tmp_path / "home", tmp_path)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _database_files(home: Path) -> list[str]:
    return sorted(p.name for p in home.iterdir() if p.name.startswith("branchwork.db"))


def assert_refused(done: subprocess.CompletedProcess[str], *mentions: str) -> str:
    """Exit code 3 (or 2), one line on stderr, `error:` first, naming what is asked."""
    err = done.stderr
    assert done.returncode in (2, 3), (done.returncode, err)
    assert "Traceback" not in err + done.stdout, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    for mention in mentions:
        assert mention in lines[0], (mention, lines[0])
    return lines[0]


def _commands(filled: Filled) -> list[list[str]]:
    """Reads and writes of every kind, on the first session."""
    sid = filled.sessions[0]["id"]
    return [
        ["session", "list"],
        ["log", sid],
        ["read", "first.txt", "-s", sid],
        ["write", "new.txt", "-s", sid],
        ["run", "-s", sid, "--", "echo again"],
        ["session", "new", "--title", "third"],
    ]


# -- a damaged database ------------------------------------------------------------------------


def _overwrite_header(db: Path) -> Callable[[], None]:
    data = db.read_bytes()
    db.write_bytes(b"\0" * 100 + data[100:])
    return lambda: db.write_bytes(data)


def _truncate(keep: Callable[[int], int]) -> Callable[[Path], Callable[[], None]]:
    def damage(db: Path) -> Callable[[], None]:
        data = db.read_bytes()
        db.write_bytes(data[: keep(len(data))])
        return lambda: db.write_bytes(data)

    return damage


def _empty(db: Path) -> Callable[[], None]:
    data = db.read_bytes()
    db.write_bytes(b"")
    return lambda: db.write_bytes(data)


def _directory(db: Path) -> Callable[[], None]:
    aside = db.with_name("aside.db")
    db.rename(aside)
    db.mkdir()
    (db / "something").write_text("a directory where the database should be\n")

    def undo() -> None:
        shutil.rmtree(db)
        aside.rename(db)

    return undo


DAMAGES: dict[str, tuple[Callable[[Path], Callable[[], None]], tuple[str, ...]]] = {
    "overwritten header": (
        _overwrite_header,
        ("is not a Branchwork database", "restore it from a backup", "doctor --rebuild"),
    ),
    "truncated to half": (
        _truncate(lambda size: size // 2),
        ("is damaged", "truncated", "restore it from a backup"),
    ),
    "truncated to its first page": (
        _truncate(lambda size: 4096),
        ("is damaged", "truncated", "restore it from a backup"),
    ),
    "emptied": (_empty, ("is an empty file (0 bytes)", "doctor --rebuild", "delete the file")),
    "a directory": (_directory, ("is a directory", "move the directory out of the way")),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_database_is_refused_in_one_line_and_left_as_it_was(
    filled: Filled, damage: str
) -> None:
    before = filled.read_all()
    assert _database_files(filled.home) == ["branchwork.db"]  # closed cleanly: no -wal to keep
    make, mentions = DAMAGES[damage]
    undo = make(filled.db)
    kept = _sha(filled.db) if filled.db.is_file() else sorted(os.listdir(filled.db))
    refusals = 0
    for args in _commands(filled):
        assert_refused(filled.cli(*args, stdin="x\n"), str(filled.db), *mentions)
        refusals += 1
    assert (_sha(filled.db) if filled.db.is_file() else sorted(os.listdir(filled.db))) == kept
    assert _database_files(filled.home) == ["branchwork.db"], "nothing new next to it"
    undo()
    assert filled.read_all() == before
    report_figures(f"damaged database: {damage}", {"refusals": refusals, "losses": 0})


def test_an_emptied_database_is_rebuilt_from_branches_and_worktrees(filled: Filled) -> None:
    before = filled.read_all()
    _empty(filled.db)
    assert_refused(filled.cli("session", "list"), "doctor --rebuild")
    rebuilt = json.loads(filled.ok("doctor", "--rebuild", "--json"))
    shorts = sorted(s["short_id"] for s in filled.sessions)
    assert sorted(rebuilt["sessions"]) == shorts
    projects = json.loads(filled.ok("project", "list", "--json"))
    assert [p["path"] for p in projects] == [p["path"] for p in before["projects"]]
    by_short = {
        s["short_id"]: s for s in json.loads(filled.ok("session", "list", "--all", "--json"))
    }
    for session in filled.sessions:  # the same short id and branch; a new history
        short, title = session["short_id"], session["title"]
        assert (by_short[short]["branch"], by_short[short]["status"]) == (
            session["branch"],
            "active",
        )
        assert filled.ok("read", f"{title}.txt", "-s", short) == f"{title}\n"
        assert filled.ok("read", "out.txt", "-s", short) == f"{title}\n"
        log = [json.loads(line) for line in filled.ok("log", short, "--json").splitlines()]
        assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
        notes = [e["payload"]["text"] for e in log if e["kind"] == "note"]
        assert any("the history before this point is gone" in n for n in notes), notes
        assert not {e["id"] for e in log} & {e["id"] for e in before[session["id"]]}
    report_figures(
        "emptied database rebuilt",
        {"projects": len(projects), "sessions": len(by_short), "losses of files": 0},
    )


# -- no room to write --------------------------------------------------------------------------


def _limited(kib: int) -> list[str]:
    """A shell that ignores SIGXFSZ (a write past the limit fails with EFBIG, as on a full
    disk, instead of killing the process) and limits file sizes to `kib` KiB, then becomes
    the command."""
    return ["bash", "-c", f"trap '' XFSZ; ulimit -f {kib}; exec \"$@\"", "limited"]


LIMITS_KIB = [1, 64, 256]


def test_no_room_to_write_is_refused_cleanly_and_loses_nothing(filled: Filled) -> None:
    before = filled.read_all()
    big = "x" * 99 + "\n"
    outcomes: dict[str, int] = {}
    for kib in LIMITS_KIB:
        for args in [*_commands(filled), ["write", "big.txt", "-s", filled.sessions[1]["id"]]]:
            stdin = big * (BIG // 100) if args[0] == "write" else None
            done = filled.cli(*args, stdin=stdin, wrap=_limited(kib))
            assert "Traceback" not in done.stderr, done.stderr
            assert done.returncode in (0, 2, 3), (kib, args, done.returncode, done.stderr)
            if done.returncode:  # the cause, named: the limit (more in the tests below)
                lines = done.stderr.splitlines()
                assert len(lines) == 1 and lines[0].startswith("error:"), (kib, args, lines)
                assert "file size limit" in lines[0], (kib, args, lines)
                assert "read-only" not in lines[0] and "check the path" not in lines[0], lines
            key = f"{kib} KiB: {args[0]} {args[1] if args[0] == 'session' else ''}".strip()
            outcomes[key] = outcomes.get(key, 0) + (done.returncode != 0)
    after = filled.read_all()
    for key, shown in before.items():  # what was there is there; new work only appended
        if isinstance(shown, list) and key not in ("projects", "sessions"):
            assert after[key][: len(shown)] == shown, key
            assert [e["seq"] for e in after[key]] == list(range(1, len(after[key]) + 1))
    assert {s["id"] for s in before["sessions"]} <= {s["id"] for s in after["sessions"]}
    sid = filled.sessions[0]["id"]
    filled.ok("write", "after.txt", "-s", sid, stdin="room again\n")
    assert filled.ok("read", "after.txt", "-s", sid) == "room again\n"
    refused = sum(outcomes.values())
    assert refused, "no limit refused anything: the limits are too generous to test"
    report_figures("no room to write", {"attempts": len(outcomes), "refused": refused, "losses": 0})


def test_a_database_write_past_the_file_size_limit_names_the_limit(filled: Filled) -> None:
    done = filled.cli("run", "-s", filled.sessions[0]["id"], "--", "true", wrap=_limited(1))
    line = assert_refused(done, str(filled.db))
    assert "file size limit" in line and "read-only" not in line, line


def test_a_file_write_with_no_room_names_the_cause_and_the_remedy(filled: Filled) -> None:
    big = ("y" * 99 + "\n") * (BIG // 100)
    done = filled.cli("write", "big.txt", "-s", filled.sessions[0]["id"], stdin=big,
                      wrap=_limited(256))  # fmt: skip
    line = assert_refused(done)
    assert done.returncode == 3, line
    assert "file size limit" in line and "`ulimit -f unlimited`" in line, line
    assert "check the path" not in line and "nothing was written" in line, line
    assert not (Path(filled.sessions[0]["worktree"]) / "big.txt").exists()


# -- a data directory this user cannot write -----------------------------------------------------


@pytest.fixture
def shared_root() -> Iterator[Path]:
    """A directory `nobody` can enter (pytest's tmp dir is private to root), owned by root."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to run the CLI as `nobody` on a directory owned by root")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    made = Path(tempfile.mkdtemp(prefix="bw-fault-"))
    made.chmod(0o755)
    try:
        for parent in made.parents:
            if not parent.stat().st_mode & stat.S_IXOTH:
                pytest.skip(f"{parent} cannot be entered by other users")
        probe = subprocess.run(
            [*NOBODY, str(BIN / "branchwork"), "--version"],
            capture_output=True,
            text=True,
            cwd="/",
            timeout=60,
        )
        if probe.returncode != 0:
            pytest.skip(f"`nobody` cannot run {BIN / 'branchwork'}: {probe.stderr.strip()}")
        yield made
    finally:
        shutil.rmtree(made)


def test_a_read_only_data_dir_is_read_and_every_write_refused(shared_root: Path) -> None:
    filled = fill(shared_root / "home", shared_root)
    before = filled.read_all()
    listing = sorted(str(p.relative_to(filled.home)) for p in filled.home.rglob("*"))
    kept = _sha(filled.db)
    assert filled.read_all(wrap=NOBODY) == before  # nobody reads everything
    sid = filled.sessions[0]["id"]
    writes = [
        ["read", "first.txt", "-s", sid],  # a read is recorded: refused too
        ["write", "new.txt", "-s", sid],
        ["edit", "app.py", "--old", "first", "--new", "x", "-s", sid],
        ["run", "-s", sid, "--", "echo again"],
        ["checkpoint", "-s", sid],
    ]
    for args in writes:
        done = filled.cli(*args, stdin="x\n", wrap=NOBODY, cwd=Path("/"))
        assert done.returncode in (2, 3), (args, done.returncode, done.stderr)
        assert "Traceback" not in done.stderr, done.stderr
        assert_refused(done, "read-only", str(filled.home))
    assert _sha(filled.db) == kept
    assert sorted(str(p.relative_to(filled.home)) for p in filled.home.rglob("*")) == listing
    assert filled.read_all() == before
    report_figures("read-only data dir", {"refusals": len(writes), "losses": 0})


def test_a_read_only_data_dir_is_named_in_one_line_by_every_refusal(shared_root: Path) -> None:
    filled = fill(shared_root / "home", shared_root)
    sid = filled.sessions[0]["id"]
    for args in (["write", "new.txt", "-s", sid], ["run", "-s", sid, "--", "echo again"]):
        done = filled.cli(*args, stdin="x\n", wrap=NOBODY, cwd=Path("/"))
        assert_refused(done, "read-only", str(filled.home))
