"""The conflict radar: which live sessions touch the same files, functions or lines as each
other and as main now, and in which order to merge them.

A live session is an active one, seen with its uncommitted edits (its worktree's files, as a
snapshot commit nobody points at). For each session: the files it changed since it forked from
main, and the definitions (functions, classes) its changed lines fall in, found by tree-sitter.
Two sessions overlap when they changed the same file; more so the same definition; most when
their changes conflict (`git merge-tree` of the two, in the object store). The same goes for a
session and what main gained since the session forked.

The suggested order merges first what conflicts with nothing, approved proposals before the
rest, then the sessions that overlap least, smaller changes before larger ones; a session that
conflicts with main comes last (it must be brought up to date first).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from branchwork import gitops
from branchwork.domain.models import Project, Session
from branchwork.gitops import merges
from branchwork.index import definitions_in
from branchwork.service.base import Services
from branchwork.service.scope import repo_path

MAIN = "main"  # how an overlap with the target branch names it


@dataclass(frozen=True)
class SessionChanges:
    """A live session's change since it forked from main: files, definitions, size."""

    session: Session
    head: str  # its branch tip, or a snapshot commit of its worktree when it has edits
    base: str  # where it forked from main
    files: list[str]
    definitions: dict[str, list[str]]  # path -> the definitions its changed lines fall in
    lines_changed: int
    proposal: int | None = None  # its open proposal's number
    approved: bool = False


@dataclass(frozen=True)
class ConflictSpot:
    path: str
    lines: list[tuple[int, int]]  # the conflicting lines, in the first side's version


@dataclass(frozen=True)
class Overlap:
    """Where `first` and `second` (a session's id, or `main`) touch the same code."""

    first: str
    second: str
    files: list[str]
    definitions: list[str]  # "path: name"
    conflicts: list[ConflictSpot] = field(default_factory=list)

    @property
    def level(self) -> str:
        """`conflict` (their merge conflicts), `definition` (same function or class), or
        `file`."""
        if self.conflicts:
            return "conflict"
        return "definition" if self.definitions else "file"

    @property
    def weight(self) -> int:
        return {"conflict": 3, "definition": 2, "file": 1}[self.level]


@dataclass(frozen=True)
class MergeStep:
    session: Session
    reason: str


@dataclass(frozen=True)
class RadarReport:
    project: Project
    main_tip: str
    sessions: list[SessionChanges]
    overlaps: list[Overlap]  # between sessions
    with_main: list[Overlap]  # each session and what main gained since it forked
    order: list[MergeStep]


def radar(services: Services, project: Project) -> RadarReport:
    repo = repo_path(project)
    main_tip = gitops.resolve_commit(repo, project.main_branch)
    live = [s for s in services.store.list_sessions(project.id) if s.status == "active"]
    exclude = project.config.copy_files
    every = (_changes(services, repo, s, main_tip, exclude) for s in live)
    changes = [c for c in every if c.files]
    overlaps = [
        found
        for i, one in enumerate(changes)
        for other in changes[i + 1 :]
        if (found := _between(repo, one, other)) is not None
    ]
    with_main = [o for o in (_with_main(repo, c, main_tip) for c in changes) if o is not None]
    order = suggest_order(changes, overlaps, with_main)
    return RadarReport(project, main_tip, changes, overlaps, with_main, order)


def _changes(
    services: Services, repo: Path, session: Session, main_tip: str, exclude: list[str]
) -> SessionChanges:
    head = _live_head(repo, session, exclude)
    base = gitops.merge_base(repo, head, main_tip)
    files = merges.changed_paths(repo, base, head)
    proposal = services.store.proposals.open_for_session(session.id)
    return SessionChanges(
        session=session,
        head=head,
        base=base,
        files=files,
        definitions=_definitions(repo, base, head, files),
        lines_changed=sum(a + d for _, a, d in merges.numstat(repo, base, head)),
        proposal=proposal.number if proposal else None,
        approved=proposal is not None and proposal.status == "approved",
    )


def _live_head(repo: Path, session: Session, exclude: list[str]) -> str:
    """The session's branch tip, or a commit of its worktree's files when they differ (the
    files copied in, such as `.env`, left out)."""
    tip = gitops.resolve_commit(repo, session.branch)
    worktree = Path(session.worktree)
    if not worktree.exists():
        return tip
    tree = gitops.snapshot_tree(worktree, exclude)
    if tree == merges.tree_of(repo, tip):
        return tip
    return merges.commit_tree(repo, tree, [tip], "radar: uncommitted edits of the session\n")


def _definitions(repo: Path, old: str, new: str, files: list[str]) -> dict[str, list[str]]:
    """The definitions (at `new`) that the lines changed from `old` fall in, per file."""
    found: dict[str, list[str]] = {}
    for path, hunks in merges.hunks(repo, old, new, files).items():
        data = merges.file_at(repo, new, path)
        if data is None:
            continue
        names = set()
        for symbol in definitions_in(path, data):
            for hunk in hunks:
                last = hunk.new_start + max(hunk.new_count, 1) - 1
                if symbol.start_line <= last and hunk.new_start <= symbol.end_line:
                    names.add(
                        f"{symbol.container}.{symbol.name}" if symbol.container else symbol.name
                    )
        if names:
            found[path] = sorted(names)
    return found


def _shared_definitions(one: dict[str, list[str]], other: dict[str, list[str]]) -> list[str]:
    return [
        f"{path}: {name}"
        for path in sorted(set(one) & set(other))
        for name in sorted(set(one[path]) & set(other[path]))
    ]


def _between(repo: Path, one: SessionChanges, other: SessionChanges) -> Overlap | None:
    shared = sorted(set(one.files) & set(other.files))
    if not shared:
        return None
    conflicts = merges.preview_merge(repo, one.head, other.head).conflicts
    return Overlap(
        first=one.session.id,
        second=other.session.id,
        files=shared,
        definitions=_shared_definitions(one.definitions, other.definitions),
        conflicts=[_spot(c) for c in conflicts],
    )


def _with_main(repo: Path, changes: SessionChanges, main_tip: str) -> Overlap | None:
    if main_tip == changes.base:
        return None
    gained = merges.changed_paths(repo, changes.base, main_tip)
    shared = sorted(set(changes.files) & set(gained))
    if not shared:
        return None
    main_definitions = _definitions(repo, changes.base, main_tip, shared)
    conflicts = merges.preview_merge(repo, main_tip, changes.head).conflicts
    return Overlap(
        first=changes.session.id,
        second=MAIN,
        files=shared,
        definitions=_shared_definitions(changes.definitions, main_definitions),
        conflicts=[_spot(c) for c in conflicts],
    )


def _spot(conflict: merges.ConflictFile) -> ConflictSpot:
    return ConflictSpot(conflict.path, [(h.start_line, h.end_line) for h in conflict.hunks])


def suggest_order(
    changes: list[SessionChanges], overlaps: list[Overlap], with_main: list[Overlap]
) -> list[MergeStep]:
    """The order the module docstring describes, each step with its reason."""
    blocked = {o.first: o for o in with_main if o.level == "conflict"}
    weight: dict[str, int] = {}
    for overlap in overlaps:
        for side in (overlap.first, overlap.second):
            weight[side] = weight.get(side, 0) + overlap.weight

    def key(c: SessionChanges) -> tuple[bool, int, bool, int, str]:
        sid = c.session.id
        return (sid in blocked, weight.get(sid, 0), not c.approved, c.lines_changed, sid)

    steps = []
    for change in sorted(changes, key=key):
        steps.append(MergeStep(change.session, _reason(change, overlaps, blocked)))
    return steps


def _reason(change: SessionChanges, overlaps: list[Overlap], blocked: dict[str, Overlap]) -> str:
    sid = change.session.id
    if sid in blocked:
        files = ", ".join(s.path for s in blocked[sid].conflicts)
        return f"conflicts with main in {files}: bring it up to date with main first"
    mine = [o for o in overlaps if sid in (o.first, o.second)]
    if not mine:
        return "touches nothing the other sessions touch"
    worst = max(mine, key=lambda o: o.weight)
    where = ", ".join(worst.definitions or worst.files)
    return f"{len(mine)} overlap(s), the strongest a {worst.level} overlap in {where}"
