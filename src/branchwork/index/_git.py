"""The few git reads the index needs: list a tree, read blobs by sha, snapshot a worktree.

File content only ever comes from the object database (`git cat-file --batch`), never from the
file system: a symlink, or a file outside the worktree, can therefore never be indexed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from branchwork.domain.errors import GitError, NotAGitRepository
from branchwork.gitops.git import run_git, run_git_bytes

MODE_SYMLINK = "120000"
MODE_SUBMODULE = "160000"
_GROUP_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """One entry of a recursively listed tree."""

    path: str
    mode: str
    sha: str
    size: int  # 0 for submodules


@dataclass(frozen=True, slots=True)
class Change:
    """One path changed between two trees (`git diff-tree -r`); mode 000000 means absent."""

    path: str
    old_mode: str
    new_mode: str
    new_sha: str


def resolve_tree(repo: Path, rev: str) -> str:
    """The tree sha of `rev` (a tree, a commit, a branch, `HEAD` …)."""
    return resolve(repo, rev)[0]


def resolve(repo: Path, rev: str) -> tuple[str, str]:
    """(tree sha of `rev`, the repository's common git dir), in one git call.

    The common git dir is the same for a repository and all its worktrees: it says which views
    can be compared with `git diff-tree`.
    """
    if not rev or rev.startswith("-"):
        raise GitError(f"{rev!r} is not a revision; pass a commit, branch or tree sha")
    args = ["rev-parse", "--path-format=absolute", "--git-common-dir", f"{rev}^{{tree}}"]
    try:
        lines = run_git(args, repo).split()
    except GitError as exc:
        if "not a git repository" in exc.stderr:
            raise NotAGitRepository(
                f"{repo} is not a git repository; pass the project's repository or worktree"
            ) from exc
        raise GitError(
            f"{rev!r} does not name a commit or tree in {repo}; "
            "check the revision with `git rev-parse`",
            command=exc.command,
            stderr=exc.stderr,
        ) from exc
    return lines[-1], lines[0]


def diff_trees(repo: Path, old: str, new: str) -> list[Change]:
    """The paths that differ between two trees; raise GitError if either is unknown here."""
    out = run_git_bytes(["diff-tree", "-r", "-z", "--no-renames", old, new], repo)
    fields = out.split(b"\0")
    changes: list[Change] = []
    for meta, raw_path in zip(fields[0:-1:2], fields[1::2], strict=True):
        old_mode, new_mode, _old_sha, new_sha, _status = meta.decode("ascii").lstrip(":").split()
        path = raw_path.decode("utf-8", errors="surrogateescape")
        changes.append(Change(path, old_mode, new_mode, new_sha))
    return changes


def blob_sizes(repo: Path, shas: Sequence[str]) -> dict[str, int]:
    """Sizes of blobs by sha (one `git cat-file --batch-check` call)."""
    if not shas:
        return {}
    out = run_git(["cat-file", "--batch-check"], repo, input_bytes="\n".join(shas).encode() + b"\n")
    sizes: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            sizes[parts[0]] = int(parts[2])
    return sizes


def list_tree(repo: Path, tree: str) -> list[TreeEntry]:
    """Every entry of `tree`, recursively, with blob sizes (one `git ls-tree` call)."""
    out = run_git_bytes(["ls-tree", "-r", "-z", "-l", "--full-tree", tree], repo)
    entries: list[TreeEntry] = []
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        mode, _kind, sha, size = meta.decode("ascii").split()
        path = raw_path.decode("utf-8", errors="surrogateescape")
        entries.append(TreeEntry(path, mode, sha, int(size) if size.isdigit() else 0))
    return entries


def read_blobs(repo: Path, blobs: Sequence[tuple[str, int]]) -> Iterator[tuple[str, bytes]]:
    """Yield `(sha, content)` for `(sha, size)` pairs, a few `git cat-file --batch` calls in all.

    Blobs are requested in groups of about 32 MB so that memory stays bounded on big trees.
    """
    group: list[str] = []
    budget = 0
    for sha, size in blobs:
        group.append(sha)
        budget += size
        if budget >= _GROUP_BYTES:
            yield from _read_group(repo, group)
            group, budget = [], 0
    if group:
        yield from _read_group(repo, group)


def _read_group(repo: Path, shas: list[str]) -> Iterator[tuple[str, bytes]]:
    out = run_git_bytes(["cat-file", "--batch"], repo, input_bytes="\n".join(shas).encode() + b"\n")
    pos = 0
    while pos < len(out):
        newline = out.index(b"\n", pos)
        header = out[pos:newline].decode("ascii", errors="replace").split()
        if len(header) != 3:
            raise GitError(
                f"object {header[0] if header else '?'} is missing from {repo}; "
                "run `git fsck` to repair the repository, then index again",
                command=["git", "cat-file", "--batch"],
            )
        size = int(header[2])
        start = newline + 1
        yield header[0], out[start : start + size]
        pos = start + size + 1
