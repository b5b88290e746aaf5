"""Proposals: open one for a session, keep it in step with its session, review it, comment on
its lines, close it.

A proposal follows its session's branch. Whenever it is read or acted on (and after every agent
turn that changed code) it is brought up to date (`sync`): a new head is recorded as
`proposal_updated`, with the approvals it made stale and the conflicts with the target now
(`git merge-tree`, in the object store: no worktree is touched), and the line comments move
with their lines or become outdated when their line changed. Every step is an event of the
session; the `proposals` tables are what lists and lookups read.
"""

from __future__ import annotations

import getpass
import posixpath
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from branchwork import gitops
from branchwork._lazy import lazy_module
from branchwork.domain.errors import BranchworkError, Conflict, InvalidInput, NotFound
from branchwork.domain.events import (
    CheckRun,
    Comment,
    Merged,
    Note,
    ProposalClosed,
    ProposalOpened,
    ProposalUpdated,
    Review,
    utc_now,
)
from branchwork.domain.ids import new_id
from branchwork.domain.models import Project, Session
from branchwork.domain.proposals import (
    ApprovalPolicy,
    MergeStrategy,
    Proposal,
    ProposalReview,
    ReviewComment,
    Verdict,
    has_controls,
    one_line,
    standing,
    status_of,
)
from branchwork.domain.text import require_utf8
from branchwork.gitops import merges
from branchwork.sandbox.liveness import processes_in
from branchwork.service.base import Services
from branchwork.service.describe import describe
from branchwork.service.policy import MergeGate, gate
from branchwork.service.resolve import forget_current
from branchwork.service.scope import SessionScope, open_scope, repo_path, take_checkpoint
from branchwork.store.proposals import ProposalStore

if TYPE_CHECKING:
    from branchwork.service import remotes
else:  # httpx is loaded only to open a pull request
    remotes = lazy_module("branchwork.service.remotes")

_NUMBER = re.compile(r"^#?(\d{1,7})$")
MAX_REVIEWER = 200


@dataclass(frozen=True)
class ProposalScope:
    """One use case's view of a proposal, resolved once: the proposal and its session's scope
    (the session need not have a worktree: an archived session's branch can be proposed)."""

    scope: SessionScope
    proposal: Proposal

    @property
    def services(self) -> Services:
        return self.scope.services

    @property
    def store(self) -> ProposalStore:
        return self.scope.services.store.proposals

    @property
    def repo(self) -> Path:
        return repo_path(self.scope.project)  # a repository moved away says so

    @property
    def policy(self) -> ApprovalPolicy:
        return self.scope.project.config.policy

    def with_proposal(self, proposal: Proposal) -> ProposalScope:
        return replace(self, proposal=proposal)


@dataclass(frozen=True)
class ProposalDetails:
    """A proposal with its session, reviews, comments, check runs, and what its merge lacks."""

    proposal: Proposal
    session: Session
    reviews: list[ProposalReview]
    comments: list[ReviewComment]
    checks: list[CheckRun]
    gate: MergeGate
    policy: ApprovalPolicy


# -- finding ------------------------------------------------------------------------------------


def find_proposal(services: Services, key: str, project: Callable[[], Project]) -> Proposal:
    """A proposal by number in the project (`3` or `#3`; `project` is asked only then), else
    by id or short id (or a prefix of 4+ characters)."""
    key = key.strip()
    number = _NUMBER.match(key)
    if number:
        chosen = project()
        found = services.store.proposals.by_number(chosen.id, int(number.group(1)))
        if found is None:
            raise NotFound(
                f"project {chosen.name!r} has no proposal #{number.group(1)}; "
                "`proposal list` shows them"
            )
        return found
    matches = services.store.proposals.by_id(key) if len(key) >= 4 else []
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFound(f"no proposal {key!r}; give its number (`proposal list` shows them)")
    raise InvalidInput(f"{key!r} matches {len(matches)} proposals; give more of the id")


def open_proposal_scope(services: Services, proposal: Proposal) -> ProposalScope:
    session = services.store.get_session(proposal.session_id)
    return ProposalScope(open_scope(services, session, worktree=False), proposal)


@contextmanager
def proposal_lock(services: Services, proposal_id: str) -> Iterator[None]:
    """One change of a proposal at a time, across processes."""
    with gitops.file_lock(services.lock_dir / f"proposal-{proposal_id}.lock"):
        yield


def reviewer_name(given: str | None) -> str:
    """Who reviews: the name given, else the login name of this process's user."""
    name = (given or "").strip() or _login_name()
    if len(name) > MAX_REVIEWER or has_controls(name):
        raise InvalidInput(f"reviewer name {name[:40]!r}… is not usable; give a short name")
    return name


def _login_name() -> str:
    """This process's user's login name; a user the system does not know (a container's
    random uid, no USER or LOGNAME) must name themselves."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        raise InvalidInput(
            "cannot tell who you are (no login name for this user); give one with --by NAME"
        ) from None


# -- opening ------------------------------------------------------------------------------------


def propose(
    services: Services,
    session: Session,
    *,
    title: str | None = None,
    target: str | None = None,
    push: bool = False,
    host: str | None = None,
) -> Proposal:
    """The session's open proposal, brought up to date (its title and target stay as they
    were); else a new one. An active session's pending edits are checkpointed first, so that
    what is proposed is what is in its files.
    With `push` (implied by `host`), its branch is pushed to the project's remote; with `host`
    (`github`, `gitlab`) a pull request is opened there too."""
    if host is not None and host not in remotes.HOSTS:
        raise InvalidInput(f"unknown host {host!r}; use one of {', '.join(remotes.HOSTS)}")
    if session.status == "merged":
        raise Conflict(f"session {session.short_id} is merged already; start a new session")
    scope = open_scope(services, session, worktree=session.status == "active")
    if session.status == "active":
        take_checkpoint(scope, "before propose", automatic=True)
    with gitops.file_lock(services.lock_dir / f"propose-{session.id}.lock"):  # one open at once
        existing = services.store.proposals.open_for_session(session.id)
        if existing is not None:
            proposal = sync(ProposalScope(scope, existing))
        else:
            proposal = open_new(scope, title=title, target=target)
    if push or host is not None:
        proposal = publish(ProposalScope(scope, proposal), host)
    return proposal


def publish(pscope: ProposalScope, host: str | None) -> Proposal:
    """Push the session's branch to the project's remote and, for a `host`, open a pull
    request there (its URL kept with the proposal); each step is a note in the history."""
    proposal, session = refuse_finished(pscope.proposal), pscope.scope.session
    remote = remotes.push(pscope.repo, session.branch, pscope.scope.project.main_branch)
    pscope.scope.record(Note(text=f"pushed {session.branch} ({proposal.head[:12]}) to {remote}"))
    if host is None:
        return proposal
    request = remotes.PullRequest(
        branch=session.branch,
        target=proposal.target,
        title=proposal.title,
        body=proposal.description,
    )
    chosen: remotes.Host = "github" if host == "github" else "gitlab"
    url = remotes.open_pull_request(chosen, pscope.repo, remote, request)
    pscope.scope.record(Note(text=f"opened a {host} pull request: {url}"))
    return pscope.store.update(proposal.id, remote_url=url)


def open_new(scope: SessionScope, *, title: str | None, target: str | None) -> Proposal:
    """Open a proposal of the session's branch into `target` (default: main)."""
    repo, session = Path(scope.project.path), scope.session
    target = _check_target(scope, target)
    head = gitops.resolve_commit(repo, session.branch)
    target_tip = gitops.resolve_commit(repo, target)
    if merges.is_ancestor(repo, head, target_tip):
        raise Conflict(
            f"session {session.short_id} has nothing that {target} lacks; make a change in it "
            "first (`ask`, `write`, `run`), then propose"
        )
    base = gitops.merge_base(repo, head, target_tip)
    conflicts = merges.preview_merge(repo, target, session.branch).conflicts
    proposal_id = new_id()
    chosen_title = scope.redactor.redact(one_line(title or "") or _default_title(scope))
    description = describe(scope, proposal_id, base, head)
    now = utc_now()
    draft = Proposal(
        id=proposal_id,
        project_id=scope.project.id,
        number=1,
        session_id=session.id,
        title=chosen_title,
        description=scope.redactor.redact(description),
        target=target,
        base_commit=base,
        target_commit=target_tip,
        head=head,
        status="open",
        conflicts=[c.path for c in conflicts],
        created_at=now,
        updated_at=now,
    )
    proposal = scope.services.store.proposals.add(draft)
    _record_opened(scope, proposal)
    return proposal


def _record_opened(scope: SessionScope, proposal: Proposal) -> None:
    opened = ProposalOpened(
        proposal_id=proposal.id,
        number=proposal.number,
        title=proposal.title,
        target=proposal.target,
        base_commit=proposal.base_commit,
        head=proposal.head,
        description=proposal.description,
    )
    scope.record(opened, "user")
    if proposal.conflicts:
        text = f"proposal #{proposal.number} conflicts with {proposal.target} in " + ", ".join(
            proposal.conflicts
        )
        scope.record(Note(level="warning", text=text))


def _check_target(scope: SessionScope, target: str | None) -> str:
    """The target: an existing branch, and no session's (merging there would move another
    session's branch, and its files, under it: without its turn lease, and unrecorded in its
    history)."""
    project, session = scope.project, scope.session
    repo = Path(project.path)
    chosen = (target or project.main_branch).strip()
    if chosen == session.branch:
        raise InvalidInput("a session cannot propose into its own branch; name another target")
    if not gitops.branch_exists(repo, chosen):
        raise InvalidInput(f"{chosen!r} is not a branch of {repo}; give an existing branch")
    owner = next(
        (
            s
            for s in scope.services.store.find_sessions(chosen)
            if s.branch == chosen and s.project_id == project.id
        ),
        None,
    )
    if owner is not None:
        raise InvalidInput(
            f"{chosen} is the branch of session {owner.short_id}; propose into "
            f"{project.main_branch} or a shared branch (to bring this work into that session, "
            f"ask its agent to merge {session.branch})"
        )
    return chosen


def _default_title(scope: SessionScope) -> str:
    title = one_line(scope.session.title)
    if title and title not in ("untitled", "chat"):
        return title
    for event in scope.services.store.iter_events(scope.session.id, kinds=["user_message"]):
        text = getattr(event.payload, "text", "").strip()
        line = one_line(text.splitlines()[0])[:72] if text else ""
        if line:
            return line
    return f"Changes of session {scope.session.short_id}"


# -- following the session ----------------------------------------------------------------------


def sync(pscope: ProposalScope) -> Proposal:
    """Bring the proposal up to date with its session's branch and its target (see the module
    docstring); a merged or closed proposal is left as it is."""
    with proposal_lock(pscope.services, pscope.proposal.id):
        current = pscope.store.get(pscope.proposal.id) or pscope.proposal
        return _sync(pscope.with_proposal(current))


def _sync(pscope: ProposalScope) -> Proposal:
    proposal, repo = pscope.proposal, pscope.repo
    if proposal.finished:
        return proposal
    if not gitops.branch_exists(repo, proposal.target):
        return proposal  # shown as it was; a merge says what to do (`refuse_lost_target`)
    session = pscope.scope.session
    head = _branch_head(pscope)
    target_tip = gitops.resolve_commit(repo, proposal.target)
    if head == proposal.head and target_tip == proposal.target_commit:
        return proposal
    landed = _landed(pscope, target_tip)
    if landed is not None:
        return _record_landed(pscope, landed)
    source = session.branch if gitops.branch_exists(repo, session.branch) else head
    conflicts = [c.path for c in merges.preview_merge(repo, proposal.target, source).conflicts]
    reviews = pscope.store.reviews(proposal.id)
    stale = 0
    if head != proposal.head:
        stale = len(standing(reviews, proposal.head).approvers)
        move_comments(pscope, proposal.head, head)
    required = pscope.policy.required_approvals
    updated = pscope.store.update(
        proposal.id,
        head=head,
        target_commit=target_tip,
        base_commit=gitops.merge_base(repo, head, target_tip),
        conflicts=conflicts,
        status=status_of(standing(reviews, head), required),
    )
    if head != proposal.head or conflicts != proposal.conflicts:
        payload = ProposalUpdated(
            proposal_id=proposal.id, head=head, stale_approvals=stale, conflicts=conflicts
        )
        pscope.scope.record(payload)
    return updated


def _landed(pscope: ProposalScope, target_tip: str) -> str | None:
    """The target's commit that already holds the proposal, when a merge moved the target and
    its process stopped before recording it (the commit names the proposal in a trailer), or
    when the proposal's head was merged into the target by other means."""
    proposal, repo = pscope.proposal, pscope.repo
    if target_tip == proposal.target_commit:
        return None
    found = merges.commits_with_trailer(
        repo, "Branchwork-Proposal", proposal.id, proposal.target_commit, target_tip
    )
    if found:
        return found[0]
    if merges.is_ancestor(repo, proposal.head, proposal.target_commit):
        return None  # it had nothing the target lacked (a branch reset to it): nothing landed
    return target_tip if merges.is_ancestor(repo, proposal.head, target_tip) else None


def _record_landed(pscope: ProposalScope, commit: str) -> Proposal:
    """Finish what a stopped merge left undone: the session marked merged, its worktree
    removed (when unchanged), the proposal merged; said in a note."""
    proposal, scope = pscope.proposal, pscope.scope
    parents = merges.parents(pscope.repo, commit)
    strategy: MergeStrategy = "merge" if len(parents) > 1 else "squash"
    if commit == proposal.head:
        strategy = "rebase"
    text = (
        f"{proposal.target} already holds proposal #{proposal.number} ({commit[:10]}): "
        "recorded as merged"
    )
    scope.record(Note(level="warning", text=text))
    with gitops.repo_lock(pscope.services.lock_dir, pscope.repo):
        retire_worktree(pscope, proposal.head)
    merged = Merged(
        proposal_id=proposal.id, strategy=strategy, target=proposal.target, commit=commit
    )
    if scope.session.status != "merged":
        pscope.services.recorder.set_status(scope.session, "merged", merged)
        forget_current(pscope.services, scope.session)
    return pscope.store.update(proposal.id, status="merged", merged_commit=commit)


def retire_worktree(pscope: ProposalScope, head: str) -> bool:
    """Remove the merged session's worktree unless it changed since `head` (then it is kept,
    and a note says where); True when kept."""
    scope = pscope.scope
    worktree = scope.worktree
    if not worktree.exists():
        return False
    keep = _keep_reason(worktree)
    if keep:
        text = (
            f"{keep}: the worktree {worktree} is kept with its branch (remove it with `git "
            "worktree remove` once done)"
        )
        scope.record(Note(level="warning", text=text))
        return True
    current = gitops.snapshot_tree(worktree, scope.project.config.copy_files)
    if current != merges.tree_of(pscope.repo, head):
        text = (
            f"the worktree {worktree} changed after the merge was prepared; it is kept with "
            "its branch (copy what you need, then remove it with `git worktree remove`)"
        )
        scope.record(Note(level="warning", text=text))
        return True
    gitops.remove_worktree(pscope.repo, worktree)
    return False


def _keep_reason(worktree: Path) -> str:
    """Why a merged session's worktree must stay: a process works in it (a person's shell, an
    editor), or it holds a git repository of its own (a clone, a submodule: the branch has
    only a gitlink of it); empty when it may go."""
    inside = processes_in(worktree)
    if inside:
        return f"process {inside[0]} works in it"
    nested = gitops.nested_repositories(worktree)
    return f"{nested[0]} is a git repository of its own" if nested else ""


def _branch_head(pscope: ProposalScope) -> str:
    """The session branch's tip; its last recorded head when the branch is gone."""
    repo, session = pscope.repo, pscope.scope.session
    if gitops.branch_exists(repo, session.branch):
        return gitops.resolve_commit(repo, session.branch)
    return pscope.proposal.head


def move_comments(pscope: ProposalScope, old: str, new: str) -> None:
    """Carry the open line comments from head `old` to head `new`: a comment follows its line
    when lines above it come or go, and is outdated once its own line changes or its file
    goes."""
    comments = [c for c in pscope.store.comments(pscope.proposal.id) if not c.outdated]
    if not comments:
        return
    paths = sorted({c.path for c in comments})
    changed = merges.hunks(pscope.repo, old, new, paths)
    moved = []
    for comment in comments:
        if comment.path not in changed:
            continue
        moved.append(_moved(comment, changed[comment.path], pscope.repo, new))
    pscope.store.save_comments(moved)


def _moved(comment: ReviewComment, hunks: list[merges.Hunk], repo: Path, new: str) -> ReviewComment:
    moved = merges.follow_line(hunks, comment.current_line)
    if moved is None or merges.file_at(repo, new, comment.path) is None:
        return comment.model_copy(update={"outdated": True})
    return comment.model_copy(update={"current_line": moved})


def after_turn(scope: SessionScope, changed: bool) -> Proposal | None:
    """After an agent turn: the session's open proposal follows the new head; with none and
    the policy's auto-propose on, a turn that changed code opens one. Never fails the turn: a
    problem is recorded as a note."""
    if not changed:
        return None
    try:
        with gitops.file_lock(scope.services.lock_dir / f"propose-{scope.session.id}.lock"):
            existing = scope.services.store.proposals.open_for_session(scope.session.id)
            if existing is not None:
                return sync(ProposalScope(scope, existing))
            if scope.project.config.policy.auto_propose:
                return open_new(scope, title=None, target=None)
    except BranchworkError as exc:
        scope.record(Note(level="warning", text=f"the proposal was not updated: {exc.message}"))
    return None


# -- reading ------------------------------------------------------------------------------------


def details(pscope: ProposalScope) -> ProposalDetails:
    """The proposal, up to date, with everything a review shows."""
    proposal = sync(pscope)
    reviews = pscope.store.reviews(proposal.id)
    comments = pscope.store.comments(proposal.id)
    project = pscope.scope.project
    return ProposalDetails(
        proposal=proposal,
        session=pscope.services.store.get_session(proposal.session_id),
        reviews=reviews,
        comments=comments,
        checks=check_runs(pscope.scope, proposal.id),
        gate=gate(project, proposal, standing(reviews, proposal.head), comments),
        policy=project.config.policy,
    )


def check_runs(scope: SessionScope, proposal_id: str) -> list[CheckRun]:
    found = scope.services.store.iter_events(scope.session.id, kinds=["check_run"])
    return [
        e.payload
        for e in found
        if isinstance(e.payload, CheckRun) and e.payload.proposal_id == proposal_id
    ]


def list_proposals(
    services: Services, project: Project | None, *, include_finished: bool = False
) -> list[Proposal]:
    """Proposals, newest first; the open ones brought up to date."""
    statuses = None if include_finished else ["open", "approved", "changes_requested"]
    found = services.store.proposals.select(
        project_id=project.id if project else None, statuses=statuses
    )
    return [p if p.finished else sync(open_proposal_scope(services, p)) for p in found]


# -- reviewing ----------------------------------------------------------------------------------


def add_review(
    pscope: ProposalScope, verdict: Verdict, message: str, reviewer: str | None
) -> ProposalDetails:
    """Approve, request changes or comment on the proposal's current head."""
    if verdict == "changes_requested" and not message.strip():
        raise InvalidInput("say what should change: request-changes needs a message (-m)")
    name = reviewer_name(reviewer)
    with proposal_lock(pscope.services, pscope.proposal.id):
        proposal = refuse_finished(_sync(_current(pscope)))
        review = ProposalReview(
            id=new_id(),
            proposal_id=proposal.id,
            reviewer=pscope.scope.redactor.redact(name),
            verdict=verdict,
            head=proposal.head,
            message=pscope.scope.redactor.redact(message.strip()),
            created_at=utc_now(),
        )
        pscope.store.add_review(review)
        pscope.scope.record(
            Review(
                proposal_id=proposal.id,
                reviewer=review.reviewer,
                verdict=verdict,
                head=proposal.head,
                message=review.message,
            ),
            "user",
        )
        _restate(pscope.with_proposal(proposal))
    return details(pscope)


def _current(pscope: ProposalScope) -> ProposalScope:
    return pscope.with_proposal(pscope.store.get(pscope.proposal.id) or pscope.proposal)


def _restate(pscope: ProposalScope) -> Proposal:
    """Store the status the reviews give the proposal's head."""
    proposal = pscope.proposal
    reviews = pscope.store.reviews(proposal.id)
    status = status_of(standing(reviews, proposal.head), pscope.policy.required_approvals)
    if status == proposal.status:
        return proposal
    return pscope.store.update(proposal.id, status=status)


def refuse_lost_target(pscope: ProposalScope) -> None:
    """`Conflict` when the proposal's target branch was deleted since it was opened."""
    proposal = pscope.proposal
    if not gitops.branch_exists(pscope.repo, proposal.target):
        raise Conflict(
            f"{proposal.target} is no longer a branch of {pscope.repo}; recreate it (`git "
            f"branch {proposal.target} {proposal.target_commit[:10]}`) or close the proposal "
            f"(`close {proposal.number}`)"
        )


def refuse_finished(proposal: Proposal) -> Proposal:
    if proposal.finished:
        raise Conflict(
            f"proposal #{proposal.number} is {proposal.status}; propose the session again "
            "for a new one"
        )
    return proposal


def add_comment(
    pscope: ProposalScope, path: str, line: int, text: str, reviewer: str | None
) -> ReviewComment:
    """A comment on line `line` of `path` as the proposal's head has it."""
    if not text.strip():
        raise InvalidInput("the comment is empty; say something with -m")
    name = reviewer_name(reviewer)
    clean = _repo_path(path)
    with proposal_lock(pscope.services, pscope.proposal.id):
        proposal = refuse_finished(_sync(_current(pscope)))
        _check_line(pscope.repo, proposal, clean, line)
        comment = ReviewComment(
            id=new_id(),
            proposal_id=proposal.id,
            reviewer=pscope.scope.redactor.redact(name),
            path=clean,
            line=line,
            head=proposal.head,
            text=pscope.scope.redactor.redact(text.strip()),
            current_line=line,
            created_at=utc_now(),
        )
        pscope.store.add_comment(comment)
        pscope.scope.record(
            Comment(
                proposal_id=proposal.id,
                comment_id=comment.id,
                reviewer=comment.reviewer,
                path=clean,
                line=line,
                head=proposal.head,
                text=comment.text,
            ),
            "user",
        )
    return comment


def _repo_path(path: str) -> str:
    """A path inside the repository, normalised (`./a//b` is `a/b`); never outside it."""
    text = path.strip().replace("\\", "/")
    clean = posixpath.normpath(text) if text else ""
    if (
        not clean
        or clean.startswith(("/", "../"))
        or clean in (".", "..")
        or ".git" in clean.split("/")
    ):
        raise InvalidInput(f"{path!r} is not a file of the repository; give a path such as app.py")
    return clean


def _check_line(repo: Path, proposal: Proposal, path: str, line: int) -> None:
    data = merges.file_at(repo, proposal.head, path)
    if data is None:
        raise NotFound(
            f"{path} is not a file of proposal #{proposal.number}'s head; `review` shows its files"
        )
    count = len(data.decode("utf-8", errors="replace").splitlines())
    if not 1 <= line <= count:
        raise InvalidInput(
            f"{path} has {count} line(s) at the proposal's head; give a line 1–{count}"
        )


def close(pscope: ProposalScope, reason: str) -> Proposal:
    # Before the update: a reason the history cannot hold left it closed without its event.
    require_utf8(reason, "the reason", "Branchwork records reasons as UTF-8")
    with proposal_lock(pscope.services, pscope.proposal.id):
        proposal = refuse_finished(_current(pscope).proposal)
        closed = pscope.store.update(proposal.id, status="closed")
        text = pscope.scope.redactor.redact(reason.strip())
        pscope.scope.record(ProposalClosed(proposal_id=proposal.id, reason=text), "user")
    return closed
