"""snapshots: a cached fold over a session's events, so that a long log is not replayed on open"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_snapshots"
down_revision = "0002_lease_cancel"


def upgrade() -> None:
    op.create_table(
        "snapshots",
        sa.Column("session_id", sa.String(26), sa.ForeignKey("sessions.id"), primary_key=True),
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("snapshots")
