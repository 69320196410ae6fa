"""The cause catalogue of SPEC section 2: stable ids, what each means to a person, how to fix it.

Titles, descriptions and fix steps are English templates marked with ``N_()``; the Polish lives in
``diag/locale/pl/LC_MESSAGES/diagnosis.po``. The catalogue also says what a cause does to the app's
icon (``effect``), for site-wide causes which devices depend on it (``affects``, by
``added_via``), and what the cause predicts (``predicts``: the symptoms it accounts for when it
holds, from ``SYMPTOMS``). The engine arbitrates between rival causes with these predictions
(docs/diagnosis.md, "The cause model"): a cause whose observed symptoms another strong cause
predicts, and which does not predict that cause's own, is explained away.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from diag.i18n import N_, Message, msg
from diag.model import ADDED_VIA, AddedVia
from diag.vocab import ICON_COLOURS as ICON_COLOURS
from diag.vocab import ICON_GREY as ICON_GREY
from diag.vocab import VIA_LABEL
from diag.vocab import icon_colour as icon_colour

Scope = Literal["device", "site"]
# What a cause does to a device in the app: "offline" turns the icon grey, "degraded" keeps it in
# colour but slow or unreliable, "none" is a note (e.g. a share that expires next week).
Effect = Literal["offline", "degraded", "none"]
EFFECT_RANK: Mapping[Effect, int] = {"none": 0, "degraded": 1, "offline": 2}

P2P_VIA: tuple[AddedVia, ...] = ("p2p", "p2p-account", "shared")
IP_VIA: tuple[AddedVia, ...] = ("ip",)

# The symptom vocabulary: what rules observe (``Rule.shows`` / ``Hit.shows``) and causes predict
# (``CauseInfo.predicts``). "device.*" symptoms are seen on one device, the rest on the site.
SYMPTOMS: Mapping[str, str] = {
    "device.silent": "nothing answers for the device on the LAN (ARP, ping, ports)",
    "device.no-heartbeat": "the device answers on the LAN, the platform hears no heartbeat",
    "device.no-path-out": "the device's own traffic does not leave the site",
    "device.dns-dead": "the resolver the device uses does not answer it",
    "device.gateway-wrong": "the device's own settings name another gateway than the site's",
    "device.p2p-off": "the device's own settings say its P2P service is off",
    "device.lan-loss": "pings to the device are lost or jitter on the LAN",
    "device.two-macs": "more than one MAC answers for the device's address",
    "device.foreign-mac": "another MAC than the device's answers for its address",
    "device.tagged": "the device's frames carry another VLAN id",
    "device.auth-rejected": "the device rejects the site's credentials",
    "device.ddns-stale": "the device's DDNS name does not point at the site's public address",
    "device.share-ended": "the share of the device is past its end date",
    "device.outage-just-ended": "an outage of the device or the link ended moments ago",
    "device.app-grey": "the installer sees the device grey in the app",
    "device.clock-off": "the device's clock is far from the laptop's, or it keeps no time by NTP",
    "device.moved": "the device's MAC answers at another address, not at its own",
    "phone.measured": "the phone's own measurements show a phone-side problem",
    "internet.down": "no internet host answers",
    "internet.walled": "a captive portal answers or only DNS passes",
    "gateway.silent": "not even the router answers",
    "platform.silent": "none of the platform's servers answer",
    "platform.partial": "some of the platform's servers do not answer",
    "ports.blocked-router": "probes to the platform's ports die at the site's router",
    "ports.blocked-router-udp": "only UDP probes die at the site's router",
    "ports.blocked-isp": "probes to the platform's ports die in the operator's network",
    "ports.blocked-isp-udp": "only UDP probes die in the operator's network",
    "ports.blocked-unknown": "probes to the platform's ports die, the hop is unknown",
    "ports.host-dark": "the platform host answers on no port at all, other hosts do",
    "ports.dead-address": "port probes went to an address only the site's resolver gives",
    "dns.site-fails": "the site's resolver fails where the independent one answers",
    "dns.site-timeout": "the site's resolver does not answer where the independent one does",
    "dns.site-lies": "the site's resolver gives other addresses than the independent one",
    "dns.site-slow": "the site's resolver is slow by itself",
    "udp.blocked": "no UDP answer from the STUN servers while TCP works",
    "nat.symmetric": "the NAT maps every destination to a new port",
    "nat.adm": "the NAT maps per destination address",
    "nat.short-lifetime": "a UDP mapping was measured to expire before the heartbeat",
    "nat.address-churn": "the platform sees devices' public addresses change again and again",
    "nat.shared-address": "the site has no public address of its own",
    "upload.slow": "upload below the streams' need, above a quarter of it",
    "upload.very-slow": "upload below a quarter of the streams' need",
    "wan.loss": "packets to the internet are lost (the interval clears the threshold)",
    "wan.heavy-loss": "half or more of the packets to the internet are lost",
    "wan.latency": "round-trip time or jitter to the internet beyond the thresholds",
    "wan.bufferbloat": "latency grows under load",
    "history.link-outage": "the link was down within the last hour",
    "dns.name-missing": "both the site's and the independent resolver say a platform name does "
    "not exist",
    "path.big-packets-lost": "large packets vanish without an ICMP error while small ones pass",
}
# What probe series lost whole look like: ports that seem blocked, no UDP answer, a NAT mapping
# that seems to expire (its keepalives lost).
LOST_SERIES = (
    "ports.blocked-router",
    "ports.blocked-router-udp",
    "ports.blocked-isp",
    "ports.blocked-isp-udp",
    "ports.blocked-unknown",
    "udp.blocked",
    "nat.short-lifetime",
)
# What every cause of the internet link being unusable predicts (a dead or walled link).
_DEAD_LINK: tuple[str, ...] = (
    "platform.silent",
    "platform.partial",
    "ports.blocked-router",
    "ports.blocked-router-udp",
    "ports.blocked-isp",
    "ports.blocked-isp-udp",
    "ports.blocked-unknown",
    "ports.host-dark",
    "dns.site-fails",
    "dns.site-timeout",
    "dns.site-slow",
    "udp.blocked",
    "upload.slow",
    "upload.very-slow",
    "wan.loss",
    "wan.heavy-loss",
    "wan.latency",
    "wan.bufferbloat",
    "device.no-heartbeat",
    "device.no-path-out",
    "device.dns-dead",
    "device.ddns-stale",
)


@dataclass(frozen=True)
class CauseInfo:
    id: str
    title: str
    scope: Scope
    # True when a laptop on site cannot measure it: shown as a checklist item.
    checklist: bool = False
    description: str = ""
    fix: tuple[str, ...] = ()
    effect: Effect = "offline"
    # Site causes: the devices (by how they were added) whose icon depends on this cause.
    affects: tuple[AddedVia, ...] = ADDED_VIA
    # The symptoms (``SYMPTOMS`` ids) this cause accounts for when it holds: its own and, for a
    # site cause, those of the devices it affects. The engine explains rivals away with them.
    predicts: tuple[str, ...] = ()

    def fix_messages(self) -> tuple[Message, ...]:
        return tuple(msg(f) for f in self.fix)


# The Prometheus alert rules carry each cause's title and first fix step (English and Polish):
# after adding a cause or changing its wording, run `python -m diag.monitor.rules --write`.
CATALOG: dict[str, CauseInfo] = {
    c.id: c
    for c in (
        CauseInfo(
            "device-no-power",
            N_("Device has no power or its cable is faulty"),
            "device",
            description=N_(
                "The device answers nothing on the local network: no ARP, no ping, no service "
                "port. It is switched off, its power supply or PoE port failed, or its cable is "
                "broken."
            ),
            fix=(
                N_("Check the device's power supply or the PoE switch port (PoE LED lit)."),
                N_("Reseat or replace the network cable; check the link LED on the switch port."),
                N_("Power-cycle the device and allow two minutes for it to boot."),
            ),
            predicts=(
                "device.silent",
                "device.no-heartbeat",
                "device.lan-loss",
                "device.ddns-stale",
            ),
        ),
        CauseInfo(
            "device-p2p-disabled",
            N_("P2P service is switched off on the device"),
            "device",
            description=N_(
                "The device answers on the local network and the site reaches the platform, but "
                "the platform receives no heartbeat from it: its P2P service is off."
            ),
            fix=(
                N_(
                    "On the device's web page or the recorder's menu open Network → Platform "
                    "access (P2P) and switch the P2P service on."
                ),
                N_("Check that the device's P2P server address is the platform's."),
                N_("Wait a minute for the device to log in, then refresh the list in the app."),
            ),
            affects=P2P_VIA,
            predicts=("device.p2p-off", "device.no-heartbeat"),
        ),
        CauseInfo(
            "device-net-config",
            N_("Device's gateway or DNS is wrong, so it cannot reach the internet"),
            "device",
            description=N_(
                "The device answers on the local network, but its own settings point to a wrong "
                "gateway or DNS server, so its traffic never leaves the site."
            ),
            fix=(
                N_(
                    "Set the device's default gateway to the router's LAN address and its DNS to "
                    "the router or another working resolver."
                ),
                N_("Or switch the device to DHCP so it gets the right settings."),
                N_("Save, then check that the device logs in to the platform."),
            ),
            predicts=(
                "device.gateway-wrong",
                "device.no-path-out",
                "device.dns-dead",
                "device.no-heartbeat",
            ),
        ),
        CauseInfo(
            "device-password-changed",
            N_("The password the app holds no longer works"),
            "device",
            description=N_(
                "The device answers but rejects the credentials: its password was changed, so "
                "the app (which keeps the old one) cannot log in."
            ),
            fix=(
                N_("Find out who changed the password; log in on the device with the current one."),
                N_("In the app, edit the device and enter the current password."),
                N_("Avoid repeated wrong tries: many devices lock out after five failed logins."),
                N_("Update the credentials reference in the site file so diag can check it."),
            ),
            predicts=("device.auth-rejected",),
        ),
        CauseInfo(
            "device-clock-wrong",
            N_("The device's clock is wrong, so its secure login to the cloud fails"),
            "device",
            description=N_(
                "The device's clock is far from the real time, or it keeps no time by NTP. Secure "
                "(TLS) connections and token logins check the time, so the cloud refuses the "
                "device and it stays grey in the app."
            ),
            fix=(
                N_(
                    "On the device's web page or the recorder's menu open System → Time settings "
                    "and switch NTP synchronisation on."
                ),
                N_(
                    "Enter an NTP server the device can reach: the router's address or a public "
                    "NTP pool name, and set the right time zone."
                ),
                N_(
                    "Or set the time by hand (sync with the computer) and check it after a restart."
                ),
                N_(
                    "A clock that resets after every power cut means a flat backup battery: keep "
                    "NTP on."
                ),
            ),
            # The cloud refuses its TLS login: no heartbeat, whatever its P2P switch says.
            predicts=("device.clock-off", "device.no-heartbeat"),
        ),
        CauseInfo(
            "device-address-changed",
            N_("The device got another IP address from DHCP"),
            "device",
            description=N_(
                "The device's network card now answers at another address than the one it was "
                "set up with: the router's DHCP gave it a new lease. Devices added to the app by "
                "IP address (and port forwards to the old address) stop working; devices added "
                "by P2P keep working."
            ),
            fix=(
                N_(
                    "In the router, reserve the device's current address for its MAC address "
                    "(DHCP reservation / static lease)."
                ),
                N_(
                    "Or give the device a static address outside the router's DHCP pool, with "
                    "the router as gateway and DNS."
                ),
                N_("Update the address in the app, in port forwards and in the site file."),
            ),
            # Nothing answers at the old address: what a dead device shows too, plus the move.
            predicts=("device.moved", "device.silent", "device.ddns-stale"),
        ),
        CauseInfo(
            "ip-conflict",
            N_("Two devices share one IP address"),
            "device",
            description=N_(
                "More than one network card answers for the device's IP address, so the app's "
                "traffic goes to one or the other at random."
            ),
            fix=(
                N_("Find the other device by the MAC addresses listed in the evidence."),
                N_(
                    "Give every device its own address outside the router's DHCP pool, or "
                    "reserve the addresses in the DHCP server."
                ),
            ),
            predicts=(
                "device.two-macs",
                "device.foreign-mac",
                "device.lan-loss",
                "device.no-heartbeat",
                "device.auth-rejected",
            ),
        ),
        CauseInfo(
            "router-port-blocking",
            N_("The router or firewall blocks the platform's ports"),
            "site",
            description=N_(
                "Probes to the platform's ports die at the site's own router or firewall, while "
                "other traffic passes."
            ),
            fix=(
                N_("In the router or firewall, allow outgoing traffic to the platform's ports."),
                N_(
                    "Switch off features that drop P2P traffic for the cameras (P2P blocking, "
                    "application control, strict UDP filtering)."
                ),
                N_("Restart the router after changing the rules and run diag again."),
            ),
            affects=P2P_VIA,
            predicts=(
                "ports.blocked-router",
                "ports.blocked-router-udp",
                "ports.blocked-unknown",
                "platform.silent",
                "platform.partial",
                "device.no-heartbeat",
            ),
        ),
        CauseInfo(
            "vlan-misconfig",
            N_("Device is in a different VLAN than the recorder or gateway"),
            "device",
            description=N_(
                "The device's frames carry another VLAN id than the recorder's and the router's, "
                "so it cannot reach them on the local network."
            ),
            fix=(
                N_(
                    "Put the device's switch port in the same VLAN as the recorder and the router "
                    "(untagged, with the right port VLAN id)."
                ),
                N_("Or set the device's own VLAN id to match, if it tags its traffic."),
                N_("Compare the switch's port settings with the LLDP information shown."),
            ),
            predicts=("device.tagged", "device.silent", "device.no-heartbeat"),
        ),
        CauseInfo(
            "isp-p2p-blocking",
            N_("The operator blocks P2P services"),
            "site",
            description=N_(
                "Probes to the platform pass the site's router and die in the operator's "
                "network, while other internet traffic works."
            ),
            fix=(
                N_("Ask the operator to stop blocking P2P traffic to the platform on this line."),
                N_("Ask for a tariff without traffic filtering (often a business one)."),
                N_("Meanwhile, devices added by IP address with a port forward do not need P2P."),
            ),
            affects=P2P_VIA,
            predicts=(
                "ports.blocked-isp",
                "ports.blocked-isp-udp",
                "ports.blocked-unknown",
                "ports.host-dark",
                "platform.silent",
                "platform.partial",
                "device.no-heartbeat",
            ),
        ),
        CauseInfo(
            "link-outage",
            N_("The internet link is down or interrupted"),
            "site",
            description=N_(
                "The router answers but nothing beyond it does: the operator's link is down. "
                "Even short outages keep devices grey longer, as they log in to the P2P server "
                "one after another."
            ),
            fix=(
                N_("Check the modem's or router's WAN/LTE status lights and status page."),
                N_("Report the outage to the operator with the times from the history."),
                N_(
                    "When the link is back, allow a few minutes: devices log in to the P2P "
                    "server one after another."
                ),
            ),
            predicts=("internet.down", "gateway.silent", "history.link-outage", *_DEAD_LINK),
        ),
        CauseInfo(
            "low-bandwidth",
            N_("Upload is too slow for the camera streams"),
            "site",
            description=N_(
                "The measured upload is below what the streams viewed remotely need: weak "
                "GSM/LTE signal, an overloaded cell (BTS) or a slow plan."
            ),
            fix=(
                N_(
                    "Improve the LTE signal: move or aim the antenna, fit an external antenna, "
                    "or try another operator."
                ),
                N_("Lower the bitrate or resolution of remote streams, or use sub-streams."),
                N_("Ask the operator for a plan with more upload."),
            ),
            effect="degraded",
            predicts=("upload.slow", "upload.very-slow", "wan.bufferbloat"),
        ),
        CauseInfo(
            "wan-loss-latency",
            N_("Loss, latency, jitter or bufferbloat on the internet link"),
            "site",
            description=N_(
                "Packets to the internet are lost or delayed beyond the site's thresholds, or "
                "latency grows under load (bufferbloat)."
            ),
            fix=(
                N_("Check the link's signal quality (LTE RSRP/SINR) or the modem's line stats."),
                N_("Enable SQM/QoS on the router to keep latency low under load."),
                N_("Report lasting loss to the operator with the measurements shown."),
            ),
            effect="degraded",
            predicts=(
                "wan.loss",
                "wan.heavy-loss",
                "wan.latency",
                "wan.bufferbloat",
                "upload.slow",
                "upload.very-slow",
                "dns.site-slow",
                "dns.site-timeout",
                "platform.partial",
                "platform.silent",
                # Lost probe series, when the loss makes them likely (the rule narrows).
                *LOST_SERIES,
                "device.no-heartbeat",
                "device.dns-dead",
                "device.no-path-out",
            ),
        ),
        CauseInfo(
            "radio-link-interference",
            N_("A radio bridge or Wi-Fi between the device and the switch loses packets"),
            "device",
            description=N_(
                "Packets to the device are lost on the local network while the router answers "
                "cleanly: the radio bridge or Wi-Fi link to the device is disturbed."
            ),
            fix=(
                N_("Check the radio bridge's alignment and signal; move to a cleaner channel."),
                N_("Check power and cabling of the bridge at both ends."),
                N_("Where possible, replace a weak wireless link with a cable."),
            ),
            effect="degraded",
            predicts=(
                "device.lan-loss",
                "device.no-heartbeat",
                "device.dns-dead",
                "device.no-path-out",
            ),
        ),
        CauseInfo(
            "data-plan-exhausted",
            N_("The mobile data package is used up or expired"),
            "site",
            description=N_(
                "The operator redirects web traffic to its portal and only DNS passes: the "
                "SIM's data package is used up or has expired."
            ),
            fix=(
                N_("Check the SIM's data balance in the operator's portal; top up or renew it."),
                N_("Open any web page from a device on this network: the portal shows the plan."),
                N_("Consider a plan with more data: cameras upload video all the time."),
            ),
            predicts=("internet.walled", "internet.down", *_DEAD_LINK),
        ),
        CauseInfo(
            "p2p-server-unavailable",
            N_("The P2P platform's servers are unavailable"),
            "site",
            description=N_(
                "The platform's servers do not answer while the rest of the internet does: "
                "usually maintenance on the platform's side."
            ),
            fix=(
                N_("Check the vendor's announcements for platform maintenance."),
                N_("Nothing to change on site; run diag again later."),
                N_(
                    "When the platform returns, devices log in one after another: allow a few "
                    "minutes."
                ),
            ),
            affects=P2P_VIA,
            predicts=(
                "platform.silent",
                "platform.partial",
                "ports.host-dark",
                "ports.blocked-isp",
                "ports.blocked-isp-udp",
                "ports.blocked-unknown",
                "device.no-heartbeat",
            ),
        ),
        CauseInfo(
            "dns-failure",
            N_("The operator's DNS fails or answers wrongly for the platform"),
            "site",
            description=N_(
                "The site's resolver fails, is slow or gives wrong addresses for the platform's "
                "names, where an independent resolver answers correctly. Most common with "
                "3G/LTE SIM cards."
            ),
            fix=(
                N_("Set the router's (or the devices') DNS to a reliable resolver."),
                N_("Restart the modem to renew its DNS servers; report it to the operator."),
            ),
            affects=P2P_VIA,
            predicts=(
                "dns.site-fails",
                "dns.site-timeout",
                "dns.site-lies",
                "dns.site-slow",
                "ports.dead-address",
                "platform.silent",
                "platform.partial",
                "device.dns-dead",
                "device.no-path-out",
                "device.no-heartbeat",
                "device.ddns-stale",
            ),
        ),
        CauseInfo(
            "nat-unfriendly",
            N_("The NAT or firewall prevents direct P2P connections"),
            "site",
            description=N_(
                "The router's NAT gives a new mapping for every destination (symmetric) or UDP "
                "is blocked, so the app cannot connect directly and falls back to the relay, or "
                "fails."
            ),
            fix=(
                N_("Enable UPnP on the router, or forward the devices' ports."),
                N_("Switch off symmetric NAT or strict firewall modes; allow outgoing UDP."),
            ),
            effect="degraded",
            affects=P2P_VIA,
            predicts=(
                "udp.blocked",
                "nat.symmetric",
                "nat.adm",
                "ports.blocked-router-udp",
                "ports.blocked-isp-udp",
                "platform.partial",
                "device.no-heartbeat",
            ),
        ),
        CauseInfo(
            "nat-mapping-expiry",
            N_("The NAT forgets UDP mappings faster than the device's heartbeat"),
            "site",
            description=N_(
                "The router drops a UDP mapping before the device's next heartbeat, so the "
                "platform loses the device again and again."
            ),
            fix=(
                N_(
                    "Raise the router's UDP session timeout to at least twice the device's "
                    "heartbeat interval."
                ),
                N_("Or shorten the device's heartbeat interval if it can be set."),
            ),
            affects=P2P_VIA,
            predicts=("nat.short-lifetime", "nat.address-churn", "device.no-heartbeat"),
        ),
        CauseInfo(
            "cgnat",
            N_("No public IPv4 address at the site (CGNAT or double NAT)"),
            "site",
            description=N_(
                "The site's address on the internet is shared (carrier-grade NAT) or there are "
                "two routers in a row: devices added by IP address cannot be reached from "
                "outside."
            ),
            fix=(
                N_("Ask the operator for a public IPv4 address (often a paid option)."),
                N_("Or add the devices by P2P to an account instead of by IP address."),
                N_("Remove double NAT: put the modem in bridge mode or the router in AP mode."),
                N_(
                    "If the operator gives IPv6 (see the ipv6 check: a global IPv6 address), "
                    "enable IPv6 on the router and the devices: over IPv6 there is no NAT, so the "
                    "app can reach the devices directly despite the CGNAT on IPv4."
                ),
            ),
            affects=IP_VIA,
            predicts=("nat.shared-address", "device.ddns-stale"),
        ),
        CauseInfo(
            "ip-access-broken",
            N_("Access by IP is broken: stale DDNS name, changed address or missing port forward"),
            "device",
            description=N_(
                "The address the app dials for this device no longer leads to it: the DDNS "
                "name is stale, the public address changed, or the port forward is gone."
            ),
            fix=(
                N_("Check that the DDNS client updates the name to the site's current address."),
                N_("Check the router's port forward (or UPnP mapping) for the device's port."),
                N_("Or add the device by P2P to an account instead of by IP address."),
            ),
            affects=IP_VIA,
            predicts=("device.ddns-stale",),
        ),
        CauseInfo(
            "share-expired",
            N_("The share of this device has expired"),
            "device",
            description=N_(
                "The device was shared from another account for a limited time; when the "
                "share ends, it disappears from the app. Shares last one month by default."
            ),
            fix=(
                N_("Ask the device's owner to share it again with a later expiry date."),
                N_("When sharing, set a longer expiry: the default is one month."),
            ),
            predicts=("device.share-ended",),
        ),
        CauseInfo(
            "share-not-possible",
            N_("A device added by P2P without an account cannot be shared"),
            "device",
            description=N_(
                "Only devices added to a registered account can be shared with other accounts."
            ),
            fix=(
                N_(
                    "To share it, remove the device from the app and add it again by P2P to a "
                    "registered account."
                ),
            ),
            effect="none",
            predicts=(),
        ),
        CauseInfo(
            "p2p-relogin-delay",
            N_("Recovering from an outage: the device is still logging in to the platform"),
            "device",
            description=N_(
                "An outage has just ended. Devices log in to the P2P server one after another, "
                "so a device stays grey for a while after the outage itself."
            ),
            fix=(
                N_("Wait a few minutes and refresh the app."),
                N_("Do not power-cycle devices repeatedly: it restarts their login."),
            ),
            predicts=("device.outage-just-ended", "device.no-heartbeat"),
        ),
        CauseInfo(
            "phone-side",
            N_("The cause is on the phone: battery or data saver, airplane mode, permissions"),
            "device",
            checklist=True,
            effect="none",
            description=N_(
                "The site looks healthy and the platform sees the device, yet the app shows it "
                "grey: the phone or the app is the likely cause."
            ),
            fix=(
                N_("Charge the phone: a low battery limits apps in the background."),
                N_("Turn airplane mode off."),
                N_("Allow the app its permissions (network, background data, notifications)."),
                N_("Turn battery saver and mobile data saver off for the app."),
                N_("Check that antivirus, memory or battery managers do not block the app."),
                N_(
                    "Update or reinstall the app: phone makers' Android overlays sometimes break "
                    "third-party apps."
                ),
            ),
            predicts=("device.app-grey", "phone.measured"),
        ),
        CauseInfo(
            "profile-wrong",
            N_("The platform profile or site file names a server that does not exist"),
            "site",
            description=N_(
                "Both the site's resolver and an independent one say a platform name does not "
                "exist (NXDOMAIN): no network fault explains that; the profile or the site file "
                "has a wrong or outdated server name."
            ),
            fix=(
                N_("Choose your vendor's profile (diag profile list) or correct the server names."),
                N_("Check the names with the vendor's documentation or support."),
            ),
            # A wrong profile misleads the checks, not the devices: their state is not its effect.
            effect="none",
            affects=P2P_VIA,
            predicts=(
                "dns.name-missing",
                "platform.silent",
                "platform.partial",
                "ports.blocked-unknown",
                "ports.dead-address",
            ),
        ),
        CauseInfo(
            "mtu-blackhole",
            N_("Large packets vanish on the path (MTU black hole)"),
            "site",
            description=N_(
                "Packets above some size are dropped without the ICMP 'fragmentation needed' "
                "message path MTU discovery relies on (common with PPPoE and LTE links): small "
                "requests work, TLS handshakes, video and uploads stall."
            ),
            fix=(
                N_("Enable TCP MSS clamping on the router (clamp to path MTU, or an MSS of 1400)."),
                N_(
                    "Lower the router's or the LTE modem's WAN MTU (e.g. 1420 for LTE, 1492 for "
                    "PPPoE)."
                ),
                N_("Ask the operator why ICMP 'fragmentation needed' is filtered."),
            ),
            effect="degraded",
            predicts=(
                "path.big-packets-lost",
                "upload.slow",
                "upload.very-slow",
                "platform.partial",
                "wan.bufferbloat",
                "wan.latency",
            ),
        ),
        CauseInfo(
            "unexplained",
            N_("Not explained: no measured cause accounts for this device's state"),
            "device",
            effect="none",
            description=N_(
                "The device is grey, offline or degraded and none of the causes diag can measure "
                "accounts for it. What was measured and what it rules out is listed; the rest is "
                "on the device itself or on the platform's side."
            ),
            fix=(
                N_("Reboot the device and allow two minutes for it to log in."),
                N_(
                    "Check the device's own routing and firewall settings (static routes, IP "
                    "filter, allowed addresses)."
                ),
                N_("Look the device up on the platform's console or ask the vendor's support."),
                N_("Run diag again in deep mode (press d, or diag run --deep)."),
            ),
        ),
    )
}


@dataclass(frozen=True)
class PhoneItem:
    """One thing on the phone that can keep the app from showing a device.

    ``measured_by``: the ``phone.*`` facts that answer it when the phone's browser measured
    them (``diag phone``); an item with none stays a checklist step, and an item whose fact was
    measured is left off the checklist (the measurement itself is the evidence).
    """

    id: str
    step: str
    measured_by: tuple[str, ...] = ()


# The phone-side catalogue, split: what a browser on the phone measures, and what stays advice.
PHONE_CHECKLIST: tuple[PhoneItem, ...] = (
    PhoneItem(
        "battery",
        N_("Charge the phone: a low battery limits apps in the background."),
        ("phone.battery_pct",),
    ),
    # A result that reached the laptop and the platform proves a working network on the phone.
    PhoneItem("airplane-mode", N_("Turn airplane mode off."), ("phone.platform_reachable",)),
    PhoneItem("data-saver", N_("Turn mobile data saver off for the app."), ("phone.save_data",)),
    # No browser API tells whether battery saver (Android) or Low Power Mode (iOS) is on.
    PhoneItem("battery-saver", N_("Turn battery saver off for the app.")),
    PhoneItem(
        "permissions",
        N_("Allow the app its permissions (network, background data, notifications)."),
    ),
    PhoneItem(
        "managers",
        N_("Check that antivirus, memory or battery managers do not block the app."),
    ),
    PhoneItem(
        "vendor-skin",
        N_(
            "Update or reinstall the app: phone makers' Android overlays sometimes break "
            "third-party apps."
        ),
    ),
)

# Fix steps for what the phone's own measurements showed (diag.diagnosis.rules, phone findings).
PHONE_MEASURED_FIX: Mapping[str, tuple[str, ...]] = {
    "battery-low": (
        N_("Charge the phone: a low battery limits apps in the background."),
        N_("Turn battery saver off for the app."),
    ),
    "data-saver": (N_("Turn mobile data saver off for the app."),),
    "udp-blocked": (
        N_(
            "The phone's network blocks UDP: try the app on another network (the site's Wi-Fi "
            "or mobile data) or ask that network's administrator to allow outgoing UDP."
        ),
    ),
    "symmetric-nat": (
        N_(
            "The phone's network allows only relayed connections: expect slower video; on "
            "Wi-Fi or another mobile network direct connections may work."
        ),
    ),
    "no-platform": (
        N_(
            "The phone's network does not reach the platform: switch the phone to another "
            "network (Wi-Fi or mobile data) and check any VPN, private DNS or ad blocker on it."
        ),
    ),
    "clock": (N_("Set the phone's date and time to automatic (network time)."),),
    "slow-link": (
        N_("The phone's connection is very slow: move to better coverage or use Wi-Fi."),
    ),
}


# The icon colours and the added-via labels live in the one vocabulary (diag/vocab.py); these
# names stay for the rules and plugins that import them from here.
ADDED_VIA_LABELS = VIA_LABEL


def info(cause_id: str) -> CauseInfo | None:
    return CATALOG.get(cause_id)


def title_of(cause_id: str) -> Message:
    found = CATALOG.get(cause_id)
    return msg(found.title) if found else msg("{id}", id=cause_id)


def description_of(cause_id: str) -> Message | None:
    found = CATALOG.get(cause_id)
    return msg(found.description) if found and found.description else None
