"""Merges without touching anyone's files: previews, commits and ref updates by plumbing.

- `preview_merge` runs `git merge-tree --write-tree`: the merged tree and its conflicts (files,
  kinds, and the hunks with their two sides), computed in the object store only.
- `merge_commit`, `squash_commit` and `rebase_commits` build the result as new commit objects
  on top of the target's tip; nothing points at them until `advance_branch` moves the target.
- `advance_branch` moves a branch to a descendant: by compare-and-swap on the ref when no
  worktree has it checked out, else by a fast-forward inside that worktree (its files move
  with the ref), refused when that worktree has uncommitted changes.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from branchwork.domain.errors import Conflict, GitError
from branchwork.gitops.git import run_git, run_git_bytes, run_git_status

_MARKER_CONFIG = ("-c", "merge.conflictStyle=merge")  # a user's diff3 style changes the markers
_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_BLAME_LINE = re.compile(r"^([0-9a-f]{40}) \d+ (\d+)")
EXCERPT_LINES = 12  # lines of each side of a conflict kept in a report


@dataclass(frozen=True)
class ConflictHunk:
    """One conflicting region: its lines in the target's version of the file, and both sides."""

    start_line: int
    end_line: int
    target_text: str
    source_text: str


@dataclass(frozen=True)
class ConflictFile:
    path: str
    kind: str  # "content", "modify/delete", "add/add", "rename/delete" …
    message: str
    hunks: list[ConflictHunk] = field(default_factory=list)


@dataclass(frozen=True)
class MergePreview:
    """What merging `source` into `target` gives: the merged tree (with conflict markers where
    it conflicts) and the conflicts."""

    tree: str
    conflicts: list[ConflictFile]

    @property
    def clean(self) -> bool:
        return not self.conflicts


@dataclass(frozen=True)
class Hunk:
    """A changed region of `git diff -U0`: `old_count` lines from `old_start` became
    `new_count` lines from `new_start` (a count of 0: an insertion or a deletion)."""

    old_start: int
    old_count: int
    new_start: int
    new_count: int

    def touches(self, line: int) -> bool:
        """Whether line `line` of the old version was changed or deleted."""
        return self.old_count > 0 and self.old_start <= line < self.old_start + self.old_count

    def before(self, line: int) -> bool:
        """Whether the hunk lies wholly above old line `line` (so it only shifts it)."""
        if self.old_count == 0:
            return self.old_start < line
        return self.old_start + self.old_count <= line


@dataclass(frozen=True)
class Identity:
    name: str
    email: str
    date: str  # git's raw format, "<seconds> <offset>"


# -- previews -----------------------------------------------------------------------------------


def preview_merge(root: Path, target: str, source: str) -> MergePreview:
    """Merge `source` into `target` in the object store only (`git merge-tree --write-tree`);
    the revisions are named in conflict markers as given."""
    args = [*_MARKER_CONFIG, "merge-tree", "--write-tree", "-z", "--name-only", target, source]
    code, out, err = run_git_status(args, root)
    if code not in (0, 1) or not out:
        raise GitError(
            f"git merge-tree failed: {err or f'exit code {code}'}",
            command=["git", *args],
            stderr=err,
        )
    tree, paths, messages = _parse_merge_tree(out)
    conflicts = [_conflict_file(root, tree, path, messages.get(path, [])) for path in paths]
    return MergePreview(tree=tree, conflicts=conflicts)


def _parse_merge_tree(out: str) -> tuple[str, list[str], dict[str, list[tuple[str, str]]]]:
    """The tree, the conflicted paths, and each path's (type, message) informational lines,
    from the `-z --name-only` output."""
    parts = out.split("\0")
    tree, index, paths = parts[0], 1, []
    while index < len(parts) and parts[index]:
        paths.append(parts[index])
        index += 1
    index += 1
    messages: dict[str, list[tuple[str, str]]] = {}
    while index < len(parts) and parts[index].isdigit():
        count = int(parts[index])
        named = parts[index + 1 : index + 1 + count]
        kind, text = parts[index + 1 + count], parts[index + 2 + count].strip()
        for path in named:
            messages.setdefault(path, []).append((kind, text))
        index += 3 + count
    return tree, paths, messages


def _conflict_file(
    root: Path, tree: str, path: str, messages: list[tuple[str, str]]
) -> ConflictFile:
    found = [(k, t) for k, t in messages if k.startswith("CONFLICT")]
    kind, text = found[0] if found else ("CONFLICT (content)", f"Merge conflict in {path}")
    kind = kind.removeprefix("CONFLICT (").rstrip(")").replace("contents", "content")
    hunks: list[ConflictHunk] = []
    if kind == "content":
        data = file_at(root, tree, path)
        hunks = conflict_hunks(data.decode("utf-8", errors="replace")) if data else []
    return ConflictFile(path=path, kind=kind, message=text, hunks=hunks)


def conflict_hunks(text: str) -> list[ConflictHunk]:
    """The conflicts marked in a merged file, with their lines in the target's version."""
    hunks: list[ConflictHunk] = []
    target_line = 0
    side: str | None = None
    ours: list[str] = []
    theirs: list[str] = []
    start = 0
    for line in text.splitlines():
        if side is None and line.startswith("<<<<<<< "):
            side, ours, theirs, start = "target", [], [], target_line + 1
        elif side == "target" and line == "=======":
            side = "source"
        elif side == "source" and line.startswith(">>>>>>> "):
            end = max(start, start + len(ours) - 1)
            hunks.append(ConflictHunk(start, end, _excerpt(ours), _excerpt(theirs)))
            side = None
        elif side == "source":
            theirs.append(line)
        else:
            target_line += 1
            if side == "target":
                ours.append(line)
    return hunks


def _excerpt(lines: list[str]) -> str:
    kept = lines[:EXCERPT_LINES]
    more = f"\n… {len(lines) - EXCERPT_LINES} more line(s)" if len(lines) > EXCERPT_LINES else ""
    return "\n".join(kept) + more


# -- building the result ------------------------------------------------------------------------


def commit_tree(
    root: Path,
    tree: str,
    parents: Sequence[str],
    message: str,
    *,
    author: Identity | None = None,
) -> str:
    """A new commit object (nothing points at it yet)."""
    args = ["commit-tree", tree]
    for parent in parents:
        args += ["-p", parent]
    env = None
    if author is not None:
        env = {
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_AUTHOR_DATE": author.date,
        }
    return run_git([*args, "-F", "-"], root, env=env, input_bytes=message.encode()).strip()


def merge_commit(
    root: Path, target_tip: str, preview: MergePreview, head: str, message: str
) -> str:
    """A merge commit of `head` into the target (two parents, the target first)."""
    return commit_tree(root, preview.tree, [target_tip, head], message)


def squash_commit(root: Path, target_tip: str, preview: MergePreview, message: str) -> str:
    """One commit on the target holding the whole change."""
    return commit_tree(root, preview.tree, [target_tip], message)


@dataclass(frozen=True)
class Replayed:
    """The outcome of replaying a branch's commits: the new tip, or the commit whose replay
    conflicts (and its conflicts)."""

    tip: str | None
    conflicting_commit: str | None = None
    conflicts: list[ConflictFile] = field(default_factory=list)


def rebase_commits(
    root: Path, target_tip: str, base: str, head: str, trailers: str = ""
) -> Replayed:
    """The commits of `base..head` replayed on the target's tip, by plumbing only.

    Each commit C is replayed as the merge of the target with C (their merge base is the
    branch's base), so the k-th new commit holds the target plus the branch's state at its
    k-th commit; a commit that changes nothing once replayed is dropped, as `git rebase`
    drops it. When the target has not moved, the branch's own commits are the result.
    `trailers` end the last replayed commit's message (a new commit names what it lands)."""
    if is_ancestor(root, target_tip, head):
        return Replayed(tip=head)
    tip, last_tree = target_tip, tree_of(root, target_tip)
    for commit in commits_between(root, base, head):
        preview = preview_merge(root, target_tip, commit)
        if not preview.clean:
            return Replayed(tip=None, conflicting_commit=commit, conflicts=preview.conflicts)
        if preview.tree == last_tree:
            continue
        message, author = _message_and_author(root, commit)
        tip = commit_tree(root, preview.tree, [tip], message, author=author)
        last_tree = preview.tree
    if tip != target_tip and trailers:
        message, author = _message_and_author(root, tip)
        parent = parents(root, tip)
        tip = commit_tree(root, last_tree, parent, f"{message}\n{trailers}", author=author)
    return Replayed(tip=tip)


def _message_and_author(root: Path, commit: str) -> tuple[str, Identity]:
    out = run_git(["log", "-1", "--date=raw", "--format=%an%x00%ae%x00%ad%x00%B", commit], root)
    name, email, date, message = out.split("\0", 3)
    return message.rstrip("\n") + "\n", Identity(name, email, date)


# -- moving a branch ----------------------------------------------------------------------------


def worktree_of(root: Path, branch: str) -> Path | None:
    """The worktree (the main checkout or a linked one) that has `branch` checked out."""
    out = run_git(["worktree", "list", "--porcelain", "-z"], root)
    path: str | None = None
    for entry in out.split("\0"):
        if entry.startswith("worktree "):
            path = entry.removeprefix("worktree ")
        elif entry == f"branch refs/heads/{branch}" and path is not None:
            return Path(path)
    return None


def uncommitted_changes(worktree: Path) -> list[str]:
    """Paths of tracked files with changes not committed (staged or not) in `worktree`."""
    out = run_git(["status", "--porcelain=v1", "-z", "--untracked-files=no"], worktree)
    entries = [e for e in out.split("\0") if e]
    return [e[3:] for e in entries if len(e) > 3 and e[2] == " "]


def untracked_in_the_way(worktree: Path, old: str, new: str) -> list[str]:
    """Untracked files of `worktree` that moving from `old` to `new` would overwrite."""
    out = run_git(["diff", "--name-only", "-z", "--diff-filter=A", old, new], worktree)
    added = [p for p in out.split("\0") if p]
    return [p for p in added if (worktree / p).exists()]


def advance_branch(root: Path, branch: str, old: str, new: str) -> Path | None:
    """Move `branch` from `old` to its descendant `new`; returns the worktree that was
    fast-forwarded with it (None: only the ref moved). Raises `Conflict` when the branch moved
    meanwhile or its worktree has changes that are not committed."""
    worktree = worktree_of(root, branch)
    if worktree is None:
        code, _, err = run_git_status(["update-ref", f"refs/heads/{branch}", new, old], root)
        if code != 0:
            raise Conflict(f"{branch} moved while the merge was prepared ({err}); merge again")
        return None
    refuse_unclean(worktree, branch, old, new)
    code, _, err = run_git_status(["merge", "--ff-only", "--quiet", new], worktree)
    if code != 0:
        raise Conflict(f"{branch} could not be fast-forwarded in {worktree} ({err}); merge again")
    return worktree


def refuse_unclean(worktree: Path, branch: str, old: str, new: str) -> None:
    """`Conflict` unless `worktree` (where `branch` is checked out) is at `old` with no
    uncommitted change and no untracked file in the way of `new`."""
    at = run_git(["rev-parse", "HEAD"], worktree).strip()
    if at != old:
        raise Conflict(f"{branch} moved while the merge was prepared (now {at[:10]}); merge again")
    changed = uncommitted_changes(worktree)
    if changed:
        raise Conflict(
            f"{branch} is checked out in {worktree} with uncommitted changes "
            f"({_listed(changed)}); nothing was merged. Commit or stash them there "
            "(`git stash`), then merge again"
        )
    blocking = untracked_in_the_way(worktree, old, new)
    if blocking:
        raise Conflict(
            f"untracked files in {worktree} would be overwritten by the merge "
            f"({_listed(blocking)}); nothing was merged. Move them away, then merge again"
        )


def _listed(paths: list[str], most: int = 5) -> str:
    shown = ", ".join(paths[:most])
    return shown + (f" and {len(paths) - most} more" if len(paths) > most else "")


def add_scratch_worktree(root: Path, path: Path, commit: str) -> None:
    """A detached worktree at `commit`, for running checks on a result nobody has checked out."""
    path.parent.mkdir(parents=True, exist_ok=True)
    run_git(["worktree", "add", "--quiet", "--detach", str(path), commit], root)


# -- reading history ----------------------------------------------------------------------------


def is_ancestor(root: Path, ancestor: str, descendant: str) -> bool:
    code, _, _ = run_git_status(["merge-base", "--is-ancestor", ancestor, descendant], root)
    return code == 0


def commits_with_trailer(root: Path, key: str, value: str, old: str, new: str) -> list[str]:
    """The commits of `old..new` carrying the trailer `key: value`, newest first. Only git's
    trailer block (the message's last paragraph) counts: the same words in a subject or a
    body, which a title or a description can hold, do not."""
    fmt = f"--format=%H %(trailers:key={key},valueonly,separator=%x1f)"
    args = ["log", fmt, "--fixed-strings", f"--grep={key}: {value}", f"{old}..{new}"]
    found = []
    for line in run_git(args, root).splitlines():
        commit, _, values = line.partition(" ")
        if value in (v.strip() for v in values.split("\x1f")):
            found.append(commit)
    return found


def parents(root: Path, commit: str) -> list[str]:
    return run_git(["rev-list", "--parents", "-n", "1", commit], root).split()[1:]


def tree_of(root: Path, commit: str) -> str:
    return run_git(["rev-parse", f"{commit}^{{tree}}"], root).strip()


def commits_between(root: Path, base: str, head: str) -> list[str]:
    """The commits of `base..head` along first parents, oldest first."""
    out = run_git(["rev-list", "--reverse", "--first-parent", f"{base}..{head}"], root)
    return out.split()


def file_at(root: Path, rev: str, path: str) -> bytes | None:
    """The content of `path` at `rev` (a commit or a tree), None when it is not there."""
    code, _, _ = run_git_status(["cat-file", "-e", f"{rev}:{path}"], root)
    if code != 0:
        return None
    return run_git_bytes(["cat-file", "blob", f"{rev}:{path}"], root)


def changed_paths(root: Path, old: str, new: str) -> list[str]:
    out = run_git(["diff", "--name-only", "-z", "--no-renames", old, new], root)
    return [p for p in out.split("\0") if p]


def numstat(root: Path, old: str, new: str) -> list[tuple[str, int, int]]:
    """(path, lines added, lines deleted) of each file changed from `old` to `new` (binary
    files count 0)."""
    out = run_git(["diff", "--numstat", "-z", "--no-renames", old, new], root)
    found = []
    for entry in out.split("\0"):
        fields = entry.split("\t")
        if len(fields) == 3:
            added, deleted, path = fields
            found.append((path, int(added) if added.isdigit() else 0, _int(deleted)))
    return found


def _int(text: str) -> int:
    return int(text) if text.isdigit() else 0


def hunks(root: Path, old: str, new: str, paths: Sequence[str] = ()) -> dict[str, list[Hunk]]:
    """The changed regions (`git diff -U0`) of each file from `old` to `new`."""
    args = ["diff", "-U0", "--no-color", "--no-ext-diff", "--no-renames", old, new, "--", *paths]
    found: dict[str, list[Hunk]] = {}
    current: list[Hunk] | None = None
    for line in run_git(args, root).splitlines():
        if line.startswith("diff --git "):
            current = None
        elif line.startswith("+++ "):
            name = diff_name(line[4:])
            current = found.setdefault(name[2:] if name.startswith("b/") else name, [])
        elif line.startswith("--- ") and current is None:
            name = diff_name(line[4:])
            if name != "/dev/null":  # a deletion has no "+++ b/…": keep it under its old name
                current = found.setdefault(name[2:] if name.startswith("a/") else name, [])
        elif current is not None and (match := _HUNK_HEADER.match(line)):
            a, b, c, d = match.groups()
            current.append(Hunk(int(a), _count(b), int(c), _count(d)))
    return found


def diff_name(text: str) -> str:
    """A file name as a patch's `---`/`+++` line has it: git pads a name holding a space with a
    tab, and quotes one holding a tab, a newline, a quote or a backslash (C escapes, octal for
    bytes when `core.quotePath` is on)."""
    if not text.startswith('"'):
        return text.removesuffix("\t")
    raw = codecs.escape_decode(text.rstrip("\t")[1:-1].encode("utf-8"))[0]
    return bytes(raw).decode("utf-8", errors="replace")


def follow_line(hunks: Sequence[Hunk], line: int) -> int | None:
    """Where old line `line` is in the new version, given the changes between them; None when
    the line itself was changed or deleted."""
    if any(h.touches(line) for h in hunks):
        return None
    return line + sum(h.new_count - h.old_count for h in hunks if h.before(line))


def _count(text: str | None) -> int:
    return 1 if text is None else int(text)


def blame(root: Path, base: str, head: str, path: str) -> dict[int, str]:
    """The commit of `base..head` that last changed each line of `path` at `head` (lines
    unchanged since `base` are left out)."""
    code, out, _ = run_git_status(["blame", "--porcelain", f"{base}..{head}", "--", path], root)
    if code != 0:
        return {}
    found: dict[int, str] = {}
    boundary: set[str] = set()
    last: str | None = None
    for line in out.splitlines():
        match = _BLAME_LINE.match(line)
        if match:
            last = match.group(1)
            found[int(match.group(2))] = last
        elif line == "boundary" and last is not None:
            boundary.add(last)
    return {n: c for n, c in found.items() if c not in boundary}


# -- remotes ------------------------------------------------------------------------------------


def default_remote(root: Path, branch: str) -> str | None:
    """The remote `branch` tracks, else `origin`, else the only remote; None when none."""
    tracked = run_git(["config", "--get", f"branch.{branch}.remote"], root, check=False).strip()
    remotes = run_git(["remote"], root).split()
    if tracked in remotes:
        return tracked
    if "origin" in remotes:
        return "origin"
    return remotes[0] if len(remotes) == 1 else None


def remote_url(root: Path, remote: str) -> str:
    return run_git(["remote", "get-url", remote], root).strip()


def push_branch(root: Path, remote: str, branch: str) -> None:
    """Push `branch` to `remote` under the same name (never forced)."""
    code, _, err = run_git_status(
        ["push", "--quiet", remote, f"refs/heads/{branch}:refs/heads/{branch}"], root
    )
    if code != 0:
        raise GitError(
            f"pushing {branch} to {remote} failed: {err}. Check the remote and your access "
            "(git's credentials), then propose with --push again",
            command=["git", "push", remote, branch],
            stderr=err,
        )


def diff_text(root: Path, old: str, new: str, paths: Sequence[str] = ()) -> str:
    """The unified diff from `old` to `new` (commits or trees)."""
    args = ["diff", "--no-color", "--no-ext-diff", "--find-renames", old, new, "--", *paths]
    return run_git(args, root)
