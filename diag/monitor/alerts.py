"""State changes with hysteresis, and their delivery to a webhook (generic JSON, ntfy, Slack).

A device (or the site) changes state for alerting only after ``confirm_after`` consecutive runs
agree on the new state, so a link flapping between two 5-minute samples does not page anyone. The
confirmed state lives in the history database, so hysteresis works across cron runs.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from diag import vocab
from diag.diagnosis.catalog import title_of
from diag.i18n import N_, msg, render
from diag.model import DeviceState, Run
from diag.monitor.store import CODE_STATE, SITE, STATE_CODE, Store, site_state

# Runs that must agree before a change is alerted: 2 x 5-minute cron = 10 minutes of evidence.
DEFAULT_CONFIRM_AFTER = 2
# Webhook delivery: per-attempt timeout, s (a chat service answers in well under a second), and
# back-off between attempts, s; three attempts ride out a brief outage of the receiver.
WEBHOOK_TIMEOUT_S = 5.0
WEBHOOK_BACKOFF_S = (0.5, 2.0)

WebhookFormat = Literal["generic", "ntfy", "slack"]


@dataclass(frozen=True)
class Change:
    key: str  # device name, or "" for the site
    old: DeviceState | None
    new: DeviceState
    at: dt.datetime
    cause: str | None = None


def observed(run: Run) -> dict[str, tuple[DeviceState, str | None]]:
    """What a run says about each device and the site's link: state and top cause."""
    out: dict[str, tuple[DeviceState, str | None]] = {
        v.device: (v.state, v.causes[0].id if v.causes else None) for v in run.devices
    }
    out[SITE] = site_state(run)
    return out


def update(
    store: Store,
    states: Mapping[str, tuple[DeviceState, str | None]],
    now: dt.datetime,
    confirm_after: int = DEFAULT_CONFIRM_AFTER,
) -> list[Change]:
    """Feeds one run's states through the hysteresis; returns the confirmed changes."""
    ts = int(now.timestamp())
    changes: list[Change] = []
    with store.write() as db:
        for key, (state, cause) in states.items():
            code = STATE_CODE[state]
            row = db.execute(
                "SELECT confirmed, pending, pending_count FROM alert_state WHERE key = ?", (key,)
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO alert_state (key, confirmed, pending, pending_count, since) "
                    "VALUES (?, ?, NULL, 0, ?)",
                    (key, code, ts),
                )
                # First sight: nothing to compare with; a device already down is news.
                if state != "online":
                    changes.append(Change(key, None, state, now, cause))
                continue
            confirmed, pending, count = int(row[0]), row[1], int(row[2])
            if code == confirmed:
                db.execute(
                    "UPDATE alert_state SET pending = NULL, pending_count = 0 WHERE key = ?", (key,)
                )
                continue
            count = count + 1 if pending == code else 1
            if count >= confirm_after:
                db.execute(
                    "UPDATE alert_state SET confirmed = ?, pending = NULL, pending_count = 0, "
                    "since = ? WHERE key = ?",
                    (code, ts, key),
                )
                changes.append(Change(key, CODE_STATE[confirmed], state, now, cause))
            else:
                db.execute(
                    "UPDATE alert_state SET pending = ?, pending_count = ? WHERE key = ?",
                    (code, count, key),
                )
    return changes


def revert(store: Store, changes: Sequence[Change]) -> None:
    """Undoes confirmed changes whose alert could not be delivered, so the next run retries.

    The new state stays pending with its confirmation already earned: the next run that still
    sees it alerts at once instead of waiting through the hysteresis again.
    """
    with store.write() as db:
        for c in changes:
            if c.old is None:
                db.execute("DELETE FROM alert_state WHERE key = ?", (c.key,))
            else:
                db.execute(
                    "UPDATE alert_state SET confirmed = ?, pending = ?, pending_count = ? "
                    "WHERE key = ?",
                    (STATE_CODE[c.old], STATE_CODE[c.new], _EARNED, c.key),
                )


# A pending count that already satisfies any confirm_after.
_EARNED = 1_000_000


# The one vocabulary's short state words (the monitor's one line and the alerts: "cam1 unknown:
# not measured ...", "online → unknown"), as the dashboard's device list words them.
STATE_WORD = vocab.STATE_TAG


def describe(change: Change, lang: str) -> str:
    who = change.key or render(N_("internet link"), lang)
    text = msg(
        "{who}: {old} → {new}",
        who=who,
        old=render(STATE_WORD[change.old], lang) if change.old else "-",
        new=render(STATE_WORD[change.new], lang),
    ).render(lang)
    if change.cause:
        text += f" ({title_of(change.cause).render(lang)})"
    return text


def payload(
    fmt: WebhookFormat, site: str, changes: Sequence[Change], lang: str
) -> tuple[dict[str, str], bytes]:
    """Headers and body for one delivery in the receiver's format."""
    lines = [describe(c, lang) for c in changes]
    title = msg("diag: {site}: {n} change(s)", site=site, n=len(changes)).render(lang)
    # Severity 0-2 (online, degraded or unknown, offline): unknown alerts like degraded.
    severity = {"online": 0, "degraded": 1, "unknown": 1, "offline": 2}
    worst = max((severity[c.new] for c in changes), default=0)
    if fmt == "ntfy":
        # ntfy publishes the plain body; title, priority and tags travel in headers.
        headers = {
            "Title": _header(title),
            "Priority": ("default", "high", "urgent")[worst],
            "Tags": ("white_check_mark", "warning", "rotating_light")[worst],
            "Content-Type": "text/plain; charset=utf-8",
        }
        return headers, "\n".join(lines).encode()
    if fmt == "slack":
        body: dict[str, Any] = {"text": f"*{title}*\n" + "\n".join(f"• {x}" for x in lines)}
        return {"Content-Type": "application/json"}, json.dumps(body).encode()
    generic = {
        "site": site,
        "title": title,
        "changes": [
            {
                "device": c.key or None,
                "old": c.old,
                "new": c.new,
                "cause": c.cause,
                "at": c.at.isoformat(),
                "text": describe(c, lang),
            }
            for c in changes
        ],
    }
    return {"Content-Type": "application/json"}, json.dumps(generic, ensure_ascii=False).encode()


def _header(text: str) -> str:
    """HTTP headers are Latin-1: Polish titles go RFC 2047-encoded, which ntfy decodes."""
    try:
        text.encode("ascii")
        return text
    except UnicodeEncodeError:
        import base64

        return "=?UTF-8?B?" + base64.b64encode(text.encode()).decode() + "?="


def guess_format(url: str) -> WebhookFormat:
    if "hooks.slack.com" in url:
        return "slack"
    if "ntfy" in url:
        return "ntfy"
    return "generic"


def deliver(
    url: str, fmt: WebhookFormat, site: str, changes: Sequence[Change], lang: str
) -> str | None:
    """POSTs the changes; None on success, else why it failed after all retries."""
    import httpx

    headers, body = payload(fmt, site, changes, lang)
    error = "not attempted"
    for attempt in range(len(WEBHOOK_BACKOFF_S) + 1):
        try:
            r = httpx.post(url, content=body, headers=headers, timeout=WEBHOOK_TIMEOUT_S)
            if r.status_code < 300:
                return None
            error = f"HTTP {r.status_code}"
            if 400 <= r.status_code < 500 and r.status_code != 429:
                break  # the receiver rejects the request itself: retrying will not help
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if attempt < len(WEBHOOK_BACKOFF_S):
            time.sleep(WEBHOOK_BACKOFF_S[attempt])
    return error
