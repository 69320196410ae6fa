"""The path picture as text for the dashboard: the same model as the report's SVG
(``diag.reports.path``), drawn top-down from the platform to the devices in a few lines.

Each element carries a glyph (✓ ! ✗ ?) as well as its colour, so it reads on a monochrome
terminal; the places the problem is get a ``⚠`` and bold text, their marks under them.
"""

from __future__ import annotations

from rich.text import Text

from diag import vocab
from diag.i18n import N_, Message
from diag.reports.path import Link, Node, PathModel
from diag.tui.present import clean, t

TITLE = N_("Where the problem is")
HINT = N_("✓ fine  ! marginal  ✗ problem  ? not measured  ⚠ the problem is here")


def _node(
    out: Text, node: Node, lang: str, hot: set[str], indent: str, cont: str | None = None
) -> None:
    style = vocab.LEVEL_STYLE[node.level]
    out.append(indent)
    out.append(("⚠ " if node.id in hot else "  "), style="bold red")
    out.append(vocab.LEVEL_GLYPH[node.level] + " ", style=style)
    label = clean(node.label) if node.kind == "device" else t(node.label, lang)
    out.append(label, style="bold" if node.id in hot else "")
    ok = [m for m in node.marks if m.level == "ok"]
    if node.detail:
        out.append(f"  {clean(node.detail)}", style="dim")
    for m in ok:
        out.append(f"  {t(m.text, lang)}", style="dim")
    out.append("\n")
    under = indent if cont is None else cont
    for m in node.marks:
        if m.level != "ok":
            out.append(f"{under}      {t(m.text, lang)}\n", style=vocab.LEVEL_STYLE[m.level])


def _link(out: Text, link: Link | None, lang: str, hot: set[str], indent: str, bar: str) -> None:
    if link is None:
        return
    style = vocab.LEVEL_STYLE[link.level]
    words = [t(n, lang) for n in link.numbers]
    out.append(f"{indent}{bar} ", style=style)
    if link.id in hot:
        out.append("⚠ ", style="bold red")
    out.append(" · ".join(words), style="dim" if not link.marks else "")
    out.append("\n")
    for m in link.marks:
        out.append(f"{indent}{bar}   {t(m.text, lang)}\n", style=vocab.LEVEL_STYLE[m.level])


def path_text(model: PathModel, lang: str) -> Text:
    """The path, top-down: platform servers / STUN / DNS, the operator, the router, the switch
    with the laptop, and each device on its own branch with the numbers of its link."""
    hot = set(model.culprits())
    out = Text()
    out.append(t(TITLE, lang) + "\n", style="bold underline")
    for nid in ("platform", "stun", "dns"):
        node = model.node(nid)
        if node is not None:
            _node(out, node, lang, hot, "")
            _link(out, model.link("operator", nid), lang, hot, "     ", "│")
    for nid, below in (("operator", "router"), ("router", "switch")):
        node = model.node(nid)
        if node is not None:
            _node(out, node, lang, hot, "")
            _link(out, model.link(nid, below), lang, hot, "     ", "│")
    switch, laptop = model.node("switch"), model.node("laptop")
    if switch is not None:
        _node(out, switch, lang, hot, "")
    if laptop is not None:
        _node(out, laptop, lang, hot, "     ├─", "     │ ")
    devices = model.devices()
    for i, d in enumerate(devices):
        last = i == len(devices) - 1 and not model.hidden_devices
        branch = "     └─" if last else "     ├─"
        _node(out, d, lang, hot, branch, "      " if last else "     │ ")
        _link(
            out,
            model.link("switch", d.id),
            lang,
            hot,
            "     " + (" " if last else "│"),
            "  ",
        )
    if model.hidden_devices:
        more = Message(
            "… and {n, plural, one {# more device} other {# more devices}}",
            {"n": model.hidden_devices},
        )
        out.append(f"     └─ {t(more, lang)}\n", style="dim")
    out.append("\n" + t(HINT, lang), style="dim")
    return out
