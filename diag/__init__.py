"""diag: connectivity diagnostics for IP cameras and recorders on P2P cloud platforms.

The public API: load a site, list the checks, plan and run them, and render the results.
"""

from __future__ import annotations

__version__ = "0.1.0"

from diag.checks.base import Check, Context, Registry, load_checks
from diag.config import ConfigError, load_site, parse_site
from diag.i18n import Message, msg
from diag.model import (
    Cause,
    CheckResult,
    Device,
    Fact,
    Metric,
    Outcome,
    Profile,
    Run,
    Site,
    Verdict,
)
from diag.runner import Plan, Runner, execute, plan

__all__ = [
    "Cause",
    "Check",
    "CheckResult",
    "ConfigError",
    "Context",
    "Device",
    "Fact",
    "Message",
    "Metric",
    "Outcome",
    "Plan",
    "Profile",
    "Registry",
    "Run",
    "Runner",
    "Site",
    "Verdict",
    "__version__",
    "execute",
    "load_checks",
    "load_site",
    "msg",
    "parse_site",
    "plan",
]
