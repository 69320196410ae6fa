"""HTTP Digest authentication (RFC 7616, the subset cameras speak) that fails cleanly.

httpx's own ``DigestAuth`` raises whatever its parsing hits on a hostile or broken challenge: a
bare token such as ``stale`` is a ``ValueError``, ``algorithm=FOO`` a ``KeyError``,
``qop="auth-int"`` a ``NotImplementedError``, a non-ASCII realm a ``UnicodeEncodeError`` when
the answer is sent. None of those is an ``httpx.HTTPError``, so one camera crashed the whole
heartbeat check. Here every malformed challenge is a ``DigestChallengeError`` (an
``httpx.ProtocolError``: callers that handle HTTP errors handle it), with a fixed message that
quotes nothing (neither what the device sent nor anything derived from the password), and it is
noted as the target's reason ("bad-challenge", ``diag.net.target``).

Accepted: ``realm`` and a non-empty ``nonce`` (printable ASCII), ``algorithm`` MD5, MD5-sess,
SHA-256, SHA-256-sess (default MD5), ``qop`` absent (RFC 2069) or offering ``auth``, ``opaque``,
``stale``/``domain``/``charset``/``userhash`` as key=value fields. One answer per challenge:
a second 401 is the device's verdict on the password, returned to the caller as it is.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Generator
from dataclasses import dataclass
from urllib.request import parse_http_list

import httpx

from diag.net import target

# Algorithm name (upper case) -> hash function. SHA-512-256 is in RFC 7616 but no camera we know
# sends it; refusing it is a clean "bad-challenge", not a guess.
HASHES: dict[str, Callable[[bytes], hashlib._Hash]] = {
    "MD5": hashlib.md5,
    "MD5-SESS": hashlib.md5,
    "SHA-256": hashlib.sha256,
    "SHA-256-SESS": hashlib.sha256,
}
# A challenge longer than this is not a camera's, characters (real ones are ~150).
MAX_CHALLENGE_CHARS = 4096
# Printable ASCII without the quote and backslash: what may go back inside a quoted field.
_TOKEN_TEXT = re.compile(r"^[\x20-\x21\x23-\x5b\x5d-\x7e]*$")
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


class DigestChallengeError(httpx.ProtocolError):
    """The device's Digest challenge cannot be answered (malformed, or a mode we do not speak)."""

    def __init__(self) -> None:
        # Fixed text: the challenge is the device's, so it is not quoted into any output.
        super().__init__("malformed or unsupported Digest challenge")


@dataclass(frozen=True)
class Challenge:
    realm: str
    nonce: str
    algorithm: str
    opaque: str | None
    qop: str | None  # "auth" or None (RFC 2069)


def parse_challenge(header: str) -> Challenge:
    """The challenge of a ``WWW-Authenticate: Digest ...`` value; ``DigestChallengeError`` when it
    is malformed or asks for what we do not do (pure)."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest" or len(header) > MAX_CHALLENGE_CHARS:
        raise DigestChallengeError()
    fields: dict[str, str] = {}
    for item in parse_http_list(rest):
        key, eq, value = item.strip().partition("=")
        key = key.strip().lower()
        if not eq or not _KEY.match(key) or key in fields:
            # A bare token ("stale"), an empty key, or a field given twice.
            raise DigestChallengeError()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        fields[key] = value
    realm, nonce = fields.get("realm"), fields.get("nonce")
    if realm is None or not nonce:
        raise DigestChallengeError()
    for value in (realm, nonce, fields.get("opaque") or ""):
        if not _TOKEN_TEXT.match(value):
            # Non-ASCII or control characters: they cannot go back in a header as they came.
            raise DigestChallengeError()
    algorithm = fields.get("algorithm", "MD5").upper()
    if algorithm not in HASHES:
        raise DigestChallengeError()
    qop: str | None = None
    if "qop" in fields:
        offered = {q.strip().lower() for q in fields["qop"].split(",")}
        if "auth" not in offered:
            # Only auth-int (integrity of the body) or nothing usable: not spoken here.
            raise DigestChallengeError()
        qop = "auth"
    return Challenge(realm, nonce, algorithm, fields.get("opaque"), qop)


def answer(
    challenge: Challenge,
    method: str,
    uri: str,
    username: str,
    password: str,
    cnonce: str | None = None,
    nc: int = 1,
) -> str:
    """The ``Authorization`` header value for ``challenge`` (pure given ``cnonce``)."""
    if not _TOKEN_TEXT.match(username) or not _TOKEN_TEXT.match(uri):
        # The username is the site file's; a character that cannot travel is a clean error.
        raise DigestChallengeError()
    h = HASHES[challenge.algorithm]

    def hx(data: str) -> str:
        return h(data.encode("utf-8")).hexdigest()

    cnonce = cnonce or os.urandom(8).hex()
    ha1 = hx(f"{username}:{challenge.realm}:{password}")
    if challenge.algorithm.endswith("-SESS"):
        ha1 = hx(f"{ha1}:{challenge.nonce}:{cnonce}")
    ha2 = hx(f"{method}:{uri}")
    nc_value = f"{nc:08x}"
    if challenge.qop is None:
        response = hx(f"{ha1}:{challenge.nonce}:{ha2}")
    else:
        response = hx(f"{ha1}:{challenge.nonce}:{nc_value}:{cnonce}:{challenge.qop}:{ha2}")
    parts = [
        f'username="{username}"',
        f'realm="{challenge.realm}"',
        f'nonce="{challenge.nonce}"',
        f'uri="{uri}"',
        f'response="{response}"',
        f"algorithm={challenge.algorithm}",
    ]
    if challenge.opaque is not None:
        parts.append(f'opaque="{challenge.opaque}"')
    if challenge.qop is not None:
        parts += [f"qop={challenge.qop}", f"nc={nc_value}", f'cnonce="{cnonce}"']
    return "Digest " + ", ".join(parts)


class DigestAuth(httpx.Auth):
    """Digest auth for httpx: answers one challenge; a malformed one is ``DigestChallengeError``.

    The password is held only to compute the answer; ``repr`` does not show it.
    """

    def __init__(self, username: str, password: str) -> None:
        self._username = username
        self._password = password

    def __repr__(self) -> str:
        return "DigestAuth(…)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        response = yield request
        if response.status_code != 401:
            return
        header = next(
            (
                h
                for h in response.headers.get_list("www-authenticate")
                if h.strip().lower().startswith("digest")
            ),
            None,
        )
        if header is None:
            # Basic only or no challenge at all: the caller sees the 401 and decides.
            return
        try:
            challenge = parse_challenge(header)
            uri = request.url.raw_path.decode("ascii")
            value = answer(challenge, request.method, uri, self._username, self._password)
        except (DigestChallengeError, UnicodeDecodeError):
            target.note("bad-challenge")
            raise DigestChallengeError() from None
        request.headers["Authorization"] = value
        if response.cookies:
            httpx.Cookies(response.cookies).set_cookie_header(request=request)
        yield request
