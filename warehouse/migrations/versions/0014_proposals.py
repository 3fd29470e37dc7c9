"""招商方案 proposals: a match saved for an investor, with a share link the investor opens without login.

The share token is kept as issued (not hashed, unlike sessions): the bureau prints the proposal
again with its link and QR code; expiry and revocation end it, and the page behind it shows only
the public fields of the chosen sites (``land.matching.public_match``).

Revision ID: 0014_proposals
"""

from alembic import op

revision = "0014_proposals"
down_revision = "0013_merged_projects"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE proposal (
            proposal_id       bigserial PRIMARY KEY,
            title             text NOT NULL,
            investor          text NOT NULL DEFAULT '',
            requirement       jsonb NOT NULL,
            result            jsonb NOT NULL,
            as_of             date NOT NULL,
            created_by        text NOT NULL,
            created_at        timestamptz NOT NULL DEFAULT now(),
            share_token       text,
            share_expires_at  timestamptz,
            share_revoked_at  timestamptz,
            CONSTRAINT proposal_share_token_key UNIQUE (share_token)
        );
        COMMENT ON TABLE proposal IS 'Saved matches for investors, with a revocable, expiring share link';
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE proposal;")
