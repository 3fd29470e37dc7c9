"""Kafka sink offsets, kept in the warehouse next to the events they account for.

Revision ID: 0002_stream_offsets
"""

from alembic import op

revision = "0002_stream_offsets"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per (sink, topic, partition). The sink updates it in the same transaction as the
    # events it appends, so the offset and the log can never disagree after a crash.
    op.execute(
        """
        CREATE TABLE stream_offset (
            sink_name         text NOT NULL,
            topic             text NOT NULL,
            partition         integer NOT NULL CHECK (partition >= 0),
            next_offset       bigint NOT NULL DEFAULT 0 CHECK (next_offset >= 0),
            records_read      bigint NOT NULL DEFAULT 0,
            records_accepted  bigint NOT NULL DEFAULT 0,
            records_duplicate bigint NOT NULL DEFAULT 0,
            records_rejected  bigint NOT NULL DEFAULT 0,
            updated_at        timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (sink_name, topic, partition),
            CHECK (records_read = records_accepted + records_duplicate + records_rejected)
        )
        """
    )
    op.execute(
        "COMMENT ON TABLE stream_offset IS 'Kafka sink positions: next_offset is the first message not yet in the "
        "warehouse; the counters cover every message the sink has read (read = accepted + duplicate + rejected)'"
    )


def downgrade() -> None:
    op.execute("DROP TABLE stream_offset")
