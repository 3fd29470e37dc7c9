"""The event log refuses TRUNCATE too (0001 refuses UPDATE and DELETE).

A statement-level BEFORE TRUNCATE trigger raises for every role, the owner included, so no
migration, script or slip at a psql prompt can empty the log. The one documented way past it is a
superuser session with ``SET session_replication_role = replica`` (ordinary triggers do not fire
then): the test fixtures use it to empty their throw-away database between tests.

Revision ID: 0008_log_no_truncate
"""

from alembic import op

revision = "0008_log_no_truncate"
down_revision = "0007_one_head"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The same function as UPDATE/DELETE: it names TG_OP in its message.
    op.execute(
        "CREATE TRIGGER event_log_no_truncate BEFORE TRUNCATE ON event_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION event_log_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER event_log_no_truncate ON event_log")
