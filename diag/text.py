"""The one sanitizer for text from outside, on its way into every output.

Device names, banners, XML from a camera, DNS answers, exception texts: none of it may act on
what shows it. Unsafe are C0/C1 controls (ESC starts a terminal escape sequence that can clear
the screen or retitle the window, CR overwrites the line, BEL rings, C1 CSI ``\\x9b`` does what
ESC [ does on 8-bit terminals, NEL ``\\x85`` breaks a line), Unicode bidi controls (they reorder
the text after them, so a line reads differently from what it says), the line and paragraph
separators U+2028/U+2029, and lone surrogates (undecodable bytes; ``print()`` raises on them).

- terminal and dashboard: ``printable()`` shows each as its escape (``\\x1b``, ``\\u202e``);
- HTML: the same, as the Jinja ``finalize`` and ``printable`` filter of the report (before
  autoescaping, which then handles ``<`` and ``&``);
- JSON: ``json_escape()`` writes each as a ``\\uXXXX`` escape inside the JSON text, so the value
  reads back unchanged and no raw control or bidi character is in the file.

Cutting to a column happens after escaping and by display width (``cut``, ``pad``, ``width``):
a wide character takes two cells, a combining mark none, so columns line up and an escape is
never cut in half into something else.
"""

from __future__ import annotations

import re

from wcwidth import wcswidth, wcwidth

UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]"
)
# Inside JSON text the C0 controls are already escaped by ``json``; the rest is escaped here.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
ELLIPSIS = "…"


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every unsafe character shown as its escape (idempotent)."""
    return UNSAFE.sub(_escape, text)


def json_escape(json_text: str) -> str:
    """JSON text (from ``json.dumps``) with C1, bidi and separator characters as ``\\uXXXX``
    escapes: the same JSON value, no raw control character in the file. These characters occur
    only inside strings (JSON's own syntax is ASCII), so this never changes structure."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", json_text)


def width(text: str) -> int:
    """Display width in terminal cells (wide characters 2, combining marks 0)."""
    w = wcswidth(text)
    if w >= 0:
        return int(w)
    # An unprintable character somewhere (text not yet escaped): count it as one cell.
    return sum(max(0, wcwidth(ch)) if wcwidth(ch) >= 0 else 1 for ch in text)


def cut(text: str, cols: int) -> str:
    """``text`` escaped, then cut to at most ``cols`` cells (an ellipsis marks the cut)."""
    text = printable(text)
    if width(text) <= cols:
        return text
    # Grow the prefix while it fits: widths of sequences (combining and spacing marks) are not
    # always the sum of the characters' widths, so the prefix is measured whole each time.
    kept = ""
    for ch in text:
        if width(kept + ch) > cols - 1:
            break
        kept += ch
    return kept + ELLIPSIS


def pad(text: str, cols: int) -> str:
    """``text`` escaped, cut to ``cols`` cells and padded with spaces to exactly ``cols``."""
    text = cut(text, cols)
    return text + " " * max(0, cols - width(text))
