"""Facts -> causes: per-device verdicts and site-wide causes from the checks' results.

``diagnose()`` is the one entry point; the rules live in ``rules.py`` and the wording (English and
Polish) of every cause in ``catalog.py``.
"""

from __future__ import annotations

from diag.diagnosis.engine import diagnose

__all__ = ["diagnose"]
