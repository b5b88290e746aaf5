"""The relational schema (SQLAlchemy Core). Alembic migrations create exactly this.

The store's queries are text SQL (`sql.py`); these tables are the schema's single description,
for migrations and for tests that compare it with the database.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return value.astimezone(UTC).replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

projects = Table(
    "projects",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("path", Text, nullable=False),
    Column("origin", Text, nullable=True),
    Column("main_branch", String(255), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("config", Text, nullable=False, default="{}"),
    Column("env", Text, nullable=False, default="{}"),
    Column("secret_names", Text, nullable=False, default="[]"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("project_id", String(26), ForeignKey("projects.id"), nullable=False, index=True),
    Column("title", Text, nullable=False),
    Column("branch", String(255), nullable=False),
    Column("base_commit", String(64), nullable=False),
    Column("worktree", Text, nullable=False),
    Column("status", String(20), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_activity", UTCDateTime, nullable=False),
    Column("port", Integer, nullable=False),
    Column("mode", String(20), nullable=True),
    Column("model", String(200), nullable=True),
    Column("last_seq", Integer, nullable=False, default=0),
    Column("parent_id", String(26), nullable=True),
    Column("parent_seq", Integer, nullable=True),
)

events = Table(
    "events",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("session_id", String(26), ForeignKey("sessions.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("ts", UTCDateTime, nullable=False),
    Column("actor", String(20), nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("payload", Text, nullable=False),
    UniqueConstraint("session_id", "seq", name="uq_events_session_seq"),
    Index("ix_events_session_kind", "session_id", "kind"),
)

blobs = Table(
    "blobs",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

leases = Table(
    "leases",
    metadata,
    Column("session_id", String(26), ForeignKey("sessions.id"), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("host", String(255), nullable=False),
    Column("acquired_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("cancel_requested", Boolean, nullable=False, default=False),
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("session_id", String(26), ForeignKey("sessions.id"), primary_key=True),
    Column("name", String(100), primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("data", Text, nullable=False),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("project_id", String(26), ForeignKey("projects.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("check_command", Text, nullable=True),
    Column("labels", Text, nullable=False, server_default="[]"),
    Column("priority", String(20), nullable=False, server_default="normal"),
    Column("closed", Boolean, nullable=False, server_default=false()),
    Column("budget", Text, nullable=False, server_default="{}"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("project_id", "number", name="uq_tasks_project_number"),
)

task_comments = Table(
    "task_comments",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("task_id", String(26), ForeignKey("tasks.id"), nullable=False),
    Column("author", String(200), nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_task_comments_task", "task_id"),
)

trials = Table(
    "trials",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("task_id", String(26), ForeignKey("tasks.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("session_id", String(26), ForeignKey("sessions.id"), nullable=False),
    Column("model", String(200), nullable=True),
    Column("prompt_variant", Text, nullable=True),
    Column("status", String(20), nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
    Column("pid", Integer, nullable=True),
    Column("host", String(255), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("task_id", "number", name="uq_trials_task_number"),
    Index("ix_trials_session", "session_id"),
)

proposals = Table(
    "proposals",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("project_id", String(26), ForeignKey("projects.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("session_id", String(26), ForeignKey("sessions.id"), nullable=False),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("target", String(255), nullable=False),
    Column("base_commit", String(64), nullable=False),
    Column("target_commit", String(64), nullable=False),
    Column("head", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("conflicts", Text, nullable=False, server_default="[]"),
    Column("remote_url", Text, nullable=True),
    Column("merged_commit", String(64), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("project_id", "number", name="uq_proposals_project_number"),
    Index("ix_proposals_session", "session_id"),
)

proposal_reviews = Table(
    "proposal_reviews",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("proposal_id", String(26), ForeignKey("proposals.id"), nullable=False),
    Column("reviewer", String(200), nullable=False),
    Column("verdict", String(20), nullable=False),
    Column("head", String(64), nullable=False),
    Column("message", Text, nullable=False, server_default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_proposal_reviews_proposal", "proposal_id"),
)

proposal_comments = Table(
    "proposal_comments",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("proposal_id", String(26), ForeignKey("proposals.id"), nullable=False),
    Column("reviewer", String(200), nullable=False),
    Column("path", Text, nullable=False),
    Column("line", Integer, nullable=False),
    Column("head", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("current_line", Integer, nullable=False),
    Column("outdated", Boolean, nullable=False, server_default=false()),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_proposal_comments_proposal", "proposal_id"),
)

state = Table(
    "state",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
)

grants = Table(
    "grants",
    metadata,
    Column("user_id", String(26), ForeignKey("users.id"), primary_key=True),
    Column("project_id", String(26), primary_key=True),
    Column("role", String(20), nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("kind", String(20), nullable=False),
    Column("user_id", String(26), ForeignKey("users.id"), nullable=False),
    Column("session_id", String(26), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("revoked", Boolean, nullable=False, server_default=false()),
    Index("ix_tokens_user", "user_id"),
)
