"""The workspace (``zhaoshang serve``): users, sessions, login attempts, API tokens, uploads, the signing secret.

Everything a web process would otherwise keep in memory lives here, so several processes or hosts
serve one warehouse: a session started on one is valid on another, throttling counts every
attempt, an upload is readable by the process that confirms it.

- ``web_user``: one row per person; ``role`` one of admin, planner, unit, leader; a ``unit`` officer
  names the responsible unit (责任单位) whose projects they see. Passwords as Argon2 hashes.
- ``web_session``: the SHA-256 of each session token (the cookie holds the token, signed), its
  CSRF token and expiry.
- ``web_login_attempt``: every login attempt (throttling counts recent failures by user and client).
- ``web_api_token``: bearer tokens of other bureau systems (hash only), revocable.
- ``web_upload``: files received (evidence, ledgers) with their SHA-256, size and who sent them.
- ``web_secret``: the key that signs cookies, made once here so every process shares it.

Revision ID: 0011_workspace
"""

from alembic import op

revision = "0011_workspace"
down_revision = "0010_read_models"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE web_user (
            user_id        bigserial PRIMARY KEY,
            username       text NOT NULL,
            display_name   text NOT NULL DEFAULT '',
            role           text NOT NULL,
            unit           text,
            password_hash  text NOT NULL,
            disabled       boolean NOT NULL DEFAULT false,
            created_at     timestamptz NOT NULL DEFAULT now(),
            created_by     text NOT NULL DEFAULT '',
            updated_at     timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT web_user_username_key UNIQUE (username),
            CONSTRAINT web_user_role_check CHECK (role IN ('admin', 'planner', 'unit', 'leader')),
            CONSTRAINT web_user_unit_check CHECK (role <> 'unit' OR unit IS NOT NULL)
        );
        CREATE TABLE web_session (
            token_sha256   text PRIMARY KEY,
            user_id        bigint NOT NULL REFERENCES web_user (user_id) ON DELETE CASCADE,
            csrf_token     text NOT NULL,
            created_at     timestamptz NOT NULL DEFAULT now(),
            expires_at     timestamptz NOT NULL,
            last_seen_at   timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX web_session_expires ON web_session (expires_at);
        CREATE INDEX web_session_user ON web_session (user_id);
        CREATE TABLE web_login_attempt (
            attempt_id     bigserial PRIMARY KEY,
            username       text NOT NULL,
            client         text NOT NULL,
            ok             boolean NOT NULL,
            attempted_at   timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX web_login_attempt_user ON web_login_attempt (username, attempted_at);
        CREATE INDEX web_login_attempt_client ON web_login_attempt (client, attempted_at);
        CREATE TABLE web_api_token (
            token_sha256   text PRIMARY KEY,
            user_id        bigint NOT NULL REFERENCES web_user (user_id) ON DELETE CASCADE,
            label          text NOT NULL DEFAULT '',
            created_at     timestamptz NOT NULL DEFAULT now(),
            revoked_at     timestamptz
        );
        CREATE TABLE web_upload (
            upload_id      bigserial PRIMARY KEY,
            purpose        text NOT NULL,
            filename       text NOT NULL,
            content_type   text NOT NULL,
            size_bytes     bigint NOT NULL,
            sha256         text NOT NULL,
            content        bytea NOT NULL,
            uploaded_by    text NOT NULL,
            uploaded_at    timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX web_upload_sha256 ON web_upload (sha256);
        CREATE TABLE web_secret (
            name           text PRIMARY KEY,
            value          text NOT NULL,
            created_at     timestamptz NOT NULL DEFAULT now()
        );
        -- 244 random bits from two v4 UUIDs (gen_random_uuid is built in since PostgreSQL 13).
        INSERT INTO web_secret (name, value)
        VALUES ('cookie_signing', replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));
        COMMENT ON TABLE web_user IS 'Workspace users: role admin/planner/unit/leader, Argon2 password hashes';
        COMMENT ON TABLE web_session IS 'Workspace sessions (SHA-256 of the token), CSRF token, expiry: shared by every web process';
        COMMENT ON TABLE web_login_attempt IS 'Every login attempt, for throttling across processes';
        COMMENT ON TABLE web_api_token IS 'Bearer tokens of other systems using /api (hash only)';
        COMMENT ON TABLE web_upload IS 'Files received by the workspace (evidence, ledgers) with their SHA-256';
        COMMENT ON TABLE web_secret IS 'Keys shared by every web process (cookie signing)';
        """
    )


def downgrade() -> None:
    op.execute(
        "DROP TABLE web_secret; DROP TABLE web_upload; DROP TABLE web_api_token; DROP TABLE web_login_attempt;"
        " DROP TABLE web_session; DROP TABLE web_user;"
    )
