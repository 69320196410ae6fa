"""The report's "phone" section: what the customer's phone measured, and its phone-side causes.

A view for ``templates/sections/phone.html``: plain strings in the report's language, every
measurement the browser could not make shown as "not measured", never as a value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from diag import vocab
from diag.diagnosis.facts import Facts
from diag.i18n import N_
from diag.model import Run

NOT_MEASURED = N_("not measured")


def phone_view(
    run: Run, facts: Facts, cause_view: Callable[[Any], dict[str, Any]], t: Callable[..., str]
) -> dict[str, Any]:
    check = next((c for c in run.checks if c.check_id == "phone"), None)
    measured = check is not None and check.status in ("ok", "warn")
    causes: list[dict[str, Any]] = []
    seen: set[str] = set()
    pool = list(run.site_causes) + [c for v in run.devices for c in v.causes]
    for c in pool:
        if c.id != "phone-side" or c.confidence < 0.5:
            continue
        view = cause_view(c)
        key = view["detail"] + "|".join(view["fix"])
        if key not in seen:
            seen.add(key)
            # Measured findings are what to do; only the unmeasured rest is a checklist.
            view["checklist"] = not any(e["key"].startswith("phone.") for e in view["evidence"])
            causes.append(view)
    if not measured:
        return {"measured": False, "rows": [], "causes": causes}

    def v(key: str) -> Any:
        return facts.value(key)

    def yes_no(value: Any, yes: str, no: str) -> str:
        return t(NOT_MEASURED) if value is None else t(yes) if value else t(no)

    rows: list[tuple[str, str]] = []
    on_lan = v("phone.on_site_lan")
    where = yes_no(on_lan, N_("on the cameras' network"), N_("on another network"))
    rows.append(
        (t(N_("Phone address (as the laptop saw it)")), f"{v('phone.address') or '?'}, {where}")
    )
    pct = v("phone.battery_pct")
    if pct is None:
        battery = t(N_("not measured (the browser has no battery API, or the page was not HTTPS)"))
    else:
        charging = yes_no(v("phone.battery_charging"), N_("charging"), N_("not charging"))
        battery = f"{pct:g} %, {charging}"
    rows.append((t(N_("Battery")), battery))
    rows.append((t(N_("Data saver")), yes_no(v("phone.save_data"), N_("on"), N_("off"))))
    eff = v("phone.effective_type")
    if eff is not None:
        parts = [str(eff)]
        if v("phone.downlink_mbps") is not None:
            parts.append(f"{v('phone.downlink_mbps'):g} Mbit/s")
        if v("phone.rtt_ms") is not None:
            parts.append(f"{v('phone.rtt_ms'):g} ms")
        rows.append((t(N_("Connection (browser's estimate)")), ", ".join(parts)))
    else:
        rows.append((t(N_("Connection (browser's estimate)")), t(NOT_MEASURED)))
    rows.append(
        (
            t(N_("UDP from the phone (STUN)")),
            yes_no(v("phone.udp_blocked"), vocab.PASS_WORD["blocked"], vocab.PASS_WORD["works"]),
        )
    )
    mapping = {
        "independent": N_("endpoint-independent"),
        "dependent": N_("symmetric (new port per server)"),
    }
    m = v("phone.nat_mapping")
    public = v("phone.public_ip") or "?"
    if v("phone.udp_blocked") is False:
        rows.append(
            (
                t(N_("Public address and NAT mapping")),
                f"{public}, {t(mapping[m]) if m in mapping else t(NOT_MEASURED)}",
            )
        )
    for f in facts.all("phone.endpoint"):
        val = f.value if isinstance(f.value, dict) else {}
        outcome = {
            "ok": N_("reached"),
            "error": N_("refused or failed"),
            "timeout": N_("no answer"),
        }
        rows.append(
            (
                f"{t(N_('Platform'))} {f.target}",
                f"{t(outcome.get(str(val.get('outcome')), NOT_MEASURED))}, {val.get('ms', '?')} ms",
            )
        )
    off = v("phone.clock_offset_s")
    if off is not None:
        rows.append((t(N_("Clock offset (phone - laptop)")), f"{off:+.1f} s"))
    if v("phone.user_agent"):
        rows.append((t(N_("Browser")), str(v("phone.user_agent"))))
    return {
        "measured": True,
        "rows": [{"label": a, "value": b} for a, b in rows],
        "causes": causes,
    }
