"""The event log, the dead letters.

Revision ID: 0001_foundation
"""

from alembic import op

from warehouse.db import create_postgis

revision = "0001_foundation"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_postgis(op.get_bind())
    op.execute(
        """
        CREATE TABLE event_log (
            seq             bigserial PRIMARY KEY,
            event_id        text NOT NULL UNIQUE,
            project_id      text NOT NULL,
            type            text NOT NULL,
            occurred_at     timestamptz NOT NULL,
            recorded_at     timestamptz NOT NULL,
            schema_version  integer NOT NULL DEFAULT 1,
            payload         jsonb NOT NULL DEFAULT '{}'::jsonb,
            content_hash    text NOT NULL,
            source          text NOT NULL DEFAULT '',
            source_position text,
            appended_at     timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("COMMENT ON TABLE event_log IS 'Append-only log of project lifecycle events (wire format v1)'")
    # The log is append-only: corrections are `retracted` events, never edits.
    op.execute(
        """
        CREATE FUNCTION event_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'event_log is append-only: % is not allowed (append a retracted event instead)', TG_OP;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER event_log_no_update_delete BEFORE UPDATE OR DELETE ON event_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION event_log_append_only()"
    )
    op.execute(
        """
        CREATE TABLE dead_letter (
            id              bigserial PRIMARY KEY,
            raw             text NOT NULL,
            reason          text NOT NULL,
            event_id        text,
            source          text NOT NULL DEFAULT '',
            source_position text,
            status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
            attempts        integer NOT NULL DEFAULT 0,
            created_at      timestamptz NOT NULL DEFAULT now(),
            resolved_at     timestamptz,
            resolution      text
        )
        """
    )
    op.execute("CREATE INDEX dead_letter_open ON dead_letter (status, id)")


def downgrade() -> None:
    op.execute("DROP TABLE dead_letter")
    op.execute("DROP TABLE event_log")
    op.execute("DROP FUNCTION event_log_append_only()")
