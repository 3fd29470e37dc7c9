"""进度上报 progress reports: a unit officer's claim with evidence, waiting for a planner's sign-off.

A report is not a fact until approved: approving appends the lifecycle event (recorded_by,
approved_by and the evidence hashes in its payload) in the same transaction that marks the report
approved; a rejection keeps the reason for the officer and appends nothing. Evidence files are
rows of ``web_upload`` (purpose 'evidence'), referenced with their SHA-256.

Revision ID: 0012_progress_reports
"""

from alembic import op

revision = "0012_progress_reports"
down_revision = "0011_workspace"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE progress_report (
            report_id      bigserial PRIMARY KEY,
            project_id     text NOT NULL,
            unit           text,
            kind           text NOT NULL,
            occurred_on    date NOT NULL,
            payload        jsonb NOT NULL DEFAULT '{}'::jsonb,
            note           text NOT NULL DEFAULT '',
            evidence_ids   bigint[] NOT NULL DEFAULT '{}',
            evidence_sha256 text[] NOT NULL DEFAULT '{}',
            reported_by    text NOT NULL,
            reported_at    timestamptz NOT NULL DEFAULT now(),
            status         text NOT NULL DEFAULT 'pending',
            decided_by     text,
            decided_at     timestamptz,
            reason         text,
            event_id       text,
            CONSTRAINT progress_report_kind_check CHECK (kind IN ('landed', 'started', 'produced', 'funds_arrived', 'cancelled')),
            CONSTRAINT progress_report_status_check CHECK (status IN ('pending', 'approved', 'rejected'))
        );
        CREATE INDEX progress_report_status ON progress_report (status, unit);
        CREATE INDEX progress_report_project ON progress_report (project_id);
        COMMENT ON TABLE progress_report IS 'Progress reported by unit officers with evidence; approval appends the event';
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE progress_report;")
