"""One vocabulary for every view: icon colours, added-via labels, state and status words, places.

The HTML report, the dashboard and the terminal table all take their colours and words from here,
so one device is painted in one blue and one blocked port is "blocked at the site's router" in
each of them. Words are ``N_()`` templates (rendered late by ``diag.i18n``); colours are CSS hex,
which Rich (the dashboard) understands as well. Colour is never the only carrier of meaning: each
colour comes with a glyph, a tag or a word.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from diag.i18n import N_
from diag.model import ADDED_VIA, AddedVia

# -- how a device was added, and the icon colour the app gives it ---------------------------------

# The order in which legends and tables list the ways of adding a device (the app's own order).
ADDED_VIA_ORDER: tuple[AddedVia, ...] = ADDED_VIA
# The app's icon hue by how the device was added. The guide shows the icons only as pictures, so
# these approximate its hues, chosen to stay apart for the common colour-vision deficiencies
# (blue / orange / teal / magenta) and to read on a white page and on a dark terminal alike.
ICON_COLOURS: Mapping[AddedVia, str] = {
    "ip": "#2d7be5",
    "p2p": "#e8892b",
    "p2p-account": "#1f9e89",
    "shared": "#b455c9",
}
# A device the app has no connection to.
ICON_GREY = "#9aa0a6"
# The short tag in the dashboard's "Added" column, readable on a monochrome terminal. At most
# six cells in every language: the column is sized from the longest tag.
VIA_TAG: Mapping[AddedVia, str] = {
    "ip": N_("IP"),
    "p2p": N_("P2P"),
    "p2p-account": N_("ACCT"),
    "shared": N_("SHARED"),
}
# The phrase after a device's kind: "camera, added by IP address".
VIA_LABEL: Mapping[AddedVia, str] = {
    "ip": N_("added by IP address"),
    "p2p": N_("added by P2P without an account"),
    "p2p-account": N_("added by P2P to an account"),
    "shared": N_("shared from another account"),
}
# The legend's longer explanation of each colour.
VIA_MEANING: Mapping[AddedVia, str] = {
    "ip": N_("added by IP address or domain name"),
    "p2p": N_("added by P2P without an account (cannot be shared)"),
    "p2p-account": N_("added by P2P to an account (can be shared)"),
    "shared": N_("shared to us from another account"),
}
GREY_MEANING = N_("grey: the app has no connection to the device")
# Filled for an icon the app shows in colour, hollow for a grey one, dotted when not diagnosed.
ICON_GLYPH: Mapping[str, str] = {"colour": "●", "grey": "○", "unknown": "◌"}
# The app icon in words ("app icon: grey"), in every view.
ICON_WORD: Mapping[str, str] = {"colour": N_("in colour"), "grey": N_("grey")}


def icon_word(icon: str) -> str:
    return ICON_WORD.get(icon, icon)


def icon_colour(added_via: str, grey: bool) -> str:
    """The icon colour the app uses (CSS hex): by ``added_via``, grey without a connection."""
    if grey:
        return ICON_GREY
    return next((c for via, c in ICON_COLOURS.items() if via == added_via), ICON_GREY)


def via_tag(added_via: str) -> str:
    return next((t for via, t in VIA_TAG.items() if via == added_via), added_via)


def via_label(added_via: str) -> str:
    return next((t for via, t in VIA_LABEL.items() if via == added_via), added_via)


# -- device kinds -------------------------------------------------------------------------------

KIND_WORD: Mapping[str, str] = {"ipc": N_("camera"), "nvr": N_("recorder")}

# -- device states --------------------------------------------------------------------------------

# "unknown": the state could not be measured (fail closed); never shown as online.
STATES: tuple[str, ...] = ("offline", "unknown", "degraded", "online")
STATE_WORD: Mapping[str, str] = {
    "online": N_("online"),
    "degraded": N_("degraded"),
    "offline": N_("offline"),
    "unknown": N_("state unknown"),
}
# The state in a narrow column (the dashboard's device list), next to its mark: "?" already says
# it is the state that is unknown, and the column stays narrow enough for the names at 80 columns.
STATE_TAG: Mapping[str, str] = {**STATE_WORD, "unknown": N_("unknown")}
# A mark per state that reads without colour (colour-blind users, a monochrome terminal, print):
# the dashboard's device list and the report's icon badge show it next to the colour. "?" for
# unknown: the state could not be measured.
STATE_GLYPH: Mapping[str, str] = {"online": "✓", "degraded": "!", "offline": "✗", "unknown": "?"}
# Worst first: the order of the report's "needs attention" table and of every sort by state.
STATE_ORDER: Mapping[str, int] = {s: i for i, s in enumerate(STATES)}
# Rich styles of the dashboard and the terminal; the report's CSS has a class per state.
STATE_STYLE: Mapping[str, str] = {
    "online": "green",
    "degraded": "yellow",
    "offline": "bold red",
    "unknown": "bold magenta",
}


def state_word(state: str) -> str:
    return STATE_WORD.get(state, state)


def state_glyph(state: str) -> str:
    """The state's mark; a state this version does not know reads as unknown ("?")."""
    return STATE_GLYPH.get(state, STATE_GLYPH["unknown"])


def state_rank(state: str) -> int:
    """Sort key, worst first; a state this version does not know sorts with ``unknown``."""
    return STATE_ORDER.get(state, STATE_ORDER["unknown"])


# -- check results --------------------------------------------------------------------------------

STATUS_WORD: Mapping[str, str] = {
    "ok": N_("ok"),
    "warn": N_("warning"),
    "fail": N_("failed"),
    "skip": N_("skipped"),
    "error": N_("error"),
}
STATUS_GLYPH: Mapping[str, str] = {"ok": "✓", "warn": "!", "fail": "✗", "skip": "-", "error": "E"}
STATUS_STYLE: Mapping[str, str] = {
    "ok": "green",
    "warn": "yellow",
    "fail": "bold red",
    "skip": "dim",
    "error": "bold magenta",
}

# -- how good a measurement is (header cells, the path picture's hops and links) ----------------

Level = Literal["ok", "warn", "bad", "unknown"]
LEVELS: tuple[Level, ...] = ("ok", "warn", "bad", "unknown")
LEVEL_COLOUR: Mapping[Level, str] = {
    "ok": "#1e9e5a",
    "warn": "#c77c00",
    "bad": "#d64545",
    "unknown": "#8a949e",
}
LEVEL_STYLE: Mapping[Level, str] = {
    "ok": "green",
    "warn": "yellow",
    "bad": "bold red",
    "unknown": "dim",
}
# A mark that reads without colour (the dashboard's path pane, a monochrome print).
LEVEL_GLYPH: Mapping[Level, str] = {"ok": "✓", "warn": "!", "bad": "✗", "unknown": "?"}
LEVEL_WORD: Mapping[Level, str] = {
    "ok": N_("fine"),
    "warn": N_("marginal"),
    "bad": N_("problem here"),
    "unknown": N_("not measured"),
}
_LEVEL_RANK: Mapping[Level, int] = {"unknown": 0, "ok": 1, "warn": 2, "bad": 3}


def worse(a: Level, b: Level) -> Level:
    """The worse of two levels (a measured problem beats "not measured")."""
    return a if _LEVEL_RANK[a] >= _LEVEL_RANK[b] else b


# -- whether a probe got through: a port, UDP from the phone -------------------------------------

PASS_WORD: Mapping[str, str] = {
    "open": N_("open"),
    "works": N_("works"),
    "blocked": N_("blocked"),
}


def port_word(is_open: object) -> str:
    """A probed port's word: "open" only when it was seen open."""
    return PASS_WORD["open"] if is_open is True else PASS_WORD["blocked"]


# -- where a blocked port is blocked (``port.blocked_at``) -----------------------------------------

WHERE_BLOCKED: Mapping[str, str] = {
    "router": N_("at the site's router"),
    "isp": N_("in the operator's network"),
    "beyond": N_("beyond the operator (at the server)"),
    "unknown": N_("place unknown"),
}


def where_blocked(at: object) -> str:
    return WHERE_BLOCKED.get(str(at), WHERE_BLOCKED["unknown"])
