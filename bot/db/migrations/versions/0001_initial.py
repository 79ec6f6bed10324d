"""Initial schema: secret requests and the audit trail."""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the requests and audit tables."""
    op.create_table(
        "secret_requests",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("requester", sa.String(32), nullable=False),
        sa.Column("origin_channel", sa.String(32), nullable=False),
        sa.Column("hook_id", sa.String(64), nullable=False),
        sa.Column("hook_name", sa.String(255), nullable=False),
        sa.Column("secret_name", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("value_ciphertext", sa.LargeBinary, nullable=True),
        sa.Column("fingerprint", sa.String(32), nullable=True),
        sa.Column("required_approvals", sa.Integer, nullable=False),
        sa.Column("decided_by", sa.String(32), nullable=True),
        sa.Column("decision_comment", sa.Text, nullable=True),
        sa.Column("approval_channel", sa.String(32), nullable=True),
        sa.Column("approval_ts", sa.String(32), nullable=True),
        sa.Column("failure_reason", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("apply_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_secret_requests_hook_name", "secret_requests", ["hook_id", "secret_name", "state"]
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("timestamp", sa.String(40), nullable=False, index=True),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(32), nullable=True, index=True),
        sa.Column("actor", sa.String(32), nullable=True),
        sa.Column("team_id", sa.String(32), nullable=True),
        sa.Column("hook_id", sa.String(64), nullable=True),
        sa.Column("secret_name", sa.String(128), nullable=True),
        sa.Column("outcome", sa.String(64), nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
    )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("audit_log")
    op.drop_table("secret_requests")
