"""The page's URL as a QR code a phone camera reads off a terminal (segno), and back (tests).

Two modules per character cell with Unicode half blocks, so the code is square on a terminal
whose cells are about twice as tall as wide. Terminals are mostly light text on dark: the light
modules (and the quiet zone) are printed as blocks and the dark ones as spaces, so the code is
dark-on-light as the standard wants, whatever the terminal's background (as ``qrencode -t UTF8``).
"""

from __future__ import annotations

import segno

# The standard's quiet zone is 4 modules; scanners need it to find the code.
BORDER = 4
_CELL = {(True, True): "█", (True, False): "▀", (False, True): "▄", (False, False): " "}


def matrix(text: str) -> list[list[bool]]:
    """Rows of modules, True = light (with the quiet zone)."""
    code = segno.make(text, error="m", micro=False)
    return [[not bool(m) for m in row] for row in code.matrix_iter(scale=1, border=BORDER)]


def terminal(text: str) -> str:
    """The QR code of ``text`` as lines of half blocks."""
    rows = matrix(text)
    if len(rows) % 2:
        rows.append([True] * len(rows[0]))
    lines = []
    for top, bottom in zip(rows[0::2], rows[1::2], strict=True):
        lines.append("".join(_CELL[(t, b)] for t, b in zip(top, bottom, strict=True)))
    return "\n".join(lines)


def parse_terminal(block: str) -> list[list[bool]]:
    """The module rows a ``terminal()`` block shows (the inverse, for tests that scan it)."""
    rev = {v: k for k, v in _CELL.items()}
    rows: list[list[bool]] = []
    for line in block.splitlines():
        pairs = [rev[ch] for ch in line if ch in rev]
        if not pairs:
            continue
        rows.append([p[0] for p in pairs])
        rows.append([p[1] for p in pairs])
    return rows
