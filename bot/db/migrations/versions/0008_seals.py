"""Requests carry a seal: a MAC over the facts an apply acts on, under a key derived from
HOOK_SECRET_ENCRYPTION_KEY that the database never holds (bot.approvals.seals)."""

import sqlalchemy as sa
from alembic import op

revision = "0008_seals"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``seal``, null on every existing row: an open request without a seal is refused
    when it is approved or applied (nothing can tell it from a forged one)."""
    with op.batch_alter_table("secret_requests") as batch:
        batch.add_column(sa.Column("seal", sa.String(80), nullable=True))


def downgrade() -> None:
    """Drop it again (the previous version neither writes nor checks seals)."""
    with op.batch_alter_table("secret_requests") as batch:
        batch.drop_column("seal")
