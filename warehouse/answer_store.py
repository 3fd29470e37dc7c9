"""The workspace's shared answers (``web_answer``): one read by key, one write that also clears old versions.

An answer is kept under the SHA-256 its caller makes of (code, read-model version, question), with
the version beside it: a row of any other version can never be asked for again, so a write deletes
those (the table holds the answers of one version, a few thousand rows at most).
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, text


def read_answer(conn: Connection, question_sha256: str) -> bytes | None:
    """The kept answer under that key, or None."""
    found = conn.execute(text("SELECT answer FROM web_answer WHERE question_sha256 = :k"), {"k": question_sha256}).scalar()
    return None if found is None else bytes(found)


def keep_answer(engine: Engine, question_sha256: str, models_version: str, question: str, answer: bytes) -> None:
    """Keep an answer in its own short transaction (the reader's is left as it is); another process
    that kept the same one first wins (same question, same version: the same answer)."""
    with engine.begin() as conn:
        # Rows another writer is deleting are skipped, not waited for (two writers never deadlock here).
        conn.execute(
            text(
                "DELETE FROM web_answer WHERE question_sha256 IN"
                " (SELECT question_sha256 FROM web_answer WHERE models_version <> :v FOR UPDATE SKIP LOCKED)"
            ),
            {"v": models_version},
        )
        conn.execute(
            text(
                "INSERT INTO web_answer (question_sha256, models_version, question, answer) VALUES (:k, :v, :q, :a)"
                " ON CONFLICT (question_sha256) DO NOTHING"
            ),
            {"k": question_sha256, "v": models_version, "q": question, "a": answer},
        )
