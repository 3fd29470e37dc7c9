"""Answers shared by the workspace's processes: what a question gave at a read-model version.

The workspace reused an answer (a dashboard's figures, a page of the project list) only in the
process that computed it: with ``zhaoshang serve --workers N`` or several hosts, each process paid
for each question once. An answer never changes while the read models stand still (the log is
append-only), so it is kept here under the SHA-256 of (code fingerprint, read-model version,
question): any process of any host finds it. Rows of other versions are deleted as new ones arrive.

Revision ID: 0016_answers
"""

from alembic import op

revision = "0016_answers"
down_revision = "0015_project_list"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE web_answer (
            question_sha256  text PRIMARY KEY,
            models_version   text NOT NULL,
            question         text NOT NULL,
            answer           bytea NOT NULL,
            made_at          timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX web_answer_version ON web_answer (models_version);
        COMMENT ON TABLE web_answer IS 'Answers of the workspace at a read-model version (tagged JSON), shared by every web process';
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE web_answer")
