"""proposals: local pull requests of sessions, their reviews, line comments and the approval
policy of each project"""

from __future__ import annotations

revision = "0005_proposals"
down_revision = "0004_tasks"


def upgrade() -> None:
    pass  # the proposals tables land with the proposals feature


def downgrade() -> None:
    pass
