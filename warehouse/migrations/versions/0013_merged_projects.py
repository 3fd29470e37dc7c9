"""重复签约 merged duplicates: the read model's versions say which project a duplicate was merged into.

KPIs sum only versions with ``merged_into`` NULL (a merged project counts once, as the kept one).
No stored version changes: no ``merged`` event existed before this revision.

Revision ID: 0013_merged_projects
"""

from alembic import op

revision = "0013_merged_projects"
down_revision = "0012_progress_reports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE rm_project_version ADD COLUMN merged_into text;"
        " COMMENT ON COLUMN rm_project_version.merged_into IS 'The project this one is a duplicate of (merged event): KPIs skip it'"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE rm_project_version DROP COLUMN merged_into")
