"""The warehouse schema, declared once (SQLAlchemy Core + GeoAlchemy2 types).

Alembic's migrations (``warehouse/migrations``) build this schema step by step; a test runs
``alembic check`` so the two never drift apart. What SQLAlchemy cannot declare (the append-only
trigger of the log, row-level CHECKs written as SQL) lives in the migrations only.

Geometries are EPSG:4490 (CGCS2000, longitude/latitude in degrees); areas in 亩 (mu), floor space in
m², amounts in 万元.
"""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSON, JSONB

metadata = MetaData()

SRID = 4490


def _stamp(name: str) -> Column[object]:
    """A timestamp the warehouse stamps itself (system time, not a business date)."""
    return Column(name, DateTime(timezone=True), nullable=False, server_default=text("now()"))


event_log = Table(
    "event_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", Text, nullable=False),
    Column("project_id", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("schema_version", Integer, nullable=False, server_default=text("1")),
    Column("payload", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("content_hash", Text, nullable=False),
    Column("source", Text, nullable=False, server_default=text("''")),
    Column("source_position", Text),
    _stamp("appended_at"),
    UniqueConstraint("event_id", name="event_log_event_id_key"),
    # What the read models (warehouse/read_models.py) look up: a project's events, what was recorded
    # after an instant, the retractions of an event.
    Index("event_log_project", "project_id"),
    Index("event_log_recorded", "recorded_at", postgresql_include=["occurred_at", "type", "project_id"]),
    Index("event_log_retraction_target", text("(payload->>'event_id')"), postgresql_where=text("type = 'retracted'")),
    comment="Append-only log of project lifecycle events (wire format v1)",
)

dead_letter = Table(
    "dead_letter",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("raw", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("event_id", Text),
    Column("source", Text, nullable=False, server_default=text("''")),
    Column("source_position", Text),
    Column("status", Text, nullable=False, server_default=text("'open'")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    _stamp("created_at"),
    Column("resolved_at", DateTime(timezone=True)),
    Column("resolution", Text),
    # Hex SHA-256 of the raw record's bytes: a record read again from the same source is kept once.
    Column("raw_hash", Text, nullable=False),
    # The replacement a retry was given; ``raw`` stays the record as it arrived.
    Column("fixed_raw", Text),
    CheckConstraint("status IN ('open', 'resolved')", name="dead_letter_status_check"),
    Index("dead_letter_open", "status", "id"),
    Index("dead_letter_once", "source", "raw_hash", unique=True),
)

stream_offset = Table(
    "stream_offset",
    metadata,
    Column("sink_name", Text, nullable=False),
    Column("topic", Text, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("next_offset", BigInteger, nullable=False, server_default=text("0")),
    Column("records_read", BigInteger, nullable=False, server_default=text("0")),
    Column("records_accepted", BigInteger, nullable=False, server_default=text("0")),
    Column("records_duplicate", BigInteger, nullable=False, server_default=text("0")),
    Column("records_rejected", BigInteger, nullable=False, server_default=text("0")),
    _stamp("updated_at"),
    PrimaryKeyConstraint("sink_name", "topic", "partition", name="stream_offset_pkey"),
    comment=(
        "Kafka sink positions: next_offset is the first message not yet in the warehouse; the counters cover"
        " every message the sink has read (read = accepted + duplicate + rejected)"
    ),
)

land_inventory = Table(
    "land_inventory",
    metadata,
    Column("row_id", BigInteger, primary_key=True, autoincrement=True),
    Column("kind", Text, nullable=False),
    Column("site_id", Text, nullable=False),
    Column("name", Text),
    Column("park", Text),
    Column("category", Text),
    Column("land_use", Text),
    Column("land_status", Text),
    Column("area_mu", Double),
    Column("geom_area_mu", Double),
    Column("declared_area_mu", Double),
    Column("price_wan_per_mu", Double),
    Column("plot_ratio_max", Double),
    Column("readiness", Text),
    Column("floor_area_m2", Double),
    Column("vacant_area_m2", Double),
    Column("floors", Integer),
    Column("floor_load_kn_m2", Double),
    Column("clear_height_m", Double),
    Column("power_kva", Double),
    Column("rent_yuan_m2_month", Double),
    Column("extra", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # The GiST index is declared below under its migration's name.
    Column("geom", Geometry("GEOMETRY", srid=SRID, spatial_index=False), nullable=False),
    Column("content_hash", BigInteger, nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_to", Date),
    Column("source", Text, nullable=False, server_default=text("''")),
    _stamp("loaded_at"),
    Index("land_inventory_current", "kind", "site_id", unique=True, postgresql_where=text("valid_to IS NULL")),
    Index("land_inventory_versions", "kind", "valid_from", "valid_to"),
    Index("land_inventory_site", "site_id", "valid_from"),
    Index("land_inventory_geom", "geom", postgresql_using="gist"),
    comment=(
        "Versioned land inventory (EPSG:4490): idle parcels, standard factories, park outlines, points of interest;"
        " areas in mu (1 mu = 10000/15 m2)"
    ),
)

land_load = Table(
    "land_load",
    metadata,
    Column("load_id", BigInteger, primary_key=True, autoincrement=True),
    Column("kind", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("report", JSONB, nullable=False),
    _stamp("loaded_at"),
    comment="One row per inventory file loaded, with its read/loaded/rejected report",
)

mart_project_state = Table(
    "mart_project_state",
    metadata,
    Column("month_end", Date, nullable=False),
    Column("project_id", Text, nullable=False),
    Column("name", Text),
    Column("stage", Text, nullable=False),
    Column("signed_on", Date),
    Column("landed_on", Date),
    Column("started_on", Date),
    Column("produced_on", Date),
    Column("cancelled_on", Date),
    Column("investment_wan", Double, nullable=False, server_default=text("0")),
    Column("funds_wan", Double, nullable=False, server_default=text("0")),
    Column("unit", Text),
    Column("industry", Text),
    Column("channel", Text),
    Column("stalled", Boolean, nullable=False, server_default=text("false")),
    Column("confidential", Boolean, nullable=False, server_default=text("false")),
    Column("anomalies", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    _stamp("built_at"),
    PrimaryKeyConstraint("month_end", "project_id", name="mart_project_state_pkey"),
)

mart_bulletin = Table(
    "mart_bulletin",
    metadata,
    Column("month_end", Date, nullable=False),
    Column("version", Text, nullable=False),
    Column("known_at", DateTime(timezone=True), nullable=False),
    Column("report", JSONB, nullable=False),
    _stamp("built_at"),
    PrimaryKeyConstraint("month_end", "version", name="mart_bulletin_pkey"),
    CheckConstraint("version IN ('published', 'corrected')", name="mart_bulletin_version_check"),
)

dead_letter_snapshot = Table(
    "dead_letter_snapshot",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    _stamp("taken_at"),
    Column("open_count", Integer, nullable=False),
)

mart_land_status = Table(
    "mart_land_status",
    metadata,
    Column("month_end", Date, nullable=False),
    Column("kind", Text, nullable=False),
    Column("site_id", Text, nullable=False),
    Column("park", Text),
    Column("status", Text, nullable=False),
    Column("area_mu", Double),
    Column("remaining_area_mu", Double),
    Column("floor_area_m2", Double),
    Column("vacant_area_m2", Double),
    Column("project_ids", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    _stamp("built_at"),
    PrimaryKeyConstraint("month_end", "kind", "site_id", name="mart_land_status_pkey"),
)

rm_position = Table(
    "rm_position",
    metadata,
    Column("projection", Text, primary_key=True),
    Column("seq", BigInteger, nullable=False, server_default=text("0")),
    _stamp("updated_at"),
    comment="The log position (event_log.seq) each read model reflects",
)

rm_project_version = Table(
    "rm_project_version",
    metadata,
    Column("project_id", Text, nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_to", Date, nullable=False, server_default=text("'9999-12-31'::date")),
    Column("unit", Text),
    Column("industry", Text),
    Column("channel", Text),
    Column("reached", SmallInteger, nullable=False),
    Column("signed_on", Date),
    Column("landed_on", Date),
    Column("started_on", Date),
    Column("produced_on", Date),
    Column("cancelled_on", Date),
    Column("last_change_on", Date),
    Column("investment_wan", Double, nullable=False),
    Column("funds_wan", Double, nullable=False),
    Column("funds_on", ARRAY(Date), nullable=False, server_default=text("'{}'")),
    Column("funds_cny_wan", ARRAY(Double), nullable=False, server_default=text("'{}'")),
    Column("confidential", Boolean, nullable=False),
    Column("merged_into", Text, comment="The project this one is a duplicate of (merged event): KPIs skip it"),
    Column("name", Text),
    Column("investor", Text),
    Column("parcel_id", Text, comment="The parcel of the last landing, else the parcel named at signing"),
    Column("factory_id", Text, comment="The standard factory of the last landing"),
    Column("anomalies", Integer, nullable=False, server_default=text("0"), comment="How many anomalies the state carries"),
    PrimaryKeyConstraint("project_id", "valid_from", name="rm_project_version_pkey"),
    Index("rm_project_version_valid", "valid_to", "valid_from"),
    Index(
        "rm_project_version_open",
        text("signed_on DESC NULLS LAST"),
        "project_id",
        postgresql_include=[
            "valid_from", "unit", "industry", "reached", "cancelled_on", "last_change_on", "investment_wan", "funds_wan", "name",
            "investor", "parcel_id", "factory_id", "channel", "merged_into",
        ],  # fmt: skip
        postgresql_where=text("valid_to = DATE '9999-12-31'"),
    ),
    Index(
        "rm_project_version_open_stage",
        "reached",
        "industry",
        "cancelled_on",
        postgresql_include=["project_id", "valid_from", "unit", "signed_on", "last_change_on", "investment_wan", "funds_wan", "parcel_id", "factory_id"],
        postgresql_where=text("valid_to = DATE '9999-12-31'"),
    ),
    comment="Valid-time versions of each project's state (as of a day, known at rm_position.seq): what KPIs sum",
)

rm_project_record = Table(
    "rm_project_record",
    metadata,
    Column("project_id", Text, nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("record", JSON, nullable=False),
    PrimaryKeyConstraint("project_id", "valid_from", name="rm_project_record_pkey"),
    comment="The whole state of each version: the JSON array of events.projection.state_record's values in RECORD_FIELDS order",
)

web_user = Table(
    "web_user",
    metadata,
    Column("user_id", BigInteger, primary_key=True, autoincrement=True),
    Column("username", Text, nullable=False),
    Column("display_name", Text, nullable=False, server_default=text("''")),
    Column("role", Text, nullable=False),
    Column("unit", Text),
    Column("password_hash", Text, nullable=False),
    Column("disabled", Boolean, nullable=False, server_default=text("false")),
    _stamp("created_at"),
    Column("created_by", Text, nullable=False, server_default=text("''")),
    _stamp("updated_at"),
    UniqueConstraint("username", name="web_user_username_key"),
    CheckConstraint("role IN ('admin', 'planner', 'unit', 'leader')", name="web_user_role_check"),
    CheckConstraint("role <> 'unit' OR unit IS NOT NULL", name="web_user_unit_check"),
    comment="Workspace users: role admin/planner/unit/leader, Argon2 password hashes",
)

web_session = Table(
    "web_session",
    metadata,
    Column("token_sha256", Text, primary_key=True),
    Column("user_id", BigInteger, ForeignKey("web_user.user_id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", Text, nullable=False),
    _stamp("created_at"),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    _stamp("last_seen_at"),
    Index("web_session_expires", "expires_at"),
    Index("web_session_user", "user_id"),
    comment="Workspace sessions (SHA-256 of the token), CSRF token, expiry: shared by every web process",
)

web_answer = Table(
    "web_answer",
    metadata,
    Column("question_sha256", Text, primary_key=True),
    Column("models_version", Text, nullable=False),
    Column("question", Text, nullable=False),
    Column("answer", LargeBinary, nullable=False),
    _stamp("made_at"),
    Index("web_answer_version", "models_version"),
    comment="Answers of the workspace at a read-model version (tagged JSON), shared by every web process",
)

web_login_attempt = Table(
    "web_login_attempt",
    metadata,
    Column("attempt_id", BigInteger, primary_key=True, autoincrement=True),
    Column("username", Text, nullable=False),
    Column("client", Text, nullable=False),
    Column("ok", Boolean, nullable=False),
    _stamp("attempted_at"),
    Index("web_login_attempt_user", "username", "attempted_at"),
    Index("web_login_attempt_client", "client", "attempted_at"),
    comment="Every login attempt, for throttling across processes",
)

web_api_token = Table(
    "web_api_token",
    metadata,
    Column("token_sha256", Text, primary_key=True),
    Column("user_id", BigInteger, ForeignKey("web_user.user_id", ondelete="CASCADE"), nullable=False),
    Column("label", Text, nullable=False, server_default=text("''")),
    _stamp("created_at"),
    Column("revoked_at", DateTime(timezone=True)),
    comment="Bearer tokens of other systems using /api (hash only)",
)

web_upload = Table(
    "web_upload",
    metadata,
    Column("upload_id", BigInteger, primary_key=True, autoincrement=True),
    Column("purpose", Text, nullable=False),
    Column("filename", Text, nullable=False),
    Column("content_type", Text, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("uploaded_by", Text, nullable=False),
    _stamp("uploaded_at"),
    Index("web_upload_sha256", "sha256"),
    comment="Files received by the workspace (evidence, ledgers) with their SHA-256",
)

web_secret = Table(
    "web_secret",
    metadata,
    Column("name", Text, primary_key=True),
    Column("value", Text, nullable=False),
    _stamp("created_at"),
    comment="Keys shared by every web process (cookie signing)",
)

progress_report = Table(
    "progress_report",
    metadata,
    Column("report_id", BigInteger, primary_key=True, autoincrement=True),
    Column("project_id", Text, nullable=False),
    Column("unit", Text),
    Column("kind", Text, nullable=False),
    Column("occurred_on", Date, nullable=False),
    Column("payload", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("note", Text, nullable=False, server_default=text("''")),
    Column("evidence_ids", ARRAY(BigInteger), nullable=False, server_default=text("'{}'")),
    Column("evidence_sha256", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("reported_by", Text, nullable=False),
    _stamp("reported_at"),
    Column("status", Text, nullable=False, server_default=text("'pending'")),
    Column("decided_by", Text),
    Column("decided_at", DateTime(timezone=True)),
    Column("reason", Text),
    Column("event_id", Text),
    CheckConstraint("kind IN ('landed', 'started', 'produced', 'funds_arrived', 'cancelled')", name="progress_report_kind_check"),
    CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="progress_report_status_check"),
    Index("progress_report_status", "status", "unit"),
    Index("progress_report_project", "project_id"),
    comment="Progress reported by unit officers with evidence; approval appends the event",
)

proposal = Table(
    "proposal",
    metadata,
    Column("proposal_id", BigInteger, primary_key=True, autoincrement=True),
    Column("title", Text, nullable=False),
    Column("investor", Text, nullable=False, server_default=text("''")),
    Column("requirement", JSONB, nullable=False),
    Column("result", JSONB, nullable=False),
    Column("as_of", Date, nullable=False),
    Column("created_by", Text, nullable=False),
    _stamp("created_at"),
    Column("share_token", Text),
    Column("share_expires_at", DateTime(timezone=True)),
    Column("share_revoked_at", DateTime(timezone=True)),
    UniqueConstraint("share_token", name="proposal_share_token_key"),
    comment="Saved matches for investors, with a revocable, expiring share link",
)
