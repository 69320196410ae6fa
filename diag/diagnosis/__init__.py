"""Facts -> causes: per-device verdicts and site-wide causes from the checks' results.

``diagnose()`` is the one entry point; the rules live in ``rules.py`` (data: one ``Rule`` per way a
cause shows), the wording (English, Polish in ``diagnosis.po``) and fix steps of every cause in
``catalog.py``, and ``History`` is what the monitor's history gives the history-based causes.
Third-party rules come through the ``diag.rules`` entry-point group (``load_rules``).
"""

from __future__ import annotations

from diag.diagnosis.engine import diagnose, icon_for, load_rules
from diag.diagnosis.history import History, StaticHistory
from diag.diagnosis.rules import Hit, Rule

__all__ = ["History", "Hit", "Rule", "StaticHistory", "diagnose", "icon_for", "load_rules"]
