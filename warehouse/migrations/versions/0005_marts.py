"""Marts built by the Dagster assets: monthly project states and bulletins, dead-letter snapshots.

Revision ID: 0005_marts
"""

from alembic import op

revision = "0005_marts"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE mart_project_state (
            month_end       date NOT NULL,
            project_id      text NOT NULL,
            name            text,
            stage           text NOT NULL,
            signed_on       date,
            landed_on       date,
            started_on      date,
            produced_on     date,
            cancelled_on    date,
            investment_wan  double precision NOT NULL DEFAULT 0,
            funds_wan       double precision NOT NULL DEFAULT 0,
            unit            text,
            industry        text,
            channel         text,
            stalled         boolean NOT NULL DEFAULT false,
            confidential    boolean NOT NULL DEFAULT false,
            anomalies       jsonb NOT NULL DEFAULT '[]'::jsonb,
            built_at        timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (month_end, project_id)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE mart_bulletin (
            month_end   date NOT NULL,
            version     text NOT NULL CHECK (version IN ('published', 'corrected')),
            known_at    timestamptz NOT NULL,
            report      jsonb NOT NULL,
            built_at    timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (month_end, version)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE dead_letter_snapshot (
            id          bigserial PRIMARY KEY,
            taken_at    timestamptz NOT NULL DEFAULT now(),
            open_count  integer NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE dead_letter_snapshot")
    op.execute("DROP TABLE mart_bulletin")
    op.execute("DROP TABLE mart_project_state")
