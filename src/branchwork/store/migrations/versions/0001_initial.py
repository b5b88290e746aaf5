"""initial: projects, sessions, events, blobs, leases, state"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from branchwork.store.tables import UTCDateTime

revision = "0001_initial"
down_revision = None


def upgrade() -> None:
    _projects_and_sessions()
    _events_and_blobs()
    _leases_and_state()


def _projects_and_sessions() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("origin", sa.Text, nullable=True),
        sa.Column("main_branch", sa.String(255), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("env", sa.Text, nullable=False),
        sa.Column("secret_names", sa.Text, nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("project_id", sa.String(26), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("branch", sa.String(255), nullable=False),
        sa.Column("base_commit", sa.String(64), nullable=False),
        sa.Column("worktree", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("last_activity", UTCDateTime, nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("mode", sa.String(20), nullable=True),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("last_seq", sa.Integer, nullable=False),
    )
    op.create_index("ix_sessions_project_id", "sessions", ["project_id"])


def _events_and_blobs() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("session_id", sa.String(26), sa.ForeignKey("sessions.id"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("ts", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(20), nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.UniqueConstraint("session_id", "seq", name="uq_events_session_seq"),
    )
    op.create_index("ix_events_session_kind", "events", ["session_id", "kind"])
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )


def _leases_and_state() -> None:
    op.create_table(
        "leases",
        sa.Column("session_id", sa.String(26), sa.ForeignKey("sessions.id"), primary_key=True),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("acquired_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "state",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("state", "leases", "blobs", "events", "sessions", "projects"):
        op.drop_table(table)
