"""Every message template in diag/ has a Polish translation, with the same placeholders.

Templates are found the way Babel's extractor would find them: string literals passed to ``msg()``,
``N_()`` and ``outcome(status, text)`` in Python, and ``t("...")`` in the report's Jinja2 templates.
A missing translation fails with the list of ids and the files they come from, so whoever added
the string knows which catalogue (``diag/locale/pl/LC_MESSAGES/<area>.po``) to extend.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

import diag
from diag.i18n import LOCALE_DIR, catalog, fields

ROOT = Path(diag.__file__).parent
# function name -> index of the positional argument that is the template
KEYWORDS = {"msg": 0, "N_": 0, "outcome": 1}
TEMPLATE_CALL = re.compile(r"""\bt\(\s*(["'])((?:\\.|(?!\1).)*)\1""")


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def extract() -> dict[str, set[str]]:
    """msgid -> files (relative to the repo) that use it."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in sorted(ROOT.rglob("*.py")):
        rel = str(path.relative_to(ROOT.parent))
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _name(node.func)
            if name not in KEYWORDS:
                continue
            idx = KEYWORDS[name]
            if len(node.args) > idx:
                arg = node.args[idx]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value:
                    found[arg.value].add(f"{rel}:{node.lineno}")
    for path in sorted(ROOT.rglob("templates/**/*.html")):
        rel = str(path.relative_to(ROOT.parent))
        text = path.read_text(encoding="utf-8")
        for m in TEMPLATE_CALL.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            found[m.group(2).encode().decode("unicode_escape")].add(f"{rel}:{line}")
    return found


def _fields(template: str) -> set[str]:
    try:
        return fields(template)  # plural blocks included: {n, plural, one {...} other {...}}
    except ValueError:
        return {"<unparseable>"}


def test_extraction_finds_the_catalogue_and_report_strings() -> None:
    # Guards the extractor itself: if it found nothing, the test below would pass vacuously.
    found = extract()
    assert "Device has no power or its cable is faulty" in found
    assert "Evidence" in found  # from the report template
    assert len(found) > 100


def test_every_message_has_a_polish_translation() -> None:
    pl = catalog("pl")
    missing: dict[str, list[str]] = defaultdict(list)
    for text, where in extract().items():
        if text not in pl:
            for w in sorted(where):
                missing[w.rsplit(":", 1)[0]].append(f"  {w.rsplit(':', 1)[1]}: {text!r}")
    if missing:
        lines = [f"{sum(len(v) for v in missing.values())} messages lack a Polish translation:"]
        for file in sorted(missing):
            lines.append(file)
            lines.extend(sorted(set(missing[file])))
        pytest.fail("\n".join(lines), pytrace=False)


def test_translations_keep_the_placeholders() -> None:
    pl = catalog("pl")
    bad = [
        f"{text!r} -> {pl[text]!r}"
        for text in extract()
        if text in pl and _fields(text) != _fields(pl[text])
    ]
    assert not bad, "placeholders differ:\n" + "\n".join(bad)


def test_catalogues_parse_and_hold_no_fuzzy_entries() -> None:
    from babel.messages.pofile import read_po

    files = sorted((LOCALE_DIR / "pl" / "LC_MESSAGES").glob("*.po"))
    assert files
    for po in files:
        with po.open("rb") as fh:
            cat = read_po(fh, locale="pl")
        fuzzy = [m.id for m in cat if m.id and m.fuzzy]
        assert not fuzzy, f"{po.name}: fuzzy entries are ignored at run time: {fuzzy}"


def test_catalogues_agree_where_they_share_a_message() -> None:
    """All *.po files are merged at run time: one msgid with two translations would make the
    wording depend on file order, so every shared msgid must read the same everywhere."""
    from babel.messages.pofile import read_po

    from diag.i18n import LOCALE_DIR

    seen: dict[str, tuple[str, str]] = {}
    clashes = []
    for po in sorted((LOCALE_DIR / "pl" / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as fh:
            for m in read_po(fh, locale="pl"):
                if not (isinstance(m.id, str) and m.id and isinstance(m.string, str) and m.string):
                    continue
                first = seen.setdefault(m.id, (po.name, m.string))
                if first[1] != m.string:
                    clashes.append(f"{m.id!r}: {first[0]} {first[1]!r} vs {po.name} {m.string!r}")
    assert not clashes, "\n".join(clashes)
