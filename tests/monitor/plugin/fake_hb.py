"""A third-party-style check for the monitor tests: device reachability read from a JSON file.

Registered through its own dist-info (entry point group ``diag.checks``), exactly as an installed
plugin would be; no network at all. ``DIAG_FAKE_STATES`` names a JSON file {device: reachable}.
"""

from __future__ import annotations

import json
import os

from diag.checks.base import Check, Context
from diag.i18n import msg
from diag.model import Fact, Outcome


class FakeHeartbeat(Check):
    id = "fakehb"
    title = msg("Fake heartbeat (tests)")

    def targets(self, site):  # type: ignore[no-untyped-def]
        return tuple(d.name for d in site.devices)

    async def run(self, ctx: Context) -> Outcome:
        with open(os.environ["DIAG_FAKE_STATES"], encoding="utf-8") as fh:
            states = json.load(fh)
        facts = tuple(
            Fact("device.reachable", bool(states.get(t, True)), target=t) for t in ctx.targets
        )
        down = [t for t in ctx.targets if not states.get(t, True)]
        return Outcome("fail" if down else "ok", msg("{n} down", n=len(down)), facts=facts)
