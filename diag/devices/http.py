"""HTTP and XML plumbing every device adapter shares: capped bodies, XML without DTDs.

A device is on the installer's LAN but its answers are still untrusted input: bodies are read up
to ``MAX_BODY`` bytes and refused when compressed, XML with a DTD or an entity declaration is not
parsed at all (entity-expansion bombs live there), and no parser error ever leaves these helpers.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

import httpx

from diag.devices.base import DeviceReport, Target
from diag.net.digest import DigestAuth
from diag.net.http import client as http_client
from diag.net.http import read_capped

# Replies from devices are small XML/text documents (ONVIF's largest, GetServices with
# capabilities, is ~10 kB); anything bigger is hostile.
MAX_BODY = 64 * 1024
# HTTP on a camera: its web server is slow (embedded CPU, digest computed in CGI), 3 s per request.
HTTP_TIMEOUT_S = 3.0
# Bodies are read raw and capped (``request_capped``): ask for them uncompressed.
IDENTITY = {"Accept-Encoding": "identity"}


def parse_xml(body: bytes | str) -> ET.Element | None:
    """A device's XML reply, or None when it is not XML we accept.

    DTDs are refused outright (entity expansion bombs live there) and bodies are size-capped.
    """
    raw = body.encode("utf-8", "replace") if isinstance(body, str) else body
    if len(raw) > MAX_BODY or b"<!DOCTYPE" in raw.upper() or b"<!ENTITY" in raw.upper():
        return None
    try:
        return ET.fromstring(raw)
    except (ET.ParseError, ValueError, LookupError, RecursionError):
        # LookupError: <?xml encoding="bogus"?> names a codec Python does not have.
        return None


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def child(node: ET.Element | None, name: str) -> ET.Element | None:
    """The first child with local name ``name`` (vendors put namespaces on everything)."""
    if node is None:
        return None
    return next((c for c in node if local(c.tag) == name), None)


def children(node: ET.Element | None, name: str) -> list[ET.Element]:
    if node is None:
        return []
    return [c for c in node if local(c.tag) == name]


def descendant(node: ET.Element | None, name: str) -> ET.Element | None:
    if node is None:
        return None
    return next((c for c in node.iter() if local(c.tag) == name), None)


def xml_find(root: ET.Element | None, path: str) -> str | None:
    """Text at a slash-separated path of local names (ISAPI puts a namespace on everything)."""
    node = root
    for part in path.split("/"):
        node = child(node, part)
        if node is None:
            return None
    return text_of(node)


def text_of(node: ET.Element | None) -> str | None:
    if node is None or node.text is None:
        return None
    text = node.text.strip()
    return text[:256] if text else None


@dataclass(frozen=True)
class Reply:
    status_code: int
    headers: httpx.Headers
    content: bytes
    truncated: bool


async def request_capped(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    auth: httpx.Auth | None = None,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """A request whose reply body is read up to ``MAX_BODY`` bytes (``diag.net.http``'s capped
    reader): a hostile device cannot make us buffer a gigabyte, a compressed body is refused (the
    parsers refuse a truncated or empty body as not XML/JSON)."""
    r = await read_capped(
        client,
        method,
        url,
        MAX_BODY,
        auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
        content=content,
        headers=headers,
    )
    return Reply(r.status_code, r.headers, r.content, r.truncated)


async def get_capped(client: httpx.AsyncClient, url: str, auth: httpx.Auth | None = None) -> Reply:
    return await request_capped(client, "GET", url, auth)


def device_client(transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    # No proxy from the environment, no redirects: diag.net.http's one policy.
    return http_client(timeout=HTTP_TIMEOUT_S, headers=IDENTITY, transport=transport)


async def digest_login(
    adapter: str, target: Target, path: str, op: str
) -> tuple[Reply | None, DeviceReport | None, httpx.Auth]:
    """The one login of a Digest HTTP API (ISAPI, Dahua): GET ``path`` with the credentials.

    Returns (reply, None, auth) when the device answered past the login (the caller reads the
    reply's status: 200, 404...), or (None, report, auth) when the login decided the run: the
    device refused the credentials (``rejected``, ``locked`` when it says it locked us out),
    asked for a scheme we do not speak (``unsupported``) or did not answer HTTP (``error``
    under ``op``). One request: devices lock out after a few failures.
    """
    auth = DigestAuth(target.username, target.password)
    try:
        r = await get_capped(target.client, target.base + path, auth)
    except httpx.HTTPError:
        return None, DeviceReport(adapter, "error", errors={op: "http"}), auth
    if r.status_code == 401:
        # A Digest challenge after our answer means the password is wrong; anything else
        # (Basic only, no challenge) is a login scheme we do not speak.
        if r.headers.get("x-lockout") == "1":
            return None, DeviceReport(adapter, "rejected", locked=True), auth
        digest = "digest" in r.headers.get("www-authenticate", "").lower()
        return None, DeviceReport(adapter, "rejected" if digest else "unsupported"), auth
    if r.status_code == 403:
        return None, DeviceReport(adapter, "rejected"), auth
    return r, None, auth
