"""HTTP: one client factory (one ``ca_file`` policy, no proxy from the environment) and one capped
body reader.

Every client ignores the environment's proxies and netrc (``trust_env=False``): the tool must
measure the site's own path, not a proxy the laptop happens to have. TLS trusts the profile's
``ca_file`` alone when one is set (a lab or a private platform CA), else the system's store; a
``ca_file`` that cannot be loaded is ``CaFileError``, a local problem the check reports as such
(nothing was measured), never the server's fault. Bodies from devices, routers and captive
portals are hostile: ``read_capped`` streams and stops at a limit, so an endless or gigabyte
answer costs at most that much memory (httpx's timeout is per read, so a fast endless stream
never times out).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

# A typical headless HTTP API answers in well under a second; 5 s covers a slow embedded server.
DEFAULT_TIMEOUT_S = 5.0


class CaFileError(Exception):
    """The profile's ``ca_file`` is missing or not PEM."""


def tls_verify(ca_file: str | None) -> ssl.SSLContext | bool:
    """The one TLS trust policy: only ``ca_file`` when given, else the system's store."""
    if not ca_file:
        return True
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise CaFileError(f"{ca_file}: {type(exc).__name__}") from None


def client(
    *,
    timeout: float | httpx.Timeout = DEFAULT_TIMEOUT_S,
    ca_file: str | None = None,
    tls: bool = True,
    headers: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    socket_options: list[tuple[int, int, int]] | None = None,
) -> httpx.AsyncClient:
    """An ``AsyncClient`` that never follows redirects nor reads the environment.

    ``tls=False`` for plain-HTTP peers on the LAN (a UPnP IGD, a camera's HTTP API), where no
    certificate exists to check; otherwise ``ca_file`` decides the trust (``tls_verify``).
    ``socket_options`` goes to a transport built here (bandwidth's TCP_NOTSENT_LOWAT). Raises
    ``CaFileError``.
    """
    verify = tls_verify(ca_file) if tls else False
    if transport is None and socket_options is not None:
        transport = httpx.AsyncHTTPTransport(verify=verify, socket_options=socket_options)
    return httpx.AsyncClient(
        timeout=timeout,
        verify=verify,
        trust_env=False,
        follow_redirects=False,
        headers=dict(headers or {}),
        transport=transport,
    )


@dataclass(frozen=True)
class Reply:
    """A capped answer: ``content`` holds at most ``limit`` bytes (``truncated`` when more came);
    ``encoded`` when the server compressed a raw read (refused: content is empty)."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    truncated: bool = False
    encoded: bool = False

    @property
    def complete(self) -> bytes | None:
        """The whole body, or None when it was cut at the limit or compressed."""
        return None if self.truncated or self.encoded else self.content


async def read_capped(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    limit: int,
    *,
    decoded: bool = False,
    **kwargs: Any,
) -> Reply:
    """``method url`` with the body read up to ``limit`` bytes.

    Raw by default: a compressed body is refused (``encoded``) rather than inflated, since the
    devices and routers asked this way do not compress. ``decoded`` reads the decoded stream
    (a web page that may be gzipped), still stopping at ``limit`` decoded bytes. Raises httpx's
    errors as they are.
    """
    chunks: list[bytes] = []
    size = 0
    truncated = False
    async with http.stream(method, url, **kwargs) as r:
        encoded = r.headers.get("content-encoding", "identity") not in ("identity", "")
        if encoded and not decoded:
            return Reply(r.status_code, r.headers, b"", False, True)
        stream = r.aiter_bytes() if decoded else r.aiter_raw()
        async for chunk in stream:
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                truncated = True
                break
    return Reply(r.status_code, r.headers, b"".join(chunks)[:limit], truncated)
