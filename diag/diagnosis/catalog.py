"""The cause catalogue of SPEC section 2: stable ids and what each means to a person.

Titles are English templates marked for translation; the Polish lives in the gettext catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass

from diag.i18n import N_, Message, msg

Scope = str  # "device" or "site"


@dataclass(frozen=True)
class CauseInfo:
    id: str
    title: str
    scope: Scope
    # True when a laptop on site cannot measure it: shown as a checklist item.
    checklist: bool = False


CATALOG: dict[str, CauseInfo] = {
    c.id: c
    for c in (
        CauseInfo("device-no-power", N_("Device has no power or its cable is faulty"), "device"),
        CauseInfo("device-p2p-disabled", N_("P2P service is switched off on the device"), "device"),
        CauseInfo(
            "device-net-config",
            N_("Device's gateway or DNS is wrong, so it cannot reach the internet"),
            "device",
        ),
        CauseInfo(
            "device-password-changed",
            N_("The password the app holds no longer works"),
            "device",
        ),
        CauseInfo("ip-conflict", N_("Two devices share one IP address"), "device"),
        CauseInfo(
            "router-port-blocking",
            N_("The router or firewall blocks the platform's ports"),
            "site",
        ),
        CauseInfo(
            "vlan-misconfig",
            N_("Device is in a different VLAN than the recorder or gateway"),
            "device",
        ),
        CauseInfo("isp-p2p-blocking", N_("The operator blocks P2P services"), "site"),
        CauseInfo("link-outage", N_("The internet link is down or interrupted"), "site"),
        CauseInfo("low-bandwidth", N_("Upload is too slow for the camera streams"), "site"),
        CauseInfo(
            "wan-loss-latency",
            N_("Loss, latency, jitter or bufferbloat on the internet link"),
            "site",
        ),
        CauseInfo(
            "radio-link-interference",
            N_("A radio bridge or Wi-Fi between the device and the switch loses packets"),
            "device",
        ),
        CauseInfo(
            "data-plan-exhausted",
            N_("The mobile data package is used up or expired"),
            "site",
        ),
        CauseInfo(
            "p2p-server-unavailable",
            N_("The P2P platform's servers are unavailable"),
            "site",
        ),
        CauseInfo(
            "dns-failure",
            N_("The operator's DNS fails or answers wrongly for the platform"),
            "site",
        ),
        CauseInfo(
            "nat-unfriendly",
            N_("The NAT or firewall prevents direct P2P connections"),
            "site",
        ),
        CauseInfo(
            "nat-mapping-expiry",
            N_("The NAT forgets UDP mappings faster than the device's heartbeat"),
            "site",
        ),
        CauseInfo("cgnat", N_("No public IPv4 address at the site (CGNAT or double NAT)"), "site"),
        CauseInfo(
            "ip-access-broken",
            N_("Access by IP is broken: stale DDNS name, changed address or missing port forward"),
            "device",
        ),
        CauseInfo("share-expired", N_("The share of this device has expired"), "device"),
        CauseInfo(
            "share-not-possible",
            N_("A device added by P2P without an account cannot be shared"),
            "device",
        ),
        CauseInfo(
            "p2p-relogin-delay",
            N_("Recovering from an outage: the device is still logging in to the platform"),
            "device",
        ),
        CauseInfo(
            "phone-side",
            N_("The cause is on the phone: battery or data saver, airplane mode, permissions"),
            "device",
            checklist=True,
        ),
    )
}


def title_of(cause_id: str) -> Message:
    info = CATALOG.get(cause_id)
    return msg(info.title) if info else msg("{id}", id=cause_id)
