"""A session's search view: the tree of its base commit plus the files the session changed.

The base view is shared with main (and with every session started from the same commit) and is
indexed once; the session's changes are an index *overlay* named after the session, so a query
inside a session costs what a query on main costs. The overlay is kept current, never rebuilt
by hashing the whole worktree:
- once per use case (a CLI command, an API request, an agent turn), the first query compares
  the worktree with the base (`git status` plus `git diff-tree`; only changed files are hashed):
  edits made outside Branchwork (an editor, another tool) are seen there;
- after that, within the use case, Branchwork's own events keep it current: a `file_written`
  updates just that path; a command, a revert or a restore (which may change anything) has the
  next query compare again. The overlay's stamp records the last event it has seen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from branchwork import gitops
from branchwork._lazy import lazy_module
from branchwork.domain.events import FileWritten
from branchwork.gitops.status import SUBMODULE, SYMLINK
from branchwork.service.base import Services
from branchwork.service.scope import SessionScope

if TYPE_CHECKING:
    from branchwork import index
    from branchwork.index import IndexReport, OverlayRows
else:  # the index (tree-sitter, grammars) is loaded when first used
    index = lazy_module("branchwork.index")

# Events after which any file may have changed: the next query compares the worktree again.
RECHECK_KINDS = ("command_finished", "reverted", "restored", "interrupted", "terminal_closed")
WATCHED_KINDS = ("file_written", *RECHECK_KINDS)
_CHECKED = "view_checked"  # scope memo: this use case has compared the worktree already
_SEEN = "view_seen_seq"  # scope memo: the last event this use case has looked at
_KIND_COUNTS = {SYMLINK: "symlinks", SUBMODULE: "submodules"}


@dataclass(frozen=True)
class Stamp:
    """What the overlay reflects: the session's base commit (and its tree) and the last event
    of the session it has taken into account."""

    base: str
    tree: str
    seq: int

    def dump(self) -> str:
        return json.dumps({"base": self.base, "tree": self.tree, "seq": self.seq})

    @classmethod
    def load(cls, text: str) -> Stamp | None:
        try:
            data = json.loads(text)
            return cls(str(data["base"]), str(data["tree"]), int(data["seq"]))
        except (ValueError, KeyError, TypeError):
            return None


def view_key(session_id: str) -> str:
    return f"overlay:{session_id}"


def current_view(scope: SessionScope) -> str:
    """The key of the session's view in the index, brought up to date (see the module)."""
    index = scope.services.code_index()
    info = index.overlay(scope.session.id)
    stamp = Stamp.load(info.stamp) if info is not None else None
    if stamp is None or stamp.base != scope.session.base_commit or not scope.memo.get(_CHECKED):
        refresh(scope, stamp)
        return view_key(scope.session.id)
    _follow_events(scope, stamp)
    return view_key(scope.session.id)


def refresh(scope: SessionScope, stamp: Stamp | None = None) -> IndexReport:
    """Compare the worktree with the base commit and make the overlay exactly that."""
    services = scope.services
    seq = services.store.last_seq(scope.session.id)  # events after this are applied next time
    base = scope.session.base_commit
    tree = stamp.tree if stamp is not None and stamp.base == base else _tree_of(scope, base)
    changes = gitops.worktree_changes(scope.worktree, base, scope.project.config.copy_files)
    rows = _overlay_rows(changes, replace=True, stamp=Stamp(base, tree, seq))
    report = services.code_index().update_overlay(scope.session.id, scope.worktree, tree, rows)
    scope.memo[_CHECKED] = True
    scope.memo[_SEEN] = seq
    return report


def _follow_events(scope: SessionScope, stamp: Stamp) -> None:
    """Apply what Branchwork did in the session since the overlay's stamp (events this use
    case has looked at already are not read again: a search records one itself)."""
    store = scope.services.store
    last = store.last_seq(scope.session.id)
    seen = int(scope.memo.get(_SEEN, 0))  # type: ignore[call-overload]
    if last <= max(seen, stamp.seq):
        return
    after = max(seen, stamp.seq)
    events = list(store.iter_events(scope.session.id, after_seq=after, kinds=WATCHED_KINDS))
    scope.memo[_SEEN] = last
    if not events:
        return
    if any(e.kind in RECHECK_KINDS for e in events):
        refresh(scope, stamp)
        return
    written = sorted({e.payload.path for e in events if isinstance(e.payload, FileWritten)})
    patterns = scope.project.config.copy_files
    copied = gitops.matching(scope.worktree, patterns, written)
    paths = [p for p in written if p not in copied]
    changes = gitops.file_state(scope.worktree, paths)
    rows = _overlay_rows(
        changes, replace=False, stamp=Stamp(stamp.base, stamp.tree, events[-1].seq)
    )
    scope.services.code_index().update_overlay(scope.session.id, scope.worktree, stamp.tree, rows)


def _overlay_rows(changes: list[gitops.PathChange], *, replace: bool, stamp: Stamp) -> OverlayRows:
    counts = {"symlinks": 0, "submodules": 0}
    for change in changes:
        for mode, sign in ((change.mode, 1), (change.base_mode, -1)):
            if mode in _KIND_COUNTS:
                counts[_KIND_COUNTS[mode]] += sign
    return index.OverlayRows(
        rows=[(c.path, c.sha, c.mode) for c in changes],
        replace=replace,
        stamp=stamp.dump(),
        **counts,
    )


def _tree_of(scope: SessionScope, commit: str) -> str:
    return gitops.run_git(["rev-parse", f"{commit}^{{tree}}"], scope.worktree).strip()


def forget(services: Services, session_id: str) -> bool:
    """Drop the session's overlay (rebuilt when next searched); its contents stay until the
    index's garbage is collected."""
    return services.code_index().forget_view(view_key(session_id))
