"""Monthly land status mart (built by the Dagster land_status asset).

Revision ID: 0006_mart_land
"""

from alembic import op

revision = "0006_mart_land"
down_revision = "0005_marts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE mart_land_status (
            month_end           date NOT NULL,
            kind                text NOT NULL,
            site_id             text NOT NULL,
            park                text,
            status              text NOT NULL,
            area_mu             double precision,
            remaining_area_mu   double precision,
            floor_area_m2       double precision,
            vacant_area_m2      double precision,
            project_ids         text[] NOT NULL DEFAULT '{}',
            built_at            timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (month_end, kind, site_id)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE mart_land_status")
