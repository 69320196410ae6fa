"""What the dashboard shows, as pure functions: words, glyphs, colours and the site header's facts.

Nothing here touches Textual's widgets, so the wording and the site summary are tested without a
screen. Every word goes through ``diag.i18n``; colour is never the only carrier of meaning: each
icon colour comes with a glyph or a tag that reads the same on a monochrome terminal (NO_COLOR).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from diag import vocab
from diag.diagnosis.facts import Facts
from diag.i18n import N_, Message, format_number, msg, render
from diag.model import (
    AddedVia,
    CheckResult,
    Fact,
    JSONValue,
    Site,
    Thresholds,
)
from diag.reports.terminal import printable
from diag.vocab import Level as Level

Phase = Literal["queued", "running", "done", "stopped"]

# The one vocabulary (diag/vocab.py), under the names the widgets use.
VIA_COLOUR: Mapping[AddedVia, str] = vocab.ICON_COLOURS
GREY = vocab.ICON_GREY
VIA_TAG: Mapping[AddedVia, str] = vocab.VIA_TAG
VIA_MEANING: Mapping[AddedVia, str] = vocab.VIA_MEANING
ICON_GLYPH = vocab.ICON_GLYPH
GREY_MEANING = vocab.GREY_MEANING
STATE_GLYPH = vocab.STATE_GLYPH
STATE_WORD = vocab.STATE_WORD
STATE_TAG = vocab.STATE_TAG
STATE_STYLE = vocab.STATE_STYLE
STATUS_WORD = vocab.STATUS_WORD
STATUS_GLYPH = vocab.STATUS_GLYPH
STATUS_STYLE = vocab.STATUS_STYLE
PHASE_WORD: Mapping[Phase, str] = {
    "queued": N_("queued"),
    "running": N_("running"),
    "done": N_("done"),
    "stopped": N_("stopped"),
}
LEVEL_STYLE = vocab.LEVEL_STYLE
# Braille spinner: one cell wide in every terminal font that SSH clients commonly use.
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def t(text: str | Message, lang: str) -> str:
    """Shorthand used by every widget: the text in ``lang``, safe for the terminal (``clean``)."""
    return clean(render(text, lang))


def clean(text: str) -> str:
    """``text`` with its line breaks kept and every other control shown as its escape.

    Device names, banners and DNS answers reach the screen inside messages; an ESC would start a
    terminal escape sequence and a bidi override would reorder the line (the CLI's ``printable``).
    """
    return "\n".join(printable(line) for line in text.split("\n"))


def fmt_number(value: float, lang: str = "en") -> str:
    """A measurement with as many decimals as it deserves (12, 1.5, 0.25), in ``lang``'s format
    (Polish: ``1,5``); from 100 on, whole numbers."""
    if not math.isfinite(value):
        return str(value)  # int(nan) raises: a broken measurement reads "nan" / "inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return format_number(float(value), lang, 0 if abs(value) >= 100 else 2)


def shown(value: float) -> float:
    """A measurement rounded as ``fmt_number`` shows it, left a number so that the message
    renders it in the reader's language (``1,5`` in Polish)."""
    if not math.isfinite(value) or abs(value) >= 100:
        return float(round(value)) if math.isfinite(value) else value
    return round(value, 2)


def _plain(value: JSONValue, lang: str) -> str:
    """A value as a person reads it: yes/no, lists joined by commas, ``key: value; ...``."""
    if isinstance(value, bool):
        return t(N_("yes") if value else N_("no"), lang)
    if value is None:
        return "—"
    if isinstance(value, int) and abs(value) >= 10**15:
        # float() of a huge int overflows and str() beyond ~4300 digits raises; say it is huge.
        return ">1e15" if value > 0 else "<-1e15"
    if isinstance(value, int | float):
        return fmt_number(float(value), lang)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ", ".join(_plain(v, lang) for v in value) or "—"
    return "; ".join(f"{k}: {_plain(v, lang)}" for k, v in sorted(value.items())) or "—"


def fmt_value(value: JSONValue, unit: str = "", limit: int = 80, lang: str = "en") -> str:
    """A fact's value with its unit: yes/no, numbers, lists and ``key: value`` pairs as text.

    The same shapes as the HTML report's evidence (no JSON brackets or quotes for a person to
    read past); an empty list or mapping reads "—". Cut to ``limit`` characters.
    """
    text = _plain(value, lang)
    if unit and not isinstance(value, bool) and text != "—":
        text = f"{text} {unit}" if unit != "%" else f"{text}%"
    # Values come from the network (banners, DNS answers): bound them and strip control chars.
    text = "".join(ch if ch.isprintable() else "�" for ch in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fmt_fact(f: Fact, lang: str, limit: int = 80) -> str:
    """``key [target] = value unit``: one line of evidence."""
    value = fmt_value(f.value, f.unit, limit, lang)
    where = f" [{printable(f.target)}]" if f.target else ""
    return f"{printable(f.key)}{where} = {value}"


def fmt_seconds(seconds: float, lang: str = "en") -> str:
    if seconds >= 100:
        return f"{seconds:.0f} s"
    return f"{format_number(float(seconds), lang, 1, fixed=True)} s"


def progress_bar(fraction: float, width: int = 8) -> str:
    """A bar of ``width`` cells for 0..1; ``#``/``.`` would do too, blocks read better."""
    fraction = max(0.0, min(1.0, fraction))
    full = round(fraction * width)
    return "█" * full + "░" * (width - full)


@dataclass(frozen=True)
class HeaderItem:
    """One cell of the site header: a label, the value in words, how good it is."""

    label: str
    value: Message
    level: Level


def _first(facts: Facts, key: str, target: str | None = "") -> Fact | None:
    if target is None:
        found = facts.all(key)
        return found[0] if found else None
    return facts.get(key, target)


def _num(f: Fact | None) -> float | None:
    if f is None or isinstance(f.value, bool) or not isinstance(f.value, int | float):
        return None
    return float(f.value)


def _pending(running: bool) -> tuple[Message, Level]:
    return (msg("checking…") if running else msg("not checked")), "unknown"


def nat_item(facts: Facts, running: bool) -> HeaderItem:
    label = N_("NAT")
    blocked = _first(facts, "nat.udp_blocked")
    if blocked is not None and blocked.value is True:
        return HeaderItem(label, msg("UDP blocked"), "bad")
    name = _first(facts, "nat.rfc3489")
    mapping = _first(facts, "nat.mapping")
    filtering = _first(facts, "nat.filtering")
    present = _first(facts, "nat.present")
    parts: list[Message | str] = []
    level: Level = "ok"
    if present is not None and present.value is False:
        parts.append(msg("none (public address)"))
    elif name is not None and isinstance(name.value, str):
        parts.append(name.value)
    if mapping is not None or filtering is not None:
        mf = "/".join(str(f.value) for f in (mapping, filtering) if f is not None)
        parts.append(f"({mf})")
    if mapping is not None and mapping.value in ("ADM", "APDM"):
        level = "bad"
    cgnat = _first(facts, "nat.cgnat")
    if cgnat is not None and cgnat.value is True:
        parts.append("· CGNAT")
        level = "bad"
    double = _first(facts, "nat.double_nat")
    if double is not None and double.value is True:
        parts.append(msg("· double NAT"))
        level = max_level(level, "warn")
    if not parts:
        value, lvl = _pending(running)
        return HeaderItem(label, value, lvl)
    return HeaderItem(label, joined(*parts), level)


def joined(*parts: Message | str) -> Message:
    """Parts (messages are translated when rendered, plain strings are kept) joined by spaces."""
    keys = [f"p{i}" for i in range(len(parts))]
    return Message(" ".join("{" + k + "}" for k in keys), dict(zip(keys, parts, strict=True)))


def dns_item(facts: Facts, running: bool, th: Thresholds) -> HeaderItem:
    label = N_("DNS")
    # One answer per name: two checks may both report a name, count it once.
    rcodes = list({f.target: f for f in reversed(facts.all("dns.site.rcode"))}.values())
    if not rcodes:
        value, lvl = _pending(running)
        return HeaderItem(label, value, lvl)
    ok = sum(1 for f in rcodes if f.value == "NOERROR")
    times = [v for v in (_num(f) for f in facts.all("dns.site.time_ms")) if v is not None]
    slowest = max(times) if times else None
    wrong = any(f.value is True for f in facts.all("dns.mismatch"))
    level: Level = "ok" if ok == len(rcodes) else "bad"
    if wrong:
        return HeaderItem(
            label, msg("wrong answers ({ok}/{n} resolved)", ok=ok, n=len(rcodes)), "bad"
        )
    if ok < len(rcodes):
        failed = next(str(f.value) for f in rcodes if f.value != "NOERROR")
        return HeaderItem(
            label, msg("{rcode} ({ok}/{n} resolved)", rcode=failed, ok=ok, n=len(rcodes)), level
        )
    if slowest is not None and slowest > th.dns_ms:
        level = "warn"
    if slowest is None:
        return HeaderItem(label, msg("ok {ok}/{n}", ok=ok, n=len(rcodes)), level)
    return HeaderItem(
        label, msg("ok {ok}/{n}, {ms} ms", ok=ok, n=len(rcodes), ms=shown(slowest)), level
    )


def wan_item(facts: Facts, running: bool, th: Thresholds) -> HeaderItem:
    label = N_("WAN")
    reach = _first(facts, "wan.internet_reachable")
    gw = _first(facts, "wan.gateway_reachable")
    captive = _first(facts, "wan.captive_portal")
    if gw is not None and gw.value is False:
        return HeaderItem(label, msg("gateway does not answer"), "bad")
    if reach is not None and reach.value is False:
        return HeaderItem(label, msg("internet down"), "bad")
    if captive is not None and captive.value is True:
        return HeaderItem(label, msg("captive portal"), "bad")
    ip = _first(facts, "wan.public_ip")
    loss = _num(_first(facts, "wan.loss_pct"))
    rtt = _num(_first(facts, "wan.rtt_ms"))
    if reach is None and ip is None and loss is None and rtt is None:
        value, lvl = _pending(running)
        return HeaderItem(label, value, lvl)
    parts: list[Message | str] = []
    if ip is not None and isinstance(ip.value, str):
        parts.append(ip.value)
    level: Level = "ok"
    if loss is not None:
        parts.append(Message("{v}%", {"v": shown(loss)}))
        if loss > th.loss_pct:
            level = "warn"
    if rtt is not None:
        parts.append(Message("{v} ms", {"v": shown(rtt)}))
        if rtt > th.rtt_ms:
            level = "warn"
    if not parts:
        return HeaderItem(label, msg("up"), level)
    return HeaderItem(label, joined(*parts), level)


def bandwidth_item(facts: Facts, running: bool) -> HeaderItem:
    label = N_("Upload")
    up = _num(_first(facts, "bw.upload_mbps"))
    need = _num(_first(facts, "bw.needed_upload_mbps"))
    down = _num(_first(facts, "bw.download_mbps"))
    if up is None and down is None:
        value, lvl = _pending(running)
        return HeaderItem(label, value, lvl)
    level: Level = "ok"
    if up is not None and need is not None and up < need:
        level = "bad"
    up_s: float | str = shown(up) if up is not None else "?"
    if need is not None:
        text = msg("{up} Mbit/s, streams need {need}", up=up_s, need=shown(need))
    else:
        text = msg("{up} Mbit/s", up=up_s)
    if down is not None:
        text = msg("{up}; down {down}", up=text, down=shown(down))
    return HeaderItem(label, text, level)


def max_level(a: Level, b: Level) -> Level:
    return vocab.worse(a, b)


# Which check measures each header cell: when it ended without the facts, say how it ended.
HEADER_CHECK = {N_("NAT"): "stun", N_("DNS"): "dns", N_("WAN"): "wan", N_("Upload"): "bandwidth"}


def _unmeasured(item: HeaderItem, results: Iterable[CheckResult]) -> HeaderItem:
    """``not checked`` made precise: the check failed, was skipped, or is not installed."""
    if item.level != "unknown":
        return item
    res = next((r for r in results if r.check_id == HEADER_CHECK.get(item.label)), None)
    if res is None:
        return item  # not finished (checking…) or not in this run (not checked)
    if res.status == "skip":
        return HeaderItem(item.label, msg("skipped: {why}", why=res.summary), "unknown")
    if res.status in ("fail", "error"):
        return HeaderItem(item.label, msg("check failed"), "bad")
    return HeaderItem(item.label, msg("not checked"), "unknown")


def site_summary(
    site: Site, results: Iterable[CheckResult], running: bool = False
) -> tuple[HeaderItem, ...]:
    """The site header's four cells from the facts the checks reported (docs/facts.md)."""
    results = list(results)
    facts = Facts(results)
    items = (
        nat_item(facts, running),
        dns_item(facts, running, site.thresholds),
        wan_item(facts, running, site.thresholds),
        bandwidth_item(facts, running),
    )
    return tuple(_unmeasured(i, results) for i in items)
