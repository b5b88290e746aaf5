"""File use-cases confined to a session's worktree, each recorded as an event."""

from __future__ import annotations

import fnmatch
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from branchwork import gitops
from branchwork.domain.errors import BranchworkError, InvalidInput, InvalidPath, NotFound
from branchwork.domain.events import Actor, Checkpoint, FileRead, FileWritten
from branchwork.sandbox.paths import relative_to_worktree, resolve_in_worktree
from branchwork.service.diffs import preview_diff, record_diff
from branchwork.service.scope import (
    SessionScope,
    git_step,
    scratch_dir,
    scratch_prefix,
    take_checkpoint,
    worktree_lock,
)
from branchwork.store import file_write_error

MAX_FILE_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class WriteOutcome:
    """A recorded write or edit, and the checkpoint taken after it (None when not taken)."""

    written: FileWritten
    checkpoint: Checkpoint | None


def _locate(scope: SessionScope, path: str) -> tuple[Path, str]:
    if path.endswith(("/", "\\")):
        raise InvalidPath(f"{path!r} names a directory; give the path of a file")
    target = resolve_in_worktree(scope.worktree, path)
    return target, relative_to_worktree(scope.worktree, target)


def _read_text(target: Path, shown: str, *, strict: bool = False) -> str:
    """The file as text. `strict` (for edits) refuses bytes that are not UTF-8, which would
    otherwise be replaced, and so damaged, when the file is written back."""
    if not target.exists():
        raise NotFound(f"{shown} does not exist in the session's worktree; check the path")
    if not target.is_file():
        raise InvalidPath(f"{shown} is not a file; give the path of a file")
    data = target.read_bytes()
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInput(
            f"{shown} is larger than 5 MB; read part of it with a command (`head`, `sed -n`)"
        )
    if b"\0" in data[:8192]:
        raise InvalidInput(f"{shown} is a binary file; inspect it with a command (`file`, `xxd`)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if strict:
            raise InvalidInput(
                f"{shown} is not UTF-8 text (byte {exc.start}); edit it with a command "
                "and a tool that knows its encoding"
            ) from exc
        return data.decode("utf-8", errors="replace")


def read_file(
    scope: SessionScope,
    path: str,
    *,
    start_line: int | None = None,
    end_line: int | None = None,
    actor: Actor = "user",
) -> str:
    """The file's text (or lines `start_line`..`end_line`, 1-based, inclusive)."""
    if (start_line is not None and start_line < 1) or (end_line is not None and end_line < 1):
        raise InvalidInput("line numbers start at 1; give a start and an end of 1 or more")
    if start_line is not None and end_line is not None and end_line < start_line:
        raise InvalidInput(f"the range {start_line}-{end_line} is empty; give end ≥ start")
    target, shown = _locate(scope, path)
    text = _read_text(target, shown)
    if start_line is not None or end_line is not None:
        lines = text.splitlines(keepends=True)
        first = max(1, start_line or 1)
        text = "".join(lines[first - 1 : end_line])
    payload = FileRead(path=shown, size=len(text), start_line=start_line, end_line=end_line)
    scope.record(payload, actor)
    return text


def write_file(
    scope: SessionScope,
    path: str,
    content: str,
    *,
    actor: Actor = "user",
    checkpoint: bool = True,
) -> WriteOutcome:
    target, shown, old = _prepare_write(scope, path)
    return _apply_write(scope, target, shown, old, content, "write", actor, checkpoint)


def _prepare_write(scope: SessionScope, path: str) -> tuple[Path, str, str | None]:
    target, shown = _locate(scope, path)
    if target.is_dir():
        raise InvalidPath(f"{shown} is a directory; give the path of a file")
    old = _read_text(target, shown) if target.exists() else None
    return target, shown, old


def preview_write(scope: SessionScope, path: str, content: str) -> str:
    """The diff a write would make, without making it."""
    _, shown, old = _prepare_write(scope, path)
    return preview_diff(shown, old, content)


def preview_edit(scope: SessionScope, path: str, old: str, new: str) -> str:
    """The diff an edit would make (refused like the edit itself), without making it."""
    target, shown = _locate(scope, path)
    current = _read_text(target, shown, strict=True)
    return preview_diff(shown, current, _replace_once(current, old, new, shown))


def edit_file(
    scope: SessionScope,
    path: str,
    old_text: str,
    new_text: str,
    *,
    actor: Actor = "user",
    checkpoint: bool = True,
) -> WriteOutcome:
    """Replace the one occurrence of `old_text`; refuse when it is absent or not unique."""
    target, shown = _locate(scope, path)
    current = _read_text(target, shown, strict=True)
    updated = _replace_once(current, old_text, new_text, shown)
    return _apply_write(scope, target, shown, current, updated, "edit", actor, checkpoint)


def _replace_once(current: str, old_text: str, new_text: str, shown: str) -> str:
    if not old_text:
        raise InvalidInput("the text to replace is empty; give the exact text to replace")
    count = current.count(old_text)
    if count == 0:
        raise InvalidInput(
            f"the text to replace was not found in {shown}; read the file and copy the exact "
            "text, whitespace included"
        )
    if count > 1:
        raise InvalidInput(
            f"the text to replace occurs {count} times in {shown}; include more surrounding "
            "lines so it is unique"
        )
    return current.replace(old_text, new_text, 1)


def _apply_write(
    scope: SessionScope,
    target: Path,
    shown: str,
    old: str | None,
    new: str,
    operation: str,
    actor: Actor,
    checkpoint: bool,
) -> WriteOutcome:
    _write_atomically(scope, target, shown, new)
    if old is None:
        _track(scope, target, shown)
    diff = record_diff(scope, shown, old, target)
    payload = FileWritten(
        path=shown,
        operation="edit" if operation == "edit" else "write",
        created=old is None,
        diff=diff.text,
        diff_truncated=diff.truncated,
        diff_bytes=diff.size,
        diff_blob=diff.blob,
    )
    event = scope.record(payload, actor)
    assert isinstance(event.payload, FileWritten)
    saved = None
    if checkpoint:
        saved = take_checkpoint(scope, f"{operation} {shown}", automatic=True)
    return WriteOutcome(written=event.payload, checkpoint=saved)


def _track(scope: SessionScope, target: Path, shown: str) -> None:
    """A new file is tracked at once, even when `.gitignore` excludes it: a file written
    through Branchwork is never reported written and then lost. One git cannot track (inside
    a submodule) is removed again and refused."""
    try:
        with worktree_lock(scope):
            git_step(scope, lambda: gitops.force_add(scope.worktree, shown))
    except InvalidPath:
        target.unlink(missing_ok=True)
        raise


def _write_atomically(scope: SessionScope, target: Path, shown: str, text: str) -> None:
    """Replace the file in one step (a failure leaves it as it was), keeping its mode. The
    temporary file lives in the data directory (same file system as the worktrees), never
    where git or a concurrent checkpoint could see it."""
    tmp_dir = scratch_dir(scope.services)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(
            f"the new content of {shown} is not valid text; nothing written"
        ) from exc
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = target.stat().st_mode & 0o7777 if target.exists() else 0o644
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix=scratch_prefix("write"), suffix=".bw")
    except OSError as exc:
        raise _cannot_write(scope, shown, exc) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _cannot_write(scope, shown, exc) from exc


def _cannot_write(scope: SessionScope, shown: str, exc: OSError) -> BranchworkError:
    """No room or no permission in the data directory is said as such (exit code 3); what is
    left is the path's own problem (a file where a directory should be, a name too long …)."""
    home = scope.services.home
    known = file_write_error(exc, shown, data_dir=home, scratch=scratch_dir(scope.services))
    if known is not None:
        return known
    if isinstance(exc, PermissionError):
        return InvalidPath(
            f"cannot write {shown}: its directory in the session's worktree is not writable for "
            "this user (a command may have changed its mode); make it writable "
            "(`chmod u+w DIR`), or write somewhere else, then retry"
        )
    return InvalidPath(f"cannot write {shown}: {exc.strerror or exc}; check the path")


def list_files(scope: SessionScope, path: str = ".", pattern: str | None = None) -> list[str]:
    """Files under `path` (tracked, or untracked and not ignored), optionally matching a glob."""
    root = scope.worktree
    base = resolve_in_worktree(root, path) if path not in ("", ".") else root
    prefix = "" if base == root else relative_to_worktree(root, base).rstrip("/") + "/"
    out = gitops.run_git(
        ["ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", prefix or "."], root
    )
    names = sorted({n for n in out.split("\0") if n and (root / n).exists()})
    if pattern:
        names = [
            n
            for n in names
            if fnmatch.fnmatch(n, pattern) or fnmatch.fnmatch(n.rsplit("/", 1)[-1], pattern)
        ]
    return names
