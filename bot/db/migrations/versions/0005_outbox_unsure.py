"""Outbox rows remember since when a post may already be in Slack (its fate unknown)."""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``unsure_since``: the start of the earliest attempt that may have posted."""
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("unsure_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop it again."""
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("unsure_since")
