"""Requests on actions: the tenant, the phases of an apply and the deployed version."""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``tenant``, ``apply_phase``, ``apply_progress`` and ``target_version``."""
    with op.batch_alter_table("secret_requests") as batch:
        batch.add_column(
            sa.Column("tenant", sa.String(64), nullable=False, server_default="default")
        )
        batch.add_column(sa.Column("apply_phase", sa.String(32), nullable=True))
        batch.add_column(sa.Column("apply_progress", sa.Text(), nullable=True))
        batch.add_column(sa.Column("target_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Drop the columns again."""
    with op.batch_alter_table("secret_requests") as batch:
        for column in ("target_version", "apply_progress", "apply_phase", "tenant"):
            batch.drop_column(column)
