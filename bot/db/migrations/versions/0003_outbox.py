"""The outbox (Slack messages recorded with the change that implies them), and when a request's
apply was left with an unknown outcome."""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the outbox (rows are queued, then sent or dead); mark unknown outcomes."""
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(32), nullable=False, index=True),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_outbox_due", "outbox", ["state", "due_at"])
    with op.batch_alter_table("secret_requests") as batch:
        batch.add_column(sa.Column("unknown_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop the outbox and the unknown-outcome mark."""
    with op.batch_alter_table("secret_requests") as batch:
        batch.drop_column("unknown_since")
    op.drop_table("outbox")
