"""TCP connect: one handshake, timed with the injected clock."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from diag.net.answer import Answer, error_status


async def tcp_connect(
    address: str, port: int, timeout_s: float, clock: Callable[[], float] = time.monotonic
) -> Answer:
    """A TCP handshake: ``open`` with the connect time, ``refused`` on RST, ``timeout``."""
    t0 = clock()
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout_s)
    except TimeoutError:
        return Answer("timeout")
    except OSError as exc:
        return Answer(error_status(exc), info=type(exc).__name__)
    rtt = round((clock() - t0) * 1000, 3)
    writer.close()
    with contextlib.suppress(OSError, asyncio.TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 0.2)
    return Answer("open", rtt)
