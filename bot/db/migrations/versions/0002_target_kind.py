"""Requests name the kind of target they change (hooks so far)."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``target_kind``; every earlier request changed a hook."""
    with op.batch_alter_table("secret_requests") as batch:
        batch.add_column(
            sa.Column("target_kind", sa.String(16), nullable=False, server_default="hook")
        )


def downgrade() -> None:
    """Drop ``target_kind``."""
    with op.batch_alter_table("secret_requests") as batch:
        batch.drop_column("target_kind")
