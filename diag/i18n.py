"""Words shown to people, in English and Polish: messages as data, rendered late.

A ``Message`` carries an English template with ``{named}`` placeholders and its arguments. Checks,
rules and reports create messages; only the layer that shows them to a person renders them in a
language, so a saved run can be re-rendered in Polish. Templates are marked with ``N_()`` (or built
with ``msg()``) so that Babel's extractor finds them; the Polish catalogues are
``diag/locale/pl/LC_MESSAGES/*.po``, read at run time (no compile step to forget).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LANGS = ("en", "pl")
DEFAULT_LANG = "en"
LOCALE_DIR = Path(__file__).parent / "locale"
# An argument longer than this many characters is cut when rendered: arguments carry text from
# outside (banners, exception texts, DNS answers) and one hostile reply must not make a
# multi-megabyte summary line.
MAX_ARG_CHARS = 1000
_MAX_INT = 10**MAX_ARG_CHARS


def N_(text: str) -> str:
    """Marks a template for extraction without translating it."""
    return text


@dataclass(frozen=True)
class Message:
    text: str
    args: Mapping[str, Any] = field(default_factory=dict)

    def render(self, lang: str = DEFAULT_LANG) -> str:
        return render(self, lang)

    def to_json(self) -> dict[str, Any]:
        """``{"text", "args"}``; an argument that is itself a message nests as ``{"$msg": ...}``
        so that it re-renders in another language after a round trip."""
        return {"text": self.text, "args": {k: _arg_to_json(v) for k, v in self.args.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Message:
        args = data.get("args") or {}
        if not isinstance(args, Mapping):
            args = {}  # a damaged saved run: the template still shows
        return cls(str(data["text"]), {str(k): _arg_from_json(v) for k, v in args.items()})


def _arg_to_json(value: Any) -> Any:
    return {"$msg": value.to_json()} if isinstance(value, Message) else value


def _arg_from_json(value: Any) -> Any:
    if (
        isinstance(value, Mapping)
        and set(value) == {"$msg"}
        and isinstance(value["$msg"], Mapping)
        # Without a template it is no message (a damaged or foreign run file): kept as data.
        and isinstance(value["$msg"].get("text"), str)
    ):
        return Message.from_json(value["$msg"])
    return value


def msg(text: str, **args: Any) -> Message:
    """A message from a template and its arguments: ``msg("{n} devices", n=3)``."""
    return Message(text, args)


@functools.cache
def catalog(lang: str) -> Mapping[str, str]:
    """msgid -> translation for ``lang``; empty for English or an unknown language.

    Every ``*.po`` file in ``locale/<lang>/LC_MESSAGES/`` is merged: each area of the code (checks,
    diagnosis, reports, tui, monitor, lab) keeps its own catalogue so they can evolve apart.
    """
    if lang == DEFAULT_LANG:
        return {}
    from babel.messages.pofile import read_po

    out: dict[str, str] = {}
    for po in sorted((LOCALE_DIR / lang / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as fh:
            cat = read_po(fh, locale=lang)
        for m in cat:
            if isinstance(m.id, str) and m.id and isinstance(m.string, str) and m.string:
                if not m.fuzzy:
                    out[m.id] = m.string
    return out


def gettext(text: str, lang: str = DEFAULT_LANG) -> str:
    """The translation of one template, or the English template when there is none."""
    return catalog(lang).get(text, text)


def _render_arg(value: Any, lang: str) -> Any:
    if isinstance(value, Message):
        return value.render(lang)
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            # int(nan) raises: a non-finite measurement shows as "nan"/"inf", never a crash.
            return str(value)
        # Two significant decimals are enough for any measurement we show; avoid 0.30000000004.
        return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.0f}"
    if isinstance(value, int) and abs(value) >= _MAX_INT:
        # str() of an int beyond sys.int_info's digit limit raises ValueError (Python 3.11+).
        return "…"
    if isinstance(value, int | float):
        return value
    if not isinstance(value, str):
        # A list or table from outside: its text, bounded like any string (a list holding a
        # huge banner is as long as the banner).
        try:
            value = str(value)
        except ValueError:  # an int beyond the digit limit somewhere inside
            return "…"
    if len(value) > MAX_ARG_CHARS:
        return value[: MAX_ARG_CHARS - 1] + "…"
    return value


def render(message: Message | str, lang: str = DEFAULT_LANG) -> str:
    """The message in ``lang``; a broken template never raises, it shows the raw text."""
    if isinstance(message, str):
        return gettext(message, lang)
    template = gettext(message.text, lang)
    args = {k: _render_arg(v, lang) for k, v in message.args.items()}
    # TypeError/AttributeError: a template's "{x[0]}" or "{x.y}" on an argument of another type
    # (arguments come from outside; a saved run may carry anything).
    broken = (KeyError, IndexError, ValueError, TypeError, AttributeError)
    try:
        return template.format(**args)
    except broken:
        try:
            return message.text.format(**args)
        except broken:
            return message.text


def normalize_lang(lang: str | None) -> str:
    if not lang:
        return DEFAULT_LANG
    base = lang.split(".")[0].split("_")[0].lower()
    return base if base in LANGS else DEFAULT_LANG
