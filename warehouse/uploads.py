"""Files the workspace received (ledgers, evidence): every SQL statement about ``web_upload``.

An upload lives in the warehouse, not on one web process's disk, so the process that confirms a
ledger need not be the one that previewed it. What a file is comes from its bytes, never from its
name or the browser's content type: an ``.exe`` renamed ``.xlsx`` is refused.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

# kind -> the content type stored (the browser's claim is not kept: it is not evidence of anything)
CONTENT_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv",
    "pdf": "application/pdf",
    "png": "image/png",
    "jpeg": "image/jpeg",
}
KIND_LABELS = {
    "xlsx": "Excel 工作簿 .xlsx",
    "csv": "CSV 文本 (UTF-8/GBK)",
    "pdf": "PDF",
    "png": "PNG",
    "jpeg": "JPEG",
}
LEDGER_KINDS = ("xlsx", "csv")
# A workbook inflating past this many times the upload limit is refused before openpyxl opens it.
MAX_INFLATE_RATIO = 50
MAX_NAME_BYTES = 180


class UploadError(ValueError):
    """A file refused: ``status`` is the HTTP status that says why (413 too large, 415 wrong type, 422 empty)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Upload:
    upload_id: int
    purpose: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    uploaded_by: str
    uploaded_at: datetime
    content: bytes = b""

    @property
    def kind(self) -> str:
        return next((k for k, v in CONTENT_TYPES.items() if v == self.content_type), "")


def _is_xlsx(data: bytes, max_bytes: int) -> bool:
    if not data.startswith(b"PK\x03\x04"):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError):
        return False
    names = {i.filename for i in infos}
    if "[Content_Types].xml" not in names or not any(n.startswith("xl/") for n in names):
        return False
    if sum(i.file_size for i in infos) > MAX_INFLATE_RATIO * max_bytes:
        raise UploadError("压缩包解压后过大 · the workbook inflates to more than the workspace accepts", 413)
    return True


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _is_text(data: bytes) -> bool:
    """UTF-8 (with or without BOM) or GBK text without control characters: a CSV as bureaus save it."""
    for encoding in ("utf-8-sig", "gbk"):
        try:
            decoded = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return not _CONTROL.search(decoded)
    return False


def detect_kind(data: bytes, max_bytes: int) -> str | None:
    """What the bytes are: xlsx, pdf, png, jpeg, csv (text), or None."""
    if _is_xlsx(data, max_bytes):
        return "xlsx"
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if _is_text(data):
        return "csv"
    return None


def check_upload(data: bytes, *, max_bytes: int, allowed: tuple[str, ...]) -> str:
    """The kind of ``data`` when it is one of ``allowed`` and within ``max_bytes``; else :class:`UploadError`."""
    if len(data) > max_bytes:
        raise UploadError(f"文件过大：{len(data):,} 字节，上限 {max_bytes:,} 字节 · the file is {len(data):,} bytes; the limit is {max_bytes:,}", 413)
    if not data:
        raise UploadError("文件为空 · the file is empty", 422)
    kind = detect_kind(data, max_bytes)
    if kind not in allowed:
        wanted = "、".join(KIND_LABELS[k] for k in allowed)
        raise UploadError(f"文件类型不符：按内容判断不是 {wanted} · by its content this file is not {wanted}", 415)
    return kind


def safe_filename(name: str | None, fallback: str = "upload") -> str:
    """The file's own name without any folder (browsers on Windows may send ``C:\\...``), control
    characters or leading dots; at most :data:`MAX_NAME_BYTES` bytes of UTF-8 (file systems allow 255)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in unicodedata.normalize("NFC", base) if unicodedata.category(ch)[0] != "C").strip().lstrip(".")
    stem, dot, ext = base.rpartition(".")
    if not dot or len(ext) > 10:
        stem, dot, ext = base, "", ""
    while len((stem + dot + ext).encode()) > MAX_NAME_BYTES:
        stem = stem[:-1]
    base = (stem + dot + ext).strip()
    return base if stem.strip() else fallback


_COLUMNS = "upload_id, purpose, filename, content_type, size_bytes, sha256, uploaded_by, uploaded_at"


def _upload(row: Any, content: bytes = b"") -> Upload:
    return Upload(
        int(row.upload_id), row.purpose, row.filename, row.content_type, int(row.size_bytes), row.sha256, row.uploaded_by, row.uploaded_at,
        content,
    )  # fmt: skip


def store_upload(
    conn: Connection, data: bytes, *, filename: str | None, purpose: str, uploaded_by: str, max_bytes: int, allowed: tuple[str, ...]
) -> Upload:
    """Check ``data`` (size, type by content) and keep it; raises :class:`UploadError` and stores nothing when refused."""
    kind = check_upload(data, max_bytes=max_bytes, allowed=allowed)
    row = conn.execute(
        text(
            "INSERT INTO web_upload (purpose, filename, content_type, size_bytes, sha256, content, uploaded_by)"
            f" VALUES (:p, :f, :ct, :n, :h, :c, :by) RETURNING {_COLUMNS}"
        ),
        {
            "p": purpose, "f": safe_filename(filename), "ct": CONTENT_TYPES[kind], "n": len(data),
            "h": hashlib.sha256(data).hexdigest(), "c": data, "by": uploaded_by,
        },
    ).one()  # fmt: skip
    return _upload(row, data)


def get_upload(conn: Connection, upload_id: int, *, purpose: str | None = None) -> Upload | None:
    """An upload with its bytes (None when unknown, or of another purpose)."""
    row = conn.execute(
        text(f"SELECT {_COLUMNS}, content FROM web_upload WHERE upload_id = :i AND (CAST(:p AS text) IS NULL OR purpose = :p)"),
        {"i": upload_id, "p": purpose},
    ).first()
    return _upload(row, bytes(row.content)) if row else None
