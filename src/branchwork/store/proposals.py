"""Proposals, their reviews and line comments: the SQL and the queries, apart from `store.py`.

The session's event log is the history of a proposal (`proposal_opened`, `review`, `comment`,
`merged` …); these tables are what lists and lookups read: the proposals of a project by number
and status, a proposal's reviews, and its comments with where their line is now.
"""

# The strings below are built only from this module's constants (S608 sees f-strings); every
# value a caller supplies is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from branchwork.domain.errors import StoreError
from branchwork.domain.proposals import Proposal, ProposalReview, ReviewComment
from branchwork.store import rows as codecs
from branchwork.store.executor import Executor, Row
from branchwork.store.sql import in_list

PROPOSAL_COLUMNS = (
    "id",
    "project_id",
    "number",
    "session_id",
    "title",
    "description",
    "target",
    "base_commit",
    "target_commit",
    "head",
    "status",
    "conflicts",
    "remote_url",
    "merged_commit",
    "created_at",
    "updated_at",
)
REVIEW_COLUMNS = ("id", "proposal_id", "reviewer", "verdict", "head", "message", "created_at")
COMMENT_COLUMNS = (
    "id",
    "proposal_id",
    "reviewer",
    "path",
    "line",
    "head",
    "text",
    "current_line",
    "outdated",
    "created_at",
)
_UPDATABLE = frozenset(
    {
        "title",
        "description",
        "base_commit",
        "target_commit",
        "head",
        "status",
        "conflicts",
        "remote_url",
        "merged_commit",
    }
)


def _cols(names: Sequence[str]) -> str:
    return ", ".join(names)


def _params(names: Sequence[str]) -> str:
    return ", ".join(f":{n}" for n in names)


_SELECT = f"SELECT {_cols(PROPOSAL_COLUMNS)} FROM proposals"
_NEXT_NUMBER = "COALESCE(MAX(number), 0) + 1"
# The project's next number is taken in the insert itself: no two proposals share one.
INSERT_PROPOSAL = (
    f"INSERT INTO proposals ({_cols(PROPOSAL_COLUMNS)}) SELECT "
    + ", ".join(_NEXT_NUMBER if c == "number" else f":{c}" for c in PROPOSAL_COLUMNS)
    + " FROM proposals WHERE project_id = :project_id RETURNING number"
)
GET_PROPOSAL = f"{_SELECT} WHERE id = :id"
# {where}: conditions joined by AND (project, statuses), see `ProposalStore.select`.
LIST_PROPOSALS = f"{_SELECT} WHERE {{where}} ORDER BY number DESC"
FIND_BY_NUMBER = f"{_SELECT} WHERE project_id = :pid AND number = :number"
FIND_BY_ID = (
    f"{_SELECT} WHERE lower(id) = :key OR lower(substr(id, length(id) - 7, :n)) = :key "
    "ORDER BY created_at DESC"
)
OPEN_FOR_SESSION = (
    f"{_SELECT} WHERE session_id = :sid AND status NOT IN ('merged', 'closed') "
    "ORDER BY number DESC LIMIT 1"
)
# {assignments}: `field = :field, …` over `_UPDATABLE`.
UPDATE_PROPOSAL = (
    f"UPDATE proposals SET {{assignments}}, updated_at = :now WHERE id = :id "
    f"RETURNING {_cols(PROPOSAL_COLUMNS)}"
)
INSERT_REVIEW = (
    f"INSERT INTO proposal_reviews ({_cols(REVIEW_COLUMNS)}) VALUES ({_params(REVIEW_COLUMNS)})"
)
LIST_REVIEWS = (
    f"SELECT {_cols(REVIEW_COLUMNS)} FROM proposal_reviews WHERE proposal_id = :pid "
    "ORDER BY created_at, id"
)
INSERT_COMMENT = (
    f"INSERT INTO proposal_comments ({_cols(COMMENT_COLUMNS)}) VALUES ({_params(COMMENT_COLUMNS)})"
)
LIST_COMMENTS = (
    f"SELECT {_cols(COMMENT_COLUMNS)} FROM proposal_comments WHERE proposal_id = :pid "
    "ORDER BY created_at, id"
)
UPDATE_COMMENT = (
    "UPDATE proposal_comments SET current_line = :current_line, outdated = :outdated WHERE id = :id"
)
_OF_PROJECT = "SELECT id FROM proposals WHERE project_id = :pid"
# Run before the project's sessions are removed (`sql.REMOVE_PROJECT`).
REMOVE_FOR_PROJECT = (
    f"DELETE FROM proposal_comments WHERE proposal_id IN ({_OF_PROJECT})",
    f"DELETE FROM proposal_reviews WHERE proposal_id IN ({_OF_PROJECT})",
    "DELETE FROM proposals WHERE project_id = :pid",
)


class ProposalStore:
    """The queries of proposals; every method one transaction."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self._codec = codecs.codec_for(executor.dialect)

    # -- proposals ----------------------------------------------------------------------------

    def add(self, draft: Proposal) -> Proposal:
        """Insert `draft` with the project's next number (its own `number` is ignored)."""
        params = self._proposal_params(draft)
        with self.executor.write() as tx:
            (row,) = tx.rows(INSERT_PROPOSAL, params)
        return draft.model_copy(update={"number": int(row[0])})

    def get(self, proposal_id: str) -> Proposal | None:
        with self.executor.read() as tx:
            found = tx.rows(GET_PROPOSAL, {"id": proposal_id})
        return self._proposal(found[0]) if found else None

    def by_number(self, project_id: str, number: int) -> Proposal | None:
        with self.executor.read() as tx:
            found = tx.rows(FIND_BY_NUMBER, {"pid": project_id, "number": number})
        return self._proposal(found[0]) if found else None

    def by_id(self, key: str) -> list[Proposal]:
        """Proposals by full id or by a prefix (4+ characters) of their short id."""
        key = key.strip().lower()
        with self.executor.read() as tx:
            found = tx.rows(FIND_BY_ID, {"key": key, "n": len(key)})
        return [self._proposal(r) for r in found]

    def open_for_session(self, session_id: str) -> Proposal | None:
        """The session's proposal that is neither merged nor closed (there is at most one)."""
        with self.executor.read() as tx:
            found = tx.rows(OPEN_FOR_SESSION, {"sid": session_id})
        return self._proposal(found[0]) if found else None

    def select(
        self, *, project_id: str | None = None, statuses: Sequence[str] | None = None
    ) -> list[Proposal]:
        """Proposals, newest number first: of one project or all, of these statuses or all."""
        conditions, params = ["1 = 1"], {}
        if project_id is not None:
            conditions.append("project_id = :pid")
            params["pid"] = project_id
        if statuses:
            where, values = in_list("status", "s", list(statuses))
            conditions.append(where)
            params.update(values)
        with self.executor.read() as tx:
            found = tx.rows(LIST_PROPOSALS.format(where=" AND ".join(conditions)), params)
        return [self._proposal(r) for r in found]

    def update(self, proposal_id: str, **values: Any) -> Proposal:
        if not values or not set(values) <= _UPDATABLE:
            raise StoreError(f"cannot update proposal fields {sorted(set(values) - _UPDATABLE)}")
        if "conflicts" in values:
            values["conflicts"] = json.dumps(values["conflicts"])
        assignments = ", ".join(f"{name} = :{name}" for name in sorted(values))
        params = {**values, "id": proposal_id, "now": self._codec.param(_now())}
        with self.executor.write() as tx:
            found = tx.rows(UPDATE_PROPOSAL.format(assignments=assignments), params)
        if not found:
            raise StoreError(f"proposal {proposal_id} vanished while it was updated")
        return self._proposal(found[0])

    # -- reviews and comments -----------------------------------------------------------------

    def add_review(self, review: ProposalReview) -> None:
        params = review.model_dump()
        params["created_at"] = self._codec.param(review.created_at)
        with self.executor.write() as tx:
            tx.run(INSERT_REVIEW, params)

    def reviews(self, proposal_id: str) -> list[ProposalReview]:
        with self.executor.read() as tx:
            found = tx.rows(LIST_REVIEWS, {"pid": proposal_id})
        return [self._review(r) for r in found]

    def add_comment(self, comment: ReviewComment) -> None:
        params = comment.model_dump()
        params["created_at"] = self._codec.param(comment.created_at)
        with self.executor.write() as tx:
            tx.run(INSERT_COMMENT, params)

    def comments(self, proposal_id: str) -> list[ReviewComment]:
        with self.executor.read() as tx:
            found = tx.rows(LIST_COMMENTS, {"pid": proposal_id})
        return [self._comment(r) for r in found]

    def save_comments(self, comments: Sequence[ReviewComment]) -> None:
        """Write where each comment's line is now, and whether it is outdated."""
        if not comments:
            return
        params = [
            {
                "id": c.id,
                "current_line": c.current_line,
                "outdated": c.outdated,
            }
            for c in comments
        ]
        with self.executor.write() as tx:
            tx.many(UPDATE_COMMENT, params)

    # -- rows ---------------------------------------------------------------------------------

    def _proposal_params(self, proposal: Proposal) -> dict[str, Any]:
        data = proposal.model_dump()
        data.pop("number")
        data["conflicts"] = json.dumps(proposal.conflicts)
        data["created_at"] = self._codec.param(proposal.created_at)
        data["updated_at"] = self._codec.param(proposal.updated_at)
        return data

    def _proposal(self, row: Row) -> Proposal:
        data = dict(zip(PROPOSAL_COLUMNS, row, strict=True))
        data["conflicts"] = json.loads(data["conflicts"])
        data["created_at"] = self._codec.value(data["created_at"])
        data["updated_at"] = self._codec.value(data["updated_at"])
        return Proposal.model_validate(data)

    def _review(self, row: Row) -> ProposalReview:
        data = dict(zip(REVIEW_COLUMNS, row, strict=True))
        data["created_at"] = self._codec.value(data["created_at"])
        return ProposalReview.model_validate(data)

    def _comment(self, row: Row) -> ReviewComment:
        data = dict(zip(COMMENT_COLUMNS, row, strict=True))
        data["created_at"] = self._codec.value(data["created_at"])
        data["outdated"] = bool(data["outdated"])
        return ReviewComment.model_validate(data)


def _now() -> datetime:
    return datetime.now(UTC)
