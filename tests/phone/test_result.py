"""The result parser against valid and hostile bodies: typed value or ResultError, nothing else."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diag.phone import result as presult
from diag.phone.result import ResultError, parse
from phone.samples import ENDPOINTS, NOW_MS, STUN, body, raw


def p(data: bytes) -> presult.PhoneResult:
    return parse(
        data, peer="198.18.0.50", received_at_ms=NOW_MS, stun_servers=STUN, endpoint_urls=ENDPOINTS
    )


def test_valid_body_parses_to_typed_values() -> None:
    r = p(raw())
    assert r.peer == "198.18.0.50"
    assert r.battery is None and "battery" in r.unsupported
    assert r.connection is not None and r.connection.save_data is False
    assert r.ice is not None and r.ice.combined == ("203.0.113.2:40001",)
    assert [g.server for g in r.ice.per_server] == list(STUN)
    assert [e.outcome for e in r.endpoints] == ["ok", "ok"]
    assert r.clock_offset_s == pytest.approx(0.25)


def test_not_measured_stays_none_never_false() -> None:
    r = p(raw(connection={"save_data": None}, ice=None))
    assert r.connection is not None
    assert r.connection.save_data is None and r.connection.effective_type is None
    assert r.ice is None


@pytest.mark.parametrize(
    ("over", "where"),
    [
        ({"v": 2}, "v"),
        ({"v": True}, "v"),
        ({"extra": 1}, "body"),
        ({"battery": {"level": 1.5}}, "battery.level"),
        ({"battery": {"level": "0.5"}}, "battery.level"),
        ({"battery": {"level": 0.5, "charging": "yes"}}, "battery.charging"),
        ({"connection": {"effective_type": "5g"}}, "connection.effective_type"),
        ({"connection": {"rtt_ms": -1}}, "connection.rtt_ms"),
        ({"ua": "<script>\u202e"}, "ua"),
        ({"sent_at_ms": -5}, "sent_at_ms"),
        (
            {"endpoints": [{"url": "https://evil.example/", "outcome": "ok", "ms": 1}]},
            "endpoints[0].url",
        ),
        (
            {"endpoints": [{"url": ENDPOINTS[0], "outcome": "maybe", "ms": 1}]},
            "endpoints[0].outcome",
        ),
        ({"ice": {"per_server": [{"server": "198.51.100.99:3478"}]}}, "ice.per_server[0].server"),
        ({"ice": {"combined": ["<img src=x>:1"]}}, "ice.combined[0]"),
        ({"ice": {"combined": ["203.0.113.2:0"]}}, "ice.combined[0]"),
        ({"ice": {"combined": ["203.0.113.2:1"] * 9}}, "ice.combined"),
        ({"unsupported": ["battery", "rm -rf"]}, "unsupported[1]"),
    ],
)
def test_schema_violations_name_the_field(over: dict[str, Any], where: str) -> None:
    with pytest.raises(ResultError) as err:
        p(raw(**over))
    assert err.value.where == where


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"null",
        b"[]",
        b"\xff\xfe",
        b'{"v": 1, "v": 1, "sent_at_ms": 1}',
        b'{"v": 1, "sent_at_ms": NaN}',
        b'{"v": 1, "sent_at_ms": Infinity}',
        b"[" * 100_000,
        b'{"v": 1, "sent_at_ms": 1e999}',
        b'{"v": 1, "sent_at_ms": ' + b"9" * 5000 + b"}",
        b" " * (presult.MAX_BODY_BYTES + 1),
    ],
)
def test_hostile_bodies_are_refused(data: bytes) -> None:
    with pytest.raises(ResultError):
        p(data)


def test_error_text_never_echoes_the_value() -> None:
    secret = "<script>alert('x')</script>"
    with pytest.raises(ResultError) as err:
        p(raw(connection={"effective_type": secret}))
    assert secret not in str(err.value)
    with pytest.raises(ResultError) as err:
        p(raw(**{secret: 1}))
    assert secret not in str(err.value)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_arbitrary_json_is_a_result_or_a_result_error(value: Any) -> None:
    try:
        data = json.dumps(value).encode()
    except ValueError:
        return
    try:
        p(data)
    except ResultError:
        pass


KEYS = st.sampled_from(sorted(presult.TOP_KEYS))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, JSON, max_size=6))
def test_mutated_valid_bodies_never_crash(over: dict[str, Any]) -> None:
    try:
        data = json.dumps(body(**over), allow_nan=True).encode()
    except ValueError:
        return
    try:
        r = p(data)
    except ResultError:
        return
    # What got through is bounded and typed.
    assert len(r.user_agent) <= presult.MAX_UA_CHARS
    assert all(e.url in ENDPOINTS for e in r.endpoints)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    try:
        p(data)
    except ResultError:
        pass
