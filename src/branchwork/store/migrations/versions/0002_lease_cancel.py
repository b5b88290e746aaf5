"""lease_cancel: a running turn can be asked to stop from another process"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_lease_cancel"
down_revision = "0001_initial"


def upgrade() -> None:
    with op.batch_alter_table("leases") as batch:
        batch.add_column(
            sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("leases") as batch:
        batch.drop_column("cancel_requested")
