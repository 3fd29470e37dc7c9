"""One head: the stream offsets, the land and the marts branches joined.

Revision ID: 0007_one_head
"""

revision = "0007_one_head"
down_revision = ("0002_stream_offsets", "0003_land", "0006_mart_land")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
