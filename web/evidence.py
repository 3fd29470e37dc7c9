"""Evidence files (营业执照, 投资协议, 用地合同, bank vouchers): PDF, JPEG or PNG, told by content, not by name."""

from __future__ import annotations

# (magic bytes at offset 0, content type, extension)
_SIGNATURES = (
    (b"%PDF-", "application/pdf", ".pdf"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
)


class EvidenceError(ValueError):
    """A file refused as evidence; the message names the file and the reason (shown to the officer)."""


def evidence_type(filename: str, content: bytes, *, max_bytes: int) -> str:
    """The content type of an acceptable evidence file, or :class:`EvidenceError`.

    The name's extension is not trusted: an ``.exe`` renamed ``.pdf`` starts with ``MZ``, not ``%PDF-``.
    """
    if not content:
        raise EvidenceError(f"{filename}: 文件为空 the file is empty")
    if len(content) > max_bytes:
        raise EvidenceError(
            f"{filename}: 文件过大 {len(content) / 1048576:.1f} MB, 上限 {max_bytes / 1048576:.0f} MB · the file is too large"
        )
    for magic, content_type, _ext in _SIGNATURES:
        if content.startswith(magic):
            return content_type
    raise EvidenceError(f"{filename}: 仅接受 PDF、JPEG、PNG 文件 · only PDF, JPEG or PNG files are accepted (this file's content is none of them)")
