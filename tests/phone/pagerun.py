"""Inside a throwaway loopback-only namespace: the phone server and Chromium opening its page.

``python pagerun.py OUT.json LANG``: serves the page on 127.0.0.1 (a secure context, like HTTPS),
opens it in headless Chromium with ``--lang=LANG`` through the refusing proxy, and writes the
parsed result, the final DOM and the proxied requests to OUT.json (see test_page_chromium.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "reports"))
from isolated import BASE, CHROMIUM, QUIET, ProxyRecorder

from diag.phone.server import PageConfig, PhoneServer

# Port 9 on loopback: nothing listens, so the platform fetch fails at once ("error").
ENDPOINT = "https://127.0.0.1:9/"


async def main(out: Path, lang: str) -> None:
    server = PhoneServer("127.0.0.1", PageConfig((), (ENDPOINT,)))
    await server.start()
    with ProxyRecorder() as proxy:
        profile = out.parent / "profile"
        proc = await asyncio.create_subprocess_exec(
            CHROMIUM, *BASE, *QUIET, f"--user-data-dir={profile}",
            f"--proxy-server=http://127.0.0.1:{proxy.port}",
            # Headless Chromium takes navigator.language from --accept-lang, not --lang.
            f"--lang={lang}", f"--accept-lang={lang}",
            # Virtual time lets the page's timers run out without waiting for them; the clock
            # offset is then meaningless, which this test does not look at.
            "--virtual-time-budget=20000", "--dump-dom", server.url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        result = await server.wait(60)
        dom, _ = await asyncio.wait_for(proc.communicate(), 60)
        requests = list(proxy.requests)
    data = {
        "result": dataclasses.asdict(result) if result else None,
        "dom": dom.decode(errors="replace"),
        "requests": requests,
    }
    out.write_text(json.dumps(data), encoding="utf-8")


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))
