"""Paths an agent or a user names, checked against the session's worktree.

`resolve_in_worktree` is the one gate every file tool goes through: what it returns is an
absolute path whose real location (after following every symlink that exists now) is inside the
worktree and outside git's own data. Paths that do not exist yet are fine (a write creates them):
the nearest existing parent is resolved and the rest is appended.

The check is made at call time; a symlink created between the check and the use is not seen
(commands that could create one run in the same worktree, so the sandbox runner, not this
function, is the boundary for them).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from branchwork.domain.errors import InvalidPath
from branchwork.domain.text import require_utf8

GIT_DIR_NAME = ".git"


def resolve_in_worktree(root: Path, user_path: str) -> Path:
    """Return the real absolute path that `user_path` names inside the worktree `root`.

    `user_path` is relative to `root`, or absolute and inside it. Raises `InvalidPath` when the
    path is empty, leaves the worktree (by `..`, by being absolute elsewhere, or through a
    symlink), or enters a `.git` directory or file (any case, at any depth: git itself refuses
    to track such paths).
    """
    _check_text(user_path)
    real_root = _real_root(root)
    candidate = Path(user_path) if os.path.isabs(user_path) else real_root / user_path
    resolved = _resolve(candidate, user_path)
    if not resolved.is_relative_to(real_root):
        raise InvalidPath(
            f"`{user_path}` is outside the session's worktree; "
            "use a path inside the worktree (relative to its root)."
        )
    typed = _typed_parts(user_path, root, real_root)
    _check_not_git(user_path, (*typed, *resolved.relative_to(real_root).parts))
    return resolved


def relative_to_worktree(root: Path, abs_path: Path) -> str:
    """Name `abs_path` relative to the worktree `root`, in posix form (`.` for the root itself).

    This only names a path (symlinks are not followed); use `resolve_in_worktree` before
    touching a file.
    """
    normalized = Path(os.path.normpath(abs_path))
    for base in (Path(os.path.abspath(root)), _real_root(root)):
        if normalized.is_relative_to(base):
            return normalized.relative_to(base).as_posix()
    raise InvalidPath(
        f"`{abs_path}` is outside the session's worktree `{root}`; use a path inside the worktree."
    )


def _check_text(user_path: str) -> None:
    if not user_path.strip():
        raise InvalidPath("The path is empty; give a path relative to the worktree root.")
    if "\x00" in user_path:
        raise InvalidPath(
            "The path contains a NUL character; give a plain path relative to the worktree root."
        )
    remedy = "Branchwork records file names as UTF-8: rename the file, or give a UTF-8 name."
    require_utf8(user_path, "The path", remedy, InvalidPath)


def _real_root(root: Path) -> Path:
    try:
        real = Path(root).resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise InvalidPath(
            f"The worktree `{root}` does not exist ({exc}); restore the session's worktree first."
        ) from exc
    if not real.is_dir():
        raise InvalidPath(f"The worktree `{root}` is not a directory; restore the session first.")
    return real


def _resolve(candidate: Path, user_path: str) -> Path:
    """Follow every existing symlink of `candidate`; a loop or an unreadable path is refused.

    Resolving twice must give the same path: on a symlink loop followed by `..`
    (`loop/../link`), `realpath` stops and returns the rest unresolved, so `link` could still be
    a symlink that leads out of the worktree."""
    try:
        resolved = candidate.resolve(strict=False)
        settled = resolved.resolve(strict=False)
    except (OSError, RuntimeError) as exc:  # RuntimeError: symlink loop (Python 3.11, 3.12)
        raise InvalidPath(
            f"`{user_path}` cannot be resolved ({exc}); use a path without a symlink loop."
        ) from exc
    if settled != resolved:
        raise InvalidPath(
            f"`{user_path}` cannot be resolved (it passes through a symlink loop); "
            "use a path without a symlink loop."
        )
    return resolved


def _typed_parts(user_path: str, root: Path, real_root: Path) -> tuple[str, ...]:
    """The components of `user_path` below the root, as typed (before any resolution)."""
    typed = PurePosixPath(user_path)
    if not typed.is_absolute():
        return typed.parts
    for base in (PurePosixPath(os.path.abspath(root)), PurePosixPath(real_root)):
        if typed.is_relative_to(base):
            return typed.relative_to(base).parts
    return ()


def _check_not_git(user_path: str, parts: tuple[str, ...]) -> None:
    """Refuse `.git` as a component of what was typed or of where it really leads."""
    if any(part.casefold() == GIT_DIR_NAME for part in parts):
        raise InvalidPath(
            f"`{user_path}` is inside git's own data (`.git`), which sessions never touch; "
            "use Branchwork's git commands (diff, revert, checkpoints) instead."
        )
