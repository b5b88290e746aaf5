"""users: people with API tokens (stored hashed), their roles per project, share links"""

from __future__ import annotations

revision = "0006_users"
down_revision = "0005_proposals"


def upgrade() -> None:
    pass  # the users tables land with the server


def downgrade() -> None:
    pass
