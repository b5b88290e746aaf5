"""proposals: local pull requests of sessions, their reviews and line comments (the approval
policy of each project is part of the project's configuration)"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from branchwork.store.tables import UTCDateTime

revision = "0005_proposals"
down_revision = "0004_tasks"


def upgrade() -> None:
    op.create_table(
        "proposals",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("project_id", sa.String(26), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("session_id", sa.String(26), sa.ForeignKey("sessions.id"), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("base_commit", sa.String(64), nullable=False),
        sa.Column("target_commit", sa.String(64), nullable=False),
        sa.Column("head", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("conflicts", sa.Text, nullable=False, server_default="[]"),
        sa.Column("remote_url", sa.Text, nullable=True),
        sa.Column("merged_commit", sa.String(64), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("project_id", "number", name="uq_proposals_project_number"),
    )
    op.create_index("ix_proposals_session", "proposals", ["session_id"])
    _reviews_and_comments()


def _reviews_and_comments() -> None:
    op.create_table(
        "proposal_reviews",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("proposal_id", sa.String(26), sa.ForeignKey("proposals.id"), nullable=False),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("verdict", sa.String(20), nullable=False),
        sa.Column("head", sa.String(64), nullable=False),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_proposal_reviews_proposal", "proposal_reviews", ["proposal_id"])
    op.create_table(
        "proposal_comments",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("proposal_id", sa.String(26), sa.ForeignKey("proposals.id"), nullable=False),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("line", sa.Integer, nullable=False),
        sa.Column("head", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("current_line", sa.Integer, nullable=False),
        sa.Column("outdated", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_proposal_comments_proposal", "proposal_comments", ["proposal_id"])


def downgrade() -> None:
    op.drop_index("ix_proposal_comments_proposal", "proposal_comments")
    op.drop_table("proposal_comments")
    op.drop_index("ix_proposal_reviews_proposal", "proposal_reviews")
    op.drop_table("proposal_reviews")
    op.drop_index("ix_proposals_session", "proposals")
    op.drop_table("proposals")
