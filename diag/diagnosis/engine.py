"""Turns check results into verdicts (first cut: device state from reachability facts)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from diag.model import Cause, CheckResult, DeviceState, Icon, Site, Verdict


def icon_for(state: DeviceState) -> Icon:
    """The app shows a device grey when it has no connection to it."""
    return "grey" if state == "offline" else "colour"


def diagnose(
    site: Site,
    results: Sequence[CheckResult],
    now: dt.datetime | None = None,
    history: Any = None,
) -> tuple[tuple[Verdict, ...], tuple[Cause, ...]]:
    by_id = {r.check_id: r for r in results}
    hb = by_id.get("heartbeat")
    verdicts = []
    for d in site.devices:
        state: DeviceState = "online"
        if hb is not None:
            reach = hb.fact("device.reachable", d.name)
            if reach is not None and reach.value is False:
                state = "offline"
        verdicts.append(Verdict(d.name, d.kind, d.added_via, state, icon_for(state)))
    return tuple(verdicts), ()
