"""Reliable ingestion: dead letters kept once per source and raw record, fixes kept beside the
original; stored events re-hashed with numbers in canonical form.

- ``dead_letter.raw_hash`` (hex SHA-256 of the raw record's bytes) with a unique index on
  ``(source, raw_hash)``: re-reading a file or a topic no longer adds a letter per bad record.
  Copies already stored are merged into one (a resolved copy wins, else the first).
- ``dead_letter.fixed_raw``: the replacement given to ``deadletters retry --replace-with``; ``raw``
  stays the record as it arrived.
- Content hashes now write an integral float as the integer (``1000.0`` → ``1000``, see
  ``events.model.canonical_numbers``). Stored events whose payload holds one are re-hashed (and
  their payload given the same form), so re-loading them is a duplicate, not a conflict. Only rows
  whose stored hash this migration reproduces are touched. Integer-valued and other float data
  hash as before.

Revision ID: 0009_dead_letters_once
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009_dead_letters_once"
down_revision = "0008_log_no_truncate"
branch_labels = None
depends_on = None

# A frozen copy of the canonical JSON of events.model at this revision (a migration must not change
# meaning when the application code does).
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _numbers(value: Any) -> Any:
    if type(value) is float:
        return int(value) if value.is_integer() and -1e16 < value < 1e16 else value
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


def _hash(row: Any, payload: Any) -> tuple[str, str]:
    head = _CANONICAL.encode([row.event_id, row.project_id, row.type, row.occurred_at.astimezone(UTC).isoformat(), row.schema_version])
    payload_text = _CANONICAL.encode(payload)
    return hashlib.sha256((head[:-1] + "," + payload_text + "]").encode()).hexdigest(), payload_text


def _rehash_integral_floats() -> None:
    conn = op.get_bind()
    # jsonb prints a number as it was written: an integral float shows as digits, a point and zeros.
    rows = conn.execute(
        sa.text(
            "SELECT seq, event_id, project_id, type, occurred_at, schema_version, payload, content_hash FROM event_log"
            " WHERE payload::text ~ '[0-9]\\.0+([^0-9eE]|$)'"
        )
    ).all()
    updates = []
    for row in rows:
        old, _ = _hash(row, row.payload)
        if old != row.content_hash:
            continue  # not a hash this code made: leave it as it is
        new, payload_text = _hash(row, _numbers(row.payload))
        if new != old:
            updates.append({"seq": row.seq, "h": new, "p": payload_text})
    if updates:
        op.execute("ALTER TABLE event_log DISABLE TRIGGER event_log_no_update_delete")
        conn.execute(sa.text("UPDATE event_log SET content_hash = :h, payload = CAST(:p AS jsonb) WHERE seq = :seq"), updates)
        op.execute("ALTER TABLE event_log ENABLE TRIGGER event_log_no_update_delete")


def upgrade() -> None:
    op.execute("ALTER TABLE dead_letter ADD COLUMN raw_hash text, ADD COLUMN fixed_raw text")
    op.execute("UPDATE dead_letter SET raw_hash = encode(sha256(convert_to(raw, 'UTF8')), 'hex')")
    op.execute(
        """
        DELETE FROM dead_letter d USING (
            SELECT id, row_number() OVER (PARTITION BY source, raw_hash ORDER BY (status = 'resolved') DESC, id) AS n
            FROM dead_letter
        ) k
        WHERE d.id = k.id AND k.n > 1
        """
    )
    op.execute("ALTER TABLE dead_letter ALTER COLUMN raw_hash SET NOT NULL")
    op.execute("CREATE UNIQUE INDEX dead_letter_once ON dead_letter (source, raw_hash)")
    _rehash_integral_floats()


def downgrade() -> None:
    op.execute("DROP INDEX dead_letter_once")
    op.execute("ALTER TABLE dead_letter DROP COLUMN raw_hash, DROP COLUMN fixed_raw")
