"""Data in an output format: one function per format, every writer goes through them.

Names, units, investors and reasons come from spreadsheets and messages; they are text, never
markup, formulas or terminal control. Each function turns one data value into text its format
shows as written:

- :func:`terminal`: the terminal (rich consoles in ``zhaoshang.common`` also have markup off);
  control characters and bidirectional overrides are shown as ``\\x1b``/``\\u202e``, since a
  terminal would obey them (colour, cursor moves, reordered text) and cannot show them.
- :func:`markdown_cell`: a cell of a (GFM) Markdown table; exact when rendered.
- :func:`html_text`: HTML text or an attribute value; exact.
- :func:`docx_text`: the text of a Word run; control and bidi characters written out.
- :func:`xlsx_text` / :func:`xlsx_append`: an Excel cell; text stays text (never a formula),
  characters XML cannot hold in OOXML's own ``_xHHHH_`` form, which Excel shows decoded.

Pure functions (no I/O); JSON needs none (the encoders escape, and pages embed JSON through
``maps.render``, which escapes ``<`` as well).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from typing import Any

# Characters a terminal or a Markdown renderer would obey rather than show: C0 controls (but tab
# and newline), DEL, C1 controls, line/paragraph separators and the bidirectional marks,
# embeddings, overrides and isolates ("Trojan source" reordering).
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _code(ch: str) -> str:
    n = ord(ch)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}"


def visible_controls(value: str) -> str:
    """``value`` with each control or bidi character written out as ``\\xNN``/``\\uNNNN``."""
    return _INVISIBLE.sub(lambda m: _code(m.group()), value)


def terminal(value: Any) -> str:
    """``value`` as terminal text: ``str`` of it, control and bidi characters made visible.

    Markup is not escaped here: the consoles that print data have markup off (``zhaoshang.common``).
    """
    return visible_controls("" if value is None else str(value))


# Inline Markdown (CommonMark + GFM tables/strikethrough): emphasis, code, links, images, autolinks,
# the cell separator and backslash itself. A backslash before ASCII punctuation is always literal.
_MD_INLINE = re.compile(r"([\\`*_\[\]|~!])")
_MD_LEADING = re.compile(r"^([#+\-=>])")  # block markup, harmless in a cell but not on a line of its own
# Renderers turn a control character's entity into U+FFFD: those are written out (\x1b) instead;
# bidi marks and tabs are valid characters and travel as entities.
_MD_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_MD_ENTITY = re.compile("[\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\t]")


def markdown_cell(value: Any) -> str:
    """``value`` as the text of a Markdown table cell, shown exactly as written once rendered.

    ``& < >`` become entities (no raw HTML, no autolinks), inline markup and ``|`` are
    backslash-escaped, a leading block marker too, newlines become ``<br>`` (a cell is one line),
    bidi marks and tabs numeric entities, and control characters, which no renderer shows, are
    written out as ``\\x1b`` (the file holds none of them raw).
    """
    text = "" if value is None else str(value)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _MD_CONTROL.sub(lambda m: _code(m.group()), text)
    text = html.escape(text, quote=False)
    text = _MD_INLINE.sub(r"\\\1", text)
    text = _MD_LEADING.sub(r"\\\1", text)
    text = _MD_ENTITY.sub(lambda m: f"&#x{ord(m.group()):X};", text)
    return text.replace("\n", "<br>")


def html_text(value: Any) -> str:
    """``value`` as HTML text or a quoted attribute value."""
    return html.escape("" if value is None else str(value), quote=True)


_XML_NONCHARACTERS = re.compile("[\ufffe\uffff\ud800-\udfff]")


def docx_text(value: Any) -> str:
    """``value`` as the text of a Word run: shown as written, never markup (python-docx writes XML text).

    XML cannot hold C0 controls (lxml refuses them) and Word would obey bidi overrides: both are
    written out as ``\\x1b``/``\\u202e`` (:func:`visible_controls`); newlines and tabs stay (python-docx
    makes them breaks and tabs); non-characters become U+FFFD.
    """
    text = visible_controls("" if value is None else str(value))
    return _XML_NONCHARACTERS.sub("\ufffd", text)


# XML 1.0 cannot hold these; OOXML writes them (and a literal "_xHHHH_", to keep it literal) as _xHHHH_.
# A raw CR would come back as LF (XML normalises line ends), so it is escaped too.
_XLSX_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\ufffe\uffff]|_(?=x[0-9A-Fa-f]{4}_)")
_XLSX_ESCAPED = re.compile(r"_x([0-9A-Fa-f]{4})_")
# What Excel (and LibreOffice) would read as the start of a formula when the cell is typed or imported.
XLSX_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def xlsx_text(value: str) -> str:
    """A string as an Excel cell holds it: characters XML cannot carry in OOXML's ``_xHHHH_`` form."""
    return _XLSX_UNSAFE.sub(lambda m: f"_x{ord(m.group()):04X}_", value)


def xlsx_unescape(value: str) -> str:
    """The inverse of :func:`xlsx_text` (what Excel shows); openpyxl does not decode on reading."""
    return _XLSX_ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), value)


def xlsx_append(ws: Any, row: Iterable[Any]) -> None:
    """Append ``row`` to an openpyxl worksheet, every string a text cell.

    openpyxl makes a string starting with ``=`` a formula; here it, and any string Excel would
    take as a formula when edited or re-imported (``+ - @``, a tab or CR first), is stored as a
    text cell with the quote prefix (the apostrophe Excel shows), so nothing is evaluated.
    """
    raw = list(row)
    ws.append([xlsx_text(v) if isinstance(v, str) else v for v in raw])
    r = ws.max_row
    for col, v in enumerate(raw, start=1):
        if isinstance(v, str):
            cell = ws.cell(row=r, column=col)
            cell.data_type = "s"
            if v.startswith(XLSX_FORMULA_START):
                cell.quotePrefix = True


def csv_cell(value: Any) -> Any:
    """A value for a CSV cell (the ``csv`` module quotes): a string a spreadsheet would read as a
    formula (:data:`XLSX_FORMULA_START`) gets a leading apostrophe, so it opens as text; other
    values pass unchanged."""
    if isinstance(value, str) and value.startswith(XLSX_FORMULA_START):
        return "'" + value
    return value
