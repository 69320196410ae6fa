"""A third-party-style check for the monitor tests: facts read from a JSON file, no network.

Registered through its own dist-info (entry point group ``diag.checks``), exactly as an installed
plugin would be. ``DIAG_FAKE_STATES`` names a JSON file: ``{device: reachable}``, or
``{device: {"reachable": bool, "platform": bool}, "@internet": bool}``; ``"@skip": true`` makes
the check skip (it measured nothing), ``"@raise": true`` makes it raise.
"""

from __future__ import annotations

import json
import os

from diag.checks.base import Check, Context
from diag.i18n import msg
from diag.model import Fact, Outcome, Site


class FakeHeartbeat(Check):
    id = "fakehb"
    title = msg("Fake heartbeat (tests)")

    def targets(self, site: Site) -> tuple[str, ...]:
        return tuple(d.name for d in site.devices)

    async def run(self, ctx: Context) -> Outcome:
        with open(os.environ["DIAG_FAKE_STATES"], encoding="utf-8") as fh:
            states = json.load(fh)
        if states.get("@skip"):
            return Outcome("skip", msg("nothing to test"))
        if states.get("@raise"):
            raise RuntimeError("fake check broke")
        facts = []
        down = 0
        for t in ctx.targets:
            st = states.get(t, True)
            reach = st if isinstance(st, bool) else st.get("reachable", True)
            facts.append(Fact("device.reachable", bool(reach), target=t))
            if isinstance(st, dict) and "platform" in st:
                facts.append(Fact("device.platform_online", bool(st["platform"]), target=t))
            down += not reach
        if "@internet" in states:
            facts.append(Fact("wan.gateway_reachable", True))
            facts.append(Fact("wan.internet_reachable", bool(states["@internet"])))
        return Outcome("fail" if down else "ok", msg("{n} down", n=down), facts=tuple(facts))
