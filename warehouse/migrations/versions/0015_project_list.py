"""项目库 at interactive speed: the project list's columns on the versions, and an index of the open ones.

The list searched and filtered by park through each version's JSON record (a join of every
version valid on the day with ``rm_project_record``: ~2 s at 219,000 projects). The versions now
carry what the list shows and searches (name, investor, the site of the last landing, the number of
anomalies), filled here from the records; and the open versions (``valid_to`` = 9999-12-31, the
state today for nearly every project) have a partial covering index the list counts and pages
from without reading the table.

Revision ID: 0015_project_list
"""

from alembic import op

revision = "0015_project_list"
down_revision = "0014_proposals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE rm_project_version ADD COLUMN name text, ADD COLUMN investor text, ADD COLUMN parcel_id text,"
        " ADD COLUMN factory_id text, ADD COLUMN anomalies integer NOT NULL DEFAULT 0;"
        " COMMENT ON COLUMN rm_project_version.parcel_id IS 'The parcel of the last landing, else the parcel named at signing';"
        " COMMENT ON COLUMN rm_project_version.factory_id IS 'The standard factory of the last landing';"
        " COMMENT ON COLUMN rm_project_version.anomalies IS 'How many anomalies the state carries'"
    )
    op.execute(
        "UPDATE rm_project_version v SET name = r.record->>'name', investor = r.record->>'investor',"
        " parcel_id = coalesce(r.record->'sites'->-1->>2, r.record->>'intended_parcel_id'),"
        " factory_id = r.record->'sites'->-1->>3, anomalies = jsonb_array_length(r.record->'anomalies')"
        " FROM rm_project_record r WHERE r.project_id = v.project_id AND r.valid_from = v.valid_from"
    )
    op.execute(
        "CREATE INDEX rm_project_version_open ON rm_project_version (signed_on DESC NULLS LAST, project_id)"
        " INCLUDE (valid_from, unit, industry, reached, cancelled_on, last_change_on, investment_wan, funds_wan, name, investor, parcel_id, factory_id)"
        " WHERE valid_to = DATE '9999-12-31'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX rm_project_version_open")
    op.execute(
        "ALTER TABLE rm_project_version DROP COLUMN name, DROP COLUMN investor, DROP COLUMN parcel_id,"
        " DROP COLUMN factory_id, DROP COLUMN anomalies"
    )
