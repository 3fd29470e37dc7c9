"""The land inventory: idle parcels, standard factories, park outlines and points of interest, versioned.

Revision ID: 0003_land
"""

from alembic import op

revision = "0003_land"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One table for the four kinds so that one versioning path serves them all. A row is one
    # version of one feature, valid over [valid_from, valid_to); a reload closes changed or
    # vanished rows instead of overwriting them, so the land as of any past date stays queryable.
    op.execute(
        """
        CREATE TABLE land_inventory (
            row_id              bigserial PRIMARY KEY,
            kind                text NOT NULL CHECK (kind IN ('idle', 'factory', 'park', 'poi')),
            site_id             text NOT NULL,
            name                text,
            park                text,
            category            text,
            land_use            text,
            land_status         text CHECK (land_status IN ('idle', 'approved_unsupplied', 'supplied_unused', 'inefficient')),
            area_mu             double precision,
            geom_area_mu        double precision,
            declared_area_mu    double precision,
            price_wan_per_mu    double precision,
            plot_ratio_max      double precision,
            readiness           text,
            floor_area_m2       double precision,
            vacant_area_m2      double precision,
            floors              integer,
            floor_load_kn_m2    double precision,
            clear_height_m      double precision,
            power_kva           double precision,
            rent_yuan_m2_month  double precision,
            extra               jsonb NOT NULL DEFAULT '{}'::jsonb,
            geom                geometry(Geometry, 4490) NOT NULL CHECK (NOT ST_IsEmpty(geom)),
            content_hash        bigint NOT NULL,
            valid_from          date NOT NULL,
            valid_to            date CHECK (valid_to IS NULL OR valid_to > valid_from),
            source              text NOT NULL DEFAULT '',
            loaded_at           timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        "COMMENT ON TABLE land_inventory IS 'Versioned land inventory (EPSG:4490): idle parcels, standard factories,"
        " park outlines, points of interest; areas in mu (1 mu = 10000/15 m2)'"
    )
    op.execute("CREATE UNIQUE INDEX land_inventory_current ON land_inventory (kind, site_id) WHERE valid_to IS NULL")
    op.execute("CREATE INDEX land_inventory_versions ON land_inventory (kind, valid_from, valid_to)")
    op.execute("CREATE INDEX land_inventory_site ON land_inventory (site_id, valid_from)")
    op.execute("CREATE INDEX land_inventory_geom ON land_inventory USING gist (geom)")
    op.execute(
        """
        CREATE TABLE land_load (
            load_id     bigserial PRIMARY KEY,
            kind        text NOT NULL,
            source      text NOT NULL,
            valid_from  date NOT NULL,
            report      jsonb NOT NULL,
            loaded_at   timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("COMMENT ON TABLE land_load IS 'One row per inventory file loaded, with its read/loaded/rejected report'")


def downgrade() -> None:
    op.execute("DROP TABLE land_load")
    op.execute("DROP TABLE land_inventory")
