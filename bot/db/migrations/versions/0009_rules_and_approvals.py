"""Requests keep the rule that decided them; each approval is a row of its own (CONTRACT §6).

``rule_name`` and ``rule_digest`` say which rule of the policy decided a request (null on rows
written before: the one rule of the variables, ``default``). ``approvals`` holds one sealed row
per approver, unique per request: two clicks of one person, on any replica, count once; its
``term`` is the quorum term the matching seats them in (for display: counting matches again). The
one-open-request index now includes the tenant: the same secret name of two tenants' targets
are two secrets.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_rules_and_approvals"
down_revision = "0008_seals"
branch_labels = None
depends_on = None

OPEN_INDEX = "uq_secret_requests_open"
OPEN = sa.text("state IN ('pending', 'approved')")


def upgrade() -> None:
    """Add the rule columns and the approvals table; widen the open-request index."""
    with op.batch_alter_table("secret_requests") as batch:
        batch.add_column(sa.Column("rule_name", sa.String(64), nullable=True))
        batch.add_column(sa.Column("rule_digest", sa.String(32), nullable=True))
    op.drop_index(OPEN_INDEX, table_name="secret_requests")
    op.create_index(
        OPEN_INDEX,
        "secret_requests",
        ["tenant", "hook_id", "secret_name"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(32), nullable=False, index=True),
        sa.Column("approver", sa.String(32), nullable=False),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("term", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seal", sa.String(80), nullable=False),
        sa.UniqueConstraint("request_id", "approver", name="uq_approvals_once"),
    )


def downgrade() -> None:
    """Drop them again."""
    op.drop_table("approvals")
    op.drop_index(OPEN_INDEX, table_name="secret_requests")
    op.create_index(
        OPEN_INDEX,
        "secret_requests",
        ["hook_id", "secret_name"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )
    with op.batch_alter_table("secret_requests") as batch:
        batch.drop_column("rule_digest")
        batch.drop_column("rule_name")
