"""The lab's captive portal: every HTTP request is redirected to a "data package used up" page.

CLI::

    python -m diag.lab.emulators.portal --bind IP [--port 80] [--login-url URL]

Any request (any host, any path, the captive-portal probe URLs included) gets ``302 Found`` to the
login page; ``/login`` itself serves a small HTML page saying the data package has been used up
(in English and Polish), the way a mobile operator's walled garden does when a SIM's package ran
out. The default login URL is ``http://<bind>[:port]/login`` (with a wildcard bind, the address the
client connected to).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from diag.lab.emulators import (
    Request,
    discard_body,
    fmt_addr,
    http_connection,
    log,
    run,
    send,
)

COMPONENT = "portal"

LOGIN_PAGE = """<!DOCTYPE html>
<html lang="pl">
<head><meta charset="utf-8"><title>Pakiet danych wykorzystany / Data package used up</title></head>
<body>
<h1>Pakiet danych wykorzystany</h1>
<p>Twój pakiet danych został wykorzystany. Wykup nowy pakiet, aby dalej korzystać z internetu.</p>
<h1 lang="en">Your data package has been used up</h1>
<p lang="en">Buy a new package to keep using the internet.</p>
<form method="post" action="/login"><button>Doładuj / Top up</button></form>
</body>
</html>
""".encode()


class Portal:
    def __init__(self, bind: str, port: int, login_url: str | None) -> None:
        self.bind, self.port, self.login_url = bind, port, login_url

    def url_for(self, writer: asyncio.StreamWriter) -> str:
        if self.login_url:
            return self.login_url
        host = self.bind
        if host in ("", "0.0.0.0", "::"):
            local = writer.get_extra_info("sockname")
            host = str(local[0]) if isinstance(local, tuple) else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        suffix = "" if self.port == 80 else f":{self.port}"
        return f"http://{host}{suffix}/login"

    async def handle(
        self, req: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        await discard_body(reader, req)
        keep = req.keep_alive
        head = req.method == "HEAD"
        if req.path == "/login":
            headers = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}
            await send(writer, 200, LOGIN_PAGE, headers, close=not keep, head_only=head)
            status = 200
        else:
            url = self.url_for(writer)
            body = f'<html><body><a href="{url}">{url}</a></body></html>\n'.encode()
            headers = {
                "Location": url,
                "Content-Type": "text/html; charset=utf-8",
                "Cache-Control": "no-store",
            }
            await send(writer, 302, body, headers, close=not keep, head_only=head)
            status = 302
        log(
            COMPONENT,
            "request",
            peer=fmt_addr(req.peer),
            method=req.method,
            host=req.header("host")[:100] or "-",
            path=req.path[:200],
            status=status,
        )
        return keep

    async def main(self, stop: asyncio.Event) -> None:
        server = await asyncio.start_server(
            http_connection(COMPONENT, self.handle), self.bind, self.port
        )
        log(COMPONENT, "ready", bind=self.bind, port=self.port, login_url=self.login_url or "-")
        try:
            await stop.wait()
        finally:
            server.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m diag.lab.emulators.portal", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--bind", default="0.0.0.0", help="address to listen on")
    ap.add_argument("--port", type=int, default=80, help="TCP port")
    ap.add_argument("--login-url", help="where requests are redirected (default: this server)")
    args = ap.parse_args(argv)
    return run(COMPONENT, Portal(args.bind, args.port, args.login_url).main)


if __name__ == "__main__":
    sys.exit(main())
