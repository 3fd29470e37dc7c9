"""Read models: valid-time versions of every project's state, kept from the log at a position.

- ``rm_project_version``: one row per project and day from which its state (known at the log
  position in ``rm_position``) holds, until ``valid_to`` (excluded; 9999-12-31 when open); the
  columns the KPIs sum, narrow so that a report scans little.
- ``rm_project_record``: the whole state of each version (``events.projection.state_record``).
- ``rm_position``: the log position (``event_log.seq``) each projection reflects.
- Indexes on the log for what the read models look up: a project's events, the events recorded
  after an instant, and the retractions of an event.

Revision ID: 0010_read_models
"""

from alembic import op

revision = "0010_read_models"
down_revision = "0009_dead_letters_once"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE rm_position (
            projection  text PRIMARY KEY,
            seq         bigint NOT NULL DEFAULT 0,
            updated_at  timestamptz NOT NULL DEFAULT now()
        );
        INSERT INTO rm_position (projection, seq) VALUES ('project_versions', 0);
        CREATE TABLE rm_project_version (
            project_id      text NOT NULL,
            valid_from      date NOT NULL,
            valid_to        date NOT NULL DEFAULT '9999-12-31',
            unit            text,
            industry        text,
            channel         text,
            reached         smallint NOT NULL,
            signed_on       date,
            landed_on       date,
            started_on      date,
            produced_on     date,
            cancelled_on    date,
            last_change_on  date,
            investment_wan  double precision NOT NULL,
            funds_wan       double precision NOT NULL,
            funds_on        date[] NOT NULL DEFAULT '{}',
            funds_cny_wan   double precision[] NOT NULL DEFAULT '{}',
            confidential    boolean NOT NULL,
            CONSTRAINT rm_project_version_pkey PRIMARY KEY (project_id, valid_from)
        );
        CREATE INDEX rm_project_version_valid ON rm_project_version (valid_to, valid_from);
        CREATE TABLE rm_project_record (
            project_id  text NOT NULL,
            valid_from  date NOT NULL,
            record      jsonb NOT NULL,
            CONSTRAINT rm_project_record_pkey PRIMARY KEY (project_id, valid_from)
        );
        CREATE INDEX event_log_project ON event_log (project_id);
        CREATE INDEX event_log_recorded ON event_log (recorded_at) INCLUDE (occurred_at, type, project_id);
        CREATE INDEX event_log_retraction_target ON event_log ((payload->>'event_id')) WHERE type = 'retracted';
        COMMENT ON TABLE rm_position IS 'The log position (event_log.seq) each read model reflects';
        COMMENT ON TABLE rm_project_version IS 'Valid-time versions of each project''s state (as of a day, known at rm_position.seq): what KPIs sum';
        COMMENT ON TABLE rm_project_record IS 'The whole state of each version (events.projection.state_record)';
        """
    )


def downgrade() -> None:
    op.execute(
        "DROP INDEX event_log_retraction_target; DROP INDEX event_log_recorded; DROP INDEX event_log_project;"
        " DROP TABLE rm_project_record; DROP TABLE rm_project_version; DROP TABLE rm_position;"
    )
