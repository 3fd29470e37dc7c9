"""Chinese first, English switchable: the language of a request and the one helper templates use.

Templates write both texts where they are: ``{{ t("驾驶舱", "Dashboard") }}``; labels of the
product's vocabularies come from their one table (``events``/``land`` vocabulary modules).
"""

from __future__ import annotations

from fastapi import Request

LANG_COOKIE = "zs_lang"
LANGS = ("zh", "en")


def lang_of(request: Request) -> str:
    asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or "zh"
    return asked if asked in LANGS else "zh"


def translator(lang: str):  # type: ignore[no-untyped-def]
    def t(zh: str, en: str) -> str:
        return en if lang == "en" else zh

    return t


def label(pair: tuple[str, str] | None, lang: str, code: object = "") -> str:
    """A vocabulary label ``(zh, en)`` in the request's language (the code itself when unknown)."""
    if pair is None:
        return "" if code is None else str(code)
    return pair[1] if lang == "en" else pair[0]
