"""Result bodies the phone page posts, for the unit tests (what Chromium sent in the lab)."""

from __future__ import annotations

import json
from typing import Any

STUN = ("198.51.100.20:3478", "198.51.100.21:3480")
ENDPOINTS = ("https://api.lab-cloud.test:8443/", "https://api.lab-cloud.test:8443/api/v1")
NOW_MS = 1_790_000_000_000.0


def body(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "v": 1,
        "lang": "en",
        "ua": "Mozilla/5.0 (Linux; Android 14) Chrome/156.0 Mobile Safari/537.36",
        "secure": False,
        "sent_at_ms": NOW_MS + 250,
        "battery": None,
        "connection": {
            "save_data": False,
            "effective_type": "4g",
            "downlink_mbps": 10,
            "rtt_ms": 50,
            "type": None,
        },
        "ice": {
            "combined": ["203.0.113.2:40001"],
            "host_candidates": 1,
            "timed_out": False,
            "per_server": [
                {"server": STUN[0], "srflx": ["203.0.113.2:40002"]},
                {"server": STUN[1], "srflx": ["203.0.113.2:40003"]},
            ],
        },
        "endpoints": [
            {"url": ENDPOINTS[0], "outcome": "ok", "ms": 40},
            {"url": ENDPOINTS[1], "outcome": "ok", "ms": 35},
        ],
        "unsupported": ["battery"],
        "page_rtt_ms": 3,
    }
    base.update(over)
    return base


def raw(**over: Any) -> bytes:
    return json.dumps(body(**over)).encode()
