"""Words shown to people, in English and Polish: messages as data, rendered late.

A ``Message`` carries an English template with ``{named}`` placeholders and its arguments. Checks,
rules and reports create messages; only the layer that shows them to a person renders them in a
language, so a saved run can be re-rendered in Polish. Templates are marked with ``N_()`` (or built
with ``msg()``) so that Babel's extractor finds them; the Polish catalogues are
``diag/locale/pl/LC_MESSAGES/*.po``, read at run time (no compile step to forget).

Numbers, dates and plurals follow the language's CLDR rules through Babel: ``1.5`` reads ``1,5``
in Polish, and a template may choose words by count with an ICU-style block,
``{n, plural, one {# device} other {# devices}}`` (Polish: ``one``/``few``/``many``/``other``,
so 1 urządzenie, 2 urządzenia, 5 urządzeń); ``#`` is the number, ``=0 {...}`` an exact match.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import math
import os
import re
import string
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


# CLDR's minimumGroupingDigits: Polish writes 1234 but 12 345 (Babel groups from four digits).
_MIN_GROUPING = {"pl": 2}
# Decimals shown for a measurement: two are enough for any we show (and avoid 0.30000000004).
DECIMALS = 2


def format_number(
    value: float, lang: str = DEFAULT_LANG, decimals: int = DECIMALS, fixed: bool = False
) -> str:
    """A number in ``lang``'s CLDR format: decimal comma and grouping in Polish (``12 345,5``).

    Up to ``decimals`` decimals (exactly that many when ``fixed``: a column of durations).
    Integers (counts, ports, codes, years) are written plainly: grouping a port reads wrong.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return "…" if abs(value) >= _MAX_INT else str(value)
    if not math.isfinite(value):
        return str(value)  # int(nan) raises: a broken measurement reads "nan" / "inf"
    if abs(value) >= 1e15:
        # No measurement is this big (a hostile or broken value): Babel's decimal quantizing
        # fails on it, and nobody reads the digits anyway.
        return f"{value:.3g}"
    from babel.numbers import format_decimal

    lang = normalize_lang(lang)
    rounded = round(value, decimals)
    grouped = abs(rounded) >= 10 ** (3 + _MIN_GROUPING.get(lang, 1) - 1)
    digit = "0" if fixed else "#"
    pattern = ("#,##0" if grouped else "0") + ("." + digit * decimals if decimals else "")
    text = str(format_decimal(rounded, format=pattern, locale=lang))
    return "0" if text in ("-0", "−0") else text


# A short moment for the dashboard's status line: Polish day-first with dots, English ISO order
# (CLDR's short English form is the US month-first one, which misleads in Europe).
_SHORT_MOMENT = {"pl": "dd.MM.y, HH:mm", "en": "y-MM-dd HH:mm"}


def format_datetime(value: dt.datetime, lang: str = DEFAULT_LANG, short: bool = False) -> str:
    """A moment as people of ``lang`` write it, in UTC: ``25 listopada 2026, 09:30:00 UTC``
    (``short``: ``25.11.2026, 09:30``)."""
    from babel.dates import format_datetime as babel_datetime

    lang = normalize_lang(lang)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    utc = value.astimezone(dt.UTC)
    if short:
        return str(babel_datetime(utc, _SHORT_MOMENT[lang], tzinfo=dt.UTC, locale=lang))
    text = babel_datetime(utc, "d MMMM y, HH:mm:ss", tzinfo=dt.UTC, locale=lang)
    return f"{text} UTC"


def format_duration(seconds: float, lang: str = DEFAULT_LANG) -> str:
    """A duration: ``3,5 s`` below two minutes, ``2 min 5 s`` above (CLDR's short units)."""
    if not isinstance(seconds, int | float) or not math.isfinite(seconds):
        return str(seconds)
    if abs(seconds) < 120:
        return f"{format_number(float(seconds), lang, 1, fixed=True)} s"
    whole = round(seconds)
    minutes, rest = divmod(whole, 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


@functools.cache
def _plural_rule(lang: str) -> Any:
    from babel import Locale

    return Locale.parse(lang).plural_form


def plural_tags(lang: str) -> frozenset[str]:
    """The CLDR plural categories ``lang`` distinguishes (Polish: one, few, many, other)."""
    return frozenset(_plural_rule(normalize_lang(lang)).tags) | {"other"}


def plural_category(value: Any, lang: str = DEFAULT_LANG) -> str:
    """CLDR plural category of a number in ``lang``: one, few, many or other."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "other"
    if isinstance(value, float) and not math.isfinite(value):
        return "other"
    if isinstance(value, float) and value == int(value) and abs(value) < 1e15:
        value = int(value)
    return str(_plural_rule(normalize_lang(lang))(value))


_PLURAL_HEAD = re.compile(r"\{\s*(\w+)\s*,\s*plural\s*,")


def _plural_blocks(template: str) -> list[tuple[int, int, str, dict[str, str]]]:
    """Each ``{name, plural, cat {text} ...}`` block: (start, end, name, forms); ValueError when
    a block is not closed."""
    out = []
    pos = 0
    while (m := _PLURAL_HEAD.search(template, pos)) is not None:
        i, forms = m.end(), {}
        while True:
            while i < len(template) and template[i].isspace():
                i += 1
            if i >= len(template):
                raise ValueError("unclosed plural block")
            if template[i] == "}":
                i += 1
                break
            brace = template.find("{", i)
            if brace < 0:
                raise ValueError("plural form without text")
            category = template[i:brace].strip()
            depth, j = 0, brace
            while j < len(template):
                depth += {"{": 1, "}": -1}.get(template[j], 0)
                if depth == 0:
                    break
                j += 1
            if depth:
                raise ValueError("unclosed plural form")
            forms[category] = template[brace + 1 : j]
            i = j + 1
        out.append((m.start(), i, m.group(1), forms))
        pos = i
    return out


def _apply_plurals(template: str, args: Mapping[str, Any], lang: str) -> str:
    blocks = _plural_blocks(template)
    if not blocks:
        return template
    parts, pos = [], 0
    for start, end, name, forms in blocks:
        value = args[name]  # KeyError: a missing argument, as str.format would say
        exact = f"={value}" if isinstance(value, int) and not isinstance(value, bool) else ""
        text = forms.get(exact) or forms.get(plural_category(value, lang)) or forms.get("other")
        if text is None:
            raise ValueError(f"no 'other' form for {name}")
        number = format_number(value, lang) if isinstance(value, int | float) else str(value)
        parts += [template[pos:start], text.replace("#", number.replace("{", "{{"))]
        pos = end
    parts.append(template[pos:])
    return "".join(parts)


def fields(template: str) -> set[str]:
    """The argument names a template uses, plural blocks included (for the catalogue tests)."""
    names: set[str] = set()
    flat, pos = [], 0
    for start, end, name, forms in _plural_blocks(template):
        names.add(name)
        flat += [template[pos:start], *(f.replace("#", "") for f in forms.values())]
        pos = end
    flat.append(template[pos:])
    for _, f, _, _ in string.Formatter().parse("".join(flat)):
        if f:
            names.add(f)
    return names


def _render_arg(value: Any, lang: str) -> Any:
    if isinstance(value, Message):
        return value.render(lang)
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return format_number(value, lang)
    if isinstance(value, dt.datetime):
        return format_datetime(value, lang)
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


# A width or precision in a format spec of four digits or more ("{a:>999999999}" in a saved
# run's template) would build a string that many characters long (1e9: a gigabyte).
_HUGE_SPEC = re.compile(r"\d{4,}")


def _format(template: str, message: Message, lang: str, args: Mapping[str, Any]) -> str:
    text = _apply_plurals(template, message.args, lang)
    for _, _, spec, _ in string.Formatter().parse(text):
        # "{" in a spec: a width taken from an argument ("{a:{w}}"), unbounded the same way.
        if spec and ("{" in spec or _HUGE_SPEC.search(spec)):
            raise ValueError(f"unbounded format spec {spec[:20]!r}")
    return text.format(**args)


def render(message: Message | str, lang: str = DEFAULT_LANG) -> str:
    """The message in ``lang``; a broken template never raises, it shows the raw text."""
    if isinstance(message, str):
        return gettext(message, lang)
    template = gettext(message.text, lang)
    args = {k: _render_arg(v, lang) for k, v in message.args.items()}
    # TypeError/AttributeError: a template's "{x[0]}" or "{x.y}" on an argument of another type
    # (arguments come from outside; a saved run may carry anything). OverflowError: a float spec
    # ("{x:.2f}") on an int beyond a float's range (above ~1.8e308, below _MAX_INT) converts it.
    broken = (KeyError, IndexError, ValueError, TypeError, AttributeError, OverflowError)
    try:
        return _format(template, message, lang, args)
    except broken:
        try:
            return _format(message.text, message, DEFAULT_LANG, args)
        except broken:
            return message.text


def normalize_lang(lang: str | None) -> str:
    if not lang:
        return DEFAULT_LANG
    base = lang.split(".")[0].split("_")[0].lower()
    return base if base in LANGS else DEFAULT_LANG


# The language of the command line being parsed (``diag.cli.argparse_words``): argument types read
# it to word their own errors ("'x' is not a number") in the language argparse's are worded in.
# Here, not in diag.cli: ``python -m diag.cli`` runs that module as __main__, a second copy.
PARSE_LANG: contextvars.ContextVar[str] = contextvars.ContextVar("PARSE_LANG", default=DEFAULT_LANG)


def person_lang(environ: Mapping[str, str] | None = None) -> str:
    """The language of the person at the terminal when no ``--lang`` says: ``DIAG_LANG``, then
    the locale (``LC_ALL``, ``LC_MESSAGES``, ``LANG``, in POSIX order: the first one set wins)."""
    env = os.environ if environ is None else environ
    for var in ("DIAG_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(var)
        if value:
            return normalize_lang(value)
    return DEFAULT_LANG
