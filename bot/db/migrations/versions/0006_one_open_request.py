"""At most one open (pending or approved) request per hook or action secret, kept by the
database: a partial unique index, which replaces the read-then-insert check of every replica."""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

NAME = "uq_secret_requests_open"
OPEN = sa.text("state IN ('pending', 'approved')")


def upgrade() -> None:
    """Refuse to go on while two open requests share a secret (none should: every writer
    checked first), else create the index."""
    clashes = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT hook_id, secret_name FROM secret_requests"
                " WHERE state IN ('pending', 'approved')"
                " GROUP BY hook_id, secret_name HAVING COUNT(*) > 1"
            )
        )
        .all()
    )
    if clashes:
        named = ", ".join(f"{hook_id}/{secret}" for hook_id, secret in clashes)
        raise RuntimeError(
            f"more than one open request for {named}: reject all but one (or let them expire)"
            " with the previous version of the bot, then start this one again"
        )
    op.create_index(
        NAME,
        "secret_requests",
        ["hook_id", "secret_name"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )


def downgrade() -> None:
    """Drop the index (the previous version checks before it inserts)."""
    op.drop_index(NAME, table_name="secret_requests")
