"""Store errors: one line each, naming the file, the problem and the remedy.

The CLI prints a `BranchworkError`'s message as one red line (exit code 3 for a `StoreError`), so
each message here is complete on its own: *which file*, *what is wrong*, *what to do*. Driver
errors are classified by SQLite's result code (`sqlite3.Error.sqlite_errorcode`), never by their
wording, and the driver's own text ("file is not a database") appears only as a detail.

```
StoreError                       (branchwork.domain.errors)
├── DatabaseFileError            the database path cannot be used as it is (`path`)
│   ├── EmptyDatabase            a zero-length file: refused, `branchwork doctor --rebuild`
│   └── DamagedDatabase          not a SQLite file, or malformed / truncated
├── ReadOnlyDatabase             the file or its directory cannot be written by this user
├── ReadOnlyDataDir              a file cannot be made in the data directory (its `tmp/`)
└── OutOfSpace                   the disk is full, or a file size limit (`ulimit -f`) was hit
```

The last three also serve the other files Branchwork writes in the data directory: a file the
user or the agent writes in a session's worktree is made in the data dir's `tmp/` and then put
in place, and a write of it that fails for want of room or of permission names that cause
(`file_write_error`), not the path.

Decisions:
- A zero-length file is always refused (`EmptyDatabase`), never silently re-initialised: a
  database Branchwork creates is never empty for longer than the creator holds the creation lock
  (`sqlite.prepare_file`), so an empty file means the data was lost (truncated by a crash, a
  full disk, a careless copy). Initialising it would forget every project and session and
  orphan their worktrees. The remedy names both ways on: `branchwork doctor --rebuild`
  (re-registers projects and sessions from their branches and worktrees; it opens the store
  with `Store.open(url, allow_empty=True)`) or deleting the file to start from scratch.
- A damaged file (SQLITE_NOTADB, SQLITE_CORRUPT: a wrong header, a truncated or overwritten
  file) is left byte for byte as it is; the remedy is a backup, or moving it aside and running
  the same rebuild (event histories live only in the database, so only a backup has them).
- A failed write (SQLITE_FULL, SQLITE_IOERR_*, SQLITE_READONLY_*) rolls back its transaction:
  SQLite's journal guarantees that what was committed before stays, which the message says.
  An I/O error on a write is diagnosed once it happened (a finite `RLIMIT_FSIZE` reached, or
  little free space left) to name the cause; otherwise the disk is suspected. So is a write
  refused by a connection opened read-only: a file size limit smaller than SQLite's `-shm`
  file, like a full disk, makes the read-write open fail and the fallback read-only one work
  (`sqlite.py`), and such a limit is named before "read-only" is said.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import resource
import sqlite3
from pathlib import Path
from typing import Literal

from branchwork.domain.errors import StoreError

Action = Literal["read", "written", "opened", "migrated"]

REBUILD = "`branchwork doctor --rebuild`"
_RECOVER = (
    f"restore it from a backup, or move it aside and run {REBUILD} to recover the projects and "
    "sessions from their branches and worktrees (their event histories are only in a backup)"
)
_NOTHING_LOST = "the change was not saved, everything saved before it is intact"
_VERB: dict[Action, str] = {
    "read": "read",
    "written": "write",
    "opened": "open",
    "migrated": "upgrade the schema of",
}
_LOW_SPACE = 1024 * 1024  # bytes free under which an I/O error means "the disk is full"
_DATABASE_FILES = ("", "-wal", "-shm", "-journal")


class DatabaseFileError(StoreError):
    """The database path cannot be used as it is: a directory, an empty or a damaged file."""

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message)
        self.path = path


class EmptyDatabase(DatabaseFileError):
    """A zero-length database file: refused, it would otherwise start over empty."""


class DamagedDatabase(DatabaseFileError):
    """Not a SQLite file, or a malformed (e.g. truncated) one."""


class ReadOnlyDatabase(StoreError):
    """The database file or its directory cannot be written by this user."""

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class ReadOnlyDataDir(StoreError):
    """A file cannot be made in the data directory: not writable by this user, or its file
    system is mounted read-only."""

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class OutOfSpace(StoreError):
    """A write found no room: the disk is full, or a file reached the file size limit."""

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


# -- messages for the file itself ------------------------------------------------------------


def empty_database(path: Path) -> EmptyDatabase:
    return EmptyDatabase(
        f"the database {_show(path)} is an empty file (0 bytes): its projects and sessions are "
        f"gone from it, and Branchwork will not start over in it silently; run {REBUILD} to "
        "recover them from their branches and worktrees, or delete the file to start from "
        "scratch",
        path=path,
    )


def directory_in_place(path: Path) -> DatabaseFileError:
    return DatabaseFileError(
        f"the database path {_show(path)} is a directory, not a database file; move the "
        "directory out of the way, or point BRANCHWORK_DATABASE_URL at a file, then retry",
        path=path,
    )


def unreachable(path: Path, exc: OSError) -> StoreError:
    """`path` (or a directory on the way to it) cannot be looked at or created."""
    where = Path(exc.filename) if exc.filename else path
    reason = exc.strerror or str(exc)
    if isinstance(exc, PermissionError) or exc.errno == errno.EROFS:
        return ReadOnlyDatabase(
            f"cannot create or reach the database {_show(path)}: {reason} for {_show(where)}; "
            f"make {_show(_existing_parent(where))} accessible and writable for this user, or "
            "point BRANCHWORK_DATABASE_URL elsewhere, then retry",
            path=path,
        )
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        blocking = _file_in_the_way(path)
        if blocking is not None:
            return DatabaseFileError(
                f"cannot create the database {_show(path)}: {_show(blocking)} is a file where a "
                "directory should be; move it out of the way, or point BRANCHWORK_DATABASE_URL "
                "elsewhere, then retry",
                path=path,
            )
    return DatabaseFileError(
        f"cannot create or reach the database {_show(path)}: {reason} for {_show(where)}; "
        "fix that path, or point BRANCHWORK_DATABASE_URL elsewhere, then retry",
        path=path,
    )


# -- driver errors -----------------------------------------------------------------------------


def refused(exc: BaseException) -> StoreError:
    """A constraint violation: nothing was written."""
    return StoreError(
        f"the database refused the change: {_one_line(exc)}. Another process may have written "
        "the same row meanwhile; retry, and report it if it happens again"
    )


def server_error(action: Action, url: str, exc: BaseException) -> StoreError:
    """A database server (PostgreSQL) could not be used."""
    return StoreError(
        f"cannot {_VERB[action]} the database at {mask_password(url)}: {_one_line(exc)}; check "
        "that the database server is up and reachable, then retry"
    )


def sqlite_error(exc: sqlite3.Error, action: Action, path: Path) -> StoreError | None:
    """The `StoreError` for a sqlite3 error on the database file `path`; None for a programming
    error (a bug in our SQL), which is left to be seen as one."""
    if isinstance(exc, sqlite3.IntegrityError):
        return refused(exc)
    if not isinstance(exc, sqlite3.OperationalError) and type(exc) is not sqlite3.DatabaseError:
        return None
    code = getattr(exc, "sqlite_errorcode", None) or 0
    primary = code & 0xFF
    if primary == sqlite3.SQLITE_NOTADB:
        return DamagedDatabase(
            f"the database {_show(path)} is not a Branchwork database (no SQLite header: the "
            f"file was overwritten, or is another kind of file); {_RECOVER}",
            path=path,
        )
    if primary == sqlite3.SQLITE_CORRUPT:
        return DamagedDatabase(
            f"the database {_show(path)} is damaged ({_one_line(exc)}: truncated or partly "
            f"overwritten); {_RECOVER}",
            path=path,
        )
    if primary == sqlite3.SQLITE_FULL:
        return _disk_full(path, action)
    if primary == sqlite3.SQLITE_IOERR:
        return _io_error(exc, action, path)
    if primary == sqlite3.SQLITE_READONLY or (
        action in ("opened", "migrated")
        and primary in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM)
    ):
        return read_only(exc, action, path)
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StoreError(
            f"the database {_show(path)} stayed locked by another process ({_one_line(exc)}); "
            "retry, or stop the Branchwork process that holds it"
        )
    return StoreError(
        f"cannot {_VERB[action]} the database {_show(path)}: {_one_line(exc)}; check that "
        f"{_show(path.parent)} is writable and not on a network file system, then retry"
    )


def read_only(exc: sqlite3.Error | None, action: Action, path: Path) -> StoreError:
    """The file, or the directory SQLite keeps its `-wal` and `-shm` files in, is read-only."""
    code = getattr(exc, "sqlite_errorcode", None) or 0
    directory = _show(path.parent)
    if code == sqlite3.SQLITE_READONLY_DBMOVED:
        return StoreError(
            f"cannot write the database {_show(path)}: the file was moved or deleted while "
            "Branchwork had it open; put it back (or restart Branchwork), then retry"
        )
    if not path.exists() and action == "opened":
        return ReadOnlyDatabase(
            f"cannot create the database {_show(path)}: the data directory {directory} is not "
            "writable for this user; make it writable, or point BRANCHWORK_DATABASE_URL at a "
            "writable place, then retry",
            path=path,
        )
    if action == "opened" and not os.access(path, os.R_OK):
        return ReadOnlyDatabase(
            f"cannot open the database {_show(path)}: this user may not read it; make it "
            f"and {directory} readable and writable for this user, then retry",
            path=path,
        )
    if not os.access(path.parent, os.W_OK):
        problem = f"the data directory {directory} is read-only for this user"
    elif not os.access(path, os.W_OK):
        problem = "the file is read-only for this user"
    elif (no_room := _no_room(path, action)) is not None:  # why it was opened read-only
        return no_room
    else:
        problem = f"it is read-only ({_one_line(exc)})" if exc else "it is read-only"
    return ReadOnlyDatabase(
        f"cannot {_VERB[action]} the database {_show(path)}: {problem}; make {directory} and "
        "the database files in it writable (or remount it read-write), then retry",
        path=path,
    )


def _disk_full(path: Path, action: Action) -> OutOfSpace:
    return OutOfSpace(
        f"cannot {_VERB[action]} the database {_show(path)}: the disk is full; free disk "
        f"space in {_show(path.parent)}, then retry{_after(action)}",
        path=path,
    )


def _after(action: Action) -> str:
    """What a failed write leaves behind, said where it matters."""
    return f" ({_NOTHING_LOST})" if action in ("written", "migrated") else ""


def _no_room(path: Path, action: Action) -> OutOfSpace | None:
    """The file size limit or a full disk, when either is why the database cannot be written."""
    limit = _file_size_limit(path)
    if limit is not None:
        return OutOfSpace(
            f"cannot {_VERB[action]} the database {_show(path)}: a file reached this "
            f"process's file size limit ({limit} bytes, `ulimit -f`); raise the limit or "
            f"free disk space in {_show(path.parent)}, then retry{_after(action)}",
            path=path,
        )
    if _free_space(path.parent) < _LOW_SPACE:
        return _disk_full(path, action)
    return None


def _io_error(exc: sqlite3.Error, action: Action, path: Path) -> StoreError:
    no_room = _no_room(path, action)
    if no_room is not None:
        return no_room
    return StoreError(
        f"cannot {_VERB[action]} the database {_show(path)}: disk I/O error "
        f"({getattr(exc, 'sqlite_errorname', None) or _one_line(exc)}); the disk may be full, "
        f"failing or gone: free disk space in {_show(path.parent)} and check the disk, then "
        "retry"
    )


# -- other files of the data directory ---------------------------------------------------------


def file_write_error(
    exc: OSError, what: str, *, data_dir: Path, scratch: Path | None = None
) -> StoreError | None:
    """Why `what`, a file of the data directory (with `scratch`: made in the data dir's `tmp/`,
    then put in place), could not be written, when the cause is room or permission; None for
    any other cause (the path's own problem). Nothing was written either way: a file is
    replaced in one step or not."""
    unchanged = "nothing was written"
    if exc.errno == errno.EFBIG:
        limit = _soft_file_size_limit()
        said = f"{limit} bytes, " if limit is not None else ""
        return OutOfSpace(
            f"cannot write {what}: it would pass this process's file size limit ({said}"
            "`ulimit -f`); raise the limit (`ulimit -f unlimited`) or write a smaller file, then "
            f"retry ({unchanged})",
            path=scratch or data_dir,
        )
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        full = "your disk quota is used up" if exc.errno == errno.EDQUOT else "the disk is full"
        return OutOfSpace(
            f"cannot write {what}: {full} (no space left for the data directory "
            f"{_show(data_dir)}); free disk space there, then retry ({unchanged})",
            path=scratch or data_dir,
        )
    if exc.errno == errno.EROFS:
        return ReadOnlyDataDir(
            f"cannot write {what}: the data directory {_show(data_dir)} is on a read-only file "
            f"system; remount it read-write, or use a writable data directory (BRANCHWORK_HOME), "
            f"then retry ({unchanged})",
            path=data_dir,
        )
    within = [] if scratch is None else [scratch]
    if exc.errno in (errno.EACCES, errno.EPERM) and not _can_write(data_dir, *within):
        how = " (new files are made in its tmp/ before they replace the old ones)" if within else ""
        return ReadOnlyDataDir(
            f"cannot write {what}: the data directory {_show(data_dir)} is read-only for this "
            f"user{how}; make it writable for this user, or run Branchwork as its owner, then "
            f"retry ({unchanged})",
            path=data_dir,
        )
    return None


def _can_write(*directories: Path) -> bool:
    """Whether this user may make files in each directory that exists."""
    return all(os.access(d, os.W_OK | os.X_OK) for d in directories if d.is_dir())


def _soft_file_size_limit() -> int | None:
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else soft


def _file_size_limit(path: Path) -> int | None:
    """The soft `RLIMIT_FSIZE` when one of the database's files has reached it, else None."""
    soft = _soft_file_size_limit()
    if soft is None:
        return None
    sizes = [0]
    for suffix in _DATABASE_FILES:
        with contextlib.suppress(OSError):
            sizes.append(os.stat(f"{path}{suffix}").st_size)
    # A write that would cross the limit stops at it: the file is at (or a page short of) it.
    return soft if max(sizes) + 1024 * 1024 >= soft else None


def _free_space(directory: Path) -> int:
    try:
        found = os.statvfs(directory)
    except OSError:
        return _LOW_SPACE  # cannot tell: not "full"
    return found.f_bavail * found.f_frsize


# -- helpers -----------------------------------------------------------------------------------

_PASSWORD = re.compile(r"^([^:/]+://[^:/@]+):[^@]*@")


def mask_password(url: str) -> str:
    """`url` with the password (if any) replaced by `***`."""
    return _PASSWORD.sub(r"\1:***@", url)


def _show(path: Path) -> str:
    return str(path.absolute())


def _existing_parent(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            return candidate
    return path


def _file_in_the_way(path: Path) -> Path | None:
    """The nearest ancestor of `path` that exists and is not a directory."""
    for candidate in reversed(path.absolute().parents):
        if candidate.exists() and not candidate.is_dir():
            return candidate
    return None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
