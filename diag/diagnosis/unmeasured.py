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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
