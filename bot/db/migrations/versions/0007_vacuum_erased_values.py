"""PostgreSQL: autovacuum takes secret_requests soon after any update (an erase)."""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Why storage parameters, not a separate table of pending values: an erase is an UPDATE that
# leaves the old row version, ciphertext included, as a dead tuple until (auto)vacuum or page
# pruning reclaims it. With a threshold of one dead tuple and no scale factor, autovacuum takes
# the table at its next pass (autovacuum_naptime, one minute by default) after any erase, at
# any table size; the visibility map lets it skip the pages nothing changed, so a large table of
# old requests costs little. A fillfactor below 100 leaves room on each page for HOT updates,
# whose old versions are pruned as soon as a later statement reads the page. Values longer than
# about 2 kB live in the TOAST table, which gets the same settings.
SETTINGS = (
    "fillfactor = 70",
    "autovacuum_vacuum_scale_factor = 0",
    "autovacuum_vacuum_threshold = 1",
    "toast.autovacuum_vacuum_scale_factor = 0",
    "toast.autovacuum_vacuum_threshold = 1",
)
NAMES = ", ".join(setting.split(" = ")[0] for setting in SETTINGS)


def upgrade() -> None:
    """Set the table's storage parameters (PostgreSQL only: SQLite is scrubbed by the bot)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE secret_requests SET ({', '.join(SETTINGS)})")


def downgrade() -> None:
    """Back to the server's defaults."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE secret_requests RESET ({NAMES})")
