"""tasks: objectives with comments, their trials (one session each), and forks of sessions"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_tasks"
down_revision = "0003_snapshots"


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("project_id", sa.String(26), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("check_command", sa.Text, nullable=True),
        sa.Column("labels", sa.Text, nullable=False, server_default="[]"),
        sa.Column("priority", sa.String(20), nullable=False, server_default="normal"),
        sa.Column("closed", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("budget", sa.Text, nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("project_id", "number", name="uq_tasks_project_number"),
    )
    op.create_table(
        "task_comments",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("task_id", sa.String(26), sa.ForeignKey("tasks.id"), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_task_comments_task", "task_comments", ["task_id"])
    op.create_table(
        "trials",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("task_id", sa.String(26), sa.ForeignKey("tasks.id"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("session_id", sa.String(26), sa.ForeignKey("sessions.id"), nullable=False),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("prompt_variant", sa.Text, nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("pid", sa.Integer, nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("task_id", "number", name="uq_trials_task_number"),
    )
    op.create_index("ix_trials_session", "trials", ["session_id"])
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("parent_id", sa.String(26), nullable=True))
        batch.add_column(sa.Column("parent_seq", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("parent_seq")
        batch.drop_column("parent_id")
    op.drop_index("ix_trials_session", "trials")
    op.drop_table("trials")
    op.drop_index("ix_task_comments_task", "task_comments")
    op.drop_table("task_comments")
    op.drop_table("tasks")
