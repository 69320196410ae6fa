"""Why a device's state could not be measured: the "unknown" state, fail closed.

Absence of evidence is never health. A device's state is decided by what the state-deciding check
(``heartbeat``, or any plugin that emits the same facts) saw of it: ``device.reachable`` on the
LAN and, for P2P devices, ``device.platform_online``. When neither was measured, or the device's
own probe broke (a per-target error, a login that failed in a way that says nothing about the
password, credentials that cannot be read), the device is ``unknown``, never ``online``; the
messages here say what was missing, naming the check, so a person knows what to fix.

The engine calls ``unmeasured()`` once per device and ``with_gaps()`` on the state it computed;
nothing else in the engine knows about "unknown" (kept apart so an engine rewrite carries it over
unchanged).

A measured state can still lack the evidence a device cause needs: a camera that answers on the
LAN but was never logged in to cannot be cleared of a changed password, a wrong gateway or a wrong
clock. ``missing_evidence()`` lists those gaps (they go in the verdict's ``unmeasured`` too, for
every state, but never turn a measured state into "unknown"), each naming what was not measured,
why, and which causes it leaves open, so "no cause found" is not read as "all clear".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from diag.diagnosis.catalog import P2P_VIA
from diag.diagnosis.facts import Facts
from diag.i18n import N_, Message, msg
from diag.model import CheckResult, Device, DeviceState

# The check whose facts decide device states (the built-in one; a plugin emitting the same facts
# decides too, since the facts are what is looked at).
STATE_CHECK = "heartbeat"
# The facts that decide a device's state: any one of them measured means "measured".
DECIDING = ("device.reachable", "device.platform_online")

# Safe reasons a per-target probe, a login or a credential read gives (fact values), in words.
PROBE_REASON: Mapping[str, str] = {
    "timeout": N_("no complete answer within its time bound"),
    "crash": N_("the probe broke on its answer"),
}
AUTH_REASON: Mapping[str, str] = {
    "timeout": N_("no complete answer within its time bound"),
    "connect": N_("the connection failed"),
    "bad-challenge": N_("malformed Digest challenge"),
    "protocol": N_("not a valid HTTP answer"),
    "http-error": N_("the device answered with an HTTP error"),
    "crash": N_("the login broke on the device's answer"),
}
CREDENTIAL_REASON: Mapping[str, str] = {
    "missing": N_("file missing"),
    "not-regular": N_("not a regular file"),
    "unreadable": N_("file not readable"),
    "not-utf8": N_("file is not UTF-8 text"),
    "too-large": N_("file too large for a password"),
    "empty": N_("empty"),
    "env-unset": N_("environment variable not set"),
    "bad-reference": N_("not an env: or file: reference"),
}


def _reason(table: Mapping[str, str], value: object) -> Message:
    text = table.get(value) if isinstance(value, str) else None
    return msg(text) if text else msg(N_("unrecognised reason"))


def _check_gap(check_id: str, result: CheckResult | None, device: Device) -> Message | None:
    """Why the state-deciding check gave nothing for ``device`` (None: it did give something)."""
    if result is None:
        return msg(N_("not measured: the {check} check did not run"), check=check_id)
    if result.status == "error":
        if result.fact("check.timeout") is not None:
            return msg(N_("not measured: the {check} check ran out of time"), check=check_id)
        exc = result.fact("check.exception")
        error = exc.value if exc is not None and isinstance(exc.value, str) else "error"
        return msg(
            N_("not measured: the {check} check failed ({error})"), check=check_id, error=error
        )
    if result.status == "skip":
        return msg(
            N_("not measured: the {check} check was skipped ({why})"),
            check=check_id,
            why=result.summary,
        )
    if device.name not in result.targets:
        return msg(
            N_("not measured: nothing in the site file lets {check} probe it (no address)"),
            check=check_id,
        )
    return msg(N_("not measured: the {check} check gave no result for it"), check=check_id)


def unmeasured(device: Device, facts: Facts, results: Sequence[CheckResult]) -> tuple[Message, ...]:
    """What could not be measured about ``device``'s state; empty when it was measured."""
    name = device.name
    gaps: list[Message] = []
    cred = facts.value("device.credentials_error", name)
    if cred is not None:
        gaps.append(
            msg(
                N_("credentials for {device} cannot be read: {reason}"),
                device=name,
                reason=_reason(CREDENTIAL_REASON, cred),
            )
        )
    probe = facts.value("device.error", name)
    if probe is not None:
        gaps.append(
            msg(
                N_("the {check} probe of {device} did not finish: {reason}"),
                check=STATE_CHECK,
                device=name,
                reason=_reason(PROBE_REASON, probe),
            )
        )
    if facts.value("device.auth", name) == "error":
        gaps.append(
            msg(
                N_("the {check} login to {device} failed: {reason}"),
                check=STATE_CHECK,
                device=name,
                reason=_reason(AUTH_REASON, facts.value("device.auth_error", name)),
            )
        )
    if not any(facts.has(key, name) for key in DECIDING):
        result = next((r for r in results if r.check_id == STATE_CHECK), None)
        gap = _check_gap(STATE_CHECK, result, device)
        if gap is not None:
            gaps.append(gap)
    return tuple(gaps)


def with_gaps(state: DeviceState, gaps: Sequence[Message]) -> DeviceState:
    """The state once the gaps are counted: measured offline stays offline (it is grey whatever
    else is missing); anything else with a gap is unknown."""
    if not gaps or state == "offline":
        return state
    return "unknown"


# Why no login was tried (``device.auth`` values that judge no password), in words.
NO_LOGIN_REASON: Mapping[str, str] = {
    "no-credentials": N_("no credentials in the site file"),
    "unsupported": N_("no device API diag knows answered"),
}
# Why the platform could not say whether it hears a device (``device.platform_error``).
PLATFORM_REASON: Mapping[str, str] = {
    "timeout": N_("the platform's status API did not answer in time"),
    "error": N_("the platform's status API could not be reached"),
    "bad-reply": N_("the platform's status API gave an answer diag cannot read"),
    "ca-file": N_("the platform's CA file cannot be read"),
}


def missing_evidence(device: Device, facts: Facts) -> tuple[Message, ...]:
    """The evidence device causes need that was not measured for ``device``, which answered on
    the LAN (for a silent device these causes are moot: nothing of it can be read).

    Gaps already said by ``unmeasured()`` (a login that broke, unreadable credentials) are not
    repeated; a login not tried is said once, covering the settings and the clock behind it.
    """
    name = device.name
    if facts.flag("device.reachable", name) is not True:
        return ()
    gaps: list[Message] = []
    auth = facts.value("device.auth", name)
    if (
        auth not in ("ok", "rejected", "error")
        and facts.value("device.credentials_error", name) is None
    ):
        reason = NO_LOGIN_REASON.get(auth) if isinstance(auth, str) else None
        gaps.append(
            msg(
                N_(
                    "not measured: no login to {device} ({reason}), so a changed password, its own "
                    "network settings and its clock cannot be checked"
                ),
                device=name,
                reason=msg(reason or N_("no login was tried")),
            )
        )
    elif auth == "ok":
        if not (facts.has("device.settings", name) or facts.has("device.gateway_ok", name)):
            gaps.append(
                msg(
                    N_(
                        "not measured: the network settings of {device} (its API did not give "
                        "them), so a wrong gateway or DNS on the device cannot be ruled out"
                    ),
                    device=name,
                )
            )
        if not any(
            facts.has(k, name)
            for k in ("device.clock", "device.clock_offset_s", "device.ntp_enabled")
        ):
            gaps.append(
                msg(
                    N_(
                        "not measured: the clock of {device} (its API did not give it), so a wrong "
                        "device clock cannot be ruled out"
                    ),
                    device=name,
                )
            )
    if device.added_via in P2P_VIA and not facts.has("device.platform_online", name):
        err = facts.value("device.platform_error", name)
        text = PLATFORM_REASON.get(err) if isinstance(err, str) else None
        if text is None and isinstance(err, str) and err.startswith("http-"):
            text = N_("the platform's status API answered with an HTTP error")
        gaps.append(
            msg(
                N_(
                    "not measured: whether the platform hears {device} ({reason}), so a P2P "
                    "service turned off on the device cannot be ruled out"
                ),
                device=name,
                reason=msg(text or N_("the platform was not asked")),
            )
        )
    return tuple(gaps)
